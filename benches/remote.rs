//! Remote instances, each beside its reference in the same run:
//!
//! * a small call's round trip, against a raw ping-pong of the same bytes
//!   over the same kind of socket with a child process (target ≤ 1.5×), and
//!   against a local `Instance` call;
//! * 10,000 small calls one by one, in one message with a future each, and
//!   vectorised (one call over arrays), against one call taking and
//!   returning an array of 10,000 (target ≤ 2×);
//! * a 100 MiB array there and back, against a raw socket round trip of
//!   the same bytes;
//! * a call carrying 1,000 doubles;
//! * starting a worker (target ≤ 20 ms);
//! * a worker's death to `WorkerLost` (target ≤ 50 ms).
//!
//! The bench binary is its own worker: `main` serves first.
//! Run: `cargo bench --bench remote`.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use common::bulk_bytes;
use concertina::remote;
use concertina::Instance;
use criterion::{criterion_group, Criterion};

/// The code under measure.
#[derive(Default)]
struct Bench {
    sum: f64,
    state: Vec<f64>,
}

#[concertina::remote]
impl Bench {
    /// Gives its argument back.
    pub fn echo(&mut self, x: u64) -> u64 {
        x
    }

    /// Sums 1,000 doubles (or any number).
    pub fn total(&mut self, values: Vec<f64>) -> f64 {
        self.sum = values.iter().sum();
        self.sum
    }

    /// Gives its arguments back (the array form of `echo`).
    pub fn echo_all(&mut self, xs: Vec<u64>) -> Vec<u64> {
        xs
    }

    /// Gives a bulk array back (the round trip of large numeric data).
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

    /// Exits the worker with status 1.
    pub fn exit(&mut self) {
        std::process::exit(1)
    }
}

/// The raw peer: echoes `reply` bytes for every `request` bytes read (or,
/// with `RAW_BULK_ENV` set to a size, that many bytes for as many).
const RAW_ENV: &str = "CONCERTINA_BENCH_RAW";
const RAW_BULK_ENV: &str = "CONCERTINA_BENCH_RAW_BULK";
const REQUEST: usize = 20;
const REPLY: usize = 12;

fn raw_echo(path: &str) -> ! {
    let mut socket = UnixStream::connect(path).unwrap();
    if let Some(bulk) = std::env::var_os(RAW_BULK_ENV) {
        let mut buffer = vec![0u8; bulk.to_string_lossy().parse().unwrap()];
        while socket.read_exact(&mut buffer).is_ok() {
            if socket.write_all(&buffer).is_err() {
                break;
            }
        }
        std::process::exit(0)
    }
    let mut request = [0u8; REQUEST];
    let reply = [7u8; REPLY];
    while socket.read_exact(&mut request).is_ok() {
        if socket.write_all(&reply).is_err() {
            break;
        }
    }
    std::process::exit(0)
}

/// A child of this executable echoing over a Unix socket, like a worker.
fn raw_peer(bulk: Option<usize>) -> (UnixStream, std::process::Child) {
    let path =
        std::env::temp_dir().join(format!("concertina-bench-raw-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command.env(RAW_ENV, &path);
    if let Some(bytes) = bulk {
        command.env(RAW_BULK_ENV, bytes.to_string());
    }
    let child = command.spawn().unwrap();
    let (socket, _) = listener.accept().unwrap();
    let _ = std::fs::remove_file(&path);
    (socket, child)
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("remote");
    let (mut socket, mut child) = raw_peer(None);
    group.bench_function("raw_socket_ping_pong", |b| {
        let request = [1u8; REQUEST];
        let mut reply = [0u8; REPLY];
        b.iter(|| {
            socket.write_all(&request).unwrap();
            socket.read_exact(&mut reply).unwrap();
        })
    });
    drop(socket);
    let _ = child.wait();

    let worker = BenchRemote::start().unwrap();
    group.bench_function("remote_call", |b| {
        b.iter(|| worker.echo(1).result().unwrap())
    });
    let local = Instance::new(Bench::default());
    group.bench_function("local_instance_call", |b| {
        b.iter(|| local.spawn(|m| m.echo(1)).result().unwrap())
    });

    group.bench_function("10000_calls_one_by_one", |b| {
        b.iter(|| {
            let calls: Vec<_> = (0..10_000).map(|i| worker.echo(i)).collect();
            concertina::try_wait_all(calls).unwrap()
        })
    });
    group.bench_function("10000_calls_one_message", |b| {
        b.iter(|| concertina::try_wait_all(worker.echo_each((0..10_000).map(|i| (i,)))).unwrap())
    });
    group.bench_function("10000_calls_vectorised", |b| {
        b.iter(|| {
            worker
                .echo_many((0..10_000).map(|i| (i,)))
                .result()
                .unwrap()
        })
    });
    group.bench_function("10000_points_one_array_call", |b| {
        b.iter(|| worker.echo_all((0..10_000).collect()).result().unwrap())
    });

    let doubles: Vec<f64> = (0..1000).map(f64::from).collect();
    group.bench_function("call_with_1000_doubles", |b| {
        b.iter(|| worker.total(doubles.clone()).result().unwrap())
    });

    group.sample_size(10);
    let bytes = bulk_bytes();
    let (mut socket, mut child) = raw_peer(Some(bytes));
    let out = vec![1u8; bytes];
    let mut back = vec![0u8; bytes];
    group.bench_function("bulk_raw_socket_round_trip", |b| {
        b.iter(|| {
            // The peer reads it all, then writes it all back.
            socket.write_all(&out).unwrap();
            socket.read_exact(&mut back).unwrap();
        })
    });
    drop(socket);
    let _ = child.wait();
    let values: Vec<f64> = (0..bytes / 8).map(|i| i as f64).collect();
    // The argument is made before each trip (a caller that keeps its array
    // clones it, one that does not moves it), and the result dropped
    // after: what is timed is the trip.
    group.bench_function("bulk_remote_round_trip", |b| {
        b.iter_batched(
            || values.clone(),
            |values| worker.bulk(values).result().unwrap(),
            criterion::BatchSize::PerIteration,
        )
    });

    // The same bytes lent to the worker (decoded into what it kept from
    // the trip before) and decoded back into the caller's buffer of the
    // trip before: memory already touched on both sides.
    let mut back = Vec::new();
    group.bench_function("bulk_in_place_round_trip", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                back = worker
                    .exchange_into(&values, std::mem::take(&mut back))
                    .result()
                    .unwrap();
                total += started.elapsed();
            }
            total
        })
    });

    group.sample_size(20);
    group.bench_function("worker_start", |b| b.iter(|| BenchRemote::start().unwrap()));
    group.bench_function("death_to_worker_lost", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let worker = BenchRemote::start().unwrap();
                let started = Instant::now();
                let outcome = worker.exit().result();
                total += started.elapsed();
                assert!(matches!(outcome, Err(concertina::Error::WorkerLost(_))));
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, round_trip);

fn main() {
    let _session = remote::serve_if_worker(&[remote::entry::<Bench>()]);
    if let Some(path) = std::env::var_os(RAW_ENV) {
        raw_echo(&path.to_string_lossy());
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
