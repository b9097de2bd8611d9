//! Settling a task: the one place an outcome is decided and published,
//! and the done-callbacks, continuation and listeners told after.

use std::sync::Arc;
use std::task::Waker;

use crate::error::Error;
use crate::graph;
use crate::sync::{self, MutexGuard};
use crate::task::inner::{run_guarded, Callback, Content, Continuation, Inner, Slot};
use crate::task::listener::Listener;
use crate::task::phase::{self, CANCELLED, DONE, FAILED, LENT, SETTLING};

use std::sync::atomic::Ordering;

/// What publication hands on once the lock is released.
pub(super) struct Tell<T> {
    waker: Option<Waker>,
    listeners: Vec<(Arc<Listener>, u64)>,
    continuation: Option<Continuation<T>>,
}

impl<T> Tell<T> {
    pub(super) fn new() -> Self {
        Tell {
            waker: None,
            listeners: Vec::new(),
            continuation: None,
        }
    }

    /// Takes what the slot's hooks have to be told, leaving their
    /// callbacks, and drops the hooks once nothing is left in them.
    fn gather(&mut self, slot: &mut Slot<T>) {
        let Some(hooks) = slot.hooks.as_mut() else {
            return;
        };
        self.continuation = self.continuation.take().or(hooks.continuation.take());
        self.waker = self.waker.take().or(hooks.waker.take());
        self.listeners.append(&mut hooks.listeners);
        if hooks.is_empty() {
            slot.hooks = None;
        }
    }

    fn tell(self) {
        if let Some(waker) = self.waker {
            waker.wake();
        }
        for (listener, key) in self.listeners {
            listener.fire(key);
        }
    }
}

/// What deciding an outcome did.
enum Settled<T> {
    /// It was decided already: the outcome was dropped.
    Dropped,
    Published,
    /// Published; the callbacks are left to another thread.
    Handed(Handed<T>),
}

/// What a quiet settle leaves to another thread: the done-callbacks (and
/// the continuation and the rest told after them), with the outcome they
/// borrow (or, for a shared task, a copy of it).
pub(crate) struct Handed<T>(Handing<T>);

enum Handing<T> {
    Lent {
        outcome: Result<T, Error>,
        published: u8,
        callbacks: Vec<Callback<T>>,
        tell: Tell<T>,
    },
    Copies {
        copied: Result<T, Error>,
        callbacks: Vec<Callback<T>>,
        tell: Tell<T>,
    },
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

impl<T: Send + 'static> Inner<T> {
    /// Decides the outcome, runs the cleanup (with `cancelling`, on this
    /// thread, before anything is published), publishes the outcome, then
    /// runs the done-callbacks and hands it on (continuation, waker,
    /// listeners), waking every waiter. Returns false (and drops `outcome`)
    /// when the outcome was already decided.
    /// The phase published is [`published_phase`].
    ///
    /// Publication comes first: whoever a callback or a dependent tells
    /// sees this task done. No user code runs under the lock.
    pub(crate) fn settle(&self, outcome: Result<T, Error>, cancelling: bool) -> bool {
        match self.decide(outcome, cancelling, false, false) {
            Settled::Dropped => false,
            Settled::Published => true,
            Settled::Handed(_) => unreachable!("only a quiet settle hands its callbacks on"),
        }
    }

    /// Settles with `outcome` as [`Inner::settle`] does, but runs no user
    /// code on this thread: the outcome is published here (in the order of
    /// the calls that publish, `done()` true at once), and what would run
    /// the done-callbacks and the continuation is given back as a
    /// [`Handed`] for another thread to [`finish`](Inner::finish). Until
    /// it does, waits wait, as while callbacks run. For the threads a
    /// transport needs (a reply reader, an MPI thread, a death watch).
    pub(crate) fn settle_quietly(&self, outcome: Result<T, Error>) -> Option<Handed<T>> {
        match self.decide(outcome, false, true, false) {
            Settled::Handed(handed) => Some(handed),
            Settled::Dropped | Settled::Published => None,
        }
    }

    /// Runs what a quiet settle handed on: the callbacks (and those
    /// registered since), then the continuation and the rest, releasing
    /// the outcome.
    pub(crate) fn finish(&self, handed: Handed<T>) {
        match handed.0 {
            Handing::Lent {
                outcome,
                published,
                mut callbacks,
                tell,
            } => {
                let mut slot = self.slot.lock();
                if let Some(h) = slot.hooks.as_mut() {
                    callbacks.append(&mut h.callbacks);
                }
                self.lend(slot, outcome, published, callbacks, tell);
            }
            Handing::Copies {
                copied,
                callbacks,
                tell,
            } => {
                for callback in callbacks {
                    run_guarded(|| callback(&copied));
                }
                tell.tell();
            }
        }
    }

    /// Cancels the task if it has not started (still `PENDING`): true when
    /// this call won. A running task is left to finish, its value kept.
    pub(crate) fn cancel_unstarted(&self) -> bool {
        matches!(
            self.decide(Err(Error::Cancelled), true, false, true),
            Settled::Published
        )
    }

