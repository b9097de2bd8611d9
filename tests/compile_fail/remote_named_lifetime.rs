// A borrowed argument lives for its call only.
struct Model;

#[concertina::remote]
impl Model {
    pub fn new() -> Self {
        Model
    }

    pub fn label(&mut self, name: &'static str) -> usize {
        name.len()
    }
}

fn main() {}
