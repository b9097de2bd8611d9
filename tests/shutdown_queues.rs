//! Shutting a pool down settles every future of every queue on it: a
//! call queued on an instance, an operation queued on a parameter, a task
//! queued on the pool — each runs or fails with `Shutdown`; none is left
//! pending.

mod common;

use common::{within, Gate, THREADED};
use concertina::{Error, Parameter, Pool};

/// Shuts `pool` down from another thread while `gate` holds its running
/// work, then opens the gate and waits for the shutdown to end.
fn shut_down_now_then_open(pool: &Pool, gate: &Gate) {
    let stopper = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.shutdown_now())
    };
    while !pool.is_shutdown() {
        std::thread::yield_now();
    }
    gate.open();
    stopper.join().unwrap();
}

#[test]
fn shutdown_now_settles_every_call_queued_on_an_instance() {
    for backend in THREADED {
        within(60, move || {
            let pool = common::pool(backend, 1);
            let model = pool.instance(0_u32);
            let gate = Gate::new();
            let g = gate.clone();
            let (started_tx, started) = std::sync::mpsc::channel();
            let first = model.spawn(move |n| {
                started_tx.send(()).unwrap();
                g.wait();
                *n += 1;
                *n
            });
            started.recv().unwrap();
            let queued: Vec<_> = (0..1_000)
                .map(|_| {
                    model.spawn(|n| {
                        *n += 1;
                        *n
                    })
                })
                .collect();
            shut_down_now_then_open(&pool, &gate);
            assert_eq!(
                first.result(),
                Ok(1),
                "{backend:?}: the running call finishes"
            );
            let outcomes = concertina::wait_all(queued);
            assert!(
                outcomes.iter().all(|o| *o == Err(Error::Shutdown)),
                "{backend:?}: queued calls fail with Shutdown: {:?}",
                outcomes.iter().find(|o| **o != Err(Error::Shutdown))
            );
            assert_eq!(
                model.call(|n| *n),
                Err(Error::Shutdown),
                "{backend:?}: later calls"
            );
        });
    }
}

#[test]
fn shutdown_now_settles_every_operation_queued_on_a_parameter() {
    for backend in THREADED {
        within(60, move || {
            let pool = common::pool(backend, 1);
            let gate = Gate::new();
            let g = gate.clone();
            let (started_tx, started) = std::sync::mpsc::channel();
            let started_tx = std::sync::Mutex::new(Some(started_tx));
            let position = Parameter::builder("position")
                .pool(&pool)
                .setter(move |_mm: f64| {
                    if let Some(tx) = started_tx.lock().unwrap().take() {
                        tx.send(()).unwrap();
                        g.wait();
                    }
                })
                .getter(|| 0.0)
                .build()
                .unwrap();
            let first = position.set(1.0);
            started.recv().unwrap();
            let queued: Vec<_> = (0..200).map(|i| position.set(f64::from(i))).collect();
            let reads: Vec<_> = (0..200).map(|_| position.get()).collect();
            shut_down_now_then_open(&pool, &gate);
            assert_eq!(first.result(), Ok(()), "{backend:?}");
            for outcome in concertina::wait_all(queued) {
                assert_eq!(outcome, Err(Error::Shutdown), "{backend:?}");
            }
            for outcome in concertina::wait_all(reads) {
                assert_eq!(outcome, Err(Error::Shutdown), "{backend:?}");
            }
            assert_eq!(position.get().result(), Err(Error::Shutdown), "{backend:?}");
        });
    }
}

#[test]
fn shutdown_now_settles_calls_waiting_on_a_dependency_and_tasks_queued_behind_a_gate() {
    for backend in THREADED {
        within(60, move || {
            let pool = common::pool(backend, 1);
            let other = common::pool(backend, 1);
            let model = pool.instance(0_u32);
            let gate = Gate::new();
            let g = gate.clone();
            let dependency = other.spawn(move || {
                g.wait();
                5_u32
            });
            let after = model.spawn_after(dependency, |n, d| *n + d);
            let g = gate.clone();
            let (started_tx, started) = std::sync::mpsc::channel();
            let blocker = pool.spawn(move || {
                started_tx.send(()).unwrap();
                g.wait();
            });
            started.recv().unwrap();
            let tasks: Vec<_> = (0..100).map(|i| pool.spawn(move || i)).collect();
            // The instance's drain job waits in the pool's queue too.
            let calls: Vec<_> = (0..1_000).map(|_| model.spawn(|n| *n)).collect();
            shut_down_now_then_open(&pool, &gate);
            blocker.result().unwrap();
            assert_eq!(after.result(), Err(Error::Shutdown), "{backend:?}");
            for outcome in concertina::wait_all(tasks) {
                assert_eq!(outcome, Err(Error::Shutdown), "{backend:?}");
            }
            for outcome in concertina::wait_all(calls) {
                assert_eq!(outcome, Err(Error::Shutdown), "{backend:?}");
            }
        });
    }
}

/// `Pool::shutdown()` called by a task of pool B while a task of pool A
/// waits on that very task: waiting for A's threads could never end. The
/// cycle is reported (the shutdown returns without waiting for the
/// threads, or A's wait gets `Deadlock`), never a hang — whether A's task
/// waits before the shutdown begins or after — and A's threads exit once
/// their tasks end.
#[test]
fn a_shutdown_that_would_wait_on_its_own_caller_does_not_hang() {
    for backend in THREADED {
        for waits_first in [true, false] {
            for _ in 0..5 {
                let (a_outcome, b_outcome) = within(60, move || {
                    let a = common::pool(backend, 1);
                    let b = common::pool(backend, 1);
                    let slot =
                        std::sync::Arc::new(std::sync::OnceLock::<concertina::Shared<u32>>::new());
                    let gate = Gate::new();
                    let a_task = {
                        let (slot, gate) = (slot.clone(), gate.clone());
                        a.spawn(move || {
                            gate.wait();
                            if !waits_first {
                                std::thread::sleep(std::time::Duration::from_millis(20));
                            }
                            slot.get().expect("set before the gate opened").result()
                        })
                    };
                    let (started_tx, started) = std::sync::mpsc::channel();
                    let b_task = {
                        let (a, gate) = (a.clone(), gate.clone());
                        b.spawn(move || {
                            // Running on B before A's task waits on it (so
                            // that A's wait cannot run it in place).
                            started_tx.send(()).unwrap();
                            gate.wait();
                            if waits_first {
                                // A's task is blocked in its wait on this one.
                                while a.stats().blocked == 0 {
                                    std::thread::yield_now();
                                }
                            }
                            a.shutdown();
                            7
                        })
                    }
                    .shared();
                    started.recv().unwrap();
                    let _ = slot.set(b_task.clone());
                    gate.open();
                    (a_task.result(), b_task.result())
                });
                let text = format!("{a_outcome:?} {b_outcome:?}");
                assert!(
                    b_outcome == Ok(7) || text.contains("Deadlock"),
                    "{backend:?}, waits first: {waits_first}: {text}"
                );
                assert!(
                    matches!(a_outcome, Ok(Ok(7)) | Ok(Err(Error::Deadlock(_)))),
                    "{backend:?}, waits first: {waits_first}: {text}"
                );
            }
        }
    }
}
