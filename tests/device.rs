//! Devices and parameters: futures from get and set, soft limits, cancel
//! operations, abort, and locks (device covers parameters, re-entrant,
//! timeouts, other threads' operations held off).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{pool, Gate};
use concertina::device::Lockable;
use concertina::Backend;
use concertina::{Device, Error, Future, Parameter};
use parking_lot::Mutex;

/// A simulated axis: its position, and counters of sets and stops.
#[derive(Clone, Default)]
struct Axis {
    position: Arc<Mutex<f64>>,
    sets: Arc<AtomicUsize>,
    stops: Arc<AtomicUsize>,
}

impl Axis {
    fn parameter(&self, name: &str) -> Parameter<f64> {
        let (read, write, sets, stops) = (
            self.position.clone(),
            self.position.clone(),
            self.sets.clone(),
            self.stops.clone(),
        );
        Parameter::builder(name)
            .getter(move || *read.lock())
            .setter(move |v| {
                sets.fetch_add(1, Ordering::SeqCst);
                *write.lock() = v;
            })
            .on_cancel(move || {
                stops.fetch_add(1, Ordering::SeqCst);
            })
            .limits(-100.0, 100.0)
            .unit("mm")
            .build()
            .unwrap()
    }
}

/// A device with one fresh axis.
/// A motor with one axis `x`, and that axis to look at.
fn motor_with_axis() -> (Axis, Device) {
    let axis = Axis::default();
    let motor = Device::builder("motor")
        .parameter(axis.parameter("x"))
        .build()
        .unwrap();
    (axis, motor)
}

fn device_with(name: &str, axis: &str) -> Device {
    Device::builder(name)
        .parameter(Axis::default().parameter(axis))
        .build()
        .unwrap()
}

#[test]
fn soft_limits_refuse_the_value_before_the_setter() {
    let axis = Axis::default();
    let p = axis.parameter("x");
    p.set(100.0).result().unwrap();
    p.set(-100.0).result().unwrap();
    let err = p.set(100.5).result().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `x`: 100.5 mm is outside its soft limits [-100.0 mm, 100.0 mm]"
    );
    assert!(matches!(err, Error::Device(_)));
    assert_eq!(
        axis.sets.load(Ordering::SeqCst),
        2,
        "the refused value never reached the setter"
    );
    assert_eq!(p.limits(), Some(("-100.0".into(), "100.0".into())));
}

#[test]
fn bad_limits_and_names_are_refused_at_build() {
    let err = Parameter::<f64>::builder("x")
        .setter(|_| {})
        .limits(5.0, 1.0)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `x`: lower limit 5.0 is above upper limit 1.0"
    );
    let err = Parameter::<f64>::builder("x").build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `x` has neither a getter nor a setter: give it at least one"
    );
    let err = Device::builder("2nd-motor").build().unwrap_err();
    assert!(err
        .to_string()
        .starts_with("device name \"2nd-motor\" is not accepted"));
}

#[test]
fn a_parameter_belongs_to_one_device() {
    let p = Axis::default().parameter("x");
    let _stage = Device::builder("stage")
        .parameter(p.clone())
        .build()
        .unwrap();
    let err = Device::builder("other").parameter(p).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `x` already belongs to device `stage`"
    );
}

#[test]
fn by_name_access_names_what_is_wrong() {
    let motor = device_with("motor", "position");
    let err = motor.get::<f64>("speed").result().unwrap_err();
    assert_eq!(
        err.to_string(),
        "device `motor` has no parameter `speed` (it has: position)"
    );
    let err = motor.set("position", 3u32).result().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `motor.position` holds f64, not u32"
    );
    motor.set("position", 3.0).result().unwrap();
    assert_eq!(
        motor.parameter::<f64>("position").unwrap().get_sync(),
        Ok(3.0)
    );
    assert_eq!(
        format!("{motor:?}"),
        r#"Device { name: "motor", parameters: ["position"], commands: [], serial: false }"#
    );
}

/// A parameter whose set opens `started`, then waits for `release`; its
/// stop counts into `stops`. Gated work needs real threads, whatever
/// `CONCERTINA_DISABLE_ASYNC` says, so it runs on a pool of its own.
struct Gated {
    parameter: Parameter<f64>,
    started: Gate,
    release: Gate,
    _threads: concertina::Pool,
}

