//! `.await` on a [`Future`] from any async runtime.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::Error;
use crate::future::Future;
use crate::task::phase as state;
use crate::task::TaskRef;

/// The `std::future::Future` made by `.await`ing a [`Future`]: it resolves
/// to the task's outcome without blocking the executor's thread.
///
/// Dropping it detaches the task, as dropping the handle does.
///
/// # Examples
///
/// ```
/// use std::future::IntoFuture;
///
/// let f = concertina::spawn(|| 2 + 2);
/// let awaiting: concertina::Awaiting<i32> = f.into_future();
/// # drop(awaiting);
/// ```
#[must_use = "an Awaiting does nothing unless polled"]
pub struct Awaiting<T> {
    inner: TaskRef<T>,
}

impl<T: Send + 'static> std::future::IntoFuture for Future<T> {
    type Output = Result<T, Error>;
    type IntoFuture = Awaiting<T>;

    fn into_future(self) -> Awaiting<T> {
        Awaiting {
            inner: self.into_task(),
        }
    }
}

impl<T: Send + 'static> std::future::Future for Awaiting<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.inner.poll_outcome(cx.waker()) {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

impl<T> fmt::Debug for Awaiting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Awaiting")
            .field("state", &state::name(self.inner.phase()))
            .finish()
    }
}
