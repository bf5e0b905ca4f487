//! Buffer mappings of the fake and the real systems: reads and writes
//! through `pread` and `pwrite` on a dup of the region's fd.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::uio::{pread, pwrite};

use crate::system::{BufferMapping, MojoError, MojoResult};

/// A shared buffer mapping: `pread`/`pwrite` on its own dup of the
/// region's fd (read-write, or the `O_RDONLY` one for read-only buffers).
#[derive(Debug)]
pub struct FdMapping {
    pub(crate) fd: OwnedFd,
    pub(crate) offset: u64,
    pub(crate) len: usize,
    pub(crate) writable: bool,
}

impl FdMapping {
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
        crate::os::probe_writable_mmap(&self.fd, self.len)
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
