// The value stays in its worker: a method borrows it.
struct Model;

#[concertina::remote]
impl Model {
    pub fn new() -> Self {
        Model
    }

    pub fn finish(self) -> u32 {
        0
    }
}

fn main() {}
