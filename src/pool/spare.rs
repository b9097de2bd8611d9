//! Compensation: spare threads that keep a pool's configured number of
//! tasks running while some of its workers are blocked in waits.
//!
//! A worker that is about to sleep in a wait tells the pool
//! ([`Spares::blocked`]); the pool then owes one running thread more. A spare
//! thread that is owed ("entitled") takes queued work from the pool's lane
//! (the pool's own queue, which the workers take from too). When
//! the blocked worker wakes it goes on at once — waiting for a free slot
//! could deadlock on a mutex the waking task holds — so for a moment the
//! pool may run one task more than configured; a spare that is no longer
//! owed finishes its task and takes no new one. Idle spares retire after the
//! pool's keep-alive.
//!
//! The number of spares is capped (`PoolBuilder::max_spare_threads`); at the
//! cap, blocked workers are not compensated. A claimed task too deep for
//! its claimer's stack ([`Spares::dispatch`]) always gets a thread.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::sync::{Condvar, Mutex};
use crate::task::run_guarded;
use crate::worker::{self, Job, Queued};

/// How a pool's spare threads are made.
#[derive(Clone, Debug)]
pub(crate) struct SpareConfig {
    /// The pool's name: spares are called `concertina-<name>-<n>` too,
    /// numbered after the configured workers.
    pub(crate) name: String,
    /// The configured number of workers (the first spare's number).
    pub(crate) threads: usize,
    pub(crate) stack_size: Option<usize>,
    /// At most this many spares at once.
    pub(crate) max: usize,
    /// An idle spare retires after this long.
    pub(crate) keep_alive: Duration,
}

pub(crate) struct Spares {
    config: SpareConfig,
    state: Mutex<State>,
    /// Spares that are not owed a slot sleep here.
    gate: Condvar,
    /// Where spares take queued work from.
    lane: Receiver<Queued>,
    /// Live and finished spare threads, joined at shutdown.
    handles: Mutex<Vec<JoinHandle<()>>>,
    /// Makes a new spare thread a worker of the pool (given where its
    /// stack began).
    enter: Mutex<Option<Enter>>,
    leave: Mutex<Option<Leave>>,
    /// Counts a spare thread the pool's shutdown waits for: `true` before
    /// it is started (so that a shutdown never misses one about to run),
    /// `false` once it has left (or could not be started).
    count: Mutex<Option<Count>>,
}

type Enter = Arc<dyn Fn(usize) + Send + Sync>;
type Leave = Arc<dyn Fn() + Send + Sync>;
type Count = Arc<dyn Fn(bool) + Send + Sync>;

#[derive(Default)]
struct State {
    /// Threads of this pool (workers and spares) blocked in a wait.
    blocked: usize,
    /// Spares owed a slot: waiting on the lane, or running a task (and not
    /// blocked). At most `blocked`, except for a moment after a wake.
    entitled: usize,
    /// Spares waiting at the gate.
    gated: usize,
    /// Live spare threads.
    spares: usize,
    /// Numbers spares after the workers.
    next_index: usize,
    /// Claimed tasks handed over by a deep stack, for the next free spare.
    dispatched: VecDeque<Job>,
    /// Set at shutdown: spares that are not owed retire.
    closed: bool,
}

crate::sync::task_local! {
    /// True on a spare thread.
    static SPARE: Cell<bool> = const { Cell::new(false) };
}

impl Spares {
    pub(crate) fn new(config: SpareConfig, lane: Receiver<Queued>) -> Arc<Spares> {
        Arc::new(Spares {
            config,
            state: Mutex::new(State::default()),
            gate: Condvar::new(),
            lane,
            handles: Mutex::new(Vec::new()),
            enter: Mutex::new(None),
            leave: Mutex::new(None),
            count: Mutex::new(None),
        })
    }

    /// What makes a spare thread a worker of the pool, what it does when
    /// it retires, and how the pool counts it (see [`Spares::count`]).
    pub(crate) fn set_enter(&self, enter: Enter, leave: Leave, count: Count) {
        *self.enter.lock() = Some(enter);
        *self.leave.lock() = Some(leave);
        *self.count.lock() = Some(count);
    }

    fn count(&self, more: bool) {
        let count = self.count.lock().clone();
        if let Some(count) = count {
            count(more);
        }
    }

    /// Threads of the pool blocked in a wait now.
    pub(crate) fn blocked_now(&self) -> usize {
        self.state.lock().blocked
    }

    /// True when a spare is owed a slot.
    fn owed(&self, state: &State) -> bool {
        state.entitled < state.blocked
    }

    /// Takes one job from the pool's queue without waiting (a rayon token).
    #[inline]
    pub(crate) fn try_take(&self) -> Option<Queued> {
        self.lane.try_recv().ok()
    }

    /// True when the pool's queue holds no job.
    pub(crate) fn queue_is_empty(&self) -> bool {
        self.lane.is_empty()
    }

