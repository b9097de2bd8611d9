//! `scope`: tasks that borrow from the caller's stack, with future handles.
//!
//! A borrowed closure cannot be handed to a thread that may outlive the
//! borrow, so a scope's tasks run on threads of the scope itself (made with
//! `std::thread::scope`, at most the pool's thread count running at once,
//! started as tasks arrive), named after the pool. A scope thread blocked
//! in a wait is compensated as a pool worker is: the scope starts another
//! while it has queued tasks. The scope ends only once every task's closure
//! has returned; that wait, as the waits of its tasks, is in the wait graph
//! (see [`crate::park`]).

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::future::Future;
use crate::graph::{Node, Waits};
use crate::interrupt::{self, Wakeable};
use crate::park::{self, OnCycle, Waiter};
use crate::pool::{Backend, Pool, ThreadHooks};
use crate::sync::{Condvar, Mutex};
use crate::task::run_task;
use crate::worker::{self, Job, Worker};

/// A task of a scope: borrows for `'scope`.
type ScopedJob<'scope> = Box<dyn FnOnce() + Send + 'scope>;

/// Waits for one task of the scope; `true`: interrupt it first.
type TaskWait = Box<dyn FnOnce(bool) + Send>;

/// What a scope's threads share: the queue of tasks, beside the counts
/// that decide when to start a thread. The queue is only touched with the
/// counts locked (counts, then queue).
struct State<'scope> {
    queue: Mutex<VecDeque<ScopedJob<'scope>>>,
    sync: Arc<Control>,
}

/// The part of a scope's state that its threads' [`Worker`] (which must
/// outlive any borrow) sees.
struct Control {
    /// The pool the scope's threads count their tasks for.
    pool: Option<Pool>,
    counts: Mutex<Counts>,
    /// Scope threads wait here for a task.
    work: Condvar,
    /// The thread that starts compensating threads waits here.
    manage: Condvar,
    /// The scope's end waits here for the last closure to return.
    ended: Condvar,
    /// At most this many threads running (not blocked) at once.
    limit: usize,
    /// The pool's thread hooks, run by the scope's threads.
    hooks: ThreadHooks,
}

struct Counts {
    queued: usize,
    /// Threads started, waiting for a task, and blocked in a wait.
    threads: usize,
    idle: usize,
    blocked: usize,
    /// Tasks spawned whose closure has not returned yet.
    unfinished: usize,
    /// Set when the scope's body returned and its tasks finished: threads
    /// leave.
    closed: bool,
}

impl Counts {
    /// True when a queued task would wait for a thread that could be
    /// started: none idle, fewer than `limit` running (not blocked).
    fn wants_thread(&self, limit: usize) -> bool {
        self.queued > self.idle && self.threads - self.blocked < limit
    }
}

/// A scope thread, as the waits see it: a blocked one is compensated.
struct Signals(Arc<Control>);

impl Worker for Signals {
    fn blocked(&self) {
        let mut counts = self.0.counts.lock();
        counts.blocked += 1;
        if counts.wants_thread(self.0.limit) {
            self.0.manage.notify_one();
        }
    }

    fn unblocked(&self) {
        self.0.counts.lock().blocked -= 1;
    }

    fn dispatch(&self, job: Job) {
        // A pool task this thread claimed but has no stack left to run:
        // it owns nothing borrowed, so a thread of its own may run it.
        if let Err(error) = std::thread::Builder::new()
            .name("concertina-scope-claim".into())
            .spawn(job)
        {
            panic!("no thread for a claimed task: {error}");
        }
    }

    fn discarding(&self) -> bool {
        false
    }
}

/// Runs `body` with a [`Scope`] whose tasks may borrow from the caller's
/// stack, on the default pool's thread count (see [`Pool::scope`]). Returns
/// only once every task spawned in it has finished.
///
/// # Examples
///
/// ```
/// let samples = vec![1.0_f64, 4.0, 9.0, 16.0];
/// let mut means = [0.0; 2];
/// concertina::scope(|s| {
///     let (left, right) = samples.split_at(2);
///     let a = s.spawn(|| left.iter().sum::<f64>() / 2.0);
///     let b = s.spawn(|| right.iter().sum::<f64>() / 2.0);
///     means = [a.result()?, b.result()?];
///     Ok::<(), concertina::Error>(())
/// })?;
/// assert_eq!(means, [2.5, 12.5]);
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn scope<'env, F, R>(body: F) -> R
where
    F: for<'scope> FnOnce(&Scope<'scope, 'env>) -> R,
{
    match crate::global::default_pool() {
        Ok(pool) => pool.scope(body),
        // No default pool: the tasks run inline, where they are spawned.
        Err(_) => run_scope(Mode::Inline, None, body),
    }
}

