//! `Future<T>`: the blocking handle of one task.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::cancel::{self, CancelHandle, Cancellable};
use crate::error::{panic_message, Error};
use crate::instance;
use crate::interrupt::{self, Registration, Wakeable};
use crate::pool;
use crate::state::{self, CANCELLED, DONE, FAILED, PENDING, RUNNING, SETTLING};
use crate::sync::{self, AtomicU8, Condvar, Mutex};
use crate::wait::{Listener, Watchable};

/// How many rounds of spinning, then yielding, a wait makes before it parks.
/// A hand-off within the spin costs well under a microsecond; a park/unpark
/// round trip costs 10–40 µs on a small machine.
const SPIN_ROUNDS: u32 = 6;
const YIELD_ROUNDS: u32 = 10;

/// The handle of a task submitted to a pool: wait for it, take its value,
/// cancel it, or chain more work after it.
///
/// A `Future` is not an async future and needs no executor: every wait
/// blocks the calling thread (spinning briefly, then parking). Async callers
/// may still `.await` it, through [`IntoFuture`](std::future::IntoFuture).
///
/// Dropping a `Future` detaches the task: it still runs, and its value is
/// dropped when it finishes.
///
/// # Examples
///
/// ```
/// use concertina::Pool;
///
/// let pool = Pool::builder().threads(2).build()?;
/// let f = pool.spawn(|| 6 * 7);
/// assert_eq!(f.result()?, 42);
/// # Ok::<(), concertina::Error>(())
/// ```
#[must_use = "dropping a Future detaches its task; call result() or join() to see its outcome"]
pub struct Future<T> {
    inner: TaskRef<T>,
}

/// A task's state as its handles hold it. A task queued by
/// [`Pool::spawn`](crate::Pool::spawn) keeps its closure in the same
/// allocation as its state ([`TaskCell`]), behind this trait object.
pub(crate) type TaskRef<T> = Arc<dyn Task<T>>;

/// A task's state ([`Inner`]) and the closure kept beside it.
pub(crate) trait Task<T>: Cancellable + Wakeable + Watchable + Send + Sync {
    fn state(&self) -> &Inner<T>;

    /// Runs the closure kept beside the state (for whoever took the task
    /// out of its queue, see [`Content::Own`]); nothing when it was dropped
    /// because the task was decided first.
    fn run_own(self: Arc<Self>);
}

impl<T> std::ops::Deref for dyn Task<T> {
    type Target = Inner<T>;

    fn deref(&self) -> &Inner<T> {
        self.state()
    }
}

/// A task's state with the closure it runs, in one allocation.
struct TaskCell<T, F> {
    state: Inner<T>,
    job: Mutex<Option<F>>,
}

impl<T, F> TaskCell<T, F> {
    /// Drops the closure once the task is decided without having run it
    /// (cancelled, refused), so that what it holds is released at once.
    fn drop_job_if_decided(&self) {
        // A closure without drop glue (one that captures nothing to drop,
        // or a task that keeps none) has nothing to release early.
        if std::mem::needs_drop::<F>()
            && state::is_decided(self.state.phase.load(Ordering::Acquire))
        {
            let job = self.job.lock().take();
            drop(job);
        }
    }
}

impl<T, F> Task<T> for TaskCell<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    fn state(&self) -> &Inner<T> {
        &self.state
    }

    fn run_own(self: Arc<Self>) {
        let job = self.job.lock().take();
        if let Some(f) = job {
            let task: TaskRef<T> = self;
            if pool::discarding() {
                drop(f);
                task.fail(Error::Shutdown);
            } else {
                run_task_with(task, f, |_| ());
            }
        }
    }
}

impl<T: Send + 'static, F: Send> Cancellable for TaskCell<T, F> {
    fn cancel(&self) -> bool {
        let won = self.state.cancel();
        self.drop_job_if_decided();
        won
    }

    fn is_cancelled(&self) -> bool {
        self.state.is_cancelled()
    }

    fn phase(&self) -> u8 {
        self.state.phase()
    }

    fn fail(&self, error: Error) {
        self.state.fail(error);
        self.drop_job_if_decided();
    }

    fn interrupt(&self) {
        self.state.interrupt();
        self.drop_job_if_decided();
    }
}

impl<T: Send + 'static, F: Send> Wakeable for TaskCell<T, F> {
    fn wake(&self) {
        self.state.wake();
    }
}

impl<T: Send + 'static, F: Send> Watchable for TaskCell<T, F> {
    fn watch(&self, listener: &Arc<Listener>, key: u64) -> bool {
        self.state.watch(listener, key)
    }

    fn unwatch(&self, listener: &Arc<Listener>) {
        self.state.unwatch(listener);
    }
}

