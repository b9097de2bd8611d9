//! Configuring a [`Parameter`]: its functions, limits, unit and pool.

use crate::device::parameter::limits::{Limits, Made};
use std::fmt;
use std::sync::Arc;

use super::{Getter, ParamInner, Parameter, Setter};
use crate::device::action::{Actions, Failure, Stop};
use crate::error::{DeviceError, DeviceErrorKind, Error};
use crate::pool::Pool;
use crate::sync::Mutex;

/// Configures a [`Parameter`]: at least a getter or a setter.
///
/// # Examples
///
/// ```
/// let temperature = concertina::Parameter::<f64>::builder("temperature")
///     .getter(|| 293.15)
///     .unit("K")
///     .build()?;
/// assert_eq!(temperature.get().result()?, 293.15);
/// # Ok::<(), concertina::Error>(())
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct ParameterBuilder<T> {
    name: String,
    getter: Option<Getter<T>>,
    setter: Option<Setter<T>>,
    stop: Option<Stop>,
    limits: Option<Result<Made<T>, DeviceErrorKind>>,
    unit: Option<String>,
    concurrent_reads: bool,
    pool: Option<Pool>,
}

impl<T> fmt::Debug for ParameterBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParameterBuilder")
            .field("name", &self.name)
            .field("readable", &self.getter.is_some())
            .field("writable", &self.setter.is_some())
            .field("stop", &self.stop.is_some())
            .field(
                "limits",
                &self
                    .limits
                    .as_ref()
                    .map(|l| l.as_ref().map(|(_, text)| text)),
            )
            .field("unit", &self.unit)
            .field("concurrent_reads", &self.concurrent_reads)
            .field("pool", &self.pool.as_ref().map(Pool::name))
            .finish()
    }
}

