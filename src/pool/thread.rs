//! The worker side of a pool: what a thread of the pool knows of it
//! ([`Ctx`]), entering and leaving it, compensation and the rayon tokens.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use crate::graph::Node;
use crate::pool::spare::Spares;
use crate::pool::stats::{self, Counters};
use crate::pool::{Pool, Shared, DISCARDING, OPEN};
use crate::sync::{Condvar, Mutex};
use crate::task::run_guarded;
use crate::worker::{self, Job, Worker};

/// What a worker thread knows of its pool. It holds no strong reference to
/// the pool itself, so that dropping the last `Pool` shuts the pool down.
pub(crate) struct Ctx {
    /// OPEN, DRAINING or DISCARDING; only ever raised (see [`crate::pool::intake`]).
    pub(super) closing: crate::sync::AtomicU8,
    pub(super) pool: OnceLock<Weak<Shared>>,
    /// Compensation for blocked workers (`None` for the inline backend).
    pub(super) spares: Option<Arc<Spares>>,
    pub(super) stack_size: Option<usize>,
    /// What a shutdown waits for: the pool's threads (spares too) between
    /// entering and leaving, and the tokens in flight on an adopted rayon
    /// pool.
    pub(super) live: Mutex<usize>,
    /// What the pool's threads act for while they wait (see
    /// [`Worker::waiting`]): what a shutdown waits on, in the wait graph.
    pub(super) waiting: Mutex<Vec<Arc<dyn Node>>>,
    /// Rayon backend: tokens on rayon now (at most `threads`).
    pub(super) tokens: AtomicUsize,
    /// Rayon backend: the most tokens at once, one per rayon thread.
    pub(super) token_limit: usize,
    pub(super) quiet: Condvar,
    pub(super) hooks: ThreadHooks,
    pub(super) stats: Arc<Counters>,
}

/// What runs when a thread of the pool starts and when it stops.
#[derive(Clone, Default)]
pub(crate) struct ThreadHooks {
    pub(crate) start: Option<Hook>,
    pub(crate) stop: Option<Hook>,
    /// And its tasks' panics print nothing (`PoolBuilder::quiet_panics`).
    pub(crate) quiet_panics: bool,
}

pub(crate) type Hook = Arc<dyn Fn() + Send + Sync>;

impl ThreadHooks {
    /// Runs `hook`, keeping its panic (reported by the panic hook) off the
    /// thread.
    pub(crate) fn run(hook: &Option<Hook>) {
        if let Some(hook) = hook {
            run_guarded(|| hook());
        }
    }
}

impl fmt::Debug for ThreadHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadHooks")
            .field("start", &self.start.is_some())
            .field("stop", &self.stop.is_some())
            .field("quiet_panics", &self.quiet_panics)
            .finish()
    }
}

impl Ctx {
    pub(super) fn new(
        spares: Option<Arc<Spares>>,
        stack_size: Option<usize>,
        threads: usize,
        hooks: ThreadHooks,
        name: &str,
    ) -> Arc<Ctx> {
        let hooks_quiet = hooks.quiet_panics;
        let ctx = Arc::new(Ctx {
            closing: crate::sync::AtomicU8::new(OPEN),
            pool: OnceLock::new(),
            spares,
            stack_size,
            live: Mutex::new(0),
            waiting: Mutex::new(Vec::new()),
            quiet: Condvar::new(),
            tokens: AtomicUsize::new(0),
            token_limit: threads,
            hooks,
            stats: Counters::new(name, hooks_quiet),
        });
        if let Some(spares) = &ctx.spares {
            let weak = Arc::downgrade(&ctx);
            spares.set_enter(
                Arc::new(move |base| {
                    if let Some(ctx) = weak.upgrade() {
                        enter_thread(&ctx, base);
                    }
                }),
                Arc::new(leave_thread),
                {
                    let weak = Arc::downgrade(&ctx);
                    Arc::new(move |more| {
                        if let Some(ctx) = weak.upgrade() {
                            ctx.count_thread(more);
                        }
                    })
                },
            );
        }
        ctx
    }

    pub(super) fn closing(&self) -> u8 {
        // Acquire: pairs with the AcqRel `fetch_max` in `close`.
        self.closing.load(Ordering::Acquire)
    }
}

