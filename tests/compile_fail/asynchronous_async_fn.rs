// An async fn already returns a future: nothing to make asynchronous.
#[concertina::asynchronous]
async fn read_detector() -> u32 {
    7
}

fn main() {}
