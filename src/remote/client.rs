//! The parent side: the handles ([`Worker`], [`RemoteInstance`],
//! [`RemoteBuilder`]), the link to a worker with its pending calls, and
//! their settling. The transports are rooms of their own: worker processes
//! of this machine in `local`, MPI ranks in `mpi`.

use std::collections::HashMap;
use std::fmt;
use std::io::BufWriter;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ConfigError;
use crate::error::Error;
use crate::future::Future;
use crate::pool::{Backend, Pool};
use crate::remote::frame::{self, Outcome, ToWorker};
use crate::remote::worker::WAIT_METHOD;
use crate::remote::{decode, encode, Code, Transport, TRANSPORT_ENV};
use crate::sync::Mutex;
use crate::task::TaskRef;

/// How long a worker may take to connect after it started.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped worker may take to exit before it is killed.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(2);

type Pending = Box<dyn FnOnce(Result<&[u8], Error>) + Send>;

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
/// let (a, b) = (near.call::<f64>("evolve", &(1.0,)), far.call::<f64>("evolve", &(2.0,)));
/// assert_eq!((a.result()?, b.result()?), (1.0, 2.0));
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone)]
pub struct Worker {
    link: Arc<Link>,
}

/// An instance of a [`Code`] in a worker process: calls run there one at a
/// time, in the order made, each returning a [`Future`]. A call that panics
/// fails alone with [`Error::Panicked`]; a worker that dies fails every
/// pending and later call with [`Error::WorkerLost`]. Cancelling a call's
/// future (or a Ctrl-C while waiting on it) reaches the worker: a queued
/// call is dropped, a running one sees [`cancelled()`](crate::cancelled)
/// turn true. The last handle dropped frees the instance in its worker
/// (once the calls made have run), and stops the worker when nothing else
/// holds it.
///
/// # Examples
///
/// See [the module](mod@crate::remote): the worker is the executable itself,
/// so the example needs a `main` that calls
/// [`serve_if_worker`](crate::remote::serve_if_worker) first.
///
/// ```no_run
/// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
/// # struct Model;
/// # impl Code for Model {
/// #     const NAME: &'static str = "Model";
/// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
/// #     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
/// #         remote::encode(&remote::decode::<(f64,)>(a)?.0)
/// #     }
/// # }
/// let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
/// let model = RemoteInstance::start::<Model>(&())?;
/// let t = model.call::<f64>("evolve", &(1.5_f64,));
/// assert_eq!(t.result()?, 1.5);
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone)]
pub struct RemoteInstance {
    handle: Arc<Handle>,
}

/// An instance in its worker: dropped, it is freed there.
struct Handle {
    link: Arc<Link>,
    instance: u32,
    code: &'static str,
}

/// The worker ranks of an MPI job, as the builder reaches them: set by the
/// MPI transport once MPI runs on rank 0.
#[cfg(feature = "mpi")]
pub(crate) trait RankLinks: Send + Sync {
    /// The worker on `rank`, or the next one round-robin.
    fn link(&self, rank: Option<i32>) -> Result<Arc<Link>, Error>;
    /// How many ranks serve.
    fn workers(&self) -> usize;
}

#[cfg(feature = "mpi")]
static RANKS: std::sync::OnceLock<Arc<dyn RankLinks>> = std::sync::OnceLock::new();

/// Makes the job's worker ranks reachable by builders.
#[cfg(feature = "mpi")]
pub(crate) fn set_ranks(ranks: Arc<dyn RankLinks>) {
    let _ = RANKS.set(ranks);
}

#[cfg(feature = "mpi")]
fn ranks() -> Option<Arc<dyn RankLinks>> {
    RANKS.get().cloned()
}

/// A worker as its handles see it, whatever carries its messages.
pub(crate) struct Link {
    pub(super) pid: u32,
    /// Shared with the cancel hooks of pending calls: a cancel reaches the
    /// worker while it lives, also after the last handle was dropped.
    pub(super) writer: Arc<Mutex<Box<dyn Outbox>>>,
    pub(super) state: Arc<Mutex<State>>,
    pub(super) process: Process,
    pub(super) next_instance: AtomicU32,
}

