//! Rank 0: its conversations with the worker ranks.
//!
//! They are held by one thread at a time, which sends the messages made for
//! the ranks (in the order made) and receives and routes their replies:
//! rank 0's MPI thread, or — where MPI grants `Serialized` threading — a
//! thread waiting for the reply of one of the calls, which then receives
//! it itself instead of being woken by the MPI thread (see
//! [`Drive`]). The MPI thread stands by while waiting threads hold them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

use super::{packed, received, send_receiving, serve_while, Backoff, FROM_WORKER, TICK, TO_WORKER};
use crate::error::{LostKind, WorkerLost};
use crate::remote::frame::{FromWorker, ToWorker};
use crate::remote::link::{fail_all, settle, Outbox, State};
use crate::remote::spare;
use crate::sync::Mutex;
use crate::task::Drive;

/// A message (postcard) for a rank, and how many replies it asks for.
struct Message {
    rank: i32,
    bytes: Vec<u8>,
    replies: usize,
}

/// The messages made for the worker ranks, in the order made, and how
/// rank 0's MPI thread hears of them when it sleeps.
pub(super) struct Post {
    sender: Sender<Message>,
    receiver: Receiver<Message>,
    bell: Sender<()>,
    rung: Receiver<()>,
    /// The MPI thread sleeps until rung.
    asleep: AtomicBool,
    /// Stop every rank, then finalise.
    stop: AtomicBool,
}

impl Post {
    pub(super) fn new() -> Arc<Post> {
        let (sender, receiver) = crossbeam_channel::unbounded();
        let (bell, rung) = crossbeam_channel::bounded(1);
        Arc::new(Post {
            sender,
            receiver,
            bell,
            rung,
            asleep: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        })
    }

    fn post(&self, message: Message) -> std::io::Result<()> {
        self.sender
            .send(message)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::NotConnected))?;
        // SeqCst, with the MPI thread's: it sees this message before it
        // sleeps, or this sees it asleep.
        if self.asleep.load(Ordering::SeqCst) {
            let _ = self.bell.try_send(());
        }
        Ok(())
    }

    /// Stops every worker rank once the messages made have gone, then
    /// finalises MPI (the MPI thread does, and ends).
    pub(super) fn shut_down(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.bell.try_send(());
    }

    /// The MPI thread sleeps until a message is posted, for at most
    /// `wait` (for ever with none).
    fn sleep(&self, wait: Option<Duration>) {
        self.asleep.store(true, Ordering::SeqCst);
        if self.receiver.is_empty() && !self.stop.load(Ordering::SeqCst) {
            match wait {
                Some(wait) => {
                    let _ = self.rung.recv_timeout(wait);
                }
                None => {
                    let _ = self.rung.recv();
                }
            }
        }
        self.asleep.store(false, Ordering::SeqCst);
    }
}

/// A link's messages, through whoever holds rank 0's conversations.
pub(super) struct RankOutbox {
    pub(super) rank: i32,
    pub(super) post: Arc<Post>,
}

impl Outbox for RankOutbox {
    fn send(&mut self, message: &mut ToWorker) -> std::io::Result<()> {
        let bytes = packed::to_worker(message)?;
        // One reply per call (a cancelled one replies that it was).
        let replies = match message {
            ToWorker::Start { .. } | ToWorker::Call { .. } | ToWorker::CallAfter { .. } => 1,
            ToWorker::Calls { args, .. } => args.len(),
            ToWorker::Cancel { .. }
            | ToWorker::Go { .. }
            | ToWorker::Free { .. }
            | ToWorker::Stop => 0,
        };
        self.post.post(Message {
            rank: self.rank,
            bytes,
            replies,
        })
    }
}

/// What the thread holding the conversations keeps.
struct Held {
    /// The replies still to come: with none, nothing can arrive, and the
    /// MPI thread sleeps until there is something to send.
    outstanding: usize,
    /// MPI is finalised (or about to be): nobody may call it any more.
    ended: bool,
}

/// Rank 0's conversations with the worker ranks.
pub(super) struct Root {
    post: Arc<Post>,
    held: Mutex<Held>,
    /// Where the replies of rank `i + 1` go.
    pub(super) states: Vec<Arc<Mutex<State>>>,
    /// Whether a waiting thread may hold the conversations (MPI granted
    /// `Serialized` threading).
    direct: bool,
    /// How many times a waiting thread held them: while this grows, the
    /// MPI thread stands by.
    drives: AtomicU64,
    /// A waiting thread left with replies still to come: the MPI thread
    /// takes over at once.
    handed: AtomicBool,
}

impl Root {
    pub(super) fn new(post: Arc<Post>, workers: usize, direct: bool) -> Arc<Root> {
        Arc::new(Root {
            post,
            held: Mutex::new(Held {
                outstanding: 0,
                ended: false,
            }),
            states: (0..workers).map(|_| State::new()).collect(),
            direct,
            drives: AtomicU64::new(0),
            handed: AtomicBool::new(false),
        })
    }

