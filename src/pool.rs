//! Pools of worker threads and their backends.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{ConfigError, Error, MAX_THREADS};
use crate::future::{
    claimable, reject_queued, run_inline, run_queued, run_task_with, Future, Inner, TaskRef,
};
use crate::global::{self, Env};
use crate::interrupt;

/// Where a pool runs its tasks.
///
/// # Examples
///
/// ```
/// use concertina::{Backend, Pool};
///
/// let pool = Pool::builder().backend(Backend::Inline).build()?;
/// let f = pool.spawn(|| std::thread::current().id());
/// assert_eq!(f.result()?, std::thread::current().id(), "inline runs on the caller");
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// A dedicated rayon thread pool (work stealing). The default.
    Rayon,
    /// Worker threads sharing one crossbeam channel: tasks start in
    /// submission order, except that a worker waiting on a task still queued
    /// runs it at once.
    Crossbeam,
    /// No threads: every task runs on the submitting thread before `spawn`
    /// returns, and an already finished `Future` is returned (Concert's
    /// `ENABLE_ASYNC = False`, for debugging).
    Inline,
}

impl Backend {
    pub(crate) fn parse(s: &str) -> Option<Backend> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rayon" => Some(Backend::Rayon),
            "crossbeam" => Some(Backend::Crossbeam),
            "inline" => Some(Backend::Inline),
            _ => None,
        }
    }
}

/// Configures a [`Pool`]. Fields left unset come from the environment
/// (`CONCERTINA_THREADS`, `CONCERTINA_BACKEND`, `CONCERTINA_DISABLE_ASYNC`),
/// then from the machine: one thread per core, the rayon backend.
///
/// # Examples
///
/// ```
/// use concertina::{Backend, Pool};
///
/// let pool = Pool::builder()
///     .threads(4)
///     .name("detector")
///     .backend(Backend::Crossbeam)
///     .build()?;
/// assert_eq!(pool.threads(), 4);
/// assert_eq!(pool.name(), "detector");
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until build() is called"]
pub struct PoolBuilder {
    threads: Option<usize>,
    name: Option<String>,
    backend: Option<Backend>,
    stack_size: Option<usize>,
    ctrlc: Option<bool>,
    /// Set for the default pool only: an unset `ctrlc` then follows
    /// `CONCERTINA_CTRLC` (on unless it says 0).
    default_pool: bool,
}

