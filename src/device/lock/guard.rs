//! The public face of the locks: [`lock`], [`lock_timeout`], the guard
//! they return and what can be locked.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::{acquire, Hold, Holds, LockNode, Owner};
use crate::error::Error;

/// Exclusive access to the objects passed to [`lock`](crate::device::lock()) (or
/// [`lock!`](crate::lock!), [`lock_timeout`]), until dropped. Not `Send`:
/// it is released by the task (or thread) that took it.
///
/// # Examples
///
/// ```
/// use concertina::{Device, Parameter};
///
/// let flow = Parameter::<f64>::builder("flow").setter(|_| {}).build()?;
/// let pump = Device::builder("pump").parameter(flow).build()?;
/// {
///     let _guard = pump.lock()?;
///     // nobody else can lock the pump, or its `flow`, until here
/// }
/// # Ok::<(), concertina::Error>(())
/// ```
#[must_use = "the objects are unlocked as soon as the guard is dropped"]
pub struct LockGuard {
    holds: Holds,
    _not_send: PhantomData<std::rc::Rc<()>>,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .holds
            .nodes
            .iter()
            .map(|(n, _)| n.full_name())
            .collect();
        f.debug_struct("LockGuard").field("locked", &names).finish()
    }
}

/// What can be locked: a [`Device`](crate::Device), a
/// [`Parameter`](crate::Parameter), a [`Member`](crate::device::Member).
///
/// # Examples
///
/// ```
/// use concertina::device::{Lockable, Parameter};
///
/// let valve = Parameter::<bool>::builder("valve").setter(|_| {}).build()?;
/// let objects: [&dyn Lockable; 1] = [&valve];
/// let _guard = concertina::device::lock(&objects)?;
/// # Ok::<(), concertina::Error>(())
/// ```
pub trait Lockable {
    /// The object to lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::device::{Device, Lockable};
    ///
    /// let motor = Device::builder("motor").build()?;
    /// assert_eq!(format!("{:?}", motor.lock_target()), "LockTarget(\"motor\")");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    fn lock_target(&self) -> LockTarget;
}

/// An opaque handle on a lockable object, given by [`Lockable::lock_target`].
///
/// # Examples
///
/// ```
/// use concertina::device::{Lockable, Parameter};
///
/// let p = Parameter::<u8>::builder("p").getter(|| 1).build()?;
/// let target = p.lock_target();
/// assert_eq!(format!("{target:?}"), "LockTarget(\"p\")");
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone)]
pub struct LockTarget(pub(crate) Arc<LockNode>);

impl fmt::Debug for LockTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LockTarget")
            .field(&self.0.full_name())
            .finish()
    }
}

impl Lockable for LockTarget {
    fn lock_target(&self) -> LockTarget {
        self.clone()
    }
}

impl<L: Lockable + ?Sized> Lockable for &L {
    fn lock_target(&self) -> LockTarget {
        (**self).lock_target()
    }
}

