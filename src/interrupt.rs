//! Ctrl-C: a Ctrl-C wakes every thread blocked in a wait of this crate, so
//! that the wait cancels what it waited on and returns
//! [`Error::Interrupted`](crate::Error::Interrupted); it runs the hooks
//! registered with [`on_interrupt`] (emergency stops). A second Ctrl-C
//! while the first is handled exits with status 130.
//!
//! ```
//! use concertina::{interrupt, Backend, Error, Pool};
//!
//! // What a Ctrl-C does to a wait, without sending one.
//! let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
//! let motion = pool.spawn(|| while !concertina::cancelled() { std::thread::yield_now() });
//! let waiter = std::thread::spawn(move || motion.result());
//! while interrupt::interrupt_waits() == 0 { std::thread::yield_now() }
//! assert_eq!(waiter.join().unwrap(), Err(Error::Interrupted));
//! # Ok::<(), Error>(())
//! ```

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::sync::process::{Condvar, Mutex};

/// Something a blocked thread waits on: a wake takes its lock and notifies
/// its condvar, so that the waiter re-checks its condition.
pub(crate) trait Wakeable: Send + Sync {
    fn wake(&self);

    /// What a Ctrl-C does to it: by default, wakes the wait, which then
    /// cancels what it waited on.
    fn on_interrupt(&self) -> Woken {
        self.wake();
        Woken::Wait
    }

    /// False for a [holding](Woken::Nothing) registration: it is no wait,
    /// so it never counts as still handling an earlier interrupt.
    fn handles(&self) -> bool {
        true
    }
}

/// What an interrupt did to one registration.
pub(crate) enum Woken {
    /// Woke a blocked wait: it cancels what it waited on, then acknowledges
    /// (the hooks wait for that).
    Wait,
    /// Cancelled what it stands for at once (a task run inline, what a
    /// multi-wait holds between its waits): nothing for the hooks to wait on.
    Settled,
    /// Held nothing left to cancel: as if nobody waited.
    Nothing,
}

type Hook = Arc<dyn Fn() + Send + Sync>;

struct Registry {
    next: u64,
    /// Token, the generation the wait began in, what it waits on.
    waiters: Vec<(u64, u64, Arc<dyn Wakeable>)>,
}

/// How many parts the registry of blocked waits is split into: a wait
/// registers in its thread's part, so that threads blocking at the same
/// time rarely meet on one lock.
pub(crate) const SHARDS: usize = 32;

static REGISTRY: [Mutex<Registry>; SHARDS] = [const {
    Mutex::new(Registry {
        next: 0,
        waiters: Vec::new(),
    })
}; SHARDS];
/// Bumped by every interrupt while it holds every part of the registry.
/// Memory ordering: the bump is AcqRel and every read Acquire, so a wait
/// that sees a new generation also sees what the interrupting thread did
/// before (the hooks it registered); the registry locks order the rest.
static GENERATION: AtomicU64 = AtomicU64::new(0);
/// The hooks, each with the number its guard removes it by.
static HOOKS: Mutex<Vec<(u64, Hook)>> = Mutex::new(Vec::new());
static NEXT_HOOK: AtomicU64 = AtomicU64::new(0);
/// The latest generation whose hooks have all run.
static HOOKS_DONE: Mutex<u64> = Mutex::new(0);
static HOOKS_RAN: Condvar = Condvar::new();
static HANDLER: OnceLock<bool> = OnceLock::new();
static EXITING: AtomicBool = AtomicBool::new(false);
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The part of the registry this thread's waits register in.
    // Relaxed: spreads threads over the parts; any value is correct.
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// A blocked wait, known to the interrupt machinery until dropped. Drop it
/// only once the interrupt, if any, has been handled (the future cancelled).
pub(crate) struct Registration {
    shard: usize,
    token: u64,
    generation: u64,
    /// False for a holding registration (see [`Wakeable::handles`]): its
    /// end neither acknowledges an interrupt nor waits for the hooks.
    handles: bool,
}

/// Registers a wait on `target`.
/// The part of a sharded registry this thread uses (this one's, and the
/// blocked waits' of [`crate::park`]).
pub(crate) fn shard() -> usize {
    SHARD.with(|s| *s)
}

