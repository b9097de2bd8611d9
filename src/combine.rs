//! Futures made from futures: `then`, `when_done` and `join`. This is the
//! only code that picks a pool for a continuation.

use std::sync::Arc;

use crate::cancel::CancelHandle;
use crate::error::Error;
use crate::future::Future;
use crate::global;
use crate::pool::{self, Pool};
use crate::sync::Mutex;
use crate::task::{self, Inner, TaskRef, Watchable};

/// The pool a continuation runs on: the pool of this worker thread, or the
/// default pool on a thread that is not a worker. `Err(Shutdown)` when this
/// worker's pool is shutting down (it refuses new work), so that a
/// continuation never lands on another pool by surprise.
fn continuation_pool() -> Result<Pool, Error> {
    match pool::current() {
        Some(Some(pool)) if !pool.is_shutdown() => Ok(pool),
        Some(_) => Err(Error::Shutdown),
        None => global::default_pool().cloned(),
    }
}

impl<T: Send + 'static> Future<T> {
    /// A pending future settled by its sources, which the deadlock
    /// detection and claiming follow.
    pub(crate) fn derived(sources: &[Arc<dyn Watchable>]) -> (Self, TaskRef<T>) {
        let inner = task::derived(sources);
        (Future::from_shared(inner.clone()), inner)
    }

    /// Runs `next` with the value once this task succeeds, and returns the
    /// future of its result. A failure of this task (panic, cancellation,
    /// shutdown) becomes the failure of the returned future, and `next` never
    /// runs.
    ///
    /// `next` is submitted to the pool of the worker that finished this task;
    /// when that thread is not a pool worker (an inline pool, or a task that
    /// had already finished), it goes to the [default pool](crate::spawn).
    /// When that worker's pool is shutting down, the returned future fails
    /// with [`Error::Shutdown`]. Cancelling the returned future cancels this
    /// one too; when this one is cancelled, so is the returned one.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Pool;
    ///
    /// let pool = Pool::builder().threads(2).build()?;
    /// let counts = pool.spawn(|| vec![3, 4, 5]);
    /// let total = counts.then(|v| v.iter().sum::<u32>());
    /// assert_eq!(total.result()?, 12);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn then<U, G>(self, next: G) -> Future<U>
    where
        U: Send + 'static,
        G: FnOnce(T) -> U + Send + 'static,
    {
        let source = self.into_task();
        let (derived, derived_inner) =
            Future::<U>::derived(&[source.clone() as Arc<dyn Watchable>]);
        let this = Future::from_shared(source);
        let source = this.cancel_handle();
        let derived = derived.on_cancel(move || {
            source.cancel();
        });
        this.on_outcome(move |outcome| match outcome {
            Ok(value) => match continuation_pool() {
                Ok(pool) => pool.spawn_into(derived_inner, move || next(value)),
                Err(error) => {
                    derived_inner.settle(Err(error), false);
                }
            },
            Err(error) => {
                derived_inner.settle(Err(error), false);
            }
        });
        derived
    }

    /// A future that finishes when this one does, without taking its value:
    /// `Ok(())` when this one succeeded, else the same error. Useful to make
    /// other work wait for this future while its owner keeps it.
    ///
    /// # Examples
    ///
    /// ```
    /// let reading = concertina::spawn(|| 4.2_f64);
    /// let finished = reading.when_done();
    /// assert_eq!(finished.result(), Ok(()));
    /// assert_eq!(reading.result(), Ok(4.2), "the value is still there");
    /// ```
    pub fn when_done(&self) -> Future<()> {
        let done = |outcome: &Result<T, Error>| outcome.as_ref().map(|_| ()).map_err(Clone::clone);
        if let Some(outcome) = self.with_ready(done) {
            return Future::finished(outcome);
        }
        // A finished outcome lent to a done-callback has no task to follow:
        // the signal settles when the outcome comes back.
        let sources: Vec<Arc<dyn Watchable>> = self
            .task()
            .iter()
            .map(|t| (*t).clone() as Arc<dyn Watchable>)
            .collect();
        let (signal, inner) = Future::<()>::derived(&sources);
        self.on_done(move |outcome| {
            inner.settle(done(outcome), false);
        });
        signal
    }

    /// Hands the outcome, by value, to `next` once published: on the thread
    /// that settles it, or at once on this thread when already published.
    pub(crate) fn on_outcome(self, next: impl FnOnce(Result<T, Error>) + Send + 'static) {
        let inner = match self.into_parts() {
            Ok(task) => task,
            Err(outcome) => return next(outcome),
        };
        inner.on_outcome(Box::new(next));
    }
}

