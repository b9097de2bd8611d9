//! [`RemoteInstance`]: an instance in a worker, its calls (one at a time,
//! after a dependency, vectorised) and its end.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::Error;
use crate::error::{RemoteFailure, RemoteFailureKind, WorkerLost};
use crate::future::Future;
use crate::remote::frame::{Args, ToWorker};
use crate::remote::link::{refusal, Link};
use crate::remote::server::WAIT_METHOD;
use crate::remote::{encode, Code, RemoteBuilder, Worker};

/// An instance of a [`Code`] in a worker process: calls run there one at a
/// time, in the order made, each returning a [`Future`]. A call that panics
/// fails alone with [`Error::Panicked`]; a worker that dies fails every
/// pending and later call with [`Error::WorkerLost`]. Cancelling a call's
/// future (or a Ctrl-C while waiting on it) reaches the worker: a queued
/// call is dropped, a running one sees [`cancelled()`](crate::cancelled)
/// turn true. The last handle dropped frees the instance in its worker
/// (once the calls made have run), and stops the worker when nothing else
/// holds it.
///
/// # Examples
///
/// See [the module](mod@crate::remote): the worker is the executable itself,
/// so the example needs a `main` that calls
/// [`serve_if_worker`](crate::remote::serve_if_worker) first.
///
/// ```no_run
/// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
/// # struct Model;
/// # impl Code for Model {
/// #     const NAME: &'static str = "Model";
/// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
/// #     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
/// #         remote::encode(&remote::decode::<(f64,)>(a)?.0)
/// #     }
/// # }
/// let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
/// let model = RemoteInstance::start::<Model>(&())?;
/// let t = model.spawn::<f64>("evolve", &(1.5_f64,));
/// assert_eq!(t.result()?, 1.5);
/// # Ok::<(), concertina::Error>(())
/// ```
#[derive(Clone)]
pub struct RemoteInstance {
    pub(super) handle: Arc<Handle>,
}

/// An instance in its worker: dropped, it is freed there.
pub(super) struct Handle {
    pub(super) link: Arc<Link>,
    pub(super) instance: u32,
    pub(super) code: &'static str,
}

