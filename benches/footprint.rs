//! Footprint: heap bytes per pending task and per idle `Instance` (a
//! counting allocator), and CPU time burnt by an idle pool over 2 s (summed
//! from each thread's /proc/self/task/*/schedstat, in nanoseconds), beside
//! rayon's own pool in the same run.
//!
//! Run: `cargo bench --bench footprint`

use std::alloc::System;
use std::sync::mpsc;
use std::time::Duration;

use concertina::{Backend, Future, Instance, Pool};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const N: usize = 100_000;

/// Net heap bytes per item while `make` builds `N` items that stay alive.
fn bytes_per<T>(make: impl Fn() -> T) -> f64 {
    let region = Region::new(GLOBAL);
    let items: Vec<T> = (0..N).map(|_| make()).collect();
    let change = region.change();
    let net = change.bytes_allocated as f64 - change.bytes_deallocated as f64;
    let vec_bytes = (items.capacity() * std::mem::size_of::<T>()) as f64;
    drop(items);
    (net - vec_bytes) / N as f64
}

/// CPU time (ns) of every thread of this process, summed.
fn process_cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// Share of one core burnt while this thread sleeps for `idle` and the
/// pools only exist.
fn idle_share(idle: Duration) -> f64 {
    let before = process_cpu_ns();
    std::thread::sleep(idle);
    let burnt = process_cpu_ns().saturating_sub(before);
    burnt as f64 / idle.as_nanos() as f64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("| footprint | bytes per item |");
    println!("|---|---:|");
    for backend in [Backend::Rayon, Backend::Crossbeam] {
        let pool = Pool::builder()
            .threads(1)
            .backend(backend)
            .name("fp")
            .build()
            .unwrap();
        // Hold the only worker so that every task stays pending.
        let (release, gate) = mpsc::channel::<()>();
        let blocker = pool.spawn(move || gate.recv().unwrap());
        let bytes = bytes_per(|| -> Future<()> { pool.spawn(|| ()) });
        release.send(()).unwrap();
        blocker.result().unwrap();
        println!("| pending `Future<()>` with its queued job ({backend:?} backend) | {bytes:.0} |");
    }
    let ready = bytes_per(|| Future::ready(()));
    println!("| finished `Future<()>` (`Future::ready`) | {ready:.0} |");
    let pool = Pool::builder()
        .threads(1)
        .backend(Backend::Crossbeam)
        .name("fp")
        .build()
        .unwrap();
    let idle = bytes_per(|| pool.instance(()));
    println!("| idle `Instance<()>` | {idle:.0} |");
    let idle_u64 = bytes_per(|| Instance::new(0u64));
    println!("| idle `Instance<u64>` on the default pool | {idle_u64:.0} |");
    drop(pool);

    println!();
    println!("| idle for 2 s after one task | share of one core |");
    println!("|---|---:|");
    let measure = Duration::from_secs(2);
    let baseline = idle_share(measure);
    println!(
        "| no pool (this process alone) | {:.3}% |",
        baseline * 100.0
    );
    for backend in [Backend::Rayon, Backend::Crossbeam] {
        let pool = Pool::builder()
            .threads(2)
            .backend(backend)
            .name("idle")
            .build()
            .unwrap();
        pool.spawn(|| ()).result().unwrap();
        println!(
            "| concertina {backend:?} pool, 2 threads | {:.3}% |",
            idle_share(measure) * 100.0
        );
        pool.shutdown();
    }
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    rayon_pool.install(|| ());
    println!(
        "| rayon ThreadPool, 2 threads (peer) | {:.3}% |",
        idle_share(measure) * 100.0
    );
}
