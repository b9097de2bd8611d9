//! Pools: the builder's validation, named threads, each backend, shutdown
//! (draining and discarding), adopting a rayon pool.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use common::{pool, Gate, THREADED};
use concertina::{Backend, Error, Pool};

#[test]
fn the_builder_refuses_bad_values_with_clear_messages() {
    let cases: [(concertina::pool::PoolBuilder, &str); 6] = [
        (
            Pool::builder().threads(0),
            "thread count 0 is not accepted: expected a whole number from 1 to 4096",
        ),
        (
            Pool::builder().threads(5000),
            "thread count 5000 is not accepted: expected a whole number from 1 to 4096",
        ),
        (
            Pool::builder().name(""),
            "pool name \"\" is not accepted: expected 1 to 64 characters without NUL",
        ),
        (
            Pool::builder().name("a\0b"),
            "pool name \"a\\0b\" is not accepted: expected 1 to 64 characters without NUL",
        ),
        (
            Pool::builder().name("x".repeat(65)),
            &format!(
                "pool name {:?} is not accepted: expected 1 to 64 characters without NUL",
                "x".repeat(65)
            ),
        ),
        (
            Pool::builder().stack_size(100),
            "stack size 100 bytes is not accepted: expected at least 16384 bytes",
        ),
    ];
    for (builder, message) in cases {
        let err: concertina::error::ConfigError =
            builder.backend(Backend::Crossbeam).build().unwrap_err();
        assert_eq!(err.to_string(), message);
        // `?` turns it into the crate's error.
        assert!(matches!(Error::from(err), Error::Config(_)));
    }
}

#[test]
fn worker_threads_are_named_after_the_pool() {
    for backend in THREADED {
        let pool = Pool::builder()
            .threads(2)
            .backend(backend)
            .name("detector")
            .build()
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let names: BTreeSet<String> = (0..2)
            .map(|_| {
                let b = barrier.clone();
                pool.spawn(move || {
                    b.wait(); // both workers take one task each
                    std::thread::current().name().unwrap().to_owned()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|f| f.result().unwrap())
            .collect();
        let expected: BTreeSet<String> = ["concertina-detector-0", "concertina-detector-1"]
            .map(String::from)
            .into();
        assert_eq!(names, expected, "{backend:?}");
    }
}

#[test]
fn threaded_backends_really_run_tasks_side_by_side() {
    for backend in THREADED {
        let pool = pool(backend, 3);
        // Three tasks that can only finish if all three run at once.
        let barrier = Arc::new(Barrier::new(3));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let b = barrier.clone();
                pool.spawn(move || {
                    b.wait();
                    i
                })
            })
            .collect();
        let sum: i32 = tasks.into_iter().map(|f| f.result().unwrap()).sum();
        assert_eq!(sum, 3, "{backend:?}");
    }
}

#[test]
fn the_inline_backend_runs_on_the_caller_before_spawn_returns() {
    let pool = pool(Backend::Inline, 1);
    assert_eq!(pool.threads(), 0);
    let caller = std::thread::current().id();
    let f = pool.spawn(move || std::thread::current().id() == caller);
    assert!(f.done(), "inline futures are finished when returned");
    assert_eq!(f.result(), Ok(true));
}

#[test]
fn shutdown_drains_queued_work_then_refuses_new_work() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let release = Gate::new();
        let r = release.clone();
        let first = pool.spawn(move || {
            r.wait();
            0
        });
        let queued: Vec<_> = (1..=5).map(|i| pool.spawn(move || i)).collect();
        let closer = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.shutdown())
        };
        while !pool.is_shutdown() {
            std::thread::yield_now();
        }
        assert_eq!(
            pool.spawn(|| 99).result(),
            Err(Error::Shutdown),
            "{backend:?}"
        );
        release.open();
        closer.join().unwrap();
        assert_eq!(first.result(), Ok(0));
        let values: Vec<i32> = queued.into_iter().map(|f| f.result().unwrap()).collect();
        assert_eq!(
            values,
            [1, 2, 3, 4, 5],
            "{backend:?}: queued work was not drained"
        );
        pool.shutdown(); // again: harmless
    }
}

#[test]
fn an_inline_pool_refuses_work_after_shutdown() {
    let pool = pool(Backend::Inline, 1);
    assert_eq!(pool.spawn(|| 1).result(), Ok(1));
    pool.shutdown();
    assert!(pool.is_shutdown());
    assert_eq!(pool.spawn(|| 2).result(), Err(Error::Shutdown));
}

