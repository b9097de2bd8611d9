//! Legacy codes side by side, as AMUSE runs them: a model whose state is
//! process-global (like a Fortran COMMON block) cannot have two instances
//! in one process — the second overwrites the first's state. In worker
//! processes of their own they run side by side, correctly and in
//! parallel, and when one crashes the other goes on.
//!
//! Run: `cargo run --release --example legacy_codes [CELLS] [STEPS]`
//! (defaults: 200,000 cells, 400 steps).

use std::sync::Mutex;
use std::time::Instant;

use concertina::remote;
use concertina::Error;

/// The model's state, global as in the legacy code it stands for.
static COMMON: Mutex<Vec<f64>> = Mutex::new(Vec::new());

/// A 1-D diffusion on a ring whose state lives in `COMMON`.
struct Legacy;

#[concertina::remote]
impl Legacy {
    /// Sets the global state up: `cells` cells, a hot spot at `hot`.
    pub fn new(cells: usize, hot: usize) -> Self {
        let mut state = COMMON.lock().unwrap();
        *state = vec![0.0; cells];
        state[hot % cells] = 1000.0;
        Legacy
    }

    /// Evolves the global state by `steps` explicit steps.
    pub fn evolve(&mut self, steps: u32) -> f64 {
        let mut state = COMMON.lock().unwrap();
        let n = state.len();
        let mut next = vec![0.0; n];
        for _ in 0..steps {
            for i in 0..n {
                let (left, right) = (state[(i + n - 1) % n], state[(i + 1) % n]);
                next[i] = state[i] + 0.25 * (left - 2.0 * state[i] + right);
            }
            std::mem::swap(&mut *state, &mut next);
        }
        checksum(&state)
    }

    /// A checksum of the state: weighted by position, so that a moved or
    /// mixed state shows.
    pub fn checksum(&self) -> f64 {
        checksum(&COMMON.lock().unwrap())
    }

    /// What a crashing legacy code does.
    pub fn crash(&mut self) {
        eprintln!("legacy: array index out of bounds; aborting");
        std::process::abort()
    }
}

fn checksum(state: &[f64]) -> f64 {
    state
        .iter()
        .enumerate()
        .map(|(i, x)| x * (i as f64 + 1.0))
        .sum()
}

fn main() -> Result<(), Error> {
    // In a worker process this serves the model and never returns.
    let _session = remote::serve_if_worker(&[remote::entry::<Legacy>()]);

    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let cells = args
        .next()
        .unwrap_or(Ok(200_000))
        .expect("CELLS: a whole number");
    let steps = args
        .next()
        .unwrap_or(Ok(400))
        .expect("STEPS: a whole number") as u32;
    let (hot_a, hot_b) = (cells / 4, cells / 2);

    // The reference: each model alone, one after the other.
    let started = Instant::now();
    let reference_a = Legacy::new(cells, hot_a).evolve(steps);
    let reference_b = Legacy::new(cells, hot_b).evolve(steps);
    let sequential = started.elapsed();
    println!("legacy model: {cells} cells, {steps} steps, state in a process-global");
    println!(
        "  alone, one after the other: a = {reference_a:.6e}, b = {reference_b:.6e} ({:.0} ms)",
        sequential.as_secs_f64() * 1e3
    );

    // Two instances in this process: they share the global state.
    let mut a = Legacy::new(cells, hot_a);
    let mut b = Legacy::new(cells, hot_b); // overwrites a's state
    a.evolve(steps / 2);
    b.evolve(steps / 2);
    let (mixed_a, mixed_b) = (a.evolve(steps - steps / 2), b.evolve(steps - steps / 2));
    let corrupted = mixed_a != reference_a || mixed_b != reference_b;
    println!(
        "  two instances in one process: a = {mixed_a:.6e}, b = {mixed_b:.6e} — {}",
        if corrupted {
            "corrupted, as expected"
        } else {
            "NOT corrupted (unexpected)"
        }
    );

    // Two workers: side by side, each with its own global state.
    let started = Instant::now();
    let (a, b) = (
        LegacyRemote::start(cells, hot_a)?,
        LegacyRemote::start(cells, hot_b)?,
    );
    let (evolved_a, evolved_b) = (a.evolve(steps), b.evolve(steps));
    let (remote_a, remote_b) = (evolved_a.result()?, evolved_b.result()?);
    let parallel = started.elapsed();
    let correct = remote_a == reference_a && remote_b == reference_b;
    println!(
        "  two workers (pids {} and {}): a = {remote_a:.6e}, b = {remote_b:.6e} — {} ({:.0} ms, {:.2}x the sequential run)",
        a.instance().pid(),
        b.instance().pid(),
        if correct { "identical to the reference" } else { "DIFFERENT" },
        parallel.as_secs_f64() * 1e3,
        sequential.as_secs_f64() / parallel.as_secs_f64()
    );

    // One worker crashes mid-run; the other goes on.
    let (c, d) = (
        LegacyRemote::start(cells, hot_a)?,
        LegacyRemote::start(cells, hot_b)?,
    );
    let first_half = c.evolve(steps / 2);
    let crashed = c.crash();
    let after_crash = c.evolve(steps / 2);
    let other = d.evolve(steps);
    first_half.result()?;
    match (crashed.result(), after_crash.result()) {
        (Err(Error::WorkerLost(why)), Err(Error::WorkerLost(_))) => {
            println!(
                "  worker {} crashed: {}",
                c.instance().pid(),
                why.to_string().replace('\n', " | ")
            );
        }
        outcome => println!("  the crash was not reported as expected: {outcome:?}"),
    }
    let other = other.result()?;
    println!(
        "  worker {} went on: b = {other:.6e} — {}",
        d.instance().pid(),
        if other == reference_b {
            "identical to the reference"
        } else {
            "DIFFERENT"
        }
    );
    if !corrupted || !correct || other != reference_b {
        std::process::exit(1);
    }
    Ok(())
}
