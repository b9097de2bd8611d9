//! Time from SIGINT to a blocked wait returning `Err(Interrupted)`, over
//! many child processes (this program re-run as the child).
//!
//! Run: `cargo bench --bench interrupt` (200 runs; `INTERRUPT_RUNS=N` for
//! more or fewer). Two figures per run bracket the truth: from just before
//! `kill -INT` is started (an upper bound: it includes starting kill(1))
//! and from the moment kill(1) has exited, when the signal was already sent
//! (a lower bound: the child may have run a little before we look).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn child() {
    let motion = concertina::spawn(|| {
        while !concertina::cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    std::thread::spawn(|| {
        while concertina::interrupt::blocked_waits() == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        println!("ready");
    });
    let outcome = motion.result();
    println!("returned {outcome:?}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    if std::env::var_os("CONCERTINA_INTERRUPT_CHILD").is_some() {
        return child();
    }
    if std::env::args().any(|a| a == "--list") {
        return; // cargo bench asks benches to list themselves
    }
    let runs: usize = std::env::var("INTERRUPT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let exe = std::env::current_exe().unwrap();
    let (mut upper, mut lower) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut process = Command::new(&exe)
            .env("CONCERTINA_INTERRUPT_CHILD", "1")
            .env_remove("CONCERTINA_CTRLC")
            .env_remove("CONCERTINA_DISABLE_ASYNC")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = process.id().to_string();
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        let before_kill = Instant::now();
        assert!(Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
        let after_kill = Instant::now();
        let line = lines.next().unwrap().unwrap();
        let returned = Instant::now();
        assert_eq!(line, "returned Err(Interrupted)");
        assert!(process.wait().unwrap().success());
        upper.push((returned - before_kill).as_secs_f64() * 1e3);
        lower.push((returned - after_kill).as_secs_f64() * 1e3);
    }
    for v in [&mut upper, &mut lower] {
        v.sort_by(f64::total_cmp);
    }
    println!("SIGINT -> wait returned, {runs} child processes (ms):");
    println!("| measured from | median | p90 | p99 | max |");
    println!("|---|---:|---:|---:|---:|");
    for (name, v) in [
        ("before starting kill(1) (upper bound)", &upper),
        ("kill(1) exited (lower bound)", &lower),
    ] {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} | {:.2} |",
            percentile(v, 0.5),
            percentile(v, 0.9),
            percentile(v, 0.99),
            v[v.len() - 1]
        );
    }
}