impl PoolBuilder {
    /// The number of worker threads, from 1 to 4096. Ignored by the inline
    /// backend, which has none.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(2).build()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// The pool's name: its threads are called `concertina-<name>-<n>`.
    /// 1 to 64 characters, no NUL. Defaults to `pool`.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().name("motors").threads(1).build()?;
    /// # #[cfg(not(miri))]
    /// # if pool.backend() != concertina::Backend::Inline {
    /// let thread = pool.spawn(|| std::thread::current().name().map(String::from)).result()?;
    /// assert_eq!(thread.as_deref(), Some("concertina-motors-0"));
    /// # }
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Which backend runs the tasks. When unset, `CONCERTINA_DISABLE_ASYNC=1`
    /// selects [`Backend::Inline`], else `CONCERTINA_BACKEND`, else
    /// [`Backend::Rayon`]. An explicit backend always wins.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Pool};
    ///
    /// let pool = Pool::builder().backend(Backend::Crossbeam).threads(1).build()?;
    /// assert_eq!(pool.backend(), Backend::Crossbeam);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The stack size of each worker thread, in bytes (at least 16 KiB).
    /// Defaults to the platform's default for spawned threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().stack_size(8 << 20).threads(1).build()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Whether building this pool installs the Ctrl-C handler (once per
    /// process; never over a SIGINT handler the application already has).
    /// Unset, the [default pool](crate::default_pool) installs it unless
    /// `CONCERTINA_CTRLC=0`, and other pools do not. See
    /// [`interrupt`](crate::interrupt) for what a Ctrl-C then does.
    ///
    /// # Examples
    ///
    /// ```
    /// // A library that must leave SIGINT alone:
    /// let pool = concertina::Pool::builder().ctrlc(false).threads(1).build()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn ctrlc(mut self, install: bool) -> Self {
        self.ctrlc = Some(install);
        self
    }

    /// `other`'s fields where it has them, else this builder's.
    pub(crate) fn merge(self, other: PoolBuilder) -> PoolBuilder {
        PoolBuilder {
            threads: other.threads.or(self.threads),
            name: other.name.or(self.name),
            backend: other.backend.or(self.backend),
            stack_size: other.stack_size.or(self.stack_size),
            ctrlc: other.ctrlc.or(self.ctrlc),
            default_pool: self.default_pool || other.default_pool,
        }
    }

    /// Marks the builder as the default pool's.
    pub(crate) fn for_default_pool(mut self) -> Self {
        self.default_pool = true;
        self
    }

    /// Builds the pool and starts its threads.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a value is out of range (0 threads, an empty
    /// name, a tiny stack), when a `CONCERTINA_*` environment variable holds a
    /// value that is not accepted, or when the threads cannot be started.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = concertina::Pool::builder().name("").build().unwrap_err();
    /// assert!(err.to_string().contains("pool name"));
    /// ```
    pub fn build(self) -> Result<Pool, Error> {
        let env = Env::read()?;
        let backend = match self.backend {
            Some(backend) => backend,
            None if env.disable_async => Backend::Inline,
            None => env.backend.unwrap_or(Backend::Rayon),
        };
        let threads = match self.threads.or(env.threads) {
            Some(n) if (1..=MAX_THREADS).contains(&n) => n,
            Some(n) => return Err(ConfigError::threads(n).into()),
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let name = self.name.unwrap_or_else(|| "pool".to_owned());
        if name.is_empty() || name.chars().count() > 64 || name.contains('\0') {
            return Err(ConfigError::name(&name).into());
        }
        if let Some(bytes) = self.stack_size {
            if bytes < MIN_STACK {
                return Err(ConfigError::stack(bytes, MIN_STACK).into());
            }
        }
        let pool =
            Shared::start(name, threads, backend, self.stack_size).map(|shared| Pool { shared })?;
        if self.ctrlc.unwrap_or(self.default_pool && env.ctrlc) {
            interrupt::install_handler();
        }
        Ok(pool)
    }
}

const MIN_STACK: usize = 16 << 10;

/// A pool of worker threads running blocking closures; every submission
/// returns a [`Future`].
///
/// A `Pool` is a cheap, cloneable handle. When the last handle is dropped
/// the pool drains: queued tasks still run, then the threads are joined
/// (see [`Pool::shutdown`]). A panicking task never kills a worker.
///
/// # Examples
///
/// ```
/// use concertina::Pool;
///
/// let pool = Pool::builder().threads(2).name("sim").build()?;
/// let steps: Vec<_> = (0..4).map(|i| pool.spawn(move || i * i)).collect();
/// let squares: Vec<u64> = steps.into_iter().map(|f| f.result()).collect::<Result<_, _>>()?;
/// assert_eq!(squares, [0, 1, 4, 9]);
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    threads: usize,
    backend: Backend,
    ctx: Arc<Ctx>,
    exec: Exec,
}

enum Exec {
    /// A rayon pool of our own; `None` once shut down.
    Rayon(RwLock<Option<rayon::ThreadPool>>),
    /// A caller's rayon pool; `None` once this handle on it is shut down.
    Adopted(RwLock<Option<Arc<rayon::ThreadPool>>>),
    /// Our own workers over one channel; the sender is dropped at shutdown.
    Channel {
        sender: RwLock<Option<Sender<Queued>>>,
        handles: Mutex<Vec<JoinHandle<()>>>,
    },
    Inline,
}

type Queued = Box<dyn FnOnce() + Send>;

/// Accepting submissions.
const OPEN: u8 = 0;
/// Shut down: new submissions fail; queued tasks still run.
const DRAINING: u8 = 1;
/// Shut down now: new submissions fail; queued tasks fail with `Shutdown`.
const DISCARDING: u8 = 2;

/// What a worker thread knows of its pool. It holds no strong reference to
/// the pool itself, so that dropping the last `Pool` shuts the pool down.
struct Ctx {
    closing: AtomicU8,
    pool: OnceLock<Weak<Shared>>,
    /// The queue a waiting worker helps with: `None` means rayon's own.
    queue: Option<Receiver<Queued>>,
    /// Live threads (own backends) or tasks in flight (adopted pool).
    live: Mutex<usize>,
    quiet: Condvar,
}

