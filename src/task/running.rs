//! What running a closure needs beside its task: a Ctrl-C that interrupts
//! a task run inline, an inline closure run before its future exists, and
//! a panic caught as the task's failure.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{panic_message, Error};
use crate::graph::{self, Node};
use crate::interrupt::{self, Wakeable, Woken};
use crate::worker;

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
