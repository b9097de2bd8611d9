//! Throughput of ordered calls on one `Instance`, and of sets on one
//! device `Parameter` (one operation at a time, each taking its hold in the
//! lock table), beside plain `spawn` throughput on the same pool, in the
//! same run: N empty calls submitted, then all waited for.
//!
//! `instance_sync`: one synchronous call at a time, `call` (run on the
//! caller's thread, the queue held for it) beside `spawn(..).result()`.
//!
//! Run: `cargo bench --bench instance`; `python3 benches/summary.py instance spawn`
//! prints the medians and ratios afterwards.

mod common;

use concertina::{Backend, Future, Parameter};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const N: u64 = 10_000;

fn instance(c: &mut Criterion) {
    let pool = common::pool(Backend::Rayon);
    let model = pool.instance(0u64);
    let models: Vec<_> = (0..1000).map(|_| pool.instance(0u64)).collect();
    let parameter = Parameter::<u64>::builder("x")
        .setter(|_| ())
        .pool(&pool)
        .build()
        .expect("a valid parameter");

    let mut group = c.benchmark_group("instance");
    group.throughput(Throughput::Elements(N));
    group.bench_function("spawn", |b| {
        b.iter(|| {
            let futures: Vec<Future<()>> = (0..N).map(|_| pool.spawn(|| ())).collect();
            futures.into_iter().for_each(|f| f.result().unwrap());
        })
    });
    group.bench_function("one_instance_ordered", |b| {
        b.iter(|| {
            let futures: Vec<Future<()>> = (0..N).map(|_| model.spawn(|n| *n += 1)).collect();
            futures.into_iter().for_each(|f| f.result().unwrap());
        })
    });
    group.bench_function("1000_instances_ordered", |b| {
        b.iter(|| {
            let futures: Vec<Future<()>> = (0..N as usize)
                .map(|i| models[i % models.len()].spawn(|n| *n += 1))
                .collect();
            futures.into_iter().for_each(|f| f.result().unwrap());
        })
    });
    group.bench_function("one_parameter_sets", |b| {
        b.iter(|| {
            let futures: Vec<Future<()>> = (0..N).map(|i| parameter.set(i)).collect();
            futures.into_iter().for_each(|f| f.result().unwrap());
        })
    });
    group.finish();

    // One synchronous call at a time: the closure run on the caller's
    // thread once the queue is held for it (`call`), beside the same call
    // run on the pool and waited for (`spawn(..).result()`).
    let mut group = c.benchmark_group("instance_sync");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("call_here", |b| {
        b.iter(|| {
            for _ in 0..1_000 {
                model.call(|n| *n += 1).unwrap();
            }
        })
    });
    group.bench_function("spawn_and_wait", |b| {
        b.iter(|| {
            for _ in 0..1_000 {
                model.spawn(|n| *n += 1).result().unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, instance);
criterion_main!(benches);