impl Ctx {
    fn new(queue: Option<Receiver<Queued>>, live: usize) -> Arc<Ctx> {
        Arc::new(Ctx {
            closing: AtomicU8::new(OPEN),
            pool: OnceLock::new(),
            queue,
            live: Mutex::new(live),
            quiet: Condvar::new(),
        })
    }

    /// The pool's identity: a worker may claim only its own pool's tasks.
    fn id(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    fn add_live(&self) {
        *self.live.lock() += 1;
    }

    fn sub_live(&self) {
        let mut live = self.live.lock();
        *live -= 1;
        if *live == 0 {
            self.quiet.notify_all();
        }
    }

    fn wait_quiet(&self) {
        let mut live = self.live.lock();
        self.quiet.wait_while(&mut live, |live| *live > 0);
    }
}

crate::sync::task_local! {
    /// The pool whose worker this thread is (while it runs a task, for an adopted pool).
    static WORKER: RefCell<Option<Arc<Ctx>>> = const { RefCell::new(None) };
}

/// Makes this thread a worker of `ctx` until the guard drops.
struct WorkerGuard {
    previous: Option<Arc<Ctx>>,
}

fn enter_worker(ctx: Arc<Ctx>) -> WorkerGuard {
    WorkerGuard {
        previous: WORKER.with(|w| w.borrow_mut().replace(ctx)),
    }
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        WORKER.with(|w| *w.borrow_mut() = previous);
    }
}

fn current_ctx() -> Option<Arc<Ctx>> {
    WORKER.with(|w| w.borrow().clone())
}

/// True on a thread of a pool with real workers.
pub(crate) fn on_worker() -> bool {
    WORKER.with(|w| w.borrow().is_some())
}

/// On a pool worker: runs one queued job of its pool. False when there was none.
pub(crate) fn help_one() -> bool {
    let Some(ctx) = current_ctx() else {
        return false;
    };
    // Helping with unrelated work nests: the job helped may wait and help in
    // turn. Past this depth a wait parks instead (what it waits on is
    // running elsewhere: a queued task of this pool is claimed, not helped).
    const MAX_HELP_DEPTH: usize = 16;
    let depth = HELP_DEPTH.with(Cell::get);
    if depth >= MAX_HELP_DEPTH {
        return false;
    }
    HELP_DEPTH.with(|d| d.set(depth + 1));
    let helped = match &ctx.queue {
        None => matches!(rayon::yield_now(), Some(rayon::Yield::Executed)),
        Some(queue) => match queue.try_recv() {
            Ok(job) => {
                run_job(job);
                true
            }
            Err(_) => false,
        },
    };
    HELP_DEPTH.with(|d| d.set(depth));
    helped
}

thread_local! {
    /// How many helped jobs are running nested on this thread.
    static HELP_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// The identity of the pool whose worker this thread is.
pub(crate) fn current_pool_id() -> Option<usize> {
    WORKER.with(|w| w.borrow().as_ref().map(Ctx::id))
}

/// Submits the continuation of a `then` to the pool of this worker, or to
/// the default pool when this thread is not a worker.
pub(crate) fn submit_continuation<T, F>(inner: TaskRef<T>, f: F)
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let own = current_ctx().and_then(|ctx| ctx.pool.get().and_then(Weak::upgrade));
    match own {
        Some(shared) => Pool { shared }.spawn_into(inner, f),
        None => match global::default_pool() {
            Ok(pool) => pool.spawn_into(inner, f),
            Err(error) => {
                inner.settle(Err(error), false);
            }
        },
    }
}

/// True on a worker of a pool shut down with `shutdown_now`: queued work
/// must fail with `Shutdown` instead of running.
pub(crate) fn discarding() -> bool {
    WORKER.with(|w| {
        w.borrow()
            .as_ref()
            .is_some_and(|ctx| ctx.closing.load(Ordering::Acquire) == DISCARDING)
    })
}

/// Runs a job, keeping any panic (from a value's `Drop`, say) off the worker.
fn run_job(job: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(job));
}

/// Work on its way to a worker: it runs there, or, when the pool is shut
/// down, it is rejected and fails what waits on it. Never just dropped.
pub(crate) trait Job: Send + 'static {
    fn run(self);
    fn reject(self);
}

