//! `Shared<T>`: a clonable handle on one task, for results read by many.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::cancel::{CancelHandle, Cancellable};
use crate::error::{Error, TimedOut};
use crate::future::Future;
use crate::park::deadline_after;
use crate::task::phase as state;
use crate::task::{TaskRef, Watchable};

/// A clonable handle on one task, made by [`Future::shared`]: every clone
/// waits for the same task and gets its own copy of the outcome (the value
/// is cloned per read; the task runs once).
///
/// * Every wait ([`result`](Shared::result),
///   [`wait_timeout`](Shared::wait_timeout), …) borrows the handle, so a
///   clone can be read any number of times.
/// * [`cancel`](Shared::cancel) on any clone cancels the one task for every
///   holder: they all get `Err(Cancelled)`.
/// * A Ctrl-C while a clone waits cancels the task, as it does for a
///   [`Future`]: every holder gets `Err(Interrupted)`.
/// * Dropping every clone detaches the task: it still runs.
///
/// # Examples
///
/// ```
/// let frame = concertina::spawn(|| vec![1u16, 2, 3]).shared();
/// let for_display = frame.clone();
/// let shown = std::thread::spawn(move || for_display.result().map(|f| f.len()));
/// let total: u16 = frame.result()?.iter().sum();
/// assert_eq!((total, shown.join().unwrap()?), (6, 3));
/// # Ok::<(), concertina::Error>(())
/// ```
#[must_use = "dropping every Shared handle detaches its task"]
pub struct Shared<T> {
    task: TaskRef<T>,
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            task: self.task.clone(),
        }
    }
}

impl<T: Clone + Send + 'static> Future<T> {
    /// A clonable handle on this task, for a result that several consumers
    /// read: see [`Shared`].
    ///
    /// # Examples
    ///
    /// ```
    /// let calibration = concertina::spawn(|| 0.997_f64).shared();
    /// let readings: Vec<_> = (1..=3)
    ///     .map(|raw| {
    ///         let calibration = calibration.clone();
    ///         concertina::spawn(move || Ok::<_, concertina::Error>(f64::from(raw) * calibration.result()?))
    ///     })
    ///     .collect();
    /// let readings: Vec<f64> = concertina::try_wait_all(readings)?.into_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(readings.len(), 3);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn shared(self) -> Shared<T> {
        let task = self.into_task();
        task.share(copy::<T>);
        Shared { task }
    }
}

/// A copy of a shared task's outcome.
fn copy<T: Clone>(outcome: &Result<T, Error>) -> Result<T, Error> {
    outcome.clone()
}

impl<T: Clone + Send + 'static> Shared<T> {
    /// Waits for the task and returns a copy of its outcome; every clone,
    /// every call, gets the same one.
    ///
    /// # Errors
    ///
    /// Those of [`Future::result`].
    ///
    /// # Examples
    ///
    /// ```
    /// let f = concertina::Future::ready(String::from("aligned")).shared();
    /// assert_eq!(f.result()?, "aligned");
    /// assert_eq!(f.clone().result()?, "aligned");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn result(&self) -> Result<T, Error> {
        self.task.wait_until(None);
        self.outcome()
    }

    /// As [`result`](Shared::result), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// The outer `Err` is the timeout (the handle stays usable: nothing is
    /// cancelled); the inner result is the task's.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use concertina::{Backend, Pool};
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let f = pool.spawn(move || gate.recv().is_ok()).shared();
    /// assert!(f.result_timeout(Duration::from_millis(1)).is_err());
    /// release.send(()).unwrap();
    /// assert_eq!(f.result_timeout(Duration::from_secs(60))?, Ok(true));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<Result<T, Error>, TimedOut<()>> {
        if self.wait_timeout(timeout) {
            Ok(self.outcome())
        } else {
            Err(TimedOut::new(timeout, ()))
        }
    }

    /// Waits at most `timeout` for the task to finish; true when it has.
    ///
    /// # Examples
    ///
    /// ```
    /// let f = concertina::spawn(|| 1).shared();
    /// assert!(f.wait_timeout(std::time::Duration::from_secs(60)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.task.wait_until(deadline_after(timeout))
    }

    /// A [`Future`] of a copy of the outcome, for the waits and combinators
    /// that take futures ([`wait_all`](crate::wait_all),
    /// [`Future::then`], a [`RequestPool`](crate::RequestPool), …).
    /// Cancelling that future cancels only it, not the shared task.
    ///
    /// # Examples
    ///
    /// ```
    /// let temperature = concertina::spawn(|| 293.0_f64).shared();
    /// let both = concertina::wait_all([temperature.to_future(), temperature.to_future()]);
    /// assert_eq!(both, [Ok(293.0), Ok(293.0)]);
    /// ```
    pub fn to_future(&self) -> Future<T> {
        if self.task.is_released() {
            return Future::finished(self.outcome());
        }
        let (future, inner) = Future::<T>::derived(&[self.task.clone() as Arc<dyn Watchable>]);
        self.on_done(move |outcome| {
            inner.settle(outcome.clone(), false);
        });
        future
    }

    /// Calls `callback` with the outcome once the task has finished (at
    /// once, on this thread, when it already has), as
    /// [`Future::on_done`] does; the callback gets a copy, so that the
    /// other holders read the outcome meanwhile (a callback may read it
    /// through a clone of this handle).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// let f = concertina::Future::ready(4).shared();
    /// f.on_done(move |outcome| tx.send(outcome.clone()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), Ok(4));
    /// ```
    pub fn on_done(&self, callback: impl FnOnce(&Result<T, Error>) + Send + 'static) {
        self.task.on_done(Box::new(callback));
    }

    /// The published outcome, copied. A shared task's outcome is never taken.
    fn outcome(&self) -> Result<T, Error> {
        self.task.copy_outcome(copy::<T>)
    }
}

impl<T: Send + 'static> Shared<T> {
    /// True once the task has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(concertina::Future::ready(()).shared().done());
    /// ```
    pub fn done(&self) -> bool {
        self.task.is_published()
    }

    /// True when the task was cancelled (or interrupted).
    ///
    /// # Examples
    ///
    /// ```
    /// let f = concertina::Future::<u8>::failed(concertina::Error::Cancelled).shared();
    /// assert!(f.cancelled());
    /// ```
    pub fn cancelled(&self) -> bool {
        self.task.phase() == state::CANCELLED
    }

    /// Cancels the task for every holder, as [`Future::cancel`] does; true
    /// when this call cancelled it.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Error, Pool};
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let _busy = pool.spawn(move || gate.recv().is_ok());
    /// let queued = pool.spawn(|| 1).shared();
    /// let other = queued.clone();
    /// assert!(queued.cancel());
    /// assert_eq!(other.result(), Err(Error::Cancelled));
    /// release.send(()).unwrap();
    /// # Ok::<(), Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        Cancellable::cancel(&*self.task)
    }

    /// A handle that cancels the task from elsewhere.
    ///
    /// # Examples
    ///
    /// ```
    /// let f = concertina::Future::ready(1).shared();
    /// assert!(!f.cancel_handle().cancel(), "already finished");
    /// ```
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::new(self.task.clone())
    }
}

impl<T> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("state", &state::name(self.task.phase()))
            .finish()
    }
}
