//! Ctrl-C stops the motor: a slow move runs on the pool while the main
//! thread waits on it. Press Ctrl-C during the wait: the wait cancels the
//! move, the move's stop operation runs at once, the emergency-stop hook
//! runs, and the program says so and goes on. A second Ctrl-C while the stop
//! is still under way, or a Ctrl-C when nothing is waited on, ends the
//! program with status 130 as usual.
//!
//! Run: `cargo run --example interrupt [TARGET_MM]` and press Ctrl-C
//! (default target 20 mm at 2 mm/s). Without Ctrl-C the move completes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use concertina::Error;
use parking_lot::Mutex;

const SPEED_MM_PER_S: f64 = 2.0;

fn main() {
    let target = match std::env::args().nth(1).map(|a| a.parse::<f64>()) {
        None => 20.0,
        Some(Ok(mm)) if mm.is_finite() && mm > 0.0 && mm <= 1000.0 => mm,
        Some(_) => {
            eprintln!("interrupt: TARGET_MM must be a number of millimetres in (0, 1000]");
            std::process::exit(2);
        }
    };
    let position = Arc::new(Mutex::new(0.0_f64));
    let _hook = concertina::interrupt::on_interrupt(|| {
        println!("  emergency-stop hook: all devices told to stop")
    });

    println!("moving the motor to {target} mm at {SPEED_MM_PER_S} mm/s; press Ctrl-C to stop it");
    let (moving, stopped) = (position.clone(), position.clone());
    let started = Instant::now();
    let motion = concertina::spawn(move || {
        let mut last_report = Instant::now();
        loop {
            let now = (started.elapsed().as_secs_f64() * SPEED_MM_PER_S).min(target);
            *moving.lock() = now;
            if now >= target || concertina::cancelled() {
                return now;
            }
            if last_report.elapsed() >= Duration::from_secs(1) {
                println!("  position {now:6.2} mm");
                last_report = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
    .on_cancel(move || println!("  stop(): motor halted at {:.2} mm", *stopped.lock()));

    if !concertina::interrupt::handles_ctrlc() {
        println!("  (CONCERTINA_CTRLC=0: Ctrl-C will end the program without stopping the motor)");
    }
    match motion.result() {
        Ok(mm) => println!("reached {mm:.2} mm"),
        Err(Error::Interrupted) => {
            println!("the wait was interrupted: the move was cancelled and the motor stopped");
        }
        Err(e) => println!("the move failed: {e}"),
    }
    println!("final position {:.2} mm", *position.lock());
}
