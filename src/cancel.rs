//! Cancellation: the flag a running task checks, and handles that cancel
//! from another thread.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::graph;

/// A task's state as seen by whoever cancels it, whatever its value type.
pub(crate) trait Cancellable: Send + Sync {
    /// Cancels; true when this call won. Runs the cleanup on this thread.
    fn cancel(&self) -> bool;
    /// As `cancel`, only while the task has not started: a running task
    /// finishes, and its value is kept.
    fn cancel_unstarted(&self) -> bool;
    /// The current phase (see [`crate::task::phase`]).
    fn phase(&self) -> u8;
    /// True once the outcome is published.
    fn is_done(&self) -> bool;
    /// True once published as cancelled.
    fn is_cancelled_and_done(&self) -> bool;
    /// The name of the current phase, for `Debug`.
    fn phase_name(&self) -> &'static str;
    /// Fails the task with `error` unless its outcome is already decided.
    fn fail(&self, error: Error);
    /// Cancels the task because the wait on it was interrupted: its waiters
    /// see `Err(Interrupted)`.
    fn interrupt(&self);
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
    graph::frame_cancelled()
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

    /// Cancels the task if it has not started yet; a running one goes on
    /// (its value is not thrown away, as a cancel of a running task does).
    pub(crate) fn cancel_unstarted(&self) -> bool {
        self.task.cancel_unstarted()
    }

    /// Cancels the task as a Ctrl-C does: its cleanup runs and its waiters
    /// get `Err(Interrupted)` (unless it finished first).
    pub(crate) fn interrupt(&self) {
        self.task.interrupt();
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
        self.task.is_cancelled_and_done()
    }

    /// True once the task has finished in any way.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(concertina::Future::ready(()).cancel_handle().done());
    /// ```
    pub fn done(&self) -> bool {
        self.task.is_done()
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelHandle")
            .field("state", &self.task.phase_name())
            .finish()
    }
}
