//! A task as its handles hold it: the shared state with the closure kept
//! beside it in one allocation, erased behind [`Task`]; and claiming, the
//! one way a wait runs anything: the very task it waits on, while that is
//! still queued.

use std::ops::Deref;
use std::sync::{Arc, Weak};

use crate::cancel::Cancellable;
use crate::error::Error;
use crate::graph::{self, Node, Waits};
use crate::interrupt::{self, Wakeable};
use crate::park;
use crate::sync::{Condvar, Mutex};
use crate::task::inner::{Claim, Content, Drive, Driven, Inner, Queue, Slot};
use crate::task::listener::{Listener, Watchable};
use crate::task::phase::{self, PENDING};
use crate::task::running::{catch, InterruptRun};
use crate::task::settle::published_phase;
use crate::worker::{self, Job, Runnable};

/// A task's state as its handles hold it.
pub(crate) type TaskRef<T> = Arc<dyn Task<T>>;

/// A task's state ([`Inner`]) and the closure kept beside it.
pub(crate) trait Task<T>: Watchable + Wakeable + Runnable + Send + Sync {
    fn state(&self) -> &Inner<T>;

    /// Runs the task's closure on this thread: the one kept beside the
    /// state (see [`Content::Own`]) or a boxed one in the slot, whichever
    /// it has, for whoever takes it first (the pool's queue or a wait that
    /// claims it); nothing when somebody took it already or the task was
    /// decided first.
    fn run_here(self: Arc<Self>);
}

impl<T> Deref for dyn Task<T> {
    type Target = Inner<T>;

    fn deref(&self) -> &Inner<T> {
        self.state()
    }
}

/// A task's state with the closure it runs, in one allocation.
struct TaskCell<T, F> {
    state: Inner<T>,
    /// The closure until whoever runs it takes it; dropped at once when the
    /// task is decided before it ran.
    job: Mutex<Option<F>>,
}

/// A task queued on a pool, its closure beside its state.
pub(crate) fn queued<T, F>(f: F) -> TaskRef<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    Arc::new(TaskCell {
        state: Inner::with(PENDING, Content::Own),
        job: Mutex::new(Some(f)),
    })
}

/// A pending task settled from outside (a remote call, a parameter's
/// outer future): nothing to claim.
pub(crate) fn pending<T: Send + 'static>() -> TaskRef<T> {
    detached(PENDING, Content::Empty)
}

/// As [`pending`], named in the wait graph's reports and snapshots (a
/// remote call and where it runs); with `driver`, a wait for it serves that
/// transport before it sleeps (see [`Drive`]).
pub(crate) fn pending_named<T: Send + 'static>(
    name: Arc<str>,
    driver: Option<Arc<dyn Drive>>,
) -> TaskRef<T> {
    let content = match driver {
        Some(driver) => Content::Driven(Box::new(Driven { name, driver })),
        None => Content::Named(name),
    };
    detached(PENDING, content)
}

/// A published task of `outcome` (a finished future that needs a task).
pub(crate) fn finished<T: Send + 'static>(outcome: Result<T, Error>) -> TaskRef<T> {
    detached(published_phase(&outcome, false), Content::Outcome(outcome))
}

/// A published task of no value, in `phase` (a cancel handle of a finished
/// future: it reports, it cannot cancel).
pub(crate) fn finished_as(phase: u8) -> TaskRef<()> {
    detached(phase, Content::Empty)
}

/// A derived future, settled by its `sources`, which the deadlock
/// detection and claiming follow.
pub(crate) fn derived<T: Send + 'static>(sources: &[Arc<dyn Watchable>]) -> TaskRef<T> {
    let sources = sources.iter().map(Arc::downgrade).collect();
    detached(PENDING, Content::After(sources))
}

/// A call queued on a serial queue, run by the queue's drain.
pub(crate) fn on_queue<T: Send + 'static>(queue: Weak<dyn Queue>) -> TaskRef<T> {
    detached(PENDING, Content::OnQueue(queue))
}

