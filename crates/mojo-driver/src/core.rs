//! The interface between the driver and the sans-IO protocol core it drives.

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::OwnedFd;
use std::time::Instant;

use mojo_platform_channel::{ChannelError, InheritError};

/// Names one link (one socket) of a [`Driver`](crate::Driver). Ids are
/// never reused within one driver, so a stale id can only miss, never hit
/// another link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub(crate) u64);

impl LinkId {
    /// The id as a number (for logs and tables).
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}", self.0)
    }
}

/// The fds received on one link and not yet taken by the core, in arrival
/// order. The core takes as many as each frame it parses claims; whatever
/// is left when the link goes away is closed.
#[derive(Debug, Default)]
pub struct ReceivedFds {
    fds: VecDeque<OwnedFd>,
}

impl ReceivedFds {
    /// Fds waiting.
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// True when no fd waits.
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Takes the oldest fd.
    pub fn pop(&mut self) -> Option<OwnedFd> {
        self.fds.pop_front()
    }

    /// Moves the `n` oldest fds to the end of `out` and returns true, or
    /// takes nothing and returns false when fewer than `n` have arrived.
    pub fn take_into(&mut self, n: usize, out: &mut Vec<OwnedFd>) -> bool {
        if n > self.fds.len() {
            return false;
        }
        out.extend(self.fds.drain(..n));
        true
    }

    /// The `n` oldest fds, or `None` (taking nothing) when fewer have arrived.
    pub fn take(&mut self, n: usize) -> Option<Vec<OwnedFd>> {
        let mut out = Vec::with_capacity(n);
        self.take_into(n, &mut out).then_some(out)
    }

    pub(crate) fn extend(&mut self, fds: impl IntoIterator<Item = OwnedFd>) {
        self.fds.extend(fds);
    }
}

/// One message for the driver to send: bytes and the fds that ride with
/// them. The bytes are handed to the endpoint as they are (moved, not
/// copied); the fds are closed in this process once sent.
#[derive(Debug)]
pub struct Transmit {
    /// Where to send it.
    pub link: LinkId,
    /// The whole frame, headers included. Must not be empty, and must have at
    /// least one byte per
    /// [`MAX_FDS_PER_SENDMSG`](mojo_platform_channel::MAX_FDS_PER_SENDMSG)
    /// fds (the platform crate refuses it otherwise and the link is closed).
    pub bytes: Vec<u8>,
    /// The fds that belong to this frame.
    pub fds: Vec<OwnedFd>,
}

/// Something the core asks of the driver besides sending bytes
/// ([`Core::poll_request`]).
#[derive(Debug)]
pub enum CoreRequest {
    /// Make a link of this socket (e.g. one that arrived inside a message:
    /// a legacy `INIT`, an ipcz introduction). The answer comes through
    /// [`Core::handle_link_adopted`] with the same `tag`.
    Adopt {
        /// The socket; closed if it cannot be adopted.
        fd: OwnedFd,
        /// The core's name for this request, given back with the answer.
        tag: u64,
    },
    /// Make a new socket pair (both ends `O_NONBLOCK`, as a legacy client
    /// expects of the node-channel socket in `INIT`), keep one end as a link
    /// and give the other to the core to send in a message. The answer comes
    /// through [`Core::handle_link_pair`] with the same `tag`.
    NewLinkPair {
        /// The core's name for this request, given back with the answer.
        tag: u64,
    },
    /// Stop reading the link, send what is queued for it, then close it
    /// (giving up after [`Config::close_linger`](crate::Config)). The core
    /// hears [`Core::handle_link_closed`] with [`CloseReason::Requested`].
    Close(LinkId),
    /// Close the link now, dropping queued output.
    Abort(LinkId),
    /// Stop reading the link (back-pressure: the core's queue towards some
    /// other link is over its high-water mark). Bytes the peer sends wait in
    /// the kernel, which eventually blocks the peer. Once the peer hangs up,
    /// the link is read to its end anyway (no more than the kernel holds can
    /// come) so that its loss reaches the core.
    PauseReading(LinkId),
    /// Read the link again (the queue fell below its low-water mark). Input
    /// already buffered is offered to the core again at once, so a core that
    /// left complete frames unconsumed (it could not take them yet) can also
    /// use this on a link that is not paused to have them offered again.
    ResumeReading(LinkId),
    /// The core is done: close every link as for [`CoreRequest::Close`],
    /// then end the run with [`Exit::CoreFinished`](crate::Exit).
    Shutdown,
}

