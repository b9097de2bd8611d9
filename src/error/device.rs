//! Why a device, parameter or command operation was refused or failed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Error;

/// Why a device or parameter operation was refused.
///
/// # Examples
///
/// ```
/// use concertina::{Error, Parameter};
///
/// let gap = Parameter::<f64>::builder("gap").setter(|_| {}).limits(0.0, 5.0).unit("mm").build()?;
/// let err = gap.set(7.5).result().unwrap_err();
/// assert_eq!(err.to_string(), "parameter `gap`: 7.5 mm is outside its soft limits [0.0 mm, 5.0 mm]");
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceError {
    // Boxed, as `ConfigError`: a small `Error` keeps every outcome slot small.
    kind: Box<DeviceErrorKind>,
}

/// What a [`DeviceError`] is about, to branch on without reading its text
/// ([`DeviceError::kind`]). Names are full (`device.parameter`); values
/// and limits are their `Debug` text, with the unit.
///
/// # Examples
///
/// ```
/// use concertina::error::DeviceErrorKind;
/// use concertina::{Error, Parameter};
///
/// let gap = Parameter::<f64>::builder("gap").setter(|_| {}).limits(0.0, 5.0).build()?;
/// let Err(Error::Device(refused)) = gap.set(7.5).result() else { panic!("refused") };
/// match refused.kind() {
///     DeviceErrorKind::SoftLimit { value, upper, .. } => assert_eq!((value.as_str(), upper.as_str()), ("7.5", "5.0")),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum DeviceErrorKind {
    /// A device, parameter or command name that is not accepted.
    #[non_exhaustive]
    InvalidName {
        /// `"device"`, `"parameter"` or `"command"`.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// A read of a parameter that has no getter.
    #[non_exhaustive]
    NotReadable {
        /// The parameter.
        parameter: String,
    },
    /// A write of a parameter that has no setter.
    #[non_exhaustive]
    NotWritable {
        /// The parameter.
        parameter: String,
    },
    /// A parameter built with neither a getter nor a setter.
    #[non_exhaustive]
    NoAccess {
        /// The parameter.
        parameter: String,
    },
    /// A value outside the soft limits: never sent to the setter.
    #[non_exhaustive]
    SoftLimit {
        /// The parameter.
        parameter: String,
        /// The value refused.
        value: String,
        /// The lower limit.
        lower: String,
        /// The upper limit.
        upper: String,
    },
    /// Limits whose lower one is above the upper one.
    #[non_exhaustive]
    BadLimits {
        /// The parameter.
        parameter: String,
        /// The lower limit given.
        lower: String,
        /// The upper limit given.
        upper: String,
    },
    /// A device has no parameter of that name.
    #[non_exhaustive]
    UnknownParameter {
        /// The device.
        device: String,
        /// The name asked for.
        name: String,
        /// The names it has.
        known: Vec<String>,
    },
    /// A parameter asked for with another type than it holds.
    #[non_exhaustive]
    WrongType {
        /// The parameter.
        parameter: String,
        /// The type it holds.
        held: &'static str,
        /// The type asked for.
        expected: &'static str,
    },
    /// Limits that cannot be compared (a NaN).
    #[non_exhaustive]
    UnorderedLimits {
        /// The parameter.
        parameter: String,
        /// The lower limit given.
        lower: String,
        /// The upper limit given.
        upper: String,
    },
    /// A fallible getter or setter failed: its error is the source.
    #[non_exhaustive]
    Failed {
        /// The parameter.
        parameter: String,
        /// `"read"` or `"write"`.
        operation: &'static str,
        /// The error it returned.
        source: Source,
    },
    /// Two members (parameters, commands) of one name in a device.
    #[non_exhaustive]
    Duplicate {
        /// The device.
        device: String,
        /// The name given twice.
        name: String,
        /// What they are: `"parameters"`, `"commands"` or `"a parameter
        /// and a command"`.
        what: &'static str,
    },
    /// A parameter or command given to a second device.
    #[non_exhaustive]
    AlreadyOwned {
        /// `"parameter"` or `"command"`.
        what: &'static str,
        /// Its name.
        name: String,
        /// The device it belongs to.
        owner: String,
    },
    /// A member given to a [serial](crate::device::DeviceBuilder::serial)
    /// device after it ran operations of its own.
    #[non_exhaustive]
    AlreadyInUse {
        /// `"parameter"` or `"command"`.
        what: &'static str,
        /// Its name.
        name: String,
        /// The device.
        device: String,
    },
    /// A device has no parameter nor command of that name.
    #[non_exhaustive]
    UnknownMember {
        /// The device.
        device: String,
        /// The name asked for.
        name: String,
        /// The names it has.
        known: Vec<String>,
    },
    /// A device has no command of that name.
    #[non_exhaustive]
    UnknownCommand {
        /// The device.
        device: String,
        /// The name asked for.
        name: String,
        /// The commands it has.
        known: Vec<String>,
    },
    /// A command asked for with other argument or result types than its own.
    #[non_exhaustive]
    WrongSignature {
        /// The command.
        command: String,
        /// Its signature, as `fn(A) -> R`.
        held: &'static str,
        /// The signature asked for.
        expected: &'static str,
    },
    /// A command built without an action.
    #[non_exhaustive]
    NoAction {
        /// The command.
        command: String,
    },
    /// A fallible command's action failed: its error is the source.
    #[non_exhaustive]
    CommandFailed {
        /// The command.
        command: String,
        /// The error it returned.
        source: Source,
    },
    /// A lock not taken within its timeout.
    #[non_exhaustive]
    LockTimeout {
        /// What was to be locked.
        names: Vec<String>,
        /// How long it waited.
        timeout: Duration,
    },
    /// A set of a write-protected parameter ([`Parameter::protect`](crate::Parameter::protect)).
    #[non_exhaustive]
    WriteProtected {
        /// The parameter.
        parameter: String,
        /// Protected for good: it cannot be lifted.
        permanently: bool,
    },
    /// A restore with nothing stashed.
    #[non_exhaustive]
    NothingStashed {
        /// The parameter.
        parameter: String,
    },
    /// A change of protected limits.
    #[non_exhaustive]
    LimitsProtected {
        /// The parameter.
        parameter: String,
    },
}

