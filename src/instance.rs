//! `Instance<C>`: calls on one value run strictly in order, one at a time,
//! on a shared pool, without a thread of their own (OMUSE's asynchronous
//! calls on a code instance).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::cancel::Cancellable;
use crate::error::Error;
use crate::future::{run_task_with, Future};
use crate::global;
use crate::pool::{self, Job, Pool};
use crate::sync::{task_local, AtomicBool, Mutex, MutexGuard};

/// A value whose calls run in submission order, one at a time, on a pool.
///
/// The queue is an actor without a thread: while calls are queued, one job
/// on the pool runs them back to back, so the next call starts as soon as
/// the previous one finishes, and a hundred thousand idle instances cost no
/// threads. A panicking or cancelled call fails only its own future; the
/// queue goes on. `Instance` is a cheap, cloneable handle.
///
/// # Examples
///
/// ```
/// use concertina::Instance;
///
/// struct Heat { t: f64, energy: f64 }
/// impl Heat {
///     fn evolve(&mut self, t_end: f64) { self.energy *= 0.5_f64.powf(t_end - self.t); self.t = t_end; }
/// }
///
/// let model = Instance::new(Heat { t: 0.0, energy: 8.0 });
/// let steps: Vec<_> = (1..=3).map(|i| model.asynchronous(move |m| m.evolve(f64::from(i)))).collect();
/// // A synchronous call waits for every call queued before it.
/// assert_eq!(model.call(|m| (m.t, m.energy))?, (3.0, 1.0));
/// assert!(steps.iter().all(|s| s.done()));
/// # Ok::<(), concertina::Error>(())
/// ```
pub struct Instance<C> {
    shared: Arc<Shared<C>>,
}