fn gated(name: &str, stops: Arc<AtomicUsize>) -> Gated {
    let (started, release) = (Gate::new(), Gate::new());
    let (st, r) = (started.clone(), release.clone());
    let threads = pool(Backend::Crossbeam, 2);
    let parameter = Parameter::<f64>::builder(name)
        .setter(move |_| {
            st.open();
            r.wait();
        })
        .on_cancel(move || {
            stops.fetch_add(1, Ordering::SeqCst);
        })
        .pool(&threads)
        .build()
        .unwrap();
    Gated {
        parameter,
        started,
        release,
        _threads: threads,
    }
}

#[test]
fn cancelling_a_set_in_flight_runs_the_stop_once() {
    let stops = Arc::new(AtomicUsize::new(0));
    let Gated {
        parameter: p,
        started,
        release,
        _threads,
    } = gated("x", stops.clone());
    let moving = p.set(5.0);
    started.wait();
    assert!(moving.cancel());
    assert!(!moving.cancel());
    assert_eq!(stops.load(Ordering::SeqCst), 1);
    assert_eq!(moving.result(), Err(Error::Cancelled));
    release.open();
}

#[test]
fn abort_cancels_operations_in_flight_or_stops_directly() {
    let (x, y) = (Axis::default(), Axis::default());
    let Gated {
        parameter: slow,
        started,
        release,
        _threads,
    } = gated("slow", x.stops.clone());
    let stage = Device::builder("stage")
        .parameter(slow.clone())
        .parameter(y.parameter("y"))
        .build()
        .unwrap();
    let moving = slow.set(1.0);
    started.wait();
    assert_eq!(stage.abort(), 2);
    assert_eq!(
        moving.result(),
        Err(Error::Cancelled),
        "the move in flight was cancelled"
    );
    assert_eq!(
        x.stops.load(Ordering::SeqCst),
        1,
        "its stop ran once, as the cleanup"
    );
    assert_eq!(
        y.stops.load(Ordering::SeqCst),
        1,
        "the idle axis was stopped directly"
    );
    release.open();
}

#[test]
fn set_after_waits_for_its_dependency_and_fails_with_it() {
    let axis = Axis::default();
    let p = axis.parameter("x");
    let release = Gate::new();
    let r = release.clone();
    let threads = pool(Backend::Crossbeam, 1);
    let prior = threads.spawn(move || r.wait());
    let chained = p.set_after(prior, 7.0);
    assert!(
        !chained.wait_timeout(Duration::from_millis(10)),
        "the set waits for its dependency"
    );
    release.open();
    chained.result().unwrap();
    assert_eq!(p.get_sync(), Ok(7.0));
    let failed = p.set_after(concertina::spawn(|| -> () { panic!("beam lost") }), 8.0);
    assert_eq!(
        failed.result(),
        Err(Error::DependencyFailed(Box::new(Error::Panicked(
            "beam lost".into()
        ))))
    );
    assert_eq!(p.get_sync(), Ok(7.0), "the set never happened");
}

#[test]
fn get_after_reads_once_its_dependency_has_finished() {
    let reads = Arc::new(AtomicUsize::new(0));
    let value = Arc::new(Mutex::new(0.0_f64));
    let (r, v, w) = (reads.clone(), value.clone(), value.clone());
    let p = Parameter::builder("x")
        .getter(move || {
            r.fetch_add(1, Ordering::SeqCst);
            *v.lock()
        })
        .setter(move |x| *w.lock() = x)
        .build()
        .unwrap();
    let release = Gate::new();
    let r = release.clone();
    let threads = pool(Backend::Crossbeam, 1);
    let prior = threads.spawn(move || r.wait());
    let reading = p.get_after(prior);
    assert!(
        !reading.wait_timeout(Duration::from_millis(10)),
        "the read waits for its dependency"
    );
    p.set(3.0).result().unwrap();
    release.open();
    assert_eq!(reading.result(), Ok(3.0));
    let moved = p.set(4.0);
    assert_eq!(p.get_after(moved.when_done()).result(), Ok(4.0));
    let before = reads.load(Ordering::SeqCst);
    let failed = p.get_after(concertina::spawn(|| -> () { panic!("beam lost") }));
    assert_eq!(
        failed.result(),
        Err(Error::DependencyFailed(Box::new(Error::Panicked(
            "beam lost".into()
        ))))
    );
    // Cancelled while its dependency runs: never made.
    let release = Gate::new();
    let r = release.clone();
    let cancelled = p.get_after(threads.spawn(move || r.wait()));
    assert!(cancelled.cancel());
    release.open();
    assert_eq!(cancelled.result(), Err(Error::Cancelled));
    p.wait().unwrap();
    assert_eq!(reads.load(Ordering::SeqCst), before, "no read was made");
}

