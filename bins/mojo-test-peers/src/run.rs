//! The programs' top level, with the Mojo connection behind a connector:
//! launch the children, connect (send or accept the invitation), run, and
//! turn the outcome into the reference's exit status. The binaries call
//! this once a real [`MojoSystem`] exists; until then they say which system
//! layer is missing ([`missing_host_system`], [`missing_client_system`]).

use std::fmt;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::json::JsonLine;

use crate::cli::{ClientArgs, CommandLine, Direct, HostArgs};
use crate::host::{self, ChildStatus, Connection, HostOutcome};
use crate::process;
use crate::system::{MessagePipe, MojoSystem};

/// How long the host waits for its broker copy after `shutdown`.
pub const BROKER_EXIT_WAIT: Duration = Duration::from_secs(10);

/// The host's Mojo connection: made once the children run.
pub trait HostConnector {
    /// The system the host then uses.
    type System: MojoSystem;
    /// Initialises Mojo (a broker, or with `--mode=inherit` a non-broker
    /// that first joins its broker over `broker_fd`), sends the invitation
    /// over `host_fd` with the attachments of `args`, and returns the system
    /// and the attached pipes in attachment order.
    fn connect(
        &self,
        args: &HostArgs,
        host_fd: OwnedFd,
        broker_fd: Option<OwnedFd>,
    ) -> Result<(Self::System, Vec<MessagePipe>), String>;
}

/// The client's Mojo connection.
pub trait ClientConnector {
    /// The system the client then uses.
    type System: MojoSystem;
    /// Accepts the invitation on `args.fd` (legacy non-broker, or Mojo+ipcz
    /// with `--ipcz`) and extracts the pipes of `args.attachments`.
    fn accept(&self, args: &ClientArgs) -> Result<(Self::System, Vec<MessagePipe>), String>;
}

/// `mojo-test-host` with a system: returns the exit status (0 after
/// `shutdown`, 1 if it could not run or `connect` failed, 3 on a timeout).
pub fn run_host<C: HostConnector>(args: &HostArgs, connector: &C, out: &mut dyn Write) -> u8 {
    for s in &args.scenarios {
        if host::REFERENCE_ONLY_SCENARIOS.contains(&s.as_str()) {
            eprintln!("[host] scenario {s} is the reference host's only; skipped");
        }
    }
    let launched = match process::launch(args) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mojo-test-host: cannot launch the children: {e}");
            return 1;
        }
    };
    let process::Launched {
        mut children,
        host_fd,
        broker_fd,
        spawned_at,
    } = launched;
    let backstop = Backstop::arm(
        args.timeout.map(|t| spawned_at + t),
        &args.label,
        children.pids(),
    );
    let connected = connector.connect(args, host_fd, broker_fd);
    backstop.disarm();
    let (system, pipes) = match connected {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mojo-test-host: cannot connect: {e}");
            host::Children::kill_all(&mut children);
            return 1;
        }
    };
    let connection = Connection {
        pipes,
        spawned_at,
        invitation_sent_at: Instant::now(),
    };
    let outcome = host::run(&system, connection, &args.host_config(), &mut children, out);
    if outcome == HostOutcome::Completed {
        // The broker copy exits once the host's Mojo side is gone.
        drop(system);
        if let Some(broker) = children.broker.as_mut() {
            let end = Instant::now() + BROKER_EXIT_WAIT;
            loop {
                match broker.status() {
                    ChildStatus::Exited { code: 0, .. } => break,
                    ChildStatus::Exited { code, .. } => {
                        eprintln!("[host] broker exit {code}");
                        break;
                    }
                    _ if Instant::now() >= end => {
                        eprintln!("[host] broker exit -1");
                        broker.kill();
                        break;
                    }
                    _ => std::thread::sleep(host::CHILD_POLL),
                }
            }
        }
    }
    outcome.exit_code()
}

/// `mojo-test-client` with a system: 0 once every pipe is done.
pub fn run_client<C: ClientConnector>(args: &ClientArgs, connector: &C) -> u8 {
    let (system, pipes) = match connector.accept(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mojo-test-client: cannot accept the invitation: {e}");
            return 1;
        }
    };
    if args.verbose {
        eprintln!(
            "[client pid {}] {} mode, {} pipe(s)",
            std::process::id(),
            if args.ipcz { "ipcz" } else { "legacy" },
            pipes.len()
        );
    }
    crate::client::serve_all(&system, pipes, args.verbose);
    0
}

