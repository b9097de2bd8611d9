//! The worker side: the executable started again in worker mode, serving
//! instances over the socket its parent named. Each instance runs its calls
//! on a thread of its own; the main thread reads the parent's messages
//! beside the running calls, so that a cancel reaches a call that runs (it
//! sees [`crate::cancelled`]) or drops one still queued.

use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, BufWriter};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cancel::CancelHandle;
use crate::error::{panic_message, Error};
use crate::error::{RemoteFailure, RemoteFailureKind};
use crate::future::Future;
use crate::remote::frame::{self, Args, FromWorker, Outcome, ToWorker};
use crate::remote::{CodeEntry, Dispatch};
use crate::sync::{Condvar, Mutex};
use crate::task::run_task;

/// The environment variable that puts an executable in worker mode: the
/// path of the socket its parent listens on.
pub const WORKER_ENV: &str = "CONCERTINA_WORKER_SOCKET";

/// Connects to the parent at `path` and serves it; the exit status.
pub(crate) fn serve_parent_at(path: &std::ffi::OsStr, codes: &[CodeEntry]) -> i32 {
    match crate::remote::address::connect(path) {
        Ok(stream) => serve(stream, codes),
        Err(error) => {
            eprintln!(
                "concertina worker: cannot reach the parent at {}: {error}",
                path.to_string_lossy()
            );
            2
        }
    }
}

/// How long the running calls of a worker whose parent went away have to
/// notice their cancel before the worker exits under them.
const ORPHAN_GRACE: Duration = Duration::from_secs(2);

/// How long the outcomes of a vectorised call may wait for the rest of its
/// message's calls before they go back (checked as each call ends: a call
/// of the message that runs long holds at most the outcomes of the
/// moment before it).
const HOLD_REPLIES: Duration = Duration::from_millis(1);

/// The method of the call `RemoteInstance::wait` makes: it runs after
/// every call made before it, and does nothing (no code sees it).
pub(crate) const WAIT_METHOD: &str = "concertina::wait";

/// A call waiting to run.
struct Call {
    id: u64,
    method: String,
    args: Args,
    /// Part of a `Calls` message (named by its first call's id): its
    /// outcome goes back with the others' of that message.
    batch: Option<u64>,
    /// The last of its message.
    last: bool,
    /// Made after another future: it waits at the front of the queue, and
    /// the calls behind it with it, until the parent says go.
    after: bool,
}

/// What the reading thread and an instance's thread share.
#[derive(Default)]
struct Inbox {
    calls: VecDeque<Call>,
    /// The call running now, and how to cancel it.
    running: Option<(u64, CancelHandle)>,
    /// Freed, or the parent said stop: the queued calls run, then the
    /// instance is dropped.
    stopping: bool,
    /// The parent went away: nobody to reply to.
    gone: bool,
    /// Its thread has dropped the instance.
    finished: bool,
}

/// An instance: its calls, run one at a time on a thread of its own.
struct Runner {
    inbox: Mutex<Inbox>,
    more: Condvar,
}

impl Runner {
    /// True when its thread has something to do: a call that may run, or
    /// the end.
    fn ready(&self) -> bool {
        let inbox = self.inbox.lock();
        inbox.gone || inbox.stopping || inbox.calls.front().is_some_and(|call| !call.after)
    }

    fn update(&self, change: impl FnOnce(&mut Inbox)) {
        change(&mut self.inbox.lock());
        // Its thread, and the thread of a successor waiting for it to
        // finish.
        self.more.notify_all();
    }

    /// Waits until its thread has dropped the instance.
    fn wait_finished(&self) {
        let mut inbox = self.inbox.lock();
        while !inbox.finished {
            self.more.wait(&mut inbox);
        }
    }
}

/// An instance's thread, and what it serves.
struct Live {
    code: &'static str,
    runner: Arc<Runner>,
    thread: JoinHandle<()>,
}