/// A queued closure taken out of its task's state by whoever runs it.
enum Taken<T> {
    Boxed(Claimable<T>),
    Own,
}

/// The state shared by a task, its handle and whoever cancels it.
pub(crate) struct Inner<T> {
    /// One of the phases of [`crate::state`].
    phase: AtomicU8,
    slot: Mutex<Slot<T>>,
    cond: Condvar,
}

struct Slot<T> {
    content: Content<T>,
    /// Allocated only when somebody registers a hook.
    hooks: Option<Box<Hooks<T>>>,
}

/// What a task's state holds: its queued closure before it runs, its
/// outcome after publication. The two never coexist, so they share a place.
enum Content<T> {
    Empty,
    /// The closure of a task queued on a pool, until whoever runs it first
    /// takes it: the queued job, or a worker of the same pool that waits on
    /// this task (so that a wait runs exactly what it needs).
    Queued(Claimable<T>),
    /// Present from publication until a consumer takes it.
    Outcome(Result<T, Error>),
    /// A task queued on the pool with this id, its closure kept beside the
    /// state (see [`TaskCell`]); taken as [`Content::Queued`] is.
    Own(usize),
    /// A call queued on the instance with this key (or running on it) until
    /// published: a wait on it from inside that instance's own calls could
    /// never end.
    OnInstance(usize),
}

/// A queued task's closure, with the pool whose workers may claim it (kept
/// in the same box, so that the slot grows by one pointer pair only).
pub(crate) type Claimable<T> = Box<dyn Claim<T>>;

pub(crate) trait Claim<T>: Send {
    fn pool(&self) -> usize;
    fn run(self: Box<Self>) -> Result<T, Error>;
}

struct Queued<F> {
    pool: usize,
    f: F,
}

impl<T, F: FnOnce() -> Result<T, Error> + Send> Claim<T> for Queued<F> {
    fn pool(&self) -> usize {
        self.pool
    }

    fn run(self: Box<Self>) -> Result<T, Error> {
        (self.f)()
    }
}

/// The closure `f` of a task queued on the pool `pool`.
pub(crate) fn claimable<T, F>(pool: usize, f: F) -> Claimable<T>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    Box::new(Queued { pool, f })
}

type Callback<T> = Box<dyn FnOnce(&Result<T, Error>) + Send>;
type Continuation<T> = Box<dyn FnOnce(Result<T, Error>) + Send>;

struct Hooks<T> {
    cleanup: Option<Box<dyn FnOnce() + Send>>,
    callbacks: Vec<Callback<T>>,
    /// Receives the outcome by value instead of the slot (set by `then`,
    /// which consumes the only handle).
    continuation: Option<Continuation<T>>,
    waker: Option<Waker>,
    /// Multi-future waits (`wait_any`, `as_completed`, `RequestPool`) told on publication.
    listeners: Vec<(Arc<Listener>, u64)>,
}

impl<T> Default for Hooks<T> {
    fn default() -> Self {
        Hooks {
            cleanup: None,
            callbacks: Vec::new(),
            continuation: None,
            waker: None,
            listeners: Vec::new(),
        }
    }
}

impl<T> Slot<T> {
    fn hooks(&mut self) -> &mut Hooks<T> {
        self.hooks.get_or_insert_with(Box::default)
    }

    fn outcome(&self) -> Option<&Result<T, Error>> {
        match &self.content {
            Content::Outcome(outcome) => Some(outcome),
            _ => None,
        }
    }

    fn take_outcome(&mut self) -> Option<Result<T, Error>> {
        match std::mem::replace(&mut self.content, Content::Empty) {
            Content::Outcome(outcome) => Some(outcome),
            other => {
                self.content = other;
                None
            }
        }
    }

    /// Takes the queued closure, if nobody has yet; with `pool`, only when
    /// the task is queued on that pool.
    fn take_queued(&mut self, pool: Option<usize>) -> Option<Taken<T>> {
        let on = |id: usize| pool.is_none_or(|pool| pool == id);
        match &self.content {
            Content::Queued(job) if on(job.pool()) => {}
            Content::Own(id) if on(*id) => {}
            _ => return None,
        }
        match std::mem::replace(&mut self.content, Content::Empty) {
            Content::Queued(job) => Some(Taken::Boxed(job)),
            _ => Some(Taken::Own),
        }
    }
}

/// How a [`block`] ended.
pub(crate) enum Blocked {
    Ready,
    TimedOut,
    /// A Ctrl-C arrived: the caller cancels what it waited on, then drops
    /// the registration.
    Interrupted(Registration),
}