impl Pool {
    /// Runs `body` with a [`Scope`]: tasks spawned in it may borrow from the
    /// caller's stack (like `std::thread::scope`), and each returns a
    /// [`Future`]. At most this pool's thread count of them run at once, on
    /// threads of the scope named `concertina-<pool>-scope-<n>`; a task
    /// blocked in a wait is compensated. On the inline backend each runs
    /// at once, where it is spawned.
    ///
    /// `scope` returns only once every task has finished, even when `body`
    /// panics (the panic then goes on). Tasks cannot spawn into their own
    /// scope (they may open a scope of their own). A Ctrl-C while the
    /// scope waits for its tasks interrupts them, as it interrupts a wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Pool};
    ///
    /// let pool = Pool::builder().threads(2).backend(Backend::Crossbeam).name("stitch").build()?;
    /// let mut image = vec![0u8; 8];
    /// let rows: Vec<_> = pool.scope(|s| {
    ///     image
    ///         .chunks_mut(4)
    ///         .enumerate()
    ///         .map(|(i, row)| s.spawn(move || { row.fill(i as u8 + 1); row.len() }))
    ///         .collect()
    /// });
    /// assert_eq!(image, [1, 1, 1, 1, 2, 2, 2, 2]);
    /// assert_eq!(concertina::wait_all(rows), [Ok(4), Ok(4)], "finished when the scope returned");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn scope<'env, F, R>(&self, body: F) -> R
    where
        F: for<'scope> FnOnce(&Scope<'scope, 'env>) -> R,
    {
        let mode = match self.backend() {
            Backend::Inline => Mode::Inline,
            _ => Mode::Threads {
                limit: self.threads().max(1),
                name: self.name().to_owned(),
                hooks: self.thread_hooks(),
            },
        };
        run_scope(mode, Some(self.clone()), body)
    }
}

enum Mode {
    Inline,
    Threads {
        limit: usize,
        name: String,
        hooks: ThreadHooks,
    },
}

/// Spawns tasks that may borrow from the caller's stack: see
/// [`Pool::scope`] and [`scope`](crate::scope()).
///
/// # Examples
///
/// ```
/// let counts = [3_u32, 4, 5];
/// let total = concertina::scope(|s| {
///     let futures: Vec<_> = counts.iter().map(|c| s.spawn(move || c * 2)).collect();
///     concertina::try_wait_all(futures).map(|v| v.iter().sum::<u32>())
/// })?;
/// assert_eq!(total, 24);
/// # Ok::<(), concertina::Error>(())
/// ```
pub struct Scope<'scope, 'env> {
    std: Option<&'scope std::thread::Scope<'scope, 'env>>,
    state: Arc<State<'scope>>,
    /// The pool whose statistics count the tasks.
    pool: Option<Pool>,
    name: String,
    /// Each task's wait, and the task as the wait graph sees it.
    waiters: Mutex<Vec<(TaskWait, Arc<dyn Node>)>>,
    _env: PhantomData<&'env mut &'env ()>,
}

fn run_scope<'env, F, R>(mode: Mode, pool: Option<Pool>, body: F) -> R
where
    F: for<'scope> FnOnce(&Scope<'scope, 'env>) -> R,
{
    match mode {
        Mode::Inline => {
            let scope = Scope {
                std: None,
                state: State::new(0, ThreadHooks::default(), None),
                pool,
                name: String::new(),
                waiters: Mutex::new(Vec::new()),
                _env: PhantomData,
            };
            body(&scope)
        }
        Mode::Threads { limit, name, hooks } => std::thread::scope(|std_scope| {
            let scope = Scope {
                std: Some(std_scope),
                state: State::new(limit, hooks, pool.clone()),
                pool,
                name,
                waiters: Mutex::new(Vec::new()),
                _env: PhantomData,
            };
            // Closes the scope and waits for its tasks however `body` ends.
            let ending = Ending(&scope);
            let value = body(ending.0);
            drop(ending);
            value
        }),
    }
}

