//! Futures made of futures: `and_then`/`flatten` read a chain of calls as
//! one future; `Future::all`/`Future::any` make a set of futures one (a
//! dependency); `try_result_all` stops a sweep of fallible tasks at its
//! first failure.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{pool, within, Gate, THREADED};
use concertina::{Error, Future, Instance};

#[test]
fn a_chain_of_calls_across_instances_is_one_future() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 2);
            let ocean = threads.instance(15.0_f64);
            let atmosphere = threads.instance(0.0_f64);
            let air = atmosphere.clone();
            let chained = ocean.spawn(|sea| *sea + 0.5).and_then(move |sst| {
                air.spawn(move |a| {
                    *a = sst;
                    *a * 2.0
                })
            });
            assert_eq!(chained.result(), Ok(31.0));
            assert_eq!(atmosphere.call(|a| *a), Ok(15.5));
            // A failure anywhere fails the chain.
            let broken = ocean
                .spawn(|_| -> f64 { panic!("ocean blew up") })
                .and_then(Future::ready);
            assert_eq!(
                broken.result(),
                Err(Error::Panicked("ocean blew up".into()))
            );
            let inner_broken = Future::ready(1).and_then(|_| Future::<u8>::failed(Error::Shutdown));
            assert_eq!(inner_broken.result(), Err(Error::Shutdown));
        });
    }
}

#[test]
fn cancelling_a_flattened_future_cancels_the_inner_one() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 2);
            let (started, release) = (Gate::new(), Gate::new());
            let (s, r) = (started.clone(), release.clone());
            let inner_pool = threads.clone();
            let (inner_tx, inner_rx) = std::sync::mpsc::channel();
            let flat = threads
                .spawn(move || {
                    let inner = inner_pool.spawn(move || {
                        s.open();
                        while !concertina::cancelled() {
                            std::thread::yield_now();
                        }
                        r.wait();
                        "stopped"
                    });
                    inner_tx.send(inner.cancel_handle()).unwrap();
                    inner
                })
                .flatten();
            started.wait();
            let inner = inner_rx.recv().unwrap();
            assert!(flat.cancel());
            release.open();
            assert_eq!(flat.result(), Err(Error::Cancelled));
            assert!(inner.cancelled(), "the inner future was cancelled too");
        });
    }
}

#[test]
fn all_of_a_set_is_one_future_that_a_call_can_depend_on() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 2);
            let gate = Gate::new();
            let steps: Vec<_> = (1..=3u32)
                .map(|i| {
                    let gate = gate.clone();
                    threads.spawn(move || {
                        gate.wait();
                        i * 10
                    })
                })
                .collect();
            let log = Instance::new(Vec::new());
            let logged = log.spawn_after(Future::all(steps), |log, values| {
                log.extend(values);
                log.len()
            });
            let before = log.spawn(|log| log.len());
            assert!(!before.wait_timeout(std::time::Duration::from_millis(20)));
            gate.open();
            assert_eq!(logged.result(), Ok(3));
            assert_eq!(before.result(), Ok(3), "later calls waited for the set");
            assert_eq!(log.call(|l| l.clone()), Ok(vec![10, 20, 30]));
            assert_eq!(Future::<u8>::all([]).result(), Ok(Vec::new()));
            let failing = Future::all([Future::ready(1), Future::failed(Error::Shutdown)]);
            assert_eq!(failing.result(), Err(Error::Shutdown));
        });
    }
}

#[test]
fn any_of_a_set_is_the_first_to_finish() {
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 1);
            let gate = Gate::new();
            let g = gate.clone();
            let slow = threads.spawn(move || {
                g.wait();
                1
            });
            let first = Future::any([slow, Future::failed(Error::Shutdown)]).unwrap();
            assert_eq!(first.result(), Ok((1, Err(Error::Shutdown))));
            gate.open();
            assert!(Future::<u8>::any([]).is_none());
            // Cancelling it cancels every one of them.
            let gate = Gate::new();
            let g = gate.clone();
            let waiting = threads.spawn(move || g.wait());
            let handle = waiting.cancel_handle();
            let any = Future::any([waiting]).unwrap();
            assert!(any.cancel());
            assert!(handle.cancelled());
            gate.open();
        });
    }
}

#[test]
fn a_sweep_stops_at_its_first_failed_run() {
    #[derive(Debug, PartialEq)]
    enum SweepError {
        Diverged(u32),
        Runtime(Error),
    }
    impl From<Error> for SweepError {
        fn from(e: Error) -> Self {
            SweepError::Runtime(e)
        }
    }
    for backend in THREADED {
        within(60, move || {
            let threads = pool(backend, 1);
            let ran = Arc::new(AtomicUsize::new(0));
            let gate = Gate::new();
            let runs: Vec<_> = (0..400u32)
                .map(|i| {
                    let (ran, gate) = (ran.clone(), gate.clone());
                    threads.spawn(move || {
                        if i > 5 {
                            // The runs after the failure wait until the
                            // sweep has returned.
                            gate.wait();
                        }
                        ran.fetch_add(1, Ordering::SeqCst);
                        if i == 5 {
                            Err(SweepError::Diverged(i))
                        } else {
                            Ok(i)
                        }
                    })
                })
                .collect();
            assert_eq!(
                concertina::try_result_all(runs),
                Err(SweepError::Diverged(5))
            );
            gate.open();
            threads.shutdown();
            let ran = ran.load(Ordering::SeqCst);
            assert!(ran <= 7, "{ran} runs: the rest were cancelled, not run");
            // A runtime failure stops it too, converted.
            let runs = vec![
                threads.spawn(|| Ok::<u8, SweepError>(1)),
                Future::failed(Error::Shutdown),
            ];
            assert_eq!(
                concertina::try_result_all(runs),
                Err(SweepError::Runtime(Error::Shutdown))
            );
        });
    }
}