/// Where a worker's replies go: true while they can be sent.
pub(crate) type Output = Arc<dyn Fn(&mut FromWorker<'_>) -> bool + Send + Sync>;

/// What an instance's thread does before it sleeps for its next call, on a
/// transport that lets it: serve the transport itself for a moment (until
/// `ready()` says its next call is there, or the moment passes), so that
/// the call it receives runs without a thread waking it.
pub(crate) type Idle = Arc<dyn Fn(&dyn Fn() -> bool) + Send + Sync>;

/// What a reply may weigh: a message's limit, less room for its framing.
const REPLY_LIMIT: usize = frame::MAX_FRAME - 4096;

/// About how many bytes `outcome` takes in a message.
fn weight(outcome: &Outcome<'_>) -> usize {
    16 + match outcome {
        Outcome::Value(bytes) => bytes.len(),
        Outcome::Panicked(text) => text.len(),
        Outcome::Failed(failure) => failure.to_string().len(),
        Outcome::Cancelled => 0,
    }
}

/// An outcome that fits in a message: itself, or the failure that it does
/// not (a value over the limit never reaches the parent).
fn fitting(outcome: Outcome<'_>) -> Outcome<'_> {
    match outcome {
        Outcome::Value(bytes)
            if weight(&Outcome::Value(Default::default())) + bytes.len() > REPLY_LIMIT =>
        {
            Outcome::Failed(RemoteFailure::new(
                RemoteFailureKind::TooLarge,
                format!(
                    "the result of {} bytes is over the {}-byte limit of a message",
                    bytes.len(),
                    frame::MAX_FRAME
                ),
            ))
        }
        outcome => outcome,
    }
}

/// Sends `message`, so that every call gets its reply whatever the sizes:
/// a value over the limit of a message becomes its failure, and a batch of
/// outcomes over it goes in parts. True while replies can be sent.
fn reply(output: &Output, message: FromWorker<'_>) -> bool {
    match message {
        FromWorker::Reply { id, outcome } => {
            let mut message = FromWorker::Reply {
                id,
                outcome: fitting(outcome),
            };
            let sent = output(&mut message);
            message.recycle();
            sent
        }
        FromWorker::Replies(outcomes) => {
            let mut part = Vec::new();
            let mut weighed = 0;
            for (id, outcome) in outcomes {
                let outcome = fitting(outcome);
                let w = weight(&outcome);
                if !part.is_empty() && weighed + w > REPLY_LIMIT {
                    let mut message = FromWorker::Replies(std::mem::take(&mut part));
                    let sent = output(&mut message);
                    message.recycle();
                    if !sent {
                        return false;
                    }
                    weighed = 0;
                }
                weighed += w;
                part.push((id, outcome));
            }
            if part.is_empty() {
                return true;
            }
            let mut message = FromWorker::Replies(part);
            let sent = output(&mut message);
            message.recycle();
            sent
        }
    }
}

fn reply_to(output: &Output, id: u64, outcome: Outcome<'_>) -> bool {
    reply(output, FromWorker::Reply { id, outcome })
}

/// Serves the parent's messages until it says stop or closes the socket;
/// the exit status. Each instance runs on a thread of its own; this one
/// reads, so that a cancel reaches a running call.
fn serve(stream: UnixStream, codes: &[CodeEntry]) -> i32 {
    let Ok(writer) = stream.try_clone() else {
        return 2;
    };
    watch_parent(&stream);
    let mut input = BufReader::new(stream);
    let writer = Mutex::new(BufWriter::new(writer));
    let output: Output = Arc::new(move |message: &mut FromWorker<'_>| {
        frame::write(&mut *writer.lock(), message).is_ok()
    });
    let mut server = Server::new(codes, output);
    let mut status = 0;
    let mut gone = loop {
        match frame::read(&mut input) {
            Ok(Some(message)) => {
                if !server.handle(message) {
                    break false;
                }
            }
            Ok(None) => break true,
            Err(error) => {
                eprintln!("concertina worker: {error}");
                status = 3;
                break true;
            }
        }
    };
    server.end(gone);
    if !gone {
        // After the stop, the parent still tells the cancels of the calls
        // that run, until they have all replied and it shuts the socket.
        while let Ok(Some(message)) = frame::read(&mut input) {
            server.handle(message);
        }
        // The parent shuts the socket once every call has replied: an end
        // before that is the parent gone.
        if !server.finished() {
            server.end(true);
            gone = true;
        }
    }
    if gone {
        // Nobody is left to reply to: the calls have a moment to notice
        // their cancel, then the process ends under them (no orphans).
        let deadline = Instant::now() + ORPHAN_GRACE;
        while Instant::now() < deadline && !server.finished() {
            std::thread::sleep(Duration::from_millis(1));
        }
        // What the codes started goes too: the worker leads a group of its
        // own, and ends it (itself last).
        crate::remote::process::end_group(std::process::id());
    } else {
        server.join();
    }
    status
}

/// Ends the conversation when the parent dies, even while a child of this
/// worker holds the socket open (the parent's end then never closes): this
/// process is handed to another parent, which a thread looks for.
fn watch_parent(stream: &UnixStream) {
    let Ok(socket) = stream.try_clone() else {
        return;
    };
    let parent = std::os::unix::process::parent_id();
    let _ = std::thread::Builder::new()
        .name("concertina-worker-parent".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            if std::os::unix::process::parent_id() != parent {
                let _ = socket.shutdown(std::net::Shutdown::Both);
                return;
            }
        });
}

