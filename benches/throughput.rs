//! Throughput: 1,000,000 empty tasks submitted, then every one waited for,
//! beside the peers in the same run: rayon's `spawn` with a one-shot
//! crossbeam channel per task, `threadpool` with a one-shot channel per
//! task, and tokio's `spawn_blocking` with every handle awaited in one
//! `block_on`.
//!
//! Run: `cargo bench --bench throughput` (`THROUGHPUT_TASKS=N` to change the
//! count); `python3 benches/summary.py throughput rayon_spawn+oneshot`.

mod common;

use concertina::{Backend, Future};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn tasks() -> usize {
    std::env::var("THROUGHPUT_TASKS").map_or(1_000_000, |n| {
        n.parse()
            .expect("THROUGHPUT_TASKS takes a whole number of tasks")
    })
}

fn throughput(c: &mut Criterion) {
    let n = tasks();
    let threads = common::cores();
    let mut group = c.benchmark_group("throughput");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));

    group.bench_function("rayon_spawn+oneshot", |b| {
        b.iter(|| {
            let receivers: Vec<_> = (0..n)
                .map(|_| {
                    let (tx, rx) = crossbeam_channel::bounded(1);
                    rayon::spawn(move || tx.send(()).unwrap());
                    rx
                })
                .collect();
            receivers.into_iter().for_each(|rx| rx.recv().unwrap());
        })
    });

    let threadpool = threadpool::ThreadPool::new(threads);
    group.bench_function("threadpool+oneshot", |b| {
        b.iter(|| {
            let receivers: Vec<_> = (0..n)
                .map(|_| {
                    let (tx, rx) = crossbeam_channel::bounded(1);
                    threadpool.execute(move || tx.send(()).unwrap());
                    rx
                })
                .collect();
            receivers.into_iter().for_each(|rx| rx.recv().unwrap());
        })
    });

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .build()
        .unwrap();
    group.bench_function("tokio_spawn_blocking", |b| {
        b.iter(|| {
            let handles: Vec<_> = (0..n).map(|_| tokio.spawn_blocking(|| ())).collect();
            tokio.block_on(async {
                for handle in handles {
                    handle.await.unwrap();
                }
            })
        })
    });

    for backend in [Backend::Rayon, Backend::Crossbeam] {
        let pool = common::pool(backend);
        let id = format!("concertina_{}", format!("{backend:?}").to_lowercase());
        group.bench_function(id, |b| {
            b.iter(|| {
                let futures: Vec<Future<()>> = (0..n).map(|_| pool.spawn(|| ())).collect();
                futures.into_iter().for_each(|f| f.result().unwrap());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
