//! The few OS probes and fd helpers both peers use (the spec has the peers
//! create memfds and OS pipes themselves and check what the kernel enforces).

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::uio::pread;

use crate::protocol::Fnv;

/// Chunk size of [`hash_fd_prefix`].
pub const HASH_CHUNK: usize = 64 * 1024;

pub use crate::system::mapping::probe_writable_mmap;

/// `fcntl(F_GETFL) & O_ACCMODE` (0 = `O_RDONLY`, 1 = `O_WRONLY`, 2 = `O_RDWR`),
/// or -1 if `fcntl` fails.
pub fn fd_access_mode(fd: &OwnedFd) -> i64 {
    fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_or(-1, |fl| {
        i64::from((OFlag::from_bits_retain(fl) & OFlag::O_ACCMODE).bits())
    })
}

/// Hashes the first `size` bytes of `fd` (fewer at EOF). Returns the FNV
/// and the byte count, or `None` for the count if the first read failed
/// (the reference's `pread` result of -1).
pub fn hash_fd_prefix(fd: &OwnedFd, size: u64) -> (u64, Option<u64>) {
    let mut h = Fnv::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut at = 0u64;
    while at < size {
        let n = ((size - at) as usize).min(HASH_CHUNK);
        match pread(fd.as_fd(), &mut buf[..n], at as i64) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                at += k as u64;
            }
            Err(Errno::EINTR) => {}
            Err(_) if at == 0 => return (h.value(), None),
            Err(_) => break,
        }
    }
    (h.value(), Some(at))
}
