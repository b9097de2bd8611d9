//! Device commands (a camera's grab, a shutter's open): futures of actions
//! with arguments and results that obey a set's rules — one at a time in
//! order, a cancelled one never begins, a cancel once begun runs the stop
//! and the next waits for it, another owner's lock holds them off, abort
//! (and Ctrl-C, in tests/device_interrupt.rs) stop them, fallible actions fail with their error — and
//! serial devices, whose parameters and commands share one queue.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::{pool, wait_until, within, Gate, THREADED};
use concertina::device::Command;
use concertina::error::DeviceErrorKind;
use concertina::{Device, Error, Parameter};

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, what: impl Into<String>) {
    log.lock().unwrap().push(what.into());
}

/// An acquisition that runs until cancelled, noting its start, its end and
/// its stop.
fn acquisition(log: &Log, threads: &concertina::Pool) -> Command<u32, u32> {
    let (run, stop) = (log.clone(), log.clone());
    Command::builder("acquire")
        .action(move |frames: u32| {
            note(&run, format!("start {frames}"));
            while frames == 0 && !concertina::cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            note(&run, format!("end {frames}"));
            frames
        })
        .on_cancel(move || note(&stop, "stop"))
        .pool(threads)
        .build()
        .unwrap()
}

#[test]
fn commands_run_one_at_a_time_in_the_order_asked_with_their_results() {
    for backend in THREADED {
        within(60, move || {
            let log = Log::default();
            let (l, active, most) = (
                log.clone(),
                Arc::new(AtomicUsize::new(0)),
                Arc::new(AtomicUsize::new(0)),
            );
            let (a, m) = (active.clone(), most.clone());
            let grab = Command::builder("grab")
                .action(move |n: u32| {
                    let now = a.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    note(&l, n.to_string());
                    a.fetch_sub(1, Ordering::SeqCst);
                    n * 10
                })
                .pool(&pool(backend, 2))
                .build()
                .unwrap();
            let camera = Device::builder("camera").command(grab).build().unwrap();
            let grab = camera.command::<u32, u32>("grab").unwrap();
            let frames: Vec<_> = (0..6).map(|n| grab.run(n)).collect();
            let values: Vec<u32> = frames.into_iter().map(|f| f.result().unwrap()).collect();
            assert_eq!(values, [0, 10, 20, 30, 40, 50]);
            assert_eq!(*log.lock().unwrap(), ["0", "1", "2", "3", "4", "5"]);
            assert_eq!(most.load(Ordering::SeqCst), 1, "never two at once");
            grab.wait().unwrap();
            assert!(!grab.is_busy());
        });
    }
}

#[test]
fn a_command_cancelled_in_the_queue_never_begins() {
    for backend in THREADED {
        within(60, move || {
            let log = Log::default();
            let acquire = acquisition(&log, &pool(backend, 2));
            let running = acquire.run(0);
            wait_until("the first began", || running.running());
            let queued = acquire.run(7);
            assert!(queued.cancel());
            assert_eq!(queued.result(), Err(Error::Cancelled));
            running.cancel();
            assert_eq!(running.result(), Err(Error::Cancelled));
            acquire.wait().unwrap();
            let log = log.lock().unwrap().clone();
            assert!(!log.iter().any(|e| e == "start 7"), "{log:?}");
        });
    }
}

#[test]
fn cancelling_a_running_command_runs_its_stop_before_the_next_begins() {
    for backend in THREADED {
        within(60, move || {
            let log = Log::default();
            let acquire = acquisition(&log, &pool(backend, 2));
            let first = acquire.run(0);
            // Begun: its action runs (a cancel while it is only taken off
            // the queue never begins it, and has nothing to stop).
            wait_until("the first began", || {
                log.lock().unwrap().iter().any(|e| e == "start 0")
            });
            let next = acquire.run(3);
            assert!(first.cancel());
            assert_eq!(first.result(), Err(Error::Cancelled));
            assert_eq!(next.result(), Ok(3));
            let log = log.lock().unwrap().clone();
            let at = |what: &str| {
                log.iter()
                    .position(|e| e == what)
                    .unwrap_or_else(|| panic!("no {what}: {log:?}"))
            };
            assert!(at("stop") < at("start 3"), "{log:?}");
            assert!(at("end 0") < at("start 3"), "{log:?}");
            assert_eq!(log.iter().filter(|e| *e == "stop").count(), 1, "{log:?}");
        });
    }
}

#[test]
fn device_abort_stops_a_running_command_and_counts_it() {
    for backend in THREADED {
        within(60, move || {
            let log = Log::default();
            let acquire = acquisition(&log, &pool(backend, 2));
            let camera = Device::builder("camera")
                .parameter(
                    Parameter::<u32>::builder("exposure")
                        .setter(|_| {})
                        .build()
                        .unwrap(),
                )
                .command(acquire.clone())
                .build()
                .unwrap();
            let running = acquire.run(0);
            wait_until("it began", || running.running());
            assert_eq!(
                camera.abort(),
                1,
                "the command had a stop, the parameter none"
            );
            assert_eq!(running.result(), Err(Error::Cancelled));
            assert!(log.lock().unwrap().iter().any(|e| e == "stop"));
        });
    }
}

