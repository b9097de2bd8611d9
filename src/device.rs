//! Concert-style devices: named parameters with asynchronous get and set,
//! cancel operations (stop the motor), soft limits, and locks for exclusive
//! access that cover a device with all its parameters.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex};

use crate::cancel::CancelHandle;
use crate::error::{DeviceError, DeviceErrorKind, Error};
use crate::future::Future;
use crate::global;
use crate::interrupt::{self, Wakeable};
use crate::park::{block, Blocked};
use crate::pool::Pool;

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
// Locks

static NEXT_NODE: AtomicU64 = AtomicU64::new(1);

/// One lockable object: a device, or a parameter (whose device, once it has
/// one, covers it).
struct LockNode {
    id: u64,
    name: String,
    device: OnceLock<(Arc<LockNode>, String)>,
}

impl LockNode {
    fn new(name: &str) -> Arc<LockNode> {
        Arc::new(LockNode {
            // Relaxed: a unique number, ordering nothing else.
            id: NEXT_NODE.fetch_add(1, Ordering::Relaxed),
            name: name.to_owned(),
            device: OnceLock::new(),
        })
    }

    fn device(&self) -> Option<&Arc<LockNode>> {
        self.device.get().map(|(node, _)| node)
    }

    /// `device.parameter`, or the bare name.
    fn full_name(&self) -> String {
        match self.device.get() {
            Some((_, device)) => format!("{device}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// On whose behalf a thread acts: its own, or, inside a parameter
/// operation, the thread that submitted it (so that the operations a lock
/// holder starts, and those they start in turn, count as the holder's).
type Owner = ThreadId;

thread_local! {
    static ACTING_FOR: Cell<Option<Owner>> = const { Cell::new(None) };
}

fn current_owner() -> Owner {
    ACTING_FOR
        .with(Cell::get)
        .unwrap_or_else(|| std::thread::current().id())
}

/// Acts for `owner` until dropped.
struct ActingFor(Option<Owner>);

impl ActingFor {
    fn enter(owner: Owner) -> ActingFor {
        ActingFor(ACTING_FOR.with(|a| a.replace(Some(owner))))
    }
}

impl Drop for ActingFor {
    fn drop(&mut self) {
        ACTING_FOR.with(|a| a.set(self.0));
    }
}

/// How many holds each owner has.
#[derive(Default)]
struct Counts(Vec<(Owner, usize)>);

impl Counts {
    fn add(&mut self, owner: Owner) {
        match self.0.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, n)) => *n += 1,
            None => self.0.push((owner, 1)),
        }
    }

    fn remove(&mut self, owner: Owner) {
        if let Some(i) = self.0.iter().position(|(o, _)| *o == owner) {
            self.0[i].1 -= 1;
            if self.0[i].1 == 0 {
                self.0.swap_remove(i);
            }
        }
    }

    fn any_other(&self, me: Owner) -> bool {
        self.0.iter().any(|(o, _)| *o != me)
    }
}

/// Locks are exclusive; operations (a get or a set) take shared holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    Exclusive,
    Operation,
}

/// Who holds what: one table for the process (locks are taken at the pace
/// of people and motors, not in hot loops).
#[derive(Default)]
struct Locks {
    /// Node → exclusive owner and its re-entry depth.
    held: HashMap<u64, (Owner, usize)>,
    /// Device → exclusive holds on its parameters.
    intents: HashMap<u64, Counts>,
    /// Node → operations in flight on it (for a device: on its parameters).
    operations: HashMap<u64, Counts>,
}

impl Locks {
    fn held_by_other(&self, id: u64, me: Owner) -> bool {
        matches!(self.held.get(&id), Some((o, _)) if *o != me)
    }

    fn others_in(map: &HashMap<u64, Counts>, id: u64, me: Owner) -> bool {
        map.get(&id).is_some_and(|c| c.any_other(me))
    }

    fn free_for(&self, node: &LockNode, me: Owner, hold: Hold) -> bool {
        if self.held_by_other(node.id, me)
            || node.device().is_some_and(|d| self.held_by_other(d.id, me))
        {
            return false;
        }
        // A lock also waits for other owners' operations in flight and, on a
        // device, for other owners' locks on its parameters.
        hold == Hold::Operation
            || !(Self::others_in(&self.operations, node.id, me)
                || (node.device().is_none() && Self::others_in(&self.intents, node.id, me)))
    }

