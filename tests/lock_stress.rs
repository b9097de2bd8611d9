//! Lock stress: 8 threads lock random subsets of 6 devices and parameters,
//! named in random orders, 100,000 acquisitions in all. It finishes (no
//! deadlock), and per-object counters prove that no two holders ever
//! overlapped on one object, a device counting as all its parameters.

mod common;

use common::Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use concertina::device::{LockTarget, Lockable, Member};
use concertina::{Device, Parameter};

const THREADS: usize = 8;
const ACQUISITIONS: usize = 100_000;
/// Tasks in flight at once in the task-owned lock stress.
const WAVE: usize = 64;

fn parameter(name: &str) -> Parameter<u8> {
    Parameter::builder(name).getter(|| 0).build().unwrap()
}

/// A lockable object and the leaf slots it covers.
#[derive(Clone)]
enum Object {
    Device(Device, Vec<usize>),
    Parameter(Member, usize),
    Free(LockTarget, usize),
}

impl Object {
    fn leaves(&self) -> Vec<usize> {
        match self {
            Object::Device(_, leaves) => leaves.clone(),
            Object::Parameter(_, leaf) | Object::Free(_, leaf) => vec![*leaf],
        }
    }

    fn lockable(&self) -> &dyn Lockable {
        match self {
            Object::Device(d, _) => d,
            Object::Parameter(p, _) => p,
            Object::Free(p, _) => p,
        }
    }
}

