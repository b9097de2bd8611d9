//! A task's shared state: its phase, its slot (the queued closure or the
//! outcome, and the hooks), and `settle`, the one place an outcome is
//! decided and published.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};
use std::task::Waker;

use crate::error::Error;
use crate::park::{Node, Waits};
use crate::sync::{AtomicU8, Condvar, Mutex};
use crate::task::listener::{Listener, Watchable};
use crate::task::phase::{self, CANCELLED, DONE, FAILED, PENDING, RUNNING, SETTLING};

use std::sync::atomic::Ordering;

/// The state shared by a task, its handles and whoever cancels it.
pub(crate) struct Inner<T> {
    /// One of the phases of [`crate::task::phase`].
    pub(crate) phase: AtomicU8,
    /// The queued closure or the outcome, and the hooks.
    pub(crate) slot: Mutex<Slot<T>>,
    /// Waiters of the outcome sleep here; `settle` wakes them.
    pub(crate) cond: Condvar,
}

pub(crate) struct Slot<T> {
    pub(crate) content: Content<T>,
    /// Allocated only when somebody registers a hook (or the running task
    /// records a wait).
    pub(crate) hooks: Option<Box<Hooks<T>>>,
}

/// A boxed closure waiting in a task's slot (a `then` continuation).
pub(crate) type Boxed<T> = Box<dyn FnOnce() -> Result<T, Error> + Send>;

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
    /// Queued on a pool, the closure kept beside the state (see
    /// [`crate::task::cell`]); taken as [`Content::Queued`] is.
    Own,
    /// A call queued on an instance (or running on it) until published.
    OnInstance(Weak<dyn Queue>),
    /// A derived future, until its sources settle it.
    After(Box<[Weak<dyn Watchable>]>),
}

/// An instance's queue, as its pending calls see it.
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

type Callback<T> = Box<dyn FnOnce(&Result<T, Error>) + Send>;
type Continuation<T> = Box<dyn FnOnce(Result<T, Error>) + Send>;

pub(crate) struct Hooks<T> {
    pub(crate) cleanup: Option<Box<dyn FnOnce() + Send>>,
    pub(crate) callbacks: Vec<Callback<T>>,
    /// Receives the outcome by value instead of the slot (set by `then`,
    /// which consumes the only handle).
    pub(crate) continuation: Option<Continuation<T>>,
    pub(crate) waker: Option<Waker>,
    /// Multi-future waits (`wait_any`, `as_completed`, `RequestPool`) told on publication.
    pub(crate) listeners: Vec<(Arc<Listener>, u64)>,
    /// While the running task waits: what it waits on (deadlock detection).
    pub(crate) waiting: Option<Waits>,
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
        }
    }
}

impl<T> Hooks<T> {
    fn is_empty(&self) -> bool {
        self.cleanup.is_none()
            && self.callbacks.is_empty()
            && self.continuation.is_none()
            && self.waker.is_none()
            && self.listeners.is_empty()
            && self.waiting.is_none()
    }
}

impl<T> Slot<T> {
    pub(crate) fn hooks(&mut self) -> &mut Hooks<T> {
        self.hooks.get_or_insert_with(Box::default)
    }

    pub(crate) fn outcome(&self) -> Option<&Result<T, Error>> {
        match &self.content {
            Content::Outcome(outcome) => Some(outcome),
            _ => None,
        }
    }

    pub(crate) fn take_outcome(&mut self) -> Option<Result<T, Error>> {
        match std::mem::replace(&mut self.content, Content::Empty) {
            Content::Outcome(outcome) => Some(outcome),
            other => {
                self.content = other;
                None
            }
        }
    }
}

