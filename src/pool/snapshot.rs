//! "Where is my program stuck?": a snapshot of the runtime — every pool
//! with its counts, every thread asleep in a wait with what it waits for,
//! down the chain of what that waits for in turn, cycles marked — and its
//! print on SIGQUIT (Ctrl-\) when `CONCERTINA_SNAPSHOT_ON_SIGQUIT=1`.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::graph::{self, Node, Waits};
use crate::park;
use crate::pool::{Backend, Pool, PoolStats, Shared};

/// Every pool built, for a snapshot of the runtime.
static POOLS: crate::sync::process::Mutex<Vec<Weak<Shared>>> =
    crate::sync::process::Mutex::new(Vec::new());

/// Counts a new pool in.
pub(super) fn register(shared: &Arc<Shared>) {
    let mut all = POOLS.lock();
    // The dropped ones go when the list is about to grow: O(1) a pool.
    if all.len() == all.capacity() {
        all.retain(|p| p.strong_count() > 0);
    }
    all.push(Arc::downgrade(shared));
}

/// Every pool alive now, oldest first.
fn all() -> Vec<Pool> {
    POOLS
        .lock()
        .iter()
        .filter_map(Weak::upgrade)
        .map(|shared| Pool { shared })
        .collect()
}

/// How far down a chain of waits a snapshot follows.
const DEPTH: usize = 8;

/// The runtime at one instant ([`snapshot`]): its pools, and the threads
/// asleep in a wait. `Display` prints it for a person.
///
/// # Examples
///
/// ```
/// let pool = concertina::Pool::builder().name("detectors").threads(1).build()?;
/// let snapshot = concertina::snapshot();
/// assert!(snapshot.pools.iter().any(|p| p.name == "detectors"));
/// println!("{snapshot}");
/// # drop(pool);
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Snapshot {
    /// Every pool alive, oldest first.
    pub pools: Vec<PoolSnapshot>,
    /// Every thread asleep in a wait of this crate.
    pub waits: Vec<WaitSnapshot>,
}

/// A pool in a [`Snapshot`].
///
/// # Examples
///
/// ```
/// use concertina::{Backend, Pool};
///
/// let _pool = Pool::builder().name("motors").threads(2).backend(Backend::Crossbeam).build()?;
/// let motors = concertina::snapshot().pools.into_iter().find(|p| p.name == "motors").unwrap();
/// assert_eq!(motors.stats.threads, 2);
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PoolSnapshot {
    /// Its name.
    pub name: String,
    /// Its backend.
    pub backend: Backend,
    /// Its counts ([`Pool::stats`]).
    pub stats: PoolStats,
}

/// A thread asleep in a wait, in a [`Snapshot`].
///
/// # Examples
///
/// ```
/// let snapshot = concertina::snapshot();
/// for wait in &snapshot.waits {
///     println!("{} waits for {:?} ({:?} so far)", wait.thread, wait.chain, wait.blocked_for);
/// }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WaitSnapshot {
    /// The thread's name (or its id).
    pub thread: String,
    /// Whom it waits for: the task or call it runs, or the thread itself.
    pub waiter: String,
    /// How long it has been asleep.
    pub blocked_for: Duration,
    /// What it waits on, then what that waits on, and so on: each with its
    /// depth (1 for what the waiter waits on directly).
    pub chain: Vec<(usize, String)>,
    /// The chain comes back to the waiter: a deadlock.
    pub in_cycle: bool,
}

