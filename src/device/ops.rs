//! The operations of a parameter, a command or a serial device: one at a time, in submission order, on a pool,
//! without a thread of their own (a [serial queue](crate::serial)). An
//! operation held off by another owner's lock stays queued and lets the
//! next ones by; the next operation starts only once the previous one has
//! settled: its closure returned and, when it was cancelled, its stop
//! returned.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use crate::device::lock::{self, Holds, Kick, LockNode, Owner};
use crate::error::Error;
use crate::future::Future;
use crate::graph::{self, Node, Waits};
use crate::interrupt::Wakeable;
use crate::park::{self, OnCycle, Waiter};
use crate::pool::Pool;
use crate::serial::{self, Kind, Serial, State};
use crate::sync::{Condvar, Mutex};
use crate::task::{self, phase, run_task, Queue, Watchable};

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

/// A parameter's serial queue of operations.
pub(crate) type Ops = Serial<Operations>;

/// A parameter's side of its serial queue.
pub(crate) struct Operations {
    /// Told when an operation has settled.
    settled: Condvar,
    /// Whose queue it is (a parameter, a command, a serial device), for
    /// the wait graph's report.
    owner: Arc<LockNode>,
    what: &'static str,
}

/// What the queue keeps beside its operations.
#[derive(Default)]
pub(crate) struct Flags {
    /// Every queued operation waits for a lock: no drain until a kick.
    held_off: bool,
    /// A kick or a submission arrived while the queue was drained.
    kicked: bool,
}

pub(crate) struct Op {
    task: Arc<dyn Watchable>,
    run: Box<dyn FnOnce() + Send>,
    /// Set once the operation's future has settled (its stop, if it was
    /// cancelled, has returned).
    settled: Arc<AtomicBool>,
    /// What holds it off, while a lock does.
    held_by: Option<Arc<dyn Node>>,
    /// Whoever submitted it: a lock of its issuer does not hold it off
    /// while the issuer holds it.
    issuer: Owner,
    /// What it acts on (the parameter or command): the lock it needs.
    node: Arc<LockNode>,
}

impl Op {
    fn key(&self) -> usize {
        serial::key_of(&self.task)
    }
}

impl Ops {
    /// The queue of `owner` (`what`: "parameter", "command", "device").
    pub(crate) fn operations(
        pool: Result<Pool, Error>,
        owner: Arc<LockNode>,
        what: &'static str,
    ) -> Arc<Ops> {
        Serial::new(
            pool,
            Operations {
                settled: Condvar::new(),
                owner,
                what,
            },
        )
    }

    /// Queues `f` as the next operation, on `node` (whose lock it needs).
    /// `prepare` registers what must be in place before it can run (its
    /// stop).
    pub(crate) fn submit<T: Send + 'static>(
        self: &Arc<Self>,
        node: &Arc<LockNode>,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
        prepare: impl FnOnce(Future<T>) -> Future<T>,
    ) -> Future<T> {
        self.submit_keyed(Some(node), f, prepare).0
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

    /// As [`submit`](Ops::submit), with the operation's key; `None`: on
    /// the queue's owner.
    fn submit_keyed<T: Send + 'static>(
        self: &Arc<Self>,
        node: Option<&Arc<LockNode>>,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
        prepare: impl FnOnce(Future<T>) -> Future<T>,
    ) -> (Future<T>, usize) {
        let queue: Weak<dyn Queue> = Arc::downgrade(self) as Weak<dyn Queue>;
        let inner = task::on_queue(queue);
        if self.stopping_here() {
            // Part of the stop that runs on this thread: at once, here.
            let key = Arc::as_ptr(&inner) as *const () as usize;
            let future = prepare(Future::from_shared(inner.clone()));
            run_task(inner, f, |_| ());
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
                    ops.wake();
                }
            });
        }
        let task: Arc<dyn Watchable> = inner.clone();
        let key = serial::key_of(&task);
        self.enqueue(Op {
            task,
            run: Box::new(move || run_task(inner, f, |_| ())),
            settled,
            held_by: None,
            issuer: Owner::current(),
            node: node.unwrap_or(&self.kind.owner).clone(),
        });
        (future, key)
    }

    /// Waits until every operation submitted before has finished and the
    /// queue has moved past it.
    pub(crate) fn wait(self: &Arc<Self>) -> Result<(), Error> {
        let (barrier, key) = self.submit_keyed(None, || Ok(()), |f| f);
        barrier.result()?;
        // The drain clears the barrier as soon as it has run.
        park::wait_internal(&Past { ops: self, key }, OnCycle::FailOwner);
        Ok(())
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
    type State = State<Operations>;

    fn lock(&self) -> &Mutex<State<Operations>> {
        &self.ops.state
    }

    fn cond(&self) -> &Condvar {
        &self.ops.kind.settled
    }

    fn ready(&self, _: &State<Operations>) -> bool {
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

/// `wait()` waiting for the drain to move past its barrier.
struct Past<'a> {
    ops: &'a Arc<Ops>,
    key: usize,
}

impl Waiter for Past<'_> {
    type State = State<Operations>;

    fn lock(&self) -> &Mutex<State<Operations>> {
        &self.ops.state
    }

    fn cond(&self) -> &Condvar {
        &self.ops.kind.settled
    }

    fn ready(&self, state: &State<Operations>) -> bool {
        state
            .running
            .as_ref()
            .is_none_or(|r| graph::key(r) != self.key)
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
        self.kind.settled.notify_all();
    }
}

