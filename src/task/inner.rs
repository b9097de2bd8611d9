//! A task's shared state: its phase, its slot (the queued closure or the
//! outcome, and the hooks), and what handles and queues ask of it; the one
//! place an outcome is decided and published is beside it ([`super::settle`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::task::Waker;

use crate::error::Error;
use crate::graph::{self, Node, Spawners, Waits};
use crate::sync::{self, AtomicU8, Condvar, Mutex, ThreadId};
use crate::task::listener::{Listener, Watchable};
use crate::task::phase::{self, LENT, PENDING, RUNNING};

use std::sync::atomic::Ordering;

/// The state shared by a task, its handles and whoever cancels it.
///
/// Private to the task room: handles and queues call its methods, and no
/// user code (a cleanup, a callback, a continuation) ever runs while its
/// lock is held.
pub(crate) struct Inner<T> {
    /// One of the phases of [`crate::task::phase`], with [`LENT`] over a
    /// published phase while the done-callbacks borrow the outcome.
    pub(super) phase: AtomicU8,
    /// The queued closure or the outcome, and the hooks.
    pub(super) slot: Mutex<Slot<T>>,
    /// Waiters of the outcome sleep here; publication wakes them.
    pub(super) cond: Condvar,
}

/// A task's slot: visible to the crate only as the state a wait for the
/// task sleeps on (its fields stay in the task room).
pub(crate) struct Slot<T> {
    pub(super) content: Content<T>,
    /// Allocated only when somebody registers a hook (or the running task
    /// records a wait).
    pub(super) hooks: Option<Box<Hooks<T>>>,
}

/// A boxed closure waiting in a task's slot (a `then` continuation).
pub(crate) type Boxed<T> = Box<dyn FnOnce() -> Result<T, Error> + Send>;

/// A copy of an outcome, for the done-callbacks of a shared task.
pub(crate) type Copier<T> = fn(&Result<T, Error>) -> Result<T, Error>;

/// What a task's state holds: its queued closure before it runs, its
/// outcome after publication, or what a pending task waits on. They never
/// coexist, so they share a place.
pub(crate) enum Content<T> {
    Empty,
    /// A boxed closure queued on a pool, until whoever runs it first takes
    /// it: the queued job, or a worker that waits on this task.
    Queued(Boxed<T>),
    /// Present from publication until a consumer takes it.
    Outcome(Result<T, Error>),
    /// Published, the outcome lent to the done-callbacks that this thread
    /// runs; it comes back as [`Content::Outcome`] once they returned.
    Lent(ThreadId),
    /// Queued on a pool, the closure kept beside the state (see
    /// [`crate::task::cell`]); taken as [`Content::Queued`] is.
    Own,
    /// A call queued on a serial queue (or running on it) until published.
    OnQueue(Weak<dyn Queue>),
    /// A derived future, until its sources settle it.
    After(Box<[Weak<dyn Watchable>]>),
    /// Settled from outside (a remote call), named for a snapshot.
    Named(Arc<str>),
    /// As `Named`, from a transport its waiter may serve (see [`Drive`]).
    Driven(Box<Driven>),
}

/// A transport that a thread waiting for one of its calls may serve
/// itself: it receives the reply instead of sleeping until another thread
/// that received it wakes it (MPI, where a wake-up costs many times the
/// message).
pub(crate) trait Drive: Send + Sync {
    /// Serves the transport on this thread until `done()` or for as long as
    /// it sees fit; the wait then sleeps as any does.
    fn drive(&self, done: &dyn Fn() -> bool);
}

/// A remote call's name, and the transport its waiter may serve.
pub(crate) struct Driven {
    pub(crate) name: Arc<str>,
    pub(crate) driver: Arc<dyn Drive>,
}