/// Carries messages to a worker, in the order sent.
pub(crate) trait Outbox: Send {
    fn send(&mut self, message: &ToWorker) -> std::io::Result<()>;
}

impl Outbox for BufWriter<UnixStream> {
    fn send(&mut self, message: &ToWorker) -> std::io::Result<()> {
        frame::write(self, message)
    }
}

/// What the worker is.
pub(super) enum Process {
    /// A child process: its handle, and the thread reading its replies.
    Local {
        child: Arc<Mutex<Child>>,
        reader: Mutex<Option<JoinHandle<()>>>,
        /// The parent's end of the socket, shut for writing once the calls
        /// made before the stop have replied.
        socket: Option<UnixStream>,
    },
    /// Another rank of the MPI job, serving for the whole session.
    #[cfg(feature = "mpi")]
    Rank(i32),
}

impl State {
    #[cfg(feature = "mpi")]
    pub(crate) fn new() -> Arc<Mutex<State>> {
        Arc::new(Mutex::new(State {
            next: 0,
            pending: HashMap::new(),
            lost: None,
        }))
    }
}

pub(crate) struct State {
    pub(super) next: u64,
    pub(super) pending: HashMap<u64, Pending>,
    /// Why the worker is gone, once it is.
    pub(super) lost: Option<String>,
}

