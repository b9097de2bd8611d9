//! A simulated motor with a physical model, for the examples and the tests:
//! its position evolves over time at a set speed, a stop decelerates it to
//! rest, and it keeps its own log — which is how the tests check that two
//! moves never overlap and that nothing moves after a stop.

#![allow(dead_code)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use concertina::{Error, Parameter, Pool};

/// What the motor did, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A move towards `target` began at `from`.
    Start { target: f64, from: f64 },
    /// A move ended at rest at `at`; `arrived` when it reached its target.
    End { at: f64, arrived: bool },
    /// A stop was asked for at `at` (moving or not).
    Stop { at: f64 },
    /// A move began while another one was still under way: real hardware
    /// must never see this.
    Overlap,
}

#[derive(Default)]
struct State {
    position: f64,
    moving: usize,
    stop: bool,
    log: Vec<Event>,
}

/// A motor that moves `step` millimetres every `tick`.
#[derive(Clone)]
pub struct SimMotor {
    state: Arc<(Mutex<State>, Condvar)>,
    step: f64,
    tick: Duration,
}

impl SimMotor {
    pub fn new(step: f64, tick: Duration) -> SimMotor {
        SimMotor {
            state: Arc::default(),
            step,
            tick,
        }
    }

    pub fn position(&self) -> f64 {
        self.state.0.lock().unwrap().position
    }

    /// True while a move is under way.
    pub fn is_moving(&self) -> bool {
        self.state.0.lock().unwrap().moving > 0
    }

    pub fn log(&self) -> Vec<Event> {
        self.state.0.lock().unwrap().log.clone()
    }

    /// Moves to `target`; returns when it is there, or at rest after a stop
    /// (or when the task that runs it was cancelled: the controller then
    /// decelerates on its own).
    pub fn move_to(&self, target: f64) {
        let (lock, cond) = &*self.state;
        {
            let mut s = lock.lock().unwrap();
            if s.moving > 0 {
                s.log.push(Event::Overlap);
            }
            s.moving += 1;
            s.stop = false;
            let from = s.position;
            s.log.push(Event::Start { target, from });
        }
        let mut speed = self.step;
        loop {
            std::thread::sleep(self.tick);
            let mut s = lock.lock().unwrap();
            if s.stop || concertina::cancelled() {
                // Decelerate: half the speed each tick, until at rest.
                speed /= 2.0;
            }
            let left = target - s.position;
            let arrived = left.abs() <= speed;
            if arrived || speed < self.step / 8.0 {
                if arrived {
                    s.position = target;
                }
                s.moving -= 1;
                let at = s.position;
                s.log.push(Event::End { at, arrived });
                cond.notify_all();
                return;
            }
            s.position += speed.copysign(left);
        }
    }

    /// Asks for a stop and waits until the motor is at rest.
    pub fn stop(&self) {
        let (lock, cond) = &*self.state;
        let mut s = lock.lock().unwrap();
        let at = s.position;
        s.log.push(Event::Stop { at });
        s.stop = true;
        while s.moving > 0 {
            s = cond.wait(s).unwrap();
        }
    }

    /// The motor's `position` parameter on `pool`: moves through
    /// [`move_to`], stops through [`stop`], soft limits ±`limit`, reads
    /// beside a move.
    pub fn parameter(&self, limit: f64, pool: &Pool) -> Result<Parameter<f64>, Error> {
        let (read, write, halt) = (self.clone(), self.clone(), self.clone());
        Parameter::builder("position")
            .getter(move || read.position())
            .setter(move |mm| write.move_to(mm))
            .on_cancel(move || halt.stop())
            .limits(-limit, limit)
            .unit("mm")
            .concurrent_reads()
            .pool(pool)
            .build()
    }
}

/// Checks the log of a motor: no overlap, and every move that began ended
/// before the next began.
pub fn check_log(log: &[Event]) -> Result<(), String> {
    let mut moving = false;
    for (i, event) in log.iter().enumerate() {
        match event {
            Event::Overlap => return Err(format!("event {i}: two moves at once in {log:?}")),
            Event::Start { .. } if moving => {
                return Err(format!("event {i}: a move began during another in {log:?}"))
            }
            Event::Start { .. } => moving = true,
            Event::End { .. } => moving = false,
            Event::Stop { .. } => {}
        }
    }
    Ok(())
}
