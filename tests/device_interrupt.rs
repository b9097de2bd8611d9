//! Ctrl-C and devices, in real child processes sent a real SIGINT: one
//! Ctrl-C stops a motor once (the interrupted wait's cancel and the
//! `stop_on_interrupt` hook do not both stop it); in inline mode a Ctrl-C
//! during a move cancels it — its stop runs, the setter sees `cancelled()`,
//! the call returns `Err(Interrupted)` — and the program goes on.
#![cfg(unix)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{child, say, SCENARIO};
use concertina::{Device, Parameter};

/// Set once the motor moves.
static MOVING: AtomicBool = AtomicBool::new(false);

/// A motor whose move runs until cancelled, saying `<said>` once it moves;
/// counts its stops.
fn motor(stops: &Arc<AtomicUsize>, said: &'static str) -> Parameter<f64> {
    let s = stops.clone();
    Parameter::builder("position")
        .setter(move |_mm: f64| {
            MOVING.store(true, Ordering::SeqCst);
            say(said);
            while !concertina::cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            say("the setter saw the cancel");
        })
        .on_cancel(move || {
            s.fetch_add(1, Ordering::SeqCst);
            say("stop ran");
        })
        .build()
        .unwrap()
}

/// A device of `position` whose every Ctrl-C aborts it.
fn stopped_on_interrupt(position: &Parameter<f64>) -> Device {
    let device = Device::builder("motor")
        .parameter(position.clone())
        .build()
        .unwrap();
    device.stop_on_interrupt();
    device
}

/// Says `ready: <what>` once the motor moves and a thread waits.
fn ready_when_moving_and_blocked(what: &'static str) {
    std::thread::spawn(move || {
        while !MOVING.load(Ordering::SeqCst) || concertina::interrupt::blocked_waits() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        say(format!("ready: {what}"));
    });
}

