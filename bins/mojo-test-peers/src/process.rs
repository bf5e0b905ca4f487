//! The host's processes (test-peers.md §1): socket pairs, fork+exec of the
//! proxy and the client (and, with `--mode=inherit`, of the broker copy of
//! the host) with exactly the reference's command lines and inherited fds,
//! and [`ProcessChildren`], the real [`Children`] of [`crate::host::run`].
//!
//! A child inherits exactly the fds named on its command line: every socket
//! is created close-on-exec, and [`spawn`] clears the flag on the child's
//! fds only for the fork+exec (`std::process::Command`, which returns once
//! the exec has happened) and sets it again at once. The host spawns before
//! it starts any other thread, as the reference does, so no other fork can
//! see the cleared flags.

use std::io::{self, Write as _};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command};
use std::time::Instant;

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use crate::cli::{Attachments, Direct, HostArgs};
use crate::host::{ChildRole, ChildStatus, Children};

/// `socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)`: blocking ends.
pub fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)
}

/// The proxy's command line: `PATH --legacy-client-fd=C
/// --host-ipcz-transport-fd=H (--attachment-name=NAME | --num-attachments=K)
/// [--inherit-ipcz-broker]` then the words of `--proxy-extra-args`.
pub fn proxy_command(
    proxy: &str,
    legacy_client_fd: i32,
    host_fd: i32,
    attachments: &Attachments,
    inherit: bool,
    extra: &[String],
) -> Vec<String> {
    let mut v = vec![
        proxy.to_string(),
        format!("--legacy-client-fd={legacy_client_fd}"),
        format!("--host-ipcz-transport-fd={host_fd}"),
        attachments.arg(),
    ];
    if inherit {
        v.push("--inherit-ipcz-broker".into());
    }
    v.extend(extra.iter().cloned());
    v
}

/// The client's command line: `PATH --fd=N (--attachment-name=NAME |
/// --num-attachments=K) [--ipcz] [--verbose]`.
pub fn client_command(
    client: &str,
    fd: i32,
    attachments: &Attachments,
    ipcz: bool,
    verbose: bool,
) -> Vec<String> {
    let mut v = vec![client.to_string(), format!("--fd={fd}"), attachments.arg()];
    if ipcz {
        v.push("--ipcz".into());
    }
    if verbose {
        v.push("--verbose".into());
    }
    v
}

/// The broker copy's command line: `HOST --role=broker --fd=N`.
pub fn broker_command(host: &str, fd: i32) -> Vec<String> {
    vec![
        host.to_string(),
        "--role=broker".into(),
        format!("--fd={fd}"),
    ]
}

fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let flags = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    fcntl(fd, FcntlArg::F_SETFD(flags))
        .map(drop)
        .map_err(io::Error::from)
}

/// fork+exec of `argv` with the fds `keep` inherited (close-on-exec cleared
/// for the child only). Prints the reference's `[host] spawned pid N: ...`
/// line on stderr.
pub fn spawn(argv: &[String], keep: &[BorrowedFd<'_>]) -> io::Result<Child> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command line"))?;
    for fd in keep {
        set_cloexec(*fd, false)?;
    }
    let child = Command::new(program).args(args).spawn();
    for fd in keep {
        // Best effort: the fd is closed by the caller right after anyway.
        let _ = set_cloexec(*fd, true);
    }
    let child = child?;
    let mut cmd = String::new();
    for a in argv {
        cmd.push_str(a);
        cmd.push(' ');
    }
    // One write, so that a child's own stderr lines cannot land inside it
    // (eprintln! writes each piece of the format separately).
    let line = format!("[host] spawned pid {}: {cmd}\n", child.id());
    let _ = io::stderr().lock().write_all(line.as_bytes());
    Ok(child)
}

/// A launched child and its exit, once reaped.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    exit: Option<(i32, Instant)>,
}

