//! Running a task's closure: its frame, its panic, its settling.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{panic_message, Error};
use crate::graph::{self, Node, Waits};
use crate::interrupt::{self, Wakeable, Woken};
use crate::task::inner::Inner;
use crate::worker;

/// Runs a task's closure on the current thread: checks that it was not
/// cancelled while queued, makes the task this thread's frame (what
/// [`crate::cancelled`] reports on, and who waits in the deadlock
/// detection), catches its panic, and settles its future with the closure's
/// outcome (which may be an [`Error`] of its own). The closure is dropped
/// here, exactly once. `before` sees the outcome before it is published, so
/// that whatever it records is visible to every waiter.
///
/// `node` is the task as the wait graph sees it (the same allocation as
/// `task`).
pub(crate) fn run_task_in<T, F>(
    task: &Inner<T>,
    node: impl FnOnce() -> Arc<dyn Node>,
    f: F,
    before: impl FnOnce(&Result<T, Error>),
) where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error>,
{
    if !task.start() {
        return;
    }
    let node = node();
    // Run inline (not on a pool worker), a task is what the thread waits
    // for: a Ctrl-C interrupts it as it would interrupt a wait.
    // Its caller cannot go on before it returns: it waits on it (and lends
    // it its locks).
    let _inline = (!worker::on_worker()).then(|| {
        (
            interrupt::register(Arc::new(InterruptRun(node.clone()))),
            graph::record(|| Waits::All(vec![node.clone()])),
        )
    });
    let outcome = {
        let _frame = graph::enter(node);
        catch(f).0
    };
    before(&outcome);
    task.settle(outcome, false);
}

/// What a Ctrl-C does to a task running inline: cancels it with
/// `Err(Interrupted)`, running its cleanup, so that it sees
/// [`crate::cancelled`] and its caller gets the error.
struct InterruptRun(Arc<dyn Node>);

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
