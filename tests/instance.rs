//! `Instance`: calls on one value run in submission order, one at a time,
//! on a shared pool; failures and cancellations stay with their own call.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{pool, Gate, THREADED};
use concertina::{Backend, Error, Future, Instance};

#[test]
fn calls_run_in_submission_order_one_at_a_time() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let pool = pool(backend, 2);
        let model = pool.instance((Vec::new(), 0usize));
        let running = Arc::new(AtomicUsize::new(0));
        let futures: Vec<Future<usize>> = (0..200)
            .map(|i| {
                let running = running.clone();
                model.spawn(move |(log, max): &mut (Vec<usize>, usize)| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    *max = (*max).max(now);
                    log.push(i);
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        let values: Vec<usize> = concertina::wait_all(futures)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(values, (0..200).collect::<Vec<_>>());
        let (log, max) = model.call(|(log, max)| (log.clone(), *max)).unwrap();
        assert_eq!(log, (0..200).collect::<Vec<_>>(), "{backend:?}");
        assert_eq!(max, 1, "{backend:?}: two calls overlapped");
    }
}

#[test]
fn different_instances_run_side_by_side() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let (a, b) = (pool.instance(()), pool.instance(()));
        // Each call waits for the other instance's call: only concurrency finishes them.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let (b1, b2) = (barrier.clone(), barrier.clone());
        let fa = a.spawn(move |_| b1.wait().is_leader());
        let fb = b.spawn(move |_| b2.wait().is_leader());
        let leaders = [fa.result().unwrap(), fb.result().unwrap()];
        assert_eq!(leaders.iter().filter(|l| **l).count(), 1, "{backend:?}");
    }
}

#[test]
fn the_next_call_starts_without_anyone_waiting() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let model = pool.instance(0u32);
        let second_ran = Gate::new();
        let s = second_ran.clone();
        drop(model.spawn(|n| *n += 1));
        drop(model.spawn(move |n| {
            *n += 1;
            s.open();
        }));
        // Nobody holds or waits on either future; the queue still moves.
        second_ran.wait();
        assert_eq!(model.call(|n| *n), Ok(2), "{backend:?}");
    }
}

#[test]
fn a_panicking_call_fails_alone_and_marks_the_instance() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let pool = pool(backend, 1);
        let model = pool.instance(10i32);
        let before = model.spawn(|n| *n);
        let bad = model.spawn(|n| -> i32 {
            *n = -1; // a half-done update
            panic!("solver diverged")
        });
        let after = model.spawn(|n| *n + 1);
        assert_eq!(before.result(), Ok(10));
        assert_eq!(bad.result(), Err(Error::Panicked("solver diverged".into())));
        assert_eq!(after.result(), Ok(0), "{backend:?}: the queue goes on");
        assert!(model.is_poisoned());
    }
}

#[test]
fn a_cancelled_queued_call_is_removed_and_the_order_of_the_rest_kept() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let model = pool.instance(Vec::new());
        let release = Gate::new();
        let r = release.clone();
        let first = model.spawn(move |log: &mut Vec<u32>| {
            r.wait();
            log.push(0);
        });
        let calls: Vec<_> = (1..=5)
            .map(|i| model.spawn(move |log: &mut Vec<u32>| log.push(i)))
            .collect();
        assert!(calls[1].cancel());
        assert!(calls[3].cancel());
        release.open();
        first.result().unwrap();
        let outcomes: Vec<_> = calls.into_iter().map(Future::result).collect();
        assert_eq!(
            outcomes,
            [
                Ok(()),
                Err(Error::Cancelled),
                Ok(()),
                Err(Error::Cancelled),
                Ok(())
            ]
        );
        assert_eq!(
            model.call(|log| log.clone()),
            Ok(vec![0, 1, 3, 5]),
            "{backend:?}"
        );
    }
}

#[test]
fn call_waits_for_everything_queued_before_it() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let pool = pool(backend, 2);
        let model = pool.instance(0u64);
        for i in 1..=100 {
            drop(model.spawn(move |sum| *sum += i));
        }
        assert_eq!(model.call(|sum| *sum), Ok(5050), "{backend:?}");
        model.wait().unwrap();
        assert_eq!(model.queued(), 0);
    }
}

fn is_deadlock<T>(outcome: &Result<T, Error>) -> bool {
    matches!(outcome, Err(Error::Deadlock(_)))
}

