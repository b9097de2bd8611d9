//! `.await` from async code: a `Future` is `IntoFuture`, with no executor
//! of ours; driven here by a minimal hand-written `block_on`.

mod common;

use std::future::{Future as _, IntoFuture};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use common::{pool, Gate, THREADED};
use concertina::{Error, Future};

struct Unpark {
    thread: Thread,
    wakes: AtomicUsize,
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Polls `fut` to completion on this thread; returns its output and the
/// number of times it returned `Pending`.
fn block_on<F: std::future::Future>(fut: F) -> (F::Output, usize) {
    let unpark = Arc::new(Unpark {
        thread: std::thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(unpark.clone());
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    let mut pendings = 0;
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return (v, pendings),
            Poll::Pending => {
                pendings += 1;
                std::thread::park();
            }
        }
    }
}

#[test]
fn awaiting_a_finished_future_is_ready_at_once() {
    let (out, pendings) = block_on(async { Future::ready(3).await });
    assert_eq!((out, pendings), (Ok(3), 0));
}

#[test]
fn awaiting_a_running_task_is_pending_then_woken_when_it_finishes() {
    for backend in THREADED {
        let pool = pool(backend, 1);
        let release = Gate::new();
        let r = release.clone();
        let f = pool.spawn(move || {
            r.wait();
            "measured"
        });
        let unpark = Arc::new(Unpark {
            thread: std::thread::current(),
            wakes: AtomicUsize::new(0),
        });
        let waker = Waker::from(unpark.clone());
        let mut cx = Context::from_waker(&waker);
        let mut awaiting = f.into_future();
        let mut awaiting = std::pin::Pin::new(&mut awaiting);
        assert!(
            awaiting.as_mut().poll(&mut cx).is_pending(),
            "{backend:?}: gated task is pending"
        );
        assert!(
            awaiting.as_mut().poll(&mut cx).is_pending(),
            "a second poll keeps one waker"
        );
        release.open();
        while unpark.wakes.load(Ordering::SeqCst) == 0 {
            std::thread::park();
        }
        assert_eq!(
            unpark.wakes.load(Ordering::SeqCst),
            1,
            "{backend:?}: woken exactly once"
        );
        assert_eq!(awaiting.as_mut().poll(&mut cx), Poll::Ready(Ok("measured")));
    }
}

#[test]
fn awaiting_surfaces_panics_and_cancellation() {
    let panicked = concertina::spawn(|| -> u8 { panic!("async caller sees this") });
    assert_eq!(
        block_on(panicked.into_future()).0,
        Err(Error::Panicked("async caller sees this".into()))
    );
    let cancelled: Future<u8> = Future::failed(Error::Cancelled);
    assert_eq!(block_on(async { cancelled.await }).0, Err(Error::Cancelled));
}

#[test]
fn many_awaits_in_one_async_block() {
    let (sum, _) = block_on(async {
        let mut sum = 0;
        for i in 0..20u32 {
            sum += concertina::spawn(move || i).await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..20).sum::<u32>());
}