/// The child's side: does nothing unless started by `child`.
#[test]
fn scenario_runner() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let stops = Arc::new(AtomicUsize::new(0));
    match scenario.as_str() {
        "one stop per ctrl-c" => {
            let position = motor(&stops, "moving");
            let _device = stopped_on_interrupt(&position);
            // SIGINT once the move runs and this thread waits for it.
            ready_when_moving_and_blocked("waiting on the move");
            let outcome = position.set(1.0).result();
            position.wait().unwrap();
            say(format!("wait returned {outcome:?}"));
            say(format!("stops: {}", stops.load(Ordering::SeqCst)));
        }
        "inline move" => {
            // Inline, the running move is what the thread waits for.
            let position = motor(&stops, "ready: moving inline");
            let moved = position.set(1.0);
            say(format!("set returned {:?}", moved.result()));
            let counted = concertina::spawn(|| {
                say("ready: counting inline");
                let mut n = 0u64;
                while !concertina::cancelled() {
                    n += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                n
            });
            say(format!(
                "spawn returned {:?}",
                counted.result().map(|_| "a count")
            ));
            say(format!("stops: {}", stops.load(Ordering::SeqCst)));
            say("the program's own cleanup ran");
        }
        "own pool, nobody waits" => {
            // No default pool anywhere: the motor's operations run on a
            // pool of the program's own, and nobody waits on the move.
            let motors = concertina::Pool::builder()
                .name("motors")
                .threads(1)
                .backend(concertina::Backend::Crossbeam)
                .build()
                .unwrap();
            let position = Parameter::builder("position")
                .pool(&motors)
                .setter(|_mm: f64| {
                    MOVING.store(true, Ordering::SeqCst);
                    while !concertina::cancelled() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .on_cancel(|| say("stop ran"))
                .build()
                .unwrap();
            let _device = stopped_on_interrupt(&position);
            let _moving = position.set(5.0);
            while !MOVING.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            say(format!(
                "handler installed: {}",
                concertina::interrupt::handles_ctrlc()
            ));
            say("ready: the stage moves, nobody waits");
            std::thread::sleep(Duration::from_secs(60));
            say("still alive after 60 s");
        }
        "held move" => {
            // The program holds a move it does not wait on and waits on
            // something else: the Ctrl-C's hook aborts the move, whose
            // future then says it was a Ctrl-C.
            let position = motor(&stops, "moving");
            let device = stopped_on_interrupt(&position);
            let held = position.set(1.0);
            let reading = concertina::spawn(|| {
                while !concertina::cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            ready_when_moving_and_blocked("waiting on a reading");
            say(format!("reading returned {:?}", reading.result()));
            say(format!("held move returned {:?}", held.result()));
            position.wait().unwrap();
            say(format!("stops: {}", stops.load(Ordering::SeqCst)));
            let later = position.set(2.0);
            say(format!("abort gives {}", device.abort()));
            say(format!("a plain abort: {:?}", later.result()));
        }
        "held command" => {
            // A camera's acquisition runs until stopped; the program waits
            // on something else. The Ctrl-C's hook stops the acquisition.
            let s = stops.clone();
            let acquire = concertina::device::Command::<(), u32>::builder("acquire")
                .action(|()| {
                    MOVING.store(true, Ordering::SeqCst);
                    let mut frames = 0;
                    while !concertina::cancelled() {
                        frames += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    frames
                })
                .on_cancel(move || {
                    s.fetch_add(1, Ordering::SeqCst);
                    say("stop ran");
                })
                .build()
                .unwrap();
            let camera = Device::builder("camera")
                .command(acquire.clone())
                .build()
                .unwrap();
            camera.stop_on_interrupt();
            let held = acquire.run(());
            let reading = concertina::spawn(|| {
                while !concertina::cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            ready_when_moving_and_blocked("waiting on a reading");
            say(format!("reading returned {:?}", reading.result()));
            say(format!("held acquisition returned {:?}", held.result()));
            acquire.wait().unwrap();
            say(format!("stops: {}", stops.load(Ordering::SeqCst)));
        }
        "hook only" => {
            concertina::interrupt::on_interrupt(|| say("hook ran")).forever();
            say(format!(
                "handler installed: {}",
                concertina::interrupt::handles_ctrlc()
            ));
            say("ready: nothing but a hook");
            std::thread::sleep(Duration::from_secs(60));
            say("still alive after 60 s");
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn one_ctrl_c_stops_a_motor_once() {
    let (said, code) = child("one stop per ctrl-c", &[]);
    assert_eq!(code, Some(0), "{said:?}");
    assert!(
        said.contains(&"wait returned Err(Interrupted)".to_owned()),
        "{said:?}"
    );
    assert!(
        said.contains(&"the setter saw the cancel".to_owned()),
        "{said:?}"
    );
    assert!(said.contains(&"stops: 1".to_owned()), "{said:?}");
    assert_eq!(
        said.iter().filter(|l| *l == "stop ran").count(),
        1,
        "{said:?}"
    );
}

#[test]
fn ctrl_c_during_an_inline_move_cancels_it_and_the_program_goes_on() {
    let (said, code) = child("inline move", &[("CONCERTINA_DISABLE_ASYNC", "1")]);
    assert_eq!(code, Some(0), "{said:?}");
    // The stop runs on the signal's thread while the setter notices the
    // cancel on its own: those two lines may come in either order.
    let mut said = said;
    if said.get(1).map(String::as_str) == Some("the setter saw the cancel") {
        said.swap(1, 2);
    }
    let expected = [
        "ready: moving inline",
        "stop ran",
        "the setter saw the cancel",
        "set returned Err(Interrupted)",
        "ready: counting inline",
        "spawn returned Err(Interrupted)",
        "stops: 1",
        "the program's own cleanup ran",
    ];
    assert_eq!(said, expected);
}

#[test]
fn ctrl_c_stops_a_motor_on_a_program_s_own_pool_with_no_default_pool() {
    let (said, code) = child("own pool, nobody waits", &[]);
    assert_eq!(
        said,
        [
            "handler installed: true",
            "ready: the stage moves, nobody waits",
            "stop ran"
        ]
    );
    assert_eq!(code, Some(130), "nobody waited: the program exits as usual");
}

#[test]
fn an_interrupt_hook_alone_installs_the_handler_unless_sigint_is_left_alone() {
    let (said, code) = child("hook only", &[]);
    assert_eq!(
        said,
        [
            "handler installed: true",
            "ready: nothing but a hook",
            "hook ran"
        ]
    );
    assert_eq!(code, Some(130));
    // Left alone, SIGINT kills the child as it would any program.
    let (said, code) = child("hook only", &[("CONCERTINA_CTRLC", "0")]);
    assert_eq!(
        said,
        ["handler installed: false", "ready: nothing but a hook"]
    );
    assert_eq!(code, None, "killed by the signal");
}

#[test]
fn operations_a_ctrl_c_aborts_fail_with_interrupted() {
    let (said, code) = child("held move", &[]);
    assert_eq!(code, Some(0), "{said:?}");
    let has = |line: &str| said.iter().any(|l| l == line);
    assert!(has("reading returned Err(Interrupted)"), "{said:?}");
    assert!(has("held move returned Err(Interrupted)"), "{said:?}");
    assert!(has("stops: 1"), "{said:?}");
    assert!(has("a plain abort: Err(Cancelled)"), "{said:?}");
}

#[test]
fn ctrl_c_stops_a_running_command_of_a_device_stopped_on_interrupt() {
    let (said, code) = child("held command", &[]);
    assert_eq!(code, Some(0), "{said:?}");
    for line in [
        "reading returned Err(Interrupted)",
        "held acquisition returned Err(Interrupted)",
        "stops: 1",
    ] {
        assert!(said.contains(&line.to_owned()), "{line}: {said:?}");
    }
    assert_eq!(
        said.iter().filter(|l| *l == "stop ran").count(),
        1,
        "{said:?}"
    );
}
