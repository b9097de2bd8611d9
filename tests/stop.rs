//! A parameter's stop may use its own parameter: a read (or a set) that the
//! stop makes runs as part of the stop, instead of queueing behind the very
//! move being stopped (which waits for its stop) and hanging.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::{within, THREADED};
use concertina::{Device, Error, Parameter};

/// What the stop read.
type Seen = Arc<OnceLock<Result<f64, Error>>>;

/// A motor whose move runs until cancelled and whose stop reads where it
/// stopped and parks it at 0.0; returns it with what the stop saw.
fn motor(
    pool: &concertina::Pool,
    concurrent_reads: bool,
) -> (Parameter<f64>, Seen, Arc<AtomicBool>) {
    let position = Arc::new(AtomicU32::new(0));
    let moving = Arc::new(AtomicBool::new(false));
    let itself: Arc<OnceLock<Parameter<f64>>> = Arc::default();
    let seen: Seen = Arc::default();
    let (p, m) = (position.clone(), moving.clone());
    let (read, set) = (position.clone(), position.clone());
    let (me, saw) = (itself.clone(), seen.clone());
    let mut builder = Parameter::builder("position")
        .pool(pool)
        .getter(move || f64::from(read.load(Ordering::SeqCst)))
        .setter(move |mm: f64| {
            if mm == 0.0 {
                set.store(0, Ordering::SeqCst);
                return;
            }
            m.store(true, Ordering::SeqCst);
            while !concertina::cancelled() {
                p.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
        .on_cancel(move || {
            let parameter = me.get().expect("set before the move");
            let _ = saw.set(parameter.get().result());
            parameter
                .set(0.0)
                .result()
                .expect("the parking set runs inside the stop");
        });
    if concurrent_reads {
        builder = builder.concurrent_reads();
    }
    let parameter = builder.build().unwrap();
    let _ = itself.set(parameter.clone());
    (parameter, seen, moving)
}

#[test]
fn a_stop_that_reads_and_sets_its_own_parameter_runs_through() {
    for backend in THREADED {
        for concurrent_reads in [false, true] {
            within(60, move || {
                let pool = common::pool(backend, 1);
                let (position, seen, moving) = motor(&pool, concurrent_reads);
                let moved = position.set(5.0);
                while !moving.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                assert!(moved.cancel());
                assert_eq!(moved.result(), Err(Error::Cancelled));
                assert!(matches!(seen.get(), Some(Ok(_))), "{backend:?}: {seen:?}");
                assert_eq!(
                    position.get().result(),
                    Ok(0.0),
                    "{backend:?}: parked by the stop"
                );
            });
        }
    }
}

#[test]
fn a_device_abort_whose_stop_uses_the_parameter_runs_through() {
    for backend in THREADED {
        within(60, move || {
            let pool = common::pool(backend, 1);
            let (position, seen, moving) = motor(&pool, false);
            let device = Device::builder("stage")
                .parameter(position.clone())
                .build()
                .unwrap();
            let moved = position.set(5.0);
            while !moving.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(device.abort(), 1);
            assert_eq!(moved.result(), Err(Error::Cancelled));
            assert!(matches!(seen.get(), Some(Ok(_))), "{backend:?}: {seen:?}");
            assert_eq!(position.get().result(), Ok(0.0), "{backend:?}");
            // With nothing moving, the abort's stop runs on its own.
            assert_eq!(device.abort(), 1);
            assert_eq!(position.get().result(), Ok(0.0), "{backend:?}");
        });
    }
}

/// A stop that waits on a task which reads the parameter being stopped:
/// the read is queued behind the move, the move waits for its stop, the
/// stop waits for the task. The wait graph sees it (a cancelled operation
/// waits on whoever runs its stop, and the queue's drain waits for the
/// stop through `park`): one of the waits reports `Deadlock`, the stop
/// returns, the cancel completes and the parameter takes operations again.
#[test]
fn a_stop_waiting_on_a_task_that_reads_its_parameter_reports_a_deadlock() {
    for backend in THREADED {
        within(60, move || {
            let pool = common::pool(backend, 2);
            let itself: Arc<OnceLock<Parameter<f64>>> = Arc::default();
            let seen: Arc<OnceLock<String>> = Arc::default();
            let moving = Arc::new(AtomicBool::new(false));
            let (me, saw, m, task_pool) =
                (itself.clone(), seen.clone(), moving.clone(), pool.clone());
            let position = Parameter::builder("position")
                .pool(&pool)
                .getter(|| 1.0)
                .setter(move |_: f64| {
                    m.store(true, Ordering::SeqCst);
                    while !concertina::cancelled() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .on_cancel(move || {
                    let parameter = me.get().expect("set before the move").clone();
                    // Another task's read: queued behind the move.
                    let read = task_pool.spawn(move || parameter.get().result());
                    let _ = saw.set(format!("{:?}", read.result()));
                })
                .build()
                .unwrap();
            let _ = itself.set(position.clone());
            let moved = position.set(5.0);
            while !moving.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(moved.cancel());
            assert_eq!(moved.result(), Err(Error::Cancelled));
            let seen = seen.get().cloned().unwrap_or_default();
            assert!(
                seen.contains("Deadlock"),
                "{backend:?}: the stop saw {seen}"
            );
            assert_eq!(
                position.get().result(),
                Ok(1.0),
                "{backend:?}: the queue goes on"
            );
        });
    }
}
