//! Concert-style devices: named [`Parameter`]s with asynchronous get and
//! set, one operation at a time per parameter, cancel operations (stop the
//! motor), soft limits, fallible I/O, and locks for exclusive access
//! ([`lock!`](crate::lock!), [`lock_timeout`]), owned by tasks, that cover a
//! [`Device`] with all its parameters.
//!
//! [`Device`] and [`Parameter`] are also at the crate root.
//!
//! ```
//! use concertina::device::{Device, Parameter};
//!
//! let position = std::sync::Arc::new(parking_lot::Mutex::new(0.0_f64));
//! let (get, set) = (position.clone(), position.clone());
//! let motor = Device::builder("motor")
//!     .parameter(Parameter::builder("position")
//!         .getter(move || *get.lock())
//!         .setter(move |x| *set.lock() = x)
//!         .limits(-10.0, 10.0)
//!         .build()?)
//!     .build()?;
//! let position = motor.parameter::<f64>("position")?;
//! position.set(2.5).result()?;
//! assert_eq!(position.get().result()?, 2.5);
//! # Ok::<(), concertina::Error>(())
//! ```

// Rooms, one way: `lock` (the lock table, its guards and its place in the
// wait graph) <- `ops` (a parameter's queue of operations) <- `parameter`
// <- this module (devices).

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Weak};

use crate::error::{DeviceErrorKind, Error};
use crate::future::Future;
use crate::interrupt;

pub(crate) mod action;
pub(crate) mod lock;
pub(crate) mod ops;
pub(crate) mod parameter;

#[allow(deprecated)]
pub use lock::try_lock_for;
use lock::LockNode;
pub use lock::{lock, lock_timeout, LockGuard, LockTarget, Lockable};

pub use crate::error::DeviceError;
use parameter::ParamInner;
pub use parameter::{Parameter, ParameterBuilder};

fn check_name(what: &'static str, name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        Ok(())
    } else {
        Err(DeviceError::error(DeviceErrorKind::InvalidName {
            what,
            name: name.to_owned(),
        }))
    }
}

// ---------------------------------------------------------------------------
// Devices

/// A parameter of a device, whatever its value type.
trait AnyParameter: Send + Sync {
    fn node(&self) -> &Arc<LockNode>;
    fn abort(&self, by_interrupt: bool) -> bool;
    fn type_name(&self) -> &'static str;
}

impl<T: Send + 'static> AnyParameter for ParamInner<T> {
    fn node(&self) -> &Arc<LockNode> {
        &self.actions.node
    }

    fn abort(&self, by_interrupt: bool) -> bool {
        self.actions.abort(by_interrupt)
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }
}

struct Entry {
    name: String,
    erased: Arc<dyn AnyParameter>,
    typed: Arc<dyn Any + Send + Sync>,
}

struct DeviceInner {
    node: Arc<LockNode>,
    parameters: Vec<Entry>,
}

/// A named group of parameters (a motor, a pump, a camera): typed and
/// by-name access, an abort that runs every cancel operation, and a lock
/// that covers all its parameters. A cheap, cloneable handle.
///
/// # Examples
///
/// ```
/// use concertina::{Device, Parameter};
///
/// let position = Parameter::<f64>::builder("position").getter(|| 1.25).setter(|_| {}).unit("mm").build()?;
/// let motor = Device::builder("motor").parameter(position).build()?;
/// assert_eq!(motor.get::<f64>("position").result()?, 1.25);
/// motor.set("position", 3.0).result()?;
/// assert_eq!(motor.names().collect::<Vec<_>>(), ["position"]);
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone)]
pub struct Device {
    inner: Arc<DeviceInner>,
}

/// Configures a [`Device`].
///
/// # Examples
///
/// ```
/// let pump = concertina::Device::builder("pump")
///     .parameter(concertina::Parameter::<f64>::builder("flow").setter(|_| {}).build()?)
///     .build()?;
/// assert_eq!(pump.name(), "pump");
/// # Ok::<(), concertina::Error>(())
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct DeviceBuilder {
    name: String,
    parameters: Vec<Entry>,
}

