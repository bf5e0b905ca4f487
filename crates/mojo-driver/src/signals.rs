//! SIGTERM and SIGINT (and, if asked for, SIGUSR1) as readable events: the
//! signals are blocked and read from a `signalfd`, so no handler is
//! installed and no `unsafe` is needed.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd};

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// A signal that asks the process to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownSignal {
    /// `SIGTERM`.
    Terminate,
    /// `SIGINT` (Ctrl-C).
    Interrupt,
}

impl ShutdownSignal {
    /// The signal's number (`SIGTERM` = 15, `SIGINT` = 2 on Linux).
    pub fn number(self) -> i32 {
        match self {
            Self::Terminate => Signal::SIGTERM as i32,
            Self::Interrupt => Signal::SIGINT as i32,
        }
    }

    fn from_number(n: u32) -> Option<Self> {
        let n = i32::try_from(n).ok()?;
        [Self::Terminate, Self::Interrupt]
            .into_iter()
            .find(|s| s.number() == n)
    }
}

impl fmt::Display for ShutdownSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Terminate => "SIGTERM",
            Self::Interrupt => "SIGINT",
        })
    }
}

/// A signal read from [`Signals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceivedSignal {
    /// `SIGTERM` or `SIGINT`: end the run.
    Shutdown(ShutdownSignal),
    /// `SIGUSR1` (only with [`Signals::block_shutdown_and_status_signals`]):
    /// report the program's state and go on.
    Status,
}

/// The status signal's number (`SIGUSR1`).
const STATUS_SIGNAL: Signal = Signal::SIGUSR1;

impl ReceivedSignal {
    fn from_number(n: u32, status: bool) -> Option<Self> {
        if status && i32::try_from(n).ok() == Some(STATUS_SIGNAL as i32) {
            return Some(Self::Status);
        }
        ShutdownSignal::from_number(n).map(Self::Shutdown)
    }
}

impl fmt::Display for ReceivedSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shutdown(s) => s.fmt(f),
            Self::Status => f.write_str("SIGUSR1"),
        }
    }
}

/// A failed system call while setting up or reading the signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalError {
    call: &'static str,
    errno: i32,
}

impl SignalError {
    fn new(call: &'static str, errno: Errno) -> Self {
        Self {
            call,
            errno: errno as i32,
        }
    }

    /// The failing call (`pthread_sigmask`, `signalfd`, `read(signalfd)`).
    pub fn call(&self) -> &'static str {
        self.call
    }

    /// Its `errno`.
    pub fn errno(&self) -> i32 {
        self.errno
    }
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.call, Errno::from_raw(self.errno))
    }
}

impl std::error::Error for SignalError {}

/// `SIGTERM` and `SIGINT`, blocked in this thread and read from a
/// non-blocking, close-on-exec `signalfd`. Give it to
/// [`Driver::watch_signals`](crate::Driver::watch_signals).
///
/// The signal mask is per thread and inherited by threads created later:
/// create this first thing in `main`, before any other thread exists, or a
/// thread that does not block the signals takes them and the default action
/// (ending the process) applies. Child processes started with
/// `std::process::Command` get an empty mask again (std resets it).
#[derive(Debug)]
pub struct Signals {
    fd: SignalFd,
    /// `SIGUSR1` is in the mask too.
    status: bool,
}

impl Signals {
    /// Blocks `SIGTERM` and `SIGINT` in the calling thread and opens the
    /// `signalfd` that reports them.
    pub fn block_shutdown_signals() -> Result<Self, SignalError> {
        Self::block(false)
    }

    /// As [`block_shutdown_signals`](Self::block_shutdown_signals), and
    /// `SIGUSR1` too, which the driver reports as
    /// [`Exit::Status`](crate::Exit::Status) without ending anything (its
    /// default action would kill the process).
    pub fn block_shutdown_and_status_signals() -> Result<Self, SignalError> {
        Self::block(true)
    }

    fn block(status: bool) -> Result<Self, SignalError> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGTERM);
        mask.add(Signal::SIGINT);
        if status {
            mask.add(STATUS_SIGNAL);
        }
        mask.thread_block()
            .map_err(|e| SignalError::new("pthread_sigmask", e))?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| SignalError::new("signalfd", e))?;
        Ok(Self { fd, status })
    }

    /// The next pending signal, if any (never blocks).
    pub fn read(&mut self) -> Result<Option<ReceivedSignal>, SignalError> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => {
                    if let Some(sig) = ReceivedSignal::from_number(info.ssi_signo, self.status) {
                        return Ok(Some(sig));
                    }
                    // Only those are in the mask; anything else is skipped.
                }
                Ok(None) => return Ok(None),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(SignalError::new("read(signalfd)", e)),
            }
        }
    }
}

impl Source for Signals {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> std::io::Result<()> {
        SourceFd(&self.fd.as_fd().as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> std::io::Result<()> {
        SourceFd(&self.fd.as_fd().as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> std::io::Result<()> {
        SourceFd(&self.fd.as_fd().as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_signals_map_to_their_numbers_and_back() {
        for s in [ShutdownSignal::Terminate, ShutdownSignal::Interrupt] {
            let n = u32::try_from(s.number()).unwrap();
            assert_eq!(ShutdownSignal::from_number(n), Some(s));
        }
        assert_eq!(ShutdownSignal::Terminate.number(), 15);
        assert_eq!(ShutdownSignal::Interrupt.to_string(), "SIGINT");
        assert_eq!(ShutdownSignal::from_number(Signal::SIGHUP as u32), None);
    }

    #[test]
    fn sigusr1_is_a_status_signal_only_when_asked_for() {
        let usr1 = Signal::SIGUSR1 as u32;
        assert_eq!(
            ReceivedSignal::from_number(usr1, true),
            Some(ReceivedSignal::Status)
        );
        assert_eq!(ReceivedSignal::from_number(usr1, false), None);
        assert_eq!(
            ReceivedSignal::from_number(Signal::SIGTERM as u32, true),
            Some(ReceivedSignal::Shutdown(ShutdownSignal::Terminate))
        );
        assert_eq!(ReceivedSignal::Status.to_string(), "SIGUSR1");
    }

    #[test]
    fn signal_errors_name_the_call() {
        let e = SignalError::new("signalfd", Errno::EMFILE);
        assert_eq!((e.call(), e.errno()), ("signalfd", Errno::EMFILE as i32));
        assert!(e.to_string().starts_with("signalfd failed"));
    }
}