/// A task on its way to a worker. Its closure waits in the task's state, so
/// that a worker of this pool waiting on the task may claim and run it
/// first; the job runs it only if nobody did, or fails it with `Shutdown`.
struct TaskJob<T> {
    inner: TaskRef<T>,
}

impl<T: Send + 'static> Job for TaskJob<T> {
    fn run(self) {
        run_queued(self.inner);
    }

    fn reject(self) {
        reject_queued(self.inner);
    }
}

impl Shared {
    fn start(
        name: String,
        threads: usize,
        backend: Backend,
        stack_size: Option<usize>,
    ) -> Result<Arc<Shared>, Error> {
        let (ctx, exec) = match backend {
            Backend::Inline => (Ctx::new(None, 0), Exec::Inline),
            Backend::Rayon => {
                let ctx = Ctx::new(None, threads);
                let (on_start, on_exit) = (ctx.clone(), ctx.clone());
                let prefix = format!("concertina-{name}-");
                let mut builder = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(move |i| format!("{prefix}{i}"))
                    .start_handler(move |_| {
                        WORKER.with(|w| *w.borrow_mut() = Some(on_start.clone()))
                    })
                    .exit_handler(move |_| {
                        WORKER.with(|w| w.borrow_mut().take());
                        on_exit.sub_live();
                    })
                    .panic_handler(|_| {});
                if let Some(bytes) = stack_size {
                    builder = builder.stack_size(bytes);
                }
                let pool = builder.build().map_err(ConfigError::spawn)?;
                (ctx, Exec::Rayon(RwLock::new(Some(pool))))
            }
            Backend::Crossbeam => {
                let (sender, receiver) = crossbeam_channel::unbounded::<Queued>();
                let ctx = Ctx::new(Some(receiver.clone()), threads);
                let mut handles = Vec::with_capacity(threads);
                for i in 0..threads {
                    let mut builder =
                        std::thread::Builder::new().name(format!("concertina-{name}-{i}"));
                    if let Some(bytes) = stack_size {
                        builder = builder.stack_size(bytes);
                    }
                    let (worker_ctx, receiver) = (ctx.clone(), receiver.clone());
                    match builder.spawn(move || channel_worker(worker_ctx, receiver)) {
                        Ok(handle) => handles.push(handle),
                        Err(err) => {
                            drop(sender);
                            for _ in i..threads {
                                ctx.sub_live();
                            }
                            for handle in handles {
                                let _ = handle.join();
                            }
                            return Err(ConfigError::spawn(err).into());
                        }
                    }
                }
                let exec = Exec::Channel {
                    sender: RwLock::new(Some(sender)),
                    handles: Mutex::new(handles),
                };
                (ctx, exec)
            }
        };
        let threads = if backend == Backend::Inline {
            0
        } else {
            threads
        };
        let shared = Arc::new(Shared {
            name,
            threads,
            backend,
            ctx,
            exec,
        });
        let _ = shared.ctx.pool.set(Arc::downgrade(&shared));
        Ok(shared)
    }

    /// True when the calling thread is one of this pool's workers.
    fn on_own_worker(&self) -> bool {
        WORKER.with(|w| {
            w.borrow()
                .as_ref()
                .is_some_and(|ctx| Arc::ptr_eq(ctx, &self.ctx))
        })
    }

