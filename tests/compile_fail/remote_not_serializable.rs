// Arguments and results cross a process boundary: they must be serde types.
struct Model;

/// Not `Serialize` nor `Deserialize`.
pub struct Grid {
    pub cells: Vec<f64>,
}

#[concertina::remote]
impl Model {
    pub fn new() -> Self {
        Model
    }

    pub fn load(&mut self, grid: Grid) -> usize {
        grid.cells.len()
    }
}

fn main() {}
