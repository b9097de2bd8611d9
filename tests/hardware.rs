//! Devices that behave like hardware: one operation at a time per
//! parameter, a cancelled set that never applies, the next move only after
//! a stop, fallible I/O, locks owned by tasks and lent along waits, lock
//! cycles reported as `Deadlock`. The motor is the simulated one of the
//! examples, whose own log is what the assertions read.

mod common;
#[path = "../examples/sim/motor.rs"]
mod motor;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{pool, wait_until, within, Gate, THREADED};
use concertina::device::Lockable;
use concertina::{Backend, Device, Error, Parameter};
use motor::{check_log, Event, SimMotor};

fn motor(backend: Backend) -> (SimMotor, Parameter<f64>) {
    let sim = SimMotor::new(0.5, Duration::from_micros(500));
    let position = sim.parameter(100.0, &pool(backend, 2)).unwrap();
    (sim, position)
}

#[test]
fn a_cancelled_move_is_stopped_before_the_next_move_begins() {
    for backend in THREADED {
        within(60, move || {
            let (sim, position) = motor(backend);
            let far = position.set(50.0);
            wait_until("the move began", || !sim.log().is_empty());
            assert!(far.cancel());
            assert_eq!(far.result(), Err(Error::Cancelled));
            // Submitted at once: must wait for the stop and the setter.
            let back = position.set(0.0);
            assert_eq!(back.result(), Ok(()));
            position.wait().unwrap();
            let log = sim.log();
            check_log(&log).unwrap();
            assert!(matches!(log[0], Event::Start { target, .. } if target == 50.0));
            let stop = log
                .iter()
                .position(|e| matches!(e, Event::Stop { .. }))
                .unwrap();
            let first_end = log
                .iter()
                .position(|e| matches!(e, Event::End { arrived: false, .. }))
                .expect("the first move ended short of its target");
            let second = log
                .iter()
                .position(|e| matches!(e, Event::Start { target, .. } if *target == 0.0))
                .unwrap();
            assert!(stop < second && first_end < second, "{log:?}");
            assert_eq!(sim.position(), 0.0);
        });
    }
}

#[test]
fn sets_in_a_row_run_one_at_a_time_in_submission_order() {
    for backend in THREADED {
        within(60, move || {
            let (sim, position) = motor(backend);
            let targets = [3.0, -2.0, 4.5, 1.0, 0.5];
            let moves: Vec<_> = targets.iter().map(|t| position.set(*t)).collect();
            for m in moves {
                m.result().unwrap();
            }
            let log = sim.log();
            check_log(&log).unwrap();
            let started: Vec<f64> = log
                .iter()
                .filter_map(|e| match e {
                    Event::Start { target, .. } => Some(*target),
                    _ => None,
                })
                .collect();
            assert_eq!(started, targets);
            assert_eq!(sim.position(), 0.5);
        });
    }
}

#[test]
fn gets_wait_for_the_set_before_them_unless_reads_are_concurrent() {
    within(60, || {
        let (release, entered) = (Gate::new(), Gate::new());
        let value = Arc::new(Mutex::new(0));
        let (r, e, v, w) = (
            release.clone(),
            entered.clone(),
            value.clone(),
            value.clone(),
        );
        let threads = pool(Backend::Crossbeam, 2);
        let serial = Parameter::builder("x")
            .pool(&threads)
            .getter(move || *v.lock().unwrap())
            .setter(move |x| {
                e.open();
                r.wait();
                *w.lock().unwrap() = x;
            })
            .build()
            .unwrap();
        let set = serial.set(7);
        entered.wait();
        let read = serial.get();
        release.open();
        assert_eq!(read.result(), Ok(7), "the read ran after the set");
        set.result().unwrap();

        let (release, entered) = (Gate::new(), Gate::new());
        let (r, e) = (release.clone(), entered.clone());
        let concurrent = Parameter::builder("y")
            .pool(&threads)
            .getter(|| 1)
            .setter(move |_: i32| {
                e.open();
                r.wait();
            })
            .concurrent_reads()
            .build()
            .unwrap();
        let set = concurrent.set(2);
        entered.wait();
        assert_eq!(concurrent.get().result(), Ok(1), "read beside the set");
        release.open();
        set.result().unwrap();
    });
}

