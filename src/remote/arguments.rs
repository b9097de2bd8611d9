//! A call's arguments decoded one at a time, each either as a new value or
//! into a value kept from an earlier call (whose buffers it reuses): what a
//! method that borrows its arrays (`values: &[f64]`) is given.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{RemoteFailure, RemoteFailureKind};
use crate::remote::RemoteError;

/// A call's arguments (postcard, a tuple: the values one after the other),
/// read in order: [`Arguments::decode`] for a value the method takes,
/// [`Arguments::decode_into`] for one decoded into a place kept across calls,
/// so that a large array lands in memory already touched instead of a
/// fresh allocation. `#[concertina::remote]` uses it for the arguments a
/// method borrows; a hand-written [`Code`](crate::remote::Code) may too.
///
/// # Examples
///
/// ```
/// use concertina::remote::{self, Arguments};
///
/// let bytes = remote::encode(&(2u32, vec![1.5_f64, 2.5]))?;
/// let mut kept: Option<Vec<f64>> = Some(Vec::with_capacity(1024));
/// let before = kept.as_ref().unwrap().as_ptr();
///
/// let mut args = Arguments::new(&bytes);
/// let steps: u32 = args.decode()?;
/// let values = args.decode_into(&mut kept)?;
/// assert_eq!((steps, values.as_slice()), (2, &[1.5, 2.5][..]));
/// assert_eq!(values.as_ptr(), before, "decoded into the kept buffer");
/// # Ok::<(), remote::RemoteError>(())
/// ```
pub struct Arguments<'a> {
    decoder: postcard::Deserializer<'a, postcard::de_flavors::Slice<'a>>,
    /// How many were read: the next one's position, for errors.
    read: usize,
}

impl<'a> Arguments<'a> {
    /// The arguments in `bytes`, none read yet.
    ///
    /// # Examples
    ///
    /// ```
    /// let bytes = concertina::remote::encode(&(7u8,))?;
    /// let mut args = concertina::remote::Arguments::new(&bytes);
    /// assert_eq!(args.decode::<u8>()?, 7);
    /// # Ok::<(), concertina::remote::RemoteError>(())
    /// ```
    pub fn new(bytes: &'a [u8]) -> Self {
        Arguments {
            decoder: postcard::Deserializer::from_bytes(bytes),
            read: 0,
        }
    }

    /// The next argument, as a value of its own.
    ///
    /// # Errors
    ///
    /// A [`RemoteError`] naming the argument's position and type when the
    /// bytes left do not decode as one.
    ///
    /// # Examples
    ///
    /// ```
    /// let bytes = concertina::remote::encode(&(1u64, "gauge"))?;
    /// let mut args = concertina::remote::Arguments::new(&bytes);
    /// assert_eq!(args.decode::<u64>()?, 1);
    /// assert_eq!(args.decode::<String>()?, "gauge");
    /// let err = args.decode::<u64>().unwrap_err();
    /// assert!(err.to_string().contains("argument 3 (a u64)"), "{err}");
    /// # Ok::<(), concertina::remote::RemoteError>(())
    /// ```
    pub fn decode<T: Deserialize<'a>>(&mut self) -> Result<T, RemoteError> {
        self.read += 1;
        T::deserialize(&mut self.decoder).map_err(|e| self.failed::<T>(e))
    }

    /// The next argument, decoded into `place`: a value there is
    /// overwritten in place and keeps its buffers (a `Vec`'s or a
    /// `String`'s capacity), so that an array no longer than the last one
    /// costs no new memory; an empty `place` gets a new value. The value,
    /// borrowed from `place`.
    ///
    /// # Errors
    ///
    /// As [`Arguments::decode`]; `place` is then left empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::remote::{self, Arguments};
    ///
    /// let mut kept: Option<Vec<f64>> = None;
    /// for n in [3, 2] {
    ///     let bytes = remote::encode(&(vec![0.5_f64; n],))?;
    ///     let values = Arguments::new(&bytes).decode_into(&mut kept)?;
    ///     assert_eq!(values, &vec![0.5; n], "a shorter array after a longer one");
    /// }
    /// # Ok::<(), remote::RemoteError>(())
    /// ```
    pub fn decode_into<'p, T: DeserializeOwned>(
        &mut self,
        place: &'p mut Option<T>,
    ) -> Result<&'p T, RemoteError> {
        self.read += 1;
        let decoded = match place {
            Some(value) => T::deserialize_in_place(&mut self.decoder, value),
            None => T::deserialize(&mut self.decoder).map(|value| *place = Some(value)),
        };
        match decoded {
            Ok(()) => Ok(place.as_ref().expect("decoded just now")),
            Err(e) => {
                // Half overwritten: not a value to keep.
                *place = None;
                Err(self.failed::<T>(e))
            }
        }
    }

    /// The error of argument `read` not decoding as a `T`.
    fn failed<T>(&self, e: postcard::Error) -> RemoteError {
        RemoteError(RemoteFailure::new(
            RemoteFailureKind::Decode,
            format!(
                "cannot decode argument {} (a {}): {e}",
                self.read,
                std::any::type_name::<T>()
            ),
        ))
    }
}

impl std::fmt::Debug for Arguments<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arguments")
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}