/// Blocks the calling thread until `ready` holds (checked under `lock`, and
/// woken through `cond`), the deadline passes, or an interrupt arrives.
///
/// `quick` is the same condition read without the lock. The wait spins
/// briefly; then it registers `target` with the interrupt machinery and, on
/// a pool worker, runs queued work of that pool meanwhile (re-checking the
/// queue at least every 2 ms), so that nested waits never deadlock;
/// elsewhere it parks on the condvar.
pub(crate) fn block<S>(
    lock: &Mutex<S>,
    cond: &Condvar,
    ready: impl Fn(&S) -> bool,
    quick: impl Fn() -> bool,
    deadline: Option<Instant>,
    target: impl FnOnce() -> Arc<dyn Wakeable>,
) -> Blocked {
    if quick() {
        return Blocked::Ready;
    }
    for round in 0..=YIELD_ROUNDS {
        if !sync::spin_then_yield() {
            break;
        }
        if round <= SPIN_ROUNDS {
            for _ in 0..(1u32 << round) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        if quick() {
            return Blocked::Ready;
        }
    }
    let registration = interrupt::register(target());
    // Why the wait ended is decided under the lock: the condition may not
    // hold any more once the lock is released (a lock taken by another
    // thread), and the caller re-checks it anyway.
    let end = |ready_now: bool| {
        if ready_now {
            End::Ready
        } else if registration.interrupted() {
            End::Interrupted
        } else {
            End::TimedOut
        }
    };
    let ended = if pool::on_worker() {
        block_helping(
            lock,
            cond,
            &ready,
            &quick,
            &|| registration.interrupted(),
            deadline,
        )
    } else {
        let mut guard = lock.lock();
        loop {
            let ready_now = ready(&guard);
            if ready_now || registration.interrupted() {
                break end(ready_now);
            }
            match deadline {
                None => cond.wait(&mut guard),
                Some(deadline) => {
                    if cond.wait_until(&mut guard, deadline).timed_out() {
                        break end(ready(&guard));
                    }
                }
            }
        }
    };
    match ended {
        End::Ready => Blocked::Ready,
        End::TimedOut => Blocked::TimedOut,
        End::Interrupted => Blocked::Interrupted(registration),
    }
}

enum End {
    Ready,
    TimedOut,
    Interrupted,
}

#[cold]
fn block_helping<S>(
    lock: &Mutex<S>,
    cond: &Condvar,
    ready: &impl Fn(&S) -> bool,
    quick: &impl Fn() -> bool,
    interrupted: &impl Fn() -> bool,
    deadline: Option<Instant>,
) -> End {
    let mut nap = Duration::from_micros(50);
    loop {
        if quick() {
            return End::Ready;
        }
        if interrupted() {
            return End::Interrupted;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return End::TimedOut;
        }
        if pool::help_one() {
            nap = Duration::from_micros(50);
            continue;
        }
        let wake = deadline.map_or(now + nap, |d| d.min(now + nap));
        let mut guard = lock.lock();
        if ready(&guard) {
            return End::Ready;
        }
        if !interrupted() {
            let _ = cond.wait_until(&mut guard, wake);
        }
        if ready(&guard) {
            return End::Ready;
        }
        nap = (nap * 2).min(Duration::from_millis(2));
    }
}

/// Runs a user hook, keeping its panic away from the thread that runs it.
/// The panic hook has already reported the panic on stderr.
fn run_guarded(hook: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(hook));
}

