//! Pools of worker threads: the [`Pool`] handle, its [`PoolBuilder`] and
//! [`Backend`]s ([`Pool`] and [`Backend`] are also at the crate root).
//!
//! ```
//! use concertina::pool::{Backend, Pool, PoolBuilder};
//!
//! let builder: PoolBuilder = Pool::builder().threads(2).backend(Backend::Crossbeam).name("detectors");
//! let pool = builder.build()?;
//! assert_eq!(pool.spawn(|| 1 + 1).result()?, 2);
//! # Ok::<(), concertina::Error>(())
//! ```

// The worker side each backend installs on its threads, and submission.
// One file per backend (`rayon`, `channel`); submission against shutdown
// in `intake`; compensation in `spare`; the builder and the environment in
// `builder`.

mod builder;
mod channel;
mod env;
pub(crate) mod intake;
mod rayon;
mod shutdown;
mod snapshot;
pub(crate) mod spare;
mod stats;
mod thread;

pub use builder::{Backend, PoolBuilder};
pub use snapshot::{snapshot, PoolSnapshot, Snapshot, WaitSnapshot};
pub use stats::PoolStats;
pub(crate) use stats::{leave as leave_counting, Counted};
pub(crate) use thread::{current, ThreadHooks};
use thread::{enter_thread, leave_thread, Ctx, CTX};

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::error::{ConfigError, Error};
use crate::future::Future;
use crate::pool::intake::{Intake, OPEN};
use crate::pool::spare::{SpareConfig, Spares};
use crate::sync::Mutex;
use crate::task::running::run_bare;
use crate::task::{queued, run_task, TaskRef};
use crate::worker::Queued;

/// A pool of worker threads running blocking closures; every submission
/// returns a [`Future`].
///
/// A `Pool` is a cheap, cloneable handle. When the last handle is dropped
/// the pool drains: queued tasks still run, then the threads are joined
/// (see [`Pool::shutdown`]). A panicking task never kills a worker.
///
/// **Waits inside tasks.** A task may wait on other futures. A wait runs
/// nothing but the very task it waits on, when that is still queued (on any
/// pool): it never nests unrelated work on the waiting stack, so a mutex or
/// a device lock held across a wait stays exclusive. A worker that sleeps in
/// a wait is *compensated*: a spare thread (named like the workers) takes
/// queued work, so the configured number of running tasks is kept, up to
/// [`max_spare_threads`](PoolBuilder::max_spare_threads) spares; idle spares
/// retire after [`spare_keep_alive`](PoolBuilder::spare_keep_alive). A
/// one-thread pool still starts one task at a time. Nested and cross-pool
/// waits without a cycle always finish; a cycle is reported as
/// [`Error::Deadlock`].
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
    /// Configured workers (0 for the inline backend).
    threads: usize,
    backend: Backend,
    ctx: Arc<Ctx>,
    exec: Exec,
}

enum Exec {
    Rayon {
        /// The rayon pool and the pool's queue: each submission goes to the
        /// queue, and tokens on rayon run it (see [`rayon`]).
        intake: Intake<(Arc<::rayon::ThreadPool>, Sender<Queued>)>,
        /// Our threads (empty for an adopted pool, whose threads are not ours).
        handles: Mutex<Vec<JoinHandle<()>>>,
        /// False for a pool adopted with [`Pool::from_rayon`].
        owned: bool,
    },
    /// Our own workers over one channel; the sender is dropped at shutdown.
    Channel {
        intake: Intake<Sender<Queued>>,
        handles: Mutex<Vec<JoinHandle<()>>>,
    },
    Inline,
}

/// Shut down: new submissions fail; queued tasks still run.
const DRAINING: u8 = 1;
/// Shut down now: new submissions fail; queued tasks fail with `Shutdown`.
const DISCARDING: u8 = 2;

