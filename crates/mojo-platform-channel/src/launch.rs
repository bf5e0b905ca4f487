//! Handing one end of a channel to a process this one launches, the way
//! Chromium's `PlatformChannel` does on Linux: the child inherits the fd and
//! finds its number in a `--mojo-platform-channel-handle=N` switch, which
//! is what a libchrome daemon's `RecoverPassedEndpointFromCommandLine`
//! reads.
//!
//! The one `unsafe` block is the `pre_exec` hook that clears `FD_CLOEXEC`
//! on the passed fd in the forked child only, so no other process this one
//! launches (on any thread) inherits it.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::libc;

use crate::endpoint::Endpoint;
use crate::fd_passing::{InheritError, from_inherited_fd};

/// The switch naming the inherited endpoint's fd (Chromium's
/// `PlatformChannel::kHandleSwitch`, without its dashes).
pub const HANDLE_SWITCH: &str = "mojo-platform-channel-handle";

/// Spawns `command` with `endpoint` inherited, appending
/// `--mojo-platform-channel-handle=N` to its arguments (N is the fd's number,
/// the same in the child). This process's copy of the endpoint is closed
/// once the child is started (or failed to start), as Chromium's
/// `RemoteProcessLaunchAttempted` does. The command is consumed: its hook
/// names an fd that is gone afterwards.
pub fn spawn_with_endpoint(mut command: Command, endpoint: OwnedFd) -> io::Result<Child> {
    let n = endpoint.as_raw_fd();
    command.arg(format!("--{HANDLE_SWITCH}={n}"));
    // SAFETY: the hook runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: it makes one fcntl call and builds
    // an io::Error from errno, neither of which allocates or takes a lock.
    // `endpoint` outlives the spawn (it is dropped below), so `n` names it
    // in the child.
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(n, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn();
    drop(endpoint);
    child
}

/// Why no endpoint was found in a command line.
#[derive(Debug)]
pub enum PassedEndpointError {
    /// No `--mojo-platform-channel-handle=N` argument.
    Missing,
    /// The switch's value is not an fd number.
    BadNumber(String),
    /// The fd named is not a usable socket.
    Inherit(InheritError),
}

impl fmt::Display for PassedEndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "no --{HANDLE_SWITCH}=N argument"),
            Self::BadNumber(v) => write!(f, "--{HANDLE_SWITCH}={v:?}: not an fd number"),
            Self::Inherit(e) => write!(f, "--{HANDLE_SWITCH}: {e}"),
        }
    }
}

impl std::error::Error for PassedEndpointError {}

/// The fd number of the `--mojo-platform-channel-handle=N` switch among
/// `args` (the last one if repeated).
pub fn passed_endpoint_number<I, S>(args: I) -> Result<i32, PassedEndpointError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let prefix = format!("--{HANDLE_SWITCH}=");
    let value = args
        .into_iter()
        .filter_map(|a| a.as_ref().strip_prefix(&prefix).map(str::to_owned))
        .last()
        .ok_or(PassedEndpointError::Missing)?;
    match value.parse::<i32>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(PassedEndpointError::BadNumber(value)),
    }
}

/// The endpoint a launcher passed with [`spawn_with_endpoint`] (or
/// Chromium's `PrepareToPassRemoteEndpoint`): the switch's fd, checked and
/// adopted by [`from_inherited_fd`].
///
/// # Safety
///
/// That of [`from_inherited_fd`]: nothing else in the process owns the fd
/// the switch names (true when the process inherited it for this purpose and
/// asks once).
pub unsafe fn recover_passed_endpoint<I, S>(args: I) -> Result<Endpoint, PassedEndpointError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let n = passed_endpoint_number(args)?;
    // SAFETY: the caller's promise is the one from_inherited_fd requires.
    unsafe { from_inherited_fd(n) }.map_err(PassedEndpointError::Inherit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_is_found_and_checked() {
        let n = |args: &[&str]| passed_endpoint_number(args.iter().copied());
        assert_eq!(n(&["x", "--mojo-platform-channel-handle=7"]).ok(), Some(7));
        assert_eq!(
            n(&[
                "--mojo-platform-channel-handle=3",
                "--mojo-platform-channel-handle=9"
            ])
            .ok(),
            Some(9)
        );
        assert!(matches!(n(&["x"]), Err(PassedEndpointError::Missing)));
        for bad in ["", "-1", "x", "99999999999"] {
            let arg = format!("--mojo-platform-channel-handle={bad}");
            assert!(
                matches!(n(&[arg.as_str()]), Err(PassedEndpointError::BadNumber(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_the_launched_child_inherits_the_endpoint() {
        let (ours, theirs) = crate::socketpair().unwrap();
        let theirs = theirs.into_fd(false).unwrap();
        let n = theirs.as_raw_fd();
        // The child reports whether fd n is open, and the switch it got.
        let probe = || {
            let mut command = Command::new("/bin/sh");
            command.args([
                "-c",
                "if [ -e /proc/self/fd/$1 ]; then echo open $2; fi",
                "sh",
            ]);
            command.arg(n.to_string());
            command.stdout(std::process::Stdio::piped());
            command
        };
        // Without the hook, nothing is inherited.
        let plain = probe().output().unwrap();
        assert_eq!(String::from_utf8_lossy(&plain.stdout), "");
        let command = probe();
        let child = spawn_with_endpoint(command, theirs).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.trim(), format!("open --{HANDLE_SWITCH}={n}"));
        // This process's copy is closed: the child's exit closed the last
        // one, so our end sees the peer gone.
        let mut ours = ours;
        let mut closed = false;
        for _ in 0..200 {
            match ours.read_available() {
                Ok(crate::ReadOutcome::Eof) => {
                    closed = true;
                    break;
                }
                Ok(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                Err(e) if e.is_disconnect() => {
                    closed = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(closed, "the parent kept a copy of the passed end");
    }
}