pub(super) static NEXT_SOCKET: AtomicU64 = AtomicU64::new(0);

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
        let args = encode(args).map_err(|e| Error::Remote(e.to_string()))?;
        let link = &self.link;
        let instance = link.next_instance.fetch_add(1, Ordering::Relaxed);
        let started = {
            let mut writer = link.writer.lock();
            let (id, mut futures) = link.register::<()>(1)?;
            let start = ToWorker::Start {
                instance,
                id,
                code: C::NAME.to_owned(),
                args,
            };
            let refused = refusal(writer.send(&start));
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
    pub fn lost(&self) -> Option<String> {
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
            Process::Rank(rank) => Some(rank),
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

impl RemoteInstance {
    /// Starts a worker process (this executable again, in worker mode) and
    /// makes code `C` there from `args` (its constructor's arguments).
    ///
    /// # Errors
    ///
    /// [`Error::WorkerLost`] when the worker cannot be started or dies
    /// before it is ready (with its stderr); [`Error::Remote`] when it
    /// serves no code `C` or refuses the arguments.
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
    /// let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// assert!(model.pid() > 0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn start<C: Code>(args: &impl Serialize) -> Result<RemoteInstance, Error> {
        Worker::start()?.make::<C>(args)
    }

    /// A builder, to name the worker executable or set its environment.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = concertina::remote::RemoteInstance::builder();
    /// # let _ = builder;
    /// ```
    pub fn builder() -> RemoteBuilder {
        RemoteBuilder::default()
    }

    /// The worker this instance lives in: [`Worker::make`] puts another
    /// instance beside it.
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
    /// let first = RemoteInstance::start::<Model>(&())?;
    /// let second = first.worker().make::<Model>(&())?;
    /// assert_eq!(first.pid(), second.pid());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn worker(&self) -> Worker {
        Worker {
            link: self.handle.link.clone(),
        }
    }

    /// Calls `method` with `args` in the worker, after every call made
    /// before it; the future of its result.
    ///
    /// # Errors
    ///
    /// The future fails with [`Error::Panicked`] when the method panicked
    /// (the worker lives on), [`Error::Remote`] for an unknown method or
    /// arguments or a result that do not decode, and
    /// [`Error::WorkerLost`] when the worker is gone.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
    /// #         remote::encode(&remote::decode::<(u32,)>(a)?.0)
    /// #     }
    /// # }
    /// let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// let calls: Vec<_> = (0..3u32).map(|i| model.call::<u32>("echo", &(i,))).collect();
    /// assert_eq!(concertina::wait_all(calls), [Ok(0), Ok(1), Ok(2)]);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn call<R>(&self, method: &str, args: &impl Serialize) -> Future<R>
    where
        R: DeserializeOwned + Send + 'static,
    {
        self.send_call(method, args, false).0
    }

    /// Calls `method` once `dependency` has finished (AMUSE's
    /// `async_dependency`, chaining codes: the ocean's step after the
    /// atmosphere's). The call takes its place in this instance's order
    /// now: the calls made after it run after it, so they wait for the
    /// dependency too. The dependency's value is not used (pass what the
    /// call needs in `args`, or chain with [`Future::then`]).
    ///
    /// # Errors
    ///
    /// Those of [`RemoteInstance::call`]; when the dependency fails, the
    /// call is not made and its future fails with
    /// [`Error::DependencyFailed`] carrying the cause; the instance goes on.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
    /// #         remote::encode(&remote::decode::<(f64,)>(a)?.0)
    /// #     }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let atmosphere = RemoteInstance::start::<Model>(&())?;
    /// let ocean = RemoteInstance::start::<Model>(&())?;
    /// let air = atmosphere.call::<f64>("evolve", &(1.0,));
    /// let sea = ocean.call_after::<f64, _>(air.when_done(), "evolve", &(1.0,));
    /// assert_eq!(sea.result()?, 1.0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn call_after<R, D>(
        &self,
        dependency: Future<D>,
        method: &str,
        args: &impl Serialize,
    ) -> Future<R>
    where
        R: DeserializeOwned + Send + 'static,
        D: Send + 'static,
    {
        let (future, id) = self.send_call::<R>(method, args, true);
        let Some(id) = id else {
            return future;
        };
        let task = future.task().cloned();
        let writer = Arc::downgrade(&self.handle.link.writer);
        dependency.on_done(move |outcome| {
            let go = match outcome {
                Ok(_) => ToWorker::Go { id },
                Err(cause) => {
                    if let Some(task) = &task {
                        task.fail(Error::DependencyFailed(Box::new(cause.clone())));
                    }
                    // The worker drops it; its reply finds it decided.
                    ToWorker::Cancel { id }
                }
            };
            if let Some(writer) = writer.upgrade() {
                let _ = writer.lock().send(&go);
            }
        });
        future
    }

    /// Waits until every call made on this instance before this one has
    /// finished (AMUSE's synchronous call waiting for the queued ones).
    ///
    /// # Errors
    ///
    /// [`Error::WorkerLost`] when the worker is gone; `Interrupted` on a
    /// Ctrl-C. Failures of the calls themselves are reported at their own
    /// futures, not here.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { remote::encode(&()) }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// let step = model.call::<()>("step", &());
    /// model.wait()?;
    /// assert!(step.done());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.call::<()>(WAIT_METHOD, &()).result()
    }

    /// Sends one call (one that waits for the parent's go, with `after`):
    /// its future, and its id unless it failed at once.
    fn send_call<R>(
        &self,
        method: &str,
        args: &impl Serialize,
        after: bool,
    ) -> (Future<R>, Option<u64>)
    where
        R: DeserializeOwned + Send + 'static,
    {
        let args = match encode(args) {
            Ok(args) => args,
            Err(e) => return (Future::failed(Error::Remote(e.to_string())), None),
        };
        // The writer is held from the id to the send, so that calls reach
        // the worker in the order of their ids.
        let link = &self.handle.link;
        let mut writer = link.writer.lock();
        let (id, mut futures) = match link.register::<R>(1) {
            Ok(registered) => registered,
            Err(error) => return (Future::failed(error), None),
        };
        let (instance, method) = (self.handle.instance, method.to_owned());
        let call = if after {
            ToWorker::CallAfter {
                instance,
                id,
                method,
                args,
            }
        } else {
            ToWorker::Call {
                instance,
                id,
                method,
                args,
            }
        };
        let refused = refusal(writer.send(&call));
        drop(writer);
        let refused_now = refused.is_some();
        link.refuse(refused, id, 1);
        let future = futures.pop().expect("one call registered");
        (future, (!refused_now).then_some(id))
    }

    /// Calls `method` once for each of `args` (each the arguments of one
    /// call), all in one message: small calls in bulk cost one message, not
    /// one each. The futures, in the order given, run after every call made
    /// before; each can be cancelled on its own. (A code made by
    /// `#[concertina::remote]` also has `<method>_many`: the calls as one
    /// call over arrays, with one future for all, which costs per byte.)
    ///
    /// # Errors
    ///
    /// Each future fails as those of [`RemoteInstance::call`]; all of them
    /// fail with [`Error::Remote`] when an argument cannot be encoded.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
    /// #         remote::encode(&(remote::decode::<(u32,)>(a)?.0 * 2))
    /// #     }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// let doubled = model.call_each::<u32, _>("double", (0..1000u32).map(|i| (i,)));
    /// assert_eq!(concertina::try_wait_all(doubled).unwrap()[999], 1998);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn call_each<R, A>(&self, method: &str, args: impl IntoIterator<Item = A>) -> Vec<Future<R>>
    where
        R: DeserializeOwned + Send + 'static,
        A: Serialize,
    {
        let encoded: Vec<_> = args.into_iter().map(|a| encode(&a)).collect();
        let failed = |error: Error| {
            (0..encoded.len())
                .map(|_| Future::failed(error.clone()))
                .collect::<Vec<_>>()
        };
        if let Some((at, Err(e))) = encoded.iter().enumerate().find(|(_, a)| a.is_err()) {
            // None is sent: one call that cannot be made fails them all.
            return failed(Error::Remote(format!("the arguments of call {at}: {e}")));
        }
        if encoded.is_empty() {
            return Vec::new();
        }
        let link = &self.handle.link;
        let mut writer = link.writer.lock();
        let (first, futures) = match link.register::<R>(encoded.len()) {
            Ok(registered) => registered,
            Err(error) => return failed(error),
        };
        let calls = ToWorker::Calls {
            instance: self.handle.instance,
            first,
            method: method.to_owned(),
            args: encoded.into_iter().flatten().collect(),
        };
        let count = futures.len();
        let refused = refusal(writer.send(&calls));
        drop(writer);
        link.refuse(refused, first, count);
        futures
    }

    /// The worker's process id.
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
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// println!("model runs in process {}", model.pid());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.handle.link.pid
    }

    /// Why the worker is gone, once it is.
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
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// assert_eq!(model.lost(), None);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn lost(&self) -> Option<String> {
        self.handle.link.state.lock().lost.clone()
    }
}