impl Pool {
    /// Starts the threads of a new pool.
    fn start(
        name: String,
        backend: Backend,
        spares: SpareConfig,
        hooks: ThreadHooks,
    ) -> Result<Pool, ConfigError> {
        let threads = spares.threads;
        let stack_size = spares.stack_size;
        let (ctx, exec, threads) = match backend {
            Backend::Inline => (Ctx::new(None, None, 0, hooks, &name), Exec::Inline, 0),
            Backend::Rayon => {
                let (queue, receiver) = crossbeam_channel::unbounded::<Queued>();
                let ctx = Ctx::new(
                    Some(Spares::new(spares, receiver)),
                    stack_size,
                    threads,
                    hooks,
                    &name,
                );
                let (pool, handles) = rayon::start(&ctx, &name, threads, stack_size)?;
                let exec = Exec::Rayon {
                    intake: Intake::new((Arc::new(pool), queue)),
                    handles: Mutex::new(handles),
                    owned: true,
                };
                (ctx, exec, threads)
            }
            Backend::Crossbeam => {
                let (sender, receiver) = crossbeam_channel::unbounded::<Queued>();
                let ctx = Ctx::new(
                    Some(Spares::new(spares, receiver.clone())),
                    stack_size,
                    threads,
                    hooks,
                    &name,
                );
                let handles = channel::start(&ctx, &name, threads, stack_size, receiver)?;
                let exec = Exec::Channel {
                    intake: Intake::new(sender),
                    handles: Mutex::new(handles),
                };
                (ctx, exec, threads)
            }
        };
        Ok(Pool::assemble(name, threads, backend, ctx, exec))
    }

    fn assemble(name: String, threads: usize, backend: Backend, ctx: Arc<Ctx>, exec: Exec) -> Pool {
        let shared = Arc::new(Shared {
            name,
            threads,
            backend,
            ctx,
            exec,
        });
        let _ = shared.ctx.pool.set(Arc::downgrade(&shared));
        snapshot::register(&shared);
        Pool { shared }
    }

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
    pub fn from_rayon(pool: Arc<::rayon::ThreadPool>, name: impl Into<String>) -> Pool {
        let name = name.into();
        let threads = pool.current_num_threads();
        let (queue, receiver) = crossbeam_channel::unbounded::<Queued>();
        let spares = SpareConfig {
            name: name.clone(),
            threads,
            stack_size: None,
            max: builder::DEFAULT_SPARES,
            keep_alive: builder::DEFAULT_KEEP_ALIVE,
        };
        let ctx = Ctx::new(
            Some(Spares::new(spares, receiver)),
            None,
            threads,
            ThreadHooks::default(),
            &name,
        );
        let exec = Exec::Rayon {
            intake: Intake::new((pool, queue)),
            handles: Mutex::new(Vec::new()),
            owned: false,
        };
        Pool::assemble(name, threads, Backend::Rayon, ctx, exec)
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
        let stats = &self.shared.ctx.stats;
        if let Exec::Inline = self.shared.exec {
            if self.shared.ctx.closing() == OPEN {
                // Before the future exists: a finished one, no task, no allocation.
                return Future::finished(run_bare(|| stats.run_inline(f)));
            }
        }
        let counted = Counted::new(stats);
        let f = move || counted.run(f);
        // The closure waits beside the task's state, in one allocation.
        let task = queued(f);
        self.execute(task.clone());
        Future::from_shared(task)
    }

