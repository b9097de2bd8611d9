//! A handful of blocking detector reads, run side by side on a pool; the
//! readings are gathered and the speed-up over reading one after another is
//! printed. One read fails, and its failure surfaces at its own handle while
//! the others deliver.
//!
//! Run: `cargo run --release --example quickstart [READS] [EXPOSURE_MS]`
//! (defaults: 8 reads of 40 ms). With `CONCERTINA_DISABLE_ASYNC=1` the same
//! program runs every read inline, for debugging.

use std::time::{Duration, Instant};

use concertina::{Error, Future, Pool};

/// One blocking read: the detector integrates for `exposure`, then the
/// counts of a simulated spectrum are summed.
fn read_detector(channel: usize, exposure: Duration) -> f64 {
    std::thread::sleep(exposure);
    // A deterministic "spectrum": a Gaussian peak whose centre depends on the channel.
    let centre = 200.0 + 25.0 * channel as f64;
    let gain = 1.0 + 0.125 * (channel % 8) as f64;
    (0..1024)
        .map(|bin| {
            let x = (bin as f64 - centre) / 30.0;
            gain * 1000.0 * (-0.5 * x * x).exp() / 75.2
        })
        .sum()
}

fn parse_arg(index: usize, name: &str, default: u64, max: u64) -> u64 {
    match std::env::args().nth(index) {
        None => default,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                eprintln!(
                    "quickstart: {name} must be a whole number from 1 to {max}, got {text:?}"
                );
                std::process::exit(2);
            }
        },
    }
}

fn main() -> Result<(), Error> {
    let reads = parse_arg(1, "READS", 8, 256) as usize;
    let exposure = Duration::from_millis(parse_arg(2, "EXPOSURE_MS", 40, 10_000));
    println!(
        "concertina quickstart: {reads} detector reads, {} ms exposure each",
        exposure.as_millis()
    );

    let started = Instant::now();
    let sequential: Vec<f64> = (0..reads).map(|c| read_detector(c, exposure)).collect();
    let sequential_time = started.elapsed();

    // Reads wait on hardware, not on the CPU: one thread per detector.
    let pool = Pool::builder().threads(reads).name("detectors").build()?;
    let started = Instant::now();
    let futures: Vec<Future<f64>> = (0..reads)
        .map(|c| pool.spawn(move || read_detector(c, exposure)))
        .collect();
    let concurrent: Vec<f64> = futures
        .into_iter()
        .map(Future::result)
        .collect::<Result<_, _>>()?;
    let concurrent_time = started.elapsed();
    assert_eq!(sequential, concurrent, "the same readings either way");

    println!(
        "  sequential: {reads} reads in {:>7.1} ms",
        sequential_time.as_secs_f64() * 1e3
    );
    println!(
        "  concurrent: {reads} reads in {:>7.1} ms on pool {:?} ({:?}, {} threads)",
        concurrent_time.as_secs_f64() * 1e3,
        pool.name(),
        pool.backend(),
        pool.threads()
    );
    println!(
        "  speed-up:   {:.1}x",
        sequential_time.as_secs_f64() / concurrent_time.as_secs_f64()
    );
    let shown: Vec<String> = concurrent
        .iter()
        .take(4)
        .map(|c| format!("{c:.1}"))
        .collect();
    println!(
        "  counts:     {}{}",
        shown.join(", "),
        if reads > 4 { ", ..." } else { "" }
    );

    // A read that fails: the panic becomes an error at its own handle.
    println!("  now a read that fails (the panic hook reports it on stderr):");
    let flaky = pool.spawn(move || -> f64 {
        std::thread::sleep(exposure);
        panic!("detector 5: cable unplugged")
    });
    let healthy = pool.spawn(move || read_detector(0, exposure));
    match flaky.result() {
        Err(error) => println!("  failed read: {error}"),
        Ok(counts) => println!("  unexpected reading {counts}"),
    }
    println!(
        "  the pool goes on: channel 0 reads {:.1} counts",
        healthy.result()?
    );
    Ok(())
}
