//! Done-callbacks run after the future counts as done, and never under a
//! lock of the crate: a callback may read, watch or wait on other handles
//! of its own task; whoever a callback or a dependent tells sees the source
//! done. (Python's `add_done_callback` runs callbacks after `done()` is
//! true; AMUSE's tests check `is_result_available()` of a request after
//! waiting on one that depends on it.)

mod common;

use std::sync::mpsc;
use std::sync::Arc;

use common::{within, Gate, THREADED};
use concertina::{Error, Future, Pool};
use parking_lot::Mutex;

/// A task of `pool` that returns `value` once `gate` opens (at once on the
/// inline backend, where the gate must already be open).
fn gated(pool: &Pool, gate: &Gate, value: u32) -> Future<u32> {
    let gate = gate.clone();
    pool.spawn(move || {
        gate.wait();
        value
    })
}

#[test]
fn a_callback_on_a_finished_shared_task_reads_its_other_handles() {
    within(60, || {
        let shared = concertina::spawn(|| 7_u32).shared();
        assert_eq!(shared.result(), Ok(7));
        let (tx, rx) = mpsc::channel();
        let clone = shared.clone();
        shared.on_done(move |outcome| {
            let again = clone.clone();
            let (inner_tx, inner_rx) = mpsc::channel();
            clone.on_done(move |o| inner_tx.send(o.clone()).unwrap());
            let via_future = clone.to_future().result();
            tx.send((
                outcome.clone(),
                again.result(),
                inner_rx.recv().unwrap(),
                via_future,
                again.done(),
            ))
            .unwrap();
        });
        assert_eq!(rx.recv().unwrap(), (Ok(7), Ok(7), Ok(7), Ok(7), true));
    });
}

#[test]
fn a_callback_run_by_the_finishing_thread_reads_its_other_handles() {
    for backend in THREADED {
        within(60, move || {
            let pool = common::pool(backend, 1);
            let gate = Gate::new();
            let shared = gated(&pool, &gate, 11).shared();
            let (tx, rx) = mpsc::channel();
            let clone = shared.clone();
            shared.on_done(move |outcome| {
                let (inner_tx, inner_rx) = mpsc::channel();
                clone.on_done(move |o| inner_tx.send(o.clone()).unwrap());
                tx.send((
                    outcome.clone(),
                    clone.done(),
                    clone.result(),
                    clone.to_future().result(),
                    inner_rx.recv().unwrap(),
                ))
                .unwrap();
            });
            gate.open();
            assert_eq!(rx.recv().unwrap(), (Ok(11), true, Ok(11), Ok(11), Ok(11)));
            assert_eq!(shared.result(), Ok(11));
        });
    }
}

/// A callback on a future finished without a task (`Future::ready`, an
/// inline task) that reaches the same handle again: a second callback and
/// a `when_done` signal, registered while the outcome is lent, run once it
/// is back.
#[test]
fn a_callback_on_a_ready_future_registers_more_on_the_same_handle() {
    let inline = Pool::builder()
        .backend(concertina::Backend::Inline)
        .build()
        .unwrap();
    let made: [fn(&Pool) -> Future<u32>; 2] = [|_| Future::ready(5), |pool| pool.spawn(|| 5)];
    for make in made {
        let pool = inline.clone();
        within(60, move || {
            let future = Arc::new(make(&pool));
            let (tx, rx) = mpsc::channel();
            let same = future.clone();
            future.on_done(move |outcome| {
                let inner_tx = tx.clone();
                same.on_done(move |o| inner_tx.send(("again", o.clone())).unwrap());
                let signal = same.when_done();
                tx.send(("first", outcome.clone())).unwrap();
                std::thread::spawn(move || {
                    tx.send(("signal", signal.result().map(|()| 0))).unwrap()
                });
            });
            let mut seen: Vec<_> = rx.iter().take(3).collect();
            seen.sort_by_key(|(what, _)| *what);
            assert_eq!(
                seen,
                [("again", Ok(5)), ("first", Ok(5)), ("signal", Ok(0))]
            );
            assert!(future.done());
            let future = Arc::try_unwrap(future).unwrap_or_else(|_| panic!("one handle left"));
            assert_eq!(future.result(), Ok(5), "the outcome is back in place");
        });
    }
}

