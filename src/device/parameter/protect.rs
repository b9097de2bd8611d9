//! Write protection (Concert's `param.lock()` / `unlock()`): sets fail at
//! once with a clear error instead of waiting — distinct from the
//! exclusive lock of [`Parameter::lock`].

use std::sync::atomic::Ordering;

use crate::device::parameter::Parameter;
use crate::error::{DeviceError, DeviceErrorKind, Error};

const OPEN: u8 = 0;
const PROTECTED: u8 = 1;
const FOR_GOOD: u8 = 2;

impl<T: Send + 'static> Parameter<T> {
    /// Write-protects the parameter (Concert's `param.lock()`): every later
    /// `set` (and `set_after`) fails at once with [`Error::Device`] saying
    /// so, and never reaches the setter, until [`unprotect`]. Sets asked
    /// for before still run. Reads are not affected. Protecting it again is
    /// harmless.
    ///
    /// [`unprotect`]: Parameter::unprotect
    ///
    /// # Examples
    ///
    /// ```
    /// let voltage = concertina::Parameter::builder("voltage").setter(|_: f64| {}).build()?;
    /// voltage.protect();
    /// let refused = voltage.set(300.0).result().unwrap_err();
    /// assert!(refused.to_string().contains("write-protected"));
    /// voltage.unprotect()?;
    /// voltage.set(300.0).result()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn protect(&self) {
        // Relaxed: a flag read on its own by each set; it orders nothing.
        let _ = self.inner.protection.compare_exchange(
            OPEN,
            PROTECTED,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Write-protects the parameter for good (Concert's
    /// `param.lock(permanent=True)`): as [`protect`](Parameter::protect),
    /// and [`unprotect`](Parameter::unprotect) fails from now on.
    ///
    /// # Examples
    ///
    /// ```
    /// let gap = concertina::Parameter::builder("gap").setter(|_: f64| {}).build()?;
    /// gap.protect_for_good();
    /// assert!(gap.unprotect().is_err());
    /// assert!(gap.set(1.0).result().is_err());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn protect_for_good(&self) {
        self.inner.protection.store(FOR_GOOD, Ordering::Relaxed);
    }

    /// Lifts the write protection (Concert's `param.unlock()`); nothing
    /// when there was none.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when the parameter is protected for good.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: u8| {}).build()?;
    /// p.protect();
    /// assert!(p.is_protected());
    /// p.unprotect()?;
    /// assert!(!p.is_protected());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn unprotect(&self) -> Result<(), Error> {
        match self.inner.protection.compare_exchange(
            PROTECTED,
            OPEN,
            Ordering::Relaxed,
            Ordering::Relaxed,
        ) {
            Ok(_) | Err(OPEN) => Ok(()),
            Err(_) => Err(self.protected_error(true)),
        }
    }

    /// True while the parameter is write-protected (Concert's `locked`).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: u8| {}).build()?;
    /// assert!(!p.is_protected());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn is_protected(&self) -> bool {
        self.inner.protection.load(Ordering::Relaxed) != OPEN
    }

    /// The refusal of a set while the parameter is protected.
    pub(super) fn check_protection(&self) -> Result<(), Error> {
        match self.inner.protection.load(Ordering::Relaxed) {
            OPEN => Ok(()),
            state => Err(self.protected_error(state == FOR_GOOD)),
        }
    }

    fn protected_error(&self, permanently: bool) -> Error {
        DeviceError::error(DeviceErrorKind::WriteProtected {
            parameter: self.inner.actions.node.full_name(),
            permanently,
        })
    }
}
