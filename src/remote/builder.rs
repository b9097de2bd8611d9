//! [`RemoteBuilder`]: which executable a worker is, its environment, its
//! transport and rank.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::error::ConfigError;
use crate::error::Error;
#[cfg(feature = "mpi")]
use crate::remote::link::ranks;
use crate::remote::link::Link;
use crate::remote::{Code, Transport, TRANSPORT_ENV};
use crate::remote::{RemoteInstance, Worker};

/// How to start a worker: which executable (this one by default), with
/// which extra environment. See [`RemoteInstance::builder`].
///
/// # Examples
///
/// ```no_run
/// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
/// # struct Model;
/// # impl Code for Model {
/// #     const NAME: &'static str = "Model";
/// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
/// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
/// # }
/// let model = RemoteInstance::builder()
///     .program("target/release/model-worker")
///     .env("OMP_NUM_THREADS", "1")
///     .start::<Model>(&())?;
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "a builder starts nothing until start() is called"]
pub struct RemoteBuilder {
    pub(super) program: Option<PathBuf>,
    pub(super) env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
    pub(super) transport: Option<Transport>,
    pub(super) rank: Option<i32>,
}

impl RemoteBuilder {
    /// The worker executable: one whose `main` calls
    /// [`serve_if_worker`](crate::remote::serve_if_worker) with this code.
    /// By default, this executable.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = concertina::remote::RemoteInstance::builder().program("/usr/local/bin/ocean-worker");
    /// # let _ = builder;
    /// ```
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// Sets an environment variable of the worker (it inherits the rest of
    /// this process's environment).
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = concertina::remote::RemoteInstance::builder().env("OMP_NUM_THREADS", "1");
    /// # let _ = builder;
    /// ```
    pub fn env(
        mut self,
        key: impl Into<std::ffi::OsString>,
        value: impl Into<std::ffi::OsString>,
    ) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Where the worker runs: this wins over
    /// [`TRANSPORT_ENV`]; without either,
    /// on the MPI job's worker ranks when the program runs under `mpirun`
    /// with two ranks or more (and the `mpi` feature), else in a local
    /// process.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::remote::{RemoteInstance, Transport};
    ///
    /// // Always a local process, even under mpirun.
    /// let builder = RemoteInstance::builder().transport(Transport::Local);
    /// # let _ = builder;
    /// ```
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    /// On this worker rank of the MPI job (1 to N-1), instead of the next
    /// one round-robin; implies [`Transport::Mpi`].
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = concertina::remote::RemoteInstance::builder().rank(2);
    /// # let _ = builder;
    /// ```
    pub fn rank(mut self, rank: i32) -> Self {
        self.rank = Some(rank);
        self.transport = Some(Transport::Mpi);
        self
    }

    /// The transport: the builder's, else the environment's, else MPI when
    /// the program has worker ranks.
    fn chosen(&self) -> Result<Transport, Error> {
        if let Some(transport) = self.transport {
            return Ok(transport);
        }
        match std::env::var(TRANSPORT_ENV) {
            Ok(value) => match value.as_str() {
                "local" => Ok(Transport::Local),
                "mpi" => Ok(Transport::Mpi),
                _ => Err(ConfigError::env(TRANSPORT_ENV, &value, "`local` or `mpi`").into()),
            },
            Err(_) => {
                #[cfg(feature = "mpi")]
                if ranks().is_some_and(|ranks| ranks.workers() > 0) {
                    return Ok(Transport::Mpi);
                }
                Ok(Transport::Local)
            }
        }
    }

    /// Starts a worker and makes code `C` there: see
    /// [`RemoteInstance::start`].
    ///
    /// # Errors
    ///
    /// Those of [`RemoteInstance::start`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::builder().env("MODEL_LOG", "quiet").start::<Model>(&())?;
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn start<C: Code>(&self, args: &impl Serialize) -> Result<RemoteInstance, Error> {
        self.start_worker()?.make::<C>(args)
    }

    /// Starts a worker with no instance yet: see [`Worker::start`].
    ///
    /// # Errors
    ///
    /// Those of [`Worker::start`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     const REENTRANT: bool = true;
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let worker = RemoteInstance::builder().env("OMP_NUM_THREADS", "2").start_worker()?;
    /// let models = [worker.make::<Model>(&())?, worker.make::<Model>(&())?];
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn start_worker(&self) -> Result<Worker, Error> {
        let link = match self.chosen()? {
            Transport::Local => {
                if let Some(rank) = self.rank {
                    return Err(ConfigError::transport(format!(
                        "rank {rank} was asked for with the local transport: a rank needs `Transport::Mpi`"
                    ))
                    .into());
                }
                Link::launch(self)?
            }
            Transport::Mpi => self.on_rank()?,
        };
        // A Ctrl-C while a call is waited on cancels it in the worker: that
        // relies on the handler, as a pool does.
        crate::interrupt::rely_on_handler();
        Ok(Worker { link })
    }

    #[cfg(feature = "mpi")]
    fn on_rank(&self) -> Result<Arc<Link>, Error> {
        if self.program.is_some() || !self.env.is_empty() {
            return Err(ConfigError::transport(
                "`program` and `env` set up local worker processes; the MPI transport's workers are the \
                 job's ranks, started by mpirun: drop them, or choose `Transport::Local`",
            )
            .into());
        }
        match ranks() {
            Some(ranks) => ranks.link(self.rank),
            None => Err(ConfigError::transport(
                "the MPI transport needs the program to run under mpirun with \
                 `concertina::remote::serve_if_worker` first in `main` (its session kept to the end)",
            )
            .into()),
        }
    }

    #[cfg(not(feature = "mpi"))]
    fn on_rank(&self) -> Result<Arc<Link>, Error> {
        Err(ConfigError::transport(
            "the MPI transport was chosen, but concertina was built without its `mpi` feature: \
             enable it, or choose `local`",
        )
        .into())
    }
}
