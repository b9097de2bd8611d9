//! The process-wide default pool, configured from the environment or by
//! [`configure`].

use std::sync::OnceLock;

use crate::error::{ConfigError, Error, MAX_THREADS};
use crate::future::Future;
use crate::pool::{Backend, Pool, PoolBuilder};

static DEFAULT: OnceLock<Result<Pool, Error>> = OnceLock::new();

/// The `CONCERTINA_*` environment variables, validated.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) threads: Option<usize>,
    pub(crate) backend: Option<Backend>,
    pub(crate) disable_async: bool,
    pub(crate) ctrlc: bool,
}

const THREADS_ACCEPTED: &str = "a whole number from 1 to 4096";
const BACKEND_ACCEPTED: &str = "one of rayon, crossbeam, inline";
const FLAG_ACCEPTED: &str = "one of 1, 0, true, false, yes, no, on, off";

impl Env {
    /// Reads and validates every variable; an empty value counts as unset.
    pub(crate) fn read() -> Result<Env, ConfigError> {
        Env::from_lookup(|var| std::env::var_os(var))
    }

    fn from_lookup(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Env, ConfigError> {
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
        let threads = match get("CONCERTINA_THREADS", THREADS_ACCEPTED)? {
            None => None,
            Some(s) => match s.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_THREADS).contains(&n) => Some(n),
                _ => return Err(ConfigError::env("CONCERTINA_THREADS", &s, THREADS_ACCEPTED)),
            },
        };
        let backend = match get("CONCERTINA_BACKEND", BACKEND_ACCEPTED)? {
            None => None,
            Some(s) => match Backend::parse(&s) {
                Some(backend) => Some(backend),
                None => return Err(ConfigError::env("CONCERTINA_BACKEND", &s, BACKEND_ACCEPTED)),
            },
        };
        let disable_async = match get("CONCERTINA_DISABLE_ASYNC", FLAG_ACCEPTED)? {
            None => false,
            Some(s) => match parse_flag(&s) {
                Some(flag) => flag,
                None => {
                    return Err(ConfigError::env(
                        "CONCERTINA_DISABLE_ASYNC",
                        &s,
                        FLAG_ACCEPTED,
                    ))
                }
            },
        };
        let ctrlc = match get("CONCERTINA_CTRLC", FLAG_ACCEPTED)? {
            None => true,
            Some(s) => match parse_flag(&s) {
                Some(flag) => flag,
                None => return Err(ConfigError::env("CONCERTINA_CTRLC", &s, FLAG_ACCEPTED)),
            },
        };
        Ok(Env {
            threads,
            backend,
            disable_async,
            ctrlc,
        })
    }
}

fn parse_flag(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The default pool's builder: named `default`, and installing the Ctrl-C
/// handler unless `CONCERTINA_CTRLC=0` (or the caller's builder) says not to.
fn default_builder(caller: PoolBuilder) -> PoolBuilder {
    Pool::builder()
        .name("default")
        .for_default_pool()
        .merge(caller)
}

/// The default pool, built at first use from the environment (or from
/// [`configure`]).
///
/// # Errors
///
/// [`Error::Config`] when a `CONCERTINA_*` variable holds a value that is
/// not accepted, or the threads cannot be started. The error is kept: every
/// later call returns it again.
///
/// # Examples
///
/// ```
/// let pool = concertina::default_pool()?;
/// assert_eq!(pool.name(), "default");
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn default_pool() -> Result<&'static Pool, Error> {
    DEFAULT
        .get_or_init(|| default_builder(Pool::builder()).build())
        .as_ref()
        .map_err(Clone::clone)
}

/// Configures the default pool before its first use. The builder's name
/// defaults to `default`; fields left unset come from the environment as
/// usual. The default pool installs the Ctrl-C handler unless
/// `CONCERTINA_CTRLC=0` or the builder says [`ctrlc(false)`](PoolBuilder::ctrlc).
///
/// # Errors
///
/// [`Error::Config`] when the pool is already initialised (by an earlier
/// `configure`, or by a first use such as [`spawn`]); the running pool is
/// kept unchanged. Also the errors of [`PoolBuilder::build`].
///
/// # Examples
///
/// ```
/// use concertina::{Backend, Pool};
///
/// concertina::configure(Pool::builder().threads(2).backend(Backend::Crossbeam))?;
/// assert_eq!(concertina::default_pool()?.threads(), 2);
/// assert!(concertina::configure(Pool::builder()).is_err(), "only once");
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn configure(builder: PoolBuilder) -> Result<(), Error> {
    if DEFAULT.get().is_some() {
        return Err(ConfigError::already_initialised().into());
    }
    let pool = default_builder(builder).build()?;
    DEFAULT
        .set(Ok(pool))
        .map_err(|_| ConfigError::already_initialised().into())
}

/// Runs `f` on the default pool and returns the handle of its result.
///
/// When the default pool cannot be built (a bad `CONCERTINA_*` value), the
/// returned future has failed with that [`Error::Config`], naming the variable.
///
/// # Examples
///
/// ```
/// let exposure = concertina::spawn(|| {
///     std::thread::sleep(std::time::Duration::from_millis(5));
///     1024u32
/// });
/// assert_eq!(exposure.result(), Ok(1024));
/// ```
pub fn spawn<T, F>(f: F) -> Future<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    match default_pool() {
        Ok(pool) => pool.spawn(f),
        Err(error) => Future::failed(error),
    }
}

/// Turns `f` into a function that runs `f` on the default pool and returns
/// a `Future` (Concert's `@async` decorator). Several arguments travel as a
/// tuple; for a named `fn`, the `#[asynchronous]` attribute does the same.
///
/// # Examples
///
/// ```
/// fn move_to(position: f64) -> f64 {
///     // drive the motor, then read back where it stopped
///     position
/// }
///
/// let move_to = concertina::asynchronous(move_to);
/// let a = move_to(1.5);
/// let b = move_to(-2.0);
/// assert_eq!((a.result()?, b.result()?), (1.5, -2.0));
/// # Ok::<(), concertina::Error>(())
/// ```
pub fn asynchronous<A, T, F>(f: F) -> impl Fn(A) -> Future<T> + Clone + Send + Sync + 'static
where
    A: Send + 'static,
    T: Send + 'static,
    F: Fn(A) -> T + Send + Sync + 'static,
{
    let f = std::sync::Arc::new(f);
    move |arg| {
        let f = f.clone();
        spawn(move || f(arg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env(pairs: &[(&str, &str)]) -> Result<Env, ConfigError> {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Env::from_lookup(move |var| pairs.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone()))
    }

    #[test]
    fn unset_and_empty_variables_leave_defaults() {
        let e = env(&[("CONCERTINA_THREADS", " ")]).unwrap();
        assert_eq!(
            (e.threads, e.backend, e.disable_async, e.ctrlc),
            (None, None, false, true)
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
        assert!(!e.ctrlc);
        assert_eq!(
            (e.threads, e.backend, e.disable_async),
            (Some(3), Some(Backend::Crossbeam), true)
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
            let err = Env::from_lookup(|asked| {
                (asked == var).then(|| std::ffi::OsString::from_vec(vec![b'o', 0xff]))
            })
            .unwrap_err();
            assert_eq!(err.variable(), Some(var));
            assert!(
                err.to_string()
                    .starts_with("invalid value \"o\u{fffd}\" for "),
                "{err}"
            );
        }
    }
}
