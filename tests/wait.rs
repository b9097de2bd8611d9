//! Waiting for many: `wait_all`, `wait_any`, `as_completed` (and their
//! timeouts), `join`, and the `RequestPool`. Every outcome is reported.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{pool, Gate, THREADED};
use concertina::{Backend, Error, Future, RequestPool};

/// `n` futures on `pool`, each held back by its own gate.
fn gated(pool: &concertina::Pool, n: usize) -> (Vec<Future<usize>>, Vec<Gate>) {
    let gates: Vec<Gate> = (0..n).map(|_| Gate::new()).collect();
    let futures = gates
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let g = g.clone();
            pool.spawn(move || {
                g.wait();
                i
            })
        })
        .collect();
    (futures, gates)
}

#[test]
fn wait_all_reports_every_outcome_in_order() {
    let futures: Vec<Future<u8>> = vec![
        concertina::spawn(|| 1),
        concertina::spawn(|| panic!("second fails")),
        Future::failed(Error::Cancelled),
        concertina::spawn(|| 4),
    ];
    assert_eq!(
        concertina::wait_all(futures),
        [
            Ok(1),
            Err(Error::Panicked("second fails".into())),
            Err(Error::Cancelled),
            Ok(4)
        ]
    );
}

#[test]
fn wait_any_returns_the_one_that_finished() {
    for backend in THREADED {
        let pool = pool(backend, 3);
        let (futures, gates) = gated(&pool, 3);
        gates[2].open();
        let first = concertina::wait_any(futures).expect("three were given");
        assert_eq!((first.index, first.outcome), (2, Ok(2)), "{backend:?}");
        assert_eq!(first.rest.len(), 2);
        let timed_out = concertina::wait_any_timeout(first.rest, Duration::from_millis(5))
            .expect_err("neither gate is open");
        assert_eq!(timed_out.after(), Duration::from_millis(5));
        let rest = timed_out.into_inner();
        assert_eq!(rest.len(), 2, "both given back");
        gates[0].open();
        let first = concertina::wait_any(rest).expect("two were given");
        assert_eq!((first.index, first.outcome), (0, Ok(0)));
        gates[1].open();
        assert_eq!(concertina::wait_all(first.rest), [Ok(1)]);
    }
    assert!(concertina::wait_any(Vec::<Future<u8>>::new()).is_none());
    assert!(matches!(
        concertina::wait_any_timeout(Vec::<Future<u8>>::new(), Duration::ZERO),
        Ok(None)
    ));
}

#[test]
fn wait_any_in_a_loop_sees_each_completion() {
    for backend in THREADED {
        let pool = pool(backend, 4);
        let (mut futures, gates) = gated(&pool, 4);
        let mut seen = Vec::new();
        for i in [3, 1, 0, 2] {
            gates[i].open();
            let first = concertina::wait_any(futures).unwrap();
            seen.push(first.outcome.unwrap());
            futures = first.rest;
        }
        assert!(futures.is_empty());
        assert_eq!(seen, [3, 1, 0, 2], "{backend:?}");
    }
}

#[test]
fn as_completed_yields_in_completion_order() {
    for backend in THREADED {
        let pool = pool(backend, 4);
        let (futures, gates) = gated(&pool, 4);
        let mut it = concertina::as_completed(futures);
        let mut order = Vec::new();
        for i in [2, 0, 3, 1] {
            gates[i].open();
            let (index, value) = it.next().unwrap();
            assert_eq!(value, Ok(index));
            order.push(index);
        }
        assert!(it.next().is_none());
        assert_eq!(order, [2, 0, 3, 1], "{backend:?}");
    }
}

#[test]
fn as_completed_timeout_gives_back_what_did_not_finish() {
    for backend in THREADED {
        let pool = pool(backend, 3);
        let (futures, gates) = gated(&pool, 3);
        gates[1].open();
        let mut it = concertina::as_completed_timeout(futures, Duration::from_millis(20));
        assert_eq!(it.next(), Some((1, Ok(1))));
        assert_eq!(
            it.next(),
            None,
            "{backend:?}: nothing else finishes before the deadline"
        );
        let remaining = it.into_remaining();
        assert_eq!(
            remaining.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [0, 2]
        );
        gates[0].open();
        gates[2].open();
        let values: Vec<_> = remaining
            .into_iter()
            .map(|(_, f)| f.result().unwrap())
            .collect();
        assert_eq!(values, [0, 2]);
    }
}

