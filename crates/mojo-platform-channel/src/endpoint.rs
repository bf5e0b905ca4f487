//! The non-blocking unix stream socket endpoint.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Shutdown as NixShutdown, SockFlag, SockType, setsockopt, shutdown,
    socketpair as nix_socketpair, sockopt,
};
use std::net::Shutdown;

use crate::SysError;
use crate::fd_passing::{
    self, CmsgBuffer, InheritError, RECV_CMSG_SPACE, recv_with_fds, send_with_fds,
};
use crate::queue::{IncomingBuffer, OutgoingQueue, QueueError, SCM_MAX_FD};

/// Default limit on unconsumed received bytes: 256 MiB plus one read chunk,
/// enough for the largest message Chromium's legacy core accepts
/// (`max_message_num_bytes` = 256 MiB) with its header.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 256 * 1024 * 1024 + READ_CHUNK_SIZE;

/// Default limit on received fds not yet taken by the framing layer.
/// Chromium has no explicit limit (only `RLIMIT_NOFILE`); this bounds what a
/// misbehaving peer can make us hold.
pub const DEFAULT_MAX_QUEUED_FDS: usize = 2048;

/// Most bytes one `recvmsg` may return (the buffer grows beyond it only for
/// large partial messages).
pub const READ_CHUNK_SIZE: usize = 64 * 1024;

/// Most bytes one [`Endpoint::read_available`] call reads before returning
/// (Chromium's `kMaxBatchReadCapacity`), so one busy peer cannot starve an
/// event loop.
pub const MAX_READ_BATCH_BYTES: usize = 256 * 1024;

/// Default limit on bytes queued for sending and not yet written: room for
/// two messages of the largest size Chromium accepts, so a peer that stops
/// reading makes [`Endpoint::queue`] refuse instead of growing memory.
pub const DEFAULT_MAX_QUEUED_OUTPUT_BYTES: usize = 2 * DEFAULT_MAX_BUFFERED_BYTES;

/// Resource limits of an [`Endpoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most unconsumed received bytes ([`DEFAULT_MAX_BUFFERED_BYTES`]).
    pub max_buffered_bytes: usize,
    /// Most received fds not yet taken ([`DEFAULT_MAX_QUEUED_FDS`]).
    pub max_queued_fds: usize,
    /// Most bytes one `recvmsg` may return ([`READ_CHUNK_SIZE`]; 0 counts
    /// as 1).
    pub read_chunk_size: usize,
    /// Most bytes one [`Endpoint::read_available`] call reads
    /// ([`MAX_READ_BATCH_BYTES`]; 0 counts as 1).
    pub max_read_batch_bytes: usize,
    /// Most bytes queued for sending and not yet written
    /// ([`DEFAULT_MAX_QUEUED_OUTPUT_BYTES`]).
    pub max_queued_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_queued_fds: DEFAULT_MAX_QUEUED_FDS,
            read_chunk_size: READ_CHUNK_SIZE,
            max_read_batch_bytes: MAX_READ_BATCH_BYTES,
            max_queued_output_bytes: DEFAULT_MAX_QUEUED_OUTPUT_BYTES,
        }
    }
}