impl<C> Clone for Instance<C> {
    fn clone(&self) -> Self {
        Instance {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<C> {
    pool: Result<Pool, Error>,
    queue: Mutex<Queue<C>>,
    value: Mutex<C>,
    poisoned: AtomicBool,
}

struct Queue<C> {
    calls: VecDeque<Call<C>>,
    /// A drain job is scheduled or running; it alone pops calls.
    active: bool,
}

type Run<C> = Box<dyn FnOnce(&mut C, &AtomicBool) + Send>;

struct Call<C> {
    /// Runs the call on the value, setting the flag when it panics.
    run: Run<C>,
    task: Arc<dyn Cancellable>,
    /// Not runnable until set (a dependency not finished yet).
    gate: Option<Arc<AtomicBool>>,
}

impl<C> Call<C> {
    /// A call may leave the queue when its dependency finished, or when it
    /// was cancelled (it is then skipped).
    fn runnable(&self) -> bool {
        self.gate.as_ref().is_none_or(|g| g.load(Ordering::Acquire)) || self.task.is_cancelled()
    }
}

/// Marks the instance poisoned when a call panicked, before its future is
/// published, so that whoever sees the failure also sees the mark.
fn note_panic<R>(outcome: &Result<R, Error>, poisoned: &AtomicBool) {
    if matches!(outcome, Err(Error::Panicked(_))) {
        poisoned.store(true, Ordering::Release);
    }
}

task_local! {
    /// The instances whose queue this thread is running now.
    static DRAINING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl<C: Send + 'static> Instance<C> {
    /// Wraps `value`; its calls run on the [default pool](crate::default_pool).
    ///
    /// When the default pool cannot be built (a bad `CONCERTINA_*` value),
    /// every call fails with that [`Error::Config`].
    ///
    /// # Examples
    ///
    /// ```
    /// let counter = concertina::Instance::new(0u32);
    /// counter.asynchronous(|n| *n += 1);
    /// assert_eq!(counter.call(|n| *n)?, 1);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn new(value: C) -> Self {
        Instance::with_pool(global::default_pool().cloned(), value)
    }

    pub(crate) fn with_pool(pool: Result<Pool, Error>, value: C) -> Self {
        Instance {
            shared: Arc::new(Shared {
                pool,
                queue: Mutex::new(Queue {
                    calls: VecDeque::new(),
                    active: false,
                }),
                value: Mutex::new(value),
                poisoned: AtomicBool::new(false),
            }),
        }
    }

    /// Queues `f` to run on the value after every call submitted before it,
    /// and returns the future of its result.
    ///
    /// # Examples
    ///
    /// ```
    /// let log = concertina::Instance::new(Vec::new());
    /// let futures: Vec<_> = (0..10).map(|i| log.asynchronous(move |v: &mut Vec<i32>| { v.push(i); i })).collect();
    /// let values: Vec<i32> = futures.into_iter().map(|f| f.result().unwrap()).collect();
    /// assert_eq!(values, (0..10).collect::<Vec<_>>());
    /// assert_eq!(log.call(|v| v.clone())?, (0..10).collect::<Vec<_>>(), "ran in submission order");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn asynchronous<R, F>(&self, f: F) -> Future<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut C) -> R + Send + 'static,
    {
        let (future, inner) = Future::pending();
        inner.put_on_instance(self.key());
        let task: Arc<dyn Cancellable> = inner.clone();
        let run: Run<C> = Box::new(move |value: &mut C, poisoned: &AtomicBool| {
            run_task_with(
                inner,
                || Ok(f(value)),
                |outcome| note_panic(outcome, poisoned),
            );
        });
        self.submit(Call {
            run,
            task,
            gate: None,
        });
        future
    }

    /// Queues `f` to run once `dependency` has finished, with its value, in
    /// this instance's order: calls submitted after this one wait for it
    /// (AMUSE's `async_dependency` and requests passed as arguments).
    ///
    /// When the dependency fails, `f` never runs and the returned future
    /// fails with [`Error::DependencyFailed`] carrying the cause; the queue
    /// goes on. To wait for a future without taking its value, pass
    /// [`Future::when_done`].
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Instance;
    ///
    /// let ocean = Instance::new(15.0_f64);
    /// let atmosphere = Instance::new(20.0_f64);
    /// let air = atmosphere.asynchronous(|t| *t);
    /// let coupled = ocean.asynchronous_after(air, |sea, air| { *sea = (*sea + air) / 2.0; *sea });
    /// assert_eq!(coupled.result()?, 17.5);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn asynchronous_after<D, R, F>(&self, dependency: Future<D>, f: F) -> Future<R>
    where
        D: Send + 'static,
        R: Send + 'static,
        F: FnOnce(&mut C, D) -> R + Send + 'static,
    {
        let (future, inner) = Future::pending();
        inner.put_on_instance(self.key());
        let task: Arc<dyn Cancellable> = inner.clone();
        let gate = Arc::new(AtomicBool::new(false));
        let input: Arc<Mutex<Option<Result<D, Error>>>> = Arc::new(Mutex::new(None));
        let taken = input.clone();
        let run: Run<C> =
            Box::new(
                move |value: &mut C, poisoned: &AtomicBool| match taken.lock().take() {
                    Some(Ok(d)) => run_task_with(
                        inner,
                        || Ok(f(value, d)),
                        |outcome| note_panic(outcome, poisoned),
                    ),
                    Some(Err(cause)) => {
                        inner.settle(Err(Error::DependencyFailed(Box::new(cause))), false);
                    }
                    // Skipped while still waiting: the call was cancelled.
                    None => {}
                },
            );
        self.submit(Call {
            run,
            task,
            gate: Some(gate.clone()),
        });
        // A cancelled call must not hold the queue until its dependency ends.
        let on_cancel = self.clone();
        future.on_done(move |_| on_cancel.kick());
        let on_ready = self.clone();
        dependency.on_outcome(move |outcome| {
            *input.lock() = Some(outcome);
            gate.store(true, Ordering::Release);
            on_ready.kick();
        });
        future
    }

    /// Runs `f` after every call queued before it and waits for its result
    /// (a synchronous call implicitly waits for the asynchronous ones).
    ///
    /// # Errors
    ///
    /// The failure of `f` itself ([`Error::Panicked`], …), and
    /// [`Error::SelfWait`] when called from inside a call on this same
    /// instance, where waiting could never end.
    ///
    /// # Examples
    ///
    /// ```
    /// let model = concertina::Instance::new(vec![1.0_f64, 2.0, 3.0]);
    /// model.asynchronous(|field| field.iter_mut().for_each(|x| *x *= 2.0));
    /// assert_eq!(model.call(|field| field.iter().sum::<f64>())?, 12.0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn call<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut C) -> R + Send + 'static,
    {
        if self.draining_here() {
            return Err(Error::SelfWait);
        }
        self.asynchronous(f).result()
    }

    /// Waits until every call submitted before this one has finished.
    ///
    /// # Errors
    ///
    /// [`Error::SelfWait`] from inside a call on this instance; the errors of
    /// the pool ([`Error::Shutdown`], [`Error::Config`]). Failures of the
    /// calls themselves are reported at their own futures, not here.
    ///
    /// # Examples
    ///
    /// ```
    /// let model = concertina::Instance::new(0);
    /// let step = model.asynchronous(|n| *n += 1);
    /// model.wait()?;
    /// assert!(step.done());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.call(|_| ())
    }

    /// True once a call has panicked: the value may then be inconsistent
    /// (a panic can leave a half-finished update behind). Later calls still
    /// run; this is for the caller to decide.
    ///
    /// # Examples
    ///
    /// ```
    /// let model = concertina::Instance::new(0);
    /// assert!(model.asynchronous(|_| -> () { panic!("diverged") }).result().is_err());
    /// assert!(model.poisoned());
    /// assert_eq!(model.call(|n| *n + 1)?, 1, "the queue goes on");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn poisoned(&self) -> bool {
        self.shared.poisoned.load(Ordering::Acquire)
    }