#[test]
fn random_subsets_in_random_orders_never_deadlock_or_overlap() {
    // Leaves: 0 = a.x, 1 = a.y, 2 = b.z, 3 = free.
    let a = Device::builder("a")
        .parameter(parameter("x"))
        .parameter(parameter("y"))
        .build()
        .unwrap();
    let b = Device::builder("b")
        .parameter(parameter("z"))
        .build()
        .unwrap();
    let objects = vec![
        Object::Device(a.clone(), vec![0, 1]),
        Object::Parameter(a.member("x").unwrap(), 0),
        Object::Parameter(a.member("y").unwrap(), 1),
        Object::Device(b.clone(), vec![2]),
        Object::Parameter(b.member("z").unwrap(), 2),
        Object::Free(parameter("free").lock_target(), 3),
    ];
    let in_use: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
    let overlaps = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (objects, in_use, overlaps, done) = (
                objects.clone(),
                in_use.clone(),
                overlaps.clone(),
                done.clone(),
            );
            std::thread::spawn(move || {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                for _ in 0..ACQUISITIONS / THREADS {
                    let count = 1 + (rng.next() % 3) as usize;
                    let mut chosen: Vec<&Object> = (0..count)
                        .map(|_| &objects[(rng.next() % objects.len() as u64) as usize])
                        .collect();
                    // A random order (and duplicates) each time.
                    chosen.rotate_left((rng.next() % count as u64) as usize);
                    let lockables: Vec<&dyn Lockable> =
                        chosen.iter().map(|o| o.lockable()).collect();
                    let guard = concertina::device::lock(&lockables).unwrap();
                    let mut leaves: Vec<usize> = chosen.iter().flat_map(|o| o.leaves()).collect();
                    leaves.sort_unstable();
                    leaves.dedup();
                    for &leaf in &leaves {
                        if in_use[leaf].fetch_add(1, Ordering::SeqCst) != 0 {
                            overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    std::hint::spin_loop();
                    for &leaf in &leaves {
                        in_use[leaf].fetch_sub(1, Ordering::SeqCst);
                    }
                    drop(guard);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), ACQUISITIONS);
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two holders overlapped on one object"
    );
}

/// Tasks on a pool take locks (owned by the task), have a helper task they
/// wait on move one of their locked parameters (the lock is lent to it),
/// submit a set they do not wait on (issued by the holder, it acts for it
/// while the task holds the lock; after, it waits for the lock like any
/// other),
/// and take a second lock nested in a random order, which may close a cycle
/// with another task: that lock call returns `Deadlock` instead of hanging.
/// Every setter checks who holds its parameter: zero overlaps, zero hangs.
/// `LOCK_STRESS_TASKS` sets the number of tasks (400 by default).
#[test]
fn task_owned_locks_lent_along_waits_with_cycles_reported() {
    let tasks: usize = std::env::var("LOCK_STRESS_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    common::within(600, move || {
        let pool = common::pool(concertina::Backend::Crossbeam, 4);
        // Leaf → the id of the task whose lock covers it (0: none).
        let owner: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
        let overlaps = Arc::new(AtomicUsize::new(0));
        let leaf = |i: usize, name: &str| {
            let (owner, overlaps) = (owner.clone(), overlaps.clone());
            Parameter::<usize>::builder(name)
                .setter(move |value| {
                    // `2 id + 1`: a set lent to task `id`, which runs for it;
                    // `2 id`: a set task `id` issued, which runs for it or,
                    // once it released its lock, for nobody.
                    let (id, lent) = (value / 2, value % 2 == 1);
                    for _ in 0..2 {
                        let now = owner[i].load(Ordering::SeqCst);
                        if now != id && (lent || now != 0) {
                            overlaps.fetch_add(1, Ordering::SeqCst);
                        }
                        std::thread::yield_now();
                    }
                })
                .pool(&pool)
                .build()
                .unwrap()
        };
        let leaves = [leaf(0, "x"), leaf(1, "y"), leaf(2, "z"), leaf(3, "w")];
        let a = Device::builder("a")
            .parameter(leaves[0].clone())
            .parameter(leaves[1].clone())
            .build()
            .unwrap();
        let objects = vec![
            Object::Device(a.clone(), vec![0, 1]),
            Object::Parameter(a.member("x").unwrap(), 0),
            Object::Parameter(a.member("y").unwrap(), 1),
            Object::Free(parameter("unused").lock_target(), 9),
        ];
        let (z, w) = (leaves[2].clone(), leaves[3].clone());
        let deadlocks = Arc::new(AtomicUsize::new(0));
        // In waves: every task here may block a thread (compensated by a
        // spare), and spares stop at the pool's ceiling (256), past which a
        // queued job that the blocked ones need would find no thread.
        for wave in (0..tasks).step_by(WAVE) {
            let futures: Vec<_> = (wave..(wave + WAVE).min(tasks))
                .map(|i| {
                    let id = i + 1;
                    let (owner, overlaps, deadlocks) =
                        (owner.clone(), overlaps.clone(), deadlocks.clone());
                    let (objects, leaves, z, w) =
                        (objects.clone(), leaves.clone(), z.clone(), w.clone());
                    let helpers = pool.clone();
                    pool.spawn(move || {
                        let mut rng = Rng(0x2545_f491 ^ id as u64);
                        let mark = |covered: &[usize], mine: &mut Vec<usize>| {
                            for &l in covered {
                                if l >= 4 || mine.contains(&l) {
                                    continue;
                                }
                                if owner[l]
                                    .compare_exchange(0, id, Ordering::SeqCst, Ordering::SeqCst)
                                    .is_err()
                                {
                                    overlaps.fetch_add(1, Ordering::SeqCst);
                                }
                                mine.push(l);
                            }
                        };
                        let unmark = |mine: &[usize]| {
                            for &l in mine {
                                owner[l].store(0, Ordering::SeqCst);
                            }
                        };
                        let pick = |rng: &mut Rng| -> (Object, Vec<usize>) {
                            let o = match rng.next() % 6 {
                                4 => Object::Free(z.lock_target(), 2),
                                5 => Object::Free(w.lock_target(), 3),
                                n => objects[n as usize % objects.len()].clone(),
                            };
                            let covered = o.leaves();
                            (o, covered)
                        };
                        let (first, covered) = pick(&mut rng);
                        let outer = concertina::device::lock(&[first.lockable()]).unwrap();
                        let mut mine = Vec::new();
                        mark(&covered, &mut mine);
                        // Lent: a helper this task waits on moves a locked leaf.
                        if let Some(&l) = mine.first() {
                            let p = leaves[l].clone();
                            helpers
                                .spawn(move || p.set(2 * id + 1).result())
                                .result()
                                .unwrap()
                                .unwrap();
                        }
                        // Issued, not waited on: runs under this task's
                        // lock, or once no other lock covers the leaf.
                        let free = leaves[(rng.next() % 4) as usize].set(2 * id);
                        let (second, covered) = pick(&mut rng);
                        match concertina::device::lock(&[second.lockable()]) {
                            Ok(inner) => {
                                let before = mine.len();
                                mark(&covered, &mut mine);
                                unmark(&mine[before..]);
                                mine.truncate(before);
                                drop(inner);
                            }
                            Err(concertina::Error::Deadlock(_)) => {
                                deadlocks.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(other) => panic!("unexpected {other:?}"),
                        }
                        unmark(&mine);
                        drop(outer);
                        free
                    })
                })
                .collect();
            for f in futures {
                f.result().unwrap().result().unwrap();
            }
        }
        for p in &leaves {
            p.wait().unwrap();
        }
        eprintln!(
            "{tasks} tasks: {} lock cycles reported as Deadlock",
            deadlocks.load(Ordering::SeqCst)
        );
        assert_eq!(
            overlaps.load(Ordering::SeqCst),
            0,
            "an object had two holders at once"
        );
    });
}
