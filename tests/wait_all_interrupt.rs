//! `wait_all` over several blocked futures: one interrupt (Ctrl-C) ends it,
//! every future cancelled. Its own binary: interrupts reach every wait of
//! the process.

mod common;

use common::{within, Gate};
use concertina::{Backend, Error, Pool};

#[test]
fn one_interrupt_ends_wait_all_over_three_blocked_futures() {
    within(60, || {
        let workers = Pool::builder()
            .threads(3)
            .backend(Backend::Crossbeam)
            .build()
            .unwrap();
        let gate = Gate::new();
        let futures: Vec<_> = (0..3)
            .map(|_| {
                let g = gate.clone();
                workers.spawn(move || {
                    while !g.is_open() && !concertina::cancelled() {
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        let waiter = std::thread::spawn(move || concertina::wait_all(futures));
        while concertina::interrupt::blocked_waits() == 0 {
            std::thread::yield_now();
        }
        assert_eq!(
            concertina::interrupt::interrupt_waits(),
            1,
            "one wait was blocked"
        );
        let outcomes = waiter.join().unwrap();
        gate.open();
        assert_eq!(outcomes, vec![Err(Error::Interrupted); 3]);
    });
}
