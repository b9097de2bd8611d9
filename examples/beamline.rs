//! A small simulated beamline: a motor with a physical model (it moves at a
//! set speed, a stop decelerates it to rest, it logs what it did), a pump,
//! and a detector whose counts peak when the motor is at 5 mm. Moves are
//! issued asynchronously; a scan holds the motor and the pump's flow
//! locked while another thread's flow change waits its turn; one move is
//! cancelled and the next waits until the motor has really stopped; an
//! emergency stop aborts the last one; the motor's own log shows that no
//! two moves ever overlapped. Ctrl-C at any point stops all devices, once.
//!
//! Run: `cargo run --example beamline`

#[path = "sim/motor.rs"]
mod sim;

use std::sync::Arc;
use std::time::{Duration, Instant};

use concertina::{Device, Error, Parameter};
use parking_lot::Mutex;
use sim::SimMotor;

/// A motor axis: 0.1 mm every millisecond, soft limits ±50 mm.
fn motor(sim: &SimMotor) -> Result<Device, Error> {
    let axis = sim.parameter(50.0, concertina::default_pool()?)?;
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
    // A read that depends on another parameter: its failure is this read's.
    let counts = Parameter::builder("counts")
        .try_getter(move || {
            std::thread::sleep(Duration::from_millis(20)); // exposure
            let x = position.get_sync()? - 5.0;
            Ok::<u32, Error>((1000.0 * (-x * x / 2.0).exp()).round() as u32)
        })
        .build()?;
    Device::builder("detector").parameter(counts).build()
}

fn main() -> Result<(), Error> {
    let sim = SimMotor::new(0.1, Duration::from_millis(1));
    let (motor, pump) = (motor(&sim)?, pump()?);
    let detector = detector(&motor)?;
    motor.stop_on_interrupt();
    pump.stop_on_interrupt();

    println!("1. moves issued asynchronously, side by side");
    let started = Instant::now();
    let moving = motor.set("position", 2.0);
    let pumping = pump.set("flow", 1.5);
    moving.zip(pumping).result()?;
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

    println!("3. a move cancelled halfway, and the next one at once");
    let position = motor.parameter::<f64>("position")?;
    let far = position.set(20.0);
    std::thread::sleep(Duration::from_millis(50));
    far.cancel();
    println!("   the move reports: {}", far.result().unwrap_err());
    // Begins only once the stop has brought the motor to rest.
    position.set(10.0).result()?;
    println!("   then moved to {:.2} mm", position.get_sync()?);

    println!("4. an emergency stop");
    let back = motor.set("position", -20.0);
    std::thread::sleep(Duration::from_millis(50));
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

    position.idle()?;
    let log = sim.log();
    match sim::check_log(&log) {
        Ok(()) => println!(
            "6. the motor's log: {} events, no two moves at once",
            log.len()
        ),
        Err(e) => println!("6. the motor's log shows a fault: {e}"),
    }
    Ok(())
}