/// A snapshot of the runtime now: every pool with its counts, and every
/// thread asleep in a wait of this crate (a `result()`, a lock, an
/// instance's call, a parameter's operation, a remote call) with what it
/// waits for — the task, call or lock — and what that waits for in turn.
/// It never blocks the runtime: each piece is read under its own short
/// lock, so the picture is of nearly one instant.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// // Threads of its own: also under `CONCERTINA_DISABLE_ASYNC=1`.
/// let pool = concertina::Pool::builder().name("sim").threads(1).backend(concertina::Backend::Crossbeam).build()?;
/// let (release, gate) = std::sync::mpsc::channel::<()>();
/// let step = pool.spawn(move || gate.recv().unwrap());
/// let waiter = std::thread::Builder::new().name("analysis".into()).spawn(move || step.result())?;
/// let shows_it = || concertina::snapshot().waits.iter().any(|w| w.thread == "analysis");
/// while !shows_it() { std::thread::sleep(Duration::from_millis(1)) }
/// let text = concertina::snapshot().to_string();
/// assert!(text.contains("thread `analysis`"), "{text}");
/// release.send(()).unwrap();
/// waiter.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn snapshot() -> Snapshot {
    let pools = all()
        .iter()
        .map(|pool| PoolSnapshot {
            name: pool.name().to_owned(),
            backend: pool.backend(),
            stats: pool.stats(),
        })
        .collect();
    let waits = park::sleepers()
        .into_iter()
        .map(|(thread, owner, blocked_for)| WaitSnapshot {
            thread: thread
                .name()
                .map_or_else(|| format!("{:?}", thread.id()), str::to_owned),
            waiter: owner.describe(),
            blocked_for,
            chain: chain(&owner),
            in_cycle: graph::in_cycle(&owner),
        })
        .collect();
    Snapshot { pools, waits }
}

/// What `owner` waits on, depth first, each node once.
fn chain(owner: &Arc<dyn Node>) -> Vec<(usize, String)> {
    fn walk(waits: &Waits, depth: usize, seen: &mut Vec<usize>, out: &mut Vec<(usize, String)>) {
        let (nodes, any) = match waits {
            Waits::Nothing => return,
            Waits::All(nodes) => (nodes, false),
            Waits::Any(nodes) => (nodes, true),
        };
        for node in nodes {
            let key = graph::key(node);
            let again = seen.contains(&key);
            let mut what = node.describe();
            if any {
                what.push_str(" (any one of these)");
            }
            if again {
                what.push_str(" (again: a cycle)");
            }
            out.push((depth, what));
            if again || depth >= DEPTH {
                continue;
            }
            seen.push(key);
            walk(&node.waits(), depth + 1, seen, out);
        }
    }
    let mut out = Vec::new();
    walk(&owner.waits(), 1, &mut vec![graph::key(owner)], &mut out);
    out
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "concertina snapshot: {} pool(s), {} blocked wait(s)",
            self.pools.len(),
            self.waits.len()
        )?;
        for pool in &self.pools {
            let s = &pool.stats;
            writeln!(
                f,
                "pool `{}` ({:?}): {} threads, {} spare, {} queued, {} running, {} blocked; \
                 {} submitted, {} completed, {} panicked, {} cancelled, {} rejected",
                pool.name,
                pool.backend,
                s.threads,
                s.spare_threads,
                s.queued,
                s.running,
                s.blocked,
                s.submitted,
                s.completed,
                s.panicked,
                s.cancelled,
                s.rejected
            )?;
        }
        for wait in &self.waits {
            write!(
                f,
                "thread `{}` blocked for {:.1?}: {}",
                wait.thread, wait.blocked_for, wait.waiter
            )?;
            if wait.in_cycle {
                f.write_str(" [DEADLOCK: its waits come back to it]")?;
            }
            writeln!(f)?;
            for (depth, what) in &wait.chain {
                let verb = if *depth == 1 {
                    "waits on"
                } else {
                    "which waits on"
                };
                writeln!(f, "{:indent$}{verb} {what}", "", indent = 2 * depth)?;
            }
        }
        Ok(())
    }
}

/// Prints a [`snapshot`] to stderr on every SIGQUIT (Ctrl-\ in a
/// terminal), the program going on, when `CONCERTINA_SNAPSHOT_ON_SIGQUIT`
/// asks for it (read by every pool build; installed once).
#[cfg(all(unix, not(loom)))]
pub(crate) fn print_on_sigquit() {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        let Ok(mut signals) = signal_hook::iterator::Signals::new([signal_hook::consts::SIGQUIT])
        else {
            eprintln!("concertina: cannot catch SIGQUIT; no snapshots on Ctrl-\\");
            return;
        };
        let started = std::thread::Builder::new()
            .name("concertina-snapshot".into())
            .spawn(move || {
                for _ in signals.forever() {
                    eprint!("{}", snapshot());
                }
            });
        if let Err(e) = started {
            eprintln!("concertina: cannot start the snapshot thread: {e}");
        }
    });
}

/// Snapshots on SIGQUIT need a Unix process.
#[cfg(not(all(unix, not(loom))))]
pub(crate) fn print_on_sigquit() {}
