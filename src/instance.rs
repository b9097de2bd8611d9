//! `Instance<C>`: calls on one value run strictly in order, one at a time,
//! on a shared pool, without a thread of their own (OMUSE's asynchronous
//! calls on a code instance): a [serial queue](crate::serial) whose items
//! are calls on the value.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use crate::error::Error;
use crate::future::Future;
use crate::global;
use crate::graph::{Node, Waits};
use crate::pool::Pool;
use crate::serial::{Kind, Serial, State};
use crate::sync::{AtomicBool, Mutex};
use crate::task::{self, phase, run_task, Queue as CallQueue, Watchable};
use crate::trace;

/// A value whose calls run in submission order, one at a time, on a pool.
///
/// The queue is an actor without a thread: while calls are queued, one job
/// on the pool runs them back to back, so the next call starts as soon as
/// the previous one finishes, and a hundred thousand idle instances cost no
/// threads. A panicking or cancelled call fails only its own future; the
/// queue goes on. `Instance` is a cheap, cloneable handle.
///
/// # Examples
///
/// ```
/// use concertina::Instance;
///
/// struct Heat { t: f64, energy: f64 }
/// impl Heat {
///     fn evolve(&mut self, t_end: f64) { self.energy *= 0.5_f64.powf(t_end - self.t); self.t = t_end; }
/// }
///
/// let model = Instance::new(Heat { t: 0.0, energy: 8.0 });
/// let steps: Vec<_> = (1..=3).map(|i| model.spawn(move |m| m.evolve(f64::from(i)))).collect();
/// // A synchronous call waits for every call queued before it.
/// assert_eq!(model.call(|m| (m.t, m.energy))?, (3.0, 1.0));
/// assert!(steps.iter().all(|s| s.done()));
/// # Ok::<(), concertina::Error>(())
/// ```
pub struct Instance<C> {
    shared: Arc<Serial<Calls<C>>>,
}

impl<C> Clone for Instance<C> {
    fn clone(&self) -> Self {
        Instance {
            shared: self.shared.clone(),
        }
    }
}

/// An instance's side of its serial queue: the value its calls run on.
struct Calls<C> {
    value: Mutex<C>,
    poisoned: AtomicBool,
}

type Run<C> = Box<dyn FnOnce(&mut C, &AtomicBool) + Send>;

struct Call<C> {
    /// Runs the call on the value, setting the flag when it panics.
    run: Run<C>,
    task: Arc<dyn Watchable>,
    /// Not runnable until set (a dependency not finished yet), with the
    /// dependency (for the deadlock detection).
    gate: Option<(Arc<AtomicBool>, Weak<dyn Watchable>)>,
}

impl<C> Call<C> {
    /// A call may leave the queue when its dependency finished, or when it
    /// was cancelled (it is then skipped).
    fn runnable(&self) -> bool {
        // Acquire: pairs with the Release store made once the dependency's
        // outcome was stored for this call.
        self.gate
            .as_ref()
            .is_none_or(|(g, _)| g.load(Ordering::Acquire))
            || phase::is_decided(self.task.phase())
    }
}

/// A queue held for a synchronous call that runs on its caller's thread:
/// nothing runs meanwhile, and the calls queued behind wait on the holder.
struct Hold {
    token: Arc<()>,
    holder: Arc<dyn Node>,
}

/// Lets the queue go on once the synchronous call is over (or failed
/// before its turn came, or unwound).
struct Release<'a, C: Send + 'static> {
    queue: &'a Arc<Serial<Calls<C>>>,
    token: Weak<()>,
}

impl<C: Send + 'static> Drop for Release<'_, C> {
    fn drop(&mut self) {
        let mut state = self.queue.state.lock();
        let ours = state
            .flags
            .as_ref()
            .is_some_and(|h| Weak::ptr_eq(&Arc::downgrade(&h.token), &self.token));
        if ours {
            let hold = state.flags.take();
            drop(state);
            drop(hold);
            self.queue.kick();
        }
    }
}

