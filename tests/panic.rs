//! Panics are data: they reach the handle as `Error::Panicked` with their
//! message, and no worker dies of them.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{pool, Gate, THREADED};
use concertina::{Backend, Error, Pool};

#[test]
fn the_panic_message_reaches_the_handle() {
    let f = concertina::spawn(|| -> () { panic!("static message") });
    assert_eq!(f.result(), Err(Error::Panicked("static message".into())));
    let f = concertina::spawn(|| -> () { panic!("formatted {}", 42) });
    assert_eq!(f.result(), Err(Error::Panicked("formatted 42".into())));
    let f = concertina::spawn(|| -> () { std::panic::panic_any(7u8) });
    assert_eq!(
        f.result(),
        Err(Error::Panicked(
            "a panic payload that is not a string".into()
        ))
    );
}

#[test]
fn a_panicking_task_never_kills_its_worker() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let pool = pool(backend, 1);
        let before = pool.spawn(|| std::thread::current().id()).result().unwrap();
        for i in 0..20 {
            let f = pool.spawn(move || -> u32 { panic!("failure {i}") });
            assert_eq!(f.result(), Err(Error::Panicked(format!("failure {i}"))));
        }
        let after = pool.spawn(|| std::thread::current().id()).result().unwrap();
        assert_eq!(before, after, "{backend:?}: the single worker was replaced");
    }
}

#[test]
fn every_done_callback_sees_the_panic() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let release = Gate::new();
        let r = release.clone();
        let f = pool.spawn(move || -> u8 {
            r.wait();
            panic!("overheated")
        });
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        for _ in 0..3 {
            let seen = seen.clone();
            f.on_done(move |outcome| seen.lock().push(outcome.clone()));
        }
        release.open();
        assert_eq!(f.result(), Err(Error::Panicked("overheated".into())));
        let expected = vec![Err::<u8, _>(Error::Panicked("overheated".into())); 3];
        assert_eq!(*seen.lock(), expected, "{backend:?}");
    }
}

/// A value whose drop panics: dropped by the library when its task was
/// cancelled while running.
struct PanicsOnDrop(Arc<AtomicUsize>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
        panic!("a value that panics when dropped");
    }
}

#[test]
fn a_value_that_panics_when_dropped_by_the_pool_does_not_kill_the_worker() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let drops = Arc::new(AtomicUsize::new(0));
        let (started, release) = (Gate::new(), Gate::new());
        let (s, r, d) = (started.clone(), release.clone(), drops.clone());
        let f = pool.spawn(move || {
            s.open();
            r.wait();
            PanicsOnDrop(d)
        });
        started.wait();
        assert!(f.cancel());
        release.open();
        assert!(matches!(f.result(), Err(Error::Cancelled)));
        assert_eq!(
            pool.spawn(|| "still serving").result(),
            Ok("still serving"),
            "{backend:?}"
        );
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}

#[test]
fn a_panicking_then_closure_fails_only_its_own_future() {
    let f = concertina::spawn(|| 1).then(|_| -> u32 { panic!("bad continuation") });
    assert_eq!(f.result(), Err(Error::Panicked("bad continuation".into())));
    assert_eq!(concertina::spawn(|| 2).then(|v| v + 1).result(), Ok(3));
}

/// The child's side: does nothing unless started by a test below.
#[test]
fn scenario_runner() {
    let Ok(scenario) = std::env::var(common::SCENARIO) else {
        return;
    };
    assert_eq!(scenario, "quiet and loud");
    let pool = |quiet| {
        Pool::builder()
            .threads(1)
            .backend(Backend::Crossbeam)
            .quiet_panics(quiet)
            .build()
            .unwrap()
    };
    let (quiet, loud) = (pool(true), pool(false));
    common::say(format!(
        "{:?}",
        quiet
            .spawn(|| -> u8 { panic!("quiet one diverged") })
            .result()
    ));
    // A quiet pool's call on an instance, and a loud task it runs inline.
    let model = quiet.instance(0u8);
    common::say(format!(
        "{:?}",
        model
            .spawn(|_| -> u8 { panic!("quiet call diverged") })
            .result()
    ));
    let l = loud.clone();
    let inside = quiet.spawn(move || l.spawn(|| -> u8 { panic!("loud one diverged") }).result());
    common::say(format!("{:?}", inside.result()));
    common::say(format!(
        "{:?}",
        loud.spawn(|| -> u8 { panic!("loud two diverged") })
            .result()
    ));
}

#[test]
fn a_quiet_pool_prints_nothing_for_its_tasks_panics_and_others_print_as_before() {
    let output = common::scenario_command("quiet and loud", &[("RUST_BACKTRACE", "0")])
        .output()
        .unwrap();
    assert!(output.status.success());
    let said: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(common::said)
        .collect();
    assert_eq!(
        said,
        [
            r#"Err(Panicked("quiet one diverged"))"#,
            r#"Err(Panicked("quiet call diverged"))"#,
            r#"Ok(Err(Panicked("loud one diverged")))"#,
            r#"Err(Panicked("loud two diverged"))"#,
        ]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("quiet one diverged"), "{stderr}");
    assert!(!stderr.contains("quiet call diverged"), "{stderr}");
    assert!(
        stderr.contains("loud one diverged"),
        "a loud pool's task run inline still prints: {stderr}"
    );
    assert!(stderr.contains("loud two diverged"), "{stderr}");
}
