// Arguments are sent to the worker: owned.
struct Model;

#[concertina::remote]
impl Model {
    pub fn new() -> Self {
        Model
    }

    pub fn set_grid(&mut self, grid: &[f64]) -> usize {
        grid.len()
    }
}

fn main() {}
