//! Run blocking functions concurrently on a worker pool and get blocking,
//! cancellable [`Future`] handles back — no async executor anywhere.
//!
//! ```
//! use std::time::Duration;
//!
//! // Three slow "measurements", run side by side on the default pool.
//! let reads: Vec<concertina::Future<u32>> = (0..3)
//!     .map(|channel| concertina::spawn(move || {
//!         std::thread::sleep(Duration::from_millis(20)); // the detector integrates
//!         channel * 100
//!     }))
//!     .collect();
//! let counts: Vec<u32> = reads.into_iter().map(|f| f.result()).collect::<Result<_, _>>()?;
//! assert_eq!(counts, [0, 100, 200]);
//! # Ok::<(), concertina::Error>(())
//! ```
//!
//! * Submit with [`spawn`] (the default pool), [`Pool::spawn`], or a function
//!   decorated by [`asynchronous()`] or `#[asynchronous]`.
//! * Wait with [`Future::result`], [`Future::result_timeout`],
//!   [`Future::join`] or [`Future::wait_timeout`]; `.await` it from async
//!   code. [`Future::shared`] gives a clonable handle for many readers.
//! * Cancel with [`Future::cancel`]: a queued task never runs, a running one
//!   sees [`cancelled()`] turn true, and the cleanup registered with
//!   [`Future::on_cancel`] runs at once.
//! * A panic becomes [`Error::Panicked`] at the handle; the worker survives.
//! * A wait runs nothing but the task it waits on (when still queued); a
//!   worker blocked in a wait is compensated by a spare thread, so nested
//!   and cross-pool waits finish, even on one-thread pools, and a real
//!   cycle of waits is reported as [`Error::Deadlock`] instead of hanging.
//! * [`scope()`] runs tasks that borrow from the caller's stack.
//! * [`Instance`] runs calls on one value in order on the shared pool;
//!   [`RequestPool`], [`wait_all`], [`wait_any`], [`try_wait_all`],
//!   [`as_completed`] wait for many (each takes its futures and gives every
//!   one back).
//! * Ctrl-C while a thread waits cancels what it waits on and returns
//!   [`Error::Interrupted`]; [`interrupt::on_interrupt`] hooks stop the
//!   devices.
//! * [`remote`](mod@remote) runs a code in a worker process of its own (legacy codes
//!   with global state side by side, a crash contained), its calls
//!   returning futures as local ones do.
//! * [`Pool::stats`] and the builder's thread hooks watch a pool;
//!   [`shutdown`] lets the default pool's tasks finish at the end of `main`.
//! * [`Device`], [`Parameter`] and [`device::Command`] give Concert-style
//!   devices: one operation at a time per parameter or command (a cancelled
//!   set never applies; the next waits for its stop), soft limits, fallible
//!   I/O, and [`lock!`] for exclusive access, owned by the task and lent to
//!   what it waits on.
//! * `CONCERTINA_DISABLE_ASYNC=1` runs everything inline on the calling
//!   thread, futures still returned — for debugging.
//!
//! The names, and the rules every wait follows, are explained in
//! `docs/api.md`.
//!
//! # Features
//!
//! * `macros` (default): the `#[asynchronous]` attribute.
//! * `tracing`: spans for tasks (pool, task id), instance calls (instance,
//!   call id) and device operations (parameter, operation), and events for
//!   a cancel, a Ctrl-C, a panic and a deadlock, through the
//!   [`tracing`](https://docs.rs/tracing) crate, all under the target
//!   `concertina`. Without it, nothing of it is compiled in.
//! * `mpi`: remote instances on the worker ranks of an MPI job
//!   (`mpirun -n N`: rank 0 runs the program, ranks 1 to N-1 serve), through
//!   [rsmpi](https://docs.rs/mpi); needs an MPI library and libclang to
//!   build. The transport is chosen by `remote::RemoteBuilder::transport` or
//!   `CONCERTINA_TRANSPORT`, not by the code that makes the calls.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub, missing_debug_implementations)]

// Alphabetically. Imports run one way: the lower layers (sync, error,
// interrupt, worker, park, cancel, task) never name the higher ones.
mod awaiting;
mod cancel;
mod combine;
pub mod device;
pub mod error;
mod future;
mod global;
mod graph;
mod instance;
pub mod interrupt;
#[cfg(all(test, loom))]
mod loom_models;
mod park;
pub mod pool;
#[cfg(unix)]
pub mod remote;
mod request_pool;
mod scope;
mod serial;
mod shared;
mod sync;
mod task;
mod trace;
pub mod wait;
mod worker;

// The core vocabulary; the less common items are in the modules above.
pub use awaiting::Awaiting;
pub use cancel::{cancelled, check_cancelled, CancelHandle};
pub use device::{Device, Parameter};
pub use error::{Error, TimedOut};
pub use future::Future;
pub use global::{asynchronous, configure, default_pool, shutdown, spawn};
pub use instance::Instance;
pub use pool::{snapshot, Backend, Pool};
pub use request_pool::{RequestId, RequestPool};
pub use scope::{scope, Scope};
pub use shared::Shared;
pub use wait::{
    as_completed, as_completed_timeout, try_result_all, try_wait_all, try_wait_all_timeout,
    wait_all, wait_all_timeout, wait_any, wait_any_timeout,
};

/// Makes a function return a [`Future`] of its result: calling it runs the
/// body on the default pool (or the pool given with `pool = expr`).
///
/// Works on free functions and on methods taking `&self` or `self` of a
/// type that is `Clone + Send + Sync + 'static` (the receiver is cloned into
/// the task). Arguments must be owned (`'static`). The original body stays
/// callable as `<name>_blocking`.
///
/// # Examples
///
/// ```
/// #[concertina::asynchronous]
/// fn move_to(position: f64) -> f64 {
///     std::thread::sleep(std::time::Duration::from_millis(5));
///     position
/// }
///
/// let motion: concertina::Future<f64> = move_to(2.5);
/// assert_eq!(motion.result()?, 2.5);
/// assert_eq!(move_to_blocking(1.0), 1.0);
/// # Ok::<(), concertina::Error>(())
/// ```
#[cfg(feature = "macros")]
pub use concertina_macros::asynchronous;

/// Makes the public methods of an impl block callable in a worker process:
/// implements [`remote::Code`] for the type (the constructor is `new`, or
/// `Default`) and generates `<Type>Remote`, whose `start` begins a worker
/// and whose methods return a [`Future`] each (plus `<method>_many` for
/// many calls in one message). See [`remote`](mod@remote).
///
/// # Examples
///
/// ```no_run
/// struct Counter(u64);
///
/// #[concertina::remote]
/// impl Counter {
///     pub fn new(start: u64) -> Self { Counter(start) }
///     pub fn add(&mut self, n: u64) -> u64 { self.0 += n; self.0 }
/// }
///
/// fn main() -> Result<(), concertina::Error> {
///     let _session = concertina::remote::serve_if_worker(&[concertina::remote::entry::<Counter>()]);
///     let counter = CounterRemote::start(10)?;
///     assert_eq!(counter.add(5).result()?, 15);
///     Ok(())
/// }
/// ```
#[cfg(all(feature = "macros", unix))]
pub use concertina_macros::remote;

/// The README's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The guide's examples, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
struct GuideDoctests;

/// The examples of the guide for Concert users, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/from-concert.md")]
struct FromConcertDoctests;

/// The examples of the guide for AMUSE and OMUSE users, run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/from-amuse.md")]
struct FromAmuseDoctests;
