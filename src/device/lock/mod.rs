//! Locks for exclusive access to devices and parameters: one table for the
//! process, owned by tasks (or threads that run none), lent to what their
//! owner waits on, and part of the wait graph so that a lock cycle is
//! reported as [`Error::Deadlock`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::error::{DeviceError, DeviceErrorKind, Error};
use crate::graph::{self, Node, Waits};
use crate::interrupt::Wakeable;
use crate::park::{block, Blocked, Waiter};
use crate::sync::{Condvar, Mutex};

mod guard;
pub use guard::{lock, lock_timeout, LockGuard, LockTarget, Lockable};

static NEXT_NODE: AtomicU64 = AtomicU64::new(1);

/// One lockable object: a device, or a parameter (whose device, once it has
/// one, covers it).
pub(crate) struct LockNode {
    id: u64,
    pub(crate) name: String,
    pub(crate) device: OnceLock<(Arc<LockNode>, String)>,
}

impl LockNode {
    pub(crate) fn new(name: &str) -> Arc<LockNode> {
        Arc::new(LockNode {
            // Relaxed: a unique number, ordering nothing else.
            id: NEXT_NODE.fetch_add(1, Ordering::Relaxed),
            name: name.to_owned(),
            device: OnceLock::new(),
        })
    }

    fn device(&self) -> Option<&Arc<LockNode>> {
        self.device.get().map(|(node, _)| node)
    }

