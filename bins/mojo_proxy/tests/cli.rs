//! The `mojo_proxy` binary's command line, run as a real process with real
//! inherited sockets.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Output};
use std::sync::Mutex;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};

/// Serializes spawns: fds made inheritable for one child must not leak into another.
static SPAWN: Mutex<()> = Mutex::new(());

const PROXY: &str = env!("CARGO_BIN_EXE_mojo_proxy");

/// Runs the proxy with `args`, after making `inherit` inheritable.
fn run_with(inherit: &[&OwnedFd], args: &[String]) -> Output {
    let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    for fd in inherit {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).expect("clear FD_CLOEXEC");
    }
    let output = Command::new(PROXY)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run mojo_proxy");
    for fd in inherit {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).expect("set FD_CLOEXEC");
    }
    output
}

fn run(args: &[&str]) -> Output {
    run_with(&[], &args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Two socket pairs: the proxy gets one end of each.
struct Sockets {
    client: OwnedFd,
    host: OwnedFd,
    _peers: (UnixStream, UnixStream),
}

fn sockets() -> Sockets {
    let (client, client_peer) = UnixStream::pair().unwrap();
    let (host, host_peer) = UnixStream::pair().unwrap();
    Sockets {
        client: client.into(),
        host: host.into(),
        _peers: (client_peer, host_peer),
    }
}

fn fd_args(s: &Sockets) -> Vec<String> {
    vec![
        format!("--legacy-client-fd={}", s.client.as_raw_fd()),
        format!("--host-ipcz-transport-fd={}", s.host.as_raw_fd()),
    ]
}

fn assert_usage_error(output: &Output, needle: &str) {
    let text = stderr(output);
    assert_eq!(output.status.code(), Some(2), "stderr: {text}");
    assert!(text.contains(needle), "stderr {text:?} lacks {needle:?}");
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "one line expected: {text:?}"
    );
}

#[test]
fn help_documents_every_flag() {
    let output = run(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--legacy-client-fd",
        "--host-ipcz-transport-fd",
        "--attachment-name",
        "--num-attachments",
        "--numeric-attachment-names",
        "--inherit-ipcz-broker",
        "--legacy-profile",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn missing_fds_are_usage_errors() {
    assert_usage_error(&run(&["--attachment-name=pipe!"]), "--legacy-client-fd");
    assert_usage_error(
        &run(&["--legacy-client-fd=3", "--attachment-name=pipe!"]),
        "--host-ipcz-transport-fd",
    );
}

#[test]
fn non_numeric_values_are_usage_errors() {
    assert_usage_error(
        &run(&[
            "--legacy-client-fd=three",
            "--host-ipcz-transport-fd=4",
            "--attachment-name=p",
        ]),
        "not a file descriptor",
    );
    let s = sockets();
    let mut args = fd_args(&s);
    args.push("--num-attachments=lots".into());
    assert_usage_error(&run_with(&[&s.client, &s.host], &args), "--num-attachments");
}

#[test]
fn no_attachment_is_a_usage_error() {
    let s = sockets();
    assert_usage_error(
        &run_with(&[&s.client, &s.host], &fd_args(&s)),
        "no attachment",
    );
}

#[test]
fn an_fd_that_is_not_open_is_a_usage_error() {
    let s = sockets();
    let args = [
        format!("--legacy-client-fd={}", s.client.as_raw_fd()),
        "--host-ipcz-transport-fd=987".to_string(),
        "--attachment-name=pipe!".to_string(),
    ];
    let output = run_with(&[&s.client], &args);
    assert_usage_error(&output, "--host-ipcz-transport-fd=987");
    assert!(stderr(&output).contains("not open"), "{}", stderr(&output));
}

#[test]
fn an_fd_that_is_not_a_socket_is_a_usage_error() {
    let s = sockets();
    let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let args = [
        format!("--legacy-client-fd={}", file.as_raw_fd()),
        format!("--host-ipcz-transport-fd={}", s.host.as_raw_fd()),
        "--attachment-name=pipe!".to_string(),
    ];
    let output = run_with(&[&file, &s.host], &args);
    assert_usage_error(&output, "--legacy-client-fd");
    assert!(
        stderr(&output).contains("not a unix stream socket"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn one_socket_named_by_both_switches_is_refused_before_adoption() {
    let s = sockets();
    let args = [
        format!("--legacy-client-fd={}", s.client.as_raw_fd()),
        format!("--host-ipcz-transport-fd={}", s.client.as_raw_fd()),
        "--attachment-name=pipe!".to_string(),
    ];
    let output = run_with(&[&s.client], &args);
    assert_usage_error(&output, "--host-ipcz-transport-fd");
    assert!(
        stderr(&output).contains("must be two different sockets"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn unknown_switches_are_ignored_and_valid_input_gets_past_parsing() {
    let s = sockets();
    let mut args = fd_args(&s);
    args.extend(
        [
            "--enable-features=Foo",
            "--v=2",
            "--attachment-name=pipe!",
            "stray",
        ]
        .map(String::from),
    );
    // The host's end is closed at once: the proxy runs, finds the host gone
    // before its invitation and exits 1 with one line; never 2, which means
    // the command line was refused.
    drop(s._peers.1);
    let output = run_with(&[&s.client, &s.host], &args);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "stderr: {text}");
    assert!(
        text.contains("closed before its invitation"),
        "stderr: {text}"
    );
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text:?}");
}

#[test]
fn more_than_seven_numeric_attachments_is_a_warning() {
    let s = sockets();
    let mut args = fd_args(&s);
    args.push("--num-attachments=8".into());
    let output = run_with(&[&s.client, &s.host], &args);
    let text = stderr(&output);
    assert_ne!(output.status.code(), Some(2), "stderr: {text}");
    assert!(text.contains("at most 7"), "stderr: {text}");
    // An invitation carries at most 7 attachments (MojoIpcz's limit), so
    // the proxy cannot start.
    assert_eq!(output.status.code(), Some(1), "stderr: {text}");
}

#[test]
fn a_refused_fd_is_still_one_line_when_there_are_warnings() {
    // Nine numeric attachments draw a warning; the proxy must still say
    // nothing but the error line when it then refuses an fd.
    let s = sockets();
    let args = [
        format!("--legacy-client-fd={}", s.client.as_raw_fd()),
        "--host-ipcz-transport-fd=987".to_string(),
        "--num-attachments=9".to_string(),
    ];
    let output = run_with(&[&s.client], &args);
    assert_usage_error(&output, "--host-ipcz-transport-fd=987");
}

#[test]
fn help_into_a_closed_pipe_does_not_panic() {
    // stdout is a pipe whose read end is already closed, so the proxy's
    // write of the help text fails with EPIPE.
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    drop(read_end);
    let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let output = Command::new(PROXY)
        .arg("--help")
        .stdout(std::process::Stdio::from(write_end))
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run mojo_proxy");
    let text = stderr(&output);
    assert!(!text.contains("panicked"), "stderr: {text}");
    assert_eq!(output.status.code(), Some(0), "stderr: {text}");
}
