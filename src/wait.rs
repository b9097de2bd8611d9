//! Waiting for many futures: `wait_all`, `wait_any`, `try_wait_all`,
//! `as_completed`, each with a `_timeout` twin.
//!
//! One rule for all of them: a wait takes its futures (anything that
//! iterates over `Future<T>`: a `Vec`, an array, an iterator) and gives every
//! one back, as an outcome when it finished and as the future itself when
//! it did not (in a [`TimedOut`], in the `rest` of a [`Finished`] or a
//! [`FirstFailure`], or from [`AsCompleted::into_remaining`]). Nothing is
//! cancelled or lost unless the caller says so.

// The return types spell out what each wait gives back, on purpose: an
// alias would hide from the reader that nothing is lost.
#![allow(clippy::type_complexity)]

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, TimedOut};
use crate::future::Future;
use crate::graph::{Node, Waits};
use crate::interrupt;
use crate::park::deadline_after;
use crate::task::{Holding, Listener, Watchable};

pub use crate::request_pool::Completed;

/// Waits for every future and returns every outcome, in the order given.
///
/// # Examples
///
/// ```
/// let futures: Vec<_> = (0..4).map(|i| concertina::spawn(move || {
///     if i == 2 { panic!("channel {i} saturated") }
///     i * 10
/// })).collect();
/// let outcomes = concertina::wait_all(futures);
/// assert_eq!(outcomes[1], Ok(10));
/// assert!(outcomes[2].is_err(), "a failure is reported, not raised");
/// assert_eq!(outcomes[3], Ok(30), "and the rest are still collected");
/// ```
pub fn wait_all<T: Send + 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
) -> Vec<Result<T, Error>> {
    let futures: Vec<Future<T>> = futures.into_iter().collect();
    wait_each(&futures, None);
    futures.into_iter().map(Future::result).collect()
}

/// Waits on each future in turn until the deadline; true when all are
/// done. One Ctrl-C interrupts them all: once a wait was interrupted, every
/// later future is interrupted too instead of waited on.
///
/// Each wait lends this thread's locks to every future still to come, not
/// only to the one it waits on now, so that what they run under its locks
/// overlaps (as with `zip`).
fn wait_each<T: Send + 'static>(futures: &[Future<T>], deadline: Option<Instant>) -> bool {
    let began = interrupt::generation();
    let tasks: Vec<Arc<dyn Watchable>> = futures
        .iter()
        .filter_map(Future::task)
        .map(|t| t.clone() as Arc<dyn Watchable>)
        .collect();
    let rest: Arc<dyn Node> = Arc::new(Rest(tasks));
    futures.iter().filter_map(Future::task).all(|task| {
        if interrupt::generation() != began {
            task.interrupt();
        }
        task.wait_beside(deadline, Some(&rest))
    })
}

/// The futures of a wait on many, as the lending sees them: those not
/// published yet. The deadlock search does not follow it (the wait is
/// stuck on the one it waits on now).
struct Rest(Vec<Arc<dyn Watchable>>);

impl Node for Rest {
    fn waits(&self) -> Waits {
        let open = self.0.iter().filter(|t| !t.is_done());
        Waits::Any(open.map(|t| t.clone() as Arc<dyn Node>).collect())
    }

    fn describe(&self) -> String {
        "the futures a wait comes to next".to_owned()
    }

    fn blocks(&self) -> bool {
        false
    }
}

