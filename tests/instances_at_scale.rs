//! 100,000 instances × 10 calls on a 2-thread pool: every call runs once, in
//! order per instance, and the process gains exactly the pool's two threads.
//! Its own test binary, so that no other test's threads are counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use concertina::{Backend, Pool};

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
        let before = threads();
        let pool = Pool::builder()
            .threads(2)
            .backend(backend)
            .name("scale")
            .build()
            .unwrap();
        let with_pool = threads();
        let instances: Vec<_> = (0..INSTANCES)
            .map(|_| pool.instance(Model::default()))
            .collect();
        let runs = Arc::new(AtomicUsize::new(0));
        let mut peak = with_pool;
        for i in 0..CALLS {
            for model in &instances {
                let runs = runs.clone();
                drop(model.asynchronous(move |m: &mut Model| {
                    if m.next != i {
                        m.out_of_order += 1;
                    }
                    m.next += 1;
                    runs.fetch_add(1, Ordering::Relaxed);
                }));
            }
            peak = peak.max(threads());
        }
        let mut finals = concertina::RequestPool::new();
        for model in &instances {
            finals.add(model.asynchronous(|m: &mut Model| (m.next, m.out_of_order)));
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
        if let (Some(before), Some(with_pool), Some(peak)) = (before, with_pool, peak) {
            assert_eq!(
                with_pool,
                before + 2,
                "{backend:?}: the pool started other than 2 threads"
            );
            assert_eq!(
                peak, with_pool,
                "{backend:?}: instances started threads of their own"
            );
        }
        drop(instances);
        pool.shutdown();
    }
}