#[test]
fn shutdown_now_fails_queued_work_with_shutdown_and_lets_running_work_finish() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let (started, release) = (Gate::new(), Gate::new());
        let (s, r) = (started.clone(), release.clone());
        let running = pool.spawn(move || {
            s.open();
            r.wait();
            "finished"
        });
        started.wait();
        let queued: Vec<_> = (0..5).map(|i| pool.spawn(move || i)).collect();
        let closer = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.shutdown_now())
        };
        while !pool.is_shutdown() {
            std::thread::yield_now();
        }
        release.open();
        closer.join().unwrap();
        assert_eq!(running.result(), Ok("finished"), "{backend:?}");
        for f in queued {
            assert_eq!(f.result(), Err(Error::Shutdown), "{backend:?}");
        }
    }
}

#[test]
fn dropping_the_last_handle_drains_the_pool() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let futures: Vec<_> = (0..50u64)
            .map(|i| {
                pool.spawn(move || {
                    std::thread::yield_now();
                    i
                })
            })
            .collect();
        drop(pool);
        // Every future is finished already: the drop waited for the workers.
        assert!(futures.iter().all(|f| f.done()), "{backend:?}");
        let sum: u64 = futures.into_iter().map(|f| f.result().unwrap()).sum();
        assert_eq!(sum, (0..50).sum::<u64>());
    }
}

#[test]
fn a_task_may_shut_down_its_own_pool_without_deadlock() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let p = pool.clone();
        let f = pool.spawn(move || {
            p.shutdown();
            p.is_shutdown()
        });
        assert_eq!(f.result(), Ok(true), "{backend:?}");
        assert_eq!(pool.spawn(|| ()).result(), Err(Error::Shutdown));
        pool.shutdown();
    }
}

#[test]
fn an_adopted_rayon_pool_runs_tasks_and_survives_shutdown() {
    let rayon_pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let pool = Pool::from_rayon(rayon_pool.clone(), "adopted");
    assert_eq!(
        (pool.threads(), pool.backend(), pool.name()),
        (2, Backend::Rayon, "adopted")
    );
    let f = pool.spawn(rayon::current_thread_index);
    assert!(
        f.result().unwrap().is_some(),
        "ran on a thread of the rayon pool"
    );
    let panicked = pool.spawn(|| -> () { panic!("inside rayon") });
    assert_eq!(
        panicked.result(),
        Err(Error::Panicked("inside rayon".into()))
    );
    pool.shutdown();
    assert_eq!(pool.spawn(|| 1).result(), Err(Error::Shutdown));
    assert_eq!(
        rayon_pool.install(|| 40 + 2),
        42,
        "the caller's rayon pool still works"
    );
}

#[test]
fn a_pool_handle_is_cheap_to_share_with_tasks() {
    let pool = pool(Backend::Crossbeam, 2);
    let p = pool.clone();
    let f = pool.spawn(move || p.spawn(|| 5).then(|v| v * 2));
    assert_eq!(f.result().unwrap().result(), Ok(10));
    assert!(format!("{pool:?}")
        .starts_with(r#"Pool { name: "crossbeam", backend: Crossbeam, threads: 2"#));
}

#[test]
fn pool_asynchronous_returns_futures_from_the_pool() {
    let pool = pool(Backend::Crossbeam, 2);
    let square =
        pool.asynchronous(|x: u32| (x * x, std::thread::current().name().map(String::from)));
    let (value, thread) = square(9).result().unwrap();
    assert_eq!(value, 81);
    assert!(thread.unwrap().starts_with("concertina-crossbeam-"));
}

#[test]
fn shutdown_returns_after_every_worker_thread_has_exited() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    static MADE: AtomicUsize = AtomicUsize::new(0);
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            // A slow destructor: a shutdown that does not join returns first.
            std::thread::sleep(std::time::Duration::from_millis(20));
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        static GUARD: Guard = {
            MADE.fetch_add(1, Ordering::SeqCst);
            Guard
        };
    }
    for backend in THREADED {
        let workers = pool(backend, 3);
        let touched: Vec<_> = (0..64)
            .map(|_| workers.spawn(|| GUARD.with(|_| ())))
            .collect();
        concertina::wait_all(touched);
        workers.shutdown();
        // A thread's locals are destroyed before it exits: the join waited
        // for every one of them.
        assert_eq!(
            DROPPED.load(Ordering::SeqCst),
            MADE.load(Ordering::SeqCst),
            "{backend:?}: joined, not just told"
        );
    }
}
