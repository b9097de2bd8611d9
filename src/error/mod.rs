//! Why a task, a wait or a configuration failed: [`Error`] (also at the
//! crate root), and the details some of its variants carry.
//!
//! ```
//! use concertina::error::{ConfigError, Error};
//!
//! let refused: ConfigError = concertina::Pool::builder().name("").build().unwrap_err();
//! assert!(refused.to_string().contains("name"));
//! // `?` (or `From`) makes it the crate's error.
//! assert!(matches!(Error::from(refused), Error::Config(_)));
//! ```

use std::fmt;
use std::time::Duration;

mod device;
mod remote;
pub use device::{DeviceError, DeviceErrorKind, Source};
pub use remote::{LostKind, RemoteFailure, RemoteFailureKind, WorkerLost};

/// Why a [`Future`](crate::Future) did not deliver its value, or why a pool
/// could not be built.
///
/// Every waiter of a failed task receives the same error; it is cheap to
/// clone. `Display` is lowercase and names what went wrong.
///
/// # Examples
///
/// ```
/// use concertina::{Error, Pool};
///
/// let pool = Pool::builder().threads(1).build()?;
/// let f = pool.spawn(|| -> u32 { panic!("detector offline") });
/// match f.result() {
///     Err(Error::Panicked(message)) => assert_eq!(message, "detector offline"),
///     other => panic!("unexpected outcome: {other:?}"),
/// }
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The task panicked; the panic message is kept (or a placeholder when the
    /// payload was neither a `&str` nor a `String`). The worker survived.
    Panicked(String),
    /// The task was cancelled before it delivered a value.
    Cancelled,
    /// A wait was interrupted (Ctrl-C); the future it waited on was cancelled.
    Interrupted,
    /// The pool was shut down before the task could run.
    Shutdown,
    /// A pool or the default pool could not be configured as asked.
    Config(ConfigError),
    /// A call that depended on another future never ran, because that
    /// future failed; the dependency's own error is kept.
    DependencyFailed(Box<Error>),
    /// A device or parameter operation was refused (soft limits, read-only,
    /// unknown parameter, lock timeout, …).
    Device(DeviceError),
    /// The wait could never end: it closes a cycle of tasks, instance calls
    /// and derived futures waiting on each other. The [`Cycle`] names them,
    /// beginning with the task that waited. Every waiter of the future that
    /// closed the cycle receives this error, and that future's task sees
    /// [`cancelled()`](crate::cancelled) turn true.
    Deadlock(Cycle),
    /// A wait gave up after its timeout (what a [`TimedOut`] turns into
    /// with `?`). The futures it waited on were given back in the
    /// [`TimedOut`], so nothing was lost or cancelled by the wait.
    Timeout(Duration),
    /// The worker process of a remote instance is gone (it exited, was
    /// killed, crashed, or wrote something that is not a frame): every call
    /// pending on it and every later one fails with this. The text names
    /// how it ended and the last lines it wrote to its stderr; its
    /// [`kind`](WorkerLost::kind) says how it ended (an exit status, a
    /// signal, …).
    WorkerLost(WorkerLost),
    /// A call to a remote instance could not be made or answered: an
    /// unknown method, arguments or a result that do not decode, a code the
    /// worker does not serve or that refused its arguments; its
    /// [`kind`](RemoteFailure::kind) says which.
    Remote(RemoteFailure),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Panicked(message) => write!(f, "task panicked: {message}"),
            Error::Cancelled => f.write_str("task was cancelled"),
            Error::Interrupted => f.write_str("wait was interrupted"),
            Error::Shutdown => f.write_str("pool was shut down before the task ran"),
            Error::Config(err) => fmt::Display::fmt(err, f),
            Error::DependencyFailed(cause) => write!(f, "dependency failed: {cause}"),
            Error::Device(err) => fmt::Display::fmt(err, f),
            Error::Deadlock(cycle) => fmt::Display::fmt(cycle, f),
            Error::Timeout(after) => write!(f, "wait timed out after {after:?}"),
            Error::WorkerLost(why) => write!(f, "worker process lost: {why}"),
            Error::Remote(why) => write!(f, "remote call failed: {why}"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Panicked(message) => f.debug_tuple("Panicked").field(message).finish(),
            Error::Cancelled => f.write_str("Cancelled"),
            Error::Interrupted => f.write_str("Interrupted"),
            Error::Shutdown => f.write_str("Shutdown"),
            Error::Config(err) => f.debug_tuple("Config").field(err).finish(),
            Error::DependencyFailed(cause) => {
                f.debug_tuple("DependencyFailed").field(cause).finish()
            }
            Error::Device(err) => f.debug_tuple("Device").field(err).finish(),
            Error::Deadlock(cycle) => f.debug_tuple("Deadlock").field(cycle).finish(),
            Error::Timeout(after) => f.debug_tuple("Timeout").field(after).finish(),
            Error::WorkerLost(why) => f.debug_tuple("WorkerLost").field(why).finish(),
            Error::Remote(why) => f.debug_tuple("Remote").field(why).finish(),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(err) => Some(err),
            // The device error's text is this error's own: its source is
            // the getter's or setter's error, when there is one.
            Error::Device(err) => err.source(),
            Error::DependencyFailed(cause) => Some(&**cause),
            _ => None,
        }
    }
}

