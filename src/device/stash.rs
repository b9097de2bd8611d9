//! Stashing and restoring a whole device (Concert's `device.stash()` /
//! `device.restore()`): every parameter that can be read and written.

use super::{Device, Role};
use crate::future::Future;

impl Device {
    /// Stashes every parameter that can be both read and written (see
    /// [`Parameter::stash`](crate::Parameter::stash)), each in its own
    /// order; the others are left alone. One future for all of them: done
    /// when every read is, failed with the first failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use concertina::{Device, Parameter};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let cell = |v: f64| Arc::new(Mutex::new(v));
    /// let axis = |name: &str, at: &Arc<Mutex<f64>>| {
    ///     let (r, w) = (at.clone(), at.clone());
    ///     Parameter::builder(name).getter(move || *r.lock().unwrap()).setter(move |v| *w.lock().unwrap() = v).build()
    /// };
    /// let (x, y) = (cell(1.0), cell(2.0));
    /// let stage = Device::builder("stage")
    ///     .parameter(axis("x", &x)?)
    ///     .parameter(axis("y", &y)?)
    ///     .parameter(Parameter::builder("temperature").getter(|| 293.0).build()?) // read-only: left alone
    ///     .build()?;
    /// stage.stash().result()?;
    /// stage.set("x", 5.0).result()?;
    /// stage.set("y", 6.0).result()?;
    /// stage.restore().result()?;
    /// assert_eq!((*x.lock().unwrap(), *y.lock().unwrap()), (1.0, 2.0));
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn stash(&self) -> Future<()> {
        self.stash_all(false)
    }

    /// Restores every parameter that can be both read and written, the
    /// last added first (see [`Parameter::restore`](crate::Parameter::restore)):
    /// one future for all of them, failed with the first failure (a
    /// parameter with nothing stashed among them).
    ///
    /// # Examples
    ///
    /// ```
    /// let gap = concertina::Parameter::builder("gap").getter(|| 1.0_f64).setter(|_| {}).build()?;
    /// let slits = concertina::Device::builder("slits").parameter(gap).build()?;
    /// assert!(slits.restore().result().is_err(), "nothing stashed");
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn restore(&self) -> Future<()> {
        self.stash_all(true)
    }

    fn stash_all(&self, restore: bool) -> Future<()> {
        let parameters = self
            .inner
            .members
            .iter()
            .filter(|e| e.role == Role::Parameter);
        let each: Vec<Future<()>> = match restore {
            false => parameters
                .filter_map(|e| e.erased.clone().stash(false))
                .collect(),
            true => parameters
                .rev()
                .filter_map(|e| e.erased.clone().stash(true))
                .collect(),
        };
        Future::all(each).then(|_| ())
    }
}
