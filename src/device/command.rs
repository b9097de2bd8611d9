//! `Command<A, R>`: a named action of a device (a camera's `grab`, a
//! shutter's `open`), run through a blocking function, one at a time.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::device::action::{Actions, Failure, Stop};
use crate::device::lock::{self, LockGuard, LockTarget, Lockable};
use crate::error::{DeviceError, DeviceErrorKind, Error, Source};
use crate::future::Future;
use crate::pool::Pool;

type Action<A, R> = Arc<dyn Fn(A) -> Result<R, Failure> + Send + Sync>;

/// A named action of a device — a camera's `grab()`, a detector's
/// `trigger()`, a shutter's `open()` — taking arguments `A` (a tuple for
/// several, `()` for none) and returning `R`, through a blocking function
/// that runs on a pool: [`run`](Command::run) returns a future.
///
/// A command obeys the rules of a parameter's set: **one at a time**, in
/// the order they were asked for (on a [serial](crate::device::DeviceBuilder::serial)
/// device, one operation of the whole device at a time); held off by
/// another owner's [lock](crate::lock!) on it or its device, run at once
/// for the lock's holder; **a cancelled command never begins** (it is
/// checked after every wait and just before the action is called); a
/// cancel once it has begun runs its **stop** ([`CommandBuilder::on_cancel`])
/// and the next operation waits for that stop; [`Device::abort`](crate::Device::abort)
/// and Ctrl-C ([`Device::stop_on_interrupt`](crate::Device::stop_on_interrupt))
/// stop it. A fallible action ([`CommandBuilder::try_action`]) fails its
/// future with [`Error::Device`]. `Command` is a cheap, cloneable handle.
///
/// # Examples
///
/// ```
/// use concertina::device::Command;
/// use concertina::Device;
///
/// // A camera's grab: an exposure time in, a frame out.
/// let grab = Command::builder("grab")
///     .action(|exposure_ms: u32| vec![exposure_ms as u16; 4])
///     .build()?;
/// let camera = Device::builder("camera").command(grab).build()?;
/// let grab = camera.command::<u32, Vec<u16>>("grab")?;
/// let frame: concertina::Future<Vec<u16>> = grab.run(10);
/// assert_eq!(frame.result()?, [10, 10, 10, 10]);
/// # Ok::<(), concertina::Error>(())
/// ```
pub struct Command<A, R> {
    pub(crate) inner: Arc<CommandInner<A, R>>,
}

impl<A, R> Clone for Command<A, R> {
    fn clone(&self) -> Self {
        Command {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct CommandInner<A, R> {
    pub(crate) actions: Arc<Actions>,
    action: Action<A, R>,
}

/// Configures a [`Command`]: its action, its stop and its pool.
///
/// # Examples
///
/// ```
/// let open = concertina::device::Command::<(), ()>::builder("open")
///     .action(|()| { /* energise the solenoid */ })
///     .build()?;
/// open.run(()).result()?;
/// # Ok::<(), concertina::Error>(())
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct CommandBuilder<A, R> {
    name: String,
    action: Option<Action<A, R>>,
    stop: Option<Stop>,
    pool: Option<Pool>,
    types: PhantomData<fn(A) -> R>,
}

impl<A, R> fmt::Debug for CommandBuilder<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommandBuilder")
            .field("name", &self.name)
            .field("action", &self.action.is_some())
            .field("stop", &self.stop.is_some())
            .field("pool", &self.pool.as_ref().map(Pool::name))
            .finish()
    }
}

impl<A: Send + 'static, R: Send + 'static> CommandBuilder<A, R> {
    /// The blocking function the command runs.
    ///
    /// # Examples
    ///
    /// ```
    /// let trigger = concertina::device::Command::builder("trigger")
    ///     .action(|pulses: u32| pulses * 2)
    ///     .build()?;
    /// assert_eq!(trigger.run_sync(3)?, 6);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn action(mut self, action: impl Fn(A) -> R + Send + Sync + 'static) -> Self {
        self.action = Some(Arc::new(move |args| Ok(action(args))));
        self
    }