    fn decide(
        &self,
        outcome: Result<T, Error>,
        cancelling: bool,
        quiet: bool,
        unstarted: bool,
    ) -> Settled<T> {
        let mut slot = self.slot.lock();
        // Acquire loads and AcqRel CAS: only PENDING → RUNNING happens
        // without the lock, and the CAS below orders this decision after it.
        let mut phase = self.phase.load(Ordering::Acquire);
        loop {
            if phase::is_decided(phase) || (unstarted && phase != phase::PENDING) {
                drop(slot);
                drop(outcome);
                return Settled::Dropped;
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
            return Settled::Published;
        }
        if let Some(cleanup) = slot.hooks.as_mut().and_then(|h| h.cleanup.take()) {
            // SETTLING: no cleanup can be added any more, nothing is
            // published yet, waiters keep waiting. A cleanup that a
            // completion makes moot is dropped here, outside the lock too.
            if cancelling {
                // Meanwhile the task waits on whoever runs its cleanup.
                slot.hooks().settler = Some(graph::owner());
                drop(slot);
                run_guarded(cleanup);
                slot = self.slot.lock();
                if let Some(hooks) = slot.hooks.as_mut() {
                    hooks.settler = None;
                }
            } else {
                drop(slot);
                drop(cleanup);
                slot = self.slot.lock();
            }
        }
        // A closure still queued (the task was cancelled or refused before
        // it ran) is dropped after the lock is released.
        let stale = std::mem::replace(&mut slot.content, Content::Empty);
        let (callbacks, copier) = match slot.hooks.as_mut() {
            Some(h) => (std::mem::take(&mut h.callbacks), h.copier),
            None => (Vec::new(), None),
        };
        let mut tell = Tell::new();
        tell.gather(&mut slot);
        let runs_user_code = !callbacks.is_empty() || tell.continuation.is_some();
        match copier {
            Some(copy) if !callbacks.is_empty() && tell.continuation.is_none() => {
                // A shared task: the outcome stays in place for every
                // reader; the callbacks get one copy.
                let copied = copy(&outcome);
                slot.content = Content::Outcome(outcome);
                // Release: as on the fast path.
                self.phase.store(published, Ordering::Release);
                self.cond.notify_all();
                drop(slot);
                drop(stale);
                let handed = Handed(Handing::Copies {
                    copied,
                    callbacks,
                    tell,
                });
                if quiet {
                    return Settled::Handed(handed);
                }
                self.finish(handed);
            }
            _ if quiet && runs_user_code => {
                // Published as lent to callbacks that another thread runs.
                slot.content = Content::Lent(sync::thread_id());
                // Release: as in `lend`.
                self.phase.store(published | LENT, Ordering::Release);
                drop(slot);
                drop(stale);
                return Settled::Handed(Handed(Handing::Lent {
                    outcome,
                    published,
                    callbacks,
                    tell,
                }));
            }
            _ => {
                drop(stale);
                self.lend(slot, outcome, published, callbacks, tell);
            }
        }
        Settled::Published
    }

    /// Calls `callback` with the outcome once published: on the thread
    /// that publishes it, or at once on this thread when it is in place
    /// (lent to it meanwhile, or, for a shared task, copied). Never under
    /// the lock. Dropped when the outcome was taken already.
    pub(crate) fn on_done(&self, callback: Callback<T>) {
        let mut slot = self.slot.lock();
        // Acquire: as in `phase`; publication and lending change the phase
        // under this lock.
        let phase = self.phase.load(Ordering::Acquire);
        if !phase::is_published(phase) || phase & LENT != 0 {
            // Not published yet, or lent to callbacks on another thread:
            // whoever publishes (or lends) runs it.
            slot.hooks().callbacks.push(callback);
            return;
        }
        if let Some(copy) = slot.hooks.as_ref().and_then(|h| h.copier) {
            let copied = match &slot.content {
                Content::Outcome(outcome) => copy(outcome),
                _ => return,
            };
            drop(slot);
            run_guarded(|| callback(&copied));
            return;
        }
        let Some(outcome) = slot.take_outcome() else {
            return;
        };
        self.lend(slot, outcome, phase, vec![callback], Tell::new());
    }

    /// Publishes `outcome` as `published` while `callbacks` borrow it on
    /// this thread (the phase carries [`LENT`] meanwhile: `done()` is true,
    /// waits wait), runs them and whatever is registered meanwhile, then
    /// puts the outcome in place (or hands it to the continuation), wakes
    /// the waiters and tells the rest. Called with the slot locked.
    pub(super) fn lend<'a>(
        &'a self,
        mut slot: MutexGuard<'a, Slot<T>>,
        outcome: Result<T, Error>,
        published: u8,
        mut callbacks: Vec<Callback<T>>,
        mut tell: Tell<T>,
    ) {
        while !callbacks.is_empty() {
            slot.content = Content::Lent(sync::thread_id());
            // Release: pairs with the Acquire of `phase`/`is_released`;
            // nothing of the outcome is readable yet.
            self.phase.store(published | LENT, Ordering::Release);
            drop(slot);
            for callback in callbacks.drain(..) {
                run_guarded(|| callback(&outcome));
            }
            slot = self.slot.lock();
            // Callbacks registered while these ran (they found it lent).
            if let Some(h) = slot.hooks.as_mut() {
                callbacks = std::mem::take(&mut h.callbacks);
            }
        }
        tell.gather(&mut slot);
        match tell.continuation.take() {
            Some(next) => {
                slot.content = Content::Empty;
                // Release: as in `settle`.
                self.phase.store(published, Ordering::Release);
                self.cond.notify_all();
                drop(slot);
                next(outcome);
            }
            None => {
                slot.content = Content::Outcome(outcome);
                // Release: the outcome is back in place before the phase
                // says so.
                self.phase.store(published, Ordering::Release);
                self.cond.notify_all();
                drop(slot);
            }
        }
        tell.tell();
    }
}