    /// Stops accepting work; with `mode == DISCARDING`, queued tasks fail with
    /// `Shutdown` instead of running. Then waits until every thread has
    /// finished (unless called from one of them, which cannot wait for itself).
    fn close(&self, mode: u8) {
        self.ctx.closing.fetch_max(mode, Ordering::AcqRel);
        let handles = match &self.exec {
            Exec::Inline => Vec::new(),
            Exec::Rayon(pool) => {
                // Dropping rayon's pool lets its threads finish queued work and exit.
                let pool = pool.write().take();
                drop(pool);
                Vec::new()
            }
            Exec::Adopted(pool) => {
                let pool = pool.write().take();
                drop(pool);
                Vec::new()
            }
            Exec::Channel { sender, handles } => {
                let sender = sender.write().take();
                drop(sender);
                std::mem::take(&mut *handles.lock())
            }
        };
        if self.on_own_worker() {
            return;
        }
        self.ctx.wait_quiet();
        for handle in handles {
            let _ = handle.join();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.close(DRAINING);
    }
}

fn channel_worker(ctx: Arc<Ctx>, receiver: Receiver<Queued>) {
    struct Exit(Arc<Ctx>);
    impl Drop for Exit {
        fn drop(&mut self) {
            self.0.sub_live();
        }
    }
    let _exit = Exit(ctx.clone());
    let _worker = enter_worker(ctx);
    while let Ok(job) = receiver.recv() {
        run_job(job);
    }
}

impl Pool {
    /// A builder for a new pool.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(2).build()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// Runs tasks on a rayon pool the application already has. Shutting this
    /// `Pool` down stops its submissions and waits for its tasks, but leaves
    /// the rayon pool running.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let rayon_pool = Arc::new(rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap());
    /// let pool = concertina::Pool::from_rayon(rayon_pool.clone(), "shared");
    /// assert_eq!(pool.spawn(|| rayon::current_thread_index().is_some()).result(), Ok(true));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn from_rayon(pool: Arc<rayon::ThreadPool>, name: impl Into<String>) -> Pool {
        let threads = pool.current_num_threads();
        let ctx = Ctx::new(None, 0);
        let exec = Exec::Adopted(RwLock::new(Some(pool)));
        let shared = Arc::new(Shared {
            name: name.into(),
            threads,
            backend: Backend::Rayon,
            ctx,
            exec,
        });
        let _ = shared.ctx.pool.set(Arc::downgrade(&shared));
        Pool { shared }
    }

