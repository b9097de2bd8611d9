//! What the `tracing` feature shows: a span per task (pool, task id), per
//! instance call (instance, call id) and per device operation (parameter,
//! operation), and events for a cancel, a panic, a deadlock and a Ctrl-C —
//! here printed by `tracing-subscriber`'s formatter.
//!
//! Run: `cargo run --example trace --features tracing`
//! (`RUST_LOG=concertina=trace` shows every span opening and closing).

use std::time::Duration;

use concertina::{Backend, Device, Error, Instance, Parameter, Pool};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("concertina=debug,trace=info")),
        )
        .with_span_events(FmtSpan::CLOSE)
        .with_thread_names(true)
        .init();
    // The panic below is reported by its `tracing` event; keep stderr to that.
    std::panic::set_hook(Box::new(|_| {}));

    let pool = Pool::builder()
        .name("detectors")
        .threads(2)
        .backend(Backend::Crossbeam)
        .build()?;

    // Tasks: each in a span `task{pool=detectors id=..}`, its own events inside.
    let reads: Vec<_> = (0..3)
        .map(|channel| {
            pool.spawn(move || {
                tracing::info!(channel, "integrating");
                std::thread::sleep(Duration::from_millis(5));
                channel * 100
            })
        })
        .collect();
    tracing::info!(counts = ?concertina::wait_all(reads), "reads done");

    // A panic and a cancel are events.
    let _ = pool
        .spawn(|| -> u8 { panic!("detector 3 offline") })
        .result();
    let stuck = pool.spawn(|| {
        while !concertina::cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    stuck.cancel();
    let _ = stuck.result();

    // Instance calls: `instance_call{instance=.. id=..}`.
    let model = pool.instance(0.0_f64);
    drop(model.spawn(|t| *t += 0.5));
    tracing::info!(t = model.call(|t| *t)?, "model advanced");

    // Device operations: `device_op{parameter=stage.x op=set}`.
    let stage = Device::builder("stage")
        .parameter(
            Parameter::<f64>::builder("x")
                .setter(|_| std::thread::sleep(Duration::from_millis(2)))
                .build()?,
        )
        .build()?;
    stage.parameter::<f64>("x")?.set(1.5).result()?;

    // A deadlock is an event: a call waiting on its own instance.
    let looped = Instance::new(0u8);
    let inner = looped.clone();
    let outcome = looped.spawn(move |_| inner.call(|n| *n)).result()?;
    tracing::info!(deadlock = outcome.is_err(), "self-wait reported");

    pool.shutdown();
    Ok(())
}