/// Errors of an [`Endpoint`].
///
/// [`ChannelError::BufferFull`], and a [`ChannelError::Queue`] or
/// [`ChannelError::OutputFull`] refusal from [`Endpoint::queue`], change
/// nothing and can be recovered from. Every other
/// error means the channel is unusable; an error from
/// [`Endpoint::read_available`] is sticky: once one happened, every later
/// call returns it again and reads nothing more (the stream may have lost
/// bytes or fds, so nothing after it can be trusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelError {
    /// A system call failed (other than `EINTR`, which is retried, and
    /// `EAGAIN`, which is reported as [`ReadOutcome::WouldBlock`] /
    /// [`WriteOutcome::WouldBlock`]). The error names the call (`sendmsg`,
    /// `send`, `recvmsg`, `socketpair`, `setsockopt(...)`, `shutdown`) and its
    /// errno (`EPIPE` or `ECONNRESET` when the peer went away).
    Io(SysError),
    /// `recvmsg` reported `MSG_CTRUNC`: the kernel discarded fds (the peer
    /// sent more than fit, or our fd table is full). The fds that did arrive
    /// were closed and the bytes read with them dropped. The fd stream is now
    /// out of step, so this is fatal.
    ControlTruncated {
        /// How many fds arrived (and were closed).
        fds_received: usize,
    },
    /// The framing layer has not consumed anything and the receive buffer
    /// holds [`Limits::max_buffered_bytes`] bytes. Not fatal: nothing was
    /// lost; [`Endpoint::consume`] makes room and reading can go on.
    BufferFull {
        /// The limit.
        limit: usize,
    },
    /// More fds arrived than [`Limits::max_queued_fds`] allows queued; the
    /// newly arrived ones were closed and the bytes read with them dropped.
    /// Fatal.
    TooManyFds {
        /// The limit.
        limit: usize,
        /// Fds already queued.
        queued: usize,
        /// Fds in the offending `recvmsg`.
        received: usize,
    },
    /// The outgoing queue refused a message (see [`QueueError`]).
    Queue(QueueError),
    /// The message would take the bytes queued for sending past
    /// [`Limits::max_queued_output_bytes`]: the peer is not reading. The
    /// message was refused and its fds closed; nothing else changed.
    OutputFull {
        /// The limit.
        limit: usize,
        /// Bytes already queued.
        queued: usize,
        /// Length of the refused message.
        len: usize,
    },
}

impl ChannelError {
    /// True when the error means the peer closed or reset the connection.
    pub fn is_disconnect(&self) -> bool {
        const DISCONNECT: [Errno; 3] = [Errno::EPIPE, Errno::ECONNRESET, Errno::ENOTCONN];
        match self {
            Self::Io(e) => DISCONNECT.iter().any(|&d| d as i32 == e.errno()),
            _ => false,
        }
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => e.fmt(f),
            Self::ControlTruncated { fds_received } => write!(
                f,
                "recvmsg control data truncated (MSG_CTRUNC); {fds_received} fds arrived and were \
                 closed"
            ),
            Self::BufferFull { limit } => {
                write!(f, "receive buffer full ({limit} unconsumed bytes)")
            }
            Self::TooManyFds {
                limit,
                queued,
                received,
            } => write!(
                f,
                "{received} fds arrived with {queued} already queued, over the limit of {limit}"
            ),
            Self::Queue(e) => write!(f, "cannot queue message: {e}"),
            Self::OutputFull { limit, queued, len } => write!(
                f,
                "cannot queue a {len}-byte message: {queued} bytes already wait to be sent \
                 (limit {limit}); the peer is not reading"
            ),
        }
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Queue(e) => Some(e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<QueueError> for ChannelError {
    fn from(e: QueueError) -> Self {
        Self::Queue(e)
    }
}

/// What [`Endpoint::read_available`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes (and possibly fds) were appended to the buffers. More may be
    /// waiting: process the buffer, then call `read_available` again until it
    /// returns [`WouldBlock`](Self::WouldBlock) or [`Eof`](Self::Eof)
    /// (mio readiness is edge-triggered).
    Data {
        /// Bytes appended to [`Endpoint::buffered`].
        bytes: usize,
        /// Fds appended to the fd FIFO.
        fds: usize,
    },
    /// Nothing to read now; wait for readability.
    WouldBlock,
    /// The peer closed its end (or shut down writing) and everything it sent
    /// has been read. Unconsumed bytes and fds stay available.
    Eof,
}

/// What [`Endpoint::flush`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The outgoing queue is empty.
    Flushed,
    /// The socket buffer is full; the rest stays queued. Wait for
    /// writability, then call [`Endpoint::flush`] again.
    WouldBlock,
}

