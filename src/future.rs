//! `Future<T>`: the blocking handle of one task.

use std::fmt;
use std::time::{Duration, Instant};

use crate::cancel::{CancelHandle, Cancellable};
use crate::error::Error;
use crate::task::phase::{self as state, CANCELLED, DONE, PENDING, RUNNING};
use crate::task::{detached, run_guarded, Content, TaskRef};

/// The handle of a task submitted to a pool: wait for it, take its value,
/// cancel it, or chain more work after it.
///
/// A `Future` is not an async future and needs no executor: every wait
/// blocks the calling thread (spinning briefly, then parking). Async callers
/// may still `.await` it, through [`IntoFuture`](std::future::IntoFuture).
///
/// Dropping a `Future` detaches the task: it still runs, and its value is
/// dropped when it finishes.
///
/// # Examples
///
/// ```
/// use concertina::Pool;
///
/// let pool = Pool::builder().threads(2).build()?;
/// let f = pool.spawn(|| 6 * 7);
/// assert_eq!(f.result()?, 42);
/// # Ok::<(), concertina::Error>(())
/// ```
#[must_use = "dropping a Future detaches its task; call result() or join() to see its outcome"]
pub struct Future<T> {
    inner: TaskRef<T>,
}

impl<T: Send + 'static> Future<T> {
    /// A pending future and the shared state its job will settle.
    pub(crate) fn pending() -> (Self, TaskRef<T>) {
        let inner = detached(PENDING, Content::Empty);
        (
            Future {
                inner: inner.clone(),
            },
            inner,
        )
    }

    /// A future that is already done with `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Future;
    ///
    /// let f = Future::ready("calibrated");
    /// assert!(f.done());
    /// assert_eq!(f.result(), Ok("calibrated"));
    /// ```
    pub fn ready(value: T) -> Self {
        Future {
            inner: detached(DONE, Content::Outcome(Ok(value))),
        }
    }

    /// A future that has already failed with `error`: useful where a
    /// function returning a `Future` refuses its input before any work starts.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Future};
    ///
    /// let f: Future<u32> = Future::failed(Error::Shutdown);
    /// assert!(f.done());
    /// assert_eq!(f.result(), Err(Error::Shutdown));
    /// ```
    pub fn failed(error: Error) -> Self {
        let phase = crate::task::inner::published_phase::<T>(&Err(error.clone()), false);
        Future {
            inner: detached(phase, Content::Outcome(Err(error))),
        }
    }

    /// True once the task has finished: with a value, a failure, or a
    /// cancellation (as Python's `Future.done()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Future;
    ///
    /// assert!(Future::ready(1).done());
    /// ```
    #[inline]
    pub fn done(&self) -> bool {
        state::is_published(self.inner.phase())
    }

    /// True while the closure runs (and not yet cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Pool;
    /// use std::sync::mpsc;
    ///
    /// let pool = Pool::builder().threads(1).backend(concertina::Backend::Crossbeam).build()?;
    /// let (started_tx, started) = mpsc::channel();
    /// let (release, release_rx) = mpsc::channel::<()>();
    /// let f = pool.spawn(move || {
    ///     started_tx.send(()).unwrap();
    ///     release_rx.recv().unwrap();
    /// });
    /// started.recv().unwrap();
    /// assert!(f.running());
    /// release.send(()).unwrap();
    /// f.result()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    #[inline]
    pub fn running(&self) -> bool {
        self.inner.phase() == RUNNING
    }

    /// True when the task was cancelled (or its wait interrupted).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Future};
    ///
    /// let f: Future<()> = Future::failed(Error::Cancelled);
    /// assert!(f.cancelled());
    /// ```
    #[inline]
    pub fn cancelled(&self) -> bool {
        self.inner.phase() == CANCELLED
    }

    /// Waits at most `timeout` for the task to finish; true when it has.
    ///
    /// On a pool worker, a task still queued is handed to a spare thread at
    /// once (running it here could keep the wait past its deadline).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Pool;
    /// use std::time::Duration;
    ///
    /// let pool = Pool::builder().threads(1).build()?;
    /// let f = pool.spawn(|| 1 + 1);
    /// assert!(f.wait_timeout(Duration::from_secs(10)));
    /// assert!(f.done());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        // An unrepresentable deadline means "forever".
        let deadline = Instant::now().checked_add(timeout);
        self.inner.wait_until(deadline)
    }

    /// Waits for the task and returns its value.
    ///
    /// # Errors
    ///
    /// [`Error::Panicked`] with the panic message when the closure panicked,
    /// [`Error::Cancelled`] when the task was cancelled, [`Error::Shutdown`]
    /// when its pool shut down before it ran, [`Error::Config`] when the
    /// default pool could not be configured, and [`Error::Deadlock`] when
    /// this wait closes a cycle of tasks waiting on each other (a call of an
    /// [`Instance`](crate::Instance) waiting on a later call of that same
    /// instance, say), which it could never leave.
    ///
    /// On a pool worker, a task still queued is run here, by this wait (on
    /// whichever pool it was queued); nothing else ever runs inside a wait.
    ///
    /// # Examples
    ///
    /// ```
    /// let f = concertina::spawn(|| (1..=10).sum::<u32>());
    /// assert_eq!(f.result(), Ok(55));
    /// ```
    pub fn result(self) -> Result<T, Error> {
        self.inner.wait_until(None);
        self.inner.take_outcome()
    }

    /// Waits for the task and surfaces its failure, giving the finished
    /// future back on success (Concert's `join`).
    ///
    /// # Errors
    ///
    /// The same as [`Future::result`].
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Pool};
    ///
    /// let pool = Pool::builder().threads(1).build()?;
    /// let f = pool.spawn(|| 3).join()?;
    /// assert!(f.done());
    /// assert_eq!(f.result()?, 3);
    ///
    /// let bad = pool.spawn(|| -> u32 { panic!("limit switch hit") });
    /// assert_eq!(bad.join().unwrap_err(), Error::Panicked("limit switch hit".into()));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn join(self) -> Result<Self, Error> {
        self.inner.wait_until(None);
        let mut slot = self.inner.slot.lock();
        match slot.take_outcome() {
            Some(Err(error)) => Err(error),
            value => {
                if let Some(value) = value {
                    slot.content = Content::Outcome(value);
                }
                drop(slot);
                Ok(self)
            }
        }
    }

    /// Cancels the task. True when this call cancelled it.
    ///
    /// * Queued: it will never run.
    /// * Running: [`cancelled()`](crate::cancelled) turns true inside it, and
    ///   its value, when it returns one, is dropped.
    ///
    /// In both cases the cleanup registered with [`Future::on_cancel`] runs at
    /// once on this thread, then waiters get `Err(Cancelled)`. When the task
    /// has already finished (or another cancel won), nothing happens and this
    /// returns false. The cleanup runs at most once, whatever the race.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Error, Pool};
    /// use std::sync::mpsc;
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let (release, gate) = mpsc::channel::<()>();
    /// let blocker = pool.spawn(move || gate.recv().unwrap());
    /// let queued = pool.spawn(|| unreachable!("cancelled before it ran"));
    /// assert!(queued.cancel());
    /// assert!(!queued.cancel(), "only the first cancel wins");
    /// release.send(()).unwrap();
    /// blocker.result()?;
    /// assert_eq!(queued.result(), Err(Error::Cancelled));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        Cancellable::cancel(&*self.inner)
    }

    /// A handle that can cancel this task from another thread while this
    /// one is consumed by a wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Error, Pool};
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let f = pool.spawn(|| while !concertina::cancelled() { std::thread::yield_now() });
    /// let stop = f.cancel_handle();
    /// std::thread::spawn(move || stop.cancel());
    /// assert_eq!(f.result(), Err(Error::Cancelled));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::new(self.inner.clone())
    }

    /// Registers the cleanup that a winning [`cancel`](Future::cancel) runs
    /// (Concert's `cancel_operation`: stop the motor), and returns the future.
    ///
    /// The cleanup runs on the cancelling thread, before waiters are released,
    /// at most once. Registered twice, both run, in order. Registered after the
    /// task finished (or was cancelled), it is dropped without running. A
    /// panic in the cleanup is caught (and reported on stderr by the panic hook);
    /// the cancellation stands.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Pool};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let stopped = Arc::new(AtomicBool::new(false));
    /// let flag = stopped.clone();
    /// let motion = pool
    ///     .spawn(|| while !concertina::cancelled() { std::thread::yield_now() })
    ///     .on_cancel(move || flag.store(true, Ordering::SeqCst));
    /// assert!(motion.cancel());
    /// assert!(stopped.load(Ordering::SeqCst));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn on_cancel(self, cleanup: impl FnOnce() + Send + 'static) -> Self {
        let mut slot = self.inner.slot.lock();
        if !state::is_decided(self.inner.phase()) {
            let hooks = slot.hooks();
            hooks.cleanup = Some(match hooks.cleanup.take() {
                None => Box::new(cleanup),
                Some(first) => Box::new(move || {
                    run_guarded(first);
                    cleanup();
                }),
            });
        }
        drop(slot);
        self
    }

    /// Calls `callback` with the outcome once the task finishes (Python's
    /// `add_done_callback`): on the thread that finishes it, or at once on
    /// this thread when it has already finished. Each callback fires exactly
    /// once; a panic in it is caught and does not disturb the task, the other
    /// callbacks or the waiters.
    ///
    /// A callback must not wait on the future it is registered on.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Future;
    /// use std::sync::mpsc;
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let f = Future::ready(5);
    /// f.on_done(move |outcome| tx.send(*outcome.as_ref().unwrap()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 5);
    /// ```
    pub fn on_done(&self, callback: impl FnOnce(&Result<T, Error>) + Send + 'static) {
        let mut slot = self.inner.slot.lock();
        if state::is_published(self.inner.phase()) {
            if let Some(outcome) = slot.outcome() {
                run_guarded(|| callback(outcome));
            }
        } else {
            slot.hooks().callbacks.push(Box::new(callback));
        }
    }
}