/// A binary's `main` while it has no system: a wrong command line is the
/// one line `<program>: <error>` and exit status 2; a right one gets the
/// line `missing` makes of it (which system layer is absent) and status 1.
pub fn main_without_system<A, E: fmt::Display>(
    program: &str,
    parse: impl FnOnce(&CommandLine) -> Result<A, E>,
    missing: impl FnOnce(&A) -> String,
) -> ExitCode {
    let cl = CommandLine::parse(std::env::args_os());
    match parse(&cl) {
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::from(2)
        }
        Ok(args) => {
            eprintln!("{}", missing(&args));
            ExitCode::from(1)
        }
    }
}

/// The stderr line of a host that has no system to run on.
pub fn missing_host_system(args: &HostArgs) -> String {
    let layer = match args.direct {
        Direct::Legacy => "a legacy Mojo Core broker (a MojoSystem over the legacy node)",
        _ if args.inherit => "a Mojo+ipcz non-broker (a MojoSystem over the ipcz node)",
        _ => "a Mojo+ipcz broker (a MojoSystem over the ipcz node)",
    };
    format!(
        "mojo-test-host: cannot run: the host needs {layer}, and no such system layer is built yet \
         (the in-process fake is for tests only)"
    )
}

/// The stderr line of a client that has no system to run on.
pub fn missing_client_system(args: &ClientArgs) -> String {
    let layer = if args.ipcz {
        "a Mojo+ipcz non-broker (a MojoSystem over the ipcz node)"
    } else {
        "a legacy Mojo Core non-broker (a MojoSystem over the legacy node)"
    };
    format!(
        "mojo-test-client: cannot run: the client needs {layer}, and no such system layer is built \
         yet (the in-process fake is for tests only)"
    )
}

/// The watchdog for what happens outside the scenarios' waits (Mojo's
/// start-up and the invitation, which the reference's `alarm` also covers):
/// if still armed at the deadline it prints the `startup` timeout line,
/// SIGKILLs the children and exits the process with status 3.
struct Backstop {
    /// Dropped to disarm: the thread wakes at once (no polling, so disarming
    /// never delays the host's first line).
    disarm: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Backstop {
    fn arm(deadline: Option<Instant>, label: &str, pids: Vec<u32>) -> Self {
        let (disarm, disarmed) = mpsc::channel::<()>();
        let thread = deadline.map(|deadline| {
            let mut line = JsonLine::new("startup", label, false);
            line.error("timeout");
            let line = line.finish();
            std::thread::spawn(move || {
                let left = deadline.saturating_duration_since(Instant::now());
                if disarmed.recv_timeout(left) != Err(mpsc::RecvTimeoutError::Timeout) {
                    return;
                }
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
                for pid in pids {
                    if let Ok(pid) = i32::try_from(pid) {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
                std::process::exit(i32::from(HostOutcome::TimedOut.exit_code()));
            })
        });
        Self {
            disarm: Some(disarm),
            thread,
        }
    }

    fn disarm(mut self) {
        drop(self.disarm.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The host's output with `--stop-after-each-line`: every `flush` (the
/// host flushes once after each result line) flushes `inner` and then calls
/// `stop`, which in `mojo-test-host` raises SIGSTOP. The line is therefore
/// out before the host stops, and nothing of the next scenario has started:
/// a harness that reads a line, waits until the host is stopped, samples
/// and sends SIGCONT brackets every scenario exactly.
#[derive(Debug)]
pub struct StopAfterEachLine<W, F> {
    inner: W,
    stop: F,
}

impl<W: Write, F: FnMut()> StopAfterEachLine<W, F> {
    /// `inner`, calling `stop` after each flush of it.
    pub fn new(inner: W, stop: F) -> Self {
        Self { inner, stop }
    }
}

impl<W: Write, F: FnMut()> Write for StopAfterEachLine<W, F> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let flushed = self.inner.flush();
        (self.stop)();
        flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Every line `host::run` prints is complete in the output when the
    /// host stops, and the host stops once per line: what the harness of
    /// `cargo xtask bench` relies on.
    #[test]
    fn the_host_stops_once_after_each_complete_line() {
        let out = RefCell::new(Vec::<u8>::new());
        let stops = RefCell::new(Vec::<usize>::new());
        {
            struct Shared<'a>(&'a RefCell<Vec<u8>>);
            impl Write for Shared<'_> {
                fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                    self.0.borrow_mut().extend_from_slice(buf);
                    Ok(buf.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            let mut w = StopAfterEachLine::new(Shared(&out), || {
                stops.borrow_mut().push(out.borrow().len());
            });
            for line in [
                "{\"scenario\":\"connect\"}",
                "{\"scenario\":\"throughput_64\"}",
            ] {
                writeln!(w, "{line}").unwrap();
                w.flush().unwrap();
            }
        }
        let text = String::from_utf8(out.into_inner()).unwrap();
        let ends: Vec<usize> = text.match_indices('\n').map(|(i, _)| i + 1).collect();
        assert_eq!(stops.into_inner(), ends);
    }
}
