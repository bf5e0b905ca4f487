//! Sans-IO bookkeeping for the outgoing message queue and the incoming byte
//! buffer plus fd FIFO.
//!
//! Nothing here makes a system call. [`crate::Endpoint`] drives these types
//! with `sendmsg`/`recvmsg`; tests drive them with simulated transports. Both
//! are generic over the fd type `F` so that the bookkeeping can be checked with
//! plain tokens instead of real descriptors.
//!
//! # Outgoing rules (what the peer relies on)
//!
//! A Chromium receiver appends every fd it receives to one FIFO and a message
//! takes its fds from the front of that FIFO once all of its bytes are there.
//! So a sender must deliver the fds of message *k* no later than the last byte
//! of message *k*, and after the fds of message *k - 1*. [`OutgoingQueue`]
//! guarantees this:
//!
//! * the fds of a message ride with the first `sendmsg` carrying bytes of that
//!   message, at most [`MAX_FDS_PER_SENDMSG`] per call;
//! * a message with more fds is sent with several fd-carrying calls, each
//!   carrying the next chunk of fds with the next bytes of the *same* message.
//!   Because the kernel silently drops fds sent with zero bytes on a stream
//!   socket, every chunk needs at least one byte: a call that still has fd
//!   chunks after it is capped so that enough bytes remain. A message shorter
//!   than the number of chunks it needs is refused by [`OutgoingQueue::push`].
//!   (Chromium's own `ChannelPosix::WriteNoLock` does the same chunking but does
//!   not cap the bytes, so in the rare case where the kernel accepts the whole
//!   remainder with the first chunk it would try to send the later chunks with
//!   no bytes; capping avoids that and changes nothing the receiver can see.)
//! * a partial write resumes at the first unsent byte; fds of a chunk count as
//!   sent as soon as the call carrying them reported at least one byte written
//!   (the kernel either transfers all `SCM_RIGHTS` fds of a call or fails it).

use std::collections::VecDeque;
use std::fmt;

/// Chromium's `kMaxSendmsgHandles`: the most fds one `sendmsg` may carry.
///
/// Chromium receivers size their control buffer for exactly this many fds, so
/// a call carrying more would be truncated (`MSG_CTRUNC`) and fds would be lost.
pub const MAX_FDS_PER_SENDMSG: usize = 128;

/// Linux `SCM_MAX_FD`: the most fds the kernel accepts in one `sendmsg`, and
/// the number of fds our own receive control buffer has room for.
pub const SCM_MAX_FD: usize = 253;

/// Largest fd-less message that is copied into a shared chunk when it has
/// to wait behind others (see [`OutgoingQueue::push`]).
pub const MAX_COALESCED_MESSAGE_BYTES: usize = 4096;

/// Capacity of one chunk of coalesced messages.
pub const COALESCE_CHUNK_BYTES: usize = 64 * 1024;

/// Emptied chunks an [`OutgoingQueue`] keeps for the next backlog.
const MAX_SPARE_CHUNKS: usize = 4;

/// Most fully sent message buffers an [`OutgoingQueue`] keeps for its owner
/// to take back ([`OutgoingQueue::take_sent`]); beyond it they are freed.
/// Enough for a burst between two takes, small enough to bound the memory.
pub const MAX_SENT_BUFFERS_KEPT: usize = 64;

