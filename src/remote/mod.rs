//! Instances in worker processes (AMUSE's model): a code whose state is
//! process-global (a legacy library, a Fortran COMMON block) runs in a
//! process of its own, so that two instances do not share that state and a
//! crash takes only its own worker down.
//!
//! A call crosses the process boundary by name, its arguments and result
//! in postcard; the caller gets the same [`Future`](crate::Future) as for a local call.
//! The worker is the same executable started again in worker mode: call
//! [`serve_if_worker`] first thing in `main`.
//!
//! ```no_run
//! use concertina::remote::{self, Code, RemoteError, RemoteInstance};
//!
//! #[derive(Default)]
//! struct Counter(u64);
//!
//! impl Code for Counter {
//!     const NAME: &'static str = "Counter";
//!     fn construct(_args: &[u8]) -> Result<Self, RemoteError> {
//!         Ok(Counter::default())
//!     }
//!     fn dispatch(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>, RemoteError> {
//!         match method {
//!             "add" => {
//!                 let (n,): (u64,) = remote::decode(args)?;
//!                 self.0 += n;
//!                 remote::encode(&self.0)
//!             }
//!             _ => Err(RemoteError::unknown_method(method)),
//!         }
//!     }
//! }
//!
//! fn main() -> Result<(), concertina::Error> {
//!     let _session = remote::serve_if_worker(&[remote::entry::<Counter>()]);
//!     let counter = RemoteInstance::start::<Counter>(&())?;
//!     assert_eq!(counter.spawn::<u64>("add", &(5u64,)).result()?, 5);
//!     Ok(())
//! }
//! ```
//!
//! # Types of your own
//!
//! Arguments and results cross in postcard through serde: numbers,
//! strings, `Vec`s, tuples, `Option`s and the like work as they are; a type
//! of your own needs `serde::Serialize` and `serde::Deserialize`. Add
//! `serde = { version = "1", features = ["derive"] }` to your
//! `Cargo.toml` and derive them:
//!
//! ```
//! use concertina::remote;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Forcing {
//!     wind: Vec<f64>,
//!     label: String,
//! }
//!
//! // What a call of `evolve(&mut self, forcing: Forcing, dt: f64)` sends.
//! let forcing = Forcing { wind: vec![1.5, 2.0], label: "storm".into() };
//! let bytes = remote::encode(&(&forcing, 0.5_f64))?;
//! assert_eq!(remote::decode::<(Forcing, f64)>(&bytes)?, (forcing, 0.5));
//! # Ok::<(), remote::RemoteError>(())
//! ```
//!
//! A large numeric array (`Vec<f64>`) costs its bytes, not a message per
//! element: see the figures in `docs/performance.md`.
//!
//! # Large arrays, every step
//!
//! A method of a `#[concertina::remote]` code may borrow its arguments
//! (`&[f64]`, `&str`, any `&T` whose owned form is `Deserialize`) and
//! return a borrow of its own state. The worker decodes a borrowed
//! argument into the value its instance's thread kept from the method's
//! call before, so an array of the same size lands in memory already
//! touched (that value, as large as the largest argument it held, is freed
//! with the instance); a borrowed result is encoded where it lies. The client's
//! `<method>_into(args.., into)` decodes the result into `into` (a buffer
//! of the trip before) and gives it back. A round trip of a 100 MiB array
//! then allocates nothing on either side, which on Linux matters more than
//! the copy: new memory costs a page fault per 4 KiB page.
//!
//! ```no_run
//! use concertina::remote;
//!
//! #[derive(Default)]
//! pub struct Ocean {
//!     sst: Vec<f64>,
//! }
//!
//! #[concertina::remote]
//! impl Ocean {
//!     /// Takes the atmosphere's forcing, gives its surface temperatures.
//!     pub fn couple(&mut self, forcing: &[f64]) -> &[f64] {
//!         self.sst.clear();
//!         self.sst.extend(forcing.iter().map(|f| 273.15 + f));
//!         &self.sst
//!     }
//! }
//!
//! fn main() -> Result<(), concertina::Error> {
//!     let _session = remote::serve_if_worker(&[remote::entry::<Ocean>()]);
//!     let ocean = OceanRemote::start()?;
//!     let forcing = vec![0.5; 13_000_000];
//!     let mut sst = Vec::new();
//!     for _step in 0..10 {
//!         // The result lands in last step's buffer.
//!         sst = ocean.couple_into(&forcing, sst).result()?;
//!     }
//!     assert_eq!(sst[0], 273.65);
//!     Ok(())
//! }
//! ```

mod address;
mod arguments;
mod builder;
pub(crate) mod frame;
mod instance;
mod link;
mod local;
#[cfg(feature = "mpi")]
mod mpi;
mod process;
mod server;
mod session;
mod spare;
mod worker;

use std::fmt;

