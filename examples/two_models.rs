//! Two coupled simulation codes, as in OMUSE's "two Dales models" story:
//! two 2-D heat-diffusion models (a slow "land" and a fast "sea") evolve to
//! a target time side by side, each on its own `Instance`. At every coupling
//! interval their shared edge is exchanged by asynchronous reads and writes
//! that go through the same queues, so they happen between the right
//! evolve calls. A `RequestPool` waits for the evolve calls, an `indicatif`
//! progress bar showing how many are done; synchronous calls read the final state.
//!
//! Run: `cargo run --release --example two_models [GRID] [INTERVALS]`
//! (defaults: a 256×256 grid, 8 coupling intervals).

use std::time::Instant;

use concertina::{Error, Instance, Pool, RequestPool};
use indicatif::{ProgressIterator, ProgressStyle};

#[path = "sim/heat.rs"]
mod heat;

use heat::HeatModel;

const T_END: f64 = 0.04;

fn models(n: usize) -> (HeatModel, HeatModel) {
    (
        HeatModel::new(n, 0.9, 0.75, 0.5),
        HeatModel::new(n, 1.0, 0.25, 0.5),
    )
}

fn main() -> Result<(), Error> {
    let n = heat::parse_arg("two_models", 1, "GRID", 256, 8..=2048);
    let intervals = heat::parse_arg("two_models", 2, "INTERVALS", 8, 1..=1000);
    println!(
        "two_models: two {n}x{n} heat-diffusion models to t = {T_END}, coupled {intervals} times"
    );

    // Sequential: one model after the other, then the exchange.
    let started = Instant::now();
    let (mut land, mut sea) = models(n);
    heat::couple_in_turn(&mut land, &mut sea, T_END, intervals);
    let sequential = started.elapsed();

    // Concurrent: each model an Instance on a shared pool.
    let pool = Pool::builder().name("models").build()?;
    let started = Instant::now();
    let (land_model, sea_model) = models(n);
    let (land_i, sea_i): (Instance<HeatModel>, Instance<HeatModel>) =
        (pool.instance(land_model), pool.instance(sea_model));
    let mut requests = RequestPool::new();
    for k in 1..=intervals {
        let t = T_END * k as f64 / intervals as f64;
        requests.add(land_i.spawn(move |m| m.evolve(t)));
        requests.add(sea_i.spawn(move |m| m.evolve(t)));
        // Reads queue behind the evolve calls, writes behind the reads of the other model.
        let land_edge = land_i.spawn(|m| m.edge(false));
        let sea_edge = sea_i.spawn(|m| m.edge(true));
        drop(land_i.spawn_after(sea_edge, |m, edge| m.couple(false, edge)));
        drop(sea_i.spawn_after(land_edge, |m, edge| m.couple(true, edge)));
    }
    // The pool's requests as they finish, with a progress bar (on a terminal).
    let style = ProgressStyle::with_template("  {bar:40} {pos}/{len} evolve calls done")
        .expect("a valid template");
    let mut reached = 0.0_f64;
    for (_, outcome) in requests.completed().progress_with_style(style) {
        reached = reached.max(outcome?);
    }
    println!("  both models reached t = {reached:.5}");
    // Synchronous calls wait for everything queued before them.
    let (land_heat, land_peak) = land_i.call(|m| (m.total_heat(), m.peak()))?;
    let (sea_heat, sea_peak) = sea_i.call(|m| (m.total_heat(), m.peak()))?;
    let concurrent = started.elapsed();

    println!("  land: mean heat {land_heat:.6}, peak {land_peak:.4}");
    println!("  sea:  mean heat {sea_heat:.6}, peak {sea_peak:.4}");
    let same = (land_heat, land_peak, sea_heat, sea_peak)
        == (land.total_heat(), land.peak(), sea.total_heat(), sea.peak());
    println!(
        "  identical to the sequential run: {}",
        if same { "yes" } else { "NO" }
    );
    println!("  sequential: {:>8.1} ms", sequential.as_secs_f64() * 1e3);
    println!(
        "  concurrent: {:>8.1} ms on pool {:?} ({} threads)",
        concurrent.as_secs_f64() * 1e3,
        pool.name(),
        pool.threads()
    );
    println!(
        "  speed-up:   {:.2}x",
        sequential.as_secs_f64() / concurrent.as_secs_f64()
    );
    if !same {
        std::process::exit(1);
    }
    Ok(())
}
