//! A pipelined scan under a lock, beside the same scan unlocked, in the
//! same run: each frame starts the camera's readout of frame n and the
//! stage's move to n + 1, then waits for each in turn (plain waits). Under
//! `lock!(stage, camera)` the two must overlap as they do unlocked: the
//! target is a ratio of 1. Also: the share of readouts that overlapped a
//! move, from the devices' own records.
//!
//! Run: `cargo bench --bench scan` (`SCAN_FRAMES`, 20 unless set; the
//! readout and the move take 5 ms each).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use concertina::{Backend, Device, Parameter, Pool};

const STEP: Duration = Duration::from_millis(5);

struct Rig {
    stage: Parameter<f64>,
    camera: Parameter<u32>,
    stage_device: Device,
    camera_device: Device,
    /// Moves under way now; readouts that saw one.
    moving: Arc<AtomicUsize>,
    overlapped: Arc<AtomicUsize>,
}

fn rig() -> Rig {
    let pool = Pool::builder()
        .backend(Backend::Crossbeam)
        .threads(2)
        .build()
        .unwrap();
    let moving = Arc::new(AtomicUsize::new(0));
    let overlapped = Arc::new(AtomicUsize::new(0));
    let m = moving.clone();
    let stage = Parameter::builder("position")
        .setter(move |_: f64| {
            m.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(STEP);
            m.fetch_sub(1, Ordering::SeqCst);
        })
        .pool(&pool)
        .build()
        .unwrap();
    let (m, o) = (moving.clone(), overlapped.clone());
    let camera = Parameter::builder("frame")
        .setter(move |_: u32| {
            let mut saw = false;
            for _ in 0..5 {
                saw |= m.load(Ordering::SeqCst) > 0;
                std::thread::sleep(STEP / 5);
            }
            if saw {
                o.fetch_add(1, Ordering::SeqCst);
            }
        })
        .pool(&pool)
        .build()
        .unwrap();
    let stage_device = Device::builder("stage")
        .parameter(stage.clone())
        .build()
        .unwrap();
    let camera_device = Device::builder("camera")
        .parameter(camera.clone())
        .build()
        .unwrap();
    Rig {
        stage,
        camera,
        stage_device,
        camera_device,
        moving,
        overlapped,
    }
}

/// The scan's time, and the share of readouts that overlapped a move.
fn scan(rig: &Rig, frames: u32, locked: bool) -> (Duration, f64) {
    rig.overlapped.store(0, Ordering::SeqCst);
    let started = Instant::now();
    let guard = locked.then(|| concertina::lock!(rig.stage_device, rig.camera_device).unwrap());
    for frame in 0..frames {
        let readout = rig.camera.set(frame);
        let step = rig.stage.set(f64::from(frame + 1));
        readout.result().unwrap();
        step.result().unwrap();
    }
    drop(guard);
    let took = started.elapsed();
    assert_eq!(rig.moving.load(Ordering::SeqCst), 0);
    let share = rig.overlapped.load(Ordering::SeqCst) as f64 / f64::from(frames);
    (took, share)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let frames: u32 = std::env::var("SCAN_FRAMES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let rig = rig();
    let (mut unlocked, mut locked, mut shares) = (Vec::new(), Vec::new(), (Vec::new(), Vec::new()));
    for _ in 0..7 {
        let (t, share) = scan(&rig, frames, false);
        unlocked.push(t.as_secs_f64() * 1e3);
        shares.0.push(share);
        let (t, share) = scan(&rig, frames, true);
        locked.push(t.as_secs_f64() * 1e3);
        shares.1.push(share);
    }
    let (u, l) = (median(unlocked), median(locked));
    println!("pipelined scan of {frames} frames (5 ms readout, 5 ms move), medians of 7:");
    println!(
        "  unlocked: {u:7.1} ms, readouts overlapping a move {:3.0} %",
        median(shares.0) * 100.0
    );
    println!(
        "  locked:   {l:7.1} ms, readouts overlapping a move {:3.0} %  ({:.2}x the unlocked scan)",
        median(shares.1) * 100.0,
        l / u
    );
}
