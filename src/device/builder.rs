//! Configuring a [`Device`]: its parameters and commands, and whether it
//! runs one operation of all of them at a time.

use std::fmt;
use std::sync::Arc;

use super::{check_name, Command, Device, DeviceInner, Entry, LockNode, Parameter, Role};
use crate::device::ops::Ops;
use crate::error::{DeviceError, DeviceErrorKind, Error};

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
    members: Vec<Entry>,
    serial: bool,
}

impl fmt::Debug for DeviceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |role| {
            self.members
                .iter()
                .filter(|e| e.role == role)
                .map(|e| &e.name)
                .collect::<Vec<_>>()
        };
        f.debug_struct("DeviceBuilder")
            .field("name", &self.name)
            .field("parameters", &names(Role::Parameter))
            .field("commands", &names(Role::Command))
            .field("serial", &self.serial)
            .finish()
    }
}

impl DeviceBuilder {
    pub(super) fn new(name: String) -> DeviceBuilder {
        DeviceBuilder {
            name,
            members: Vec::new(),
            serial: false,
        }
    }

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
        self.members.push(Entry {
            name: parameter.name().to_owned(),
            role: Role::Parameter,
            erased: parameter.inner.clone(),
            typed: parameter.inner,
        });
        self
    }

    /// Adds a command. A command belongs to one device at most; its name is
    /// not one of a parameter of the device.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::device::Command;
    ///
    /// let shutter = concertina::Device::builder("shutter")
    ///     .command(Command::<(), ()>::builder("open").action(|()| {}).build()?)
    ///     .command(Command::<(), ()>::builder("close").action(|()| {}).build()?)
    ///     .build()?;
    /// assert_eq!(shutter.commands().collect::<Vec<_>>(), ["open", "close"]);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn command<A: Send + 'static, R: Send + 'static>(mut self, command: Command<A, R>) -> Self {
        self.members.push(Entry {
            name: command.name().to_owned(),
            role: Role::Command,
            erased: command.inner.clone(),
            typed: command.inner,
        });
        self
    }

    /// One operation of the whole device at a time: its parameters' gets
    /// and sets and its commands run one after the other, in the order they
    /// were asked for, as for a controller that takes one request at a time
    /// (a serial line). Without it, each parameter and command has a queue
    /// of its own and they run side by side. Reads of a parameter with
    /// [concurrent reads](crate::device::ParameterBuilder::concurrent_reads) still run
    /// beside the rest.
    ///
    /// Members join the device's queue when it is built: give them to it
    /// before their first operation. The queue runs on the pool of the
    /// first member (the default pool unless it was given one).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::device::Command;
    /// use concertina::{Device, Parameter};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let (a, b) = (log.clone(), log.clone());
    /// let controller = Device::builder("controller")
    ///     .parameter(Parameter::<u32>::builder("gain").setter(move |g| a.lock().unwrap().push(format!("gain {g}"))).build()?)
    ///     .command(Command::<(), ()>::builder("home").action(move |()| b.lock().unwrap().push("home".into())).build()?)
    ///     .serial()
    ///     .build()?;
    /// let home = controller.run::<(), ()>("home", ());
    /// let gain = controller.set("gain", 4u32);
    /// home.result()?;
    /// gain.result()?;
    /// assert_eq!(*log.lock().unwrap(), ["home", "gain 4"]);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn serial(mut self) -> Self {
        self.serial = true;
        self
    }

    /// Builds the device.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when the name is not an identifier, two members
    /// (parameters, commands) share a name, a member already belongs to
    /// another device, or, for a [serial](DeviceBuilder::serial) device, a
    /// member has run operations already.
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
        for (i, entry) in self.members.iter().enumerate() {
            if let Some(first) = self.members[..i].iter().find(|e| e.name == entry.name) {
                return Err(DeviceError::error(DeviceErrorKind::Duplicate {
                    device: self.name.clone(),
                    name: entry.name.clone(),
                    what: match (first.role, entry.role) {
                        (Role::Parameter, Role::Parameter) => "parameters",
                        (Role::Command, Role::Command) => "commands",
                        _ => "a parameter and a command",
                    },
                }));
            }
            if let Some((_, owner)) = entry.node().device.get() {
                return Err(DeviceError::error(DeviceErrorKind::AlreadyOwned {
                    what: entry.role.word(),
                    name: entry.name.clone(),
                    owner: owner.clone(),
                }));
            }
        }
        let node = LockNode::new(&self.name);
        if self.serial {
            if let Some(used) = self.members.iter().find(|e| e.erased.actions().has_queue()) {
                return Err(DeviceError::error(DeviceErrorKind::AlreadyInUse {
                    what: used.role.word(),
                    name: used.name.clone(),
                    device: self.name.clone(),
                }));
            }
        }
        let serial = match self.serial {
            true => {
                let pool = self.members.first().map_or_else(
                    || crate::global::default_pool().cloned(),
                    |e| e.erased.actions().pool.clone(),
                );
                let queue = Ops::operations(pool, node.clone(), "device");
                for entry in &self.members {
                    if !entry.erased.actions().join(&queue) {
                        return Err(DeviceError::error(DeviceErrorKind::AlreadyInUse {
                            what: entry.role.word(),
                            name: entry.name.clone(),
                            device: self.name.clone(),
                        }));
                    }
                }
                Some(queue)
            }
            false => None,
        };
        for entry in &self.members {
            let _ = entry.node().device.set((node.clone(), self.name.clone()));
        }
        Ok(Device {
            inner: Arc::new(DeviceInner {
                node,
                members: self.members,
                serial,
                on_interrupt: std::sync::OnceLock::new(),
            }),
        })
    }
}