/// Marks the instance poisoned when a call panicked, before its future is
/// published, so that whoever sees the failure also sees the mark.
fn note_panic<R>(outcome: &Result<R, Error>, poisoned: &AtomicBool) {
    if matches!(outcome, Err(Error::Panicked(_))) {
        // Release: pairs with the Acquire in `is_poisoned()`; published before
        // the failed call's outcome, whose waiters then see the mark.
        poisoned.store(true, Ordering::Release);
    }
}

impl<C: Send + 'static> Instance<C> {
    /// Wraps `value`; its calls run on the [default pool](crate::default_pool).
    ///
    /// When the default pool cannot be built (a bad `CONCERTINA_*` value),
    /// every call fails with that [`Error::Config`].
    ///
    /// # Examples
    ///
    /// ```
    /// let counter = concertina::Instance::new(0u32);
    /// counter.spawn(|n| *n += 1);
    /// assert_eq!(counter.call(|n| *n)?, 1);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn new(value: C) -> Self {
        Instance::with_pool(global::default_pool().cloned(), value)
    }

    pub(crate) fn with_pool(pool: Result<Pool, Error>, value: C) -> Self {
        Instance {
            shared: Serial::new(
                pool,
                Calls {
                    value: Mutex::new(value),
                    poisoned: AtomicBool::new(false),
                },
            ),
        }
    }

    /// Queues `f` to run on the value after every call submitted before it,
    /// and returns the future of its result.
    ///
    /// # Examples
    ///
    /// ```
    /// let log = concertina::Instance::new(Vec::new());
    /// let futures: Vec<_> = (0..10).map(|i| log.spawn(move |v: &mut Vec<i32>| { v.push(i); i })).collect();
    /// let values: Vec<i32> = futures.into_iter().map(|f| f.result().unwrap()).collect();
    /// assert_eq!(values, (0..10).collect::<Vec<_>>());
    /// assert_eq!(log.call(|v| v.clone())?, (0..10).collect::<Vec<_>>(), "ran in submission order");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn spawn<R, F>(&self, f: F) -> Future<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut C) -> R + Send + 'static,
    {
        let inner = task::on_queue(self.queue_ref());
        let future = Future::from_shared(inner.clone());
        let task: Arc<dyn Watchable> = inner.clone();
        let run: Run<C> = Box::new(move |value: &mut C, poisoned: &AtomicBool| {
            let _span = trace::instance_call(std::any::type_name::<C>(), trace::next_id());
            run_task(
                inner,
                || Ok(f(value)),
                |outcome| note_panic(outcome, poisoned),
            );
        });
        self.submit(Call {
            run,
            task,
            gate: None,
        });
        future
    }

    /// Queues `f` to run once `dependency` has finished, with its value, in
    /// this instance's order: calls submitted after this one wait for it
    /// (AMUSE's `async_dependency` and requests passed as arguments).
    ///
    /// When the dependency fails, `f` never runs and the returned future
    /// fails with [`Error::DependencyFailed`] carrying the cause; the queue
    /// goes on. To wait for a future without taking its value, pass
    /// [`Future::when_done`].
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::Instance;
    ///
    /// let ocean = Instance::new(15.0_f64);
    /// let atmosphere = Instance::new(20.0_f64);
    /// let air = atmosphere.spawn(|t| *t);
    /// let coupled = ocean.spawn_after(air, |sea, air| { *sea = (*sea + air) / 2.0; *sea });
    /// assert_eq!(coupled.result()?, 17.5);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn spawn_after<D, R, F>(&self, dependency: Future<D>, f: F) -> Future<R>
    where
        D: Send + 'static,
        R: Send + 'static,
        F: FnOnce(&mut C, D) -> R + Send + 'static,
    {
        let inner = task::on_queue(self.queue_ref());
        let future = Future::from_shared(inner.clone());
        let task: Arc<dyn Watchable> = inner.clone();
        let gate = Arc::new(AtomicBool::new(false));
        let dependency = dependency.into_task();
        let waited: Arc<dyn Watchable> = dependency.clone();
        let dependency = Future::from_shared(dependency);
        let input: Arc<Mutex<Option<Result<D, Error>>>> = Arc::new(Mutex::new(None));
        let taken = input.clone();
        let run: Run<C> =
            Box::new(
                move |value: &mut C, poisoned: &AtomicBool| match taken.lock().take() {
                    Some(Ok(d)) => {
                        let _span =
                            trace::instance_call(std::any::type_name::<C>(), trace::next_id());
                        run_task(
                            inner,
                            || Ok(f(value, d)),
                            |outcome| note_panic(outcome, poisoned),
                        )
                    }
                    Some(Err(cause)) => {
                        inner.settle(Err(Error::DependencyFailed(Box::new(cause))), false);
                    }
                    // Skipped while still waiting: the call was cancelled.
                    None => {}
                },
            );
        self.submit(Call {
            run,
            task,
            gate: Some((gate.clone(), Arc::downgrade(&waited))),
        });
        drop(waited);
        // A cancelled call must not hold the queue until its dependency ends.
        let on_cancel = self.clone();
        future.on_done(move |_| on_cancel.kick());
        let on_ready = self.clone();
        dependency.on_outcome(move |outcome| {
            *input.lock() = Some(outcome);
            // Release: the input stored above is seen by the drain that
            // reads the gate with Acquire.
            gate.store(true, Ordering::Release);
            on_ready.kick();
        });
        future
    }

    /// Runs `f` after every call queued before it and waits for its result
    /// (a synchronous call implicitly waits for the asynchronous ones).
    ///
    /// `f` runs on the calling thread once the call's turn has come, the
    /// queue held for it meanwhile (the calls submitted after it wait), so it
    /// may borrow from the caller's stack, as a [`scope`](crate::scope()) task
    /// does: neither `f` nor `R` need be `Send` or `'static`.
    ///
    /// # Errors
    ///
    /// The failure of `f` itself ([`Error::Panicked`]: the instance is then
    /// [poisoned](Instance::is_poisoned));
    /// [`Error::Shutdown`] when the instance's pool is shut down; and
    /// [`Error::Deadlock`] when called from inside a call on this same
    /// instance (or from a task such a call waits on), where waiting could
    /// never end.
    ///
    /// # Examples
    ///
    /// ```
    /// let model = concertina::Instance::new(vec![1.0_f64, 2.0, 3.0]);
    /// model.spawn(|field| field.iter_mut().for_each(|x| *x *= 2.0));
    /// let weights = vec![0.5, 0.25, 0.25]; // borrowed, not moved
    /// let weighted: f64 = model.call(|field| field.iter().zip(&weights).map(|(x, w)| x * w).sum())?;
    /// assert_eq!(weighted, 3.5);
    /// assert_eq!(weights.len(), 3);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn call<R, F>(&self, f: F) -> Result<R, Error>
    where
        F: FnOnce(&mut C) -> R,
    {
        // The call's turn: an item that holds the queue for this thread.
        let hold = Hold {
            token: Arc::new(()),
            holder: crate::graph::owner(),
        };
        let release = Release {
            queue: &self.shared,
            token: Arc::downgrade(&hold.token),
        };
        // An idle queue is held at once; else the turn is a call queued
        // behind the others, which holds the queue when it runs.
        let mut hold = Some(hold);
        // (A pool shut down or not built refuses it, as a queued call.)
        let open = self.shared.pool.as_ref().is_ok_and(|p| !p.is_shutdown());
        let held = open
            && self.shared.if_idle(|flags| {
                // Held by another synchronous call: this one queues.
                flags.is_none() && {
                    *flags = hold.take();
                    true
                }
            });
        if !held {
            let hold = hold.take().expect("not taken when not idle");
            let queue = Arc::downgrade(&self.shared);
            self.spawn(move |_: &mut C| {
                if let Some(queue) = queue.upgrade() {
                    queue.state.lock().flags = Some(hold);
                }
            })
            .result()?;
        }
        let calls = &self.shared.kind;
        let outcome = {
            let mut value = calls.value.lock();
            let _span = trace::instance_call(std::any::type_name::<C>(), trace::next_id());
            // As a task's: the panic becomes its error (and its event).
            crate::task::running::catch(|| Ok(f(&mut value))).0
        };
        note_panic(&outcome, &calls.poisoned);
        drop(release);
        outcome
    }

    /// Waits until every call submitted before this one has finished.
    ///
    /// # Errors
    ///
    /// [`Error::Deadlock`] from inside a call on this instance; the errors of
    /// the pool ([`Error::Shutdown`], [`Error::Config`]). Failures of the
    /// calls themselves are reported at their own futures, not here.
    ///
    /// # Examples
    ///
    /// ```
    /// let model = concertina::Instance::new(0);
    /// let step = model.spawn(|n| *n += 1);
    /// model.wait()?;
    /// assert!(step.done());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.call(|_| ())
    }

    /// True once a call has panicked: the value may then be inconsistent
    /// (a panic can leave a half-finished update behind). Later calls still
    /// run; this is for the caller to decide.
    ///
    /// # Examples
    ///
    /// ```
    /// let model = concertina::Instance::new(0);
    /// assert!(model.spawn(|_| -> () { panic!("diverged") }).result().is_err());
    /// assert!(model.is_poisoned());
    /// assert_eq!(model.call(|n| *n + 1)?, 1, "the queue goes on");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn is_poisoned(&self) -> bool {
        // Acquire: pairs with the Release in `note_panic`.
        self.shared.kind.poisoned.load(Ordering::Acquire)
    }

    /// The number of calls queued and not started yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let model = concertina::Instance::new(());
    /// model.wait()?;
    /// assert_eq!(model.queued(), 0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn queued(&self) -> usize {
        self.shared.queued()
    }

    /// The queue as its pending calls see it.
    fn queue_ref(&self) -> Weak<dyn CallQueue> {
        Arc::downgrade(&self.shared) as Weak<dyn CallQueue>
    }

    /// Queues a call (see [`Serial::enqueue`]).
    fn submit(&self, call: Call<C>) {
        self.shared.enqueue(call);
    }

    /// Starts a drain when none runs and the first call became runnable.
    fn kick(&self) {
        self.shared.kick();
    }
}