/// A task that keeps no closure beside its state.
fn detached<T: Send + 'static>(phase: u8, content: Content<T>) -> TaskRef<T> {
    fn no_job<T, F>(state: Inner<T>, _type_only: F) -> TaskRef<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, Error> + Send + 'static,
    {
        Arc::new(TaskCell {
            state,
            job: Mutex::new(None::<F>),
        })
    }
    // A closure that captures nothing takes no space: the empty job slot
    // costs these tasks a byte or two of padding, not a pointer.
    no_job(Inner::with(phase, content), || Err(Error::Cancelled))
}

impl<T: Send + 'static, F> TaskCell<T, F> {
    /// Drops the closure once the task is decided without having run it
    /// (cancelled, refused), so that what it holds is released at once.
    fn drop_job_if_decided(&self) {
        // A closure without drop glue (one that captures nothing to drop,
        // or a task that keeps none) has nothing to release early.
        // `phase` reads with Acquire: pairs with the phase change made under
        // the slot lock by whoever decided the task.
        if std::mem::needs_drop::<F>() && phase::is_decided(self.state.phase()) {
            let job = self.job.lock().take();
            drop(job);
        }
    }

    fn key(&self) -> usize {
        self as *const Self as *const () as usize
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

    fn run_here(self: Arc<Self>) {
        // The closure's own lock decides who runs it (`start` then decides
        // whether it still may); a boxed one is taken out of the slot.
        let own = self.job.lock().take();
        match own {
            Some(f) => run_task(self, f, |_| ()),
            None => {
                if let Some(f) = self.state.take_boxed() {
                    run_task(self, f, |_| ());
                }
            }
        }
    }
}

impl<T: Send + 'static, F: Send> TaskCell<T, F> {
    /// After a cancel (`won` when it decided the outcome): traced, and the
    /// closure dropped if it never ran.
    fn cancelled_now(&self, won: bool) -> bool {
        if won {
            crate::trace::cancelled(|| self.describe());
        }
        self.drop_job_if_decided();
        won
    }
}

impl<T: Send + 'static, F: Send> Cancellable for TaskCell<T, F> {
    fn cancel(&self) -> bool {
        self.cancelled_now(self.state.cancel())
    }

    fn cancel_unstarted(&self) -> bool {
        self.cancelled_now(self.state.cancel_unstarted())
    }

    fn phase(&self) -> u8 {
        self.state.phase()
    }

    fn is_done(&self) -> bool {
        phase::is_published(self.state.phase())
    }

    fn is_cancelled_and_done(&self) -> bool {
        self.state.phase() == phase::CANCELLED
    }

    fn phase_name(&self) -> &'static str {
        phase::name(self.state.phase())
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

impl<T, F> Runnable for TaskCell<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    fn run_from_queue(self: Arc<Self>) {
        if worker::discarding() {
            self.reject();
        } else {
            self.run_here();
        }
    }

    fn reject(self: Arc<Self>) {
        // The closure, never to run, is dropped as the task is decided.
        Cancellable::fail(&*self, Error::Shutdown);
    }
}

impl<T: Send + 'static, F: Send> Wakeable for TaskCell<T, F> {
    fn wake(&self) {
        self.state.wake();
    }
}

impl<T: Send + 'static, F: Send> Node for TaskCell<T, F> {
    fn waits(&self) -> Waits {
        self.state.waits(self.key())
    }

    fn describe(&self) -> String {
        let name = std::any::type_name::<F>();
        match self.state.kind() {
            Some(kind) => kind,
            None if name.contains("::no_job") => "a task".to_owned(),
            None => format!("task `{}`", closure_name(name)),
        }
    }

    fn set_waiting(&self, waits: Option<Waits>) {
        self.state.set_waiting(waits);
    }

    fn is_cancelled(&self) -> bool {
        self.state.is_cancelled()
    }

    fn interrupt_run(&self) {
        Cancellable::interrupt(self);
    }

    fn fail_run(&self, error: Error) {
        Cancellable::fail(self, error);
    }

    fn spawned_by(&self) -> Option<graph::Spawners> {
        self.state.spawned_by()
    }
}

impl<T, F> Watchable for TaskCell<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    fn watch(&self, listener: &Arc<Listener>, key: u64) -> bool {
        self.state.watch(listener, key)
    }

    fn unwatch(&self, listener: &Arc<Listener>) {
        self.state.unwatch(listener);
    }

    fn claim(self: Arc<Self>, here: bool) -> bool {
        let task: TaskRef<T> = self;
        task.claim_queued(here)
    }
}

