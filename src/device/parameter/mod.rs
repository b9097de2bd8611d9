//! `Parameter<T>`: a named value of a device, read and written through
//! blocking functions, one operation at a time.

use std::fmt;
use std::sync::Arc;

use crate::device::action::{Actions, Failure};
use crate::device::lock::{self, Hold, LockGuard, LockNode, LockTarget, Lockable, Owner};
use crate::error::{DeviceError, DeviceErrorKind, Error, Source};
use crate::future::Future;
use crate::sync::Mutex;
use crate::trace;

mod after;
mod builder;
mod limits;
mod poll;
mod protect;
mod stash;
pub use builder::ParameterBuilder;

type Getter<T> = Arc<dyn Fn() -> Result<T, Failure> + Send + Sync>;
type Setter<T> = Arc<dyn Fn(T) -> Result<(), Failure> + Send + Sync>;
/// Checks a value against the soft limits; gets the parameter's full name
/// and unit label for the message.
type Check<T> = Arc<dyn Fn(&T, &str, Option<&str>) -> Result<(), Error> + Send + Sync>;

/// A named, typed value of a device, read and written through blocking
/// functions that run on a pool: `get()` and `set(v)` return futures.
///
/// **One operation at a time.** Gets and sets on one parameter run one
/// after the other, in the order they were asked for (a parameter is a
/// small [`Instance`](crate::Instance)); reads may run side by side, and
/// beside a set, only where the parameter opts in with
/// [`ParameterBuilder::concurrent_reads`]. An operation held off by a lock
/// of someone else lets the later ones of the lock's owner go first.
///
/// **Stops.** The cancel operation (a motor's stop) is the cleanup of every
/// set that has begun to apply: cancelling the set's future runs it, and
/// the future reports `Cancelled` once it returned. The next operation
/// starts only after both the stop and the cancelled setter have returned
/// ([`wait`](Parameter::wait) waits for that). A cancelled set never
/// applies its value: it is checked after every wait (queue, lock) and just
/// before the setter is called.
///
/// A set outside the soft limits fails at once, naming the parameter, the
/// value and the limits, and never reaches the setter. `Parameter` is a
/// cheap, cloneable handle.
///
/// # Examples
///
/// ```
/// use concertina::Parameter;
/// use std::sync::{Arc, Mutex};
///
/// let stage = Arc::new(Mutex::new(0.0_f64));
/// let (read, write) = (stage.clone(), stage.clone());
/// let position = Parameter::builder("position")
///     .getter(move || *read.lock().unwrap())
///     .setter(move |mm| *write.lock().unwrap() = mm)
///     .limits(-10.0, 10.0)
///     .unit("mm")
///     .build()?;
/// position.set(2.5);
/// // Runs after the set: one operation at a time, in order.
/// assert_eq!(position.get().result()?, 2.5);
/// assert!(position.set(12.0).result().is_err(), "outside the soft limits");
/// # Ok::<(), concertina::Error>(())
/// ```
pub struct Parameter<T> {
    pub(crate) inner: Arc<ParamInner<T>>,
}

impl<T> Clone for Parameter<T> {
    fn clone(&self) -> Self {
        Parameter {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct ParamInner<T> {
    pub(crate) actions: Arc<Actions>,
    getter: Option<Getter<T>>,
    setter: Option<Setter<T>>,
    limits: Mutex<limits::Limits<T>>,
    unit: Option<String>,
    concurrent_reads: bool,
    /// Write protection (see `Parameter::protect`).
    protection: std::sync::atomic::AtomicU8,
    /// Values stashed (see `Parameter::stash`), the last on top.
    stashed: Mutex<Vec<T>>,
}

fn failed(node: &LockNode, operation: &'static str, source: Failure) -> Error {
    let error = DeviceError::error(DeviceErrorKind::Failed {
        parameter: node.full_name(),
        operation,
        source: Source(source),
    });
    trace::device_failed(|| format!("{} {operation}", node.full_name()), &error);
    error
}

impl<T: Send + 'static> Parameter<T> {
    /// A builder for a parameter called `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("flow").getter(|| 2.0_f64).build()?;
    /// assert_eq!(p.name(), "flow");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn builder(name: impl Into<String>) -> ParameterBuilder<T> {
        ParameterBuilder::new(name.into())
    }

    /// The parameter's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("gain").getter(|| 1u8).build()?;
    /// assert_eq!(p.name(), "gain");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.actions.node.name
    }

