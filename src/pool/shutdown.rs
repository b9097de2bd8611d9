//! Shutting a pool down: closing its intake, and waiting for its threads
//! through [`crate::park`] — in the wait graph, so that a shutdown
//! that would wait on its own caller returns instead of hanging.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crate::graph::{self, Node, Waits};
use crate::interrupt::Wakeable;
use crate::park::{self, OnCycle, Waiter};
use crate::pool::thread::{Ctx, CTX};
use crate::pool::{Exec, Shared, DRAINING};
use crate::sync::{Condvar, Mutex};
use crate::worker;

impl Ctx {
    pub(super) fn add_live(&self) {
        *self.live.lock() += 1;
    }

    /// Counts a thread the shutdown waits for: before it is started (a
    /// shutdown never misses one that is about to run a task), and again
    /// once it has left (or could not be started).
    pub(super) fn count_thread(&self, more: bool) {
        if more {
            self.add_live();
        } else {
            self.sub_live();
        }
    }

    pub(super) fn sub_live(&self) {
        let mut live = self.live.lock();
        *live -= 1;
        if *live == 0 {
            self.quiet.notify_all();
        }
    }

    /// Waits until every thread has left (and every adopted token ended);
    /// false, at once, when that wait closes a cycle: a thread of the pool
    /// waits, through others, on the caller.
    fn wait_quiet(self: &Arc<Self>) -> bool {
        let quiet = Quiet {
            ctx: self,
            node: Arc::new(ShutdownNode(Arc::downgrade(self))),
        };
        park::wait_internal(&quiet, OnCycle::GiveUp)
    }
}

/// A shutdown waiting for the pool's threads to leave.
struct Quiet<'a> {
    ctx: &'a Arc<Ctx>,
    node: Arc<dyn Node>,
}

impl Waiter for Quiet<'_> {
    type State = usize;

    fn lock(&self) -> &Mutex<usize> {
        &self.ctx.live
    }

    fn cond(&self) -> &Condvar {
        &self.ctx.quiet
    }

    fn ready(&self, live: &usize) -> bool {
        *live == 0
    }

    fn target(&self) -> Arc<dyn Wakeable> {
        self.ctx.clone()
    }

    fn waits(&self) -> Waits {
        Waits::All(vec![self.node.clone()])
    }
}

impl Wakeable for Ctx {
    fn wake(&self) {
        let _live = self.live.lock();
        self.quiet.notify_all();
    }
}

/// A pool's shutdown as the wait graph sees it: it waits on whatever the
/// pool's threads wait on (a thread that runs without waiting ends).
struct ShutdownNode(Weak<Ctx>);

impl Node for ShutdownNode {
    fn waits(&self) -> Waits {
        match self.0.upgrade() {
            Some(ctx) => Waits::All(ctx.waiting.lock().clone()),
            None => Waits::Nothing,
        }
    }

    fn describe(&self) -> String {
        match self.0.upgrade() {
            Some(ctx) => format!("the shutdown of pool `{}`", ctx.stats.name),
            None => "the shutdown of a pool".to_owned(),
        }
    }

    /// The pool's tasks do not act for whoever shuts the pool down.
    fn lends(&self) -> bool {
        false
    }
}

impl Shared {
    /// True when the calling thread is one of this pool's workers.
    fn on_own_worker(&self) -> bool {
        CTX.with(|c| {
            c.borrow()
                .as_ref()
                .is_some_and(|ctx| Arc::ptr_eq(ctx, &self.ctx))
        })
    }

    /// Stops accepting work; with `mode == DISCARDING`, queued tasks fail
    /// with `Shutdown` instead of running. Then, with `wait`, waits until
    /// every thread (spares too) has finished — unless called from one of
    /// them, which cannot wait for itself.
    pub(super) fn close(&self, mode: u8, wait: bool) {
        self.ctx.stats.close();
        let closing = &self.ctx.closing;
        let handles = match &self.exec {
            Exec::Inline => {
                // AcqRel: a submission that reads the raised value refuses.
                closing.fetch_max(mode, Ordering::AcqRel);
                Vec::new()
            }
            Exec::Rayon {
                intake, handles, ..
            } => {
                // Dropping rayon's pool lets its threads finish queued work
                // (the tokens) and exit.
                drop(intake.close(closing, mode));
                std::mem::take(&mut *handles.lock())
            }
            Exec::Channel { intake, handles } => {
                drop(intake.close(closing, mode));
                std::mem::take(&mut *handles.lock())
            }
        };
        if let Some(spares) = &self.ctx.spares {
            spares.close();
        }
        if !wait || self.on_own_worker() {
            return;
        }
        if !self.ctx.wait_quiet() {
            // A thread of the pool waits on the caller: the threads finish
            // and exit on their own.
            return;
        }
        for handle in handles {
            let _ = handle.join();
        }
        if let Some(spares) = &self.ctx.spares {
            spares.join();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Inside a task, a task of this pool may be waiting on this one:
        // joining could never end. The threads drain and exit on their own.
        let in_task = worker::on_worker() || graph::frame().is_some();
        self.close(DRAINING, !in_task);
    }
}
