//! `scope`: tasks that borrow from the caller's stack.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{pool, within, Gate, THREADED};
use concertina::{Backend, Error};

#[test]
fn tasks_borrow_and_mutate_the_callers_data() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let mut data: Vec<u64> = (0..64).collect();
        let factor = 3;
        let sums: Vec<u64> = pool.scope(|s| {
            let futures: Vec<_> = data
                .chunks_mut(16)
                .map(|chunk| {
                    s.spawn(move || {
                        chunk.iter_mut().for_each(|x| *x *= factor);
                        chunk.iter().sum::<u64>()
                    })
                })
                .collect();
            concertina::try_wait_all(futures).expect("none fails")
        });
        assert_eq!(
            sums.iter().sum::<u64>(),
            3 * (0..64).sum::<u64>(),
            "{backend:?}"
        );
        assert_eq!(data[63], 189);
    }
}

#[test]
fn the_scope_returns_only_once_every_task_has_finished() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let finished = AtomicUsize::new(0);
        pool.scope(|s| {
            for _ in 0..16 {
                // Futures dropped: the scope still waits for the tasks.
                drop(s.spawn(|| {
                    for _ in 0..200 {
                        std::thread::yield_now();
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                }));
            }
        });
        assert_eq!(finished.load(Ordering::SeqCst), 16, "{backend:?}");
    }
}

#[test]
fn no_more_tasks_than_the_pools_threads_run_at_once() {
    let pool = pool(Backend::Crossbeam, 2);
    let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
    pool.scope(|s| {
        for _ in 0..12 {
            drop(s.spawn(|| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                for _ in 0..500 {
                    std::thread::yield_now();
                }
                running.fetch_sub(1, Ordering::SeqCst);
            }));
        }
    });
    assert!(most.load(Ordering::SeqCst) <= 2, "{most:?}");
}

#[test]
fn a_task_waiting_on_a_task_queued_behind_it_is_compensated() {
    let pool = pool(Backend::Crossbeam, 1);
    let outcome = within(60, move || {
        pool.scope(|s| {
            let (send, receive) = std::sync::mpsc::channel::<concertina::Future<&str>>();
            let first = s.spawn(move || receive.recv().unwrap().result());
            // Queued behind `first` on a one-thread scope: `first` waits on
            // it, which blocks that thread, and the scope starts another.
            let second = s.spawn(|| "second");
            send.send(second).unwrap();
            first.result()
        })
    });
    assert_eq!(outcome, Ok(Ok("second")));
}

#[test]
fn a_panicking_task_fails_alone() {
    let pool = pool(Backend::Rayon, 2);
    let (bad, good) = pool.scope(|s| {
        let bad = s.spawn(|| -> u8 { panic!("pixel overflow") });
        let good = s.spawn(|| 1u8);
        (bad.result(), good.result())
    });
    assert_eq!(bad, Err(Error::Panicked("pixel overflow".into())));
    assert_eq!(good, Ok(1));
}

#[test]
fn a_panicking_body_still_waits_for_its_tasks_then_panics() {
    let pool = pool(Backend::Crossbeam, 2);
    let finished = AtomicUsize::new(0);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        pool.scope(|s| {
            for _ in 0..4 {
                drop(s.spawn(|| {
                    for _ in 0..200 {
                        std::thread::yield_now();
                    }
                    finished.fetch_add(1, Ordering::SeqCst);
                }));
            }
            panic!("body failed");
        })
    }));
    assert!(caught.is_err());
    assert_eq!(finished.load(Ordering::SeqCst), 4);
}

#[test]
fn a_queued_task_cancelled_never_runs_and_a_running_one_sees_cancelled() {
    let pool = pool(Backend::Crossbeam, 1);
    let ran = AtomicUsize::new(0);
    let started = Gate::new();
    let outcome = pool.scope(|s| {
        let running = s.spawn(|| {
            started.open();
            while !concertina::cancelled() {
                std::thread::yield_now();
            }
            "saw cancel"
        });
        let queued = s.spawn(|| ran.fetch_add(1, Ordering::SeqCst));
        assert!(queued.cancel());
        started.wait();
        assert!(running.cancel());
        (running.result(), queued.result())
    });
    assert_eq!(outcome, (Err(Error::Cancelled), Err(Error::Cancelled)));
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn scope_threads_are_named_after_the_pool() {
    let pool = concertina::Pool::builder()
        .threads(1)
        .backend(Backend::Crossbeam)
        .name("stitcher")
        .build()
        .unwrap();
    let name = pool.scope(|s| {
        s.spawn(|| std::thread::current().name().map(String::from))
            .result()
    });
    assert_eq!(name, Ok(Some("concertina-stitcher-scope-1".into())));
}

#[test]
fn on_the_inline_backend_each_task_runs_where_it_is_spawned() {
    let pool = pool(Backend::Inline, 1);
    let here = std::thread::current().id();
    let mut log = Vec::new();
    pool.scope(|s| {
        let f = s.spawn(|| {
            log.push(1);
            std::thread::current().id()
        });
        assert!(f.done(), "ran at spawn");
        assert_eq!(f.result(), Ok(here));
    });
    assert_eq!(log, [1]);
    // The default-pool form, in either mode.
    let total = concertina::scope(|s| s.spawn(|| log.len()).result());
    assert_eq!(total, Ok(1));
}

#[test]
fn a_scope_inside_a_task_of_a_one_thread_pool_finishes() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let p = pool.clone();
        let outcome = within(60, move || {
            p.spawn({
                let p = p.clone();
                move || {
                    let data = [1u32, 2, 3];
                    p.scope(|s| {
                        let futures: Vec<_> = data
                            .iter()
                            .map(|x| {
                                let p = p.clone();
                                // Each waits on a task queued on the pool
                                // whose only worker waits for the scope.
                                let x = *x;
                                s.spawn(move || p.spawn(move || x * 2).result())
                            })
                            .collect();
                        concertina::try_wait_all(futures)
                    })
                }
            })
            .result()
        });
        let values = outcome.expect("the task ran").expect("none failed");
        assert_eq!(values, [Ok(2), Ok(4), Ok(6)], "{backend:?}");
    }
}

