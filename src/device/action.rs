//! What a parameter and a command share: a queue of operations (their
//! own, or their serial device's), the operations in flight for `abort`,
//! and the one path of an operation that moves the hardware — checked
//! for a cancel last, just before it begins, and stopped by the stop once
//! it has begun.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use crate::cancel::CancelHandle;
use crate::device::lock::LockNode;
use crate::device::ops::Ops;
use crate::error::Error;
use crate::future::Future;
use crate::global;
use crate::pool::Pool;
use crate::sync::Mutex;
use crate::task::run_guarded;
use crate::trace;

/// The error a fallible getter, setter or command returned.
pub(crate) type Failure = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A stop: what cancels an operation that has begun (a motor's stop).
pub(crate) type Stop = Arc<dyn Fn() + Send + Sync>;

/// Where an operation stands, for its stop: only one that has begun to
/// move the hardware is stopped.
const QUEUED: u8 = 0;
const APPLYING: u8 = 1;
const SKIPPED: u8 = 2;

/// What the hardware did last, guarded by one lock that an operation takes
/// before it begins and a stop holds while it runs: the next operation
/// never begins while a stop runs.
#[derive(Default)]
struct Motion {
    /// A stop ran since the last operation began.
    stopped: bool,
    /// How many stops ran.
    stops: u64,
}

/// The operations of one parameter or command.
pub(crate) struct Actions {
    pub(crate) node: Arc<LockNode>,
    pub(crate) pool: Result<Pool, Error>,
    what: &'static str,
    /// Its own queue, made at the first operation, or its serial device's
    /// (see [`Actions::join`]).
    queue: OnceLock<Arc<Ops>>,
    stop: Option<Stop>,
    motion: Mutex<Motion>,
    /// Operations in flight, for `abort`.
    inflight: Mutex<Vec<CancelHandle>>,
}

impl Actions {
    /// The actions of the `what` ("parameter", "command") called `name`,
    /// on `pool` (the default pool when `None`).
    pub(crate) fn new(
        what: &'static str,
        name: &str,
        pool: Option<Pool>,
        stop: Option<Stop>,
    ) -> Arc<Actions> {
        Arc::new(Actions {
            node: LockNode::new(name),
            pool: match pool {
                Some(pool) => Ok(pool),
                None => global::default_pool().cloned(),
            },
            what,
            queue: OnceLock::new(),
            stop,
            motion: Mutex::new(Motion::default()),
            inflight: Mutex::new(Vec::new()),
        })
    }

    /// Its queue of operations.
    pub(crate) fn ops(&self) -> &Arc<Ops> {
        self.queue
            .get_or_init(|| Ops::operations(self.pool.clone(), self.node.clone(), self.what))
    }

    /// Makes its operations go through `shared` (a serial device's queue).
    /// False when it has a queue already (it ran operations before).
    pub(crate) fn join(&self, shared: &Arc<Ops>) -> bool {
        self.queue.set(shared.clone()).is_ok()
    }

    /// True once it has a queue (it ran an operation, or joined one).
    pub(crate) fn has_queue(&self) -> bool {
        self.queue.get().is_some()
    }

    pub(crate) fn has_stop(&self) -> bool {
        self.stop.is_some()
    }

    /// Queues `f`, an operation that changes nothing (a read), and tracks it
    /// for `abort`.
    pub(crate) fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<R, Error> + Send + 'static,
    ) -> Future<R> {
        self.track(self.ops().submit(&self.node, f, |f| f))
    }

    /// Queues `act`, an operation that moves the hardware (a set, a
    /// command): once its turn has come, it is checked for a cancel last,
    /// under the lock a stop holds while it runs, and then begins; once it
    /// has begun, cancelling its future runs the stop.
    pub(crate) fn act<R: Send + 'static>(
        self: &Arc<Self>,
        operation: &'static str,
        act: impl FnOnce() -> Result<R, Error> + Send + 'static,
    ) -> Future<R> {
        let stage = Arc::new(AtomicU8::new(QUEUED));
        let (actions, applying) = (self.clone(), stage.clone());
        let run = move || {
            let _span = trace::device_op(|| actions.node.full_name(), operation);
            if actions.ops().stopping_here() {
                // An operation the stop makes, on the thread that runs the
                // stop (and holds the lock below): part of it.
                applying.store(APPLYING, Ordering::Relaxed);
            } else {
                // The last check: after the queue and the lock, under the
                // lock a stop holds while it runs.
                let mut motion = actions.motion.lock();
                if crate::cancel::cancelled() {
                    applying.store(SKIPPED, Ordering::Relaxed);
                    return Err(Error::Cancelled);
                }
                applying.store(APPLYING, Ordering::Relaxed);
                motion.stopped = false;
            }
            act()
        };
        let actions = self.clone();
        let prepare = move |future: Future<R>| match actions.stop.is_some() {
            true => future.on_cancel(move || actions.stop_begun(&stage)),
            false => future,
        };
        self.track(self.ops().submit(&self.node, run, prepare))
    }

    /// Keeps the operation's cancel handle for `abort`.
    pub(crate) fn track<R: Send + 'static>(&self, future: Future<R>) -> Future<R> {
        let mut inflight = self.inflight.lock();
        // Finished ones are dropped when the list is about to grow: each
        // operation costs O(1) however many are queued.
        if inflight.len() == inflight.capacity() {
            inflight.retain(|h| !h.done());
        }
        inflight.push(future.cancel_handle());
        drop(inflight);
        future
    }

    /// The cleanup of a cancelled operation: stops the hardware when it
    /// has begun and nothing stopped it since.
    fn stop_begun(&self, stage: &AtomicU8) {
        let mut motion = self.motion.lock();
        match stage.load(Ordering::Relaxed) {
            APPLYING if !motion.stopped => self.run_stop(&mut motion),
            QUEUED => stage.store(SKIPPED, Ordering::Relaxed),
            _ => {}
        }
    }

    fn run_stop(&self, motion: &mut Motion) {
        if let Some(stop) = &self.stop {
            motion.stopped = true;
            motion.stops += 1;
            let stop = stop.clone();
            // What the stop does to this queue is part of it.
            let _stopping = self.ops().stopping();
            run_guarded(move || stop());
        }
    }

    /// Cancels the operations in flight, then runs the stop unless one of
    /// those cancels did. `by_interrupt` (a Ctrl-C's hook): the operations
    /// fail with `Err(Interrupted)`, as the interrupted waits do, and no
    /// stop runs when one ran since the last operation began (one Ctrl-C,
    /// one stop).
    pub(crate) fn abort(&self, by_interrupt: bool) -> bool {
        let before = self.motion.lock().stops;
        let inflight: Vec<CancelHandle> = std::mem::take(&mut *self.inflight.lock());
        for handle in &inflight {
            if by_interrupt {
                handle.interrupt();
            } else {
                handle.cancel();
            }
        }
        if self.stop.is_none() {
            return false;
        }
        let mut motion = self.motion.lock();
        if motion.stops == before && !(by_interrupt && motion.stopped) {
            self.run_stop(&mut motion);
        }
        true
    }
}