/// Waits at most `timeout` for every future: their outcomes, in the order
/// given, when all finished in time; else every future back (finished or
/// not) in a [`TimedOut`].
///
/// # Errors
///
/// [`TimedOut`] holding all the futures when one had not finished in time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use concertina::{Backend, Pool};
///
/// let futures: Vec<_> = (0..3).map(|i| concertina::spawn(move || i)).collect();
/// assert_eq!(concertina::wait_all_timeout(futures, Duration::from_secs(60))?, [Ok(0), Ok(1), Ok(2)]);
///
/// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
/// let (release, gate) = std::sync::mpsc::channel::<()>();
/// let futures = vec![concertina::Future::ready(1), pool.spawn(move || gate.recv().map_or(0, |()| 2))];
/// let futures = concertina::wait_all_timeout(futures, Duration::from_millis(1)).unwrap_err().into_inner();
/// release.send(()).unwrap();
/// assert_eq!(concertina::wait_all(futures), [Ok(1), Ok(2)]);
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn wait_all_timeout<T: Send + 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
    timeout: Duration,
) -> Result<Vec<Result<T, Error>>, TimedOut<Vec<Future<T>>>> {
    let futures: Vec<Future<T>> = futures.into_iter().collect();
    if wait_each(&futures, deadline_after(timeout)) {
        Ok(futures.into_iter().map(Future::result).collect())
    } else {
        Err(TimedOut::new(timeout, futures))
    }
}

/// The future that [`wait_any`] saw finish first, and the others.
///
/// # Examples
///
/// ```
/// use concertina::{wait::Finished, Future};
///
/// let Finished { index, outcome, rest, .. } =
///     concertina::wait_any(vec![Future::ready('a'), Future::ready('b')]).expect("not empty");
/// assert_eq!((index, outcome), (0, Ok('a')));
/// assert_eq!(rest.len(), 1);
/// ```
#[must_use = "the futures not taken are in `rest`: dropping them detaches their tasks"]
#[non_exhaustive]
pub struct Finished<T> {
    /// Its index among the futures given.
    pub index: usize,
    /// Its outcome.
    pub outcome: Result<T, Error>,
    /// The other futures, in the order given (finished or not).
    pub rest: Vec<Future<T>>,
}

/// Waits until one of the futures has finished and takes it: its index, its
/// outcome, and the others back (the first finished one in the order given,
/// when several already are). `None` when no future was given.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use concertina::Future;
///
/// let slow = concertina::spawn(|| { std::thread::sleep(Duration::from_millis(50)); 1 });
/// let mut waiting = vec![slow, Future::ready(2)];
/// let mut seen = Vec::new();
/// while let Some(first) = concertina::wait_any(waiting) {
///     seen.push(first.outcome?);
///     waiting = first.rest;
/// }
/// seen.sort();
/// assert_eq!(seen, [1, 2]);
/// # Ok::<(), concertina::Error>(())
/// ```
#[must_use = "the futures not taken come back in `rest`: dropping them detaches their tasks"]
pub fn wait_any<T: Send + 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
) -> Option<Finished<T>> {
    let futures: Vec<Future<T>> = futures.into_iter().collect();
    let index = wait_any_until(&futures, None)?;
    Some(take_finished(futures, index))
}

/// As [`wait_any`], waiting at most `timeout`: `Ok(None)` when no future
/// was given.
///
/// # Errors
///
/// [`TimedOut`] holding all the futures when none finished in time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let futures = vec![concertina::Future::ready("done")];
/// let first = concertina::wait_any_timeout(futures, Duration::ZERO)?.expect("one was given");
/// assert_eq!((first.index, first.outcome), (0, Ok("done")));
/// # Ok::<(), concertina::Error>(())
/// ```
#[must_use = "the futures not taken come back in `rest`: dropping them detaches their tasks"]
pub fn wait_any_timeout<T: Send + 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
    timeout: Duration,
) -> Result<Option<Finished<T>>, TimedOut<Vec<Future<T>>>> {
    let futures: Vec<Future<T>> = futures.into_iter().collect();
    if futures.is_empty() {
        return Ok(None);
    }
    match wait_any_until(&futures, deadline_after(timeout)) {
        Some(index) => Ok(Some(take_finished(futures, index))),
        None => Err(TimedOut::new(timeout, futures)),
    }
}

fn take_finished<T: Send + 'static>(mut futures: Vec<Future<T>>, index: usize) -> Finished<T> {
    let finished = futures.remove(index);
    Finished {
        index,
        outcome: finished.result(),
        rest: futures,
    }
}

