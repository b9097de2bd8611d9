//! The wait graph: who waits on what, and the cycles that can never end.
//!
//! A wait records what it waits on in its *owner* — the task the thread
//! runs (its frame), or the thread itself — then, when it has no deadline,
//! follows what the targets wait on in turn ([`detect`]). When that leads
//! back to the owner, nothing can ever wake it: the wait gets the cycle
//! instead of sleeping. The wait that closes a cycle is the one that finds
//! it, since each wait records itself before it looks; two that close one
//! cycle at the same instant look again one at a time, and only the first
//! reports it. Recording also serves the locks: what an owner waits on acts
//! for it (see [`reaches`]), and a new record wakes the waits for a lock.
//!
//! What the detection sees is the [`Node`] graph: a running task waits on
//! what its current wait waits on; a queued instance call waits on the call
//! running on its instance; a derived future (`then`, `when_done`, `join`)
//! waits on its sources; the end of a scope waits on its tasks; a pool's
//! shutdown waits on the waits of its threads. A wait on many futures
//! (`wait_any`, …) is stuck only when every one of them is; a wait for a
//! lock waits on the lock's holders. Not seen: cycles closed by a wait with
//! a deadline, blocking outside this crate (a mutex, a channel), and chains
//! longer than [`MAX_DEPTH`].

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::error::{Cycle, Error};
use crate::interrupt;
use crate::sync::{process, task_local, Mutex};

/// How far the deadlock detection follows a chain of waits.
pub(crate) const MAX_DEPTH: usize = 64;

/// Something that may wait on others: a running task, a queued instance
/// call, a derived future.
pub(crate) trait Node: Send + Sync {
    /// What this node waits on right now.
    fn waits(&self) -> Waits;
    /// A few words naming the node in a deadlock report.
    fn describe(&self) -> String;
    /// For a running task: what its current wait waits on (`None` once the
    /// wait is over).
    fn set_waiting(&self, _waits: Option<Waits>) {}
    /// For a running task: true once it was cancelled (or its outcome
    /// otherwise decided), which [`crate::cancelled`] reports.
    fn is_cancelled(&self) -> bool {
        false
    }
    /// For a task running inline on a thread that is not a pool worker: a
    /// Ctrl-C cancels it with `Err(Interrupted)` (its cleanup runs).
    fn interrupt_run(&self) {}
    /// For a running task: fails its future with `error` (a deadlock its
    /// own wait found and could not break otherwise), so that whoever
    /// waits on it goes on; its closure runs on.
    fn fail_run(&self, _error: Error) {}
    /// False for a wait on a lock: a holder that waits for a lock does not
    /// lend its own locks to the lock's holder (see [`reaches`]).
    fn lends(&self) -> bool {
        true
    }
    /// False for what a wait only lends to, beside what it waits on now
    /// (the futures a `wait_all` comes to next): the deadlock search does
    /// not follow it, the lending does.
    fn blocks(&self) -> bool {
        true
    }
    /// For a task created while something was locked: who created it, and
    /// who they acted for in turn (see [`Spawners`]).
    fn spawned_by(&self) -> Option<Spawners> {
        None
    }
}

/// Who created a task and, in turn, whom they acted for: the owners the
/// task acts for (a lock's holder lets the operations they issue through).
/// Held weakly: a spawner gone is no one's.
#[derive(Clone)]
pub(crate) struct Spawners(Arc<[std::sync::Weak<dyn Node>]>);

/// How many objects are locked in the process: while none is, a new task
/// records no spawner and spawning costs one load.
static LOCKED: AtomicUsize = AtomicUsize::new(0);

/// How far a chain of spawners is followed.
const SPAWNER_DEPTH: usize = 16;

/// Called by the lock table: `n` objects are locked now.
pub(crate) fn set_locked(n: usize) {
    LOCKED.store(n, Ordering::Relaxed);
}

