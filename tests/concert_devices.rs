//! Cases ported from Concert's `concert/tests/unit/test_parameter.py`,
//! `concert/tests/unit/devices/test_device.py` and
//! `concert/tests/unit/devices/test_motor.py`: accessors return futures,
//! read-only and write-only parameters, names, soft limits, hard limits
//! (a setter that reports hitting one), identity of two devices, locking a
//! device and a parameter, emergency stop, setting a motor's position and
//! moving it relative to where it is (on the simulated motor).

#[path = "../examples/sim/motor.rs"]
mod motor;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use concertina::{Device, Error, Future, Parameter};
use parking_lot::Mutex;

fn proxy(default: i32) -> Parameter<i32> {
    let (value, write) = (Arc::new(Mutex::new(default)), Arc::new(Mutex::new(0)));
    let (r, w) = (value.clone(), value);
    drop(write);
    Parameter::builder("foo")
        .getter(move || *r.lock())
        .setter(move |v| *w.lock() = v)
        .build()
        .unwrap()
}

#[test]
fn test_func_identity() {
    let (foo1, foo2) = (proxy(42), proxy(23));
    foo1.set(15).result().unwrap();
    assert_eq!(foo1.get().result(), Ok(15));
    assert_eq!(foo2.get().result(), Ok(23));
}

#[test]
fn test_names() {
    for bad in ["1pm", "current position"] {
        assert!(
            Parameter::<i32>::builder(bad).getter(|| 0).build().is_err(),
            "{bad}"
        );
    }
    for good in ["this-is-correct", "this_too"] {
        assert!(
            Parameter::<i32>::builder(good).getter(|| 0).build().is_ok(),
            "{good}"
        );
    }
}

#[test]
fn test_read_only_parameter() {
    let parameter = Parameter::builder("foo").getter(|| 0).build().unwrap();
    assert!(parameter.is_readable());
    assert!(!parameter.is_writable());
    assert_eq!(parameter.get().result(), Ok(0));
    let err = parameter.set(1).result().unwrap_err();
    assert_eq!(err.to_string(), "parameter `foo` cannot be written");
}

#[test]
fn test_write_only_parameter() {
    let parameter = Parameter::builder("foo")
        .setter(|_: i32| {})
        .build()
        .unwrap();
    assert!(parameter.is_writable());
    assert!(!parameter.is_readable());
    parameter.set(1).result().unwrap();
    let err = parameter.get().result().unwrap_err();
    assert_eq!(err.to_string(), "parameter `foo` cannot be read");
}

#[test]
fn test_soft_limit() {
    let parameter = Parameter::builder("foo")
        .setter(|_: f64| {})
        .unit("mm")
        .limits(2.0, 4.0)
        .build()
        .unwrap();
    parameter.set(2.3).result().unwrap();
    parameter.set(2.0).result().unwrap();
    parameter.set(4.0).result().unwrap();
    assert!(matches!(parameter.set(4.2).result(), Err(Error::Device(_))));
}

struct MockDevice {
    device: Device,
    aborted: Arc<AtomicBool>,
}

fn mock_device() -> MockDevice {
    let aborted = Arc::new(AtomicBool::new(false));
    let a = aborted.clone();
    let readonly = Parameter::builder("readonly").getter(|| 1).build().unwrap();
    let writeonly = Parameter::builder("writeonly")
        .setter(|_: i32| {})
        .on_cancel(move || a.store(true, Ordering::SeqCst))
        .build()
        .unwrap();
    let device = Device::builder("mock")
        .parameter(readonly)
        .parameter(writeonly)
        .build()
        .unwrap();
    MockDevice { device, aborted }
}

#[test]
fn test_accessor_functions() {
    let d = mock_device().device;
    let got: Future<i32> = d.get("readonly");
    assert_eq!(got.result(), Ok(1));
    let set: Future<()> = d.set("writeonly", 0);
    set.result().unwrap();
}

#[test]
fn test_iterable() {
    let d = mock_device().device;
    assert!(d.names().all(|n| n == "readonly" || n == "writeonly"));
    assert_eq!(d.names().count(), 2);
}

#[test]
fn test_invalid_parameter() {
    let d = mock_device().device;
    assert!(matches!(d.member("foo"), Err(Error::Device(_))));
}

#[test]
fn test_context_manager() {
    let d = mock_device().device;
    let _guard = d.lock().unwrap();
    assert_eq!(d.get::<i32>("readonly").result(), Ok(1));
    d.set("writeonly", 2).result().unwrap();
}

#[test]
fn test_parameter_lock_acquisition() {
    let d = mock_device().device;
    let _guard = concertina::lock!(d.member("writeonly").unwrap()).unwrap();
}

#[test]
fn test_emergency_stop() {
    let mock = mock_device();
    mock.device.abort();
    assert!(mock.aborted.load(Ordering::SeqCst));
}

/// Concert's `HardLimitError`: the controller refuses a move past a limit
/// switch; here a fallible setter's error.
#[derive(Debug)]
struct HardLimitError;

impl std::fmt::Display for HardLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("hard limit reached")
    }
}

impl std::error::Error for HardLimitError {}

#[test]
fn test_hard_limit() {
    let in_limit = Arc::new(AtomicBool::new(false));
    let limit = in_limit.clone();
    let parameter = Parameter::<f64>::builder("foo")
        .try_setter(move |_| {
            if limit.load(Ordering::SeqCst) {
                Err(HardLimitError)
            } else {
                Ok(())
            }
        })
        .build()
        .unwrap();
    for v in [0.0, 0.5, 1.0] {
        parameter.set(v).result().unwrap();
    }
    in_limit.store(true, Ordering::SeqCst);
    let Err(Error::Device(err)) = parameter.set(1.5).result() else {
        panic!("expected the hard limit")
    };
    assert!(err.downcast_ref::<HardLimitError>().is_some());
}

fn dummy_motor() -> (motor::SimMotor, Device) {
    let sim = motor::SimMotor::new(0.25, std::time::Duration::from_micros(200));
    let position = sim
        .parameter(100.0, concertina::default_pool().unwrap())
        .unwrap();
    let device = Device::builder("motor")
        .parameter(position)
        .build()
        .unwrap();
    (sim, device)
}

#[test]
fn test_set_position() {
    let (sim, motor) = dummy_motor();
    let position = motor.parameter::<f64>("position").unwrap();
    position.set(1.0).result().unwrap();
    assert_eq!(position.get().result(), Ok(1.0));
    assert_eq!(sim.position(), 1.0);
}

#[test]
fn test_move() {
    let (sim, motor) = dummy_motor();
    let position = motor.parameter::<f64>("position").unwrap();
    position.set(1.0).result().unwrap();
    // Concert's `motor.move(delta)`: a relative move reads, then sets. (The
    // simulated motor's reads are concurrent: they do not wait for a set in
    // progress, so the first set is waited for.)
    let here = position.get().result().unwrap();
    position.set(here + 0.5).result().unwrap();
    assert_eq!(position.get().result(), Ok(1.5));
    motor::check_log(&sim.log()).unwrap();
}

#[test]
fn test_default_motor_has_default_calibration() {
    let (_sim, motor) = dummy_motor();
    motor.set("position", -1.0).result().unwrap();
    assert_eq!(motor.get::<f64>("position").result(), Ok(-1.0));
    motor.set("position", 2.25).result().unwrap();
    assert_eq!(motor.get::<f64>("position").result(), Ok(2.25));
}
