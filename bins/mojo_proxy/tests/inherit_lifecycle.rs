//! `mojo_proxy --inherit-ipcz-broker` run for real with the test holding
//! the other ends of its two sockets: it greets the broker (spec `ipcz.md`
//! §4.3: ConnectToReferredBroker, byte for byte but for the timestamp, as
//! in §9.2's recording), exits 1 with one line if the host's socket closes
//! before the broker answered, and 0 on SIGTERM while it waits.
//! (`end_to_end.rs` runs the whole inherit mode with our test peers.)

use std::io::Read;
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

/// ConnectToReferredBroker after the 16-byte frame header, as the spec's
/// recording (§9.2) has it for one attachment: id 3, sequence number 0,
/// protocol version 0, 2 initial portals, features `[0]`.
const GREETING_MESSAGE: [u8; 64] = [
    0x18, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
    0, 0, 0, 0, 0, 0, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0, //
    0, 0, 0, 0, 2, 0, 0, 0, 0x30, 0, 0, 0, 0, 0, 0, 0, //
    0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
];

struct Running {
    child: Child,
    host: UnixStream,
    _client: UnixStream,
}

fn spawn() -> Running {
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
        .args(["--attachment-name=pipe!", "--inherit-ipcz-broker"])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Running {
        child,
        host: host_peer,
        _client: client_peer,
    }
}

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

/// Reads the proxy's greeting on the host socket (the broker's, by then).
fn read_greeting(host: &mut UnixStream) -> Vec<u8> {
    host.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut frame = vec![0u8; 16 + GREETING_MESSAGE.len()];
    host.read_exact(&mut frame).unwrap();
    frame
}

#[test]
fn the_proxy_greets_the_broker_and_exits_1_if_the_socket_closes_first() {
    let mut p = spawn();
    let frame = read_greeting(&mut p.host);
    // IpczHeader: 16 bytes, no handles, whole frame length; then the message.
    assert_eq!(frame[..2], [16, 0]);
    assert_eq!(frame[2..4], [0, 0], "no fds");
    assert_eq!(
        u32::from_le_bytes(frame[4..8].try_into().unwrap()) as usize,
        frame.len()
    );
    assert_eq!(frame[16..], GREETING_MESSAGE);
    drop(p.host);
    let status = wait_within(&mut p.child, EXIT_WITHIN);
    let text = stderr_of(&mut p.child);
    assert_eq!(status.code(), Some(1), "stderr {text}");
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text:?}");
    assert!(text.contains("host"), "names the host: {text}");
}

#[test]
fn sigterm_while_waiting_for_the_broker_is_exit_0() {
    let mut p = spawn();
    read_greeting(&mut p.host);
    kill(Pid::from_raw(p.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_within(&mut p.child, EXIT_WITHIN);
    let text = stderr_of(&mut p.child);
    assert_eq!(status.code(), Some(0), "stderr {text}");
    assert!(text.is_empty(), "nothing at warn level: {text}");
}
