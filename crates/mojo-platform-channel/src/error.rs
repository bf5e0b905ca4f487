//! The crate's wrapper for a failed system call: the operation's name and
//! the errno number, so that nix's `Errno` stays out of the public API.

use std::fmt;

use nix::errno::Errno;

/// A system call failed: which one, and with which `errno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SysError {
    op: &'static str,
    errno: i32,
}

impl SysError {
    /// A failure of `op` with the given nix errno.
    pub(crate) const fn new(op: &'static str, errno: Errno) -> Self {
        Self {
            op,
            errno: errno as i32,
        }
    }

    /// A failure of `op` described by a `std::io::Error` (`EIO` when the
    /// error carries no OS code, which std's file calls never produce).
    pub(crate) fn from_io(op: &'static str, e: &std::io::Error) -> Self {
        Self {
            op,
            errno: e.raw_os_error().unwrap_or(nix::libc::EIO),
        }
    }

    /// Adapter for `map_err`.
    pub(crate) fn of(op: &'static str) -> impl FnOnce(Errno) -> Self {
        move |errno| Self::new(op, errno)
    }

    /// The failing call, e.g. `"sendmsg"` or `"fcntl(F_GETFL)"`.
    pub const fn op(&self) -> &'static str {
        self.op
    }

    /// The raw `errno` value (compare with `libc::EPIPE` and friends).
    pub const fn errno(&self) -> i32 {
        self.errno
    }

    /// The error as std sees it (for `kind()` and `Display`).
    pub fn to_io_error(&self) -> std::io::Error {
        std::io::Error::from_raw_os_error(self.errno)
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.op, Errno::from_raw(self.errno))
    }
}

impl std::error::Error for SysError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_call_and_the_errno() {
        let e = SysError::new("sendmsg", Errno::EPIPE);
        assert_eq!(e.op(), "sendmsg");
        assert_eq!(e.errno(), nix::libc::EPIPE);
        assert_eq!(e.to_string(), "sendmsg failed: EPIPE: Broken pipe");
        assert_eq!(e.to_io_error().kind(), std::io::ErrorKind::BrokenPipe);
        let io = std::io::Error::other("no code");
        assert_eq!(SysError::from_io("mmap", &io).errno(), nix::libc::EIO);
    }
}
