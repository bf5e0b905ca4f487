//! [`FdMapping`], the buffer mapping of the node-backed systems (and of the
//! test peers' fake): reads and writes
//! through `pread` and `pwrite` on a dup of the region's fd.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::uio::{pread, pwrite};

use crate::{BufferMapping, MojoError, MojoResult};

/// A shared buffer mapping: `pread`/`pwrite` on its own dup of the
/// region's fd (read-write, or the `O_RDONLY` one for read-only buffers).
#[derive(Debug)]
pub struct FdMapping {
    fd: OwnedFd,
    offset: u64,
    len: usize,
    writable: bool,
}

impl FdMapping {
    /// A mapping of `len` bytes at `offset` of the region behind `fd` (a dup
    /// the mapping owns): writable only if `writable` (and the fd allows it).
    /// Bounds against the region are the caller's to check.
    pub fn new(fd: OwnedFd, offset: u64, len: usize, writable: bool) -> Self {
        Self {
            fd,
            offset,
            len,
            writable,
        }
    }

    fn range(&self, offset: usize, len: usize) -> MojoResult<i64> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(self.offset as i64 + offset as i64),
            _ => Err(MojoError::OutOfRange),
        }
    }
}

impl BufferMapping for FdMapping {
    fn len(&self) -> usize {
        self.len
    }

    fn is_writable(&self) -> bool {
        self.writable
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> MojoResult<()> {
        let at = self.range(offset, dst.len())?;
        positioned_io(dst.len(), at, |done, at| {
            pread(self.fd.as_fd(), &mut dst[done..], at)
        })
    }

    fn write(&mut self, offset: usize, src: &[u8]) -> MojoResult<()> {
        if !self.writable {
            return Err(MojoError::PermissionDenied);
        }
        let at = self.range(offset, src.len())?;
        positioned_io(src.len(), at, |done, at| {
            pwrite(self.fd.as_fd(), &src[done..], at)
        })
    }

    fn try_make_writable(&mut self) -> Result<(), Errno> {
        // The kernel's rule for mprotect(PROT_WRITE) on a MAP_SHARED mapping
        // is the one for a writable mmap of its fd: ask it that.
        probe_writable_mmap(&self.fd, self.len)
    }
}

/// `mmap(PROT_READ | PROT_WRITE, MAP_SHARED)` of `len` bytes of `fd`,
/// unmapped at once: `Ok` if the kernel allowed it, else its errno (EACCES
/// for an `O_RDONLY` fd).
pub fn probe_writable_mmap(fd: &OwnedFd, len: usize) -> Result<(), Errno> {
    match memmap2::MmapOptions::new().len(len).map_raw(fd.as_raw_fd()) {
        Ok(_map) => Ok(()),
        Err(e) => Err(e
            .raw_os_error()
            .map_or(Errno::UnknownErrno, Errno::from_raw)),
    }
}

/// Runs `io` (a `pread` or `pwrite` of the bytes from `done` on, at file
/// offset `at`) until `len` bytes are done, retrying on `EINTR`. A call
/// that moves nothing is `DATA_LOSS` (the region ended under us).
fn positioned_io(
    len: usize,
    mut at: i64,
    mut io: impl FnMut(usize, i64) -> nix::Result<usize>,
) -> MojoResult<()> {
    let mut done = 0;
    while done < len {
        match io(done, at) {
            Ok(0) => return Err(MojoError::DataLoss),
            Ok(n) => {
                done += n;
                at += n as i64;
            }
            Err(Errno::EINTR) => {}
            Err(_) => return Err(MojoError::Internal),
        }
    }
    Ok(())
}