#[test]
fn the_next_operation_waits_for_the_stop_and_the_cancelled_setter() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 2);
            let (setter_in, stop_in, stop_release) = (Gate::new(), Gate::new(), Gate::new());
            let setter_returned = Arc::new(AtomicBool::new(false));
            let stop_returned = Arc::new(AtomicBool::new(false));
            let seen = Arc::new(Mutex::new(Vec::new()));
            let (si, sr, seen2) = (setter_in.clone(), setter_returned.clone(), seen.clone());
            let (st_in, st_rel, st_ret) =
                (stop_in.clone(), stop_release.clone(), stop_returned.clone());
            let (sr2, st_ret2) = (setter_returned.clone(), stop_returned.clone());
            let p = Parameter::builder("axis")
                .setter(move |x: i32| {
                    seen2.lock().unwrap().push((
                        x,
                        sr2.load(Ordering::SeqCst),
                        st_ret2.load(Ordering::SeqCst),
                    ));
                    if x == 1 {
                        si.open();
                        // A slow controller: notices the cancel late.
                        while !concertina::cancelled() {
                            std::thread::yield_now();
                        }
                        sr.store(true, Ordering::SeqCst);
                    }
                })
                .on_cancel(move || {
                    st_in.open();
                    st_rel.wait();
                    st_ret.store(true, Ordering::SeqCst);
                })
                .pool(&threads)
                .build()
                .unwrap();
            let first = p.set(1);
            setter_in.wait();
            let canceller = std::thread::spawn({
                let first = first.cancel_handle();
                move || first.cancel()
            });
            stop_in.wait();
            let second = p.set(2);
            assert!(p.is_busy());
            std::thread::sleep(Duration::from_millis(5));
            stop_release.open();
            assert!(canceller.join().unwrap());
            assert_eq!(first.result(), Err(Error::Cancelled));
            second.result().unwrap();
            p.wait().unwrap();
            assert!(!p.is_busy());
            assert_eq!(
                *seen.lock().unwrap(),
                [(1, false, false), (2, true, true)],
                "the second set began after the setter and the stop returned"
            );
        });
    }
}

#[test]
fn a_cancelled_set_never_applies() {
    within(60, || {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let stops = Arc::new(AtomicUsize::new(0));
        let (a, s) = (applied.clone(), stops.clone());
        let p = Parameter::builder("x")
            .setter(move |x: f64| a.lock().unwrap().push(x))
            .on_cancel(move || {
                s.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        // Held off by another thread's lock, then cancelled.
        let (locked, release) = (Gate::new(), Gate::new());
        let holder = std::thread::spawn({
            let (p, locked, release) = (p.clone(), locked.clone(), release.clone());
            move || {
                let _guard = p.lock().unwrap();
                locked.open();
                release.wait();
            }
        });
        locked.wait();
        let held_off = p.set(5.0);
        assert!(p.is_busy());
        assert!(held_off.cancel());
        assert_eq!(held_off.result(), Err(Error::Cancelled));
        release.open();
        holder.join().unwrap();
        p.set(1.0).result().unwrap();
        p.wait().unwrap();
        assert_eq!(
            *applied.lock().unwrap(),
            [1.0],
            "5.0 never reached the setter"
        );
        assert_eq!(
            stops.load(Ordering::SeqCst),
            0,
            "nothing moved: nothing to stop"
        );
    });
}

#[test]
fn a_set_cancelled_in_the_queue_never_applies() {
    within(60, || {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let (entered, release) = (Gate::new(), Gate::new());
        let (a, e, r) = (applied.clone(), entered.clone(), release.clone());
        let threads = pool(Backend::Crossbeam, 2);
        let p = Parameter::builder("x")
            .pool(&threads)
            .setter(move |x: i32| {
                a.lock().unwrap().push(x);
                if x == 1 {
                    e.open();
                    r.wait();
                }
            })
            .build()
            .unwrap();
        let first = p.set(1);
        entered.wait();
        let queued = p.set(2);
        let third = p.set(3);
        assert!(queued.cancel());
        release.open();
        first.result().unwrap();
        third.result().unwrap();
        assert_eq!(queued.result(), Err(Error::Cancelled));
        assert_eq!(*applied.lock().unwrap(), [1, 3]);
    });
}

#[derive(Debug)]
struct Fault(&'static str);

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "controller fault: {}", self.0)
    }
}

