//! SIGTERM and SIGINT as readable events: the signals are blocked and read
//! from a `signalfd`, so no handler is installed and no `unsafe` is needed.

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
}

impl Signals {
    /// Blocks `SIGTERM` and `SIGINT` in the calling thread and opens the
    /// `signalfd` that reports them.
    pub fn block_shutdown_signals() -> Result<Self, SignalError> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGTERM);
        mask.add(Signal::SIGINT);
        mask.thread_block()
            .map_err(|e| SignalError::new("pthread_sigmask", e))?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| SignalError::new("signalfd", e))?;
        Ok(Self { fd })
    }

    /// The next pending shutdown signal, if any (never blocks).
    pub fn read(&mut self) -> Result<Option<ShutdownSignal>, SignalError> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => {
                    if let Some(sig) = ShutdownSignal::from_number(info.ssi_signo) {
                        return Ok(Some(sig));
                    }
                    // Only the two are in the mask; anything else is skipped.
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
    fn signal_errors_name_the_call() {
        let e = SignalError::new("signalfd", Errno::EMFILE);
        assert_eq!((e.call(), e.errno()), ("signalfd", Errno::EMFILE as i32));
        assert!(e.to_string().starts_with("signalfd failed"));
    }
}