#[test]
fn wait_all_timeout_gives_every_future_back_until_all_are_done() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let (futures, gates) = gated(&pool, 2);
        gates[0].open();
        let timed_out = concertina::wait_all_timeout(futures, Duration::from_millis(10))
            .expect_err("gate 1 is closed");
        assert_eq!(timed_out.after(), Duration::from_millis(10), "{backend:?}");
        assert_eq!(timed_out.to_string(), "wait timed out after 10ms");
        let futures = timed_out.into_inner();
        assert_eq!(futures.len(), 2, "the finished one is given back too");
        gates[1].open();
        assert_eq!(
            concertina::wait_all_timeout(futures, Duration::from_secs(60)).expect("both open"),
            [Ok(0), Ok(1)]
        );
    }
}

#[test]
fn join_fails_as_soon_as_either_part_fails() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let (mut futures, gates) = gated(&pool, 1);
        let failing = pool.spawn(|| -> u8 { panic!("part b") });
        let joined = futures.remove(0).zip(failing);
        assert_eq!(
            joined.result(),
            Err(Error::Panicked("part b".into())),
            "{backend:?}"
        );
        gates[0].open();
    }
}

#[test]
fn cancelling_a_join_cancels_both_parts() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let (mut futures, gates) = gated(&pool, 2);
        let (b, a) = (futures.pop().unwrap(), futures.pop().unwrap());
        let (ha, hb) = (a.cancel_handle(), b.cancel_handle());
        let joined = a.zip(b);
        assert!(joined.cancel());
        assert!(ha.cancelled() && hb.cancelled(), "{backend:?}");
        gates.iter().for_each(Gate::open);
    }
}

#[test]
fn a_request_pool_takes_requests_one_at_a_time_as_they_finish() {
    for backend in THREADED {
        let pool = pool(backend, 3);
        let (futures, gates) = gated(&pool, 3);
        let mut requests = RequestPool::new();
        let ids: Vec<_> = futures.into_iter().map(|f| requests.add(f)).collect();
        let timed_out = requests
            .wait_one_timeout(Duration::from_millis(5))
            .expect_err("no gate is open");
        assert_eq!(
            concertina::Error::from(timed_out),
            concertina::Error::Timeout(Duration::from_millis(5))
        );
        assert!(requests.wait_all_timeout(Duration::from_millis(5)).is_err());
        assert_eq!(requests.len(), 3, "a timed-out wait takes nothing");
        gates[1].open();
        assert_eq!(requests.wait_one(), Some((ids[1], Ok(1))), "{backend:?}");
        assert_eq!(requests.len(), 2);
        gates[0].open();
        gates[2].open();
        let mut rest = requests.wait_all();
        rest.sort_by_key(|(id, _)| *id);
        assert_eq!(rest, [(ids[0], Ok(0)), (ids[2], Ok(2))]);
        assert!(requests.is_empty());
        assert_eq!(requests.wait_one(), None);
    }
}

#[test]
fn a_handler_gets_its_outcome_once_and_its_panic_is_reported() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut requests: RequestPool<String> = RequestPool::new();
    let c = calls.clone();
    let ok = requests.add_with(concertina::spawn(|| 2.5_f64), move |outcome| {
        c.fetch_add(1, Ordering::SeqCst);
        outcome.map(|v| format!("{v} m"))
    });
    let failed = requests.add_with(concertina::spawn(|| -> u8 { panic!("lost") }), |outcome| {
        Ok(format!("handled: {}", outcome.unwrap_err()))
    });
    let bad_handler = requests.add_with(Future::ready(1u8), |_| -> Result<String, Error> {
        panic!("handler bug")
    });
    let mut outcomes = requests.wait_all();
    outcomes.sort_by_key(|(id, _)| *id);
    assert_eq!(
        outcomes,
        [
            (ok, Ok("2.5 m".to_owned())),
            (failed, Ok("handled: task panicked: lost".to_owned())),
            (bad_handler, Err(Error::Panicked("handler bug".into()))),
        ]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn merged_pools_report_every_request_once() {
    let mut a = RequestPool::new();
    let mut b = RequestPool::new();
    let ids: Vec<_> = (0..5)
        .map(|i| a.add(concertina::spawn(move || i)))
        .collect();
    let more: Vec<_> = (5..10)
        .map(|i| b.add(concertina::spawn(move || i)))
        .collect();
    a.merge(b);
    let mut outcomes = a.wait_all();
    outcomes.sort_by_key(|(id, _)| *id);
    let expected: Vec<_> = ids
        .into_iter()
        .chain(more)
        .zip(0..10)
        .map(|(id, v)| (id, Ok(v)))
        .collect();
    assert_eq!(outcomes, expected);
}

#[test]
fn multi_waits_on_a_worker_run_queued_work_meanwhile() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let p = pool.clone();
        let f = pool.spawn(move || {
            let children: Vec<_> = (0..4).map(|i| p.spawn(move || i)).collect();
            let first = concertina::wait_any(children).expect("four were given");
            let order: Vec<usize> = concertina::as_completed(first.rest)
                .map(|(i, _)| i)
                .collect();
            let mut requests = RequestPool::new();
            requests.add(p.spawn(|| 9));
            (order.len(), requests.wait_one().map(|(_, r)| r))
        });
        assert_eq!(f.result(), Ok((3, Some(Ok(9)))), "{backend:?}");
    }
}

