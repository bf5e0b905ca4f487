//! Helpers shared by the integration tests: a tiny test framing
//! (`u32 payload_len, u32 num_fds, payload`), an echo core that parses it in
//! place, peers driven in the same thread as the driver, fd identity checks
//! and the open-fd counter.

#![allow(dead_code, unreachable_pub, missing_docs, unused_imports)]

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use mojo_driver::{
    Backlog, CloseReason, Core, CoreRequest, Driver, LinkId, NewLinkError, ReceivedFds, Transmit,
};
use mojo_platform_channel::{Endpoint, ReadOutcome, socketpair_fds};

pub use mojo_platform_channel::test_support::{
    HEADER, assert_no_fd_leak, fd_lock, frame, open_fd_count, peek_header,
};

/// The inode behind an fd, to check that the same file came back.
pub fn inode(fd: &impl AsFd) -> u64 {
    nix::sys::stat::fstat(fd.as_fd()).unwrap().st_ino
}

/// `n` fresh sockets to pass around (each a distinct inode); the other ends
/// are closed at once.
pub fn some_fds(n: usize) -> Vec<OwnedFd> {
    (0..n)
        .map(|_| socketpair_fds(true, true).unwrap().0)
        .collect()
}

/// The echo core refuses frames claiming more fds than this.
pub const MAX_TEST_FDS: usize = 64;

/// Takes one complete frame off a peer endpoint.
pub fn take_frame(ep: &mut Endpoint) -> Option<(Vec<u8>, Vec<OwnedFd>)> {
    let (len, nfds) = peek_header(ep.buffered())?;
    if ep.buffered().len() < HEADER + len || ep.queued_fds() < nfds {
        return None;
    }
    let payload = ep.buffered()[HEADER..HEADER + len].to_vec();
    ep.consume(HEADER + len).unwrap();
    let fds = ep.take_fds(nfds).unwrap();
    Some((payload, fds))
}

/// Reads what a peer endpoint has; true at end of stream.
pub fn peer_read(ep: &mut Endpoint) -> bool {
    loop {
        match ep.read_available().unwrap() {
            ReadOutcome::Data { .. } => {}
            ReadOutcome::WouldBlock => return false,
            ReadOutcome::Eof => return true,
        }
    }
}

/// How long any test may spin before it is declared hung.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// The wait of one driver turn while peers live in the same thread.
pub const TURN_WAIT: Duration = Duration::from_millis(2);

/// Runs driver turns, then `step` (the peers' side), until `step` returns
/// true. Panics if the run ends or takes longer than [`DEADLINE`].
pub fn spin<C: Core>(
    driver: &mut Driver,
    core: &mut C,
    mut step: impl FnMut(&mut C, &Driver) -> bool,
) where
    C::Error: std::fmt::Debug,
{
    let start = Instant::now();
    loop {
        if let Some(exit) = driver.turn(core, Some(TURN_WAIT)).unwrap() {
            panic!("run ended early: {exit}");
        }
        if step(core, driver) {
            return;
        }
        assert!(start.elapsed() < DEADLINE, "test hung");
    }
}

/// The echo core's error.
#[derive(Debug, PartialEq, Eq)]
pub enum EchoError {
    /// A frame whose payload is `BAD`.
    BadFrame,
    /// A frame claiming more than [`MAX_TEST_FDS`] fds.
    TooManyFds(usize),
}

impl std::fmt::Display for EchoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadFrame => f.write_str("bad frame"),
            Self::TooManyFds(n) => write!(f, "frame claims {n} fds"),
        }
    }
}

impl std::error::Error for EchoError {}

/// Payloads with a meaning to [`EchoCore`]; everything else is echoed.
pub const ADOPT: &[u8] = b"ADOPT";
pub const BAD: &[u8] = b"BAD";
pub const CLOSE: &[u8] = b"CLOSE";
pub const WELCOME: &[u8] = b"WELCOME";
pub const PAIR: &[u8] = b"PAIR";
pub const PAIRED: &[u8] = b"PAIRED";
pub const ABORT: &[u8] = b"ABORT";

/// Echoes every frame, with its fds, back on the link it came from.
/// `ADOPT` with one fd adopts that socket as a link and greets it with
/// `WELCOME`; `PAIR` makes a new link of a fresh socket pair, greets it
/// with `WELCOME` and answers `PAIRED` with the other end; `CLOSE` is echoed, then the link is closed; `BAD` is an error.
/// `ABORT` aborts the link at once. With `routes`, frames from a link are
/// sent on to its route's destination instead of back. With
/// `pause_on_backlog`, the links that feed a link whose output backlog is
/// high (itself, or the links routed to it) stop being read until it drains.
#[derive(Default)]
pub struct EchoCore {
    out: VecDeque<Transmit>,
    requests: VecDeque<CoreRequest>,
    pub pause_on_backlog: bool,
    /// (from, to): where frames from `from` go (back to `from` if absent).
    pub routes: Vec<(LinkId, LinkId)>,
    pub frames_in: usize,
    pub bytes_in: usize,
    /// Links in the order their input arrived, one entry per call.
    pub input_calls: Vec<LinkId>,
    pub closed: Vec<(LinkId, CloseReason)>,
    pub adopted: Vec<Result<LinkId, String>>,
    pub backlog: Vec<(LinkId, Backlog)>,
    next_tag: u64,
    /// Pair requests: tag and the link that asked.
    pair_requests: Vec<(u64, LinkId)>,
    pub paired: Vec<Result<LinkId, String>>,
    /// Buffers the driver handed back, per link (all must be empty).
    pub recycled: Vec<(LinkId, usize)>,
    fd_scratch: Vec<OwnedFd>,
}

