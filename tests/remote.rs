//! Remote instances in real worker processes: this test binary is its own
//! worker (its `main` serves codes when started in worker mode), so the
//! tests run without the test harness.
#![cfg(unix)]

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use concertina::error::{LostKind, RemoteFailureKind};
use concertina::remote::{self, Code, RemoteError, RemoteInstance};
use concertina::Error;

/// A "legacy" code: its state is process-global, like a COMMON block.
static TOTAL: AtomicU64 = AtomicU64::new(0);

struct Legacy;

impl Code for Legacy {
    const NAME: &'static str = "Legacy";

    fn construct(args: &[u8]) -> Result<Self, RemoteError> {
        let (start,): (u64,) = remote::decode(args)?;
        TOTAL.store(start, Ordering::SeqCst);
        Ok(Legacy)
    }

    fn dispatch(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>, RemoteError> {
        match method {
            "add" => {
                let (n,): (u64,) = remote::decode(args)?;
                remote::encode(&(TOTAL.fetch_add(n, Ordering::SeqCst) + n))
            }
            "pid" => remote::encode(&std::process::id()),
            "panic" => panic!("the legacy code divided by zero"),
            "abort" => {
                eprintln!("legacy: aborting");
                std::process::abort()
            }
            "segfault" => {
                // What a legacy code's bad pointer ends in: SIGSEGV.
                eprintln!("legacy: segmentation fault");
                // The first SIGSEGV meets the standard library's handler
                // (there for stack overflows), which restores the default
                // action; the second ends the process.
                let pid = std::process::id().to_string();
                for _ in 0..2 {
                    let _ = std::process::Command::new("kill")
                        .args(["-SEGV", &pid])
                        .status();
                    std::thread::sleep(Duration::from_millis(20));
                }
                std::thread::sleep(Duration::from_secs(60));
                remote::encode(&())
            }
            "exit" => {
                let (code,): (i32,) = remote::decode(args)?;
                eprintln!("legacy: exiting with {code}");
                std::process::exit(code)
            }
            "spin" => {
                // Runs until cancelled: says so through its result. A file
                // tells the test that it runs.
                let (marker,): (String,) = remote::decode(args)?;
                std::fs::write(&marker, b"spinning")
                    .map_err(|e| RemoteError::new(e.to_string()))?;
                while !concertina::cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                TOTAL.fetch_add(1_000_000, Ordering::SeqCst);
                remote::encode("stopped")
            }
            "total" => remote::encode(&TOTAL.load(Ordering::SeqCst)),
            "helper" => {
                // A helper program that outlives the worker and keeps its
                // stderr (inherited, as children inherit it).
                let helper = std::process::Command::new("sleep")
                    .arg("60")
                    .spawn()
                    .map_err(|e| RemoteError::new(e.to_string()))?;
                remote::encode(&helper.id())
            }
            "fork" => {
                // A forked child keeps every descriptor of the worker, its
                // socket too, and outlives it.
                // SAFETY: the child calls only async-signal-safe functions.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    unsafe {
                        libc::sleep(60);
                        libc::_exit(0);
                    }
                }
                remote::encode(&u32::try_from(pid).unwrap_or(0))
            }
            "progress" => {
                // A progress bar: `\r` and no newline, then a byte that is
                // not UTF-8, then a line.
                let (steps,): (u32,) = remote::decode(args)?;
                let mut err = std::io::stderr();
                for i in 0..steps {
                    let _ = write!(err, "\r{:>3}% {}", i % 100, "#".repeat(60));
                }
                let _ = err.write_all(b"\xff done\n");
                eprintln!("legacy: still writing");
                remote::encode(&steps)
            }
            "worker_env" => remote::encode(&std::env::var_os(remote::WORKER_ENV).is_some()),
            "sleep" => {
                let (ms,): (u64,) = remote::decode(args)?;
                std::thread::sleep(Duration::from_millis(ms));
                remote::encode(&ms)
            }
            _ => Err(RemoteError::unknown_method(method)),
        }
    }
}

/// A code made remote by the attribute: its typed client is `GridRemote`.
/// It keeps no global state: several may share a worker.
struct Grid {
    cells: Vec<f64>,
    paused: usize,
}

/// Where two grids of one worker meet: each waits for the other, so both
/// must run at once.
static MEET: std::sync::Barrier = std::sync::Barrier::new(2);

#[concertina::remote(reentrant)]
impl Grid {
    /// A grid of `n` cells at `value`.
    pub fn new(n: usize, value: f64) -> Self {
        Grid {
            cells: vec![value; n],
            paused: 0,
        }
    }

    /// As `shift`, refusing a shift that is not finite: it panics.
    pub fn checked_shift(&mut self, delta: f64) -> f64 {
        assert!(delta.is_finite(), "a shift of {delta}");
        self.shift(delta)
    }

    /// Sleeps `ms` milliseconds; how many pauses this grid made.
    pub fn pause(&mut self, ms: u64) -> usize {
        std::thread::sleep(Duration::from_millis(ms));
        self.paused += 1;
        self.paused
    }

    /// Adds `delta` to every cell; the new sum.
    pub fn shift(&mut self, delta: f64) -> f64 {
        self.cells.iter_mut().for_each(|c| *c += delta);
        self.cells.iter().sum()
    }

    /// The cells.
    pub fn cells(&self) -> Vec<f64> {
        self.cells.clone()
    }

    /// Replaces the cells, returning nothing.
    pub fn set_cells(&mut self, cells: Vec<f64>) {
        self.cells = cells;
    }

    /// `bytes` back, with every byte turned by `key` (so that a reply is
    /// not its own argument).
    pub fn echo(&mut self, bytes: Vec<u8>, key: u8) -> Vec<u8> {
        bytes.into_iter().map(|b| b ^ key).collect()
    }

    /// A value of `len` bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        vec![7; len]
    }

    /// Waits until another grid of this worker meets it too; this
    /// worker's pid.
    pub fn meet(&mut self) -> u32 {
        MEET.wait();
        std::process::id()
    }

    fn local_only(&self) -> usize {
        self.cells.len()
    }

    /// Replaces the cells with `cells` times `scale`, lent by the worker
    /// rather than given; names them `label`.
    pub fn load(&mut self, label: &str, cells: &[f64], scale: f64) -> String {
        self.cells.clear();
        self.cells.extend(cells.iter().map(|c| c * scale));
        format!("{label}: {}", self.cells.len())
    }

    /// The cells, encoded where they lie.
    pub fn view(&self) -> &[f64] {
        &self.cells
    }

    /// Where the worker decoded `cells` (an address), and their sum.
    pub fn place_of(&mut self, cells: &[f64]) -> (u64, f64) {
        (cells.as_ptr() as usize as u64, cells.iter().sum())
    }
}

/// A code made from a borrowed argument.
struct Probe {
    name: String,
}

#[concertina::remote]
impl Probe {
    /// A probe named `name`.
    pub fn new(name: &str) -> Self {
        Probe {
            name: name.to_owned(),
        }
    }

    /// Its name, and `suffix`.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.name)
    }
}

