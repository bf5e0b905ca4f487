//! A shared buffer round trip between two processes, over either protocol.
//!
//! ```sh
//! cargo run -p mojo-system --example shared_buffer            # legacy Mojo Core
//! cargo run -p mojo-system --example shared_buffer -- --ipcz  # Mojo+ipcz
//! ```
//!
//! The parent launches a copy of itself with a channel end inherited and
//! invites it. It fills a *request* buffer, keeps a mapping, and sends a
//! read-only duplicate of it together with a writable *answer* buffer (whose
//! mapping it also keeps: a mapping outlives its handle being sent). The
//! child maps both, checks that the read-only one can be made neither
//! writable (the OS refuses `mprotect`) nor duplicated writable (Mojo refuses),
//! writes the request's length and hash into the answer buffer and says
//! `done`. The parent reads the answer through its own mapping. Prints one
//! line per process; exits 0 on success.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use mojo_legacy_wire::Profile;
use mojo_platform_channel::{Endpoint, recover_passed_endpoint, socketpair, spawn_with_endpoint};
use mojo_system::{
    BufferMapping, Handle, MessagePipe, MojoError, MojoSystem, Signals, ipcz, legacy, read_one,
    wait,
};

/// The invitation's one attachment.
const PIPE_NAME: &[u8] = b"shared-buffer-example";
/// Size of the request buffer.
const REQUEST_SIZE: u64 = 256 * 1024;
/// Size of the answer buffer: a length and a hash.
const ANSWER_SIZE: u64 = 16;
/// How long either side waits for the other.
const TIMEOUT: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, String>;

fn deadline() -> Option<Instant> {
    Some(Instant::now() + TIMEOUT)
}

/// The byte at position `i` of the request.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(131).wrapping_add(17) % 253) as u8
}