impl<A: Send + 'static> Future<A> {
    /// One future of both results: done when both are, failed as soon as
    /// either fails (with that failure). Cancelling it cancels both.
    ///
    /// # Examples
    ///
    /// ```
    /// let position = concertina::spawn(|| 12.5_f64);
    /// let frame = concertina::spawn(|| vec![0u16; 4]);
    /// let (x, image) = position.zip(frame).result()?;
    /// assert_eq!((x, image.len()), (12.5, 4));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn zip<B: Send + 'static>(self, other: Future<B>) -> Future<(A, B)> {
        zip(self, other)
    }
}

fn zip<A, B>(a: Future<A>, b: Future<B>) -> Future<(A, B)>
where
    A: Send + 'static,
    B: Send + 'static,
{
    let (a, b) = (a.into_task(), b.into_task());
    let sources: [Arc<dyn Watchable>; 2] = [a.clone(), b.clone()];
    let (a, b) = (Future::from_shared(a), Future::from_shared(b));
    let (joined, inner) = Future::<(A, B)>::derived(&sources);
    let (cancel_a, cancel_b) = (a.cancel_handle(), b.cancel_handle());
    let joined = joined.on_cancel(move || {
        cancel_a.cancel();
        cancel_b.cancel();
    });
    let parts: Arc<Mutex<(Option<A>, Option<B>)>> = Arc::new(Mutex::new((None, None)));
    let (parts_b, inner_b) = (parts.clone(), inner.clone());
    a.on_outcome(move |outcome| match outcome {
        Ok(value) => {
            parts.lock().0 = Some(value);
            settle_pair(&parts, &inner);
        }
        Err(error) => {
            inner.settle(Err(error), false);
        }
    });
    b.on_outcome(move |outcome| match outcome {
        Ok(value) => {
            parts_b.lock().1 = Some(value);
            settle_pair(&parts_b, &inner_b);
        }
        Err(error) => {
            inner_b.settle(Err(error), false);
        }
    });
    joined
}

/// Settles a joined future once both parts are in.
fn settle_pair<A: Send + 'static, B: Send + 'static>(
    parts: &Mutex<(Option<A>, Option<B>)>,
    inner: &Inner<(A, B)>,
) {
    let mut p = parts.lock();
    if let (Some(_), Some(_)) = (&p.0, &p.1) {
        let both = (p.0.take(), p.1.take());
        drop(p);
        if let (Some(a), Some(b)) = both {
            inner.settle(Ok((a, b)), false);
        }
    }
}

impl<U: Send + 'static> Future<Future<U>> {
    /// The future of the future this one gives: done when that one is,
    /// with its outcome (AMUSE's request `join` of chained calls). A
    /// failure of this one fails it too. Cancelling it cancels both: this
    /// one while it is queued; once it runs, it finishes, and the future it
    /// gives is cancelled as soon as it is given (a running call cancelled
    /// would throw that future away with its work still going).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(2).build()?;
    /// let (p, q) = (pool.clone(), pool.clone());
    /// let chained = pool.spawn(move || p.spawn(|| 6)).flatten();
    /// assert_eq!(chained.result()?, 6);
    /// let nested = concertina::Future::ready(q.spawn(|| "inner"));
    /// assert_eq!(nested.flatten().result()?, "inner");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn flatten(self) -> Future<U> {
        let outer = self.into_task();
        let (flat, inner) = Future::<U>::derived(&[outer.clone() as Arc<dyn Watchable>]);
        let outer = Future::from_shared(outer);
        let cancel_outer = outer.cancel_handle();
        // The inner future's cancel handle, once the outer one gave it.
        let current: Arc<Mutex<Option<CancelHandle>>> = Arc::default();
        let cancel_current = current.clone();
        let flat = flat.on_cancel(move || {
            // A queued outer call is dropped; a running one finishes, and
            // the inner future it gives is cancelled (below): cancelling it
            // while it runs would throw that future away uncancelled.
            cancel_outer.cancel_unstarted();
            if let Some(handle) = cancel_current.lock().take() {
                handle.cancel();
            }
        });
        outer.on_outcome(move |outcome| match outcome {
            Ok(next) => {
                *current.lock() = Some(next.cancel_handle());
                if inner.is_cancelled() {
                    // Cancelled before the inner future was known.
                    next.cancel();
                }
                next.on_outcome(move |outcome| {
                    inner.settle(outcome, false);
                });
            }
            Err(error) => {
                inner.settle(Err(error), false);
            }
        });
        flat
    }
}

