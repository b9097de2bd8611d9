//! The messages between a parent and its worker process, and their frames:
//! a 4-byte little-endian length, then the message in postcard.

use std::borrow::Cow;
use std::io::{self, Read, Write};

use crate::error::RemoteFailure;
use crate::remote::spare;
use serde::{Deserialize, Serialize};

/// The largest frame either side accepts: anything longer is garbage.
pub(crate) const MAX_FRAME: usize = 1 << 30;

/// The room an encoded value leaves after itself for the rest of the
/// message a transport that sends whole messages puts there (see
/// `packed`): its method's name, ids, a length.
pub(crate) const ROOM: usize = 256;

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
        args: Args,
    },
    /// Call `method` of `instance` with `args`; the reply carries `id`.
    Call {
        instance: u32,
        id: u64,
        method: String,
        args: Args,
    },
    /// As `Call`, but the call keeps its place in the instance's queue
    /// until a `Go` (or a `Cancel`) names it: a call made after another
    /// future, whose later calls wait behind it.
    CallAfter {
        instance: u32,
        id: u64,
        method: String,
        args: Args,
    },
    /// The dependency of call `id` (made with `CallAfter`) has finished:
    /// it may run.
    Go { id: u64 },
    /// Many calls of one method in one message (AMUSE's `call_count`):
    /// ids `first`, `first + 1`, …; their outcomes come back together.
    Calls {
        instance: u32,
        first: u64,
        method: String,
        #[serde(with = "bytes_list")]
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

/// From the worker to its parent. Read, its values borrow from the frame
/// they came in (a large result is not copied out of it).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker<'a> {
    /// The outcome of call `id`.
    Reply {
        id: u64,
        #[serde(borrow)]
        outcome: Outcome<'a>,
    },
    /// The outcomes of the calls of one `Calls` message (those not
    /// cancelled while queued, whose replies went on their own).
    Replies(#[serde(borrow)] Vec<(u64, Outcome<'a>)>),
}

/// A call's outcome in the worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Outcome<'a> {
    /// The method returned: its value, in postcard.
    Value(
        #[serde(
            borrow,
            serialize_with = "bytes::serialize",
            deserialize_with = "bytes::borrowed"
        )]
        Cow<'a, [u8]>,
    ),
    /// The method panicked, with this message; the worker lives on.
    Panicked(String),
    /// The call could not be made (unknown method, arguments that do not
    /// decode), or the method's error.
    Failed(RemoteFailure),
    /// The call was cancelled: never run, or stopped by its cancel.
    Cancelled,
}

impl ToWorker {
    /// Keeps the message's byte buffer for a later message once it was
    /// sent (see `spare`).
    pub(crate) fn recycle(mut self) {
        if let Some(args) = self.args_mut() {
            spare::give(std::mem::take(args).into_buffer());
        }
    }

    /// The arguments of a message that carries them (a start or a call).
    pub(crate) fn args_mut(&mut self) -> Option<&mut Args> {
        match self {
            ToWorker::Start { args, .. }
            | ToWorker::Call { args, .. }
            | ToWorker::CallAfter { args, .. } => Some(args),
            _ => None,
        }
    }

    /// Decodes a message from the bytes of its frame (or of its MPI
    /// message), which become its arguments' buffer: a large argument is
    /// not copied out of the frame it came in. Bytes after the message are
    /// garbage.
    pub(crate) fn from_frame(payload: Vec<u8>) -> io::Result<ToWorker> {
        let mut message: ToWorker = strict(&payload)?;
        match message.args_mut() {
            Some(args) => args.adopt(payload),
            None => spare::give(payload),
        }
        Ok(message)
    }
}

/// A call's arguments, in postcard: a buffer of their own (the caller's),
/// or the frame they came in, whose last bytes they are (the arguments are
/// the last field of their message).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Args {
    buffer: Vec<u8>,
    /// Where they start in `buffer`.
    start: usize,
    /// Decoded, not given their frame yet: their length.
    tail: Option<usize>,
}

impl Args {
    /// Arguments in a buffer of their own.
    pub(crate) fn new(buffer: Vec<u8>) -> Self {
        Args {
            buffer,
            start: 0,
            tail: None,
        }
    }

    /// Their buffer, to keep for a later message (see `spare`).
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }

    /// Their bytes, in a buffer of their own.
    #[cfg(feature = "mpi")]
    pub(crate) fn into_bytes(mut self) -> Vec<u8> {
        self.buffer.drain(..self.start);
        self.buffer
    }

    /// Takes over the frame they were decoded from (whose last bytes they
    /// are).
    fn adopt(&mut self, frame: Vec<u8>) {
        if let Some(len) = self.tail.take() {
            self.start = frame.len() - len;
            self.buffer = frame;
        } else {
            spare::give(frame);
        }
    }
}

