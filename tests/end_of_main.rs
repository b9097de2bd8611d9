//! The end of `main`: `concertina::shutdown()` lets every task submitted to
//! the default pool finish, in a real child process that then returns.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::{child, say, SCENARIO};

#[test]
fn scenario_runner() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    assert_eq!(scenario, "detached");
    for i in 0..8 {
        // Detached: nobody waits for these futures.
        drop(concertina::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            say(format!("task {i} finished"));
        }));
    }
    let model = concertina::Instance::new(0u32);
    for _ in 0..3 {
        drop(model.spawn(|n| *n += 1));
    }
    drop(model.spawn(|n| say(format!("instance calls finished: {n}"))));
    concertina::shutdown();
    say("main returns");
}

#[test]
fn shutdown_at_the_end_of_main_lets_every_detached_task_finish() {
    for env in [&[][..], &[("CONCERTINA_DISABLE_ASYNC", "1")][..]] {
        let (lines, code) = child("detached", env);
        assert_eq!(code, Some(0), "{env:?}: {lines:?}");
        assert_eq!(lines.last().map(String::as_str), Some("main returns"));
        assert_eq!(lines.len(), 10, "{env:?}: {lines:?}");
        for i in 0..8 {
            assert!(lines.contains(&format!("task {i} finished")), "{lines:?}");
        }
        assert!(lines.contains(&"instance calls finished: 3".to_owned()));
    }
}
