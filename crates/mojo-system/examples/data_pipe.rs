//! A data pipe between two processes, over either protocol.
//!
//! ```sh
//! cargo run -p mojo-system --example data_pipe            # legacy Mojo Core
//! cargo run -p mojo-system --example data_pipe -- --ipcz  # Mojo+ipcz
//! ```
//!
//! The parent listens on a Unix socket, starts a copy of itself as the
//! child, and sends the invitation on the accepted connection (it is the
//! broker); the child accepts it. The parent then creates a data pipe, sends
//! the consumer to the child in a message, writes 1 MiB into the producer
//! with two-phase writes and closes it. The child reads with two-phase reads
//! until the pipe is drained and answers with the byte count and an FNV-1a
//! hash, which the parent checks. Prints one line; exits 0 on success.

use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use mojo_legacy_wire::Profile;
use mojo_platform_channel::Endpoint;
use mojo_system::{
    DataPipeConsumer, MessagePipe, MojoError, MojoSystem, Signals, ipcz, legacy, read_one, wait,
};

/// Bytes the parent sends.
const TOTAL: usize = 1024 * 1024;
/// The data pipe's capacity (smaller than `TOTAL`, so the ring wraps).
const CAPACITY: u32 = 16 * 1024;
/// The invitation's one attachment.
const PIPE_NAME: &[u8] = b"example-pipe";
/// How long either side waits for the other.
const TIMEOUT: Duration = Duration::from_secs(30);

fn deadline() -> Option<Instant> {
    Some(Instant::now() + TIMEOUT)
}

/// The byte at position `i` of the stream.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(7) % 251) as u8
}

/// FNV-1a, 64 bits.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ipcz = args.iter().any(|a| a == "--ipcz");
    let result = match args.iter().position(|a| a == "--child") {
        Some(i) => match args.get(i + 1) {
            Some(path) => child(ipcz, PathBuf::from(path)),
            None => Err("--child needs a socket path".into()),
        },
        None => parent(ipcz),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("data_pipe: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn parent(ipcz: bool) -> Result<String> {
    let path =
        std::env::temp_dir().join(format!("mojo-system-example-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| format!("bind: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.arg("--child").arg(&path);
    if ipcz {
        command.arg("--ipcz");
    }
    let mut child = command.spawn().map_err(|e| format!("spawn: {e}"))?;
    let accepted = listener.accept();
    let _ = std::fs::remove_file(&path);
    let (stream, _) = accepted.map_err(|e| format!("accept: {e}"))?;
    let socket = OwnedFd::from(stream);
    let names = [PIPE_NAME.to_vec()];
    let outcome = if ipcz {
        let (system, mut pipes) =
            ipcz::send_invitation(socket, &names).map_err(|e| e.to_string())?;
        send(&system, &pipes.remove(0))
    } else {
        let (system, mut pipes) = legacy::send_invitation(socket, Profile::Libchrome, &names)
            .map_err(|e| e.to_string())?;
        send(&system, &pipes.remove(0))
    };
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    let line = outcome?;
    if !status.success() {
        return Err(format!("the child failed: {status}"));
    }
    Ok(line)
}

/// The parent's half: sends a consumer, streams `TOTAL` bytes through its
/// producer, checks the child's answer.
fn send<S: MojoSystem>(system: &S, pipe: &MessagePipe) -> Result<String> {
    let err = |what: &str, e: MojoError| format!("{what}: {e}");
    let (producer, consumer) = system
        .create_data_pipe(1, CAPACITY)
        .map_err(|e| err("create_data_pipe", e))?;
    system
        .write_message(pipe, b"consumer", vec![consumer.into()])
        .map_err(|e| err("write_message", e))?;
    let (mut sent, mut hash) = (0, FNV_START);
    while sent < TOTAL {
        match system.begin_write_data(&producer) {
            Ok(mut buf) => {
                let n = buf.len().min(TOTAL - sent);
                for (k, byte) in buf[..n].iter_mut().enumerate() {
                    *byte = pattern(sent + k);
                }
                hash = fnv(hash, &buf[..n]);
                system
                    .end_write_data(&producer, &buf[..n])
                    .map_err(|e| err("end_write_data", e))?;
                sent += n;
            }
            Err(MojoError::ShouldWait) => {
                wait(system, producer.raw(), Signals::WRITABLE, deadline())
                    .map_err(|e| err("wait for room", e))?;
            }
            Err(e) => return Err(err("begin_write_data", e)),
        }
    }
    drop(producer);
    let answer = read_one(system, pipe, deadline()).map_err(|e| err("read the answer", e))?;
    let want = format!("{sent} {hash:016x}");
    let got = String::from_utf8_lossy(&answer.bytes).into_owned();
    if got != want {
        return Err(format!("the child read {got}, sent {want}"));
    }
    Ok(format!(
        "ok: {sent} bytes through a {CAPACITY}-byte data pipe to another process, fnv {hash:016x}"
    ))
}

fn child(ipcz: bool, path: PathBuf) -> Result<String> {
    let stream = UnixStream::connect(&path).map_err(|e| format!("connect: {e}"))?;
    let socket = Endpoint::from_owned_fd(OwnedFd::from(stream)).map_err(|e| e.to_string())?;
    let names = [PIPE_NAME.to_vec()];
    if ipcz {
        let (system, mut pipes) =
            ipcz::accept_invitation(socket, &names).map_err(|e| e.to_string())?;
        receive(&system, &pipes.remove(0))
    } else {
        let (system, mut pipes) = legacy::accept_invitation(socket, Profile::Libchrome, &names)
            .map_err(|e| e.to_string())?;
        receive(&system, &pipes.remove(0))
    }
}

/// The child's half: reads the consumer out of the first message, drains
/// it with two-phase reads, answers with the count and hash.
fn receive<S: MojoSystem>(system: &S, pipe: &MessagePipe) -> Result<String> {
    let err = |what: &str, e: MojoError| format!("{what}: {e}");
    let mut message = read_one(system, pipe, deadline()).map_err(|e| err("read_message", e))?;
    let consumer: DataPipeConsumer = message
        .handles
        .pop()
        .and_then(|h| h.into_data_pipe_consumer().ok())
        .ok_or("the first message carries no consumer")?;
    let (mut got, mut hash) = (0, FNV_START);
    loop {
        match system.begin_read_data(&consumer) {
            Ok(bytes) => {
                hash = fnv(hash, &bytes);
                got += bytes.len();
                system
                    .end_read_data(&consumer, bytes.len())
                    .map_err(|e| err("end_read_data", e))?;
            }
            Err(MojoError::ShouldWait) => {
                // Readable, or peer-closed once drained.
                match wait(system, consumer.raw(), Signals::READABLE, deadline()) {
                    Ok(()) | Err(MojoError::FailedPrecondition) => {}
                    Err(e) => return Err(err("wait for data", e)),
                }
            }
            Err(MojoError::FailedPrecondition) => break, // drained, producer gone
            Err(e) => return Err(err("begin_read_data", e)),
        }
    }
    system
        .write_message(pipe, format!("{got} {hash:016x}").as_bytes(), Vec::new())
        .map_err(|e| err("write the answer", e))?;
    // Let the answer leave before the system (and its socket) goes.
    let _ = wait(system, pipe.raw(), Signals::PEER_CLOSED, deadline());
    Ok(format!("child: read {got} bytes"))
}