    /// `device.parameter`, or the bare name.
    pub(crate) fn full_name(&self) -> String {
        match self.device.get() {
            Some((_, device)) => format!("{device}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Who holds a lock: a task, or a thread that runs none (see
/// [`graph::owner`]).
#[derive(Clone)]
pub(crate) struct Owner(Arc<dyn Node>);

impl Owner {
    /// Whoever this thread acts for.
    pub(crate) fn current() -> Owner {
        Owner(graph::owner())
    }

    pub(crate) fn of(node: Arc<dyn Node>) -> Owner {
        Owner(node)
    }

    fn key(&self) -> usize {
        graph::key(&self.0)
    }

    /// True when this owner is `other`, or a task `other` created (or one
    /// acting for it did) while something was locked.
    fn acts_for(&self, other: &Owner) -> bool {
        graph::acts_for(&self.0, other.key())
    }

    /// True when this owner waits on `other` (through futures, not locks):
    /// `other` then acts for it and may use its locks.
    fn lends_to(&self, other: &Owner) -> bool {
        graph::reaches(&self.0, other.key())
    }
}

impl PartialEq for Owner {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

/// How many holds each owner has.
#[derive(Default)]
struct Counts(Vec<(Owner, usize)>);

impl Counts {
    fn add(&mut self, owner: &Owner) {
        match self.0.iter_mut().find(|(o, _)| o == owner) {
            Some((_, n)) => *n += 1,
            None => self.0.push((owner.clone(), 1)),
        }
    }

    fn remove(&mut self, owner: &Owner) {
        if let Some(i) = self.0.iter().position(|(o, _)| o == owner) {
            self.0[i].1 -= 1;
            if self.0[i].1 == 0 {
                self.0.swap_remove(i);
            }
        }
    }

    fn others<'a>(&'a self, me: &'a Owner) -> impl Iterator<Item = &'a Owner> + 'a {
        self.0.iter().map(|(o, _)| o).filter(move |o| *o != me)
    }
}

/// Locks are exclusive; operations (a get or a set) take shared holds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    Exclusive,
    Operation,
}

/// Who holds what. Locks are taken at the pace of people and motors, not in
/// hot loops: one table for the process.
#[derive(Default)]
struct Locks {
    /// Node → exclusive owner and its re-entry depth.
    held: HashMap<u64, (Owner, usize)>,
    /// Device → exclusive holds on its parameters.
    intents: HashMap<u64, Counts>,
    /// Node → operations in flight on it (for a device: on its parameters).
    operations: HashMap<u64, Counts>,
    /// Bumped whenever a hold is released or a wait is recorded that may
    /// lend a lock: waits for a lock re-examine then.
    generation: u64,
    /// Parameters whose queued operations wait for a lock: told at the next
    /// generation.
    held_off: Vec<(Weak<dyn Kick>, graph::Watching)>,
}

/// A parameter's queue, told to look again at the operations a lock held off.
pub(crate) trait Kick: Send + Sync {
    fn kick(self: Arc<Self>);
}

impl Locks {
    /// The other owners whose holds keep `me` from taking `hold` on `node`.
    fn blockers(&self, node: &LockNode, me: &Owner, hold: Hold, out: &mut Vec<Owner>) {
        let mut add = |o: &Owner| {
            if o != me && !out.contains(o) {
                out.push(o.clone());
            }
        };
        if let Some((o, _)) = self.held.get(&node.id) {
            add(o);
        }
        if let Some((o, _)) = node.device().and_then(|d| self.held.get(&d.id)) {
            add(o);
        }
        if hold == Hold::Exclusive {
            // A lock also waits for other owners' operations in flight and,
            // on a device, for other owners' locks on its parameters.
            if let Some(c) = self.operations.get(&node.id) {
                c.others(me).for_each(&mut add);
            }
            if node.device().is_none() {
                if let Some(c) = self.intents.get(&node.id) {
                    c.others(me).for_each(&mut add);
                }
            }
        }
    }

    /// Takes `hold` on `node` for `me`. An exclusive hold on a node already
    /// held (by an owner that lent it to `me`) re-enters it as that owner.
    fn take(&mut self, node: &LockNode, me: &Owner, hold: Hold) -> Owner {
        match hold {
            Hold::Exclusive => {
                let entry = self.held.entry(node.id).or_insert((me.clone(), 0));
                entry.1 += 1;
                let owner = entry.0.clone();
                graph::set_locked(self.held.len());
                if let Some(device) = node.device() {
                    self.intents.entry(device.id).or_default().add(&owner);
                }
                owner
            }
            Hold::Operation => {
                self.operations.entry(node.id).or_default().add(me);
                if let Some(device) = node.device() {
                    self.operations.entry(device.id).or_default().add(me);
                }
                me.clone()
            }
        }
    }

    fn release(&mut self, node: &LockNode, owner: &Owner, hold: Hold) {
        fn remove(map: &mut HashMap<u64, Counts>, id: u64, owner: &Owner) {
            if let Some(counts) = map.get_mut(&id) {
                counts.remove(owner);
                if counts.0.is_empty() {
                    map.remove(&id);
                }
            }
        }
        match hold {
            Hold::Exclusive => {
                if let Some((_, depth)) = self.held.get_mut(&node.id) {
                    *depth -= 1;
                    if *depth == 0 {
                        self.held.remove(&node.id);
                        graph::set_locked(self.held.len());
                    }
                }
                if let Some(device) = node.device() {
                    remove(&mut self.intents, device.id, owner);
                }
            }
            Hold::Operation => {
                remove(&mut self.operations, node.id, owner);
                if let Some(device) = node.device() {
                    remove(&mut self.operations, device.id, owner);
                }
            }
        }
    }
}

struct LockTable {
    locks: Mutex<Locks>,
    released: Condvar,
}

impl Wakeable for LockTable {
    fn wake(&self) {
        let _locks = self.locks.lock();
        self.released.notify_all();
    }
}

/// A wait for the lock table to change (a release, or a new wait that may
/// lend a lock): `edge` is the wait as the wait graph sees it.
struct LockWaiting<'a> {
    table: &'a Arc<LockTable>,
    edge: Arc<dyn Node>,
    generation: u64,
}

impl Waiter for LockWaiting<'_> {
    type State = Locks;

    fn lock(&self) -> &Mutex<Locks> {
        &self.table.locks
    }

    fn cond(&self) -> &Condvar {
        &self.table.released
    }

    fn ready(&self, locks: &Locks) -> bool {
        locks.generation != self.generation
    }

    fn target(&self) -> Arc<dyn Wakeable> {
        self.table.clone()
    }

    fn waits(&self) -> Waits {
        Waits::All(vec![self.edge.clone()])
    }
}

static TABLE: LazyLock<Arc<LockTable>> = LazyLock::new(|| {
    Arc::new(LockTable {
        locks: Mutex::new(Locks::default()),
        released: Condvar::new(),
    })
});

/// Something changed that may let a wait for a lock go on: a new
/// generation; waits wake, held-off operations are looked at again.
fn changed() {
    let held_off = {
        let mut locks = TABLE.locks.lock();
        locks.generation += 1;
        TABLE.released.notify_all();
        std::mem::take(&mut locks.held_off)
    };
    for queue in held_off
        .into_iter()
        .filter_map(|(q, _watching)| q.upgrade())
    {
        queue.kick();
    }
}

/// Who keeps a wait for a lock waiting, as the wait graph sees it: found
/// again each time the graph is followed, so that it is never stale.
struct LockWait {
    waiter: Owner,
    /// Who issued the operation waiting (see [`Attempt::issuer`]).
    issuer: Option<Owner>,
    nodes: Vec<Arc<LockNode>>,
    hold: Hold,
    names: String,
}

impl Node for LockWait {
    fn waits(&self) -> Waits {
        let attempt = Attempt {
            nodes: &self.nodes,
            me: &self.waiter,
            issuer: self.issuer.as_ref(),
            hold: self.hold,
        };
        // Read under the table's lock, followed without it (following may
        // come back to a wait for a lock).
        let holders = attempt.blockers(&TABLE.locks.lock());
        // A holder that has begun to wait on the waiter meanwhile lends it
        // the lock (or issued it): that is no edge of a cycle.
        Waits::All(
            holders
                .into_iter()
                .filter(|h| !attempt.lent_by(h))
                .map(|h| h.0)
                .collect(),
        )
    }

