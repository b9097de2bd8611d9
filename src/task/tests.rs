//! A wait that serves the transport of what it waits for (see [`Drive`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::future::Future;
use crate::task::Drive;

/// A transport whose waiters serve it until their wait ends.
#[derive(Default)]
struct Served {
    /// How many waits serve it now, and served it in all.
    serving: AtomicUsize,
    served: AtomicUsize,
}

impl Drive for Served {
    fn drive(&self, done: &dyn Fn() -> bool) {
        self.served.fetch_add(1, Ordering::SeqCst);
        self.serving.fetch_add(1, Ordering::SeqCst);
        while !done() {
            std::thread::yield_now();
        }
        self.serving.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits (yielding) until `what` holds, failing after ten seconds.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::yield_now();
    }
}

/// The tests run one at a time: an interrupt reaches every wait of the
/// process.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The outcome of `wait` run on a thread of its own, failing the test
/// after ten seconds.
fn within<T: Send + 'static>(wait: impl FnOnce() -> T + Send + 'static) -> impl FnOnce() -> T {
    let (sent, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sent.send(wait());
    });
    move || {
        outcome
            .recv_timeout(Duration::from_secs(10))
            .expect("the wait ended within ten seconds")
    }
}

fn served_future(served: &Arc<Served>) -> (Future<u32>, crate::task::TaskRef<u32>) {
    Future::pending_named(Arc::from("a call of `test`"), Some(served.clone() as _))
}

#[test]
fn a_wait_serves_the_transport_until_its_task_is_settled() {
    let _one = one_at_a_time();
    let served = Arc::new(Served::default());
    let (future, task) = served_future(&served);
    let waiter = within(move || future.result());
    wait_until("the wait serves", || {
        served.serving.load(Ordering::SeqCst) == 1
    });
    task.settle(Ok(5), false);
    assert_eq!(waiter(), Ok(5));
    assert_eq!(
        served.serving.load(Ordering::SeqCst),
        0,
        "it stopped serving"
    );
    assert_eq!(served.served.load(Ordering::SeqCst), 1);
    // A wait for a task settled already does not serve.
    let (future, task) = served_future(&served);
    task.settle(Ok(6), false);
    assert_eq!(future.result(), Ok(6));
    assert_eq!(served.served.load(Ordering::SeqCst), 1);
}

/// What a Ctrl-C does reaches a wait while it serves the transport: the
/// wait ends with `Interrupted`, as a sleeping one would.
#[test]
fn an_interrupt_ends_a_wait_that_serves_the_transport() {
    let _one = one_at_a_time();
    let served = Arc::new(Served::default());
    let (future, _task) = served_future(&served);
    let waiter = within(move || future.result());
    wait_until("the wait serves", || {
        served.serving.load(Ordering::SeqCst) == 1
    });
    // The server never lets go: only an interrupt of its registration ends
    // the wait.
    wait_until("an interrupt reaches the wait", || {
        crate::interrupt::interrupt_waits() > 0
    });
    assert_eq!(waiter(), Err(Error::Interrupted));
    assert_eq!(served.serving.load(Ordering::SeqCst), 0);
}

/// A wait with a deadline stops serving at the deadline.
#[test]
fn a_wait_with_a_deadline_stops_serving_at_it() {
    let _one = one_at_a_time();
    let served = Arc::new(Served::default());
    let (future, task) = served_future(&served);
    let future = match future.result_timeout(Duration::from_millis(20)) {
        Err(timed_out) => timed_out.into_inner(),
        Ok(outcome) => panic!("settled by nobody, yet {outcome:?}"),
    };
    assert_eq!(served.serving.load(Ordering::SeqCst), 0);
    assert_eq!(served.served.load(Ordering::SeqCst), 1);
    task.settle(Ok(7), false);
    assert_eq!(future.result(), Ok(7));
}
