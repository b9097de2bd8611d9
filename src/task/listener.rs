//! Waiting for the first of many tasks: a [`Listener`] is told, with a key,
//! when a task it watches is published.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Instant;

use crate::cancel::Cancellable;
use crate::graph::{Node, Waits};
use crate::interrupt::{self, Registration, Wakeable, Woken};
use crate::park::{block, Blocked, Waiter};
use crate::sync::{AtomicUsize, Condvar, Mutex};

use std::sync::atomic::Ordering;

/// A task seen by a multi-future wait, whatever its value type.
pub(crate) trait Watchable: Cancellable + Node {
    /// Tells `listener` with `key` on publication; true (and nothing
    /// registered) when already published.
    fn watch(&self, listener: &Arc<Listener>, key: u64) -> bool;
    /// Forgets `listener`.
    fn unwatch(&self, listener: &Arc<Listener>);
    /// Runs the task when it is still queued and this thread is a pool
    /// worker: here when `here` and the stack has room, else on a spare
    /// thread of this worker's pool; true when it did.
    fn claim(self: Arc<Self>, here: bool) -> bool;
}

/// Told, with its key, when a watched task is published.
pub(crate) struct Listener {
    /// Keys of published tasks not yet taken, in publication order.
    fired: Mutex<VecDeque<u64>>,
    /// The length of `fired`, read without the lock by the quick check.
    count: AtomicUsize,
    cond: Condvar,
}

/// A wait for the next published task of those a listener watches.
struct NextFired<'a, W> {
    listener: &'a Arc<Listener>,
    watched: &'a W,
}

impl<W: Fn() -> Vec<Arc<dyn Watchable>>> Waiter for NextFired<'_, W> {
    type State = VecDeque<u64>;

    fn lock(&self) -> &Mutex<VecDeque<u64>> {
        &self.listener.fired
    }

    fn cond(&self) -> &Condvar {
        &self.listener.cond
    }

    fn ready(&self, fired: &VecDeque<u64>) -> bool {
        !fired.is_empty()
    }

    fn quick(&self) -> bool {
        self.listener.has_fired()
    }

    fn target(&self) -> Arc<dyn Wakeable> {
        self.listener.clone()
    }

    fn waits(&self) -> Waits {
        let nodes = (self.watched)().into_iter().map(|t| t as Arc<dyn Node>);
        Waits::Any(nodes.collect())
    }
}

impl Listener {
    pub(crate) fn new() -> Arc<Listener> {
        Arc::new(Listener {
            fired: Mutex::new(VecDeque::new()),
            count: AtomicUsize::new(0),
            cond: Condvar::new(),
        })
    }

    /// True once a watched task was published and not yet taken.
    pub(crate) fn has_fired(&self) -> bool {
        // Acquire: pairs with the Release increment in `fire`, made after
        // the key was queued (and after the task's outcome was published).
        self.count.load(Ordering::Acquire) > 0
    }

    pub(crate) fn fire(&self, key: u64) {
        let mut fired = self.fired.lock();
        fired.push_back(key);
        self.count.fetch_add(1, Ordering::Release);
        self.cond.notify_all();
    }

    /// The key of the next published task, in publication order; `None`
    /// when the deadline passed first.
    ///
    /// `watched` lists the tasks still watched: before sleeping, the wait
    /// claims one of them that is still queued (see `Task::claim`); on a Ctrl-C it interrupts
    /// every one of them, and when the wait closes a deadlock it fails every
    /// one of them with it (so that they all publish), and goes on.
    pub(crate) fn next(
        self: &Arc<Self>,
        deadline: Option<Instant>,
        watched: impl Fn() -> Vec<Arc<dyn Watchable>>,
    ) -> Option<u64> {
        let mut claimed = false;
        loop {
            if !claimed && !self.has_fired() {
                // Only a pool worker claims, and the first it can.
                let here = deadline.is_none();
                claimed =
                    crate::worker::on_worker() && watched().into_iter().any(|t| t.claim(here));
                if claimed {
                    continue;
                }
            }
            let blocked = block(
                &NextFired {
                    listener: self,
                    watched: &watched,
                },
                deadline,
            );
            match blocked {
                Blocked::Ready => break,
                Blocked::TimedOut => return None,
                Blocked::Interrupted(registration) => {
                    watched().iter().for_each(|t| t.interrupt());
                    drop(registration);
                }
                Blocked::Deadlock(error) => {
                    watched().iter().for_each(|t| t.fail(error.clone()));
                }
            }
        }
        let key = self.fired.lock().pop_front()?;
        // AcqRel: the count follows the queue, which the lock orders; the
        // quick check only needs to see it drop after the key was taken.
        self.count.fetch_sub(1, Ordering::AcqRel);
        Some(key)
    }
}

impl Wakeable for Listener {
    fn wake(&self) {
        let _fired = self.fired.lock();
        self.cond.notify_all();
    }
}

/// What an alive multi-wait (an [`as_completed`](crate::as_completed)
/// iterator, and so `try_wait_all`; a [`RequestPool`](crate::RequestPool))
/// still holds. A Ctrl-C belongs to it for its whole life, not only while
/// it is blocked: one that lands while the program runs between two of its
/// waits cancels every task it holds with `Err(Interrupted)` at once (their
/// cleanups run), the process does not exit, and the next waits report
/// those outcomes. Holding only finished tasks, it counts as nobody waiting;
/// it registers for Ctrl-C only once it holds an unfinished task.
pub(crate) struct Holding {
    held: Option<(Arc<Held>, Registration)>,
}

struct Held {
    tasks: Mutex<Vec<Weak<dyn Watchable>>>,
}

impl Holding {
    pub(crate) fn new() -> Holding {
        Holding { held: None }
    }

    /// Holds `task` too (finished tasks are let go now and then).
    pub(crate) fn hold(&mut self, task: &Arc<dyn Watchable>) {
        let (held, _) = self.held.get_or_insert_with(|| {
            let held = Arc::new(Held {
                tasks: Mutex::new(Vec::new()),
            });
            let registration = interrupt::register(held.clone());
            (held, registration)
        });
        let mut tasks = held.tasks.lock();
        if tasks.len() >= 64 && tasks.len().is_power_of_two() {
            tasks.retain(|t| t.upgrade().is_some_and(|t| !t.is_done()));
        }
        tasks.push(Arc::downgrade(task));
    }
}

impl Wakeable for Held {
    fn wake(&self) {}

    fn on_interrupt(&self) -> Woken {
        let unfinished: Vec<Arc<dyn Watchable>> = self
            .tasks
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|t| !t.is_done())
            .collect();
        // Outside the lock: cancelling runs the tasks' cleanups.
        let mut cancelled = false;
        for task in unfinished {
            task.interrupt();
            cancelled = true;
        }
        if cancelled {
            Woken::Settled
        } else {
            Woken::Nothing
        }
    }

    fn handles(&self) -> bool {
        false
    }
}