/// Errors from [`OutgoingQueue`] and [`IncomingBuffer`] bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// A message with no bytes was queued. Empty messages cannot carry fds and
    /// are never produced by a framing layer, so they are refused.
    EmptyMessage,
    /// The message is too short to carry its fds: every `sendmsg` carrying a
    /// chunk of at most [`MAX_FDS_PER_SENDMSG`] fds needs at least one byte of
    /// the same message.
    TooFewBytesForFds {
        /// Length of the message in bytes.
        len: usize,
        /// Number of fds attached to it.
        num_fds: usize,
        /// Number of fd-carrying `sendmsg` calls (and so bytes) needed.
        needed_bytes: usize,
    },
    /// [`OutgoingQueue::advance`] was told that more bytes were written than
    /// the current chunk holds.
    AdvancePastChunk {
        /// Bytes reported written.
        written: usize,
        /// Bytes in the chunk returned by [`OutgoingQueue::next_send`].
        chunk_len: usize,
    },
    /// [`IncomingBuffer::consume`] was asked to drop more bytes than buffered.
    ConsumePastEnd {
        /// Bytes asked for.
        requested: usize,
        /// Bytes buffered.
        buffered: usize,
    },
    /// [`IncomingBuffer::commit`] was told more bytes arrived than the spare
    /// space handed out could hold.
    CommitPastSpare {
        /// Bytes reported received.
        received: usize,
        /// Spare bytes available.
        spare: usize,
    },
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyMessage => write!(f, "refusing to queue an empty message"),
            Self::TooFewBytesForFds {
                len,
                num_fds,
                needed_bytes,
            } => write!(
                f,
                "message of {len} bytes cannot carry {num_fds} fds: {needed_bytes} sendmsg calls \
                 of at most {MAX_FDS_PER_SENDMSG} fds each need at least {needed_bytes} bytes"
            ),
            Self::AdvancePastChunk { written, chunk_len } => write!(
                f,
                "advance by {written} bytes exceeds the current chunk of {chunk_len} bytes"
            ),
            Self::ConsumePastEnd {
                requested,
                buffered,
            } => write!(
                f,
                "consume of {requested} bytes exceeds the {buffered} buffered bytes"
            ),
            Self::CommitPastSpare { received, spare } => write!(
                f,
                "commit of {received} bytes exceeds the {spare} spare bytes"
            ),
        }
    }
}

impl std::error::Error for QueueError {}

/// Number of fd-carrying `sendmsg` calls needed for `num_fds` fds.
pub const fn sendmsg_calls_for_fds(num_fds: usize) -> usize {
    num_fds.div_ceil(MAX_FDS_PER_SENDMSG)
}

/// One queued message: its bytes, how many have been sent, and the fds not
/// yet sent (the front of `fds` is the next fd to send).
#[derive(Debug)]
struct OutMessage<F> {
    data: Vec<u8>,
    sent: usize,
    fds: VecDeque<F>,
    /// A chunk of the queue's own holding several small messages (never
    /// with fds); more may be appended while it waits.
    coalesced: bool,
}

impl<F> OutMessage<F> {
    /// Bytes and fds for the next `sendmsg` of this message.
    fn chunk_bounds(&self) -> (usize, usize) {
        let remaining_bytes = self.data.len().saturating_sub(self.sent);
        let fds_now = self.fds.len().min(MAX_FDS_PER_SENDMSG);
        let chunks_after = sendmsg_calls_for_fds(self.fds.len().saturating_sub(fds_now));
        // Leave one byte for every later fd chunk. `push` and the invariant
        // maintained by `advance` guarantee remaining_bytes > chunks_after.
        let len = remaining_bytes.saturating_sub(chunks_after);
        (len, fds_now)
    }
}

/// What to pass to the next `sendmsg`: a byte slice and the fds that must
/// ride with it (possibly none).
#[derive(Debug)]
pub struct SendChunk<'a, F> {
    /// Bytes to send; never empty.
    pub bytes: &'a [u8],
    /// Fds to attach as `SCM_RIGHTS` (at most [`MAX_FDS_PER_SENDMSG`]); first
    /// slice of the front message's remaining fds.
    pub fds: &'a [F],
}

/// FIFO of outgoing messages with partial-write and fd-chunking bookkeeping.
///
/// `F` is the fd type ([`std::os::fd::OwnedFd`] in [`crate::Endpoint`]). Fds
/// are dropped (closed, for `OwnedFd`) only in [`advance`](Self::advance) once
/// the call that carried them succeeded, or when the queue itself is dropped.
///
/// Its `Debug` output shows counts, not the queued bytes.
pub struct OutgoingQueue<F> {
    messages: VecDeque<OutMessage<F>>,
    queued_bytes: usize,
    queued_fds: usize,
    /// Buffers of messages sent in full, emptied, for reuse by the owner.
    sent: Vec<Vec<u8>>,
    /// Emptied coalescing chunks.
    spare_chunks: Vec<Vec<u8>>,
}

impl<F> fmt::Debug for OutgoingQueue<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingQueue")
            .field("messages", &self.messages.len())
            .field("queued_bytes", &self.queued_bytes)
            .field("queued_fds", &self.queued_fds)
            .field("sent", &self.sent.len())
            .finish()
    }
}