    fn describe(&self) -> String {
        format!("a lock on {}", self.names)
    }

    fn lends(&self) -> bool {
        false
    }
}

fn names(nodes: &[Arc<LockNode>]) -> Vec<String> {
    nodes.iter().map(|n| n.full_name()).collect()
}

/// An attempt to take holds on some objects: all at once, or none.
struct Attempt<'a> {
    nodes: &'a [Arc<LockNode>],
    me: &'a Owner,
    /// For an operation: whoever issued it. An operation issued by the
    /// holder of a lock, while it holds it, acts for it (as under Concert's
    /// `with motor:`): it runs under the lock at once, without waiting to
    /// be waited on.
    issuer: Option<&'a Owner>,
    hold: Hold,
}

/// What an attempt found.
enum Taken {
    Yes(Vec<Owner>),
    /// Held by others, at this generation.
    No(u64),
}

impl Attempt<'_> {
    /// True when `holder`, in the way, lets this attempt through: it waits
    /// on `me` (lending it its locks), or it issued this operation.
    fn lent_by(&self, holder: &Owner) -> bool {
        self.issuer.is_some_and(|i| i.acts_for(holder)) || holder.lends_to(self.me)
    }

    fn blockers(&self, locks: &Locks) -> Vec<Owner> {
        let mut out = Vec::new();
        for node in self.nodes {
            locks.blockers(node, self.me, self.hold, &mut out);
        }
        out
    }

    fn take_all(&self, locks: &mut Locks) -> Vec<Owner> {
        self.nodes
            .iter()
            .map(|n| locks.take(n, self.me, self.hold))
            .collect()
    }

    /// Takes the holds when every other owner in the way lends them to
    /// `me`. Whether an owner lends is found outside the table's lock (it
    /// reads what tasks wait on), then checked again under it.
    fn try_take(&self) -> Taken {
        loop {
            let (blockers, generation) = {
                let mut locks = TABLE.locks.lock();
                let blockers = self.blockers(&locks);
                if blockers.is_empty() {
                    return Taken::Yes(self.take_all(&mut locks));
                }
                (blockers, locks.generation)
            };
            let (lending, refusing): (Vec<Owner>, Vec<Owner>) =
                blockers.into_iter().partition(|b| self.lent_by(b));
            if !refusing.is_empty() {
                return Taken::No(generation);
            }
            let mut locks = TABLE.locks.lock();
            if self.blockers(&locks).iter().all(|b| lending.contains(b)) {
                return Taken::Yes(self.take_all(&mut locks));
            }
        }
    }
}

