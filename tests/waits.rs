//! A wait never runs unrelated work: pipelines and acyclic graphs across
//! one-thread pools finish, a mutex or a device lock held across a wait
//! stays exclusive, and a blocked worker is compensated by a spare thread.
//! Every scenario runs under a watchdog, so a hang fails the test.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{pool, within, Gate, THREADED};
use concertina::{Backend, Device, Future, Parameter, Pool};

/// A slow read already running on another pool (so that a wait on it
/// cannot claim it: it blocks), finished when the gate opens.
fn running_read(elsewhere: &Pool, gate: &Gate) -> Future<u32> {
    let read = slow_read(elsewhere, gate);
    while !read.running() {
        std::thread::yield_now();
    }
    read
}

/// A slow read on another pool, finished when the gate opens.
fn slow_read(elsewhere: &Pool, gate: &Gate) -> Future<u32> {
    let g = gate.clone();
    elsewhere.spawn(move || {
        g.wait();
        7
    })
}

#[test]
fn a_pipeline_on_a_one_thread_pool_finishes() {
    for backend in THREADED {
        within(60, move || {
            let stages = pool(backend, 1);
            let reader = common::pool(Backend::Crossbeam, 1);
            let gate = Gate::new();
            let read = slow_read(&reader, &gate);
            // Stage 1 waits on the read; stage 2, queued behind it, waits on stage 1.
            let stage1 = stages.spawn(move || read.result().unwrap() * 2);
            let done = stage1.when_done();
            let stage2 = stages.spawn(move || done.result().is_ok());
            gate.open();
            assert_eq!(stage2.result(), Ok(true), "{backend:?}");
            assert_eq!(stage1.result(), Ok(14), "{backend:?}");
        });
    }
}

#[test]
fn an_acyclic_graph_across_two_one_thread_pools_finishes() {
    for backend in THREADED {
        within(60, move || {
            let (p, q) = (pool(backend, 1), pool(backend, 1));
            let gate = Gate::new();
            let g = gate.clone();
            // q2 waits on the gate; p2 waits on q2; q1 waits on p2; p1 waits on q1.
            let q2 = q.spawn(move || {
                g.wait();
                1
            });
            let p2 = p.spawn(move || q2.result().unwrap() + 1);
            let q1 = q.spawn(move || p2.result().unwrap() + 1);
            let p1 = p.spawn(move || q1.result().unwrap() + 1);
            gate.open();
            assert_eq!(p1.result(), Ok(4), "{backend:?}");
        });
    }
}

/// Runs a body while holding something exclusive.
type Hold = Arc<dyn Fn(&mut dyn FnMut()) + Send + Sync>;

/// On a one-thread pool: a task holds `hold` across a wait on a slow read
/// from another pool; a task queued behind it wants `hold` too. Returns the
/// order in which they were inside.
fn held_across_a_wait(backend: Backend, hold: Hold) -> Vec<&'static str> {
    let workers = pool(backend, 1);
    let reader = common::pool(Backend::Crossbeam, 1);
    let gate = Gate::new();
    let read = slow_read(&reader, &gate);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (holder_log, other_log) = (log.clone(), log.clone());
    let (holder_hold, other_hold) = (hold.clone(), hold);
    let (started_tx, started) = std::sync::mpsc::channel();
    let holder = workers.spawn(move || {
        let mut read = Some(read);
        holder_hold(&mut || {
            holder_log.lock().unwrap().push("holder in");
            started_tx.send(()).unwrap();
            assert_eq!(read.take().map(Future::result), Some(Ok(7)));
            holder_log.lock().unwrap().push("holder out");
        });
    });
    started.recv().unwrap();
    let other = workers.spawn(move || {
        other_hold(&mut || other_log.lock().unwrap().push("other"));
    });
    gate.open();
    holder.result().unwrap();
    other.result().unwrap();
    let order = log.lock().unwrap().clone();
    order
}

#[test]
fn a_mutex_held_across_a_wait_stays_exclusive() {
    for backend in THREADED {
        let order = within(60, move || {
            let mutex = Arc::new(Mutex::new(()));
            held_across_a_wait(
                backend,
                Arc::new(move |body| {
                    let _held = mutex.lock().unwrap();
                    body();
                }),
            )
        });
        assert_eq!(order, ["holder in", "holder out", "other"], "{backend:?}");
    }
}

#[test]
fn a_device_lock_held_across_a_wait_stays_exclusive() {
    for backend in THREADED {
        let order = within(60, move || {
            let position = Parameter::<f64>::builder("position")
                .setter(|_| {})
                .build()
                .unwrap();
            let motor = Device::builder("motor")
                .parameter(position)
                .build()
                .unwrap();
            held_across_a_wait(
                backend,
                Arc::new(move |body| {
                    let _held = concertina::lock!(motor).unwrap();
                    body();
                }),
            )
        });
        assert_eq!(
            order,
            ["holder in", "holder out", "other"],
            "{backend:?}: the second locker never entered the holder's section"
        );
    }
}

#[test]
fn a_task_spawned_from_an_instance_call_may_call_that_instance() {
    for backend in THREADED {
        within(60, move || {
            let workers = pool(backend, 1);
            let model = workers.instance(5u32);
            let (inner, p) = (model.clone(), workers.clone());
            let spawned = model
                .spawn(move |n| {
                    *n += 1;
                    let again = inner.clone();
                    p.spawn(move || again.call(|n| *n * 10))
                })
                .result()
                .unwrap();
            assert_eq!(spawned.result(), Ok(Ok(60)), "{backend:?}");
        });
    }
}