impl<F> Default for OutgoingQueue<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F> OutgoingQueue<F> {
    /// An empty queue.
    pub fn new() -> Self {
        Self {
            messages: VecDeque::new(),
            queued_bytes: 0,
            queued_fds: 0,
            sent: Vec::new(),
            spare_chunks: Vec::new(),
        }
    }

    /// A buffer of a message sent in full (empty, its capacity kept), so
    /// the code that makes frames can reuse it instead of allocating. At
    /// most [`MAX_SENT_BUFFERS_KEPT`] wait here.
    pub fn take_sent(&mut self) -> Option<Vec<u8>> {
        self.sent.pop()
    }

    /// Appends a message and the fds that belong to it (in order).
    ///
    /// A message that must wait behind others (the socket is backed up),
    /// carries no fds and is at most [`MAX_COALESCED_MESSAGE_BYTES`] long
    /// is copied into a shared chunk, and its buffer is at once offered back
    /// ([`take_sent`](Self::take_sent)): a backlog of small frames then
    /// holds a few chunks instead of one buffer each, and drains in fewer,
    /// larger writes. A message with nothing ahead of it is kept as it is,
    /// so the common path copies nothing.
    ///
    /// Fails, handing nothing back (the fds are dropped), if the message is
    /// empty or too short to carry its fds (it needs one byte for every
    /// [`MAX_FDS_PER_SENDMSG`] fds or part thereof).
    pub fn push(&mut self, data: Vec<u8>, fds: Vec<F>) -> Result<(), QueueError> {
        if data.is_empty() {
            return Err(QueueError::EmptyMessage);
        }
        let needed_bytes = sendmsg_calls_for_fds(fds.len());
        if data.len() < needed_bytes {
            return Err(QueueError::TooFewBytesForFds {
                len: data.len(),
                num_fds: fds.len(),
                needed_bytes,
            });
        }
        self.queued_bytes = self.queued_bytes.saturating_add(data.len());
        self.queued_fds = self.queued_fds.saturating_add(fds.len());
        if fds.is_empty() && data.len() <= MAX_COALESCED_MESSAGE_BYTES && !self.messages.is_empty()
        {
            self.coalesce(data);
            return Ok(());
        }
        self.messages.push_back(OutMessage {
            data,
            sent: 0,
            fds: fds.into(),
            coalesced: false,
        });
        Ok(())
    }

    /// Appends `data` to the last chunk if it has room, else to a new one,
    /// and keeps `data`'s buffer for reuse.
    fn coalesce(&mut self, mut data: Vec<u8>) {
        let room = self.messages.back().is_some_and(|m| {
            m.coalesced && m.data.len().saturating_add(data.len()) <= COALESCE_CHUNK_BYTES
        });
        match self.messages.back_mut() {
            Some(back) if room => back.data.extend_from_slice(&data),
            _ => {
                let mut chunk = self
                    .spare_chunks
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(COALESCE_CHUNK_BYTES));
                chunk.extend_from_slice(&data);
                self.messages.push_back(OutMessage {
                    data: chunk,
                    sent: 0,
                    fds: VecDeque::new(),
                    coalesced: true,
                });
            }
        }
        data.clear();
        self.keep_sent(data);
    }

    fn keep_sent(&mut self, buffer: Vec<u8>) {
        if self.sent.len() < MAX_SENT_BUFFERS_KEPT {
            self.sent.push(buffer);
        }
    }

    /// True when nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Number of entries not yet completely sent (a chunk of coalesced
    /// messages counts once).
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Bytes not yet sent, over all queued messages.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Fds not yet sent, over all queued messages.
    pub fn queued_fds(&self) -> usize {
        self.queued_fds
    }

    /// The bytes and fds for the next `sendmsg`, or `None` if the queue is
    /// empty. The bytes always belong to one message; the fds (if any) are the
    /// next chunk of that message's fds.
    pub fn next_send(&mut self) -> Option<SendChunk<'_, F>> {
        let msg = self.messages.front_mut()?;
        let (len, nfds) = msg.chunk_bounds();
        let start = msg.sent;
        let bytes = msg.data.get(start..start.saturating_add(len))?;
        let fds = msg.fds.make_contiguous().get(..nfds)?;
        Some(SendChunk { bytes, fds })
    }

    /// Records that the last `sendmsg` built from [`next_send`](Self::next_send)
    /// wrote `written` bytes. With `written > 0` the chunk's fds count as sent
    /// and are dropped. `written == 0` changes nothing.
    pub fn advance(&mut self, written: usize) -> Result<(), QueueError> {
        if written == 0 {
            return Ok(());
        }
        let Some(msg) = self.messages.front_mut() else {
            return Err(QueueError::AdvancePastChunk {
                written,
                chunk_len: 0,
            });
        };
        let (len, nfds) = msg.chunk_bounds();
        if written > len {
            return Err(QueueError::AdvancePastChunk {
                written,
                chunk_len: len,
            });
        }
        msg.sent = msg.sent.saturating_add(written);
        msg.fds.drain(..nfds);
        self.queued_bytes = self.queued_bytes.saturating_sub(written);
        self.queued_fds = self.queued_fds.saturating_sub(nfds);
        if msg.sent >= msg.data.len() {
            debug_assert!(msg.fds.is_empty());
            if let Some(done) = self.messages.pop_front() {
                let mut data = done.data;
                data.clear();
                if done.coalesced {
                    if self.spare_chunks.len() < MAX_SPARE_CHUNKS {
                        self.spare_chunks.push(data);
                    }
                } else {
                    self.keep_sent(data);
                }
            }
        }
        Ok(())
    }
}

