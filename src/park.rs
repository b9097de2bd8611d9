//! The one place a thread sleeps, and what it knows while it does.
//!
//! A wait ([`block`]) goes through these steps, cheapest first:
//!
//! 1. **Check.** The condition read without a lock; a finished wait costs one load.
//! 2. **Spin, then yield**, re-checking: a hand-off within the spin costs well
//!    under a microsecond, a park/unpark round trip 10–40 µs.
//! 3. **Register** with the interrupt machinery, so that Ctrl-C wakes it.
//! 4. **Detect deadlock.** When the waiting thread runs a task (its *frame*)
//!    and the wait has no deadline, the wait records what it waits on in the
//!    task, then follows what the targets wait on in turn. When that leads
//!    back to this task, nothing can ever wake it: the wait returns
//!    [`Blocked::Deadlock`] with the cycle instead of sleeping. The wait that
//!    closes a cycle is the one that finds it, since each wait records itself
//!    before it looks (two waits closing one cycle at the same instant may
//!    both find it).
//! 5. **Tell the pool** (compensation, see [`crate::worker`]) and park on the
//!    condvar, re-checking the condition in a loop.
//!
//! Nothing else runs inside a wait: a sleeping thread runs no queued work.
//!
//! What the detection sees is the [`Node`] graph: a running task waits on
//! what its current wait waits on; a queued instance call waits on the call
//! running on its instance; a derived future (`then`, `when_done`, `join`)
//! waits on its sources. A wait on many futures (`wait_any`, …) is stuck
//! only when every one of them is. Not seen: waits with a deadline, waits of
//! threads that run no task (nobody can wait on them), blocking outside this
//! crate (a mutex, a channel), and chains longer than [`MAX_DEPTH`].

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Cycle, Error};
use crate::interrupt::{self, Registration, Wakeable};
use crate::sync::{self, task_local, Condvar, Mutex};
use crate::worker;

/// How many rounds of spinning, then yielding, a wait makes before it parks.
const SPIN_ROUNDS: u32 = 6;
const YIELD_ROUNDS: u32 = 10;

/// How far the deadlock detection follows a chain of waits.
pub(crate) const MAX_DEPTH: usize = 64;

/// Something that may wait on others: a running task, a queued instance
/// call, a derived future.
pub(crate) trait Node: Send + Sync {
    /// What this node waits on right now.
    fn waits(&self) -> Waits;
    /// A few words naming the node in a deadlock report.
    fn describe(&self) -> String;
    /// For a running task: what its current wait waits on (`None` once the
    /// wait is over).
    fn set_waiting(&self, _waits: Option<Waits>) {}
    /// For a running task: true once it was cancelled (or its outcome
    /// otherwise decided), which [`crate::cancelled`] reports.
    fn is_cancelled(&self) -> bool {
        false
    }
}

/// What a [`Node`] waits on.
#[derive(Clone, Default)]
pub(crate) enum Waits {
    /// Nothing: it runs, or it will run once a thread is free.
    #[default]
    Nothing,
    /// Every one of these must finish (a wait on one future is `All` of one).
    All(Vec<Arc<dyn Node>>),
    /// Any one of these finishing is enough.
    Any(Vec<Arc<dyn Node>>),
}

/// A node's identity: the address of its shared state.
fn key(node: &Arc<dyn Node>) -> usize {
    Arc::as_ptr(node) as *const () as usize
}

task_local! {
    /// The task this thread's stack acts for: the task it runs, or, inside
    /// an inline task, the task that ran it (which cannot go on before it).
    static FRAME: RefCell<Option<Arc<dyn Node>>> = const { RefCell::new(None) };
}

task_local! {
    /// False inside an inline task: it has no handle that could cancel it,
    /// so [`crate::cancelled`] is false there, whatever its frame.
    static CANCELLABLE: Cell<bool> = const { Cell::new(false) };
}

/// Restores the previous frame when dropped.
pub(crate) struct Entered {
    previous: Option<Option<Arc<dyn Node>>>,
    cancellable: bool,
}

/// Makes `task` the frame of this thread until the guard drops.
pub(crate) fn enter(task: Arc<dyn Node>) -> Entered {
    let previous = FRAME.with(|f| f.borrow_mut().replace(task));
    Entered {
        previous: Some(previous),
        cancellable: CANCELLABLE.with(|c| c.replace(true)),
    }
}

/// Runs an inline task within the current frame: it acts for that frame,
/// but [`crate::cancelled`] is false inside it.
pub(crate) fn enter_inline() -> Entered {
    Entered {
        previous: None,
        cancellable: CANCELLABLE.with(|c| c.replace(false)),
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            FRAME.with(|f| *f.borrow_mut() = previous);
        }
        let cancellable = self.cancellable;
        CANCELLABLE.with(|c| c.set(cancellable));
    }
}

/// The task this thread acts for.
pub(crate) fn frame() -> Option<Arc<dyn Node>> {
    FRAME.with(|f| f.borrow().clone())
}

