//! A pool's task counts, cheap enough to leave on: [`PoolStats`].
//!
//! A task carries no reference to its pool's counters (a reference count
//! touched by the submitting thread and again by the running one would move
//! a cache line between cores for every task), only the pool's number.
//! Each thread of the pool counts what it runs in a part of its own,
//! registered with the pool while the thread lives and folded into the
//! pool's totals when it leaves. A task run elsewhere (by a wait that
//! claimed it, or dropped without running) finds its pool's counters by
//! number, in a registry of live pools: the rare path.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use crate::error::Error;
use crate::sync::{process, Mutex};
#[cfg(feature = "tracing")]
use crate::task::running::catch;
use crate::task::running::Quiet;
#[cfg(feature = "tracing")]
use crate::trace;

/// What a pool is doing and has done: [`Pool::stats`](crate::Pool::stats).
///
/// # Examples
///
/// ```
/// use concertina::pool::PoolStats;
///
/// let pool = concertina::Pool::builder().threads(1).build()?;
/// pool.spawn(|| ()).result()?;
/// let PoolStats { submitted, completed, .. } = pool.stats();
/// assert_eq!((submitted, completed), (1, 1));
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Worker threads, as configured (0 for the inline backend).
    pub threads: usize,
    /// Spare threads alive now, started to stand in for blocked workers.
    pub spare_threads: usize,
    /// Tasks submitted and not yet started.
    pub queued: u64,
    /// Tasks running now (blocked ones included).
    pub running: u64,
    /// Threads of the pool blocked in a wait now.
    pub blocked: usize,
    /// Tasks submitted since the pool was built.
    pub submitted: u64,
    /// Tasks that ran to their end: returned, panicked, or stopped after a
    /// cancel.
    pub completed: u64,
    /// Of the completed tasks, those that panicked.
    pub panicked: u64,
    /// Tasks cancelled: before they started (they never run), or while
    /// they ran (also counted as completed).
    pub cancelled: u64,
    /// Tasks that never ran because the pool was shut down (refused, or
    /// discarded by [`Pool::shutdown_now`](crate::Pool::shutdown_now)).
    pub rejected: u64,
}

/// The counts as [`Counters::read`] gives them, before the pool adds its
/// thread figures.
pub(crate) struct Counts {
    pub(crate) submitted: u64,
    pub(crate) queued: u64,
    pub(crate) running: u64,
    pub(crate) completed: u64,
    pub(crate) panicked: u64,
    pub(crate) cancelled: u64,
    pub(crate) rejected: u64,
}

/// A cache line (two, where the prefetcher pairs them) of its own.
#[derive(Default)]
#[repr(align(128))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// What the threads that run tasks count. Relaxed: each is a count of its
/// own, ordering nothing else.
#[derive(Default)]
struct RanCounts {
    started: AtomicU64,
    completed: AtomicU64,
    panicked: AtomicU64,
    /// Cancelled while they ran.
    cancelled: AtomicU64,
}

