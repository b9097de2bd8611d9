//! The rayon backend: a rayon thread pool whose threads are ours (started
//! through `spawn_handler`, so that shutdown joins them), or a rayon pool an
//! application adopted into a [`Pool`](super::Pool).
//!
//! Every submission goes to the pool's own queue (the lane the spare
//! threads take from too); what goes on rayon is a token, a job that runs
//! jobs from that queue until it is empty. Compensation: rayon cannot add
//! a thread to a running pool, so a worker blocked in a wait is compensated
//! by a spare thread of our own, which takes the queued jobs as the tokens
//! do.

use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::ConfigError;
use crate::pool::{enter_thread, leave_thread, Ctx, CTX};
use crate::sync::Mutex;
use crate::worker;

/// Starts `threads` rayon workers for `ctx`; returns the pool and the
/// threads' handles.
pub(super) fn start(
    ctx: &Arc<Ctx>,
    name: &str,
    threads: usize,
    stack_size: Option<usize>,
) -> Result<(::rayon::ThreadPool, Vec<JoinHandle<()>>), ConfigError> {
    let handles = Arc::new(Mutex::new(Vec::with_capacity(threads)));
    let spawned = handles.clone();
    let ctx = ctx.clone();
    let prefix = format!("concertina-{name}-");
    let mut builder = ::rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{prefix}{i}"))
        .panic_handler(|_| {})
        .spawn_handler(move |thread| {
            let mut builder = std::thread::Builder::new();
            if let Some(name) = thread.name() {
                builder = builder.name(name.to_owned());
            }
            if let Some(bytes) = thread.stack_size() {
                builder = builder.stack_size(bytes);
            }
            let (ctx, thread_ctx) = (ctx.clone(), ctx.clone());
            ctx.count_thread(true);
            let handle = builder
                .spawn(move || {
                    enter_thread(&thread_ctx, worker::stack_position());
                    thread.run();
                    leave_thread();
                    thread_ctx.count_thread(false);
                })
                .inspect_err(|_| ctx.count_thread(false))?;
            spawned.lock().push(handle);
            Ok(())
        });
    if let Some(bytes) = stack_size {
        builder = builder.stack_size(bytes);
    }
    match builder.build() {
        Ok(pool) => {
            let handles = std::mem::take(&mut *handles.lock());
            Ok((pool, handles))
        }
        Err(err) => {
            // The threads that did start exit once the pool is dropped.
            for handle in std::mem::take(&mut *handles.lock()) {
                let _ = handle.join();
            }
            Err(ConfigError::spawn(err))
        }
    }
}

/// Puts a token on one of our rayon pools: it runs jobs of the queue of the
/// worker that takes it until the queue is empty.
#[inline]
pub(super) fn spawn_token(pool: &::rayon::ThreadPool) {
    pool.spawn(|| {
        CTX.with(|c| {
            if let Some(ctx) = c.borrow().as_ref() {
                ctx.run_tokens();
            }
        })
    });
}

/// Puts a token on an adopted rayon pool: the thread is our worker only
/// while it runs the job, and shutdown waits for the tokens in flight.
pub(super) fn spawn_adopted(pool: &::rayon::ThreadPool, ctx: &Arc<Ctx>) {
    let ctx = ctx.clone();
    ctx.add_live();
    pool.spawn(move || {
        enter_thread(&ctx, worker::stack_position());
        ctx.run_tokens();
        leave_thread();
        ctx.sub_live();
    });
}
