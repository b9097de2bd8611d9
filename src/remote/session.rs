//! The start of a program that uses remote instances: [`serve_if_worker`]
//! makes a worker serve (a local worker process, or a worker rank of an MPI
//! job) and gives the program itself its [`Session`].

#[cfg(feature = "mpi")]
use std::sync::Arc;

#[cfg(feature = "mpi")]
use crate::remote::link::RankLinks;
use crate::remote::server::{serve_parent_at, WORKER_ENV};
use crate::remote::CodeEntry;

/// In a worker process (started by
/// [`RemoteInstance::start`](crate::remote::RemoteInstance::start)), serves
/// the instances its parent asks for, of the codes in `codes`, until the
/// parent stops it or goes away, then exits the process. On a worker rank
/// of an MPI job (the `mpi` feature, under `mpirun -n N`), serves rank 0
/// the same way and exits once rank 0's [`Session`] ends. Elsewhere
/// returns at once. Call it first thing in `main`, before anything the
/// worker should not do, and keep the [`Session`] until the end of `main`.
/// MPI starts once: a second call in the same program returns a session
/// that holds nothing.
///
/// A worker ignores Ctrl-C from the terminal: its parent decides (a Ctrl-C
/// in the parent cancels the calls it waits on, and the cancel reaches the
/// worker).
///
/// # Examples
///
/// ```
/// use concertina::remote::{self, Code, RemoteError};
///
/// struct Model;
/// impl Code for Model {
///     const NAME: &'static str = "Model";
///     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
///     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> {
///         Err(RemoteError::unknown_method(m))
///     }
/// }
///
/// // First thing in `main`: in a worker this never returns.
/// let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
/// ```
pub fn serve_if_worker(codes: &[CodeEntry]) -> Session {
    if let Some(path) = std::env::var_os(WORKER_ENV) {
        // A concertina program that the code runs is no worker of ours.
        std::env::remove_var(WORKER_ENV);
        // The terminal's Ctrl-C reaches the whole process group; the parent
        // handles it and tells the worker what to cancel.
        let _ = ctrlc::set_handler(|| {});
        std::process::exit(serve_parent_at(&path, codes));
    }
    Session {
        #[cfg(feature = "mpi")]
        ranks: crate::remote::mpi::serve_if_rank(codes),
    }
}

/// What [`serve_if_worker`] returns in the program itself (never in a
/// worker). On rank 0 of an MPI job it holds the job's worker ranks: its
/// end stops them (each runs the calls it has first) and finalises MPI, so
/// keep it until the end of `main` (`let _session = ..`, not `let _ =
/// ..`, which ends it at once). Without MPI it holds nothing.
///
/// Its end waits for the calls already made on the ranks (as a local
/// worker runs the calls made before its stop): a call that never returns
/// keeps the job waiting, and a Ctrl-C then ends the program (exit 130;
/// `mpirun` ends the ranks). Calls made after the end fail with
/// [`Error::WorkerLost`](crate::Error::WorkerLost).
///
/// # Examples
///
/// ```
/// let session = concertina::remote::serve_if_worker(&[]);
/// assert_eq!(session.worker_ranks(), 0); // not under mpirun
/// ```
#[must_use = "the session ends when dropped: keep it until the end of main (`let _session = ..`)"]
#[derive(Debug)]
pub struct Session {
    #[cfg(feature = "mpi")]
    ranks: Option<Arc<crate::remote::mpi::Ranks>>,
}

impl Session {
    /// How many ranks serve remote instances: N-1 under `mpirun -n N`
    /// with the `mpi` feature, else 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let session = concertina::remote::serve_if_worker(&[]);
    /// println!("{} worker ranks", session.worker_ranks());
    /// ```
    pub fn worker_ranks(&self) -> usize {
        #[cfg(feature = "mpi")]
        if let Some(ranks) = &self.ranks {
            return ranks.workers();
        }
        0
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        #[cfg(feature = "mpi")]
        if let Some(ranks) = self.ranks.take() {
            ranks.shutdown();
        }
    }
}