/// Ends a threaded scope: runs what is still queued here, waits for every
/// task (a Ctrl-C interrupts them), and lets the scope's threads go.
struct Ending<'a, 'scope, 'env>(&'a Scope<'scope, 'env>);

impl Drop for Ending<'_, '_, '_> {
    fn drop(&mut self) {
        let scope = self.0;
        // Queued tasks are left to the scope's threads (so that no more than
        // the limit run at once); only when none could be started do they
        // run here.
        if scope.state.sync.counts.lock().threads == 0 {
            while let Some(job) = scope.state.pop() {
                job();
            }
        }
        let began = interrupt::generation();
        let (waiters, tasks): (Vec<_>, Vec<_>) = std::mem::take(&mut *scope.waiters.lock())
            .into_iter()
            .unzip();
        for waiter in waiters {
            waiter(interrupt::generation() != began);
        }
        let sync = &scope.state.sync;
        // Every outcome is published; a closure decided while it ran (a
        // cancel, a deadlock found by a wait on it) may run on.
        sync.wait_ended(&tasks);
        sync.counts.lock().closed = true;
        sync.work.notify_all();
        sync.manage.notify_all();
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns `f` in the scope and returns the [`Future`] of its value. `f`
    /// may borrow anything that outlives the scope. A panic in `f` becomes
    /// [`Error::Panicked`](crate::Error::Panicked) at its future; [`cancelled()`](crate::cancelled)
    /// and [`Future::cancel`] work as for any task.
    ///
    /// # Examples
    ///
    /// ```
    /// let detector = String::from("pilatus");
    /// concertina::scope(|s| {
    ///     let name = s.spawn(|| detector.to_uppercase());
    ///     assert_eq!(name.result().unwrap(), "PILATUS");
    /// });
    /// ```
    pub fn spawn<T, F>(&self, f: F) -> Future<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'scope,
    {
        let (future, task) = Future::<T>::pending();
        let counted = self.pool.as_ref().map(Pool::count_task);
        let f = move || match counted {
            Some(counted) => counted.run(move || Ok(f())),
            None => Ok(f()),
        };
        let Some(std_scope) = self.std else {
            run_task(task, f, |_| ());
            return future;
        };
        let waited = task.clone();
        let node = task.clone() as Arc<dyn Node>;
        let waiter: TaskWait = Box::new(move |interrupt| {
            if interrupt {
                waited.interrupt();
            }
            waited.wait_until(None);
        });
        self.waiters.lock().push((waiter, node));
        let sync = &self.state.sync;
        let ended = sync.clone();
        let mut counts = sync.counts.lock();
        self.state.queue.lock().push_back(Box::new(move || {
            run_task(task, f, |_| ());
            ended.returned();
        }));
        counts.queued += 1;
        counts.unfinished += 1;
        if counts.idle > 0 {
            sync.work.notify_one();
        } else if counts.wants_thread(sync.limit) {
            let first = counts.threads == 0;
            counts.threads += 1;
            let number = counts.threads;
            drop(counts);
            if first {
                self.start_manager(std_scope);
            }
            start_thread(std_scope, &self.state, &self.name, number);
        }
        future
    }

    /// Starts the thread that starts a compensating thread when one of the
    /// scope's threads blocks while tasks are queued.
    fn start_manager(&self, std_scope: &'scope std::thread::Scope<'scope, 'env>) {
        let state = self.state.clone();
        let name = self.name.clone();
        std_scope.spawn(move || {
            let sync = state.sync.clone();
            let mut counts = sync.counts.lock();
            loop {
                if counts.closed {
                    return;
                }
                // Only for a blocked thread: `spawn` starts the others.
                if counts.blocked > 0 && counts.wants_thread(sync.limit) {
                    counts.threads += 1;
                    let number = counts.threads;
                    drop(counts);
                    start_thread(std_scope, &state, &name, number);
                    counts = sync.counts.lock();
                    continue;
                }
                sync.manage.wait(&mut counts);
            }
        });
    }
}