#[test]
fn another_owners_lock_holds_a_command_off_and_the_holders_runs_at_once() {
    for backend in THREADED {
        within(60, move || {
            let log = Log::default();
            let l = log.clone();
            let open = Command::<(), ()>::builder("open")
                .action(move |()| note(&l, "open"))
                .pool(&pool(backend, 2))
                .build()
                .unwrap();
            let shutter = Device::builder("shutter")
                .command(open.clone())
                .build()
                .unwrap();
            let guard = shutter.lock().unwrap();
            open.run(()).result().unwrap(); // the holder's: at once
            let other = open.clone();
            let (tx, rx) = mpsc::channel();
            let outside = std::thread::spawn(move || {
                let run = other.run(());
                tx.send(()).unwrap();
                run.result()
            });
            rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(
                log.lock().unwrap().len(),
                1,
                "another thread's open waited for the lock"
            );
            drop(guard);
            assert_eq!(outside.join().unwrap(), Ok(()));
            assert_eq!(log.lock().unwrap().len(), 2);
        });
    }
}

#[derive(Debug)]
struct NoAnswer;

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the controller did not answer")
    }
}

impl std::error::Error for NoAnswer {}

#[test]
fn a_failing_action_fails_its_future_with_its_error_and_the_next_runs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let home = Command::<(), u32>::builder("home")
        .try_action(move |()| match c.fetch_add(1, Ordering::SeqCst) {
            0 => Err(NoAnswer),
            n => Ok(n as u32),
        })
        .build()
        .unwrap();
    let stage = Device::builder("stage")
        .command(home.clone())
        .build()
        .unwrap();
    let Err(Error::Device(e)) = home.run(()).result() else {
        panic!("the first fails")
    };
    assert!(
        matches!(e.kind(), DeviceErrorKind::CommandFailed { command, .. } if command == "stage.home")
    );
    assert!(e.downcast_ref::<NoAnswer>().is_some());
    assert_eq!(
        e.to_string(),
        "command `stage.home` failed: the controller did not answer"
    );
    assert_eq!(stage.run::<(), u32>("home", ()).result(), Ok(1));
    let panicking = Command::<(), ()>::builder("jam")
        .action(|()| panic!("jammed"))
        .build()
        .unwrap();
    assert_eq!(
        panicking.run(()).result(),
        Err(Error::Panicked("jammed".into()))
    );
}

#[test]
fn commands_by_name_name_what_is_wrong() {
    let camera = Device::builder("camera")
        .parameter(
            Parameter::<u32>::builder("exposure")
                .setter(|_| {})
                .build()
                .unwrap(),
        )
        .command(
            Command::builder("grab")
                .action(|ms: u32| vec![0u16; ms as usize])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let Err(Error::Device(e)) = camera.command::<(), ()>("snap") else {
        panic!("unknown")
    };
    assert!(
        matches!(e.kind(), DeviceErrorKind::UnknownCommand { name, known, .. } if name == "snap" && known == &["grab"])
    );
    assert_eq!(
        e.to_string(),
        "device `camera` has no command `snap` (it has: grab)"
    );
    let Err(Error::Device(e)) = camera.command::<u64, Vec<u16>>("grab") else {
        panic!("wrong")
    };
    assert_eq!(e.to_string(), "command `camera.grab` is `fn(u32) -> alloc::vec::Vec<u16>`, not `fn(u64) -> alloc::vec::Vec<u16>`");
    // A parameter is not a command, nor a command a parameter.
    assert!(camera.command::<u32, ()>("exposure").is_err());
    assert!(camera.parameter::<u32>("grab").is_err());
    assert!(matches!(
        camera.run::<u64, Vec<u16>>("grab", 1).result(),
        Err(Error::Device(_))
    ));

    let twice = Device::builder("shutter")
        .parameter(
            Parameter::<bool>::builder("open")
                .getter(|| true)
                .build()
                .unwrap(),
        )
        .command(
            Command::<(), ()>::builder("open")
                .action(|()| {})
                .build()
                .unwrap(),
        )
        .build()
        .unwrap_err();
    assert_eq!(
        twice.to_string(),
        "device `shutter` has a parameter and a command named `open`"
    );
    let grab = Command::<(), ()>::builder("grab")
        .action(|()| {})
        .build()
        .unwrap();
    Device::builder("one")
        .command(grab.clone())
        .build()
        .unwrap();
    let Err(Error::Device(e)) = Device::builder("two").command(grab).build() else {
        panic!("owned")
    };
    assert_eq!(
        e.to_string(),
        "command `grab` already belongs to device `one`"
    );
    let bad = Command::<(), ()>::builder("grab now")
        .action(|()| {})
        .build()
        .unwrap_err();
    assert!(
        bad.to_string()
            .starts_with("command name \"grab now\" is not accepted"),
        "{bad}"
    );
}

#[test]
fn a_serial_device_runs_one_operation_of_all_its_members_at_a_time() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 2);
            let (active, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let busy = |active: &Arc<AtomicUsize>, most: &Arc<AtomicUsize>| {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
                active.fetch_sub(1, Ordering::SeqCst);
            };
            let log = Log::default();
            let (a, m, l) = (active.clone(), most.clone(), log.clone());
            let gain = Parameter::<u32>::builder("gain")
                .setter(move |g| {
                    busy(&a, &m);
                    note(&l, format!("gain {g}"));
                })
                .pool(&threads)
                .build()
                .unwrap();
            let (a, m, l) = (active.clone(), most.clone(), log.clone());
            let home = Command::<(), ()>::builder("home")
                .action(move |()| {
                    busy(&a, &m);
                    note(&l, "home");
                })
                .pool(&threads)
                .build()
                .unwrap();
            let controller = Device::builder("controller")
                .parameter(gain.clone())
                .command(home.clone())
                .serial()
                .build()
                .unwrap();
            let mut pending = Vec::new();
            for g in 0..4u32 {
                pending.push(home.run(()));
                pending.push(gain.set(g));
            }
            for done in pending {
                done.result().unwrap();
            }
            assert_eq!(
                most.load(Ordering::SeqCst),
                1,
                "a serial device never overlaps"
            );
            let expected: Vec<String> = (0..4)
                .flat_map(|g| ["home".to_owned(), format!("gain {g}")])
                .collect();
            assert_eq!(*log.lock().unwrap(), expected, "in the order asked");
            home.wait().unwrap();
            let _ = controller;
        });
    }
}

