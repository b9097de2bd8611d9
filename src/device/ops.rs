//! A parameter's operations: one at a time, in submission order, on a pool,
//! without a thread of their own (a small instance). An operation held off
//! by another owner's lock stays queued and lets the next ones by; the next
//! operation starts only once the previous one has settled: its closure
//! returned and, when it was cancelled, its stop returned.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use crate::device::lock::{self, Kick, LockNode, Owner};
use crate::error::Error;
use crate::future::Future;
use crate::graph::{self, Node, Waits};
use crate::interrupt::Wakeable;
use crate::park::{self, OnCycle, Waiter};
use crate::pool::{Pool, Work};
use crate::sync::{Condvar, Mutex, MutexGuard};
use crate::task::{self, phase, run_task_with, Queue, Watchable};
use crate::worker::{Queued, Runnable};

crate::sync::task_local! {
    /// The queue whose parameter's stop this thread runs now (its address;
    /// 0 for none): the operations the stop submits to it are part of it.
    static STOPPING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// While alive, this thread runs the stop of a queue's parameter (see
/// [`Ops::stopping`]).
pub(crate) struct Stopping(usize);

impl Drop for Stopping {
    fn drop(&mut self) {
        STOPPING.with(|s| s.set(self.0));
    }
}

pub(crate) struct Ops {
    state: Mutex<State>,
    /// Told when an operation has settled.
    settled: Condvar,
    pool: Result<Pool, Error>,
    node: Arc<LockNode>,
}

struct State {
    queue: VecDeque<Op>,
    /// A drain job is on the pool and has not started yet.
    scheduled: bool,
    /// Somebody runs the operations now (the drain job, or a wait that
    /// claimed the queue); only they take operations out.
    draining: bool,
    /// Every queued operation waits for a lock: no drain until a kick.
    held_off: bool,
    /// A kick or a submission arrived while the queue was drained.
    kicked: bool,
    /// The operation running now, for the deadlock detection.
    running: Option<Arc<dyn Node>>,
}

struct Op {
    task: Arc<dyn Watchable>,
    run: Box<dyn FnOnce() + Send>,
    /// Set once the operation's future has settled (its stop, if it was
    /// cancelled, has returned).
    settled: Arc<AtomicBool>,
    /// What holds it off, while a lock does.
    held_by: Option<Arc<dyn Node>>,
}

impl Op {
    fn key(&self) -> usize {
        Arc::as_ptr(&self.task) as *const () as usize
    }
}

impl Ops {
    pub(crate) fn new(pool: Result<Pool, Error>, node: Arc<LockNode>) -> Arc<Ops> {
        Arc::new(Ops {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                scheduled: false,
                draining: false,
                held_off: false,
                kicked: false,
                running: None,
            }),
            settled: Condvar::new(),
            pool,
            node,
        })
    }

    /// Queues `f` as the parameter's next operation. `prepare` registers
    /// what must be in place before it can run (its stop).
    pub(crate) fn submit<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
        prepare: impl FnOnce(Future<T>) -> Future<T>,
    ) -> Future<T> {
        self.submit_keyed(f, prepare).0
    }

    /// Marks this thread as running the parameter's stop until the guard
    /// drops: the operations the stop submits to this queue (a stop that
    /// reads the position, say) run at once, on this thread, as part of it
    /// — queued, they would wait for the very operation that is being
    /// stopped, and that one waits for its stop.
    pub(crate) fn stopping(self: &Arc<Self>) -> Stopping {
        Stopping(STOPPING.with(|s| s.replace(self.address())))
    }

    /// True while this thread runs the parameter's stop.
    pub(crate) fn stopping_here(self: &Arc<Self>) -> bool {
        STOPPING.with(|s| s.get()) == self.address()
    }

    fn address(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    /// As [`submit`](Ops::submit), with the operation's key.
    fn submit_keyed<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
        prepare: impl FnOnce(Future<T>) -> Future<T>,
    ) -> (Future<T>, usize) {
        let queue: Weak<dyn Queue> = Arc::downgrade(self) as Weak<dyn Queue>;
        let inner = task::on_queue(queue);
        if self.stopping_here() {
            // Part of the stop that runs on this thread: at once, here.
            let key = Arc::as_ptr(&inner) as *const () as usize;
            let future = prepare(Future::from_shared(inner.clone()));
            run_task_with(inner, f, |_| ());
            return (future, key);
        }
        let future = prepare(Future::from_shared(inner.clone()));
        let settled = Arc::new(AtomicBool::new(false));
        {
            let ops = Arc::downgrade(self);
            let settled = settled.clone();
            // Callbacks run after the cleanup: the stop has returned.
            future.on_done(move |_| {
                // Release: pairs with the Acquire of the drain that waits.
                settled.store(true, Ordering::Release);
                if let Some(ops) = ops.upgrade() {
                    let _state = ops.state.lock();
                    ops.settled.notify_all();
                }
            });
        }
        let task: Arc<dyn Watchable> = inner.clone();
        let key = Arc::as_ptr(&task) as *const () as usize;
        if let Ok(pool) = &self.pool {
            if pool.is_shutdown() {
                task.fail(Error::Shutdown);
                return (future, key);
            }
        }
        let op = Op {
            task,
            run: Box::new(move || run_task_with(inner, f, |_| ())),
            settled,
            held_by: None,
        };
        let mut state = self.state.lock();
        state.queue.push_back(op);
        state.held_off = false;
        state.kicked = true;
        self.start_if_idle(state);
        (future, key)
    }

    /// Waits until every operation submitted before has finished and the
    /// queue has moved past it.
    pub(crate) fn idle(self: &Arc<Self>) -> Result<(), Error> {
        let (barrier, key) = self.submit_keyed(|| Ok(()), |f| f);
        barrier.result()?;
        // The drain clears the barrier as soon as it has run.
        park::wait_internal(&Past { ops: self, key }, OnCycle::FailOwner);
        Ok(())
    }

    /// True while an operation is queued or running.
    pub(crate) fn busy(&self) -> bool {
        let state = self.state.lock();
        !state.queue.is_empty() || state.running.is_some()
    }

    fn start_if_idle(self: &Arc<Self>, mut state: MutexGuard<'_, State>) {
        if state.scheduled || state.draining || state.held_off || state.queue.is_empty() {
            return;
        }
        state.scheduled = true;
        drop(state);
        match &self.pool {
            Ok(pool) => pool.execute(Drain(self.clone())),
            Err(error) => self.fail_all(error.clone()),
        }
    }

    fn fail_all(&self, error: Error) {
        let ops = {
            let mut state = self.state.lock();
            state.scheduled = false;
            std::mem::take(&mut state.queue)
        };
        for op in ops {
            op.task.fail(error.clone());
        }
    }

    fn drain_scheduled(self: &Arc<Self>) {
        {
            let mut state = self.state.lock();
            state.scheduled = false;
            if state.draining {
                return;
            }
            state.draining = true;
        }
        self.drain(None);
    }

    /// Runs operations one at a time, each the first in queue order that no
    /// lock holds off, until none is left that can run (or, with `until`,
    /// that operation has run). The caller has set `draining`.
    fn drain(self: &Arc<Self>, until: Option<usize>) {
        let me: Weak<dyn Kick> = Arc::downgrade(self) as Weak<dyn Kick>;
        loop {
            if self.pool.as_ref().is_ok_and(Pool::is_discarding) {
                self.state.lock().draining = false;
                self.fail_all(Error::Shutdown);
                return;
            }
            self.state.lock().kicked = false;
            // The first operation in queue order that no lock holds off;
            // cancelled ones met on the way (settled already) are dropped.
            // Only the drain takes operations out, so positions hold.
            let mut index = 0;
            let mut chosen = None;
            loop {
                let (key, node, dropped) = {
                    let mut state = self.state.lock();
                    let mut dropped = Vec::new();
                    while state
                        .queue
                        .get(index)
                        .is_some_and(|op| phase::is_decided(op.task.phase()))
                    {
                        dropped.extend(state.queue.remove(index));
                    }
                    match state.queue.get(index) {
                        Some(op) => (op.key(), op.task.clone() as Arc<dyn Node>, dropped),
                        None => {
                            drop(state);
                            drop(dropped);
                            break;
                        }
                    }
                };
                drop(dropped);
                let outcome = lock::try_operation(&self.node, &Owner::of(node), me.clone());
                let mut state = self.state.lock();
                let op = state
                    .queue
                    .get_mut(index)
                    .filter(|op| op.key() == key)
                    .expect("only the drain takes operations out");
                match outcome {
                    Ok(holds) => {
                        op.held_by = None;
                        chosen = Some((key, holds));
                        break;
                    }
                    Err(edge) => {
                        op.held_by = Some(edge);
                        index += 1;
                    }
                }
            }
            let Some((key, holds)) = chosen else {
                let mut state = self.state.lock();
                if state.kicked {
                    continue;
                }
                // Every operation waits for a lock: the lock table kicks
                // this queue when something changes.
                state.held_off = !state.queue.is_empty();
                break;
            };
            let op = {
                let mut state = self.state.lock();
                let op = state.queue.remove(index).expect("found above");
                state.running = Some(op.task.clone());
                op
            };
            let Op {
                task, run, settled, ..
            } = op;
            run();
            self.wait_settled(&task, &settled);
            drop(holds);
            self.state.lock().running = None;
            self.settled.notify_all();
            if until == Some(key) {
                break;
            }
        }
        let mut state = self.state.lock();
        state.draining = false;
        self.start_if_idle(state);
    }

    /// Waits until a cancelled operation's stop has returned (at once for
    /// one that completed: it settled itself). The canceller is running
    /// the stop; this worker is compensated meanwhile, and the wait is in
    /// the wait graph (the operation waits on whoever runs its stop).
    fn wait_settled(self: &Arc<Self>, task: &Arc<dyn Watchable>, settled: &AtomicBool) {
        let settling = Settling {
            ops: self,
            task,
            settled,
        };
        park::wait_internal(&settling, OnCycle::FailOwner);
    }
}