impl<T: Send + 'static> Inner<T> {
    fn with(phase: u8, content: Content<T>) -> Self {
        Inner {
            phase: AtomicU8::new(phase),
            slot: Mutex::new(Slot {
                content,
                hooks: None,
            }),
            cond: Condvar::new(),
        }
    }

    /// A task that keeps no closure beside its state.
    fn task(phase: u8, content: Content<T>) -> TaskRef<T> {
        fn without_job<T, F>(state: Inner<T>, _type_only: F) -> TaskRef<T>
        where
            T: Send + 'static,
            F: FnOnce() -> Result<T, Error> + Send + 'static,
        {
            Arc::new(TaskCell {
                state,
                job: Mutex::new(None::<F>),
            })
        }
        // A closure that captures nothing takes no space: the empty job
        // slot costs these tasks a byte or two of padding, not a pointer.
        without_job(Inner::with(phase, content), || Err(Error::Cancelled))
    }

    /// A task queued on the pool with id `pool`, its closure beside its state.
    pub(crate) fn queued<F>(pool: usize, f: F) -> TaskRef<T>
    where
        F: FnOnce() -> Result<T, Error> + Send + 'static,
    {
        Arc::new(TaskCell {
            state: Inner::with(PENDING, Content::Own(pool)),
            job: Mutex::new(Some(f)),
        })
    }

    #[inline]
    pub(crate) fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    /// PENDING → RUNNING. False when the task was cancelled (or failed) while queued.
    #[inline]
    fn start(&self) -> bool {
        self.phase
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Decides the outcome, runs the hooks, publishes the outcome and wakes
    /// every waiter. Returns false (and drops `outcome`) when the outcome was
    /// already decided. With `cancelling`, the cleanup runs first, on this thread.
    pub(crate) fn settle(&self, outcome: Result<T, Error>, cancelling: bool) -> bool {
        let mut slot = self.slot.lock();
        let mut phase = self.phase.load(Ordering::Acquire);
        loop {
            if state::is_decided(phase) {
                drop(slot);
                drop(outcome);
                return false;
            }
            // Only PENDING → RUNNING happens without the lock; retry on it.
            match self
                .phase
                .compare_exchange(phase, SETTLING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => phase = now,
            }
        }
        let published = match (&outcome, cancelling) {
            (Ok(_), _) => DONE,
            (Err(_), true) => CANCELLED,
            (Err(_), false) => FAILED,
        };
        if slot.hooks.is_none() {
            // Nobody registered a hook, and nobody can while the lock is
            // held: publish at once.
            let stale = std::mem::replace(&mut slot.content, Content::Outcome(outcome));
            self.phase.store(published, Ordering::Release);
            self.cond.notify_all();
            drop(slot);
            drop(stale);
            return true;
        }
        let mut hooks = slot.hooks.take();
        drop(slot);

        if cancelling {
            if let Some(cleanup) = hooks.as_mut().and_then(|h| h.cleanup.take()) {
                run_guarded(cleanup);
            }
        }
        // Callbacks registered while earlier ones run are picked up on the next round.
        let mut continuation = None;
        let mut waker = None;
        let mut listeners = Vec::new();
        loop {
            if let Some(mut h) = hooks.take() {
                for callback in h.callbacks.drain(..) {
                    run_guarded(|| callback(&outcome));
                }
                continuation = continuation.or(h.continuation.take());
                waker = waker.or(h.waker.take());
                listeners.append(&mut h.listeners);
            }
            let mut slot = self.slot.lock();
            hooks = slot.hooks.take();
            if hooks.as_ref().is_some_and(|h| !h.callbacks.is_empty()) {
                continue;
            }
            if let Some(h) = hooks.as_mut() {
                continuation = continuation.or(h.continuation.take());
                waker = waker.or(h.waker.take());
                listeners.append(&mut h.listeners);
            }
            // A closure still queued (the task was cancelled or refused
            // before it ran) is dropped after the lock is released.
            let stale = match continuation {
                Some(next) => {
                    let stale = std::mem::replace(&mut slot.content, Content::Empty);
                    self.phase.store(published, Ordering::Release);
                    drop(slot);
                    next(outcome);
                    stale
                }
                None => {
                    let stale = std::mem::replace(&mut slot.content, Content::Outcome(outcome));
                    self.phase.store(published, Ordering::Release);
                    self.cond.notify_all();
                    drop(slot);
                    stale
                }
            };
            drop(stale);
            break;
        }
        if let Some(waker) = waker {
            waker.wake();
        }
        for (listener, key) in listeners {
            listener.fire(key);
        }
        true
    }

    /// Marks a call about to be queued on the instance with `key`.
    pub(crate) fn put_on_instance(&self, key: usize) {
        self.slot.lock().content = Content::OnInstance(key);
    }

    /// True when waiting for this task would wait for the queue of an
    /// instance whose call is running on this thread (it cannot move).
    fn waits_on_own_instance(&self) -> bool {
        // Outside every instance's calls (the common case) no lock is taken.
        !state::is_published(self.phase())
            && instance::draining_any()
            && matches!(self.slot.lock().content,
                Content::OnInstance(key) if instance::draining(key))
    }

    /// Stores the closure of a task about to be queued on `pool`.
    pub(crate) fn put_job(&self, job: Claimable<T>) {
        self.slot.lock().content = Content::Queued(job);
    }

    fn take_outcome(&self) -> Result<T, Error> {
        self.slot
            .lock()
            .take_outcome()
            .expect("a published outcome is taken only by the handle that consumes itself")
    }
}

impl<T: Send + 'static> dyn Task<T> {
    /// Blocks until the outcome is published or the deadline passes; true
    /// when published. A Ctrl-C during the wait cancels this task with
    /// `Err(Interrupted)` (its cleanup runs here), unless it finished first.
    pub(crate) fn wait_until(self: &Arc<Self>, deadline: Option<Instant>) -> bool {
        if !state::is_published(self.phase()) {
            self.claim();
        }
        loop {
            let blocked = block(
                &self.slot,
                &self.cond,
                |_| state::is_published(self.phase()),
                || state::is_published(self.phase()),
                deadline,
                || self.clone(),
            );
            match blocked {
                Blocked::Ready => return true,
                Blocked::TimedOut => return false,
                Blocked::Interrupted(registration) => {
                    self.interrupt();
                    drop(registration);
                }
            }
        }
    }

    /// On a worker of the pool this task is queued on: takes the task and
    /// runs it here, instead of waiting for it to come up in the queue.
    fn claim(self: &Arc<Self>) {
        let Some(worker_pool) = pool::current_pool_id() else {
            return;
        };
        let taken = self.slot.lock().take_queued(Some(worker_pool));
        run_taken(self.clone(), taken);
    }
}

