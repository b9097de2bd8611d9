//! `Future<T>`: the blocking handle of one task.

use std::fmt;
use std::time::{Duration, Instant};

use crate::cancel::{CancelHandle, Cancellable};
use crate::error::{Error, TimedOut};
use crate::sync::Mutex;
use crate::task::phase::{self as state, CANCELLED, RUNNING};
use crate::task::{finished, finished_as, pending, published_phase, run_guarded, TaskRef};

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
    repr: Repr<T>,
}

/// A task's handle, or a finished outcome that needed no task (an inline
/// task, `Future::ready`, `Future::failed`): those cost no allocation.
enum Repr<T> {
    Task(TaskRef<T>),
    /// The outcome, with its published phase.
    Ready(u8, Ready<T>),
}

/// A callback waiting for a finished outcome lent to another one.
type Callback<T> = Box<dyn FnOnce(&Result<T, Error>) + Send>;

/// The outcome of a finished future that has no task. The mutex keeps the
/// handle `Sync` whatever `T`; a done-callback borrows the outcome outside
/// it, as a task's lends its own: no callback runs under the lock, and one
/// registered meanwhile (by the callback itself through another reference
/// to this handle, or by another thread) runs after it on the lending
/// thread.
struct Ready<T>(Mutex<ReadyState<T>>);

enum ReadyState<T> {
    Here(Result<T, Error>),
    /// Lent to a done-callback; the callbacks registered meanwhile.
    Lent(Vec<Callback<T>>),
}

impl<T> Ready<T> {
    fn new(outcome: Result<T, Error>) -> Self {
        Ready(Mutex::new(ReadyState::Here(outcome)))
    }

    fn into_inner(self) -> Result<T, Error> {
        match self.0.into_inner() {
            ReadyState::Here(outcome) => outcome,
            // A borrow ends before the handle can be moved.
            ReadyState::Lent(_) => unreachable!("a lent outcome is back before its handle moves"),
        }
    }

    /// `with` applied to the outcome; `None` while a callback borrows it.
    fn peek<R>(&self, with: impl FnOnce(&Result<T, Error>) -> R) -> Option<R> {
        match &*self.0.lock() {
            ReadyState::Here(outcome) => Some(with(outcome)),
            ReadyState::Lent(_) => None,
        }
    }

    fn on_done(&self, callback: impl FnOnce(&Result<T, Error>) + Send + 'static) {
        let mut state = self.0.lock();
        let outcome = match std::mem::replace(&mut *state, ReadyState::Lent(Vec::new())) {
            ReadyState::Here(outcome) => outcome,
            ReadyState::Lent(mut later) => {
                later.push(Box::new(callback));
                *state = ReadyState::Lent(later);
                return;
            }
        };
        drop(state);
        run_guarded(|| callback(&outcome));
        loop {
            let mut state = self.0.lock();
            let later = match &mut *state {
                ReadyState::Lent(later) if !later.is_empty() => std::mem::take(later),
                _ => {
                    *state = ReadyState::Here(outcome);
                    return;
                }
            };
            drop(state);
            for callback in later {
                run_guarded(|| callback(&outcome));
            }
        }
    }
}

