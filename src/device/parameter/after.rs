//! Operations made once a dependency has finished: `set_after` and
//! `get_after` (Concert's `wait_on`), on one path.

use std::sync::Arc;

use crate::cancel::CancelHandle;
use crate::device::parameter::Parameter;
use crate::error::Error;
use crate::future::Future;
use crate::sync::Mutex;
use crate::task::phase;

impl<T: Send + 'static> Parameter<T> {
    /// Writes the value once `dependency` has finished (Concert's
    /// `wait_on`); when it fails, the set never happens and fails with
    /// [`Error::DependencyFailed`]. The set takes its place in the
    /// parameter's order when the dependency finishes.
    ///
    /// # Errors
    ///
    /// As [`Parameter::set`], at once for a value the parameter refuses;
    /// [`Error::DependencyFailed`] when the dependency failed.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").setter(|_: f64| {}).build()?;
    /// let first = p.set(1.0);
    /// let second = p.set_after(first.when_done(), 2.0);
    /// second.result()?;
    /// assert!(first.done());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn set_after<D: Send + 'static>(&self, dependency: Future<D>, value: T) -> Future<()> {
        if let Err(error) = self.check_set(&value) {
            return Future::failed(error);
        }
        let this = self.clone();
        self.after(dependency, move || this.set(value))
    }

    /// Reads the value once `dependency` has finished: a reading taken
    /// after a move, say, without blocking the caller. When the dependency
    /// fails, the read never happens and fails with
    /// [`Error::DependencyFailed`]. The read takes its place in the
    /// parameter's order when the dependency finishes.
    ///
    /// # Errors
    ///
    /// As [`Parameter::get`]; [`Error::DependencyFailed`] when the
    /// dependency failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let stage = Arc::new(Mutex::new(0.0_f64));
    /// let (read, write) = (stage.clone(), stage.clone());
    /// let position = concertina::Parameter::builder("position")
    ///     .getter(move || *read.lock().unwrap())
    ///     .setter(move |mm| *write.lock().unwrap() = mm)
    ///     .build()?;
    /// let moved = position.set(2.5);
    /// let reading = position.get_after(moved.when_done());
    /// assert_eq!(reading.result()?, 2.5);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn get_after<D: Send + 'static>(&self, dependency: Future<D>) -> Future<T> {
        let this = self.clone();
        self.after(dependency, move || this.get())
    }

    /// The operation `start` makes, made once `dependency` has finished;
    /// cancelling the returned future cancels it (or keeps it from being
    /// made).
    fn after<D, R>(
        &self,
        dependency: Future<D>,
        start: impl FnOnce() -> Future<R> + Send + 'static,
    ) -> Future<R>
    where
        D: Send + 'static,
        R: Send + 'static,
    {
        let (future, outer) = Future::<R>::pending();
        let started: Arc<Mutex<Option<CancelHandle>>> = Arc::new(Mutex::new(None));
        let handle = started.clone();
        dependency.on_outcome(move |outcome| match outcome {
            Ok(_) => {
                if phase::is_decided(outer.phase()) {
                    return;
                }
                let operation = start();
                *handle.lock() = Some(operation.cancel_handle());
                if phase::is_decided(outer.phase()) {
                    // Cancelled while the operation was submitted.
                    operation.cancel();
                }
                operation.on_outcome(move |done| {
                    outer.settle(done, false);
                });
            }
            Err(cause) => {
                outer.settle(Err(Error::DependencyFailed(Box::new(cause))), false);
            }
        });
        let future = future.on_cancel(move || {
            let operation = started.lock().take();
            if let Some(operation) = operation {
                operation.cancel();
            }
        });
        self.track(future)
    }
}