/// The drain waiting for a cancelled operation's stop to return.
struct Settling<'a> {
    ops: &'a Arc<Ops>,
    task: &'a Arc<dyn Watchable>,
    settled: &'a AtomicBool,
}

impl Waiter for Settling<'_> {
    type State = State;

    fn lock(&self) -> &Mutex<State> {
        &self.ops.state
    }

    fn cond(&self) -> &Condvar {
        &self.ops.settled
    }

    fn ready(&self, _: &State) -> bool {
        self.quick()
    }

    fn quick(&self) -> bool {
        // Acquire: pairs with the Release in the settling callback.
        self.settled.load(Ordering::Acquire)
    }

    fn target(&self) -> Arc<dyn Wakeable> {
        self.ops.clone()
    }

    fn waits(&self) -> Waits {
        Waits::All(vec![self.task.clone() as Arc<dyn Node>])
    }
}

/// `idle()` waiting for the drain to move past its barrier.
struct Past<'a> {
    ops: &'a Arc<Ops>,
    key: usize,
}

impl Waiter for Past<'_> {
    type State = State;

    fn lock(&self) -> &Mutex<State> {
        &self.ops.state
    }

    fn cond(&self) -> &Condvar {
        &self.ops.settled
    }

    fn ready(&self, state: &State) -> bool {
        state
            .running
            .as_ref()
            .is_none_or(|r| graph::key(r) != self.key)
    }

    fn quick(&self) -> bool {
        let state = self.ops.state.try_lock();
        state.is_some_and(|state| self.ready(&state))
    }

    fn target(&self) -> Arc<dyn Wakeable> {
        self.ops.clone()
    }

    fn waits(&self) -> Waits {
        Waits::Nothing
    }
}

