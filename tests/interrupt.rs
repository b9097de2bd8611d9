//! Ctrl-C, in real child processes (this test binary re-run with one
//! scenario) sent a real SIGINT: a blocked wait cancels what it waits on and
//! returns `Interrupted`, the cleanup runs once, the task sees the flag, the
//! hooks run; with nobody waiting, or at a second Ctrl-C, the process exits
//! with status 130; an application's own handler hands over through
//! `concertina::interrupt::interrupt()`.
#![cfg(unix)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{child, say, SCENARIO};
use concertina::{Error, Instance, RequestPool};

/// Says `ready: <what>` once this thread (or another) is blocked in a wait,
/// so that the SIGINT cannot arrive before the wait began.
fn ready_when_blocked(what: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while concertina::interrupt::blocked_waits() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        say(format!("ready: {what}"));
    })
}

/// Waits until `f` runs: a task cancelled while still queued never runs, and
/// the scenarios want a move that sees the cancellation.
fn running<T: Send + 'static>(f: concertina::Future<T>) -> concertina::Future<T> {
    while !f.running() && !f.done() {
        std::thread::sleep(Duration::from_millis(1));
    }
    f
}

/// A "motor move": runs until cancelled, then reports that it saw the flag.
fn motor_move(saw_cancel: mpsc::Sender<()>) -> impl FnOnce() -> f64 + Send + 'static {
    move || {
        let mut position = 0.0;
        while !concertina::cancelled() {
            position += 0.001;
            std::thread::sleep(Duration::from_millis(1));
        }
        saw_cancel.send(()).unwrap();
        position
    }
}