/// A broken worker, for the tests of garbage on the channel: it speaks the
/// wire format by hand (a frame is a 4-byte little-endian length and a
/// postcard message; `[0, 0, 0, 0]` is `Reply { id: 0, outcome:
/// Value([]) }`, the answer to a start).
fn fake_worker(mode: &str) -> ! {
    use std::io::{Read, Write};
    let path = std::env::var_os(remote::WORKER_ENV).expect("started as a worker");
    // An abstract name (Linux) begins with `@`; else a socket file.
    let mut socket = match path.to_str().and_then(|p| p.strip_prefix('@')) {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
            std::os::unix::net::UnixStream::connect_addr(&address).unwrap()
        }
        _ => std::os::unix::net::UnixStream::connect(&path).unwrap(),
    };
    let skip_frame = |socket: &mut std::os::unix::net::UnixStream| {
        let mut length = [0u8; 4];
        socket.read_exact(&mut length).unwrap();
        let mut payload = vec![0u8; u32::from_le_bytes(length) as usize];
        socket.read_exact(&mut payload).unwrap();
    };
    skip_frame(&mut socket); // the start
    match mode {
        "garbage" => socket.write_all(b"\xff\xff\xff\x7fnot a frame").unwrap(),
        _ => {
            socket.write_all(&[4, 0, 0, 0, 0, 0, 0, 0]).unwrap();
            skip_frame(&mut socket); // the first call
                                     // A frame of 16 bytes announced, 3 sent, then the end of the
                                     // stream — with the process still alive for a while, so that
                                     // the parent has to kill it.
            socket.write_all(&[16, 0, 0, 0, 1, 2, 3]).unwrap();
            drop(socket);
            eprintln!("fake worker: {mode} written");
            std::thread::sleep(Duration::from_secs(30));
        }
    }
    eprintln!("fake worker: {mode} written");
    std::process::exit(0)
}

fn main() {
    if let Some(mode) = std::env::var_os("REMOTE_TEST_FAKE") {
        if std::env::var_os(remote::WORKER_ENV).is_some() {
            fake_worker(&mode.to_string_lossy());
        }
    }
    let session = remote::serve_if_worker(&[
        remote::entry::<Legacy>(),
        remote::entry::<Grid>(),
        remote::entry::<Probe>(),
    ]);
    if let Ok(scenario) = std::env::var(common::SCENARIO) {
        assert_eq!(scenario, "ctrl_c");
        ctrl_c_scenario();
        return;
    }
    if std::env::var_os("REMOTE_TEST_DELETED").is_some() {
        // A parent whose executable was removed (rebuilt) under it.
        std::fs::remove_file(std::env::current_exe().unwrap()).unwrap();
        let model = RemoteInstance::start::<Legacy>(&(1u64,)).unwrap();
        println!(
            "deleted parent: {:?}",
            model.spawn::<u64>("add", &(2u64,)).result()
        );
        return;
    }
    if std::env::var_os("REMOTE_TEST_PARENT").is_some() {
        // A parent that starts two workers, says their pids, and waits to
        // be killed.
        let a = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
        let b = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
        let helper = a.spawn::<u32>("helper", &()).result().unwrap();
        println!("pids {} {} {helper}", a.pid(), b.pid());
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    macro_rules! named {
        ($($test:ident),* $(,)?) => { [$((stringify!($test), $test as fn())),*] };
    }
    // Over either transport.
    let shared = named![
        calls_run_in_order_in_a_process_of_their_own,
        two_instances_do_not_share_global_state,
        a_panicking_call_fails_alone,
        bad_calls_are_clear_errors,
        cancel_drops_a_queued_call_and_stops_a_running_one,
        futures_outlive_the_handle,
        the_attribute_makes_a_typed_client,
        borrowed_arguments_and_results_cross_and_reuse_memory,
        results_decoded_into_a_given_buffer_reuse_it,
        large_borrowed_arrays_in_flight_together_cross_intact,
        vectorised_calls_keep_their_order_and_cancel_alone,
        vectorised_calls_are_one_call_over_arrays,
        calls_after_a_dependency_keep_their_place,
        calls_from_many_threads_keep_the_order_they_were_made_in,
        reentrant_codes_share_a_worker_and_run_side_by_side,
        a_legacy_code_has_one_instance_per_worker,
        messages_of_every_size_in_flight_both_ways_at_once,
        large_messages_of_varying_sizes_carry_their_own_bytes,
        an_interrupt_fails_the_wait_for_a_remote_call_and_cancels_it,
        a_batchs_replies_do_not_wait_for_the_next_message,
        a_callback_that_waits_on_a_later_call_does_not_stop_the_replies,
        a_snapshot_names_the_remote_call_a_thread_waits_for,
        messages_over_the_limit_fail_their_calls_and_the_instance_lives,
        the_transport_is_chosen_by_configuration,
    ];
    // Worker processes of this machine: their deaths, their parent's, what
    // they write on the socket, the terminal's Ctrl-C.
    let local = named![
        a_worker_that_dies_fails_every_pending_and_later_call,
        a_killed_worker_is_named_by_its_signal,
        workers_die_with_their_parent,
        many_instances,
        garbage_on_the_channel_is_a_clear_worker_lost,
        ctrl_c_cancels_the_remote_call_waited_on_and_the_worker_lives,
        a_worker_that_dies_loses_every_instance_in_it,
        a_worker_killed_while_its_helper_holds_its_stderr_is_lost_at_once,
        a_worker_killed_while_a_forked_child_holds_its_socket_is_lost,
        progress_output_and_bad_bytes_on_stderr_pass_and_the_worker_lives,
        a_program_the_code_runs_is_no_worker,
        a_cancel_after_the_handle_is_dropped_reaches_the_worker,
        a_stopped_worker_takes_its_helpers_with_it,
        a_program_rebuilt_under_itself_still_starts_workers,
        workers_leave_no_socket_file_behind,
    ];
    // The worker ranks of an MPI job (`mpirun -n 3`).
    let ranks = named![
        many_instances_on_ranks,
        instances_go_round_robin_or_to_a_named_rank
    ];
    let on_mpi = session.worker_ranks() > 0;
    println!(
        "remote instances over {}",
        if on_mpi {
            format!("MPI ({} worker ranks)", session.worker_ranks())
        } else {
            "local worker processes".to_owned()
        }
    );
    let tests: Vec<(&str, fn())> = shared
        .into_iter()
        .chain(if on_mpi {
            ranks.to_vec()
        } else {
            local.to_vec()
        })
        .collect();
    for &(name, test) in &tests {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            test();
            let _ = done.send(());
        });
        match finished.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => println!("test {name} ... ok"),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                println!("test {name} ... hung");
                std::process::exit(1)
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                std::process::exit(1)
            }
        }
    }
    let mut passed = tests.len();
    if on_mpi {
        // Last: it ends the session.
        the_end_of_the_session_runs_the_calls_made_then_stops_the_ranks(session);
        println!("test the_end_of_the_session_runs_the_calls_made_then_stops_the_ranks ... ok");
        passed += 1;
    }
    println!("test result: ok. {passed} passed");
}