/// Holds taken by one call, released when dropped.
pub(crate) struct Holds {
    nodes: Vec<(Arc<LockNode>, Owner)>,
    hold: Hold,
}

impl Drop for Holds {
    fn drop(&mut self) {
        {
            let mut locks = TABLE.locks.lock();
            for (node, owner) in &self.nodes {
                locks.release(node, owner, self.hold);
            }
        }
        changed();
    }
}

fn sorted(objects: &[&dyn Lockable]) -> Vec<Arc<LockNode>> {
    let mut nodes: Vec<Arc<LockNode>> = objects.iter().map(|o| o.lock_target().0).collect();
    // One order for everybody, and each object once.
    nodes.sort_by_key(|n| n.id);
    nodes.dedup_by_key(|n| n.id);
    nodes
}

fn holds(nodes: Vec<Arc<LockNode>>, owners: Vec<Owner>, hold: Hold) -> Holds {
    Holds {
        nodes: nodes.into_iter().zip(owners).collect(),
        hold,
    }
}

/// Takes `hold` on `node` for the operation `me`, issued by `issuer`, when
/// nothing is in the way (a lock of its issuer is not); otherwise registers
/// `queue` to be kicked when something changes and returns what holds the
/// operation off (for the wait graph).
pub(crate) fn try_operation(
    node: &Arc<LockNode>,
    me: &Owner,
    issuer: &Owner,
    queue: Weak<dyn Kick>,
) -> Result<Holds, Arc<dyn Node>> {
    let nodes = std::slice::from_ref(node);
    // Counted before anything is read: a wait recorded from here on tells.
    let watching = graph::watch_waits(changed);
    loop {
        let attempt = Attempt {
            nodes,
            me,
            issuer: Some(issuer),
            hold: Hold::Operation,
        };
        match attempt.try_take() {
            Taken::Yes(owners) => return Ok(holds(nodes.to_vec(), owners, Hold::Operation)),
            Taken::No(generation) => {
                let mut locks = TABLE.locks.lock();
                if locks.generation != generation {
                    continue;
                }
                locks.held_off.push((queue, watching));
                return Err(Arc::new(LockWait {
                    waiter: me.clone(),
                    issuer: Some(issuer.clone()),
                    nodes: nodes.to_vec(),
                    hold: Hold::Operation,
                    names: node.full_name(),
                }));
            }
        }
    }
}

/// Takes `hold` on every object for `me` (an operation issued by `issuer`,
/// see [`try_operation`]), waiting as long as needed (up to `timeout`).
pub(crate) fn acquire(
    objects: &[&dyn Lockable],
    timeout: Option<Duration>,
    me: &Owner,
    issuer: Option<&Owner>,
    hold: Hold,
) -> Result<Holds, Error> {
    let nodes = sorted(objects);
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let table = &*TABLE;
    let _watching = graph::watch_waits(changed);
    loop {
        let attempt = Attempt {
            nodes: &nodes,
            me,
            issuer,
            hold,
        };
        let generation = match attempt.try_take() {
            Taken::Yes(owners) => return Ok(holds(nodes, owners, hold)),
            Taken::No(generation) => generation,
        };
        let edge: Arc<dyn Node> = Arc::new(LockWait {
            waiter: me.clone(),
            issuer: issuer.cloned(),
            nodes: nodes.clone(),
            hold,
            names: names(&nodes).join(", "),
        });
        let waiting = LockWaiting {
            table,
            edge,
            generation,
        };
        match block(&waiting, deadline) {
            Blocked::Ready => {}
            Blocked::TimedOut => {
                return Err(DeviceError::error(DeviceErrorKind::LockTimeout {
                    names: names(&nodes),
                    timeout: timeout.unwrap_or(Duration::MAX),
                }));
            }
            Blocked::Interrupted(registration) => {
                drop(registration);
                return Err(Error::Interrupted);
            }
            Blocked::Deadlock(error) => return Err(error),
        }
    }
}