impl ChildProcess {
    /// Wraps a spawned child.
    pub fn new(child: Child) -> Self {
        Self { child, exit: None }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Running, or exited with its status (128 + signal for a signal).
    pub fn status(&mut self) -> ChildStatus {
        if self.exit.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                let code = st
                    .code()
                    .or_else(|| st.signal().map(|s| 128 + s))
                    .unwrap_or(-2);
                self.exit = Some((code, Instant::now()));
            }
        }
        match self.exit {
            Some((code, at)) => ChildStatus::Exited { code, at },
            None => ChildStatus::Running,
        }
    }

    /// SIGKILL if still running.
    pub fn kill(&mut self) {
        if self.status() == ChildStatus::Running {
            let _ = self.child.kill();
        }
    }
}

/// The host's real children.
#[derive(Debug, Default)]
pub struct ProcessChildren {
    /// The proxy (none with `--direct`).
    pub proxy: Option<ChildProcess>,
    /// The client.
    pub client: Option<ChildProcess>,
    /// The `--mode=inherit` broker copy.
    pub broker: Option<ChildProcess>,
}

impl ProcessChildren {
    /// The process ids of every child, for a watchdog that must kill them
    /// from another thread.
    pub fn pids(&self) -> Vec<u32> {
        [&self.proxy, &self.client, &self.broker]
            .into_iter()
            .flatten()
            .map(ChildProcess::id)
            .collect()
    }
}

impl Children for ProcessChildren {
    fn status(&mut self, role: ChildRole) -> ChildStatus {
        let child = match role {
            ChildRole::Proxy => self.proxy.as_mut(),
            ChildRole::Client => self.client.as_mut(),
        };
        child.map_or(ChildStatus::NotLaunched, ChildProcess::status)
    }

    fn kill_all(&mut self) {
        for c in [&mut self.proxy, &mut self.client, &mut self.broker]
            .into_iter()
            .flatten()
        {
            c.kill();
        }
    }

    fn pid(&self, role: ChildRole) -> Option<u32> {
        match role {
            ChildRole::Proxy => self.proxy.as_ref(),
            ChildRole::Client => self.client.as_ref(),
        }
        .map(ChildProcess::id)
    }
}

/// What [`launch`] leaves the host: its children and its own socket ends.
#[derive(Debug)]
pub struct Launched {
    /// The children.
    pub children: ProcessChildren,
    /// The host's end towards the proxy (or the client with `--direct`):
    /// the invitation goes over it.
    pub host_fd: OwnedFd,
    /// With `--mode=inherit`: the host's end towards its broker copy.
    pub broker_fd: Option<OwnedFd>,
    /// When the proxy (or client) was launched (`from_spawn_ms`).
    pub spawned_at: Instant,
}

/// Launches everything as the reference does: the broker copy first (with
/// `--mode=inherit`), then the proxy and the client (or the client alone).
/// A child that cannot be started is an error (the reference's child would
/// `_exit(127)` instead); the ones already started are killed.
pub fn launch(args: &HostArgs) -> io::Result<Launched> {
    let mut children = ProcessChildren::default();
    let result = launch_into(args, &mut children);
    match result {
        Ok((host_fd, broker_fd, spawned_at)) => Ok(Launched {
            children,
            host_fd,
            broker_fd,
            spawned_at,
        }),
        Err(e) => {
            children.kill_all();
            Err(e)
        }
    }
}

type LaunchedFds = (OwnedFd, Option<OwnedFd>, Instant);