pub(crate) fn register(target: Arc<dyn Wakeable>) -> Registration {
    let shard = shard();
    let mut registry = REGISTRY[shard].lock();
    let token = registry.next;
    registry.next += 1;
    // Read under the part's lock: an interrupt bumps the generation while
    // it holds every part, so this wait is either woken by it or begins
    // after it.
    let generation = GENERATION.load(Ordering::Acquire);
    let handles = target.handles();
    registry.waiters.push((token, generation, target));
    Registration {
        shard,
        token,
        generation,
        handles,
    }
}

/// The number of interrupts so far: a wait over many futures compares it
/// before and after to learn that it was interrupted.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

impl Registration {
    /// True once an interrupt arrived after this wait began.
    #[inline]
    pub(crate) fn interrupted(&self) -> bool {
        GENERATION.load(Ordering::Acquire) != self.generation
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.handles && self.interrupted() {
            // What the wait waited on is cancelled by now (its caller does
            // that before dropping this): the hooks may run.
            {
                let now = GENERATION.load(Ordering::Acquire);
                let mut settled = SETTLED.lock();
                if settled.0 == now {
                    settled.1 += 1;
                } else if settled.0 < now {
                    *settled = (now, 1);
                }
                SETTLED_MORE.notify_all();
            }
            // An interrupted wait returns only after that interrupt's hooks
            // (emergency stops) have run, and stays counted as handling it
            // meanwhile, so that a second Ctrl-C exits.
            let mut done = HOOKS_DONE.lock();
            HOOKS_RAN.wait_while(&mut done, |done| *done <= self.generation);
        }
        let mut registry = REGISTRY[self.shard].lock();
        if let Some(i) = registry
            .waiters
            .iter()
            .position(|(t, _, _)| *t == self.token)
        {
            registry.waiters.swap_remove(i);
        }
    }
}

/// A thread that runs bare inline tasks (the inline backend, off the pool
/// workers): a Ctrl-C while one runs hits it instead of exiting. Kept per
/// thread, so that an inline task costs two atomic writes, not a
/// registration.
pub(crate) struct InlineSlot {
    depth: AtomicUsize,
    hit: AtomicBool,
}

static INLINE: Mutex<Vec<std::sync::Weak<InlineSlot>>> = Mutex::new(Vec::new());

thread_local! {
    static SLOT: Arc<InlineSlot> = {
        let slot = Arc::new(InlineSlot { depth: AtomicUsize::new(0), hit: AtomicBool::new(false) });
        let mut all = INLINE.lock();
        all.retain(|s| s.strong_count() > 0);
        all.push(Arc::downgrade(&slot));
        slot
    };
}

/// This thread runs a bare inline task until the guard drops.
pub(crate) struct Inline(());

pub(crate) fn inline_enter() -> Inline {
    SLOT.with(|slot| {
        // Only this thread writes its depth: no read-modify-write needed.
        let depth = slot.depth.load(Ordering::Relaxed);
        if depth == 0 {
            slot.hit.store(false, Ordering::Relaxed);
        }
        // Release: an interrupt that sees the task running (Acquire) hits
        // it after the reset above. One that does not see it exits as if
        // the Ctrl-C came before the task began.
        slot.depth.store(depth + 1, Ordering::Release);
    });
    Inline(())
}

impl Inline {
    /// True once a Ctrl-C arrived while this thread ran an inline task.
    pub(crate) fn interrupted(&self) -> bool {
        inline_hit()
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        SLOT.with(|slot| {
            let depth = slot.depth.load(Ordering::Relaxed);
            slot.depth.store(depth - 1, Ordering::Release);
        });
    }
}

/// True inside a bare inline task that a Ctrl-C hit.
pub(crate) fn inline_hit() -> bool {
    // Acquire: pairs with the Release of the interrupt's store.
    SLOT.with(|s| s.hit.load(Ordering::Acquire))
}

/// Hits every thread running a bare inline task; returns how many, or
/// `None` when one hit by an earlier interrupt still runs (it is still
/// handling that one).
fn hit_inline(unless_handling: bool) -> Option<usize> {
    let all: Vec<Arc<InlineSlot>> = INLINE
        .lock()
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .collect();
    let running = || all.iter().filter(|s| s.depth.load(Ordering::SeqCst) > 0);
    if unless_handling && running().any(|s| s.hit.load(Ordering::SeqCst)) {
        return None;
    }
    Some(
        running()
            .map(|s| s.hit.store(true, Ordering::SeqCst))
            .count(),
    )
}

