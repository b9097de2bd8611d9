//! Waiting for many futures: `wait_all`, `wait_any`, `as_completed`. Every
//! helper reports every outcome; none stops at the first failure and leaves
//! the rest unobserved.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::future::Future;
use crate::interrupt;
use crate::task::{Listener, Watchable};

pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

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
fn wait_each<T: Send + 'static>(futures: &[Future<T>], deadline: Option<Instant>) -> bool {
    let began = interrupt::generation();
    futures.iter().filter_map(Future::task).all(|task| {
        if interrupt::generation() != began {
            task.interrupt();
        }
        task.wait_until(deadline)
    })
}

/// Waits at most `timeout` for every future to finish; true when all have.
/// The futures stay with the caller either way.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let futures: Vec<_> = (0..3).map(|i| concertina::spawn(move || i)).collect();
/// assert!(concertina::wait_all_timeout(&futures, Duration::from_secs(60)));
/// assert!(futures.iter().all(concertina::Future::done));
/// ```
pub fn wait_all_timeout<T: Send + 'static>(futures: &[Future<T>], timeout: Duration) -> bool {
    wait_each(futures, deadline_after(timeout))
}

/// Waits until one of the futures has finished and returns its index (the
/// first finished one in slice order, when several already are). `None` for
/// an empty slice.
///
/// # Examples
///
/// ```
/// use concertina::Future;
///
/// let futures = vec![concertina::spawn(|| { std::thread::sleep(std::time::Duration::from_millis(50)); 1 }), Future::ready(2)];
/// let i = concertina::wait_any(&futures).unwrap();
/// assert!(futures[i].done());
/// ```
pub fn wait_any<T: Send + 'static>(futures: &[Future<T>]) -> Option<usize> {
    wait_any_until(futures, None)
}

/// As [`wait_any`], waiting at most `timeout`; `None` when nothing finished
/// in time (or the slice is empty).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let futures = vec![concertina::Future::ready("done")];
/// assert_eq!(concertina::wait_any_timeout(&futures, Duration::ZERO), Some(0));
/// ```
pub fn wait_any_timeout<T: Send + 'static>(
    futures: &[Future<T>],
    timeout: Duration,
) -> Option<usize> {
    wait_any_until(futures, deadline_after(timeout))
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
/// use concertina::{AsCompleted, Future};
///
/// let mut it: AsCompleted<u8> = concertina::as_completed(vec![Future::ready(1), Future::ready(2)]);
/// assert_eq!(it.next(), Some((0, Ok(1))));
/// assert_eq!(it.into_remaining().len(), 1);
/// ```
#[must_use = "an AsCompleted yields outcomes only when iterated"]
pub struct AsCompleted<T: Send + 'static> {
    futures: Vec<Option<Future<T>>>,
    listener: Arc<Listener>,
    left: usize,
    /// `None`: no deadline (also for a timeout too long to represent).
    deadline: Option<Instant>,
}

impl<T: Send + 'static> AsCompleted<T> {
    fn new(futures: Vec<Future<T>>, deadline: Option<Instant>) -> Self {
        let listener = Listener::new();
        for (i, f) in futures.iter().enumerate() {
            if f.task().is_none_or(|task| task.watch(&listener, i as u64)) {
                listener.fire(i as u64);
            }
        }
        let left = futures.len();
        AsCompleted {
            futures: futures.into_iter().map(Some).collect(),
            listener,
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
        (0, Some(self.left))
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
