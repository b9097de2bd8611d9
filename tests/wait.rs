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
        assert_eq!(concertina::wait_any(&futures), Some(2), "{backend:?}");
        assert_eq!(
            concertina::wait_any_timeout(&futures[..2], Duration::from_millis(5)),
            None
        );
        gates[0].open();
        assert_eq!(concertina::wait_any(&futures[..2]), Some(0));
        gates[1].open();
    }
    assert_eq!(concertina::wait_any::<u8>(&[]), None);
}

#[test]
fn wait_any_in_a_loop_sees_each_completion() {
    for backend in THREADED {
        let pool = pool(backend, 4);
        let (mut futures, gates) = gated(&pool, 4);
        let mut seen = Vec::new();
        for i in [3, 1, 0, 2] {
            gates[i].open();
            let k = concertina::wait_any(&futures).unwrap();
            seen.push(futures.remove(k).result().unwrap());
        }
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
fn wait_all_timeout_is_false_until_all_are_done() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let (futures, gates) = gated(&pool, 2);
        gates[0].open();
        assert!(
            !concertina::wait_all_timeout(&futures, Duration::from_millis(10)),
            "{backend:?}"
        );
        gates[1].open();
        assert!(concertina::wait_all_timeout(
            &futures,
            Duration::from_secs(60)
        ));
    }
}

#[test]
fn join_fails_as_soon_as_either_part_fails() {
    for backend in THREADED {
        let pool = pool(backend, 2);
        let (mut futures, gates) = gated(&pool, 1);
        let failing = pool.spawn(|| -> u8 { panic!("part b") });
        let joined = concertina::join(futures.remove(0), failing);
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
        let joined = concertina::join(a, b);
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
        assert_eq!(requests.wait_one_timeout(Duration::from_millis(5)), None);
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
            let first = concertina::wait_any(&children).is_some();
            let order: Vec<usize> = concertina::as_completed(children).map(|(i, _)| i).collect();
            let mut requests = RequestPool::new();
            requests.add(p.spawn(|| 9));
            (first, order.len(), requests.wait_one().map(|(_, r)| r))
        });
        assert_eq!(f.result(), Ok((true, 4, Some(Ok(9)))), "{backend:?}");
    }
}

#[test]
fn the_inline_backend_gives_the_same_answers() {
    let pool = pool(Backend::Inline, 1);
    let futures: Vec<_> = (0..3).map(|i| pool.spawn(move || i)).collect();
    assert_eq!(concertina::wait_any(&futures), Some(0));
    let order: Vec<_> = concertina::as_completed(futures)
        .map(|(i, r)| (i, r.unwrap()))
        .collect();
    assert_eq!(order, [(0, 0), (1, 1), (2, 2)]);
}
