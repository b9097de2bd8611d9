//! A small simulated beamline: a motor with a physical model (it moves at a
//! set speed, a stop decelerates it to rest, it logs what it did), a pump,
//! and a camera whose commands expose a frame and read it out, its counts
//! peaking when the motor is at 5 mm. Moves are issued asynchronously; a
//! pipelined scan holds the motor, the camera and the pump's flow locked —
//! each frame's readout runs while the motor moves on to the next — and
//! another thread's flow change waits its turn; one move is
//! cancelled and the next waits until the motor has really stopped; an
//! emergency stop aborts the last one; the motor's own log shows that no
//! two moves ever overlapped. Ctrl-C at any point stops all devices, once.
//!
//! Run: `cargo run --example beamline`

#[path = "sim/motor.rs"]
mod sim;

use std::sync::Arc;
use std::time::{Duration, Instant};

use concertina::device::Command;
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

/// A camera: `trigger` exposes a frame where the motor stands (counts
/// peak at 5 mm), `readout` reads the last frame out (the slow part) and
/// says whether the motor moved meanwhile.
fn camera(motor: &Device, sim: &SimMotor) -> Result<Device, Error> {
    let position = motor.parameter::<f64>("position")?;
    let exposed = Arc::new(Mutex::new(None::<u32>));
    let (expose, read) = (exposed.clone(), exposed);
    // An action that reads another parameter: its failure is this one's.
    let trigger = Command::builder("trigger")
        .try_action(move |()| {
            std::thread::sleep(Duration::from_millis(5)); // exposure
            let x = position.get_sync()? - 5.0;
            *expose.lock() = Some((1000.0 * (-x * x / 2.0).exp()).round() as u32);
            Ok::<(), Error>(())
        })
        .build()?;
    let sim = sim.clone();
    let readout = Command::builder("readout")
        .action(move |()| {
            let mut moved = false;
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(1)); // the sensor is read out
                moved |= sim.is_moving();
            }
            (read.lock().take().unwrap_or(0), moved)
        })
        .build()?;
    Device::builder("camera")
        .command(trigger)
        .command(readout)
        .build()
}

fn main() -> Result<(), Error> {
    let sim = SimMotor::new(0.1, Duration::from_millis(1));
    let (motor, pump) = (motor(&sim)?, pump()?);
    let camera = camera(&motor, &sim)?;
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

    println!("2. a pipelined scan with the motor, the camera and the pump's flow locked");
    let flow = pump.parameter::<f64>("flow")?;
    let position = motor.parameter::<f64>("position")?;
    let trigger = camera.command::<(), ()>("trigger")?;
    let readout = camera.command::<(), (u32, bool)>("readout")?;
    {
        let _guard = concertina::lock!(motor, camera, pump.member("flow")?)?;
        let other = flow.clone();
        let meddler = std::thread::spawn(move || {
            let asked = Instant::now();
            other.set_sync(9.0).map(|()| asked.elapsed())
        });
        let (started, mut overlapped) = (Instant::now(), 0);
        position.set(3.0).result()?;
        for step in 3..=7 {
            trigger.run_sync(())?;
            // The holder's operations run under its lock at once: the
            // readout of this frame and the move to the next overlap.
            let frame = readout.run(());
            let next = (step < 7).then(|| position.set(f64::from(step + 1)));
            let (counts, moved) = frame.result()?;
            overlapped += usize::from(moved);
            println!(
                "   {:4.1} mm  {counts:5} counts  (flow {:.1} ml/min)",
                f64::from(step),
                flow.get_sync()?
            );
            if let Some(next) = next {
                next.result()?;
            }
        }
        println!(
            "   5 frames in {:.0} ms; {overlapped} of 4 readouts ran while the motor moved on",
            started.elapsed().as_secs_f64() * 1e3
        );
        drop(_guard);
        let waited = meddler.join().expect("the other thread does not panic")?;
        println!(
            "   another thread's flow change waited {:.0} ms for the scan to end",
            waited.as_secs_f64() * 1e3
        );
    }

    println!("3. a move cancelled halfway, and the next one at once");
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
        motor.abort() + pump.abort()
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

    position.wait()?;
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