/// Runs a queued task taken out of its queue by the pool's job.
pub(crate) fn run_queued<T: Send + 'static>(task: TaskRef<T>) {
    let taken = task.slot.lock().take_queued(None);
    run_taken(task, taken);
}

/// Fails a queued task its pool refused with `Shutdown`, dropping its closure.
pub(crate) fn reject_queued<T: Send + 'static>(task: TaskRef<T>) {
    let taken = task.slot.lock().take_queued(None);
    drop(taken);
    task.fail(Error::Shutdown);
}

fn run_taken<T: Send + 'static>(task: TaskRef<T>, taken: Option<Taken<T>>) {
    match taken {
        Some(Taken::Boxed(job)) => run_claimed(task, job),
        Some(Taken::Own) => task.run_own(),
        None => {}
    }
}

impl<T: Send + 'static> Wakeable for Inner<T> {
    fn wake(&self) {
        let _slot = self.slot.lock();
        self.cond.notify_all();
    }
}

impl<T: Send + 'static> Cancellable for Inner<T> {
    fn cancel(&self) -> bool {
        if state::is_decided(self.phase()) {
            return false;
        }
        self.settle(Err(Error::Cancelled), true)
    }

    fn is_cancelled(&self) -> bool {
        // Inside the running task, any decided phase means a cancellation:
        // only the task itself completes, and it has not returned yet.
        state::is_decided(self.phase())
    }

    fn phase(&self) -> u8 {
        Inner::phase(self)
    }

    fn fail(&self, error: Error) {
        self.settle(Err(error), false);
    }

    fn interrupt(&self) {
        self.settle(Err(Error::Interrupted), true);
    }
}

impl<T: Send + 'static> Watchable for Inner<T> {
    fn watch(&self, listener: &Arc<Listener>, key: u64) -> bool {
        // Settling collects the listeners and publishes under one lock, so a
        // listener added before publication is always told.
        let mut slot = self.slot.lock();
        if state::is_published(self.phase()) {
            return true;
        }
        slot.hooks().listeners.push((listener.clone(), key));
        false
    }

    fn unwatch(&self, listener: &Arc<Listener>) {
        let mut slot = self.slot.lock();
        if let Some(hooks) = slot.hooks.as_mut() {
            hooks.listeners.retain(|(l, _)| !Arc::ptr_eq(l, listener));
        }
    }
}

/// Runs a claimed closure: fails it with `Shutdown` on a pool shut down
/// with `shutdown_now`, else runs it as [`run_task_with`] does.
pub(crate) fn run_claimed<T: Send + 'static>(inner: TaskRef<T>, job: Claimable<T>) {
    if pool::discarding() {
        drop(job);
        inner.fail(Error::Shutdown);
    } else {
        run_task_with(inner, || job.run(), |_| ());
    }
}

/// Runs a task's closure on the current thread: checks that it was not
/// cancelled while queued, installs its cancellation flag, catches its panic,
/// and settles its future with the closure's outcome (which may be an
/// [`Error`] of its own). The closure is dropped here, exactly once.
/// `before` sees the outcome before it is published, so that whatever it
/// records is visible to every waiter.
pub(crate) fn run_task_with<T, F>(inner: TaskRef<T>, f: F, before: impl FnOnce(&Result<T, Error>))
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error>,
{
    if !inner.start() {
        return;
    }
    let task: Arc<dyn Cancellable> = inner.clone();
    let outcome = run_as(Some(task), f);
    before(&outcome);
    inner.settle(outcome, false);
}

/// Runs `f` as `task` (what [`cancel::cancelled`] reports on), turning its
/// panic into [`Error::Panicked`].
fn run_as<T>(
    task: Option<Arc<dyn Cancellable>>,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    let _current = cancel::enter(task);
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::Panicked(panic_message(&*payload))))
}

/// Runs a task's closure on the current thread before its future exists
/// (the inline backend): nobody holds a handle that could cancel it, so it
/// runs as a task that is not cancelled, and its future is made finished.
pub(crate) fn run_inline<T, F>(f: F) -> Future<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error>,
{
    let outcome = run_as(None, f);
    let phase = if outcome.is_ok() { DONE } else { FAILED };
    Future {
        inner: Inner::task(phase, Content::Outcome(outcome)),
    }
}

