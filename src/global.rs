//! The process-wide default pool, configured from the environment or by
//! [`configure`].

use std::sync::OnceLock;

use crate::error::{ConfigError, Error};
use crate::future::Future;
use crate::pool::{Pool, PoolBuilder};

static DEFAULT: OnceLock<Result<Pool, Error>> = OnceLock::new();

/// The default pool's builder: named `default`; its `ctrlc(false)` leaves
/// SIGINT alone for the whole process.
fn default_builder(caller: PoolBuilder) -> PoolBuilder {
    Pool::builder()
        .name("default")
        .for_default_pool()
        .merge(caller)
}

/// The default pool, built at first use from the environment (or from
/// [`configure`]).
///
/// # Errors
///
/// [`Error::Config`] when a `CONCERTINA_*` variable holds a value that is
/// not accepted, or the threads cannot be started. The error is kept: every
/// later call returns it again.
///
/// # Examples
///
/// ```
/// let pool = concertina::default_pool()?;
/// assert_eq!(pool.name(), "default");
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn default_pool() -> Result<&'static Pool, Error> {
    DEFAULT
        .get_or_init(|| {
            default_builder(Pool::builder())
                .build()
                .map_err(Error::from)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Lets every task submitted to the default pool finish, then stops its
/// threads: the one line to end `main` with when tasks may still be queued
/// or running there (a detached `spawn`, an [`Instance`](crate::Instance)'s
/// queued calls, an `#[asynchronous]` function whose future was dropped).
///
/// Without it, what still runs on the default pool when `main` returns is
/// abandoned: the process exits without waiting for it (as it does for any
/// thread), and those tasks never finish. Afterwards, submissions to the
/// default pool fail with [`Error::Shutdown`]. Nothing happens when the
/// default pool was never used; called from one of its own tasks, it does
/// not wait (see [`Pool::shutdown`]).
///
/// # Examples
///
/// ```
/// let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let written = log.clone();
/// // Detached: nobody waits for this future.
/// drop(concertina::spawn(move || written.lock().unwrap().push("archived")));
/// // The last line of `main`:
/// concertina::shutdown();
/// assert_eq!(*log.lock().unwrap(), ["archived"]);
/// assert_eq!(concertina::spawn(|| 1).result(), Err(concertina::Error::Shutdown));
/// ```
pub fn shutdown() {
    if let Some(Ok(pool)) = DEFAULT.get() {
        pool.shutdown();
    }
}

/// Configures the default pool before its first use. The builder's name
/// defaults to `default`; fields left unset come from the environment as
/// usual. The default pool installs the Ctrl-C handler unless
/// `CONCERTINA_CTRLC=0` or the builder says [`ctrlc(false)`](PoolBuilder::ctrlc),
/// which here leaves SIGINT alone for the whole process: no other pool,
/// hook or remote instance installs it then.
///
/// # Errors
///
/// [`Error::Config`] when the pool is already initialised (by an earlier
/// `configure`, or by a first use such as [`spawn`]); the running pool is
/// kept unchanged. Also the errors of [`PoolBuilder::build`].
///
/// # Examples
///
/// ```
/// use concertina::{Backend, Pool};
///
/// concertina::configure(Pool::builder().threads(2).backend(Backend::Crossbeam))?;
/// assert_eq!(concertina::default_pool()?.threads(), 2);
/// assert!(concertina::configure(Pool::builder()).is_err(), "only once");
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn configure(builder: PoolBuilder) -> Result<(), Error> {
    if DEFAULT.get().is_some() {
        return Err(ConfigError::already_initialised().into());
    }
    let pool = default_builder(builder).build()?;
    DEFAULT
        .set(Ok(pool))
        .map_err(|_| ConfigError::already_initialised().into())
}

/// Runs `f` on the default pool and returns the handle of its result.
///
/// When the default pool cannot be built (a bad `CONCERTINA_*` value), the
/// returned future has failed with that [`Error::Config`], naming the variable.
///
/// # Examples
///
/// ```
/// let exposure = concertina::spawn(|| {
///     std::thread::sleep(std::time::Duration::from_millis(5));
///     1024u32
/// });
/// assert_eq!(exposure.result(), Ok(1024));
/// ```
pub fn spawn<T, F>(f: F) -> Future<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match default_pool() {
        Ok(pool) => pool.spawn(f),
        Err(error) => Future::failed(error),
    }
}

/// Turns `f` into a function that runs `f` on the default pool and returns
/// a `Future` (Concert's `@async` decorator). Several arguments travel as a
/// tuple; for a named `fn`, the `#[asynchronous]` attribute does the same.
///
/// # Examples
///
/// ```
/// fn move_to(position: f64) -> f64 {
///     // drive the motor, then read back where it stopped
///     position
/// }
///
/// let move_to = concertina::asynchronous(move_to);
/// let a = move_to(1.5);
/// let b = move_to(-2.0);
/// assert_eq!((a.result()?, b.result()?), (1.5, -2.0));
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn asynchronous<A, T, F>(f: F) -> impl Fn(A) -> Future<T> + Clone + Send + Sync + 'static
where
    A: Send + 'static,
    T: Send + 'static,
    F: Fn(A) -> T + Send + Sync + 'static,
{
    let f = std::sync::Arc::new(f);
    move |arg| {
        let f = f.clone();
        spawn(move || f(arg))
    }
}
