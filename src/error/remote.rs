//! Why a remote call failed: the worker is gone ([`WorkerLost`]), or the
//! call was refused or failed in it ([`RemoteFailure`]). Each says its
//! cause as a kind to branch on, and keeps the text for display.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Why a worker process (or an MPI rank) is gone ([`Error::WorkerLost`](super::Error::WorkerLost)):
/// how it ended, as a [`LostKind`], and the text a person reads (its exit,
/// the last lines of its stderr). Cheap to clone: every pending call of
/// the worker gets the same one.
///
/// # Examples
///
/// ```no_run
/// use concertina::error::{Error, LostKind};
/// # fn model() -> concertina::Future<f64> { unimplemented!() }
///
/// match model().result() {
///     Err(Error::WorkerLost(lost)) => match lost.kind() {
///         LostKind::Signalled { signal: 9 } => eprintln!("killed: {lost}"),
///         LostKind::Exited { status } => eprintln!("exited with {status}: {lost}"),
///         _ => eprintln!("{lost}"),
///     },
///     other => println!("{other:?}"),
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct WorkerLost {
    kind: LostKind,
    text: Arc<str>,
}

/// How a worker ended ([`WorkerLost::kind`]).
///
/// # Examples
///
/// ```
/// use concertina::error::LostKind;
///
/// let kind = LostKind::Exited { status: 3 };
/// assert!(matches!(kind, LostKind::Exited { status: 3 }));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostKind {
    /// It exited with this status.
    Exited {
        /// The exit status.
        status: i32,
    },
    /// A signal ended it (9 for SIGKILL, 11 for SIGSEGV, …).
    Signalled {
        /// The signal's number.
        signal: i32,
    },
    /// It could not be started, or it did not connect.
    NotStarted,
    /// It sent something that is not a message of this crate, and was
    /// killed for it.
    Garbage,
    /// The MPI session it belonged to ended.
    SessionEnded,
    /// Its end could not be observed.
    Unknown,
}

impl WorkerLost {
    pub(crate) fn new(kind: LostKind, text: impl Into<Arc<str>>) -> Self {
        WorkerLost {
            kind,
            text: text.into(),
        }
    }

    /// How it ended.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::error::{Error, LostKind};
    /// # let lost = match concertina::remote::RemoteInstance::builder().program("/nonexistent/worker").start_worker() {
    /// #     Err(Error::WorkerLost(lost)) => lost,
    /// #     other => panic!("{other:?}"),
    /// # };
    /// assert_eq!(lost.kind(), LostKind::NotStarted);
    /// ```
    pub fn kind(&self) -> LostKind {
        self.kind
    }
}

impl fmt::Display for WorkerLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for WorkerLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerLost")
            .field("kind", &self.kind)
            .field("text", &&*self.text)
            .finish()
    }
}

impl std::error::Error for WorkerLost {}

/// Why a remote call was refused or failed while its worker lives on
/// ([`Error::Remote`](super::Error::Remote)): the cause as a
/// [`RemoteFailureKind`], and its text.
///
/// # Examples
///
/// ```
/// use concertina::error::{RemoteFailure, RemoteFailureKind};
/// use concertina::remote::RemoteError;
///
/// let failure = RemoteFailure::from(RemoteError::unknown_method("evolve"));
/// assert_eq!(failure.kind(), RemoteFailureKind::UnknownMethod);
/// assert_eq!(failure.to_string(), "no method `evolve`");
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteFailure {
    kind: RemoteFailureKind,
    text: String,
}

/// What a [`RemoteFailure`] is about.
///
/// # Examples
///
/// ```
/// use concertina::error::RemoteFailureKind;
///
/// assert_ne!(RemoteFailureKind::Decode, RemoteFailureKind::Code);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RemoteFailureKind {
    /// The code has no such method.
    UnknownMethod,
    /// The worker holds no such instance (it was freed, or never made).
    UnknownInstance,
    /// The worker serves no code of that name.
    UnknownCode,
    /// Arguments or a result that do not decode as the types expected
    /// (the two sides disagree on a signature).
    Decode,
    /// A value that cannot be encoded.
    Encode,
    /// A message over the size limit of one message, refused before it was
    /// sent (the arguments) or in the worker (the result).
    TooLarge,
    /// The code's own error (a [`RemoteError::new`](crate::remote::RemoteError::new)
    /// from its method or its constructor).
    Code,
    /// The worker could not do it (no thread could be started for the
    /// instance, a code that may not share its process).
    Worker,
}

impl RemoteFailure {
    pub(crate) fn new(kind: RemoteFailureKind, text: impl Into<String>) -> Self {
        RemoteFailure {
            kind,
            text: text.into(),
        }
    }

    /// What it is about.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::error::{RemoteFailure, RemoteFailureKind};
    ///
    /// let failure = RemoteFailure::from(concertina::remote::RemoteError::new("grid size must be even"));
    /// assert_eq!(failure.kind(), RemoteFailureKind::Code);
    /// ```
    pub fn kind(&self) -> RemoteFailureKind {
        self.kind
    }
}

impl fmt::Display for RemoteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for RemoteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteFailure")
            .field("kind", &self.kind)
            .field("text", &self.text)
            .finish()
    }
}

impl std::error::Error for RemoteFailure {}