impl<T: Send + 'static> Future<T> {
    /// Runs `next` with the value once this task succeeds, and returns the
    /// future of the future `next` gives: `self.then(next).flatten()`. A
    /// chain of calls across codes reads as one future.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Instance;
    ///
    /// let (ocean, atmosphere) = (Instance::new(15.0_f64), Instance::new(0.0_f64));
    /// let coupled = ocean
    ///     .spawn(|t| *t + 0.5)
    ///     .and_then(move |sst| atmosphere.spawn(move |air| { *air = sst; *air * 2.0 }));
    /// assert_eq!(coupled.result()?, 31.0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn and_then<U, G>(self, next: G) -> Future<U>
    where
        U: Send + 'static,
        G: FnOnce(T) -> Future<U> + Send + 'static,
    {
        self.then(next).flatten()
    }

    /// One future of every value, in the order given: done when all are,
    /// failed as soon as one fails (with that failure; the others go on).
    /// Cancelling it cancels them all. A set of futures as one, for a
    /// dependency (`spawn_after`, `spawn_after`) or a chain.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Future, Instance};
    ///
    /// let steps: Vec<_> = (1..=3).map(|i| concertina::spawn(move || i * 10)).collect();
    /// let all = Future::all(steps);
    /// let log = Instance::new(Vec::new());
    /// let logged = log.spawn_after(all, |log, values| { log.extend(values); log.len() });
    /// assert_eq!(logged.result()?, 3);
    /// assert_eq!(log.call(|l| l.clone())?, [10, 20, 30]);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn all(futures: impl IntoIterator<Item = Future<T>>) -> Future<Vec<T>> {
        let futures: Vec<Future<T>> = futures.into_iter().collect();
        if futures.is_empty() {
            return Future::ready(Vec::new());
        }
        let tasks: Vec<TaskRef<T>> = futures.into_iter().map(Future::into_task).collect();
        let (all, inner) = over(&tasks);
        let count = tasks.len();
        let values: Arc<Mutex<(Vec<Option<T>>, usize)>> = Arc::new(Mutex::new((
            std::iter::repeat_with(|| None).take(count).collect(),
            count,
        )));
        for (index, task) in tasks.into_iter().enumerate() {
            let (values, inner) = (values.clone(), inner.clone());
            Future::from_shared(task).on_outcome(move |outcome| match outcome {
                Ok(value) => {
                    let mut values = values.lock();
                    values.0[index] = Some(value);
                    values.1 -= 1;
                    if values.1 == 0 {
                        let all: Vec<T> = values.0.drain(..).flatten().collect();
                        drop(values);
                        inner.settle(Ok(all), false);
                    }
                }
                Err(error) => {
                    inner.settle(Err(error), false);
                }
            });
        }
        all
    }

    /// One future of the first of these to finish: its index and its
    /// outcome (a failure too); the others go on. Cancelling it cancels
    /// them all. `None` when no future was given.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Future;
    ///
    /// let gate = std::sync::mpsc::channel::<()>();
    /// let pool = concertina::Pool::builder().threads(1).backend(concertina::Backend::Crossbeam).build()?;
    /// let slow = pool.spawn(move || gate.1.recv().map_or(0, |()| 1));
    /// let first = Future::any([slow, Future::ready(2)]).expect("two were given");
    /// assert_eq!(first.result()?, (1, Ok(2)));
    /// drop(gate.0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn any(
        futures: impl IntoIterator<Item = Future<T>>,
    ) -> Option<Future<(usize, Result<T, Error>)>> {
        let tasks: Vec<TaskRef<T>> = futures.into_iter().map(Future::into_task).collect();
        if tasks.is_empty() {
            return None;
        }
        let (any, inner) = over(&tasks);
        for (index, task) in tasks.into_iter().enumerate() {
            let inner = inner.clone();
            // The first to settle it wins; the later ones are dropped.
            Future::from_shared(task).on_outcome(move |outcome| {
                inner.settle(Ok((index, outcome)), false);
            });
        }
        Some(any)
    }
}

/// A future derived from `tasks` (followed by the deadlock search and
/// claiming), whose cancel cancels every one of them.
fn over<T: Send + 'static, U: Send + 'static>(tasks: &[TaskRef<T>]) -> (Future<U>, TaskRef<U>) {
    let sources: Vec<Arc<dyn Watchable>> = tasks
        .iter()
        .map(|t| t.clone() as Arc<dyn Watchable>)
        .collect();
    let (derived, inner) = Future::<U>::derived(&sources);
    let handles: Vec<CancelHandle> = tasks.iter().map(|t| CancelHandle::new(t.clone())).collect();
    let derived = derived.on_cancel(move || {
        for handle in handles {
            handle.cancel();
        }
    });
    (derived, inner)
}
