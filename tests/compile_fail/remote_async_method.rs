// A remote method is a blocking fn.
#[derive(Default)]
struct Model;

#[concertina::remote]
impl Model {
    pub fn new() -> Self {
        Model
    }

    pub async fn evolve(&mut self, t: f64) -> f64 {
        t
    }
}

fn main() {}
