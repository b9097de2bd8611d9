//! The local transport: a worker process of this machine per `Worker`,
//! reached through a Unix socket; the thread that reads its replies, and
//! its end (a stop, a wait, a kill after the timeout).

use std::collections::HashMap;
use std::io::{BufReader, BufWriter};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::error::{LostKind, WorkerLost};
use crate::remote::address::Address;
use crate::remote::frame::{self, FromWorker, ToWorker};
use crate::remote::link::{
    fail_all, not_started, settle, Link, Outbox, Process, State, CONNECT_TIMEOUT, STOP_TIMEOUT,
};
use crate::remote::process::{self, Tail};
use crate::remote::spare;
use crate::remote::{RemoteBuilder, WORKER_ENV};
use crate::sync::Mutex;

impl Link {
    /// Starts the worker process and waits for it to connect.
    pub(super) fn launch(builder: &RemoteBuilder) -> Result<Arc<Link>, Error> {
        let path = Address::fresh();
        let listener = path
            .listen()
            .map_err(|e| not_started(format!("cannot listen at {path}: {e}")))?;
        let mut child = match spawn_worker(builder, &path) {
            Ok(child) => child,
            Err(e) => {
                path.remove();
                return Err(e);
            }
        };
        let tail = Arc::new(Mutex::new(Tail::default()));
        let stderr = child
            .stderr
            .take()
            .map(|err| process::relay_stderr(err, tail.clone()));
        let accepted = accept(&listener, &path, &mut child);
        drop(listener);
        path.remove();
        let stream = match accepted {
            Ok(stream) => stream,
            Err(status) => {
                let (kind, why) = ended(status, stderr, &tail);
                let why = format!("the worker ended before it was ready: {why}");
                return Err(Error::WorkerLost(WorkerLost::new(kind, why)));
            }
        };
        let pid = child.id();
        let child = Arc::new(Mutex::new(child));
        // The worker's death, seen from the process: its socket's end is
        // not enough when a child of the worker holds the socket.
        if let Ok(socket) = stream.try_clone() {
            process::watch(&child, socket);
        }
        // What tells the worker, once its calls have replied after a stop,
        // that nothing more will come.
        let ending = stream.try_clone().ok();
        let input = match stream.try_clone() {
            Ok(reader) => BufReader::new(reader),
            Err(e) => {
                let mut child = child.lock();
                let _ = child.kill();
                let status = child.wait().ok();
                let (_, why) = ended(status, stderr, &tail);
                return Err(not_started(format!("cannot share the socket: {e}: {why}")));
            }
        };
        let state = Arc::new(Mutex::new(State {
            next: 0,
            pending: HashMap::new(),
            lost: None,
        }));
        let reader = {
            let (state, child) = (state.clone(), child.clone());
            std::thread::Builder::new()
                .name(format!("concertina-remote-{pid}"))
                .spawn(move || read_replies(input, state, child, stderr, tail))
        };
        let reader = match reader {
            Ok(reader) => reader,
            Err(e) => {
                let _ = child.lock().kill();
                return Err(not_started(format!("cannot start the reply thread: {e}")));
            }
        };
        Ok(Arc::new(Link {
            pid,
            writer: Arc::new(Mutex::new(Box::new(BufWriter::new(stream)))),
            state,
            process: Process::Local {
                child,
                reader: Mutex::new(Some(reader)),
                socket: ending,
            },
            next_instance: AtomicU32::new(0),
        }))
    }
}

