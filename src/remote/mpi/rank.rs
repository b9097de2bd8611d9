//! A worker rank: serves the instances rank 0 asks for until it says stop.
//!
//! Its conversation with rank 0 is held by one thread at a time, which
//! receives the messages and sends the replies: the MPI thread, or — where
//! MPI grants `Serialized` threading — an instance's thread while it waits
//! for its next call. That thread then takes its call from MPI itself and
//! runs it without being woken, and sends its reply itself, while the MPI
//! thread sleeps: one thread of the rank polls MPI at a time.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock, Weak};

use crossbeam_channel::{Receiver, Sender};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

use super::{
    packed, received, send_receiving, serve_while, Backoff, FROM_WORKER, HELLO, STOPPED, TICK,
    TO_WORKER,
};
use crate::remote::frame::FromWorker;
use crate::remote::server::{Idle, Output, Server};
use crate::remote::spare;
use crate::remote::CodeEntry;
use crate::sync::Mutex;

/// The codes a worker rank serves (set before MPI starts).
static CODES: OnceLock<&'static [CodeEntry]> = OnceLock::new();

/// Keeps the codes for the MPI thread of a worker rank.
pub(super) fn keep_codes(codes: &[CodeEntry]) {
    let _ = CODES.set(Vec::leak(codes.to_vec()));
}

/// What the thread holding the conversation works with.
struct Rank {
    server: Server<'static>,
    stopping: bool,
}

/// A worker rank's conversation with rank 0, shared by the threads that
/// may hold it.
struct Conversation {
    rank: Mutex<Rank>,
    /// Replies made while another thread held the conversation, in the
    /// order made: sent before any later one.
    queued: Mutex<VecDeque<Vec<u8>>>,
    /// Rings the MPI thread when a reply was queued.
    bell: Sender<()>,
}

/// Serves on this rank (`direct`: the instances' threads may hold the
/// conversation, MPI having granted `Serialized` threading).
pub(super) fn serve_rank(world: &SimpleCommunicator, direct: bool) {
    let parent = world.process_at_rank(0);
    parent.send_with_tag(&std::process::id().to_le_bytes()[..], HELLO);
    let codes = CODES.get().copied().unwrap_or(&[]);
    let (bell, rung) = crossbeam_channel::bounded::<()>(1);
    let conversation = Arc::new_cyclic(|weak: &Weak<Conversation>| {
        let mut server = Server::new(codes, output(weak.clone(), direct));
        if direct {
            server = server.with_idle(idle(weak.clone()));
        }
        Conversation {
            rank: Mutex::new(Rank {
                server,
                stopping: false,
            }),
            queued: Mutex::default(),
            bell,
        }
    });
    conversation.serve(world, &rung);
}

/// Where the instances' replies go: sent at once by the thread that made
/// one when it can hold the conversation (and nothing queued is before
/// it), queued for the holder otherwise.
fn output(conversation: Weak<Conversation>, direct: bool) -> Output {
    Arc::new(move |message: &mut FromWorker<'_>| {
        let Ok(bytes) = packed::from_worker(message) else {
            return false;
        };
        let Some(conversation) = conversation.upgrade() else {
            return false;
        };
        if direct {
            if let Some(mut rank) = conversation.rank.try_lock() {
                let world = SimpleCommunicator::world();
                conversation.send_queued(&mut rank, &world);
                rank.reply(&world, &bytes, FROM_WORKER);
                spare::give(bytes);
                return true;
            }
        }
        conversation.queued.lock().push_back(bytes);
        let _ = conversation.bell.try_send(());
        true
    })
}

/// What an instance's thread does before it sleeps for its next call: it
/// holds the conversation, if nobody does, and serves it until its call is
/// there (`ready`) or nothing came for [`Backoff::SPIN`].
fn idle(conversation: Weak<Conversation>) -> Idle {
    Arc::new(move |ready: &dyn Fn() -> bool| {
        let Some(conversation) = conversation.upgrade() else {
            return;
        };
        let Some(mut rank) = conversation.rank.try_lock() else {
            return;
        };
        let world = SimpleCommunicator::world();
        serve_while(
            &mut *rank,
            |rank| ready() || rank.stopping,
            |rank| conversation.step(rank, &world),
        );
    })
}

impl Conversation {
    /// The MPI thread's loop: holds the conversation whenever no other
    /// thread does, until the parent said stop and every call replied.
    fn serve(&self, world: &SimpleCommunicator, rung: &Receiver<()>) {
        let mut backoff = Backoff::new();
        loop {
            let Some(mut rank) = self.rank.try_lock() else {
                // An instance's thread serves (it sleeps once nothing
                // comes): this one looks again in a moment.
                std::thread::sleep(TICK);
                backoff.reset();
                continue;
            };
            if rank.stopping && rank.server.finished() {
                // Whatever the last calls replied, then the end.
                self.send_queued(&mut rank, world);
                rank.reply(world, &[0u8], STOPPED);
                return;
            }
            let busy = self.step(&mut rank, world);
            drop(rank);
            if busy {
                backoff.reset();
            } else if let Some(wait) = backoff.step() {
                if rung.recv_timeout(wait).is_ok() {
                    backoff.reset();
                }
            }
        }
    }

    /// One round with the conversation held: the queued replies sent, then
    /// a message of the parent's received if one came. True when anything
    /// was.
    fn step(&self, rank: &mut Rank, world: &SimpleCommunicator) -> bool {
        let mut busy = self.send_queued(rank, world);
        if let Some(probed) = world
            .process_at_rank(0)
            .immediate_matched_probe_with_tag(TO_WORKER)
        {
            let (bytes, _) = received(probed);
            rank.arrived(world, bytes);
            busy = true;
        }
        busy
    }

    /// Sends the queued replies, in order; true if there were any.
    fn send_queued(&self, rank: &mut Rank, world: &SimpleCommunicator) -> bool {
        let mut any = false;
        loop {
            // Not held while sending: a reply made meanwhile queues.
            let next = self.queued.lock().pop_front();
            let Some(bytes) = next else {
                return any;
            };
            rank.reply(world, &bytes, FROM_WORKER);
            spare::give(bytes);
            any = true;
        }
    }
}

impl Rank {
    /// A message from the parent: handled at once (the server queues calls
    /// to their instances), also while a reply is being sent. Its bytes
    /// become the arguments' buffer of the call it makes.
    fn arrived(&mut self, world: &SimpleCommunicator, bytes: Vec<u8>) {
        match packed::read_to_worker(bytes) {
            Ok(message) => {
                if !self.server.handle(message) {
                    self.server.end(false);
                    self.stopping = true;
                }
            }
            Err(e) => {
                eprintln!(
                    "concertina worker rank {}: a message that does not decode: {e}",
                    world.rank()
                );
                world.abort(3);
            }
        }
    }

    /// Sends `bytes` to the parent, taking its messages meanwhile.
    fn reply(&mut self, world: &SimpleCommunicator, bytes: &[u8], tag: i32) {
        let parent = world.process_at_rank(0);
        send_receiving(&parent, &parent, bytes, tag, TO_WORKER, &mut |bytes, _| {
            self.arrived(world, bytes)
        });
    }
}