use crate::error::{RemoteFailure, RemoteFailureKind};

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use arguments::Arguments;
pub use builder::RemoteBuilder;
pub use instance::RemoteInstance;
pub use server::WORKER_ENV;
pub use session::{serve_if_worker, Session};
pub use worker::Worker;

/// The environment variable that chooses where remote instances run when
/// the builder does not say: `local` (worker processes on this machine) or
/// `mpi` (the worker ranks of the MPI job this program runs in; needs the
/// `mpi` feature). Unset: `mpi` when the program runs as rank 0 of a job of
/// two ranks or more, else `local`.
///
/// # Examples
///
/// ```
/// assert_eq!(concertina::remote::TRANSPORT_ENV, "CONCERTINA_TRANSPORT");
/// ```
pub const TRANSPORT_ENV: &str = "CONCERTINA_TRANSPORT";

/// Where remote instances run: see [`RemoteBuilder::transport`] and
/// [`TRANSPORT_ENV`].
///
/// # Examples
///
/// ```
/// use concertina::remote::{RemoteInstance, Transport};
///
/// let builder = RemoteInstance::builder().transport(Transport::Local);
/// # let _ = builder;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    /// A worker process on this machine, this executable started again
    /// (or the builder's program): a crash is contained.
    Local,
    /// A worker rank of the MPI job (`mpirun -n N`, ranks 1 to N-1; the
    /// `mpi` feature). MPI is fail-stop: a rank that dies ends the job.
    Mpi,
}

/// A value whose methods a worker process runs by name.
///
/// # Examples
///
/// ```
/// use concertina::remote::{self, Code, RemoteError};
///
/// struct Echo;
/// impl Code for Echo {
///     const NAME: &'static str = "Echo";
///     fn construct(_args: &[u8]) -> Result<Self, RemoteError> { Ok(Echo) }
///     fn dispatch(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>, RemoteError> {
///         match method {
///             "echo" => remote::encode(&remote::decode::<(String,)>(args)?.0),
///             _ => Err(RemoteError::unknown_method(method)),
///         }
///     }
/// }
/// let mut echo = Echo::construct(&[])?;
/// let reply = echo.dispatch("echo", &remote::encode(&("hi".to_owned(),))?)?;
/// assert_eq!(remote::decode::<String>(&reply)?, "hi");
/// # Ok::<(), RemoteError>(())
/// ```
pub trait Code: Sized + 'static {
    /// The name the parent starts it by: unique among the codes a worker
    /// serves.
    const NAME: &'static str;
    /// True when several instances of this code may live in one process
    /// (it keeps no process-global state): see
    /// [`Worker::make`]. False by default: a worker
    /// then holds at most one instance of it, as a legacy code with global
    /// state (a Fortran COMMON block) needs.
    const REENTRANT: bool = false;
    /// Makes the value from its constructor's arguments (postcard).
    ///
    /// # Errors
    ///
    /// A [`RemoteError`] when the arguments do not decode, or the code
    /// refuses them.
    fn construct(args: &[u8]) -> Result<Self, RemoteError>;
    /// Calls `method` with its arguments (postcard) and returns its result
    /// (postcard).
    ///
    /// # Errors
    ///
    /// A [`RemoteError`] for an unknown method or arguments that do not
    /// decode.
    fn dispatch(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>, RemoteError>;
}

/// Why a remote call could not be made, as a code's methods (and
/// [`encode`], [`decode`]) return it: reaches the caller as
/// [`Error::Remote`](crate::Error::Remote), its kind and text kept.
///
/// # Examples
///
/// ```
/// let err = concertina::remote::RemoteError::unknown_method("evolve");
/// assert_eq!(err.to_string(), "no method `evolve`");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError(RemoteFailure);

impl RemoteError {
    /// A call of a method the code does not have.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = concertina::remote::RemoteError::unknown_method("step");
    /// assert!(err.to_string().contains("step"));
    /// ```
    pub fn unknown_method(method: &str) -> Self {
        RemoteError(RemoteFailure::new(
            RemoteFailureKind::UnknownMethod,
            format!("no method `{method}`"),
        ))
    }

    /// Any other reason, in words.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = concertina::remote::RemoteError::new("grid size must be even");
    /// assert_eq!(err.to_string(), "grid size must be even");
    /// ```
    pub fn new(why: impl Into<String>) -> Self {
        RemoteError(RemoteFailure::new(RemoteFailureKind::Code, why))
    }
}