impl Wakeable for Ops {
    fn wake(&self) {
        let _state = self.state.lock();
        self.settled.notify_all();
    }
}

impl Kick for Ops {
    fn kick(self: Arc<Self>) {
        let mut state = self.state.lock();
        state.kicked = true;
        state.held_off = false;
        self.start_if_idle(state);
    }
}

impl Queue for Ops {
    fn blocker(&self, call: usize) -> Waits {
        let state = self.state.lock();
        if let Some(running) = &state.running {
            if graph::key(running) != call {
                return Waits::All(vec![running.clone()]);
            }
        }
        match state.queue.iter().find(|op| op.key() == call) {
            Some(Op {
                held_by: Some(edge),
                ..
            }) => Waits::All(vec![edge.clone()]),
            _ => Waits::Nothing,
        }
    }

    fn claim(self: Arc<Self>, call: usize) -> bool {
        {
            let mut state = self.state.lock();
            if state.draining || !state.queue.iter().any(|op| op.key() == call) {
                return false;
            }
            state.draining = true;
        }
        self.drain(Some(call));
        true
    }

    fn describe(&self) -> String {
        format!("parameter `{}`", self.node.full_name())
    }
}

/// The job that runs a parameter's queue on its pool.
struct Drain(Arc<Ops>);

impl Work for Drain {
    fn run(self) {
        self.0.drain_scheduled();
    }

    fn reject(self) {
        self.0.fail_all(Error::Shutdown);
    }

    fn into_queued(self) -> Queued {
        Queued::Task(self.0)
    }
}

impl Runnable for Ops {
    fn run_from_queue(self: Arc<Self>) {
        self.drain_scheduled();
    }
}
