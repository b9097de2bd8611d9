//! Latency of one task: submit an empty closure and wait for its result,
//! measured beside rayon's `spawn` + a crossbeam `bounded(1)` channel (the
//! handle-less way rayon users get a result back) in the same run.
//!
//! Run: `cargo bench --bench latency`; `benches/summary.py latency` prints
//! the medians and ratios afterwards.

use concertina::{Backend, Pool};
use criterion::{criterion_group, criterion_main, Criterion};

fn latency(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut group = c.benchmark_group("latency");

    // The peer: rayon's global pool (one thread per core) and a one-shot channel.
    group.bench_function("rayon_spawn+bounded1", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::bounded(1);
            rayon::spawn(move || tx.send(()).unwrap());
            rx.recv().unwrap()
        })
    });

    for backend in [Backend::Rayon, Backend::Crossbeam] {
        let pool = Pool::builder()
            .threads(threads)
            .backend(backend)
            .name("bench")
            .build()
            .unwrap();
        let id = format!("concertina_{}", format!("{backend:?}").to_lowercase());
        group.bench_function(id, |b| b.iter(|| pool.spawn(|| ()).result().unwrap()));
    }

    let inline = Pool::builder().backend(Backend::Inline).build().unwrap();
    group.bench_function("concertina_inline", |b| {
        b.iter(|| inline.spawn(|| ()).result().unwrap())
    });
    group.bench_function("direct_call", |b| b.iter(|| std::hint::black_box(|| ())()));
    group.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
