//! Configuring a pool: [`PoolBuilder`] and the [`Backend`]s; the unset
//! fields follow the `CONCERTINA_*` variables (see `env`).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, MAX_THREADS};
use crate::interrupt;
use crate::pool::env::Env;
use crate::pool::spare::SpareConfig;
use crate::pool::{Pool, ThreadHooks};

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
    max_spare_threads: Option<usize>,
    spare_keep_alive: Option<Duration>,
    ctrlc: Option<bool>,
    hooks: ThreadHooks,
    /// Set for the default pool only: its `ctrlc(false)` leaves SIGINT
    /// alone for the whole process.
    default_pool: bool,
}

impl PoolBuilder {
    /// The number of worker threads, from 1 to 4096. Checked in every mode
    /// (also when `CONCERTINA_DISABLE_ASYNC=1` runs the pool inline), and
    /// ignored by a builder that chose [`Backend::Inline`] itself.
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

    /// With `true`, a panicking task of this pool prints nothing — no
    /// message, no backtrace under `RUST_BACKTRACE=1` — while the panic
    /// still reaches its waiter as [`Error::Panicked`](crate::Error::Panicked)
    /// with its message: for a sweep whose failures the program reports
    /// itself. Other panics print as before (a panic hook installed at the
    /// first such pool hands them to the hook there was). Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Error, Pool};
    ///
    /// let sweep = Pool::builder().threads(2).quiet_panics(true).build()?;
    /// let run = sweep.spawn(|| -> f64 { panic!("diverged at step 50") });
    /// // Nothing printed; the waiter gets the message.
    /// assert_eq!(run.result(), Err(Error::Panicked("diverged at step 50".into())));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn quiet_panics(mut self, quiet: bool) -> Self {
        self.hooks.quiet_panics = quiet;
        self
    }

    /// The most spare threads the pool starts to compensate workers blocked
    /// in waits (see [`Pool`]): 0 to 4096, 256 by default. With 0, a blocked
    /// worker is not compensated (waits still claim what they wait on).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = concertina::Pool::builder().threads(2).max_spare_threads(16).build()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn max_spare_threads(mut self, spares: usize) -> Self {
        self.max_spare_threads = Some(spares);
        self
    }

    /// How long an idle spare thread waits for work before it exits: 1 ms to
    /// 1 hour, 5 s by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = concertina::Pool::builder().spare_keep_alive(Duration::from_millis(100)).build()?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn spare_keep_alive(mut self, keep_alive: Duration) -> Self {
        self.spare_keep_alive = Some(keep_alive);
        self
    }

    /// Whether building this pool installs the Ctrl-C handler (once per
    /// process; never over a SIGINT handler the application already has).
    /// Unset, every pool installs it unless `CONCERTINA_CTRLC=0` or the
    /// application gave `ctrlc(false)` to [`configure`](crate::configure):
    /// a program that uses only pools of its own still has its waits
    /// interrupted and its [interrupt hooks](crate::interrupt::on_interrupt)
    /// run. `ctrlc(false)` keeps this pool from installing it (given to
    /// `configure`, it leaves SIGINT alone for the whole process); `ctrlc(true)`
    /// installs it whatever the environment says. See
    /// [`interrupt`](mod@crate::interrupt) for what a Ctrl-C then does.
    ///
    /// # Errors
    ///
    /// Left unset, a `CONCERTINA_CTRLC` that holds a value not accepted
    /// makes [`build`](PoolBuilder::build) fail, naming it.
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
            max_spare_threads: other.max_spare_threads.or(self.max_spare_threads),
            spare_keep_alive: other.spare_keep_alive.or(self.spare_keep_alive),
            ctrlc: other.ctrlc.or(self.ctrlc),
            hooks: ThreadHooks {
                start: other.hooks.start.or(self.hooks.start),
                stop: other.hooks.stop.or(self.hooks.stop),
                quiet_panics: other.hooks.quiet_panics || self.hooks.quiet_panics,
            },
            default_pool: self.default_pool || other.default_pool,
        }
    }

    /// Runs `hook` on each thread of the pool when it starts, before it
    /// takes a task: workers, spare threads, and the threads of its
    /// [scopes](crate::Pool::scope) (Python's `initializer`, rayon's
    /// `start_handler`). Use it to set a thread's affinity or priority, or
    /// to open a per-thread resource in a thread-local. A panic in the hook
    /// is reported by the panic hook, and the thread goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use concertina::{Backend, Pool};
    ///
    /// let started = Arc::new(AtomicUsize::new(0));
    /// let counted = started.clone();
    /// let pool = Pool::builder()
    ///     .threads(2)
    ///     .backend(Backend::Crossbeam)
    ///     .on_thread_start(move || { counted.fetch_add(1, Ordering::SeqCst); })
    ///     .build()?;
    /// pool.shutdown();
    /// assert_eq!(started.load(Ordering::SeqCst), 2);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn on_thread_start(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.hooks.start = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` on each thread of the pool when it stops: at shutdown,
    /// or when a spare thread retires (rayon's `exit_handler`). A panic in
    /// the hook is reported by the panic hook.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use concertina::{Backend, Pool};
    ///
    /// let stopped = Arc::new(AtomicUsize::new(0));
    /// let counted = stopped.clone();
    /// let pool = Pool::builder()
    ///     .threads(3)
    ///     .backend(Backend::Rayon)
    ///     .on_thread_stop(move || { counted.fetch_add(1, Ordering::SeqCst); })
    ///     .build()?;
    /// pool.shutdown();
    /// assert_eq!(stopped.load(Ordering::SeqCst), 3);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn on_thread_stop(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.hooks.stop = Some(Arc::new(hook));
        self
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
    /// A [`ConfigError`] (which `?` turns into
    /// [`Error::Config`](crate::Error::Config)) when a value is out of range
    /// (0 threads, an empty name, a tiny stack), when a `CONCERTINA_*`
    /// environment variable that the pool reads holds a value that is not
    /// accepted, or when the threads cannot be started. A variable is read only for what the
    /// builder leaves unset (an explicit value wins, even over a variable
    /// that is not valid); `CONCERTINA_CTRLC` only for the default pool. A
    /// program gets the same errors whether `CONCERTINA_DISABLE_ASYNC=1`
    /// runs it inline or not: only a builder that chose
    /// [`Backend::Inline`] itself reads and checks no thread count.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Pool};
    ///
    /// let err = Pool::builder().name("").build().unwrap_err();
    /// assert!(err.to_string().contains("pool name"));
    /// let inline = Pool::builder().backend(Backend::Inline).threads(0).build()?;
    /// assert_eq!(inline.threads(), 0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn build(self) -> Result<Pool, ConfigError> {
        // A variable is read only where the builder leaves its value open:
        // an explicit value wins, even over a variable that is not valid.
        let env = Env::read();
        // The same program gets the same errors in every mode: a backend
        // left open reads (and checks) `CONCERTINA_BACKEND` and the thread
        // count even when `CONCERTINA_DISABLE_ASYNC=1` then runs it inline.
        let backend = match self.backend {
            Some(backend) => backend,
            None => {
                let disabled = env.disable_async.clone()?;
                let configured = env.backend.clone()?;
                if disabled {
                    Backend::Inline
                } else {
                    configured.unwrap_or(Backend::Rayon)
                }
            }
        };
        let threads = match (self.backend, self.threads) {
            // Chosen inline by the program: it runs tasks on the caller,
            // with no threads to count.
            (Some(Backend::Inline), _) => 0,
            (_, Some(n)) if (1..=MAX_THREADS).contains(&n) => n,
            (_, Some(n)) => return Err(ConfigError::threads(n)),
            (_, None) => match env.threads.clone()? {
                Some(n) => n,
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
        };
        let threads = if backend == Backend::Inline {
            0
        } else {
            threads
        };
        let name = self.name.unwrap_or_else(|| "pool".to_owned());
        if name.is_empty() || name.chars().count() > 64 || name.contains('\0') {
            return Err(ConfigError::name(&name));
        }
        if let Some(bytes) = self.stack_size {
            if bytes < MIN_STACK {
                return Err(ConfigError::stack(bytes, MIN_STACK));
            }
        }
        let max_spare = self.max_spare_threads.unwrap_or(DEFAULT_SPARES);
        if max_spare > MAX_THREADS {
            return Err(ConfigError::spares(max_spare));
        }
        let keep_alive = self.spare_keep_alive.unwrap_or(DEFAULT_KEEP_ALIVE);
        if !(MIN_KEEP_ALIVE..=MAX_KEEP_ALIVE).contains(&keep_alive) {
            return Err(ConfigError::keep_alive(keep_alive));
        }
        let spares = SpareConfig {
            name: name.clone(),
            threads,
            stack_size: self.stack_size,
            max: max_spare,
            keep_alive,
        };
        // `CONCERTINA_CTRLC` is read only where the builder leaves the
        // choice open, and checked before any thread starts.
        let install = match self.ctrlc {
            Some(install) => install,
            None => env.ctrlc.clone()?,
        };
        let snapshots = env.snapshot_on_sigquit.clone()?;
        if self.hooks.quiet_panics {
            crate::task::running::quiet_panics();
        }
        let pool = Pool::start(name, backend, spares, self.hooks)?;
        if snapshots {
            super::snapshot::print_on_sigquit();
        }
        crate::trace::pool_built(pool.name(), &pool.backend(), pool.threads());
        match (self.ctrlc, install) {
            (Some(true), _) => {
                interrupt::install_handler();
            }
            // The application's word, for the whole process: on the
            // default pool, or in the environment.
            (Some(false), _) if self.default_pool => interrupt::leave_alone(),
            // Another pool's, for that pool only.
            (Some(false), _) => {}
            (None, true) => {
                interrupt::rely_on_handler();
            }
            (None, false) => interrupt::leave_alone(),
        }
        Ok(pool)
    }
}

const MIN_STACK: usize = 16 << 10;
pub(crate) const DEFAULT_SPARES: usize = 256;
pub(crate) const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5);
pub(crate) const MIN_KEEP_ALIVE: Duration = Duration::from_millis(1);
pub(crate) const MAX_KEEP_ALIVE: Duration = Duration::from_secs(3600);