impl fmt::Debug for DeviceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceBuilder")
            .field("name", &self.name)
            .field(
                "parameters",
                &self.parameters.iter().map(|e| &e.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl DeviceBuilder {
    /// Adds a parameter. A parameter belongs to one device at most.
    ///
    /// # Examples
    ///
    /// ```
    /// let shutter = concertina::Device::builder("shutter")
    ///     .parameter(concertina::Parameter::<bool>::builder("open").getter(|| false).build()?)
    ///     .build()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn parameter<T: Send + 'static>(mut self, parameter: Parameter<T>) -> Self {
        let name = parameter.name().to_owned();
        self.parameters.push(Entry {
            name,
            erased: parameter.inner.clone(),
            typed: parameter.inner,
        });
        self
    }

    /// Builds the device.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when the name is not an identifier, two parameters
    /// share a name, or a parameter already belongs to another device.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Device, Parameter};
    ///
    /// let x = Parameter::<f64>::builder("x").getter(|| 0.0).build()?;
    /// let err = Device::builder("stage").parameter(x.clone()).parameter(x).build().unwrap_err();
    /// assert_eq!(err.to_string(), "device `stage` has two parameters named `x`");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn build(self) -> Result<Device, Error> {
        check_name("device", &self.name)?;
        for (i, entry) in self.parameters.iter().enumerate() {
            if self.parameters[..i].iter().any(|e| e.name == entry.name) {
                return Err(DeviceError::error(DeviceErrorKind::Duplicate {
                    device: self.name.clone(),
                    name: entry.name.clone(),
                }));
            }
            if let Some((_, owner)) = entry.erased.node().device.get() {
                return Err(DeviceError::error(DeviceErrorKind::AlreadyOwned {
                    parameter: entry.name.clone(),
                    owner: owner.clone(),
                }));
            }
        }
        let node = LockNode::new(&self.name);
        for entry in &self.parameters {
            let _ = entry
                .erased
                .node()
                .device
                .set((node.clone(), self.name.clone()));
        }
        Ok(Device {
            inner: Arc::new(DeviceInner {
                node,
                parameters: self.parameters,
            }),
        })
    }
}

/// A parameter of a device found by name, for locking and aborting without
/// knowing its value type.
///
/// # Examples
///
/// ```
/// let pump = concertina::Device::builder("pump")
///     .parameter(concertina::Parameter::<f64>::builder("flow").setter(|_| {}).build()?)
///     .build()?;
/// let flow = pump.parameter_ref("flow")?;
/// assert_eq!(flow.name(), "pump.flow");
/// let _guard = concertina::lock!(flow)?;
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone)]
pub struct ParameterRef {
    parameter: Arc<dyn AnyParameter>,
}

impl ParameterRef {
    /// `device.parameter`.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("d")
    ///     .parameter(concertina::Parameter::<u8>::builder("p").getter(|| 0).build()?)
    ///     .build()?;
    /// assert_eq!(d.parameter_ref("p")?.name(), "d.p");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn name(&self) -> String {
        self.parameter.node().full_name()
    }
}

impl Lockable for ParameterRef {
    fn lock_target(&self) -> LockTarget {
        LockTarget(self.parameter.node().clone())
    }
}

impl fmt::Debug for ParameterRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ParameterRef").field(&self.name()).finish()
    }
}