    /// Rank 0's MPI thread: holds the conversations whenever no waiting
    /// thread does, until the session shuts down; then stops every rank.
    pub(super) fn serve(&self, world: &SimpleCommunicator) {
        let mut backoff = Backoff::new();
        let mut drives = self.drives.load(Ordering::Relaxed);
        loop {
            // A waiting thread that held them since this one last looked
            // will again for its next call: stand by, unless it handed
            // them over.
            let seen = self.drives.load(Ordering::Relaxed);
            let handed = self.handed.swap(false, Ordering::Acquire);
            let standby = seen != drives && !handed;
            drives = seen;
            let held = if standby { None } else { self.held.try_lock() };
            let Some(mut held) = held else {
                std::thread::sleep(TICK);
                continue;
            };
            if self.post.stop.load(Ordering::SeqCst) {
                self.step(&mut held, world);
                held.ended = true;
                self.stop_ranks(world);
                return;
            }
            let busy = self.step(&mut held, world);
            let idle = held.outstanding == 0;
            drop(held);
            if busy {
                backoff.reset();
            } else if idle && backoff.quiet() {
                self.post.sleep(None);
                backoff.reset();
            } else if let Some(wait) = backoff.step() {
                self.post.sleep(Some(wait));
            }
        }
    }

    /// One round with the conversations held: the messages posted sent,
    /// then the replies that came received and routed. True when anything
    /// was.
    fn step(&self, held: &mut Held, world: &SimpleCommunicator) -> bool {
        let mut busy = false;
        while let Ok(message) = self.post.receiver.try_recv() {
            held.outstanding += message.replies;
            send_receiving(
                &world.any_process(),
                &world.process_at_rank(message.rank),
                &message.bytes,
                TO_WORKER,
                FROM_WORKER,
                &mut |bytes, status| {
                    let settled = self.route(bytes, status.source_rank());
                    held.outstanding = held.outstanding.saturating_sub(settled);
                },
            );
            spare::give(message.bytes);
            busy = true;
        }
        while let Some(probed) = world
            .any_process()
            .immediate_matched_probe_with_tag(FROM_WORKER)
        {
            let (bytes, status) = received(probed);
            let settled = self.route(bytes, status.source_rank());
            held.outstanding = held.outstanding.saturating_sub(settled);
            busy = true;
        }
        busy
    }

    /// Settles the calls a worker's message answers; how many. Its bytes
    /// are kept for a later message (see `spare`).
    fn route(&self, bytes: Vec<u8>, rank: i32) -> usize {
        let settled = self.settle_from(&bytes, rank);
        spare::give(bytes);
        settled
    }

    fn settle_from(&self, bytes: &[u8], rank: i32) -> usize {
        let state = &self.states[(rank - 1) as usize];
        match packed::read_from_worker(bytes) {
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
    }

    /// Every rank runs the calls it has, replies, and says it stopped;
    /// then every call still pending fails.
    fn stop_ranks(&self, world: &SimpleCommunicator) {
        let size = world.size();
        let stop = packed::to_worker(&mut ToWorker::Stop).expect("a stop packs");
        for rank in 1..size {
            send_receiving(
                &world.any_process(),
                &world.process_at_rank(rank),
                &stop,
                TO_WORKER,
                FROM_WORKER,
                &mut |bytes, status| {
                    self.route(bytes, status.source_rank());
                },
            );
        }
        let mut running = size - 1;
        while running > 0 {
            let (bytes, status) = received(world.any_process().matched_probe());
            match status.tag() {
                FROM_WORKER => {
                    self.route(bytes, status.source_rank());
                }
                _ => running -= 1,
            }
        }
        for (i, state) in self.states.iter().enumerate() {
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
}

impl Drive for Root {
    /// A thread waiting for a call's reply holds the conversations, when
    /// it can within [`Backoff::SPIN`], and serves them until `done()` or
    /// until nothing came for that long; then the MPI thread takes them
    /// over again.
    fn drive(&self, done: &dyn Fn() -> bool) {
        if !self.direct {
            return;
        }
        let started = Instant::now();
        let mut held = loop {
            if done() {
                return;
            }
            if let Some(held) = self.held.try_lock() {
                break held;
            }
            if started.elapsed() > Backoff::SPIN {
                return;
            }
            std::thread::yield_now();
        };
        if held.ended || self.post.stop.load(Ordering::SeqCst) {
            return;
        }
        self.drives.fetch_add(1, Ordering::Relaxed);
        let world = SimpleCommunicator::world();
        serve_while(&mut *held, |_| done(), |held| self.step(held, &world));
        let more = held.outstanding > 0 || !self.post.receiver.is_empty();
        drop(held);
        if more {
            // Replies still to come, or messages to send: the MPI thread
            // takes over now rather than at its next look.
            self.handed.store(true, Ordering::Release);
            let _ = self.post.bell.try_send(());
        }
    }
}