    /// Submits `f` and returns the handle of its result.
    ///
    /// With the inline backend, `f` runs before this returns. After
    /// [`shutdown`](Pool::shutdown), the returned future has failed with
    /// [`Error::Shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(1).build()?;
    /// let reading = pool.spawn(|| 21.5_f64);
    /// assert_eq!(reading.result()?, 21.5);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn spawn<T, F>(&self, f: F) -> Future<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.spawn_try(move || Ok(f()))
    }

    /// Submits `f`, which may fail with an [`Error`] of its own.
    pub(crate) fn spawn_try<T, F>(&self, f: F) -> Future<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, Error> + Send + 'static,
    {
        if let Exec::Inline = self.shared.exec {
            if self.shared.ctx.closing.load(Ordering::Acquire) == OPEN {
                return run_inline(f);
            }
        }
        // The closure waits beside the task's state, in one allocation.
        let inner = Inner::queued(self.shared.ctx.id(), f);
        self.execute(TaskJob {
            inner: inner.clone(),
        });
        Future::from_shared(inner)
    }

    /// Runs a job on the pool (on the caller for the inline backend), or
    /// rejects it on this thread when the pool is shut down.
    pub(crate) fn execute<J: Job>(&self, job: J) {
        let shared = &*self.shared;
        // `close` marks the pool closing before it takes the backend out, and
        // it needs the write lock for that: a submission that sees the pool
        // open under the read lock is queued before the drain, and one that
        // starts after `is_shutdown()` turned true is refused.
        let open = || shared.ctx.closing.load(Ordering::Acquire) == OPEN;
        let rejected = match &shared.exec {
            Exec::Inline => {
                if open() {
                    job.run();
                    None
                } else {
                    Some(job)
                }
            }
            Exec::Rayon(pool) => match &*pool.read() {
                Some(pool) if open() => {
                    pool.spawn(move || run_job(move || job.run()));
                    None
                }
                _ => Some(job),
            },
            Exec::Adopted(pool) => match &*pool.read() {
                Some(pool) if open() => {
                    let ctx = shared.ctx.clone();
                    ctx.add_live();
                    pool.spawn(move || {
                        let worker = enter_worker(ctx.clone());
                        run_job(move || job.run());
                        drop(worker);
                        ctx.sub_live();
                    });
                    None
                }
                _ => Some(job),
            },
            Exec::Channel { sender, .. } => match &*sender.read() {
                // The pool keeps a receiver, so a send cannot fail while the sender lives.
                Some(sender) if open() => {
                    let _ = sender.send(Box::new(move || job.run()));
                    None
                }
                _ => Some(job),
            },
        };
        if let Some(job) = rejected {
            job.reject();
        }
    }

    /// Submits `f` to settle `inner`, a task made before its closure was
    /// known (a `then` continuation): the closure is boxed into the state.
    pub(crate) fn spawn_into<T, F>(&self, inner: TaskRef<T>, f: F)
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if let Exec::Inline = self.shared.exec {
            // Straight to the task: an inline task runs even on a worker of a
            // pool that is being shut down.
            if self.shared.ctx.closing.load(Ordering::Acquire) == OPEN {
                run_task_with(inner, move || Ok(f()), |_| ());
            } else {
                inner.settle(Err(Error::Shutdown), false);
            }
            return;
        }
        inner.put_job(claimable(self.shared.ctx.id(), move || Ok(f())));
        self.execute(TaskJob { inner });
    }

    /// Turns `f` into a function that runs `f` on this pool and returns a
    /// `Future` (Concert's `@async`). Several arguments travel as a tuple.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(2).build()?;
    /// let read_channel = pool.asynchronous(|channel: u8| f64::from(channel) * 0.5);
    /// let readings: Vec<_> = (0..3).map(|c| read_channel(c)).collect();
    /// assert_eq!(readings.into_iter().map(|f| f.result().unwrap()).collect::<Vec<_>>(), [0.0, 0.5, 1.0]);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn asynchronous<A, T, F>(
        &self,
        f: F,
    ) -> impl Fn(A) -> Future<T> + Clone + Send + Sync + 'static
    where
        A: Send + 'static,
        T: Send + 'static,
        F: Fn(A) -> T + Send + Sync + 'static,
    {
        let pool = self.clone();
        let f = Arc::new(f);
        move |arg| {
            let f = f.clone();
            pool.spawn(move || f(arg))
        }
    }

    /// Shuts the pool down, draining: new submissions fail with
    /// [`Error::Shutdown`], every task already queued still runs, and this
    /// call returns when all of them have finished and the threads have
    /// exited. Called from one of the pool's own tasks, it does not wait.
    /// Dropping the last `Pool` handle does the same. Calling it again is
    /// harmless.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Pool};
    ///
    /// let pool = Pool::builder().threads(1).build()?;
    /// let queued = pool.spawn(|| "ran");
    /// pool.shutdown();
    /// assert_eq!(queued.result(), Ok("ran"));
    /// assert_eq!(pool.spawn(|| "late").result(), Err(Error::Shutdown));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn shutdown(&self) {
        self.shared.close(DRAINING);
    }

    /// Shuts the pool down, discarding: new submissions and every task still
    /// queued fail with [`Error::Shutdown`] without running; running tasks
    /// finish. Returns when the threads have exited (Python's
    /// `shutdown(cancel_futures=True)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Error, Pool};
    /// use std::sync::mpsc;
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let (started_tx, started) = mpsc::channel();
    /// let running = pool.spawn(move || { started_tx.send(()).unwrap(); 1 });
    /// started.recv().unwrap();
    /// let queued = pool.spawn(|| 2);
    /// pool.shutdown_now();
    /// assert_eq!(running.result(), Ok(1));
    /// assert!(matches!(queued.result(), Ok(2) | Err(Error::Shutdown)));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn shutdown_now(&self) {
        self.shared.close(DISCARDING);
    }

    /// True once [`shutdown`](Pool::shutdown) or
    /// [`shutdown_now`](Pool::shutdown_now) was called; from then on every
    /// submission fails with [`Error::Shutdown`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(1).build()?;
    /// assert!(!pool.is_shutdown());
    /// pool.shutdown();
    /// assert!(pool.is_shutdown());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.shared.ctx.closing.load(Ordering::Acquire) != OPEN
    }

    /// The pool's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().name("camera").build()?;
    /// assert_eq!(pool.name(), "camera");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The number of worker threads (0 for the inline backend).
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Pool};
    ///
    /// assert_eq!(Pool::builder().backend(Backend::Inline).build()?.threads(), 0);
    /// assert_eq!(Pool::builder().backend(Backend::Rayon).threads(3).build()?.threads(), 3);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn threads(&self) -> usize {
        self.shared.threads
    }

    /// The backend the pool runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Pool};
    ///
    /// let pool = Pool::builder().backend(Backend::Crossbeam).threads(1).build()?;
    /// assert_eq!(pool.backend(), Backend::Crossbeam);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn backend(&self) -> Backend {
        self.shared.backend
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.shared.name)
            .field("backend", &self.shared.backend)
            .field("threads", &self.shared.threads)
            .field("shutdown", &self.is_shutdown())
            .finish()
    }
}