/// Wakes every registered wait and hits the inline tasks: the new
/// generation, the waits woken and the inline tasks hit; or `None` (waking
/// nothing) when `unless_handling` and a wait woken by an earlier interrupt
/// is still registered: it is still handling that one.
fn wake_waits(unless_handling: bool) -> Option<(u64, usize, usize)> {
    let (generation, waiters): (u64, Vec<Arc<dyn Wakeable>>) = {
        // Every part, always in the same order.
        let parts: Vec<_> = REGISTRY.iter().map(|part| part.lock()).collect();
        let now = GENERATION.load(Ordering::Acquire);
        let all = || parts.iter().flat_map(|part| part.waiters.iter());
        if unless_handling && all().any(|(_, began, w)| *began != now && w.handles()) {
            return None;
        }
        let generation = GENERATION.fetch_add(1, Ordering::AcqRel) + 1;
        (generation, all().map(|(_, _, w)| w.clone()).collect())
    };
    let mut settled = hit_inline(unless_handling)?;
    let mut waits = 0;
    for waiter in &waiters {
        match waiter.on_interrupt() {
            Woken::Wait => waits += 1,
            Woken::Settled => settled += 1,
            Woken::Nothing => {}
        }
    }
    Some((generation, waits, settled))
}

/// How long the hooks wait for the woken waits to cancel what they waited
/// on (each does so at once, on waking; the bound is for a thread that
/// cannot run).
const WOKEN_SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// The interrupt generation the woken waits answer, and how many have
/// cancelled what they waited on: the hooks wait for all of them first.
static SETTLED: Mutex<(u64, usize)> = Mutex::new((0, 0));
static SETTLED_MORE: Condvar = Condvar::new();

/// Runs every hook, then marks the hooks of `generation` done. The `woken`
/// waits of `generation` first cancel what they waited on: a hook that
/// stops a device then finds the operation a wait was interrupted on
/// already settled as `Interrupted`, and nothing stops twice.
fn run_hooks(generation: u64, woken: usize) {
    {
        let mut settled = SETTLED.lock();
        let deadline = std::time::Instant::now() + WOKEN_SETTLE;
        let all_settled = |settled: &(u64, usize)| {
            woken == 0 || settled.0 > generation || (settled.0 == generation && settled.1 >= woken)
        };
        while !all_settled(&settled) {
            if SETTLED_MORE.wait_until(&mut settled, deadline).timed_out() {
                break;
            }
        }
    }
    let hooks: Vec<Hook> = HOOKS.lock().iter().map(|(_, h)| h.clone()).collect();
    for hook in hooks {
        let _ = catch_unwind(AssertUnwindSafe(|| hook()));
    }
    let mut done = HOOKS_DONE.lock();
    *done = (*done).max(generation);
    HOOKS_RAN.notify_all();
}

/// What a Ctrl-C does; the handler this crate installs calls it, and an
/// application that owns the SIGINT handler itself calls it from there.
///
/// * Every thread blocked in a wait of this crate (`result`, `join`,
///   `wait_timeout`, `wait_all`, `wait_any`, `as_completed`,
///   `Instance::call`, `RequestPool` waits) wakes, cancels the future it
///   waited on — its cleanup runs and the task sees
///   [`cancelled()`](crate::cancelled) — and returns `Err(Interrupted)`.
/// * Every hook registered with [`on_interrupt`] runs, on a thread of its
///   own, once the woken waits have cancelled what they waited on (so that
///   a stop hook finds an interrupted operation already settled as
///   `Interrupted`, and nothing is stopped twice); the interrupted waits
///   return only once the hooks have run, so that an emergency stop is
///   never cut short by the program ending.
/// * With nobody waiting, or while the waits woken by an earlier interrupt
///   are still handling it, the process exits with status 130, as a program
///   without a handler would: no program becomes unkillable by linking this
///   library.
///
/// Use [`interrupt_waits`] for the first two steps without ever exiting.
///
/// # Examples
///
/// An application with a SIGINT handler of its own hands Ctrl-C on:
///
/// ```no_run
/// ctrlc::set_handler(|| {
///     // the application's own work first …
///     concertina::interrupt::interrupt();
/// })
/// .expect("no other handler yet");
/// ```
pub fn interrupt() {
    match wake_waits(true) {
        Some((generation, waits, inline)) if waits + inline > 0 => {
            crate::trace::interrupted(waits + inline);
            // The hooks run on a thread of their own, so that this one (the
            // signal thread) stays free to take a second Ctrl-C even when a
            // hook hangs.
            let spawned = std::thread::Builder::new()
                .name("concertina-interrupt".into())
                .spawn(move || run_hooks(generation, waits));
            if spawned.is_err() {
                run_hooks(generation, waits);
            }
        }
        _ => {
            run_hooks(GENERATION.load(Ordering::Acquire), 0);
            exit();
        }
    }
}

