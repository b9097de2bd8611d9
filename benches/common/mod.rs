//! What the criterion benches share: the core count and the pools they
//! measure.

#![allow(dead_code)] // each bench uses its own part

use concertina::{Backend, Pool};

/// One worker per core, as the peers' pools have.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A pool of one thread per core on `backend`, named "bench".
pub fn pool(backend: Backend) -> Pool {
    Pool::builder()
        .threads(cores())
        .backend(backend)
        .name("bench")
        .build()
        .expect("a pool of one thread per core")
}

/// A pool that runs every task on the caller (the disabled-async mode).
pub fn inline() -> Pool {
    Pool::builder()
        .backend(Backend::Inline)
        .build()
        .expect("an inline pool")
}

/// The size of a bulk round trip, in bytes: `BULK_MB` mebibytes, 100
/// unless set.
pub fn bulk_bytes() -> usize {
    std::env::var("BULK_MB")
        .ok()
        .and_then(|mb| mb.parse::<usize>().ok())
        .unwrap_or(100)
        << 20
}