impl<T: Send + 'static> Future<T> {
    /// A pending future and the shared state its job will settle.
    pub(crate) fn pending() -> (Self, TaskRef<T>) {
        let inner = Inner::task(PENDING, Content::Empty);
        (
            Future {
                inner: inner.clone(),
            },
            inner,
        )
    }

    /// A future that is already done with `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Future;
    ///
    /// let f = Future::ready("calibrated");
    /// assert!(f.done());
    /// assert_eq!(f.result(), Ok("calibrated"));
    /// ```
    pub fn ready(value: T) -> Self {
        Future {
            inner: Inner::task(DONE, Content::Outcome(Ok(value))),
        }
    }

    /// A future that has already failed with `error`: useful where a
    /// function returning a `Future` refuses its input before any work starts.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Future};
    ///
    /// let f: Future<u32> = Future::failed(Error::Shutdown);
    /// assert!(f.done());
    /// assert_eq!(f.result(), Err(Error::Shutdown));
    /// ```
    pub fn failed(error: Error) -> Self {
        let phase = if error == Error::Cancelled {
            CANCELLED
        } else {
            FAILED
        };
        Future {
            inner: Inner::task(phase, Content::Outcome(Err(error))),
        }
    }

    /// True once the task has finished: with a value, a failure, or a
    /// cancellation (as Python's `Future.done()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Future;
    ///
    /// assert!(Future::ready(1).done());
    /// ```
    #[inline]
    pub fn done(&self) -> bool {
        state::is_published(self.inner.phase())
    }

    /// True while the closure runs (and not yet cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Pool;
    /// use std::sync::mpsc;
    ///
    /// let pool = Pool::builder().threads(1).backend(concertina::Backend::Crossbeam).build()?;
    /// let (started_tx, started) = mpsc::channel();
    /// let (release, release_rx) = mpsc::channel::<()>();
    /// let f = pool.spawn(move || {
    ///     started_tx.send(()).unwrap();
    ///     release_rx.recv().unwrap();
    /// });
    /// started.recv().unwrap();
    /// assert!(f.running());
    /// release.send(()).unwrap();
    /// f.result()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    #[inline]
    pub fn running(&self) -> bool {
        self.inner.phase() == RUNNING
    }

    /// True when the task was cancelled (or its wait interrupted).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Future};
    ///
    /// let f: Future<()> = Future::failed(Error::Cancelled);
    /// assert!(f.cancelled());
    /// ```
    #[inline]
    pub fn cancelled(&self) -> bool {
        self.inner.phase() == CANCELLED
    }

    /// Waits at most `timeout` for the task to finish; true when it has.
    ///
    /// On a pool worker the wait runs other queued work of that pool meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Pool;
    /// use std::time::Duration;
    ///
    /// let pool = Pool::builder().threads(1).build()?;
    /// let f = pool.spawn(|| 1 + 1);
    /// assert!(f.wait_timeout(Duration::from_secs(10)));
    /// assert!(f.done());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // An unrepresentable deadline means "forever".
        let deadline = Instant::now().checked_add(timeout);
        self.inner.wait_until(deadline)
    }

    /// Waits for the task and returns its value.
    ///
    /// # Errors
    ///
    /// [`Error::Panicked`] with the panic message when the closure panicked,
    /// [`Error::Cancelled`] when the task was cancelled, [`Error::Shutdown`]
    /// when its pool shut down before it ran, [`Error::Config`] when the
    /// default pool could not be configured, and [`Error::SelfWait`], at
    /// once, for a call of an [`Instance`](crate::Instance) not yet finished
    /// when waited on from inside a call on that same instance (it could
    /// only run after the waiting call returns).
    ///
    /// # Examples
    ///
    /// ```
    /// let f = concertina::spawn(|| (1..=10).sum::<u32>());
    /// assert_eq!(f.result(), Ok(55));
    /// ```
    pub fn result(self) -> Result<T, Error> {
        if self.inner.waits_on_own_instance() {
            return Err(Error::SelfWait);
        }
        self.inner.wait_until(None);
        self.inner.take_outcome()
    }

    /// Waits for the task and surfaces its failure, giving the finished
    /// future back on success (Concert's `join`).
    ///
    /// # Errors
    ///
    /// The same as [`Future::result`].
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Pool};
    ///
    /// let pool = Pool::builder().threads(1).build()?;
    /// let f = pool.spawn(|| 3).join()?;
    /// assert!(f.done());
    /// assert_eq!(f.result()?, 3);
    ///
    /// let bad = pool.spawn(|| -> u32 { panic!("limit switch hit") });
    /// assert_eq!(bad.join().unwrap_err(), Error::Panicked("limit switch hit".into()));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn join(self) -> Result<Self, Error> {
        if self.inner.waits_on_own_instance() {
            return Err(Error::SelfWait);
        }
        self.inner.wait_until(None);
        let mut slot = self.inner.slot.lock();
        match slot.take_outcome() {
            Some(Err(error)) => Err(error),
            value => {
                if let Some(value) = value {
                    slot.content = Content::Outcome(value);
                }
                drop(slot);
                Ok(self)
            }
        }
    }

    /// Cancels the task. True when this call cancelled it.
    ///
    /// * Queued: it will never run.
    /// * Running: [`cancelled()`](crate::cancelled) turns true inside it, and
    ///   its value, when it returns one, is dropped.
    ///
    /// In both cases the cleanup registered with [`Future::on_cancel`] runs at
    /// once on this thread, then waiters get `Err(Cancelled)`. When the task
    /// has already finished (or another cancel won), nothing happens and this
    /// returns false. The cleanup runs at most once, whatever the race.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Error, Pool};
    /// use std::sync::mpsc;
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let (release, gate) = mpsc::channel::<()>();
    /// let blocker = pool.spawn(move || gate.recv().unwrap());
    /// let queued = pool.spawn(|| unreachable!("cancelled before it ran"));
    /// assert!(queued.cancel());
    /// assert!(!queued.cancel(), "only the first cancel wins");
    /// release.send(()).unwrap();
    /// blocker.result()?;
    /// assert_eq!(queued.result(), Err(Error::Cancelled));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        Cancellable::cancel(&*self.inner)
    }

    /// A handle that can cancel this task from another thread while this
    /// one is consumed by a wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Error, Pool};
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let f = pool.spawn(|| while !concertina::cancelled() { std::thread::yield_now() });
    /// let stop = f.cancel_handle();
    /// std::thread::spawn(move || stop.cancel());
    /// assert_eq!(f.result(), Err(Error::Cancelled));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::new(self.inner.clone())
    }

    /// Registers the cleanup that a winning [`cancel`](Future::cancel) runs
    /// (Concert's `cancel_operation`: stop the motor), and returns the future.
    ///
    /// The cleanup runs on the cancelling thread, before waiters are released,
    /// at most once. Registered twice, both run, in order. Registered after the
    /// task finished (or was cancelled), it is dropped without running. A
    /// panic in the cleanup is caught (and reported on stderr by the panic hook);
    /// the cancellation stands.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Pool};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let stopped = Arc::new(AtomicBool::new(false));
    /// let flag = stopped.clone();
    /// let motion = pool
    ///     .spawn(|| while !concertina::cancelled() { std::thread::yield_now() })
    ///     .on_cancel(move || flag.store(true, Ordering::SeqCst));
    /// assert!(motion.cancel());
    /// assert!(stopped.load(Ordering::SeqCst));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn on_cancel(self, cleanup: impl FnOnce() + Send + 'static) -> Self {
        let mut slot = self.inner.slot.lock();
        if !state::is_decided(self.inner.phase()) {
            let hooks = slot.hooks();
            hooks.cleanup = Some(match hooks.cleanup.take() {
                None => Box::new(cleanup),
                Some(first) => Box::new(move || {
                    run_guarded(first);
                    cleanup();
                }),
            });
        }
        drop(slot);
        self
    }

    /// Calls `callback` with the outcome once the task finishes (Python's
    /// `add_done_callback`): on the thread that finishes it, or at once on
    /// this thread when it has already finished. Each callback fires exactly
    /// once; a panic in it is caught and does not disturb the task, the other
    /// callbacks or the waiters.
    ///
    /// A callback must not wait on the future it is registered on.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Future;
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let f = Future::ready(5);
    /// f.on_done(move |outcome| tx.send(*outcome.as_ref().unwrap()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 5);
    /// ```
    pub fn on_done(&self, callback: impl FnOnce(&Result<T, Error>) + Send + 'static) {
        let mut slot = self.inner.slot.lock();
        if state::is_published(self.inner.phase()) {
            if let Some(outcome) = slot.outcome() {
                run_guarded(|| callback(outcome));
            }
        } else {
            slot.hooks().callbacks.push(Box::new(callback));
        }
    }

    /// Runs `next` with the value once this task succeeds, and returns the
    /// future of its result. A failure of this task (panic, cancellation,
    /// shutdown) becomes the failure of the returned future, and `next` never
    /// runs.
    ///
    /// `next` is submitted to the pool of the worker that finished this task;
    /// when that thread is not a pool worker (an inline pool, or a task that
    /// had already finished), it goes to the [default pool](crate::spawn).
    /// Cancelling the returned future cancels this one too.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Pool;
    ///
    /// let pool = Pool::builder().threads(2).build()?;
    /// let counts = pool.spawn(|| vec![3, 4, 5]);
    /// let total = counts.then(|v| v.iter().sum::<u32>());
    /// assert_eq!(total.result()?, 12);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn then<U, G>(self, next: G) -> Future<U>
    where
        U: Send + 'static,
        G: FnOnce(T) -> U + Send + 'static,
    {
        let (derived, derived_inner) = Future::<U>::pending();
        let source = self.cancel_handle();
        let derived = derived.on_cancel(move || {
            source.cancel();
        });
        self.on_outcome(move |outcome| match outcome {
            Ok(value) => pool::submit_continuation(derived_inner, move || next(value)),
            Err(error) => {
                derived_inner.settle(Err(error), false);
            }
        });
        derived
    }

    /// A future that finishes when this one does, without taking its value:
    /// `Ok(())` when this one succeeded, else the same error. Useful to make
    /// other work wait for this future while its owner keeps it.
    ///
    /// # Examples
    ///
    /// ```
    /// let reading = concertina::spawn(|| 4.2_f64);
    /// let finished = reading.when_done();
    /// assert_eq!(finished.result(), Ok(()));
    /// assert_eq!(reading.result(), Ok(4.2), "the value is still there");
    /// ```
    pub fn when_done(&self) -> Future<()> {
        let (signal, inner) = Future::<()>::pending();
        self.on_done(move |outcome| {
            inner.settle(outcome.as_ref().map(|_| ()).map_err(Clone::clone), false);
        });
        signal
    }

    /// Hands the outcome, by value, to `next` once published: on the thread
    /// that settles it, or at once on this thread when already published.
    pub(crate) fn on_outcome(self, next: impl FnOnce(Result<T, Error>) + Send + 'static) {
        let mut slot = self.inner.slot.lock();
        if state::is_published(self.inner.phase()) {
            let outcome = slot
                .take_outcome()
                .expect("a published outcome is present until taken");
            drop(slot);
            next(outcome);
        } else {
            slot.hooks().continuation = Some(Box::new(next));
        }
    }
}