#[test]
fn a_callback_waiting_on_its_own_future_gets_a_deadlock_not_a_hang() {
    for backend in THREADED {
        within(60, move || {
            let pool = common::pool(backend, 1);
            let gate = Gate::new();
            let future = gated(&pool, &gate, 3);
            let parked: Arc<Mutex<Option<Future<u32>>>> = Arc::default();
            let (tx, rx) = mpsc::channel();
            let own = parked.clone();
            future.on_done(move |_| {
                let own = own
                    .lock()
                    .take()
                    .expect("the future was parked before the gate opened");
                tx.send(own.result()).unwrap();
            });
            *parked.lock() = Some(future);
            gate.open();
            assert!(matches!(rx.recv().unwrap(), Err(Error::Deadlock(_))));
        });
    }
}

#[test]
fn a_future_is_done_once_its_when_done_signal_is() {
    for backend in THREADED {
        let pool = common::pool(backend, 2);
        let mut late = 0;
        for i in 0..2_000 {
            let a = pool.spawn(move || i);
            a.when_done().result().unwrap();
            if !a.done() {
                late += 1;
            }
            assert_eq!(a.result(), Ok(i));
        }
        assert_eq!(
            late, 0,
            "{backend:?}: a source not done after its when_done signal"
        );
    }
}

#[test]
fn a_source_is_done_once_its_dependents_are() {
    for backend in THREADED {
        let pool = common::pool(backend, 2);
        let model = pool.instance(0_u32);
        for i in 0..500 {
            let source = pool.spawn(move || i).shared();
            let derived = source.to_future().then(|v| v + 1);
            let zipped = source.to_future().zip(Future::ready(()));
            let call = model.spawn_after(source.to_future(), |m, v| *m + v);
            assert_eq!(derived.result(), Ok(i + 1));
            assert!(
                source.done(),
                "{backend:?}: then ran before its source was done"
            );
            assert_eq!(zipped.result(), Ok((i, ())));
            assert_eq!(call.result(), Ok(i));
            assert!(source.done());
        }
    }
}

#[test]
fn a_callback_sees_its_future_done_and_a_wait_returns_after_the_callbacks() {
    for backend in THREADED {
        within(60, move || {
            let pool = common::pool(backend, 1);
            let gate = Gate::new();
            let shared = gated(&pool, &gate, 5).shared();
            let seen = Arc::new(Mutex::new(Vec::new()));
            for n in 0..3 {
                let (clone, seen) = (shared.clone(), seen.clone());
                shared.on_done(move |_| seen.lock().push((n, clone.done())));
            }
            let future = gated(&pool, &gate, 6);
            let calls = seen.clone();
            future.on_done(move |_| calls.lock().push((9, true)));
            gate.open();
            assert_eq!(future.result(), Ok(6));
            // The plain future's callback returned before its wait did.
            assert!(seen.lock().contains(&(9, true)));
            assert_eq!(shared.result(), Ok(5));
            let mut seen = seen.lock().clone();
            seen.sort_unstable();
            assert_eq!(seen[..3], [(0, true), (1, true), (2, true)]);
        });
    }
}

#[test]
fn a_callback_registered_on_a_finished_future_runs_at_once_and_the_value_stays() {
    within(60, || {
        let future = concertina::spawn(|| String::from("frame"));
        assert!(future.wait_timeout(std::time::Duration::from_secs(60)));
        let (tx, rx) = mpsc::channel();
        future.on_done(move |outcome| tx.send(outcome.clone()).unwrap());
        assert_eq!(rx.try_recv(), Ok(Ok(String::from("frame"))));
        assert_eq!(future.result(), Ok(String::from("frame")));
    });
}