#[test]
fn the_inline_backend_gives_the_same_answers() {
    let pool = pool(Backend::Inline, 1);
    let futures: Vec<_> = (0..3).map(|i| pool.spawn(move || i)).collect();
    let first = concertina::wait_any(futures).expect("three were given");
    assert_eq!((first.index, first.outcome), (0, Ok(0)));
    let futures: Vec<_> = std::iter::once(Future::ready(0))
        .chain(first.rest)
        .collect();
    let order: Vec<_> = concertina::as_completed(futures)
        .map(|(i, r)| (i, r.unwrap()))
        .collect();
    assert_eq!(order, [(0, 0), (1, 1), (2, 2)]);
}

#[test]
fn result_timeout_gives_the_future_back_and_then_its_outcome() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let (mut futures, gates) = gated(&pool, 1);
        let f = futures.remove(0);
        let timed_out = f
            .result_timeout(Duration::from_millis(5))
            .expect_err("the gate is closed");
        let f = timed_out.into_inner();
        assert!(
            !f.done() && !f.cancelled(),
            "{backend:?}: nothing cancelled"
        );
        gates[0].open();
        assert_eq!(f.result_timeout(Duration::from_secs(60)).ok(), Some(Ok(0)));
        let failing = pool.spawn(|| -> u8 { panic!("probe lost") });
        assert_eq!(
            failing.result_timeout(Duration::from_secs(60)).ok(),
            Some(Err(Error::Panicked("probe lost".into())))
        );
    }
    // `?` in a function returning `concertina::Error`: the timeout becomes
    // `Error::Timeout`, and the task's own result is returned as it is.
    fn read(f: Future<u8>, timeout: Duration) -> Result<u8, Error> {
        f.result_timeout(timeout)?
    }
    assert_eq!(read(Future::ready(3), Duration::ZERO), Ok(3));
    assert_eq!(
        read(Future::failed(Error::Cancelled), Duration::ZERO),
        Err(Error::Cancelled)
    );
    let pool = pool(Backend::Crossbeam, 1);
    let (mut futures, gates) = gated(&pool, 1);
    assert_eq!(
        read(
            futures.remove(0).then(|i| i as u8),
            Duration::from_millis(1)
        ),
        Err(Error::Timeout(Duration::from_millis(1)))
    );
    gates[0].open();
}

#[test]
fn try_wait_all_returns_every_value_in_order_when_none_fails() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let (futures, gates) = gated(&pool, 4);
        for g in gates.iter().rev() {
            g.open();
        }
        assert_eq!(
            concertina::try_wait_all(futures).unwrap(),
            [0, 1, 2, 3],
            "{backend:?}"
        );
    }
    assert_eq!(
        concertina::try_wait_all(Vec::<Future<u8>>::new()).unwrap(),
        []
    );
}

#[test]
fn try_wait_all_returns_at_the_first_failure_and_leaves_the_rest_to_the_caller() {
    for backend in THREADED {
        let pool = pool(backend, 3);
        let (mut futures, gates) = gated(&pool, 2);
        gates[0].open();
        let first = futures.remove(0);
        assert!(first.wait_timeout(Duration::from_secs(60)));
        futures.insert(0, first);
        futures.push(pool.spawn(|| panic!("sensor 2 offline")));
        // Returns although gate 1 is still closed.
        let failure = concertina::try_wait_all(futures).expect_err("one panics");
        assert_eq!(failure.index, 2, "{backend:?}");
        assert_eq!(failure.error, Error::Panicked("sensor 2 offline".into()));
        assert_eq!(failure.done, [(0, 0)]);
        assert_eq!(failure.rest.len(), 1);
        assert_eq!(failure.rest[0].0, 1);
        assert_eq!(
            failure.to_string(),
            "future 2 failed: task panicked: sensor 2 offline"
        );
        // Left: the rest still runs and delivers.
        let (_, rest) = failure.rest.into_iter().next().unwrap();
        gates[1].open();
        assert_eq!(rest.result(), Ok(1));
    }
}

