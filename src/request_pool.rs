//! `RequestPool`: waiting for many requests at once (AMUSE's
//! `AsyncRequestsPool`).

// The return types spell out what each wait gives back, on purpose: an
// alias would hide from the reader that nothing is lost.
#![allow(clippy::type_complexity)]

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{panic_message, Error, TimedOut};
use crate::future::Future;
use crate::park::deadline_after;
use crate::task::{Holding, Listener, Watchable};

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

/// The identifier of a request in a [`RequestPool`], unique in the process.
///
/// # Examples
///
/// ```
/// let mut requests = concertina::RequestPool::new();
/// let a = requests.add(concertina::Future::ready(1));
/// let b = requests.add(concertina::Future::ready(2));
/// assert_ne!(a, b);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

struct Request<T> {
    watched: Arc<dyn Watchable>,
    finish: Box<dyn FnOnce() -> Result<T, Error> + Send>,
}

/// Waits for many requests at once (AMUSE's `AsyncRequestsPool`): add
/// futures, optionally each with a handler that turns its outcome into the
/// pool's item type, then take them one at a time as they finish or all at
/// once. Every outcome is reported: a failed request is an `Err` among the
/// others, never an early exit.
///
/// # Examples
///
/// ```
/// use concertina::RequestPool;
///
/// let mut requests = RequestPool::new();
/// requests.add(concertina::spawn(|| 1.5_f64));
/// // A request of another type joins through a handler.
/// requests.add_with(concertina::spawn(|| "7.25".to_owned()), |outcome| {
///     outcome.map(|text| text.parse::<f64>().unwrap_or(f64::NAN))
/// });
/// assert_eq!(requests.len(), 2);
/// let mut values: Vec<f64> = requests.wait_all().into_iter().map(|(_, r)| r.unwrap()).collect();
/// values.sort_by(f64::total_cmp);
/// assert_eq!(values, [1.5, 7.25]);
/// assert!(requests.is_empty());
/// ```
#[must_use = "a RequestPool reports outcomes only when waited on"]
pub struct RequestPool<T = ()> {
    listener: Arc<Listener>,
    requests: BTreeMap<u64, Request<T>>,
    /// Keys of finished requests seen by a wait that took none of them (a
    /// `wait_all_timeout` that timed out), in the order they finished.
    ready: VecDeque<u64>,
    /// A Ctrl-C between two waits cancels what is left.
    holding: Holding,
}

impl<T: Send + 'static> Default for RequestPool<T> {
    fn default() -> Self {
        RequestPool {
            listener: Listener::new(),
            requests: BTreeMap::new(),
            ready: VecDeque::new(),
            holding: Holding::new(),
        }
    }
}