/// Starts scope thread `number`: it runs queued tasks until the scope
/// closes and nothing is queued.
fn start_thread<'scope, 'env>(
    std_scope: &'scope std::thread::Scope<'scope, 'env>,
    state: &Arc<State<'scope>>,
    name: &str,
    number: usize,
) {
    let sync = state.sync.clone();
    let thread_state = state.clone();
    let started = std::thread::Builder::new()
        .name(format!("concertina-{name}-scope-{number}"))
        .spawn_scoped(std_scope, move || {
            worker::install(
                Arc::new(Signals(sync.clone())),
                worker::stack_position(),
                None,
            );
            if let Some(pool) = &sync.pool {
                pool.enter_counting();
            }
            ThreadHooks::run(&sync.hooks.start);
            let mut counts = sync.counts.lock();
            loop {
                if let Some(job) = thread_state.pop_locked(&mut counts) {
                    drop(counts);
                    job();
                    counts = sync.counts.lock();
                    continue;
                }
                if counts.closed {
                    break;
                }
                counts.idle += 1;
                sync.work.wait(&mut counts);
                counts.idle -= 1;
            }
            counts.threads -= 1;
            drop(counts);
            ThreadHooks::run(&sync.hooks.stop);
            worker::uninstall();
            crate::pool::leave_counting();
        });
    if started.is_err() {
        // No thread: the tasks run when the scope ends, on the caller.
        state.sync.counts.lock().threads -= 1;
    }
}

impl Control {
    /// A task's closure returned.
    fn returned(&self) {
        let mut counts = self.counts.lock();
        counts.unfinished -= 1;
        if counts.unfinished == 0 {
            self.ended.notify_all();
        }
    }

    /// Waits until every task's closure has returned. `tasks` are what the
    /// wait waits on: when they wait, through others, on whoever ends the
    /// scope, the wait fails its own task with the deadlock (so that those
    /// waiting on it go on) and waits on.
    fn wait_ended(self: &Arc<Self>, tasks: &[Arc<dyn Node>]) {
        let ending = Ended {
            control: self,
            tasks,
        };
        park::wait_internal(&ending, OnCycle::FailOwner);
    }
}

impl Wakeable for Control {
    fn wake(&self) {
        let _counts = self.counts.lock();
        self.ended.notify_all();
    }
}

/// The end of a scope waiting for its tasks' closures to return.
struct Ended<'a> {
    control: &'a Arc<Control>,
    tasks: &'a [Arc<dyn Node>],
}

impl Waiter for Ended<'_> {
    type State = Counts;

    fn lock(&self) -> &Mutex<Counts> {
        &self.control.counts
    }

    fn cond(&self) -> &Condvar {
        &self.control.ended
    }

    fn ready(&self, counts: &Counts) -> bool {
        counts.unfinished == 0
    }

    fn target(&self) -> Arc<dyn Wakeable> {
        self.control.clone()
    }

    fn waits(&self) -> Waits {
        Waits::All(self.tasks.to_vec())
    }
}

impl<'scope> State<'scope> {
    fn new(limit: usize, hooks: ThreadHooks, pool: Option<Pool>) -> Arc<Self> {
        Arc::new(State {
            queue: Mutex::new(VecDeque::new()),
            sync: Arc::new(Control {
                counts: Mutex::new(Counts {
                    queued: 0,
                    threads: 0,
                    idle: 0,
                    blocked: 0,
                    unfinished: 0,
                    closed: false,
                }),
                work: Condvar::new(),
                manage: Condvar::new(),
                ended: Condvar::new(),
                limit,
                hooks,
                pool,
            }),
        })
    }

    /// The next queued task, taken.
    fn pop(&self) -> Option<ScopedJob<'scope>> {
        let mut counts = self.sync.counts.lock();
        self.pop_locked(&mut counts)
    }

    fn pop_locked(&self, counts: &mut Counts) -> Option<ScopedJob<'scope>> {
        let job = self.queue.lock().pop_front()?;
        counts.queued -= 1;
        Some(job)
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = self.state.sync.counts.lock();
        f.debug_struct("Scope")
            .field("queued", &counts.queued)
            .field("threads", &counts.threads)
            .finish_non_exhaustive()
    }
}
