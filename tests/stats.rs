//! `Pool::stats` and the thread hooks `on_thread_start`/`on_thread_stop`.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{pool, within, Gate, THREADED};
use concertina::{Backend, Error, Pool};

#[test]
fn stats_follow_a_task_from_queued_to_completed() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let gate = Gate::new();
        let started = Gate::new();
        let (g, s) = (gate.clone(), started.clone());
        let first = pool.spawn(move || {
            s.open();
            g.wait();
        });
        started.wait();
        let queued: Vec<_> = (0..3).map(|i| pool.spawn(move || i)).collect();
        let stats = pool.stats();
        assert_eq!(stats.threads, 1, "{backend:?}");
        assert_eq!(stats.submitted, 4);
        assert_eq!(stats.running, 1);
        assert_eq!(stats.queued, 3);
        assert_eq!(stats.completed, 0);
        gate.open();
        first.result().unwrap();
        assert_eq!(concertina::wait_all(queued), [Ok(0), Ok(1), Ok(2)]);
        let stats = pool.stats();
        assert_eq!((stats.queued, stats.running, stats.completed), (0, 0, 4));
        assert_eq!((stats.panicked, stats.cancelled, stats.rejected), (0, 0, 0));
    }
}

#[test]
fn stats_count_panics_cancels_and_shutdown_refusals() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let _ = pool.spawn(|| -> u8 { panic!("probe") }).result();
        let gate = Gate::new();
        let started = Gate::new();
        let (g, s) = (gate.clone(), started.clone());
        let running = pool.spawn(move || {
            s.open();
            while !concertina::cancelled() {
                std::thread::yield_now();
            }
            g.wait();
        });
        started.wait();
        let queued = pool.spawn(|| ());
        assert!(queued.cancel());
        assert!(running.cancel());
        gate.open();
        let _ = (running.result(), queued.result());
        let late_queued = {
            let blocker_gate = Gate::new();
            let (g, running) = (blocker_gate.clone(), Gate::new());
            let r = running.clone();
            let blocker = pool.spawn(move || {
                r.open();
                g.wait()
            });
            running.wait();
            let late = pool.spawn(|| ());
            let pool2 = pool.clone();
            let stopper = std::thread::spawn(move || pool2.shutdown_now());
            // Wait until shutdown_now has discarded the queue, then release.
            while !pool.spawn(|| ()).done() {
                std::thread::yield_now();
            }
            blocker_gate.open();
            stopper.join().unwrap();
            blocker.result().unwrap();
            late
        };
        assert_eq!(late_queued.result(), Err(Error::Shutdown));
        let stats = pool.stats();
        assert_eq!(stats.panicked, 1, "{backend:?}: {stats:?}");
        assert_eq!(stats.cancelled, 2, "one queued, one running: {stats:?}");
        assert!(
            stats.rejected >= 2,
            "the discarded task and the refused ones: {stats:?}"
        );
        assert_eq!(stats.queued, 0, "{stats:?}");
        assert_eq!(stats.running, 0, "{stats:?}");
    }
}

#[test]
fn stats_show_a_blocked_worker_and_its_spare() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let gate = Gate::new();
        let g = gate.clone();
        let inner = std::thread::spawn({
            let pool = pool.clone();
            move || {
                // A task on another thread's pool, for the worker to wait on.
                let other = concertina::Pool::builder()
                    .threads(1)
                    .backend(Backend::Crossbeam)
                    .build()
                    .unwrap();
                let started = Gate::new();
                let s = started.clone();
                let blocker = other.spawn(move || {
                    s.open();
                    g.wait()
                });
                // Running, not queued: the wait below cannot claim it.
                started.wait();
                pool.spawn(move || blocker.result()).result()
            }
        });
        while pool.stats().blocked == 0 {
            std::thread::yield_now();
        }
        let stats = pool.stats();
        assert_eq!((stats.blocked, stats.running), (1, 1), "{backend:?}");
        // The blocked worker is compensated while tasks wait.
        assert_eq!(
            within(60, {
                let pool = pool.clone();
                move || pool.spawn(|| 5).result()
            }),
            Ok(5)
        );
        assert!(pool.stats().spare_threads >= 1);
        gate.open();
        assert_eq!(inner.join().unwrap(), Ok(Ok(())));
    }
}