    fn take(&mut self, node: &LockNode, me: Owner, hold: Hold) {
        match hold {
            Hold::Exclusive => {
                self.held.entry(node.id).or_insert((me, 0)).1 += 1;
                if let Some(device) = node.device() {
                    self.intents.entry(device.id).or_default().add(me);
                }
            }
            Hold::Operation => {
                self.operations.entry(node.id).or_default().add(me);
                if let Some(device) = node.device() {
                    self.operations.entry(device.id).or_default().add(me);
                }
            }
        }
    }

    fn release(&mut self, node: &LockNode, me: Owner, hold: Hold) {
        fn remove(map: &mut HashMap<u64, Counts>, id: u64, me: Owner) {
            if let Some(counts) = map.get_mut(&id) {
                counts.remove(me);
                if counts.0.is_empty() {
                    map.remove(&id);
                }
            }
        }
        match hold {
            Hold::Exclusive => {
                if let Some((_, depth)) = self.held.get_mut(&node.id) {
                    *depth -= 1;
                    if *depth == 0 {
                        self.held.remove(&node.id);
                    }
                }
                if let Some(device) = node.device() {
                    remove(&mut self.intents, device.id, me);
                }
            }
            Hold::Operation => {
                remove(&mut self.operations, node.id, me);
                if let Some(device) = node.device() {
                    remove(&mut self.operations, device.id, me);
                }
            }
        }
    }
}

struct LockTable {
    locks: Mutex<Locks>,
    released: Condvar,
}

impl Wakeable for LockTable {
    fn wake(&self) {
        let _locks = self.locks.lock();
        self.released.notify_all();
    }
}

static TABLE: LazyLock<Arc<LockTable>> = LazyLock::new(|| {
    Arc::new(LockTable {
        locks: Mutex::new(Locks::default()),
        released: Condvar::new(),
    })
});

/// Exclusive access to the objects passed to [`lock`](crate::lock()) (or
/// [`lock!`](crate::lock!), [`try_lock_for`]), until dropped. Not `Send`:
/// it is released on the thread that took it.
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
    nodes: Vec<Arc<LockNode>>,
    owner: Owner,
    hold: Hold,
    _not_send: PhantomData<std::rc::Rc<()>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let table = &*TABLE;
        let mut locks = table.locks.lock();
        for node in &self.nodes {
            locks.release(node, self.owner, self.hold);
        }
        table.released.notify_all();
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.nodes.iter().map(|n| n.full_name()).collect();
        f.debug_struct("LockGuard").field("locked", &names).finish()
    }
}

/// What can be locked: a [`Device`], a [`Parameter`], a [`ParameterRef`].
///
/// # Examples
///
/// ```
/// use concertina::{Lockable, Parameter};
///
/// let valve = Parameter::<bool>::builder("valve").setter(|_| {}).build()?;
/// let objects: [&dyn Lockable; 1] = [&valve];
/// let _guard = concertina::lock(&objects)?;
/// # Ok::<(), concertina::Error>(())
/// ```
pub trait Lockable {
    /// The object to lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Device, Lockable};
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
/// use concertina::{Lockable, Parameter};
///
/// let p = Parameter::<u8>::builder("p").getter(|| 1).build()?;
/// let target = p.lock_target();
/// assert_eq!(format!("{target:?}"), "LockTarget(\"p\")");
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone)]
pub struct LockTarget(Arc<LockNode>);

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

fn acquire(
    objects: &[&dyn Lockable],
    timeout: Option<Duration>,
    me: Owner,
    hold: Hold,
) -> Result<LockGuard, Error> {
    let mut nodes: Vec<Arc<LockNode>> = objects.iter().map(|o| o.lock_target().0).collect();
    // One order for everybody, and each object once.
    nodes.sort_by_key(|n| n.id);
    nodes.dedup_by_key(|n| n.id);
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let table = &*TABLE;
    let all_free = |locks: &Locks| nodes.iter().all(|n| locks.free_for(n, me, hold));
    loop {
        {
            // All at once or not at all: a thread never holds some of the
            // objects while it waits for the others, so no argument order
            // can deadlock.
            let mut locks = table.locks.lock();
            if all_free(&locks) {
                for node in &nodes {
                    locks.take(node, me, hold);
                }
                return Ok(LockGuard {
                    nodes,
                    owner: me,
                    hold,
                    _not_send: PhantomData,
                });
            }
        }
        let quick = || table.locks.try_lock().is_some_and(|locks| all_free(&locks));
        match block(
            &table.locks,
            &table.released,
            all_free,
            quick,
            deadline,
            || table.clone() as Arc<dyn Wakeable>,
            None,
        ) {
            Blocked::Ready => continue,
            Blocked::TimedOut => {
                let timeout = timeout.unwrap_or(Duration::MAX);
                let names = nodes.iter().map(|n| n.full_name()).collect();
                return Err(DeviceError::error(DeviceErrorKind::LockTimeout {
                    names,
                    timeout,
                }));
            }
            Blocked::Interrupted(registration) => {
                drop(registration);
                return Err(Error::Interrupted);
            }
            // Lock waits are not in the wait graph: nothing is detected.
            Blocked::Deadlock(error) => return Err(error),
        }
    }
}

