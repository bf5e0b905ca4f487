//! How the `mojo_proxy` process ends, run for real with the test holding the
//! other ends of its two sockets: a shutdown signal is a clean exit 0, a
//! peer that breaks the protocol is exit 1 with one log line (Chromium's
//! proxy stalls forever there), and a peer that hangs up ends the run.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const PROXY: &str = env!("CARGO_BIN_EXE_mojo_proxy");

/// How long a proxy may take to notice and exit.
const EXIT_WITHIN: Duration = Duration::from_secs(1);

/// Serializes spawns: fds made inheritable for one child must not leak into another.
static SPAWN: Mutex<()> = Mutex::new(());

/// A running proxy and the test's ends of its sockets.
struct Running {
    child: Child,
    host: UnixStream,
    client: UnixStream,
}

fn spawn(extra: &[&str]) -> Running {
    let (client, client_peer) = UnixStream::pair().unwrap();
    let (host, host_peer) = UnixStream::pair().unwrap();
    let client: OwnedFd = client.into();
    let host: OwnedFd = host.into();
    let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    for fd in [&client, &host] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    }
    let child = Command::new(PROXY)
        .arg(format!("--legacy-client-fd={}", client.as_raw_fd()))
        .arg(format!("--host-ipcz-transport-fd={}", host.as_raw_fd()))
        .args(extra)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Running {
        child,
        host: host_peer,
        client: client_peer,
    }
}

/// Waits at most `limit` for the child; kills it and fails past that.
fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            panic!("the proxy did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// Waits until the proxy wrote its legacy `INIT` (so it is running its loop).
fn wait_for_init(client: &mut UnixStream) {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(client.read(&mut byte).unwrap(), 1, "INIT from the proxy");
}

#[test]
fn sigterm_and_sigint_are_a_clean_exit_0() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut p = spawn(&["--attachment-name=pipe!"]);
        wait_for_init(&mut p.client);
        kill(Pid::from_raw(p.child.id() as i32), signal).unwrap();
        let status = wait_within(&mut p.child, EXIT_WITHIN);
        let text = stderr_of(&mut p.child);
        assert_eq!(status.code(), Some(0), "{signal}: stderr {text}");
        assert!(text.is_empty(), "{signal}: nothing at warn level: {text}");
    }
}

#[test]
fn garbage_from_the_host_is_exit_1_with_one_line() {
    let mut p = spawn(&["--attachment-name=pipe!"]);
    wait_for_init(&mut p.client);
    // A frame header claiming 8 bytes, then junk: not an ipcz greeting.
    p.host
        .write_all(&[8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    let status = wait_within(&mut p.child, EXIT_WITHIN);
    let text = stderr_of(&mut p.child);
    assert_eq!(status.code(), Some(1), "stderr {text}");
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text:?}");
    assert!(text.contains("host"), "names the host: {text}");
}

#[test]
fn garbage_from_the_client_is_exit_1_with_one_line() {
    let mut p = spawn(&["--num-attachments=2"]);
    wait_for_init(&mut p.client);
    // A legacy channel header claiming 4 bytes: shorter than its own header.
    p.client.write_all(&[4, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    let status = wait_within(&mut p.child, EXIT_WITHIN);
    let text = stderr_of(&mut p.child);
    assert_eq!(status.code(), Some(1), "stderr {text}");
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text:?}");
    assert!(text.contains("legacy client"), "names the client: {text}");
}

#[test]
fn a_host_that_hangs_up_before_inviting_is_exit_1() {
    let mut p = spawn(&["--attachment-name=pipe!"]);
    wait_for_init(&mut p.client);
    drop(p.host);
    let status = wait_within(&mut p.child, EXIT_WITHIN);
    let text = stderr_of(&mut p.child);
    assert_eq!(status.code(), Some(1), "stderr {text}");
    assert!(text.contains("before its invitation"), "{text}");
}