/// Two scope tasks that wait on each other's futures — directly, or one of
/// them through a `then` — close a cycle: one of the waits reports
/// `Deadlock` (the other then gets the error passed on), and the scope
/// returns.
#[test]
fn two_scope_tasks_waiting_on_each_other_report_a_deadlock() {
    type Slot = std::sync::OnceLock<concertina::Shared<Result<u32, String>>>;
    fn wait_on(slot: &Slot, through_then: bool) -> Result<u32, String> {
        let other = slot.get().expect("spawned before the gate opened");
        let waited = if through_then {
            other.to_future().then(|v| v).result()
        } else {
            other.result()
        };
        match waited {
            Ok(inner) => inner.map(|v| v + 1),
            Err(error) => Err(format!("{error:?}")),
        }
    }
    for (backend, threads, through_then) in THREADED
        .into_iter()
        .flat_map(|b| [(b, 1, false), (b, 2, false), (b, 1, true), (b, 2, true)])
    {
        for _ in 0..20 {
            let outcome = within(60, move || {
                let pool = pool(backend, threads);
                let slots: [Slot; 2] = Default::default();
                let gate = Gate::new();
                pool.scope(|s| {
                    let (slots, gate) = (&slots, &gate);
                    let a = s
                        .spawn(move || {
                            gate.wait();
                            wait_on(&slots[1], through_then)
                        })
                        .shared();
                    let b = s
                        .spawn(move || {
                            gate.wait();
                            wait_on(&slots[0], false)
                        })
                        .shared();
                    let _ = slots[0].set(a.clone());
                    let _ = slots[1].set(b.clone());
                    gate.open();
                    (a.result(), b.result())
                })
            });
            let text = format!("{outcome:?}");
            assert!(
                text.contains("Deadlock"),
                "{backend:?}, {threads} threads, through then: {through_then}: {text}"
            );
        }
    }
}

/// A cycle through a scope's ending: a pool task opens a scope whose task
/// waits on a second pool task, which waits on the first. The scope's wait
/// for its task is in the wait graph, so the cycle is reported and both
/// pool tasks end.
#[test]
fn a_cycle_through_the_end_of_a_scope_is_reported() {
    type Slot = std::sync::OnceLock<concertina::Shared<Result<u32, String>>>;
    fn wait_on(slot: &Slot) -> Result<u32, String> {
        match slot.get().expect("set before the gate opened").result() {
            Ok(inner) => inner.map(|v| v + 1),
            Err(error) => Err(format!("{error:?}")),
        }
    }
    for backend in THREADED.into_iter().flat_map(|b| [b; 10]) {
        let outcome = within(60, move || {
            let pool = pool(backend, 2);
            let slots: std::sync::Arc<[Slot; 2]> = Default::default();
            let gate = std::sync::Arc::new(Gate::new());
            let opener = {
                let (pool, slots, gate) = (pool.clone(), slots.clone(), gate.clone());
                pool.clone().spawn(move || {
                    pool.scope(|s| {
                        s.spawn(|| {
                            gate.wait();
                            wait_on(&slots[1])
                        })
                        .result()
                        .unwrap_or_else(|error| Err(format!("{error:?}")))
                    })
                })
            }
            .shared();
            let other = {
                let (slots, gate) = (slots.clone(), gate.clone());
                pool.spawn(move || {
                    gate.wait();
                    wait_on(&slots[0])
                })
            }
            .shared();
            let _ = slots[0].set(opener.clone());
            let _ = slots[1].set(other.clone());
            gate.open();
            (opener.result(), other.result())
        });
        let text = format!("{outcome:?}");
        assert!(text.contains("Deadlock"), "{backend:?}: {text}");
    }
}