/// Locks every object for exclusive access, waiting as long as it takes.
///
/// All are taken in one step once all are free, so two callers naming the
/// same objects in any order never deadlock. A device lock covers its
/// parameters: a locker of `motor` excludes a locker of `motor`'s
/// `position`, and the other way round.
///
/// **Owned by the task.** A lock belongs to the task that took it (or to
/// the thread, outside any task), and is re-entrant for it. Whatever that
/// owner *waits on* acts for it and may use its locks: the operations
/// (`get`, `set`) it waits for, a task it spawned and waits on, and what
/// those wait on in turn, on whichever thread they run and whenever they
/// ask. The operations the owner issues on its locked objects while it
/// holds the lock act for it too: they run under the lock at once, without
/// waiting to be waited on, so a scan can start the readout of one frame
/// and the move to the next and then wait for each in turn (Concert's
/// `with motor:`) — and so do the operations of the tasks (and instance
/// calls) it spawns while it holds the lock, and of the tasks those spawn
/// in turn. Anything else — another thread, a task spawned before the lock
/// was taken or by someone else — waits until the lock is released (or the
/// owner begins to wait on it). An operation the owner issued that has not started when
/// the guard drops keeps no privilege: it runs as any other operation
/// would, never under another owner's lock. A lock also waits for the
/// operations already running on its objects.
///
/// Locks taken by *separate* calls nest like any locks: two tasks taking
/// two objects in opposite orders wait on each other. That cycle is found:
/// the lock call that closes it returns [`Error::Deadlock`] naming it,
/// instead of hanging. Name everything in one call to avoid it.
///
/// # Errors
///
/// [`Error::Interrupted`] when Ctrl-C arrives while waiting;
/// [`Error::Deadlock`] when waiting would close a cycle.
///
/// # Examples
///
/// ```
/// use concertina::device::{Device, Lockable, Parameter};
///
/// let position = Parameter::<f64>::builder("position").setter(|_| {}).build()?;
/// let motor = Device::builder("motor").parameter(position).build()?;
/// let flow = Parameter::<f64>::builder("flow").setter(|_| {}).build()?;
/// let pump = Device::builder("pump").parameter(flow).build()?;
/// let flow = pump.member("flow")?;
/// let _guard = concertina::device::lock(&[&motor as &dyn Lockable, &flow])?;
/// // A task the holder waits on uses the holder's locks:
/// let display = concertina::spawn({
///     let motor = motor.clone();
///     move || motor.set("position", 1.0).result()
/// });
/// display.result()??;
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn lock(objects: &[&dyn Lockable]) -> Result<LockGuard, Error> {
    Ok(LockGuard {
        holds: acquire(objects, None, &Owner::current(), None, Hold::Exclusive)?,
        _not_send: PhantomData,
    })
}

/// As [`lock`](crate::device::lock()), giving up after `timeout`.
///
/// # Errors
///
/// [`Error::Device`] naming the objects when they could not all be locked in
/// time; [`Error::Interrupted`] on Ctrl-C.
///
/// # Examples
///
/// ```
/// use concertina::device::{Lockable, Parameter};
/// use std::time::Duration;
///
/// let shutter = Parameter::<bool>::builder("shutter").setter(|_| {}).build()?;
/// let held = shutter.clone();
/// let (locked, release) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
/// let holder = std::thread::spawn(move || {
///     let _guard = held.lock().unwrap();
///     locked.0.send(()).unwrap();
///     release.1.recv().unwrap();
/// });
/// locked.1.recv().unwrap();
/// let err = concertina::device::lock_timeout(&[&shutter as &dyn Lockable], Duration::from_millis(10)).unwrap_err();
/// assert_eq!(err.to_string(), "could not lock shutter within 10ms: held by another task or thread");
/// release.0.send(()).unwrap();
/// holder.join().unwrap();
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn lock_timeout(objects: &[&dyn Lockable], timeout: Duration) -> Result<LockGuard, Error> {
    Ok(LockGuard {
        holds: acquire(
            objects,
            Some(timeout),
            &Owner::current(),
            None,
            Hold::Exclusive,
        )?,
        _not_send: PhantomData,
    })
}

/// Locks devices and parameters for exclusive access until the guard drops:
/// `lock!(motor, pump.member("flow")?)` (Concert's
/// `with motor, pump['flow']:`). See [`lock`](crate::device::lock()).
///
/// # Errors
///
/// [`Error::Interrupted`] when Ctrl-C arrives while waiting;
/// [`Error::Deadlock`] when waiting would close a cycle.
///
/// # Examples
///
/// ```
/// use concertina::{Device, Parameter};
///
/// let position = Parameter::<f64>::builder("position").setter(|_| {}).build()?;
/// let motor = Device::builder("motor").parameter(position).build()?;
/// let flow = Parameter::<f64>::builder("flow").setter(|_| {}).build()?;
/// let pump = Device::builder("pump").parameter(flow).build()?;
///
/// let _guard = concertina::lock!(motor, pump.member("flow")?)?;
/// motor.set("position", 2.0).result()?;
/// # Ok::<(), concertina::Error>(())
/// ```
#[macro_export]
macro_rules! lock {
    ($($object:expr),+ $(,)?) => {
        $crate::device::lock(&[$(&$object as &dyn $crate::device::Lockable),+])
    };
}
