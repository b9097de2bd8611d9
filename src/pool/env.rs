//! The `CONCERTINA_*` environment variables a pool's unset fields follow,
//! each read and validated on its own.

use crate::error::{ConfigError, MAX_THREADS};
use crate::interrupt;
use crate::pool::Backend;

/// The `CONCERTINA_*` environment variables, each validated on its own: a
/// value that is not accepted is an error only where it is used.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) threads: Result<Option<usize>, ConfigError>,
    pub(crate) backend: Result<Option<Backend>, ConfigError>,
    pub(crate) disable_async: Result<bool, ConfigError>,
    pub(crate) ctrlc: Result<bool, ConfigError>,
    /// SIGQUIT (Ctrl-\) prints a snapshot of the runtime.
    pub(crate) snapshot_on_sigquit: Result<bool, ConfigError>,
}

const THREADS_ACCEPTED: &str = "a whole number from 1 to 4096";
const BACKEND_ACCEPTED: &str = "one of rayon, crossbeam, inline";
const FLAG_ACCEPTED: &str = "one of 1, 0, true, false, yes, no, on, off";

impl Env {
    /// Reads and validates every variable; an empty value counts as unset.
    pub(crate) fn read() -> Env {
        Env::from_lookup(|var| std::env::var_os(var))
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Env {
        let get =
            |var: &'static str, accepted: &'static str| -> Result<Option<String>, ConfigError> {
                match lookup(var) {
                    None => Ok(None),
                    Some(value) => match value.into_string() {
                        Ok(s) if s.trim().is_empty() => Ok(None),
                        Ok(s) => Ok(Some(s)),
                        Err(raw) => Err(ConfigError::env(var, &raw.to_string_lossy(), accepted)),
                    },
                }
            };
        let threads = get("CONCERTINA_THREADS", THREADS_ACCEPTED).and_then(|v| match v {
            None => Ok(None),
            Some(s) => match s.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(Some(n)),
                _ => Err(ConfigError::env("CONCERTINA_THREADS", &s, THREADS_ACCEPTED)),
            },
        });
        let backend = get("CONCERTINA_BACKEND", BACKEND_ACCEPTED).and_then(|v| match v {
            None => Ok(None),
            Some(s) => Backend::parse(&s)
                .map(Some)
                .ok_or_else(|| ConfigError::env("CONCERTINA_BACKEND", &s, BACKEND_ACCEPTED)),
        });
        let flag = |var: &'static str, unset: bool| {
            get(var, FLAG_ACCEPTED).and_then(|v| match v {
                None => Ok(unset),
                Some(s) => interrupt::parse_flag(&s)
                    .ok_or_else(|| ConfigError::env(var, &s, FLAG_ACCEPTED)),
            })
        };
        Env {
            threads,
            backend,
            disable_async: flag("CONCERTINA_DISABLE_ASYNC", false),
            ctrlc: flag("CONCERTINA_CTRLC", true),
            snapshot_on_sigquit: flag("CONCERTINA_SNAPSHOT_ON_SIGQUIT", false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env(pairs: &[(&str, &str)]) -> Result<Env, ConfigError> {
        let e = env_lazily(pairs);
        e.threads.clone()?;
        e.backend.clone()?;
        e.disable_async.clone()?;
        e.ctrlc.clone()?;
        Ok(e)
    }

    fn env_lazily(pairs: &[(&str, &str)]) -> Env {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Env::from_lookup(move |var| pairs.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone()))
    }

    #[test]
    fn a_bad_variable_is_an_error_only_where_it_is_read() {
        let e = env_lazily(&[
            ("CONCERTINA_THREADS", "abc"),
            ("CONCERTINA_BACKEND", "crossbeam"),
        ]);
        assert_eq!(e.backend, Ok(Some(Backend::Crossbeam)));
        assert_eq!(
            e.threads.unwrap_err().variable(),
            Some("CONCERTINA_THREADS")
        );
    }

    #[test]
    fn unset_and_empty_variables_leave_defaults() {
        let e = env(&[("CONCERTINA_THREADS", " ")]).unwrap();
        assert_eq!(
            (e.threads, e.backend, e.disable_async, e.ctrlc),
            (Ok(None), Ok(None), Ok(false), Ok(true))
        );
    }

    #[test]
    fn accepted_values_are_read() {
        let e = env(&[
            ("CONCERTINA_THREADS", "3"),
            ("CONCERTINA_BACKEND", "Crossbeam"),
            ("CONCERTINA_DISABLE_ASYNC", "yes"),
            ("CONCERTINA_CTRLC", "0"),
        ])
        .unwrap();
        assert_eq!(e.ctrlc, Ok(false));
        assert_eq!(
            (e.threads, e.backend, e.disable_async),
            (Ok(Some(3)), Ok(Some(Backend::Crossbeam)), Ok(true))
        );
    }

    #[test]
    fn every_bad_value_names_its_variable_and_the_accepted_values() {
        for (var, value, accepted) in [
            ("CONCERTINA_THREADS", "0", THREADS_ACCEPTED),
            ("CONCERTINA_THREADS", "four", THREADS_ACCEPTED),
            ("CONCERTINA_THREADS", "5000", THREADS_ACCEPTED),
            ("CONCERTINA_BACKEND", "tokio", BACKEND_ACCEPTED),
            ("CONCERTINA_DISABLE_ASYNC", "maybe", FLAG_ACCEPTED),
            ("CONCERTINA_CTRLC", "no thanks", FLAG_ACCEPTED),
        ] {
            let err = env(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable(), Some(var));
            assert_eq!(
                err.to_string(),
                format!("invalid value {value:?} for {var}: expected {accepted}")
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_value_that_is_not_unicode_is_refused_by_name() {
        use std::os::unix::ffi::OsStringExt;
        for var in [
            "CONCERTINA_THREADS",
            "CONCERTINA_BACKEND",
            "CONCERTINA_DISABLE_ASYNC",
            "CONCERTINA_CTRLC",
        ] {
            let e = Env::from_lookup(|asked| {
                (asked == var).then(|| std::ffi::OsString::from_vec(vec![b'o', 0xff]))
            });
            let err = [
                e.threads.err(),
                e.backend.err(),
                e.disable_async.err(),
                e.ctrlc.err(),
            ]
            .into_iter()
            .flatten()
            .next()
            .expect("the bad variable is an error");
            assert_eq!(err.variable(), Some(var));
            assert!(
                err.to_string()
                    .starts_with("invalid value \"o\u{fffd}\" for "),
                "{err}"
            );
        }
    }
}
