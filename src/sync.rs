//! The synchronisation primitives of the crate, in one place:
//! `parking_lot` and `std` normally, loom's checked models under
//! `--cfg loom` (see docs/reliability.md). Both sides offer the same
//! (parking_lot-shaped) API. No other file names `parking_lot`.

#[cfg(not(loom))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize};

#[cfg(loom)]
pub(crate) use self::checked::{Condvar, Mutex, MutexGuard, RwLock};

/// The primitives of process-wide statics (the Ctrl-C registry, the
/// registry of live pools, the deadlock resolution): built in `const`
/// context, so parking_lot's in both modes. loom cannot model a static;
/// the models keep to per-object state, whose primitives are the ones
/// above.
pub(crate) mod process {
    pub(crate) use parking_lot::{Condvar, Mutex};
}
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize};

/// `thread_local!`, declared through loom under `--cfg loom` (loom runs its
/// threads as coroutines of one OS thread, so `std`'s would be shared).
#[cfg(not(loom))]
macro_rules! task_local {
    ($($tokens:tt)+) => { ::std::thread_local! { $($tokens)+ } };
}

#[cfg(loom)]
macro_rules! task_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $ty:ty = const { $init:expr } $(;)?) => {
        ::loom::thread_local! { $(#[$attr])* $vis static $name: $ty = $init; }
    };
}
pub(crate) use task_local;

#[cfg(loom)]
pub(crate) use loom::thread::ThreadId;
/// The running thread's identity (loom's threads share one OS thread).
#[cfg(not(loom))]
pub(crate) use std::thread::ThreadId;

/// The identity of the running thread.
#[inline]
pub(crate) fn thread_id() -> ThreadId {
    #[cfg(not(loom))]
    return std::thread::current().id();
    #[cfg(loom)]
    return loom::thread::current().id();
}

/// Spins and yields before a wait parks; loom explores the park alone.
#[inline]
pub(crate) fn spin_then_yield() -> bool {
    !cfg!(loom)
}

#[cfg(loom)]
mod checked {
    use std::ops::{Deref, DerefMut};
    use std::time::Instant;

    /// loom's mutex with parking_lot's API (no poisoning, guard by `&mut`).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock().ok().map(|held| MutexGuard(Some(held)))
        }

        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0
                .as_ref()
                .expect("a guard holds its lock until dropped")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0
                .as_mut()
                .expect("a guard holds its lock until dropped")
        }
    }

    /// loom's read-write lock with parking_lot's API (no poisoning).
    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            RwLock(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// loom's condvar with parking_lot's API. loom has no clock: a timed
    /// wait is an untimed one (the models wait without deadlines).
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    pub(crate) struct WaitTimeoutResult;

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            false
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let held = guard
                .0
                .take()
                .expect("a guard holds its lock until dropped");
            guard.0 = Some(self.0.wait(held).unwrap_or_else(|e| e.into_inner()));
        }

        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult
        }

        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }

        pub(crate) fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _timeout: std::time::Duration,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult
        }

        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            false
        }
    }
}