/// The instances of a worker and the messages for them, whatever carries
/// the messages.
pub(crate) struct Server<'a> {
    codes: &'a [CodeEntry],
    output: Output,
    idle: Option<Idle>,
    live: HashMap<u32, Live>,
    /// Freed instances whose queued calls may still run.
    freed: Vec<Live>,
}

impl<'a> Server<'a> {
    pub(crate) fn new(codes: &'a [CodeEntry], output: Output) -> Self {
        Server {
            codes,
            output,
            idle: None,
            live: HashMap::new(),
            freed: Vec::new(),
        }
    }

    /// The instances' threads serve the transport with `idle` while they
    /// wait for their next call.
    #[cfg(feature = "mpi")]
    pub(crate) fn with_idle(mut self, idle: Idle) -> Self {
        self.idle = Some(idle);
        self
    }

    /// Handles one message of the parent; false for a stop.
    pub(crate) fn handle(&mut self, message: ToWorker) -> bool {
        let (codes, output, idle, live, freed) = (
            self.codes,
            &self.output,
            &self.idle,
            &mut self.live,
            &mut self.freed,
        );
        match message {
            ToWorker::Start {
                instance,
                id,
                code,
                args,
            } => {
                freed.retain(|l| !l.thread.is_finished());
                match admit(codes, &code, instance, live, freed) {
                    Ok((entry, predecessor)) => {
                        let runner = Arc::new(Runner {
                            inbox: Mutex::default(),
                            more: Condvar::new(),
                        });
                        let thread = {
                            let (runner, output, idle) =
                                (runner.clone(), output.clone(), idle.clone());
                            std::thread::Builder::new()
                                .name(format!("concertina-{}-{instance}", entry.name))
                                .spawn(move || {
                                    if let Some(predecessor) = predecessor {
                                        predecessor.wait_finished();
                                    }
                                    let serve = Serve {
                                        runner: &runner,
                                        output: &output,
                                        idle: idle.as_ref(),
                                    };
                                    run_instance(entry, args, id, &serve);
                                    runner.update(|inbox| inbox.finished = true);
                                })
                        };
                        match thread {
                            Ok(thread) => {
                                live.insert(
                                    instance,
                                    Live {
                                        code: entry.name,
                                        runner,
                                        thread,
                                    },
                                );
                            }
                            Err(e) => {
                                let why = format!("the worker cannot start a thread: {e}");
                                let failure = RemoteFailure::new(RemoteFailureKind::Worker, why);
                                reply_to(output, id, Outcome::Failed(failure));
                            }
                        }
                    }
                    Err(why) => {
                        reply_to(output, id, Outcome::Failed(why));
                    }
                }
            }
            ToWorker::Call {
                instance,
                id,
                method,
                args,
            } => queue_call(live, output, instance, id, method, args, false),
            ToWorker::CallAfter {
                instance,
                id,
                method,
                args,
            } => queue_call(live, output, instance, id, method, args, true),
            ToWorker::Go { id } => {
                for l in live.values().chain(freed.iter()) {
                    let mut found = false;
                    l.runner.update(|inbox| {
                        if let Some(call) = inbox.calls.iter_mut().find(|c| c.id == id) {
                            call.after = false;
                            found = true;
                        }
                    });
                    if found {
                        break;
                    }
                }
            }
            ToWorker::Calls {
                instance,
                first,
                method,
                args,
            } => match live.get(&instance) {
                Some(l) => l.runner.update(|inbox| {
                    let count = args.len() as u64;
                    for (i, args) in (0..).zip(args) {
                        inbox.calls.push_back(Call {
                            id: first + i,
                            method: method.clone(),
                            args: Args::new(args),
                            batch: Some(first),
                            last: i + 1 == count,
                            after: false,
                        });
                    }
                }),
                None => {
                    let outcomes = (first..first + args.len() as u64)
                        .map(|id| (id, no_instance(instance)))
                        .collect();
                    reply(output, FromWorker::Replies(outcomes));
                }
            },
            ToWorker::Cancel { id } => {
                for l in live.values().chain(freed.iter()) {
                    if cancel(&l.runner, id, output) {
                        break;
                    }
                }
            }
            ToWorker::Free { instance } => {
                if let Some(l) = live.remove(&instance) {
                    l.runner.update(|inbox| inbox.stopping = true);
                    freed.push(l);
                }
            }
            ToWorker::Stop => return false,
        }
        true
    }

