//! A small simulated beamline: a motor that moves at a set velocity and
//! reports its position while moving, a pump, and a detector whose counts
//! peak when the motor is at 5 mm. Moves are issued asynchronously; a scan
//! holds the motor and the pump's flow locked while another thread's flow
//! change waits its turn; one move is cancelled (the motor stops); an
//! emergency stop aborts the last one. Ctrl-C at any point stops all
//! devices.
//!
//! Run: `cargo run --example beamline`

use std::sync::Arc;
use std::time::{Duration, Instant};

use concertina::{Device, Error, Parameter};
use parking_lot::Mutex;

/// A motor axis that moves at `velocity` mm/s in 10 ms steps.
fn motor() -> Result<Device, Error> {
    let position = Arc::new(Mutex::new(0.0_f64));
    let (read, drive, halted) = (position.clone(), position.clone(), position);
    let axis = Parameter::builder("position")
        .getter(move || *read.lock())
        .setter(move |target: f64| {
            let velocity = 10.0; // mm/s
            let mut last_report = Instant::now();
            loop {
                let mut now = drive.lock();
                let step = (target - *now).clamp(-velocity * 0.01, velocity * 0.01);
                *now += step;
                let (at, arrived) = (*now, (target - *now).abs() < 1e-9);
                drop(now);
                // The move stops early when cancelled: the stop operation ran.
                if arrived || concertina::cancelled() {
                    return;
                }
                if last_report.elapsed() >= Duration::from_millis(150) {
                    println!("    motor at {at:6.2} mm");
                    last_report = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
        .on_cancel(move || println!("    stop(): motor halted at {:.2} mm", *halted.lock()))
        .limits(-50.0, 50.0)
        .unit("mm")
        .build()?;
    Device::builder("motor").parameter(axis).build()
}

fn pump() -> Result<Device, Error> {
    let flow = Arc::new(Mutex::new(0.0_f64));
    let (read, write) = (flow.clone(), flow);
    let rate = Parameter::builder("flow")
        .getter(move || *read.lock())
        .setter(move |ml_min: f64| {
            std::thread::sleep(Duration::from_millis(50)); // the pump ramps
            *write.lock() = ml_min;
        })
        .on_cancel(|| println!("    stop(): pump valve closed"))
        .limits(0.0, 10.0)
        .unit("ml/min")
        .build()?;
    Device::builder("pump").parameter(rate).build()
}

fn detector(motor: &Device) -> Result<Device, Error> {
    let position = motor.parameter::<f64>("position")?;
    let counts = Parameter::builder("counts")
        .getter(move || {
            std::thread::sleep(Duration::from_millis(20)); // exposure
            let x = position.get_sync().unwrap_or(f64::NAN) - 5.0;
            (1000.0 * (-x * x / 2.0).exp()).round() as u32
        })
        .build()?;
    Device::builder("detector").parameter(counts).build()
}

fn main() -> Result<(), Error> {
    let (motor, pump) = (motor()?, pump()?);
    let detector = detector(&motor)?;
    motor.stop_on_interrupt();
    pump.stop_on_interrupt();

    println!("1. moves issued asynchronously, side by side");
    let started = Instant::now();
    let moving = motor.set("position", 2.0);
    let pumping = pump.set("flow", 1.5);
    concertina::join(moving, pumping).result()?;
    println!(
        "   motor at 2 mm and flow at 1.5 ml/min after {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );

    println!("2. a scan with the motor and the pump's flow locked");
    let flow = pump.parameter::<f64>("flow")?;
    {
        let _guard = concertina::lock!(motor, pump.parameter_ref("flow")?)?;
        let other = flow.clone();
        let meddler = std::thread::spawn(move || {
            let asked = Instant::now();
            other.set_sync(9.0).map(|()| asked.elapsed())
        });
        for step in 3..=7 {
            let mm = f64::from(step);
            motor.set("position", mm).result()?;
            let counts = detector.get::<u32>("counts").result()?;
            println!(
                "   {mm:4.1} mm  {counts:5} counts  (flow {:.1} ml/min)",
                flow.get_sync()?
            );
        }
        drop(_guard);
        let waited = meddler.join().expect("the other thread does not panic")?;
        println!(
            "   another thread's flow change waited {:.0} ms for the scan to end",
            waited.as_secs_f64() * 1e3
        );
    }

    println!("3. a move cancelled halfway");
    let far = motor.set("position", 20.0);
    std::thread::sleep(Duration::from_millis(400));
    far.cancel();
    println!("   the move reports: {}", far.result().unwrap_err());

    println!("4. an emergency stop");
    let back = motor.set("position", -20.0);
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "   emergency stop: {} parameter(s) stopped",
        motor.emergency_stop() + pump.emergency_stop()
    );
    println!("   the move reports: {}", back.result().unwrap_err());
    println!(
        "   final position {:.2} mm",
        motor.get::<f64>("position").result()?
    );

    println!("5. a refused move");
    match motor.set("position", 80.0).result() {
        Err(e) => println!("   {e}"),
        Ok(()) => println!("   moved to 80 mm?"),
    }
    Ok(())
}