impl<T: Send + 'static> Future<T> {
    /// A pending future and the shared state its job will settle.
    pub(crate) fn pending() -> (Self, TaskRef<T>) {
        let inner = pending();
        (Future::from_shared(inner.clone()), inner)
    }

    /// As [`Future::pending`], its task named in snapshots and deadlock
    /// reports.
    pub(crate) fn pending_named(
        name: std::sync::Arc<str>,
        driver: Option<std::sync::Arc<dyn crate::task::Drive>>,
    ) -> (Self, TaskRef<T>) {
        let inner = crate::task::pending_named(name, driver);
        (Future::from_shared(inner.clone()), inner)
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
        Future::finished(Ok(value))
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
        Future::finished(Err(error))
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
        match &self.repr {
            Repr::Task(task) => task.is_published(),
            Repr::Ready(..) => true,
        }
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
        self.phase() == RUNNING
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
        self.phase() == CANCELLED
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
        match &self.repr {
            Repr::Task(task) => {
                // An unrepresentable deadline means "forever".
                let deadline = Instant::now().checked_add(timeout);
                task.wait_until(deadline)
            }
            Repr::Ready(..) => true,
        }
    }

    /// Waits at most `timeout` for the task and returns its outcome, as
    /// [`Future::result`] does; when the timeout passes first, gives the
    /// future back in a [`TimedOut`] (the task goes on: nothing is
    /// cancelled). In a function returning [`Error`], `??` surfaces both
    /// the timeout (as [`Error::Timeout`]) and the task's failure.
    ///
    /// # Errors
    ///
    /// The outer `Err` is the timeout; the inner result is the task's, with
    /// the errors of [`Future::result`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use concertina::{Backend, Error, Pool};
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// assert_eq!(pool.spawn(|| 6 * 7).result_timeout(Duration::from_secs(60))?, Ok(42));
    ///
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let slow = pool.spawn(move || gate.recv().is_ok());
    /// let slow = match slow.result_timeout(Duration::from_millis(1)) {
    ///     Err(timed_out) => timed_out.into_inner(),
    ///     Ok(outcome) => panic!("the gate is closed, yet: {outcome:?}"),
    /// };
    /// release.send(()).unwrap();
    /// assert_eq!(slow.result(), Ok(true));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn result_timeout(self, timeout: Duration) -> Result<Result<T, Error>, TimedOut<Self>> {
        if self.wait_timeout(timeout) {
            Ok(self.result())
        } else {
            Err(TimedOut::new(timeout, self))
        }
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
        match self.repr {
            Repr::Task(task) => {
                task.wait_until(None);
                task.take_outcome()
            }
            Repr::Ready(_, outcome) => outcome.into_inner(),
        }
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
        let task = match &self.repr {
            Repr::Task(task) => task,
            // Finished without a task: a failure surfaces, a value stays.
            Repr::Ready(..) => return self.result().map(Future::ready),
        };
        task.wait_until(None);
        match task.take_failure() {
            Some(error) => Err(error),
            None => Ok(self),
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
        match &self.repr {
            Repr::Task(task) => Cancellable::cancel(&**task),
            Repr::Ready(..) => false,
        }
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
        match &self.repr {
            Repr::Task(task) => CancelHandle::new(task.clone()),
            // A handle on a finished task: it reports, it cannot cancel.
            Repr::Ready(phase, _) => CancelHandle::new(finished_as(*phase)),
        }
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
        let Repr::Task(task) = &self.repr else {
            // Finished: the cleanup can never run.
            return self;
        };
        task.add_cleanup(Box::new(cleanup));
        self
    }

    /// Calls `callback` with the outcome once the task finishes (Python's
    /// `add_done_callback`): on the thread that finishes it, or at once on
    /// this thread when it has already finished. A remote call's callbacks
    /// run on a thread of the runtime's own (`concertina-remote-callbacks`),
    /// never on the thread that reads the worker's replies: a callback may
    /// block or wait on other calls. Each callback fires exactly
    /// once; a panic in it is caught and does not disturb the task, the other
    /// callbacks or the waiters.
    ///
    /// The future counts as done before any callback runs: a callback (or
    /// whoever it tells) sees [`done()`](Future::done) true. Waits for the
    /// outcome return once the callbacks have returned (they borrow it). No
    /// lock of this crate is held while a callback runs; a callback that
    /// waits on the very task it is registered on gets
    /// [`Error::Deadlock`] instead of hanging.
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
        let task = match &self.repr {
            Repr::Task(task) => task,
            Repr::Ready(_, outcome) => return outcome.on_done(callback),
        };
        task.on_done(Box::new(callback));
    }
}

impl<T> Future<T> {
    /// The task behind the handle; `None` for a finished outcome that
    /// needed none (it is done: nothing to wait for, watch or cancel).
    pub(crate) fn task(&self) -> Option<&TaskRef<T>> {
        match &self.repr {
            Repr::Task(task) => Some(task),
            Repr::Ready(..) => None,
        }
    }

    /// The handle of a task whose state is already made.
    pub(crate) fn from_shared(inner: TaskRef<T>) -> Self {
        Future {
            repr: Repr::Task(inner),
        }
    }

    /// The current phase (see [`crate::task::phase`]).
    fn phase(&self) -> u8 {
        match &self.repr {
            Repr::Task(task) => task.phase(),
            Repr::Ready(phase, _) => *phase,
        }
    }
}

impl<T: Send + 'static> Future<T> {
    /// A finished future of `outcome`, with no task behind it.
    pub(crate) fn finished(outcome: Result<T, Error>) -> Self {
        let phase = published_phase(&outcome, false);
        Future {
            repr: Repr::Ready(phase, Ready::new(outcome)),
        }
    }

    /// The task behind the handle, made for a finished outcome (which then
    /// costs an allocation): for the waits that watch tasks.
    pub(crate) fn into_task(self) -> TaskRef<T> {
        match self.repr {
            Repr::Task(task) => task,
            Repr::Ready(_, outcome) => finished(outcome.into_inner()),
        }
    }

    /// `with` applied to the outcome of a finished future that has no
    /// task; `None` for a future with a task, or while a done-callback
    /// borrows the outcome.
    pub(crate) fn with_ready<R>(&self, with: impl FnOnce(&Result<T, Error>) -> R) -> Option<R> {
        match &self.repr {
            Repr::Ready(_, outcome) => outcome.peek(with),
            Repr::Task(_) => None,
        }
    }

    /// Either the task, or the finished outcome.
    pub(crate) fn into_parts(self) -> Result<TaskRef<T>, Result<T, Error>> {
        match self.repr {
            Repr::Task(task) => Ok(task),
            Repr::Ready(_, outcome) => Err(outcome.into_inner()),
        }
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
            .field("state", &state::name(self.phase()))
            .finish()
    }
}
