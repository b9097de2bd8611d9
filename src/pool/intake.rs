//! Submission against shutdown: the one protocol that decides whether work
//! reaches a backend or is refused, model-checked under loom
//! (`loom_close_versus_submit`).
//!
//! A submission holds the read lock while it checks that the pool is open
//! and hands the work over; `close` raises the closing mode first and then
//! takes the backend out under the write lock. So a submission that saw the
//! pool open is handed over before the backend is taken out (and drained),
//! and one that begins after the closing mode was raised is refused: none
//! is lost, none accepted after the drain.

use crate::sync::{AtomicU8, RwLock};

use std::sync::atomic::Ordering;

/// Accepting submissions.
pub(crate) const OPEN: u8 = 0;

/// A backend's door: `Some` while work may be handed to it.
pub(crate) struct Intake<S> {
    backend: RwLock<Option<S>>,
}

impl<S> Intake<S> {
    pub(crate) fn new(backend: S) -> Self {
        Intake {
            backend: RwLock::new(Some(backend)),
        }
    }

    /// Hands `work` to the backend with `submit` while `closing` is
    /// [`OPEN`]; gives it back otherwise.
    pub(crate) fn submit<W>(
        &self,
        closing: &AtomicU8,
        work: W,
        submit: impl FnOnce(&S, W),
    ) -> Result<(), W> {
        let backend = self.backend.read();
        // Acquire: pairs with the AcqRel raise in `close`.
        match &*backend {
            Some(backend) if closing.load(Ordering::Acquire) == OPEN => {
                submit(backend, work);
                Ok(())
            }
            _ => Err(work),
        }
    }

    /// Raises `closing` to `mode` (it never goes down), then takes the
    /// backend out once the submissions under way have handed their work
    /// over. `None` when an earlier close took it.
    pub(crate) fn close(&self, closing: &AtomicU8, mode: u8) -> Option<S> {
        closing.fetch_max(mode, Ordering::AcqRel);
        self.backend.write().take()
    }
}