impl std::error::Error for Fault {}

#[test]
fn fallible_io_reaches_the_waiter_with_its_source() {
    let ok = Arc::new(AtomicBool::new(false));
    let o = ok.clone();
    let axis = Parameter::<f64>::builder("axis")
        .try_getter(move || {
            if o.load(Ordering::SeqCst) {
                Ok(1.5)
            } else {
                Err(Fault("encoder lost"))
            }
        })
        .try_setter(|mm| {
            if mm < 0.0 {
                Err(Fault("limit switch"))
            } else {
                Ok(())
            }
        })
        .build()
        .unwrap();
    let stage = Device::builder("stage")
        .parameter(axis.clone())
        .build()
        .unwrap();
    let err = axis.get().result().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `stage.axis`: read failed: controller fault: encoder lost"
    );
    let Error::Device(device) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(device.downcast_ref::<Fault>().unwrap().0, "encoder lost");
    let source = std::error::Error::source(&err).expect("the fault is the source");
    assert_eq!(source.downcast_ref::<Fault>().unwrap().0, "encoder lost");
    assert!(device.downcast_ref::<std::io::Error>().is_none());
    let err = stage.set("axis", -1.0).result().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `stage.axis`: write failed: controller fault: limit switch"
    );
    stage.set("axis", 1.0).result().unwrap();
    ok.store(true, Ordering::SeqCst);
    assert_eq!(axis.get_sync(), Ok(1.5));
}

#[test]
fn a_read_that_depends_on_another_parameter_fails_with_its_error() {
    let shutter = Parameter::<bool>::builder("shutter")
        .try_getter(|| Err(Fault("shutter stuck")))
        .build()
        .unwrap();
    let s = shutter.clone();
    let counts = Parameter::<u64>::builder("counts")
        .try_getter(move || s.get_sync().map(|open| if open { 1000 } else { 0 }))
        .build()
        .unwrap();
    let err = counts.get().result().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `counts`: read failed: parameter `shutter`: read failed: controller fault: shutter stuck"
    );
    let inner = std::error::Error::source(&err).unwrap();
    let inner = inner
        .downcast_ref::<Error>()
        .expect("the shutter's error as such");
    let Error::Device(device) = inner else {
        panic!("{inner:?}")
    };
    assert_eq!(device.downcast_ref::<Fault>().unwrap().0, "shutter stuck");
}

#[test]
fn limits_that_cannot_be_compared_are_refused_plainly() {
    let err = Parameter::<f64>::builder("gap")
        .setter(|_| {})
        .limits(f64::NAN, 1.0)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `gap`: limits NaN and 1.0 cannot be compared (is one NaN?): expected lower <= upper"
    );
    let err = Parameter::<f64>::builder("gap")
        .setter(|_| {})
        .limits(2.0, 1.0)
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `gap`: lower limit 2.0 is above upper limit 1.0"
    );
}

