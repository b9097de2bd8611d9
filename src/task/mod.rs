//! Tasks: the state machine ([`phase`]), the shared state and its one
//! settling path ([`inner`]), the closure kept beside it, claiming and the
//! runners that take it ([`cell`]), running a closure as a task ([`run`]), and the listeners of multi-future
//! waits ([`listener`]).

pub(crate) mod cell;
pub(crate) mod inner;
pub(crate) mod listener;
pub(crate) mod phase;
pub(crate) mod running;

pub(crate) use cell::{detached, queued, reject_queued, run_queued, run_task_with, TaskRef};
pub(crate) use inner::{run_guarded, Content, Inner, Queue};
pub(crate) use listener::{Listener, Watchable};
