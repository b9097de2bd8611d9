//! Soft limits: made by the builder, changed, removed and protected at run
//! time (Concert's `param.lower`/`upper`, `lock_limits`), checked by every
//! set before it is queued.

use std::fmt;
use std::sync::Arc;

use crate::device::parameter::{Check, Parameter};
use crate::error::{DeviceError, DeviceErrorKind, Error};

/// A parameter's soft limits: the check, the values as text, and whether
/// they may change.
pub(super) struct Limits<T> {
    pub(super) check: Option<Check<T>>,
    pub(super) text: Option<(String, String)>,
    pub(super) protected: bool,
}

impl<T> Default for Limits<T> {
    fn default() -> Self {
        Limits {
            check: None,
            text: None,
            protected: false,
        }
    }
}

impl<T> fmt::Debug for Limits<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

/// Limits as made: their check, and their values as text.
pub(super) type Made<T> = (Check<T>, (String, String));

/// The check of `lower..=upper` and the limits as text; a clear error when
/// they are not ordered.
pub(super) fn limits<T>(parameter: String, lower: T, upper: T) -> Result<Made<T>, DeviceErrorKind>
where
    T: PartialOrd + fmt::Debug + Send + Sync + 'static,
{
    let (low, up) = (format!("{lower:?}"), format!("{upper:?}"));
    match lower.partial_cmp(&upper) {
        Some(std::cmp::Ordering::Greater) => {
            return Err(DeviceErrorKind::BadLimits {
                parameter,
                lower: low,
                upper: up,
            })
        }
        None => {
            return Err(DeviceErrorKind::UnorderedLimits {
                parameter,
                lower: low,
                upper: up,
            })
        }
        Some(_) => {}
    }
    let check: Check<T> = Arc::new(move |value: &T, name: &str, unit: Option<&str>| {
        if *value >= lower && *value <= upper {
            return Ok(());
        }
        let with_unit = |v: &T| match unit {
            Some(u) => format!("{v:?} {u}"),
            None => format!("{v:?}"),
        };
        Err(DeviceError::error(DeviceErrorKind::SoftLimit {
            parameter: name.to_owned(),
            value: with_unit(value),
            lower: with_unit(&lower),
            upper: with_unit(&upper),
        }))
    });
    Ok((check, (low, up)))
}

impl<T: Send + 'static> Parameter<T> {
    /// The soft limits as text (`Debug` of the values), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: i32| {}).limits(-5, 5).build()?;
    /// assert_eq!(p.limits(), Some(("-5".to_owned(), "5".to_owned())));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn limits(&self) -> Option<(String, String)> {
        self.inner.limits.lock().text.clone()
    }

    /// Removes the soft limits: later sets are not checked.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when the limits are protected
    /// ([`protect_limits`](Parameter::protect_limits)).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: i32| {}).limits(-5, 5).build()?;
    /// p.clear_limits()?;
    /// assert_eq!(p.limits(), None);
    /// p.set(50).result()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn clear_limits(&self) -> Result<(), Error> {
        let mut limits = self.inner.limits.lock();
        if limits.protected {
            drop(limits);
            return Err(self.limits_protected());
        }
        *limits = Limits::default();
        Ok(())
    }

    /// Keeps the soft limits from being changed or removed (Concert's
    /// `lock_limits`) until [`unprotect_limits`](Parameter::unprotect_limits).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: i32| {}).limits(-5, 5).build()?;
    /// p.protect_limits();
    /// assert!(p.set_limits(-50, 50).is_err());
    /// p.unprotect_limits();
    /// p.set_limits(-50, 50)?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn protect_limits(&self) {
        self.inner.limits.lock().protected = true;
    }

    /// Lets the soft limits change again.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: i32| {}).build()?;
    /// p.protect_limits();
    /// p.unprotect_limits();
    /// p.clear_limits()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn unprotect_limits(&self) {
        self.inner.limits.lock().protected = false;
    }

    /// Checks `value` against the soft limits (the check runs outside the
    /// parameter's lock).
    pub(super) fn check_limits(&self, value: &T) -> Result<(), Error> {
        let check = self.inner.limits.lock().check.clone();
        match check {
            Some(check) => check(
                value,
                &self.inner.actions.node.full_name(),
                self.inner.unit.as_deref(),
            ),
            None => Ok(()),
        }
    }

    fn limits_protected(&self) -> Error {
        DeviceError::error(DeviceErrorKind::LimitsProtected {
            parameter: self.inner.actions.node.full_name(),
        })
    }
}

impl<T: PartialOrd + fmt::Debug + Send + Sync + 'static> Parameter<T> {
    /// Changes the soft limits (inclusive) for the sets asked for from now
    /// on (Concert's `param.lower = …; param.upper = …`).
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when `lower` is above `upper` or they cannot be
    /// compared (a NaN), or when the limits are protected; the limits stay
    /// as they were.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("angle").setter(|_: f64| {}).limits(0.0, 90.0).build()?;
    /// p.set_limits(0.0, 180.0)?;
    /// assert!(p.set(120.0).result().is_ok());
    /// assert_eq!(
    ///     p.set_limits(10.0, 1.0).unwrap_err().to_string(),
    ///     "parameter `angle`: lower limit 10.0 is above upper limit 1.0",
    /// );
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn set_limits(&self, lower: T, upper: T) -> Result<(), Error> {
        let (check, text) = limits(self.inner.actions.node.full_name(), lower, upper)
            .map_err(DeviceError::error)?;
        let mut limits = self.inner.limits.lock();
        if limits.protected {
            drop(limits);
            return Err(self.limits_protected());
        }
        limits.check = Some(check);
        limits.text = Some(text);
        Ok(())
    }
}