/// Locks every object for exclusive access, waiting as long as it takes.
///
/// All are taken in one step once all are free, so two threads naming the
/// same objects in any order never deadlock. A device lock covers its
/// parameters: a locker of `motor` excludes a locker of `motor`'s
/// `position`, and the other way round. A thread may lock again what it
/// holds (re-entrant).
///
/// Locks protect the device, not only against other lockers: a
/// [`Parameter::get`] or [`Parameter::set`] asked for by another thread
/// waits until the holder releases, and a lock waits until the operations
/// other threads already have in flight on its objects have finished. The
/// holder's own operations go ahead, and so do the operations they start in
/// turn (a detector read that reads the motor position acts for whoever
/// asked for the read). A task of your own started with
/// [`spawn`](crate::spawn) does not act for the holder: if it gets or sets a
/// locked parameter while the holder waits for it, the two wait on each
/// other. Issue those operations from the holder's thread, or release first.
///
/// Locks taken by *separate* calls nest like any locks: a thread that holds
/// one object and then waits for another can deadlock with a thread doing
/// the opposite. Name everything in one call, or use [`try_lock_for`].
///
/// # Errors
///
/// [`Error::Interrupted`] when Ctrl-C arrives while waiting.
///
/// # Examples
///
/// ```
/// use concertina::{Device, Lockable, Parameter};
///
/// let position = Parameter::<f64>::builder("position").setter(|_| {}).build()?;
/// let motor = Device::builder("motor").parameter(position).build()?;
/// let flow = Parameter::<f64>::builder("flow").setter(|_| {}).build()?;
/// let pump = Device::builder("pump").parameter(flow).build()?;
/// let flow = pump.parameter("flow")?;
/// let _guard = concertina::lock(&[&motor as &dyn Lockable, &flow])?;
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn lock(objects: &[&dyn Lockable]) -> Result<LockGuard, Error> {
    acquire(objects, None, current_owner(), Hold::Exclusive)
}

/// As [`lock`](crate::lock()), giving up after `timeout`.
///
/// # Errors
///
/// [`Error::Device`] naming the objects when they could not all be locked in
/// time; [`Error::Interrupted`] on Ctrl-C.
///
/// # Examples
///
/// ```
/// use concertina::{Lockable, Parameter};
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
/// let err = concertina::try_lock_for(&[&shutter as &dyn Lockable], Duration::from_millis(10)).unwrap_err();
/// assert_eq!(err.to_string(), "could not lock shutter within 10ms: held by another thread");
/// release.0.send(()).unwrap();
/// holder.join().unwrap();
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn try_lock_for(objects: &[&dyn Lockable], timeout: Duration) -> Result<LockGuard, Error> {
    acquire(objects, Some(timeout), current_owner(), Hold::Exclusive)
}

/// Locks devices and parameters for exclusive access until the guard drops:
/// `lock!(motor, pump.parameter("flow")?)` (Concert's
/// `with motor, pump['flow']:`). See [`lock`](crate::lock()).
///
/// # Errors
///
/// [`Error::Interrupted`] when Ctrl-C arrives while waiting.
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
/// let _guard = concertina::lock!(motor, pump.parameter("flow")?)?;
/// motor.set("position", 2.0).result()?;
/// # Ok::<(), concertina::Error>(())
/// ```
#[macro_export]
macro_rules! lock {
    ($($object:expr),+ $(,)?) => {
        $crate::lock(&[$(&$object as &dyn $crate::Lockable),+])
    };
}