    /// Tells every instance that the worker ends: the parent said stop
    /// (their queued calls run) or is `gone` (running calls are cancelled,
    /// queued ones dropped).
    pub(crate) fn end(&mut self, gone: bool) {
        for l in self.live.values().chain(&self.freed) {
            l.runner.update(|inbox| {
                if gone {
                    inbox.gone = true;
                    if let Some((_, handle)) = &inbox.running {
                        handle.cancel();
                    }
                } else {
                    inbox.stopping = true;
                }
            });
        }
    }

    /// True when every instance's thread has ended.
    pub(crate) fn finished(&self) -> bool {
        self.live
            .values()
            .chain(&self.freed)
            .all(|l| l.thread.is_finished())
    }

    /// Waits for every instance's thread to end.
    pub(crate) fn join(self) {
        for l in self.live.into_values().chain(self.freed) {
            let _ = l.thread.join();
        }
    }
}

/// Queues a call on `instance` (one that waits for the parent's go, with
/// `after`), or replies that there is no such instance.
fn queue_call(
    live: &HashMap<u32, Live>,
    output: &Output,
    instance: u32,
    id: u64,
    method: String,
    args: Args,
    after: bool,
) {
    match live.get(&instance) {
        Some(l) => l.runner.update(|inbox| {
            inbox.calls.push_back(Call {
                id,
                method,
                args,
                batch: None,
                last: true,
                after,
            })
        }),
        None => {
            reply_to(output, id, no_instance(instance));
        }
    }
}

fn no_instance(instance: u32) -> Outcome<'static> {
    Outcome::Failed(RemoteFailure::new(
        RemoteFailureKind::UnknownInstance,
        format!("this worker has no instance {instance}"),
    ))
}

/// The code named `name`, when this worker serves it and may make one
/// more: a code that is not re-entrant has one instance per process. With
/// it, for such a code, the freed instance whose thread it must wait for
/// (the queued calls of a freed instance still run).
fn admit(
    codes: &[CodeEntry],
    name: &str,
    instance: u32,
    live: &HashMap<u32, Live>,
    freed: &[Live],
) -> Result<(CodeEntry, Option<Arc<Runner>>), RemoteFailure> {
    let refused = |kind, text| Err(RemoteFailure::new(kind, text));
    let Some(entry) = codes.iter().find(|entry| entry.name == name) else {
        return refused(
            RemoteFailureKind::UnknownCode,
            format!(
                "this worker serves no code `{name}` (it serves: {})",
                codes.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
            ),
        );
    };
    if live.contains_key(&instance) {
        return refused(
            RemoteFailureKind::Worker,
            format!("this worker already has an instance {instance}"),
        );
    }
    if entry.reentrant {
        return Ok((*entry, None));
    }
    if live.values().any(|l| l.code == name) {
        return refused(
            RemoteFailureKind::Worker,
            format!(
                "this worker already holds an instance of `{name}`, which keeps process-global \
                 state (its `Code::REENTRANT` is false): start it in a worker of its own"
            ),
        );
    }
    let predecessor = freed.iter().rev().find(|l| l.code == name);
    Ok((*entry, predecessor.map(|l| l.runner.clone())))
}

/// Cancels call `id` if `runner` has it: dropped while queued (its reply
/// says cancelled), told while running. True when it had it.
fn cancel(runner: &Runner, id: u64, output: &Output) -> bool {
    let mut inbox = runner.inbox.lock();
    if let Some(at) = inbox.calls.iter().position(|call| call.id == id) {
        let call = inbox.calls.remove(at);
        drop(inbox);
        // The calls behind one that waited for its dependency go on.
        runner.more.notify_all();
        if call.is_some_and(|c| c.batch.is_some()) {
            reply(output, FromWorker::Replies(vec![(id, Outcome::Cancelled)]));
        } else {
            reply_to(output, id, Outcome::Cancelled);
        }
        return true;
    }
    match &inbox.running {
        Some((running, handle)) if *running == id => {
            handle.cancel();
            true
        }
        _ => false,
    }
}