/// Wakes and interrupts every wait of this crate and runs the interrupt
/// hooks, as [`interrupt`] does, but never exits the process. Returns the
/// number of waits interrupted.
///
/// # Examples
///
/// ```
/// use concertina::{Backend, Error, Pool};
///
/// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
/// let motion = pool.spawn(|| while !concertina::cancelled() { std::thread::yield_now() });
/// let waiter = std::thread::spawn(move || motion.result());
/// while concertina::interrupt::interrupt_waits() == 0 { std::thread::yield_now() }
/// assert_eq!(waiter.join().unwrap(), Err(Error::Interrupted));
/// # Ok::<(), Error>(())
/// ```
pub fn interrupt_waits() -> usize {
    let (generation, waits, inline) =
        wake_waits(false).unwrap_or((GENERATION.load(Ordering::Acquire), 0, 0));
    if waits + inline > 0 {
        crate::trace::interrupted(waits + inline);
    }
    run_hooks(generation, waits);
    waits + inline
}

fn exit() -> ! {
    // One exit, even when two interrupts race here.
    if EXITING.swap(true, Ordering::AcqRel) {
        loop {
            std::thread::park();
        }
    }
    std::process::exit(130)
}

/// Registers `hook` to run on every Ctrl-C (Concert's "Ctrl-C stops all
/// devices"). Hooks run in registration order, on a thread of their own
/// while interrupted waits handle the interrupt (which return only after the
/// hooks), or on the signal thread before an exit; a panicking hook does not
/// stop the others.
///
/// A hook relies on the Ctrl-C handler: registering one installs it (see
/// [`handles_ctrlc`]) unless the application left SIGINT alone.
///
/// The hook stays registered while the returned [`InterruptHook`] lives:
/// dropping it removes the hook (a Ctrl-C already running the hooks may
/// still run it once); [`InterruptHook::forever`] keeps it for the rest of
/// the process.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let stops = Arc::new(AtomicUsize::new(0));
/// let count = stops.clone();
/// let hook = concertina::interrupt::on_interrupt(move || { count.fetch_add(1, Ordering::SeqCst); });
/// concertina::interrupt::interrupt_waits();
/// assert_eq!(stops.load(Ordering::SeqCst), 1);
/// drop(hook); // removed
/// concertina::interrupt::interrupt_waits();
/// assert_eq!(stops.load(Ordering::SeqCst), 1);
/// ```
pub fn on_interrupt(hook: impl Fn() + Send + Sync + 'static) -> InterruptHook {
    // Relaxed: a unique number is all it needs.
    let id = NEXT_HOOK.fetch_add(1, Ordering::Relaxed);
    HOOKS.lock().push((id, Arc::new(hook)));
    rely_on_handler();
    InterruptHook { id: Some(id) }
}

/// A hook registered with [`on_interrupt`], removed when this drops.
///
/// # Examples
///
/// ```
/// // A hook for the rest of the process (an emergency stop of the rig).
/// concertina::interrupt::on_interrupt(|| { /* stop everything */ }).forever();
/// ```
#[must_use = "the hook is removed when this guard drops: keep it, or call .forever()"]
#[derive(Debug)]
pub struct InterruptHook {
    /// `None` once made permanent.
    id: Option<u64>,
}

impl InterruptHook {
    /// Keeps the hook registered for the rest of the process.
    ///
    /// # Examples
    ///
    /// ```
    /// concertina::interrupt::on_interrupt(|| eprintln!("stopping")).forever();
    /// ```
    pub fn forever(mut self) {
        self.id = None;
    }
}

