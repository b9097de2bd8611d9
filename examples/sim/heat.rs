//! A 2-D heat-diffusion model, shared by the coupled-model examples: an
//! ordinary type, also made a remote code (`HeatModelRemote`) that runs in
//! a worker process or on an MPI rank; and the examples' argument reading.

/// Explicit finite differences for ∂u/∂t = κ∇²u on the unit square, with
/// u = 0 on the outer boundary.
#[derive(Clone)]
pub struct HeatModel {
    n: usize,
    kappa: f64,
    dt: f64,
    t: f64,
    u: Vec<f64>,
    next: Vec<f64>,
}

#[concertina::remote(reentrant)]
impl HeatModel {
    /// An `n`×`n` grid with diffusivity `kappa` and a hot spot at
    /// (`hot_x`, `hot_y`).
    pub fn new(n: usize, kappa: f64, hot_x: f64, hot_y: f64) -> Self {
        let hot = (hot_x, hot_y);
        let dx = 1.0 / (n - 1) as f64;
        let mut u = vec![0.0; n * n];
        for y in 1..n - 1 {
            for x in 1..n - 1 {
                let (px, py) = (x as f64 * dx - hot.0, y as f64 * dx - hot.1);
                u[y * n + x] = 100.0 * (-(px * px + py * py) / 0.01).exp();
            }
        }
        // The largest stable step of the explicit scheme, with a margin.
        let dt = 0.2 * dx * dx / kappa;
        HeatModel {
            n,
            kappa,
            dt,
            t: 0.0,
            next: u.clone(),
            u,
        }
    }

    fn step(&mut self, dt: f64) {
        let n = self.n;
        let r = self.kappa * dt * ((n - 1) as f64).powi(2);
        for y in 1..n - 1 {
            for x in 1..n - 1 {
                let i = y * n + x;
                let lap =
                    self.u[i - 1] + self.u[i + 1] + self.u[i - n] + self.u[i + n] - 4.0 * self.u[i];
                self.next[i] = self.u[i] + r * lap;
            }
        }
        std::mem::swap(&mut self.u, &mut self.next);
        self.t += dt;
    }

    /// Evolves to `t_end` (the last step shortened to land on it).
    pub fn evolve(&mut self, t_end: f64) -> f64 {
        while self.t < t_end - 1e-12 {
            let dt = self.dt.min(t_end - self.t);
            self.step(dt);
        }
        self.t
    }

    /// The column next to the east (`east = true`) or west boundary.
    pub fn edge(&self, east: bool) -> Vec<f64> {
        let x = if east { self.n - 2 } else { 1 };
        (0..self.n).map(|y| self.u[y * self.n + x]).collect()
    }

    /// Relaxes the boundary-adjacent column towards the neighbour's edge.
    pub fn couple(&mut self, east: bool, neighbour: Vec<f64>) {
        let x = if east { self.n - 2 } else { 1 };
        for (y, v) in neighbour.iter().enumerate().take(self.n - 1).skip(1) {
            let i = y * self.n + x;
            self.u[i] = 0.5 * (self.u[i] + v);
        }
    }

    /// The mean temperature.
    pub fn total_heat(&self) -> f64 {
        self.u.iter().sum::<f64>() / (self.n * self.n) as f64
    }

    /// The highest temperature.
    pub fn peak(&self) -> f64 {
        self.u.iter().copied().fold(0.0, f64::max)
    }

    /// The whole grid, for an exact comparison.
    pub fn grid(&self) -> Vec<f64> {
        self.u.clone()
    }
}

/// The reference run: `land` (its west edge) and `sea` (its east edge)
/// evolved one after the other to `t_end`, their edges exchanged
/// `intervals` times on the way.
pub fn couple_in_turn(land: &mut HeatModel, sea: &mut HeatModel, t_end: f64, intervals: usize) {
    for k in 1..=intervals {
        let t = t_end * k as f64 / intervals as f64;
        land.evolve(t);
        sea.evolve(t);
        let (land_edge, sea_edge) = (land.edge(false), sea.edge(true));
        land.couple(false, sea_edge);
        sea.couple(true, land_edge);
    }
}

/// Command-line argument `index` of `program`, a whole number in `range`,
/// or `default` when absent; anything else ends the program with a message
/// naming what is accepted.
pub fn parse_arg(
    program: &str,
    index: usize,
    name: &str,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> usize {
    match std::env::args().nth(index) {
        None => default,
        Some(text) => match text.parse::<usize>() {
            Ok(v) if range.contains(&v) => v,
            _ => {
                eprintln!(
                    "{program}: {name} must be a whole number from {} to {}, got {text:?}",
                    range.start(),
                    range.end()
                );
                std::process::exit(2);
            }
        },
    }
}
