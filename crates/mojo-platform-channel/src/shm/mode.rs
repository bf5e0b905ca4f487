//! Modes: the region mode is `mojo_wire_kit::RegionMode` (one definition
//! for every layer); this file adds the fd access mode it is checked against
//! and the table that links the two.

use std::fmt;
use std::os::fd::AsFd;

use mojo_wire_kit::RegionMode;
use nix::fcntl::{FcntlArg, OFlag, fcntl};

use super::ShmError;
use crate::SysError;

/// The access mode of an open fd (`fcntl(F_GETFL) & O_ACCMODE`), which
/// Chromium's receiver checks against the [`RegionMode`] of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FdAccessMode {
    /// `O_RDONLY`.
    ReadOnly,
    /// `O_WRONLY`.
    WriteOnly,
    /// `O_RDWR`.
    ReadWrite,
}

impl fmt::Display for FdAccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadOnly => "O_RDONLY",
            Self::WriteOnly => "O_WRONLY",
            Self::ReadWrite => "O_RDWR",
        })
    }
}

/// The access mode of an fd.
pub fn fd_access_mode(fd: impl AsFd) -> Result<FdAccessMode, ShmError> {
    let bits =
        fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(|e| SysError::new("fcntl(F_GETFL)", e))?;
    let acc = OFlag::from_bits_retain(bits) & OFlag::O_ACCMODE;
    Ok(if acc == OFlag::O_RDWR {
        FdAccessMode::ReadWrite
    } else if acc == OFlag::O_WRONLY {
        FdAccessMode::WriteOnly
    } else {
        FdAccessMode::ReadOnly
    })
}

/// The access modes Chromium requires of a region's fds, in wire order:
/// the main fd (`O_RDONLY` for read-only regions, else `O_RDWR`), then for
/// writable regions the `O_RDONLY` twin.
pub(crate) fn required_fd_modes(mode: RegionMode) -> &'static [FdAccessMode] {
    match mode {
        RegionMode::ReadOnly => &[FdAccessMode::ReadOnly],
        RegionMode::Writable => &[FdAccessMode::ReadWrite, FdAccessMode::ReadOnly],
        RegionMode::Unsafe => &[FdAccessMode::ReadWrite],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_modes_match_the_fd_counts() {
        for mode in [
            RegionMode::ReadOnly,
            RegionMode::Writable,
            RegionMode::Unsafe,
        ] {
            assert_eq!(required_fd_modes(mode).len(), mode.num_fds());
        }
        assert_eq!(FdAccessMode::ReadWrite.to_string(), "O_RDWR");
    }
}