impl RanCounts {
    fn values(&self) -> [u64; 4] {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        // The later stages first: a task counted there was counted in the
        // earlier ones before, so the differences never go negative.
        let completed = load(&self.completed);
        let panicked = load(&self.panicked);
        let cancelled = load(&self.cancelled);
        let started = load(&self.started);
        [started, completed, panicked, cancelled]
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A pool's counters.
pub(crate) struct Counters {
    id: u64,
    /// Its tasks' panics print nothing (`PoolBuilder::quiet_panics`).
    quiet: bool,
    /// The pool's name, for the spans of its tasks.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(super) name: String,
    /// Written by the submitting threads.
    submitted: Line<AtomicU64>,
    /// Runs counted by threads that are not the pool's: the inline
    /// backend's callers, waits that claimed a task.
    foreign: Line<RanCounts>,
    /// Cancelled before they started; refused or discarded by a shutdown.
    cancelled: Line<AtomicU64>,
    rejected: AtomicU64,
    /// Set once the pool is shut down: a task dropped without running
    /// from then on was rejected, not cancelled.
    closed: AtomicBool,
    threads: Mutex<Threads>,
}

/// The parts of the pool's live threads, and what the threads that left
/// had counted.
struct Threads {
    live: Vec<Arc<Line<RanCounts>>>,
    left: [u64; 4],
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The counters of every live pool, by number.
static REGISTRY: process::Mutex<Vec<(u64, Weak<Counters>)>> = process::Mutex::new(Vec::new());

/// The pool this thread counts for, and its part.
struct ThreadPart {
    id: u64,
    counters: Arc<Counters>,
    part: Arc<Line<RanCounts>>,
}

thread_local! {
    static THREAD: RefCell<Option<ThreadPart>> = const { RefCell::new(None) };
}

impl Counters {
    pub(crate) fn new(name: &str, quiet: bool) -> Arc<Counters> {
        // Relaxed: a unique number, ordering nothing else.
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let counters = Arc::new(Counters {
            id,
            quiet,
            name: name.to_owned(),
            submitted: Line::default(),
            foreign: Line::default(),
            cancelled: Line::default(),
            rejected: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            threads: Mutex::new(Threads {
                live: Vec::new(),
                left: [0; 4],
            }),
        });
        let mut registry = REGISTRY.lock();
        registry.retain(|(_, weak)| weak.strong_count() > 0);
        registry.push((id, Arc::downgrade(&counters)));
        counters
    }

    /// From now on, a task dropped without running was rejected.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// Runs an inline task's closure here, on the caller: counted as
    /// submitted and run here.
    pub(crate) fn run_inline<T>(&self, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        bump(&self.submitted);
        bump(&self.foreign.started);
        let finish = Finish {
            counts: Target::Here(&self.foreign),
            inline: true,
        };
        run_in_span(&self.name, &finish, f)
    }

    pub(crate) fn read(&self) -> Counts {
        let (ran, rejected, cancelled_queued) = {
            let threads = self.threads.lock();
            let mut ran = threads.left;
            let live = threads.live.iter().map(|part| part.values());
            for values in live.chain([self.foreign.values()]) {
                for (total, value) in ran.iter_mut().zip(values) {
                    *total += value;
                }
            }
            (
                ran,
                self.rejected.load(Ordering::Relaxed),
                self.cancelled.load(Ordering::Relaxed),
            )
        };
        let [started, completed, panicked, cancelled_running] = ran;
        let submitted = self.submitted.load(Ordering::Relaxed);
        Counts {
            submitted,
            queued: submitted.saturating_sub(started + cancelled_queued + rejected),
            running: started.saturating_sub(completed),
            completed,
            panicked,
            cancelled: cancelled_queued + cancelled_running,
            rejected,
        }
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        REGISTRY.lock().retain(|(id, _)| *id != self.id);
    }
}

/// Makes this thread count for the pool of `counters`, in a part of its
/// own, until [`leave`].
pub(crate) fn enter(counters: &Arc<Counters>) {
    let part: Arc<Line<RanCounts>> = Arc::default();
    counters.threads.lock().live.push(part.clone());
    THREAD.with(|t| {
        *t.borrow_mut() = Some(ThreadPart {
            id: counters.id,
            counters: counters.clone(),
            part,
        })
    });
}

/// Folds this thread's part into its pool's totals.
pub(crate) fn leave() {
    let Some(left) = THREAD.with(|t| t.borrow_mut().take()) else {
        return;
    };
    let mut threads = left.counters.threads.lock();
    threads.live.retain(|part| !Arc::ptr_eq(part, &left.part));
    for (total, value) in threads.left.iter_mut().zip(left.part.values()) {
        *total += value;
    }
}

/// Counts with the counts of pool `id`: this thread's part when it is one
/// of the pool's threads, else the pool's shared ones (found by number;
/// nothing when the pool is gone).
fn with_ran(id: u64, count: impl FnOnce(&RanCounts)) {
    let mut count = Some(count);
    THREAD.with(|t| {
        if let Some(part) = &*t.borrow() {
            if part.id == id {
                if let Some(count) = count.take() {
                    count(&part.part);
                }
            }
        }
    });
    if let Some(count) = count {
        if let Some(counters) = find(id) {
            count(&counters.foreign);
        }
    }
}

fn find(id: u64) -> Option<Arc<Counters>> {
    REGISTRY
        .lock()
        .iter()
        .find(|(found, _)| *found == id)
        .and_then(|(_, weak)| weak.upgrade())
}

/// Counts the end of a task's closure, also when it panics.
struct Finish<'a> {
    counts: Target<'a>,
    /// A bare inline task, which no handle can cancel.
    inline: bool,
}

/// Where a task's run is counted.
enum Target<'a> {
    /// The pool's, by number (see [`with_ran`]).
    Pool(u64),
    /// These counts, at hand.
    Here(&'a RanCounts),
}

impl Target<'_> {
    fn count(&self, count: impl FnOnce(&RanCounts)) {
        match self {
            Target::Pool(id) => with_ran(*id, count),
            Target::Here(ran) => count(ran),
        }
    }
}

impl Finish<'_> {
    fn count(&self, panicked: bool) {
        let cancelled = !panicked && !self.inline && crate::cancel::cancelled();
        self.counts.count(|ran| {
            bump(&ran.completed);
            if panicked {
                bump(&ran.panicked);
            } else if cancelled {
                bump(&ran.cancelled);
            }
        });
    }
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.count(std::thread::panicking());
    }
}

