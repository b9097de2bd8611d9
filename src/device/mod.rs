//! Concert-style devices: named [`Parameter`]s with asynchronous get and
//! set and [`Command`]s (a camera's grab, a shutter's open) that return
//! futures, one operation at a time per parameter or command (or per
//! device, for a [serial](DeviceBuilder::serial) one), cancel operations
//! (stop the motor), soft limits, fallible I/O, and locks for exclusive
//! access ([`lock!`](crate::lock!), [`lock_timeout`]), owned by tasks, that
//! cover a [`Device`] with all its parameters and commands.
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
// wait graph) <- `ops` (a queue of operations) <- `action` (what acts on
// the hardware: the stop, abort) <- `parameter`, `command` <- `builder`
// and this module (devices).

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Weak};

use crate::error::{DeviceErrorKind, Error};
use crate::future::Future;
use crate::interrupt;

pub(crate) mod action;
mod builder;
mod command;
pub(crate) mod lock;
pub(crate) mod ops;
pub(crate) mod parameter;
mod stash;

use lock::LockNode;
pub use lock::{lock, lock_timeout, LockGuard, LockTarget, Lockable};

use crate::device::action::Actions;
pub use crate::error::DeviceError;
pub use builder::DeviceBuilder;
use command::CommandInner;
pub use command::{Command, CommandBuilder};
use ops::Ops;
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

/// A parameter or command of a device, whatever its types.
trait AnyMember: Send + Sync {
    fn actions(&self) -> &Arc<Actions>;
    /// Its types: a parameter's value type, a command's `fn(A) -> R`.
    fn type_name(&self) -> &'static str;
    /// A parameter that can be read and written: its stash (or restore).
    fn stash(self: Arc<Self>, restore: bool) -> Option<Future<()>>;
}

impl<T: Send + 'static> AnyMember for ParamInner<T> {
    fn actions(&self) -> &Arc<Actions> {
        &self.actions
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn stash(self: Arc<Self>, restore: bool) -> Option<Future<()>> {
        let parameter = Parameter { inner: self };
        match (parameter.is_readable() && parameter.is_writable(), restore) {
            (false, _) => None,
            (true, false) => Some(parameter.stash()),
            (true, true) => Some(parameter.restore()),
        }
    }
}

impl<A: Send + 'static, R: Send + 'static> AnyMember for CommandInner<A, R> {
    fn actions(&self) -> &Arc<Actions> {
        &self.actions
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<fn(A) -> R>()
    }

    fn stash(self: Arc<Self>, _restore: bool) -> Option<Future<()>> {
        None
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Parameter,
    Command,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Parameter => "parameter",
            Role::Command => "command",
        }
    }
}

struct Entry {
    name: String,
    role: Role,
    erased: Arc<dyn AnyMember>,
    typed: Arc<dyn Any + Send + Sync>,
}

impl Entry {
    fn node(&self) -> &Arc<LockNode> {
        &self.erased.actions().node
    }
}

struct DeviceInner {
    node: Arc<LockNode>,
    members: Vec<Entry>,
    /// The one queue of a serial device.
    serial: Option<Arc<Ops>>,
    /// Its Ctrl-C hook (`stop_on_interrupt`), removed with the device.
    on_interrupt: std::sync::OnceLock<interrupt::InterruptHook>,
}

/// A named group of parameters and commands (a motor, a pump, a camera):
/// typed and by-name access, an abort that runs every stop, and a lock
/// that covers all its members. A cheap, cloneable handle.
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

/// A parameter or command of a device found by name (Concert's
/// `pump['flow']`), whatever its types: to lock it alone or abort it.
///
/// # Examples
///
/// ```
/// let pump = concertina::Device::builder("pump")
///     .parameter(concertina::Parameter::<f64>::builder("flow").setter(|_| {}).build()?)
///     .build()?;
/// let flow = pump.member("flow")?;
/// assert_eq!(flow.name(), "pump.flow");
/// let _guard = concertina::lock!(flow)?;
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone)]
pub struct Member {
    member: Arc<dyn AnyMember>,
}

impl Member {
    /// `device.member`.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("d")
    ///     .parameter(concertina::Parameter::<u8>::builder("p").getter(|| 0).build()?)
    ///     .build()?;
    /// assert_eq!(d.member("p")?.name(), "d.p");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn name(&self) -> String {
        self.member.actions().node.full_name()
    }

    /// Runs its stop now: cancels its operations in flight (whose cleanup
    /// the stop is) and, unless one of those cancels ran it, calls it
    /// directly. True when it has a stop (see [`Parameter::abort`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let pump = concertina::Device::builder("pump")
    ///     .parameter(concertina::Parameter::<f64>::builder("flow").setter(|_| {}).on_cancel(|| {}).build()?)
    ///     .build()?;
    /// assert!(pump.member("flow")?.abort());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn abort(&self) -> bool {
        self.member.actions().abort(false)
    }
}