impl Device {
    /// A builder for a device called `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let camera = concertina::Device::builder("camera").build()?;
    /// assert_eq!(camera.names().count(), 0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn builder(name: impl Into<String>) -> DeviceBuilder {
        DeviceBuilder {
            name: name.into(),
            parameters: Vec::new(),
        }
    }

    /// The device's name.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(concertina::Device::builder("pump").build()?.name(), "pump");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.node.name
    }

    /// The names of its parameters, in the order they were added.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("d")
    ///     .parameter(concertina::Parameter::<u8>::builder("a").getter(|| 0).build()?)
    ///     .parameter(concertina::Parameter::<u8>::builder("b").getter(|| 0).build()?)
    ///     .build()?;
    /// assert_eq!(d.names().collect::<Vec<_>>(), ["a", "b"]);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.parameters.iter().map(|e| e.name.as_str())
    }

    fn entry(&self, name: &str) -> Result<&Entry, Error> {
        self.inner
            .parameters
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| {
                DeviceError::error(DeviceErrorKind::UnknownParameter {
                    device: self.name().to_owned(),
                    name: name.to_owned(),
                    known: self.names().map(String::from).collect(),
                })
            })
    }

    /// The parameter called `name`, whatever its type (for locking and
    /// aborting).
    ///
    /// # Errors
    ///
    /// [`Error::Device`] naming the device, the name and the parameters it has.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("motor").build()?;
    /// assert_eq!(d.parameter_ref("foo").unwrap_err().to_string(), "device `motor` has no parameter `foo` (it has: )");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn parameter_ref(&self, name: &str) -> Result<ParameterRef, Error> {
        Ok(ParameterRef {
            parameter: self.entry(name)?.erased.clone(),
        })
    }

    /// The parameter called `name` as a typed handle: the type is checked
    /// here, once, and the handle's `get`/`set` are checked by the compiler.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when there is no such parameter (naming those the
    /// device has) or it holds another type (naming both types).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("motor")
    ///     .parameter(concertina::Parameter::<f64>::builder("position").getter(|| 0.5).build()?)
    ///     .build()?;
    /// let position = d.parameter::<f64>("position")?;
    /// assert_eq!(position.get_sync()?, 0.5);
    /// assert_eq!(
    ///     d.parameter::<u32>("position").unwrap_err().to_string(),
    ///     "parameter `motor.position` holds f64, not u32",
    /// );
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn parameter<T: Send + 'static>(&self, name: &str) -> Result<Parameter<T>, Error> {
        let entry = self.entry(name)?;
        match entry.typed.clone().downcast::<ParamInner<T>>() {
            Ok(inner) => Ok(Parameter { inner }),
            Err(_) => Err(DeviceError::error(DeviceErrorKind::WrongType {
                parameter: format!("{}.{}", self.name(), name),
                held: entry.erased.type_name(),
                expected: std::any::type_name::<T>(),
            })),
        }
    }

    /// The former name of [`parameter`](Device::parameter).
    ///
    /// # Errors
    ///
    /// As [`parameter`](Device::parameter).
    ///
    /// # Examples
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// let d = concertina::Device::builder("d")
    ///     .parameter(concertina::Parameter::<u8>::builder("p").getter(|| 3).build()?)
    ///     .build()?;
    /// assert_eq!(d.typed::<u8>("p")?.get_sync()?, 3);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    #[deprecated(note = "use `Device::parameter::<T>(name)`")]
    pub fn typed<T: Send + 'static>(&self, name: &str) -> Result<Parameter<T>, Error> {
        self.parameter(name)
    }

    /// Reads the parameter `name`; a future that has failed when there is no
    /// such parameter of type `T`. The type is checked when this runs, not
    /// by the compiler: prefer a typed handle from
    /// [`parameter`](Device::parameter).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("pump")
    ///     .parameter(concertina::Parameter::<f64>::builder("flow").getter(|| 1.5).build()?)
    ///     .build()?;
    /// assert_eq!(d.get::<f64>("flow").result()?, 1.5);
    /// assert!(d.get::<f64>("pressure").result().is_err());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn get<T: Send + 'static>(&self, name: &str) -> Future<T> {
        self.parameter::<T>(name)
            .map_or_else(Future::failed, |p| p.get())
    }

    /// Writes the parameter `name`; a future that has failed when there is
    /// no such parameter of type `T` (`set("position", 5)` passes an
    /// `i32`: write `5.0`). Prefer a typed handle from
    /// [`parameter`](Device::parameter).
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("pump")
    ///     .parameter(concertina::Parameter::<f64>::builder("flow").setter(|_| {}).build()?)
    ///     .build()?;
    /// d.set("flow", 2.0).result()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn set<T: Send + 'static>(&self, name: &str, value: T) -> Future<()> {
        self.parameter::<T>(name)
            .map_or_else(Future::failed, |p| p.set(value))
    }

    /// Runs every parameter's cancel operation: cancels its operations in
    /// flight (whose cleanup it is) and, unless one of those cancels ran
    /// it, calls it directly. Returns how many parameters had one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let stops = Arc::new(AtomicUsize::new(0));
    /// let (a, b) = (stops.clone(), stops.clone());
    /// let motor = concertina::Device::builder("motor")
    ///     .parameter(concertina::Parameter::<f64>::builder("x").setter(|_| {}).on_cancel(move || { a.fetch_add(1, Ordering::SeqCst); }).build()?)
    ///     .parameter(concertina::Parameter::<f64>::builder("y").setter(|_| {}).on_cancel(move || { b.fetch_add(1, Ordering::SeqCst); }).build()?)
    ///     .build()?;
    /// assert_eq!(motor.abort(), 2);
    /// assert_eq!(stops.load(Ordering::SeqCst), 2);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn abort(&self) -> usize {
        self.inner.abort(false)
    }

    /// The same as [`abort`](Device::abort), under Concert's other name.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("d").build()?;
    /// assert_eq!(d.emergency_stop(), 0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn emergency_stop(&self) -> usize {
        self.abort()
    }

    /// Makes every Ctrl-C abort this device (Concert's "Ctrl-C stops all
    /// devices"), through an [`on_interrupt`](crate::interrupt::on_interrupt) hook
    /// (which installs the Ctrl-C handler unless the application left SIGINT
    /// alone). The hook holds the device weakly: once the device is dropped
    /// it does nothing (it stays registered). One Ctrl-C stops each parameter
    /// once: a parameter whose stop already ran since its last set began (the
    /// interrupted wait cancelled that set) is not stopped again.
    ///
    /// The operations a Ctrl-C aborts fail with [`Error::Interrupted`],
    /// as the interrupted waits do, so that a program holding their futures
    /// tells a Ctrl-C from an ordinary cancel ([`abort`](Device::abort) gives
    /// `Err(Cancelled)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let motor = concertina::Device::builder("motor").build()?;
    /// motor.stop_on_interrupt();
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn stop_on_interrupt(&self) {
        let device: Weak<DeviceInner> = Arc::downgrade(&self.inner);
        interrupt::on_interrupt(move || {
            if let Some(device) = device.upgrade() {
                device.abort(true);
            }
        });
    }

    /// Locks the device with all its parameters; see [`lock`](crate::device::lock()).
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`] on Ctrl-C while waiting; [`Error::Deadlock`]
    /// when waiting would close a cycle.
    ///
    /// # Examples
    ///
    /// ```
    /// let motor = concertina::Device::builder("motor").build()?;
    /// let _guard = motor.lock()?;
    /// let _again = motor.lock()?; // re-entrant for the same owner
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockGuard, Error> {
        lock::lock(&[self])
    }
}

impl DeviceInner {
    fn abort(&self, by_interrupt: bool) -> usize {
        self.parameters
            .iter()
            .filter(|e| e.erased.abort(by_interrupt))
            .count()
    }
}

impl Lockable for Device {
    fn lock_target(&self) -> LockTarget {
        LockTarget(self.inner.node.clone())
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("name", &self.name())
            .field("parameters", &self.names().collect::<Vec<_>>())
            .finish()
    }
}
