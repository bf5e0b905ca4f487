//! Helpers shared by the integration tests: a tiny test framing
//! (`u32 payload_len, u32 num_fds, payload`), an event-loop driver built on
//! mio (no busy loops), fd identity checks and the open-fd counter.

#![allow(dead_code, unreachable_pub, missing_docs, unused_imports)]

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use mojo_platform_channel::{ChannelError, Endpoint, ReadOutcome, WriteOutcome};

pub use mojo_platform_channel::test_support::{
    HEADER, assert_no_fd_leak, fd_lock, frame, open_fd_count, peek_header,
};

/// Takes one complete frame (payload and its fds) off the endpoint, if all
/// its bytes and fds have arrived. Asserts Chromium's association rule: once
/// the last byte of a frame is there, so are its fds.
pub fn take_frame(ep: &mut Endpoint) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
    let (len, nfds) = peek_header(ep.buffered())?;
    if ep.buffered().len() < HEADER + len {
        return None;
    }
    assert!(
        ep.queued_fds() >= nfds,
        "frame complete but only {} of its {nfds} fds arrived",
        ep.queued_fds()
    );
    let payload = ep.buffered()[HEADER..HEADER + len].to_vec();
    ep.consume(HEADER + len).unwrap();
    let fds = ep.take_fds(nfds).unwrap();
    Some((payload, fds))
}

/// Drives endpoints with a mio poll.
pub struct Driver {
    poll: Poll,
    events: Events,
    pub would_block_writes: usize,
}

pub const DEADLINE: Duration = Duration::from_secs(60);

impl Driver {
    pub fn new(ep: &mut Endpoint) -> Self {
        let poll = Poll::new().unwrap();
        poll.registry()
            .register(ep, Token(0), Interest::READABLE | Interest::WRITABLE)
            .unwrap();
        Self {
            poll,
            events: Events::with_capacity(8),
            would_block_writes: 0,
        }
    }

    /// Flushes and reads until `done` returns `Some`, waiting in `poll`
    /// between rounds. Returns `Err` on a channel error; panics on timeout.
    /// `done` also sees whether EOF was reached.
    pub fn run<T>(
        &mut self,
        ep: &mut Endpoint,
        mut done: impl FnMut(&mut Endpoint, bool) -> Option<T>,
    ) -> Result<T, ChannelError> {
        let start = Instant::now();
        let mut eof = false;
        loop {
            if ep.has_pending_output() && ep.flush()? == WriteOutcome::WouldBlock {
                self.would_block_writes += 1;
            }
            let mut progressed = true;
            while progressed && !eof {
                progressed = false;
                match ep.read_available()? {
                    ReadOutcome::Data { .. } => progressed = true,
                    ReadOutcome::WouldBlock => {}
                    ReadOutcome::Eof => eof = true,
                }
                if let Some(t) = done(ep, eof) {
                    return Ok(t);
                }
            }
            if let Some(t) = done(ep, eof) {
                return Ok(t);
            }
            assert!(start.elapsed() < DEADLINE, "test timed out");
            if eof && !ep.has_pending_output() {
                panic!("EOF reached and condition not met");
            }
            self.poll
                .poll(&mut self.events, Some(Duration::from_millis(500)))
                .unwrap();
        }
    }

    /// Sends everything queued.
    pub fn flush_all(&mut self, ep: &mut Endpoint) -> Result<(), ChannelError> {
        self.run(ep, |ep, _| (!ep.has_pending_output()).then_some(()))
    }

    /// Receives one frame.
    pub fn recv_frame(
        &mut self,
        ep: &mut Endpoint,
    ) -> Result<(Vec<u8>, Vec<OwnedFd>), ChannelError> {
        self.run(ep, |ep, eof| {
            let f = take_frame(ep);
            assert!(f.is_some() || !eof, "EOF before a complete frame");
            f
        })
    }
}

/// A pipe whose read end yields `content` (then EOF); returns the read end.
pub fn pipe_with(content: &[u8]) -> OwnedFd {
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut w = std::fs::File::from(w);
    w.write_all(content).unwrap();
    drop(w);
    r
}

/// Reads an fd to its end (pipe read end) or from offset 0 (memfd / file).
pub fn read_all(fd: OwnedFd) -> Vec<u8> {
    let mut f = std::fs::File::from(fd);
    let mut v = vec![];
    f.read_to_end(&mut v).unwrap();
    v
}

/// A memfd holding `content`, file offset reset to 0.
pub fn memfd_with(content: &[u8]) -> OwnedFd {
    use std::io::{Seek, SeekFrom};
    let fd = nix::sys::memfd::memfd_create("test", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
    let mut f = std::fs::File::from(fd);
    f.write_all(content).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    OwnedFd::from(f)
}

/// Reads a memfd's content via pread at offset 0 (so dups sharing the
/// offset do not interfere).
pub fn pread_all(fd: &impl AsFd, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let n = nix::sys::uio::pread(fd.as_fd(), &mut v, 0).unwrap();
    v.truncate(n);
    v
}

/// Deterministic pattern for large payloads.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}
