//! A serial queue: items run one at a time, in submission order, on a pool,
//! without a thread of their own — an actor with no thread. While items are
//! queued, one job on the pool runs them back to back (the *drain*); a wait
//! on a queued item may claim the queue and run it up to that item instead.
//! An [`Instance`](crate::Instance)'s calls and a parameter's operations are
//! the two kinds; a [`Kind`] says what an item is, which one runs next and
//! how it runs. Everything else — scheduling, shutdown, claiming, what a
//! queued item waits on for the wait graph — is here, once.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::Error;
use crate::graph::{self, Node, Waits};
use crate::pool::Pool;
use crate::sync::{Mutex, MutexGuard};
use crate::task::{Queue, Watchable};
use crate::worker::Runnable;

/// What a serial queue queues, and how it runs it.
///
/// The bounds that let a queue cross threads (`Send`, `Sync`, `'static`)
/// are asked where it does (`Live`), so that a handle type may hold a
/// queue of any kind without bounds of its own.
pub(crate) trait Kind: Sized {
    /// One queued item.
    type Item: Send;
    /// What the kind keeps beside the items, under the queue's lock.
    type Flags: Default + Send;
    /// What must be held while an item runs (a parameter's locks).
    type Held;

    /// The item's task (its key, its phase).
    fn task(item: &Self::Item) -> &Arc<dyn Watchable>;
    /// True when a drain would find something to run now.
    fn has_runnable(state: &State<Self>) -> bool;
    /// Called on a submission and on a kick (something changed that may
    /// let an item run: a dependency finished, a lock was released).
    fn woken(_flags: &mut Self::Flags) {}
    /// Takes the next item to run out of the queue, with
    /// [`State::take_running`]; `None` when none can run now. Called by the
    /// drain (only it takes items out).
    fn next(queue: &Arc<Serial<Self>>) -> Option<(Self::Item, Self::Held)>;
    /// Runs `item`, returning once it has settled.
    fn run(queue: &Arc<Serial<Self>>, item: Self::Item, held: Self::Held);
    /// Called once the item that ran is no longer the running one.
    fn ran(_queue: &Serial<Self>) {}
    /// What the queued item with key `call` waits on, when the running
    /// item is not what it waits on (its dependency, a lock).
    fn blocked_by(state: &State<Self>, call: usize) -> Waits;
    /// The queue, for a deadlock report.
    fn describe(&self) -> String;
}

/// A kind whose queue can go to a pool's threads.
pub(crate) trait Live: Kind + Send + Sync + 'static {}

impl<K: Kind + Send + Sync + 'static> Live for K {}

/// A serial queue of `K`'s items on a pool.
pub(crate) struct Serial<K: Kind> {
    pub(crate) state: Mutex<State<K>>,
    pub(crate) pool: Result<Pool, Error>,
    pub(crate) kind: K,
}

/// The queue's state, under its lock.
pub(crate) struct State<K: Kind> {
    pub(crate) items: VecDeque<K::Item>,
    /// A drain job is on the pool and has not started yet.
    scheduled: bool,
    /// Somebody runs the items now (the drain job, or a wait that claimed
    /// the queue); only they take items out.
    draining: bool,
    /// The item running now, for the deadlock detection.
    pub(crate) running: Option<Arc<dyn Node>>,
    pub(crate) flags: K::Flags,
}

impl<K: Kind> State<K> {
    /// Takes the item at `index` out of the queue as the running one.
    pub(crate) fn take_running(&mut self, index: usize) -> Option<K::Item> {
        let item = self.items.remove(index)?;
        self.running = Some(K::task(&item).clone() as Arc<dyn Node>);
        Some(item)
    }
}

/// An item's identity: its task's address (as the wait graph computes it).
pub(crate) fn key_of(task: &Arc<dyn Watchable>) -> usize {
    Arc::as_ptr(task) as *const () as usize
}

impl<K: Kind> Serial<K> {
    /// Items queued, not running.
    pub(crate) fn queued(&self) -> usize {
        self.state.lock().items.len()
    }
}

impl<K: Live> Serial<K> {
    pub(crate) fn new(pool: Result<Pool, Error>, kind: K) -> Arc<Self> {
        Arc::new(Serial {
            state: Mutex::new(State {
                items: VecDeque::new(),
                scheduled: false,
                draining: false,
                running: None,
                flags: K::Flags::default(),
            }),
            pool,
            kind,
        })
    }

