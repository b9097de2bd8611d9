//! Cancellation: the flag a running task checks, and handles that cancel
//! from another thread.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::state;

/// A task's state as seen by whoever cancels it, whatever its value type.
pub(crate) trait Cancellable: Send + Sync {
    /// Cancels; true when this call won. Runs the cleanup on this thread.
    fn cancel(&self) -> bool;
    /// True once a cancellation of the running task was decided.
    fn is_cancelled(&self) -> bool;
    /// The current phase (see [`crate::state`]).
    fn phase(&self) -> u8;
    /// Fails the task with `error` unless its outcome is already decided.
    fn fail(&self, error: Error);
    /// Cancels the task because the wait on it was interrupted: its waiters
    /// see `Err(Interrupted)`.
    fn interrupt(&self);
}

crate::sync::task_local! {
    /// The task running on this thread; a nested run (a wait that helps)
    /// stacks its own and restores this one when it ends.
    static CURRENT: RefCell<Option<Arc<dyn Cancellable>>> = const { RefCell::new(None) };
}

/// Restores the previously running task when dropped.
pub(crate) struct Entered {
    previous: Option<Arc<dyn Cancellable>>,
}

/// Makes `task` the one [`cancelled`] reports on, until the guard drops;
/// `None` for a task that nobody can cancel while it runs.
pub(crate) fn enter(task: Option<Arc<dyn Cancellable>>) -> Entered {
    let previous = CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), task));
    Entered { previous }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Inside a task: true once the task has been cancelled. Outside any task:
/// false.
///
/// A running task is never stopped by force; long tasks call this at
/// convenient points and return early. Its value is dropped anyway once it
/// was cancelled.
///
/// # Examples
///
/// ```
/// use concertina::{Backend, Error, Pool};
///
/// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
/// let scan = pool.spawn(|| {
///     let mut steps = 0u64;
///     while !concertina::cancelled() {
///         steps += 1; // one more exposure
///         std::thread::yield_now();
///     }
///     steps
/// });
/// while !scan.running() { std::thread::yield_now() }
/// scan.cancel();
/// assert_eq!(scan.result(), Err(Error::Cancelled));
/// assert!(!concertina::cancelled(), "the main thread runs no task");
/// # Ok::<(), Error>(())
/// ```
pub fn cancelled() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(|task| task.is_cancelled()))
}

/// Inside a task: `Err(Error::Cancelled)` once the task has been cancelled,
/// so that a fallible task can stop with `?`. Outside any task: `Ok(())`.
///
/// # Errors
///
/// [`Error::Cancelled`] when the current task was cancelled.
///
/// # Examples
///
/// ```
/// fn expose(frames: u32) -> Result<u32, concertina::Error> {
///     for _ in 0..frames {
///         concertina::check_cancelled()?;
///         // read one frame
///     }
///     Ok(frames)
/// }
/// assert_eq!(concertina::spawn(|| expose(3)).try_result(), Ok(3));
/// ```
pub fn check_cancelled() -> Result<(), Error> {
    if cancelled() {
        Err(Error::Cancelled)
    } else {
        Ok(())
    }
}

/// Cancels a task from anywhere, without owning its [`Future`](crate::Future).
///
/// Cloneable and `Send`: hand one to a watchdog thread or a stop button
/// while another thread blocks in `result()`.
///
/// # Examples
///
/// ```
/// use concertina::Future;
///
/// let f = Future::ready(1);
/// let handle = f.cancel_handle();
/// assert!(!handle.cancel(), "a finished task cannot be cancelled");
/// assert!(!handle.cancelled());
/// ```
#[derive(Clone)]
pub struct CancelHandle {
    task: Arc<dyn Cancellable>,
}

impl CancelHandle {
    pub(crate) fn new(task: Arc<dyn Cancellable>) -> Self {
        CancelHandle { task }
    }

    /// Cancels the task, exactly as [`Future::cancel`](crate::Future::cancel) does.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Future};
    ///
    /// let f: Future<()> = Future::failed(Error::Shutdown);
    /// assert!(!f.cancel_handle().cancel());
    /// ```
    pub fn cancel(&self) -> bool {
        self.task.cancel()
    }

    /// True once the task was cancelled and its cancellation published.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Future};
    ///
    /// let f: Future<()> = Future::failed(Error::Cancelled);
    /// assert!(f.cancel_handle().cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.task.phase() == state::CANCELLED
    }

    /// True once the task has finished in any way.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(concertina::Future::ready(()).cancel_handle().done());
    /// ```
    pub fn done(&self) -> bool {
        state::is_published(self.task.phase())
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("state", &state::name(self.task.phase()))
            .finish()
    }
}