/// FNV-1a, 64 bits.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let ipcz = args.iter().any(|a| a == "--ipcz");
    let result = if args.iter().any(|a| a == "--child") {
        passed_endpoint(&args).and_then(|endpoint| child(endpoint, ipcz))
    } else {
        parent(ipcz)
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shared_buffer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The channel end the parent passed. Only the program as a whole knows
/// nothing else owns that fd, so this is the one place that may promise it.
#[allow(unsafe_code)]
fn passed_endpoint(args: &[String]) -> Result<Endpoint> {
    // SAFETY: the fd the switch names was inherited for this purpose (the
    // parent launched us with spawn_with_endpoint), and nothing else in this
    // program adopts fds.
    unsafe { recover_passed_endpoint(args) }.map_err(|e| e.to_string())
}

fn parent(ipcz: bool) -> Result<String> {
    let (ours, theirs) = socketpair().map_err(|e| format!("socketpair: {e}"))?;
    let ours = ours
        .into_fd(false)
        .map_err(|_| "our end has output queued")?;
    let theirs = theirs
        .into_fd(false)
        .map_err(|_| "their end has output queued")?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.arg("--child");
    if ipcz {
        command.arg("--ipcz");
    }
    let mut child = spawn_with_endpoint(command, theirs).map_err(|e| format!("launch: {e}"))?;
    let names = [PIPE_NAME.to_vec()];
    let outcome = if ipcz {
        ipcz::send_invitation(ours, &names)
            .map_err(|e| format!("send_invitation: {e}"))
            .and_then(|(system, mut pipes)| ask(&system, &pipes.remove(0)))
    } else {
        legacy::send_invitation(ours, Profile::Libchrome, &names)
            .map_err(|e| format!("send_invitation: {e}"))
            .and_then(|(system, mut pipes)| ask(&system, &pipes.remove(0)))
    };
    if outcome.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    let line = outcome?;
    if !status.success() {
        return Err(format!("the child failed: {status}"));
    }
    Ok(line)
}

/// The parent's half: the request (read-only) and answer buffers out, the
/// answer read back through the parent's own mapping.
fn ask<S: MojoSystem>(system: &S, pipe: &MessagePipe) -> Result<String> {
    let err = |what: &str, e: MojoError| format!("{what}: {e}");
    let request = system
        .create_shared_buffer(REQUEST_SIZE)
        .map_err(|e| err("create request", e))?;
    let mut request_map = system
        .map_buffer(&request, 0, REQUEST_SIZE)
        .map_err(|e| err("map request", e))?;
    let bytes: Vec<u8> = (0..REQUEST_SIZE as usize).map(pattern).collect();
    request_map
        .write(0, &bytes)
        .map_err(|e| err("fill request", e))?;
    let read_only = system
        .duplicate_buffer(&request, true)
        .map_err(|e| err("read-only duplicate", e))?;
    let answer = system
        .create_shared_buffer(ANSWER_SIZE)
        .map_err(|e| err("create answer", e))?;
    let answer_map = system
        .map_buffer(&answer, 0, ANSWER_SIZE)
        .map_err(|e| err("map answer", e))?;
    system
        .write_message(pipe, b"request", vec![read_only.into(), answer.into()])
        .map_err(|e| err("write_message", e))?;
    let done = read_one(system, pipe, deadline()).map_err(|e| err("read done", e))?;
    if done.bytes != b"done" {
        return Err(format!(
            "the child said {:?}",
            String::from_utf8_lossy(&done.bytes)
        ));
    }
    let mut got = [0u8; ANSWER_SIZE as usize];
    answer_map
        .read(0, &mut got)
        .map_err(|e| err("read answer", e))?;
    let (len, hash) = got.split_at(8);
    let len = u64::from_le_bytes(len.try_into().map_err(|_| "answer length")?);
    let hash = u64::from_le_bytes(hash.try_into().map_err(|_| "answer hash")?);
    if (len, hash) != (REQUEST_SIZE, fnv(&bytes)) {
        return Err(format!("the child saw {len} bytes, fnv {hash:016x}"));
    }
    Ok(format!(
        "ok: the child read {len} bytes of a read-only buffer (fnv {hash:016x}) and answered in a writable one"
    ))
}

fn child(endpoint: Endpoint, ipcz: bool) -> Result<String> {
    let names = [PIPE_NAME.to_vec()];
    if ipcz {
        let (system, mut pipes) = ipcz::accept_invitation(endpoint, &names)
            .map_err(|e| format!("accept_invitation: {e}"))?;
        answer(&system, &pipes.remove(0))
    } else {
        let (system, mut pipes) = legacy::accept_invitation(endpoint, Profile::Libchrome, &names)
            .map_err(|e| format!("accept_invitation: {e}"))?;
        answer(&system, &pipes.remove(0))
    }
}

/// The child's half: reads the request through its read-only mapping,
/// checks that it stays read-only, writes the answer.
fn answer<S: MojoSystem>(system: &S, pipe: &MessagePipe) -> Result<String> {
    let err = |what: &str, e: MojoError| format!("{what}: {e}");
    let message = read_one(system, pipe, deadline()).map_err(|e| err("read_message", e))?;
    let mut handles = message.handles.into_iter();
    let (Some(Handle::SharedBuffer(request)), Some(Handle::SharedBuffer(answer))) =
        (handles.next(), handles.next())
    else {
        return Err("the request carries no two buffers".into());
    };
    let size = system
        .buffer_size(&request)
        .map_err(|e| err("buffer_size", e))?;
    let mut request_map = system
        .map_buffer(&request, 0, size)
        .map_err(|e| err("map request", e))?;
    if request_map.is_writable() || request_map.try_make_writable().is_ok() {
        return Err("the read-only request could be made writable".into());
    }
    if request_map.write(0, b"x") != Err(MojoError::PermissionDenied) {
        return Err("a write into the read-only mapping was not refused".into());
    }
    match system.duplicate_buffer(&request, false) {
        Err(MojoError::FailedPrecondition) => {}
        other => return Err(format!("a writable duplicate of read-only: {other:?}")),
    }
    let mut bytes = vec![0; size as usize];
    request_map
        .read(0, &mut bytes)
        .map_err(|e| err("read request", e))?;
    let hash = fnv(&bytes);
    let mut answer_map = system
        .map_buffer(&answer, 0, ANSWER_SIZE)
        .map_err(|e| err("map answer", e))?;
    let mut out = [0u8; ANSWER_SIZE as usize];
    out[..8].copy_from_slice(&size.to_le_bytes());
    out[8..].copy_from_slice(&hash.to_le_bytes());
    answer_map
        .write(0, &out)
        .map_err(|e| err("write answer", e))?;
    system
        .write_message(pipe, b"done", Vec::new())
        .map_err(|e| err("write done", e))?;
    // Let the answer leave before the system (and its socket) goes.
    let _ = wait(system, pipe.raw(), Signals::PEER_CLOSED, deadline());
    Ok(format!(
        "child: read {size} read-only bytes, fnv {hash:016x}"
    ))
}