/// Whom a task created now acts for, when anything is locked: whoever this
/// thread acts for, and whom that one acts for in turn.
pub(crate) fn spawners() -> Option<Spawners> {
    // Relaxed: a holder takes its lock and spawns on one thread, in order;
    // a spawn on another thread races the lock either way.
    if LOCKED.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let me = owner();
    let mut chain = vec![Arc::downgrade(&me)];
    if let Some(Spawners(above)) = me.spawned_by() {
        chain.extend(above.iter().take(SPAWNER_DEPTH - 1).cloned());
    }
    Some(Spawners(chain.into()))
}

/// True when `from` is `target`, or was created by it (or by one acting
/// for it) while something was locked.
pub(crate) fn acts_for(from: &Arc<dyn Node>, target: usize) -> bool {
    key(from) == target
        || from.spawned_by().is_some_and(|Spawners(chain)| {
            chain.iter().any(|w| {
                std::sync::Weak::as_ptr(w) as *const () as usize == target && w.strong_count() > 0
            })
        })
}

/// What a [`Node`] waits on.
#[derive(Clone, Default)]
pub(crate) enum Waits {
    /// Nothing: it runs, or it will run once a thread is free.
    #[default]
    Nothing,
    /// Every one of these must finish (a wait on one future is `All` of one).
    All(Vec<Arc<dyn Node>>),
    /// Any one of these finishing is enough.
    Any(Vec<Arc<dyn Node>>),
}

impl Waits {
    /// True when a wait on these would lend its locks to them: a wait on a
    /// future (not on a lock).
    fn lends(&self) -> bool {
        match self {
            Waits::Nothing => false,
            Waits::All(nodes) | Waits::Any(nodes) => nodes.iter().any(|n| n.lends()),
        }
    }
}

/// A node's identity: the address of its shared state.
pub(crate) fn key(node: &Arc<dyn Node>) -> usize {
    Arc::as_ptr(node) as *const () as usize
}

/// A thread that runs no task, as the wait graph sees it: it may hold
/// locks, and what it waits on decides to whom it lends them.
struct ThreadNode {
    name: String,
    waiting: Mutex<Waits>,
}

impl Node for ThreadNode {
    fn waits(&self) -> Waits {
        self.waiting.lock().clone()
    }

    fn describe(&self) -> String {
        format!("thread `{}`", self.name)
    }

    fn set_waiting(&self, waits: Option<Waits>) {
        *self.waiting.lock() = waits.unwrap_or_default();
    }
}

task_local! {
    static THREAD_NODE: RefCell<Option<Arc<dyn Node>>> = const { RefCell::new(None) };
}

/// Who this thread acts for: the task it runs (its frame), or else the
/// thread itself. Locks belong to it.
pub(crate) fn owner() -> Arc<dyn Node> {
    frame().unwrap_or_else(thread_node)
}

fn thread_node() -> Arc<dyn Node> {
    THREAD_NODE.with(|n| {
        n.borrow_mut()
            .get_or_insert_with(|| {
                let thread = std::thread::current();
                let name = thread
                    .name()
                    .map_or_else(|| format!("{:?}", thread.id()), str::to_owned);
                Arc::new(ThreadNode {
                    name,
                    waiting: Mutex::new(Waits::Nothing),
                })
            })
            .clone()
    })
}

/// True when `from` waits on the node `target`, directly or through the
/// tasks, calls and derived futures it waits on, not through locks: then
/// `target` acts for `from` and may use its locks.
pub(crate) fn reaches(from: &Arc<dyn Node>, target: usize) -> bool {
    fn walk(waits: &Waits, target: usize, seen: &mut Vec<usize>, depth: usize) -> bool {
        let (Waits::All(nodes) | Waits::Any(nodes)) = waits else {
            return false;
        };
        nodes.iter().filter(|n| n.lends()).any(|n| {
            let k = key(n);
            if k == target {
                return true;
            }
            if depth >= MAX_DEPTH || seen.contains(&k) {
                return false;
            }
            seen.push(k);
            walk(&n.waits(), target, seen, depth + 1)
        })
    }
    walk(&from.waits(), target, &mut vec![key(from)], 0)
}

