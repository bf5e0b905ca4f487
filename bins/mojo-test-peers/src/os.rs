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

/// The number of entries of `/proc/PID/fd` (the reference's `ProcFdCount`),
/// or -1 without a process or when the directory cannot be read.
pub fn proc_fd_count(pid: Option<u32>) -> i64 {
    pid.and_then(|p| std::fs::read_dir(format!("/proc/{p}/fd")).ok())
        .map_or(-1, |d| d.count() as i64)
}

/// The kB figure of the `key` line (`"VmRSS:"`, ...) of `/proc/PID/status`
/// (the reference's `ProcStatusKb`), or -1 if there is none.
pub fn proc_status_kb(pid: Option<u32>, key: &str) -> i64 {
    let Some(status) = pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
    else {
        return -1;
    };
    status_kb(&status, key)
}

/// The kB figure of the `key` line of a `/proc/PID/status` text, or -1.
pub fn status_kb(status: &str, key: &str) -> i64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_give_their_kb_figure() {
        let status = "Name:\tmojo_proxy\nVmHWM:\t   9000 kB\nVmRSS:\t    8144 kB\n";
        assert_eq!(status_kb(status, "VmRSS:"), 8144);
        assert_eq!(status_kb(status, "VmHWM:"), 9000);
        assert_eq!(status_kb(status, "VmSwap:"), -1);
        assert_eq!(status_kb("VmRSS:\tlots kB\n", "VmRSS:"), -1);
    }

    #[test]
    fn this_process_has_fds_and_rss_and_no_process_has_none() {
        let me = Some(std::process::id());
        assert!(proc_fd_count(me) >= 3);
        assert!(proc_status_kb(me, "VmRSS:") > 0);
        assert_eq!(proc_fd_count(None), -1);
        assert_eq!(proc_status_kb(None, "VmRSS:"), -1);
    }
}
