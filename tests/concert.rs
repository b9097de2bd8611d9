//! Cases ported from Concert's `concert/tests/unit/test_async.py`
//! (test_wait, test_exceptions, test_kill, test_resolve, test_futures) and
//! its `cancel_operation` contract.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use concertina::{Error, Future};

#[concertina::asynchronous]
fn func() {}

#[concertina::asynchronous]
fn bad_func() {
    panic!("RuntimeError")
}

#[concertina::asynchronous]
fn identity(x: u64) -> (u64, u64) {
    (x, x * x)
}

#[concertina::asynchronous]
fn long_func(seed: u64) {
    // A short pseudo-random sleep, as Concert's `random() / 50` seconds.
    std::thread::sleep(Duration::from_micros((seed * 7919) % 2000));
}

#[test]
fn test_wait() {
    let futs: Vec<Future<()>> = (0..10).map(long_func).collect();
    for f in &futs {
        assert!(f.wait_timeout(Duration::from_secs(60)));
    }
    assert!(futs.iter().all(Future::done), "Not all futures finished.");
}

#[test]
fn test_exceptions() {
    assert_eq!(
        bad_func().join().unwrap_err(),
        Error::Panicked("RuntimeError".into())
    );
}

#[test]
fn test_futures() {
    // `join` gives a future back, of the same type as the call returned.
    let future1: Future<()> = func();
    let future2: Future<()> = func().join().unwrap();
    assert!(future2.done());
    future1.result().unwrap();
    assert!(bad_func().join().is_err());
}

#[test]
fn test_kill() {
    // Concert's `kill` raised KillException inside a gevent greenlet; here a
    // running task observes the cooperative flag.
    let pool = concertina::Pool::builder()
        .threads(1)
        .backend(concertina::Backend::Crossbeam)
        .build()
        .unwrap();
    let killed = Arc::new(AtomicBool::new(false));
    let k = killed.clone();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let future = pool.spawn(move || {
        s.store(true, Ordering::SeqCst);
        while !concertina::cancelled() {
            std::thread::yield_now();
        }
        k.store(true, Ordering::SeqCst);
    });
    while !started.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    assert!(future.cancel());
    pool.shutdown();
    assert!(killed.load(Ordering::SeqCst));
}

#[test]
fn test_resolve() {
    let results: Vec<Future<(u64, u64)>> = (0..10).map(identity).collect();
    let (xs, squares): (Vec<u64>, Vec<u64>) =
        results.into_iter().map(|f| f.result().unwrap()).unzip();
    assert_eq!(xs, (0..10).collect::<Vec<_>>());
    assert_eq!(squares, (0..10).map(|x| x * x).collect::<Vec<_>>());
}

#[test]
fn cancel_operation_is_called_when_a_running_move_is_cancelled() {
    let pool = concertina::Pool::builder()
        .threads(1)
        .backend(concertina::Backend::Rayon)
        .build()
        .unwrap();
    let stops = Arc::new(AtomicUsize::new(0));
    let st = stops.clone();
    let moving = Arc::new(AtomicBool::new(false));
    let m = moving.clone();
    let motion = pool
        .spawn(move || {
            m.store(true, Ordering::SeqCst);
            while !concertina::cancelled() {
                std::thread::yield_now();
            }
        })
        .on_cancel(move || {
            st.fetch_add(1, Ordering::SeqCst);
        });
    while !moving.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    assert!(motion.cancel());
    assert!(!motion.cancel());
    assert_eq!(
        stops.load(Ordering::SeqCst),
        1,
        "cancel_operation runs exactly once"
    );
    assert_eq!(motion.result(), Err(Error::Cancelled));
}
