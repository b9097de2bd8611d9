//! Faults: a pool shut down while threads keep submitting, and hooks that
//! panic. Each ends with a clear outcome for every future and nothing left
//! hanging.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{pool, Gate, THREADED};
use concertina::{Backend, Error, Future};

#[test]
fn shutting_down_while_threads_submit_settles_every_future() {
    for backend in THREADED {
        for shutdown_now in [false, true] {
            let pool = pool(backend, 2);
            let ran = Arc::new(AtomicUsize::new(0));
            let submitters: Vec<_> = (0..3)
                .map(|_| {
                    let (pool, ran) = (pool.clone(), ran.clone());
                    std::thread::spawn(move || {
                        // Submits until 10 submissions started after the
                        // pool said it is shut down (those must be refused).
                        let mut futures: Vec<Future<()>> = Vec::new();
                        let mut after = 0;
                        while after < 10 {
                            if pool.is_shutdown() {
                                after += 1;
                            }
                            let ran = ran.clone();
                            futures.push(pool.spawn(move || {
                                ran.fetch_add(1, Ordering::SeqCst);
                            }));
                        }
                        futures
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(5));
            if shutdown_now {
                pool.shutdown_now();
            } else {
                pool.shutdown();
            }
            let mut done = 0;
            let mut refused = 0;
            for submitter in submitters {
                for future in submitter.join().unwrap() {
                    match future.result() {
                        Ok(()) => done += 1,
                        Err(Error::Shutdown) => refused += 1,
                        Err(other) => panic!("{backend:?}: unexpected {other:?}"),
                    }
                }
            }
            assert_eq!(
                done,
                ran.load(Ordering::SeqCst),
                "{backend:?}: every task that ran delivered, none that did not"
            );
            assert!(
                refused >= 30,
                "{backend:?}: the 30 submissions after the shutdown were refused"
            );
            assert!(pool.is_shutdown());
            assert_eq!(
                pool.spawn(|| 1).result(),
                Err(Error::Shutdown),
                "{backend:?}"
            );
        }
    }
}

#[test]
fn a_panicking_done_callback_does_not_stop_the_others_or_the_result() {
    for backend in [Backend::Rayon, Backend::Crossbeam, Backend::Inline] {
        let pool = pool(backend, 1);
        let gate = Gate::new();
        let g = gate.clone();
        let blocked = backend != Backend::Inline;
        let f = pool.spawn(move || {
            if blocked {
                g.wait();
            }
            7
        });
        let calls = Arc::new(AtomicUsize::new(0));
        for i in 0..3 {
            let calls = calls.clone();
            f.on_done(move |outcome| {
                calls.fetch_add(1, Ordering::SeqCst);
                assert_eq!(outcome, &Ok(7));
                if i == 1 {
                    panic!("a callback that panics");
                }
            });
        }
        gate.open();
        assert_eq!(f.result(), Ok(7), "{backend:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "{backend:?}");
        assert_eq!(
            pool.spawn(|| 8).result(),
            Ok(8),
            "{backend:?}: the worker lives"
        );
    }
}

#[test]
fn a_panicking_cleanup_still_cancels_and_the_pool_goes_on() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let gate = Gate::new();
        let g = gate.clone();
        let blocker = pool.spawn(move || g.wait());
        let queued = pool
            .spawn(|| 1)
            .on_cancel(|| panic!("a cleanup that panics"));
        assert!(queued.cancel());
        assert_eq!(queued.result(), Err(Error::Cancelled), "{backend:?}");
        gate.open();
        blocker.result().unwrap();
        assert_eq!(pool.spawn(|| 2).result(), Ok(2), "{backend:?}");
    }
}
