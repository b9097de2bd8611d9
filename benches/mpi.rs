//! Remote instances over MPI (feature `mpi`), each beside a raw rsmpi
//! send/receive ping-pong of about the same bytes, in the same run:
//!
//! * a small call's round trip (target ≤ 2× the raw ping-pong);
//! * a call carrying 1,000 doubles and its reply;
//! * a 100 MiB `Vec<f64>` there and back (`BULK_MB` sets the size), beside
//!   a raw round trip of the same bytes into buffers that are reused;
//! * the CPU time of an idle worker rank (and of rank 0) over 3 s.
//!
//! Run: `cargo bench --features mpi --bench mpi`. The bench starts
//! `mpirun -n 2` on itself, alternating raw and remote jobs five times, and
//! prints the medians and their ratios.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::bulk_bytes;
use concertina::remote;
use mpi::traits::*;

const MODE: &str = "CONCERTINA_BENCH_MPI";
const ROUNDS: usize = 5;
const SMALL_TRIPS: usize = 20_000;
const LARGE_TRIPS: usize = 2_000;
const BULK_TRIPS: usize = 10;

/// The code under measure.
#[derive(Default)]
struct Bench {
    state: Vec<f64>,
}

#[concertina::remote(reentrant)]
impl Bench {
    /// Gives its argument back.
    pub fn echo(&mut self, x: u64) -> u64 {
        x
    }

    /// Sums the doubles.
    pub fn total(&mut self, values: Vec<f64>) -> f64 {
        values.iter().sum()
    }

    /// Gives a bulk array back.
    pub fn bulk(&mut self, values: Vec<f64>) -> Vec<f64> {
        values
    }

    /// Sets its state from a bulk array it is lent, and gives its state
    /// back where it lies (a code's setter and getter in one call).
    pub fn exchange(&mut self, values: &[f64]) -> &[f64] {
        self.state.clear();
        self.state.extend_from_slice(values);
        &self.state
    }
}

/// The mean time of one trip over `trips`, the median of five batches.
fn median_trip(trips: usize, mut trip: impl FnMut()) -> Duration {
    for _ in 0..trips / 10 {
        trip();
    }
    let mut batches: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..trips / 5 {
                trip();
            }
            started.elapsed() / (trips / 5) as u32
        })
        .collect();
    batches.sort();
    batches[2]
}

/// Rank 0 of the raw job: ping-pongs of `out` bytes answered by `back`
/// bytes with rank 1.
fn raw() {
    let universe = mpi::initialize().expect("MPI initialises");
    let world = universe.world();
    // (request, reply) sizes: an 8-byte ping, a small call's frames, and a
    // call of 1,000 doubles.
    let sizes = [
        (8usize, 8usize, SMALL_TRIPS),
        (24, 8, SMALL_TRIPS),
        (8_024, 16, LARGE_TRIPS),
    ];
    if world.rank() == 0 {
        let peer = world.process_at_rank(1);
        for (out, back, trips) in sizes {
            let request = vec![1u8; out];
            let time = median_trip(trips, || {
                peer.send(&request[..]);
                let (reply, _) = peer.receive_vec::<u8>();
                assert_eq!(reply.len(), back);
            });
            println!("raw {out}/{back} {}", time.as_nanos());
        }
        let out = vec![1u8; bulk_bytes()];
        let mut back = vec![0u8; bulk_bytes()];
        let time = median_trip(BULK_TRIPS, || {
            peer.send(&out[..]);
            peer.receive_into(&mut back[..]);
        });
        println!("raw bulk {}", time.as_nanos());
        peer.send(&[0u8; 0][..]);
    } else {
        let parent = world.process_at_rank(0);
        // The bulk trip's bytes, received into the same buffer each time.
        let mut bulk = vec![0u8; bulk_bytes()];
        loop {
            let (message, status) = parent.matched_probe();
            let count = status.count(u8::equivalent_datatype()) as usize;
            if count == bulk.len() {
                message.matched_receive_into(&mut bulk[..]);
                parent.send(&bulk[..]);
                continue;
            }
            let (request, _) = (message, status).matched_receive_vec::<u8>();
            let back = match request.len() {
                0 => break,
                n if n > 100 => 16,
                _ => 8,
            };
            parent.send(&vec![2u8; back][..]);
        }
    }
}

/// CPU time (user + system) of process `pid` so far, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (11 and 12 after the name and
    // state), in clock ticks of 1/100 s.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Rank 0 of the remote job.