#[test]
fn a_write_protected_parameter_refuses_sets_at_once() {
    let writes = Arc::new(Mutex::new(Vec::new()));
    let w = writes.clone();
    let release = Gate::new();
    let r = release.clone();
    let p = Parameter::builder("voltage")
        .getter(|| 1.5_f64)
        .setter(move |v: f64| {
            if v == 1.0 {
                r.wait();
            }
            w.lock().push(v);
        })
        .pool(&pool(Backend::Crossbeam, 1))
        .build()
        .unwrap();
    let _device = Device::builder("supply")
        .parameter(p.clone())
        .build()
        .unwrap();
    let before = p.set(1.0);
    p.protect();
    assert!(p.is_protected());
    let refused = p.set(2.0);
    assert!(refused.done(), "refused at once, not queued");
    let error = refused.result().unwrap_err();
    assert_eq!(
        error.to_string(),
        "parameter `supply.voltage` is write-protected: unprotect() it to set it"
    );
    assert!(p.set_after(Future::ready(()), 3.0).result().is_err());
    release.open();
    assert_eq!(before.result(), Ok(()), "a set asked for before still runs");
    assert_eq!(p.get_sync(), Ok(1.5), "reads go on");
    p.unprotect().unwrap();
    p.set(4.0).result().unwrap();
    assert_eq!(*writes.lock(), [1.0, 4.0]);

    p.protect_for_good();
    let error = p.unprotect().unwrap_err();
    assert_eq!(
        error.to_string(),
        "parameter `supply.voltage` is write-protected for good"
    );
    assert!(p.set(5.0).result().is_err());
    // Not the exclusive lock: that one still works.
    drop(p.lock().unwrap());
    assert_eq!(*writes.lock(), [1.0, 4.0]);
}

#[test]
fn waiting_for_a_value_reads_until_it_is_there_times_out_or_is_cancelled() {
    let reads = Arc::new(AtomicUsize::new(0));
    let r = reads.clone();
    // Warms by a degree at every reading, from 20.
    let temperature = Parameter::builder("temperature")
        .getter(move || 20.0 + r.fetch_add(1, Ordering::SeqCst) as f64)
        .pool(&pool(Backend::Crossbeam, 1))
        .build()
        .unwrap();
    let settled = temperature.wait_for(23.0, 0.25, Some(Duration::from_secs(60)));
    assert_eq!(settled.result(), Ok(23.0));
    assert_eq!(reads.load(Ordering::SeqCst), 4);

    let never = temperature.wait_until(
        |t| *t < 0.0,
        Duration::from_millis(1),
        Some(Duration::from_millis(30)),
    );
    assert_eq!(
        never.result(),
        Err(Error::Timeout(Duration::from_millis(30)))
    );

    let endless = temperature.wait_until(|t| *t < 0.0, Duration::from_millis(1), None);
    std::thread::sleep(Duration::from_millis(20));
    assert!(endless.cancel());
    assert_eq!(endless.result(), Err(Error::Cancelled));
    std::thread::sleep(Duration::from_millis(30));
    temperature.wait().unwrap();
    let after_cancel = reads.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(
        reads.load(Ordering::SeqCst),
        after_cancel,
        "the reads stopped"
    );
}

#[test]
fn stash_and_restore_are_a_stack_in_the_parameters_order() {
    let value = Arc::new(Mutex::new(1.0_f64));
    let (r, w) = (value.clone(), value.clone());
    let p = Parameter::builder("gap")
        .getter(move || *r.lock())
        .setter(move |mm| *w.lock() = mm)
        .limits(0.0, 10.0)
        .build()
        .unwrap();
    // Asked for without waiting: each runs in its turn.
    let asked = [p.stash(), p.set(2.0), p.stash(), p.set(3.0), p.restore()];
    assert_eq!(p.get_sync(), Ok(2.0));
    assert!(concertina::wait_all(asked).iter().all(Result::is_ok));
    p.restore().result().unwrap();
    assert_eq!(p.get_sync(), Ok(1.0));
    let empty = p.restore().result().unwrap_err();
    assert_eq!(
        empty.to_string(),
        "parameter `gap` has nothing stashed to restore: stash() first"
    );
    // Protected: refused at once, the stash kept.
    p.stash().result().unwrap();
    p.set(4.0).result().unwrap();
    p.protect();
    assert!(p.restore().result().is_err());
    p.unprotect().unwrap();
    p.restore().result().unwrap();
    assert_eq!(p.get_sync(), Ok(1.0));
    let write_only = Parameter::builder("w").setter(|_: u8| {}).build().unwrap();
    assert_eq!(
        write_only.stash().result().unwrap_err().to_string(),
        "parameter `w` cannot be read"
    );
}