/// A serial queue (an instance's calls, a parameter's operations), as its
/// pending calls see it.
pub(crate) trait Queue: Send + Sync {
    /// What the call with key `call` waits on: the call running now, or the
    /// dependency the first queued call waits for.
    fn blocker(&self, call: usize) -> Waits;
    /// Runs the queue here, up to and including the call with key `call`,
    /// when no drain runs it now; true when it did.
    fn claim(self: Arc<Self>, call: usize) -> bool;
    /// The instance, for a deadlock report.
    fn describe(&self) -> String;
}

pub(super) type Callback<T> = Box<dyn FnOnce(&Result<T, Error>) + Send>;
pub(super) type Continuation<T> = Box<dyn FnOnce(Result<T, Error>) + Send>;

pub(super) struct Hooks<T> {
    pub(super) cleanup: Option<Box<dyn FnOnce() + Send>>,
    pub(super) callbacks: Vec<Callback<T>>,
    /// Receives the outcome by value instead of the slot (set by `then`,
    /// which consumes the only handle).
    pub(super) continuation: Option<Continuation<T>>,
    pub(super) waker: Option<Waker>,
    /// Multi-future waits (`wait_any`, `as_completed`, `RequestPool`) told on publication.
    pub(super) listeners: Vec<(Arc<Listener>, u64)>,
    /// While the running task waits: what it waits on (deadlock detection).
    pub(super) waiting: Option<Waits>,
    /// While a cancel runs the task's cleanup: who runs it (what its
    /// settling waits on, for the deadlock detection).
    pub(super) settler: Option<Arc<dyn Node>>,
    /// Set for a shared task (whose outcome is read by many and never
    /// taken): its done-callbacks get a copy, and the outcome stays in
    /// place for every reader.
    pub(super) copier: Option<Copier<T>>,
    /// Created while something was locked: whom the task acts for.
    pub(super) spawners: Option<Spawners>,
}

impl<T> Default for Hooks<T> {
    fn default() -> Self {
        Hooks {
            cleanup: None,
            callbacks: Vec::new(),
            continuation: None,
            waker: None,
            listeners: Vec::new(),
            waiting: None,
            settler: None,
            copier: None,
            spawners: None,
        }
    }
}

impl<T> Hooks<T> {
    pub(super) fn is_empty(&self) -> bool {
        self.cleanup.is_none()
            && self.callbacks.is_empty()
            && self.continuation.is_none()
            && self.waker.is_none()
            && self.listeners.is_empty()
            && self.waiting.is_none()
            && self.settler.is_none()
            && self.copier.is_none()
            && self.spawners.is_none()
    }
}

impl<T> Slot<T> {
    pub(super) fn hooks(&mut self) -> &mut Hooks<T> {
        self.hooks.get_or_insert_with(Box::default)
    }

    pub(super) fn take_outcome(&mut self) -> Option<Result<T, Error>> {
        match std::mem::replace(&mut self.content, Content::Empty) {
            Content::Outcome(outcome) => Some(outcome),
            other => {
                self.content = other;
                None
            }
        }
    }

    /// True when the outcome is lent to callbacks running on this thread:
    /// a wait for it here could never end.
    pub(super) fn lent_here(&self) -> bool {
        matches!(self.content, Content::Lent(id) if id == sync::thread_id())
    }
}

/// What a wait on the outcome from inside one of the task's own
/// done-callbacks gets: it could never end.
fn callback_self_wait() -> Error {
    Error::Deadlock(crate::error::Cycle::new(vec![
        "a done-callback of a task, waiting on that task".to_owned(),
    ]))
}

/// What a claim took out of a task's slot (see [`Inner::take_claim`]).
pub(crate) enum Claim {
    /// The task's closure (kept beside the state, or boxed in the slot):
    /// claimed by running it, when nobody took it first.
    Run,
    /// A call on a serial queue: claimed by running the queue up to it.
    Call(Arc<dyn Queue>),
    /// A derived future: claimed through its sources.
    Sources(Vec<Arc<dyn Watchable>>),
}