fn launch_into(args: &HostArgs, children: &mut ProcessChildren) -> io::Result<LaunchedFds> {
    let mut broker_fd = None;
    if args.inherit {
        let (host_end, broker_end) = socket_pair()?;
        let argv = broker_command(&args.program, broker_end.as_raw_fd());
        children.broker = Some(ChildProcess::new(spawn(&argv, &[broker_end.as_fd()])?));
        broker_fd = Some(host_end);
    }
    let spawned_at = Instant::now();
    let host_fd = if args.direct == Direct::No {
        let (h, p) = socket_pair()?;
        let (pcl, c) = socket_pair()?;
        // `--relay`: the relay takes the proxy's place and command line; it
        // translates nothing, so the client speaks the host's protocol.
        let pargv = proxy_command(
            args.relay.as_deref().unwrap_or(&args.proxy),
            pcl.as_raw_fd(),
            p.as_raw_fd(),
            &args.attachments,
            args.inherit,
            &args.proxy_extra_args,
        );
        children.proxy = Some(ChildProcess::new(spawn(&pargv, &[p.as_fd(), pcl.as_fd()])?));
        let cargv = client_command(
            &args.client,
            c.as_raw_fd(),
            &args.attachments,
            args.relay.is_some(),
            args.client_verbose,
        );
        children.client = Some(ChildProcess::new(spawn(&cargv, &[c.as_fd()])?));
        h
    } else {
        let (h, c) = socket_pair()?;
        let cargv = client_command(
            &args.client,
            c.as_raw_fd(),
            &args.attachments,
            args.direct == Direct::Ipcz,
            args.client_verbose,
        );
        children.client = Some(ChildProcess::new(spawn(&cargv, &[c.as_fd()])?));
        h
    };
    Ok((host_fd, broker_fd, spawned_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Duration;

    #[test]
    fn command_lines_are_the_specs() {
        let named = Attachments::Named("pipe!".into());
        assert_eq!(
            proxy_command("/x/mojo_proxy", 4, 5, &named, false, &[]),
            [
                "/x/mojo_proxy",
                "--legacy-client-fd=4",
                "--host-ipcz-transport-fd=5",
                "--attachment-name=pipe!"
            ]
        );
        assert_eq!(
            proxy_command("p", 4, 5, &Attachments::Numeric(3), true, &["--x".into()]),
            [
                "p",
                "--legacy-client-fd=4",
                "--host-ipcz-transport-fd=5",
                "--num-attachments=3",
                "--inherit-ipcz-broker",
                "--x"
            ]
        );
        assert_eq!(
            client_command("c", 7, &named, true, true),
            [
                "c",
                "--fd=7",
                "--attachment-name=pipe!",
                "--ipcz",
                "--verbose"
            ]
        );
        assert_eq!(broker_command("h", 9), ["h", "--role=broker", "--fd=9"]);
    }

    fn wait_exit(c: &mut ChildProcess) -> i32 {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let ChildStatus::Exited { code, .. } = c.status() {
                return code;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("child did not exit");
    }

    #[test]
    fn spawned_child_inherits_only_its_fds() {
        let (mine, theirs) = socket_pair().unwrap();
        let (_other_a, other_b) = socket_pair().unwrap();
        let n = theirs.as_raw_fd();
        let m = other_b.as_raw_fd();
        // Writes into the inherited fd; fails (exit 3) if the other fd leaked.
        let script = format!("[ -e /proc/$$/fd/{m} ] && exit 3; echo hello >&{n}; exit 0");
        let argv = vec!["/bin/sh".to_string(), "-c".into(), script];
        let mut child = ChildProcess::new(spawn(&argv, &[theirs.as_fd()]).unwrap());
        drop(theirs);
        assert_eq!(wait_exit(&mut child), 0);
        let mut got = String::new();
        std::fs::File::from(mine).read_to_string(&mut got).unwrap();
        assert_eq!(got, "hello\n");
        // The parent's copy is close-on-exec again.
        let flags = fcntl(other_b.as_fd(), FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & FdFlag::FD_CLOEXEC.bits(), 0);
    }

    #[test]
    fn exit_codes_and_kill() {
        let sh = |s: &str| vec!["/bin/sh".to_string(), "-c".into(), s.to_string()];
        let mut c = ChildProcess::new(spawn(&sh("exit 5"), &[]).unwrap());
        assert_eq!(wait_exit(&mut c), 5);
        let mut c = ChildProcess::new(spawn(&sh("sleep 30"), &[]).unwrap());
        assert_eq!(c.status(), ChildStatus::Running);
        c.kill();
        assert_eq!(wait_exit(&mut c), 128 + 9);
        assert!(spawn(&["/nonexistent/peer".to_string()], &[]).is_err());
    }
}