impl<T: Send + 'static> RequestPool<T> {
    /// An empty pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let requests: concertina::RequestPool<u32> = concertina::RequestPool::new();
    /// assert!(requests.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a future whose outcome is reported as it is.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut requests = concertina::RequestPool::new();
    /// let id = requests.add(concertina::spawn(|| 3));
    /// assert_eq!(requests.wait_one(), Some((id, Ok(3))));
    /// ```
    pub fn add(&mut self, future: Future<T>) -> RequestId {
        self.add_with(future, |outcome| outcome)
    }

    /// Adds a future with a handler that receives its outcome, once, on the
    /// thread that waits, and returns the pool's item. A panic in the handler
    /// is reported as that request's [`Error::Panicked`].
    ///
    /// # Examples
    ///
    /// ```
    /// let mut requests: concertina::RequestPool<String> = concertina::RequestPool::new();
    /// requests.add_with(concertina::spawn(|| 273.15_f64), |kelvin| Ok(format!("{:.1} K", kelvin?)));
    /// let (_, text) = requests.wait_one().unwrap();
    /// assert_eq!(text.unwrap(), "273.1 K");
    /// ```
    pub fn add_with<U, H>(&mut self, future: Future<U>, handler: H) -> RequestId
    where
        U: Send + 'static,
        H: FnOnce(Result<U, Error>) -> Result<T, Error> + Send + 'static,
    {
        // Relaxed: a unique number, ordering nothing else.
        let key = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
        let task = future.into_task();
        let watched: Arc<dyn Watchable> = task.clone();
        let future = Future::from_shared(task);
        if watched.watch(&self.listener, key) {
            self.listener.fire(key);
        } else {
            self.holding.hold(&watched);
        }
        let finish = Box::new(move || {
            let outcome = future.result();
            catch_unwind(AssertUnwindSafe(move || handler(outcome)))
                .unwrap_or_else(|payload| Err(Error::Panicked(panic_message(&*payload))))
        });
        self.requests.insert(key, Request { watched, finish });
        RequestId(key)
    }

    /// Moves every request of `other` into this pool (AMUSE's `join` of two
    /// request pools). Their ids stay the same.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Future, RequestPool};
    ///
    /// let mut first = RequestPool::new();
    /// first.add(Future::ready(1));
    /// let mut second = RequestPool::new();
    /// second.add(Future::ready(2));
    /// first.merge(second);
    /// assert_eq!(first.len(), 2);
    /// ```
    pub fn merge(&mut self, mut other: RequestPool<T>) {
        for (key, request) in std::mem::take(&mut other.requests) {
            request.watched.unwatch(&other.listener);
            if request.watched.watch(&self.listener, key) {
                self.listener.fire(key);
            } else {
                self.holding.hold(&request.watched);
            }
            self.requests.insert(key, request);
        }
    }

    /// The number of requests not yet taken.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut requests = concertina::RequestPool::new();
    /// requests.add(concertina::Future::ready(()));
    /// assert_eq!(requests.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// True when no request is left.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(concertina::RequestPool::<()>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Waits for the next request to finish and takes it: its id and its
    /// outcome (after its handler). `None` when the pool is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut requests = concertina::RequestPool::new();
    /// let id = requests.add(concertina::spawn(|| -> u8 { panic!("diverged") }));
    /// let (done, outcome) = requests.wait_one().unwrap();
    /// assert_eq!(done, id);
    /// assert!(outcome.is_err());
    /// assert_eq!(requests.wait_one(), None);
    /// ```
    pub fn wait_one(&mut self) -> Option<(RequestId, Result<T, Error>)> {
        self.take_next(None)
    }

    /// As [`wait_one`](RequestPool::wait_one), waiting at most `timeout`:
    /// `Ok(None)` when the pool is empty.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when no request finished in time; they all stay in the
    /// pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut requests = concertina::RequestPool::new();
    /// let id = requests.add(concertina::Future::ready(5));
    /// assert_eq!(requests.wait_one_timeout(Duration::ZERO)?, Some((id, Ok(5))));
    /// assert_eq!(requests.wait_one_timeout(Duration::ZERO)?, None, "empty");
    ///
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let pool = concertina::Pool::builder().threads(1).backend(concertina::Backend::Crossbeam).build()?;
    /// requests.add(pool.spawn(move || gate.recv().map_or(0, |()| 6)));
    /// assert!(requests.wait_one_timeout(Duration::from_millis(1)).is_err());
    /// assert_eq!(requests.len(), 1, "still in the pool");
    /// release.send(()).unwrap();
    /// assert_eq!(requests.wait_one().map(|(_, outcome)| outcome), Some(Ok(6)));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait_one_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<(RequestId, Result<T, Error>)>, TimedOut<()>> {
        if self.requests.is_empty() {
            return Ok(None);
        }
        match self.take_next(deadline_after(timeout)) {
            Some(taken) => Ok(Some(taken)),
            None => Err(TimedOut::new(timeout, ())),
        }
    }

    /// Waits for every request and takes them all, in completion order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut requests = concertina::RequestPool::new();
    /// for i in 0..3 { requests.add(concertina::spawn(move || i)); }
    /// let mut values: Vec<i32> = requests.wait_all().into_iter().map(|(_, r)| r.unwrap()).collect();
    /// values.sort();
    /// assert_eq!(values, [0, 1, 2]);
    /// ```
    pub fn wait_all(&mut self) -> Vec<(RequestId, Result<T, Error>)> {
        self.completed().collect()
    }

    /// Waits at most `timeout` for every request, then takes them all, in
    /// completion order.
    ///
    /// # Errors
    ///
    /// [`TimedOut`] when one had not finished in time; they all stay in
    /// the pool (the finished ones too), as they were.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut requests = concertina::RequestPool::new();
    /// requests.add(concertina::Future::ready(1));
    /// assert_eq!(requests.wait_all_timeout(Duration::from_secs(1))?.len(), 1);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait_all_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<(RequestId, Result<T, Error>)>, TimedOut<()>> {
        let deadline = deadline_after(timeout);
        while self.ready.len() < self.requests.len() {
            match self.next_key(deadline) {
                Some(key) => self.ready.push_back(key),
                None => return Err(TimedOut::new(timeout, ())),
            }
        }
        Ok(self.wait_all())
    }

    /// The requests as they finish, taken one by one (each `next` is a
    /// [`wait_one`](RequestPool::wait_one)); its
    /// [`len`](ExactSizeIterator::len) is how many are left, so progress
    /// bars (`indicatif`'s `ProgressIterator`) work on it as it is. Those not
    /// taken when it is dropped stay in the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut requests = concertina::RequestPool::new();
    /// for i in 0..3 { requests.add(concertina::spawn(move || i)); }
    /// let mut completed = requests.completed();
    /// assert_eq!(completed.len(), 3);
    /// completed.next();
    /// assert_eq!(completed.len(), 2);
    /// assert_eq!(requests.len(), 2);
    /// let rest: u32 = (&mut requests).into_iter().map(|(_, r)| r.unwrap()).sum::<u32>();
    /// assert!(rest <= 3 && requests.is_empty());
    /// ```
    pub fn completed(&mut self) -> Completed<'_, T> {
        Completed { requests: self }
    }

    /// The key of the next finished request (`None`: the deadline passed);
    /// `deadline` `None` waits forever (also for a timeout too long to
    /// represent as an instant).
    fn next_key(&self, deadline: Option<Instant>) -> Option<u64> {
        let requests = &self.requests;
        let targets = || requests.values().map(|r| r.watched.clone()).collect();
        self.listener.next(deadline, targets)
    }

    fn take_next(&mut self, deadline: Option<Instant>) -> Option<(RequestId, Result<T, Error>)> {
        loop {
            if self.requests.is_empty() {
                self.ready.clear();
                return None;
            }
            let key = match self.ready.pop_front() {
                Some(key) => key,
                None => self.next_key(deadline)?,
            };
            // Keys of requests merged away or already taken are skipped.
            if let Some(request) = self.requests.remove(&key) {
                return Some((RequestId(key), (request.finish)()));
            }
        }
    }
}

