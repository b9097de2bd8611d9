//! Cancellation: queued tasks never run, running tasks see the flag, the
//! cleanup runs at once on the cancelling thread and at most once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{pool, Gate, THREADED};
use concertina::Backend;
use concertina::{Error, Future};

/// Counts drops of the value it is cloned into.
#[derive(Clone, Default)]
struct Drops(Arc<AtomicUsize>);

struct Tracked(Drops);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0 .0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drops {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[test]
fn a_queued_task_cancelled_never_runs_and_its_closure_is_dropped_once() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let release = Gate::new();
        let r = release.clone();
        let blocker = pool.spawn(move || r.wait());
        let ran = Arc::new(AtomicUsize::new(0));
        let drops = Drops::default();
        let (ran2, token) = (ran.clone(), Tracked(drops.clone()));
        let queued = pool.spawn(move || {
            let _token = &token;
            ran2.fetch_add(1, Ordering::SeqCst);
        });
        assert!(queued.cancel(), "{backend:?}");
        assert!(queued.cancelled());
        assert!(queued.done());
        release.open();
        blocker.result().unwrap();
        pool.shutdown();
        assert_eq!(
            ran.load(Ordering::SeqCst),
            0,
            "{backend:?}: the cancelled task ran"
        );
        assert_eq!(
            drops.count(),
            1,
            "{backend:?}: the closure was not dropped exactly once"
        );
        assert_eq!(queued.result(), Err(Error::Cancelled));
    }
}

#[test]
fn a_running_task_sees_the_flag_and_the_cleanup_runs_on_the_cancelling_thread() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let started = Gate::new();
        let s = started.clone();
        let saw_flag = Arc::new(AtomicUsize::new(0));
        let seen = saw_flag.clone();
        let cleanup_thread = Arc::new(parking_lot::Mutex::new(None));
        let ct = cleanup_thread.clone();
        let f = pool
            .spawn(move || {
                s.open();
                while !concertina::cancelled() {
                    std::thread::yield_now();
                }
                seen.fetch_add(1, Ordering::SeqCst);
                "stopped early"
            })
            .on_cancel(move || *ct.lock() = Some(std::thread::current().id()));
        started.wait();
        assert!(f.running());
        assert!(f.cancel(), "{backend:?}");
        assert_eq!(*cleanup_thread.lock(), Some(std::thread::current().id()));
        assert_eq!(
            f.result(),
            Err(Error::Cancelled),
            "the task's late value is not delivered"
        );
        pool.shutdown();
        assert_eq!(
            saw_flag.load(Ordering::SeqCst),
            1,
            "{backend:?}: the task never saw the flag"
        );
    }
}

#[test]
fn a_waiter_blocked_in_result_gets_cancelled_when_another_thread_cancels() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let f = pool.spawn(|| {
            while !concertina::cancelled() {
                std::thread::yield_now();
            }
        });
        let handle = f.cancel_handle();
        let waiter = std::thread::spawn(move || f.result());
        while !handle.done() && !handle.cancel() {}
        assert_eq!(waiter.join().unwrap(), Err(Error::Cancelled), "{backend:?}");
    }
}

#[test]
fn cancelling_a_finished_task_returns_false_and_runs_no_cleanup() {
    let cleanups = Arc::new(AtomicUsize::new(0));
    let c = cleanups.clone();
    let f = concertina::spawn(|| 5).on_cancel(move || {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert!(f.wait_timeout(Duration::from_secs(60)));
    assert!(!f.cancel());
    assert!(!f.cancelled());
    assert_eq!(f.result(), Ok(5));
    assert_eq!(cleanups.load(Ordering::SeqCst), 0);
}

#[test]
fn the_cleanup_runs_once_when_many_threads_cancel_at_once() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        for _ in 0..100 {
            let cleanups = Arc::new(AtomicUsize::new(0));
            let c = cleanups.clone();
            let f = pool
                .spawn(|| {
                    while !concertina::cancelled() {
                        std::thread::yield_now();
                    }
                })
                .on_cancel(move || {
                    c.fetch_add(1, Ordering::SeqCst);
                });
            let barrier = Barrier::new(4);
            let wins: usize = std::thread::scope(|s| {
                let racers: Vec<_> = (0..4)
                    .map(|_| {
                        let handle = f.cancel_handle();
                        let barrier = &barrier;
                        s.spawn(move || {
                            barrier.wait();
                            usize::from(handle.cancel())
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).sum()
            });
            assert_eq!(wins, 1, "{backend:?}");
            assert_eq!(cleanups.load(Ordering::SeqCst), 1, "{backend:?}");
            assert_eq!(f.result(), Err(Error::Cancelled));
        }
    }
}

#[test]
fn cancel_racing_completion_is_consistent() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let mut outcomes = [0usize; 2];
        for i in 0..300u32 {
            let cleanups = Arc::new(AtomicUsize::new(0));
            let c = cleanups.clone();
            let f = pool.spawn(move || i).on_cancel(move || {
                c.fetch_add(1, Ordering::SeqCst);
            });
            let won = f.cancel();
            let result = f.result();
            if won {
                assert_eq!(result, Err(Error::Cancelled));
                assert_eq!(cleanups.load(Ordering::SeqCst), 1);
                outcomes[0] += 1;
            } else {
                assert_eq!(result, Ok(i));
                assert_eq!(cleanups.load(Ordering::SeqCst), 0);
                outcomes[1] += 1;
            }
        }
        assert_eq!(outcomes.iter().sum::<usize>(), 300);
    }
}

#[test]
fn two_cleanups_both_run_in_order_even_when_the_first_panics() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let release = Gate::new();
        let r = release.clone();
        let blocker = pool.spawn(move || r.wait());
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let (o1, o2) = (order.clone(), order.clone());
        let f = pool
            .spawn(|| ())
            .on_cancel(move || {
                o1.lock().push("stop motor");
                panic!("controller did not answer");
            })
            .on_cancel(move || o2.lock().push("close shutter"));
        assert!(f.cancel());
        assert_eq!(*order.lock(), ["stop motor", "close shutter"]);
        assert_eq!(f.result(), Err(Error::Cancelled));
        release.open();
        blocker.result().unwrap();
    }
}

