//! Cases ported from CPython's `concurrent.futures` test suite
//! (Lib/test/test_concurrent_futures: test_future.py, test_shutdown.py):
//! done callbacks, cancel before run, results, submit after shutdown.
//! Where concertina deliberately differs (a running task can be cancelled),
//! the case says so.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{pool, Gate, THREADED};
use concertina::{Error, Future};
use parking_lot::Mutex;

/// A pending future on a one-thread pool, held back until the gate opens.
fn held(pool: &concertina::Pool, value: u32) -> (Future<u32>, Gate, Future<()>) {
    let gate = Gate::new();
    let g = gate.clone();
    let blocker = pool.spawn(move || g.wait());
    (pool.spawn(move || value), gate, blocker)
}

#[test]
fn test_done_callback_with_result() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let (f, gate, _b) = held(&pool, 5);
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        f.on_done(move |outcome| *s.lock() = Some(outcome.clone()));
        assert_eq!(*seen.lock(), None, "not called before the result");
        gate.open();
        assert_eq!(f.result(), Ok(5));
        assert_eq!(*seen.lock(), Some(Ok(5)));
    }
}

#[test]
fn test_done_callback_with_exception() {
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let f = concertina::spawn(|| -> u32 { panic!("test") });
    f.on_done(move |outcome| *s.lock() = Some(outcome.clone()));
    assert!(f.result().is_err());
    assert_eq!(*seen.lock(), Some(Err(Error::Panicked("test".into()))));
}

#[test]
fn test_done_callback_with_cancel() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let (f, gate, _b) = held(&pool, 1);
        let was_cancelled = Arc::new(Mutex::new(None));
        let w = was_cancelled.clone();
        f.on_done(move |outcome| *w.lock() = Some(*outcome == Err(Error::Cancelled)));
        assert!(f.cancel());
        assert_eq!(*was_cancelled.lock(), Some(true));
        gate.open();
    }
}

#[test]
fn test_done_callback_raises() {
    let raising_was_called = Arc::new(AtomicUsize::new(0));
    let fn_was_called = Arc::new(AtomicUsize::new(0));
    let f = concertina::spawn(|| 5);
    let r = raising_was_called.clone();
    f.on_done(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
        panic!("doh!");
    });
    let c = fn_was_called.clone();
    f.on_done(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(f.result(), Ok(5));
    assert_eq!(raising_was_called.load(Ordering::SeqCst), 1);
    assert_eq!(fn_was_called.load(Ordering::SeqCst), 1);
}

#[test]
fn test_done_callback_already_successful() {
    let f = Future::ready(5);
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    f.on_done(move |outcome| *s.lock() = Some(outcome.clone()));
    assert_eq!(*seen.lock(), Some(Ok(5)), "called at once on a done future");
}

#[test]
fn test_done_callback_already_failed() {
    let f: Future<u8> = Future::failed(Error::Panicked("test".into()));
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    f.on_done(move |outcome| *s.lock() = Some(outcome.clone()));
    assert_eq!(*seen.lock(), Some(Err(Error::Panicked("test".into()))));
}

#[test]
fn test_done_callback_already_cancelled() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let (f, gate, _b) = held(&pool, 1);
        assert!(f.cancel());
        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        f.on_done(move |outcome| *s.lock() = Some(outcome.clone()));
        assert_eq!(*seen.lock(), Some(Err(Error::Cancelled)));
        gate.open();
    }
}

#[test]
fn test_callbacks_fire_exactly_once_in_registration_order() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let (f, gate, _b) = held(&pool, 3);
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..5 {
            let o = order.clone();
            f.on_done(move |_| o.lock().push(i));
        }
        gate.open();
        assert_eq!(f.result(), Ok(3));
        assert_eq!(*order.lock(), [0, 1, 2, 3, 4], "{backend:?}");
    }
}

#[test]
fn test_cancel() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        // PENDING: cancel succeeds and the future reports it.
        let (pending, gate, _b) = held(&pool, 1);
        assert!(pending.cancel());
        assert!(pending.cancelled() && pending.done());
        // A second cancel of a cancelled future: Python returns True again;
        // concertina returns true only for the call that cancelled.
        assert!(!pending.cancel());
        gate.open();
        // FINISHED: cannot be cancelled.
        let finished = pool.spawn(|| 2);
        assert!(finished.wait_timeout(std::time::Duration::from_secs(60)));
        assert!(!finished.cancel());
        assert!(!finished.cancelled());
        // RUNNING: Python refuses; concertina cancels (its flag turns true).
        let started = Gate::new();
        let s = started.clone();
        let running = pool.spawn(move || {
            s.open();
            while !concertina::cancelled() {
                std::thread::yield_now();
            }
        });
        started.wait();
        assert!(running.cancel());
        assert_eq!(running.result(), Err(Error::Cancelled));
    }
}

#[test]
fn test_result_with_cancel() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let (f, gate, _b) = held(&pool, 1);
        f.cancel();
        assert_eq!(f.result(), Err(Error::Cancelled));
        gate.open();
    }
}

#[test]
fn test_map_keeps_submission_order() {
    let futures: Vec<_> = (0..10).map(|i| concertina::spawn(move || i * 2)).collect();
    let results: Vec<i32> = futures.into_iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(results, (0..10).map(|i| i * 2).collect::<Vec<_>>());
}

#[test]
fn test_submit_after_shutdown() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        pool.shutdown();
        assert_eq!(pool.spawn(|| 1).result(), Err(Error::Shutdown));
    }
}

#[test]
fn test_cancel_futures_on_shutdown() {
    // shutdown(cancel_futures=True): queued work never runs.
    for backend in THREADED {
        let pool = pool(backend, 1);
        let started = Gate::new();
        let (s, release) = (started.clone(), Gate::new());
        let r = release.clone();
        let running = pool.spawn(move || {
            s.open();
            r.wait();
        });
        started.wait();
        let ran = Arc::new(AtomicUsize::new(0));
        let queued: Vec<_> = (0..10)
            .map(|_| {
                let ran = ran.clone();
                pool.spawn(move || {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        let p = pool.clone();
        let closer = std::thread::spawn(move || p.shutdown_now());
        while !pool.is_shutdown() {
            std::thread::yield_now();
        }
        release.open();
        closer.join().unwrap();
        assert_eq!(running.result(), Ok(()));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "{backend:?}");
        assert!(queued
            .into_iter()
            .all(|f| f.result() == Err(Error::Shutdown)));
    }
}
