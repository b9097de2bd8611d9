// The task runs after the call returns: its arguments are owned.
#[concertina::asynchronous]
fn count(line: &str) -> usize {
    line.len()
}

fn main() {
    let text = String::from("1 2 3");
    let _ = count(&text);
}

// A `&'static` argument is fine: it outlives the task.
#[concertina::asynchronous]
fn label(name: &'static str) -> usize {
    name.len()
}