    /// The unit label, if one was given.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("gain").getter(|| 1u8).build()?;
    /// assert_eq!(p.unit(), None);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn unit(&self) -> Option<&str> {
        self.inner.unit.as_deref()
    }

    /// True when the parameter has a getter.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(concertina::Parameter::builder("x").getter(|| 0).build()?.is_readable());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn is_readable(&self) -> bool {
        self.inner.getter.is_some()
    }

    /// True when the parameter has a setter.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!concertina::Parameter::builder("x").getter(|| 0).build()?.is_writable());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn is_writable(&self) -> bool {
        self.inner.setter.is_some()
    }

    /// Reads the value on the pool, after the operations asked for before
    /// (unless the parameter has [concurrent reads]).
    ///
    /// [concurrent reads]: ParameterBuilder::concurrent_reads
    ///
    /// # Errors
    ///
    /// The future fails with [`Error::Device`] when the parameter cannot be
    /// read or its [fallible getter](ParameterBuilder::try_getter) failed,
    /// and with the getter's panic as [`Error::Panicked`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("counts").getter(|| 42u32).build()?;
    /// let reading: concertina::Future<u32> = p.get();
    /// assert_eq!(reading.result()?, 42);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn get(&self) -> Future<T> {
        let Some(getter) = self.inner.getter.clone() else {
            return Future::failed(DeviceError::error(DeviceErrorKind::NotReadable {
                parameter: self.inner.actions.node.full_name(),
            }));
        };
        let node = self.inner.actions.node.clone();
        let read = move || {
            let _span = trace::device_op(|| node.full_name(), "get");
            crate::cancel::check_cancelled()?;
            getter().map_err(|e| failed(&node, "read", e))
        };
        // A read the parameter's stop makes is part of the stop (see
        // `Ops::stopping`), whether or not reads run side by side.
        if !self.inner.concurrent_reads || self.inner.actions.ops().stopping_here() {
            return self.inner.actions.submit(read);
        }
        let node = self.inner.actions.node.clone();
        // Issued by a lock's holder, it acts for it (see `lock::acquire`).
        let issuer = Owner::current();
        let task = move || {
            let target = LockTarget(node);
            let _holds = lock::acquire(
                &[&target],
                None,
                &Owner::current(),
                Some(&issuer),
                Hold::Operation,
            )?;
            read()
        };
        match &self.inner.actions.pool {
            Ok(pool) => self.track(pool.spawn_try(task)),
            Err(error) => Future::failed(error.clone()),
        }
    }

    /// Writes the value on the pool, after the operations asked for before;
    /// cancelling the returned future once the setter has begun runs the
    /// cancel operation (a cancelled set still queued never runs).
    ///
    /// # Errors
    ///
    /// The future fails at once with [`Error::Device`] when the parameter
    /// cannot be written or `value` is outside the soft limits (the setter is
    /// never called); later with [`Error::Device`] when the
    /// [fallible setter](ParameterBuilder::try_setter) failed, and with the
    /// setter's panic as [`Error::Panicked`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("exposure").setter(|_ms: u32| {}).build()?;
    /// p.set(100).result()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn set(&self, value: T) -> Future<()> {
        if let Err(error) = self.check_set(&value) {
            return Future::failed(error);
        }
        self.write(move || Ok(value))
    }

    /// Writes the value `value` gives once the set's turn has come and it
    /// was not cancelled: the one path of every write (a set, a restore).
    fn write(&self, value: impl FnOnce() -> Result<T, Error> + Send + 'static) -> Future<()> {
        let setter = self.inner.setter.clone().expect("checked writable");
        let node = self.inner.actions.node.clone();
        self.inner.actions.act("set", move || {
            setter(value()?).map_err(|e| failed(&node, "write", e))
        })
    }

    /// Reads the value and waits for it: `get().result()`.
    ///
    /// # Errors
    ///
    /// As [`Parameter::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("counts").getter(|| 5u8).build()?;
    /// assert_eq!(p.get_sync()?, 5);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn get_sync(&self) -> Result<T, Error> {
        self.get().result()
    }

    /// Writes the value and waits until it is written: `set(v).result()`.
    ///
    /// # Errors
    ///
    /// As [`Parameter::set`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: u8| {}).build()?;
    /// p.set_sync(3)?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn set_sync(&self, value: T) -> Result<(), Error> {
        self.set(value).result()
    }

    /// Waits until every operation asked for before has finished — a
    /// cancelled one included: its setter and its stop have both returned.
    /// Reads of a parameter with concurrent reads are not waited for.
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`] on Ctrl-C, [`Error::Shutdown`] when the
    /// parameter's pool is shut down; the operations' own failures are
    /// reported at their own futures.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Error, Parameter, Pool};
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let motor = Parameter::builder("position")
    ///     .setter(|_mm: f64| while !concertina::cancelled() { std::thread::yield_now() })
    ///     .on_cancel(|| { /* decelerate */ })
    ///     .pool(&pool)
    ///     .build()?;
    /// let mv = motor.set(10.0);
    /// while !mv.running() { std::thread::yield_now() }
    /// mv.cancel();
    /// assert_eq!(mv.result(), Err(Error::Cancelled));
    /// motor.wait()?; // the setter has returned, the stop too
    /// assert!(!motor.is_busy());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.inner.actions.ops().wait()
    }

    /// True while an operation is queued or running (or a cancelled one's
    /// stop is still running).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: u8| {}).build()?;
    /// p.set_sync(1)?;
    /// p.wait()?;
    /// assert!(!p.is_busy());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn is_busy(&self) -> bool {
        self.inner.actions.ops().is_busy()
    }

    /// Locks this parameter alone; see [`lock`](crate::device::lock()).
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`] on Ctrl-C while waiting; [`Error::Deadlock`]
    /// when waiting would close a cycle.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: u8| {}).build()?;
    /// let _guard = p.lock()?;
    /// p.set_sync(1)?; // what the holder waits on uses its lock
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockGuard, Error> {
        lock::lock(&[self])
    }

    /// Runs the cancel operation now: cancels the operations in flight
    /// (whose cleanup it is) and, unless one of those cancels ran it,
    /// calls it directly. True when there was a cancel operation to run.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let stopped = Arc::new(AtomicBool::new(false));
    /// let flag = stopped.clone();
    /// let p = concertina::Parameter::builder("x").setter(|_: f64| {}).on_cancel(move || flag.store(true, Ordering::SeqCst)).build()?;
    /// assert!(p.abort());
    /// assert!(stopped.load(Ordering::SeqCst));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn abort(&self) -> bool {
        self.inner.actions.abort(false)
    }

    fn check_set(&self, value: &T) -> Result<(), Error> {
        if self.inner.setter.is_none() {
            return Err(DeviceError::error(DeviceErrorKind::NotWritable {
                parameter: self.inner.actions.node.full_name(),
            }));
        }
        self.check_protection()?;
        self.check_limits(value)
    }

    fn track<R: Send + 'static>(&self, future: Future<R>) -> Future<R> {
        self.inner.actions.track(future)
    }
}

impl<T: Send + 'static> Lockable for Parameter<T> {
    fn lock_target(&self) -> LockTarget {
        LockTarget(self.inner.actions.node.clone())
    }
}

impl<T> fmt::Debug for Parameter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parameter")
            .field("name", &self.inner.actions.node.full_name())
            .field("readable", &self.inner.getter.is_some())
            .field("writable", &self.inner.setter.is_some())
            .field("unit", &self.inner.unit)
            .field("limits", &*self.inner.limits.lock())
            .finish()
    }
}