/// A non-blocking `AF_UNIX` `SOCK_STREAM` socket that sends and receives
/// bytes together with fds.
///
/// Outgoing: [`queue`](Self::queue) messages (bytes plus the fds that belong
/// to them) and [`flush`](Self::flush). A message's fds ride with its first
/// bytes, at most [`crate::MAX_FDS_PER_SENDMSG`] per `sendmsg`, so that a
/// Chromium receiver always has a message's fds by the time its last byte
/// arrives. Incoming: [`read_available`](Self::read_available) appends to a
/// reused buffer that the framing layer inspects with
/// [`buffered`](Self::buffered), trims with [`consume`](Self::consume) and
/// whose fds it takes with [`take_fds`](Self::take_fds).
///
/// Dropping the endpoint closes the socket and every fd still queued in
/// either direction.
///
/// Its `Debug` output shows sizes and counts, never the buffered bytes.
pub struct Endpoint {
    fd: OwnedFd,
    outgoing: OutgoingQueue<OwnedFd>,
    incoming: IncomingBuffer<OwnedFd>,
    cmsg_buf: Box<CmsgBuffer<RECV_CMSG_SPACE>>,
    fd_scratch: Vec<OwnedFd>,
    /// The first fatal receive error; returned by every later
    /// `read_available`.
    read_error: Option<ChannelError>,
    limits: Limits,
    /// Return from `read_available` after each `recvmsg` that brought data
    /// ([`Endpoint::set_one_recvmsg_per_read`]).
    one_recvmsg_per_read: bool,
    /// The last read found the socket empty (see [`Endpoint::drained`]).
    drained: bool,
}

/// Creates a connected pair of non-blocking, close-on-exec endpoints
/// (`socketpair(AF_UNIX, SOCK_STREAM)`).
pub fn socketpair() -> Result<(Endpoint, Endpoint), ChannelError> {
    let (a, b) = socketpair_fds(true, true)?;
    Ok((Endpoint::from_socket(a), Endpoint::from_socket(b)))
}

/// Creates a connected `AF_UNIX` `SOCK_STREAM` pair as plain fds, with
/// `O_NONBLOCK` and `FD_CLOEXEC` as asked (e.g. a blocking end for a child
/// process, or a non-blocking one to send to a legacy client, which expects
/// `O_NONBLOCK` already set).
pub fn socketpair_fds(
    nonblocking: bool,
    cloexec: bool,
) -> Result<(OwnedFd, OwnedFd), ChannelError> {
    let mut flags = SockFlag::empty();
    flags.set(SockFlag::SOCK_NONBLOCK, nonblocking);
    flags.set(SockFlag::SOCK_CLOEXEC, cloexec);
    nix_socketpair(AddressFamily::Unix, SockType::Stream, None, flags)
        .map_err(|errno| ChannelError::Io(SysError::new("socketpair", errno)))
}

impl Endpoint {
    /// Wraps a socket we created or validated ourselves (known to be unix
    /// stream).
    pub(crate) fn from_socket(fd: OwnedFd) -> Self {
        let limits = Limits::default();
        Self {
            fd,
            outgoing: OutgoingQueue::new(),
            incoming: IncomingBuffer::new(limits.max_buffered_bytes),
            cmsg_buf: Box::new(CmsgBuffer::new()),
            fd_scratch: Vec::with_capacity(SCM_MAX_FD),
            read_error: None,
            limits,
            one_recvmsg_per_read: false,
            drained: false,
        }
    }

    /// Wraps an owned fd (e.g. a socket received in a message) after checking
    /// that it is an `AF_UNIX` `SOCK_STREAM` socket; sets `O_NONBLOCK` and
    /// `FD_CLOEXEC`. On failure the fd is closed.
    pub fn from_owned_fd(fd: OwnedFd) -> Result<Self, InheritError> {
        fd_passing::check_unix_stream(fd.as_fd())?;
        fd_passing::set_nonblock_cloexec(fd.as_fd())?;
        Ok(Self::from_socket(fd))
    }