#[test]
fn try_wait_all_can_cancel_the_rest() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let cleanups = Arc::new(AtomicUsize::new(0));
        let (futures, gates) = gated(&pool, 2);
        let futures: Vec<_> = futures
            .into_iter()
            .map(|f| {
                let cleanups = cleanups.clone();
                f.on_cancel(move || {
                    cleanups.fetch_add(1, Ordering::SeqCst);
                })
            })
            .chain([Future::failed(Error::Shutdown)])
            .collect();
        let failure = concertina::try_wait_all(futures).expect_err("one failed");
        assert_eq!((failure.index, &failure.error), (2, &Error::Shutdown));
        assert_eq!(failure.cancel_rest(), 2, "{backend:?}");
        assert_eq!(cleanups.load(Ordering::SeqCst), 2, "both cleanups ran");
        assert_eq!(failure.cancel_rest(), 0, "already cancelled");
        gates.iter().for_each(Gate::open);
        assert!(failure
            .rest
            .into_iter()
            .all(|(_, f)| f.result() == Err(Error::Cancelled)));
        // `?` turns it into its error.
        let as_error: Error = concertina::try_wait_all([Future::<u8>::failed(Error::Cancelled)])
            .unwrap_err()
            .into();
        assert_eq!(as_error, Error::Cancelled);
    }
}

#[test]
fn try_wait_all_timeout_gives_every_future_back_values_included() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let (futures, gates) = gated(&pool, 3);
        gates[0].open();
        gates[2].open();
        let timed_out = concertina::try_wait_all_timeout(futures, Duration::from_millis(20))
            .expect_err("gate 1 is closed");
        let futures = timed_out.into_inner();
        assert_eq!(futures.len(), 3, "{backend:?}");
        gates[1].open();
        let values = concertina::try_wait_all_timeout(futures, Duration::from_secs(60))
            .expect("all open")
            .expect("none fails");
        assert_eq!(values, [0, 1, 2], "in the order given, the early ones too");
    }
}

#[test]
fn as_completed_and_a_request_pool_say_how_many_remain() {
    for backend in THREADED {
        let pool = pool(backend, 3);
        let (futures, gates) = gated(&pool, 3);
        let mut it = concertina::as_completed(futures);
        assert_eq!(it.len(), 3);
        assert_eq!(it.size_hint(), (3, Some(3)));
        gates[1].open();
        assert_eq!(it.next().map(|(i, r)| (i, r.unwrap())), Some((1, 1)));
        assert_eq!(it.len(), 2, "{backend:?}");
        gates[0].open();
        gates[2].open();
        assert_eq!(it.by_ref().count(), 2);
        assert_eq!(it.len(), 0);

        let (futures, gates) = gated(&pool, 3);
        let mut requests = RequestPool::new();
        for f in futures {
            requests.add(f);
        }
        gates[2].open();
        let mut completed = requests.completed();
        assert_eq!(completed.len(), 3);
        assert_eq!(completed.next().map(|(_, r)| r), Some(Ok(2)));
        assert_eq!(completed.len(), 2);
        gates[0].open();
        gates[1].open();
        let mut rest: Vec<_> = (&mut requests)
            .into_iter()
            .map(|(_, r)| r.unwrap())
            .collect();
        rest.sort();
        assert_eq!(rest, [0, 1]);
        assert!(requests.is_empty());
    }
    // With a deadline, the lower bound is 0: it may stop early.
    let it = concertina::as_completed_timeout(vec![Future::ready(1)], Duration::ZERO);
    assert_eq!((it.len(), it.size_hint()), (1, (0, Some(1))));
}

/// A value type without `Debug`: the waits' results still print, and a
/// first failure is a `std::error::Error` (crossbeam's `SendError<T>` does
/// the same).
struct Frame;

#[test]
fn wait_results_print_and_box_without_the_values_being_debug() {
    let finished =
        concertina::wait_any(vec![Future::ready(Frame), Future::ready(Frame)]).expect("not empty");
    assert_eq!(
        format!("{finished:?}"),
        r#"Finished { index: 0, outcome: Ok(".."), rest: 1 }"#
    );
    let Err(failure) =
        concertina::try_wait_all(vec![Future::ready(Frame), Future::failed(Error::Cancelled)])
    else {
        panic!("the second failed")
    };
    assert_eq!(
        format!("{failure:?}"),
        "FirstFailure { index: 1, error: Cancelled, done: [0], rest: [] }"
    );
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(failure);
    assert_eq!(boxed.to_string(), "future 1 failed: task was cancelled");
    assert!(boxed.source().is_some());
}
