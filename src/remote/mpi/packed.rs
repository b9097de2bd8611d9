//! Whole messages, for a transport that sends them as they are (MPI): the
//! body first (a call's arguments, a reply's value: bytes its caller
//! encoded once), then the rest of the message in postcard, then the
//! length of that rest (4 bytes, little-endian). The body is sent from its
//! own buffer, not copied into a message, and read in place.

use std::borrow::Cow;
use std::io;

use serde::Serialize;

use crate::remote::frame::{check_size, garbage, size_of, strict, Args, FromWorker, ToWorker};
use crate::remote::spare;

/// `message` packed, its arguments' buffer taken for the body;
/// refused over [`MAX_FRAME`](crate::remote::frame::MAX_FRAME).
pub(crate) fn to_worker(message: &mut ToWorker) -> io::Result<Vec<u8>> {
    let body = message
        .args_mut()
        .map_or_else(Vec::new, |args| std::mem::take(args).into_bytes());
    seal(body, message)
}

/// `message` packed, a value's buffer taken for the body; refused over
/// [`MAX_FRAME`](crate::remote::frame::MAX_FRAME).
pub(crate) fn from_worker(message: &mut FromWorker<'_>) -> io::Result<Vec<u8>> {
    let body = match message.value_mut().map(std::mem::take) {
        Some(Cow::Owned(bytes)) => bytes,
        Some(Cow::Borrowed(bytes)) => spare::copied(bytes),
        None => Vec::new(),
    };
    seal(body, message)
}

/// A message to a worker unpacked: the bytes become its arguments'
/// buffer.
pub(crate) fn read_to_worker(mut bytes: Vec<u8>) -> io::Result<ToWorker> {
    let (body, head) = split(&bytes)?;
    let mut message: ToWorker = strict(head)?;
    match message.args_mut() {
        Some(args) => {
            bytes.truncate(body);
            *args = Args::new(bytes);
        }
        None if body > 0 => return Err(no_room(body)),
        None => spare::give(bytes),
    }
    Ok(message)
}

/// A message from a worker unpacked, its value borrowed from `bytes`.
pub(crate) fn read_from_worker(bytes: &[u8]) -> io::Result<FromWorker<'_>> {
    let (body, head) = split(bytes)?;
    let mut message: FromWorker<'_> = strict(head)?;
    match message.value_mut() {
        Some(value) => *value = Cow::Borrowed(&bytes[..body]),
        None if body > 0 => return Err(no_room(body)),
        None => {}
    }
    Ok(message)
}

/// A body in a message that carries none.
fn no_room(body: usize) -> io::Error {
    garbage(format!(
        "a message with a body of {body} bytes it has no room for"
    ))
}

fn seal<M: Serialize>(body: Vec<u8>, rest: &M) -> io::Result<Vec<u8>> {
    let invalid = |e: postcard::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let length = size_of(rest).map_err(invalid)?;
    check_size(body.len() + length + 4)?;
    let mut bytes = postcard::to_extend(rest, body).map_err(invalid)?;
    // Below MAX_FRAME, checked: it fits.
    bytes.extend_from_slice(&(length as u32).to_le_bytes());
    Ok(bytes)
}

/// The body's length, and the rest's bytes.
fn split(bytes: &[u8]) -> io::Result<(usize, &[u8])> {
    let short = || {
        garbage(format!(
            "a message of {} bytes, shorter than its own framing",
            bytes.len()
        ))
    };
    let (bytes, length) = bytes.split_last_chunk::<4>().ok_or_else(short)?;
    let length = u32::from_le_bytes(*length) as usize;
    let body = bytes.len().checked_sub(length).ok_or_else(short)?;
    Ok((body, &bytes[body..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::frame::{Outcome, ROOM};

    /// A packed message's body is the caller's own buffer, sent as it is,
    /// and read in place; a message whose framing lies is garbage.
    #[test]
    fn a_packed_messages_body_is_not_copied_either_way() {
        let args: Vec<u8> = (0..=255u8).cycle().take(3 << 20).collect();
        // As `encode` leaves it: room after the value.
        let mut buffer = Vec::with_capacity(args.len() + ROOM);
        buffer.extend_from_slice(&args);
        let address = buffer.as_ptr();
        let mut call = ToWorker::CallAfter {
            instance: 1,
            id: 2,
            method: "exchange".to_owned(),
            args: Args::new(buffer),
        };
        let bytes = to_worker(&mut call).unwrap();
        assert_eq!(&bytes[..args.len()], &args[..], "the body first");
        assert_eq!(bytes.as_ptr(), address, "in the arguments' own buffer");
        match read_to_worker(bytes).unwrap() {
            ToWorker::CallAfter {
                instance: 1,
                id: 2,
                method,
                args: read,
            } => {
                assert_eq!(method, "exchange");
                assert_eq!(&read[..], &args[..]);
                assert_eq!(read.as_ptr(), address);
            }
            other => panic!("read back as {other:?}"),
        }
        let mut value = Vec::with_capacity(args.len() + ROOM);
        value.extend_from_slice(&args);
        let address = value.as_ptr();
        let mut reply = FromWorker::Reply {
            id: 5,
            outcome: Outcome::Value(Cow::Owned(value)),
        };
        let bytes = from_worker(&mut reply).unwrap();
        assert_eq!(bytes.as_ptr(), address, "in the value's own buffer");
        match read_from_worker(&bytes).unwrap() {
            FromWorker::Reply {
                id: 5,
                outcome: Outcome::Value(Cow::Borrowed(value)),
            } => {
                assert_eq!(value, &args[..]);
                assert_eq!(value.as_ptr(), bytes.as_ptr(), "borrowed in place");
            }
            other => panic!("read back as {other:?}"),
        }
        // Messages without a body, and framings that lie.
        let go = to_worker(&mut ToWorker::Go { id: 8 }).unwrap();
        assert!(matches!(
            read_to_worker(go.clone()),
            Ok(ToWorker::Go { id: 8 })
        ));
        let mut with_body = vec![7u8; 3];
        with_body.extend_from_slice(&go);
        let error = read_to_worker(with_body).unwrap_err();
        assert!(error.to_string().contains("a body of 3 bytes"), "{error}");
        for lie in [vec![1u8, 2], vec![0, 0, 0, 9, 0, 0, 0]] {
            let error = read_to_worker(lie).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
            assert!(
                error.to_string().contains("shorter than its own framing"),
                "{error}"
            );
        }
    }
}