/// What an instance's thread serves with: its calls, where its replies go,
/// and what it does while it waits.
struct Serve<'a> {
    runner: &'a Runner,
    output: &'a Output,
    idle: Option<&'a Idle>,
}

/// An instance's thread: makes the code (the reply to its start carries
/// `id`), then runs its calls until it is freed or the worker ends.
fn run_instance(entry: CodeEntry, args: Args, id: u64, serve: &Serve<'_>) {
    let output = serve.output;
    let made = catch_unwind(AssertUnwindSafe(|| (entry.make)(&args)));
    // Not held for the instance's life.
    crate::remote::spare::give(args.into_buffer());
    let made = match made {
        Ok(made) => made.map_err(RemoteFailure::from),
        Err(payload) => Err(RemoteFailure::new(
            RemoteFailureKind::Code,
            format!(
                "the constructor of `{}` panicked: {}",
                entry.name,
                panic_message(&*payload)
            ),
        )),
    };
    match made {
        Ok(mut code) => {
            if reply_to(output, id, Outcome::Value(Default::default())) {
                run_calls(&mut *code, serve);
            }
        }
        Err(why) => {
            reply_to(output, id, Outcome::Failed(why));
        }
    }
}

/// Runs an instance's queued calls one at a time, until it is freed (its
/// queue run) or the parent is gone.
fn run_calls(code: &mut dyn Dispatch, serve: &Serve<'_>) {
    let (runner, output) = (serve.runner, serve.output);
    // The outcomes of a `Calls` message not sent yet, and since when the
    // first of them waits.
    let mut held: Vec<(u64, Outcome<'_>)> = Vec::new();
    let mut held_since = Instant::now();
    loop {
        // Once per wait, the transport served while nothing is there.
        let mut served = serve.idle.is_none();
        let call = loop {
            let mut inbox = runner.inbox.lock();
            let next = loop {
                if inbox.gone {
                    return;
                }
                match inbox.calls.front() {
                    // Its dependency has not finished: it and the calls
                    // behind it wait (also while stopping: the parent
                    // says go, or cancels it, once the dependency is done).
                    Some(call) if call.after => {}
                    Some(_) => break inbox.calls.pop_front(),
                    None if inbox.stopping => return,
                    None => {}
                }
                if !served {
                    break None;
                }
                runner.more.wait(&mut inbox);
            };
            drop(inbox);
            if let Some(call) = next {
                break call;
            }
            served = true;
            if let Some(idle) = serve.idle {
                idle(&|| runner.ready());
            }
        };
        // The call runs as a task of its own, so that a cancel makes
        // `cancelled()` true inside it.
        let (future, task) = Future::<Vec<u8>>::pending();
        runner.inbox.lock().running = Some((call.id, future.cancel_handle()));
        let Call {
            id,
            method,
            args,
            batch,
            last,
            ..
        } = call;
        run_task(
            task,
            || {
                if method == WAIT_METHOD {
                    // The calls made before it have run: nothing to do.
                    return Ok(Vec::new());
                }
                code.dispatch(&method, &args)
                    .map_err(|e| Error::Remote(e.into()))
            },
            |_| (),
        );
        crate::remote::spare::give(args.into_buffer());
        runner.inbox.lock().running = None;
        let outcome = match future.result() {
            Ok(value) => Outcome::Value(value.into()),
            Err(Error::Panicked(message)) => Outcome::Panicked(message),
            Err(Error::Cancelled | Error::Interrupted) => Outcome::Cancelled,
            Err(Error::Remote(failure)) => Outcome::Failed(failure),
            Err(other) => Outcome::Failed(RemoteFailure::new(
                RemoteFailureKind::Worker,
                other.to_string(),
            )),
        };
        let sent = match batch {
            None => reply_to(output, id, outcome),
            Some(batch) => {
                if held.is_empty() {
                    held_since = Instant::now();
                }
                held.push((id, outcome));
                // The outcomes of a message go back together while its
                // calls come quickly one after the other; they go once its
                // last has run, once the next queued call is not of it (its
                // last was cancelled, or another message follows), or once
                // the first of them has waited for `HOLD_REPLIES`.
                let more = !last
                    && held_since.elapsed() < HOLD_REPLIES
                    && runner
                        .inbox
                        .lock()
                        .calls
                        .front()
                        .is_some_and(|c| c.batch == Some(batch));
                more || reply(output, FromWorker::Replies(std::mem::take(&mut held)))
            }
        };
        if !sent {
            return;
        }
    }
}
