//! The `Future` handle: states, waits, `result`, `join`, `then`, `try_result`.

mod common;

use std::time::Duration;

use common::{pool, Gate, THREADED};
use concertina::{Error, Future};

#[test]
fn ready_future_is_done_and_gives_its_value() {
    let f = Future::ready(vec![1, 2, 3]);
    assert!(f.done());
    assert!(!f.running());
    assert!(!f.cancelled());
    assert!(f.wait_timeout(Duration::ZERO));
    assert_eq!(f.result(), Ok(vec![1, 2, 3]));
}

#[test]
fn failed_future_carries_its_error() {
    let f: Future<u8> = Future::failed(Error::Shutdown);
    assert!(f.done());
    assert!(!f.cancelled());
    assert_eq!(f.join().unwrap_err(), Error::Shutdown);
}

#[test]
fn spawned_value_reaches_result_on_the_default_pool() {
    let futures: Vec<Future<u64>> = (0..32u64)
        .map(|i| concertina::spawn(move || i * i))
        .collect();
    let values: Vec<u64> = futures.into_iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(values, (0..32u64).map(|i| i * i).collect::<Vec<_>>());
}

#[test]
fn states_move_from_pending_to_running_to_done() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let (started, release) = (Gate::new(), Gate::new());
        let (s, r) = (started.clone(), release.clone());
        let first = pool.spawn(move || {
            s.open();
            r.wait();
            "first"
        });
        let second = pool.spawn(|| "second");
        started.wait();
        assert!(first.running(), "{backend:?}");
        assert!(!first.done());
        assert!(
            !second.running() && !second.done(),
            "one thread: the second is still queued"
        );
        assert!(
            !first.wait_timeout(Duration::from_millis(1)),
            "a blocked task is not done"
        );
        release.open();
        assert_eq!(first.result(), Ok("first"));
        assert!(second.wait_timeout(Duration::from_secs(60)));
        assert!(second.done() && !second.running());
        assert_eq!(second.result(), Ok("second"));
    }
}

#[test]
fn join_gives_the_finished_future_back() {
    let f = concertina::spawn(|| String::from("position reached"))
        .join()
        .unwrap();
    assert!(f.done());
    assert_eq!(f.result().unwrap(), "position reached");
}

#[test]
fn join_surfaces_the_panic_of_the_task() {
    let f = concertina::spawn(|| -> u32 { panic!("motor stalled at {}", 3) });
    assert_eq!(
        f.join().unwrap_err(),
        Error::Panicked("motor stalled at 3".into())
    );
}

#[test]
fn then_runs_after_success_with_the_value() {
    let f = concertina::spawn(|| 20).then(|v| v + 1).then(|v| v * 2);
    assert_eq!(f.result(), Ok(42));
}

#[test]
fn then_on_a_finished_future_still_runs() {
    assert_eq!(Future::ready(2).then(|v| v * 10).result(), Ok(20));
}

#[test]
fn then_passes_a_failure_on_and_never_runs() {
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = ran.clone();
    let f = concertina::spawn(|| -> u32 { panic!("boom") }).then(move |v| {
        r.store(true, std::sync::atomic::Ordering::SeqCst);
        v
    });
    assert_eq!(f.result(), Err(Error::Panicked("boom".into())));
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn then_runs_on_the_pool_that_finished_the_first_task() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let release = Gate::new();
        let r = release.clone();
        let first = pool.spawn(move || r.wait());
        let next = first.then(|()| std::thread::current().name().map(String::from));
        release.open();
        let name = next.result().unwrap().unwrap_or_default();
        let expected = format!("concertina-{}-", format!("{backend:?}").to_lowercase());
        assert!(name.starts_with(&expected), "{backend:?}: ran on {name:?}");
    }
}

#[test]
fn cancelling_a_then_future_cancels_its_source() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let source = pool.spawn(|| {
            while !concertina::cancelled() {
                std::thread::yield_now();
            }
        });
        let source_handle = source.cancel_handle();
        let derived = source.then(|()| "never");
        assert!(derived.cancel());
        assert!(source_handle.cancelled(), "{backend:?}");
        assert_eq!(derived.result(), Err(Error::Cancelled));
    }
}

#[derive(Debug, PartialEq)]
enum ReadError {
    Saturated,
    Task(Error),
}

impl From<Error> for ReadError {
    fn from(e: Error) -> Self {
        ReadError::Task(e)
    }
}

#[test]
fn try_result_flattens_task_errors_and_failures() {
    let ok = concertina::spawn(|| -> Result<u16, ReadError> { Ok(7) });
    assert_eq!(ok.try_result(), Ok(7));
    let own = concertina::spawn(|| -> Result<u16, ReadError> { Err(ReadError::Saturated) });
    assert_eq!(own.try_result(), Err(ReadError::Saturated));
    let panicked = concertina::spawn(|| -> Result<u16, ReadError> { panic!("overflow") });
    assert_eq!(
        panicked.try_result(),
        Err(ReadError::Task(Error::Panicked("overflow".into())))
    );
}

#[test]
fn debug_shows_the_state_without_requiring_debug_values() {
    struct Opaque;
    let f = Future::ready(Opaque);
    assert_eq!(format!("{f:?}"), r#"Future { state: "done" }"#);
    let f: Future<Opaque> = Future::failed(Error::Cancelled);
    assert_eq!(format!("{f:?}"), r#"Future { state: "cancelled" }"#);
}

#[test]
fn dropping_a_future_detaches_the_task_which_still_runs() {
    let (tx, rx) = std::sync::mpsc::channel();
    drop(concertina::spawn(move || tx.send("ran anyway").unwrap()));
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok("ran anyway"));
}

#[test]
fn many_waiters_on_one_future_all_wake() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let release = Gate::new();
        let r = release.clone();
        let f = pool.spawn(move || r.wait());
        std::thread::scope(|s| {
            let waiters: Vec<_> = (0..4)
                .map(|_| s.spawn(|| f.wait_timeout(Duration::from_secs(60))))
                .collect();
            release.open();
            for w in waiters {
                assert!(w.join().unwrap(), "{backend:?}");
            }
        });
        assert!(f.done());
    }
}

#[test]
fn handles_and_errors_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Future<Vec<u8>>>();
    send_sync::<concertina::CancelHandle>();
    send_sync::<concertina::Pool>();
    send_sync::<Error>();
    fn std_error<E: std::error::Error + Send + Sync + 'static>() {}
    std_error::<Error>();
    std_error::<concertina::error::ConfigError>();
    // A non-Sync value type still gives a Send + Sync handle.
    send_sync::<Future<std::cell::Cell<u8>>>();
}

#[test]
fn an_error_stays_small_so_every_outcome_slot_does() {
    // Every future's shared state holds an `Option<Result<T, Error>>`; the
    // rare, wordy errors keep their details boxed.
    assert!(
        std::mem::size_of::<Error>() <= 32,
        "Error grew to {} bytes",
        std::mem::size_of::<Error>()
    );
    assert!(std::mem::size_of::<Option<Result<(), Error>>>() <= 32);
}
