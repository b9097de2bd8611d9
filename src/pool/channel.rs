//! The crossbeam backend: our own worker threads sharing one channel, in
//! submission order. Spare threads (compensation) take from the same channel.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;

use crate::error::ConfigError;
use crate::pool::{enter_thread, leave_thread, Ctx};
use crate::task::run_guarded;
use crate::worker::{self, Queued};

/// Starts `threads` workers on `receiver`; returns their handles.
pub(super) fn start(
    ctx: &Arc<Ctx>,
    name: &str,
    threads: usize,
    stack_size: Option<usize>,
    receiver: Receiver<Queued>,
) -> Result<Vec<JoinHandle<()>>, ConfigError> {
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let mut builder = std::thread::Builder::new().name(format!("concertina-{name}-{i}"));
        if let Some(bytes) = stack_size {
            builder = builder.stack_size(bytes);
        }
        let (thread_ctx, receiver) = (ctx.clone(), receiver.clone());
        ctx.count_thread(true);
        match builder.spawn(move || work(&thread_ctx, &receiver)) {
            Ok(handle) => handles.push(handle),
            Err(err) => {
                ctx.count_thread(false);
                // The workers started so far see the channel close and exit
                // once the caller drops the sender.
                return Err(ConfigError::spawn(err));
            }
        }
    }
    Ok(handles)
}

fn work(ctx: &Arc<Ctx>, receiver: &Receiver<Queued>) {
    enter_thread(ctx, worker::stack_position());
    while let Ok(job) = receiver.recv() {
        run_guarded(|| job.run_from_queue());
    }
    leave_thread();
    ctx.count_thread(false);
}