    /// Replaces the limits. Fails (changing nothing) if more bytes are already
    /// buffered than the new byte limit.
    pub fn set_limits(&mut self, limits: Limits) -> Result<(), ChannelError> {
        if self.incoming.buffered_len() > limits.max_buffered_bytes {
            return Err(ChannelError::BufferFull {
                limit: limits.max_buffered_bytes,
            });
        }
        let mut incoming = IncomingBuffer::new(limits.max_buffered_bytes);
        incoming.extend_from_slice(self.incoming.buffered())?;
        let queued = self.incoming.queued_fds();
        for fd in self.incoming.take_fds(queued).unwrap_or_default() {
            incoming.push_fd(fd);
        }
        self.incoming = incoming;
        self.limits = limits;
        Ok(())
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sets `SO_SNDBUF` (the kernel doubles the value and applies a minimum).
    pub fn set_send_buffer_size(&self, bytes: usize) -> Result<(), ChannelError> {
        setsockopt(&self.fd, sockopt::SndBuf, &bytes)
            .map_err(|errno| ChannelError::Io(SysError::new("setsockopt(SO_SNDBUF)", errno)))
    }

    /// Sets `SO_RCVBUF` (the kernel doubles the value and applies a minimum).
    pub fn set_recv_buffer_size(&self, bytes: usize) -> Result<(), ChannelError> {
        setsockopt(&self.fd, sockopt::RcvBuf, &bytes)
            .map_err(|errno| ChannelError::Io(SysError::new("setsockopt(SO_RCVBUF)", errno)))
    }

    // ----- outgoing -----

    /// Appends a message and its fds to the outgoing queue without writing.
    /// The fds are closed once the `sendmsg` carrying them succeeded (or when
    /// the endpoint is dropped). Fails for an empty message or one too short
    /// for its fds (one byte per [`crate::MAX_FDS_PER_SENDMSG`] fds), or when
    /// it would take the unsent bytes past [`Limits::max_queued_output_bytes`]
    /// ([`ChannelError::OutputFull`]); the fds are then closed.
    pub fn queue(&mut self, bytes: Vec<u8>, fds: Vec<OwnedFd>) -> Result<(), ChannelError> {
        let queued = self.outgoing.queued_bytes();
        let limit = self.limits.max_queued_output_bytes;
        if queued.saturating_add(bytes.len()) > limit {
            return Err(ChannelError::OutputFull {
                limit,
                queued,
                len: bytes.len(),
            });
        }
        self.outgoing.push(bytes, fds).map_err(ChannelError::Queue)
    }

    /// [`queue`](Self::queue) then [`flush`](Self::flush).
    pub fn send(
        &mut self,
        bytes: Vec<u8>,
        fds: Vec<OwnedFd>,
    ) -> Result<WriteOutcome, ChannelError> {
        self.queue(bytes, fds)?;
        self.flush()
    }

    /// Writes as much of the outgoing queue as the socket accepts.
    /// `EINTR` is retried; `EAGAIN` returns [`WriteOutcome::WouldBlock`] with
    /// the rest still queued.
    pub fn flush(&mut self) -> Result<WriteOutcome, ChannelError> {
        loop {
            let Some(chunk) = self.outgoing.next_send() else {
                return Ok(WriteOutcome::Flushed);
            };
            let op = if chunk.fds.is_empty() {
                "send"
            } else {
                "sendmsg"
            };
            match send_with_fds(self.fd.as_fd(), chunk.bytes, chunk.fds) {
                Ok(n) => self.outgoing.advance(n)?,
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Ok(WriteOutcome::WouldBlock),
                Err(errno) => return Err(ChannelError::Io(SysError::new(op, errno))),
            }
        }
    }

    /// The buffer of a message [`flush`](Self::flush) sent in full, emptied,
    /// for reuse; at most [`crate::MAX_SENT_BUFFERS_KEPT`] are kept.
    pub fn take_sent_buffer(&mut self) -> Option<Vec<u8>> {
        self.outgoing.take_sent()
    }

    /// True while queued output remains.
    pub fn has_pending_output(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Bytes still queued for sending.
    pub fn pending_output_bytes(&self) -> usize {
        self.outgoing.queued_bytes()
    }

    /// Fds still queued for sending.
    pub fn pending_output_fds(&self) -> usize {
        self.outgoing.queued_fds()
    }

    // ----- incoming -----

    /// With `on`, each [`read_available`](Self::read_available) that brings
    /// data returns after one `recvmsg`, so its [`ReadOutcome::Data`] is
    /// exactly one kernel read: the boundaries a recording of the link must
    /// keep, since the kernel ends a read after a message that carried fds
    /// and a message's fds belong to the last frame starting in that read.
    /// Off by default (a read then batches several `recvmsg` calls).
    pub fn set_one_recvmsg_per_read(&mut self, on: bool) {
        self.one_recvmsg_per_read = on;
    }

    /// Reads whatever the socket has (up to [`Limits::max_read_batch_bytes`])
    /// into the receive buffer; received fds get `FD_CLOEXEC`
    /// (`MSG_CMSG_CLOEXEC`) and join the fd FIFO.
    ///
    /// When a fatal error happens after some data arrived in the same call,
    /// the data is reported first and the error comes with the next call;
    /// from then on every call returns that error (see [`ChannelError`]).
    /// [`ChannelError::BufferFull`] is not fatal.
    pub fn read_available(&mut self) -> Result<ReadOutcome, ChannelError> {
        if let Some(e) = &self.read_error {
            return Err(e.clone());
        }
        self.drained = false;
        let mut total_bytes = 0usize;
        let mut total_fds = 0usize;
        let data = |bytes, fds| {
            if bytes > 0 || fds > 0 {
                ReadOutcome::Data { bytes, fds }
            } else {
                ReadOutcome::WouldBlock
            }
        };
        let batch_limit = self.limits.max_read_batch_bytes.max(1);
        loop {
            let budget = batch_limit.saturating_sub(total_bytes);
            if budget == 0 {
                return Ok(data(total_bytes, total_fds));
            }
            // One more recvmsg may bring up to SCM_MAX_FD fds, which cannot
            // be handed back: once this batch has brought some, end it
            // while that still fits, so the caller takes them first. Only
            // fds that the caller leaves queued can then exceed the limit.
            let fd_room = self
                .limits
                .max_queued_fds
                .saturating_sub(self.incoming.queued_fds());
            if total_fds > 0 && fd_room < SCM_MAX_FD {
                return Ok(data(total_bytes, total_fds));
            }
            let want = self.limits.read_chunk_size.max(1).min(budget);
            let spare = self.incoming.spare_mut(want);
            let len = spare.len().min(want);
            let (spare, _) = spare.split_at_mut(len);
            if spare.is_empty() {
                if total_bytes > 0 {
                    return Ok(data(total_bytes, total_fds));
                }
                return Err(ChannelError::BufferFull {
                    limit: self.limits.max_buffered_bytes,
                });
            }
            self.fd_scratch.clear();
            let res = recv_with_fds(
                self.fd.as_fd(),
                spare,
                &mut self.cmsg_buf,
                &mut self.fd_scratch,
            );
            let err = match res {
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    self.drained = true;
                    return Ok(data(total_bytes, total_fds));
                }
                Err(errno) => ChannelError::Io(SysError::new("recvmsg", errno)),
                Ok(r) if r.truncated => {
                    let fds_received = self.fd_scratch.len();
                    self.fd_scratch.clear();
                    ChannelError::ControlTruncated { fds_received }
                }
                Ok(r) => {
                    let received = self.fd_scratch.len();
                    let queued = self.incoming.queued_fds();
                    if queued.saturating_add(received) > self.limits.max_queued_fds {
                        self.fd_scratch.clear();
                        ChannelError::TooManyFds {
                            limit: self.limits.max_queued_fds,
                            queued,
                            received,
                        }
                    } else {
                        self.incoming.commit(r.bytes)?;
                        for fd in self.fd_scratch.drain(..) {
                            self.incoming.push_fd(fd);
                        }
                        if r.bytes == 0 && received == 0 {
                            return Ok(if total_bytes > 0 || total_fds > 0 {
                                data(total_bytes, total_fds)
                            } else {
                                ReadOutcome::Eof
                            });
                        }
                        total_bytes = total_bytes.saturating_add(r.bytes);
                        total_fds = total_fds.saturating_add(received);
                        if self.one_recvmsg_per_read {
                            return Ok(data(total_bytes, total_fds));
                        }
                        // Fewer bytes than asked and no fds: a Unix stream
                        // socket returns short only when it holds nothing
                        // more (a read also ends after fds, hence their
                        // exception), so skip the recvmsg that would only
                        // say EAGAIN.
                        if r.bytes < len && received == 0 {
                            self.drained = true;
                            return Ok(data(total_bytes, total_fds));
                        }
                        continue;
                    }
                }
            };
            // Every error that reaches this point is fatal; keep it.
            self.read_error = Some(err.clone());
            if total_bytes > 0 || total_fds > 0 {
                // Report what arrived first; the error comes with the next call.
                return Ok(data(total_bytes, total_fds));
            }
            return Err(err);
        }
    }

    /// Whether the last [`read_available`](Self::read_available) found the
    /// socket empty: it ended on `EAGAIN`, or on a read that returned fewer
    /// bytes than asked and no fds, which on Linux means the socket held
    /// nothing more. Any byte that arrives later raises a new readiness edge,
    /// so an edge-triggered caller may wait for it instead of calling once
    /// more only to hear [`ReadOutcome::WouldBlock`]. Not so for a peer's
    /// hang-up that was already reported: read on to [`ReadOutcome::Eof`].
    pub fn drained(&self) -> bool {
        self.drained
    }

    /// Received bytes not yet consumed, in order.
    pub fn buffered(&self) -> &[u8] {
        self.incoming.buffered()
    }

    /// Drops the first `n` buffered bytes.
    pub fn consume(&mut self, n: usize) -> Result<(), ChannelError> {
        self.incoming.consume(n).map_err(ChannelError::Queue)
    }

    /// Takes the first `n` received fds, or `None` (taking nothing) if fewer
    /// have arrived so far.
    pub fn take_fds(&mut self, n: usize) -> Option<Vec<OwnedFd>> {
        self.incoming.take_fds(n)
    }

    /// Received fds not yet taken.
    pub fn queued_fds(&self) -> usize {
        self.incoming.queued_fds()
    }

    // ----- the socket itself -----

    /// Shuts down one or both directions (`shutdown(2)`), e.g. to signal EOF
    /// after the last message.
    pub fn shutdown(&self, how: Shutdown) -> Result<(), ChannelError> {
        let how = match how {
            Shutdown::Read => NixShutdown::Read,
            Shutdown::Write => NixShutdown::Write,
            Shutdown::Both => NixShutdown::Both,
        };
        shutdown(self.fd.as_raw_fd(), how)
            .map_err(|errno| ChannelError::Io(SysError::new("shutdown", errno)))
    }

    /// Gives the socket back, with `O_NONBLOCK` set as asked, if nothing is
    /// queued in either direction; otherwise returns the endpoint unchanged
    /// (handing the socket on would lose the queued data or fds), or if
    /// setting the flag failed.
    pub fn into_fd(self, nonblocking: bool) -> Result<OwnedFd, Box<Self>> {
        if self.has_pending_output()
            || self.incoming.buffered_len() > 0
            || self.incoming.queued_fds() > 0
        {
            return Err(Box::new(self));
        }
        if fd_passing::set_nonblocking(&self.fd, nonblocking).is_err() {
            return Err(Box::new(self));
        }
        Ok(self.fd)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("fd", &self.fd.as_raw_fd())
            .field("outgoing", &self.outgoing)
            .field("incoming", &self.incoming)
            .field("read_error", &self.read_error)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl AsFd for Endpoint {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Endpoint {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Source for Endpoint {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> std::io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> std::io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> std::io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}
