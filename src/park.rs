//! The one place a thread sleeps.
//!
//! A wait ([`block`]) goes through these steps, cheapest first:
//!
//! 1. **Check.** The condition read without a lock; a finished wait costs one load.
//! 2. **Spin, then yield**, re-checking: a hand-off within the spin costs well
//!    under a microsecond, a park/unpark round trip 10–40 µs.
//! 3. **Register** with the interrupt machinery, so that Ctrl-C wakes it,
//!    and with the thread's pool, whose shutdown waits on it.
//! 4. **Detect deadlock** (see [`crate::graph`]): the wait records what it
//!    waits on in its owner and, when it has no deadline, looks for a cycle
//!    back to it; one found makes the wait return [`Blocked::Deadlock`]
//!    instead of sleeping.
//! 5. **Tell the pool** (compensation, see [`crate::worker`]) and park on the
//!    condvar, re-checking the condition in a loop.
//!
//! Nothing else runs inside a wait: a sleeping thread runs no queued work.
//! Every wait of the crate that may last goes through [`block`], with a
//! [`Waiter`] that says what it sleeps on and what it waits for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::graph::{self, Node, Waits};
use crate::interrupt::{self, Registration, Wakeable, Woken};
use crate::sync::{self, process, Condvar, Mutex};
use crate::worker;

/// How many rounds of spinning, then yielding, a wait makes before it parks.
const SPIN_ROUNDS: u32 = 6;
const YIELD_ROUNDS: u32 = 10;

/// Spins, then yields, re-checking `done` after each round, as a wait
/// does before it parks (a hand-off within the spin costs well under a
/// microsecond, a park/unpark round trip 10–40 µs); true once `done` held.
pub(crate) fn spin_until(mut done: impl FnMut() -> bool) -> bool {
    for round in 0..=YIELD_ROUNDS {
        if round <= SPIN_ROUNDS {
            for _ in 0..(1u32 << round) {
                std::hint::spin_loop();
            }
        } else {
            std::thread::yield_now();
        }
        if done() {
            return true;
        }
    }
    false
}

/// A thread asleep in a [`block`], for a snapshot of the runtime.
struct Sleeper {
    token: u64,
    thread: std::thread::Thread,
    owner: Arc<dyn Node>,
    since: Instant,
}

/// The threads asleep in a wait, in the parts of
/// [`interrupt::shard`]: a wait registers in its thread's part.
static SLEEPERS: [process::Mutex<(u64, Vec<Sleeper>)>; interrupt::SHARDS] =
    [const { process::Mutex::new((0, Vec::new())) }; interrupt::SHARDS];

/// While alive, this thread sleeps in a wait of `owner`'s.
struct Asleep {
    shard: usize,
    token: u64,
}

impl Asleep {
    fn new(owner: Arc<dyn Node>) -> Asleep {
        let shard = interrupt::shard();
        let mut part = SLEEPERS[shard].lock();
        let token = part.0;
        part.0 += 1;
        part.1.push(Sleeper {
            token,
            thread: std::thread::current(),
            owner,
            since: Instant::now(),
        });
        Asleep { shard, token }
    }
}

impl Drop for Asleep {
    fn drop(&mut self) {
        let removed = {
            let mut part = SLEEPERS[self.shard].lock();
            let at = part.1.iter().position(|s| s.token == self.token);
            at.map(|at| part.1.swap_remove(at))
        };
        // The owner's last handle may go here: dropped outside the lock.
        drop(removed);
    }
}

