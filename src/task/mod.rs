//! Tasks: the state machine ([`phase`]), the shared state ([`inner`]) and
//! its one settling path ([`settle`]), the closure kept beside it, running
//! it and claiming it ([`cell`]), what a run needs beside it
//! ([`running`]), and the listeners of multi-future waits ([`listener`]).
//!
//! The state is private to this room: handles, queues and pools make tasks
//! with the constructors below and call the methods of [`Inner`]; none of
//! them sees the slot, and no user code runs while its lock is held.

pub(crate) mod cell;
pub(crate) mod inner;
pub(crate) mod listener;
pub(crate) mod phase;
pub(crate) mod running;
pub(crate) mod settle;

pub(crate) use cell::{
    derived, finished, finished_as, on_queue, pending, pending_named, queued, run_task, TaskRef,
};
pub(crate) use inner::{run_guarded, Drive, Inner, Queue};
pub(crate) use listener::{Holding, Listener, Watchable};
pub(crate) use settle::published_phase;

#[cfg(test)]
mod tests;