impl Drop for Link {
    #[allow(irrefutable_let_patterns)]
    fn drop(&mut self) {
        let Process::Local {
            child,
            reader,
            socket,
        } = &self.process
        else {
            // A rank serves until the session ends.
            return;
        };
        // A stop message, a wait, and a kill after the timeout.
        let _ = self.writer.lock().send(&mut ToWorker::Stop);
        let (reaped, state, writer) = (child.clone(), self.state.clone(), self.writer.clone());
        let socket = socket.as_ref().and_then(|s| s.try_clone().ok());
        let reader = reader.lock().take();
        let reap = move || {
            // The calls made before the stop still run and reply (their
            // futures may outlive the handle, and a cancel of theirs still
            // reaches the worker); then nothing more is sent, and the
            // worker exits.
            loop {
                let state = state.lock();
                if state.pending.is_empty() || state.lost.is_some() {
                    break;
                }
                drop(state);
                std::thread::sleep(Duration::from_millis(2));
            }
            *writer.lock() = Box::new(Closed);
            if let Some(socket) = socket {
                let _ = socket.shutdown(std::net::Shutdown::Write);
            }
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if !matches!(reaped.lock().try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            let _ = reaped.lock().kill();
            if let Some(reader) = reader {
                let _ = reader.join();
            }
        };
        if std::thread::Builder::new()
            .name("concertina-remote-stop".into())
            .spawn(reap)
            .is_err()
        {
            let _ = child.lock().kill();
        }
    }
}

/// What a stopped worker's messages go to.
struct Closed;

impl Outbox for Closed {
    fn send(&mut self, _: &mut ToWorker) -> std::io::Result<()> {
        Err(std::io::ErrorKind::NotConnected.into())
    }
}

/// The worker executable (this one by default), in worker mode. On Linux
/// this one is started from its running image (`/proc/self/exe`): a
/// program whose file was rebuilt (or removed) meanwhile still starts
/// workers of its own code.
fn spawn_worker(builder: &RemoteBuilder, path: &Address) -> Result<Child, Error> {
    let exe = match &builder.program {
        Some(program) => program.clone(),
        None if cfg!(target_os = "linux") => PathBuf::from("/proc/self/exe"),
        None => std::env::current_exe().map_err(|e| {
            not_started(format!(
                "cannot find this executable to start a worker: {e}"
            ))
        })?,
    };
    Command::new(&exe)
        .envs(builder.env.iter().map(|(k, v)| (k, v)))
        .env(WORKER_ENV, path.as_env())
        // A group of its own: what its code starts goes with it (see
        // `process::end_group`); the parent relays a terminal's Ctrl-C.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| not_started(format!("cannot start {} as a worker: {e}", exe.display())))
}

/// Waits for the worker to connect; its exit status if it ended first.
fn accept(
    listener: &UnixListener,
    path: &Address,
    child: &mut Child,
) -> Result<UnixStream, Option<ExitStatus>> {
    if listener.set_nonblocking(true).is_err() {
        return Err(None);
    }
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Some(status));
        }
        if Instant::now() > deadline {
            eprintln!(
                "concertina: a worker did not connect to {path} within {CONNECT_TIMEOUT:?}; killed"
            );
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill();
    Err(child.wait().ok())
}

/// How the worker ended, with the tail of its stderr.
fn ended(
    status: Option<ExitStatus>,
    stderr: Option<JoinHandle<()>>,
    tail: &Mutex<Tail>,
) -> (LostKind, String) {
    // The worker is gone: its stderr ends (unless a child of it holds it).
    process::wait_relay(stderr);
    let (kind, how) = match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => (
                LostKind::Exited { status: code },
                format!("exited with status {code}"),
            ),
            (None, Some(signal)) => (
                LostKind::Signalled { signal },
                format!("killed by signal {signal}{}", signal_name(signal)),
            ),
            _ => (LostKind::Unknown, format!("ended ({status})")),
        },
        None => (
            LostKind::Unknown,
            "its end could not be observed".to_owned(),
        ),
    };
    let text = match tail.lock().text() {
        None => format!("{how}; its stderr was empty"),
        Some(lines) => format!("{how}; the last lines of its stderr:\n{lines}"),
    };
    (kind, text)
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        6 => " (SIGABRT)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// The reply thread: settles each call with its reply; when the worker is
/// gone (the socket closed, or garbage on it), fails every pending call,
/// and every later one, with `WorkerLost`.
fn read_replies(
    mut input: BufReader<UnixStream>,
    state: Arc<Mutex<State>>,
    child: Arc<Mutex<Child>>,
    stderr: Option<JoinHandle<()>>,
    tail: Arc<Mutex<Tail>>,
) {
    let garbage = loop {
        let payload = match frame::read_bytes(&mut input) {
            Ok(Some(payload)) => payload,
            Ok(None) => break None,
            Err(e) => break Some(e.to_string()),
        };
        // The values are decoded from the frame's own bytes, which are
        // kept for a later frame (see `spare`).
        let garbage = match frame::decoded::<FromWorker<'_>>(&payload) {
            Ok(FromWorker::Reply { id, outcome }) => {
                settle(&state, id, outcome);
                None
            }
            Ok(FromWorker::Replies(outcomes)) => {
                for (id, outcome) in outcomes {
                    settle(&state, id, outcome);
                }
                None
            }
            Err(e) => Some(e.to_string()),
        };
        spare::give(payload);
        if garbage.is_some() {
            break garbage;
        }
    };
    // What the worker started goes with it — ended before the worker is
    // reaped, so that its group's number cannot be another's yet.
    let pid = child.lock().id();
    process::end_group(pid);
    // Gone, or talking garbage: make sure it is gone, and say how it ended.
    let status = {
        let deadline = Instant::now() + Duration::from_millis(100);
        loop {
            // Polled apart from the match: its lock must not be held in the
            // arms, which lock the child again.
            let polled = child.lock().try_wait();
            match polled {
                Ok(Some(status)) => break Some(status),
                Err(_) => break None,
                Ok(None) if garbage.is_some() || Instant::now() > deadline => {
                    let mut child = child.lock();
                    let _ = child.kill();
                    break child.wait().ok();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    };
    let (mut kind, mut why) = ended(status, stderr, &tail);
    if let Some(garbage) = garbage {
        kind = LostKind::Garbage;
        why = format!("it wrote {garbage}, and was killed; {why}");
    }
    fail_all(
        &state,
        &format!("worker process {pid}"),
        WorkerLost::new(kind, why),
    );
}
