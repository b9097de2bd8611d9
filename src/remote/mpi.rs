//! The MPI transport (feature `mpi`): the ranks of an `mpirun -n N` job
//! (static ranks, SPMD). Rank 0 runs the program; ranks 1..N serve remote
//! instances. One thread per rank owns MPI (rsmpi's communicators are not
//! `Send` with every implementation): on rank 0 a thread of its own, which
//! the handles reach through a channel; on a worker rank the main thread,
//! which also reads the parent's messages. The messages are those of the
//! local transport, each one MPI message of postcard bytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use mpi::point_to_point::{Message, Status};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use mpi::Threading;

use crate::error::{ConfigError, Error};
use crate::error::{LostKind, WorkerLost};
use crate::remote::frame::{self, FromWorker, ToWorker};
use crate::remote::link::{fail_all, set_ranks, settle, Link, Outbox, RankLinks, State};
use crate::remote::server::{Output, Server};
use crate::remote::spare;
use crate::remote::{CodeEntry, TRANSPORT_ENV};
use crate::sync::Mutex;

/// Parent to worker: a [`ToWorker`].
const TO_WORKER: i32 = 1;
/// Worker to parent: a [`FromWorker`].
const FROM_WORKER: i32 = 2;
/// Worker to parent, once at the start: its pid (4 bytes, little-endian).
const HELLO: i32 = 3;
/// Worker to parent, last: every call it had has replied.
const STOPPED: i32 = 4;

