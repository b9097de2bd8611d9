//! Running a task's closure: its frame, its panic, its settling.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{panic_message, Error};
use crate::park::{self, Node};
use crate::task::inner::Inner;

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
    let outcome = {
        let _frame = park::enter(node());
        catch(f)
    };
    before(&outcome);
    task.settle(outcome, false);
}

/// Runs `f` with no frame of its own (an inline task, run before its
/// future exists, which is then a finished one): it acts for the task this
/// thread runs, and [`crate::cancelled`] is false inside it (nobody holds a
/// handle that could cancel it).
pub(crate) fn run_bare<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    let _inline = park::enter_inline();
    catch(f)
}

/// Runs `f`, turning its panic into [`Error::Panicked`].
fn catch<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::Panicked(panic_message(&*payload))))
}
