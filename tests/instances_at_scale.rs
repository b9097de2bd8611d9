//! 100,000 instances × 10 calls on a 2-thread pool: every call runs once, in
//! order per instance, and no thread is started beyond the pool's two.
//! Its own test binary, so that no other test's threads are counted.

mod common;

use common::named_threads;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use concertina::{Backend, Pool, RequestPool};

const INSTANCES: usize = 100_000;
const CALLS: u32 = 10;

/// The thread count of this process, from /proc (Linux); `None` elsewhere.
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

#[derive(Default)]
struct Model {
    next: u32,
    out_of_order: u32,
}

#[test]
fn a_hundred_thousand_instances_share_a_two_thread_pool() {
    for backend in [Backend::Rayon, Backend::Crossbeam] {
        // Short names: Linux keeps 15 bytes of a thread's name.
        let name = if backend == Backend::Rayon { "r" } else { "c" };
        let prefix = format!("concertina-{name}-");
        let before = threads();
        let pool = Pool::builder()
            .threads(2)
            .backend(backend)
            .name(name)
            // The Ctrl-C handler's thread is not the pool's: left out.
            .ctrlc(false)
            .build()
            .unwrap();
        let instances: Vec<_> = (0..INSTANCES)
            .map(|_| pool.instance(Model::default()))
            .collect();
        let runs = Arc::new(AtomicUsize::new(0));
        let (mut peak, mut peak_named) = (threads(), named_threads(&prefix));
        for i in 0..CALLS {
            for model in &instances {
                let runs = runs.clone();
                drop(model.spawn(move |m: &mut Model| {
                    if m.next != i {
                        m.out_of_order += 1;
                    }
                    m.next += 1;
                    runs.fetch_add(1, Ordering::Relaxed);
                }));
            }
            peak = peak.max(threads());
            peak_named = peak_named.max(named_threads(&prefix));
        }
        let mut finals = RequestPool::new();
        for model in &instances {
            finals.add(model.spawn(|m: &mut Model| (m.next, m.out_of_order)));
        }
        let outcomes = finals.wait_all();
        assert_eq!(outcomes.len(), INSTANCES);
        assert!(
            outcomes.iter().all(|(_, r)| *r == Ok((CALLS, 0))),
            "{backend:?}: a call ran twice, not at all, or out of order"
        );
        assert_eq!(
            runs.load(Ordering::Relaxed),
            INSTANCES * CALLS as usize,
            "{backend:?}"
        );
        if let (Some(before), Some(peak), Some(peak_named)) = (before, peak, peak_named) {
            assert_eq!(
                peak_named, 2,
                "{backend:?}: the pool ran other than its 2 threads"
            );
            // A thread of an earlier pool may still be ending when `before` is read.
            assert!(
                peak <= before + 2,
                "{backend:?}: {peak} threads, {before} before the pool: instances started threads"
            );
        }
        drop(instances);
        pool.shutdown();
    }
}