impl fmt::Debug for RemoteInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.handle.link.state.lock();
        f.debug_struct("RemoteInstance")
            .field("code", &self.handle.code)
            .field("instance", &self.handle.instance)
            .field("pid", &self.handle.link.pid)
            .field("pending", &state.pending.len())
            .field("lost", &state.lost)
            .finish()
    }
}

impl Link {
    /// The worker on an MPI rank.
    #[cfg(feature = "mpi")]
    pub(crate) fn rank(
        rank: i32,
        pid: u32,
        outbox: Box<dyn Outbox>,
        state: Arc<Mutex<State>>,
    ) -> Arc<Link> {
        Arc::new(Link {
            pid,
            writer: Arc::new(Mutex::new(outbox)),
            state,
            process: Process::Rank(rank),
            next_instance: AtomicU32::new(0),
        })
    }

    /// Fails the calls `first..first + count`, whose message the transport
    /// refused, with the reason (never under the writer's lock: settling
    /// runs the futures' callbacks).
    fn refuse(&self, refused: Option<String>, first: u64, count: usize) {
        if let Some(why) = refused {
            for id in first..first + count as u64 {
                settle(&self.state, id, Outcome::Failed(why.clone()));
            }
        }
    }

    /// Registers `count` calls: their first id and their futures, each of
    /// which tells the worker when cancelled.
    fn register<R>(self: &Arc<Self>, count: usize) -> Result<(u64, Vec<Future<R>>), Error>
    where
        R: DeserializeOwned + Send + 'static,
    {
        let mut state = self.state.lock();
        if let Some(why) = &state.lost {
            return Err(Error::WorkerLost(why.clone()));
        }
        let first = state.next;
        state.next += count as u64;
        let futures = (first..first + count as u64)
            .map(|id| {
                let (future, task) = Future::<R>::pending();
                state.pending.insert(
                    id,
                    Box::new(move |reply: Result<&[u8], Error>| {
                        let outcome = reply.and_then(|bytes| {
                            decode::<R>(bytes).map_err(|e| Error::Remote(e.to_string()))
                        });
                        settle_call(task, outcome);
                    }),
                );
                // A cancel here (or a Ctrl-C while waiting on it) reaches
                // the worker: a queued call is dropped, a running one sees
                // `cancelled()`.
                let writer = Arc::downgrade(&self.writer);
                future.on_cancel(move || {
                    if let Some(writer) = writer.upgrade() {
                        let _ = writer.lock().send(&ToWorker::Cancel { id });
                    }
                })
            })
            .collect();
        Ok((first, futures))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let free = ToWorker::Free {
            instance: self.instance,
        };
        let _ = self.link.writer.lock().send(&free);
    }
}