impl From<RemoteError> for RemoteFailure {
    fn from(error: RemoteError) -> Self {
        error.0
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for RemoteError {}

/// Compiles only for a type that can cross a process boundary: what
/// `#[concertina::remote]` checks of each argument and result type of a
/// remote method, so that a type that cannot is named where it was written.
///
/// # Examples
///
/// ```
/// concertina::remote::arguments_and_results_are_serde_types::<Vec<f64>>();
/// ```
pub fn arguments_and_results_are_serde_types<T: Serialize + DeserializeOwned>() {}

/// Encodes a value as a call's arguments or result (postcard).
///
/// # Errors
///
/// A [`RemoteError`] when the value cannot be serialised.
///
/// # Examples
///
/// ```
/// let bytes = concertina::remote::encode(&(1.5_f64, 2u32))?;
/// assert_eq!(concertina::remote::decode::<(f64, u32)>(&bytes)?, (1.5, 2));
/// # Ok::<(), concertina::remote::RemoteError>(())
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, RemoteError> {
    let failed = |e: postcard::Error| {
        RemoteError(RemoteFailure::new(
            RemoteFailureKind::Encode,
            format!("cannot encode: {e}"),
        ))
    };
    // Measured first, then written once into a buffer of that size (a kept
    // one, for a large value the size of one before): a large array costs
    // one pass and no growing, also when a transport puts the rest of its
    // message after it (see `frame::ROOM`).
    let size = frame::size_of(value).map_err(failed)?;
    postcard::to_extend(value, spare::take(size + frame::ROOM)).map_err(failed)
}

/// Decodes a call's arguments or result (postcard).
///
/// # Errors
///
/// A [`RemoteError`] naming the expected type when the bytes do not decode.
///
/// # Examples
///
/// ```
/// let err = concertina::remote::decode::<(u64,)>(&[]).unwrap_err();
/// assert!(err.to_string().contains("(u64,)"));
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RemoteError> {
    postcard::from_bytes(bytes).map_err(not_a::<T>)
}

/// The error of bytes that do not decode as a `T`.
fn not_a<T>(e: postcard::Error) -> RemoteError {
    RemoteError(RemoteFailure::new(
        RemoteFailureKind::Decode,
        format!("cannot decode a {}: {e}", std::any::type_name::<T>()),
    ))
}

/// Decodes a call's arguments or result into `place`, overwriting the
/// value there in place: its buffers (a `Vec`'s or a `String`'s capacity)
/// are reused, so that a large array no longer than the one before costs
/// no new memory (a fresh 100 MiB costs more to touch than to fill). What
/// [`RemoteInstance::spawn_into`] does with a call's result.
///
/// # Errors
///
/// As [`decode`]; `place` then holds a value partly overwritten.
///
/// # Examples
///
/// ```
/// use concertina::remote;
///
/// let mut cells = Vec::<f64>::with_capacity(1 << 10);
/// let before = cells.as_ptr();
/// remote::decode_into(&remote::encode(&vec![1.0_f64; 100])?, &mut cells)?;
/// assert_eq!((cells.len(), cells.as_ptr()), (100, before));
/// # Ok::<(), remote::RemoteError>(())
/// ```
pub fn decode_into<T: DeserializeOwned>(bytes: &[u8], place: &mut T) -> Result<(), RemoteError> {
    T::deserialize_in_place(&mut postcard::Deserializer::from_bytes(bytes), place)
        .map_err(not_a::<T>)
}

/// A code a worker can serve, for [`serve_if_worker`].
///
/// # Examples
///
/// ```
/// # use concertina::remote::{self, Code, RemoteError};
/// # struct Echo;
/// # impl Code for Echo {
/// #     const NAME: &'static str = "Echo";
/// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Echo) }
/// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
/// # }
/// let entry = remote::entry::<Echo>();
/// assert_eq!(entry.name(), "Echo");
/// ```
#[derive(Clone, Copy)]
pub struct CodeEntry {
    name: &'static str,
    reentrant: bool,
    make: Make,
}

/// Makes a code from its constructor's arguments.
type Make = fn(&[u8]) -> Result<Box<dyn Dispatch>, RemoteError>;

impl CodeEntry {
    /// The code's name.
    ///
    /// # Examples
    ///
    /// ```
    /// # use concertina::remote::{self, Code, RemoteError};
    /// # struct Echo;
    /// # impl Code for Echo {
    /// #     const NAME: &'static str = "Echo";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Echo) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
    /// # }
    /// assert_eq!(remote::entry::<Echo>().name(), "Echo");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl fmt::Debug for CodeEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeEntry")
            .field("name", &self.name)
            .field("reentrant", &self.reentrant)
            .finish()
    }
}

/// A code, made, as the worker calls it.
trait Dispatch {
    fn dispatch(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>, RemoteError>;
}

impl<C: Code> Dispatch for C {
    fn dispatch(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>, RemoteError> {
        Code::dispatch(self, method, args)
    }
}

/// The entry of code `C`, for [`serve_if_worker`].
///
/// # Examples
///
/// ```
/// # use concertina::remote::{self, Code, RemoteError};
/// # struct Echo;
/// # impl Code for Echo {
/// #     const NAME: &'static str = "Echo";
/// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Echo) }
/// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
/// # }
/// let _session = remote::serve_if_worker(&[remote::entry::<Echo>()]); // returns at once: not a worker
/// ```
pub fn entry<C: Code>() -> CodeEntry {
    CodeEntry {
        name: C::NAME,
        reentrant: C::REENTRANT,
        make: |args| Ok(Box::new(C::construct(args)?)),
    }
}