/// The child's side: does nothing unless started by `child`.
#[test]
fn scenario_runner() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let stops = Arc::new(AtomicUsize::new(0));
    let (saw_cancel, task_saw_cancel) = mpsc::channel();
    match scenario.as_str() {
        "wait" => {
            concertina::interrupt::on_interrupt(|| say("hook ran")).forever();
            let s = stops.clone();
            let motion = running(concertina::spawn(motor_move(saw_cancel))).on_cancel(move || {
                s.fetch_add(1, Ordering::SeqCst);
                say("cleanup ran");
            });
            say(format!(
                "handler installed: {}",
                concertina::interrupt::handles_ctrlc()
            ));
            ready_when_blocked("waiting on the move");
            say(format!("wait returned {:?}", motion.result()));
            task_saw_cancel
                .recv_timeout(Duration::from_secs(30))
                .unwrap();
            say("task saw cancellation");
            say(format!("cleanups: {}", stops.load(Ordering::SeqCst)));
        }
        "idle" => {
            concertina::default_pool().unwrap();
            concertina::interrupt::on_interrupt(|| say("hook ran")).forever();
            say("ready: nobody waits");
            std::thread::sleep(Duration::from_secs(60));
            say("still alive after 60 s");
        }
        "second" => {
            let motion = concertina::spawn(motor_move(saw_cancel)).on_cancel(|| {
                say("ready: cleanup started, slow");
                std::thread::sleep(Duration::from_secs(60));
                say("cleanup finished");
            });
            ready_when_blocked("waiting on the move");
            say(format!("wait returned {:?}", motion.result()));
        }
        "own_handler" => {
            ctrlc::set_handler(|| {
                say("application handler");
                concertina::interrupt::interrupt();
            })
            .unwrap();
            let s = stops.clone();
            let motion = concertina::spawn(motor_move(saw_cancel)).on_cancel(move || {
                s.fetch_add(1, Ordering::SeqCst);
            });
            say(format!(
                "handler installed: {}",
                concertina::interrupt::handles_ctrlc()
            ));
            ready_when_blocked("waiting on the move");
            say(format!("wait returned {:?}", motion.result()));
            say(format!("cleanups: {}", stops.load(Ordering::SeqCst)));
        }
        "many" => {
            let model = Instance::new(());
            let (tx2, rx2) = mpsc::channel();
            let mut requests = RequestPool::new();
            requests.add(running(concertina::spawn(motor_move(saw_cancel))));
            requests.add(running(concertina::spawn(motor_move(tx2))));
            let blocker = model.spawn(|_| {
                while !concertina::cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            let announced = ready_when_blocked("waiting on a request pool");
            let outcomes: Vec<_> = requests.wait_all().into_iter().map(|(_, r)| r).collect();
            say(format!("request pool returned {outcomes:?}"));
            announced.join().unwrap();
            ready_when_blocked("waiting in Instance::call");
            say(format!("call returned {:?}", model.call(|_| "ran")));
            drop(blocker);
            task_saw_cancel
                .recv_timeout(Duration::from_secs(30))
                .unwrap();
            rx2.recv_timeout(Duration::from_secs(30)).unwrap();
            say("both tasks saw cancellation");
        }
        "sweep" | "sweep request pool" => {
            // Many short runs; the loop body works between two waits, where
            // the SIGINT lands most of the time.
            let after: usize = std::env::var("SWEEP_READY_AFTER").unwrap().parse().unwrap();
            let pool = concertina::Pool::builder()
                .name("sweep")
                .threads(2)
                .backend(concertina::Backend::Crossbeam)
                .build()
                .unwrap();
            let cleanups = Arc::new(AtomicUsize::new(0));
            let runs: Vec<_> = (0..200_u64)
                .map(|i| {
                    let c = cleanups.clone();
                    pool.spawn(move || {
                        std::thread::sleep(Duration::from_millis(2));
                        i
                    })
                    .on_cancel(move || {
                        c.fetch_add(1, Ordering::SeqCst);
                    })
                })
                .collect();
            let (mut ok, mut interrupted, mut other) = (0, 0, 0);
            let mut count = |outcome: Result<u64, Error>, seen: usize| {
                match outcome {
                    Ok(_) => ok += 1,
                    Err(Error::Interrupted) => interrupted += 1,
                    Err(_) => other += 1,
                }
                if seen == after {
                    say("ready: between two waits");
                }
                // The loop body: a little work on each result.
                std::thread::sleep(Duration::from_millis(3));
            };
            if scenario == "sweep" {
                for (seen, (_, outcome)) in concertina::as_completed(runs).enumerate() {
                    count(outcome, seen);
                }
            } else {
                let mut requests = RequestPool::new();
                for run in runs {
                    requests.add(run);
                }
                let mut seen = 0;
                while let Some((_, outcome)) = requests.wait_one() {
                    count(outcome, seen);
                    seen += 1;
                }
            }
            say(format!(
                "finished: {} outcomes, interrupted {}, other {other}, cleanups match {}",
                ok + interrupted + other,
                interrupted > 0,
                cleanups.load(Ordering::SeqCst) == interrupted
            ));
        }
        "disabled" => {
            say(format!(
                "handler installed: {}",
                concertina::default_pool()
                    .map(|_| concertina::interrupt::handles_ctrlc())
                    .unwrap()
            ));
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn ctrl_c_during_a_wait_cancels_the_task_and_returns_interrupted() {
    let (lines, code) = child("wait", &[]);
    // The hook runs on the signal thread, the rest on the waiting thread:
    // only the order within each thread is fixed.
    let on_waiting_thread: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| *l != "hook ran")
        .collect();
    assert_eq!(
        on_waiting_thread,
        [
            "handler installed: true",
            "ready: waiting on the move",
            "cleanup ran",
            "wait returned Err(Interrupted)",
            "task saw cancellation",
            "cleanups: 1",
        ]
    );
    assert_eq!(
        lines.iter().filter(|l| *l == "hook ran").count(),
        1,
        "{lines:?}"
    );
    let at = |line: &str| lines.iter().position(|l| l == line);
    assert!(
        at("hook ran") > at("ready: waiting on the move"),
        "{lines:?}"
    );
    assert!(
        at("hook ran") < at("wait returned Err(Interrupted)"),
        "the wait returns after the hooks: {lines:?}"
    );
    assert_eq!(code, Some(0));
}

#[test]
fn ctrl_c_with_nobody_waiting_runs_the_hooks_and_exits_130() {
    let (lines, code) = child("idle", &[]);
    assert_eq!(lines, ["ready: nobody waits", "hook ran"]);
    assert_eq!(code, Some(130));
}

#[test]
fn a_second_ctrl_c_while_the_first_is_handled_exits_130() {
    let (lines, code) = child("second", &[]);
    assert_eq!(
        lines,
        ["ready: waiting on the move", "ready: cleanup started, slow"]
    );
    assert_eq!(code, Some(130));
}

#[test]
fn an_application_handler_hands_over_through_interrupt() {
    let (lines, code) = child("own_handler", &[]);
    assert_eq!(
        lines,
        [
            "handler installed: false",
            "ready: waiting on the move",
            "application handler",
            "wait returned Err(Interrupted)",
            "cleanups: 1",
        ]
    );
    assert_eq!(code, Some(0));
}

#[test]
fn ctrl_c_interrupts_request_pools_and_instance_calls() {
    let (lines, code) = child("many", &[("CONCERTINA_THREADS", "4")]);
    assert_eq!(
        lines,
        [
            "ready: waiting on a request pool",
            "request pool returned [Err(Interrupted), Err(Interrupted)]",
            "ready: waiting in Instance::call",
            "call returned Err(Interrupted)",
            "both tasks saw cancellation",
        ]
    );
    assert_eq!(code, Some(0));
}

#[test]
fn concertina_ctrlc_0_leaves_sigint_alone() {
    let (lines, code) = child("disabled", &[("CONCERTINA_CTRLC", "0")]);
    assert_eq!(
        (lines, code),
        (vec!["handler installed: false".to_owned()], Some(0))
    );
}

#[test]
fn interrupt_waits_interrupts_a_wait_in_this_process_without_exiting() {
    let pool = concertina::Pool::builder()
        .threads(1)
        .backend(concertina::Backend::Crossbeam)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let motion = pool.spawn(motor_move(tx));
    // Running, so that the interrupt cancels a task that sees its flag.
    while !motion.running() {
        std::thread::yield_now();
    }
    let waiter = std::thread::spawn(move || motion.result());
    while concertina::interrupt::interrupt_waits() == 0 {
        std::thread::yield_now();
    }
    assert_eq!(waiter.join().unwrap(), Err(Error::Interrupted));
    rx.recv_timeout(Duration::from_secs(30)).unwrap();
}

#[test]
fn a_lock_wait_is_interrupted_too() {
    let motor = concertina::Device::builder("lock_wait_motor")
        .build()
        .unwrap();
    let held = motor.clone();
    let (locked_tx, locked) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _guard = held.lock().unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    locked.recv().unwrap();
    let waiting = motor.clone();
    let waiter = std::thread::spawn(move || waiting.lock().map(drop));
    while concertina::interrupt::interrupt_waits() == 0 {
        std::thread::yield_now();
    }
    assert_eq!(waiter.join().unwrap(), Err(Error::Interrupted));
    release.send(()).unwrap();
    holder.join().unwrap();
}

#[test]
fn a_device_stopped_on_interrupt_is_aborted_by_ctrl_c() {
    let stops = Arc::new(AtomicUsize::new(0));
    let s = stops.clone();
    let x = concertina::Parameter::<f64>::builder("x")
        .setter(|_| {})
        .on_cancel(move || {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let stage = concertina::Device::builder("interrupt_stage")
        .parameter(x)
        .build()
        .unwrap();
    stage.stop_on_interrupt();
    concertina::interrupt::interrupt_waits();
    assert!(stops.load(Ordering::SeqCst) >= 1);
}

/// A task that runs until cancelled, on `pool`.
fn endless(pool: &concertina::Pool) -> concertina::Future<()> {
    pool.spawn(|| {
        while !concertina::cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Runs `wait` on another thread and interrupts it; returns what it returned.
fn interrupted<R: Send + 'static>(wait: impl FnOnce() -> R + Send + 'static) -> R {
    let waiter = std::thread::spawn(wait);
    while !waiter.is_finished() {
        concertina::interrupt::interrupt_waits();
        std::thread::sleep(Duration::from_millis(1));
    }
    waiter.join().unwrap()
}

#[test]
fn every_kind_of_wait_is_interrupted() {
    let pool = concertina::Pool::builder()
        .threads(3)
        .backend(concertina::Backend::Crossbeam)
        .build()
        .unwrap();

    let f = endless(&pool);
    assert_eq!(
        interrupted(move || f.join().map(drop)),
        Err(Error::Interrupted),
        "join"
    );

    let f = endless(&pool);
    let (done, f) = interrupted(move || (f.wait_timeout(Duration::from_secs(600)), f));
    assert!(done, "wait_timeout returns with the future finished");
    assert_eq!(f.result(), Err(Error::Interrupted), "wait_timeout");

    let fs = vec![endless(&pool), endless(&pool)];
    assert_eq!(
        interrupted(move || concertina::wait_all(fs)),
        [Err(Error::Interrupted), Err(Error::Interrupted)]
    );

    let fs = vec![endless(&pool), endless(&pool)];
    let first = interrupted(move || concertina::wait_any(fs));
    let first = first.expect("wait_any returns a finished future");
    assert_eq!(first.outcome, Err(Error::Interrupted));
    assert!(
        first
            .rest
            .into_iter()
            .all(|f| f.result() == Err(Error::Interrupted)),
        "wait_any interrupts all it waits on ({})",
        first.index
    );

    let fs = vec![endless(&pool), endless(&pool)];
    let outcomes: Vec<_> =
        interrupted(move || concertina::as_completed(fs).map(|(_, r)| r).collect());
    assert_eq!(
        outcomes,
        [Err(Error::Interrupted), Err(Error::Interrupted)],
        "as_completed"
    );

    let fs = vec![endless(&pool), endless(&pool)];
    let outcomes = interrupted(move || concertina::wait_all_timeout(fs, Duration::from_secs(600)));
    assert_eq!(
        outcomes.expect("every future finished, interrupted"),
        [Err(Error::Interrupted), Err(Error::Interrupted)],
        "wait_all_timeout"
    );

    let shared = endless(&pool).shared();
    let other = shared.clone();
    assert_eq!(
        interrupted(move || shared.result()),
        Err(Error::Interrupted),
        "Shared::result"
    );
    assert_eq!(
        other.result(),
        Err(Error::Interrupted),
        "every clone sees it"
    );
}

#[test]
fn ctrl_c_between_two_waits_of_a_sweep_belongs_to_the_sweep() {
    for scenario in ["sweep", "sweep request pool"] {
        for after in ["0", "7", "40"] {
            let (lines, code) = child(scenario, &[("SWEEP_READY_AFTER", after)]);
            assert_eq!(code, Some(0), "{scenario} after {after}: {lines:?}");
            assert_eq!(
                lines,
                [
                    "ready: between two waits",
                    "finished: 200 outcomes, interrupted true, other 0, cleanups match true"
                ],
                "{scenario} after {after}"
            );
        }
    }
}

/// A hook lives as long as its guard: dropping the guard removes it (and
/// drops what it holds); `forever()` keeps it.
#[test]
fn an_interrupt_hook_is_removed_when_its_guard_drops() {
    let (runs, token) = (Arc::new(AtomicUsize::new(0)), Arc::new(()));
    let (r, t) = (runs.clone(), token.clone());
    let hook = concertina::interrupt::on_interrupt(move || {
        let _held = &t;
        r.fetch_add(1, Ordering::SeqCst);
    });
    concertina::interrupt::interrupt_waits();
    assert!(runs.load(Ordering::SeqCst) >= 1);
    assert!(
        Arc::strong_count(&token) >= 2,
        "the registered hook holds its captures"
    );
    drop(hook);
    // Another test's interrupt may still be running the hooks it took
    // before the drop; once that is over, nothing holds the hook.
    for _ in 0..10_000 {
        if Arc::strong_count(&token) == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "removed, the hook's captures are dropped"
    );
    let after_one = runs.load(Ordering::SeqCst);
    concertina::interrupt::interrupt_waits();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        after_one,
        "a removed hook never runs again"
    );
    let kept = Arc::new(AtomicUsize::new(0));
    let k = kept.clone();
    concertina::interrupt::on_interrupt(move || {
        k.fetch_add(1, Ordering::SeqCst);
    })
    .forever();
    concertina::interrupt::interrupt_waits();
    assert!(kept.load(Ordering::SeqCst) >= 1, "a hook kept forever runs");
}
