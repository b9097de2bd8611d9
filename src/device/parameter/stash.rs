//! Stashing and restoring values (Concert's `stash()` / `restore()`), as
//! operations of the parameter, in its order.

use crate::device::parameter::Parameter;
use crate::error::{DeviceError, DeviceErrorKind, Error};
use crate::future::Future;
use crate::trace;

impl<T: Send + 'static> Parameter<T> {
    /// Reads the value and pushes it on the parameter's stash (Concert's
    /// `param.stash()`), in the parameter's order: a
    /// [`restore`](Parameter::restore) asked for later writes it back.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] at once when the parameter cannot be both read
    /// and written; the read's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// let gap = Arc::new(Mutex::new(5.0_f64));
    /// let (read, write) = (gap.clone(), gap.clone());
    /// let p = concertina::Parameter::builder("gap")
    ///     .getter(move || *read.lock().unwrap())
    ///     .setter(move |mm| *write.lock().unwrap() = mm)
    ///     .build()?;
    /// p.stash();
    /// p.set(1.0);
    /// p.restore().result()?;
    /// assert_eq!(p.get().result()?, 5.0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn stash(&self) -> Future<()> {
        let (Some(getter), true) = (self.inner.getter.clone(), self.inner.setter.is_some()) else {
            return Future::failed(self.not_stashable());
        };
        let inner = self.inner.clone();
        let read = move || {
            let _span = trace::device_op(|| inner.actions.node.full_name(), "stash");
            crate::cancel::check_cancelled()?;
            let value = getter().map_err(|e| super::failed(&inner.actions.node, "read", e))?;
            inner.stashed.lock().push(value);
            Ok(())
        };
        self.inner.actions.submit(read)
    }

    /// Pops the last stashed value and writes it back (Concert's
    /// `param.restore()`), in the parameter's order, as a set does (the
    /// soft limits, the write protection, a stop when cancelled). A
    /// cancelled restore leaves the value on the stash.
    ///
    /// # Errors
    ///
    /// [`Error::Device`] when nothing is stashed, or as
    /// [`Parameter::set`].
    ///
    /// # Examples
    ///
    /// ```
    /// let p = concertina::Parameter::builder("x").getter(|| 1u8).setter(|_| {}).build()?;
    /// assert!(p.restore().result().is_err(), "nothing stashed");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn restore(&self) -> Future<()> {
        if self.inner.getter.is_none() || self.inner.setter.is_none() {
            return Future::failed(self.not_stashable());
        }
        if let Err(protected) = self.check_protection() {
            return Future::failed(protected);
        }
        let this = self.clone();
        self.write(move || {
            // Operations of the parameter run one at a time: nothing
            // stashes or restores between the pop and a push back.
            let popped = this.inner.stashed.lock().pop();
            let Some(value) = popped else {
                return Err(DeviceError::error(DeviceErrorKind::NothingStashed {
                    parameter: this.inner.actions.node.full_name(),
                }));
            };
            if let Err(refused) = this.check_set(&value) {
                this.inner.stashed.lock().push(value);
                return Err(refused);
            }
            Ok(value)
        })
    }

    fn not_stashable(&self) -> Error {
        let parameter = self.inner.actions.node.full_name();
        DeviceError::error(match self.inner.setter {
            None => DeviceErrorKind::NotWritable { parameter },
            Some(_) => DeviceErrorKind::NotReadable { parameter },
        })
    }
}