    /// A blocking function that can fail (the controller did not answer):
    /// its error fails the command's future with [`Error::Device`]
    /// ([`DeviceErrorKind::CommandFailed`]), its text kept and the error
    /// reachable through [`DeviceError::downcast_ref`].
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::error::DeviceErrorKind;
    /// use concertina::Error;
    ///
    /// let home = concertina::device::Command::<(), ()>::builder("home")
    ///     .try_action(|()| Err(std::io::Error::other("limit switch not found")))
    ///     .build()?;
    /// let Err(Error::Device(e)) = home.run(()).result() else { panic!("it failed") };
    /// assert!(matches!(e.kind(), DeviceErrorKind::CommandFailed { .. }));
    /// assert_eq!(e.to_string(), "command `home` failed: limit switch not found");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_action<E>(
        mut self,
        action: impl Fn(A) -> Result<R, E> + Send + Sync + 'static,
    ) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.action = Some(Arc::new(move |args| {
            action(args).map_err(|e| Arc::new(e) as Failure)
        }));
        self
    }

    /// The stop: what cancels a command that has begun (close the shutter,
    /// abort the acquisition). Cancelling a running command's future runs
    /// it, and the future reports `Cancelled` once it returned; a command
    /// still queued is just dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Error, Pool};
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let acquire = concertina::device::Command::<(), ()>::builder("acquire")
    ///     .action(|()| while !concertina::cancelled() { std::thread::yield_now() })
    ///     .on_cancel(|| { /* tell the camera to stop */ })
    ///     .pool(&pool)
    ///     .build()?;
    /// let running = acquire.run(());
    /// while !running.running() { std::thread::yield_now() }
    /// running.cancel();
    /// assert_eq!(running.result(), Err(Error::Cancelled));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn on_cancel(mut self, stop: impl Fn() + Send + Sync + 'static) -> Self {
        self.stop = Some(Arc::new(stop));
        self
    }

    /// The pool the command runs on (the default pool otherwise).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(1).build()?;
    /// let grab = concertina::device::Command::builder("grab").action(|()| 1u8).pool(&pool).build()?;
    /// assert_eq!(grab.run_sync(())?, 1);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn pool(mut self, pool: &Pool) -> Self {
        self.pool = Some(pool.clone());
        self
    }

    /// Builds the command.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when the name is not an identifier (a letter or
    /// `_`, then letters, digits, `_` or `-`) or there is no action.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = concertina::device::Command::<(), ()>::builder("grab").build().unwrap_err();
    /// assert_eq!(err.to_string(), "command `grab` has no action: give it one with action() or try_action()");
    /// ```
    pub fn build(self) -> Result<Command<A, R>, Error> {
        crate::device::check_name("command", &self.name)?;
        let Some(action) = self.action else {
            return Err(DeviceError::error(DeviceErrorKind::NoAction {
                command: self.name,
            }));
        };
        Ok(Command {
            inner: Arc::new(CommandInner {
                actions: Actions::new("command", &self.name, self.pool, self.stop),
                action,
            }),
        })
    }
}

