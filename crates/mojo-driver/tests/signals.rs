//! `SIGTERM` and `SIGINT` delivered to a child process that runs the driver
//! loop (echo core, mid-traffic) end it cleanly with exit status 0; with the
//! status signal asked for, `SIGUSR1` mid-traffic pauses the run with
//! `Exit::Status` and the loop goes on echoing.
//!
//! This test binary has its own `main` (`harness = false` in Cargo.toml):
//! the child must block the signals before any other thread exists, and
//! libtest runs tests on threads it starts first. The parent re-executes
//! this binary with `MOJO_DRIVER_SIGNAL_CHILD` set; the child's socket is
//! its stdin, which it duplicates (no `unsafe` adoption needed).

#![allow(missing_docs)]

mod common;

use std::os::fd::AsFd;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mojo_driver::{Driver, Exit, ShutdownSignal, Signals};
use mojo_platform_channel::{Endpoint, socketpair_fds};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const CHILD_ENV: &str = "MOJO_DRIVER_SIGNAL_CHILD";
/// `CHILD_ENV`'s value for a child that also takes `SIGUSR1`.
const CHILD_WITH_STATUS: &str = "status";
/// Exit status of a child whose run ended any other way than by the signal.
const CHILD_WRONG_EXIT: i32 = 3;
/// Exit status of a child that left an fd open.
const CHILD_FD_LEAK: i32 = 4;

/// The child: the loop a binary would run, ended by a signal.
fn child(with_status: bool) -> i32 {
    let before = open_fd_count();
    let mut statuses = 0;
    let exit = {
        let signals = if with_status {
            Signals::block_shutdown_and_status_signals()
        } else {
            Signals::block_shutdown_signals()
        }
        .expect("signalfd");
        let socket = std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .expect("dup stdin");
        let mut driver = Driver::new().expect("epoll");
        driver.watch_signals(signals).expect("register signalfd");
        driver
            .add_link(Endpoint::from_owned_fd(socket).expect("stdin is a socket"))
            .expect("register link");
        let mut core = EchoCore::default();
        loop {
            match driver.run(&mut core) {
                Ok(Exit::Status) => statuses += 1,
                other => break other,
            }
        }
    };
    let after = open_fd_count();
    match exit {
        Ok(Exit::Signal(_)) if with_status && statuses == 0 => {
            eprintln!("child: no SIGUSR1 seen");
            CHILD_WRONG_EXIT
        }
        Ok(Exit::Signal(sig)) if after == before => {
            println!("child: {sig} ended the run");
            0
        }
        Ok(Exit::Signal(_)) => {
            eprintln!("child: {before} fds open before the run, {after} after");
            CHILD_FD_LEAK
        }
        other => {
            eprintln!("child: run ended with {other:?}");
            CHILD_WRONG_EXIT
        }
    }
}

fn wait_with_deadline(child: &mut std::process::Child, deadline: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            panic!("child did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends a frame with two fds and waits for its echo (skipping the echoes
/// of earlier traffic).
fn echo_round_trip(ep: &mut Endpoint, payload: &[u8]) {
    let _ = ep.queue(frame(payload, 2), some_fds(2));
    let start = Instant::now();
    loop {
        let _ = ep.flush();
        peer_read(ep);
        while let Some((got, fds)) = take_frame(ep) {
            if got == payload {
                assert_eq!(fds.len(), 2, "the echo's fds");
                return;
            }
        }
        assert!(start.elapsed() < DEADLINE, "no echo from the child");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Starts the child, echoes traffic through it, signals it while frames are
/// still flowing (first with `SIGUSR1`s, after which it must still echo, if
/// `with_status`), and checks its exit status.
fn signal_mid_traffic(signal: Signal, expected: ShutdownSignal, with_status: bool) {
    assert_eq!(signal as i32, expected.number());
    let before = open_fd_count();
    {
        let (ours, theirs) = socketpair_fds(true, true).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, if with_status { CHILD_WITH_STATUS } else { "1" })
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut ep = Endpoint::from_owned_fd(ours).unwrap();
        // One echo with fds proves the loop runs (so the signals are blocked).
        echo_round_trip(&mut ep, b"ping");
        // Keep it busy, then signal it.
        for i in 0..64u32 {
            let _ = ep.queue(frame(&i.to_le_bytes().repeat(1024), 0), vec![]);
        }
        let _ = ep.flush();
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        if with_status {
            for _ in 0..3 {
                kill(pid, Signal::SIGUSR1).unwrap();
                echo_round_trip(&mut ep, b"still there");
            }
        }
        kill(pid, signal).unwrap();
        let status = wait_with_deadline(&mut child, Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "child: {status}");
    }
    assert_eq!(open_fd_count(), before, "fd leak in the parent");
}

fn sigterm_ends_the_loop_with_exit_0() {
    signal_mid_traffic(Signal::SIGTERM, ShutdownSignal::Terminate, false);
}

fn sigint_ends_the_loop_with_exit_0() {
    signal_mid_traffic(Signal::SIGINT, ShutdownSignal::Interrupt, false);
}

fn sigusr1_is_a_status_request_and_the_loop_goes_on() {
    signal_mid_traffic(Signal::SIGTERM, ShutdownSignal::Terminate, true);
}

type TestFn = fn();

const TESTS: &[(&str, TestFn)] = &[
    (
        "sigterm_ends_the_loop_with_exit_0",
        sigterm_ends_the_loop_with_exit_0,
    ),
    (
        "sigint_ends_the_loop_with_exit_0",
        sigint_ends_the_loop_with_exit_0,
    ),
    (
        "sigusr1_is_a_status_request_and_the_loop_goes_on",
        sigusr1_is_a_status_request_and_the_loop_goes_on,
    ),
];

/// A minimal stand-in for libtest: `--list`, name filters, and the summary
/// line CI totals.
fn main() {
    if let Some(mode) = std::env::var_os(CHILD_ENV) {
        std::process::exit(child(mode == CHILD_WITH_STATUS));
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let selected: Vec<&(&str, TestFn)> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f)))
        .collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return;
    }
    println!("\nrunning {} tests", selected.len());
    let mut failed = 0;
    for (name, test) in &selected {
        let ok = std::panic::catch_unwind(test).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        failed += usize::from(!ok);
    }
    let filtered_out = TESTS.len() - selected.len();
    println!(
        "\ntest result: {}. {} passed; {failed} failed; 0 ignored; 0 measured; {filtered_out} \
         filtered out\n",
        if failed == 0 { "ok" } else { "FAILED" },
        selected.len() - failed
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
