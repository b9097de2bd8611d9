//! The worker side: the executable started again in worker mode, serving
//! one code over the socket its parent named. A thread reads the parent's
//! messages beside the running call, so that a cancel reaches a call that
//! runs (it sees [`crate::cancelled`]) or drops one still queued.

use std::collections::VecDeque;
use std::io::{BufReader, BufWriter};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::cancel::CancelHandle;
use crate::error::{panic_message, Error};
use crate::future::Future;
use crate::remote::frame::{self, FromWorker, Outcome, ToWorker};
use crate::remote::{CodeEntry, Dispatch};
use crate::task::run_task_with;

/// The environment variable that puts an executable in worker mode: the
/// path of the socket its parent listens on.
pub const WORKER_ENV: &str = "CONCERTINA_WORKER_SOCKET";

/// In a worker process (started by
/// [`RemoteInstance::start`](crate::remote::RemoteInstance::start)), serves
/// the code its parent asks for, out of `codes`, until the parent stops it
/// or goes away, then exits the process; elsewhere returns at once. Call it
/// first thing in `main`, before anything the worker should not do.
///
/// A worker ignores Ctrl-C from the terminal: its parent decides (a Ctrl-C
/// in the parent cancels the calls it waits on, and the cancel reaches the
/// worker).
///
/// # Examples
///
/// ```
/// use concertina::remote::{self, Code, RemoteError};
///
/// struct Model;
/// impl Code for Model {
///     const NAME: &'static str = "Model";
///     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
///     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> {
///         Err(RemoteError::unknown_method(m))
///     }
/// }
///
/// // First thing in `main`: in a worker process this never returns.
/// remote::serve_if_worker(&[remote::entry::<Model>()]);
/// ```
pub fn serve_if_worker(codes: &[CodeEntry]) {
    let Some(path) = std::env::var_os(WORKER_ENV) else {
        return;
    };
    // The terminal's Ctrl-C reaches the whole process group; the parent
    // handles it and tells the worker what to cancel.
    let _ = ctrlc::set_handler(|| {});
    let status = match UnixStream::connect(&path) {
        Ok(stream) => serve(stream, codes),
        Err(error) => {
            eprintln!(
                "concertina worker: cannot reach the parent at {}: {error}",
                path.to_string_lossy()
            );
            2
        }
    };
    std::process::exit(status);
}

/// A call waiting to run.
struct Call {
    id: u64,
    method: String,
    args: Vec<u8>,
    /// Part of a `Calls` message: its outcome goes back with the others'.
    batched: bool,
    /// The last of its message.
    last: bool,
}

/// What the reading thread and the running thread share.
#[derive(Default)]
struct Inbox {
    calls: VecDeque<Call>,
    /// The call running now, and how to cancel it.
    running: Option<(u64, CancelHandle)>,
    /// The parent said stop: the queued calls run, then the worker exits.
    stopping: bool,
    /// The parent went away: nobody to reply to.
    gone: bool,
}

type Output = Arc<Mutex<BufWriter<UnixStream>>>;

fn reply(output: &Output, message: &FromWorker) -> bool {
    frame::write(&mut *output.lock(), message).is_ok()
}

/// Serves calls until the parent says stop or closes the socket; the exit
/// status.
fn serve(stream: UnixStream, codes: &[CodeEntry]) -> i32 {
    let Ok(writer) = stream.try_clone() else {
        return 2;
    };
    let mut input = BufReader::new(stream);
    let output: Output = Arc::new(Mutex::new(BufWriter::new(writer)));
    // The start comes first, alone.
    let mut code = match frame::read::<ToWorker>(&mut input) {
        Ok(Some(ToWorker::Start { code: name, args })) => match start(codes, &name, &args) {
            Ok(code) => {
                if !reply(&output, &FromWorker::Started(Ok(()))) {
                    return 0;
                }
                code
            }
            Err(why) => {
                reply(&output, &FromWorker::Started(Err(why)));
                return 0;
            }
        },
        Ok(Some(ToWorker::Stop)) | Ok(None) => return 0,
        Ok(Some(other)) => {
            eprintln!("concertina worker: expected a start, got {other:?}");
            return 3;
        }
        Err(error) => {
            eprintln!("concertina worker: {error}");
            return 3;
        }
    };
    let inbox = Arc::new((Mutex::new(Inbox::default()), Condvar::new()));
    let reader = {
        let (inbox, output) = (inbox.clone(), output.clone());
        std::thread::spawn(move || read_messages(input, &inbox, &output))
    };
    let status = run_calls(&mut *code, &inbox, &output);
    drop(reader);
    status
}