#[test]
fn soft_limits_change_at_run_time_and_can_be_protected() {
    let written = Arc::new(Mutex::new(Vec::new()));
    let w = written.clone();
    let p = Parameter::builder("angle")
        .setter(move |a: f64| w.lock().push(a))
        .limits(0.0, 90.0)
        .unit("deg")
        .build()
        .unwrap();
    assert!(p.set(120.0).result().is_err());
    p.set_limits(0.0, 180.0).unwrap();
    assert_eq!(p.limits(), Some(("0.0".into(), "180.0".into())));
    p.set(120.0).result().unwrap();
    // Bad limits: a clear error, the limits as they were.
    assert_eq!(
        p.set_limits(f64::NAN, 1.0).unwrap_err().to_string(),
        "parameter `angle`: limits NaN and 1.0 cannot be compared (is one NaN?): expected lower <= upper"
    );
    assert_eq!(p.limits(), Some(("0.0".into(), "180.0".into())));
    p.protect_limits();
    assert_eq!(
        p.clear_limits().unwrap_err().to_string(),
        "parameter `angle`: its limits are protected: unprotect_limits() to change them"
    );
    assert!(p.set_limits(-1.0, 1.0).is_err());
    assert_eq!(
        p.set(200.0).result().unwrap_err().to_string(),
        "parameter `angle`: 200.0 deg is outside its soft limits [0.0 deg, 180.0 deg]"
    );
    p.unprotect_limits();
    p.clear_limits().unwrap();
    assert_eq!(p.limits(), None);
    p.set(200.0).result().unwrap();
    assert_eq!(*written.lock(), [120.0, 200.0]);
}

#[test]
fn device_errors_are_told_apart_by_kind() {
    use concertina::error::DeviceErrorKind as Kind;
    fn kind(outcome: Result<impl std::fmt::Debug, Error>) -> Kind {
        match outcome {
            Err(Error::Device(e)) => e.kind().clone(),
            other => panic!("not a device error: {other:?}"),
        }
    }
    let io = Parameter::<u8>::builder("io")
        .try_getter(|| "x".parse::<u8>())
        .build()
        .unwrap();
    let gap = Parameter::<f64>::builder("gap")
        .getter(|| 1.0)
        .setter(|_| {})
        .limits(0.0, 5.0)
        .build()
        .unwrap();
    let counts = Parameter::builder("counts")
        .getter(|| 1u32)
        .build()
        .unwrap();
    let device = Device::builder("slits")
        .parameter(gap.clone())
        .parameter(counts.clone())
        .parameter(io.clone())
        .build()
        .unwrap();
    assert!(matches!(
        kind(gap.set(9.0).result()),
        Kind::SoftLimit { parameter, value, lower, upper, .. }
            if parameter == "slits.gap" && value == "9.0" && lower == "0.0" && upper == "5.0"
    ));
    assert!(matches!(
        kind(counts.set(2).result()),
        Kind::NotWritable { .. }
    ));
    gap.protect();
    assert!(matches!(
        kind(gap.set(1.0).result()),
        Kind::WriteProtected {
            permanently: false,
            ..
        }
    ));
    assert!(matches!(
        kind(device.parameter::<f64>("width")),
        Kind::UnknownParameter { name, known, .. } if name == "width" && known.len() == 3
    ));
    assert!(matches!(
        kind(device.parameter::<i64>("gap")),
        Kind::WrongType { held: "f64", .. }
    ));
    match kind(io.get().result()) {
        Kind::Failed {
            operation, source, ..
        } => {
            assert_eq!(operation, "read");
            assert_eq!(source.to_string(), "invalid digit found in string");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        kind(gap.restore().result()),
        Kind::WriteProtected { .. }
    ));
}

