//! Stress with drop counting: tasks across several pools (every backend)
//! with random panics, cancels at random moments from another thread,
//! dropped handles and nested waits. Every closure and every value is
//! dropped exactly once, every retained future resolves to the outcome its
//! task's fate allows, each pool keeps exactly its worker count while it
//! runs, and its workers are gone after shutdown.
//!
//! CI runs a small size; `STRESS_TASKS=1000000 cargo test --release --test stress`
//! runs the full one.

mod common;

use common::{named_threads, Rng};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use concertina::{Backend, CancelHandle, Error, Future, Pool};

/// Counts its own drops.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Fate {
    Value,
    Panic,
    Detached,
    Cancelled,
    Nested,
}

#[derive(Default)]
struct Counters {
    closures_made: AtomicUsize,
    closures_dropped: Arc<AtomicUsize>,
    values_made: Arc<AtomicUsize>,
    values_dropped: Arc<AtomicUsize>,
}

fn task_count() -> usize {
    std::env::var("STRESS_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

#[test]
fn tasks_under_random_faults_lose_nothing_and_drop_everything_once() {
    // The planned panics would fill the log; report only the others.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planned = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("planned failure"));
        if !planned {
            default_hook(info);
        }
    }));
    let total = task_count();
    let started = Instant::now();
    let pools: Vec<(Pool, String, usize)> = [
        (Backend::Rayon, 2, "sr"),
        (Backend::Crossbeam, 2, "sc"),
        (Backend::Crossbeam, 1, "s1"),
        (Backend::Inline, 1, "si"),
    ]
    .into_iter()
    .map(|(backend, threads, name)| {
        let pool = Pool::builder()
            .threads(threads)
            .backend(backend)
            .name(name)
            .build()
            .unwrap();
        let size = pool.threads();
        (pool, format!("concertina-{name}-"), size)
    })
    .collect();
    let counters = Arc::new(Counters::default());
    let (cancel_tx, cancel_rx) = mpsc::channel::<CancelHandle>();
    // Cancels at random moments: whatever it receives, after a random pause.
    let canceller = std::thread::spawn(move || {
        let mut rng = Rng(7);
        for handle in cancel_rx {
            if rng.next() % 4 == 0 {
                std::thread::yield_now();
            }
            handle.cancel();
        }
    });
    let mut rng = Rng(0x5eed);
    let mut kept: Vec<(Fate, u64, Future<Tracked>)> = Vec::new();
    for i in 0..total as u64 {
        let (pool, _, _) = &pools[(rng.next() % pools.len() as u64) as usize];
        let fate = match rng.next() % 10 {
            0 => Fate::Panic,
            1 => Fate::Detached,
            2 => Fate::Cancelled,
            3 => Fate::Nested,
            _ => Fate::Value,
        };
        counters.closures_made.fetch_add(1, Ordering::Relaxed);
        let token = Tracked(counters.closures_dropped.clone());
        let (made, dropped) = (
            counters.values_made.clone(),
            counters.values_dropped.clone(),
        );
        let nested_pool = pool.clone();
        let nested_counters = counters.clone();
        let future = pool.spawn(move || {
            let _token = &token;
            match fate {
                Fate::Panic => panic!("planned failure {i}"),
                // A little cooperative work, so that cancels land while it runs.
                Fate::Cancelled => {
                    for _ in 0..2_000 {
                        if concertina::cancelled() {
                            break;
                        }
                        std::hint::spin_loop();
                    }
                }
                Fate::Nested => {
                    nested_counters
                        .closures_made
                        .fetch_add(1, Ordering::Relaxed);
                    let child_token = Tracked(nested_counters.closures_dropped.clone());
                    let child = nested_pool.spawn(move || {
                        let _child_token = &child_token;
                        i * 2
                    });
                    assert_eq!(child.result(), Ok(i * 2));
                }
                _ => {}
            }
            made.fetch_add(1, Ordering::Relaxed);
            Tracked(dropped)
        });
        match fate {
            Fate::Detached => drop(future),
            Fate::Cancelled => {
                // Half at once (queued, or just started), half from the
                // canceller thread at a random later moment.
                if rng.next() % 2 == 0 {
                    future.cancel();
                } else {
                    cancel_tx.send(future.cancel_handle()).unwrap();
                }
                kept.push((fate, i, future));
            }
            _ => kept.push((fate, i, future)),
        }
    }
    drop(cancel_tx);
    canceller.join().unwrap();

    let mut outcomes = [0usize; 3];
    for (fate, i, future) in kept {
        match (fate, future.result()) {
            (Fate::Panic, Err(Error::Panicked(m))) => {
                assert_eq!(m, format!("planned failure {i}"));
                outcomes[1] += 1;
            }
            (Fate::Cancelled, Err(Error::Cancelled)) => outcomes[2] += 1,
            (Fate::Value | Fate::Nested | Fate::Cancelled, Ok(_value)) => outcomes[0] += 1,
            (fate, other) => panic!(
                "task {i} ({fate:?}) ended with {:?}",
                other.map(|_| "a value")
            ),
        }
    }
    for (pool, prefix, size) in &pools {
        if let Some(workers) = named_threads(prefix) {
            assert_eq!(workers, *size, "{prefix}: worker count changed");
        }
        pool.shutdown();
    }
    for (_, prefix, _) in &pools {
        // Joined threads may linger in /proc an instant; give them up to 10 s.
        let deadline = Instant::now() + Duration::from_secs(10);
        while named_threads(prefix).is_some_and(|n| n > 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            named_threads(prefix).unwrap_or(0),
            0,
            "{prefix}: threads left after shutdown"
        );
    }
    let c = &counters;
    assert_eq!(
        c.closures_dropped.load(Ordering::Relaxed),
        c.closures_made.load(Ordering::Relaxed),
        "every closure dropped exactly once"
    );
    assert_eq!(
        c.values_dropped.load(Ordering::Relaxed),
        c.values_made.load(Ordering::Relaxed),
        "every value dropped exactly once"
    );
    println!(
        "stress: {total} tasks ({} closures) in {:.2?}: {} values, {} panics, {} cancelled, the rest detached",
        c.closures_made.load(Ordering::Relaxed),
        started.elapsed(),
        outcomes[0],
        outcomes[1],
        outcomes[2],
    );
}