/// Runs `f` in the task's span. Without the `tracing` feature the panic
/// unwinds through `finish` (which counts it) to the task's runner, which
/// turns it into [`Error::Panicked`]; with it, it is caught here, inside the
/// span, so that its event is reported there.
fn run_in_span<T>(
    _pool: &str,
    finish: &Finish<'_>,
    f: impl FnOnce() -> Result<T, Error>,
) -> Result<T, Error> {
    #[cfg(feature = "tracing")]
    {
        let _span = trace::task(_pool, trace::next_id());
        let (outcome, panicked) = catch(f);
        if panicked {
            // Caught: the guard sees no unwinding and counts the end only.
            finish.counts.count(|ran| bump(&ran.panicked));
        }
        outcome
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = finish;
        f()
    }
}

/// A task's closure wrapped so that its pool counts it: started, finished
/// (panicked or not, cancelled or not), or dropped without running. It
/// holds the pool's number, no reference.
pub(crate) struct Counted {
    id: u64,
    /// Its panic prints nothing (the pool's `quiet_panics`).
    quiet: bool,
    ran: bool,
    /// For the span's pool name.
    #[cfg(feature = "tracing")]
    counters: Arc<Counters>,
}

impl Counted {
    pub(crate) fn new(counters: &Arc<Counters>) -> Self {
        bump(&counters.submitted);
        Counted {
            id: counters.id,
            quiet: counters.quiet,
            ran: false,
            #[cfg(feature = "tracing")]
            counters: counters.clone(),
        }
    }

    pub(crate) fn run<T>(mut self, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        self.ran = true;
        with_ran(self.id, |ran| bump(&ran.started));
        let finish = Finish {
            counts: Target::Pool(self.id),
            inline: false,
        };
        #[cfg(feature = "tracing")]
        let pool = self.counters.name.as_str();
        #[cfg(not(feature = "tracing"))]
        let pool = "";
        let _quiet = Quiet::set(self.quiet);
        run_in_span(pool, &finish, f)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if !self.ran {
            if let Some(counters) = find(self.id) {
                if counters.closed.load(Ordering::Relaxed) {
                    bump(&counters.rejected);
                } else {
                    bump(&counters.cancelled);
                }
            }
        }
    }
}