#[test]
fn typed_handles_name_both_types() {
    let motor = Device::builder("motor")
        .parameter(
            Parameter::<f64>::builder("position")
                .getter(|| 1.0)
                .setter(|_| {})
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = motor.parameter::<i32>("position").unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `motor.position` holds f64, not i32"
    );
    let err = motor.set("position", 5).result().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `motor.position` holds f64, not i32"
    );
    // What `let v = motor.get("position").result()?` infers.
    let err = motor.get::<()>("position").result().unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `motor.position` holds f64, not (): name the type, as in `device.parameter::<f64>(..)`"
    );
    let position = motor.parameter::<f64>("position").unwrap();
    assert_eq!(position.get_sync(), Ok(1.0));
}

#[test]
fn the_lock_holder_may_wait_on_a_task_that_uses_the_locked_parameter() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 2);
            let (sim, position) = motor(backend);
            let _guard = position.lock().unwrap();
            position.set(2.0).result().unwrap();
            // A "live display" task reading and moving the locked motor.
            let p = position.clone();
            let display = threads.spawn(move || {
                let at = p.get().result()?;
                p.set(at + 1.0).result()?;
                p.get().result()
            });
            assert_eq!(display.result(), Ok(Ok(3.0)));
            // Nested: a task the holder waits on, waiting on a task in turn.
            let p = position.clone();
            let inner_pool = threads.clone();
            let outer =
                threads.spawn(move || inner_pool.spawn(move || p.set(4.0).result()).result());
            assert_eq!(outer.result(), Ok(Ok(Ok(()))));
            check_log(&sim.log()).unwrap();
        });
    }
}

/// A tomography scan under `lock!(stage, camera)` pipelines with plain
/// waits: the holder starts the readout of frame n and the move to n + 1,
/// then waits for each in turn; both run under its lock at once (the
/// readout sees the stage moving), as without the lock. Another thread's
/// move still waits for the release.
#[test]
fn operations_the_holder_issues_run_under_its_lock_at_once() {
    for backend in THREADED {
        within(60, move || {
            let (sim, stage) = motor(backend);
            let moving = sim.clone();
            let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
            let started_rx = Arc::new(Mutex::new(started_rx));
            let seen = Arc::new(Mutex::new(Vec::new()));
            let (rx, s) = (started_rx.clone(), seen.clone());
            // A readout that looks for the move it is pipelined with.
            let camera = Parameter::builder("frame")
                .setter(move |frame: u32| {
                    let overlapped = rx
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_secs(20))
                        .is_ok();
                    s.lock().unwrap().push((frame, overlapped));
                })
                .pool(&pool(backend, 2))
                .build()
                .unwrap();
            let detector = Device::builder("camera")
                .parameter(camera.clone())
                .build()
                .unwrap();
            let mover = {
                let started = started_tx.clone();
                Parameter::builder("stage")
                    .setter(move |mm: f64| {
                        let _ = started.send(());
                        moving.move_to(mm);
                    })
                    .pool(&pool(backend, 2))
                    .build()
                    .unwrap()
            };
            let _stage_device = Device::builder("stage")
                .parameter(mover.clone())
                .build()
                .unwrap();
            let guard = concertina::lock!(mover, detector).unwrap();
            for frame in 0..3u32 {
                let readout = camera.set(frame);
                let step = mover.set(f64::from(frame + 1));
                readout.result().unwrap();
                step.result().unwrap();
            }
            assert_eq!(
                *seen.lock().unwrap(),
                [(0, true), (1, true), (2, true)],
                "each readout ran while its move was under way"
            );
            // Not the holder's: waits for the release.
            let other = mover.clone();
            let outside = std::thread::spawn(move || other.set(10.0).result());
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(sim.position(), 3.0, "another thread's move waited");
            drop(guard);
            assert_eq!(outside.join().unwrap(), Ok(()));
            assert_eq!(sim.position(), 10.0);
            check_log(&sim.log()).unwrap();
            let _ = stage;
        });
    }
}