/// Runs a user hook, keeping its panic away from the thread that runs it.
/// The panic hook has already reported the panic on stderr.
pub(crate) fn run_guarded(hook: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(hook));
}

impl<T: Send + 'static> Inner<T> {
    pub(crate) fn with(phase: u8, content: Content<T>) -> Self {
        Inner {
            phase: AtomicU8::new(phase),
            slot: Mutex::new(Slot {
                content,
                // One load unless something is locked.
                hooks: graph::spawners().map(|spawners| {
                    Box::new(Hooks {
                        spawners: Some(spawners),
                        ..Hooks::default()
                    })
                }),
            }),
            cond: Condvar::new(),
        }
    }

    /// The phase, without [`LENT`].
    #[inline]
    pub(crate) fn phase(&self) -> u8 {
        // Acquire: pairs with the Release store that publishes an outcome.
        self.phase.load(Ordering::Acquire) & !LENT
    }

    /// True once the outcome is published (`done()`), callbacks or not.
    #[inline]
    pub(crate) fn is_published(&self) -> bool {
        phase::is_published(self.phase())
    }

    /// True once the outcome is published and in place: no done-callback
    /// borrows it. What every wait waits for.
    #[inline]
    pub(crate) fn is_released(&self) -> bool {
        // Acquire: pairs with the Release stores of `settle` and `lend`,
        // made once the outcome is in place.
        let raw = self.phase.load(Ordering::Acquire);
        phase::is_published(raw) && raw & LENT == 0
    }

    /// PENDING → RUNNING, without the lock. False when the task was
    /// decided (cancelled, failed) while queued.
    #[inline]
    pub(crate) fn start(&self) -> bool {
        // AcqRel: the runner sees every write made before the task was
        // queued; a canceller's CAS in `settle` sees the task running.
        self.phase
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Puts a boxed closure (a continuation, made before its closure was
    /// known) into the slot; false, leaving the slot alone, when the task
    /// is already decided (a cancel won the race).
    pub(crate) fn put_boxed(&self, f: Boxed<T>) -> bool {
        let mut slot = self.slot.lock();
        if phase::is_decided(self.phase()) {
            drop(slot);
            drop(f);
            return false;
        }
        slot.content = Content::Queued(f);
        true
    }

    /// Takes a boxed closure out of the slot for whoever runs (or claims)
    /// the task first; `None` when somebody took it already, or the slot
    /// holds something else.
    pub(crate) fn take_boxed(&self) -> Option<Boxed<T>> {
        let mut slot = self.slot.lock();
        match std::mem::replace(&mut slot.content, Content::Empty) {
            Content::Queued(f) => Some(f),
            other => {
                slot.content = other;
                None
            }
        }
    }

    /// Takes the published outcome (the one handle that consumes itself).
    /// A wait from one of the task's own done-callbacks gets `Deadlock`.
    pub(crate) fn take_outcome(&self) -> Result<T, Error> {
        let mut slot = self.slot.lock();
        if slot.lent_here() {
            return Err(callback_self_wait());
        }
        slot.take_outcome()
            .expect("a published outcome is taken only by the handle that consumes itself")
    }

    /// The published failure, taken; `None` (the value left in place) when
    /// the task succeeded. For `join`.
    pub(crate) fn take_failure(&self) -> Option<Error> {
        let mut slot = self.slot.lock();
        if slot.lent_here() {
            return Some(callback_self_wait());
        }
        match &slot.content {
            Content::Outcome(Err(_)) => slot.take_outcome().and_then(Result::err),
            _ => None,
        }
    }

    /// A copy of the published outcome (a shared task's is never taken).
    pub(crate) fn copy_outcome(&self, copy: Copier<T>) -> Result<T, Error> {
        let slot = self.slot.lock();
        match &slot.content {
            Content::Outcome(outcome) => copy(outcome),
            _ if slot.lent_here() => Err(callback_self_wait()),
            _ => unreachable!("a shared task's outcome stays in place once published"),
        }
    }

    /// Makes this a shared task: its done-callbacks get copies made by
    /// `copy`, and its outcome stays in place.
    pub(crate) fn share(&self, copy: Copier<T>) {
        self.slot.lock().hooks().copier = Some(copy);
    }

    /// Adds a cleanup that a winning cancel runs (after those added
    /// before); dropped when the task is already decided.
    pub(crate) fn add_cleanup(&self, cleanup: Box<dyn FnOnce() + Send>) {
        let mut slot = self.slot.lock();
        if phase::is_decided(self.phase()) {
            drop(slot);
            drop(cleanup);
            return;
        }
        let hooks = slot.hooks();
        hooks.cleanup = Some(match hooks.cleanup.take() {
            None => cleanup,
            Some(first) => Box::new(move || {
                run_guarded(first);
                cleanup();
            }),
        });
    }

    /// Hands the outcome, by value, to `next` once published: on the
    /// thread that publishes it, or at once on this thread (the task's only
    /// handle was consumed for it).
    pub(crate) fn on_outcome(&self, next: Continuation<T>) {
        let mut slot = self.slot.lock();
        if self.is_released() {
            let outcome = slot
                .take_outcome()
                .expect("a published outcome is present until taken");
            drop(slot);
            next(outcome);
        } else {
            slot.hooks().continuation = Some(next);
        }
    }

    /// The outcome when released, else `waker` is kept to be woken then.
    pub(crate) fn poll_outcome(&self, waker: &Waker) -> Option<Result<T, Error>> {
        if !self.is_released() {
            let mut slot = self.slot.lock();
            if !self.is_released() {
                let hooks = slot.hooks();
                match &hooks.waker {
                    Some(w) if w.will_wake(waker) => {}
                    _ => hooks.waker = Some(waker.clone()),
                }
                return None;
            }
        }
        Some(self.take_outcome())
    }

    /// What a wait on this queued task can run in its place: its closure
    /// (the first to take it runs it), the serial queue of a call, or the
    /// sources of a derived future; `None` when nothing is to be claimed.
    pub(crate) fn take_claim(&self) -> Option<Claim> {
        let slot = self.slot.lock();
        if self.phase() != PENDING {
            return None;
        }
        Some(match &slot.content {
            // Whoever takes the closure first runs it (`run_here`).
            Content::Own | Content::Queued(_) => Claim::Run,
            Content::OnQueue(queue) => Claim::Call(queue.upgrade()?),
            Content::After(sources) => {
                Claim::Sources(sources.iter().filter_map(|s| s.upgrade()).collect())
            }
            _ => return None,
        })
    }

    /// The transport a wait for this pending task may serve (see [`Drive`]).
    pub(crate) fn driver(&self) -> Option<Arc<dyn Drive>> {
        let slot = self.slot.lock();
        match &slot.content {
            Content::Driven(driven) if self.phase() == PENDING => Some(driven.driver.clone()),
            _ => None,
        }
    }

    pub(crate) fn fail(&self, error: Error) {
        self.settle(Err(error), false);
    }

    pub(crate) fn cancel(&self) -> bool {
        if phase::is_decided(self.phase()) {
            return false;
        }
        self.settle(Err(Error::Cancelled), true)
    }

    pub(crate) fn interrupt(&self) {
        self.settle(Err(Error::Interrupted), true);
    }

    /// Inside the running task, any decided phase means a cancellation (or a
    /// deadlock failure): only the task itself completes, and it has not
    /// returned yet.
    pub(crate) fn is_cancelled(&self) -> bool {
        phase::is_decided(self.phase())
    }

    pub(crate) fn wake(&self) {
        let _slot = self.slot.lock();
        self.cond.notify_all();
    }

    pub(crate) fn watch(&self, listener: &Arc<Listener>, key: u64) -> bool {
        // Publication collects the listeners and releases the outcome under
        // one lock, so a listener added before its release is always told.
        let mut slot = self.slot.lock();
        if self.is_released() {
            return true;
        }
        slot.hooks().listeners.push((listener.clone(), key));
        false
    }

    pub(crate) fn unwatch(&self, listener: &Arc<Listener>) {
        let mut slot = self.slot.lock();
        if let Some(hooks) = slot.hooks.as_mut() {
            hooks.listeners.retain(|(l, _)| !Arc::ptr_eq(l, listener));
        }
    }

    /// What this task waits on, for the deadlock detection: a running task,
    /// what its current wait waits on (also once its outcome was decided
    /// while it runs: whoever waits for its closure to return, as a scope
    /// does, waits on that); a queued instance call, its queue's blocker; a
    /// derived future, its unpublished sources.
    pub(crate) fn waits(&self, me: usize) -> Waits {
        let slot = self.slot.lock();
        if let Some(hooks) = slot.hooks.as_ref() {
            match (&hooks.waiting, &hooks.settler) {
                (Some(waiting), None) => return waiting.clone(),
                (None, Some(settler)) => return Waits::All(vec![settler.clone()]),
                // Its closure waits, and its cleanup runs elsewhere: both
                // must end before it settles. A wait for any of several
                // cannot be said beside them (the graph has no "all of
                // these and any of those"): the settler alone is kept,
                // which may miss a cycle through every one of them, never
                // reports one that is not there.
                (Some(waiting), Some(settler)) => {
                    let mut nodes = match waiting {
                        Waits::All(nodes) => nodes.clone(),
                        Waits::Any(_) | Waits::Nothing => Vec::new(),
                    };
                    if nodes.is_empty() {
                        return Waits::All(vec![settler.clone()]);
                    }
                    nodes.push(settler.clone());
                    return Waits::All(nodes);
                }
                (None, None) => {}
            }
        }
        match self.phase() {
            PENDING => match &slot.content {
                Content::OnQueue(queue) => {
                    let queue = queue.upgrade();
                    drop(slot);
                    queue.map_or(Waits::Nothing, |q| q.blocker(me))
                }
                Content::After(sources) => {
                    let nodes: Vec<Arc<dyn Node>> = sources
                        .iter()
                        .filter_map(Weak::upgrade)
                        .filter(|s| !s.is_done())
                        .map(|s| s as Arc<dyn Node>)
                        .collect();
                    if nodes.is_empty() {
                        Waits::Nothing
                    } else {
                        Waits::Any(nodes)
                    }
                }
                _ => Waits::Nothing,
            },
            _ => Waits::Nothing,
        }
    }

    pub(crate) fn set_waiting(&self, waits: Option<Waits>) {
        let mut slot = self.slot.lock();
        match waits {
            Some(waits) => slot.hooks().waiting = Some(waits),
            None => {
                if let Some(hooks) = slot.hooks.as_mut() {
                    hooks.waiting = None;
                    if hooks.is_empty() {
                        slot.hooks = None;
                    }
                }
            }
        }
    }

    /// Whom the task acts for (created while something was locked).
    pub(crate) fn spawned_by(&self) -> Option<Spawners> {
        self.slot.lock().hooks.as_ref()?.spawners.clone()
    }

    /// What a deadlock report calls this task, when its slot tells more
    /// than its closure's name.
    pub(crate) fn kind(&self) -> Option<String> {
        match &self.slot.lock().content {
            Content::OnQueue(queue) => queue
                .upgrade()
                .map(|q| format!("a call on {}", q.describe())),
            Content::After(_) => Some("a derived future".to_owned()),
            Content::Named(name) => Some(name.to_string()),
            Content::Driven(driven) => Some(driven.name.to_string()),
            Content::Queued(_) => Some("a continuation".to_owned()),
            _ => None,
        }
    }
}
