//! Decorating: `asynchronous(f)` and `#[asynchronous]` turn blocking
//! functions and methods into ones that return a `Future`.

mod common;

use std::sync::{Arc, OnceLock};

use concertina::{Backend, Error, Future, Pool};

#[concertina::asynchronous]
fn square(x: u32) -> u32 {
    if x > 1000 {
        return 0; // an early return inside the body stays a return of the body
    }
    x * x
}

#[concertina::asynchronous]
fn sum_pair((a, b): (u32, u32), mut scale: u32) -> u32 {
    scale += 0;
    (a + b) * scale
}

#[concertina::asynchronous]
fn parse_count<T: std::str::FromStr + Send + 'static>(text: String) -> Option<T> {
    text.parse().ok()
}

fn detector_pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        Pool::builder()
            .threads(1)
            .name("detectors")
            .backend(Backend::Crossbeam)
            .build()
            .unwrap()
    })
}

#[concertina::asynchronous(pool = detector_pool())]
fn thread_name() -> String {
    std::thread::current().name().unwrap_or_default().to_owned()
}

#[derive(Clone)]
struct Motor {
    name: Arc<str>,
    speed: f64,
}

impl Motor {
    /// Moves by `delta`; returns the duration of the move.
    #[concertina::asynchronous]
    fn move_by(&self, delta: f64) -> f64 {
        delta.abs() / self.speed
    }

    #[concertina::asynchronous]
    fn into_name(self) -> String {
        self.name.to_string()
    }
}

#[test]
fn a_decorated_fn_returns_a_future_and_keeps_a_blocking_form() {
    let f: Future<u32> = square(12);
    assert_eq!(f.result(), Ok(144));
    assert_eq!(square(5000).result(), Ok(0));
    assert_eq!(square_blocking(3), 9);
}

#[test]
fn patterns_mut_arguments_and_generics_pass_through() {
    assert_eq!(sum_pair((2, 3), 10).result(), Ok(50));
    assert_eq!(parse_count::<u64>("123".into()).result(), Ok(Some(123)));
    assert_eq!(parse_count::<u64>("x".into()).result(), Ok(None));
}

#[test]
fn the_pool_argument_selects_the_pool() {
    let name = thread_name().result().unwrap();
    assert_eq!(name, "concertina-detectors-0");
}

#[test]
fn methods_clone_their_receiver_into_the_task() {
    let motor = Motor {
        name: "m1".into(),
        speed: 2.0,
    };
    let a = motor.move_by(-4.0);
    let b = motor.move_by(1.0);
    assert_eq!((a.result(), b.result()), (Ok(2.0), Ok(0.5)));
    assert_eq!(motor.move_by_blocking(2.0), 1.0);
    assert_eq!(motor.into_name().result(), Ok("m1".to_owned()));
}

#[test]
fn the_asynchronous_function_decorates_closures() {
    let offset = 10;
    let shift = concertina::asynchronous(move |x: i32| x + offset);
    let futures: Vec<_> = (0..5).map(&shift).collect();
    let values: Vec<i32> = futures.into_iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(values, [10, 11, 12, 13, 14]);
    let shift2 = shift.clone();
    assert_eq!(shift2(1).result(), Ok(11));
}

#[test]
fn a_decorated_panic_reaches_the_handle() {
    let failing = concertina::asynchronous(|code: u8| -> u8 { panic!("error code {code}") });
    assert_eq!(
        failing(3).result(),
        Err(Error::Panicked("error code 3".into()))
    );
}