impl std::ops::Deref for Args {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buffer[self.start..]
    }
}

impl Serialize for Args {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        bytes::serialize(self, serializer)
    }
}

impl<'de> Deserialize<'de> for Args {
    /// Bytes lent by the format are left where they are, for
    /// [`ToWorker::from_frame`] to adopt with their frame; others are
    /// copied out.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        bytes::borrowed(deserializer).map(|bytes| match bytes {
            Cow::Borrowed(bytes) => Args {
                tail: Some(bytes.len()),
                ..Args::default()
            },
            Cow::Owned(bytes) => Args::new(bytes),
        })
    }
}

/// Decodes all of `bytes`: bytes after the message are garbage.
pub(crate) fn strict<'a, M: Deserialize<'a>>(bytes: &'a [u8]) -> io::Result<M> {
    let (message, rest) = postcard::take_from_bytes::<M>(bytes)
        .map_err(|e| garbage(format!("a message that does not decode: {e}")))?;
    if !rest.is_empty() {
        return Err(garbage(format!(
            "a message with {} bytes after it",
            rest.len()
        )));
    }
    Ok(message)
}

pub(crate) fn garbage(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

impl<'a> FromWorker<'a> {
    /// The value of a reply that carries one (not a batch's).
    #[cfg(feature = "mpi")]
    pub(crate) fn value_mut(&mut self) -> Option<&mut Cow<'a, [u8]>> {
        match self {
            FromWorker::Reply {
                outcome: Outcome::Value(value),
                ..
            } => Some(value),
            _ => None,
        }
    }

    /// Keeps the reply's byte buffers for later messages once it was sent.
    pub(crate) fn recycle(self) {
        let give = |outcome: Outcome<'_>| {
            if let Outcome::Value(Cow::Owned(bytes)) = outcome {
                spare::give(bytes);
            }
        };
        match self {
            FromWorker::Reply { outcome, .. } => give(outcome),
            FromWorker::Replies(outcomes) => outcomes.into_iter().for_each(|(_, o)| give(o)),
        }
    }
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

/// The length of `value` in postcard, measured without writing it.
pub(crate) fn size_of<T: Serialize + ?Sized>(value: &T) -> postcard::Result<usize> {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
}

/// Writes `message` as one frame: its length (measured first), then the
/// message encoded straight into `out`, with no buffer of its own.
pub(crate) fn write<M: Serialize>(out: &mut impl Write, message: &M) -> io::Result<()> {
    let invalid = |e: postcard::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let length = size_of(message).map_err(invalid)?;
    check_size(length)?;
    // Below MAX_FRAME, checked: it fits.
    out.write_all(&(length as u32).to_le_bytes())?;
    postcard::to_io(message, &mut *out).map_err(|e| match e {
        postcard::Error::SerializeBufferFull => io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the channel closed inside a frame",
        ),
        e => invalid(e),
    })?;
    out.flush()
}

/// Reads one message to a worker: `Ok(None)` at a clean end of the
/// stream (between frames); an error for a stream that ends inside a
/// frame, a length over [`MAX_FRAME`], or bytes that do not decode.
pub(crate) fn read(input: &mut impl Read) -> io::Result<Option<ToWorker>> {
    read_bytes(input)?.map(ToWorker::from_frame).transpose()
}

/// Decodes a frame's bytes (a message that may borrow from them).
pub(crate) fn decoded<'a, M: Deserialize<'a>>(payload: &'a [u8]) -> io::Result<M> {
    postcard::from_bytes(payload).map_err(|e| garbage(format!("a frame that does not decode: {e}")))
}

/// Reads one frame's bytes, as [`read`] reads a message.
pub(crate) fn read_bytes(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
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
    // Into a kept buffer when one fits (see `spare`), and never zeroed
    // first: read into its room as the bytes come.
    let mut payload = spare::take(length);
    let ended = |got: usize| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the stream ended inside a frame of {length} bytes ({got} came)"),
        )
    };
    match input.take(length as u64).read_to_end(&mut payload) {
        Ok(got) if got == length => Ok(Some(payload)),
        Ok(got) => Err(ended(got)),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("reading a frame of {length} bytes: {e}"),
        )),
    }
}

/// A byte field of a message as one run of bytes (its length, then the
/// bytes: a copy, no work per byte), not as a sequence of numbers; read in
/// place from the frame ([`borrowed`](bytes::borrowed)) or copied out of it.
mod bytes {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::borrow::Cow;
    use std::fmt;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    /// The bytes copied out of the frame, into a kept buffer when one fits.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        borrowed(deserializer).map(|bytes| match bytes {
            Cow::Borrowed(bytes) => crate::remote::spare::copied(bytes),
            Cow::Owned(bytes) => bytes,
        })
    }

    /// The bytes, borrowed from the frame when the format lends them.
    pub(super) fn borrowed<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Cow<'de, [u8]>, D::Error> {
        struct Borrowing;

        impl<'de> Visitor<'de> for Borrowing {
            type Value = Cow<'de, [u8]>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }

            fn visit_borrowed_bytes<E: de::Error>(
                self,
                bytes: &'de [u8],
            ) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(bytes))
            }

            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
                Ok(Cow::Owned(bytes.to_vec()))
            }

            fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Self::Value, E> {
                Ok(Cow::Owned(bytes))
            }
        }

        deserializer.deserialize_bytes(Borrowing)
    }
}

