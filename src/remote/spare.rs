//! Large byte buffers kept for the next message of their size: a frame read,
//! a call's arguments, an encoded result. The allocator hands a large
//! allocation back to the system when it is freed, so without them every
//! large message of a round trip lands in memory that is new, and touching
//! new memory (a page fault per page) costs several times the copy. At most
//! [`KEPT`] buffers are kept, and one is dropped once [`PATIENCE`] buffers
//! were taken without it: a burst of large messages keeps its memory, small
//! ones after it give it back.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::sync::process::Mutex;

/// Below this size the allocator keeps freed memory itself: not kept here.
pub(crate) const LARGE: usize = 1 << 20;
/// How many buffers are kept at most (a worker holds a frame, a call's
/// arguments and its result at once; the first two are spare by then).
const KEPT: usize = 2;
/// How many buffers may be taken without a kept one before it is dropped.
const PATIENCE: u32 = 8;

struct Kept {
    buffer: Vec<u8>,
    /// Buffers taken since it was kept.
    passed: u32,
}

/// The kept buffers of one process (one [`static`](SPARES); the tests make
/// their own).
pub(crate) struct Spares {
    kept: Mutex<Vec<Kept>>,
    /// Whether any buffer is kept: a small message with none kept takes no
    /// lock.
    any: AtomicBool,
}

/// The process's buffers.
pub(crate) static SPARES: Spares = Spares::new();

/// An empty buffer with room for `len` bytes: a kept one of about that size
/// (at most twice it), or a new one.
pub(crate) fn take(len: usize) -> Vec<u8> {
    SPARES.take(len)
}

/// `bytes` copied into a buffer of their own (a kept one when one fits).
pub(crate) fn copied(bytes: &[u8]) -> Vec<u8> {
    let mut owned = take(bytes.len());
    owned.extend_from_slice(bytes);
    owned
}

/// A buffer of `len` bytes to receive into, whose bytes are whatever it
/// held (a kept buffer is not zeroed first: the receive overwrites them).
#[cfg(feature = "mpi")]
pub(crate) fn filled(len: usize) -> Vec<u8> {
    SPARES.filled(len)
}

/// Keeps `buffer` for a later [`take`] if it is large; with [`KEPT`]
/// buffers kept already, the one taken over longest ago goes.
pub(crate) fn give(buffer: Vec<u8>) {
    SPARES.give(buffer)
}

impl Spares {
    const fn new() -> Self {
        Spares {
            kept: Mutex::new(Vec::new()),
            any: AtomicBool::new(false),
        }
    }

    #[cfg(any(feature = "mpi", test))]
    fn filled(&self, len: usize) -> Vec<u8> {
        let mut buffer = self.taken(len);
        if buffer.len() >= len {
            buffer.truncate(len);
        } else {
            buffer.resize(len, 0);
        }
        buffer
    }

    fn take(&self, len: usize) -> Vec<u8> {
        let mut buffer = self.taken(len);
        buffer.clear();
        buffer
    }

    /// A kept buffer of about `len` bytes' room as it was given, or a new
    /// one.
    fn taken(&self, len: usize) -> Vec<u8> {
        if self.any.load(Ordering::Relaxed) {
            let mut expired = Vec::new();
            let found = {
                let mut kept = self.kept.lock();
                let fits =
                    |k: &Kept| len >= LARGE && (len..=2 * len).contains(&k.buffer.capacity());
                let found = kept
                    .iter()
                    .position(fits)
                    .map(|i| kept.swap_remove(i).buffer);
                for k in kept.iter_mut() {
                    k.passed += 1;
                }
                let mut i = 0;
                while i < kept.len() {
                    if kept[i].passed >= PATIENCE {
                        expired.push(kept.swap_remove(i));
                    } else {
                        i += 1;
                    }
                }
                self.any.store(!kept.is_empty(), Ordering::Relaxed);
                found
            };
            // Freed outside the lock: giving a large buffer back to the
            // system takes a while.
            drop(expired);
            if let Some(buffer) = found {
                return buffer;
            }
        }
        Vec::with_capacity(len)
    }

    fn give(&self, buffer: Vec<u8>) {
        if buffer.capacity() < LARGE {
            return;
        }
        let dropped = {
            let mut kept = self.kept.lock();
            let dropped = if kept.len() >= KEPT {
                let oldest = (0..kept.len())
                    .max_by_key(|&i| kept[i].passed)
                    .expect("buffers kept");
                Some(kept.swap_remove(oldest))
            } else {
                None
            };
            kept.push(Kept { buffer, passed: 0 });
            self.any.store(true, Ordering::Relaxed);
            dropped
        };
        drop(dropped);
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.kept.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_buffer_is_taken_again_and_small_messages_give_it_back() {
        let spares = Spares::new();
        let buffer = spares.take(3 * LARGE);
        let address = buffer.as_ptr();
        assert!(buffer.capacity() >= 3 * LARGE && buffer.is_empty());
        spares.give(buffer);
        // A message of about its size gets it back, empty.
        let mut again = spares.take(3 * LARGE - 10);
        assert_eq!(again.as_ptr(), address, "the kept buffer is taken again");
        assert!(again.is_empty());
        again.extend_from_slice(&[1, 2, 3]);
        spares.give(again);
        let taken = spares.take(3 * LARGE);
        assert_eq!(taken.as_ptr(), address);
        assert!(taken.is_empty(), "given back with bytes, taken empty");
        spares.give(taken);
        // One of less than half its size does not get it (a small encoded
        // value holding a large buffer would keep it from the system).
        let other = spares.take(LARGE);
        assert_ne!(other.as_ptr(), address);
        // Nor a small message.
        assert!(spares.take(10).capacity() < LARGE);
        // After PATIENCE takes without it, it is no longer kept.
        for _ in 0..PATIENCE {
            drop(spares.take(10));
        }
        assert_eq!(spares.kept(), 0);
        assert!(
            !spares.any.load(Ordering::Relaxed),
            "small takes lock nothing"
        );
        // Small buffers are never kept; at most KEPT large ones are.
        spares.give(Vec::with_capacity(10));
        assert_eq!(spares.kept(), 0);
        for _ in 0..KEPT + 2 {
            spares.give(Vec::with_capacity(2 * LARGE));
        }
        assert_eq!(spares.kept(), KEPT);
        for _ in 0..PATIENCE {
            drop(spares.take(10));
        }
        assert_eq!(spares.kept(), 0);
    }

    #[test]
    fn a_buffer_to_receive_into_has_the_length_asked_and_reuses_a_kept_one() {
        let spares = Spares::new();
        let fresh = spares.filled(2 * LARGE);
        assert_eq!(fresh.len(), 2 * LARGE);
        assert!(fresh.iter().all(|&b| b == 0), "new room is zeroed");
        let address = fresh.as_ptr();
        spares.give(fresh);
        // Shorter than it was: cut to the length, the same memory.
        let shorter = spares.filled(2 * LARGE - 100);
        assert_eq!(
            (shorter.as_ptr(), shorter.len()),
            (address, 2 * LARGE - 100)
        );
        spares.give(shorter);
        // Longer than it holds: grown to the length within its room.
        let longer = spares.filled(2 * LARGE);
        assert_eq!((longer.as_ptr(), longer.len()), (address, 2 * LARGE));
    }
}