#[test]
fn a_call_waiting_on_its_own_instance_gets_a_deadlock_error() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let pool = pool(backend, 1);
        let model = pool.instance(1u8);
        let inner = model.clone();
        let outer = model.spawn(move |_| (inner.call(|n| *n), inner.wait()));
        let (call, wait) = outer.result().unwrap();
        assert!(is_deadlock(&call), "{backend:?}: {call:?}");
        assert!(is_deadlock(&wait), "{backend:?}: {wait:?}");
        let message = call.unwrap_err().to_string();
        assert!(
            message.starts_with("deadlock: ")
                && message.contains("a call on instance `Instance<u8>`"),
            "{backend:?}: {message}"
        );
        assert_eq!(model.call(|n| *n), Ok(1), "the instance still serves");
    }
}

#[test]
fn a_call_waiting_on_a_later_call_of_its_own_instance_fails_that_call_with_deadlock() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let pool = pool(backend, 1);
        let model = pool.instance(Vec::<&str>::new());
        let first = model.spawn(|log| log.push("first"));
        first.result().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let inner = model.clone();
        let outer = model.spawn(move |log| {
            log.push("outer");
            // Queued behind this very call: it can't run before this returns.
            let later = inner.spawn(|log| log.push("later"));
            let later_again = inner.spawn(|log| log.push("later again"));
            let other = Instance::new(0u8).spawn(|n| *n + 1);
            tx.send(later_again).unwrap();
            (later.result(), other.result())
        });
        let (later, other) = outer.result().unwrap();
        assert!(is_deadlock(&later), "{backend:?}: {later:?}");
        assert_eq!(other, Ok(1), "{backend:?}: another instance is no cycle");
        let later_again = rx.recv().unwrap();
        assert_eq!(later_again.result(), Ok(()), "{backend:?}");
        assert_eq!(
            model.call(|log| log.clone()),
            Ok(vec!["first", "outer", "later again"]),
            "{backend:?}: the call that closed the cycle never ran, the queue went on"
        );
    }
}

#[test]
fn a_call_may_queue_more_calls_on_its_own_instance() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let pool = pool(backend, 1);
        let model = pool.instance(Vec::new());
        let handle = model.clone();
        let first = model.spawn(move |log: &mut Vec<&str>| {
            log.push("first");
            handle.spawn(|log: &mut Vec<&str>| log.push("queued from inside"))
        });
        let inner = first.result().unwrap();
        inner.result().unwrap();
        assert_eq!(
            model.call(|log| log.clone()),
            Ok(vec!["first", "queued from inside"]),
            "{backend:?}"
        );
    }
}

#[test]
fn a_dependent_call_waits_for_its_dependency_and_holds_its_place() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let (source, target) = (pool.instance(()), pool.instance(Vec::new()));
        let release = Gate::new();
        let r = release.clone();
        let dependency = source.spawn(move |_| {
            r.wait();
            7u32
        });
        let dependent = target.spawn_after(dependency, |log: &mut Vec<u32>, v| {
            log.push(v);
            v * 2
        });
        let later = target.spawn(|log: &mut Vec<u32>| log.push(99));
        assert!(
            !later.wait_timeout(std::time::Duration::from_millis(10)),
            "{backend:?}: later call overtook"
        );
        release.open();
        assert_eq!(dependent.result(), Ok(14));
        later.result().unwrap();
        assert_eq!(target.call(|log| log.clone()), Ok(vec![7, 99]));
    }
}

#[test]
fn a_failed_dependency_fails_the_dependent_call_with_its_cause() {
    let model = Instance::new(0);
    let failing = concertina::spawn(|| -> u8 { panic!("upstream crashed") });
    let dependent = model.spawn_after(failing, |_, v| v);
    let err = dependent.result().unwrap_err();
    assert_eq!(
        err,
        Error::DependencyFailed(Box::new(Error::Panicked("upstream crashed".into())))
    );
    assert_eq!(
        err.to_string(),
        "dependency failed: task panicked: upstream crashed"
    );
    assert_eq!(model.call(|n| *n + 1), Ok(1), "the queue goes on");
}

#[test]
fn cancelling_a_call_waiting_on_a_dependency_frees_the_queue() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let model = pool.instance(0);
        let never = Gate::new();
        let blocker_pool = common::pool(Backend::Crossbeam, 1);
        let n = never.clone();
        let dependency = blocker_pool.spawn(move || n.wait());
        let waiting = model.spawn_after(dependency, |_, ()| "never");
        let after = model.spawn(|n| *n + 5);
        assert!(waiting.cancel());
        assert_eq!(after.result(), Ok(5), "{backend:?}");
        assert_eq!(waiting.result(), Err(Error::Cancelled));
        never.open();
    }
}

#[test]
fn when_done_lets_a_call_wait_without_taking_the_value() {
    let model = Instance::new(0);
    let reading = concertina::spawn(|| 3);
    let after = model.spawn_after(reading.when_done(), |n, ()| *n + 1);
    assert_eq!(after.result(), Ok(1));
    assert_eq!(reading.result(), Ok(3));
}

