//! A legacy Mojo Core client accepting an invitation from the process that
//! launched it, as a libchrome daemon does.
//!
//! ```sh
//! cargo run -p mojo-system --example launch_legacy_client               # libchrome wire
//! cargo run -p mojo-system --example launch_legacy_client -- --desktop  # desktop wire
//! ```
//!
//! The parent makes a socket pair, launches a copy of itself with one end
//! inherited and named by `--mojo-platform-channel-handle=N`
//! ([`spawn_with_endpoint`], Chromium's `PlatformChannel` on Linux), and
//! sends a legacy invitation on its end: it is the broker. The child finds
//! the end with [`recover_passed_endpoint`] and accepts. The parent then
//! sends a message carrying a platform handle (the read end of an OS pipe
//! holding a greeting) and a new message pipe end; the child reads the
//! greeting from the fd and answers on the new pipe. Prints one line per
//! process; exits 0 on success.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use mojo_legacy_wire::Profile;
use mojo_platform_channel::{recover_passed_endpoint, socketpair, spawn_with_endpoint};
use mojo_system::{Handle, MessagePipe, MojoError, MojoSystem, Signals, legacy, read_one, wait};

/// The invitation's one attachment.
const PIPE_NAME: &[u8] = b"launch-example";
/// What the parent puts in the OS pipe.
const GREETING: &[u8] = b"hello from the process that launched you";
/// How long either side waits for the other.
const TIMEOUT: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, String>;

fn deadline() -> Option<Instant> {
    Some(Instant::now() + TIMEOUT)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let profile = if args.iter().any(|a| a == "--desktop") {
        Profile::Desktop
    } else {
        Profile::Libchrome
    };
    let result = if args.iter().any(|a| a == "--child") {
        child(&args, profile)
    } else {
        parent(profile)
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("launch_legacy_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parent(profile: Profile) -> Result<String> {
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
    if profile == Profile::Desktop {
        command.arg("--desktop");
    }
    let mut child = spawn_with_endpoint(command, theirs).map_err(|e| format!("launch: {e}"))?;
    let outcome = legacy::send_invitation(ours, profile, &[PIPE_NAME.to_vec()])
        .map_err(|e| format!("send_invitation: {e}"))
        .and_then(|(system, mut pipes)| greet(&system, &pipes.remove(0)));
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

/// The parent's half: a platform handle and a new pipe to the child, the
/// answer read from that pipe.
fn greet<S: MojoSystem>(system: &S, pipe: &MessagePipe) -> Result<String> {
    let err = |what: &str, e: MojoError| format!("{what}: {e}");
    let (read_end, write_end) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    std::fs::File::from(write_end)
        .write_all(GREETING)
        .map_err(|e| format!("fill the OS pipe: {e}"))?;
    let fd = system
        .wrap_platform_handle(read_end)
        .map_err(|e| err("wrap_platform_handle", e))?;
    let (reply_here, reply_there) = system
        .create_message_pipe()
        .map_err(|e| err("create_message_pipe", e))?;
    system
        .write_message(pipe, b"greeting", vec![fd.into(), reply_there.into()])
        .map_err(|e| err("write_message", e))?;
    let answer = read_one(system, &reply_here, deadline()).map_err(|e| err("read answer", e))?;
    let answer = String::from_utf8_lossy(&answer.bytes).into_owned();
    let want = format!(
        "read {} bytes: {}",
        GREETING.len(),
        String::from_utf8_lossy(GREETING)
    );
    if answer != want {
        return Err(format!("the child answered {answer:?}, want {want:?}"));
    }
    Ok(format!("ok: the launched legacy client {answer}"))
}

/// The channel end the parent passed. Only `main`'s caller knows nothing
/// else owns that fd, so this is the one place that may promise it.
#[allow(unsafe_code)]
fn passed_endpoint(args: &[String]) -> Result<mojo_platform_channel::Endpoint> {
    // SAFETY: the fd the switch names was inherited for this purpose (the
    // parent launched us with spawn_with_endpoint), and nothing else in this
    // program adopts fds.
    unsafe { recover_passed_endpoint(args) }.map_err(|e| e.to_string())
}

fn child(args: &[String], profile: Profile) -> Result<String> {
    let endpoint = passed_endpoint(args)?;
    let (system, mut pipes) = legacy::accept_invitation(endpoint, profile, &[PIPE_NAME.to_vec()])
        .map_err(|e| format!("accept_invitation: {e}"))?;
    let pipe = pipes.remove(0);
    let err = |what: &str, e: MojoError| format!("{what}: {e}");
    let message = read_one(&system, &pipe, deadline()).map_err(|e| err("read_message", e))?;
    let mut handles = message.handles.into_iter();
    let (Some(Handle::PlatformHandle(fd)), Some(Handle::MessagePipe(reply))) =
        (handles.next(), handles.next())
    else {
        return Err("the greeting carries no platform handle and pipe".into());
    };
    let fd: OwnedFd = system
        .unwrap_platform_handle(fd)
        .map_err(|e| err("unwrap_platform_handle", e))?;
    let mut text = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut text)
        .map_err(|e| format!("read the fd: {e}"))?;
    let answer = format!(
        "read {} bytes: {}",
        text.len(),
        String::from_utf8_lossy(&text)
    );
    system
        .write_message(&reply, answer.as_bytes(), Vec::new())
        .map_err(|e| err("write the answer", e))?;
    // Let the answer leave before the system (and its socket) goes.
    let _ = wait(&system, reply.raw(), Signals::PEER_CLOSED, deadline());
    Ok(format!("child: {answer}"))
}