/// A list of byte fields (a batch's arguments), each as [`bytes`] says.
mod bytes_list {
    use serde::de::{SeqAccess, Visitor};
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::fmt;

    struct One<'a>(&'a [u8]);

    impl Serialize for One<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            super::bytes::serialize(self.0, serializer)
        }
    }

    struct Owned(Vec<u8>);

    impl<'de> Deserialize<'de> for Owned {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            super::bytes::deserialize(deserializer).map(Owned)
        }
    }

    pub(super) fn serialize<S: Serializer>(
        list: &[Vec<u8>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(list.len()))?;
        for bytes in list {
            seq.serialize_element(&One(bytes))?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Vec<u8>>, D::Error> {
        struct List;

        impl<'de> Visitor<'de> for List {
            type Value = Vec<Vec<u8>>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of bytes")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Vec<u8>>, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(Owned(bytes)) = seq.next_element()? {
                    list.push(bytes);
                }
                Ok(list)
            }
        }

        deserializer.deserialize_seq(List)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte field costs its length and its bytes (not a number per
    /// byte), and a value read borrows from the frame it came in.
    #[test]
    fn byte_fields_are_one_run_and_read_in_place() {
        let value: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let reply = FromWorker::Reply {
            id: 7,
            outcome: Outcome::Value(Cow::Borrowed(&value)),
        };
        let mut frame = Vec::new();
        write(&mut frame, &reply).unwrap();
        let length = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        // id 7, the variants, the length's two bytes, then the value.
        assert_eq!(length, 1 + 1 + 1 + 2 + value.len());
        assert_eq!(&frame[frame.len() - value.len()..], &value[..]);
        let payload = read_bytes(&mut &frame[..]).unwrap().unwrap();
        match decoded::<FromWorker<'_>>(&payload).unwrap() {
            FromWorker::Reply {
                id: 7,
                outcome: Outcome::Value(Cow::Borrowed(bytes)),
            } => {
                assert_eq!(bytes, &value[..]);
                let inside = payload.as_ptr_range();
                assert!(inside.contains(&bytes.as_ptr()), "borrowed from the frame");
            }
            other => panic!("read back as {other:?}"),
        }
        let calls = ToWorker::Calls {
            instance: 1,
            first: 2,
            method: "m".to_owned(),
            args: vec![vec![1, 2, 3], Vec::new(), value.clone()],
        };
        let mut frame = Vec::new();
        write(&mut frame, &calls).unwrap();
        match read(&mut &frame[..]).unwrap().unwrap() {
            ToWorker::Calls { args, .. } => assert_eq!(args, [vec![1, 2, 3], Vec::new(), value]),
            other => panic!("read back as {other:?}"),
        }
    }

    /// A call read from its frame owns the frame: its arguments are the
    /// frame's last bytes, not a copy; bytes after a message are garbage.
    #[test]
    fn a_calls_arguments_are_its_frames_last_bytes() {
        let args: Vec<u8> = (0..=255u8).cycle().take(3 << 20).collect();
        let call = ToWorker::Call {
            instance: 3,
            id: 9,
            method: "evolve".to_owned(),
            args: Args::new(args.clone()),
        };
        let mut frame = Vec::new();
        write(&mut frame, &call).unwrap();
        let payload = read_bytes(&mut &frame[..]).unwrap().unwrap();
        let inside = payload.as_ptr_range();
        match ToWorker::from_frame(payload).unwrap() {
            ToWorker::Call {
                instance: 3,
                id: 9,
                method,
                args: read,
            } => {
                assert_eq!(method, "evolve");
                assert_eq!(&read[..], &args[..]);
                assert!(inside.contains(&read.as_ptr()), "not copied out");
                assert_eq!(read.into_buffer().as_ptr_range(), inside);
            }
            other => panic!("read back as {other:?}"),
        }
        // A message without arguments, and one with bytes after it.
        let mut payload = postcard::to_stdvec(&ToWorker::Go { id: 4 }).unwrap();
        assert!(matches!(
            ToWorker::from_frame(payload.clone()),
            Ok(ToWorker::Go { id: 4 })
        ));
        payload.extend_from_slice(&[1, 2]);
        let error = ToWorker::from_frame(payload).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error
                .to_string()
                .contains("a message with 2 bytes after it"),
            "{error}"
        );
    }
}
