//! Latency of one task: submit an empty closure and wait for its result,
//! beside every peer in the same run: rayon's `spawn` + a crossbeam
//! `bounded(1)` channel (the handle-less way rayon users get a result
//! back), `threadpool` + a channel, tokio's `spawn_blocking` + `block_on`,
//! and `std::thread::spawn` + `join`.
//!
//! Run: `cargo bench --bench latency`; `python3 benches/summary.py latency`
//! prints the medians and ratios afterwards (`benches/report.py` does all).

mod common;

use concertina::Backend;
use criterion::{criterion_group, criterion_main, Criterion};

fn latency(c: &mut Criterion) {
    let threads = common::cores();
    let mut group = c.benchmark_group("latency");

    // rayon's global pool (one thread per core) and a one-shot channel.
    group.bench_function("rayon_spawn+bounded1", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::bounded(1);
            rayon::spawn(move || tx.send(()).unwrap());
            rx.recv().unwrap()
        })
    });

    let threadpool = threadpool::ThreadPool::new(threads);
    group.bench_function("threadpool+channel", |b| {
        b.iter(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            threadpool.execute(move || tx.send(()).unwrap());
            rx.recv().unwrap()
        })
    });

    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .build()
        .unwrap();
    group.bench_function("tokio_spawn_blocking+block_on", |b| {
        b.iter(|| tokio.block_on(tokio.spawn_blocking(|| ())).unwrap())
    });

    group.bench_function("std_thread_spawn+join", |b| {
        b.iter(|| std::thread::spawn(|| ()).join().unwrap())
    });

    for backend in [Backend::Rayon, Backend::Crossbeam] {
        let pool = common::pool(backend);
        let id = format!("concertina_{}", format!("{backend:?}").to_lowercase());
        group.bench_function(id, |b| b.iter(|| pool.spawn(|| ()).result().unwrap()));
    }

    let inline = common::inline();
    group.bench_function("concertina_inline", |b| {
        b.iter(|| inline.spawn(|| ()).result().unwrap())
    });
    group.bench_function("direct_call", |b| b.iter(|| std::hint::black_box(|| ())()));
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