impl Lockable for Member {
    fn lock_target(&self) -> LockTarget {
        LockTarget(self.member.actions().node.clone())
    }
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Member").field(&self.name()).finish()
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
        DeviceBuilder::new(name.into())
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
        self.members(Role::Parameter)
    }

    /// The names of its commands, in the order they were added.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::device::Command;
    ///
    /// let camera = concertina::Device::builder("camera")
    ///     .command(Command::builder("grab").action(|()| 0u16).build()?)
    ///     .build()?;
    /// assert_eq!(camera.commands().collect::<Vec<_>>(), ["grab"]);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn commands(&self) -> impl Iterator<Item = &str> + '_ {
        self.members(Role::Command)
    }

    fn members(&self, role: Role) -> impl Iterator<Item = &str> + '_ {
        self.inner
            .members
            .iter()
            .filter(move |e| e.role == role)
            .map(|e| e.name.as_str())
    }

    fn entry(&self, role: Role, name: &str) -> Result<&Entry, Error> {
        let found = self
            .inner
            .members
            .iter()
            .find(|e| e.role == role && e.name == name);
        found.ok_or_else(|| {
            let (device, name) = (self.name().to_owned(), name.to_owned());
            let known = self.members(role).map(String::from).collect();
            DeviceError::error(match role {
                Role::Parameter => DeviceErrorKind::UnknownParameter {
                    device,
                    name,
                    known,
                },
                Role::Command => DeviceErrorKind::UnknownCommand {
                    device,
                    name,
                    known,
                },
            })
        })
    }

    /// The parameter or command called `name`, whatever its types (for
    /// locking and aborting).
    ///
    /// # Errors
    ///
    /// [`Error::Device`] naming the device, the name and the members it has.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("motor")
    ///     .parameter(concertina::Parameter::<f64>::builder("position").getter(|| 0.0).build()?)
    ///     .build()?;
    /// assert_eq!(d.member("foo").unwrap_err().to_string(), "device `motor` has no parameter or command `foo` (it has: position)");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn member(&self, name: &str) -> Result<Member, Error> {
        match self.inner.members.iter().find(|e| e.name == name) {
            Some(entry) => Ok(Member {
                member: entry.erased.clone(),
            }),
            None => Err(DeviceError::error(DeviceErrorKind::UnknownMember {
                device: self.name().to_owned(),
                name: name.to_owned(),
                known: self.inner.members.iter().map(|e| e.name.clone()).collect(),
            })),
        }
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
        let entry = self.entry(Role::Parameter, name)?;
        match entry.typed.clone().downcast::<ParamInner<T>>() {
            Ok(inner) => Ok(Parameter { inner }),
            Err(_) => Err(DeviceError::error(DeviceErrorKind::WrongType {
                parameter: format!("{}.{}", self.name(), name),
                held: entry.erased.type_name(),
                expected: std::any::type_name::<T>(),
            })),
        }
    }

    /// The command called `name` as a typed handle: its argument and
    /// result types are checked here, once.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when there is no such command (naming those the
    /// device has) or it has other types (naming both signatures).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::device::Command;
    ///
    /// let camera = concertina::Device::builder("camera")
    ///     .command(Command::builder("grab").action(|exposure_ms: u32| exposure_ms as u16).build()?)
    ///     .build()?;
    /// let grab = camera.command::<u32, u16>("grab")?;
    /// assert_eq!(grab.run_sync(5)?, 5);
    /// assert_eq!(
    ///     camera.command::<(), u16>("grab").unwrap_err().to_string(),
    ///     "command `camera.grab` is `fn(u32) -> u16`, not `fn(()) -> u16`",
    /// );
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn command<A: Send + 'static, R: Send + 'static>(
        &self,
        name: &str,
    ) -> Result<Command<A, R>, Error> {
        let entry = self.entry(Role::Command, name)?;
        match entry.typed.clone().downcast::<CommandInner<A, R>>() {
            Ok(inner) => Ok(Command { inner }),
            Err(_) => Err(DeviceError::error(DeviceErrorKind::WrongSignature {
                command: format!("{}.{}", self.name(), name),
                held: entry.erased.type_name(),
                expected: std::any::type_name::<fn(A) -> R>(),
            })),
        }
    }

    /// Runs the command `name` with `args`; a future that has failed when
    /// there is no such command of these types. The types are checked when
    /// this runs, not by the compiler: prefer a typed handle from
    /// [`command`](Device::command).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::device::Command;
    ///
    /// let shutter = concertina::Device::builder("shutter")
    ///     .command(Command::<(), ()>::builder("open").action(|()| {}).build()?)
    ///     .build()?;
    /// shutter.run::<(), ()>("open", ()).result()?;
    /// assert!(shutter.run::<(), ()>("explode", ()).result().is_err());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn run<A: Send + 'static, R: Send + 'static>(&self, name: &str, args: A) -> Future<R> {
        self.command::<A, R>(name)
            .map_or_else(Future::failed, |c| c.run(args))
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

    /// Runs every parameter's and command's stop: cancels its operations in
    /// flight (whose cleanup it is) and, unless one of those cancels ran
    /// it, calls it directly. Returns how many members had one.
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

    /// Makes every Ctrl-C abort this device (Concert's "Ctrl-C stops all
    /// devices"), through an [`on_interrupt`](crate::interrupt::on_interrupt) hook
    /// (which installs the Ctrl-C handler unless the application left SIGINT
    /// alone), once per device: a second call changes nothing. The hook is
    /// removed when the last handle of the device drops. One Ctrl-C stops
    /// each member once: one whose stop already ran since its last
    /// operation began (the interrupted wait cancelled it) is not stopped
    /// again.
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
        self.inner.on_interrupt.get_or_init(|| {
            let device: Weak<DeviceInner> = Arc::downgrade(&self.inner);
            interrupt::on_interrupt(move || {
                if let Some(device) = device.upgrade() {
                    device.abort(true);
                }
            })
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
        self.members
            .iter()
            .filter(|e| e.erased.actions().abort(by_interrupt))
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
            .field("commands", &self.commands().collect::<Vec<_>>())
            .field("serial", &self.inner.serial.is_some())
            .finish()
    }
}