/// How many waits for a lock (or operations held off by one) want to hear
/// when a new wait is recorded: it may lend them a lock.
static WATCHERS: AtomicUsize = AtomicUsize::new(0);
/// Held while a wait that found a cycle looks again and withdraws.
static RESOLVING: process::Mutex<()> = process::Mutex::new(());
/// What hears it (the lock table).
static ON_WAIT: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Makes every wait recorded while the guard lives call `hook`.
pub(crate) struct Watching(());

pub(crate) fn watch_waits(hook: fn()) -> Watching {
    ON_WAIT.get_or_init(|| hook);
    // SeqCst, here and in `recorded`: the watcher counts itself before it
    // reads what others wait on, a recorder records before it reads the
    // count, so one of them sees the other.
    WATCHERS.fetch_add(1, Ordering::SeqCst);
    Watching(())
}

impl Drop for Watching {
    fn drop(&mut self) {
        WATCHERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Called once `waits` was recorded for a frame or a thread.
fn tell_watchers(waits: &Waits) {
    if WATCHERS.load(Ordering::SeqCst) > 0 && waits.lends() {
        if let Some(hook) = ON_WAIT.get() {
            hook();
        }
    }
}

task_local! {
    /// The task this thread's stack acts for: the task it runs, or, inside
    /// an inline task, the task that ran it (which cannot go on before it).
    static FRAME: RefCell<Option<Arc<dyn Node>>> = const { RefCell::new(None) };
}

task_local! {
    /// False inside an inline task: it has no handle that could cancel it,
    /// so [`crate::cancelled`] is false there, whatever its frame.
    static CANCELLABLE: Cell<bool> = const { Cell::new(false) };
}

task_local! {
    /// Inside a bare inline task off the pools, where a Ctrl-C makes
    /// [`crate::cancelled`] true.
    static BARE: Cell<bool> = const { Cell::new(false) };
}

/// Restores the previous frame when dropped.
pub(crate) struct Entered {
    previous: Option<Option<Arc<dyn Node>>>,
    cancellable: bool,
    bare: bool,
}

/// Makes `task` the frame of this thread until the guard drops.
pub(crate) fn enter(task: Arc<dyn Node>) -> Entered {
    let previous = FRAME.with(|f| f.borrow_mut().replace(task));
    Entered {
        previous: Some(previous),
        cancellable: CANCELLABLE.with(|c| c.replace(true)),
        bare: BARE.with(|b| b.replace(false)),
    }
}

/// Runs an inline task within the current frame: it acts for that frame,
/// but [`crate::cancelled`] is false inside it.
pub(crate) fn enter_inline() -> Entered {
    Entered {
        previous: None,
        cancellable: CANCELLABLE.with(|c| c.replace(false)),
        bare: BARE.with(Cell::get),
    }
}

/// As [`enter_inline`], for a bare inline task off the pools that a Ctrl-C
/// interrupts (see [`interrupt::inline_enter`]).
pub(crate) fn enter_bare() -> Entered {
    Entered {
        previous: None,
        cancellable: CANCELLABLE.with(|c| c.replace(false)),
        bare: BARE.with(|b| b.replace(true)),
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            FRAME.with(|f| *f.borrow_mut() = previous);
        }
        let (cancellable, bare) = (self.cancellable, self.bare);
        CANCELLABLE.with(|c| c.set(cancellable));
        BARE.with(|b| b.set(bare));
    }
}

/// The task this thread acts for.
pub(crate) fn frame() -> Option<Arc<dyn Node>> {
    FRAME.with(|f| f.borrow().clone())
}

/// True inside a task that has been cancelled.
pub(crate) fn frame_cancelled() -> bool {
    if !CANCELLABLE.with(Cell::get) {
        return BARE.with(Cell::get) && interrupt::inline_hit();
    }
    FRAME.with(|f| f.borrow().as_ref().is_some_and(|task| task.is_cancelled()))
}

/// Records, while alive, what this thread's owner waits on; restores what
/// it waited on before (a wait whose detection ran a task inline).
pub(crate) struct Recorded {
    node: Arc<dyn Node>,
    previous: Waits,
}

impl Recorded {
    fn new(node: Arc<dyn Node>, waits: Waits) -> Recorded {
        let previous = node.waits();
        node.set_waiting(Some(waits));
        Recorded { node, previous }
    }
}

/// Records that this thread's owner (its frame, or the thread itself) waits
/// on `waits` until the guard drops: a wait that runs what it waits on in
/// place, or a task run inline, where the owner cannot go on before it
/// returns.
pub(crate) fn record(waits: impl FnOnce() -> Waits) -> Recorded {
    let waits = waits();
    let recorded = Recorded::new(owner(), waits.clone());
    tell_watchers(&waits);
    recorded
}

impl Drop for Recorded {
    fn drop(&mut self) {
        let previous = std::mem::take(&mut self.previous);
        let previous = match previous {
            Waits::Nothing => None,
            waits => Some(waits),
        };
        self.node.set_waiting(previous);
    }
}

/// Records what the wait of this thread's owner (its frame, or the thread
/// itself) waits on, and, with `check`, looks for a cycle back to it.
#[cold]
pub(crate) fn detect(frame: Arc<dyn Node>, waits: Waits, check: bool) -> Result<Recorded, Cycle> {
    let recorded = Recorded::new(frame.clone(), waits.clone());
    tell_watchers(&waits);
    let mut path = Vec::new();
    if check && stuck(&waits, key(&frame), &mut path, 0) {
        // Two waits closing one cycle at the same instant both find it:
        // one at a time, each looks again, and the first withdraws its
        // wait before the other looks.
        let _one = RESOLVING.lock();
        path.clear();
        if !stuck(&waits, key(&frame), &mut path, 0) {
            return Ok(recorded);
        }
        drop(recorded);
        let mut names = Vec::with_capacity(path.len() + 1);
        names.push(frame.describe());
        names.extend(path.iter().map(|n| n.describe()));
        return Err(Cycle::new(names));
    }
    Ok(recorded)
}

/// True when what `node` waits on leads back to it: a cycle that nobody
/// reported (a wait with a timeout does not look for one).
pub(crate) fn in_cycle(node: &Arc<dyn Node>) -> bool {
    stuck(&node.waits(), key(node), &mut Vec::new(), 0)
}

/// True when `waits` can only end once the node `me` goes on: `path` then
/// holds the chain from `waits` to `me` (`me` itself not included).
fn stuck(waits: &Waits, me: usize, path: &mut Vec<Arc<dyn Node>>, depth: usize) -> bool {
    match waits {
        Waits::Nothing => false,
        Waits::All(nodes) => nodes.iter().any(|n| stuck_node(n, me, path, depth)),
        Waits::Any(nodes) => {
            let start = path.len();
            let mut first = None;
            for node in nodes {
                if !stuck_node(node, me, path, depth) {
                    path.truncate(start);
                    return false;
                }
                first.get_or_insert_with(|| path[start..].to_vec());
                path.truncate(start);
            }
            match first {
                Some(chain) => {
                    path.extend(chain);
                    true
                }
                None => false,
            }
        }
    }
}

fn stuck_node(
    node: &Arc<dyn Node>,
    me: usize,
    path: &mut Vec<Arc<dyn Node>>,
    depth: usize,
) -> bool {
    if !node.blocks() {
        return false;
    }
    if key(node) == me {
        return true;
    }
    // A cycle that does not pass through `me` is somebody else's to report.
    if depth >= MAX_DEPTH || path.iter().any(|seen| key(seen) == key(node)) {
        return false;
    }
    path.push(node.clone());
    if stuck(&node.waits(), me, path, depth + 1) {
        return true;
    }
    path.pop();
    false
}