/// The iterator of [`RequestPool::completed`]: requests as they finish.
///
/// # Examples
///
/// ```
/// let mut requests = concertina::RequestPool::new();
/// requests.add(concertina::Future::ready("a"));
/// let completed: concertina::wait::Completed<'_, &str> = requests.completed();
/// assert_eq!(completed.map(|(_, r)| r.unwrap()).collect::<Vec<_>>(), ["a"]);
/// ```
#[must_use = "a Completed takes requests only when iterated"]
pub struct Completed<'a, T> {
    requests: &'a mut RequestPool<T>,
}

impl<T: Send + 'static> Iterator for Completed<'_, T> {
    type Item = (RequestId, Result<T, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        self.requests.take_next(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.requests.len();
        (left, Some(left))
    }
}

impl<T: Send + 'static> ExactSizeIterator for Completed<'_, T> {}

impl<T> fmt::Debug for Completed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completed")
            .field("left", &self.requests.requests.len())
            .finish()
    }
}

impl<'a, T: Send + 'static> IntoIterator for &'a mut RequestPool<T> {
    type Item = (RequestId, Result<T, Error>);
    type IntoIter = Completed<'a, T>;

    /// [`RequestPool::completed`].
    fn into_iter(self) -> Completed<'a, T> {
        self.completed()
    }
}

impl<T> Drop for RequestPool<T> {
    fn drop(&mut self) {
        for request in self.requests.values() {
            request.watched.unwatch(&self.listener);
        }
    }
}

impl<T> fmt::Debug for RequestPool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestPool")
            .field("len", &self.requests.len())
            .finish()
    }
}