/// The ranks of the job, seen from rank 0.
pub(crate) struct Ranks {
    outgoing: Sender<Out>,
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

/// To the MPI thread of rank 0.
enum Out {
    /// A message (postcard) for a rank, and how many replies it asks for.
    To(i32, Vec<u8>, usize),
    /// Stop every rank, then finalise.
    Shutdown,
}

/// A link's messages, through rank 0's MPI thread.
struct RankOutbox {
    rank: i32,
    outgoing: Sender<Out>,
}

impl Outbox for RankOutbox {
    fn send(&mut self, message: &ToWorker) -> std::io::Result<()> {
        let bytes = frame::encoded(message)?;
        // One reply per call (a cancelled one replies that it was).
        let replies = match message {
            ToWorker::Start { .. } | ToWorker::Call { .. } | ToWorker::CallAfter { .. } => 1,
            ToWorker::Calls { args, .. } => args.len(),
            ToWorker::Cancel { .. }
            | ToWorker::Go { .. }
            | ToWorker::Free { .. }
            | ToWorker::Stop => 0,
        };
        self.outgoing
            .send(Out::To(self.rank, bytes, replies))
            .map_err(|_| std::io::ErrorKind::NotConnected.into())
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
    keep_codes(codes);
    // Rank 0 keeps MPI on a thread of its own; a worker rank on this one.
    // Which one this is is known only once MPI is initialised, so the
    // thread initialises it and says.
    let (told, rank) = crossbeam_channel::bounded::<Result<Started, String>>(1);
    let (outgoing, incoming) = crossbeam_channel::unbounded::<Out>();
    let thread = std::thread::Builder::new()
        .name("concertina-mpi".into())
        .spawn(move || owner(told, incoming))
        .unwrap_or_else(|e| fatal(&format!("cannot start the MPI thread: {e}")));
    match rank.recv() {
        Ok(Ok(Started::Root { pids, states })) => {
            let links = (1..)
                .zip(pids.into_iter().zip(states))
                .map(|(rank, (pid, state))| {
                    let outbox = RankOutbox {
                        rank,
                        outgoing: outgoing.clone(),
                    };
                    Link::rank(rank, pid, Box::new(outbox), state)
                })
                .collect();
            let ranks = Arc::new(Ranks {
                outgoing,
                links,
                next: AtomicUsize::new(0),
                thread: Mutex::new(Some(thread)),
            });
            set_ranks(ranks.clone());
            Some(ranks)
        }
        Ok(Ok(Started::Worker)) => {
            // The MPI thread serves; this one waits for the end of the job.
            drop(outgoing);
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
    Root {
        pids: Vec<u32>,
        states: Vec<Arc<Mutex<State>>>,
    },
    /// This is a worker rank: the thread serves.
    Worker,
}

fn fatal(why: &str) -> ! {
    eprintln!("concertina: {why}");
    std::process::exit(4)
}

/// The thread that owns MPI: initialises it, then serves (a worker rank)
/// or carries rank 0's messages, and finalises it at the end.
fn owner(told: Sender<Result<Started, String>>, incoming: Receiver<Out>) {
    let Some((universe, granted)) = mpi::initialize_with_threading(Threading::Funneled) else {
        let _ = told.send(Err("MPI was already initialised".into()));
        return;
    };
    // Only this thread calls MPI: `Funneled` is what that needs (it
    // initialised MPI, so it is MPI's main thread).
    if matches!(granted, Threading::Single) {
        let _ = told.send(Err(format!(
            "the MPI implementation grants only {granted:?} threading; the MPI transport \
             needs Funneled (one thread of a threaded process calls MPI)"
        )));
        return;
    }
    let world = universe.world();
    if world.rank() == 0 {
        root(&world, &told, &incoming);
    } else {
        // The terminal's Ctrl-C reaches every rank; rank 0 handles it and
        // tells the workers what to cancel.
        let _ = ctrlc::set_handler(|| {});
        let _ = told.send(Ok(Started::Worker));
        drop(incoming);
        serve_rank(&world);
    }
    // The end of the universe finalises MPI.
    drop(universe);
}

/// How long to wait for the next message: yields for a moment after the
/// last message (the next one of a conversation comes soon), then sleeps
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

    /// Yields (`None`) or says how long to wait.
    fn step(&mut self) -> Option<Duration> {
        if self.last.elapsed() < Self::SPIN {
            std::thread::yield_now();
            return None;
        }
        if self.last.elapsed() > Self::DROWSY {
            return Some(Self::DEEP);
        }
        self.sleeps = (self.sleeps + 1).min(5);
        Some(Duration::from_micros(32 << self.sleeps).min(Duration::from_millis(1)))
    }
}

/// Sends `bytes` to `to` with `tag`, receiving meanwhile: until the send
/// completes, every message with tag `incoming` from `from` is received
/// and handed to `arrived`. A blocking send of a message beyond the MPI
/// library's eager limit waits for the peer to receive it; two ranks that
/// sent each other such messages at once would both wait for ever. With
/// this, each one receives the other's message while its own is under way.
fn send_receiving<S, D>(
    from: &S,
    to: &D,
    bytes: &[u8],
    tag: i32,
    incoming: i32,
    arrived: &mut dyn FnMut(&[u8], Status),
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
                arrived(&bytes, status);
                spare::give(bytes);
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
    let mut bytes = spare::take(count);
    bytes.resize(count, 0);
    let status = message.matched_receive_into(&mut bytes[..]);
    (bytes, status)
}

/// Rank 0's MPI thread.
fn root(
    world: &SimpleCommunicator,
    told: &Sender<Result<Started, String>>,
    incoming: &Receiver<Out>,
) {
    let size = world.size();
    if size < 2 {
        // Nothing to serve on: the session says so at the first start.
        let _ = told.send(Ok(Started::Root {
            pids: Vec::new(),
            states: Vec::new(),
        }));
        let _ = incoming.recv();
        return;
    }
    let mut pids = vec![0u32; (size - 1) as usize];
    for _ in 1..size {
        let (bytes, status) = world.any_process().receive_vec_with_tag::<u8>(HELLO);
        let pid = bytes.try_into().map(u32::from_le_bytes).unwrap_or(0);
        pids[(status.source_rank() - 1) as usize] = pid;
    }
    let states: Vec<Arc<Mutex<State>>> = (1..size).map(|_| State::new()).collect();
    let _ = told.send(Ok(Started::Root {
        pids,
        states: states.clone(),
    }));
    // Settles the calls a worker's message answers; how many.
    let route = |bytes: &[u8], rank: i32| {
        let state = &states[(rank - 1) as usize];
        match postcard::from_bytes::<FromWorker<'_>>(bytes) {
            Ok(FromWorker::Reply { id, outcome }) => {
                settle(state, id, outcome);
                1
            }
            Ok(FromWorker::Replies(outcomes)) => {
                let count = outcomes.len();
                for (id, outcome) in outcomes {
                    settle(state, id, outcome);
                }
                count
            }
            Err(e) => {
                fail_all(
                    state,
                    &format!("MPI rank {rank}"),
                    WorkerLost::new(
                        LostKind::Garbage,
                        format!("rank {rank} sent a message that does not decode: {e}"),
                    ),
                );
                0
            }
        }
    };
    // The replies still to come: with none, nothing can arrive, and this
    // thread sleeps until there is something to send.
    let mut outstanding = 0usize;
    // Sends a message, taking the replies that arrive meanwhile; false to
    // shut down.
    let send = |out: Out, outstanding: &mut usize| match out {
        Out::To(rank, bytes, replies) => {
            *outstanding += replies;
            send_receiving(
                &world.any_process(),
                &world.process_at_rank(rank),
                &bytes,
                TO_WORKER,
                FROM_WORKER,
                &mut |bytes, status| {
                    let settled = route(bytes, status.source_rank());
                    *outstanding = outstanding.saturating_sub(settled);
                },
            );
            spare::give(bytes);
            true
        }
        Out::Shutdown => false,
    };
    let mut backoff = Backoff::new();
    'serve: loop {
        let mut busy = false;
        loop {
            // Nothing to wait for, and quiet for a while: sleep until
            // there is something to send (a conversation's next call
            // usually comes within the spin).
            let out = if outstanding == 0 && !busy && backoff.quiet() {
                match incoming.recv() {
                    Ok(out) => out,
                    Err(_) => break 'serve,
                }
            } else {
                match incoming.try_recv() {
                    Ok(out) => out,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => break 'serve,
                }
            };
            busy = true;
            if !send(out, &mut outstanding) {
                break 'serve;
            }
        }
        while let Some(probed) = world
            .any_process()
            .immediate_matched_probe_with_tag(FROM_WORKER)
        {
            let (bytes, status) = received(probed);
            outstanding = outstanding.saturating_sub(route(&bytes, status.source_rank()));
            spare::give(bytes);
            busy = true;
        }
        if busy {
            backoff.reset();
        } else if let Some(wait) = backoff.step() {
            match incoming.recv_timeout(wait) {
                Ok(out) => {
                    backoff.reset();
                    if !send(out, &mut outstanding) {
                        break 'serve;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break 'serve,
            }
        }
    }
    // Every rank runs the calls it has, replies, and says it stopped.
    let stop = postcard::to_stdvec(&ToWorker::Stop).expect("a stop encodes");
    for rank in 1..size {
        send_receiving(
            &world.any_process(),
            &world.process_at_rank(rank),
            &stop,
            TO_WORKER,
            FROM_WORKER,
            &mut |bytes, status| {
                route(bytes, status.source_rank());
            },
        );
    }
    let mut running = size - 1;
    while running > 0 {
        let (bytes, status) = received(world.any_process().matched_probe());
        match status.tag() {
            FROM_WORKER => {
                route(&bytes, status.source_rank());
            }
            _ => running -= 1,
        }
    }
    for (i, state) in states.iter().enumerate() {
        fail_all(
            state,
            &format!("MPI rank {}", i + 1),
            WorkerLost::new(
                LostKind::SessionEnded,
                format!("the MPI session ended (rank {})", i + 1),
            ),
        );
    }
}

/// A worker rank: serves the instances rank 0 asks for until it says stop.
fn serve_rank(world: &SimpleCommunicator) {
    let parent = world.process_at_rank(0);
    parent.send_with_tag(&std::process::id().to_le_bytes()[..], HELLO);
    let codes = CODES.get().copied().unwrap_or(&[]);
    let (replies, replied) = crossbeam_channel::unbounded::<Vec<u8>>();
    let output: Output = Arc::new(move |message: &FromWorker<'_>| {
        frame::encoded(message)
            .ok()
            .is_some_and(|bytes| replies.send(bytes).is_ok())
    });
    let mut rank = Rank {
        server: Server::new(codes, output),
        stopping: false,
        world,
    };
    let mut backoff = Backoff::new();
    loop {
        let mut busy = false;
        while let Ok(bytes) = replied.try_recv() {
            rank.reply(&bytes, FROM_WORKER);
            spare::give(bytes);
            busy = true;
        }
        if rank.stopping && rank.server.finished() {
            // Whatever the last calls replied, then the end.
            while let Ok(bytes) = replied.try_recv() {
                rank.reply(&bytes, FROM_WORKER);
                spare::give(bytes);
            }
            rank.reply(&[0u8], STOPPED);
            return;
        }
        if let Some(probed) = parent.immediate_matched_probe_with_tag(TO_WORKER) {
            let (bytes, _) = received(probed);
            rank.arrived(&bytes);
            spare::give(bytes);
            busy = true;
        }
        if busy {
            backoff.reset();
        } else if let Some(wait) = backoff.step() {
            if let Ok(bytes) = replied.recv_timeout(wait) {
                rank.reply(&bytes, FROM_WORKER);
                spare::give(bytes);
                backoff.reset();
            }
        }
    }
}

/// A worker rank's side of the conversation with rank 0.
struct Rank<'a> {
    server: Server<'a>,
    stopping: bool,
    world: &'a SimpleCommunicator,
}

impl Rank<'_> {
    /// A message from the parent: handled at once (the server queues calls
    /// to their instances), also while a reply is being sent.
    fn arrived(&mut self, bytes: &[u8]) {
        match postcard::from_bytes::<ToWorker>(bytes) {
            Ok(message) => {
                if !self.server.handle(message) {
                    self.server.end(false);
                    self.stopping = true;
                }
            }
            Err(e) => {
                eprintln!(
                    "concertina worker rank {}: a message that does not decode: {e}",
                    self.world.rank()
                );
                self.world.abort(3);
            }
        }
    }

    /// Sends `bytes` to the parent, taking its messages meanwhile.
    fn reply(&mut self, bytes: &[u8], tag: i32) {
        let parent = self.world.process_at_rank(0);
        send_receiving(&parent, &parent, bytes, tag, TO_WORKER, &mut |bytes, _| {
            self.arrived(bytes)
        });
    }
}

/// The codes a worker rank serves (set before MPI starts).
static CODES: OnceLock<&'static [CodeEntry]> = OnceLock::new();

/// Keeps the codes for the MPI thread of a worker rank.
fn keep_codes(codes: &[CodeEntry]) {
    let _ = CODES.set(Vec::leak(codes.to_vec()));
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
        let _ = self.outgoing.send(Out::Shutdown);
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}