impl<T: Send + 'static> dyn Task<T> {
    /// On a pool worker, runs this task when it is still queued: here, as
    /// part of the wait (the waiting task's frame records that it waits on
    /// it), or, when this stack is more than half used, on a spare thread of
    /// the worker's pool. A call on a serial queue is claimed by running its
    /// queue up to it; a derived future by claiming its sources. True when
    /// something was claimed.
    ///
    /// Nothing else is ever run inside a wait. A wait with a deadline
    /// passes `here = false`: it hands what it claims to a spare thread, so
    /// that it can still return at its deadline.
    pub(crate) fn claim_queued(self: &Arc<Self>, here: bool) -> bool {
        if self.phase() != PENDING || !worker::on_worker() {
            return false;
        }
        let Some(claimed) = self.take_claim() else {
            return false;
        };
        if let Claim::Sources(sources) = claimed {
            return sources.into_iter().any(|s| s.claim(here));
        }
        let key = key_of(self);
        let me = self.clone();
        if here && worker::stack_room() {
            // The waiting frame cannot go on before this returns.
            let _waiting = graph::record(|| Waits::All(vec![self.clone() as Arc<dyn Node>]));
            return match claimed {
                Claim::Run => {
                    me.run_here();
                    true
                }
                Claim::Call(queue) => queue.claim(key),
                Claim::Sources(_) => false,
            };
        }
        let job: Job = match claimed {
            Claim::Run => Box::new(move || me.run_here()),
            Claim::Call(queue) => Box::new(move || {
                queue.claim(key);
            }),
            Claim::Sources(_) => return false,
        };
        match worker::current() {
            Some(worker) => worker.dispatch(job),
            None => job(),
        }
        true
    }
}

/// The user's closure in a closure type's name: the last type argument of
/// this crate's wrappers (`concertina::pool::Pool::spawn<T, F>::{{closure}}`
/// names `F`), with nested `::{{closure}}` suffixes said once.
fn closure_name(name: &str) -> String {
    let mut name = name;
    while name.starts_with("concertina::") {
        let Some(open) = name.find('<') else { break };
        let mut depth = 0;
        let mut last_arg = open + 1;
        let mut close = None;
        for (i, c) in name.char_indices().skip(open) {
            match c {
                '<' => depth += 1,
                '>' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                ',' if depth == 1 => last_arg = i + 1,
                _ => {}
            }
        }
        match close {
            Some(close) => name = name[last_arg..close].trim(),
            None => break,
        }
    }
    let mut short = name.to_owned();
    while short.contains("::{{closure}}::{{closure}}") {
        short = short.replace("::{{closure}}::{{closure}}", "::{{closure}}");
    }
    short
}

/// Runs a task's closure on the current thread: checks that it was not
/// decided (cancelled, failed) while queued, makes the task this thread's
/// frame (what [`crate::cancelled`] reports on, and who waits in the
/// deadlock detection), catches its panic, and settles its future with the
/// closure's outcome (which may be an [`Error`] of its own). The closure is
/// dropped here, exactly once. `before` sees the outcome before it is
/// published, so that whatever it records is visible to every waiter.
pub(crate) fn run_task<T, F>(task: TaskRef<T>, f: F, before: impl FnOnce(&Result<T, Error>))
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error>,
{
    if !task.start() {
        return;
    }
    let node: Arc<dyn Node> = task.clone();
    // Run inline (not on a pool worker), a task is what the thread waits
    // for: a Ctrl-C interrupts it as it would interrupt a wait. Its caller
    // cannot go on before it returns: it waits on it (and lends it its
    // locks).
    let _inline = (!worker::on_worker()).then(|| {
        (
            interrupt::register(Arc::new(InterruptRun(node.clone()))),
            graph::record(|| Waits::All(vec![node.clone()])),
        )
    });
    let outcome = {
        let _frame = graph::enter(node);
        catch(f).0
    };
    before(&outcome);
    task.settle(outcome, false);
}