/// A `wait_all` lends the holder's locks to every future it waits on at
/// once, as `zip` does: two tasks the holder waits on, each moving one of
/// its locked parameters, run side by side (each setter waits for the
/// other to begin).
#[test]
fn a_wait_on_many_lends_the_lock_to_every_future_at_once() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 2);
            let barrier = Arc::new(std::sync::Barrier::new(2));
            let met = Arc::new(AtomicUsize::new(0));
            let axis = |name: &str| {
                let (barrier, met) = (barrier.clone(), met.clone());
                Parameter::builder(name)
                    .setter(move |_: f64| {
                        barrier.wait();
                        met.fetch_add(1, Ordering::SeqCst);
                    })
                    .pool(&pool(backend, 2))
                    .build()
                    .unwrap()
            };
            let (x, y) = (axis("x"), axis("y"));
            let stage = Device::builder("stage")
                .parameter(x.clone())
                .parameter(y.clone())
                .build()
                .unwrap();
            let _guard = stage.lock().unwrap();
            let moves: Vec<_> = [x, y]
                .into_iter()
                .map(|axis| threads.spawn(move || axis.set(1.0).result()))
                .collect();
            let outcomes = concertina::wait_all(moves);
            assert!(outcomes.iter().all(|o| o == &Ok(Ok(()))), "{outcomes:?}");
            assert_eq!(met.load(Ordering::SeqCst), 2);
        });
    }
}

/// An operation the holder issued that is still queued when its guard
/// drops keeps no privilege of the lock: it runs as any other operation
/// would, never while another owner holds the lock.
#[test]
fn an_operation_still_queued_when_the_guard_drops_keeps_no_privilege() {
    within(60, || {
        let other_holds = Arc::new(AtomicBool::new(false));
        let stray_under_other = Arc::new(AtomicBool::new(false));
        let (running, release) = (Gate::new(), Gate::new());
        let (r, g, holds, stray) = (
            running.clone(),
            release.clone(),
            other_holds.clone(),
            stray_under_other.clone(),
        );
        let p = Parameter::builder("x")
            .setter(move |x: u8| match x {
                1 => {
                    r.open();
                    g.wait();
                }
                2 => stray.store(holds.load(Ordering::SeqCst), Ordering::SeqCst),
                _ => {}
            })
            .pool(&pool(Backend::Crossbeam, 2))
            .build()
            .unwrap();
        let guard = p.lock().unwrap();
        let first = p.set(1);
        let queued = p.set(2);
        running.wait();
        drop(guard);
        let other = std::thread::spawn({
            let (p, holds) = (p.clone(), other_holds.clone());
            move || {
                let _guard = p.lock().unwrap();
                holds.store(true, Ordering::SeqCst);
                let own = p.set(3).result();
                std::thread::sleep(Duration::from_millis(20));
                holds.store(false, Ordering::SeqCst);
                own
            }
        });
        release.open();
        assert_eq!(first.result(), Ok(()));
        assert_eq!(other.join().unwrap(), Ok(()));
        assert_eq!(queued.result(), Ok(()));
        assert!(
            !stray_under_other.load(Ordering::SeqCst),
            "the stray set ran under another owner's lock"
        );
    });
}

