//! Many blocked waits woken at once: `WAKE_THREADS` threads (default 1,000)
//! each block in `result()` on a future of their own; all futures are then
//! completed by one callback, and each thread records when its wait
//! returned. Printed: median and p99 of wake-to-return (from the moment
//! the completion began), over `WAKE_ROUNDS` rounds (default 5), beside the
//! same threads blocked on a `std::sync::mpsc` channel each, woken by one
//! loop of sends.
//!
//! Run: `cargo bench --bench wake`

use std::sync::{mpsc, Arc, Barrier};
use std::time::{Duration, Instant};

use concertina::{Backend, Future, Pool};

fn env(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Wake-to-return of every thread in one round, for concertina futures.
fn concertina_round(threads: usize) -> Vec<Duration> {
    let pool = Pool::builder()
        .threads(1)
        .backend(Backend::Crossbeam)
        .build()
        .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let source = pool.spawn(move || gate.recv().unwrap());
    let futures: Vec<Future<()>> = (0..threads).map(|_| source.when_done()).collect();
    let ready = Arc::new(Barrier::new(threads + 1));
    let waiters: Vec<_> = futures
        .into_iter()
        .map(|f| {
            let ready = ready.clone();
            std::thread::spawn(move || {
                ready.wait();
                f.result().unwrap();
                Instant::now()
            })
        })
        .collect();
    ready.wait();
    while concertina::interrupt::blocked_waits() < threads {
        std::thread::sleep(Duration::from_millis(1));
    }
    let start = Instant::now();
    release.send(()).unwrap();
    waiters
        .into_iter()
        .map(|w| w.join().unwrap().saturating_duration_since(start))
        .collect()
}

/// The same with one channel per thread.
fn channel_round(threads: usize) -> Vec<Duration> {
    let ready = Arc::new(Barrier::new(threads + 1));
    let (senders, waiters): (Vec<_>, Vec<_>) = (0..threads)
        .map(|_| {
            let (tx, rx) = mpsc::channel::<()>();
            let ready = ready.clone();
            let waiter = std::thread::spawn(move || {
                ready.wait();
                rx.recv().unwrap();
                Instant::now()
            });
            (tx, waiter)
        })
        .unzip();
    ready.wait();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    for tx in &senders {
        tx.send(()).unwrap();
    }
    waiters
        .into_iter()
        .map(|w| w.join().unwrap().saturating_duration_since(start))
        .collect()
}

fn report(label: &str, mut all: Vec<Duration>) {
    all.sort();
    println!(
        "wake {label:<22} median {:>9.3} ms  p99 {:>9.3} ms",
        percentile(&all, 0.5).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3
    );
}

fn main() {
    let threads = env("WAKE_THREADS", 1_000);
    let rounds = env("WAKE_ROUNDS", 5);
    let mut ours = Vec::new();
    let mut channels = Vec::new();
    for _ in 0..rounds {
        ours.extend(concertina_round(threads));
        channels.extend(channel_round(threads));
    }
    println!("{threads} threads blocked, all woken, {rounds} rounds");
    report("concertina result()", ours);
    report("std mpsc recv()", channels);
}