fn start(codes: &[CodeEntry], name: &str, args: &[u8]) -> Result<Box<dyn Dispatch>, String> {
    let Some(entry) = codes.iter().find(|entry| entry.name == name) else {
        return Err(format!(
            "this worker serves no code `{name}` (it serves: {})",
            codes.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
        ));
    };
    match catch_unwind(AssertUnwindSafe(|| (entry.make)(args))) {
        Ok(made) => made.map_err(|error| error.to_string()),
        Err(payload) => Err(format!(
            "the constructor of `{name}` panicked: {}",
            panic_message(&*payload)
        )),
    }
}

/// The reading thread: queues calls, cancels, and ends the worker when the
/// parent says stop or goes away.
fn read_messages(
    mut input: BufReader<UnixStream>,
    inbox: &(Mutex<Inbox>, Condvar),
    output: &Output,
) {
    loop {
        let message = match frame::read::<ToWorker>(&mut input) {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(error) => {
                eprintln!("concertina worker: {error}");
                break;
            }
        };
        let mut state = inbox.0.lock();
        match message {
            ToWorker::Call { id, method, args } => {
                state.calls.push_back(Call {
                    id,
                    method,
                    args,
                    batched: false,
                    last: true,
                });
                inbox.1.notify_one();
            }
            ToWorker::Calls {
                first,
                method,
                args,
            } => {
                let count = args.len() as u64;
                for (i, args) in (0..).zip(args) {
                    state.calls.push_back(Call {
                        id: first + i,
                        method: method.clone(),
                        args,
                        batched: true,
                        last: i + 1 == count,
                    });
                }
                inbox.1.notify_one();
            }
            ToWorker::Cancel { id } => {
                if let Some(at) = state.calls.iter().position(|call| call.id == id) {
                    state.calls.remove(at);
                    drop(state);
                    reply(
                        output,
                        &FromWorker::Reply {
                            id,
                            outcome: Outcome::Cancelled,
                        },
                    );
                } else if let Some((running, handle)) = &state.running {
                    if *running == id {
                        handle.cancel();
                    }
                }
            }
            ToWorker::Stop => {
                state.stopping = true;
                inbox.1.notify_one();
                return;
            }
            ToWorker::Start { .. } => {
                eprintln!("concertina worker: a second start");
                break;
            }
        }
    }
    let mut state = inbox.0.lock();
    state.gone = true;
    // A parent gone: the running call is told, so that it can stop early.
    if let Some((_, handle)) = &state.running {
        handle.cancel();
    }
    inbox.1.notify_one();
}

/// Runs the queued calls one at a time; the exit status once done.
fn run_calls(code: &mut dyn Dispatch, inbox: &(Mutex<Inbox>, Condvar), output: &Output) -> i32 {
    // The outcomes of a `Calls` message so far.
    let mut batch: Vec<(u64, Outcome)> = Vec::new();
    loop {
        let call = {
            let mut state = inbox.0.lock();
            loop {
                if state.gone {
                    return 0;
                }
                if let Some(call) = state.calls.pop_front() {
                    break call;
                }
                if state.stopping {
                    return 0;
                }
                inbox.1.wait(&mut state);
            }
        };
        // The call runs as a task of its own, so that a cancel makes
        // `cancelled()` true inside it.
        let (future, task) = Future::<Vec<u8>>::pending();
        inbox.0.lock().running = Some((call.id, future.cancel_handle()));
        let Call {
            id,
            method,
            args,
            batched,
            last,
        } = call;
        run_task_with(
            task,
            || {
                code.dispatch(&method, &args)
                    .map_err(|e| Error::Remote(e.to_string()))
            },
            |_| (),
        );
        inbox.0.lock().running = None;
        let outcome = match future.result() {
            Ok(value) => Outcome::Value(value),
            Err(Error::Panicked(message)) => Outcome::Panicked(message),
            Err(Error::Cancelled | Error::Interrupted) => Outcome::Cancelled,
            Err(Error::Remote(why)) => Outcome::Failed(why),
            Err(other) => Outcome::Failed(other.to_string()),
        };
        let sent = if !batched {
            reply(output, &FromWorker::Reply { id, outcome })
        } else {
            batch.push((id, outcome));
            // The last of its message, or the last queued (its last one
            // was cancelled): the outcomes go back together.
            let more = !last && inbox.0.lock().calls.front().is_some_and(|c| c.batched);
            more || reply(output, &FromWorker::Replies(std::mem::take(&mut batch)))
        };
        if !sent {
            return 0;
        }
    }
}