impl<C> Kind for Calls<C> {
    type Item = Call<C>;
    /// Held for a synchronous call running on its caller's thread.
    type Flags = Option<Hold>;
    type Held = ();

    fn task(call: &Call<C>) -> &Arc<dyn Watchable> {
        &call.task
    }

    fn has_runnable(state: &State<Self>) -> bool {
        state.flags.is_none() && state.items.front().is_some_and(Call::runnable)
    }

    /// The first call, once runnable: strictly in order.
    fn next(queue: &Arc<Serial<Self>>) -> Option<(Call<C>, ())> {
        let mut state = queue.state.lock();
        if !Self::has_runnable(&state) {
            return None;
        }
        state.take_running(0).map(|call| (call, ()))
    }

    fn run(queue: &Arc<Serial<Self>>, call: Call<C>, (): ()) {
        let calls = &queue.kind;
        let mut value = calls.value.lock();
        (call.run)(&mut value, &calls.poisoned);
    }

    /// A queued call waits on the holder of the queue, or on the
    /// dependency of the first one.
    fn blocked_by(state: &State<Self>, _call: usize) -> Waits {
        if let Some(hold) = &state.flags {
            return Waits::All(vec![hold.holder.clone()]);
        }
        match state.items.front() {
            Some(Call {
                gate: Some((gate, dependency)),
                ..
            // Acquire: as in `Call::runnable`.
            }) if !gate.load(Ordering::Acquire) => dependency
                .upgrade()
                .map_or(Waits::Nothing, |d| Waits::All(vec![d as Arc<dyn Node>])),
            _ => Waits::Nothing,
        }
    }

    fn describe(&self) -> String {
        format!("instance `Instance<{}>`", std::any::type_name::<C>())
    }
}

impl<C> fmt::Debug for Instance<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("queued", &self.shared.queued())
            .field(
                "poisoned",
                &self.shared.kind.poisoned.load(Ordering::Acquire),
            )
            .finish()
    }
}

impl Pool {
    /// Wraps `value` in an [`Instance`] whose calls run on this pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(2).build()?;
    /// let model = pool.instance(String::from("grid"));
    /// assert_eq!(model.call(|s| s.len())?, 4);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn instance<C: Send + 'static>(&self, value: C) -> Instance<C> {
        Instance::with_pool(Ok(self.clone()), value)
    }
}