impl<T> Future<T> {
    /// The shared state, for the modules that settle or watch futures.
    pub(crate) fn inner(&self) -> &TaskRef<T> {
        &self.inner
    }

    /// The handle of a task whose state is already made.
    pub(crate) fn from_shared(inner: TaskRef<T>) -> Self {
        Future { inner }
    }
}

impl<T, E> Future<Result<T, E>>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    /// Waits for a fallible task and flattens its outcome: the task's own
    /// error, or a [`concertina::Error`](Error) converted into `E`.
    ///
    /// # Errors
    ///
    /// The task's `Err(e)`, or `E::from` the failure of the task itself.
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(Debug)]
    /// enum ReadError { Timeout, Task(concertina::Error) }
    /// impl From<concertina::Error> for ReadError {
    ///     fn from(e: concertina::Error) -> Self { ReadError::Task(e) }
    /// }
    ///
    /// let read = concertina::spawn(|| -> Result<u16, ReadError> { Err(ReadError::Timeout) });
    /// assert!(matches!(read.try_result(), Err(ReadError::Timeout)));
    ///
    /// let read = concertina::spawn(|| -> Result<u16, ReadError> { panic!("cable unplugged") });
    /// assert!(matches!(read.try_result(), Err(ReadError::Task(concertina::Error::Panicked(_)))));
    /// ```
    pub fn try_result(self) -> Result<T, E> {
        self.result()?
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Future")
            .field(
                "state",
                &state::name(self.inner.phase.load(Ordering::Acquire)),
            )
            .finish()
    }
}