/// True when `objects` can be locked by another thread within 20 ms.
fn lockable_elsewhere(objects: Vec<Box<dyn Lockable + Send>>) -> bool {
    std::thread::spawn(move || {
        let refs: Vec<&dyn Lockable> = objects.iter().map(|o| &**o as &dyn Lockable).collect();
        concertina::device::lock_timeout(&refs, Duration::from_millis(20)).is_ok()
    })
    .join()
    .unwrap()
}

#[test]
fn a_device_lock_covers_its_parameters_and_the_other_way_round() {
    let motor = Device::builder("motor")
        .parameter(Axis::default().parameter("x"))
        .parameter(Axis::default().parameter("y"))
        .build()
        .unwrap();
    let (x, y) = (motor.member("x").unwrap(), motor.member("y").unwrap());
    {
        let _device = motor.lock().unwrap();
        assert!(
            !lockable_elsewhere(vec![Box::new(x.clone())]),
            "a locked device covers its parameter"
        );
        assert!(!lockable_elsewhere(vec![Box::new(motor.clone())]));
    }
    {
        let _param = concertina::lock!(x).unwrap();
        assert!(
            !lockable_elsewhere(vec![Box::new(motor.clone())]),
            "a locked parameter excludes its device"
        );
        assert!(
            lockable_elsewhere(vec![Box::new(y.clone())]),
            "but not its sibling"
        );
    }
    assert!(
        lockable_elsewhere(vec![Box::new(motor.clone()), Box::new(x)]),
        "all released"
    );
}

#[test]
fn locks_are_re_entrant_on_one_thread() {
    let motor = device_with("motor", "x");
    let x = motor.member("x").unwrap();
    let a = motor.lock().unwrap();
    let b = concertina::lock!(motor, x).unwrap();
    let c = motor.lock().unwrap();
    drop(a);
    drop(c);
    assert!(
        !lockable_elsewhere(vec![Box::new(motor.clone())]),
        "still held once"
    );
    drop(b);
    assert!(lockable_elsewhere(vec![Box::new(motor.clone())]));
}

#[test]
fn a_lock_timeout_names_what_could_not_be_had() {
    let pump = device_with("pump", "flow");
    let (locked, release) = (Gate::new(), Gate::new());
    let (l, r, held) = (locked.clone(), release.clone(), pump.clone());
    let holder = std::thread::spawn(move || {
        let _guard = held.lock().unwrap();
        l.open();
        r.wait();
    });
    locked.wait();
    let flow = pump.member("flow").unwrap();
    let err = concertina::device::lock_timeout(&[&flow as &dyn Lockable], Duration::from_millis(5))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not lock pump.flow within 5ms: held by another task or thread"
    );
    release.open();
    holder.join().unwrap();
}

#[test]
fn operations_of_other_threads_wait_for_the_holder() {
    let (axis, motor) = motor_with_axis();
    let x = motor.parameter::<f64>("x").unwrap();
    let guard = motor.lock().unwrap();
    // The holder's own set goes ahead.
    x.set(1.0).result().unwrap();
    // Another thread's set waits until the holder releases.
    let (tx, rx) = mpsc::channel();
    let other = x.clone();
    let setter = std::thread::spawn(move || tx.send(other.set(2.0).result()).unwrap());
    assert!(
        rx.recv_timeout(Duration::from_millis(20)).is_err(),
        "the other set went ahead under the lock"
    );
    assert_eq!(*axis.position.lock(), 1.0);
    drop(guard);
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).unwrap(), Ok(()));
    setter.join().unwrap();
    assert_eq!(*axis.position.lock(), 2.0);
}

#[test]
fn the_lock_macro_takes_devices_and_parameters_in_any_order() {
    let motor = device_with("motor", "x");
    let pump = device_with("pump", "flow");
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let (motor, pump, barrier) = (motor.clone(), pump.clone(), barrier.clone());
            std::thread::spawn(move || -> Result<usize, Error> {
                barrier.wait();
                let mut held = 0;
                for _ in 0..200 {
                    let flow = pump.member("flow")?;
                    let _guard = if i == 0 {
                        concertina::lock!(motor, flow)?
                    } else {
                        concertina::lock!(flow, motor)?
                    };
                    held += 1;
                }
                Ok(held)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), Ok(200));
    }
}

