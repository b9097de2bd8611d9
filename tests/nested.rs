//! Nested waits: a wait on a pool worker runs other queued work of that
//! pool, so tasks that spawn and wait never deadlock, even on one thread.

mod common;

use std::time::Duration;

use common::{pool, THREADED};
use concertina::{Backend, Pool};

fn tree_sum(pool: &Pool, depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    let (p1, p2) = (pool.clone(), pool.clone());
    let left = pool.spawn(move || tree_sum(&p1, depth - 1));
    let right = pool.spawn(move || tree_sum(&p2, depth - 1));
    left.result().unwrap() + right.result().unwrap()
}

#[test]
fn a_task_waiting_on_its_child_finishes_on_a_one_thread_pool() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let pool = pool(backend, 1);
        let p = pool.clone();
        let parent = pool.spawn(move || p.spawn(|| 41).result().unwrap() + 1);
        assert_eq!(parent.result(), Ok(42), "{backend:?}");
    }
}

#[test]
fn a_recursive_tree_of_waits_finishes_on_small_pools() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        for threads in [1, 2] {
            let pool = pool(backend, threads);
            let p = pool.clone();
            let total = pool.spawn(move || tree_sum(&p, 8)).result();
            assert_eq!(total, Ok(256), "{backend:?} with {threads} threads");
        }
    }
}

#[test]
fn wait_timeout_on_a_worker_also_runs_queued_work() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let p = pool.clone();
        let f = pool.spawn(move || {
            let child = p.spawn(|| "child ran");
            assert!(child.wait_timeout(Duration::from_secs(60)));
            child.result().unwrap()
        });
        assert_eq!(f.result(), Ok("child ran"), "{backend:?}");
    }
}

#[test]
fn a_wait_timeout_on_a_worker_returns_false_when_nothing_can_finish() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        // A future finished by another pool, held back by a gate.
        let elsewhere = common::pool(Backend::Crossbeam, 1);
        let gate = common::Gate::new();
        let g = gate.clone();
        let other = elsewhere.spawn(move || g.wait());
        let f = pool.spawn(move || other.wait_timeout(Duration::from_millis(20)));
        assert_eq!(f.result(), Ok(false), "{backend:?}");
        gate.open();
    }
}

#[test]
fn deep_chains_of_nested_waits_on_one_thread() {
    fn chain(pool: Pool, n: u32) -> u32 {
        if n == 0 {
            0
        } else {
            let p = pool.clone();
            pool.spawn(move || chain(p, n - 1)).result().unwrap() + 1
        }
    }
    for backend in THREADED {
        let pool = pool(backend, 1);
        let p = pool.clone();
        assert_eq!(
            pool.spawn(move || chain(p, 200)).result(),
            Ok(200),
            "{backend:?}"
        );
    }
}

#[test]
fn a_long_queue_of_waiting_tasks_does_not_nest_without_bound() {
    // Each queued task spawns a child and waits on it. A waiting worker runs
    // its own queued child at once instead of working through the queue
    // (which would nest one frame per queued task and overflow the stack).
    for backend in THREADED {
        let pool = pool(backend, 1);
        let futures: Vec<_> = (0..20_000u64)
            .map(|i| {
                let p = pool.clone();
                pool.spawn(move || p.spawn(move || i).result().unwrap() + 1)
            })
            .collect();
        let sum: u64 = futures.into_iter().map(|f| f.result().unwrap()).sum();
        assert_eq!(sum, (1..=20_000).sum::<u64>(), "{backend:?}");
    }
}
