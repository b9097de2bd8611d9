// A task cannot borrow `&mut self` beyond the call.
#[derive(Clone)]
struct Motor;

impl Motor {
    #[concertina::asynchronous]
    fn move_to(&mut self, mm: f64) -> f64 {
        mm
    }
}

fn main() {}
