//! A local worker process as its parent watches it: its stderr passed on
//! as it comes (bytes, not lines), the tail of it kept for a
//! `WorkerLost`, and its death seen from the process itself — not only
//! from the end of its socket, which a child it started may hold open.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::{Arc, LazyLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sync::process;
use crate::sync::Mutex;

/// How many of the last lines of a worker's stderr a `WorkerLost` quotes.
const TAIL_LINES: usize = 20;
/// How much of each such line (a line of a megabyte quoted in every
/// pending call's error would cost a megabyte each).
const LINE_BYTES: usize = 512;
/// How long the end of a worker waits for its stderr to be passed on: a
/// child it started may hold the pipe open for much longer.
const RELAY_GRACE: Duration = Duration::from_millis(200);
/// How often the death watch looks at the workers it watches.
const WATCH_EVERY: Duration = Duration::from_millis(20);

/// The last lines of a worker's stderr, each cut to [`LINE_BYTES`]. A `\r`
/// starts the line over, as on a terminal (a progress bar's last state).
#[derive(Default)]
pub(crate) struct Tail {
    lines: VecDeque<Vec<u8>>,
    current: Vec<u8>,
}

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            match byte {
                b'\n' => {
                    if self.lines.len() == TAIL_LINES {
                        self.lines.pop_front();
                    }
                    self.lines.push_back(std::mem::take(&mut self.current));
                }
                b'\r' => self.current.clear(),
                _ if self.current.len() < LINE_BYTES => self.current.push(byte),
                _ => {}
            }
        }
    }

    /// The lines as text (bytes that are not UTF-8 replaced), the last one
    /// even without its newline; `None` when nothing was written.
    pub(crate) fn text(&self) -> Option<String> {
        let last = (!self.current.is_empty()).then_some(&self.current);
        let lines: Vec<_> = self
            .lines
            .iter()
            .chain(last)
            .skip(usize::from(
                self.lines.len() == TAIL_LINES && last.is_some(),
            ))
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }
}

/// Passes the worker's stderr on to this process's as it comes, keeping
/// its tail. It reads until the pipe's end whatever it reads (a progress
/// bar without newlines, text in any encoding) and whatever happens to
/// what it writes to, so the worker never meets a closed pipe.
pub(crate) fn relay_stderr(mut stderr: ChildStderr, tail: Arc<Mutex<Tail>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 8192];
        loop {
            match stderr.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => {
                    let _ = std::io::stderr().write_all(&buffer[..n]);
                    tail.lock().push(&buffer[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    })
}

/// Lets the relay pass on what the worker wrote last, for a moment: the
/// relay of a worker whose child holds its stderr goes on on its own.
pub(crate) fn wait_relay(relay: Option<JoinHandle<()>>) {
    let Some(relay) = relay else { return };
    let deadline = Instant::now() + RELAY_GRACE;
    while !relay.is_finished() {
        if Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = relay.join();
}

/// A worker whose death the watch looks for.
struct Watched {
    child: Weak<Mutex<Child>>,
    /// The parent's end of the worker's socket: shut down once the worker
    /// has ended, so that its reply thread sees the end even when a child
    /// of the worker holds the socket open.
    socket: UnixStream,
}

/// The workers watched, and the watch's condvar (it sleeps while none is).
static WATCHED: LazyLock<(process::Mutex<Vec<Watched>>, process::Condvar)> = LazyLock::new(|| {
    let started = std::thread::Builder::new()
        .name("concertina-remote-watch".into())
        .spawn(watch_loop);
    if started.is_err() {
        // Without the watch, a worker's death is seen at the end of its
        // socket only.
    }
    Default::default()
});

/// Watches `child`, whose socket's parent end `socket` is a clone of.
pub(crate) fn watch(child: &Arc<Mutex<Child>>, socket: UnixStream) {
    let (watched, more) = &*WATCHED;
    watched.lock().push(Watched {
        child: Arc::downgrade(child),
        socket,
    });
    more.notify_one();
}

fn watch_loop() {
    let (watched, more) = &*WATCHED;
    loop {
        {
            let mut watched = watched.lock();
            while watched.is_empty() {
                more.wait(&mut watched);
            }
        }
        std::thread::sleep(WATCH_EVERY);
        watched.lock().retain(|w| {
            let Some(child) = w.child.upgrade() else {
                return false;
            };
            // A child locked elsewhere (being killed, waited for) is looked
            // at next time.
            let Some(mut child) = child.try_lock() else {
                return true;
            };
            match child.try_wait() {
                Ok(None) => true,
                Ok(Some(_)) | Err(_) => {
                    let _ = w.socket.shutdown(std::net::Shutdown::Both);
                    false
                }
            }
        });
    }
}

/// Ends what a worker started, once the worker has ended: it leads a
/// process group of its own (see the local transport's launch), and the
/// programs its code started (helpers, forked children) are in it. Through
/// the system's `kill`; nothing when the group is empty.
pub(crate) fn end_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