/// The error a fallible getter, setter or command returned
/// ([`DeviceErrorKind::Failed`], [`DeviceErrorKind::CommandFailed`]), shared and compared by identity. Its
/// text is the error's; [`DeviceError::downcast_ref`] gives it as its own
/// type, and [`std::error::Error::source`] as a trait object.
///
/// # Examples
///
/// ```
/// use concertina::error::DeviceErrorKind;
/// use concertina::{Error, Parameter};
///
/// let p = Parameter::<u8>::builder("p").try_getter(|| "12x".parse::<u8>()).build()?;
/// let Err(Error::Device(e)) = p.get().result() else { panic!("it failed") };
/// let DeviceErrorKind::Failed { source, .. } = e.kind() else { panic!("{e}") };
/// assert_eq!(source.to_string(), "invalid digit found in string");
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone)]
pub struct Source(pub(crate) Arc<dyn std::error::Error + Send + Sync + 'static>);

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl PartialEq for Source {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Source {}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl DeviceError {
    pub(crate) fn error(kind: DeviceErrorKind) -> Error {
        Error::Device(DeviceError {
            kind: Box::new(kind),
        })
    }

    /// What the error is about, to branch on.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::error::DeviceErrorKind;
    /// use concertina::{Error, Parameter};
    ///
    /// let counts = Parameter::builder("counts").getter(|| 1u32).build()?;
    /// let Err(Error::Device(e)) = counts.set(2).result() else { panic!("read-only") };
    /// assert!(matches!(e.kind(), DeviceErrorKind::NotWritable { parameter, .. } if parameter == "counts"));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn kind(&self) -> &DeviceErrorKind {
        &self.kind
    }

    /// The error returned by a fallible getter or setter
    /// ([`try_getter`](crate::device::ParameterBuilder::try_getter),
    /// [`try_setter`](crate::device::ParameterBuilder::try_setter)) as its own type,
    /// when that is `E`. [`std::error::Error::source`] gives it too, on this
    /// error and on the [`Error`] that carries it.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Parameter};
    ///
    /// #[derive(Debug)]
    /// struct Timeout;
    /// impl std::fmt::Display for Timeout {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("no answer from the controller") }
    /// }
    /// impl std::error::Error for Timeout {}
    ///
    /// let counts = Parameter::<u32>::builder("counts").try_getter(|| Err(Timeout)).build()?;
    /// let Err(Error::Device(err)) = counts.get().result() else { panic!("expected a device error") };
    /// assert!(err.downcast_ref::<Timeout>().is_some());
    /// assert_eq!(err.to_string(), "parameter `counts`: read failed: no answer from the controller");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match &*self.kind {
            DeviceErrorKind::Failed { source, .. }
            | DeviceErrorKind::CommandFailed { source, .. } => source.0.downcast_ref::<E>(),
            _ => None,
        }
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DeviceErrorKind::*;
        match &*self.kind {
            InvalidName { what, name } => write!(
                f,
                "{what} name {name:?} is not accepted: expected a letter or `_`, then letters, digits, `_` or `-`"
            ),
            NotReadable { parameter } => write!(f, "parameter `{parameter}` cannot be read"),
            NotWritable { parameter } => write!(f, "parameter `{parameter}` cannot be written"),
            NoAccess { parameter } => {
                write!(f, "parameter `{parameter}` has neither a getter nor a setter: give it at least one")
            }
            SoftLimit { parameter, value, lower, upper } => {
                write!(f, "parameter `{parameter}`: {value} is outside its soft limits [{lower}, {upper}]")
            }
            BadLimits { parameter, lower, upper } => {
                write!(f, "parameter `{parameter}`: lower limit {lower} is above upper limit {upper}")
            }
            UnknownParameter { device, name, known } => {
                write!(f, "device `{device}` has no parameter `{name}` (it has: {})", known.join(", "))
            }
            WrongType { parameter, held, expected } => {
                write!(f, "parameter `{parameter}` holds {held}, not {expected}")?;
                if *expected == "()" {
                    // What an unannotated `device.get("x")` infers.
                    write!(f, ": name the type, as in `device.parameter::<{held}>(..)`")?;
                }
                Ok(())
            }
            UnorderedLimits { parameter, lower, upper } => write!(
                f,
                "parameter `{parameter}`: limits {lower} and {upper} cannot be compared (is one NaN?): expected lower <= upper"
            ),
            Failed { parameter, operation, source } => {
                write!(f, "parameter `{parameter}`: {operation} failed: {}", source.0)
            }
            Duplicate { device, name, what } => write!(f, "device `{device}` has {} named `{name}`", match *what {
                "parameters" | "commands" => format!("two {what}"),
                other => other.to_owned(),
            }),
            AlreadyOwned { what, name, owner } => {
                write!(f, "{what} `{name}` already belongs to device `{owner}`")
            }
            AlreadyInUse { what, name, device } => write!(
                f,
                "{what} `{name}` ran operations before it was given to the serial device `{device}`: give it to the device first"
            ),
            UnknownMember { device, name, known } => write!(
                f,
                "device `{device}` has no parameter or command `{name}` (it has: {})",
                known.join(", ")
            ),
            UnknownCommand { device, name, known } => {
                write!(f, "device `{device}` has no command `{name}` (it has: {})", known.join(", "))
            }
            WrongSignature { command, held, expected } => {
                write!(f, "command `{command}` is `{held}`, not `{expected}`")
            }
            NoAction { command } => {
                write!(f, "command `{command}` has no action: give it one with action() or try_action()")
            }
            CommandFailed { command, source } => write!(f, "command `{command}` failed: {}", source.0),
            LockTimeout { names, timeout } => write!(
                f,
                "could not lock {} within {timeout:?}: held by another task or thread",
                names.join(", ")
            ),
            WriteProtected { parameter, permanently: false } => write!(
                f,
                "parameter `{parameter}` is write-protected: unprotect() it to set it"
            ),
            WriteProtected { parameter, permanently: true } => {
                write!(f, "parameter `{parameter}` is write-protected for good")
            }
            LimitsProtected { parameter } => write!(
                f,
                "parameter `{parameter}`: its limits are protected: unprotect_limits() to change them"
            ),
            NothingStashed { parameter } => {
                write!(f, "parameter `{parameter}` has nothing stashed to restore: stash() first")
            }
        }
    }
}

impl fmt::Debug for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.kind, f)
    }
}

impl std::error::Error for DeviceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            DeviceErrorKind::Failed { source, .. }
            | DeviceErrorKind::CommandFailed { source, .. } => Some(&*source.0),
            _ => None,
        }
    }
}