/// True inside a task that has been cancelled.
pub(crate) fn frame_cancelled() -> bool {
    CANCELLABLE.with(Cell::get)
        && FRAME.with(|f| f.borrow().as_ref().is_some_and(|task| task.is_cancelled()))
}

/// Records, while alive, what the current frame waits on.
pub(crate) struct Recorded(Arc<dyn Node>);

/// Records that this thread's frame waits on `waits` until the guard drops
/// (a wait that runs what it waits on in place, where the frame cannot go on
/// before it returns).
pub(crate) fn record(waits: impl FnOnce() -> Waits) -> Option<Recorded> {
    let frame = frame()?;
    frame.set_waiting(Some(waits()));
    Some(Recorded(frame))
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.0.set_waiting(None);
    }
}

/// How a [`block`] ended.
pub(crate) enum Blocked {
    Ready,
    TimedOut,
    /// A Ctrl-C arrived: the caller cancels what it waited on, then drops
    /// the registration.
    Interrupted(Registration),
    /// The wait closes a cycle: the caller fails what it waited on with
    /// this [`Error::Deadlock`], then waits again.
    Deadlock(Error),
}

/// Blocks the calling thread until `ready` holds (checked under `lock`, and
/// woken through `cond`), the deadline passes, or an interrupt arrives.
///
/// `quick` is the same condition read without the lock. `target` is what a
/// Ctrl-C wakes; `waits`, when given, is what the wait waits on, for the
/// deadlock detection (see the module docs for the steps).
pub(crate) fn block<S>(
    lock: &Mutex<S>,
    cond: &Condvar,
    ready: impl Fn(&S) -> bool,
    quick: impl Fn() -> bool,
    deadline: Option<Instant>,
    target: impl FnOnce() -> Arc<dyn Wakeable>,
    waits: Option<&dyn Fn() -> Waits>,
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
    let _recorded = match (deadline, waits) {
        (None, Some(waits)) => match detect(waits) {
            Ok(recorded) => recorded,
            Err(cycle) => {
                return if quick() {
                    Blocked::Ready
                } else {
                    Blocked::Deadlock(Error::Deadlock(cycle))
                };
            }
        },
        _ => None,
    };
    let _blocked = worker::block();
    let mut guard = lock.lock();
    loop {
        // Why the wait ended is decided under the lock: the condition may
        // not hold any more once it is released, and callers re-check.
        if ready(&guard) {
            return Blocked::Ready;
        }
        if registration.interrupted() {
            drop(guard);
            return Blocked::Interrupted(registration);
        }
        match deadline {
            None => cond.wait(&mut guard),
            Some(deadline) => {
                if cond.wait_until(&mut guard, deadline).timed_out() {
                    return if ready(&guard) {
                        Blocked::Ready
                    } else if registration.interrupted() {
                        drop(guard);
                        Blocked::Interrupted(registration)
                    } else {
                        Blocked::TimedOut
                    };
                }
            }
        }
    }
}

/// Records what the frame's wait waits on and looks for a cycle back to the
/// frame. `Ok(None)` for a thread that runs no task.
#[cold]
fn detect(waits: &dyn Fn() -> Waits) -> Result<Option<Recorded>, Cycle> {
    let Some(frame) = frame() else {
        return Ok(None);
    };
    let waits = waits();
    frame.set_waiting(Some(waits.clone()));
    let recorded = Recorded(frame.clone());
    let mut path = Vec::new();
    if stuck(&waits, key(&frame), &mut path, 0) {
        drop(recorded);
        let mut names = Vec::with_capacity(path.len() + 1);
        names.push(frame.describe());
        names.extend(path.iter().map(|n| n.describe()));
        return Err(Cycle::new(names));
    }
    Ok(Some(recorded))
}

/// True when `waits` can only end once the node `me` goes on: `path` then
/// holds the chain from `waits` to `me` (`me` itself not included).
fn stuck(waits: &Waits, me: usize, path: &mut Vec<Arc<dyn Node>>, depth: usize) -> bool {
    match waits {
        Waits::Nothing => false,
        Waits::All(nodes) => nodes.iter().any(|n| stuck_node(n, me, path, depth)),
        Waits::Any(nodes) => {
            let start = path.len();
            let mut first = None;
            for node in nodes {
                if !stuck_node(node, me, path, depth) {
                    path.truncate(start);
                    return false;
                }
                first.get_or_insert_with(|| path[start..].to_vec());
                path.truncate(start);
            }
            match first {
                Some(chain) => {
                    path.extend(chain);
                    true
                }
                None => false,
            }
        }
    }
}

fn stuck_node(
    node: &Arc<dyn Node>,
    me: usize,
    path: &mut Vec<Arc<dyn Node>>,
    depth: usize,
) -> bool {
    if key(node) == me {
        return true;
    }
    // A cycle that does not pass through `me` is somebody else's to report.
    if depth >= MAX_DEPTH || path.iter().any(|seen| key(seen) == key(node)) {
        return false;
    }
    path.push(node.clone());
    if stuck(&node.waits(), me, path, depth + 1) {
        return true;
    }
    path.pop();
    false
}