// ---------------------------------------------------------------------------
// Parameters

type Getter<T> = Arc<dyn Fn() -> T + Send + Sync>;
type Setter<T> = Arc<dyn Fn(T) + Send + Sync>;
/// Checks a value against the soft limits; gets the parameter's full name
/// and unit label for the message.
type Check<T> = Arc<dyn Fn(&T, &str, Option<&str>) -> Result<(), Error> + Send + Sync>;

/// A named, typed value of a device, read and written through blocking
/// functions that run on a pool: `get()` and `set(v)` return futures.
///
/// A set outside the soft limits fails at once, naming the parameter, the
/// value and the limits, and never reaches the setter. The cancel operation
/// (a motor's stop) is the cleanup of every set: cancelling the set's future
/// runs it. `Parameter` is a cheap, cloneable handle.
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
/// position.set(2.5).result()?;
/// assert_eq!(position.get().result()?, 2.5);
/// assert!(position.set(12.0).result().is_err(), "outside the soft limits");
/// # Ok::<(), concertina::Error>(())
/// ```
pub struct Parameter<T> {
    inner: Arc<ParamInner<T>>,
}

impl<T> Clone for Parameter<T> {
    fn clone(&self) -> Self {
        Parameter {
            inner: self.inner.clone(),
        }
    }
}

struct ParamInner<T> {
    node: Arc<LockNode>,
    getter: Option<Getter<T>>,
    setter: Option<Setter<T>>,
    stop: Option<Arc<dyn Fn() + Send + Sync>>,
    check: Option<Check<T>>,
    limits: Option<(String, String)>,
    unit: Option<String>,
    pool: Option<Pool>,
    /// Operations in flight, for `abort`.
    inflight: Mutex<Vec<CancelHandle>>,
}

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
    stop: Option<Arc<dyn Fn() + Send + Sync>>,
    check: Option<Check<T>>,
    limits: Option<(String, String, bool)>,
    unit: Option<String>,
    pool: Option<Pool>,
}

