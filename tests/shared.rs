//! `Future::shared`: one task, many readers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{pool, within, Gate, THREADED};
use concertina::{Backend, Error, Future};

#[test]
fn every_clone_gets_the_same_value_and_the_task_runs_once() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let gate = Gate::new();
        let opened = gate.clone();
        let frame = pool
            .spawn(move || {
                opened.wait();
                counted.fetch_add(1, Ordering::SeqCst);
                vec![7u8; 3]
            })
            .shared();
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let frame = frame.clone();
                std::thread::spawn(move || frame.result())
            })
            .collect();
        assert!(!frame.done());
        gate.open();
        for reader in readers {
            assert_eq!(reader.join().unwrap(), Ok(vec![7, 7, 7]), "{backend:?}");
        }
        assert_eq!(frame.result(), Ok(vec![7, 7, 7]), "read again");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_failure_reaches_every_clone() {
    let shared = concertina::spawn(|| -> u8 { panic!("beam lost") }).shared();
    let other = shared.clone();
    assert_eq!(shared.result(), Err(Error::Panicked("beam lost".into())));
    assert_eq!(other.result(), Err(Error::Panicked("beam lost".into())));
    assert!(!other.cancelled());
}

#[test]
fn cancel_from_one_clone_cancels_the_task_for_all_and_runs_its_cleanup_once() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let gate = Gate::new();
        let opened = gate.clone();
        let busy = pool.spawn(move || opened.wait());
        let cleanups = Arc::new(AtomicUsize::new(0));
        let counted = cleanups.clone();
        let queued = pool
            .spawn(|| unreachable!("cancelled before it ran"))
            .on_cancel(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .shared();
        let (a, b) = (queued.clone(), queued.clone());
        assert!(a.cancel(), "{backend:?}");
        assert!(!b.cancel(), "only the first cancel wins");
        assert!(!queued.cancel_handle().cancel());
        assert!(b.cancelled() && b.done());
        assert_eq!(queued.result(), Err(Error::Cancelled));
        assert_eq!(a.result(), Err(Error::Cancelled));
        assert_eq!(cleanups.load(Ordering::SeqCst), 1);
        gate.open();
        busy.result().unwrap();
    }
}

#[test]
fn a_running_task_cancelled_through_a_clone_sees_cancelled() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let started = Gate::new();
        let signal = started.clone();
        let shared = pool
            .spawn(move || {
                signal.open();
                while !concertina::cancelled() {
                    std::thread::yield_now();
                }
                "stopped"
            })
            .shared();
        started.wait();
        let waiter = shared.clone();
        let waiting = std::thread::spawn(move || waiter.result());
        assert!(shared.clone().cancel(), "{backend:?}");
        assert_eq!(waiting.join().unwrap(), Err(Error::Cancelled));
    }
}

#[test]
fn a_worker_waiting_on_a_shared_task_queued_behind_it_runs_it() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let p = pool.clone();
        let outcome = within(60, move || {
            p.spawn({
                let p = p.clone();
                move || {
                    let shared = p.spawn(|| 21).shared();
                    let twice = shared.clone();
                    shared.result().and_then(|a| Ok(a + twice.result()?))
                }
            })
            .result()
        });
        assert_eq!(outcome, Ok(Ok(42)), "{backend:?}");
    }
}

#[test]
fn a_task_waiting_on_a_shared_handle_of_itself_is_a_deadlock() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        type Own = concertina::Shared<Result<u8, Error>>;
        let (send, receive) = std::sync::mpsc::channel::<Own>();
        let outcome = within(60, move || {
            let f: Own = pool
                .spawn(move || receive.recv().unwrap().result().and_then(|inner| inner))
                .shared();
            send.send(f.clone()).unwrap();
            f.result()
        });
        // The task's own wait closes the cycle: it fails with Deadlock, and
        // so does every holder's read.
        assert!(
            matches!(outcome, Err(Error::Deadlock(_))),
            "{backend:?}: {outcome:?}"
        );
    }
}

#[test]
fn to_future_feeds_the_waits_that_take_futures_and_cancels_only_itself() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let gate = Gate::new();
        let opened = gate.clone();
        let shared = pool
            .spawn(move || {
                opened.wait();
                5u32
            })
            .shared();
        let copies = [shared.to_future(), shared.to_future()];
        let dropped = shared.to_future();
        assert!(dropped.cancel());
        assert!(!shared.cancelled(), "{backend:?}: the shared task goes on");
        gate.open();
        assert_eq!(concertina::wait_all(copies), [Ok(5), Ok(5)]);
        assert_eq!(dropped.result(), Err(Error::Cancelled));
        // Once done, it is a finished future.
        assert_eq!(shared.to_future().then(|x| x + 1).result(), Ok(6));
    }
}

#[test]
fn timeouts_and_callbacks_on_a_shared_handle() {
    let pool = pool(Backend::Crossbeam, 1);
    let gate = Gate::new();
    let opened = gate.clone();
    let shared = pool
        .spawn(move || {
            opened.wait();
            'x'
        })
        .shared();
    assert!(!shared.wait_timeout(Duration::from_millis(1)));
    let timed_out = shared
        .result_timeout(Duration::from_millis(1))
        .expect_err("the gate is closed");
    assert_eq!(timed_out.after(), Duration::from_millis(1));
    let (tx, rx) = std::sync::mpsc::channel();
    shared.on_done(move |outcome| tx.send(outcome.clone()).unwrap());
    gate.open();
    assert_eq!(rx.recv().unwrap(), Ok('x'));
    assert_eq!(
        shared.result_timeout(Duration::from_secs(60)).ok(),
        Some(Ok('x'))
    );
    assert!(format!("{shared:?}").starts_with("Shared { state: "));
}

#[test]
fn a_finished_future_shares_without_a_pool() {
    let shared = Future::ready(String::from("dark frame")).shared();
    assert!(shared.done());
    assert_eq!(shared.clone().result().as_deref(), Ok("dark frame"));
}
