//! The MPI transport (feature `mpi`): the ranks of an `mpirun -n N` job
//! (static ranks, SPMD). Rank 0 runs the program; ranks 1..N serve remote
//! instances. The messages are those of the local transport, each one MPI
//! message, its large part first ([`packed`]).
//!
//! On each rank one thread at a time calls MPI: the thread that holds the
//! rank's conversations. MPI starts on a thread of its own (rank 0's MPI
//! thread, or a worker rank's serving thread), which holds them whenever
//! nobody else does. Where MPI grants `Serialized` threading, a thread
//! that would otherwise be woken by it holds them instead while it waits:
//! on rank 0 a thread waiting for a call's reply ([`root`]), on a worker
//! rank an instance's thread waiting for its next call ([`rank`]). Each
//! receives what it waits for itself, so that a small call costs no
//! thread wake-up on either side; the MPI thread stands by meanwhile.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use mpi::point_to_point::{Message, Status};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use mpi::Threading;

use crate::error::{ConfigError, Error};
use crate::remote::link::{set_ranks, Link, RankLinks};
use crate::remote::spare;
use crate::remote::{CodeEntry, TRANSPORT_ENV};
use crate::sync::Mutex;

mod packed;
mod rank;
mod root;

use root::{Post, RankOutbox, Root};

/// Parent to worker: a [`ToWorker`](crate::remote::frame::ToWorker).
const TO_WORKER: i32 = 1;
/// Worker to parent: a [`FromWorker`](crate::remote::frame::FromWorker).
const FROM_WORKER: i32 = 2;
/// Worker to parent, once at the start: its pid (4 bytes, little-endian).
const HELLO: i32 = 3;
/// Worker to parent, last: every call it had has replied.
const STOPPED: i32 = 4;

/// The ranks of the job, seen from rank 0.
pub(crate) struct Ranks {
    post: Arc<Post>,
    /// The worker on rank `i + 1`.
    links: Vec<Arc<Link>>,
    next: AtomicUsize,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Ranks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranks")
            .field("workers", &self.links.len())
            .finish()
    }
}

/// True when this process should join an MPI job: `CONCERTINA_TRANSPORT`
/// says `mpi`, or it is unset and a launcher started more than one rank.
fn wanted() -> bool {
    match std::env::var(TRANSPORT_ENV).as_deref() {
        Ok("mpi") => true,
        Ok(_) => false,
        Err(_) => [
            "PMI_SIZE",
            "OMPI_COMM_WORLD_SIZE",
            "PMIX_SIZE",
            "MPI_LOCALNRANKS",
        ]
        .iter()
        .any(|var| {
            std::env::var(var)
                .ok()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n > 1)
        }),
    }
}

/// Joins the MPI job when this process is one of its ranks: a worker rank
/// serves `codes` and exits; rank 0 gets the ranks (and `None` is
/// returned outside a job).
pub(crate) fn serve_if_rank(codes: &[CodeEntry]) -> Option<Arc<Ranks>> {
    // MPI starts once per process: a second call finds it started.
    static JOINED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !wanted() || JOINED.swap(true, Ordering::SeqCst) {
        return None;
    }
    rank::keep_codes(codes);
    // Rank 0 keeps MPI on a thread of its own; a worker rank on this one.
    // Which one this is is known only once MPI is initialised, so the
    // thread initialises it and says.
    let (told, rank) = crossbeam_channel::bounded::<Result<Started, String>>(1);
    let post = Post::new();
    let thread = {
        let post = post.clone();
        std::thread::Builder::new()
            .name("concertina-mpi".into())
            .spawn(move || owner(told, post))
    }
    .unwrap_or_else(|e| fatal(&format!("cannot start the MPI thread: {e}")));
    match rank.recv() {
        Ok(Ok(Started::Root { pids, root })) => {
            let links = (1..)
                .zip(pids.into_iter().zip(&root.states))
                .map(|(rank, (pid, state))| {
                    let outbox = RankOutbox {
                        rank,
                        post: post.clone(),
                    };
                    Link::rank(rank, pid, Box::new(outbox), state.clone(), root.clone())
                })
                .collect();
            let ranks = Arc::new(Ranks {
                post,
                links,
                next: AtomicUsize::new(0),
                thread: Mutex::new(Some(thread)),
            });
            set_ranks(ranks.clone());
            Some(ranks)
        }
        Ok(Ok(Started::Worker)) => {
            // The MPI thread serves; this one waits for the end of the job.
            drop(post);
            let served = thread.join();
            std::process::exit(if served.is_ok() { 0 } else { 4 });
        }
        Ok(Err(why)) => fatal(&why),
        Err(_) => fatal("the MPI thread ended before MPI was initialised"),
    }
}

