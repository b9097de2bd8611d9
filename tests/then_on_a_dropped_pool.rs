//! A `then` whose source finishes while its pool's last handle is being
//! dropped fails with `Shutdown`: it never lands on the default pool (which
//! would be built, and install the Ctrl-C handler, as a side effect). Its
//! own binary, so that nothing else builds the default pool.

mod common;

use common::{within, Gate, THREADED};
use concertina::{Error, Pool};

#[test]
fn then_on_a_source_whose_pool_is_dropped_fails_with_shutdown() {
    for backend in THREADED {
        within(60, move || {
            // A pool that leaves SIGINT alone: only the default pool, were
            // it built, would install the handler.
            let workers = Pool::builder()
                .threads(1)
                .backend(backend)
                .ctrlc(false)
                .build()
                .unwrap();
            let gate = Gate::new();
            let g = gate.clone();
            let source = workers.spawn(move || {
                g.wait();
                1
            });
            let derived = source.then(|v| v + 1);
            // The drop drains: it returns once the source has finished.
            let dropper = std::thread::spawn(move || drop(workers));
            while !dropper.is_finished() && !gate.is_open() {
                std::thread::sleep(std::time::Duration::from_millis(5));
                gate.open();
            }
            dropper.join().unwrap();
            assert_eq!(derived.result(), Err(Error::Shutdown), "{backend:?}");
        });
    }
    assert!(
        !concertina::interrupt::handles_ctrlc(),
        "the default pool was never built, so no handler was installed"
    );
}