fn ping(here: Pool, there: Pool, depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    let (a, b) = (here.clone(), there.clone());
    there.spawn(move || ping(b, a, depth - 1)).result().unwrap() + 1
}

#[test]
fn ping_pong_between_two_one_thread_pools_goes_ten_thousand_deep() {
    for backend in THREADED {
        within(300, move || {
            let (p, q) = (pool(backend, 1), pool(backend, 1));
            let (a, b) = (p.clone(), q.clone());
            assert_eq!(
                p.spawn(move || ping(a, b, 10_000)).result(),
                Ok(10_000),
                "{backend:?}"
            );
        });
    }
}

#[test]
fn a_blocked_worker_is_compensated_by_a_named_spare_thread_that_retires() {
    for backend in THREADED {
        within(60, move || {
            let workers = Pool::builder()
                .threads(1)
                .backend(backend)
                .name("comp")
                .spare_keep_alive(Duration::from_millis(20))
                .build()
                .unwrap();
            let reader = common::pool(Backend::Crossbeam, 1);
            let gate = Gate::new();
            let read = running_read(&reader, &gate);
            let (started_tx, started) = std::sync::mpsc::channel();
            let blocked = workers.spawn(move || {
                started_tx.send(()).unwrap();
                read.result().unwrap()
            });
            started.recv().unwrap();
            // Runs while the only worker is blocked, on a spare thread.
            let name = workers.spawn(|| std::thread::current().name().map(String::from));
            let name = name.result().unwrap().unwrap();
            assert!(name.starts_with("concertina-comp-"), "{backend:?}: {name}");
            assert_ne!(name, "concertina-comp-0", "{backend:?}");
            gate.open();
            assert_eq!(blocked.result(), Ok(7));
            while workers.spare_threads() > 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    }
}

#[test]
fn a_one_thread_pool_starts_one_task_at_a_time() {
    for backend in THREADED {
        let workers = pool(backend, 1);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                workers.spawn(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(1));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        concertina::wait_all(tasks);
        assert_eq!(most.load(Ordering::SeqCst), 1, "{backend:?}");
    }
}

#[test]
fn dropping_a_pools_last_handle_inside_a_task_it_waits_on_does_not_hang() {
    for backend in THREADED {
        within(60, move || {
            let a = pool(backend, 1);
            let b = pool(backend, 1);
            let last = a.clone();
            let gate = Gate::new();
            let g = gate.clone();
            let b1 = b.spawn(move || {
                g.wait();
                drop(last);
                "dropped"
            });
            let a1 = a.spawn(move || b1.result());
            drop(a);
            gate.open();
            assert_eq!(a1.result(), Ok(Ok("dropped")), "{backend:?}");
        });
    }
}

#[test]
fn shutdown_while_a_worker_waits_joins_the_spares_too() {
    for backend in THREADED {
        within(60, move || {
            let workers = Pool::builder()
                .threads(1)
                .backend(backend)
                .name(format!("sd{}", u8::from(backend == Backend::Rayon)))
                .build()
                .unwrap();
            let reader = common::pool(Backend::Crossbeam, 1);
            let gate = Gate::new();
            let read = running_read(&reader, &gate);
            let blocked = workers.spawn(move || read.result().unwrap());
            // A task behind the blocked one runs on a spare.
            workers.spawn(|| ()).result().unwrap();
            assert!(workers.spare_threads() >= 1, "{backend:?}");
            let closer = {
                let workers = workers.clone();
                std::thread::spawn(move || workers.shutdown())
            };
            gate.open();
            closer.join().unwrap();
            assert_eq!(blocked.result(), Ok(7), "{backend:?}");
            assert_eq!(workers.spare_threads(), 0, "{backend:?}");
        });
    }
}

#[test]
fn a_cancel_racing_a_claim_settles_once_and_never_hangs() {
    for backend in THREADED {
        within(120, move || {
            let workers = pool(backend, 1);
            for _ in 0..500 {
                let (tx, rx) = std::sync::mpsc::channel();
                let p = workers.clone();
                let parent = workers.spawn(move || {
                    let child = p.spawn(|| 5u8);
                    tx.send(child.cancel_handle()).unwrap();
                    child.result()
                });
                let handle = rx.recv().unwrap();
                let won = handle.cancel();
                match parent.result().unwrap() {
                    Ok(5) => assert!(!won, "{backend:?}"),
                    Err(concertina::Error::Cancelled) => assert!(won, "{backend:?}"),
                    other => panic!("{backend:?}: {other:?}"),
                }
            }
        });
    }
}

#[test]
fn without_spare_threads_a_wait_still_claims_what_it_waits_on() {
    for backend in THREADED {
        within(60, move || {
            let workers = Pool::builder()
                .threads(1)
                .backend(backend)
                .max_spare_threads(0)
                .build()
                .unwrap();
            let p = workers.clone();
            let parent = workers.spawn(move || p.spawn(|| 20).result().unwrap() + 1);
            assert_eq!(parent.result(), Ok(21), "{backend:?}");
            assert_eq!(workers.spare_threads(), 0, "{backend:?}");
        });
    }
}
