// What a method changes in an argument would stay in the worker.
struct Model;

#[concertina::remote]
impl Model {
    pub fn new() -> Self {
        Model
    }

    pub fn smooth(&mut self, grid: &mut [f64]) -> usize {
        grid.len()
    }
}

fn main() {}