/// Tasks the holder spawns while it holds a lock act for it, as its own
/// operations do: their sets run under the lock at once, waited on or not,
/// and so do those of the tasks they spawn in turn. A task spawned before
/// the lock was taken, or by anyone else, waits for the release.
#[test]
fn tasks_the_holder_spawns_act_for_it_while_it_holds_the_lock() {
    within(60, || {
        let released = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (r, s) = (released.clone(), seen.clone());
        let p = Parameter::builder("x")
            .setter(move |x: u8| s.lock().unwrap().push((x, r.load(Ordering::SeqCst))))
            .pool(&pool(Backend::Crossbeam, 2))
            .build()
            .unwrap();
        // On threads of its own: an inline task would be the holder itself.
        let threads = pool(Backend::Crossbeam, 2);
        let before = Gate::new();
        let (q, b) = (p.clone(), before.clone());
        let spawned_before = threads.spawn(move || {
            b.wait();
            q.set(1).result()
        });
        let guard = p.lock().unwrap();
        let (q, inner) = (p.clone(), threads.clone());
        // Not waited on until the set has run under the lock.
        let spawned = threads.spawn(move || {
            q.set(2).result()?;
            // A task it spawns in turn acts for the holder too.
            let q = q.clone();
            inner.spawn(move || q.set(3).result()).result()?
        });
        wait_until("both sets ran under the lock", || {
            seen.lock().unwrap().len() == 2
        });
        before.open();
        wait_until("the earlier task's set is queued", || p.is_busy());
        std::thread::sleep(Duration::from_millis(20));
        let from_elsewhere = std::thread::spawn({
            let (q, threads) = (p.clone(), threads.clone());
            move || threads.spawn(move || q.set(4).result()).result()
        });
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(seen.lock().unwrap().len(), 2, "{:?}", seen.lock().unwrap());
        released.store(true, Ordering::SeqCst);
        drop(guard);
        assert_eq!(spawned.result(), Ok(Ok(())));
        assert_eq!(spawned_before.result(), Ok(Ok(())));
        assert_eq!(from_elsewhere.join().unwrap(), Ok(Ok(())));
        let mut seen = seen.lock().unwrap().clone();
        assert_eq!(
            &seen[..2],
            [(2, false), (3, false)],
            "the holder's tasks ran under its lock"
        );
        seen[2..].sort();
        assert_eq!(
            &seen[2..],
            [(1, true), (4, true)],
            "the others waited for the release"
        );
    });
}

#[test]
fn a_lock_holders_own_set_overtakes_one_held_off_by_its_lock() {
    within(60, || {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let a = applied.clone();
        let p = Parameter::builder("x")
            .setter(move |x: u8| a.lock().unwrap().push(x))
            .build()
            .unwrap();
        let (locked, release) = (Gate::new(), Gate::new());
        let holder = std::thread::spawn({
            let (p, locked, release) = (p.clone(), locked.clone(), release.clone());
            move || {
                let _guard = p.lock().unwrap();
                locked.open();
                release.wait();
                // Another thread's set (1) is queued before this one.
                p.set(2).result()
            }
        });
        locked.wait();
        let first = p.set(1);
        release.open();
        assert_eq!(holder.join().unwrap(), Ok(()));
        assert_eq!(first.result(), Ok(()));
        assert_eq!(*applied.lock().unwrap(), [2, 1]);
    });
}

#[test]
fn locks_taken_in_opposite_orders_report_a_deadlock_instead_of_hanging() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 2);
            let x = Parameter::<u8>::builder("x")
                .setter(|_| {})
                .build()
                .unwrap();
            let y = Parameter::<u8>::builder("y")
                .setter(|_| {})
                .build()
                .unwrap();
            let (a_has, b_has) = (Gate::new(), Gate::new());
            let task = |first: Parameter<u8>, second: Parameter<u8>, mine: Gate, theirs: Gate| {
                move || -> Result<(), Error> {
                    let _one = first.lock()?;
                    mine.open();
                    theirs.wait();
                    let _two = concertina::device::lock(&[&second as &dyn Lockable])?;
                    Ok(())
                }
            };
            let a = threads.spawn(task(x.clone(), y.clone(), a_has.clone(), b_has.clone()));
            let b = threads.spawn(task(y.clone(), x.clone(), b_has, a_has));
            let outcomes = [a.result().unwrap(), b.result().unwrap()];
            let deadlocks = outcomes
                .iter()
                .filter(|o| matches!(o, Err(Error::Deadlock(_))))
                .count();
            assert_eq!(deadlocks, 1, "{outcomes:?}");
            assert_eq!(
                outcomes.iter().filter(|o| o.is_ok()).count(),
                1,
                "{outcomes:?}"
            );
            let cycle = outcomes
                .iter()
                .find_map(|o| o.clone().err())
                .unwrap()
                .to_string();
            assert!(
                cycle.contains("a lock on x") && cycle.contains("a lock on y"),
                "{cycle}"
            );
        });
    }
}

