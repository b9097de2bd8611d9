//! The task state machine.
//!
//! A task moves through these phases, one way only:
//!
//! ```text
//!            start()                 complete() / cancel()       publish
//!  PENDING ──────────► RUNNING ──────────────────────► SETTLING ─────────► DONE | FAILED | CANCELLED
//!     │                                                    ▲                  (+ LENT while
//!     └───────────────────── cancel() ─────────────────────┘                   callbacks run)
//! ```
//!
//! | phase      | closure          | outcome               | waiters      | `cancel()` |
//! |------------|------------------|-----------------------|--------------|------------|
//! | PENDING    | queued, not run  | none                  | wait         | wins       |
//! | RUNNING    | running          | none                  | wait         | wins       |
//! | SETTLING   | ran, or never will | decided, cleanup running | wait     | loses      |
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
//! Publication comes before any done-callback, continuation or listener is
//! told: whoever they tell sees the task done. While callbacks run, the
//! published phase carries [`LENT`]: the outcome is lent to them (moved to
//! the thread that runs them, never read under the lock by user code), and
//! waits go on waiting until it is back in place. A shared task's
//! callbacks get a copy instead, its outcome staying in place.
//!
//! Memory ordering: a published phase is stored with `Release` after the
//! outcome is written to the slot, and read with `Acquire` by the lock-free
//! checks (`done()`, the first check of a wait), which pairs them: whoever
//! sees a released phase also sees the outcome (and takes it under the
//! lock anyway).

/// Queued; the closure has not started. The only phase from which `start` succeeds.
pub(crate) const PENDING: u8 = 0;
/// The closure is running on some thread. `cancel` still wins: the result is then discarded.
pub(crate) const RUNNING: u8 = 1;
/// The outcome is decided (by completion or cancellation) but not yet published:
/// the cleanup of a winning cancel is running. Waiters keep waiting; `cancel` loses.
pub(crate) const SETTLING: u8 = 2;
/// Published: the closure returned a value.
pub(crate) const DONE: u8 = 3;
/// Published: the closure panicked, or the task failed before it could run.
pub(crate) const FAILED: u8 = 4;
/// Published: the task was cancelled; waiters see `Err(Cancelled)` (or `Err(Interrupted)`).
pub(crate) const CANCELLED: u8 = 5;

/// A flag over a published phase: the outcome is lent to the
/// done-callbacks running on one thread. `done()` is true; waits wait until
/// it is back in place and the flag cleared.
pub(crate) const LENT: u8 = 0x10;

/// True once the outcome is published (`done()`), lent or not.
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