impl EchoCore {
    fn destination(&self, from: LinkId) -> LinkId {
        self.routes
            .iter()
            .find(|(f, _)| *f == from)
            .map_or(from, |&(_, to)| to)
    }

    /// An echo core that pauses a link while its own output backs up.
    pub fn pausing() -> Self {
        Self {
            pause_on_backlog: true,
            ..Self::default()
        }
    }
}

impl Core for EchoCore {
    type Error = EchoError;

    fn handle_input(
        &mut self,
        link: LinkId,
        input: &[u8],
        fds: &mut ReceivedFds,
    ) -> Result<usize, EchoError> {
        self.input_calls.push(link);
        let mut consumed = 0;
        while let Some((len, nfds)) = peek_header(&input[consumed..]) {
            if nfds > MAX_TEST_FDS {
                return Err(EchoError::TooManyFds(nfds));
            }
            let end = consumed + HEADER + len;
            let Some(whole) = input.get(consumed..end) else {
                break;
            };
            self.fd_scratch.clear();
            if !fds.take_into(nfds, &mut self.fd_scratch) {
                break;
            }
            let payload = &whole[HEADER..];
            self.frames_in += 1;
            self.bytes_in += whole.len();
            if payload == BAD {
                return Err(EchoError::BadFrame);
            }
            if payload == ADOPT && self.fd_scratch.len() == 1 {
                let fd = self.fd_scratch.pop().unwrap();
                self.next_tag += 1;
                self.requests.push_back(CoreRequest::Adopt {
                    fd,
                    tag: self.next_tag,
                });
            } else if payload == ABORT {
                self.requests.push_back(CoreRequest::Abort(link));
                return Ok(end);
            } else if payload == PAIR {
                self.next_tag += 1;
                self.pair_requests.push((self.next_tag, link));
                self.requests
                    .push_back(CoreRequest::NewLinkPair { tag: self.next_tag });
            } else {
                self.out.push_back(Transmit {
                    link: self.destination(link),
                    bytes: whole.to_vec(),
                    fds: std::mem::take(&mut self.fd_scratch),
                });
                if payload == CLOSE {
                    self.requests.push_back(CoreRequest::Close(link));
                }
            }
            consumed = end;
        }
        Ok(consumed)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn poll_request(&mut self) -> Option<CoreRequest> {
        self.requests.pop_front()
    }

    fn recycle(&mut self, link: LinkId, buffer: Vec<u8>) {
        assert!(buffer.is_empty(), "a recycled buffer must come back empty");
        self.recycled.push((link, buffer.capacity()));
    }

    fn handle_link_closed(&mut self, link: LinkId, reason: CloseReason) {
        self.closed.push((link, reason));
    }

    fn handle_link_adopted(&mut self, _tag: u64, result: Result<LinkId, NewLinkError>) {
        if let Ok(link) = &result {
            self.out.push_back(Transmit {
                link: *link,
                bytes: frame(WELCOME, 0),
                fds: vec![],
            });
        }
        self.adopted.push(result.map_err(|e| e.to_string()));
    }

    fn handle_link_pair(&mut self, tag: u64, result: Result<(LinkId, OwnedFd), NewLinkError>) {
        let asked = self
            .pair_requests
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|&(_, link)| link)
            .expect("a tag we gave");
        match result {
            Ok((link, theirs)) => {
                self.out.push_back(Transmit {
                    link,
                    bytes: frame(WELCOME, 0),
                    fds: vec![],
                });
                self.out.push_back(Transmit {
                    link: asked,
                    bytes: frame(PAIRED, 1),
                    fds: vec![theirs],
                });
                self.paired.push(Ok(link));
            }
            Err(e) => self.paired.push(Err(e.to_string())),
        }
    }

    fn handle_backlog(&mut self, link: LinkId, backlog: Backlog) {
        self.backlog.push((link, backlog));
        if !self.pause_on_backlog {
            return;
        }
        let feeders: Vec<LinkId> = if self.routes.is_empty() {
            vec![link]
        } else {
            self.routes
                .iter()
                .filter(|(_, to)| *to == link)
                .map(|&(from, _)| from)
                .collect()
        };
        for feeder in feeders {
            self.requests.push_back(match backlog {
                Backlog::High => CoreRequest::PauseReading(feeder),
                Backlog::Low => CoreRequest::ResumeReading(feeder),
            });
        }
    }
}