/// A wait that took futures and ran out of time, giving them back: every
/// `_timeout` wait that takes its futures returns this on timeout, holding
/// what it took (a [`Future`](crate::Future), a `Vec` of them), finished or
/// not. Nothing is cancelled or lost by the timeout.
///
/// With `?` it becomes [`Error::Timeout`], dropping what it holds (the
/// tasks go on, detached). To keep waiting, take them back with
/// [`into_inner`](TimedOut::into_inner).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use concertina::{Backend, Error, Pool};
///
/// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
/// let (release, gate) = std::sync::mpsc::channel::<()>();
/// let slow = pool.spawn(move || gate.recv().map(|()| "read"));
/// let timed_out = slow.result_timeout(Duration::from_millis(5)).unwrap_err();
/// assert_eq!(timed_out.after(), Duration::from_millis(5));
/// assert_eq!(timed_out.to_string(), "wait timed out after 5ms");
/// let slow = timed_out.into_inner();
/// release.send(()).unwrap();
/// assert_eq!(slow.result()?, Ok("read"));
///
/// // In a function returning `concertina::Error`, `??` surfaces both.
/// fn read(pool: &Pool) -> Result<u8, Error> {
///     Ok(pool.spawn(|| 7).result_timeout(Duration::from_secs(60))??)
/// }
/// assert_eq!(read(&pool)?, 7);
/// # Ok::<(), Error>(())
/// ```
#[must_use = "the futures waited on are in it: dropping it detaches their tasks"]
pub struct TimedOut<F> {
    after: Duration,
    pending: F,
}

impl<F> TimedOut<F> {
    pub(crate) fn new(after: Duration, pending: F) -> Self {
        TimedOut { after, pending }
    }

    /// The timeout that passed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use concertina::{Backend, Pool};
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let waiting = vec![pool.spawn(move || gate.recv().is_ok())];
    /// let timed_out = concertina::wait_all_timeout(waiting, Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(timed_out.after(), Duration::from_millis(1));
    /// release.send(()).unwrap();
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn after(&self) -> Duration {
        self.after
    }

    /// What the wait took, given back: the futures, finished or not.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use concertina::{Backend, Pool};
    ///
    /// let pool = Pool::builder().threads(1).backend(Backend::Crossbeam).build()?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let futures = vec![pool.spawn(move || gate.recv().is_ok()), concertina::Future::ready(true)];
    /// let futures = concertina::wait_all_timeout(futures, Duration::ZERO).unwrap_err().into_inner();
    /// assert_eq!(futures.len(), 2, "all of them, the finished one too");
    /// release.send(()).unwrap();
    /// assert_eq!(concertina::wait_all(futures), [Ok(true), Ok(true)]);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn into_inner(self) -> F {
        self.pending
    }
}

impl<F> fmt::Display for TimedOut<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wait timed out after {:?}", self.after)
    }
}

impl<F> fmt::Debug for TimedOut<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimedOut")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl<F> std::error::Error for TimedOut<F> {}

impl<F> From<TimedOut<F>> for Error {
    fn from(timed_out: TimedOut<F>) -> Self {
        Error::Timeout(timed_out.after)
    }
}

impl From<ConfigError> for Error {
    fn from(err: ConfigError) -> Self {
        Error::Config(err)
    }
}

