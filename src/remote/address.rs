//! Where a worker finds its parent: on Linux a name in the abstract socket
//! namespace — no file, so nothing stale of an earlier process (a reused
//! pid) is in the way and nothing is left behind — elsewhere a socket file
//! in the temporary directory. The worker gets it in [`WORKER_ENV`](super::WORKER_ENV):
//! an abstract name begins with `@`.

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU64, Ordering};

/// One worker's address, as the parent listens on it.
pub(super) struct Address(String);

static NEXT: AtomicU64 = AtomicU64::new(0);

impl Address {
    /// An address no other process uses: this process's id, a count, and
    /// a number of the moment (two processes of one pid, in two pid
    /// namespaces, still differ).
    pub(super) fn fresh() -> Address {
        // Relaxed: a unique number, ordering nothing else.
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("concertina-{}-{n}-{nonce:08x}", std::process::id());
        if cfg!(target_os = "linux") {
            Address(format!("@{name}"))
        } else {
            Address(
                std::env::temp_dir()
                    .join(format!("{name}.sock"))
                    .to_string_lossy()
                    .into_owned(),
            )
        }
    }

    /// What the worker is told.
    pub(super) fn as_env(&self) -> &str {
        &self.0
    }

    pub(super) fn listen(&self) -> io::Result<UnixListener> {
        match self.0.strip_prefix('@') {
            #[cfg(target_os = "linux")]
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                UnixListener::bind_addr(&address)
            }
            _ => UnixListener::bind(&self.0),
        }
    }

    /// Once the worker connected (or failed to): a socket file goes.
    pub(super) fn remove(&self) {
        if !self.0.starts_with('@') {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The worker's side: connects to what [`WORKER_ENV`](super::WORKER_ENV) says.
pub(crate) fn connect(address: &OsStr) -> io::Result<UnixStream> {
    match address.to_str().and_then(|a| a.strip_prefix('@')) {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            UnixStream::connect_addr(&address)
        }
        _ => UnixStream::connect(address),
    }
}