#[test]
fn threads_locking_in_opposite_orders_report_a_deadlock_too() {
    within(60, || {
        let x = Parameter::<u8>::builder("x")
            .setter(|_| {})
            .build()
            .unwrap();
        let y = Parameter::<u8>::builder("y")
            .setter(|_| {})
            .build()
            .unwrap();
        let (a_has, b_has) = (Gate::new(), Gate::new());
        let run = |first: Parameter<u8>, second: Parameter<u8>, mine: Gate, theirs: Gate| {
            std::thread::spawn(move || -> Result<(), Error> {
                let _one = first.lock()?;
                mine.open();
                theirs.wait();
                let _two = second.lock()?;
                Ok(())
            })
        };
        let a = run(x.clone(), y.clone(), a_has.clone(), b_has.clone());
        let b = run(y, x, b_has, a_has);
        let outcomes = [a.join().unwrap(), b.join().unwrap()];
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| matches!(o, Err(Error::Deadlock(_))))
                .count(),
            1,
            "{outcomes:?}"
        );
    });
}

#[test]
fn cancels_racing_moves_never_overlap_and_the_queue_always_drains() {
    for backend in THREADED {
        within(120, move || {
            let (sim, position) = motor(backend);
            let mut rng = common::Rng(7);
            let mut moves = Vec::new();
            for i in 0..60 {
                let m = position.set(f64::from(i % 7) - 3.0);
                match rng.next() % 4 {
                    0 => {
                        m.cancel();
                    }
                    1 => {
                        std::thread::yield_now();
                        m.cancel();
                    }
                    _ => {}
                }
                moves.push(m);
            }
            for m in moves {
                assert!(matches!(m.result(), Ok(()) | Err(Error::Cancelled)));
            }
            position.wait().unwrap();
            assert!(!position.is_busy());
            check_log(&sim.log()).unwrap();
        });
    }
}

#[test]
fn a_panicking_setter_or_stop_fails_its_operation_only() {
    within(60, || {
        let threads = pool(Backend::Crossbeam, 1);
        let (entered, release) = (Gate::new(), Gate::new());
        let (e, r) = (entered.clone(), release.clone());
        let p = Parameter::builder("x")
            .setter(move |x: i32| {
                if x == 1 {
                    panic!("encoder fault");
                }
                if x == 2 {
                    e.open();
                    r.wait();
                }
            })
            .on_cancel(|| panic!("stop failed"))
            .pool(&threads)
            .build()
            .unwrap();
        assert_eq!(
            p.set(1).result(),
            Err(Error::Panicked("encoder fault".into()))
        );
        let stuck = p.set(2);
        entered.wait();
        assert!(
            stuck.cancel(),
            "the cancel wins even though the stop panics"
        );
        release.open();
        assert_eq!(stuck.result(), Err(Error::Cancelled));
        assert_eq!(p.set(3).result(), Ok(()));
    });
}

#[test]
fn operations_queued_when_their_pool_shuts_down_fail_with_shutdown() {
    within(60, || {
        let threads = pool(Backend::Crossbeam, 1);
        let (entered, release) = (Gate::new(), Gate::new());
        let (e, r) = (entered.clone(), release.clone());
        let p = Parameter::builder("x")
            .setter(move |x: i32| {
                if x == 1 {
                    e.open();
                    r.wait();
                }
            })
            .pool(&threads)
            .build()
            .unwrap();
        let first = p.set(1);
        entered.wait();
        let queued: Vec<_> = (2..5).map(|x| p.set(x)).collect();
        let closer = std::thread::spawn(move || threads.shutdown_now());
        std::thread::sleep(Duration::from_millis(10));
        release.open();
        closer.join().unwrap();
        assert_eq!(first.result(), Ok(()));
        for q in queued {
            assert_eq!(q.result(), Err(Error::Shutdown));
        }
        assert_eq!(
            p.set(9).result(),
            Err(Error::Shutdown),
            "refused after shutdown"
        );
    });
}