/// Under MPI: the calls made before the session ends still run and reply;
/// later ones fail with `WorkerLost`; every rank then exits cleanly (the
/// job's exit status says so).
fn the_end_of_the_session_runs_the_calls_made_then_stops_the_ranks(session: remote::Session) {
    let model = RemoteInstance::start::<Legacy>(&(1u64,)).unwrap();
    let slow = model.spawn::<u64>("sleep", &(200u64,));
    let after = model.spawn::<u64>("add", &(1u64,));
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(session);
        let _ = done.send(());
    });
    ended
        .recv_timeout(Duration::from_secs(60))
        .expect("the session ends within a minute");
    assert_eq!(slow.result(), Ok(200), "made before the end: it ran");
    assert_eq!(after.result(), Ok(2));
    match model.spawn::<u64>("add", &(1u64,)).result() {
        Err(Error::WorkerLost(why)) => {
            assert_eq!(why.kind(), LostKind::SessionEnded);
            assert!(why.to_string().contains("the MPI session ended"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    match RemoteInstance::start::<Grid>(&(1usize, 0.0)) {
        Err(Error::WorkerLost(why)) => {
            assert!(why.to_string().contains("the MPI session ended"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

fn calls_run_in_order_in_a_process_of_their_own() {
    let model = RemoteInstance::start::<Legacy>(&(100u64,)).unwrap();
    assert_ne!(model.pid(), std::process::id());
    let calls: Vec<_> = (1..=20u64)
        .map(|n| model.spawn::<u64>("add", &(n,)))
        .collect();
    let totals: Vec<u64> = concertina::try_wait_all(calls).unwrap();
    let expected: Vec<u64> = (1..=20u64)
        .scan(100, |t, n| {
            *t += n;
            Some(*t)
        })
        .collect();
    assert_eq!(totals, expected, "in the order made");
    assert_eq!(model.spawn::<u32>("pid", &()).result(), Ok(model.pid()));
}

fn two_instances_do_not_share_global_state() {
    let a = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let b = RemoteInstance::start::<Legacy>(&(1000u64,)).unwrap();
    let (x, y) = (
        a.spawn::<u64>("add", &(1u64,)),
        b.spawn::<u64>("add", &(1u64,)),
    );
    assert_eq!((x.result(), y.result()), (Ok(1), Ok(1001)));
    assert_ne!(a.pid(), b.pid());
    assert_eq!(
        TOTAL.load(Ordering::SeqCst),
        0,
        "nothing ran in this process"
    );
}

fn reentrant_codes_share_a_worker_and_run_side_by_side() {
    let worker = remote::Worker::start().unwrap();
    let a = GridRemote::start_in(&worker, 2, 1.0).unwrap();
    let b = GridRemote::start_in(&worker, 3, 10.0).unwrap();
    let c = a.instance().worker().make::<Grid>(&(1usize, 0.5)).unwrap();
    assert_eq!(a.instance().pid(), worker.pid());
    assert_eq!(b.instance().pid(), worker.pid());
    assert_eq!(c.pid(), worker.pid());
    // Each its own state.
    assert_eq!(a.shift(1.0).result(), Ok(4.0));
    assert_eq!(b.shift(1.0).result(), Ok(33.0));
    assert_eq!(c.spawn::<f64>("shift", &(1.0,)).result(), Ok(1.5));
    // Side by side: each call waits for the other to run (a hang here is
    // caught by the harness's watchdog).
    let (x, y) = (a.meet(), b.meet());
    assert_eq!(
        (x.result(), y.result()),
        (Ok(worker.pid()), Ok(worker.pid()))
    );
    // Each in its order, with a long call of one beside the other's.
    let slow = a.instance().spawn::<f64>("shift", &(1.0,));
    let quick: Vec<_> = (0..20).map(|_| b.shift(0.0)).collect();
    assert_eq!(concertina::try_wait_all(quick).unwrap(), vec![33.0; 20]);
    assert_eq!(slow.result(), Ok(6.0));
    // A legacy code beside them (one of it per worker).
    let legacy = worker.make::<Legacy>(&(7u64,)).unwrap();
    assert_eq!(legacy.spawn::<u64>("add", &(1u64,)).result(), Ok(8));
    assert_eq!(b.cells().result(), Ok(vec![11.0; 3]));
}

fn a_legacy_code_has_one_instance_per_worker() {
    let worker = remote::Worker::start().unwrap();
    let first = worker.make::<Legacy>(&(5u64,)).unwrap();
    match worker.make::<Legacy>(&(0u64,)) {
        Err(Error::Remote(why)) => {
            assert!(
                why.to_string()
                    .contains("already holds an instance of `Legacy`"),
                "{why}"
            );
            assert!(why.to_string().contains("REENTRANT"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // The refused start left the first intact.
    assert_eq!(first.spawn::<u64>("add", &(1u64,)).result(), Ok(6));
    // Freed (its last handle dropped, its queued calls run first), the
    // code may be made again in that worker.
    let queued: Vec<_> = (0..5)
        .map(|_| first.spawn::<u64>("add", &(1u64,)))
        .collect();
    drop(first);
    let second = worker.make::<Legacy>(&(100u64,)).unwrap();
    assert_eq!(
        concertina::try_wait_all(queued).unwrap(),
        vec![7, 8, 9, 10, 11],
        "the calls made before the drop ran, before the next instance was made"
    );
    assert_eq!(second.spawn::<u64>("add", &(1u64,)).result(), Ok(101));
    assert_eq!(second.pid(), worker.pid());
    // A code the worker does not serve.
    match worker.make::<Unserved>(&()) {
        Err(Error::Remote(why)) => {
            assert_eq!(why.kind(), RemoteFailureKind::UnknownCode);
            assert!(
                why.to_string().contains("serves no code `Unserved`"),
                "{why}"
            );
            assert!(why.to_string().contains("Legacy, Grid"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(worker.lost().is_none());
}

/// A code the test worker does not serve.
struct Unserved;

impl Code for Unserved {
    const NAME: &'static str = "Unserved";
    fn construct(_: &[u8]) -> Result<Self, RemoteError> {
        Ok(Unserved)
    }
    fn dispatch(&mut self, method: &str, _: &[u8]) -> Result<Vec<u8>, RemoteError> {
        Err(RemoteError::unknown_method(method))
    }
}

fn a_worker_that_dies_loses_every_instance_in_it() {
    let worker = remote::Worker::start().unwrap();
    let grid = GridRemote::start_in(&worker, 2, 1.0).unwrap();
    let legacy = worker.make::<Legacy>(&(0u64,)).unwrap();
    let elsewhere = GridRemote::start(2, 1.0).unwrap();
    // The grid's call waits in the worker for a partner that never comes.
    let waiting = grid.meet();
    let exit = legacy.spawn::<()>("exit", &(9i32,));
    for outcome in [waiting.result().map(|_| ()), exit.result()] {
        match outcome {
            Err(Error::WorkerLost(why)) => {
                assert_eq!(why.kind(), LostKind::Exited { status: 9 });
                assert!(why.to_string().contains("exited with status 9"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        grid.shift(1.0).result(),
        Err(Error::WorkerLost(_))
    ));
    assert!(worker.lost().is_some());
    assert!(matches!(
        worker.make::<Grid>(&(1usize, 0.0)),
        Err(Error::WorkerLost(_))
    ));
    // Another worker is untouched.
    assert_eq!(elsewhere.shift(1.0).result(), Ok(4.0));
}

fn the_transport_is_chosen_by_configuration() {
    // An explicit local transport, under mpirun too.
    let local = RemoteInstance::builder()
        .transport(remote::Transport::Local)
        .start::<Grid>(&(1usize, 2.0))
        .unwrap();
    assert_eq!(local.worker().rank(), None);
    assert_eq!(local.spawn::<f64>("shift", &(1.0,)).result(), Ok(3.0));
    // A rank with the local transport is a contradiction, said as such.
    match RemoteInstance::builder()
        .rank(1)
        .transport(remote::Transport::Local)
        .start::<Grid>(&(1usize, 0.0))
    {
        Err(Error::Config(why)) => assert!(why.to_string().contains("rank 1"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A transport the environment names wrongly is refused, naming both.
    std::env::set_var(remote::TRANSPORT_ENV, "carrier-pigeon");
    let refused = RemoteInstance::start::<Grid>(&(1usize, 0.0));
    std::env::remove_var(remote::TRANSPORT_ENV);
    match refused {
        Err(Error::Config(why)) => {
            assert_eq!(why.variable(), Some("CONCERTINA_TRANSPORT"));
            assert!(why.to_string().contains("\"carrier-pigeon\""), "{why}");
            assert!(why.to_string().contains("`local` or `mpi`"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // The MPI transport outside MPI (or without the feature) is refused
    // with what would do.
    if std::env::var_os("PMI_SIZE").is_none() && std::env::var_os("OMPI_COMM_WORLD_SIZE").is_none()
    {
        match RemoteInstance::builder()
            .transport(remote::Transport::Mpi)
            .start::<Grid>(&(1usize, 0.0))
        {
            Err(Error::Config(why)) => {
                let why = why.to_string();
                assert!(
                    why.to_string().contains("mpirun") || why.to_string().contains("`mpi` feature"),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

fn many_instances_on_ranks() {
    // A re-entrant code: many instances per rank, spread round-robin.
    let grids: Vec<_> = (0..100usize)
        .map(|i| GridRemote::start(1, i as f64).unwrap())
        .collect();
    let ranks: std::collections::BTreeSet<_> =
        grids.iter().map(|g| g.instance().worker().rank()).collect();
    assert_eq!(ranks.len(), 2, "spread over both worker ranks: {ranks:?}");
    let sums: Vec<_> = grids.iter().map(|g| g.shift(0.5)).collect();
    let sums = concertina::try_wait_all(sums).unwrap();
    assert_eq!(sums, (0..100).map(|i| i as f64 + 0.5).collect::<Vec<_>>());
}

fn instances_go_round_robin_or_to_a_named_rank() {
    let on_two = RemoteInstance::builder()
        .rank(2)
        .start::<Grid>(&(2usize, 1.0))
        .unwrap();
    assert_eq!(on_two.worker().rank(), Some(2));
    assert_ne!(on_two.pid(), std::process::id());
    let a = RemoteInstance::start::<Grid>(&(1usize, 0.0)).unwrap();
    let b = RemoteInstance::start::<Grid>(&(1usize, 0.0)).unwrap();
    assert_ne!(a.worker().rank(), b.worker().rank(), "round-robin");
    match RemoteInstance::builder()
        .rank(7)
        .start::<Grid>(&(1usize, 0.0))
    {
        Err(Error::Config(why)) => {
            assert!(
                why.to_string()
                    .contains("rank 7 is not a worker rank: expected 1 to 2"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
    match RemoteInstance::builder()
        .rank(1)
        .env("X", "1")
        .start::<Grid>(&(1usize, 0.0))
    {
        Err(Error::Config(why)) => {
            assert!(why.to_string().contains("`program` and `env`"), "{why}")
        }
        other => panic!("{other:?}"),
    }
}

fn a_panicking_call_fails_alone() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let before = model.spawn::<u64>("add", &(2u64,));
    let bad = model.spawn::<u64>("panic", &());
    let after = model.spawn::<u64>("add", &(3u64,));
    assert_eq!(before.result(), Ok(2));
    assert_eq!(
        bad.result(),
        Err(Error::Panicked("the legacy code divided by zero".into()))
    );
    assert_eq!(
        after.result(),
        Ok(5),
        "the worker lives on, its state intact"
    );
}

fn bad_calls_are_clear_errors() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    match model.spawn::<u64>("evolve", &()).result() {
        Err(Error::Remote(why)) => {
            assert_eq!(why.kind(), RemoteFailureKind::UnknownMethod);
            assert_eq!(why.to_string(), "no method `evolve`");
        }
        other => panic!("{other:?}"),
    }
    // postcard is not self-describing: missing arguments are caught, a
    // value of another type of the same shape is not.
    match model.spawn::<u64>("add", &()).result() {
        Err(Error::Remote(why)) => {
            assert_eq!(why.kind(), RemoteFailureKind::Decode);
            assert!(why.to_string().contains("cannot decode a (u64,)"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    match RemoteInstance::start::<Legacy>(&()) {
        Err(Error::Remote(why)) => assert!(why.to_string().contains("cannot decode"), "{why}"),
        other => panic!("{other:?}"),
    }
}

fn a_worker_that_dies_fails_every_pending_and_later_call() {
    for (method, expect) in [
        ("abort", "killed by signal 6 (SIGABRT)"),
        ("segfault", "killed by signal 11 (SIGSEGV)"),
        ("exit", "exited with status 7"),
    ] {
        let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
        let first = model.spawn::<u64>("add", &(1u64,));
        let dying = match method {
            "exit" => model.spawn::<u64>("exit", &(7i32,)),
            _ => model.spawn::<u64>(method, &()),
        };
        let queued = model.spawn::<u64>("add", &(1u64,));
        assert_eq!(first.result(), Ok(1));
        for outcome in [dying.result(), queued.result()] {
            match outcome {
                Err(Error::WorkerLost(why)) => {
                    assert!(why.to_string().contains(expect), "{why}");
                    assert!(
                        why.to_string().contains("legacy: "),
                        "the stderr tail: {why}"
                    );
                }
                other => panic!("{method}: {other:?}"),
            }
        }
        assert!(matches!(
            model.spawn::<u64>("add", &(1u64,)).result(),
            Err(Error::WorkerLost(_))
        ));
        assert!(model.lost().is_some());
    }
}

fn a_killed_worker_is_named_by_its_signal() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let long = model.spawn::<u64>("sleep", &(60_000u64,));
    std::thread::sleep(Duration::from_millis(20));
    let killed = std::process::Command::new("kill")
        .args(["-9", &model.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    match long.result() {
        Err(Error::WorkerLost(why)) => {
            assert_eq!(why.kind(), LostKind::Signalled { signal: 9 });
            assert!(
                why.to_string().contains("killed by signal 9 (SIGKILL)"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// Kills `pid` with SIGKILL.
fn kill_9(pid: u32) {
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
}

/// Starts a worker whose code starts a descendant with `method` (its pid
/// back), kills the worker with a call pending, and returns that call's
/// outcome.
fn killed_while_a_descendant_lives(method: &str) -> Result<u64, Error> {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let descendant = model.spawn::<u32>(method, &()).result().unwrap();
    assert!(descendant > 0);
    let long = model.spawn::<u64>("sleep", &(60_000u64,));
    std::thread::sleep(Duration::from_millis(20));
    kill_9(model.pid());
    let outcome = long.result();
    // Ended with the worker's process group; in case it was not.
    let _ = std::process::Command::new("kill")
        .args(["-9", &descendant.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
    outcome
}

/// A worker killed while a helper program it started still holds its
/// stderr: the pending call fails with `WorkerLost` at once, without
/// waiting for the helper to close the pipe.
fn a_worker_killed_while_its_helper_holds_its_stderr_is_lost_at_once() {
    match killed_while_a_descendant_lives("helper") {
        Err(Error::WorkerLost(why)) => assert!(why.to_string().contains("SIGKILL"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// A worker killed while a child it forked (which keeps every descriptor,
/// the socket to the parent too) lives on: its death is seen from the
/// process, not from the socket's end.
fn a_worker_killed_while_a_forked_child_holds_its_socket_is_lost() {
    match killed_while_a_descendant_lives("fork") {
        Err(Error::WorkerLost(why)) => assert!(why.to_string().contains("SIGKILL"), "{why}"),
        other => panic!("{other:?}"),
    }
}

/// 1 MB of progress output without a newline, then a byte that is not
/// UTF-8: passed on, and the worker goes on writing and calling. When it
/// dies, its error quotes a bounded tail of what it wrote.
fn progress_output_and_bad_bytes_on_stderr_pass_and_the_worker_lives() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    assert_eq!(
        model.spawn::<u32>("progress", &(16_000u32,)).result(),
        Ok(16_000)
    );
    assert_eq!(
        model.spawn::<u32>("progress", &(10u32,)).result(),
        Ok(10),
        "no broken pipe"
    );
    assert_eq!(model.spawn::<u64>("add", &(2u64,)).result(), Ok(2));
    let long = model.spawn::<u64>("sleep", &(60_000u64,));
    std::thread::sleep(Duration::from_millis(20));
    kill_9(model.pid());
    match long.result() {
        Err(Error::WorkerLost(why)) => {
            assert!(why.to_string().contains("legacy: still writing"), "{why}");
            assert!(
                why.to_string().contains("\u{fffd} done"),
                "the bad byte shown as such: {why}"
            );
            assert!(
                why.to_string().len() < 16 << 10,
                "a bounded tail: {} bytes",
                why.to_string().len()
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A running call cancelled after the instance's last handle was dropped:
/// the cancel still reaches the worker, whose call sees `cancelled()` and
/// returns, and the worker then exits (it spun on for ever before).
fn a_cancel_after_the_handle_is_dropped_reaches_the_worker() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let pid = model.pid();
    let marker = std::env::temp_dir().join(format!("concertina-spin-{pid}"));
    let _ = std::fs::remove_file(&marker);
    let running = model.spawn::<String>("spin", &(marker.to_string_lossy().into_owned(),));
    while !marker.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(&marker);
    drop(model);
    assert!(running.cancel());
    assert_eq!(running.result(), Err(Error::Cancelled));
    // The worker ends once its call has replied.
    while std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The worker's own variables are not passed on to what its code runs: a
/// concertina program started by a code is a program, not a worker.
/// The executable was rebuilt (here: removed) while the program runs: its
/// workers start from the running image, not from the path.
fn a_program_rebuilt_under_itself_still_starts_workers() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let copy = std::env::temp_dir().join(format!("concertina-rebuilt-{}", std::process::id()));
    std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
    let output = std::process::Command::new(&copy)
        .env("REMOTE_TEST_DELETED", "1")
        .env_remove("CONCERTINA_TRANSPORT")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&copy);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("deleted parent: Ok(3)"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Workers' addresses are no files (on Linux, abstract socket names): none
/// of an earlier process can be in the way, none is left behind.
fn workers_leave_no_socket_file_behind() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let ours = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(&format!("concertina-{}-", std::process::id()))
                    && name.ends_with(".sock")
            })
            .count()
    };
    assert_eq!(ours(), 0);
    // Stale files under every name a socket file of this pid could have had
    // (a process of the same pid before, killed): none is in the way.
    let stale: Vec<_> = (0..1024)
        .map(|n| std::env::temp_dir().join(format!("concertina-{}-{n}.sock", std::process::id())))
        .collect();
    for path in &stale {
        std::fs::write(path, b"stale").unwrap();
    }
    let model = RemoteInstance::start::<Legacy>(&(0u64,));
    for path in &stale {
        let _ = std::fs::remove_file(path);
    }
    let model = model.unwrap();
    assert_eq!(model.spawn::<u64>("add", &(1u64,)).result(), Ok(1));
    assert_eq!(ours(), 0, "no socket file once the worker connected");
    drop(model);
    assert_eq!(ours(), 0);
}

fn a_program_the_code_runs_is_no_worker() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    assert_eq!(model.spawn::<bool>("worker_env", &()).result(), Ok(false));
}

fn cancel_drops_a_queued_call_and_stops_a_running_one() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let marker = std::env::temp_dir().join(format!("concertina-spin-{}", model.pid()));
    let _ = std::fs::remove_file(&marker);
    let running = model.spawn::<String>("spin", &(marker.to_string_lossy().into_owned(),));
    let queued = model.spawn::<u64>("add", &(5u64,));
    assert!(queued.cancel(), "cancelled while queued behind the spin");
    // Cancel the running one once it runs.
    while !marker.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(&marker);
    assert!(running.cancel());
    assert_eq!(running.result(), Err(Error::Cancelled));
    assert_eq!(queued.result(), Err(Error::Cancelled));
    // The spin saw cancelled() and returned (adding a million); the queued
    // add never ran.
    assert_eq!(model.spawn::<u64>("total", &()).result(), Ok(1_000_000));
}

fn futures_outlive_the_handle() {
    let model = RemoteInstance::start::<Legacy>(&(10u64,)).unwrap();
    let pid = model.pid();
    // A worker rank serves until the job ends; a local worker stops.
    let stops = model.worker().rank().is_none();
    let calls: Vec<_> = (0..5u64)
        .map(|_| model.spawn::<u64>("add", &(1u64,)))
        .collect();
    let slow = model.spawn::<u64>("sleep", &(100u64,));
    drop(model);
    assert_eq!(
        slow.result(),
        Ok(100),
        "the calls made before the stop finish"
    );
    assert_eq!(
        concertina::try_wait_all(calls).unwrap(),
        [11, 12, 13, 14, 15]
    );
    assert!(
        !stops || wait_gone(pid),
        "worker {pid} still runs after its last handle was dropped"
    );
}

/// True once process `pid` is gone (or a zombie), within 10 s.
fn wait_gone(pid: u32) -> bool {
    for _ in 0..1000 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) if stat.split_whitespace().nth(2) == Some("Z") => return true,
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

fn workers_die_with_their_parent() {
    use std::io::BufRead;
    let mut parent = std::process::Command::new(std::env::current_exe().unwrap())
        .env("REMOTE_TEST_PARENT", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pids: Vec<u32> = line
        .trim()
        .strip_prefix("pids ")
        .expect("the parent says its workers' pids")
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    parent.kill().unwrap();
    parent.wait().unwrap();
    for pid in pids {
        assert!(
            wait_gone(pid),
            "worker (or helper) {pid} outlived its killed parent"
        );
    }
}

/// A worker stopped (its last handle dropped) takes the helper programs
/// its code started with it.
fn a_stopped_worker_takes_its_helpers_with_it() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let helper = model.spawn::<u32>("helper", &()).result().unwrap();
    drop(model);
    assert!(wait_gone(helper), "helper {helper} outlived its worker");
}

fn many_instances() {
    let models: Vec<_> = (0..100u64)
        .map(|i| RemoteInstance::start::<Legacy>(&(i * 100,)).unwrap())
        .collect();
    let calls: Vec<_> = models
        .iter()
        .map(|m| m.spawn::<u64>("add", &(1u64,)))
        .collect();
    let totals = concertina::try_wait_all(calls).unwrap();
    assert_eq!(totals, (0..100u64).map(|i| i * 100 + 1).collect::<Vec<_>>());
}

fn the_attribute_makes_a_typed_client() {
    let grid = GridRemote::start(4, 0.5).unwrap();
    assert_eq!(grid.shift(1.0).result(), Ok(6.0));
    assert_eq!(grid.cells().result(), Ok(vec![1.5; 4]));
    assert_eq!(grid.set_cells(vec![1.0, 2.0]).result(), Ok(()));
    assert_eq!(grid.shift(0.0).result(), Ok(3.0));
    assert_ne!(grid.instance().pid(), std::process::id());
    // Private methods stay local.
    assert_eq!(Grid::new(3, 0.0).local_only(), 3);
    match grid.instance().spawn::<usize>("local_only", &()).result() {
        Err(Error::Remote(why)) => assert_eq!(why.to_string(), "no method `local_only`"),
        other => panic!("{other:?}"),
    }
}

fn borrowed_arguments_and_results_cross_and_reuse_memory() {
    let grid = GridRemote::start(0, 0.0).unwrap();
    assert_eq!(
        grid.load("ocean", &[1.0, 2.0, 3.0], 2.0).result(),
        Ok("ocean: 3".to_owned())
    );
    assert_eq!(grid.view().result(), Ok(vec![2.0, 4.0, 6.0]));
    // The worker decodes a borrowed argument into what it kept from the
    // method's last call: an array no longer than the last lands where it
    // did, with its own values (a longer one may move).
    let values = |n: usize, k: f64| (0..n).map(|i| i as f64 * k).collect::<Vec<_>>();
    let sum = |n: usize, k: f64| values(n, k).iter().sum::<f64>();
    let (first, total) = grid.place_of(&values(10_000, 1.0)).result().unwrap();
    assert_eq!(total, sum(10_000, 1.0));
    for (n, k) in [(5_000, 3.0), (10_000, 0.5), (1, 7.0), (0, 1.0)] {
        let (at, total) = grid.place_of(&values(n, k)).result().unwrap();
        assert_eq!(total, sum(n, k), "{n} values");
        if n > 0 {
            assert_eq!(at, first, "{n} values decoded into the kept buffer");
        }
    }
    let (_, total) = grid.place_of(&values(40_000, 2.0)).result().unwrap();
    assert_eq!(total, sum(40_000, 2.0));
    // Arguments that do not decode name the argument, and leave nothing
    // half-written behind.
    match grid
        .instance()
        .spawn::<(u64, f64)>("place_of", &(9u8,))
        .result()
    {
        Err(Error::Remote(why)) => {
            assert_eq!(why.kind(), RemoteFailureKind::Decode);
            assert!(
                why.to_string()
                    .contains("cannot decode argument 1 (a alloc::vec::Vec<f64>)"),
                "{why}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(grid.place_of(&[1.5, 2.5]).result().map(|(_, t)| t), Ok(4.0));
    // The other forms of a call borrow alike.
    let (a, b) = (values(3, 1.0), values(2, 1.0));
    assert_eq!(
        grid.load_many([("a", &a[..], 1.0), ("b", &b[..], 10.0)])
            .result(),
        Ok(vec!["a: 3".to_owned(), "b: 2".to_owned()])
    );
    assert_eq!(
        grid.view_many([(), ()]).result(),
        Ok(vec![vec![0.0, 10.0]; 2])
    );
    let each = grid.load_each([("c", &a[..], 2.0)]);
    assert_eq!(concertina::try_wait_all(each).unwrap(), ["c: 3".to_owned()]);
    let after = grid.load_after(grid.view(), "d", &b, 3.0);
    assert_eq!(after.result(), Ok("d: 2".to_owned()));
    assert_eq!(grid.view().result(), Ok(vec![0.0, 3.0]));
    // A code made from a borrowed argument.
    let probe = ProbeRemote::start("gauge").unwrap();
    assert_eq!(probe.name("-7").result(), Ok("gauge-7".to_owned()));
}

fn results_decoded_into_a_given_buffer_reuse_it() {
    let grid = GridRemote::start(1_000, 0.25).unwrap();
    let buffer = Vec::with_capacity(4_000);
    let before = buffer.as_ptr();
    let cells = grid.cells_into(buffer).result().unwrap();
    assert_eq!((cells.as_ptr(), cells.len()), (before, 1_000));
    assert!(cells.iter().all(|&c| c == 0.25));
    // A buffer with values in it: overwritten, shortened to the result.
    let mut stale = vec![9.0; 3_000];
    stale[0] = 1.0;
    let before = stale.as_ptr();
    let cells = grid.view_into(stale).result().unwrap();
    assert_eq!((cells.as_ptr(), cells.clone()), (before, vec![0.25; 1_000]));
    // A longer result grows it.
    grid.set_cells(vec![0.5; 5_000]).result().unwrap();
    assert_eq!(grid.view_into(cells).result(), Ok(vec![0.5; 5_000]));
    // Any type: a string's buffer too.
    let probe = ProbeRemote::start("p").unwrap();
    let label = String::with_capacity(64);
    let before = label.as_ptr();
    let label = probe.name_into("-1", label).result().unwrap();
    assert_eq!((label.as_str(), label.as_ptr()), ("p-1", before));
    // A failed call drops the buffer with its failure.
    match grid
        .instance()
        .spawn_into::<Vec<f64>>("missing", &(), vec![1.0])
        .result()
    {
        Err(Error::Remote(why)) => assert_eq!(why.kind(), RemoteFailureKind::UnknownMethod),
        other => panic!("{other:?}"),
    }
}

/// Arrays of every size, borrowed and lent, several in flight at once:
/// each arrives whole (the worker reads large ones from the frame or
/// message they came in, the caller decodes into the buffer it gave).
fn large_borrowed_arrays_in_flight_together_cross_intact() {
    let grid = GridRemote::start(0, 0.0).unwrap();
    let array = |n: usize, k: f64| (0..n).map(|i| (i % 1_000) as f64 * k).collect::<Vec<_>>();
    // 8 B, 10 KB, 16 MiB (over the size whose buffers are kept).
    let sizes = [1, 1_250, 2 << 20];
    let arrays: Vec<Vec<f64>> = sizes.iter().map(|&n| array(n, 0.5)).collect();
    let loads: Vec<_> = arrays
        .iter()
        .zip(["a", "b", "c"])
        .map(|(cells, label)| grid.load(label, cells, 2.0))
        .collect();
    let sums: Vec<_> = arrays.iter().map(|cells| grid.place_of(cells)).collect();
    let mut back = Vec::new();
    for _ in 0..2 {
        back = grid.view_into(back).result().unwrap();
        assert_eq!(back, array(2 << 20, 1.0), "the last load, lent back");
    }
    let kept = back.as_ptr();
    back = grid.view_into(back).result().unwrap();
    assert_eq!(back.as_ptr(), kept, "decoded into the buffer given");
    for ((load, label), n) in loads.into_iter().zip(["a", "b", "c"]).zip(sizes) {
        assert_eq!(load.result(), Ok(format!("{label}: {n}")));
    }
    for (sum, cells) in sums.into_iter().zip(&arrays) {
        assert_eq!(
            sum.result().map(|(_, total)| total),
            Ok(cells.iter().sum::<f64>())
        );
    }
}

/// Waits until `marker` exists (a spinning call runs), then removes it.
fn spinning(marker: &std::path::Path) {
    while !marker.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(marker);
}

/// A done-callback runs on no thread the transport needs: one that waits
/// on a later call of the same worker gets its value (its reply is read
/// meanwhile), and the future counts as done when its callback runs.
fn a_callback_that_waits_on_a_later_call_does_not_stop_the_replies() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let first = model.spawn::<u64>("sleep", &(100u64,));
    let later = model.spawn::<u64>("add", &(5u64,)).shared();
    let (tx, rx) = std::sync::mpsc::channel();
    let waited = later.clone();
    let done_first = first.cancel_handle();
    first.on_done(move |outcome| {
        let here = std::thread::current().name().map(str::to_owned);
        let _ = tx.send((outcome.clone(), done_first.done(), waited.result(), here));
    });
    let (value, was_done, later_value, thread) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the callback ran and its wait on the later call returned");
    assert_eq!((value, was_done, later_value), (Ok(100), true, Ok(5)));
    let thread = thread.unwrap_or_default();
    assert!(
        thread.starts_with("concertina-remote-callbacks"),
        "the callback ran on {thread:?}"
    );
    assert_eq!(first.result(), Ok(100));
    assert_eq!(later.result(), Ok(5));
}

/// A snapshot says which remote call a thread waits for, and where it runs.
fn a_snapshot_names_the_remote_call_a_thread_waits_for() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let marker = std::env::temp_dir().join(format!("concertina-snapshot-{}", model.pid()));
    let spinning = model.spawn::<String>("spin", &(marker.to_string_lossy().into_owned(),));
    let handle = spinning.cancel_handle();
    let waiter = std::thread::Builder::new()
        .name("coupler".into())
        .spawn(move || spinning.result())
        .unwrap();
    let mut text = String::new();
    for _ in 0..20_000 {
        text = concertina::snapshot().to_string();
        if text.contains("thread `coupler`") {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let place = match model.worker().rank() {
        Some(rank) => format!("MPI rank {rank}"),
        None => format!("worker process {}", model.pid()),
    };
    assert!(
        text.contains(&format!("waits on a remote call of `spin` on {place}")),
        "{text}"
    );
    handle.cancel();
    assert_eq!(waiter.join().unwrap(), Err(Error::Cancelled));
    let _ = std::fs::remove_file(marker);
}

/// The replies of a vectorised call go back once its calls have run, even
/// when its last call was cancelled and another vectorised call follows
/// whose first call runs on and on: they are not held behind it.
fn a_batchs_replies_do_not_wait_for_the_next_message() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let marker = |name: &str| {
        let path = std::env::temp_dir().join(format!("concertina-{name}-{}", model.pid()));
        let _ = std::fs::remove_file(&path);
        path
    };
    let (first, second) = (marker("hold"), marker("next"));
    // Holds the queue while the rest is queued.
    let hold = model.spawn::<String>("spin", &(first.to_string_lossy().into_owned(),));
    spinning(&first);
    let mut quick = model.spawn_each::<u64, _>("add", [(1u64,), (2,), (3,)]);
    let next = model.spawn_each::<String, _>("spin", [(second.to_string_lossy().into_owned(),)]);
    let cancelled = quick.pop().expect("three calls");
    assert!(cancelled.cancel());
    assert!(hold.cancel());
    // The next message's spin runs now, until cancelled: the quick ones
    // have replied by then.
    spinning(&second);
    // (The held spin added a million as it stopped.)
    assert_eq!(concertina::wait_all(quick), [Ok(1_000_001), Ok(1_000_003)]);
    assert!(next.iter().all(|f| !f.done()));
    for f in &next {
        f.cancel();
    }
    assert_eq!(cancelled.result(), Err(Error::Cancelled));
}

/// Calls of 1 B to 64 MB made without waiting, on two instances (two
/// worker ranks under MPI), their arguments and results in flight in both
/// directions at once: beyond the MPI library's eager limit, a blocking
/// send on both sides would wait for ever. Every reply comes back whole.
fn messages_of_every_size_in_flight_both_ways_at_once() {
    let grids: Vec<_> = (0..2).map(|_| GridRemote::start(1, 0.0).unwrap()).collect();
    let sizes = [1usize, 10_000, 100_000, 1 << 20];
    let mut calls = Vec::new();
    for round in 0..4u8 {
        for &size in &sizes {
            for (g, grid) in grids.iter().enumerate() {
                let key = round.wrapping_mul(31) ^ g as u8 ^ size as u8;
                calls.push((size, key, grid.echo(vec![round; size], key)));
            }
        }
    }
    // The largest: one each way on each instance, beside the others.
    for (g, grid) in grids.iter().enumerate() {
        calls.push((64 << 20, g as u8, grid.echo(vec![0; 64 << 20], g as u8)));
    }
    for (i, (size, key, call)) in calls.into_iter().enumerate() {
        let back = call.result().unwrap();
        assert_eq!(back.len(), size, "call {i}");
        assert!(back.iter().all(|&b| b == back[0]), "call {i}: whole");
        assert_eq!(
            back[0] ^ key,
            if size == 64 << 20 { 0 } else { (i / 8) as u8 }
        );
    }
}

/// Large messages one after another, each of another size and pattern:
/// the buffers kept from one large message for the next (a frame, a call's
/// arguments, its result) carry only the new message's bytes, whole, at
/// their start — a shorter message after a longer one, a longer after a
/// shorter, one of the same size.
fn large_messages_of_varying_sizes_carry_their_own_bytes() {
    let grid = GridRemote::start(1, 0.0).unwrap();
    let mib = 1usize << 20;
    for (round, size) in [
        4 * mib,
        3 * mib,
        4 * mib + 17,
        4 * mib + 17,
        2 * mib,
        5 * mib,
    ]
    .into_iter()
    .enumerate()
    {
        let pattern = |i: usize| (i.wrapping_mul(131) ^ round) as u8;
        let values: Vec<u8> = (0..size).map(pattern).collect();
        let key = 0x5a ^ round as u8;
        let back = grid.echo(values, key).result().unwrap();
        assert_eq!(back.len(), size, "round {round}");
        if let Some(i) = (0..size).find(|&i| back[i] ^ key != pattern(i)) {
            panic!("round {round}: byte {i} of {size} is {} ", back[i]);
        }
    }
}

/// An interrupt (what a Ctrl-C does) while a thread waits for a remote call
/// fails the wait with `Interrupted` and cancels the call in the worker,
/// which serves on — also while the waiting thread receives the replies
/// itself (on MPI ranks, replies of another instance keep coming to it).
fn an_interrupt_fails_the_wait_for_a_remote_call_and_cancels_it() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let grid = GridRemote::start(1, 0.0).unwrap();
    let marker = std::env::temp_dir().join(format!("concertina-interrupted-{}", model.pid()));
    let _ = std::fs::remove_file(&marker);
    let spin = model.spawn::<String>("spin", &(marker.to_string_lossy().into_owned(),));
    common::wait_until("the call runs", || marker.exists());
    let _ = std::fs::remove_file(&marker);
    // Calls of another instance all along, never waited on with a wait that
    // an interrupt would end: their replies reach whoever receives them.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(AtomicU64::new(0));
    let traffic = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut made = 0u64;
            let mut flying = std::collections::VecDeque::new();
            while !stop.load(Ordering::SeqCst) || !flying.is_empty() {
                if !stop.load(Ordering::SeqCst) && flying.len() < 32 {
                    flying.push_back(grid.shift(0.0));
                    made += 1;
                    sent.store(made, Ordering::SeqCst);
                }
                if flying
                    .front()
                    .is_some_and(|f: &concertina::Future<f64>| f.done())
                {
                    let done = flying.pop_front().unwrap();
                    assert_eq!(done.result(), Ok(0.0));
                }
                std::thread::yield_now();
            }
            made
        })
    };
    common::wait_until("the other instance's calls flow", || {
        sent.load(Ordering::SeqCst) > 0
    });
    let waiter = std::thread::spawn(move || spin.result());
    common::wait_until("an interrupt reaches the wait", || {
        concertina::interrupt::interrupt_waits() > 0
    });
    let outcome = common::within(10, move || waiter.join().unwrap());
    assert_eq!(outcome, Err(Error::Interrupted));
    stop.store(true, Ordering::SeqCst);
    let made = common::within(10, move || traffic.join().unwrap());
    assert!(made > 0);
    // The spin saw cancelled() and returned (adding a million).
    assert_eq!(model.spawn::<u64>("total", &()).result(), Ok(1_000_000));
}

/// An argument over the 1 GiB limit of a message fails its call at once
/// with an error naming the size and the limit; a result over it fails its
/// call; a batch whose results together are over it comes back in parts.
/// The instance lives on. Heavy (gigabytes): run with `CONCERTINA_HEAVY=1
/// cargo test --release --test remote` (and under `mpirun -n 3`).
fn messages_over_the_limit_fail_their_calls_and_the_instance_lives() {
    if std::env::var_os("CONCERTINA_HEAVY").is_none() {
        return;
    }
    let grid = GridRemote::start(1, 0.0).unwrap();
    match grid.echo(vec![0; (1 << 30) + 1], 0).result() {
        Err(Error::Remote(why)) => {
            assert_eq!(why.kind(), RemoteFailureKind::TooLarge);
            assert!(
                why.to_string().contains("over the 1073741824-byte limit"),
                "{why}"
            );
        }
        other => panic!("{:?}", other.map(|v| v.len())),
    }
    match grid.bytes((1 << 30) + 1).result() {
        Err(Error::Remote(why)) => assert!(
            why.to_string().contains("over the 1073741824-byte limit"),
            "{why}"
        ),
        other => panic!("{:?}", other.map(|v| v.len())),
    }
    let batch = grid
        .instance()
        .spawn_each::<Vec<u8>, _>("bytes", (0..1_100).map(|_| (1usize << 20,)));
    let batch = concertina::try_wait_all(batch).unwrap();
    assert!(batch.iter().all(|b| b.len() == 1 << 20));
    assert_eq!(grid.shift(1.0).result(), Ok(1.0), "the instance lives");
}

fn garbage_on_the_channel_is_a_clear_worker_lost() {
    let healthy = GridRemote::start(2, 1.0).unwrap();
    match RemoteInstance::builder()
        .env("REMOTE_TEST_FAKE", "garbage")
        .start::<Legacy>(&(0u64,))
    {
        Err(Error::WorkerLost(why)) => {
            assert_eq!(why.kind(), LostKind::Garbage);
            assert!(
                why.to_string()
                    .contains("a frame of 2147483647 bytes announced"),
                "{why}"
            );
        }
        other => panic!("{other:?}"),
    }
    let cut = RemoteInstance::builder()
        .env("REMOTE_TEST_FAKE", "cut")
        .start::<Legacy>(&(0u64,))
        .unwrap();
    match cut.spawn::<u64>("add", &(1u64,)).result() {
        Err(Error::WorkerLost(why)) => {
            assert!(
                why.to_string()
                    .contains("the stream ended inside a frame of 16 bytes"),
                "{why}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Nothing lost on the other instance.
    assert_eq!(healthy.shift(1.0).result(), Ok(4.0));
}

fn vectorised_calls_keep_their_order_and_cancel_alone() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let before = model.spawn::<u64>("add", &(1u64,));
    let many = model.spawn_each::<u64, _>("add", (0..1000u64).map(|_| (1u64,)));
    let after = model.spawn::<u64>("add", &(1u64,));
    assert_eq!(before.result(), Ok(1));
    let totals = concertina::try_wait_all(many).unwrap();
    assert_eq!(totals, (2..=1001).collect::<Vec<u64>>());
    assert_eq!(after.result(), Ok(1002));

    // One of a batch cancelled while queued behind a spin: only it is dropped.
    let marker = std::env::temp_dir().join(format!("concertina-spin-{}", model.pid()));
    let _ = std::fs::remove_file(&marker);
    let spin = model.spawn::<String>("spin", &(marker.to_string_lossy().into_owned(),));
    let mut batch = model.spawn_each::<u64, _>("add", [(1u64,), (1u64,), (1u64,)]);
    assert!(batch[1].cancel());
    while !marker.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(&marker);
    assert!(spin.cancel());
    let last = batch.pop().unwrap().result();
    let middle = batch.pop().unwrap().result();
    let first = batch.pop().unwrap().result();
    assert_eq!(
        (first, middle, last),
        (Ok(1_001_003), Err(Error::Cancelled), Ok(1_001_004))
    );

    // The attribute's form with a future per call.
    let grid = GridRemote::start(1, 0.0).unwrap();
    let sums = concertina::try_wait_all(grid.shift_each([(1.0,), (2.0,)])).unwrap();
    assert_eq!(sums, [1.0, 3.0]);
    assert!(model.spawn_each::<u64, (u64,)>("add", []).is_empty());
}

/// `<method>_many` is one call over arrays: one future for the results in
/// order, run after the calls made before it; a panic in one of the calls
/// fails the future and makes no more; a cancel stops the calls not made
/// yet; the instance goes on.
fn vectorised_calls_are_one_call_over_arrays() {
    let grid = GridRemote::start(1, 0.0).unwrap();
    let before = grid.shift(1.0);
    let sums = grid.shift_many([(1.0,), (2.0,)]);
    assert_eq!(sums.result(), Ok(vec![2.0, 4.0]));
    assert_eq!(before.result(), Ok(1.0));
    let many = grid
        .shift_many((0..10_000).map(|_| (0.0,)))
        .result()
        .unwrap();
    assert_eq!(many.len(), 10_000);
    assert!(many.iter().all(|&sum| sum == 4.0));
    assert_eq!(grid.shift_many([]).result(), Ok(Vec::new()));

    let failing = grid.checked_shift_many([(1.0,), (f64::NAN,), (1.0,)]);
    match failing.result() {
        Err(Error::Panicked(message)) => assert!(message.contains("NaN"), "{message}"),
        other => panic!("a panicking call in a batch gave {other:?}"),
    }
    assert_eq!(
        grid.shift(0.0).result(),
        Ok(5.0),
        "the first ran, the third not"
    );

    let pauses = grid.pause_many((0..1_000).map(|_| (20,)));
    std::thread::sleep(Duration::from_millis(100));
    assert!(pauses.cancel());
    assert_eq!(pauses.result(), Err(Error::Cancelled));
    let made = grid.pause(0).result().unwrap();
    assert!(
        made < 500,
        "the cancelled batch stopped: {made} pauses made"
    );
}

/// A call made after another future keeps its place: the calls made after
/// it wait for the dependency too; a failed dependency fails it (not made)
/// and the instance goes on; a cancelled one lets the rest go on; `wait`
/// returns once every call made before it has finished.
fn calls_after_a_dependency_keep_their_place() {
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let other = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let slow = other.spawn::<u64>("sleep", &(200u64,));
    let after = model.spawn_after::<u64, _>(slow.when_done(), "add", &(1u64,));
    let next = model.spawn::<u64>("add", &(10u64,));
    assert_eq!(
        next.result(),
        Ok(11),
        "the later call ran after the waiting one"
    );
    assert_eq!(after.result(), Ok(1));
    assert_eq!(slow.result(), Ok(200));

    let failing = other.spawn::<u64>("panic", &());
    let skipped = model.spawn_after::<u64, _>(failing, "add", &(100u64,));
    match skipped.result() {
        Err(Error::DependencyFailed(cause)) => {
            assert!(matches!(*cause, Error::Panicked(_)), "{cause:?}")
        }
        other => panic!("after a failed dependency: {other:?}"),
    }
    assert_eq!(
        model.spawn::<u64>("add", &(0u64,)).result(),
        Ok(11),
        "it was not made"
    );

    // Threads of its own, in every mode: the task waits for the release.
    let pool = concertina::Pool::builder()
        .backend(concertina::Backend::Crossbeam)
        .threads(1)
        .build()
        .unwrap();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let unfinished = pool.spawn(move || {
        let _ = gate.recv();
    });
    let waiting = model.spawn_after::<u64, _>(unfinished, "add", &(1_000u64,));
    let behind = model.spawn::<u64>("add", &(1u64,));
    assert!(
        !behind.wait_timeout(Duration::from_millis(50)),
        "it waits behind"
    );
    assert!(waiting.cancel());
    assert_eq!(
        behind.result(),
        Ok(12),
        "a cancelled one lets the rest go on"
    );
    drop(release);

    let steps: Vec<_> = (0..5)
        .map(|_| model.spawn::<u64>("add", &(1u64,)))
        .collect();
    model.wait().unwrap();
    assert!(steps.iter().all(concertina::Future::done));
    let grid = GridRemote::start(1, 0.0).unwrap();
    let first = grid.shift(1.0);
    assert_eq!(grid.shift_after(first.when_done(), 2.0).result(), Ok(3.0));
}

fn calls_from_many_threads_keep_the_order_they_were_made_in() {
    // Each thread's calls stay in its order; the worker sees them in the
    // order their ids were given.
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let model = model.clone();
            std::thread::spawn(move || {
                let calls: Vec<_> = (0..200)
                    .map(|_| model.spawn::<u64>("add", &(1u64,)))
                    .collect();
                concertina::try_wait_all(calls).unwrap()
            })
        })
        .collect();
    let mut all = Vec::new();
    for thread in threads {
        let totals = thread.join().unwrap();
        assert!(
            totals.windows(2).all(|w| w[0] < w[1]),
            "in each thread's order"
        );
        all.extend(totals);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=800).collect::<Vec<u64>>(), "each call ran once");
}

/// In a child process: a worker runs a call until cancelled; the parent
/// waits on it and is sent SIGINT (by the test, at "ready"). A SIGINT sent
/// to the worker itself leaves it alone.
fn ctrl_c_scenario() {
    use common::say;
    concertina::default_pool().unwrap(); // installs the Ctrl-C handler
    let model = RemoteInstance::start::<Legacy>(&(0u64,)).unwrap();
    let marker = std::env::temp_dir().join(format!("concertina-spin-{}", model.pid()));
    let _ = std::fs::remove_file(&marker);
    let spin = model.spawn::<String>("spin", &(marker.to_string_lossy().into_owned(),));
    while !marker.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = std::fs::remove_file(&marker);
    // The terminal's Ctrl-C reaches the worker too: it ignores it.
    let sent = std::process::Command::new("kill")
        .args(["-INT", &model.pid().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // Ready once this thread is blocked in the wait: a SIGINT before it
    // would find nobody waiting.
    std::thread::spawn(|| {
        while concertina::interrupt::blocked_waits() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        say("ready: waiting on the remote call");
    });
    let outcome = spin.result();
    say(format!("outcome {outcome:?}"));
    let total = model.spawn::<u64>("total", &()).result();
    say(format!("total {total:?}"));
}

fn ctrl_c_cancels_the_remote_call_waited_on_and_the_worker_lives() {
    let (lines, code) = common::child("ctrl_c", &[]);
    assert_eq!(code, Some(0), "{lines:?}");
    assert!(
        lines.contains(&"outcome Err(Interrupted)".to_owned()),
        "{lines:?}"
    );
    // The spin saw cancelled() in the worker, which still answers.
    assert!(lines.contains(&"total Ok(1000000)".to_owned()), "{lines:?}");
}
