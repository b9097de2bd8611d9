// A remote method's types are known to both processes.
struct Model;

#[concertina::remote]
impl Model {
    pub fn new() -> Self {
        Model
    }

    pub fn scale<T: Into<f64>>(&mut self, factor: T) -> f64 {
        factor.into()
    }
}

fn main() {}
