//! Waiting for many futures: `wait_all`, `wait_any`, `as_completed`, `join`
//! and the `RequestPool`. Every helper reports every outcome; none stops at
//! the first failure and leaves the rest unobserved.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cancel::Cancellable;
use crate::error::{panic_message, Error};
use crate::future::{block, Blocked, Future, Inner};
use crate::interrupt::{self, Wakeable};
use crate::sync::{AtomicUsize, Condvar, Mutex};

/// Told, with its key, when a watched future is published.
pub(crate) struct Listener {
    fired: Mutex<VecDeque<u64>>,
    count: AtomicUsize,
    cond: Condvar,
}

impl Listener {
    pub(crate) fn new() -> Arc<Listener> {
        Arc::new(Listener {
            fired: Mutex::new(VecDeque::new()),
            count: AtomicUsize::new(0),
            cond: Condvar::new(),
        })
    }

    /// True once a watched future was published and not yet taken.
    fn has_fired(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    pub(crate) fn fire(&self, key: u64) {
        let mut fired = self.fired.lock();
        fired.push_back(key);
        self.count.fetch_add(1, Ordering::Release);
        self.cond.notify_all();
    }

    /// The key of the next published future, in publication order; `None`
    /// when the deadline passed first. On a Ctrl-C, `interrupt` cancels
    /// every watched future (so they all publish) and the wait goes on.
    fn next(self: &Arc<Self>, deadline: Option<Instant>, interrupt: impl Fn()) -> Option<u64> {
        loop {
            let blocked = block(
                &self.fired,
                &self.cond,
                |fired| !fired.is_empty(),
                || self.has_fired(),
                deadline,
                || self.clone(),
            );
            match blocked {
                Blocked::Ready => break,
                Blocked::TimedOut => return None,
                Blocked::Interrupted(registration) => {
                    interrupt();
                    drop(registration);
                }
            }
        }
        let key = self.fired.lock().pop_front()?;
        self.count.fetch_sub(1, Ordering::AcqRel);
        Some(key)
    }
}

impl Wakeable for Listener {
    fn wake(&self) {
        let _fired = self.fired.lock();
        self.cond.notify_all();
    }
}

/// A future seen by a multi-future wait, whatever its value type.
pub(crate) trait Watchable: Cancellable {
    /// Tells `listener` with `key` on publication; true (and nothing
    /// registered) when already published.
    fn watch(&self, listener: &Arc<Listener>, key: u64) -> bool;
    /// Forgets `listener`.
    fn unwatch(&self, listener: &Arc<Listener>);
}

fn deadline_after(timeout: Duration) -> Option<Instant> {
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
    futures.into_iter().map(Future::result).collect()
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
    let deadline = deadline_after(timeout);
    let began = interrupt::generation();
    futures.iter().all(|f| {
        if interrupt::generation() != began {
            f.inner().interrupt();
        }
        match deadline {
            None => f.wait_timeout(Duration::MAX),
            Some(deadline) => f.wait_timeout(deadline.saturating_duration_since(Instant::now())),
        }
    })
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
        if f.inner().watch(&listener, i as u64) {
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
        let interrupt = || watched.iter().for_each(|f| f.inner().interrupt());
        listener.next(deadline, interrupt).map(|key| key as usize)
    });
    for f in watched {
        f.inner().unwatch(&listener);
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
            if f.inner().watch(&listener, i as u64) {
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
        for (_, f) in &remaining {
            f.inner().unwatch(&self.listener);
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
        let interrupt = || futures.iter().flatten().for_each(|f| f.inner().interrupt());
        let index = self.listener.next(self.deadline, interrupt)? as usize;
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
        for f in self.futures.iter().flatten() {
            f.inner().unwatch(&self.listener);
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

/// One future of both results: done when both are, failed as soon as either
/// fails (with that failure). Cancelling it cancels both.
///
/// # Examples
///
/// ```
/// let position = concertina::spawn(|| 12.5_f64);
/// let frame = concertina::spawn(|| vec![0u16; 4]);
/// let (x, image) = concertina::join(position, frame).result()?;
/// assert_eq!((x, image.len()), (12.5, 4));
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn join<A, B>(a: Future<A>, b: Future<B>) -> Future<(A, B)>
where
    A: Send + 'static,
    B: Send + 'static,
{
    let (joined, inner) = Future::<(A, B)>::pending();
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
}

impl<T: Send + 'static> Default for RequestPool<T> {
    fn default() -> Self {
        RequestPool {
            listener: Listener::new(),
            requests: BTreeMap::new(),
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
        let key = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
        let watched: Arc<dyn Watchable> = future.inner().clone();
        if watched.watch(&self.listener, key) {
            self.listener.fire(key);
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

    /// As [`wait_one`](RequestPool::wait_one), waiting at most `timeout`;
    /// `None` when nothing finished in time (the requests stay in the pool).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut requests = concertina::RequestPool::new();
    /// requests.add(concertina::Future::ready(5));
    /// assert!(requests.wait_one_timeout(Duration::ZERO).is_some());
    /// assert!(requests.wait_one_timeout(Duration::ZERO).is_none());
    /// ```
    pub fn wait_one_timeout(&mut self, timeout: Duration) -> Option<(RequestId, Result<T, Error>)> {
        self.take_next(deadline_after(timeout))
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
        std::iter::from_fn(|| self.take_next(None)).collect()
    }

    /// Takes every request that finishes within `timeout`, in completion
    /// order; the others stay in the pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut requests = concertina::RequestPool::new();
    /// requests.add(concertina::Future::ready(1));
    /// assert_eq!(requests.wait_all_timeout(Duration::from_secs(1)).len(), 1);
    /// ```
    pub fn wait_all_timeout(&mut self, timeout: Duration) -> Vec<(RequestId, Result<T, Error>)> {
        let deadline = deadline_after(timeout);
        std::iter::from_fn(|| self.take_next(deadline)).collect()
    }

    /// `deadline`: `None` waits forever (also for a timeout too long to
    /// represent as an instant).
    fn take_next(&mut self, deadline: Option<Instant>) -> Option<(RequestId, Result<T, Error>)> {
        loop {
            if self.requests.is_empty() {
                return None;
            }
            let requests = &self.requests;
            let interrupt = || requests.values().for_each(|r| r.watched.interrupt());
            let key = self.listener.next(deadline, interrupt)?;
            // Keys of requests merged away or already taken are skipped.
            if let Some(request) = self.requests.remove(&key) {
                return Some((RequestId(key), (request.finish)()));
            }
        }
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
