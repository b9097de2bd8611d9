//! "Where is my program stuck?": `concertina::snapshot()` names every pool
//! and every thread asleep in a wait, with what it waits for down the
//! chain (tasks, parameter operations, locks and their holders), marks a
//! cycle nobody reported, and `CONCERTINA_SNAPSHOT_ON_SIGQUIT=1` prints it
//! on SIGQUIT in a real child process that then goes on.

mod common;

use std::time::Duration;

use common::{pool, said, say, scenario_command, within, Gate, SCENARIO};
use concertina::{Backend, Device, Error, Parameter};

/// Polls the snapshot until `shows` holds; its text then.
fn snapshot_once(shows: impl Fn(&concertina::pool::Snapshot) -> bool) -> String {
    for _ in 0..20_000 {
        let snapshot = concertina::snapshot();
        if shows(&snapshot) {
            return snapshot.to_string();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("never seen:\n{}", concertina::snapshot());
}

#[test]
fn a_snapshot_names_each_blocked_wait_and_what_it_waits_for_down_the_chain() {
    within(60, || {
        let sim = pool(Backend::Crossbeam, 1);
        let gate = Gate::new();
        let g = gate.clone();
        let step = sim.spawn(move || g.wait());
        let analysis = std::thread::Builder::new()
            .name("analysis".into())
            .spawn(move || step.result())
            .unwrap();
        // A set held off by the lock of this thread.
        let motors = concertina::Pool::builder()
            .name("motors")
            .threads(1)
            .backend(Backend::Crossbeam)
            .build()
            .unwrap();
        let position = Parameter::<f64>::builder("position")
            .setter(|_| {})
            .pool(&motors)
            .build()
            .unwrap();
        let motor = Device::builder("motor")
            .parameter(position.clone())
            .build()
            .unwrap();
        let guard = motor.lock().unwrap();
        let meddler = std::thread::Builder::new()
            .name("meddler".into())
            .spawn(move || position.set(1.0).result())
            .unwrap();
        let waits_for = |s: &concertina::pool::Snapshot, name: &str, what: &str| {
            s.waits
                .iter()
                .any(|w| w.thread == name && w.chain.iter().any(|(_, c)| c.contains(what)))
        };
        // Once the set's queue has met the lock.
        let text = snapshot_once(|s| {
            waits_for(s, "analysis", "task") && waits_for(s, "meddler", "a lock on")
        });
        assert!(text.starts_with("concertina snapshot: "), "{text}");
        assert!(
            text.contains("pool `crossbeam` (Crossbeam): 1 threads"),
            "{text}"
        );
        assert!(text.contains("thread `analysis` blocked for"), "{text}");
        assert!(
            text.contains("waits on task `"),
            "the task the analysis waits for:\n{text}"
        );
        assert!(text.contains("thread `meddler` blocked for"), "{text}");
        assert!(
            text.contains("waits on a call on parameter `motor.position`"),
            "the set it waits for:\n{text}"
        );
        assert!(
            text.contains("which waits on a lock on motor.position"),
            "what holds the set off:\n{text}"
        );
        assert!(
            text.contains("which waits on thread `"),
            "the lock's holder:\n{text}"
        );
        assert!(!text.contains("DEADLOCK"), "{text}");
        drop(guard);
        gate.open();
        assert_eq!(meddler.join().unwrap(), Ok(()));
        assert_eq!(analysis.join().unwrap(), Ok(()));
        // Nobody waits any more on what this test made.
        let after = concertina::snapshot();
        assert!(!after
            .waits
            .iter()
            .any(|w| w.thread == "analysis" || w.thread == "meddler"));
    });
}

/// A wait with a timeout does not look for a cycle: one closed that way is
/// marked in the snapshot.
#[test]
fn a_snapshot_marks_a_cycle_that_nobody_reported() {
    within(60, || {
        let model = pool(Backend::Crossbeam, 1).instance(0u32);
        let (tx, rx) = std::sync::mpsc::channel::<concertina::Future<u32>>();
        // Waits, with a timeout, on a later call of its own instance.
        let first = model.spawn(move |_| {
            let later = rx.recv().unwrap();
            later
                .result_timeout(Duration::from_secs(600))
                .map_err(Error::from)
                .and_then(|r| r)
        });
        let later = model.spawn(|n| *n);
        let handle = later.cancel_handle();
        tx.send(later).unwrap();
        let text = snapshot_once(|s| s.waits.iter().any(|w| w.in_cycle));
        assert!(
            text.contains("[DEADLOCK: its waits come back to it]"),
            "{text}"
        );
        assert!(text.contains("(again: a cycle)"), "{text}");
        handle.cancel();
        assert_eq!(first.result(), Ok(Err(Error::Cancelled)));
    });
}

/// The child's side: does nothing unless started by a test below.
#[test]
fn scenario_runner() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    match scenario.as_str() {
        "stuck until told" => {
            let workers = concertina::Pool::builder()
                .name("workers")
                .threads(1)
                .backend(Backend::Crossbeam)
                .build()
                .unwrap();
            let gate = Gate::new();
            let g = gate.clone();
            let stuck = workers.spawn(move || g.wait());
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                gate.open();
            });
            std::thread::spawn(|| {
                while !concertina::snapshot()
                    .waits
                    .iter()
                    .any(|w| !w.chain.is_empty())
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                say("ready: stuck");
            });
            say(format!("stuck returned {:?}", stuck.result()));
        }
        "bad flag" => {
            let built = concertina::Pool::builder()
                .backend(Backend::Crossbeam)
                .threads(1)
                .build();
            say(format!(
                "built: {}",
                built
                    .map(|_| "a pool".to_owned())
                    .unwrap_or_else(|e| e.to_string())
            ));
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn sigquit_prints_a_snapshot_to_stderr_and_the_program_goes_on() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    within(120, || {
        let mut child = scenario_command(
            "stuck until told",
            &[("CONCERTINA_SNAPSHOT_ON_SIGQUIT", "1")],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let pid = child.id().to_string();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = stdout.by_ref().map(|l| l.unwrap()).find_map(|l| said(&l));
        assert_eq!(ready.as_deref(), Some("ready: stuck"));
        let sent = std::process::Command::new("kill")
            .args(["-QUIT", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        // The snapshot, on stderr: up to the chain of the main thread's wait.
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut printed = Vec::new();
        for line in stderr.by_ref() {
            let line = line.unwrap();
            let last = line.trim_start().starts_with("waits on task");
            printed.push(line);
            if last {
                break;
            }
        }
        let text = printed.join("\n");
        assert!(text.contains("concertina snapshot: "), "{text}");
        assert!(text.contains("pool `workers` (Crossbeam)"), "{text}");
        assert!(text.contains("blocked for"), "{text}");
        // The program goes on: told, it finishes as usual.
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let rest: Vec<String> = stdout
            .map(|l| l.unwrap())
            .filter_map(|l| said(&l))
            .collect();
        assert_eq!(rest, ["stuck returned Ok(())"], "{text}");
        assert!(child.wait().unwrap().success());
    });
}

#[test]
fn a_snapshot_flag_that_is_not_accepted_is_a_configuration_error() {
    let output = scenario_command("bad flag", &[("CONCERTINA_SNAPSHOT_ON_SIGQUIT", "maybe")])
        .output()
        .unwrap();
    let said: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(said)
        .collect();
    assert_eq!(
        said,
        ["built: invalid value \"maybe\" for CONCERTINA_SNAPSHOT_ON_SIGQUIT: expected one of 1, 0, true, false, yes, no, on, off"]
    );
}
