//! The `tracing` feature: spans for tasks, instance calls and device
//! operations, events for cancel, panic, deadlock and Ctrl-C. Run with
//! `cargo test --features tracing --test tracing`.
#![cfg(feature = "tracing")]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Gate;
use concertina::{Backend, Device, Error, Instance, Parameter, Pool};

/// Everything the subscriber writes, for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(String::from)
            .collect()
    }

    /// The line holding every one of `parts`.
    fn find(&self, parts: &[&str]) -> Option<String> {
        self.lines()
            .into_iter()
            .find(|line| parts.iter().all(|p| line.contains(p)))
    }
}

#[test]
fn spans_and_events_name_the_pool_the_instance_and_the_parameter() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .init();
    std::panic::set_hook(Box::new(|info| {
        if !info.to_string().contains("detector offline") {
            eprintln!("{info}");
        }
    }));

    let pool = Pool::builder()
        .name("traced")
        .threads(2)
        .backend(Backend::Crossbeam)
        .build()
        .unwrap();

    // A task's own event is inside its span.
    pool.spawn(|| tracing::info!("inside a task"))
        .result()
        .unwrap();
    let line = captured.find(&["inside a task"]).expect("the task's event");
    assert!(line.contains(r#"task{pool="traced" id="#), "{line}");

    // A panic: an error event in the task's span, with the message.
    let _ = pool.spawn(|| -> u8 { panic!("detector offline") }).result();
    let line = captured
        .find(&["task panicked", "detector offline"])
        .expect("the panic event");
    assert!(
        line.contains("ERROR") && line.contains(r#"task{pool="traced""#),
        "{line}"
    );

    // A cancel.
    let started = Gate::new();
    let s = started.clone();
    let running = pool.spawn(move || {
        s.open();
        while !concertina::cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    started.wait();
    assert!(running.cancel());
    // At INFO, naming the task (its closure), wherever the cancel came from.
    let line = captured
        .find(&["INFO", "concertina", "cancelled"])
        .expect("the cancel event");
    assert!(
        line.contains("task=task `tracing::spans_and_events"),
        "{line}"
    );

    // A pool built: at INFO, with its name, backend and threads.
    let line = captured
        .find(&["INFO", "pool built"])
        .expect("the pool event");
    assert!(
        line.contains(r#"pool="traced""#)
            && line.contains("backend=Crossbeam")
            && line.contains("threads=2"),
        "{line}"
    );

    // A device operation that failed: a warning naming it and the error.
    let shutter = Device::builder("shutter")
        .parameter(
            Parameter::<bool>::builder("open")
                .try_getter(|| Err(std::io::Error::other("no answer from the PLC")))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(shutter.get::<bool>("open").result().is_err());
    let line = captured
        .find(&["WARN", "device operation failed"])
        .expect("the device failure event");
    assert!(
        line.contains("operation=shutter.open read") && line.contains("no answer from the PLC"),
        "{line}"
    );

    // An instance call's span names the instance's type.
    let model = pool.instance(7u32);
    model
        .call(|n| tracing::info!(n = *n, "inside a call"))
        .unwrap();
    let line = captured.find(&["inside a call"]).expect("the call's event");
    assert!(
        line.contains(r#"instance_call{instance="u32" id="#),
        "{line}"
    );

    // A device operation's span names the parameter and the operation.
    let stage = Device::builder("stage")
        .parameter(
            Parameter::<f64>::builder("x")
                .setter(|x| tracing::info!(x, "inside a set"))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    stage
        .parameter::<f64>("x")
        .unwrap()
        .set(1.5)
        .result()
        .unwrap();
    let line = captured
        .find(&["inside a set"])
        .expect("the setter's event");
    assert!(
        line.contains(r#"device_op{parameter=stage.x op="set"}"#),
        "{line}"
    );

    // A deadlock: a warning naming the cycle.
    let looped = Instance::new(0u8);
    let inner = looped.clone();
    let outcome = looped.spawn(move |_| inner.call(|n| *n)).result().unwrap();
    assert!(matches!(outcome, Err(Error::Deadlock(_))));
    let line = captured
        .find(&["WARN", "deadlock"])
        .expect("the deadlock event");
    assert!(line.contains("Instance<u8>"), "{line}");

    // A Ctrl-C (as `interrupt_waits` plays it): a warning with the count.
    let endless = pool.spawn(|| {
        while !concertina::cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let waiter = std::thread::spawn(move || endless.result());
    while concertina::interrupt::interrupt_waits() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(waiter.join().unwrap(), Err(Error::Interrupted));
    let line = captured
        .find(&["WARN", "Ctrl-C: interrupting the waits"])
        .expect("the interrupt event");
    assert!(line.contains("waits=1"), "{line}");
}