/// Incoming bytes (one reusable buffer) and the FIFO of received fds.
///
/// A reader writes into [`spare_mut`](Self::spare_mut) and calls
/// [`commit`](Self::commit); a framing layer looks at
/// [`buffered`](Self::buffered), removes whole frames with
/// [`consume`](Self::consume) and their fds with
/// [`take_fds`](Self::take_fds). The buffer grows up to `max_bytes` and is
/// compacted (unconsumed bytes moved to the front) instead of reallocated.
///
/// Its `Debug` output shows sizes and counts, not the buffered bytes.
pub struct IncomingBuffer<F> {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_bytes: usize,
    fds: VecDeque<F>,
}

impl<F> fmt::Debug for IncomingBuffer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingBuffer")
            .field("buffered_len", &self.buffered_len())
            .field("capacity", &self.buf.len())
            .field("max_bytes", &self.max_bytes)
            .field("queued_fds", &self.fds.len())
            .finish()
    }
}

impl<F> IncomingBuffer<F> {
    /// An empty buffer that will never hold more than `max_bytes` unconsumed
    /// bytes.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max_bytes,
            fds: VecDeque::new(),
        }
    }

    /// Maximum number of unconsumed bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The received bytes not yet consumed, in stream order.
    pub fn buffered(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    /// Number of unconsumed bytes.
    pub fn buffered_len(&self) -> usize {
        self.end - self.start
    }

    /// Drops the first `n` buffered bytes (a framing layer calls this after it
    /// dispatched a frame).
    pub fn consume(&mut self, n: usize) -> Result<(), QueueError> {
        let buffered = self.buffered_len();
        if n > buffered {
            return Err(QueueError::ConsumePastEnd {
                requested: n,
                buffered,
            });
        }
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(())
    }

    /// Free space to receive into: at least `min(want, room)` bytes where
    /// `room` is what the byte limit still allows, possibly more (never more
    /// than `room`). For `want > 0` it returns an empty slice only when the
    /// buffer holds `max_bytes` unconsumed bytes.
    ///
    /// Moves unconsumed bytes to the front or grows the buffer as needed; the
    /// buffer never grows past `max_bytes`.
    pub fn spare_mut(&mut self, want: usize) -> &mut [u8] {
        let buffered = self.buffered_len();
        let room = self.max_bytes.saturating_sub(buffered);
        let want = want.min(room);
        if self.buf.len() - self.end < want {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.start = 0;
                self.end = buffered;
            }
            if self.buf.len() - self.end < want {
                let needed = self.end.saturating_add(want);
                let doubled = self.buf.len().saturating_mul(2);
                let new_len = needed.max(doubled).min(self.max_bytes).max(needed);
                self.buf.resize(new_len, 0);
            }
        }
        let limit_end = self
            .start
            .saturating_add(self.max_bytes)
            .min(self.buf.len());
        self.buf.get_mut(self.end..limit_end).unwrap_or(&mut [])
    }

    /// Records that `n` bytes were written at the front of the slice last
    /// returned by [`spare_mut`](Self::spare_mut).
    pub fn commit(&mut self, n: usize) -> Result<(), QueueError> {
        let limit_end = self
            .start
            .saturating_add(self.max_bytes)
            .min(self.buf.len());
        let spare = limit_end.saturating_sub(self.end);
        if n > spare {
            return Err(QueueError::CommitPastSpare { received: n, spare });
        }
        self.end += n;
        Ok(())
    }

    /// Copies `bytes` in (convenience for tests and simulations).
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> Result<(), QueueError> {
        let spare = self.spare_mut(bytes.len());
        let Some(dst) = spare.get_mut(..bytes.len()) else {
            return Err(QueueError::CommitPastSpare {
                received: bytes.len(),
                spare: spare.len(),
            });
        };
        dst.copy_from_slice(bytes);
        self.commit(bytes.len())
    }

    /// Appends a received fd to the FIFO.
    pub fn push_fd(&mut self, fd: F) {
        self.fds.push_back(fd);
    }

    /// Number of received fds not yet taken.
    pub fn queued_fds(&self) -> usize {
        self.fds.len()
    }

    /// The FIFO of received fds, front first.
    pub fn fds(&self) -> &VecDeque<F> {
        &self.fds
    }

    /// Takes the first `n` fds, or `None` (taking nothing) if fewer than `n`
    /// have arrived. `take_fds(0)` returns an empty vector.
    pub fn take_fds(&mut self, n: usize) -> Option<Vec<F>> {
        if self.fds.len() < n {
            return None;
        }
        Some(self.fds.drain(..n).collect())
    }

    /// Capacity of the internal byte buffer (for tests of the reuse policy).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_refuses_empty_and_short_messages() {
        let mut q: OutgoingQueue<u32> = OutgoingQueue::new();
        assert_eq!(q.push(vec![], vec![]), Err(QueueError::EmptyMessage));
        assert_eq!(
            q.push(vec![1], (0..129).collect()),
            Err(QueueError::TooFewBytesForFds {
                len: 1,
                num_fds: 129,
                needed_bytes: 2
            })
        );
        assert!(q.push(vec![1, 2], (0..129).collect()).is_ok());
        assert!(q.push(vec![1], (0..128).collect()).is_ok());
        assert!(!q.is_empty() && q.len() == 2);
    }

    #[test]
    fn fds_ride_with_first_bytes_and_split_at_128() {
        let mut q: OutgoingQueue<u32> = OutgoingQueue::new();
        q.push(vec![7; 10], (0..300).collect()).unwrap();
        q.push(vec![8; 4], vec![]).unwrap();
        let c = q.next_send().unwrap();
        // 300 fds need 3 calls: this one leaves 2 bytes for the later chunks.
        assert_eq!((c.bytes.len(), c.fds.len()), (8, 128));
        assert_eq!(c.fds[0], 0);
        q.advance(8).unwrap();
        let c = q.next_send().unwrap();
        assert_eq!((c.bytes.len(), c.fds.len()), (1, 128));
        assert_eq!(c.fds[0], 128);
        q.advance(1).unwrap();
        let c = q.next_send().unwrap();
        assert_eq!((c.bytes.len(), c.fds.len()), (1, 44));
        assert_eq!(c.fds[0], 256);
        q.advance(1).unwrap();
        let c = q.next_send().unwrap();
        assert_eq!((c.bytes, c.fds.len()), (&[8u8; 4][..], 0));
        assert_eq!(
            q.advance(5),
            Err(QueueError::AdvancePastChunk {
                written: 5,
                chunk_len: 4
            })
        );
        q.advance(3).unwrap();
        q.advance(1).unwrap();
        assert!(q.next_send().is_none());
        assert_eq!((q.queued_bytes(), q.queued_fds()), (0, 0));
    }

    /// Sends everything, one `sendmsg` per chunk, recording each write.
    fn drain(q: &mut OutgoingQueue<u32>) -> Vec<(Vec<u8>, Vec<u32>)> {
        let mut writes = Vec::new();
        while let Some(c) = q.next_send() {
            let w = (c.bytes.to_vec(), c.fds.to_vec());
            let n = w.0.len();
            writes.push(w);
            q.advance(n).unwrap();
        }
        writes
    }

    #[test]
    fn small_messages_behind_others_share_chunks_and_their_buffers_come_back() {
        let mut q: OutgoingQueue<u32> = OutgoingQueue::new();
        q.push(vec![1; 10], vec![]).unwrap();
        for i in 2..=4u8 {
            q.push(vec![i; 5], vec![]).unwrap();
        }
        // The first stays alone (nothing was ahead of it); the rest share one chunk.
        assert_eq!(q.len(), 2);
        assert_eq!(q.queued_bytes(), 25);
        let mut returned = 0;
        while let Some(b) = q.take_sent() {
            assert!(b.is_empty() && b.capacity() >= 5);
            returned += 1;
        }
        assert_eq!(returned, 3);
        let writes = drain(&mut q);
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[1].0, [[2u8; 5], [3; 5], [4; 5]].concat());
        // The chunk is kept for the next backlog, the first buffer offered back.
        assert_eq!(q.spare_chunks.len(), 1);
        assert_eq!(q.take_sent().map(|b| b.capacity() >= 10), Some(true));
    }

    #[test]
    fn fds_and_large_messages_are_never_coalesced() {
        let mut q: OutgoingQueue<u32> = OutgoingQueue::new();
        q.push(vec![1; 4], vec![]).unwrap();
        q.push(vec![2; 4], vec![]).unwrap();
        q.push(vec![3; 4], vec![7, 8]).unwrap();
        q.push(vec![4; 4], vec![]).unwrap();
        q.push(vec![5; MAX_COALESCED_MESSAGE_BYTES + 1], vec![])
            .unwrap();
        let writes = drain(&mut q);
        let shapes: Vec<(usize, usize)> = writes.iter().map(|(b, f)| (b.len(), f.len())).collect();
        assert_eq!(
            shapes,
            [
                (4, 0),
                (4, 0),
                (4, 2),
                (4, 0),
                (MAX_COALESCED_MESSAGE_BYTES + 1, 0)
            ]
        );
        // The fds ride with the first byte of their own message.
        assert_eq!(writes[2], (vec![3; 4], vec![7, 8]));
    }

    #[test]
    fn a_full_chunk_starts_another() {
        let mut q: OutgoingQueue<u32> = OutgoingQueue::new();
        q.push(vec![0; 1], vec![]).unwrap();
        let per_chunk = COALESCE_CHUNK_BYTES / MAX_COALESCED_MESSAGE_BYTES;
        for _ in 0..per_chunk + 1 {
            q.push(vec![9; MAX_COALESCED_MESSAGE_BYTES], vec![])
                .unwrap();
        }
        assert_eq!(q.len(), 3);
        let writes = drain(&mut q);
        assert_eq!(writes[1].0.len(), COALESCE_CHUNK_BYTES);
        assert_eq!(writes[2].0.len(), MAX_COALESCED_MESSAGE_BYTES);
        assert_eq!(q.queued_bytes(), 0);
    }

    #[test]
    fn partial_write_of_fd_chunk_resumes_without_fds() {
        let mut q: OutgoingQueue<u32> = OutgoingQueue::new();
        q.push(vec![1, 2, 3, 4], vec![9, 10]).unwrap();
        q.advance(0).unwrap();
        assert_eq!(q.next_send().unwrap().fds, &[9, 10]);
        q.advance(1).unwrap();
        let c = q.next_send().unwrap();
        assert_eq!((c.bytes, c.fds), (&[2u8, 3, 4][..], &[][..]));
    }

    #[test]
    fn incoming_buffer_bounds_and_reuse() {
        let mut b: IncomingBuffer<u32> = IncomingBuffer::new(8);
        b.extend_from_slice(&[1, 2, 3, 4, 5]).unwrap();
        assert_eq!(b.spare_mut(100).len(), 3);
        b.extend_from_slice(&[6, 7, 8]).unwrap();
        assert!(b.spare_mut(1).is_empty());
        assert!(b.extend_from_slice(&[9]).is_err());
        b.consume(6).unwrap();
        assert_eq!(b.buffered(), &[7, 8]);
        // Compaction, not growth.
        b.extend_from_slice(&[9, 10, 11, 12, 13, 14]).unwrap();
        assert_eq!(b.buffered(), &[7, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(b.capacity(), 8);
        assert_eq!(
            b.consume(9),
            Err(QueueError::ConsumePastEnd {
                requested: 9,
                buffered: 8
            })
        );
        b.push_fd(1);
        b.push_fd(2);
        assert_eq!(b.take_fds(3), None);
        assert_eq!(b.take_fds(0), Some(vec![]));
        assert_eq!(b.take_fds(2), Some(vec![1, 2]));
    }
}
