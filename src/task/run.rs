//! Running a task's closure: the runners the pools, instances and claims use.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{panic_message, Error};
use crate::park::{self, Node};
use crate::task::cell::{detached, TaskRef};
use crate::task::inner::{published_phase, Content};

/// Runs a queued task taken out of its queue by the pool's job: nothing
/// when a wait claimed it first, or when it was decided meanwhile.
pub(crate) fn run_queued<T: Send + 'static>(task: TaskRef<T>) {
    let taken = {
        let mut slot = task.slot.lock();
        match &slot.content {
            Content::Own | Content::Queued(_) => {
                Some(std::mem::replace(&mut slot.content, Content::Empty))
            }
            _ => None,
        }
    };
    match taken {
        Some(Content::Own) => task.run_own(),
        Some(Content::Queued(f)) => run_task_with(task, f, |_| ()),
        _ => {}
    }
}

/// Fails a queued task its pool refused with `Shutdown`, dropping its closure.
pub(crate) fn reject_queued<T: Send + 'static>(task: TaskRef<T>) {
    let taken = {
        let mut slot = task.slot.lock();
        match &slot.content {
            Content::Queued(_) => Some(std::mem::replace(&mut slot.content, Content::Empty)),
            _ => None,
        }
    };
    drop(taken);
    task.fail(Error::Shutdown);
}

/// Runs a task's closure on the current thread: checks that it was not
/// cancelled while queued, makes the task this thread's frame (what
/// [`crate::cancelled`] reports on, and who waits in the deadlock
/// detection), catches its panic, and settles its future with the closure's
/// outcome (which may be an [`Error`] of its own). The closure is dropped
/// here, exactly once. `before` sees the outcome before it is published, so
/// that whatever it records is visible to every waiter.
pub(crate) fn run_task_with<T, F>(task: TaskRef<T>, f: F, before: impl FnOnce(&Result<T, Error>))
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error>,
{
    if !task.start() {
        return;
    }
    let node: Arc<dyn Node> = task.clone();
    let outcome = {
        let _frame = park::enter(node);
        catch(f)
    };
    before(&outcome);
    task.settle(outcome, false);
}

/// Runs `f`, turning its panic into [`Error::Panicked`].
fn catch<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::Panicked(panic_message(&*payload))))
}

/// Runs a task's closure on the current thread before its future exists
/// (the inline backend): nobody holds a handle that could cancel it, so
/// [`crate::cancelled`] is false inside it, and it acts for the task this
/// thread runs (which cannot go on before it returns). Its future is made
/// finished.
pub(crate) fn run_inline<T, F>(f: F) -> TaskRef<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error>,
{
    let outcome = {
        let _inline = park::enter_inline();
        catch(f)
    };
    detached(published_phase(&outcome, false), Content::Outcome(outcome))
}