/// Why a link went away ([`Core::handle_link_closed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed its end (end of stream, or `EPIPE` / `ECONNRESET`).
    /// The counts say what it left that the core had not consumed: a partial
    /// frame and fds no frame claimed (closed now).
    HangUp {
        /// Received bytes the core had not consumed.
        unconsumed_bytes: usize,
        /// Received fds the core had not taken.
        untaken_fds: usize,
    },
    /// The channel failed (a system call error, truncated or too many fds,
    /// an outgoing message refused, or a full receive buffer the core could
    /// not make progress in).
    Channel(ChannelError),
    /// Changing the link's epoll registration failed (`epoll_ctl`, with
    /// this errno), so it could no longer be driven.
    Epoll {
        /// The errno.
        errno: i32,
    },
    /// The core asked ([`CoreRequest::Close`], [`CoreRequest::Abort`],
    /// [`CoreRequest::Shutdown`]) and everything queued was sent (or
    /// dropped, for `Abort`).
    Requested,
    /// The core asked to close the link, but its queued output was not taken
    /// by the peer within the linger time; the rest was dropped.
    LingerExpired {
        /// Bytes that were still queued.
        unsent_bytes: usize,
    },
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HangUp {
                unconsumed_bytes,
                untaken_fds,
            } => write!(
                f,
                "peer hung up ({unconsumed_bytes} bytes and {untaken_fds} fds left unconsumed)"
            ),
            Self::Channel(e) => write!(f, "channel failed: {e}"),
            Self::Epoll { errno } => write!(
                f,
                "epoll_ctl failed: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
            Self::Requested => f.write_str("closed as requested"),
            Self::LingerExpired { unsent_bytes } => write!(
                f,
                "closed as requested, dropping {unsent_bytes} bytes the peer did not take in time"
            ),
        }
    }
}

/// Why [`CoreRequest::Adopt`] or [`CoreRequest::NewLinkPair`] failed (any
/// fd involved is closed).
#[derive(Debug)]
pub enum NewLinkError {
    /// The fd is not a unix stream socket, or its flags could not be set.
    NotASocket(InheritError),
    /// `socketpair` failed.
    CreatePair(ChannelError),
    /// mio refused to register the socket.
    Register(std::io::Error),
}

impl fmt::Display for NewLinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotASocket(e) => write!(f, "cannot adopt fd: {e}"),
            Self::CreatePair(e) => write!(f, "cannot create a socket pair: {e}"),
            Self::Register(e) => write!(f, "cannot register the socket: {e}"),
        }
    }
}

impl std::error::Error for NewLinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::NotASocket(e) => Some(e),
            Self::CreatePair(e) => Some(e),
            Self::Register(e) => Some(e),
        }
    }
}

/// How full a link's outgoing queue is, reported on each crossing
/// ([`Core::handle_backlog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// Queued output rose above [`Config::output_high_water`](crate::Config):
    /// its peer is not keeping up. Pause the links that feed it.
    High,
    /// Queued output fell back below
    /// [`Config::output_low_water`](crate::Config): resume them.
    Low,
}

/// A sans-IO protocol core, as the driver sees it: bytes and fds in, frames
/// out, time as a parameter (the quinn-proto shape).
///
/// The driver calls `handle_*` when something happened, then drains
/// [`poll_transmit`](Self::poll_transmit) and
/// [`poll_request`](Self::poll_request) until both return `None`
/// (transmits first, so a frame made before a [`CoreRequest::Close`] is sent
/// before the link closes), and asks
/// [`poll_timeout`](Self::poll_timeout) before it waits.
pub trait Core {
    /// The core's error for bad input; ends the run as
    /// [`DriverError::Core`](crate::DriverError) naming the link. A core
    /// that survives a bad peer returns `Ok` and asks
    /// [`CoreRequest::Abort`] for that link instead.
    type Error: std::error::Error + 'static;

