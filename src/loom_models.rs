//! Model-checked interleavings (`RUSTFLAGS="--cfg loom" cargo test --lib
//! --release loom_`): loom runs each model under every schedule of its
//! threads up to `LOOM_MAX_PREEMPTIONS` preemptions, with the task state's
//! mutex, condvar and atomics replaced by loom's (src/sync.rs).

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

use loom::sync::atomic::AtomicUsize;
use loom::thread;

use crate::task::cell::Task;
use crate::task::{queued, run_task};
use crate::{wait_any, Backend, Error, Future, Pool};

/// A value that counts how many were made and how many dropped.
struct Counted(Arc<Counts>);

#[derive(Default)]
struct Counts {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

impl Counted {
    fn new(counts: &Arc<Counts>) -> Self {
        counts.made.fetch_add(1, SeqCst);
        Counted(counts.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, SeqCst);
    }
}

/// A pending task with a counted cleanup, completed by a thread of its own
/// with a counted value.
struct Racing {
    future: Future<Counted>,
    worker: thread::JoinHandle<()>,
    counts: Arc<Counts>,
    cleanups: Arc<AtomicUsize>,
}

fn racing_task() -> Racing {
    let counts = Arc::new(Counts::default());
    let cleanups = Arc::new(AtomicUsize::new(0));
    let (future, inner) = Future::<Counted>::pending();
    let cleanup = cleanups.clone();
    let future = future.on_cancel(move || {
        cleanup.fetch_add(1, SeqCst);
    });
    let made = counts.clone();
    let worker = thread::spawn(move || run_task(inner, || Ok(Counted::new(&made)), |_| ()));
    Racing {
        future,
        worker,
        counts,
        cleanups,
    }
}

/// A task completing, a cancel from another thread, an `on_done`
/// registration and a wait, all at once: the cleanup runs exactly when the
/// cancel wins, the callback runs once, the wait wakes with the value or
/// with `Cancelled`, and every value made is dropped exactly once.
#[test]
fn loom_complete_cancel_wait_and_callback() {
    loom::model(|| {
        let Racing {
            future,
            worker,
            counts,
            cleanups,
        } = racing_task();
        let callbacks = Arc::new(AtomicUsize::new(0));
        let handle = future.cancel_handle();
        let canceller = thread::spawn(move || handle.cancel());
        let callback = callbacks.clone();
        future.on_done(move |_| {
            callback.fetch_add(1, SeqCst);
        });

        let outcome = future.result();
        let won = canceller.join().unwrap();
        worker.join().unwrap();
        match outcome {
            Ok(value) => {
                assert!(!won, "a cancel that won must not deliver the value");
                drop(value);
            }
            Err(Error::Cancelled) => assert!(won, "`Cancelled` without a winning cancel"),
            Err(other) => panic!("unexpected outcome {other:?}"),
        }
        assert_eq!(cleanups.load(SeqCst), usize::from(won));
        assert_eq!(callbacks.load(SeqCst), 1);
        assert!(counts.made.load(SeqCst) <= 1);
        assert_eq!(counts.made.load(SeqCst), counts.dropped.load(SeqCst));
    });
}

/// The handle dropped while the task completes and a cancel races it:
/// nothing leaks and the cleanup runs at most once.
#[test]
fn loom_handle_dropped_while_completing() {
    loom::model(|| {
        let Racing {
            future,
            worker,
            counts,
            cleanups,
        } = racing_task();
        let handle = future.cancel_handle();
        drop(future);
        let won = handle.cancel();
        worker.join().unwrap();
        drop(handle);
        assert_eq!(cleanups.load(SeqCst), usize::from(won));
        assert_eq!(counts.made.load(SeqCst), counts.dropped.load(SeqCst));
    });
}

/// Two threads queue calls on one instance while its queue drains on
/// whichever caller found it idle (the inline pool runs the drain on the
/// caller): no call is lost or run twice, each thread's calls keep their
/// order, and every future completes (a lost wake-up deadlocks the model).
#[test]
fn loom_instance_queue_hand_off() {
    loom::model(|| {
        let pool = Pool::builder()
            .backend(Backend::Inline)
            .ctrlc(false)
            .build()
            .unwrap();
        let model = pool.instance(Vec::<u32>::new());
        let other = model.clone();
        let caller = thread::spawn(move || {
            let first = other.spawn(|log| log.push(1));
            let second = other.spawn(|log| log.push(2));
            (first, second)
        });
        let mine = model.spawn(|log| log.push(10));
        let (first, second) = caller.join().unwrap();
        for call in [first, second, mine] {
            call.result().unwrap();
        }
        let log = model.call(|log| log.clone()).unwrap();
        let mut sorted = log.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 10], "every call ran exactly once: {log:?}");
        let at = |n| log.iter().position(|&x| x == n).unwrap();
        assert!(
            at(1) < at(2),
            "calls of one thread kept their order: {log:?}"
        );
    });
}

