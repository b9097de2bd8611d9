//! Spans and events for the `tracing` feature: a span per task, instance
//! call and device operation; events for a cancel, a Ctrl-C, a panic and a
//! deadlock. Without the feature every function here is empty and inlined
//! away, its arguments (closures) never called: no cost at all.
//!
//! Targets are `concertina`. What a user of `RUST_LOG=concertina=info`
//! should see is at `INFO` and above, each event naming what it concerns:
//! `INFO` a pool built (its name, backend, threads) and a cancel (the task,
//! call or operation), `WARN` a Ctrl-C, a deadlock, a failed device
//! operation (the parameter or command, the error) and a worker lost (the
//! process or rank, how it ended, how many calls it fails), `ERROR` a
//! panic (its message). The spans (tasks, instance calls, device
//! operations) are at `DEBUG`: the events inside a task carry its span.

#[cfg(feature = "tracing")]
mod on {
    use std::fmt::Display;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// An entered span; leaves it when dropped.
    pub(crate) type Entered = tracing::span::EnteredSpan;

    static NEXT_ID: AtomicU64 = AtomicU64::new(1);

    /// A number for a task or a call, unique in the process.
    pub(crate) fn next_id() -> u64 {
        // Relaxed: a unique number, ordering nothing else.
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn task(pool: &str, id: u64) -> Entered {
        tracing::debug_span!(target: "concertina", "task", pool, id).entered()
    }

    #[inline]
    pub(crate) fn instance_call(instance: &str, id: u64) -> Entered {
        tracing::debug_span!(target: "concertina", "instance_call", instance, id).entered()
    }

    #[inline]
    pub(crate) fn device_op<S: Display>(
        parameter: impl FnOnce() -> S,
        op: &'static str,
    ) -> Entered {
        tracing::debug_span!(target: "concertina", "device_op", parameter = %parameter(), op)
            .entered()
    }

    pub(crate) fn cancelled<S: Display>(what: impl FnOnce() -> S) {
        tracing::info!(target: "concertina", task = %what(), "cancelled");
    }

    pub(crate) fn pool_built(name: &str, backend: &dyn std::fmt::Debug, threads: usize) {
        tracing::info!(target: "concertina", pool = name, backend = ?backend, threads, "pool built");
    }

    pub(crate) fn device_failed<S: Display>(what: impl FnOnce() -> S, error: &dyn Display) {
        tracing::warn!(target: "concertina", operation = %what(), %error, "device operation failed");
    }

    pub(crate) fn worker_lost(
        worker: &str,
        kind: &dyn std::fmt::Debug,
        pending: usize,
        why: &dyn Display,
    ) {
        tracing::warn!(target: "concertina", worker, kind = ?kind, pending, %why, "worker lost");
    }

    pub(crate) fn interrupted(waits: usize) {
        tracing::warn!(target: "concertina", waits, "Ctrl-C: interrupting the waits");
    }

    pub(crate) fn panicked(message: &str) {
        tracing::error!(target: "concertina", message, "task panicked");
    }

    pub(crate) fn deadlock(cycle: &dyn Display) {
        tracing::warn!(target: "concertina", %cycle, "deadlock");
    }
}

#[cfg(not(feature = "tracing"))]
mod on {
    use std::fmt::Display;

    /// Nothing: no span without the feature.
    pub(crate) struct Entered;

    #[inline(always)]
    pub(crate) fn next_id() -> u64 {
        0
    }

    #[inline(always)]
    #[allow(dead_code)] // the task span is made only with the feature
    pub(crate) fn task(_pool: &str, _id: u64) -> Entered {
        Entered
    }

    #[inline(always)]
    pub(crate) fn instance_call(_instance: &str, _id: u64) -> Entered {
        Entered
    }

    #[inline(always)]
    pub(crate) fn device_op<S: Display>(
        _parameter: impl FnOnce() -> S,
        _op: &'static str,
    ) -> Entered {
        Entered
    }

    #[inline(always)]
    pub(crate) fn cancelled<S: Display>(_what: impl FnOnce() -> S) {}

    #[inline(always)]
    pub(crate) fn pool_built(_name: &str, _backend: &dyn std::fmt::Debug, _threads: usize) {}

    #[inline(always)]
    pub(crate) fn device_failed<S: Display>(_what: impl FnOnce() -> S, _error: &dyn Display) {}

    #[inline(always)]
    pub(crate) fn worker_lost(
        _worker: &str,
        _kind: &dyn std::fmt::Debug,
        _pending: usize,
        _why: &dyn Display,
    ) {
    }

    #[inline(always)]
    pub(crate) fn interrupted(_waits: usize) {}

    #[inline(always)]
    pub(crate) fn panicked(_message: &str) {}

    #[inline(always)]
    pub(crate) fn deadlock(_cycle: &dyn Display) {}
}

pub(crate) use on::*;
