// A worker must know the type it makes.
struct Model<T>(T);

#[concertina::remote]
impl<T> Model<T> {
    pub fn new() -> Self {
        unimplemented!()
    }
}

fn main() {}
