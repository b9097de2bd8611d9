//! Nested waits on one-thread pools, per level: a chain (each task spawns
//! the next on the same pool and waits on it) and a cross-pool ping-pong
//! (each task spawns the next on the other pool and waits on it), depth
//! `NESTED_DEPTH` (default 1,000). Peers in the same run: the same chain of
//! `std::thread::spawn` + `join`, and rayon's `join` recursing on a
//! one-thread rayon pool (which runs the nested half inline).
//!
//! Run: `cargo bench --bench nested`; `python3 benches/summary.py nested`
//! prints the medians; divide by the depth for the time per level.

mod common;

use concertina::{Backend, Pool};
use criterion::{criterion_group, criterion_main, Criterion};

fn depth() -> u32 {
    std::env::var("NESTED_DEPTH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000)
}

fn one_thread(backend: Backend, name: &str) -> Pool {
    Pool::builder()
        .threads(1)
        .backend(backend)
        .name(name)
        .build()
        .expect("a one-thread pool")
}

fn chain(pool: Pool, n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    let next = pool.clone();
    pool.spawn(move || chain(next, n - 1)).result().unwrap() + 1
}

fn ping(here: Pool, there: Pool, n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    let (a, b) = (here.clone(), there.clone());
    there.spawn(move || ping(b, a, n - 1)).result().unwrap() + 1
}

fn thread_chain(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    std::thread::spawn(move || thread_chain(n - 1))
        .join()
        .unwrap()
        + 1
}

fn rayon_chain(n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    let (a, ()) = rayon::join(|| rayon_chain(n - 1), || ());
    a + 1
}

fn nested(c: &mut Criterion) {
    let depth = depth();
    let mut group = c.benchmark_group("nested");
    group.sample_size(20);
    for backend in [Backend::Rayon, Backend::Crossbeam] {
        let label = format!("{backend:?}").to_lowercase();
        let pool = one_thread(backend, "chain");
        group.bench_function(format!("concertina_{label}_chain"), |b| {
            b.iter(|| {
                let p = pool.clone();
                assert_eq!(pool.spawn(move || chain(p, depth)).result(), Ok(depth));
            })
        });
        let (p, q) = (one_thread(backend, "ping"), one_thread(backend, "pong"));
        group.bench_function(format!("concertina_{label}_pingpong"), |b| {
            b.iter(|| {
                let (a, b2) = (p.clone(), q.clone());
                assert_eq!(p.spawn(move || ping(a, b2, depth)).result(), Ok(depth));
            })
        });
    }
    group.bench_function("std_thread_chain", |b| {
        b.iter(|| assert_eq!(thread_chain(depth), depth))
    });
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    group.bench_function("rayon_join_chain", |b| {
        b.iter(|| assert_eq!(rayon_pool.install(|| rayon_chain(depth)), depth))
    });
    group.finish();
}

criterion_group!(benches, nested);
criterion_main!(benches);