impl RemoteInstance {
    /// Starts a worker process (this executable again, in worker mode) and
    /// makes code `C` there from `args` (its constructor's arguments).
    ///
    /// # Errors
    ///
    /// [`Error::WorkerLost`] when the worker cannot be started or dies
    /// before it is ready (with its stderr); [`Error::Remote`] when it
    /// serves no code `C` or refuses the arguments.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
    /// # }
    /// let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// assert!(model.pid() > 0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn start<C: Code>(args: &impl Serialize) -> Result<RemoteInstance, Error> {
        Worker::start()?.make::<C>(args)
    }

    /// A builder, to name the worker executable or set its environment.
    ///
    /// # Examples
    ///
    /// ```
    /// let builder = concertina::remote::RemoteInstance::builder();
    /// # let _ = builder;
    /// ```
    pub fn builder() -> RemoteBuilder {
        RemoteBuilder::default()
    }

    /// The worker this instance lives in: [`Worker::make`] puts another
    /// instance beside it.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     const REENTRANT: bool = true;
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let first = RemoteInstance::start::<Model>(&())?;
    /// let second = first.worker().make::<Model>(&())?;
    /// assert_eq!(first.pid(), second.pid());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn worker(&self) -> Worker {
        Worker {
            link: self.handle.link.clone(),
        }
    }

    /// Calls `method` with `args` in the worker, after every call made
    /// before it; the future of its result.
    ///
    /// # Errors
    ///
    /// The future fails with [`Error::Panicked`] when the method panicked
    /// (the worker lives on), [`Error::Remote`] for an unknown method or
    /// arguments or a result that do not decode, and
    /// [`Error::WorkerLost`] when the worker is gone.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
    /// #         remote::encode(&remote::decode::<(u32,)>(a)?.0)
    /// #     }
    /// # }
    /// let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// let calls: Vec<_> = (0..3u32).map(|i| model.spawn::<u32>("echo", &(i,))).collect();
    /// assert_eq!(concertina::wait_all(calls), [Ok(0), Ok(1), Ok(2)]);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn spawn<R>(&self, method: &str, args: &impl Serialize) -> Future<R>
    where
        R: DeserializeOwned + Send + 'static,
    {
        self.send_call(method, args, false, None).0
    }

    /// As [`spawn`](RemoteInstance::spawn), the result decoded into `into`
    /// (see [`decode_into`](crate::remote::decode_into)): a `Vec` there
    /// keeps its memory, so that a large array coming back again and again
    /// lands in memory already touched rather than in a new allocation
    /// each time (which costs more to touch than the bytes cost to move).
    /// A typed client made by `#[concertina::remote]` has it as
    /// `<method>_into`.
    ///
    /// # Errors
    ///
    /// Those of [`RemoteInstance::spawn`]; `into` is dropped with the
    /// failure.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
    /// #         remote::encode(&vec![0.5_f64; remote::decode::<(usize,)>(a)?.0])
    /// #     }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// let mut field = Vec::<f64>::new();
    /// for _ in 0..10 {
    ///     // One allocation for the ten steps' fields.
    ///     field = model.spawn_into("field", &(1usize << 20,), field).result()?;
    /// }
    /// assert_eq!(field.len(), 1 << 20);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn spawn_into<R>(&self, method: &str, args: &impl Serialize, into: R) -> Future<R>
    where
        R: DeserializeOwned + Send + 'static,
    {
        self.send_call(method, args, false, Some(into)).0
    }

    /// Calls `method` with `args` and waits for its result: a synchronous
    /// call, after every call made before it (as [`Instance::call`](crate::Instance::call),
    /// and AMUSE's plain call): `spawn(method, args).result()`.
    ///
    /// # Errors
    ///
    /// Those of [`RemoteInstance::spawn`]; [`Error::Interrupted`] on Ctrl-C.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
    /// #         remote::encode(&remote::decode::<(f64,)>(a)?.0)
    /// #     }
    /// # }
    /// let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// let t: f64 = model.call("evolve", &(2.5_f64,))?;
    /// assert_eq!(t, 2.5);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn call<R>(&self, method: &str, args: &impl Serialize) -> Result<R, Error>
    where
        R: DeserializeOwned + Send + 'static,
    {
        self.spawn(method, args).result()
    }

    /// Calls `method` once `dependency` has finished (AMUSE's
    /// `async_dependency`, chaining codes: the ocean's step after the
    /// atmosphere's). The call takes its place in this instance's order
    /// now: the calls made after it run after it, so they wait for the
    /// dependency too. The dependency's value is not used (pass what the
    /// call needs in `args`, or chain with [`Future::then`]).
    ///
    /// # Errors
    ///
    /// Those of [`RemoteInstance::spawn`]; when the dependency fails, the
    /// call is not made and its future fails with
    /// [`Error::DependencyFailed`] carrying the cause; the instance goes on.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
    /// #         remote::encode(&remote::decode::<(f64,)>(a)?.0)
    /// #     }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let atmosphere = RemoteInstance::start::<Model>(&())?;
    /// let ocean = RemoteInstance::start::<Model>(&())?;
    /// let air = atmosphere.spawn::<f64>("evolve", &(1.0,));
    /// let sea = ocean.spawn_after::<f64, _>(air.when_done(), "evolve", &(1.0,));
    /// assert_eq!(sea.result()?, 1.0);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn spawn_after<R, D>(
        &self,
        dependency: Future<D>,
        method: &str,
        args: &impl Serialize,
    ) -> Future<R>
    where
        R: DeserializeOwned + Send + 'static,
        D: Send + 'static,
    {
        let (future, id) = self.send_call::<R>(method, args, true, None);
        let Some(id) = id else {
            return future;
        };
        let task = future.task().cloned();
        let writer = Arc::downgrade(&self.handle.link.writer);
        dependency.on_done(move |outcome| {
            let mut go = match outcome {
                Ok(_) => ToWorker::Go { id },
                Err(cause) => {
                    if let Some(task) = &task {
                        task.fail(Error::DependencyFailed(Box::new(cause.clone())));
                    }
                    // The worker drops it; its reply finds it decided.
                    ToWorker::Cancel { id }
                }
            };
            if let Some(writer) = writer.upgrade() {
                let _ = writer.lock().send(&mut go);
            }
        });
        future
    }

    /// Waits until every call made on this instance before this one has
    /// finished (AMUSE's synchronous call waiting for the queued ones).
    ///
    /// # Errors
    ///
    /// [`Error::WorkerLost`] when the worker is gone; `Interrupted` on a
    /// Ctrl-C. Failures of the calls themselves are reported at their own
    /// futures, not here.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { remote::encode(&()) }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// let step = model.spawn::<()>("step", &());
    /// model.wait()?;
    /// assert!(step.done());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn wait(&self) -> Result<(), Error> {
        self.spawn::<()>(WAIT_METHOD, &()).result()
    }

    /// Sends one call (one that waits for the parent's go, with `after`):
    /// its future, and its id unless it failed at once.
    fn send_call<R>(
        &self,
        method: &str,
        args: &impl Serialize,
        after: bool,
        into: Option<R>,
    ) -> (Future<R>, Option<u64>)
    where
        R: DeserializeOwned + Send + 'static,
    {
        let args = match encode(args) {
            Ok(args) => args,
            Err(e) => return (Future::failed(Error::Remote(e.into())), None),
        };
        // The writer is held from the id to the send, so that calls reach
        // the worker in the order of their ids.
        let link = &self.handle.link;
        let mut writer = link.writer.lock();
        let (id, mut futures) = match link.register::<R>(1, "a remote call of", method, into) {
            Ok(registered) => registered,
            Err(error) => return (Future::failed(error), None),
        };
        let (instance, method, args) = (self.handle.instance, method.to_owned(), Args::new(args));
        let mut call = if after {
            ToWorker::CallAfter {
                instance,
                id,
                method,
                args,
            }
        } else {
            ToWorker::Call {
                instance,
                id,
                method,
                args,
            }
        };
        let refused = refusal(writer.send(&mut call));
        drop(writer);
        call.recycle();
        let refused_now = refused.is_some();
        link.refuse(refused, id, 1);
        let future = futures.pop().expect("one call registered");
        (future, (!refused_now).then_some(id))
    }

    /// Calls `method` once for each of `args` (each the arguments of one
    /// call), all in one message: small calls in bulk cost one message, not
    /// one each. The futures, in the order given, run after every call made
    /// before; each can be cancelled on its own. (A code made by
    /// `#[concertina::remote]` also has `<method>_many`: the calls as one
    /// call over arrays, with one future for all, which costs per byte.)
    ///
    /// # Errors
    ///
    /// Each future fails as those of [`RemoteInstance::spawn`]; all of them
    /// fail with [`Error::Remote`] when an argument cannot be encoded.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, a: &[u8]) -> Result<Vec<u8>, RemoteError> {
    /// #         remote::encode(&(remote::decode::<(u32,)>(a)?.0 * 2))
    /// #     }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// let doubled = model.spawn_each::<u32, _>("double", (0..1000u32).map(|i| (i,)));
    /// assert_eq!(concertina::try_wait_all(doubled).unwrap()[999], 1998);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    #[must_use = "dropping the futures detaches the calls"]
    pub fn spawn_each<R, A>(
        &self,
        method: &str,
        args: impl IntoIterator<Item = A>,
    ) -> Vec<Future<R>>
    where
        R: DeserializeOwned + Send + 'static,
        A: Serialize,
    {
        let encoded: Vec<_> = args.into_iter().map(|a| encode(&a)).collect();
        let failed = |error: Error| {
            (0..encoded.len())
                .map(|_| Future::failed(error.clone()))
                .collect::<Vec<_>>()
        };
        if let Some((at, Err(e))) = encoded.iter().enumerate().find(|(_, a)| a.is_err()) {
            // None is sent: one call that cannot be made fails them all.
            let failure = RemoteFailure::new(
                RemoteFailureKind::Encode,
                format!("the arguments of call {at}: {e}"),
            );
            return failed(Error::Remote(failure));
        }
        if encoded.is_empty() {
            return Vec::new();
        }
        let link = &self.handle.link;
        let mut writer = link.writer.lock();
        let (first, futures) =
            match link.register::<R>(encoded.len(), "a remote call of", method, None) {
                Ok(registered) => registered,
                Err(error) => return failed(error),
            };
        let mut calls = ToWorker::Calls {
            instance: self.handle.instance,
            first,
            method: method.to_owned(),
            args: encoded.into_iter().flatten().collect(),
        };
        let count = futures.len();
        let refused = refusal(writer.send(&mut calls));
        drop(writer);
        link.refuse(refused, first, count);
        futures
    }

    /// The worker's process id.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// println!("model runs in process {}", model.pid());
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.handle.link.pid
    }

    /// Why the worker is gone, once it is.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use concertina::remote::{self, Code, RemoteError, RemoteInstance};
    /// # struct Model;
    /// # impl Code for Model {
    /// #     const NAME: &'static str = "Model";
    /// #     fn construct(_: &[u8]) -> Result<Self, RemoteError> { Ok(Model) }
    /// #     fn dispatch(&mut self, m: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> { Err(RemoteError::unknown_method(m)) }
    /// # }
    /// # let _session = remote::serve_if_worker(&[remote::entry::<Model>()]);
    /// let model = RemoteInstance::start::<Model>(&())?;
    /// assert_eq!(model.lost(), None);
    /// # Ok::<(), concertina::Error>(())
    /// ```
    pub fn lost(&self) -> Option<WorkerLost> {
        self.handle.link.state.lock().lost.clone()
    }
}

impl fmt::Debug for RemoteInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.handle.link.state.lock();
        f.debug_struct("RemoteInstance")
            .field("code", &self.handle.code)
            .field("instance", &self.handle.instance)
            .field("pid", &self.handle.link.pid)
            .field("pending", &state.pending.len())
            .field("lost", &state.lost)
            .finish()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut free = ToWorker::Free {
            instance: self.instance,
        };
        let _ = self.link.writer.lock().send(&mut free);
    }
}
