// The attribute takes `pool = <expression>` only.
#[concertina::asynchronous(threads = 4)]
fn step() {}

fn main() {}