#[test]
fn stats_count_inline_scope_and_then_tasks() {
    let inline = pool(Backend::Inline, 1);
    inline.spawn(|| ()).result().unwrap();
    let _ = inline.spawn(|| -> u8 { panic!("inline") }).result();
    let stats = inline.stats();
    assert_eq!(
        (
            stats.threads,
            stats.submitted,
            stats.completed,
            stats.panicked
        ),
        (0, 2, 2, 1)
    );

    let pool = pool(Backend::Crossbeam, 2);
    let data = [1, 2, 3];
    pool.scope(|s| {
        for x in &data {
            drop(s.spawn(move || x * 2));
        }
    });
    let gate = Gate::new();
    let g = gate.clone();
    // Held back so that `then` is registered first: the continuation then
    // goes to the pool as a task of its own.
    let second = pool
        .spawn(move || {
            g.wait();
            1
        })
        .then(|x| x + 1);
    gate.open();
    assert_eq!(second.result(), Ok(2));
    let stats = pool.stats();
    assert_eq!(
        stats.submitted, 5,
        "three scope tasks, a task and its then: {stats:?}"
    );
    assert_eq!(stats.completed, 5);
}

#[test]
fn thread_hooks_run_on_every_thread_of_the_pool() {
    for backend in THREADED {
        let started = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicUsize::new(0));
        let (s, t) = (started.clone(), stopped.clone());
        let pool = Pool::builder()
            .threads(2)
            .backend(backend)
            .name("hooked")
            .spare_keep_alive(std::time::Duration::from_millis(1))
            .on_thread_start(move || {
                let name = std::thread::current().name().map(String::from);
                s.lock().unwrap().push(name.unwrap_or_default());
            })
            .on_thread_stop(move || {
                t.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        // The start hook runs before the thread takes a task.
        let names: BTreeSet<String> = (0..4)
            .map(|_| pool.spawn(|| std::thread::current().name().unwrap().to_owned()))
            .collect::<Vec<_>>()
            .into_iter()
            .map(|f| f.result().unwrap())
            .collect();
        let seen: BTreeSet<String> = started.lock().unwrap().iter().cloned().collect();
        assert!(names.is_subset(&seen), "{backend:?}: {names:?} ⊄ {seen:?}");
        // A scope's threads run the hooks too.
        let in_scope = pool.scope(|s| {
            s.spawn(|| std::thread::current().name().map(String::from))
                .result()
        });
        assert_eq!(in_scope, Ok(Some("concertina-hooked-scope-1".into())));
        let names = started.lock().unwrap().clone();
        assert!(
            names.contains(&"concertina-hooked-scope-1".to_owned()),
            "{backend:?}: {names:?}"
        );
        pool.shutdown();
        let starts = started.lock().unwrap().len();
        assert_eq!(
            stopped.load(Ordering::SeqCst),
            starts,
            "{backend:?}: every thread that started stopped"
        );
    }
}

#[test]
fn a_spare_thread_runs_the_hooks_and_a_panicking_hook_spares_the_pool() {
    let starts = Arc::new(AtomicUsize::new(0));
    let s = starts.clone();
    let pool = Pool::builder()
        .threads(1)
        .backend(Backend::Crossbeam)
        .name("fragile")
        .on_thread_start(move || {
            s.fetch_add(1, Ordering::SeqCst);
            panic!("hook failed");
        })
        .build()
        .unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let other = common::pool(Backend::Crossbeam, 1);
    let running = Gate::new();
    let r = running.clone();
    let blocker = other.spawn(move || {
        r.open();
        g.wait()
    });
    running.wait();
    let p = pool.clone();
    // The worker blocks on `blocker`; a spare runs the second task.
    let waiting = pool.spawn(move || blocker.result());
    let second = within(60, move || p.spawn(|| "ran").result());
    assert_eq!(second, Ok("ran"));
    assert!(starts.load(Ordering::SeqCst) >= 2, "worker and spare");
    gate.open();
    assert_eq!(waiting.result(), Ok(Ok(())));
}

#[test]
fn counts_survive_the_threads_and_follow_a_task_run_by_another_pools_wait() {
    for backend in THREADED {
        let a = pool(backend, 1);
        let b = pool(backend, 1);
        // Pool b's only worker is held, so its next task stays queued until
        // a worker of pool a waits on it and runs it there.
        let gate = Gate::new();
        let (g, started) = (gate.clone(), Gate::new());
        let s = started.clone();
        let holder = b.spawn(move || {
            s.open();
            g.wait();
        });
        started.wait();
        let queued_on_b = b.spawn(|| 6 * 7);
        assert_eq!(b.stats().queued, 1);
        assert_eq!(a.spawn(move || queued_on_b.result()).result(), Ok(Ok(42)));
        let stats = b.stats();
        assert_eq!(
            (stats.completed, stats.running),
            (1, 1),
            "{backend:?}: {stats:?}"
        );
        gate.open();
        holder.result().unwrap();
        b.shutdown();
        let stats = b.stats();
        assert_eq!(
            (stats.submitted, stats.completed),
            (2, 2),
            "after its threads left: {stats:?}"
        );
        assert_eq!((stats.queued, stats.running), (0, 0));
        assert_eq!(a.stats().completed, 1, "a counts only its own task");
    }
}