    /// New input on `link`. `input` is everything received and not yet
    /// consumed, straight from the endpoint's buffer (parse frames in place);
    /// `fds` is the link's received-fd FIFO, to take each frame's fds from.
    /// Returns how many bytes of `input` were consumed (whole frames; the
    /// rest is offered again, longer, when more arrives). Consuming more than
    /// `input.len()` is a bug and ends the run.
    fn handle_input(
        &mut self,
        link: LinkId,
        input: &[u8],
        fds: &mut ReceivedFds,
    ) -> Result<usize, Self::Error>;

    /// The next frame to send, if any.
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// The next request, if any.
    fn poll_request(&mut self) -> Option<CoreRequest> {
        None
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout)
    /// must be called, if any.
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    /// The deadline given by `poll_timeout` has passed; `now` is the time.
    fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    /// `link` is gone (every fd it held is closed); transmits still made for
    /// it are dropped.
    fn handle_link_closed(&mut self, link: LinkId, reason: CloseReason);

    /// Answer to [`CoreRequest::Adopt`]: the new link, which is already
    /// being read, or why not.
    fn handle_link_adopted(&mut self, tag: u64, result: Result<LinkId, NewLinkError>) {
        let _ = (tag, result);
    }

    /// Answer to [`CoreRequest::NewLinkPair`]: the new link (already being
    /// read) and the other end of its socket, or why not.
    fn handle_link_pair(&mut self, tag: u64, result: Result<(LinkId, OwnedFd), NewLinkError>) {
        let _ = (tag, result);
    }

    /// A frame the core made for `link` was written in full: its buffer
    /// (emptied, capacity kept) comes back so the next frame can reuse it
    /// instead of allocating. The default drops it.
    fn recycle(&mut self, link: LinkId, buffer: Vec<u8>) {
        let _ = (link, buffer);
    }

    /// The output queue of `link` crossed a watermark. The default does
    /// nothing (queues are still bounded by the platform crate's
    /// `max_queued_output_bytes`, past which the link is closed).
    fn handle_backlog(&mut self, link: LinkId, backlog: Backlog) {
        let _ = (link, backlog);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fds(n: usize) -> Vec<OwnedFd> {
        (0..n)
            .map(|_| mojo_platform_channel::socketpair_fds(true, true).unwrap().0)
            .collect()
    }

    #[test]
    fn received_fds_take_all_or_nothing_in_order() {
        let mut q = ReceivedFds::default();
        let sent = fds(3);
        let numbers: Vec<i32> = sent.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
        q.extend(sent);
        let mut out = Vec::new();
        assert!(!q.take_into(4, &mut out));
        assert!(out.is_empty());
        assert_eq!(q.len(), 3);
        assert!(q.take_into(2, &mut out));
        assert_eq!(q.take(2).map(|v| v.len()), None);
        let last = q.pop().unwrap();
        assert!(q.is_empty() && q.pop().is_none());
        let got: Vec<i32> = out
            .iter()
            .chain(std::iter::once(&last))
            .map(std::os::fd::AsRawFd::as_raw_fd)
            .collect();
        assert_eq!(got, numbers);
        assert_eq!(q.take(0).map(|v| v.len()), Some(0));
    }

    #[test]
    fn link_ids_and_reasons_print_for_logs() {
        assert_eq!(LinkId(7).to_string(), "link 7");
        assert_eq!(LinkId(7).get(), 7);
        let hang_up = CloseReason::HangUp {
            unconsumed_bytes: 3,
            untaken_fds: 1,
        };
        assert_eq!(
            hang_up.to_string(),
            "peer hung up (3 bytes and 1 fds left unconsumed)"
        );
        assert!(
            CloseReason::Epoll { errno: 12 }
                .to_string()
                .starts_with("epoll_ctl failed")
        );
    }
}
