//! Waiting for a value (Concert's `Parameter.wait`): a task that reads the
//! parameter until it reads what is waited for, cancellable, and ended by
//! a Ctrl-C on whoever waits for it.

use std::time::{Duration, Instant};

use crate::device::parameter::Parameter;
use crate::error::Error;
use crate::future::Future;

/// How often [`Parameter::wait_for`] reads.
const POLL: Duration = Duration::from_millis(10);
/// The longest nap between two looks at a cancel.
const NAP: Duration = Duration::from_millis(5);

impl<T: Send + 'static> Parameter<T> {
    /// Reads the parameter every 10 ms until it is within `tolerance` of
    /// `target` (Concert's `param.wait(value)`: a temperature settling, a
    /// motor a controller moves on its own): the future of the value read.
    /// Each read is an operation of the parameter, in its order. Cancelling
    /// the future (or a Ctrl-C while waiting for it) stops the reads.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when `timeout` passed first; a failed read's
    /// error; [`Error::Cancelled`] (or `Interrupted`) when cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// // A heater that warms by a degree at every reading.
    /// let t = Arc::new(AtomicU32::new(20));
    /// let reading = t.clone();
    /// let temperature = concertina::Parameter::builder("temperature")
    ///     .getter(move || f64::from(reading.fetch_add(1, Ordering::SeqCst)))
    ///     .build()?;
    /// let settled = temperature.wait_for(25.0, 0.5, Some(Duration::from_secs(60)));
    /// assert_eq!(settled.result()?, 25.0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait_for(&self, target: T, tolerance: T, timeout: Option<Duration>) -> Future<T>
    where
        T: PartialOrd + std::ops::Sub<Output = T> + Copy + Sync,
    {
        self.wait_until(
            move |value| {
                let off = if *value >= target {
                    *value - target
                } else {
                    target - *value
                };
                off <= tolerance
            },
            POLL,
            timeout,
        )
    }

    /// Reads the parameter every `poll` until `condition` holds for the
    /// value read: the future of that value. As
    /// [`wait_for`](Parameter::wait_for), with a condition of your own.
    ///
    /// # Errors
    ///
    /// As [`Parameter::wait_for`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let door = concertina::Parameter::builder("door").getter(|| "closed").build()?;
    /// let closed = door.wait_until(|s| *s == "closed", Duration::from_millis(1), None);
    /// assert_eq!(closed.result()?, "closed");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait_until(
        &self,
        condition: impl Fn(&T) -> bool + Send + 'static,
        poll: Duration,
        timeout: Option<Duration>,
    ) -> Future<T> {
        let pool = match &self.inner.actions.pool {
            Ok(pool) => pool.clone(),
            Err(error) => return Future::failed(error.clone()),
        };
        let this = self.clone();
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let waiting = move || loop {
            crate::cancel::check_cancelled()?;
            let value = this.get().result()?;
            if condition(&value) {
                return Ok(value);
            }
            let next = Instant::now() + poll;
            loop {
                crate::cancel::check_cancelled()?;
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Err(Error::Timeout(timeout.unwrap_or_default()));
                }
                if now >= next {
                    break;
                }
                let until = deadline.map_or(next, |d| d.min(next));
                std::thread::sleep(until.saturating_duration_since(now).min(NAP));
            }
        };
        self.track(pool.spawn_try(waiting))
    }
}