#[test]
fn calls_on_a_shut_down_pool_fail_with_shutdown() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let pool = pool(backend, 1);
        let model = pool.instance(0);
        pool.shutdown();
        assert_eq!(
            model.spawn(|n| *n).result(),
            Err(Error::Shutdown),
            "{backend:?}"
        );
        assert_eq!(model.call(|n| *n), Err(Error::Shutdown));
    }
}

#[test]
fn an_instance_is_a_cheap_handle_and_debug_shows_its_queue() {
    let model = Instance::new(String::new());
    let other = model.clone();
    other.call(|s| s.push_str("shared")).unwrap();
    assert_eq!(model.call(|s| s.clone()), Ok("shared".to_owned()));
    assert_eq!(
        format!("{model:?}"),
        "Instance { queued: 0, poisoned: false }"
    );
}

#[test]
fn shutdown_now_fails_the_calls_queued_behind_a_running_call() {
    for backend in THREADED {
        let workers = pool(backend, 1);
        let model = workers.instance(0u8);
        let gate = Gate::new();
        let g = gate.clone();
        let (started_tx, started) = std::sync::mpsc::channel();
        let running = model.spawn(move |n| {
            started_tx.send(()).unwrap();
            g.wait();
            *n += 1;
        });
        started.recv().unwrap();
        let queued = model.spawn(|n| *n += 10);
        let closer = {
            let workers = workers.clone();
            std::thread::spawn(move || workers.shutdown_now())
        };
        while !workers.is_shutdown() {
            std::thread::yield_now();
        }
        gate.open();
        closer.join().unwrap();
        assert_eq!(
            running.result(),
            Ok(()),
            "{backend:?}: the running call finishes"
        );
        assert_eq!(queued.result(), Err(Error::Shutdown), "{backend:?}");
    }
}

#[test]
fn a_call_submitted_after_shutdown_fails_with_shutdown() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let workers = pool(backend, 1);
        let model = workers.instance(0u8);
        model.wait().unwrap();
        workers.shutdown();
        assert!(workers.is_shutdown());
        assert_eq!(
            model.spawn(|n| *n).result(),
            Err(Error::Shutdown),
            "{backend:?}"
        );
        assert_eq!(model.call(|n| *n), Err(Error::Shutdown), "{backend:?}");
    }
}

/// A synchronous call borrows from the caller's stack (no `'static`, no
/// `Send`) and keeps its place: the calls queued before it ran first, those
/// submitted while it runs wait for it.
#[test]
fn a_synchronous_call_borrows_and_holds_the_queue_while_it_runs() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        common::within(60, move || {
            let model = pool(backend, 2).instance(Vec::<String>::new());
            for i in 0..3 {
                let _detached = model.spawn(move |log| log.push(format!("queued {i}")));
            }
            let label = String::from("borrowed"); // not moved into the call
            let not_send = std::rc::Rc::new(7); // nor Send
            let other = model.clone();
            let later = std::cell::RefCell::new(None);
            let seen = model
                .call(|log| {
                    // Submitted while the call runs: it waits for it.
                    *later.borrow_mut() = Some(other.spawn(|log| log.push("later".into())));
                    log.push(format!("{label} {not_send}"));
                    log.clone()
                })
                .unwrap();
            assert_eq!(seen, ["queued 0", "queued 1", "queued 2", "borrowed 7"]);
            later.into_inner().unwrap().result().unwrap();
            assert_eq!(model.call(|log| log.len()).unwrap(), 5);
            assert_eq!(model.call(|log| log[4].clone()).unwrap(), "later");
        });
    }
}

#[test]
fn a_panicking_synchronous_call_fails_with_its_panic_and_the_queue_goes_on() {
    let model = Instance::new(0u32);
    let outcome: Result<(), Error> = model.call(|_| panic!("diverged"));
    assert_eq!(outcome, Err(Error::Panicked("diverged".into())));
    assert!(model.is_poisoned());
    assert_eq!(model.spawn(|n| *n + 1).result(), Ok(1));
}

/// A synchronous call that calls its own instance again waits on itself:
/// the inner call gets `Deadlock` instead of hanging, and the queue goes on.
#[test]
fn a_synchronous_call_into_its_own_instance_is_a_deadlock() {
    for backend in THREADED {
        common::within(60, move || {
            let model = pool(backend, 2).instance(1u32);
            let again = model.clone();
            let inner = model.call(|n| (*n, again.call(|m| *m))).unwrap();
            assert_eq!(inner.0, 1);
            assert!(is_deadlock(&inner.1), "{:?}", inner.1);
            assert_eq!(model.call(|n| *n + 1).unwrap(), 2);
        });
    }
}