impl<T: Send + 'static> ParameterBuilder<T> {
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
        self.getter = Some(Arc::new(get));
        self
    }

    /// The blocking function that writes the value (a motor move returns
    /// when the motor has arrived).
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("exposure").setter(|_ms: u32| {}).build()?;
    /// assert!(p.is_writable() && !p.is_readable());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn setter(mut self, set: impl Fn(T) + Send + Sync + 'static) -> Self {
        self.setter = Some(Arc::new(set));
        self
    }

    /// The cancel operation (Concert's `cancel_operation`): runs when a set
    /// in flight is cancelled, and on [`Device::abort`].
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
    /// setter, or when the lower limit is above the upper one.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = concertina::Parameter::<f64>::builder("current position").getter(|| 0.0).build().unwrap_err();
    /// assert!(err.to_string().starts_with("parameter name \"current position\" is not accepted"));
    /// ```
    pub fn build(self) -> Result<Parameter<T>, Error> {
        check_name("parameter", &self.name)?;
        if self.getter.is_none() && self.setter.is_none() {
            return Err(DeviceError::error(DeviceErrorKind::NoAccess {
                parameter: self.name,
            }));
        }
        let limits = match self.limits {
            Some((lower, upper, false)) => {
                return Err(DeviceError::error(DeviceErrorKind::BadLimits {
                    parameter: self.name,
                    lower,
                    upper,
                }))
            }
            Some((lower, upper, true)) => Some((lower, upper)),
            None => None,
        };
        Ok(Parameter {
            inner: Arc::new(ParamInner {
                node: LockNode::new(&self.name),
                getter: self.getter,
                setter: self.setter,
                stop: self.stop,
                check: self.check,
                limits,
                unit: self.unit,
                pool: self.pool,
                inflight: Mutex::new(Vec::new()),
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
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn limits(mut self, lower: T, upper: T) -> Self {
        let ordered = lower <= upper;
        self.limits = Some((format!("{lower:?}"), format!("{upper:?}"), ordered));
        self.check = Some(Arc::new(
            move |value: &T, name: &str, unit: Option<&str>| {
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
            },
        ));
        self
    }
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
        ParameterBuilder {
            name: name.into(),
            getter: None,
            setter: None,
            stop: None,
            check: None,
            limits: None,
            unit: None,
            pool: None,
        }
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
        &self.inner.node.name
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

    /// The soft limits as text (`Debug` of the values), if any.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: i32| {}).limits(-5, 5).build()?;
    /// assert_eq!(p.limits(), Some(("-5", "5")));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn limits(&self) -> Option<(&str, &str)> {
        self.inner
            .limits
            .as_ref()
            .map(|(l, u)| (l.as_str(), u.as_str()))
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

    fn run<R: Send + 'static>(&self, op: impl FnOnce() -> R + Send + 'static) -> Future<R> {
        // The operation acts for the thread that asked for it: another
        // owner's lock holds it off, the asker's own lock does not, and the
        // operations it starts in turn act for the asker too.
        let owner = current_owner();
        let node = self.inner.node.clone();
        let task = move || {
            let _hold = acquire(
                &[&LockTarget(node) as &dyn Lockable],
                None,
                owner,
                Hold::Operation,
            )?;
            let _acting = ActingFor::enter(owner);
            Ok(op())
        };
        let pool = match &self.inner.pool {
            Some(pool) => Ok(pool),
            None => global::default_pool(),
        };
        match pool {
            Ok(pool) => pool.spawn_try(task),
            Err(error) => Future::failed(error),
        }
    }

    /// Reads the value on the pool.
    ///
    /// # Errors
    ///
    /// The future fails with [`Error::Device`] when the parameter cannot be
    /// read, and with the getter's panic as [`Error::Panicked`].
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
                parameter: self.inner.node.full_name(),
            }));
        };
        self.track(self.run(move || getter()))
    }

    /// Writes the value on the pool; cancelling the returned future runs the
    /// cancel operation.
    ///
    /// # Errors
    ///
    /// The future fails at once with [`Error::Device`] when the parameter
    /// cannot be written or `value` is outside the soft limits (the setter is
    /// never called), and with the setter's panic as [`Error::Panicked`].
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
        let setter = self.inner.setter.clone().expect("checked writable");
        let future = self.run(move || setter(value));
        self.track(self.with_stop(future))
    }

    /// Writes the value once `dependency` has finished (Concert's
    /// `wait_on`); when it fails, the set never happens and fails with
    /// [`Error::DependencyFailed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: f64| {}).build()?;
    /// let first = p.set(1.0);
    /// let second = p.set_after(first.when_done(), 2.0);
    /// second.result()?;
    /// assert!(first.done());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn set_after<D: Send + 'static>(&self, dependency: Future<D>, value: T) -> Future<()> {
        if let Err(error) = self.check_set(&value) {
            return Future::failed(error);
        }
        let (future, inner) = Future::<()>::pending();
        let this = self.clone();
        dependency.on_outcome(move |outcome| match outcome {
            Ok(_) => {
                let set = this.set(value);
                set.on_outcome(move |done| {
                    inner.settle(done, false);
                });
            }
            Err(cause) => {
                inner.settle(Err(Error::DependencyFailed(Box::new(cause))), false);
            }
        });
        self.track(self.with_stop(future))
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

    /// Locks this parameter alone; see [`lock`](crate::lock()).
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`] on Ctrl-C while waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: u8| {}).build()?;
    /// let _guard = p.lock()?;
    /// p.set_sync(1)?; // the holder's own calls go ahead
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockGuard, Error> {
        crate::lock!(self)
    }

    /// Runs the cancel operation now, cancelling the operations in flight
    /// (whose cleanup it is) or, with none in flight, calling it directly.
    /// True when there was a cancel operation to run.
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
        self.inner.abort()
    }

    fn check_set(&self, value: &T) -> Result<(), Error> {
        if self.inner.setter.is_none() {
            return Err(DeviceError::error(DeviceErrorKind::NotWritable {
                parameter: self.inner.node.full_name(),
            }));
        }
        match &self.inner.check {
            Some(check) => check(
                value,
                &self.inner.node.full_name(),
                self.inner.unit.as_deref(),
            ),
            None => Ok(()),
        }
    }

    fn with_stop(&self, future: Future<()>) -> Future<()> {
        match self.inner.stop.clone() {
            Some(stop) => future.on_cancel(move || stop()),
            None => future,
        }
    }

    fn track<R: Send + 'static>(&self, future: Future<R>) -> Future<R> {
        let mut inflight = self.inner.inflight.lock();
        inflight.retain(|h| !h.done());
        inflight.push(future.cancel_handle());
        drop(inflight);
        future
    }
}

impl<T> ParamInner<T> {
    fn abort(&self) -> bool {
        let inflight: Vec<CancelHandle> = std::mem::take(&mut *self.inflight.lock());
        let cancelled = inflight.iter().filter(|h| h.cancel()).count();
        match &self.stop {
            Some(stop) => {
                if cancelled == 0 {
                    stop();
                }
                true
            }
            None => false,
        }
    }
}

impl<T: Send + 'static> Lockable for Parameter<T> {
    fn lock_target(&self) -> LockTarget {
        LockTarget(self.inner.node.clone())
    }
}

impl<T> fmt::Debug for Parameter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parameter")
            .field("name", &self.inner.node.full_name())
            .field("readable", &self.inner.getter.is_some())
            .field("writable", &self.inner.setter.is_some())
            .field("unit", &self.inner.unit)
            .field("limits", &self.inner.limits)
            .finish()
    }
}

// ---------------------------------------------------------------------------
// Devices

/// A parameter of a device, whatever its value type.
trait AnyParameter: Send + Sync {
    fn node(&self) -> &Arc<LockNode>;
    fn abort(&self) -> bool;
    fn type_name(&self) -> &'static str;
}

impl<T: Send + 'static> AnyParameter for ParamInner<T> {
    fn node(&self) -> &Arc<LockNode> {
        &self.node
    }

    fn abort(&self) -> bool {
        ParamInner::abort(self)
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
/// let flow = pump.parameter("flow")?;
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
    /// assert_eq!(d.parameter("p")?.name(), "d.p");
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

    /// The parameter called `name`, untyped (for locking).
    ///
    /// # Errors
    ///
    /// [`Error::Device`] naming the device, the name and the parameters it has.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("motor").build()?;
    /// assert_eq!(d.parameter("foo").unwrap_err().to_string(), "device `motor` has no parameter `foo` (it has: )");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn parameter(&self, name: &str) -> Result<ParameterRef, Error> {
        Ok(ParameterRef {
            parameter: self.entry(name)?.erased.clone(),
        })
    }

    /// The parameter called `name`, with its value type.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when there is no such parameter or it holds another type.
    ///
    /// # Examples
    ///
    /// ```
    /// let d = concertina::Device::builder("motor")
    ///     .parameter(concertina::Parameter::<f64>::builder("position").getter(|| 0.5).build()?)
    ///     .build()?;
    /// let position = d.typed::<f64>("position")?;
    /// assert_eq!(position.get_sync()?, 0.5);
    /// assert!(d.typed::<u32>("position").is_err());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn typed<T: Send + 'static>(&self, name: &str) -> Result<Parameter<T>, Error> {
        let entry = self.entry(name)?;
        match entry.typed.clone().downcast::<ParamInner<T>>() {
            Ok(inner) => Ok(Parameter { inner }),
            Err(_) => Err(DeviceError::error(DeviceErrorKind::WrongType {
                parameter: format!("{}.{} ({})", self.name(), name, entry.erased.type_name()),
                expected: std::any::type_name::<T>(),
            })),
        }
    }

    /// Reads the parameter `name`; a future that has failed when there is no
    /// such parameter of type `T`.
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
        self.typed::<T>(name)
            .map_or_else(Future::failed, |p| p.get())
    }

    /// Writes the parameter `name`; a future that has failed when there is
    /// no such parameter of type `T`.
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
        self.typed::<T>(name)
            .map_or_else(Future::failed, |p| p.set(value))
    }

    /// Runs every parameter's cancel operation: by cancelling its operations
    /// in flight (their cleanup), or directly when none is in flight. Returns
    /// how many parameters had one.
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
        self.inner.abort()
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
    /// devices"), through an [`on_interrupt`](crate::on_interrupt) hook that
    /// lives as long as the device.
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
                device.abort();
            }
        });
    }

    /// Locks the device with all its parameters; see [`lock`](crate::lock()).
    ///
    /// # Errors
    ///
    /// [`Error::Interrupted`] on Ctrl-C while waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let motor = concertina::Device::builder("motor").build()?;
    /// let _guard = motor.lock()?;
    /// let _again = motor.lock()?; // re-entrant on the same thread
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn lock(&self) -> Result<LockGuard, Error> {
        crate::lock!(self)
    }
}

impl DeviceInner {
    fn abort(&self) -> usize {
        self.parameters.iter().filter(|e| e.erased.abort()).count()
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