/// The first failure that [`try_wait_all`] met, with everything else it
/// was given: the values already delivered and the futures not yet seen
/// finishing. Those keep running unless cancelled with
/// [`cancel_rest`](FirstFailure::cancel_rest); with `?` (into [`Error`]),
/// they are dropped, which detaches them.
///
/// # Examples
///
/// ```
/// use concertina::{Error, Future};
///
/// let failure = concertina::try_wait_all(vec![Future::ready(1), Future::failed(Error::Cancelled)]).unwrap_err();
/// assert_eq!((failure.index, &failure.error), (1, &Error::Cancelled));
/// assert_eq!(failure.done, [(0, 1)]);
/// assert!(failure.rest.is_empty());
/// ```
#[must_use = "the futures not yet finished are in `rest`: dropping them detaches their tasks"]
#[non_exhaustive]
pub struct FirstFailure<T> {
    /// The index of the future that failed, among those given.
    pub index: usize,
    /// Its error.
    pub error: Error,
    /// The values delivered before it, with their indices.
    pub done: Vec<(usize, T)>,
    /// The futures not yet seen finishing, with their indices.
    pub rest: Vec<(usize, Future<T>)>,
}

impl<T: Send + 'static> FirstFailure<T> {
    /// Cancels every future in `rest` (their cleanups run), and returns how
    /// many this cancelled (those that finished meanwhile are not).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Error, Pool};
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let (_keep, gate) = std::sync::mpsc::channel::<()>();
    /// let stuck = pool.spawn(move || { while !concertina::cancelled() { let _ = gate.try_recv(); } 0 });
    /// let failing = pool.spawn(|| -> u8 { panic!("never reached") });
    /// let failure = concertina::try_wait_all(vec![concertina::Future::failed(Error::Shutdown), stuck, failing]).unwrap_err();
    /// assert_eq!(failure.index, 0);
    /// assert_eq!(failure.cancel_rest(), 2);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn cancel_rest(&self) -> usize {
        self.rest.iter().filter(|(_, f)| f.cancel()).count()
    }
}

/// Without `T: Debug` (as crossbeam's `SendError<T>`): the values are
/// counted, not printed.
impl<T> fmt::Debug for Finished<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Finished")
            .field("index", &self.index)
            .field("outcome", &self.outcome.as_ref().map(|_| ".."))
            .field("rest", &self.rest.len())
            .finish()
    }
}

/// Without `T: Debug`: the values delivered are named by their indices.
impl<T> fmt::Debug for FirstFailure<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let indices = |v: &mut dyn Iterator<Item = usize>| v.collect::<Vec<_>>();
        f.debug_struct("FirstFailure")
            .field("index", &self.index)
            .field("error", &self.error)
            .field("done", &indices(&mut self.done.iter().map(|(i, _)| *i)))
            .field("rest", &indices(&mut self.rest.iter().map(|(i, _)| *i)))
            .finish()
    }
}

impl<T> fmt::Display for FirstFailure<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "future {} failed: {}", self.index, self.error)
    }
}

impl<T> std::error::Error for FirstFailure<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T> From<FirstFailure<T>> for Error {
    fn from(failure: FirstFailure<T>) -> Self {
        failure.error
    }
}