/// A wait for a task's outcome: released, or, on one of the task's own
/// done-callbacks, at once (`take_outcome` then reports the self-wait).
impl<T: Send + 'static> park::Waiter for Arc<dyn Task<T>> {
    type State = Slot<T>;

    fn lock(&self) -> &Mutex<Slot<T>> {
        &self.slot
    }

    fn cond(&self) -> &Condvar {
        &self.cond
    }

    fn ready(&self, slot: &Slot<T>) -> bool {
        self.is_released() || slot.lent_here()
    }

    fn quick(&self) -> bool {
        self.is_released()
    }

    fn target(&self) -> Arc<dyn Wakeable> {
        self.clone()
    }

    fn waits(&self) -> Waits {
        Waits::All(vec![self.clone() as Arc<dyn Node>])
    }
}

/// The identity of a task in the wait graph (as [`park`] computes it).
pub(crate) fn key_of<T>(task: &TaskRef<T>) -> usize {
    Arc::as_ptr(task) as *const () as usize
}

impl<T: Send + 'static> dyn Task<T> {
    /// Blocks until the outcome is published or the deadline passes; true
    /// when published. Claims the task first when it is still queued (see
    /// `claim_queued`). A Ctrl-C during the wait cancels this task
    /// with `Err(Interrupted)` (its cleanup runs here), unless it finished
    /// first; a wait that closes a deadlock fails it with `Err(Deadlock)`.
    pub(crate) fn wait_until(self: &Arc<Self>, deadline: Option<std::time::Instant>) -> bool {
        self.wait_beside(deadline, None)
    }

    /// As `wait_until`, lending this thread's locks
    /// also to `beside` (the other futures a multi-wait comes to next),
    /// which the deadlock search does not follow (see `Node::blocks`).
    pub(crate) fn wait_beside(
        self: &Arc<Self>,
        deadline: Option<std::time::Instant>,
        beside: Option<&Arc<dyn Node>>,
    ) -> bool {
        if self.is_released() {
            return true;
        }
        // A wait with a deadline does not run the task here (it could keep
        // the wait far past its deadline): a spare thread runs it.
        self.claim_queued(deadline.is_none());
        self.drive(deadline);
        let waiter = Beside { task: self, beside };
        loop {
            match park::block(&waiter, deadline) {
                park::Blocked::Ready => return true,
                park::Blocked::TimedOut => return false,
                park::Blocked::Interrupted(registration) => {
                    self.interrupt();
                    drop(registration);
                }
                park::Blocked::Deadlock(error) => self.fail(error),
            }
        }
    }

    /// Serves the transport of a remote call while waiting for it, when it
    /// lets its waiters (see [`Drive`]), until it is settled, the deadline
    /// passes or the transport has had enough; then the wait goes on as any
    /// does. Registered for Ctrl-C meanwhile: one interrupts the call as
    /// it would a sleeping wait.
    fn drive(self: &Arc<Self>, deadline: Option<std::time::Instant>) {
        let Some(driver) = self.driver() else {
            return;
        };
        let registration = interrupt::register(park::Waiter::target(self));
        driver.drive(&|| {
            self.is_released()
                || registration.interrupted()
                || deadline.is_some_and(|d| std::time::Instant::now() >= d)
        });
        if registration.interrupted() && !self.is_released() {
            self.interrupt();
        }
        drop(registration);
    }
}

/// A wait for one task that also lends to what stands `beside` it.
struct Beside<'a, T> {
    task: &'a Arc<dyn Task<T>>,
    beside: Option<&'a Arc<dyn Node>>,
}

impl<T: Send + 'static> park::Waiter for Beside<'_, T> {
    type State = Slot<T>;

    fn lock(&self) -> &Mutex<Slot<T>> {
        park::Waiter::lock(self.task)
    }

    fn cond(&self) -> &Condvar {
        park::Waiter::cond(self.task)
    }

    fn ready(&self, slot: &Slot<T>) -> bool {
        park::Waiter::ready(self.task, slot)
    }

    fn quick(&self) -> bool {
        park::Waiter::quick(self.task)
    }

    fn target(&self) -> Arc<dyn Wakeable> {
        park::Waiter::target(self.task)
    }

    fn waits(&self) -> Waits {
        let mut nodes = vec![self.task.clone() as Arc<dyn Node>];
        nodes.extend(self.beside.cloned());
        Waits::All(nodes)
    }
}
