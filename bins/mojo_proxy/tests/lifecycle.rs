//! How the `mojo_proxy` process ends, run for real with the test holding the
//! other ends of its two sockets: a shutdown signal is a clean exit 0, a
//! peer that breaks the protocol is exit 1 with one log line (Chromium's
//! proxy stalls forever there, and ours holds no `/dev/shm` file, leaves
//! none, never panics and closes the other peer's socket), and a peer that
//! hangs up ends the run.

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
/// Files in `/dev/shm` named as the platform crate names its own.
fn our_dev_shm_files() -> std::collections::BTreeSet<String> {
    std::fs::read_dir(mojo_platform_channel::SHM_DIR)
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(mojo_platform_channel::SHM_NAME_PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

/// `/dev/shm` files the running proxy has open or mapped.
fn proxy_dev_shm(child: &Child) -> Vec<String> {
    let pid = child.id();
    let mut found: Vec<String> = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("/dev/shm/"))
        .map(str::to_string)
        .collect();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            if target.starts_with("/dev/shm") {
                found.push(target.display().to_string());
            }
        }
    }
    found
}

/// Reads `socket` to its end (the proxy closed its side), within a second.
fn expect_closed(socket: &mut UnixStream, what: &str) {
    socket.set_read_timeout(Some(EXIT_WITHIN)).unwrap();
    let mut rest = Vec::new();
    socket
        .read_to_end(&mut rest)
        .unwrap_or_else(|e| panic!("{what} was not closed: {e}"));
}

/// The checks after a protocol violation on one link: exit 1 within a
/// second, one log line naming `who`, no panic, the other socket closed,
/// no `/dev/shm` file held or left.
fn expect_violation(mut p: Running, who: &str, shm_before: &std::collections::BTreeSet<String>) {
    let status = wait_within(&mut p.child, EXIT_WITHIN);
    let text = stderr_of(&mut p.child);
    assert_eq!(status.code(), Some(1), "stderr {text}");
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text:?}");
    assert!(text.contains(" ERROR "), "an error line: {text}");
    assert!(!text.contains("panicked"), "a panic: {text}");
    assert!(text.contains(who), "names the {who}: {text}");
    expect_closed(&mut p.host, "the host's socket");
    expect_closed(&mut p.client, "the client's socket");
    assert!(
        our_dev_shm_files().is_subset(shm_before),
        "/dev/shm files left"
    );
}

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
    let shm_before = our_dev_shm_files();
    let mut p = spawn(&["--attachment-name=pipe!"]);
    wait_for_init(&mut p.client);
    assert_eq!(proxy_dev_shm(&p.child), Vec::<String>::new());
    // A frame header claiming 8 bytes, then junk: not an ipcz greeting.
    p.host
        .write_all(&[8, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
        .unwrap();
    expect_violation(p, "host", &shm_before);
}

#[test]
fn garbage_from_the_client_is_exit_1_with_one_line() {
    let shm_before = our_dev_shm_files();
    let mut p = spawn(&["--num-attachments=2"]);
    wait_for_init(&mut p.client);
    assert_eq!(proxy_dev_shm(&p.child), Vec::<String>::new());
    // A legacy channel header claiming 4 bytes: shorter than its own header.
    p.client.write_all(&[4, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    expect_violation(p, "legacy client", &shm_before);
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