impl Kick for Ops {
    fn kick(self: Arc<Self>) {
        Serial::kick(&self);
    }
}

impl Kind for Operations {
    type Item = Op;
    type Flags = Flags;
    type Held = Holds;

    fn task(op: &Op) -> &Arc<dyn Watchable> {
        &op.task
    }

    fn has_runnable(state: &State<Self>) -> bool {
        !state.flags.held_off && !state.items.is_empty()
    }

    fn woken(flags: &mut Flags) {
        flags.kicked = true;
        flags.held_off = false;
    }

    /// The first operation in queue order that no lock holds off, with the
    /// lock's hold; cancelled ones met on the way (settled already) are
    /// dropped. Only the drain takes operations out, so positions hold.
    fn next(ops: &Arc<Ops>) -> Option<(Op, Holds)> {
        let me: Weak<dyn Kick> = Arc::downgrade(ops) as Weak<dyn Kick>;
        loop {
            ops.state.lock().flags.kicked = false;
            let mut index = 0;
            loop {
                let (key, task, target, issuer, dropped) = {
                    let mut state = ops.state.lock();
                    let mut dropped = Vec::new();
                    while state
                        .items
                        .get(index)
                        .is_some_and(|op| phase::is_decided(op.task.phase()))
                    {
                        dropped.extend(state.items.remove(index));
                    }
                    match state.items.get(index) {
                        Some(op) => (
                            op.key(),
                            op.task.clone() as Arc<dyn Node>,
                            op.node.clone(),
                            op.issuer.clone(),
                            dropped,
                        ),
                        None => {
                            drop(state);
                            drop(dropped);
                            break;
                        }
                    }
                };
                drop(dropped);
                let outcome = lock::try_operation(&target, &Owner::of(task), &issuer, me.clone());
                let mut state = ops.state.lock();
                let op = state
                    .items
                    .get_mut(index)
                    .filter(|op| op.key() == key)
                    .expect("only the drain takes operations out");
                match outcome {
                    Ok(holds) => {
                        op.held_by = None;
                        let op = state.take_running(index).expect("found above");
                        return Some((op, holds));
                    }
                    Err(edge) => {
                        op.held_by = Some(edge);
                        index += 1;
                    }
                }
            }
            let mut state = ops.state.lock();
            if state.flags.kicked {
                continue;
            }
            // Every operation waits for a lock: the lock table kicks this
            // queue when something changes.
            state.flags.held_off = !state.items.is_empty();
            return None;
        }
    }

    /// Runs the operation, then waits for its stop when it was cancelled;
    /// the lock's hold is released after.
    fn run(ops: &Arc<Ops>, op: Op, holds: Holds) {
        let Op {
            task, run, settled, ..
        } = op;
        run();
        ops.wait_settled(&task, &settled);
        drop(holds);
    }

    fn ran(ops: &Ops) {
        // `running` was cleared under the lock: waiters re-check it.
        ops.kind.settled.notify_all();
    }

    /// A queued operation waits on what holds it off.
    fn blocked_by(state: &State<Self>, call: usize) -> Waits {
        match state.items.iter().find(|op| op.key() == call) {
            Some(Op {
                held_by: Some(edge),
                ..
            }) => Waits::All(vec![edge.clone()]),
            _ => Waits::Nothing,
        }
    }

    fn describe(&self) -> String {
        format!("{} `{}`", self.what, self.owner.full_name())
    }
}