#[test]
fn a_cleanup_registered_after_the_end_never_runs() {
    let cleanups = Arc::new(AtomicUsize::new(0));
    let c = cleanups.clone();
    let f = Future::ready(1).on_cancel(move || {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert!(!f.cancel());
    let c = cleanups.clone();
    let g: Future<()> = Future::failed(Error::Cancelled).on_cancel(move || {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert!(!g.cancel());
    assert_eq!(cleanups.load(Ordering::SeqCst), 0);
}

#[test]
fn the_value_of_a_task_cancelled_while_running_is_dropped() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let drops = Drops::default();
        let (started, release) = (Gate::new(), Gate::new());
        let (s, r, d) = (started.clone(), release.clone(), drops.clone());
        let f = pool.spawn(move || {
            s.open();
            r.wait();
            Tracked(d)
        });
        started.wait();
        assert!(f.cancel());
        release.open();
        assert!(f.result().is_err());
        pool.shutdown();
        assert_eq!(drops.count(), 1, "{backend:?}");
    }
}

#[test]
fn check_cancelled_lets_a_fallible_task_stop_with_the_question_mark() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let started = Gate::new();
        let s = started.clone();
        let f = pool.spawn(move || -> Result<u32, Error> {
            s.open();
            loop {
                concertina::check_cancelled()?;
                std::thread::yield_now();
            }
        });
        started.wait();
        f.cancel();
        assert_eq!(f.try_result(), Err(Error::Cancelled));
    }
    assert_eq!(concertina::check_cancelled(), Ok(()), "outside a task");
    assert!(!concertina::cancelled());
}

#[test]
fn an_inline_task_inside_a_cancelled_task_is_a_task_of_its_own() {
    for backend in THREADED {
        let outer_pool = pool(backend, 1);
        let inline = pool(Backend::Inline, 1);
        let started = Gate::new();
        let s = started.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let f = outer_pool.spawn(move || {
            s.open();
            while !concertina::cancelled() {
                std::thread::yield_now();
            }
            // The outer task is cancelled; a task it runs inline is not.
            let inner = inline.spawn(concertina::cancelled).result();
            tx.send((concertina::cancelled(), inner)).unwrap();
        });
        started.wait();
        assert!(f.cancel());
        assert_eq!(f.result(), Err(Error::Cancelled));
        assert_eq!(
            rx.recv().unwrap(),
            (true, Ok(false)),
            "{backend:?}: the inline task must not report its caller's cancellation"
        );
        outer_pool.shutdown();
    }
}

#[test]
fn then_racing_cancel_never_panics_and_reports_one_outcome() {
    for backend in THREADED {
        let workers = pool(backend, 2);
        for i in 0..2_000u32 {
            let derived = workers.spawn(move || i).then(|v| v + 1);
            let handle = derived.cancel_handle();
            let canceller = std::thread::spawn(move || handle.cancel());
            let outcome = derived.result();
            let won = canceller.join().unwrap();
            match outcome {
                Ok(v) => assert!(!won && v == i + 1, "{backend:?}"),
                Err(Error::Cancelled) => assert!(won, "{backend:?}"),
                other => panic!("{backend:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn futures_derived_from_a_cancelled_future_report_cancelled() {
    for backend in THREADED {
        let workers = pool(backend, 1);
        let gate = Gate::new();
        let g = gate.clone();
        let blocker = workers.spawn(move || g.wait());
        let source = workers.spawn(|| 1u8);
        let (done, then, joined) = (
            source.when_done(),
            source.cancel_handle(),
            workers.spawn(|| 2u8).zip(Future::ready(3u8)),
        );
        let derived = workers.spawn(|| 4u8).then(|v| v);
        assert!(derived.cancel());
        assert!(then.cancel());
        assert!(done.cancelled(), "{backend:?}: when_done");
        assert!(derived.cancelled(), "{backend:?}: then");
        assert_eq!(done.result(), Err(Error::Cancelled));
        let after = source.then(|v| v);
        assert!(after.cancelled(), "{backend:?}: then on a cancelled source");
        assert_eq!(after.result(), Err(Error::Cancelled));
        gate.open();
        blocker.result().unwrap();
        assert_eq!(joined.result(), Ok((2, 3)));
    }
}
