//! A scope of 4 tasks that each sum a quarter of a borrowed slice of
//! 4,096 numbers and give their sum back, beside `std::thread::scope` (a
//! thread per task) and `rayon::scope` (rayon's global pool; results through
//! borrowed slots), in the same run. What a scope costs: its threads are
//! started per scope (borrowed closures cannot go to the pool's own
//! threads without `unsafe`).
//!
//! Run: `cargo bench --bench scope`; `python3 benches/summary.py scope`.

mod common;

use concertina::Backend;
use criterion::{criterion_group, criterion_main, Criterion};

const N: usize = 4096;
const TASKS: usize = 4;

fn scope(c: &mut Criterion) {
    let data: Vec<u64> = (0..N as u64).collect();
    let mut group = c.benchmark_group("scope");

    group.bench_function("std_thread_scope", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                let handles: Vec<_> = data
                    .chunks(N / TASKS)
                    .map(|chunk| s.spawn(move || chunk.iter().sum::<u64>()))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
            })
        })
    });

    group.bench_function("rayon_scope", |b| {
        b.iter(|| {
            let mut sums = [0u64; TASKS];
            rayon::scope(|s| {
                for (slot, chunk) in sums.iter_mut().zip(data.chunks(N / TASKS)) {
                    s.spawn(move |_| *slot = chunk.iter().sum());
                }
            });
            sums.iter().sum::<u64>()
        })
    });

    for backend in [Backend::Rayon, Backend::Crossbeam] {
        let pool = common::pool(backend);
        let id = format!("concertina_scope_{}", format!("{backend:?}").to_lowercase());
        group.bench_function(id, |b| {
            b.iter(|| {
                pool.scope(|s| {
                    let futures: Vec<_> = data
                        .chunks(N / TASKS)
                        .map(|chunk| s.spawn(move || chunk.iter().sum::<u64>()))
                        .collect();
                    concertina::try_wait_all(futures)
                        .unwrap()
                        .into_iter()
                        .sum::<u64>()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, scope);
criterion_main!(benches);
