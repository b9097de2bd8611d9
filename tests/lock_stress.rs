//! Lock stress: 8 threads lock random subsets of 6 devices and parameters,
//! named in random orders, 100,000 acquisitions in all. It finishes (no
//! deadlock), and per-object counters prove that no two holders ever
//! overlapped on one object, a device counting as all its parameters.

mod common;

use common::Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use concertina::{Device, Lockable, Parameter, ParameterRef};

const THREADS: usize = 8;
const ACQUISITIONS: usize = 100_000;

fn parameter(name: &str) -> Parameter<u8> {
    Parameter::builder(name).getter(|| 0).build().unwrap()
}

/// A lockable object and the leaf slots it covers.
#[derive(Clone)]
enum Object {
    Device(Device, Vec<usize>),
    Parameter(ParameterRef, usize),
    Free(Parameter<u8>, usize),
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
        Object::Parameter(a.parameter_ref("x").unwrap(), 0),
        Object::Parameter(a.parameter_ref("y").unwrap(), 1),
        Object::Device(b.clone(), vec![2]),
        Object::Parameter(b.parameter_ref("z").unwrap(), 2),
        Object::Free(parameter("free"), 3),
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
                    let guard = concertina::lock(&lockables).unwrap();
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