/// Waits for every future, or until the first one fails (in the order they
/// finish: Python's `FIRST_EXCEPTION`): every value, in the order given,
/// when none failed; else the [`FirstFailure`], which holds the rest so the
/// caller can cancel them or leave them running.
///
/// # Errors
///
/// [`FirstFailure`] when a future failed.
///
/// # Examples
///
/// ```
/// use concertina::Error;
///
/// let readings: Vec<_> = (0..4).map(|i| concertina::spawn(move || i * 10)).collect();
/// assert_eq!(concertina::try_wait_all(readings)?, [0, 10, 20, 30]);
///
/// let readings: Vec<_> = (0..4).map(|i| concertina::spawn(move || {
///     if i == 2 { panic!("detector {i} saturated") }
///     i
/// })).collect();
/// let failure = concertina::try_wait_all(readings).unwrap_err();
/// assert_eq!(failure.index, 2);
/// assert_eq!(failure.error, Error::Panicked("detector 2 saturated".into()));
/// failure.cancel_rest();
/// # Ok::<(), Error>(())
/// ```
pub fn try_wait_all<T: Send + 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
) -> Result<Vec<T>, FirstFailure<T>> {
    match try_wait_all_until(futures.into_iter().collect(), None) {
        Ok(outcome) => outcome,
        Err(futures) => unreachable!("no deadline, yet {} futures timed out", futures.len()),
    }
}

/// The many-futures twin of [`Future::try_result`]: waits for fallible
/// tasks (`Future<Result<T, E>>`) in the order they finish, and returns
/// every value in the order given, or the first failure — a task's own
/// `Err(E)`, or a failure of the runtime (panic, cancel, shutdown)
/// converted into `E` — at once, cancelling the rest (rayon's
/// `collect::<Result<Vec<_>, _>>()`: a sweep stops at its first bad run;
/// the queued runs never start, a running one sees
/// [`cancelled()`](crate::cancelled)).
///
/// # Errors
///
/// The first failure, as `E`.
///
/// # Examples
///
/// ```
/// #[derive(Debug, PartialEq)]
/// enum SweepError { Diverged(u32), Runtime(concertina::Error) }
/// impl From<concertina::Error> for SweepError {
///     fn from(e: concertina::Error) -> Self { SweepError::Runtime(e) }
/// }
///
/// let pool = concertina::Pool::builder().threads(1).backend(concertina::Backend::Crossbeam).build()?;
/// let runs: Vec<_> = (0..400u32)
///     .map(|i| pool.spawn(move || if i == 5 { Err(SweepError::Diverged(i)) } else { Ok(i) }))
///     .collect();
/// assert_eq!(concertina::try_result_all(runs), Err(SweepError::Diverged(5)));
///
/// let ok: Vec<_> = (0..3u32).map(|i| pool.spawn(move || Ok::<_, SweepError>(i))).collect();
/// assert_eq!(concertina::try_result_all(ok), Ok(vec![0, 1, 2]));
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn try_result_all<T, E>(
    futures: impl IntoIterator<Item = Future<Result<T, E>>>,
) -> Result<Vec<T>, E>
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    let futures: Vec<Future<Result<T, E>>> = futures.into_iter().collect();
    let count = futures.len();
    let mut values: Vec<Option<T>> = std::iter::repeat_with(|| None).take(count).collect();
    let mut completed = AsCompleted::new(futures, None);
    let failure = loop {
        match completed.next() {
            Some((index, Ok(Ok(value)))) => values[index] = Some(value),
            Some((_, Ok(Err(own)))) => break own,
            Some((_, Err(error))) => break E::from(error),
            None => return Ok(values.into_iter().flatten().collect()),
        }
    };
    for (_, rest) in completed.into_remaining() {
        rest.cancel();
    }
    Err(failure)
}

/// As [`try_wait_all`], waiting at most `timeout`.
///
/// # Errors
///
/// The outer `Err` is the timeout: a [`TimedOut`] holding every future
/// (those finished too); the inner one is the first failure, met in time.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let readings: Vec<_> = (0..3).map(|i| concertina::spawn(move || i)).collect();
/// assert_eq!(concertina::try_wait_all_timeout(readings, Duration::from_secs(60))??, [0, 1, 2]);
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn try_wait_all_timeout<T: Send + 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
    timeout: Duration,
) -> Result<Result<Vec<T>, FirstFailure<T>>, TimedOut<Vec<Future<T>>>> {
    try_wait_all_until(futures.into_iter().collect(), deadline_after(timeout))
        .map_err(|futures| TimedOut::new(timeout, futures))
}