/// What the MPI thread found.
enum Started {
    /// This is rank 0: the workers' pids and where their replies go.
    Root { pids: Vec<u32>, root: Arc<Root> },
    /// This is a worker rank: the thread serves.
    Worker,
}

fn fatal(why: &str) -> ! {
    eprintln!("concertina: {why}");
    std::process::exit(4)
}

/// The thread that owns MPI: initialises it, then serves (a worker rank)
/// or carries rank 0's messages, and finalises it at the end.
fn owner(told: Sender<Result<Started, String>>, post: Arc<Post>) {
    let Some((universe, granted)) = mpi::initialize_with_threading(Threading::Serialized) else {
        let _ = told.send(Err("MPI was already initialised".into()));
        return;
    };
    // This thread calls MPI, and on a worker rank, with `Serialized`, an
    // instance's thread that holds the conversation; with `Funneled` only
    // this one (it initialised MPI, so it is MPI's main thread).
    let direct = matches!(granted, Threading::Serialized | Threading::Multiple);
    if matches!(granted, Threading::Single) {
        let _ = told.send(Err(format!(
            "the MPI implementation grants only {granted:?} threading; the MPI transport \
             needs Funneled (one thread of a threaded process calls MPI)"
        )));
        return;
    }
    let world = universe.world();
    if world.rank() == 0 {
        serve_root(&world, &told, post, direct);
    } else {
        // The terminal's Ctrl-C reaches every rank; rank 0 handles it and
        // tells the workers what to cancel.
        let _ = ctrlc::set_handler(|| {});
        let _ = told.send(Ok(Started::Worker));
        drop(post);
        rank::serve_rank(&world, direct);
    }
    // The end of the universe finalises MPI.
    drop(universe);
}

/// How long to wait for the next message: spins, then yields, for a moment
/// after the last message (the next one of a conversation comes soon), then sleeps
/// growing to a millisecond, and to 10 ms after 50 ms without a message,
/// so that an idle rank costs little CPU (MPI's own blocking receive
/// busy-waits with MPICH, a core per idle rank).
struct Backoff {
    last: std::time::Instant,
    sleeps: u32,
}

impl Backoff {
    /// How long a rank keeps yielding after its last message.
    const SPIN: Duration = Duration::from_micros(300);
    /// After this long without a message, a rank polls only every
    /// [`Self::DEEP`]: the first message after a pause waits at most that.
    const DROWSY: Duration = Duration::from_millis(50);
    const DEEP: Duration = Duration::from_millis(10);

    fn new() -> Self {
        Backoff {
            last: std::time::Instant::now(),
            sleeps: 0,
        }
    }

    fn reset(&mut self) {
        self.last = std::time::Instant::now();
        self.sleeps = 0;
    }

    /// True once past the spin after the last message.
    fn quiet(&self) -> bool {
        self.last.elapsed() >= Self::SPIN
    }

    /// Spins or yields (`None`), or says how long to wait.
    fn step(&mut self) -> Option<Duration> {
        if self.last.elapsed() < Self::SPIN {
            pause(self.last);
            return None;
        }
        if self.last.elapsed() > Self::DROWSY {
            return Some(Self::DEEP);
        }
        self.sleeps = (self.sleeps + 1).min(5);
        Some(Duration::from_micros(32 << self.sleeps).min(Duration::from_millis(1)))
    }
}

/// How long the MPI thread of a rank sleeps while another thread holds the
/// rank's conversations (or held them since it last looked), before it
/// looks again.
const TICK: Duration = Duration::from_micros(200);

/// How long a thread that serves MPI spins after the last message before
/// it yields: a reply within it is seen at once, not after a system call.
const HOT: Duration = Duration::from_micros(20);