    /// Queues `item`, or fails it at once when the pool is shut down (a
    /// queue that kept accepting items could keep `shutdown()` waiting).
    pub(crate) fn enqueue(self: &Arc<Self>, item: K::Item) {
        if let Ok(pool) = &self.pool {
            if pool.is_shutdown() {
                K::task(&item).fail(Error::Shutdown);
                return;
            }
        }
        let mut state = self.state.lock();
        state.items.push_back(item);
        K::woken(&mut state.flags);
        self.start_if_idle(state);
    }

    /// Something changed that may let an item run: starts a drain when
    /// none runs and one can.
    pub(crate) fn kick(self: &Arc<Self>) {
        let mut state = self.state.lock();
        K::woken(&mut state.flags);
        self.start_if_idle(state);
    }

    /// When nothing is queued, running or about to drain: what `take`
    /// makes of the flags, under the queue's lock; else false.
    pub(crate) fn if_idle(&self, take: impl FnOnce(&mut K::Flags) -> bool) -> bool {
        let mut state = self.state.lock();
        let idle = state.items.is_empty()
            && state.running.is_none()
            && !state.scheduled
            && !state.draining;
        idle && take(&mut state.flags)
    }

    /// True while an item is queued or running.
    pub(crate) fn is_busy(&self) -> bool {
        let state = self.state.lock();
        !state.items.is_empty() || state.running.is_some()
    }

    fn start_if_idle(self: &Arc<Self>, mut state: MutexGuard<'_, State<K>>) {
        if state.scheduled || state.draining || !K::has_runnable(&state) {
            return;
        }
        state.scheduled = true;
        drop(state);
        match &self.pool {
            Ok(pool) => pool.execute(self.clone()),
            Err(error) => self.fail_all(error.clone()),
        }
    }

    /// Fails every queued item with `error` (a pool refused the drain, or
    /// was shut down now).
    fn fail_all(&self, error: Error) {
        let items = {
            let mut state = self.state.lock();
            state.scheduled = false;
            std::mem::take(&mut state.items)
        };
        for item in items {
            K::task(&item).fail(error.clone());
        }
    }

    /// The drain job: runs the queue unless a wait that claimed it does.
    fn drain_scheduled(self: &Arc<Self>) {
        {
            let mut state = self.state.lock();
            state.scheduled = false;
            if state.draining {
                // The claimer schedules another drain if items remain.
                return;
            }
            state.draining = true;
        }
        self.drain(None);
    }

    /// Runs items back to back until none can run or (with `until`) that
    /// item has run. The caller has set `draining`.
    fn drain(self: &Arc<Self>, until: Option<usize>) {
        loop {
            if self.pool.as_ref().is_ok_and(Pool::is_discarding) {
                self.state.lock().draining = false;
                self.fail_all(Error::Shutdown);
                return;
            }
            let Some((item, held)) = K::next(self) else {
                break;
            };
            let key = key_of(K::task(&item));
            K::run(self, item, held);
            self.state.lock().running = None;
            K::ran(self);
            if until == Some(key) {
                break;
            }
        }
        let mut state = self.state.lock();
        state.draining = false;
        self.start_if_idle(state);
    }
}

impl<K: Live> Queue for Serial<K> {
    fn blocker(&self, call: usize) -> Waits {
        let state = self.state.lock();
        if let Some(running) = &state.running {
            if graph::key(running) != call {
                return Waits::All(vec![running.clone()]);
            }
        }
        K::blocked_by(&state, call)
    }

    fn claim(self: Arc<Self>, call: usize) -> bool {
        {
            let mut state = self.state.lock();
            let queued = state.items.iter().any(|i| key_of(K::task(i)) == call);
            if state.draining || !queued {
                return false;
            }
            state.draining = true;
        }
        self.drain(Some(call));
        true
    }

    fn describe(&self) -> String {
        self.kind.describe()
    }
}

/// The queue itself goes into its pool's queue: its drain runs there.
impl<K: Live> Runnable for Serial<K> {
    fn run_from_queue(self: Arc<Self>) {
        // `drain` fails the queue itself after `shutdown_now`.
        self.drain_scheduled();
    }

    fn reject(self: Arc<Self>) {
        self.fail_all(Error::Shutdown);
    }
}
