//! Real deadlocks are reported, not hung: a wait that closes a cycle of
//! tasks, instance calls and derived futures returns `Err(Deadlock)` naming
//! the cycle, and every kind of wait does so. Watchdogs turn a hang into a
//! failure.

mod common;

use std::sync::mpsc;

use common::{pool, within, THREADED};
use concertina::{Backend, Error, Future, Instance, RequestPool};

fn deadlocked<T: std::fmt::Debug>(outcome: Result<T, Error>) -> concertina::error::Cycle {
    match outcome {
        Err(Error::Deadlock(cycle)) => cycle,
        other => panic!("expected a deadlock, got {other:?}"),
    }
}

#[test]
fn two_tasks_waiting_on_each_other_get_a_deadlock_naming_both() {
    for backend in THREADED {
        for threads in [1, 2] {
            within(60, move || {
                let workers = pool(backend, threads);
                let (to_a, from_b) = mpsc::channel::<Future<Result<(), Error>>>();
                let a = workers.spawn(move || from_b.recv().unwrap().result().and_then(|r| r));
                let a_done = a.when_done();
                let b = workers.spawn(move || a_done.result());
                to_a.send(b).unwrap();
                let cycle = deadlocked(a.result().unwrap());
                let text = cycle.to_string();
                assert!(text.starts_with("deadlock: "), "{text}");
                assert!(cycle.tasks().len() >= 2, "{cycle:?}");
                assert!(
                    text.contains("two_tasks_waiting_on_each_other"),
                    "the tasks are named after their closures: {text}"
                );
            });
        }
    }
}

#[test]
fn three_tasks_in_a_ring_get_a_deadlock() {
    for backend in THREADED {
        within(60, move || {
            let workers = pool(backend, 3);
            let (to_a, from_c) = mpsc::channel::<Future<Result<(), Error>>>();
            let a = workers.spawn(move || from_c.recv().unwrap().result().and_then(|r| r));
            let a_done = a.when_done();
            let b = workers.spawn(move || a_done.result());
            let b_done = b.when_done();
            let c = workers.spawn(move || b_done.result());
            to_a.send(c).unwrap();
            // Whichever wait closes the ring reports it; the rest unwinds.
            let (a, b) = (a.result().unwrap(), b.result().unwrap());
            let cycle = match (a, b) {
                (Err(Error::Deadlock(cycle)), _) | (_, Err(Error::Deadlock(cycle))) => cycle,
                other => panic!("{backend:?}: no deadlock reported: {other:?}"),
            };
            let named = cycle
                .tasks()
                .iter()
                .filter(|t| t.contains("three_tasks_in_a_ring"));
            assert_eq!(named.count(), 3, "{cycle:?}");
        });
    }
}

/// A call of `model` that waits, in the way `wait` says, on a later call of
/// the same instance; returns what the wait returned, as a deadlock or not.
fn self_wait(backend: Backend, wait: fn(Future<u8>) -> Result<u8, Error>) -> Result<u8, Error> {
    let workers = pool(backend, 1);
    let model = workers.instance(3u8);
    let inner = model.clone();
    let outcome = model
        .spawn(move |_| wait(inner.spawn(|n| *n)))
        .result()
        .unwrap();
    assert_eq!(model.call(|n| *n), Ok(3), "the instance still serves");
    outcome
}

#[test]
fn every_kind_of_wait_on_the_callers_own_later_call_gets_a_deadlock() {
    type Wait = fn(Future<u8>) -> Result<u8, Error>;
    let waits: [(&str, Wait); 9] = [
        ("result", |f| f.result()),
        ("join", |f| f.join().and_then(Future::result)),
        ("wait_all", |f| concertina::wait_all([f]).remove(0)),
        ("wait_any", |f| {
            concertina::wait_any([f]).expect("one future").outcome
        }),
        ("as_completed", |f| {
            concertina::as_completed([f]).next().expect("one outcome").1
        }),
        ("request pool", |f| {
            let mut requests = RequestPool::new();
            requests.add(f);
            requests.wait_one().expect("one request").1
        }),
        ("when_done", |f| f.when_done().result().map(|()| 0)),
        ("then", |f| f.then(|n| n + 1).result()),
        ("join of two", |f| {
            f.zip(Future::ready(1u8)).result().map(|(a, _)| a)
        }),
    ];
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        for (name, wait) in waits {
            let outcome = within(60, move || self_wait(backend, wait));
            let cycle = deadlocked(outcome);
            assert!(
                cycle.to_string().contains("Instance<u8>"),
                "{backend:?} {name}: {cycle}"
            );
        }
    }
}

#[test]
fn a_chain_of_waits_without_a_cycle_is_not_reported() {
    for backend in THREADED {
        within(60, move || {
            let workers = pool(backend, 2);
            let model = Instance::new(0u32);
            let steps: Vec<_> = (0..50)
                .map(|i| {
                    let m = model.clone();
                    workers.spawn(move || {
                        m.call(move |n| {
                            *n += i;
                            *n
                        })
                    })
                })
                .collect();
            for step in steps {
                assert!(step.result().unwrap().is_ok(), "{backend:?}");
            }
            assert_eq!(model.call(|n| *n), Ok((0..50).sum()));
        });
    }
}

#[test]
fn a_timed_wait_in_a_cycle_times_out_instead() {
    // Waits with a deadline are not part of the detection: they end anyway.
    for backend in THREADED {
        within(60, move || {
            let workers = pool(backend, 1);
            let model = workers.instance(0u8);
            let inner = model.clone();
            let timed_out = model
                .spawn(move |_| {
                    let later = inner.spawn(|n| *n);
                    !later.wait_timeout(std::time::Duration::from_millis(20))
                })
                .result();
            assert_eq!(timed_out, Ok(true), "{backend:?}");
        });
    }
}
