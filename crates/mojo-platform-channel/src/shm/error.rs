//! Errors of creating, importing, converting and mapping regions.

use std::fmt;

use mojo_wire_kit::RegionMode;

use super::{FdAccessMode, MAX_REGION_SIZE};
use crate::SysError;

/// Errors creating, importing, converting, mapping or copying a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShmError {
    /// Size 0 (Chromium refuses it).
    ZeroSize,
    /// Size above [`MAX_REGION_SIZE`].
    TooLarge {
        /// The size asked for.
        size: u64,
    },
    /// The guid is zero (Chromium refuses a zero `UnguessableToken`).
    ZeroGuid,
    /// The operation is not allowed for this mode (e.g. creating a read-only
    /// region, duplicating a writable one).
    ModeNotAllowed {
        /// The operation.
        op: &'static str,
        /// The region's mode.
        mode: RegionMode,
    },
    /// Wrong number of fds for the mode.
    WrongFdCount {
        /// The mode.
        mode: RegionMode,
        /// Fds the mode needs.
        expected: usize,
        /// Fds given.
        found: usize,
    },
    /// An fd has the wrong access mode for its place.
    WrongAccessMode {
        /// Index of the fd (0 or 1).
        index: usize,
        /// What the mode requires.
        expected: FdAccessMode,
        /// What the fd has.
        found: FdAccessMode,
    },
    /// An fd is not a regular file (shared memory files and memfds are).
    NotARegularFile {
        /// Index of the fd.
        index: usize,
    },
    /// The file is smaller than the region size (mapping it would SIGBUS).
    FileTooSmall {
        /// Index of the fd.
        index: usize,
        /// The file's size.
        file_size: u64,
        /// The region size.
        region_size: u64,
    },
    /// The two fds of a writable region name different files.
    InodeMismatch,
    /// A mapping or copy range lies outside the region.
    OutOfBounds {
        /// Start of the range.
        offset: usize,
        /// Its length.
        len: usize,
        /// The region size.
        size: usize,
    },
    /// Mapping refused: the file is not sealed against shrinking, so the
    /// peer that sent it could truncate it and kill this process with
    /// `SIGBUS` on the next access. Copy with
    /// [`SharedMemoryRegion::read_at`](super::SharedMemoryRegion::read_at)
    /// instead, or, for a peer that is trusted anyway (the ipcz host),
    /// [`trust_peer`](super::SharedMemoryRegion::trust_peer).
    Unsealed,
    /// [`read_at`](super::SharedMemoryRegion::read_at) /
    /// [`write_at`](super::SharedMemoryRegion::write_at) reached the end of
    /// the file early: the peer made it smaller than the region.
    Truncated {
        /// Start of the range.
        offset: usize,
        /// Its length.
        len: usize,
        /// Bytes that could be copied.
        copied: usize,
    },
    /// The OS did not refuse a writable mapping of a read-only fd.
    ReadOnlyNotEnforced {
        /// Which check succeeded when it should have failed.
        check: &'static str,
    },
    /// A system call failed.
    Sys(SysError),
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroSize => f.write_str("shared memory size is 0"),
            Self::TooLarge { size } => {
                write!(f, "shared memory size {size} exceeds {MAX_REGION_SIZE}")
            }
            Self::ZeroGuid => f.write_str("shared memory guid is zero"),
            Self::ModeNotAllowed { op, mode } => write!(f, "{op} is not allowed in mode {mode}"),
            Self::WrongFdCount {
                mode,
                expected,
                found,
            } => write!(f, "a {mode} region needs {expected} fds, {found} given"),
            Self::WrongAccessMode {
                index,
                expected,
                found,
            } => write!(f, "fd[{index}] is {found}, {expected} required"),
            Self::NotARegularFile { index } => write!(f, "fd[{index}] is not a regular file"),
            Self::FileTooSmall {
                index,
                file_size,
                region_size,
            } => write!(
                f,
                "fd[{index}] file has {file_size} bytes, region needs {region_size}"
            ),
            Self::InodeMismatch => {
                f.write_str("the two fds of a writable region name different files")
            }
            Self::OutOfBounds { offset, len, size } => write!(
                f,
                "range {offset}+{len} is outside the region of {size} bytes"
            ),
            Self::Unsealed => f.write_str(
                "refusing to map a shared memory file that is not sealed against shrinking \
                 (its sender could crash us with SIGBUS)",
            ),
            Self::Truncated {
                offset,
                len,
                copied,
            } => write!(
                f,
                "shared memory file ends inside range {offset}+{len} ({copied} bytes copied): \
                 the peer truncated it"
            ),
            Self::ReadOnlyNotEnforced { check } => {
                write!(
                    f,
                    "read-only fd is not enforced by the OS: {check} succeeded"
                )
            }
            Self::Sys(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Sys(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SysError> for ShmError {
    fn from(e: SysError) -> Self {
        Self::Sys(e)
    }
}