impl<A: Send + 'static, R: Send + 'static> Command<A, R> {
    /// A builder for a command called `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let close = concertina::device::Command::<(), ()>::builder("close").action(|()| {}).build()?;
    /// assert_eq!(close.name(), "close");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn builder(name: impl Into<String>) -> CommandBuilder<A, R> {
        CommandBuilder {
            name: name.into(),
            action: None,
            stop: None,
            pool: None,
            types: PhantomData,
        }
    }

    /// Its name (errors and traces say `device.command` once it belongs
    /// to a device).
    ///
    /// # Examples
    ///
    /// ```
    /// let grab = concertina::device::Command::builder("grab").action(|()| 0u8).build()?;
    /// let camera = concertina::Device::builder("camera").command(grab.clone()).build()?;
    /// assert_eq!(grab.name(), "grab");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.actions.node.name
    }

    /// Runs the command with `args` on its pool, after the operations asked
    /// for before; cancelling the returned future once it has begun runs
    /// the stop (a cancelled command still queued never runs).
    ///
    /// # Errors
    ///
    /// The future fails with [`Error::Device`] when a
    /// [fallible action](CommandBuilder::try_action) failed, with the
    /// action's panic as [`Error::Panicked`], and with
    /// [`Error::Cancelled`] when it was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let grab = concertina::device::Command::builder("grab").action(|n: usize| vec![0u8; n]).build()?;
    /// let (a, b) = (grab.run(2), grab.run(3)); // one after the other, in order
    /// assert_eq!((a.result()?.len(), b.result()?.len()), (2, 3));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn run(&self, args: A) -> Future<R> {
        let action = self.inner.action.clone();
        let actions = self.inner.actions.clone();
        self.inner.actions.act("run", move || {
            action(args).map_err(|source| {
                let error = DeviceError::error(DeviceErrorKind::CommandFailed {
                    command: actions.node.full_name(),
                    source: Source(source),
                });
                crate::trace::device_failed(|| format!("{} run", actions.node.full_name()), &error);
                error
            })
        })
    }

    /// Runs the command and waits for it: `run(args).result()`.
    ///
    /// # Errors
    ///
    /// As [`Command::run`].
    ///
    /// # Examples
    ///
    /// ```
    /// let count = concertina::device::Command::builder("count").action(|()| 7u32).build()?;
    /// assert_eq!(count.run_sync(())?, 7);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn run_sync(&self, args: A) -> Result<R, Error> {
        self.run(args).result()
    }

    /// Waits until every run asked for before has finished — a cancelled
    /// one included: its action and its stop have both returned. On a
    /// serial device, every operation of the device asked for before.
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`] on Ctrl-C, [`Error::Shutdown`] when the
    /// command's pool is shut down; the runs' own failures are reported at
    /// their own futures.
    ///
    /// # Examples
    ///
    /// ```
    /// let flash = concertina::device::Command::<(), ()>::builder("flash").action(|()| {}).build()?;
    /// flash.run(());
    /// flash.wait()?;
    /// assert!(!flash.is_busy());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.inner.actions.ops().wait()
    }

    /// True while a run is queued or running (or a cancelled one's stop is
    /// still running); on a serial device, any operation of the device.
    ///
    /// # Examples
    ///
    /// ```
    /// let flash = concertina::device::Command::<(), ()>::builder("flash").action(|()| {}).build()?;
    /// assert!(!flash.is_busy());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn is_busy(&self) -> bool {
        self.inner.actions.ops().is_busy()
    }

    /// Locks this command alone; see [`lock`](crate::device::lock()).
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`] on Ctrl-C while waiting; [`Error::Deadlock`]
    /// when waiting would close a cycle.
    ///
    /// # Examples
    ///
    /// ```
    /// let grab = concertina::device::Command::builder("grab").action(|()| 1u8).build()?;
    /// let _guard = grab.lock()?;
    /// assert_eq!(grab.run_sync(())?, 1); // the holder's run goes at once
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockGuard, Error> {
        lock::lock(&[self])
    }

    /// Runs the stop now: cancels the runs in flight (whose cleanup it is)
    /// and, unless one of those cancels ran it, calls it directly. True
    /// when there was a stop to run.
    ///
    /// # Examples
    ///
    /// ```
    /// let acquire = concertina::device::Command::<(), ()>::builder("acquire")
    ///     .action(|()| {})
    ///     .on_cancel(|| {})
    ///     .build()?;
    /// assert!(acquire.abort());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn abort(&self) -> bool {
        self.inner.actions.abort(false)
    }
}

impl<A: Send + 'static, R: Send + 'static> Lockable for Command<A, R> {
    fn lock_target(&self) -> LockTarget {
        LockTarget(self.inner.actions.node.clone())
    }
}

impl<A, R> fmt::Debug for Command<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("name", &self.inner.actions.node.full_name())
            .field("takes", &std::any::type_name::<A>())
            .field("returns", &std::any::type_name::<R>())
            .field("stop", &self.inner.actions.has_stop())
            .finish()
    }
}