fn remote_job() {
    let session = remote::serve_if_worker(&[remote::entry::<Bench>()]);
    assert_eq!(session.worker_ranks(), 1, "run under mpirun -n 2");
    let bench = BenchRemote::start().expect("a worker on rank 1");
    let time = median_trip(SMALL_TRIPS, || {
        bench.echo(1).result().unwrap();
    });
    println!("remote small {}", time.as_nanos());
    let doubles: Vec<f64> = (0..1000).map(f64::from).collect();
    let time = median_trip(LARGE_TRIPS, || {
        bench.total(doubles.clone()).result().unwrap();
    });
    println!("remote doubles {}", time.as_nanos());
    let values: Vec<f64> = (0..bulk_bytes() / 8).map(|i| i as f64).collect();
    let mut times = Vec::new();
    for _ in 0..BULK_TRIPS {
        // The argument made before the trip, the result dropped after:
        // what is timed is the trip.
        let argument = values.clone();
        let started = Instant::now();
        let back = bench.bulk(argument).result().unwrap();
        times.push(started.elapsed());
        assert_eq!(back.len(), values.len());
    }
    times.sort();
    println!("remote bulk {}", times[times.len() / 2].as_nanos());
    // The same bytes lent to the worker and decoded back into the buffer
    // of the trip before: memory already touched on both sides.
    let mut back = Vec::new();
    let mut times = Vec::new();
    for _ in 0..BULK_TRIPS + 1 {
        let started = Instant::now();
        back = bench.exchange_into(&values, back).result().unwrap();
        times.push(started.elapsed());
        assert_eq!(back.len(), values.len());
    }
    // The first trip made the buffers.
    times.remove(0);
    times.sort();
    println!("remote in-place {}", times[times.len() / 2].as_nanos());
    // Idle: nothing asked of the worker for 3 s.
    let worker = bench.instance().pid();
    let (rank0, rank1) = (cpu_time(std::process::id()), cpu_time(worker));
    std::thread::sleep(Duration::from_secs(3));
    let (rank0, rank1) = (
        cpu_time(std::process::id()) - rank0,
        cpu_time(worker) - rank1,
    );
    println!("idle cpu {} {}", rank0.as_millis(), rank1.as_millis());
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the raw and remote jobs in turn and reports.
fn driver() {
    let exe = std::env::current_exe().expect("this executable");
    let mut results: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for round in 0..ROUNDS {
        for mode in ["raw", "remote"] {
            let output = Command::new("mpirun")
                .args(["-n", "2"])
                .arg(&exe)
                .env(MODE, mode)
                .output()
                .expect("mpirun runs (install an MPI: apt-get install mpich libmpich-dev)");
            assert!(
                output.status.success(),
                "{mode} job failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            for line in String::from_utf8_lossy(&output.stdout).lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                if let [what, kind, rest @ ..] = words.as_slice() {
                    let key = format!("{what} {kind}");
                    for (i, value) in rest.iter().enumerate() {
                        if let Ok(v) = value.parse::<f64>() {
                            results.entry(format!("{key} {i}")).or_default().push(v);
                        }
                    }
                }
            }
        }
        eprintln!("round {} of {ROUNDS} done", round + 1);
    }
    let mut get = |key: &str| {
        median(
            results
                .get_mut(key)
                .map(Vec::as_mut_slice)
                .unwrap_or(&mut [f64::NAN]),
        )
    };
    let raw8 = get("raw 8/8 0");
    let raw_small = get("raw 24/8 0");
    let raw_large = get("raw 8024/16 0");
    let small = get("remote small 0");
    let doubles = get("remote doubles 0");
    let (raw_bulk, bulk) = (get("raw bulk 0"), get("remote bulk 0"));
    let in_place = get("remote in-place 0");
    let (idle0, idle1) = (get("idle cpu 0"), get("idle cpu 1"));
    println!("medians of {ROUNDS} jobs each (mpirun -n 2, one batch median per job):");
    println!(
        "  raw ping-pong, 8 bytes each way:        {:>9.2} µs",
        raw8 / 1e3
    );
    println!(
        "  raw ping-pong, 24 out / 8 back:         {:>9.2} µs",
        raw_small / 1e3
    );
    println!(
        "  remote small call (echo u64):           {:>9.2} µs  ({:.2}x the 24/8 raw ping-pong)",
        small / 1e3,
        small / raw_small
    );
    println!(
        "  raw ping-pong, 8,024 out / 16 back:     {:>9.2} µs",
        raw_large / 1e3
    );
    println!(
        "  remote call with 1,000 doubles:         {:>9.2} µs  ({:.2}x the 8,024/16 raw ping-pong)",
        doubles / 1e3,
        doubles / raw_large
    );
    let mb = bulk_bytes() as f64 / 1e6;
    println!(
        "  raw round trip of {mb:.0} MB:             {:>9.1} ms  ({:.0} MB/s)",
        raw_bulk / 1e6,
        mb / (raw_bulk / 1e9)
    );
    println!(
        "  remote Vec<f64> of {mb:.0} MB there and back: {:>6.1} ms  ({:.0} MB/s, {:.2}x the raw round trip)",
        bulk / 1e6,
        mb / (bulk / 1e9),
        bulk / raw_bulk
    );
    println!(
        "  the same lent and decoded in place:     {:>9.1} ms  ({:.0} MB/s, {:.2}x the raw round trip)",
        in_place / 1e6,
        mb / (in_place / 1e9),
        in_place / raw_bulk
    );
    println!(
        "  idle 3 s, CPU time: rank 0 {idle0:.0} ms, worker rank {idle1:.0} ms ({:.1} % of a core)",
        idle1 / 30.0
    );
}

fn main() {
    match std::env::var(MODE).as_deref() {
        Ok("raw") => raw(),
        Ok("remote") => remote_job(),
        _ => {
            // Under `cargo bench` (not a rank): a worker rank never gets here.
            let _ = remote::serve_if_worker(&[remote::entry::<Bench>()]);
            driver()
        }
    }
}
