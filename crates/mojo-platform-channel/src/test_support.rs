//! Internals that the integration tests of this crate and of the crates
//! built on it drive directly (the sans-IO queue types with fd tokens, the
//! fd flag helpers), and the helpers those tests share: the open-fd counter
//! with its leak check, and the tiny test framing (`u32 payload_len,
//! u32 num_fds, payload`). Not part of the API: no stability promise.

use std::sync::{Mutex, MutexGuard};

pub use crate::fd_passing::{set_cloexec, set_nonblocking};
pub use crate::queue::{IncomingBuffer, OutgoingQueue, SendChunk};

/// Serializes tests that count `/proc/self/fd` or spawn children, so that a
/// concurrently running test cannot change the count.
static FD_LOCK: Mutex<()> = Mutex::new(());

/// Holds the fd-count lock (see [`assert_no_fd_leak`]).
pub fn fd_lock() -> MutexGuard<'static, ()> {
    FD_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Number of open fds of this process (0 if `/proc/self/fd` is unreadable).
pub fn open_fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Runs `f` and asserts that it leaves no extra fd open.
///
/// # Panics
///
/// When `f` leaves a different number of fds open.
pub fn assert_no_fd_leak<T>(f: impl FnOnce() -> T) -> T {
    let _g = fd_lock();
    let before = open_fd_count();
    let out = f();
    let after = open_fd_count();
    assert_eq!(
        before, after,
        "fd leak: {before} open before, {after} after"
    );
    out
}

/// Length of the test framing's header.
pub const HEADER: usize = 8;

/// Encodes one frame of the test framing.
pub fn frame(payload: &[u8], num_fds: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER + payload.len());
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(&(num_fds as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// Parses the test framing's header at the front of `buf`: payload length
/// and fd count.
pub fn peek_header(buf: &[u8]) -> Option<(usize, usize)> {
    let len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let nfds = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?) as usize;
    Some((len, nfds))
}