    /// A thread of this pool is about to sleep in a wait.
    pub(crate) fn blocked(self: &Arc<Self>) {
        let mut state = self.state.lock();
        state.blocked += 1;
        if SPARE.with(Cell::get) {
            state.entitled -= 1;
        }
        if self.owed(&state) {
            if state.gated > 0 {
                self.gate.notify_one();
            } else if state.spares < self.config.max && !state.closed {
                // Without a thread, this compensation is simply not made.
                self.spawn(&mut state);
            }
        }
    }

    /// The wait announced by [`Spares::blocked`] is over; the thread goes on
    /// at once.
    pub(crate) fn unblocked(&self) {
        let mut state = self.state.lock();
        state.blocked -= 1;
        if SPARE.with(Cell::get) {
            state.entitled += 1;
        }
    }

    /// Runs `job` on a spare thread at once (a free one, else a new one).
    pub(crate) fn dispatch(self: &Arc<Self>, job: Job) {
        let mut state = self.state.lock();
        state.dispatched.push_back(job);
        if state.gated > 0 {
            self.gate.notify_one();
        } else if !self.spawn(&mut state) {
            // No thread: the job runs on the caller instead (deeper, but it
            // runs), after the lock is released.
            let job = state.dispatched.pop_back();
            drop(state);
            if let Some(job) = job {
                job();
            }
        }
    }

    /// Spare threads that are not owed retire; the others finish what they
    /// do and retire when the lane is closed and empty.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.gate.notify_all();
    }

    /// Waits until every spare thread has exited.
    pub(crate) fn join(&self) {
        loop {
            let handles = std::mem::take(&mut *self.handles.lock());
            if handles.is_empty() {
                if self.state.lock().spares == 0 {
                    return;
                }
                // A spare being started has not stored its handle yet.
                std::thread::yield_now();
                continue;
            }
            for handle in handles {
                let _ = handle.join();
            }
        }
    }

    /// Serves as a spare on this thread until told to retire (the loom
    /// model runs a spare on a thread of its own, without `spawn`).
    #[cfg(all(loom, test))]
    pub(crate) fn serve_here(&self) {
        SPARE.with(|s| s.set(true));
        while self.serve() {}
    }

    /// Blocked threads, entitled spares, gated spares.
    #[cfg(all(loom, test))]
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let state = self.state.lock();
        (state.blocked, state.entitled, state.gated)
    }

    /// The number of live spare threads.
    pub(crate) fn live(&self) -> usize {
        self.state.lock().spares
    }

    /// Starts a spare thread; false when the system refused one.
    fn spawn(self: &Arc<Self>, state: &mut State) -> bool {
        let index = self.config.threads + state.next_index;
        let mut builder =
            std::thread::Builder::new().name(format!("concertina-{}-{index}", self.config.name));
        if let Some(bytes) = self.config.stack_size {
            builder = builder.stack_size(bytes);
        }
        let spares = self.clone();
        self.count(true);
        match builder.spawn(move || spares.main()) {
            Ok(handle) => {
                state.spares += 1;
                state.next_index += 1;
                let mut handles = self.handles.lock();
                handles.retain(|h| !h.is_finished());
                handles.push(handle);
                true
            }
            Err(_) => {
                self.count(false);
                false
            }
        }
    }

    fn main(self: Arc<Self>) {
        let base = worker::stack_position();
        let enter = self.enter.lock().clone();
        if let Some(enter) = enter {
            enter(base);
        }
        SPARE.with(|s| s.set(true));
        while self.serve() {}
        self.state.lock().spares -= 1;
        let leave = self.leave.lock().clone();
        match leave {
            Some(leave) => leave(),
            None => worker::uninstall(),
        }
        self.count(false);
    }

    /// Waits to be owed a slot, then runs one job; false when the spare
    /// should retire.
    fn serve(&self) -> bool {
        let mut state = self.state.lock();
        loop {
            if let Some(job) = state.dispatched.pop_front() {
                state.entitled += 1;
                drop(state);
                run_guarded(job);
                self.state.lock().entitled -= 1;
                return true;
            }
            if self.owed(&state) {
                state.entitled += 1;
                break;
            }
            if state.closed {
                return false;
            }
            state.gated += 1;
            let timed_out = self
                .gate
                .wait_for(&mut state, self.config.keep_alive)
                .timed_out();
            state.gated -= 1;
            if timed_out && state.dispatched.is_empty() && !self.owed(&state) {
                return false;
            }
        }
        drop(state);
        let job = self.lane.recv_timeout(self.config.keep_alive);
        let go_on = match job {
            Ok(job) => {
                run_guarded(|| job.run_from_queue());
                true
            }
            // Idle for the keep-alive: retire unless a worker is still blocked.
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        };
        self.state.lock().entitled -= 1;
        go_on
    }
}
