//! What the running thread is, as the layers above the pools see it: a
//! small [`Worker`] trait that each pool backend implements and installs on
//! its threads, and how much stack the thread has left for running a task it
//! waits on.
//!
//! The task layer never names a pool: it asks this trait to compensate a
//! blocked worker, or to run a claimed task on a fresh stack.

use std::cell::{Cell, RefCell};
use std::sync::{Arc, OnceLock};

use crate::graph::Node;

/// A closure handed to a spare thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// The one kind of item a pool's queue holds: a task's own shared state
/// (its closure beside it), or a serial queue's (whose drain it runs), so
/// that queuing costs no allocation of its own. It runs there, or, when the
/// pool is shut down, it is rejected and fails what waits on it — never
/// just dropped.
pub(crate) trait Runnable: Send + Sync {
    /// Runs the item taken from the queue (nothing when a wait claimed it
    /// first); fails it with `Shutdown` on a pool shut down with
    /// `shutdown_now`.
    fn run_from_queue(self: Arc<Self>);
    /// Fails it with `Shutdown` without running it: its pool refused it.
    fn reject(self: Arc<Self>);
}

/// What a pool's queue holds.
pub(crate) type Queued = Arc<dyn Runnable>;

/// A pool, as seen from one of its threads.
pub(crate) trait Worker: Send + Sync {
    /// This thread is about to sleep in a wait: the pool may let a spare
    /// thread run queued work meanwhile, so that its configured number of
    /// running tasks is kept.
    fn blocked(&self);
    /// The wait that [`Worker::blocked`] announced is over.
    fn unblocked(&self);
    /// Runs `job` on a spare thread of this pool, at once: the task a wait
    /// claimed when this stack has no room left to run it.
    fn dispatch(&self, job: Job);
    /// True once the pool was shut down with `shutdown_now`: queued work
    /// fails with `Shutdown` instead of running.
    fn discarding(&self) -> bool;
    /// `owner` (what this thread acts for) begins a wait: the pool counts
    /// it among those its shutdown waits on, for the wait graph.
    fn waiting(&self, _owner: &Arc<dyn Node>) {}
    /// The wait [`Worker::waiting`] announced is over.
    fn done_waiting(&self, _owner: &Arc<dyn Node>) {}
}

/// The stack of a worker thread: where it began and how large it is.
#[derive(Clone, Copy)]
struct Stack {
    base: usize,
    size: usize,
}

thread_local! {
    /// The pool this thread works for; `None` on other threads.
    static WORKER: RefCell<Option<Arc<dyn Worker>>> = const { RefCell::new(None) };
    static STACK: Cell<Option<Stack>> = const { Cell::new(None) };
}

/// Makes this thread a worker of `worker`, whose stack began at about
/// `stack_base` ([`stack_position`] at the top of the thread's function)
/// and holds `stack_size` bytes (`None`: the platform's default for spawned
/// threads). For the thread's whole life.
pub(crate) fn install(worker: Arc<dyn Worker>, stack_base: usize, stack_size: Option<usize>) {
    let size = stack_size.unwrap_or_else(default_stack_size);
    STACK.with(|s| {
        s.set(Some(Stack {
            base: stack_base,
            size,
        }))
    });
    WORKER.with(|w| *w.borrow_mut() = Some(worker));
}

/// Forgets what [`install`] set (a thread leaving its pool).
pub(crate) fn uninstall() {
    WORKER.with(|w| w.borrow_mut().take());
    STACK.with(|s| s.set(None));
}

/// The address of a local of the caller: how deep its stack is, roughly.
#[inline(never)]
pub(crate) fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// The default stack size of spawned threads: `RUST_MIN_STACK` when set,
/// else 2 MiB (what `std::thread` uses).
fn default_stack_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        std::env::var("RUST_MIN_STACK")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(2 << 20)
    })
}

/// True on a worker of a pool shut down with `shutdown_now`.
pub(crate) fn discarding() -> bool {
    WORKER.with(|w| w.borrow().as_ref().is_some_and(|w| w.discarding()))
}

/// True on a pool's worker thread.
pub(crate) fn on_worker() -> bool {
    WORKER.with(|w| w.borrow().is_some())
}

/// The pool this thread works for.
pub(crate) fn current() -> Option<Arc<dyn Worker>> {
    WORKER.with(|w| w.borrow().clone())
}

/// True when this worker thread has used less than half of its stack: it
/// may run a task it waits on here (each such claim nests one task deeper).
pub(crate) fn stack_room() -> bool {
    STACK.with(Cell::get).is_some_and(|stack| {
        let used = stack.base.abs_diff(stack_position());
        used < stack.size / 2
    })
}

/// Tells this thread's pool that `owner` waits, until the guard drops
/// (before the wait looks for cycles, so that a shutdown of the pool
/// waiting on the owner's wait is seen). Nothing on other threads.
pub(crate) struct Waiting(Option<(Arc<dyn Worker>, Arc<dyn Node>)>);

pub(crate) fn waiting(owner: &Arc<dyn Node>) -> Waiting {
    Waiting(current().map(|worker| {
        worker.waiting(owner);
        (worker, owner.clone())
    }))
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some((worker, owner)) = self.0.take() {
            worker.done_waiting(&owner);
        }
    }
}

/// Tells this thread's pool that the thread blocks, until the guard drops.
/// Nothing on other threads.
pub(crate) struct Compensated(Option<Arc<dyn Worker>>);

pub(crate) fn block() -> Compensated {
    let worker = current();
    if let Some(worker) = &worker {
        worker.blocked();
    }
    Compensated(worker)
}

impl Drop for Compensated {
    fn drop(&mut self) {
        if let Some(worker) = self.0.take() {
            worker.unblocked();
        }
    }
}