impl<T> Future<T> {
    /// The shared state, for the modules that settle or watch futures.
    pub(crate) fn inner(&self) -> &TaskRef<T> {
        &self.inner
    }

    /// The handle of a task whose state is already made.
    pub(crate) fn from_shared(inner: TaskRef<T>) -> Self {
        Future { inner }
    }

    /// The shared state, giving the handle up.
    pub(crate) fn into_inner(self) -> TaskRef<T> {
        self.inner
    }
}

impl<T, E> Future<Result<T, E>>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    /// Waits for a fallible task and flattens its outcome: the task's own
    /// error, or a [`concertina::Error`](Error) converted into `E`.
    ///
    /// # Errors
    ///
    /// The task's `Err(e)`, or `E::from` the failure of the task itself.
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(Debug)]
    /// enum ReadError { Timeout, Task(concertina::Error) }
    /// impl From<concertina::Error> for ReadError {
    ///     fn from(e: concertina::Error) -> Self { ReadError::Task(e) }
    /// }
    ///
    /// let read = concertina::spawn(|| -> Result<u16, ReadError> { Err(ReadError::Timeout) });
    /// assert!(matches!(read.try_result(), Err(ReadError::Timeout)));
    ///
    /// let read = concertina::spawn(|| -> Result<u16, ReadError> { panic!("cable unplugged") });
    /// assert!(matches!(read.try_result(), Err(ReadError::Task(concertina::Error::Panicked(_)))));
    /// ```
    pub fn try_result(self) -> Result<T, E> {
        self.result()?
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Future")
            .field("state", &state::name(self.inner.phase()))
            .finish()
    }
}
