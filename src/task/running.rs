//! What running a closure needs beside its task: a Ctrl-C that interrupts
//! a task run inline, an inline closure run before its future exists, and
//! a panic caught as the task's failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{panic_message, Error};
use crate::graph::{self, Node};
use crate::interrupt::{self, Wakeable, Woken};
use crate::worker;

crate::sync::task_local! {
    /// True while this thread runs a task of a pool whose panics are quiet.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// While alive, a panic on this thread prints (`false`) or not (`true`),
/// as the pool of the task it runs says; what was before comes back after
/// (a quiet pool's task that runs a loud one's inline, and back).
pub(crate) struct Quiet(bool);

impl Quiet {
    pub(crate) fn set(quiet: bool) -> Quiet {
        Quiet(QUIET.with(|q| q.replace(quiet)))
    }

    /// For the rest of this thread's life (a pool's thread: whatever it
    /// runs of its pool, a serial queue's drain too).
    pub(crate) fn for_thread(quiet: bool) {
        QUIET.with(|q| q.set(quiet));
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(self.0));
    }
}

/// Installs, once, a panic hook that prints nothing for a panic of a quiet
/// pool's task and hands every other panic to the hook there was before.
pub(crate) fn quiet_panics() {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                before(info);
            }
        }));
    });
}

/// What a Ctrl-C does to a task running inline: cancels it with
/// `Err(Interrupted)`, running its cleanup, so that it sees
/// [`crate::cancelled`] and its caller gets the error.
pub(crate) struct InterruptRun(pub(crate) Arc<dyn Node>);

impl Wakeable for InterruptRun {
    fn wake(&self) {
        self.0.interrupt_run();
    }

    fn on_interrupt(&self) -> Woken {
        self.wake();
        Woken::Settled
    }
}

/// Runs `f` with no frame of its own (an inline task, run before its
/// future exists, which is then a finished one): it acts for the task this
/// thread runs, and [`crate::cancelled`] is false inside it (nobody holds a
/// handle that could cancel it).
///
/// Off a pool worker (the inline backend), a Ctrl-C while it runs turns
/// [`crate::cancelled`] true inside it and its outcome into
/// `Err(Interrupted)`: it had no handle that a cleanup could be registered
/// on, so none runs.
pub(crate) fn run_bare<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    if worker::on_worker() {
        let _inline = graph::enter_inline();
        return catch(f).0;
    }
    let inline = interrupt::inline_enter();
    let outcome = {
        let _inline = graph::enter_bare();
        catch(f).0
    };
    if inline.interrupted() {
        return Err(Error::Interrupted);
    }
    outcome
}

/// Runs `f`, turning its panic into [`Error::Panicked`]; the flag says
/// whether it panicked.
pub(crate) fn catch<T>(f: impl FnOnce() -> Result<T, Error>) -> (Result<T, Error>, bool) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(outcome) => (outcome, false),
        Err(payload) => {
            let message = panic_message(&*payload);
            crate::trace::panicked(&message);
            (Err(Error::Panicked(message)), true)
        }
    }
}