/// The `std::future::Future` made by `.await`ing a [`Future`]: it resolves
/// to the task's outcome without blocking the executor's thread.
///
/// Dropping it detaches the task, as dropping the handle does.
///
/// # Examples
///
/// ```
/// use std::future::IntoFuture;
///
/// let f = concertina::spawn(|| 2 + 2);
/// let awaiting: concertina::Awaiting<i32> = f.into_future();
/// # drop(awaiting);
/// ```
#[must_use = "an Awaiting does nothing unless polled"]
pub struct Awaiting<T> {
    inner: TaskRef<T>,
}

impl<T: Send + 'static> std::future::IntoFuture for Future<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Awaiting<T>;

    fn into_future(self) -> Awaiting<T> {
        Awaiting { inner: self.inner }
    }
}

impl<T: Send + 'static> std::future::Future for Awaiting<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &self.inner;
        if !state::is_published(inner.phase()) {
            let mut slot = inner.slot.lock();
            if !state::is_published(inner.phase()) {
                let hooks = slot.hooks();
                match &hooks.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => hooks.waker = Some(cx.waker().clone()),
                }
                return Poll::Pending;
            }
        }
        Poll::Ready(inner.take_outcome())
    }
}

impl<T> fmt::Debug for Awaiting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Awaiting")
            .field(
                "state",
                &state::name(self.inner.phase.load(Ordering::Acquire)),
            )
            .finish()
    }
}
