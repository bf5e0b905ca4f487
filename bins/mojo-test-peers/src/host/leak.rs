//! The `leak` scenario, as `rm_host.cc`'s `Leak` runs it (test-peers.md
//! does not describe it; the reference host defines it): round trips that
//! each move a pipe, a shared buffer and two platform handles through the
//! proxy, with the proxy's, the client's and the host's fd counts and the
//! children's RSS taken from `/proc` before and after.
//!
//! One round trip ([`Host::leak_round_trip`]) is three requests on the main
//! pipe: `SubPipe` with a new pipe, one 8-byte `Echo` on it and its echo,
//! the end closed and `SubPipeDone` read; `Shmem` with a new 64 KiB buffer
//! (not filled; only `ShmemAck`'s opcode is checked); `PlatHandle` with a
//! 4 KiB zeroed memfd and an OS pipe's write end, the read end closed after
//! `PlatHandleAck`. So 8 messages cross the proxy per round trip, 3 of them
//! carrying handles (4 handles, 3 of them fds on the host's side). The
//! first [`LEAK_WARMUP`] round trips are not measured; then the host
//! sleeps [`LEAK_SETTLE_BEFORE`], samples, runs `--leak-iters` round trips
//! (default [`DEFAULT_LEAK_ITERS`], the reference's switch), sleeps
//! [`LEAK_SETTLE_AFTER`] and samples again. It passes when every round trip
//! completed and the proxy's fd count grew by at most
//! [`LEAK_FD_TOLERANCE`] (always, without a proxy).

use std::os::fd::OwnedFd;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::sys::memfd::{MFdFlags, memfd_create};

use super::{ChildRole, Host, TimedOut};
use crate::os::{proc_fd_count, proc_status_kb};
use crate::protocol::{Payload, op};
use crate::system::{MojoError, MojoSystem};

/// Round trips before the first sample (the reference's `kWarm`).
pub const LEAK_WARMUP: i64 = 10;
/// `--leak-iters` without the switch (the reference's `g_leak_iters`).
pub const DEFAULT_LEAK_ITERS: i32 = 200;
/// The shared buffer of each round trip.
pub const LEAK_SHMEM_SIZE: u64 = 64 * 1024;
/// The memfd of each round trip (zeroed by `ftruncate`).
pub const LEAK_MEMFD_SIZE: u64 = 4096;
/// The payload of the echo on each round trip's pipe.
pub const LEAK_ECHO_VALUE: u32 = 1234;
/// Most the proxy's fd count may grow over the measured round trips.
pub const LEAK_FD_TOLERANCE: i64 = 4;
/// Messages that cross the proxy per round trip (both directions).
pub const LEAK_MESSAGES_PER_ROUND_TRIP: u64 = 8;
/// Of those, the ones that carry handles.
pub const LEAK_HANDLE_MESSAGES_PER_ROUND_TRIP: u64 = 3;
/// Pause after the warm-up, before the first sample (the reference's 200 ms).
pub const LEAK_SETTLE_BEFORE: std::time::Duration = std::time::Duration::from_millis(200);
/// Pause after the last round trip, before the second sample (300 ms).
pub const LEAK_SETTLE_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

/// The fd counts and RSS (kB) of the proxy, the client and the host at one
/// moment; -1 where there is no such process or `/proc` says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcCounts {
    proxy_fds: i64,
    proxy_rss_kb: i64,
    client_fds: i64,
    client_rss_kb: i64,
    host_fds: i64,
}

