//! [`Worker`]: a worker process (or rank) holding one or more instances.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;

use crate::error::Error;
use crate::remote::frame::{Args, ToWorker};
use crate::remote::instance::Handle;
use crate::remote::link::{refusal, Link, Process};
use crate::remote::{encode, Code};
use crate::remote::{RemoteBuilder, RemoteInstance};

/// A worker process: the executable started again in worker mode, holding
/// one or more instances ([`Worker::make`]). Instances of one worker run side
/// by side, each on a thread of its own, each its calls in order; they share
/// the process, so a crash of one loses them all. The worker stops when the
/// last handle of it and of its instances is dropped: the calls already
/// made finish, then a stop message, and a kill if it has not exited two
/// seconds later.
///
/// # Examples
///
/// ```no_run
/// # use concertina::remote::{self, Code, RemoteError, Worker};
/// struct Gravity;
/// impl Code for Gravity {
///     const NAME: &'static str = "Gravity";
///     const REENTRANT: bool = true; // no process-global state
///     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Gravity) }
///     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
///         remote::encode(&remote::decode::<(f64,)>(a)?.0)
///     }
/// }
///
/// let _session = remote::serve_if_worker(&[remote::entry::<Gravity>()]);
/// let worker = Worker::start()?;
/// let (near, far) = (worker.make::<Gravity>(&())?, worker.make::<Gravity>(&())?);
/// assert_eq!(near.pid(), far.pid());
/// let (a, b) = (near.spawn::<f64>("evolve", &(1.0,)), far.spawn::<f64>("evolve", &(2.0,)));
/// assert_eq!((a.result()?, b.result()?), (1.0, 2.0));
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone)]
pub struct Worker {
    pub(super) link: Arc<Link>,
}

impl Worker {
    /// Starts a worker process (this executable again, in worker mode),
    /// with no instance yet.
    ///
    /// # Errors
    ///
    /// [`Error::WorkerLost`] when the worker cannot be started or ends
    /// before it connects (with its stderr).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, Worker};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
    /// # }
    /// let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let worker = Worker::start()?;
    /// assert_ne!(worker.pid(), std::process::id());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn start() -> Result<Worker, Error> {
        RemoteBuilder::default().start_worker()
    }

    /// Makes code `C` in this worker from `args` (its constructor's
    /// arguments), beside the instances it holds. A code that keeps
    /// process-global state ([`Code::REENTRANT`] false, the default) has at
    /// most one instance per worker.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] when the worker serves no code `C`, already holds
    /// an instance of it and `C` is not re-entrant, or the constructor
    /// refuses the arguments (or panics: the worker lives on);
    /// [`Error::WorkerLost`] when the worker is gone.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, Worker};
    /// struct Legacy; // global state: one per process
    /// # impl Code for Legacy {
    /// #     const NAME: &'static str = "Legacy";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Legacy) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
    /// # }
    /// let _session = remote::serve_if_worker(&[remote::entry::<Legacy>()]);
    /// let worker = Worker::start()?;
    /// let first = worker.make::<Legacy>(&())?;
    /// assert!(worker.make::<Legacy>(&()).is_err());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn make<C: Code>(&self, args: &impl Serialize) -> Result<RemoteInstance, Error> {
        let args = encode(args).map_err(|e| Error::Remote(e.into()))?;
        let link = &self.link;
        let instance = link.next_instance.fetch_add(1, Ordering::Relaxed);
        let started = {
            let mut writer = link.writer.lock();
            let (id, mut futures) = link.register::<()>(1, "the start of a", C::NAME, None)?;
            let mut start = ToWorker::Start {
                instance,
                id,
                code: C::NAME.to_owned(),
                args: Args::new(args),
            };
            let refused = refusal(writer.send(&mut start));
            drop(writer);
            link.refuse(refused, id, 1);
            futures.pop().expect("one call registered")
        };
        // Failed, the instance is freed in the worker as this drops.
        let handle = Handle {
            link: link.clone(),
            instance,
            code: C::NAME,
        };
        started.result()?;
        Ok(RemoteInstance {
            handle: Arc::new(handle),
        })
    }

    /// The worker's process id.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let _session = concertina::remote::serve_if_worker(&[]);
    /// let worker = concertina::remote::Worker::start()?;
    /// println!("worker {}", worker.pid());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.link.pid
    }

    /// Why the worker is gone, once it is.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let _session = concertina::remote::serve_if_worker(&[]);
    /// let worker = concertina::remote::Worker::start()?;
    /// assert_eq!(worker.lost(), None);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn lost(&self) -> Option<crate::error::WorkerLost> {
        self.link.state.lock().lost.clone()
    }
}

impl Worker {
    /// The MPI rank the worker is, with the MPI transport.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let _session = concertina::remote::serve_if_worker(&[]);
    /// let worker = concertina::remote::Worker::start()?;
    /// if let Some(rank) = worker.rank() {
    ///     println!("on rank {rank}");
    /// }
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn rank(&self) -> Option<i32> {
        match self.link.process {
            #[cfg(feature = "mpi")]
            Process::Rank { rank, .. } => Some(rank),
            Process::Local { .. } => None,
        }
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.link.state.lock();
        f.debug_struct("Worker")
            .field("pid", &self.link.pid)
            .field("rank", &self.rank())
            .field("pending", &state.pending.len())
            .field("lost", &state.lost)
            .finish()
    }
}