impl Ctx {
    /// True when a new token is wanted on rayon (fewer tokens than rayon
    /// threads); counts it.
    pub(super) fn want_token(&self) -> bool {
        // The job was sent before this: with the fence in `run_tokens`,
        // either this sees a token leaving and starts a new one, or the
        // leaving token sees the job in the queue. A plain load first: in a
        // burst every rayon thread runs a token, and a read-modify-write
        // per task on this shared counter would cost more than the task.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.tokens.load(Ordering::Relaxed) >= self.token_limit {
            return false;
        }
        if self.tokens.fetch_add(1, Ordering::SeqCst) < self.token_limit {
            true
        } else {
            self.tokens.fetch_sub(1, Ordering::SeqCst);
            false
        }
    }

    /// A rayon token: runs jobs of the pool's queue until it is empty.
    pub(super) fn run_tokens(&self) {
        let Some(spares) = &self.spares else { return };
        loop {
            while let Some(job) = spares.try_take().or_else(|| linger(spares)) {
                run_guarded(|| job.run_from_queue());
            }
            self.tokens.fetch_sub(1, Ordering::SeqCst);
            // Pairs with the fence in `want_token` (see there).
            std::sync::atomic::fence(Ordering::SeqCst);
            if spares.queue_is_empty() || !self.want_token() {
                return;
            }
        }
    }
}

impl Worker for Ctx {
    fn blocked(&self) {
        if let Some(spares) = &self.spares {
            spares.blocked();
        }
    }

    fn unblocked(&self) {
        if let Some(spares) = &self.spares {
            spares.unblocked();
        }
    }

    fn dispatch(&self, job: Job) {
        match &self.spares {
            Some(spares) => spares.dispatch(job),
            None => job(),
        }
    }

    fn discarding(&self) -> bool {
        self.closing() == DISCARDING
    }

    fn waiting(&self, owner: &Arc<dyn Node>) {
        self.waiting.lock().push(owner.clone());
    }

    fn done_waiting(&self, owner: &Arc<dyn Node>) {
        let mut waiting = self.waiting.lock();
        if let Some(i) = waiting.iter().rposition(|o| Arc::ptr_eq(o, owner)) {
            waiting.swap_remove(i);
        }
    }
}

thread_local! {
    /// The pool whose worker this thread is (while it runs a task, for an
    /// adopted rayon pool).
    pub(super) static CTX: RefCell<Option<Arc<Ctx>>> = const { RefCell::new(None) };
}

/// Makes this thread a worker of `ctx`; `base` is where its stack began.
pub(super) fn enter_thread(ctx: &Arc<Ctx>, base: usize) {
    stats::enter(&ctx.stats);
    crate::task::running::Quiet::for_thread(ctx.hooks.quiet_panics);
    worker::install(ctx.clone(), base, ctx.stack_size);
    CTX.with(|c| *c.borrow_mut() = Some(ctx.clone()));
    ThreadHooks::run(&ctx.hooks.start);
}

pub(super) fn leave_thread() {
    let ctx = CTX.with(|c| c.borrow_mut().take());
    if let Some(ctx) = ctx {
        ThreadHooks::run(&ctx.hooks.stop);
    }
    worker::uninstall();
    stats::leave();
}

/// On a pool worker: `Some(pool)`, or `Some(None)` when the pool is gone
/// (its last handle dropped); `None` on other threads.
pub(crate) fn current() -> Option<Option<Pool>> {
    CTX.with(|c| {
        c.borrow().as_ref().map(|ctx| {
            ctx.pool
                .get()
                .and_then(Weak::upgrade)
                .map(|shared| Pool { shared })
        })
    })
}

/// A token whose queue ran dry looks again for a moment (spinning, then
/// yielding, as a wait does before it parks) before it leaves rayon: the
/// next task of a conversation usually comes within microseconds, and
/// taking it here saves a rayon spawn and the wake of a sleeping thread.
fn linger(spares: &Spares) -> Option<crate::worker::Queued> {
    if !crate::sync::spin_then_yield() {
        return None;
    }
    let mut job = None;
    crate::park::spin_until(|| {
        job = spares.try_take();
        job.is_some()
    });
    job
}