/// A pause between two looks at MPI, `since` the last message: a spin
/// while [`HOT`], a yield after.
fn pause(since: std::time::Instant) {
    if since.elapsed() < HOT {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Serves a rank's conversations, `held`, with `step` (true when a message
/// came or went) until `done`, or until nothing came for [`Backoff::SPIN`].
fn serve_while<H>(held: &mut H, done: impl Fn(&H) -> bool, mut step: impl FnMut(&mut H) -> bool) {
    let mut last = std::time::Instant::now();
    while !done(held) {
        if step(held) {
            last = std::time::Instant::now();
        } else if last.elapsed() > Backoff::SPIN {
            return;
        } else {
            pause(last);
        }
    }
}

/// Sends `bytes` to `to` with `tag`, receiving meanwhile: until the send
/// completes, every message with tag `incoming` from `from` is received
/// and handed to `arrived` (whose bytes are a kept buffer, see `spare`, to
/// give back once read). A blocking send of a message beyond the MPI
/// library's eager limit waits for the peer to receive it; two ranks that
/// sent each other such messages at once would both wait for ever. With
/// this, each one receives the other's message while its own is under way.
fn send_receiving<S, D>(
    from: &S,
    to: &D,
    bytes: &[u8],
    tag: i32,
    incoming: i32,
    arrived: &mut dyn FnMut(Vec<u8>, Status),
) where
    S: Source,
    D: Destination,
{
    mpi::request::scope(|scope| {
        let mut request = to.immediate_send_with_tag(scope, bytes, tag);
        loop {
            match request.test() {
                Ok(_) => return,
                Err(pending) => request = pending,
            }
            let mut any = false;
            while let Some(probed) = from.immediate_matched_probe_with_tag(incoming) {
                let (bytes, status) = received(probed);
                arrived(bytes, status);
                any = true;
            }
            if !any {
                std::thread::yield_now();
            }
        }
    });
}

/// Receives a probed message, into a kept buffer when one fits (see
/// `spare`): give it back once read.
fn received((message, status): (Message, Status)) -> (Vec<u8>, Status) {
    let count = usize::try_from(status.count(u8::equivalent_datatype())).unwrap_or(0);
    let mut bytes = spare::filled(count);
    let status = message.matched_receive_into(&mut bytes[..]);
    (bytes, status)
}

/// Rank 0's MPI thread: learns the workers' pids, then serves the
/// conversations with them (see [`Root`]).
fn serve_root(
    world: &SimpleCommunicator,
    told: &Sender<Result<Started, String>>,
    post: Arc<Post>,
    direct: bool,
) {
    let size = world.size();
    let mut pids = vec![0u32; (size - 1) as usize];
    for _ in 1..size {
        let (bytes, status) = world.any_process().receive_vec_with_tag::<u8>(HELLO);
        let pid = bytes.try_into().map(u32::from_le_bytes).unwrap_or(0);
        pids[(status.source_rank() - 1) as usize] = pid;
    }
    // With no worker rank, nothing to serve: the session says so at the
    // first start, and this thread waits for the end.
    let root = Root::new(post, pids.len(), direct);
    let _ = told.send(Ok(Started::Root {
        pids,
        root: root.clone(),
    }));
    root.serve(world);
}

impl RankLinks for Ranks {
    fn link(&self, rank: Option<i32>) -> Result<Arc<Link>, Error> {
        if self.links.is_empty() {
            return Err(ConfigError::transport(
                "the MPI transport has no worker rank: run the program with `mpirun -n N` and N of 2 or more \
                 (rank 0 runs the program, ranks 1 to N-1 serve)",
            )
            .into());
        }
        let index = match rank {
            Some(rank) if rank >= 1 && (rank as usize) <= self.links.len() => rank as usize - 1,
            Some(rank) => {
                return Err(ConfigError::transport(format!(
                    "rank {rank} is not a worker rank: expected 1 to {} (rank 0 runs the program)",
                    self.links.len()
                ))
                .into())
            }
            None => self.next.fetch_add(1, Ordering::Relaxed) % self.links.len(),
        };
        Ok(self.links[index].clone())
    }

    fn workers(&self) -> usize {
        self.links.len()
    }
}

impl Ranks {
    /// Stops every worker rank (each runs the calls it has first) and
    /// finalises MPI.
    pub(crate) fn shutdown(&self) {
        self.post.shut_down();
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}
