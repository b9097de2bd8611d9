//! The task state machine.
//!
//! A task moves through these phases, one way only:
//!
//! ```text
//!            start()                 complete() / cancel()       publish
//!  PENDING ──────────► RUNNING ──────────────────────► SETTLING ─────────► DONE | FAILED | CANCELLED
//!     │                                                    ▲
//!     └───────────────────── cancel() ─────────────────────┘
//! ```
//!
//! | phase      | closure          | outcome               | waiters      | `cancel()` |
//! |------------|------------------|-----------------------|--------------|------------|
//! | PENDING    | queued, not run  | none                  | wait         | wins       |
//! | RUNNING    | running          | none                  | wait         | wins       |
//! | SETTLING   | ran, or never will | decided, hooks running | wait       | loses      |
//! | DONE       | ran              | `Ok(value)` published | released     | loses      |
//! | FAILED     | ran and panicked, or never ran (shutdown) | `Err(e)` published | released | loses |
//! | CANCELLED  | never ran, or its result is discarded | `Err(Cancelled)` | released | loses |
//!
//! The phase lives in an atomic so that `done()` and the first check of every
//! wait cost one load. Every transition but one is made while holding the
//! task's slot mutex, so that the slot and a decided phase never disagree:
//! PENDING → RUNNING is a compare-and-swap without the lock (the runner
//! claims the closure's right to run; the slot does not change), and
//! `settle` therefore decides with a compare-and-swap loop under the lock.
//!
//! Memory ordering: a published phase is stored with `Release` after the
//! outcome is written to the slot, and read with `Acquire` by the lock-free
//! checks (`done()`, the first check of a wait), which pairs them: whoever
//! sees DONE also sees the outcome (and takes it under the lock anyway).

/// Queued; the closure has not started. The only phase from which `start` succeeds.
pub(crate) const PENDING: u8 = 0;
/// The closure is running on some thread. `cancel` still wins: the result is then discarded.
pub(crate) const RUNNING: u8 = 1;
/// The outcome is decided (by completion or cancellation) but not yet published:
/// cleanup and done-callbacks are running. Waiters keep waiting; `cancel` loses.
pub(crate) const SETTLING: u8 = 2;
/// Published: the closure returned a value.
pub(crate) const DONE: u8 = 3;
/// Published: the closure panicked, or the task failed before it could run.
pub(crate) const FAILED: u8 = 4;
/// Published: the task was cancelled; waiters see `Err(Cancelled)` (or `Err(Interrupted)`).
pub(crate) const CANCELLED: u8 = 5;

/// True once waiters may read the outcome.
#[inline]
pub(crate) fn is_published(phase: u8) -> bool {
    phase >= DONE
}

/// True once `cancel` can no longer win.
#[inline]
pub(crate) fn is_decided(phase: u8) -> bool {
    phase >= SETTLING
}

/// A short human name of a phase, for `Debug`.
pub(crate) fn name(phase: u8) -> &'static str {
    match phase {
        PENDING => "pending",
        RUNNING => "running",
        SETTLING => "settling",
        DONE => "done",
        FAILED => "failed",
        CANCELLED => "cancelled",
        _ => "unknown",
    }
}
