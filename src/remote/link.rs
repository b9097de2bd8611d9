//! A worker as its handles see it, whatever carries its messages: the link
//! (its writer, its pending calls, what the worker is) and the settling of
//! the calls' futures, never on a thread the transport needs for user
//! code.

use std::collections::HashMap;
use std::io::BufWriter;
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::error::{LostKind, RemoteFailure, RemoteFailureKind, WorkerLost};
use crate::future::Future;
use crate::pool::{Backend, Pool};
use crate::remote::frame::{self, Outcome, ToWorker};
use crate::remote::{decode, decode_into};
use crate::sync::Mutex;
use crate::task::{Drive, TaskRef};

/// How long a worker may take to connect after it started.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopped worker may take to exit before it is killed.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(2);

type Pending = Box<dyn FnOnce(Result<&[u8], Error>) + Send>;

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
pub(super) fn ranks() -> Option<Arc<dyn RankLinks>> {
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
    /// Sends `message`; a transport that sends whole messages takes its
    /// arguments' buffer for the message.
    fn send(&mut self, message: &mut ToWorker) -> std::io::Result<()>;
}

impl Outbox for BufWriter<UnixStream> {
    fn send(&mut self, message: &mut ToWorker) -> std::io::Result<()> {
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
    /// Another rank of the MPI job, serving for the whole session; a
    /// thread waiting for one of its calls serves the MPI conversations
    /// with `driver`.
    #[cfg(feature = "mpi")]
    Rank { rank: i32, driver: Arc<dyn Drive> },
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
    pub(super) lost: Option<WorkerLost>,
}

impl Link {
    /// `what` `name` on the process it talks to: a call's name in
    /// snapshots, made in one allocation.
    fn name_of(&self, what: &str, name: &str) -> Arc<str> {
        match &self.process {
            Process::Local { .. } => format!("{what} `{name}` on worker process {}", self.pid),
            #[cfg(feature = "mpi")]
            Process::Rank { rank, .. } => format!("{what} `{name}` on MPI rank {rank}"),
        }
        .into()
    }

    /// What a thread waiting for a call may serve (see [`Drive`]).
    fn driver(&self) -> Option<Arc<dyn Drive>> {
        match &self.process {
            Process::Local { .. } => None,
            #[cfg(feature = "mpi")]
            Process::Rank { driver, .. } => Some(driver.clone()),
        }
    }

    /// The worker on an MPI rank.
    #[cfg(feature = "mpi")]
    pub(crate) fn rank(
        rank: i32,
        pid: u32,
        outbox: Box<dyn Outbox>,
        state: Arc<Mutex<State>>,
        driver: Arc<dyn Drive>,
    ) -> Arc<Link> {
        Arc::new(Link {
            pid,
            writer: Arc::new(Mutex::new(outbox)),
            state,
            process: Process::Rank { rank, driver },
            next_instance: AtomicU32::new(0),
        })
    }

    /// Fails the calls `first..first + count`, whose message the transport
    /// refused, with the reason (never under the writer's lock: settling
    /// runs the futures' callbacks).
    pub(super) fn refuse(&self, refused: Option<String>, first: u64, count: usize) {
        if let Some(why) = refused {
            let failure = RemoteFailure::new(RemoteFailureKind::TooLarge, why);
            for id in first..first + count as u64 {
                settle(&self.state, id, Outcome::Failed(failure.clone()));
            }
        }
    }

    /// Registers `count` calls: their first id and their futures, each of
    /// which tells the worker when cancelled. The first call's result is
    /// decoded into `into` when given (see `decode_into`).
    pub(super) fn register<R>(
        self: &Arc<Self>,
        count: usize,
        what: &str,
        name: &str,
        mut into: Option<R>,
    ) -> Result<(u64, Vec<Future<R>>), Error>
    where
        R: DeserializeOwned + Send + 'static,
    {
        let mut state = self.state.lock();
        if let Some(why) = &state.lost {
            return Err(Error::WorkerLost(why.clone()));
        }
        let first = state.next;
        state.next += count as u64;
        // One name for the batch, shared: a snapshot says what each waits for.
        let name = self.name_of(what, name);
        let driver = self.driver();
        let futures = (first..first + count as u64)
            .map(|id| {
                let (future, task) = Future::<R>::pending_named(name.clone(), driver.clone());
                let place = into.take();
                state.pending.insert(
                    id,
                    Box::new(move |reply: Result<&[u8], Error>| {
                        let outcome = reply.and_then(|bytes| {
                            match place {
                                Some(mut place) => decode_into(bytes, &mut place).map(|()| place),
                                None => decode::<R>(bytes),
                            }
                            .map_err(|e| Error::Remote(e.into()))
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
                        let _ = writer.lock().send(&mut ToWorker::Cancel { id });
                    }
                })
            })
            .collect();
        Ok((first, futures))
    }
}

/// A worker that could not be started (or did not connect).
pub(super) fn not_started(why: String) -> Error {
    Error::WorkerLost(WorkerLost::new(LostKind::NotStarted, why))
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
pub(super) fn refusal(sent: std::io::Result<()>) -> Option<String> {
    match sent {
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Some(e.to_string()),
        _ => None,
    }
}

/// The worker is gone: every pending call, and every later one, fails with
/// `WorkerLost` and `why`.
pub(crate) fn fail_all(state: &Mutex<State>, worker: &str, why: WorkerLost) {
    let pending = {
        let mut state = state.lock();
        state.lost = Some(why.clone());
        std::mem::take(&mut state.pending)
    };
    crate::trace::worker_lost(worker, &why.kind(), pending.len(), &why);
    for (_, settle) in pending {
        settle(Err(Error::WorkerLost(why.clone())));
    }
}
