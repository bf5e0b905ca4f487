//! Making the backing file of a new region: a sealed memfd with its pages
//! allocated up front (the default), or a `/dev/shm` file as Chromium makes.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use mojo_wire_kit::{RandomSource, RegionMode};
use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, FcntlArg, OFlag, SealFlag, fallocate, fcntl, open};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::stat::Mode;
use nix::unistd::{ftruncate, unlink};

use super::ShmError;
use crate::SysError;

/// Directory of the [`ShmBackend::DevShm`] backend (Chromium's default
/// shared-memory temp dir on Linux).
pub const SHM_DIR: &str = "/dev/shm";

/// Prefix of the (immediately unlinked) files we create in [`SHM_DIR`].
/// Chromium's own files are named `.org.chromium.Chromium.XXXXXX`; ours are
/// distinguishable in `/proc/PID/fd` listings.
pub const SHM_NAME_PREFIX: &str = ".org.chromium.mojo_proxy_rs.";

/// Name given to memfds of the [`ShmBackend::Memfd`] backend.
pub const MEMFD_NAME: &str = "mojo_proxy_rs_shm";

/// How many random names [`ShmBackend::DevShm`] tries before giving up.
const DEV_SHM_NAME_ATTEMPTS: usize = 16;

/// The seals of the memfds we create: size fixed both ways, and no further
/// seals, so a peer can neither shrink the file under our mappings nor
/// seal it against our writes.
pub(super) const CREATED_SEALS: SealFlag = SealFlag::F_SEAL_SHRINK
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_SEAL);

/// How [`SharedMemoryRegion::create_with`](super::SharedMemoryRegion::create_with)
/// makes the backing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShmBackend {
    /// `memfd_create`, every page allocated, sealed with
    /// `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`; the read-only fd of a
    /// writable region comes from reopening `/proc/self/fd/N` `O_RDONLY`.
    /// Chromium's receiver only checks the fds' access modes, so it accepts
    /// these, and no peer can make our mappings fault.
    #[default]
    Memfd,
    /// An unlinked, fully allocated file in [`SHM_DIR`], as Chromium makes
    /// its own. Files cannot be sealed there, so regions made this way are
    /// unsealed and mapped only once the peer is trusted
    /// ([`SharedMemoryRegion::trust_peer`](super::SharedMemoryRegion::trust_peer)).
    DevShm,
}

pub(super) type CreatedFds = (OwnedFd, Option<OwnedFd>);

pub(super) fn create_memfd(mode: RegionMode, size: usize) -> Result<CreatedFds, ShmError> {
    let fd = memfd_create(
        MEMFD_NAME,
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(SysError::of("memfd_create"))?;
    truncate_to(&fd, size)?;
    allocate_pages(&fd, size)?;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(CREATED_SEALS)).map_err(SysError::of("fcntl(F_ADD_SEALS)"))?;
    let readonly_fd = if mode == RegionMode::Writable {
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        Some(
            open(
                path.as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(SysError::of("reopen memfd O_RDONLY"))?,
        )
    } else {
        None
    };
    Ok((fd, readonly_fd))
}

/// Removes the file when dropped (also on the error paths).
struct Unlinker<'a>(&'a Path);

impl Drop for Unlinker<'_> {
    fn drop(&mut self) {
        let _ = unlink(self.0);
    }
}

pub(super) fn create_dev_shm<R: RandomSource + ?Sized>(
    dir: &Path,
    mode: RegionMode,
    size: usize,
    rng: &mut R,
) -> Result<CreatedFds, ShmError> {
    let mut attempt = 0;
    let (fd, path) = loop {
        let path: PathBuf = dir.join(format!("{SHM_NAME_PREFIX}{:016x}", rng.next_u64()));
        match open(
            &path,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::S_IRUSR | Mode::S_IWUSR,
        ) {
            Ok(fd) => break (fd, path),
            Err(Errno::EEXIST) if attempt < DEV_SHM_NAME_ATTEMPTS => attempt += 1,
            Err(errno) => return Err(SysError::new("open shared memory file", errno).into()),
        }
    };
    let unlinker = Unlinker(&path);
    let readonly_fd = if mode == RegionMode::Writable {
        Some(
            open(
                &path,
                OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(SysError::of("reopen shared memory file O_RDONLY"))?,
        )
    } else {
        None
    };
    drop(unlinker);
    truncate_to(&fd, size)?;
    allocate_pages(&fd, size)?;
    Ok((fd, readonly_fd))
}

fn file_len(size: usize) -> Result<i64, ShmError> {
    i64::try_from(size).map_err(|_| ShmError::TooLarge { size: size as u64 })
}

fn truncate_to(fd: &OwnedFd, size: usize) -> Result<(), ShmError> {
    let len = file_len(size)?;
    loop {
        match ftruncate(fd, len) {
            Ok(()) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(SysError::new("ftruncate", errno).into()),
        }
    }
}

/// Allocates every page now, so that a full tmpfs or memory limit is a
/// creation error and never a `SIGBUS` on a later first write to a hole.
fn allocate_pages(fd: &OwnedFd, size: usize) -> Result<(), ShmError> {
    let len = file_len(size)?;
    loop {
        match fallocate(fd.as_fd(), FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(SysError::new("fallocate", errno).into()),
        }
    }
}