#[test]
fn operations_started_by_the_holder_act_for_it_even_when_nested() {
    let (_axis, motor) = motor_with_axis();
    let x = motor.parameter::<f64>("x").unwrap();
    // A detector whose reading reads the motor: a nested operation on a pool thread.
    let counts = Parameter::builder("counts")
        .getter(move || x.get_sync().unwrap() * 10.0)
        .build()
        .unwrap();
    let _guard = motor.lock().unwrap();
    motor.set("x", 4.0).result().unwrap();
    assert_eq!(
        counts.get().result(),
        Ok(40.0),
        "the nested read acted for the holder"
    );
}

#[test]
fn a_lock_waits_for_other_owners_operations_in_flight() {
    let (started, release) = (Gate::new(), Gate::new());
    let (st, r) = (started.clone(), release.clone());
    let threads = pool(Backend::Crossbeam, 1);
    let p = Parameter::<f64>::builder("slow")
        .setter(move |_| {
            st.open();
            r.wait();
        })
        .pool(&threads)
        .build()
        .unwrap();
    let other = p.clone();
    let mover = std::thread::spawn(move || other.set(1.0).result());
    started.wait();
    let err = concertina::device::lock_timeout(&[&p as &dyn Lockable], Duration::from_millis(20))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not lock slow within 20ms: held by another task or thread"
    );
    release.open();
    assert_eq!(mover.join().unwrap(), Ok(()));
    let _guard =
        concertina::device::lock_timeout(&[&p as &dyn Lockable], Duration::from_secs(60)).unwrap();
}

#[test]
fn a_limit_error_inside_a_device_names_the_device_too() {
    let motor = device_with("motor", "x");
    let err = motor.set("x", 500.0).result().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `motor.x`: 500.0 mm is outside its soft limits [-100.0 mm, 100.0 mm]"
    );
}

#[test]
fn builders_say_what_they_hold_when_printed() {
    let p = Parameter::<f64>::builder("gap")
        .getter(|| 1.0)
        .limits(0.0, 5.0)
        .unit("mm");
    assert_eq!(
        format!("{p:?}"),
        "ParameterBuilder { name: \"gap\", readable: true, writable: false, stop: false, \
         limits: Some(Ok((\"0.0\", \"5.0\"))), unit: Some(\"mm\"), concurrent_reads: false, pool: None }"
    );
    let d = Device::builder("slits").parameter(p.build().unwrap());
    assert_eq!(
        format!("{d:?}"),
        "DeviceBuilder { name: \"slits\", parameters: [\"gap\"], commands: [], serial: false }"
    );
}

/// A device's stash and restore cover every parameter that can be read and
/// written, on the parameters' own stacks, the last added restored first.
#[test]
fn a_device_stashes_and_restores_every_parameter_it_can_read_and_write() {
    let (x, y) = (Axis::default(), Axis::default());
    *x.position.lock() = 1.0;
    *y.position.lock() = 2.0;
    let written = Arc::new(Mutex::new(Vec::new()));
    let w = written.clone();
    let stage = Device::builder("stage")
        .parameter(x.parameter("x"))
        .parameter(y.parameter("y"))
        .parameter(
            Parameter::builder("temperature")
                .getter(|| 293.0_f64)
                .build()
                .unwrap(),
        )
        .parameter(
            Parameter::builder("speed")
                .setter(move |v: f64| w.lock().push(v))
                .build()
                .unwrap(),
        )
        .command(
            concertina::device::Command::<(), ()>::builder("home")
                .action(|()| {})
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    stage.stash().result().unwrap();
    stage.set("x", 5.0).result().unwrap();
    stage.set("y", 6.0).result().unwrap();
    stage.restore().result().unwrap();
    assert_eq!((*x.position.lock(), *y.position.lock()), (1.0, 2.0));
    assert!(
        written.lock().is_empty(),
        "a parameter it cannot read is left alone"
    );
    // The device's stash is the parameters' own: a parameter's restore
    // pops what the device stashed.
    stage.stash().result().unwrap();
    stage.set("x", 7.0).result().unwrap();
    let xp = stage.parameter::<f64>("x").unwrap();
    xp.restore().result().unwrap();
    assert_eq!(*x.position.lock(), 1.0);
    match stage.restore().result() {
        Err(Error::Device(e)) => assert!(
            matches!(e.kind(), concertina::error::DeviceErrorKind::NothingStashed { parameter, .. } if parameter == "stage.x"),
            "{e}"
        ),
        other => panic!("x had nothing stashed: {other:?}"),
    }
}