/// A configuration that was refused: a builder value out of range, an
/// environment variable with a value that is not accepted, or a second
/// configuration of the default pool.
///
/// The message names what was wrong and what is accepted.
///
/// # Examples
///
/// ```
/// use concertina::{Backend, Pool};
///
/// let err = Pool::builder().backend(Backend::Rayon).threads(0).build().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "thread count 0 is not accepted: expected a whole number from 1 to 4096",
/// );
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigError {
    // Boxed: a configuration error is rare, and a small `Error` keeps every
    // future's outcome slot small.
    kind: Box<ConfigErrorKind>,
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum ConfigErrorKind {
    Threads(usize),
    Name(String),
    Stack {
        bytes: usize,
        min: usize,
    },
    Env {
        var: &'static str,
        value: String,
        accepted: &'static str,
    },
    AlreadyInitialised,
    Spawn(String),
    Spares(usize),
    KeepAlive(Duration),
    Transport(String),
}

/// The largest pool accepted by the builder and by `CONCERTINA_THREADS`.
pub(crate) const MAX_THREADS: usize = 4096;

impl ConfigError {
    fn of(kind: ConfigErrorKind) -> Self {
        ConfigError {
            kind: Box::new(kind),
        }
    }

    pub(crate) fn threads(n: usize) -> Self {
        Self::of(ConfigErrorKind::Threads(n))
    }

    pub(crate) fn name(name: &str) -> Self {
        Self::of(ConfigErrorKind::Name(name.to_owned()))
    }

    pub(crate) fn stack(bytes: usize, min: usize) -> Self {
        Self::of(ConfigErrorKind::Stack { bytes, min })
    }

    pub(crate) fn env(var: &'static str, value: &str, accepted: &'static str) -> Self {
        Self::of(ConfigErrorKind::Env {
            var,
            value: value.to_owned(),
            accepted,
        })
    }

    pub(crate) fn already_initialised() -> Self {
        Self::of(ConfigErrorKind::AlreadyInitialised)
    }

    pub(crate) fn spares(n: usize) -> Self {
        Self::of(ConfigErrorKind::Spares(n))
    }

    pub(crate) fn keep_alive(d: Duration) -> Self {
        Self::of(ConfigErrorKind::KeepAlive(d))
    }

    /// A remote transport that cannot be used as configured: why, and what
    /// would do.
    pub(crate) fn transport(why: impl Into<String>) -> Self {
        Self::of(ConfigErrorKind::Transport(why.into()))
    }

    pub(crate) fn spawn(err: impl fmt::Display) -> Self {
        Self::of(ConfigErrorKind::Spawn(err.to_string()))
    }

    /// The environment variable whose value was refused, if that was the cause.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Backend, Pool};
    ///
    /// match Pool::builder().backend(Backend::Crossbeam).threads(0).build() {
    ///     Err(err) => assert_eq!(err.variable(), None),
    ///     Ok(pool) => panic!("0 threads accepted: {pool:?}"),
    /// }
    /// ```
    pub fn variable(&self) -> Option<&'static str> {
        match &*self.kind {
            ConfigErrorKind::Env { var, .. } => Some(var),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.kind {
            ConfigErrorKind::Threads(n) => write!(
                f,
                "thread count {n} is not accepted: expected a whole number from 1 to {MAX_THREADS}"
            ),
            ConfigErrorKind::Name(name) => write!(
                f,
                "pool name {name:?} is not accepted: expected 1 to 64 characters without NUL"
            ),
            ConfigErrorKind::Stack { bytes, min } => write!(
                f,
                "stack size {bytes} bytes is not accepted: expected at least {min} bytes"
            ),
            ConfigErrorKind::Env { var, value, accepted } => {
                write!(f, "invalid value {value:?} for {var}: expected {accepted}")
            }
            ConfigErrorKind::AlreadyInitialised => f.write_str(
                "the default pool is already initialised: configure() must be called once, before its first use",
            ),
            ConfigErrorKind::Spawn(err) => write!(f, "could not start the pool's threads: {err}"),
            ConfigErrorKind::Spares(n) => write!(
                f,
                "spare thread count {n} is not accepted: expected a whole number from 0 to {MAX_THREADS}"
            ),
            ConfigErrorKind::KeepAlive(d) => write!(
                f,
                "spare keep-alive {d:?} is not accepted: expected from 1ms to 3600s"
            ),
            ConfigErrorKind::Transport(why) => f.write_str(why),
        }
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.kind, f)
    }
}

impl std::error::Error for ConfigError {}

/// The tasks of a deadlock, in the order they wait on each other: the first
/// waits on the second, …, and the last on the first.
///
/// # Examples
///
/// Two tasks that wait on each other: the wait that closes the cycle
/// returns the error instead of hanging.
///
/// ```
/// use concertina::{Backend, Error, Future, Pool};
/// use std::sync::mpsc;
///
/// let pool = Pool::builder().threads(2).backend(Backend::Crossbeam).build()?;
/// let (to_a, from_b) = mpsc::channel::<Future<Result<(), Error>>>();
/// let a = pool.spawn(move || from_b.recv().unwrap().result().and_then(|inner| inner));
/// let a_done = a.when_done();
/// let b = pool.spawn(move || a_done.result());
/// to_a.send(b).unwrap();
/// match a.result()? {
///     Err(Error::Deadlock(cycle)) => {
///         assert!(cycle.to_string().starts_with("deadlock: "));
///         assert!(cycle.tasks().len() >= 2);
///     }
///     other => panic!("expected a deadlock, got {other:?}"),
/// }
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Cycle {
    // Boxed: a deadlock is rare, and a small `Error` keeps outcome slots small.
    tasks: Box<[String]>,
}

impl Cycle {
    pub(crate) fn new(tasks: Vec<String>) -> Self {
        Cycle {
            tasks: tasks.into_boxed_slice(),
        }
    }

    /// What waits on what: the first entry waits on the second, and so on;
    /// the last waits on the first.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn report(cycle: &concertina::error::Cycle) {
    /// for task in cycle.tasks() {
    ///     eprintln!("  {task}");
    /// }
    /// # }
    /// ```
    pub fn tasks(&self) -> &[String] {
        &self.tasks
    }
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadlock: ")?;
        for (i, task) in self.tasks.iter().enumerate() {
            if i == 0 {
                write!(f, "{task} waits on ")?;
            } else {
                write!(f, "{task}, which waits on ")?;
            }
        }
        match self.tasks.first() {
            Some(first) => write!(f, "{first}"),
            None => f.write_str("itself"),
        }
    }
}

impl fmt::Debug for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.tasks.iter()).finish()
    }
}

/// Turns a panic payload into the message carried by [`Error::Panicked`].
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic payload that is not a string".to_owned()
    }
}