/// Without `serial()`, a parameter and a command of one device run side by
/// side: the command waits until the set has begun (which it could not if
/// they shared a queue).
#[test]
fn members_of_a_device_that_is_not_serial_run_side_by_side() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 2);
            let (began_tx, began_rx) = mpsc::channel::<()>();
            let began_rx = Arc::new(Mutex::new(began_rx));
            let release = Gate::new();
            let r = release.clone();
            let gain = Parameter::<u32>::builder("gain")
                .setter(move |_| {
                    began_tx.send(()).unwrap();
                    r.wait();
                })
                .pool(&threads)
                .build()
                .unwrap();
            let trigger = Command::<(), bool>::builder("trigger")
                .action(move |()| {
                    began_rx
                        .lock()
                        .unwrap()
                        .recv_timeout(Duration::from_secs(20))
                        .is_ok()
                })
                .pool(&threads)
                .build()
                .unwrap();
            let _camera = Device::builder("camera")
                .parameter(gain.clone())
                .command(trigger.clone())
                .build()
                .unwrap();
            let set = gain.set(1);
            assert_eq!(
                trigger.run(()).result(),
                Ok(true),
                "the trigger ran while the set was under way"
            );
            release.open();
            set.result().unwrap();
        });
    }
}

#[test]
fn a_member_that_ran_operations_cannot_join_a_serial_device() {
    let gain = Parameter::<u32>::builder("gain")
        .setter(|_| {})
        .build()
        .unwrap();
    gain.set(1).result().unwrap();
    let Err(Error::Device(e)) = Device::builder("controller")
        .parameter(gain.clone())
        .serial()
        .build()
    else {
        panic!("refused")
    };
    assert!(matches!(e.kind(), DeviceErrorKind::AlreadyInUse { name, .. } if name == "gain"));
    assert_eq!(
        e.to_string(),
        "parameter `gain` ran operations before it was given to the serial device `controller`: give it to the device first"
    );
    // Refused, it stays free: a device that is not serial takes it.
    Device::builder("controller")
        .parameter(gain)
        .build()
        .unwrap();
}

/// A command of a serial device that waits on an operation of its own
/// device waits on itself: reported as a deadlock, not a hang.
#[test]
fn a_command_waiting_on_its_own_serial_device_is_a_deadlock_not_a_hang() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 2);
            let gain = Parameter::<u32>::builder("gain")
                .getter(|| 3)
                .pool(&threads)
                .build()
                .unwrap();
            let g = gain.clone();
            let read = Command::<(), u32>::builder("read_gain")
                .try_action(move |()| g.get().result())
                .pool(&threads)
                .build()
                .unwrap();
            let _controller = Device::builder("controller")
                .parameter(gain.clone())
                .command(read.clone())
                .serial()
                .build()
                .unwrap();
            match read.run(()).result() {
                Err(Error::Device(e)) => assert!(
                    matches!(e.kind(), DeviceErrorKind::CommandFailed { source, .. } if source.to_string().contains("deadlock")),
                    "{e}"
                ),
                other => panic!("expected the deadlock as the action's error, got {other:?}"),
            }
            assert_eq!(gain.get().result(), Ok(3), "the device goes on");
        });
    }
}