    /// Submits `f` to settle `task`, a task made before its closure was
    /// known (a `then` continuation): the closure is boxed into the state.
    /// Nothing when the task was decided meanwhile (cancelled).
    pub(crate) fn spawn_into<T, F>(&self, task: TaskRef<T>, f: F)
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let stats = &self.shared.ctx.stats;
        if let Exec::Inline = self.shared.exec {
            // Straight to the task: an inline task runs even on a worker of a
            // pool that is being shut down.
            if self.shared.ctx.closing() == OPEN {
                run_task(task, || stats.run_inline(move || Ok(f())), |_| ());
            } else {
                task.settle(Err(Error::Shutdown), false);
            }
            return;
        }
        let counted = Counted::new(stats);
        let f = move || counted.run(move || Ok(f()));
        if task.put_boxed(Box::new(f)) {
            self.execute(task);
        }
    }

    /// Queues `work` on the pool (runs it on the caller for the inline
    /// backend), or rejects it on this thread when the pool is shut down.
    /// A task's closure waits in the task's state, so that a wait on the
    /// task may claim and run it first; the pool runs it only if nobody did.
    pub(crate) fn execute(&self, work: Queued) {
        let shared = &*self.shared;
        // See `intake`: a submission that sees the pool open is handed over
        // before the backend is taken out; one that starts after
        // `is_shutdown()` turned true is refused.
        let closing = &shared.ctx.closing;
        let rejected = match &shared.exec {
            Exec::Inline => {
                if shared.ctx.closing() == OPEN {
                    work.run_from_queue();
                    None
                } else {
                    Some(work)
                }
            }
            Exec::Rayon { intake, owned, .. } => intake
                .submit(closing, work, |(pool, queue), work| {
                    // The pool keeps a receiver, so a send cannot fail while the sender lives.
                    let _ = queue.send(work);
                    if !shared.ctx.want_token() {
                        // Every rayon thread already runs a token: one of
                        // them takes this job.
                    } else if *owned {
                        rayon::spawn_token(pool);
                    } else {
                        rayon::spawn_adopted(pool, &shared.ctx);
                    }
                })
                .err(),
            Exec::Channel { intake, .. } => intake
                .submit(closing, work, |sender, work| {
                    // The pool keeps a receiver, so a send cannot fail while the sender lives.
                    let _ = sender.send(work);
                })
                .err(),
        };
        if let Some(work) = rejected {
            work.reject();
        }
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
    /// exited (spare threads too). Called from one of the pool's own tasks,
    /// it does not wait; nor does it when a task of the pool waits, directly
    /// or through others, on the task calling it (waiting could never end:
    /// the cycle is reported as a deadlock, the threads finish and exit on
    /// their own). Dropping the last `Pool` handle does the same, but
    /// waits only on a thread that runs no task: dropped inside a task (which
    /// a task of this pool may be waiting on), it lets the threads finish and
    /// exit on their own. Calling it again is harmless.
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
        self.shared.close(DRAINING, true);
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
        self.shared.close(DISCARDING, true);
    }

    /// True after [`shutdown_now`](Pool::shutdown_now): queued work fails
    /// with `Shutdown` instead of running.
    pub(crate) fn is_discarding(&self) -> bool {
        self.shared.ctx.closing() == DISCARDING
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
        self.shared.ctx.closing() != OPEN
    }

    /// The number of spare threads alive now (compensating blocked workers,
    /// or idle until their keep-alive ends).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(1).build()?;
    /// assert_eq!(pool.spare_threads(), 0, "nothing is blocked");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn spare_threads(&self) -> usize {
        self.shared.ctx.spares.as_ref().map_or(0, |s| s.live())
    }

    /// What the pool is doing, and has done: cheap enough to read often (a
    /// few relaxed loads and one short lock), and always on.
    ///
    /// Each figure is read on its own, not as one snapshot: while tasks
    /// come and go they may disagree by a task or two; once the pool is
    /// quiet they are exact. Tasks are what [`Pool::spawn`], the decorated
    /// functions and [`Future::then`] submit; the calls of an
    /// [`Instance`](crate::Instance) and the operations of a device run
    /// inside tasks of their own and are not counted one by one.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Pool};
    ///
    /// let pool = Pool::builder().threads(2).backend(Backend::Crossbeam).build()?;
    /// let ok = pool.spawn(|| 1);
    /// let bad = pool.spawn(|| -> u8 { panic!("overheated") });
    /// let _ = (ok.result(), bad.result());
    /// let stats = pool.stats();
    /// assert_eq!((stats.submitted, stats.completed, stats.panicked), (2, 2, 1));
    /// assert_eq!((stats.queued, stats.running, stats.threads), (0, 0, 2));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn stats(&self) -> PoolStats {
        let ctx = &self.shared.ctx;
        let counts = ctx.stats.read();
        PoolStats {
            threads: self.shared.threads,
            spare_threads: self.spare_threads(),
            queued: counts.queued,
            running: counts.running,
            blocked: ctx.spares.as_ref().map_or(0, |s| s.blocked_now()),
            submitted: counts.submitted,
            completed: counts.completed,
            panicked: counts.panicked,
            cancelled: counts.cancelled,
            rejected: counts.rejected,
        }
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

    /// What runs when a thread of this pool starts and stops (its scope
    /// threads too).
    pub(crate) fn thread_hooks(&self) -> ThreadHooks {
        self.shared.ctx.hooks.clone()
    }

    /// Counts a task submitted outside the pool's queue (a scope's) in its
    /// [`stats`](Pool::stats): run its closure through the result.
    /// Makes this thread (a scope's) count what it runs for this pool,
    /// until [`leave_counting`].
    pub(crate) fn enter_counting(&self) {
        stats::enter(&self.shared.ctx.stats);
    }

    pub(crate) fn count_task(&self) -> Counted {
        Counted::new(&self.shared.ctx.stats)
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
