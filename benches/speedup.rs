//! CPU-bound speed-up and the disabled-async mode.
//!
//! * `speedup`: 64 equal work items (a fixed-length integer hash loop, about
//!   1 ms each) run one after another, on a concertina pool of one thread
//!   per core, and with rayon's `par_iter` as the peer, in the same run.
//! * `inline`: a task run through an inline pool (what
//!   `CONCERTINA_DISABLE_ASYNC=1` gives) against the same function called
//!   directly, for an empty function and for work items of about 0.1 µs and
//!   1 µs.
//!
//! Run: `cargo bench --bench speedup`;
//! `python3 benches/summary.py speedup sequential` and
//! `python3 benches/summary.py inline`.

mod common;

use std::hint::black_box;

use concertina::{Backend, Future};
use criterion::{criterion_group, criterion_main, Criterion};
use rayon::prelude::*;

const ITEMS: u64 = 64;

/// A fixed amount of integer work that the optimiser can't remove.
fn work(rounds: u64) -> u64 {
    let mut x = black_box(0x9e37_79b9_7f4a_7c15_u64);
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

fn speedup(c: &mut Criterion) {
    // About 1 ms of work per item on this machine class.
    const ROUNDS: u64 = 1_000_000;
    let mut group = c.benchmark_group("speedup");
    group.sample_size(10);
    group.bench_function("sequential", |b| {
        b.iter(|| (0..ITEMS).map(|_| work(ROUNDS)).fold(0, u64::wrapping_add))
    });
    group.bench_function("rayon_par_iter", |b| {
        b.iter(|| {
            (0..ITEMS)
                .into_par_iter()
                .map(|_| work(ROUNDS))
                .reduce(|| 0, u64::wrapping_add)
        })
    });
    let pool = common::pool(Backend::Rayon);
    group.bench_function("concertina", |b| {
        b.iter(|| {
            let futures: Vec<Future<u64>> =
                (0..ITEMS).map(|_| pool.spawn(|| work(ROUNDS))).collect();
            futures
                .into_iter()
                .map(|f| f.result().unwrap())
                .fold(0, u64::wrapping_add)
        })
    });
    group.finish();

    let inline = common::inline();
    let mut group = c.benchmark_group("inline");
    for (label, rounds) in [("empty", 0), ("0.1us", 40), ("1us", 400)] {
        group.bench_function(format!("direct_call/{label}"), |b| {
            b.iter(|| work(black_box(rounds)))
        });
        group.bench_function(format!("concertina_inline/{label}"), |b| {
            b.iter(|| {
                inline
                    .spawn(move || work(black_box(rounds)))
                    .result()
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, speedup);
criterion_main!(benches);
