//! Process-wide configuration: the default pool from `CONCERTINA_*`
//! variables and `configure()`. Each case runs in a child process (this
//! test binary re-run with one scenario), since the default pool is built
//! once per process.

mod common;

use common::{said, scenario_command, SCENARIO};
use concertina::{Backend, Error, Pool};

/// Runs `scenario` in a child process with exactly `vars` set among the
/// `CONCERTINA_*` variables; returns what it said (panics on failure).
fn child(scenario: &str, vars: &[(&str, &str)]) -> Vec<String> {
    let out = scenario_command(scenario, vars).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "scenario {scenario} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().filter_map(said).collect()
}

/// The child's side: does nothing unless started by `child`.
#[test]
fn scenario_runner() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let say = |s: String| println!("> {s}");
    match scenario.as_str() {
        "spawn" => {
            let caller = std::thread::current().id();
            let f = concertina::spawn(move || std::thread::current().id() == caller);
            say(format!("done_at_return={}", f.done()));
            match f.result() {
                Ok(inline) => say(format!("inline={inline}")),
                Err(e) => say(format!("error={e}")),
            }
            match concertina::default_pool() {
                Ok(pool) => say(format!(
                    "pool={:?}/{}/{}",
                    pool.backend(),
                    pool.threads(),
                    pool.name()
                )),
                Err(Error::Config(e)) => say(format!("variable={:?}", e.variable())),
                Err(e) => say(format!("other={e}")),
            }
        }
        "ctrlc" => {
            say(format!("before={}", concertina::interrupt::handles_ctrlc()));
            let r = concertina::configure(Pool::builder().ctrlc(false).threads(1));
            say(format!(
                "configure={r:?} handler={}",
                concertina::interrupt::handles_ctrlc()
            ));
            let _pool = Pool::builder().threads(1).ctrlc(true).build().unwrap();
            say(format!(
                "explicit pool handler={}",
                concertina::interrupt::handles_ctrlc()
            ));
        }
        "builder" => match Pool::builder().build() {
            Ok(pool) => say(format!("backend={:?}", pool.backend())),
            Err(e) => say(format!("error={e}")),
        },
        "explicit_values" => {
            let explicit = Pool::builder()
                .threads(2)
                .backend(Backend::Crossbeam)
                .build()
                .map(|p| (p.backend(), p.threads()));
            say(format!("explicit={explicit:?}"));
            let inline = Pool::builder()
                .threads(0)
                .backend(Backend::Inline)
                .build()
                .map(|p| (p.backend(), p.threads()));
            say(format!("inline threads(0)={inline:?}"));
        }
        "same_errors" => {
            let zero = Pool::builder().threads(0).build().map(|p| p.backend());
            say(format!(
                "threads(0)={}",
                zero.map_or_else(|e| e.to_string(), |b| format!("{b:?}"))
            ));
            let unset = Pool::builder().build().map(|p| p.backend());
            say(format!(
                "unset={}",
                unset.map_or_else(|e| e.to_string(), |b| format!("{b:?}"))
            ));
        }
        "explicit_backend" => {
            let pool = Pool::builder()
                .backend(Backend::Crossbeam)
                .threads(1)
                .build();
            say(format!("backend={:?}", pool.map(|p| p.backend())));
        }
        "configure_first" => {
            let r = concertina::configure(Pool::builder().threads(3).backend(Backend::Crossbeam));
            say(format!("configure={r:?}"));
            let pool = concertina::default_pool().unwrap();
            say(format!(
                "pool={:?}/{}/{}",
                pool.backend(),
                pool.threads(),
                pool.name()
            ));
            let again = concertina::configure(Pool::builder().threads(1));
            say(format!("again={}", again.unwrap_err()));
            say(format!(
                "threads_after={}",
                concertina::default_pool().unwrap().threads()
            ));
        }
        "configure_late" => {
            concertina::spawn(|| ()).result().unwrap();
            say(format!(
                "late={}",
                concertina::configure(Pool::builder().threads(2)).unwrap_err()
            ));
        }
        "configure_bad" => {
            let r = concertina::configure(Pool::builder().threads(0));
            say(format!("bad={}", r.unwrap_err()));
            let r = concertina::configure(Pool::builder().threads(2).backend(Backend::Rayon));
            say(format!("retry={r:?}"));
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn the_default_pool_follows_concertina_threads_and_backend() {
    let out = child(
        "spawn",
        &[
            ("CONCERTINA_THREADS", "3"),
            ("CONCERTINA_BACKEND", "crossbeam"),
        ],
    );
    assert_eq!(out[1], "inline=false");
    assert_eq!(out[2], "pool=Crossbeam/3/default");
}

#[test]
fn disable_async_runs_every_task_inline_and_still_returns_futures() {
    let out = child(
        "spawn",
        &[
            ("CONCERTINA_DISABLE_ASYNC", "1"),
            ("CONCERTINA_BACKEND", "crossbeam"),
        ],
    );
    assert_eq!(
        out,
        [
            "done_at_return=true",
            "inline=true",
            "pool=Inline/0/default"
        ]
    );
    let out = child("builder", &[("CONCERTINA_DISABLE_ASYNC", "true")]);
    assert_eq!(out, ["backend=Inline"], "unset backends follow the switch");
    let out = child("explicit_backend", &[("CONCERTINA_DISABLE_ASYNC", "1")]);
    assert_eq!(out, ["backend=Ok(Crossbeam)"], "an explicit backend wins");
    let out = child("spawn", &[("CONCERTINA_DISABLE_ASYNC", "0")]);
    assert_eq!(out[1], "inline=false");
}

#[test]
fn a_bad_variable_fails_every_spawn_with_an_error_naming_it() {
    for (var, value, accepted) in [
        (
            "CONCERTINA_THREADS",
            "lots",
            "a whole number from 1 to 4096",
        ),
        ("CONCERTINA_THREADS", "0", "a whole number from 1 to 4096"),
        (
            "CONCERTINA_BACKEND",
            "tokio",
            "one of rayon, crossbeam, inline",
        ),
        (
            "CONCERTINA_DISABLE_ASYNC",
            "2",
            "one of 1, 0, true, false, yes, no, on, off",
        ),
        (
            "CONCERTINA_CTRLC",
            "please",
            "one of 1, 0, true, false, yes, no, on, off",
        ),
    ] {
        let out = child("spawn", &[(var, value)]);
        assert_eq!(
            out,
            [
                "done_at_return=true".to_owned(),
                format!("error=invalid value {value:?} for {var}: expected {accepted}"),
                format!("variable=Some({var:?})"),
            ]
        );
        // Every pool reads each of them, CONCERTINA_CTRLC included (any
        // pool relies on the Ctrl-C handler).
        let out = child("builder", &[(var, value)]);
        assert_eq!(
            out,
            [format!(
                "error=invalid value {value:?} for {var}: expected {accepted}"
            )]
        );
    }
}

#[test]
fn a_program_gets_the_same_configuration_errors_with_async_disabled() {
    for disabled in ["0", "1"] {
        let out = child("same_errors", &[("CONCERTINA_DISABLE_ASYNC", disabled)]);
        assert_eq!(
            out[0],
            "threads(0)=thread count 0 is not accepted: expected a whole number from 1 to 4096",
            "CONCERTINA_DISABLE_ASYNC={disabled}"
        );
        for (var, value, accepted) in [
            ("CONCERTINA_THREADS", "abc", "a whole number from 1 to 4096"),
            (
                "CONCERTINA_BACKEND",
                "tokio",
                "one of rayon, crossbeam, inline",
            ),
        ] {
            let out = child(
                "same_errors",
                &[("CONCERTINA_DISABLE_ASYNC", disabled), (var, value)],
            );
            assert_eq!(
                out[1],
                format!("unset=invalid value {value:?} for {var}: expected {accepted}"),
                "CONCERTINA_DISABLE_ASYNC={disabled}"
            );
            let out = child(
                "spawn",
                &[("CONCERTINA_DISABLE_ASYNC", disabled), (var, value)],
            );
            assert_eq!(out[2], format!("variable=Some({var:?})"));
        }
    }
}

#[test]
fn an_explicit_builder_value_wins_over_a_bad_variable() {
    let out = child("explicit_values", &[("CONCERTINA_THREADS", "abc")]);
    assert_eq!(
        out,
        [
            "explicit=Ok((Crossbeam, 2))",
            "inline threads(0)=Ok((Inline, 0))"
        ]
    );
    let out = child(
        "explicit_values",
        &[
            ("CONCERTINA_DISABLE_ASYNC", "maybe"),
            ("CONCERTINA_BACKEND", "tokio"),
        ],
    );
    assert_eq!(
        out,
        [
            "explicit=Ok((Crossbeam, 2))",
            "inline threads(0)=Ok((Inline, 0))"
        ]
    );
}

#[test]
fn configure_before_first_use_applies_and_a_second_call_is_refused() {
    let out = child("configure_first", &[]);
    assert_eq!(
        out,
        [
            "configure=Ok(())",
            "pool=Crossbeam/3/default",
            "again=the default pool is already initialised: configure() must be called once, before its first use",
            "threads_after=3",
        ]
    );
}

#[test]
fn configure_after_first_use_is_a_clear_error() {
    let out = child("configure_late", &[]);
    assert_eq!(
        out,
        ["late=the default pool is already initialised: configure() must be called once, before its first use"]
    );
}

#[test]
fn a_refused_configure_leaves_the_default_pool_unconfigured() {
    let out = child("configure_bad", &[]);
    assert_eq!(
        out,
        [
            "bad=thread count 0 is not accepted: expected a whole number from 1 to 4096",
            "retry=Ok(())"
        ]
    );
}

#[test]
fn the_ctrl_c_handler_is_installed_only_where_asked() {
    let out = child("ctrlc", &[]);
    assert_eq!(
        out,
        [
            "before=false",
            "configure=Ok(()) handler=false",
            "explicit pool handler=true"
        ],
        "configure(ctrlc(false)) keeps SIGINT alone; a pool built with ctrlc(true) installs it"
    );
    let out = child("spawn", &[("CONCERTINA_CTRLC", "off")]);
    assert_eq!(
        out[1], "inline=false",
        "CONCERTINA_CTRLC is read and accepted"
    );
}