pub(super) fn lost(why: String) -> Error {
    Error::WorkerLost(why)
}

/// Settles a call's future from a transport's thread (a reply reader, an
/// MPI thread, a death watch, a caller whose message was refused): it is
/// published there, in the order of the replies, and what publication runs
/// of user code (done-callbacks, a continuation, the dependents they
/// settle) runs on a thread of the runtime's callbacks pool instead, so
/// that a callback that blocks, or waits on another call, never stops the
/// thread that reads the replies.
fn settle_call<R: Send + 'static>(task: TaskRef<R>, outcome: Result<R, Error>) {
    let Some(handed) = task.settle_quietly(outcome) else {
        return;
    };
    static CALLBACKS: OnceLock<Option<Pool>> = OnceLock::new();
    let pool = CALLBACKS.get_or_init(|| {
        // Its own backend: the callbacks run on a thread of their own in
        // every mode, also when `CONCERTINA_DISABLE_ASYNC=1`.
        Pool::builder()
            .name("remote-callbacks")
            .backend(Backend::Crossbeam)
            .threads(1)
            .build()
            .ok()
    });
    match pool {
        Some(pool) => drop(pool.spawn(move || task.finish(handed))),
        // No thread could be started: here, rather than never.
        None => task.finish(handed),
    }
}

/// Settles call `id` with its outcome.
pub(crate) fn settle(state: &Mutex<State>, id: u64, outcome: Outcome<'_>) {
    let pending = state.lock().pending.remove(&id);
    if let Some(settle) = pending {
        settle(match &outcome {
            Outcome::Value(bytes) => Ok(bytes),
            Outcome::Panicked(message) => Err(Error::Panicked(message.clone())),
            Outcome::Failed(why) => Err(Error::Remote(why.clone())),
            Outcome::Cancelled => Err(Error::Cancelled),
        });
    }
}

/// Why the transport refused a message (one over the size limit), if it
/// did. A write that fails otherwise means the worker is gone: its reply
/// side fails the pending calls.
fn refusal(sent: std::io::Result<()>) -> Option<String> {
    match sent {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Some(e.to_string()),
        _ => None,
    }
}

/// The worker is gone: every pending call, and every later one, fails with
/// `WorkerLost` and `why`.
pub(crate) fn fail_all(state: &Mutex<State>, why: String) {
    let pending = {
        let mut state = state.lock();
        state.lost = Some(why.clone());
        std::mem::take(&mut state.pending)
    };
    for (_, settle) in pending {
        settle(Err(Error::WorkerLost(why.clone())));
    }
}