impl Drop for InterruptHook {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            // Taken out under the lock, dropped outside it: the hook's
            // captures may be user values with a `Drop` of their own.
            let removed = {
                let mut hooks = HOOKS.lock();
                hooks
                    .iter()
                    .position(|(i, _)| *i == id)
                    .map(|at| hooks.remove(at))
            };
            drop(removed);
        }
    }
}

/// Installs this crate's Ctrl-C handler, once per process. Leaves an
/// existing handler of the application alone: returns false then.
pub(crate) fn install_handler() -> bool {
    *HANDLER.get_or_init(|| ctrlc::try_set_handler(interrupt).is_ok())
}

/// Set once the application said that SIGINT is not this crate's:
/// `ctrlc(false)` on the default pool's builder (or `CONCERTINA_CTRLC=0`,
/// read where it is needed).
static LEFT_ALONE: AtomicBool = AtomicBool::new(false);

/// The application leaves SIGINT alone: nothing installs the handler any
/// more unless a pool's builder asks for it with `ctrlc(true)`.
pub(crate) fn leave_alone() {
    LEFT_ALONE.store(true, Ordering::Release);
}

/// Installs the handler for something that relies on it (a pool, an
/// interrupt hook, a remote instance) unless the application left SIGINT
/// alone; true when this crate's handler is installed.
pub(crate) fn rely_on_handler() -> bool {
    if let Some(&installed) = HANDLER.get() {
        // Decided once per process: nothing to read again.
        return installed;
    }
    // Acquire: pairs with the Release of `leave_alone`.
    if LEFT_ALONE.load(Ordering::Acquire) || env_flag("CONCERTINA_CTRLC") == Some(false) {
        return handles_ctrlc();
    }
    install_handler()
}

/// The value of a `CONCERTINA_*` switch: `Some` for one of the accepted
/// values (see [`parse_flag`]), `None` when unset or not accepted (which
/// whoever builds a pool reports).
fn env_flag(var: &str) -> Option<bool> {
    std::env::var(var).ok().as_deref().and_then(parse_flag)
}

/// The values every `CONCERTINA_*` switch accepts.
pub(crate) fn parse_flag(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The number of threads blocked right now in a wait of this crate (past
/// its brief spin): what a Ctrl-C would interrupt. A diagnostic, for
/// debugging a program that seems stuck.
///
/// # Examples
///
/// ```
/// use concertina::{Backend, Pool};
///
/// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
/// let (release, gate) = std::sync::mpsc::channel::<()>();
/// let f = pool.spawn(move || gate.recv().unwrap());
/// let waiter = std::thread::spawn(move || f.result());
/// while concertina::interrupt::blocked_waits() == 0 { std::thread::yield_now() }
/// release.send(()).unwrap();
/// waiter.join().unwrap()?;
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn blocked_waits() -> usize {
    REGISTRY
        .iter()
        .map(|part| {
            part.lock()
                .waiters
                .iter()
                .filter(|(_, _, w)| w.handles())
                .count()
        })
        .sum()
}

/// True when this crate's Ctrl-C handler is installed; false when nothing
/// relied on it yet, when the application left SIGINT alone
/// (`CONCERTINA_CTRLC=0`, or [`ctrlc(false)`](crate::pool::PoolBuilder::ctrlc)
/// given to [`configure`](crate::configure)), or when the application owns
/// the SIGINT handler, which should then call [`interrupt`].
///
/// Whatever relies on Ctrl-C installs the handler: building any pool (unless
/// its builder says `ctrlc(false)`), registering an [`on_interrupt`] hook
/// (and so `Device::stop_on_interrupt`), starting a remote instance.
///
/// # Examples
///
/// ```
/// // Building a pool installs the handler unless told not to.
/// let _pool = concertina::Pool::builder().name("motors").threads(1).build()?;
/// if !concertina::interrupt::handles_ctrlc() {
///     // CONCERTINA_CTRLC=0, or the application owns SIGINT: its handler
///     // should call concertina::interrupt::interrupt().
/// }
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn handles_ctrlc() -> bool {
    HANDLER.get().copied().unwrap_or(false)
}
