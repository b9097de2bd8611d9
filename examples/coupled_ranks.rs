//! Two coupled heat-diffusion models (a "land" and a "sea") as remote
//! codes: on the worker ranks of an MPI job when run under `mpirun`, in
//! worker processes of this machine otherwise — the same code, the
//! transport chosen by the configuration. Their shared edge is exchanged
//! at every coupling interval, and the final grids are compared bit for bit
//! with the same coupling run in this process.
//!
//! Run on ranks (rank 0 runs this program, ranks 1 and 2 the models):
//! `cargo build --release --features mpi --example coupled_ranks &&
//! mpirun -n 3 target/release/examples/coupled_ranks [GRID] [INTERVALS]`.
//! Run on local worker processes:
//! `cargo run --release --example coupled_ranks [GRID] [INTERVALS]`
//! (defaults: a 192×192 grid, 8 coupling intervals).

use std::time::Instant;

use concertina::{remote, Error};

#[path = "sim/heat.rs"]
mod heat;

use heat::{HeatModel, HeatModelRemote};

const T_END: f64 = 0.02;

/// The land's and the sea's parameters: (diffusivity, hot spot).
const LAND: (f64, f64, f64) = (0.9, 0.75, 0.5);
const SEA: (f64, f64, f64) = (1.0, 0.25, 0.5);

fn main() -> Result<(), Error> {
    // On a worker (rank or process) this serves the model and never returns;
    // on rank 0 the session keeps the ranks until the end of `main`.
    let session = remote::serve_if_worker(&[remote::entry::<HeatModel>()]);
    let n = heat::parse_arg("coupled_ranks", 1, "GRID", 192, 8..=2048);
    let intervals = heat::parse_arg("coupled_ranks", 2, "INTERVALS", 8, 1..=1000);
    println!("coupled_ranks: two {n}x{n} models to t = {T_END}, coupled {intervals} times");

    // In this process, one model after the other.
    let started = Instant::now();
    let mut land = HeatModel::new(n, LAND.0, LAND.1, LAND.2);
    let mut sea = HeatModel::new(n, SEA.0, SEA.1, SEA.2);
    heat::couple_in_turn(&mut land, &mut sea, T_END, intervals);
    let in_process = started.elapsed();

    // Remote: each model on a worker of its own, evolving side by side.
    let started = Instant::now();
    let land_r = HeatModelRemote::start(n, LAND.0, LAND.1, LAND.2)?;
    let sea_r = HeatModelRemote::start(n, SEA.0, SEA.1, SEA.2)?;
    let mut reached = Vec::new();
    for k in 1..=intervals {
        let t = T_END * k as f64 / intervals as f64;
        // Each call queues behind the ones made before on its model: the
        // edges are read after the evolve calls, and written before the
        // next ones.
        reached.push(land_r.evolve(t));
        reached.push(sea_r.evolve(t));
        let (land_edge, sea_edge) = (land_r.edge(false), sea_r.edge(true));
        let (land_edge, sea_edge) = (land_edge.result()?, sea_edge.result()?);
        drop(land_r.couple(false, sea_edge));
        drop(sea_r.couple(true, land_edge));
    }
    let reached = concertina::try_wait_all(reached).map_err(|failure| failure.error)?;
    let (land_grid, sea_grid) = (land_r.grid().result()?, sea_r.grid().result()?);
    let remote_time = started.elapsed();

    let place = |m: &HeatModelRemote| match m.instance().worker().rank() {
        Some(rank) => format!("rank {rank}"),
        None => format!("process {}", m.instance().pid()),
    };
    println!(
        "  land on {}, sea on {} ({} worker ranks in this job); both reached t = {:.5}",
        place(&land_r),
        place(&sea_r),
        session.worker_ranks(),
        reached.iter().copied().fold(0.0, f64::max)
    );
    let bits = |grid: &[f64]| grid.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    let same = bits(&land_grid) == bits(&land.grid()) && bits(&sea_grid) == bits(&sea.grid());
    println!(
        "  land: mean heat {:.6}, peak {:.4}; sea: mean heat {:.6}, peak {:.4}",
        land.total_heat(),
        land.peak(),
        sea.total_heat(),
        sea.peak()
    );
    println!(
        "  bit-identical to the in-process run: {}",
        if same { "yes" } else { "NO" }
    );
    println!(
        "  in this process: {:>8.1} ms",
        in_process.as_secs_f64() * 1e3
    );
    println!(
        "  remote, coupled: {:>8.1} ms",
        remote_time.as_secs_f64() * 1e3
    );
    if !same {
        std::process::exit(1);
    }
    Ok(())
}
