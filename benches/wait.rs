//! Waiting on many: `as_completed` and `wait_any` over 10,000 futures,
//! beside the nearest Rust peers in the same run.
//!
//! * `as_completed`: 10,000 empty tasks submitted, then every result taken
//!   in completion order. Peer: `rayon::spawn` with every task sending its
//!   index down one shared crossbeam channel, received 10,000 times.
//! * `wait_any`: 10,000 tasks queued behind a task blocked on a gate on a
//!   one-thread pool; the measured part opens the gate and waits for the
//!   first of the 10,000 to finish (registration with all 10,000, one wake).
//!   Peer: the same on `threadpool`, each task answering on its own one-shot
//!   channel, waited on with a crossbeam `Select` over the 10,000 receivers.
//!
//! Run: `cargo bench --bench wait`; `python3 benches/summary.py wait`.

mod common;

use concertina::{as_completed, wait_any, Backend, Future, Pool};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const N: usize = 10_000;

fn wait(c: &mut Criterion) {
    let mut group = c.benchmark_group("wait");
    group.throughput(Throughput::Elements(N as u64));

    group.bench_function("as_completed/rayon_spawn+shared_channel", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::unbounded();
            for i in 0..N {
                let tx = tx.clone();
                rayon::spawn(move || tx.send(i).unwrap());
            }
            (0..N).map(|_| rx.recv().unwrap()).sum::<usize>()
        })
    });
    let pool = common::pool(Backend::Rayon);
    group.bench_function("as_completed/concertina", |b| {
        b.iter(|| {
            let futures: Vec<Future<usize>> = (0..N).map(|i| pool.spawn(move || i)).collect();
            as_completed(futures)
                .map(|(_, outcome)| outcome.unwrap())
                .sum::<usize>()
        })
    });

    group.bench_function("wait_any/threadpool+select", |b| {
        b.iter_batched(
            || {
                let pool = threadpool::ThreadPool::new(1);
                let (open, gate) = crossbeam_channel::bounded::<()>(1);
                pool.execute(move || gate.recv().unwrap());
                let receivers: Vec<_> = (0..N)
                    .map(|_| {
                        let (tx, rx) = crossbeam_channel::bounded(1);
                        pool.execute(move || {
                            let _ = tx.send(()); // the receiver may be gone by then
                        });
                        rx
                    })
                    .collect();
                (pool, open, receivers)
            },
            |(pool, open, receivers)| {
                open.send(()).unwrap();
                let mut select = crossbeam_channel::Select::new();
                for rx in &receivers {
                    select.recv(rx);
                }
                let ready = select.select();
                let index = ready.index();
                ready.recv(&receivers[index]).unwrap();
                (pool, receivers)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("wait_any/concertina", |b| {
        b.iter_batched(
            || {
                let pool = Pool::builder()
                    .threads(1)
                    .backend(Backend::Rayon)
                    .build()
                    .unwrap();
                let (open, gate) = crossbeam_channel::bounded::<()>(1);
                let _gate = pool.spawn(move || gate.recv().unwrap());
                let futures: Vec<Future<()>> = (0..N).map(|_| pool.spawn(|| ())).collect();
                (pool, open, futures)
            },
            |(pool, open, futures)| {
                open.send(()).unwrap();
                let first = wait_any(futures).expect("10,000 were given");
                (pool, first.rest)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, wait);
criterion_main!(benches);