impl<T: Send + 'static> ParameterBuilder<T> {
    pub(super) fn new(name: String) -> Self {
        ParameterBuilder {
            name,
            getter: None,
            setter: None,
            stop: None,
            limits: None,
            unit: None,
            concurrent_reads: false,
            pool: None,
        }
    }

    /// The blocking function that reads the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("counts").getter(|| 7u32).build()?;
    /// assert!(p.is_readable() && !p.is_writable());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn getter(mut self, get: impl Fn() -> T + Send + Sync + 'static) -> Self {
        self.getter = Some(Arc::new(move || Ok(get())));
        self
    }

    /// A blocking read that can fail (a controller that does not answer, a
    /// read that depends on another parameter): its error reaches the
    /// waiter as [`Error::Device`], whose
    /// [`source()`](std::error::Error::source) is the error itself,
    /// downcastable to `E` (see [`DeviceError::downcast_ref`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    ///
    /// let p = concertina::Parameter::<f64>::builder("pressure")
    ///     .try_getter(|| Err(io::Error::new(io::ErrorKind::TimedOut, "gauge silent")))
    ///     .build()?;
    /// let err = p.get().result().unwrap_err();
    /// assert_eq!(err.to_string(), "parameter `pressure`: read failed: gauge silent");
    /// let source = std::error::Error::source(&err).unwrap();
    /// assert_eq!(source.downcast_ref::<io::Error>().unwrap().kind(), io::ErrorKind::TimedOut);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    ///
    /// [`DeviceError::downcast_ref`]: crate::error::DeviceError::downcast_ref
    pub fn try_getter<E>(mut self, get: impl Fn() -> Result<T, E> + Send + Sync + 'static) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.getter = Some(Arc::new(move || get().map_err(|e| Arc::new(e) as Failure)));
        self
    }

    /// The blocking function that writes the value (a motor move returns
    /// when the motor has arrived, or when it sees
    /// [`cancelled()`](crate::cancelled) turn true).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("exposure").setter(|_ms: u32| {}).build()?;
    /// assert!(p.is_writable() && !p.is_readable());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn setter(mut self, set: impl Fn(T) + Send + Sync + 'static) -> Self {
        self.setter = Some(Arc::new(move |v| {
            set(v);
            Ok(())
        }));
        self
    }

    /// A blocking write that can fail (a motor that reports a fault): its
    /// error reaches the waiter as [`Error::Device`], with the error itself
    /// as [`source()`](std::error::Error::source).
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(Debug)]
    /// struct Fault(&'static str);
    /// impl std::fmt::Display for Fault {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "controller fault: {}", self.0) }
    /// }
    /// impl std::error::Error for Fault {}
    ///
    /// let p = concertina::Parameter::<f64>::builder("position")
    ///     .try_setter(|_mm| Err(Fault("limit switch")))
    ///     .build()?;
    /// let err = p.set(1.0).result().unwrap_err();
    /// assert_eq!(err.to_string(), "parameter `position`: write failed: controller fault: limit switch");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn try_setter<E>(mut self, set: impl Fn(T) -> Result<(), E> + Send + Sync + 'static) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.setter = Some(Arc::new(move |v| {
            set(v).map_err(|e| Arc::new(e) as Failure)
        }));
        self
    }

    /// The cancel operation (Concert's `cancel_operation`): runs when a set
    /// that has begun to apply is cancelled, and on [`Device::abort`]. It
    /// runs on the cancelling thread, at most once per move. It may use its
    /// own parameter (read where the motor stopped, set a safe value): what
    /// it submits to it runs at once, on that thread, as part of the stop
    /// (queued, it would wait for the very move being stopped).
    ///
    /// [`Device::abort`]: crate::Device::abort
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("position")
    ///     .setter(|_mm: f64| {})
    ///     .on_cancel(|| println!("motor stopped"))
    ///     .build()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn on_cancel(mut self, stop: impl Fn() + Send + Sync + 'static) -> Self {
        self.stop = Some(Arc::new(stop));
        self
    }

    /// Lets reads run outside the one-at-a-time order: side by side with
    /// each other and with a set in progress (reading a moving motor's
    /// position). They still respect locks. Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("position")
    ///     .getter(|| 0.0_f64)
    ///     .setter(|_| {})
    ///     .concurrent_reads()
    ///     .build()?;
    /// assert_eq!(p.get().result()?, 0.0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn concurrent_reads(mut self) -> Self {
        self.concurrent_reads = true;
        self
    }

    /// A unit label, shown in messages and by [`Parameter::unit`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("flow").getter(|| 1.5).unit("ml/min").build()?;
    /// assert_eq!(p.unit(), Some("ml/min"));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// Runs the getter and setter on `pool` instead of the default pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(1).name("motors").build()?;
    /// let p = concertina::Parameter::builder("x").getter(|| 0.0).pool(&pool).build()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn pool(mut self, pool: &Pool) -> Self {
        self.pool = Some(pool.clone());
        self
    }

    /// Builds the parameter.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when the name is not an identifier (a letter or `_`,
    /// then letters, digits, `_` or `-`), when there is neither getter nor
    /// setter, or when the limits are not ordered (lower above upper, or
    /// not comparable, as NaN is not).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = concertina::Parameter::<f64>::builder("current position").getter(|| 0.0).build().unwrap_err();
    /// assert!(err.to_string().starts_with("parameter name \"current position\" is not accepted"));
    /// ```
    pub fn build(self) -> Result<Parameter<T>, Error> {
        crate::device::check_name("parameter", &self.name)?;
        if self.getter.is_none() && self.setter.is_none() {
            return Err(DeviceError::error(DeviceErrorKind::NoAccess {
                parameter: self.name,
            }));
        }
        let limits = self.limits.transpose().map_err(DeviceError::error)?;
        Ok(Parameter {
            inner: Arc::new(ParamInner {
                actions: Actions::new("parameter", &self.name, self.pool, self.stop),
                getter: self.getter,
                setter: self.setter,
                limits: Mutex::new(match limits {
                    Some((check, text)) => Limits {
                        check: Some(check),
                        text: Some(text),
                        protected: false,
                    },
                    None => Limits::default(),
                }),
                unit: self.unit,
                concurrent_reads: self.concurrent_reads,
                protection: Default::default(),
                stashed: Mutex::new(Vec::new()),
            }),
        })
    }
}

impl<T: PartialOrd + fmt::Debug + Send + Sync + 'static> ParameterBuilder<T> {
    /// Soft limits, inclusive: a set outside them fails with a clear error
    /// and never reaches the setter.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("angle").setter(|_: f64| {}).limits(0.0, 180.0).build()?;
    /// assert!(p.set(180.0).result().is_ok());
    /// assert!(p.set(180.5).result().is_err());
    /// let nan = concertina::Parameter::builder("angle").setter(|_: f64| {}).limits(f64::NAN, 1.0).build();
    /// assert_eq!(
    ///     nan.unwrap_err().to_string(),
    ///     "parameter `angle`: limits NaN and 1.0 cannot be compared (is one NaN?): expected lower <= upper",
    /// );
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn limits(mut self, lower: T, upper: T) -> Self {
        self.limits = Some(super::limits::limits(self.name.clone(), lower, upper));
        self
    }
}
