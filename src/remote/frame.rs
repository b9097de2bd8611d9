//! The messages between a parent and its worker process, and their frames:
//! a 4-byte little-endian length, then the message in postcard.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// The largest frame either side accepts: anything longer is garbage.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// From the parent to its worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Make instance `instance` of the code named `code` from its
    /// constructor's arguments; the reply (an empty value, or why not)
    /// carries `id`.
    Start {
        instance: u32,
        id: u64,
        code: String,
        args: Vec<u8>,
    },
    /// Call `method` of `instance` with `args`; the reply carries `id`.
    Call {
        instance: u32,
        id: u64,
        method: String,
        args: Vec<u8>,
    },
    /// Many calls of one method in one message (AMUSE's `call_count`):
    /// ids `first`, `first + 1`, …; their outcomes come back together.
    Calls {
        instance: u32,
        first: u64,
        method: String,
        args: Vec<Vec<u8>>,
    },
    /// Cancel call `id`: dropped while queued (its reply says cancelled);
    /// running, [`crate::cancelled`] turns true inside it.
    Cancel { id: u64 },
    /// Drop `instance` once the calls made to it have run.
    Free { instance: u32 },
    /// Run the calls made, then exit.
    Stop,
}

/// From the worker to its parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The outcome of call `id`.
    Reply { id: u64, outcome: Outcome },
    /// The outcomes of the calls of one `Calls` message (those not
    /// cancelled while queued, whose replies went on their own).
    Replies(Vec<(u64, Outcome)>),
}

/// A call's outcome in the worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome {
    /// The method returned: its value, in postcard.
    Value(Vec<u8>),
    /// The method panicked, with this message; the worker lives on.
    Panicked(String),
    /// The call could not be made (unknown method, arguments that do not
    /// decode), or the method's error.
    Failed(String),
    /// The call was cancelled: never run, or stopped by its cancel.
    Cancelled,
}

/// Refuses a message of `bytes` over [`MAX_FRAME`] (every transport: an
/// MPI message counts its bytes in an `i32`), with an error of kind
/// `InvalidInput` that names the size and the limit.
pub(crate) fn check_size(bytes: usize) -> io::Result<()> {
    if bytes > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a message of {bytes} bytes is over the {MAX_FRAME}-byte limit of a message"),
        ));
    }
    Ok(())
}

/// Writes `message` as one frame.
pub(crate) fn write<M: Serialize>(out: &mut impl Write, message: &M) -> io::Result<()> {
    let payload =
        postcard::to_stdvec(message).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    check_size(payload.len())?;
    let mut frame = Vec::with_capacity(4 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&payload);
    out.write_all(&frame)?;
    out.flush()
}

/// Reads one frame: `Ok(None)` at a clean end of the stream (between
/// frames); an error for a stream that ends inside a frame, a length over
/// [`MAX_FRAME`], or bytes that do not decode.
pub(crate) fn read<M: for<'de> Deserialize<'de>>(input: &mut impl Read) -> io::Result<Option<M>> {
    let mut length = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match input.read(&mut length[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the stream ended inside a frame's length",
                ))
            }
            Ok(n) => got += n,
            // A signal caught while waiting: read again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {length} bytes announced: over the {MAX_FRAME}-byte limit (garbage on the channel?)"),
        ));
    }
    let mut payload = vec![0u8; length];
    input.read_exact(&mut payload).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("the stream ended inside a frame of {length} bytes"),
        )
    })?;
    postcard::from_bytes(&payload).map(Some).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame that does not decode: {e}"),
        )
    })
}