    /// The number of calls queued and not started yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let model = concertina::Instance::new(());
    /// model.wait()?;
    /// assert_eq!(model.queued(), 0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().calls.len()
    }

    fn key(&self) -> usize {
        Arc::as_ptr(&self.shared) as *const () as usize
    }

    fn draining_here(&self) -> bool {
        draining(self.key())
    }

    fn submit(&self, call: Call<C>) {
        let mut queue = self.shared.queue.lock();
        queue.calls.push_back(call);
        self.start_if_idle(queue);
    }

    /// Starts a drain when none runs and the first call became runnable.
    fn kick(&self) {
        self.start_if_idle(self.shared.queue.lock());
    }

    fn start_if_idle(&self, mut queue: MutexGuard<'_, Queue<C>>) {
        if queue.active || !queue.calls.front().is_some_and(Call::runnable) {
            return;
        }
        queue.active = true;
        drop(queue);
        self.schedule();
    }

    /// Puts a drain job on the pool; when the pool refuses it, every queued
    /// call fails with the pool's error.
    fn schedule(&self) {
        match &self.shared.pool {
            Ok(pool) => pool.execute(Drain(self.clone())),
            Err(error) => self.fail_all(error.clone()),
        }
    }

    fn fail_all(&self, error: Error) {
        let calls = {
            let mut queue = self.shared.queue.lock();
            queue.active = false;
            std::mem::take(&mut queue.calls)
        };
        for call in calls {
            call.task.fail(error.clone());
        }
    }

    /// Runs queued calls back to back until the queue is empty or its first
    /// call waits on a dependency.
    fn drain(&self) {
        if pool::discarding() {
            self.fail_all(Error::Shutdown);
            return;
        }
        let key = self.key();
        DRAINING.with(|d| d.borrow_mut().push(key));
        struct Leave;
        impl Drop for Leave {
            fn drop(&mut self) {
                DRAINING.with(|d| d.borrow_mut().pop());
            }
        }
        let _leave = Leave;
        loop {
            let call = {
                let mut queue = self.shared.queue.lock();
                match queue.calls.front() {
                    Some(call) if call.runnable() => queue.calls.pop_front(),
                    _ => {
                        queue.active = false;
                        return;
                    }
                }
            };
            let Some(call) = call else { return };
            let mut value = self.shared.value.lock();
            (call.run)(&mut value, &self.shared.poisoned);
        }
    }
}

/// True on a thread that runs a call of the instance with `key`.
pub(crate) fn draining(key: usize) -> bool {
    DRAINING.with(|d| d.borrow().contains(&key))
}

/// True on a thread that runs a call of any instance.
pub(crate) fn draining_any() -> bool {
    DRAINING.with(|d| !d.borrow().is_empty())
}

/// The job that runs an instance's queue on its pool.
struct Drain<C>(Instance<C>);

impl<C: Send + 'static> Job for Drain<C> {
    fn run(self) {
        self.0.drain();
    }

    fn reject(self) {
        self.0.fail_all(Error::Shutdown);
    }
}

impl<C> fmt::Debug for Instance<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("queued", &self.shared.queue.lock().calls.len())
            .field("poisoned", &self.shared.poisoned.load(Ordering::Acquire))
            .finish()
    }
}

impl Pool {
    /// Wraps `value` in an [`Instance`] whose calls run on this pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(2).build()?;
    /// let model = pool.instance(String::from("grid"));
    /// assert_eq!(model.call(|s| s.len())?, 4);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn instance<C: Send + 'static>(&self, value: C) -> Instance<C> {
        Instance::with_pool(Ok(self.clone()), value)
    }
}
