//! Helpers shared by the test files: gates instead of sleeps, and one pool
//! of each threaded backend.
#![allow(dead_code)]

use std::process::Command;
use std::sync::Arc;

use concertina::{Backend, Pool};
use parking_lot::{Condvar, Mutex};

/// The threaded backends; tests that need real concurrency run on each.
pub const THREADED: [Backend; 2] = [Backend::Rayon, Backend::Crossbeam];

/// A pool of `threads` workers on `backend`, named after the backend.
pub fn pool(backend: Backend, threads: usize) -> Pool {
    Pool::builder()
        .threads(threads)
        .backend(backend)
        .name(format!("{backend:?}").to_lowercase())
        .build()
        .expect("a valid pool configuration")
}

/// A one-way gate: `wait` blocks until somebody calls `open`.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn open(&self) {
        *self.0 .0.lock() = true;
        self.0 .1.notify_all();
    }

    pub fn wait(&self) {
        let mut open = self.0 .0.lock();
        self.0 .1.wait_while(&mut open, |open| !*open);
    }

    pub fn is_open(&self) -> bool {
        *self.0 .0.lock()
    }
}

/// The variable that tells a test binary, re-run as a child, which scenario
/// its `scenario_runner` test plays.
pub const SCENARIO: &str = "CONCERTINA_TEST_SCENARIO";

/// This test binary, re-run to play `scenario` in its `scenario_runner`
/// test, with every `CONCERTINA_*` variable cleared and then `env` set.
pub fn scenario_command(scenario: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args([
        "--exact",
        "scenario_runner",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(SCENARIO, scenario);
    for var in [
        "CONCERTINA_THREADS",
        "CONCERTINA_BACKEND",
        "CONCERTINA_DISABLE_ASYNC",
        "CONCERTINA_CTRLC",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Runs `scenario` in a child; sends it SIGINT each time it says a line
/// starting with "ready"; returns what it said and its exit code.
#[cfg(unix)]
pub fn child(scenario: &str, env: &[(&str, &str)]) -> (Vec<String>, Option<i32>) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut process = scenario_command(scenario, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = process.id().to_string();
    let mut lines = Vec::new();
    for line in BufReader::new(process.stdout.take().unwrap()).lines() {
        let Some(said) = said(&line.unwrap()) else {
            continue;
        };
        if said.starts_with("ready") {
            let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
            assert!(sent.success(), "kill -INT failed");
        }
        lines.push(said);
    }
    let status = process.wait().unwrap();
    (lines, status.code())
}

/// What a scenario says, for `child` to read.
pub fn say(s: impl AsRef<str>) {
    println!("> {}", s.as_ref());
}

/// What a scenario said: its stdout lines after "> " (libtest may print
/// "test scenario_runner ... " before the first one).
pub fn said(line: &str) -> Option<String> {
    line.split_once("> ").map(|(_, said)| said.to_owned())
}

/// The threads of this process whose name starts with `prefix`, from
/// /proc (Linux); `None` elsewhere.
pub fn named_threads(prefix: &str) -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with(prefix))
            .count(),
    )
}

/// xorshift64*: a small deterministic generator for randomized tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Runs `f` on a thread of its own and returns its value, or fails the
/// test when it takes longer than `seconds`: a hang fails instead of
/// stalling the suite.
pub fn within<T: Send + 'static>(seconds: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(seconds)) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("hung: no answer within {seconds} s")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the watched code panicked")
        }
    }
}

/// Polls `done` (every 50 µs, up to 10 s) and fails the test, naming
/// `what`, when it never holds.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200_000 {
        if done() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    panic!("never happened: {what}");
}