/// `wait_any` while two tasks complete on two threads and one is cancelled:
/// it wakes, and the index it returns names a future that is done.
#[test]
fn loom_wait_any_wakes_on_the_first() {
    loom::model(|| {
        let (a, inner_a) = Future::<u32>::pending();
        let (b, inner_b) = Future::<u32>::pending();
        let worker = thread::spawn(move || run_task(inner_a, || Ok(1), |_| ()));
        let handle = b.cancel_handle();
        let canceller = thread::spawn(move || {
            handle.cancel();
            drop(inner_b);
        });
        let first = wait_any([a, b]).expect("two futures to wait on");
        let other = first.rest.into_iter().next().expect("the other one");
        worker.join().unwrap();
        canceller.join().unwrap();
        let (a, b) = match first.index {
            0 => (first.outcome, other.result()),
            _ => (other.result(), first.outcome),
        };
        assert_eq!(a, Ok(1));
        assert_eq!(b, Err(Error::Cancelled));
    });
}

/// A task whose closure waits beside its state, taken by two runners at
/// once (the pool's job and a waiting worker claiming it) while a third
/// thread cancels: the closure runs at most once, is dropped exactly once,
/// runs not at all when the cancel won before it started, and the wait
/// wakes with the matching outcome.
#[test]
fn loom_queued_closure_claimed_twice_and_cancelled() {
    loom::model(|| {
        let counts = Arc::new(Counts::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let captured = Counted::new(&counts);
        let ran = runs.clone();
        let task = queued(move || {
            let _keep = &captured;
            ran.fetch_add(1, SeqCst);
            Ok(5_u32)
        });
        let future = Future::from_shared(task.clone());
        let other = task.clone();
        let job = thread::spawn(move || other.run_here());
        let handle = future.cancel_handle();
        let canceller = thread::spawn(move || handle.cancel());
        task.clone().run_here();
        let outcome = future.result();
        let won = canceller.join().unwrap();
        job.join().unwrap();
        let ran = runs.load(SeqCst);
        assert!(ran <= 1, "the closure ran {ran} times");
        match outcome {
            Ok(5) => assert!(!won && ran == 1),
            Err(Error::Cancelled) => assert!(won),
            other => panic!("unexpected outcome {other:?}"),
        }
        assert_eq!(
            counts.dropped.load(SeqCst),
            1,
            "the closure was dropped exactly once"
        );
    });
}

/// A submission racing the pool's shutdown (`src/pool/intake.rs`): a
/// submission accepted is in what the shutdown drains, a refused one is
/// not, and one that begins after `is_shutdown()` turned true is refused.
#[test]
fn loom_close_versus_submit() {
    use crate::pool::intake::{Intake, OPEN};
    use crate::sync::{AtomicU8, Mutex};

    loom::model(|| {
        let closing = Arc::new(AtomicU8::new(OPEN));
        let queue = Arc::new(Mutex::new(Vec::new()));
        let intake = Arc::new(Intake::new(queue));
        let (c, i) = (closing.clone(), intake.clone());
        let submitter = thread::spawn(move || {
            let saw_closed = c.load(SeqCst) != OPEN;
            let accepted = i
                .submit(&c, 7_u32, |queue, work| queue.lock().push(work))
                .is_ok();
            (saw_closed, accepted)
        });
        // The drain: what the backend held when the shutdown took it out.
        let drained: Vec<u32> = intake
            .close(&closing, 1)
            .map(|queue| queue.lock().clone())
            .unwrap_or_default();
        let (saw_closed, accepted) = submitter.join().unwrap();
        assert!(
            !(saw_closed && accepted),
            "accepted after is_shutdown() was true"
        );
        assert_eq!(
            accepted,
            drained == [7],
            "accepted exactly when drained (drained: {drained:?})"
        );
        assert!(intake.close(&closing, 2).is_none(), "taken out once");
    });
}

/// A queued item that counts its runs and its rejections.
struct Counter(AtomicUsize);

impl crate::worker::Runnable for Counter {
    fn run_from_queue(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }

    fn reject(self: Arc<Self>) {}
}

/// Compensation (src/pool/spare.rs): a spare waiting at the gate (or not
/// yet), a worker that blocks in a wait for the queued item (only a spare
/// can run it meanwhile), then wakes, and the pool shut down. The spare is
/// woken when it is owed (a lost wake-up leaves the worker waiting for
/// ever: loom reports it), runs the item once, and retires; the counts
/// return to zero whatever the order.
#[test]
fn loom_spare_entitlement() {
    use crate::pool::spare::{SpareConfig, Spares};
    loom::model(|| {
        let (lane, queue) = crossbeam_channel::unbounded::<crate::worker::Queued>();
        let spares = Spares::new(
            SpareConfig {
                name: "model".into(),
                threads: 1,
                stack_size: None,
                // No thread is spawned: the model's spare is the only one.
                max: 0,
                keep_alive: std::time::Duration::from_secs(1),
            },
            queue.clone(),
        );
        let item = Arc::new(Counter(AtomicUsize::new(0)));
        lane.send(item.clone()).unwrap();
        // Closed lane: an owed spare that finds it empty retires at once.
        drop(lane);
        let spare = {
            let spares = spares.clone();
            thread::spawn(move || spares.serve_here())
        };
        spares.blocked();
        while item.0.load(SeqCst) == 0 {
            thread::yield_now();
        }
        spares.unblocked();
        spares.close();
        spare.join().unwrap();
        assert_eq!(item.0.load(SeqCst), 1, "the item ran once");
        assert_eq!(queue.try_iter().count(), 0);
        assert_eq!(spares.counts(), (0, 0, 0));
    });
}