fn try_wait_all_until<T: Send + 'static>(
    futures: Vec<Future<T>>,
    deadline: Option<Instant>,
) -> Result<Result<Vec<T>, FirstFailure<T>>, Vec<Future<T>>> {
    let count = futures.len();
    let mut values: Vec<Option<T>> = std::iter::repeat_with(|| None).take(count).collect();
    let mut completed = AsCompleted::new(futures, deadline);
    for (index, outcome) in completed.by_ref() {
        match outcome {
            Ok(value) => values[index] = Some(value),
            Err(error) => {
                let done = values
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, v)| Some((i, v?)))
                    .collect();
                return Ok(Err(FirstFailure {
                    index,
                    error,
                    done,
                    rest: completed.into_remaining(),
                }));
            }
        }
    }
    let mut remaining = completed.into_remaining().into_iter().peekable();
    if remaining.peek().is_none() {
        return Ok(Ok(values.into_iter().flatten().collect()));
    }
    // Timed out: every future back, in the order given; a value already
    // taken goes back as a finished future.
    let mut futures = Vec::with_capacity(count);
    for value in values {
        match value {
            Some(value) => futures.push(Future::ready(value)),
            None => {
                let (_, future) = remaining.next().expect("a future not taken is remaining");
                futures.push(future);
            }
        }
    }
    Err(futures)
}

fn wait_any_until<T: Send + 'static>(
    futures: &[Future<T>],
    deadline: Option<Instant>,
) -> Option<usize> {
    if let Some(i) = futures.iter().position(Future::done) {
        return Some(i);
    }
    if futures.is_empty() {
        return None;
    }
    let listener = Listener::new();
    let mut found = None;
    // Registration stops as soon as one watched future is published: the
    // answer is known, and the rest need not be watched.
    let mut watched = 0;
    for (i, f) in futures.iter().enumerate() {
        // None is done yet (checked above), so every one has a task.
        if f.task().is_none_or(|task| task.watch(&listener, i as u64)) {
            found = Some(i);
            break;
        }
        watched = i + 1;
        if listener.has_fired() {
            break;
        }
    }
    let watched = &futures[..watched];
    let found = found.or_else(|| {
        let targets = || {
            watched
                .iter()
                .filter_map(|f| f.task().map(|t| t.clone() as Arc<dyn Watchable>))
                .collect()
        };
        listener.next(deadline, targets).map(|key| key as usize)
    });
    for task in watched.iter().filter_map(Future::task) {
        task.unwatch(&listener);
    }
    found
}

/// Yields `(index, outcome)` for each future as it finishes, in completion
/// order (Python's `as_completed`).
///
/// # Examples
///
/// ```
/// use concertina::{Backend, Future, Pool};
///
/// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
/// let (release, gate) = std::sync::mpsc::channel::<()>();
/// let slow = pool.spawn(move || { gate.recv().unwrap(); "slow" });
/// let mut it = concertina::as_completed(vec![slow, Future::ready("fast")]);
/// assert_eq!(it.next().map(|(i, r)| (i, r.unwrap())), Some((1, "fast")));
/// release.send(()).unwrap();
/// assert_eq!(it.next().map(|(i, r)| (i, r.unwrap())), Some((0, "slow")));
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn as_completed<T: Send + 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
) -> AsCompleted<T> {
    AsCompleted::new(futures.into_iter().collect(), None)
}

/// As [`as_completed`], stopping at the deadline `timeout` from now; the
/// futures not finished by then are given back by
/// [`AsCompleted::into_remaining`], so nothing is lost.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use concertina::{Backend, Pool};
///
/// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// let stuck = pool.spawn(move || rx.recv().is_ok());
/// let mut it = concertina::as_completed_timeout(vec![stuck, concertina::Future::ready(true)], Duration::from_millis(10));
/// assert_eq!(it.next().map(|(i, _)| i), Some(1));
/// assert!(it.next().is_none(), "the deadline passed");
/// let remaining = it.into_remaining();
/// assert_eq!(remaining.len(), 1);
/// tx.send(()).unwrap();
/// assert_eq!(remaining.into_iter().next().unwrap().1.result(), Ok(true));
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn as_completed_timeout<T: Send + 'static>(
    futures: impl IntoIterator<Item = Future<T>>,
    timeout: Duration,
) -> AsCompleted<T> {
    AsCompleted::new(futures.into_iter().collect(), deadline_after(timeout))
}