/// The phase an outcome publishes as: a failure with `Cancelled` or
/// `Interrupted`, or any outcome of a cancelling settle, as CANCELLED (so
/// that a future derived from a cancelled one reports `cancelled()` too).
pub(crate) fn published_phase<T>(outcome: &Result<T, Error>, cancelling: bool) -> u8 {
    match outcome {
        Ok(_) => DONE,
        Err(_) if cancelling => CANCELLED,
        Err(Error::Cancelled | Error::Interrupted) => CANCELLED,
        Err(_) => FAILED,
    }
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
                hooks: None,
            }),
            cond: Condvar::new(),
        }
    }

    #[inline]
    pub(crate) fn phase(&self) -> u8 {
        // Acquire: pairs with the Release store that publishes an outcome.
        self.phase.load(Ordering::Acquire)
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

    /// Decides the outcome, runs the hooks, publishes the outcome and wakes
    /// every waiter. Returns false (and drops `outcome`) when the outcome was
    /// already decided. With `cancelling`, the cleanup runs first, on this
    /// thread.
    /// The phase published is [`published_phase`].
    pub(crate) fn settle(&self, outcome: Result<T, Error>, cancelling: bool) -> bool {
        let mut slot = self.slot.lock();
        // Acquire loads and AcqRel CAS: only PENDING → RUNNING happens
        // without the lock, and the CAS below orders this decision after it.
        let mut phase = self.phase.load(Ordering::Acquire);
        loop {
            if phase::is_decided(phase) {
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
        let published = published_phase(&outcome, cancelling);
        if slot.hooks.as_ref().is_none_or(|h| h.is_empty()) {
            // Nobody registered a hook, and nobody can while the lock is
            // held: publish at once.
            let stale = std::mem::replace(&mut slot.content, Content::Outcome(outcome));
            // Release: the outcome written above is seen by whoever reads
            // the published phase with Acquire.
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
                    // Release: as on the fast path above.
                    self.phase.store(published, Ordering::Release);
                    drop(slot);
                    next(outcome);
                    stale
                }
                None => {
                    let stale = std::mem::replace(&mut slot.content, Content::Outcome(outcome));
                    // Release: as on the fast path above.
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

    /// Puts `content` (what a pending task waits on, or its boxed closure)
    /// into the slot; false, leaving the slot alone, when the task is
    /// already decided (a cancel won the race).
    pub(crate) fn put(&self, content: Content<T>) -> bool {
        let mut slot = self.slot.lock();
        if phase::is_decided(self.phase()) {
            drop(slot);
            drop(content);
            return false;
        }
        slot.content = content;
        true
    }

    pub(crate) fn take_outcome(&self) -> Result<T, Error> {
        self.slot
            .lock()
            .take_outcome()
            .expect("a published outcome is taken only by the handle that consumes itself")
    }

    pub(crate) fn fail(&self, error: Error) {
        self.settle(Err(error), false);
    }

    pub(crate) fn cancel(&self) -> bool {
        if phase::is_decided(self.phase()) {
            return false;
        }
        let cancelled = self.settle(Err(Error::Cancelled), true);
        if cancelled {
            crate::trace::cancelled();
        }
        cancelled
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
        // Settling collects the listeners and publishes under one lock, so a
        // listener added before publication is always told.
        let mut slot = self.slot.lock();
        if phase::is_published(self.phase()) {
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
    /// what its current wait waits on; a queued instance call, its queue's
    /// blocker; a derived future, its unpublished sources.
    pub(crate) fn waits(&self, me: usize) -> Waits {
        let slot = self.slot.lock();
        match self.phase() {
            RUNNING => slot
                .hooks
                .as_ref()
                .and_then(|h| h.waiting.clone())
                .unwrap_or_default(),
            PENDING => match &slot.content {
                Content::OnInstance(queue) => {
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

    /// What a deadlock report calls this task, when its slot tells more
    /// than its closure's name.
    pub(crate) fn kind(&self) -> Option<String> {
        match &self.slot.lock().content {
            Content::OnInstance(queue) => queue
                .upgrade()
                .map(|q| format!("a call on {}", q.describe())),
            Content::After(_) => Some("a derived future".to_owned()),
            Content::Queued(_) => Some("a continuation".to_owned()),
            _ => None,
        }
    }
}