/// Every thread asleep in a wait now: the thread, whom it waits for (the
/// task it runs, or itself), and for how long.
pub(crate) fn sleepers() -> Vec<(std::thread::Thread, Arc<dyn Node>, Duration)> {
    let now = Instant::now();
    let mut all = Vec::new();
    for part in &SLEEPERS {
        let part = part.lock();
        all.extend(part.1.iter().map(|s| {
            (
                s.thread.clone(),
                s.owner.clone(),
                now.saturating_duration_since(s.since),
            )
        }));
    }
    all
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

/// One wait, as [`block`] sees it: what it sleeps on, the condition it
/// waits for, what a Ctrl-C wakes and what it waits on.
pub(crate) trait Waiter {
    /// What the condition is read from, under [`Waiter::lock`].
    type State;
    /// The lock the condition is read under.
    fn lock(&self) -> &Mutex<Self::State>;
    /// The condvar a wake notifies (with the lock taken).
    fn cond(&self) -> &Condvar;
    /// The condition, read under the lock.
    fn ready(&self, state: &Self::State) -> bool;
    /// The same condition read without waiting for the lock (a finished
    /// wait costs one load where the waiter has one to read; by default,
    /// the condition under the lock when it is free).
    fn quick(&self) -> bool {
        self.lock()
            .try_lock()
            .is_some_and(|state| self.ready(&state))
    }
    /// What a Ctrl-C wakes.
    fn target(&self) -> Arc<dyn Wakeable>;
    /// What the wait waits on, for the deadlock detection.
    fn waits(&self) -> Waits;
    /// False once the wait found a cycle it could not break: it records
    /// what it waits on and sleeps, without looking again (a cycle it
    /// found is broken by others going on).
    fn looks(&self) -> bool {
        true
    }
}

/// Blocks the calling thread until the waiter's condition holds (checked
/// under its lock, and woken through its condvar), the deadline passes, or
/// an interrupt arrives (see the module docs for the steps).
pub(crate) fn block<W: Waiter>(waiter: &W, deadline: Option<Instant>) -> Blocked {
    if waiter.quick() {
        return Blocked::Ready;
    }
    if sync::spin_then_yield() && spin_until(|| waiter.quick()) {
        return Blocked::Ready;
    }
    let registration = interrupt::register(waiter.target());
    let owner = graph::owner();
    let _waiting = worker::waiting(&owner);
    let _asleep = Asleep::new(owner.clone());
    let _recorded = match graph::detect(owner, waiter.waits(), deadline.is_none() && waiter.looks())
    {
        Ok(recorded) => recorded,
        Err(cycle) => {
            return if waiter.quick() {
                Blocked::Ready
            } else {
                crate::trace::deadlock(&cycle);
                Blocked::Deadlock(Error::Deadlock(cycle))
            };
        }
    };
    let _blocked = worker::block();
    let (lock, cond) = (waiter.lock(), waiter.cond());
    let mut guard = lock.lock();
    loop {
        // Why the wait ended is decided under the lock: the condition may
        // not hold any more once it is released, and callers re-check.
        if waiter.ready(&guard) {
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
                    return if waiter.ready(&guard) {
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

/// What a wait of the runtime's own does when it finds a cycle through it.
pub(crate) enum OnCycle {
    /// Stops waiting (a shutdown that would wait on its own caller).
    GiveUp,
    /// Fails the task this thread runs for with the deadlock, so that whoever
    /// waits on it goes on, and waits on without looking again (the end of
    /// a scope, a queue waiting for an operation's stop: they cannot go on
    /// before what they wait for ends).
    FailOwner,
}

/// Waits until `waiter` is ready, for the runtime itself (a shutdown, the
/// end of a scope, a queue waiting for a stop): a Ctrl-C goes to the waits
/// of the program, as if this one did not wait, and a cycle is handled as
/// `on_cycle` says. True once ready; false when it gave up.
pub(crate) fn wait_internal<W: Waiter>(waiter: &W, on_cycle: OnCycle) -> bool {
    let mut looks = true;
    loop {
        let blocked = block(&Internal { waiter, looks }, None);
        match blocked {
            Blocked::Ready => return true,
            Blocked::TimedOut | Blocked::Interrupted(_) => {}
            Blocked::Deadlock(error) => match on_cycle {
                OnCycle::GiveUp => return false,
                OnCycle::FailOwner => {
                    if let Some(frame) = graph::frame() {
                        frame.fail_run(error);
                    }
                    looks = false;
                }
            },
        }
    }
}

/// A waiter as [`wait_internal`] waits on it.
struct Internal<'a, W> {
    waiter: &'a W,
    looks: bool,
}

impl<W: Waiter> Waiter for Internal<'_, W> {
    type State = W::State;

    fn lock(&self) -> &Mutex<W::State> {
        self.waiter.lock()
    }

    fn cond(&self) -> &Condvar {
        self.waiter.cond()
    }

    fn ready(&self, state: &W::State) -> bool {
        self.waiter.ready(state)
    }

    fn quick(&self) -> bool {
        self.waiter.quick()
    }

    fn target(&self) -> Arc<dyn Wakeable> {
        Arc::new(Unhandled(self.waiter.target()))
    }

    fn waits(&self) -> Waits {
        self.waiter.waits()
    }

    fn looks(&self) -> bool {
        self.looks && self.waiter.looks()
    }
}

/// A Ctrl-C leaves a wait of the runtime's own alone.
struct Unhandled(Arc<dyn Wakeable>);

impl Wakeable for Unhandled {
    fn wake(&self) {
        self.0.wake();
    }

    fn on_interrupt(&self) -> Woken {
        Woken::Nothing
    }

    fn handles(&self) -> bool {
        false
    }
}

/// The instant `timeout` from now; `None` (wait forever) for a timeout too
/// long to represent.
pub(crate) fn deadline_after(timeout: std::time::Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