/// The iterator of [`as_completed`] and [`as_completed_timeout`].
///
/// # Examples
///
/// ```
/// use concertina::{wait::AsCompleted, Future};
///
/// let mut it: AsCompleted<u8> = concertina::as_completed(vec![Future::ready(1), Future::ready(2)]);
/// assert_eq!(it.next(), Some((0, Ok(1))));
/// assert_eq!(it.into_remaining().len(), 1);
/// ```
#[must_use = "an AsCompleted yields outcomes only when iterated"]
pub struct AsCompleted<T: Send + 'static> {
    futures: Vec<Option<Future<T>>>,
    listener: Arc<Listener>,
    /// A Ctrl-C between two `next` calls cancels what is left.
    _holding: Holding,
    left: usize,
    /// `None`: no deadline (also for a timeout too long to represent).
    deadline: Option<Instant>,
}

impl<T: Send + 'static> AsCompleted<T> {
    fn new(futures: Vec<Future<T>>, deadline: Option<Instant>) -> Self {
        let listener = Listener::new();
        let mut holding = Holding::new();
        for (i, f) in futures.iter().enumerate() {
            match f.task() {
                Some(task) if !task.watch(&listener, i as u64) => {
                    holding.hold(&(task.clone() as Arc<dyn Watchable>));
                }
                _ => listener.fire(i as u64),
            }
        }
        let left = futures.len();
        AsCompleted {
            futures: futures.into_iter().map(Some).collect(),
            listener,
            _holding: holding,
            left,
            deadline,
        }
    }

    /// The futures not yielded yet, with their indices.
    ///
    /// # Examples
    ///
    /// ```
    /// let it = concertina::as_completed(vec![concertina::Future::ready(1)]);
    /// assert_eq!(it.into_remaining().len(), 1);
    /// ```
    pub fn into_remaining(mut self) -> Vec<(usize, Future<T>)> {
        let remaining: Vec<_> = self
            .futures
            .iter_mut()
            .enumerate()
            .filter_map(|(i, f)| Some((i, f.take()?)))
            .collect();
        for task in remaining.iter().filter_map(|(_, f)| f.task()) {
            task.unwatch(&self.listener);
        }
        remaining
    }
}

impl<T: Send + 'static> Iterator for AsCompleted<T> {
    type Item = (usize, Result<T, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let futures = &self.futures;
        let targets = || {
            futures
                .iter()
                .flatten()
                .filter_map(|f| f.task().map(|t| t.clone() as Arc<dyn Watchable>))
                .collect()
        };
        let index = self.listener.next(self.deadline, targets)? as usize;
        let future = self.futures[index].take()?;
        self.left -= 1;
        Some((index, future.result()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Without a deadline, every future yields its outcome.
        let lower = if self.deadline.is_none() {
            self.left
        } else {
            0
        };
        (lower, Some(self.left))
    }
}

/// [`len`](ExactSizeIterator::len) is how many outcomes are still to come:
/// progress bars (`indicatif`'s `ProgressIterator`) work on it as it is.
/// With a deadline, iteration may end before that many (the rest are given
/// back by [`AsCompleted::into_remaining`]).
impl<T: Send + 'static> ExactSizeIterator for AsCompleted<T> {
    fn len(&self) -> usize {
        self.left
    }
}

impl<T: Send + 'static> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        for task in self.futures.iter().flatten().filter_map(Future::task) {
            task.unwatch(&self.listener);
        }
    }
}

impl<T: Send + 'static> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("left", &self.left)
            .finish()
    }
}