impl<S: MojoSystem> Host<'_, S> {
    /// `leak`: see the module documentation.
    pub(super) fn leak(&mut self, pipe: &crate::system::MessagePipe) -> Result<(), TimedOut> {
        let iters = i64::from(self.cfg.counts.leak_iters);
        let mut err = String::new();
        let mut done = 0i64;
        for _ in 0..LEAK_WARMUP {
            if !err.is_empty() {
                break;
            }
            if self.leak_round_trip(pipe, &mut err)? {
                done += 1;
            }
        }
        std::thread::sleep(LEAK_SETTLE_BEFORE);
        let start = self.proc_counts();
        let t0 = Instant::now();
        for _ in 0..iters {
            if !err.is_empty() {
                break;
            }
            if self.leak_round_trip(pipe, &mut err)? {
                done += 1;
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        std::thread::sleep(LEAK_SETTLE_AFTER);
        let end = self.proc_counts();
        let fd_ok = self.children.pid(ChildRole::Proxy).is_none()
            || end.proxy_fds - start.proxy_fds <= LEAK_FD_TOLERANCE;
        let pass = err.is_empty() && done == LEAK_WARMUP + iters && fd_ok;
        let mut j = self.line("leak", pass);
        j.int("iterations", i128::from(iters))
            .int("round_trips_ok", i128::from(done))
            .num("elapsed_s", dt)
            .int("proxy_fds_start", i128::from(start.proxy_fds))
            .int("proxy_fds_end", i128::from(end.proxy_fds))
            .int("proxy_rss_kb_start", i128::from(start.proxy_rss_kb))
            .int("proxy_rss_kb_end", i128::from(end.proxy_rss_kb))
            .int("client_fds_start", i128::from(start.client_fds))
            .int("client_fds_end", i128::from(end.client_fds))
            .int("client_rss_kb_start", i128::from(start.client_rss_kb))
            .int("client_rss_kb_end", i128::from(end.client_rss_kb))
            .int("host_fds_start", i128::from(start.host_fds))
            .int("host_fds_end", i128::from(end.host_fds))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    /// The reference's `LeakIter`: `false` with `err` set on the first
    /// failure.
    fn leak_round_trip(
        &mut self,
        pipe: &crate::system::MessagePipe,
        err: &mut String,
    ) -> Result<bool, TimedOut> {
        // A pipe with one echo on it.
        let Ok((h0, h1)) = self.sys.create_message_pipe() else {
            *err = "create pipe".into();
            return Ok(false);
        };
        if self.send(pipe, &Payload::SubPipe, vec![h1.into()]).is_err() {
            *err = "subpipe send".into();
            return Ok(false);
        }
        let mut echo = op::ECHO.to_le_bytes().to_vec();
        echo.extend_from_slice(&LEAK_ECHO_VALUE.to_le_bytes());
        let _ = self.write(&h0, &echo, Vec::new());
        if self.read_expect(&h0, op::ECHO, err)?.is_none() {
            return Ok(false);
        }
        drop(h0);
        if self.read_expect(pipe, op::SUB_PIPE_DONE, err)?.is_none() {
            return Ok(false);
        }
        // A shared buffer.
        let Ok(buf) = self.sys.create_shared_buffer(LEAK_SHMEM_SIZE) else {
            *err = "create buffer".into();
            return Ok(false);
        };
        let shmem = Payload::Shmem {
            size: LEAK_SHMEM_SIZE,
        };
        if self.send(pipe, &shmem, vec![buf.into()]).is_err() {
            *err = "shmem send".into();
            return Ok(false);
        }
        if self.read_expect(pipe, op::SHMEM_ACK, err)?.is_none() {
            return Ok(false);
        }
        // Platform handles: a memfd and an OS pipe's write end.
        let Ok((memfd, read_end, write_end)) = leak_fds() else {
            *err = "memfd/pipe".into();
            return Ok(false);
        };
        let handles = self.sys.wrap_platform_handle(memfd).and_then(|h0| {
            self.sys
                .wrap_platform_handle(write_end)
                .map(|h1| vec![h0.into(), h1.into()])
        });
        let plat = Payload::PlatHandle {
            size: LEAK_MEMFD_SIZE,
        };
        if handles.and_then(|hs| self.send(pipe, &plat, hs)).is_err() {
            *err = "plat send".into();
            return Ok(false);
        }
        let ok = self.read_expect(pipe, op::PLAT_HANDLE_ACK, err)?.is_some();
        drop(read_end);
        Ok(ok)
    }

    /// The fd counts and RSS of the proxy, the client and this host now.
    fn proc_counts(&self) -> ProcCounts {
        let proxy = self.children.pid(ChildRole::Proxy);
        let client = self.children.pid(ChildRole::Client);
        ProcCounts {
            proxy_fds: proc_fd_count(proxy),
            proxy_rss_kb: proc_status_kb(proxy, "VmRSS:"),
            client_fds: proc_fd_count(client),
            client_rss_kb: proc_status_kb(client, "VmRSS:"),
            host_fds: proc_fd_count(Some(std::process::id())),
        }
    }
}

/// The round trip's memfd (4 KiB of zeros) and an OS pipe: (memfd, read
/// end, write end).
fn leak_fds() -> Result<(OwnedFd, OwnedFd, OwnedFd), MojoError> {
    let memfd =
        memfd_create("rm_leak", MFdFlags::MFD_CLOEXEC).map_err(|_| MojoError::ResourceExhausted)?;
    // The reference ignores a failed ftruncate; so does this.
    let _ = nix::unistd::ftruncate(&memfd, LEAK_MEMFD_SIZE as i64);
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|_| MojoError::ResourceExhausted)?;
    Ok((memfd, r, w))
}
