//! Property tests of the outgoing/incoming bookkeeping: any sequence of
//! messages with fds, under any split of partial writes and reads, arrives
//! whole, in order, with each message's fds, and every message's fds have
//! arrived by the time its last byte has (Chromium's association rule).
//!
//! Two variants: a pure one (the sans-IO queue types with fd tokens and a
//! model of the Linux unix-stream socket), and one over a real socketpair
//! with small socket buffers and real fds.

#![allow(missing_docs)]

mod common;

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};

use common::*;
use mojo_platform_channel::test_support::{IncomingBuffer, OutgoingQueue};
use mojo_platform_channel::{
    Limits, MAX_FDS_PER_SENDMSG, QueueError, ReadOutcome, sendmsg_calls_for_fds, socketpair,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Msg {
    payload: Vec<u8>,
    nfds: usize,
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        prop::collection::vec(any::<u8>(), 0..300),
        prop_oneof![6 => 0usize..4, 2 => 4usize..140, 1 => 120usize..600],
    )
        .prop_map(|(payload, nfds)| Msg { payload, nfds })
}

#[derive(Debug, Clone, Copy)]
enum Op {
    /// One `sendmsg` that accepts at most this many bytes.
    Send(usize),
    /// One `recvmsg` with room for this many bytes.
    Recv(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..700).prop_map(Op::Send),
        (1usize..700).prop_map(Op::Recv),
    ]
}

/// What one `sendmsg` put on the wire.
struct Segment {
    bytes: Vec<u8>,
    pos: usize,
    fds: Vec<u32>,
}

/// A model of a Linux `AF_UNIX` `SOCK_STREAM` socket's receive queue: a read
/// returns the fds of an fd-carrying write with its first byte, never fds of
/// two writes at once, and stops after the write whose fds it returned.
#[derive(Default)]
struct Wire {
    segs: VecDeque<Segment>,
}

impl Wire {
    fn recv(&mut self, max: usize) -> (Vec<u8>, Vec<u32>) {
        let mut out = vec![];
        let mut fds = vec![];
        let mut got_fds = false;
        while out.len() < max {
            let Some(seg) = self.segs.front_mut() else {
                break;
            };
            if !seg.fds.is_empty() {
                if got_fds {
                    break;
                }
                fds.append(&mut seg.fds);
                got_fds = true;
            }
            let take = (max - out.len()).min(seg.bytes.len() - seg.pos);
            out.extend_from_slice(&seg.bytes[seg.pos..seg.pos + take]);
            seg.pos += take;
            if seg.pos == seg.bytes.len() {
                self.segs.pop_front();
                if got_fds {
                    break;
                }
            }
        }
        (out, fds)
    }

    fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }
}

struct Receiver {
    buf: IncomingBuffer<u32>,
    next: usize,
}

impl Receiver {
    /// Dispatches every complete frame, checking it against `expected`.
    fn deframe(&mut self, expected: &[(Msg, Vec<u32>)]) {
        while let Some((len, nfds)) = peek_header(self.buf.buffered()) {
            if self.buf.buffered().len() < HEADER + len {
                return;
            }
            let (msg, fds) = &expected[self.next];
            assert_eq!(&self.buf.buffered()[HEADER..HEADER + len], &msg.payload[..]);
            assert_eq!(nfds, msg.nfds);
            // Association rule: the fds are there once the last byte is.
            let got = self.buf.take_fds(nfds).expect("fds missing at last byte");
            assert_eq!(&got, fds, "message {} got the wrong fds", self.next);
            self.buf.consume(HEADER + len).unwrap();
            self.next += 1;
        }
    }
}

/// Pushes every message up front, or (`interleaved`) one before each
/// operation, so that messages join a queue at every stage of sending
/// (small fd-less ones are then coalesced into chunks in every position).
fn run_model(msgs: &[Msg], ops: &[Op], interleaved: bool) {
    let mut q: OutgoingQueue<u32> = OutgoingQueue::new();
    let mut expected = vec![];
    let mut token = 0u32;
    let mut frames = VecDeque::new();
    for m in msgs {
        let fds: Vec<u32> = (token..token + m.nfds as u32).collect();
        token += m.nfds as u32;
        frames.push_back((frame(&m.payload, m.nfds), fds.clone()));
        expected.push((m.clone(), fds));
    }
    if !interleaved {
        let total_bytes: usize = frames.iter().map(|(f, _)| f.len()).sum();
        for (f, fds) in frames.drain(..) {
            q.push(f, fds).unwrap();
        }
        assert_eq!(q.queued_bytes(), total_bytes);
        assert_eq!(q.queued_fds(), token as usize);
    }
    let mut wire = Wire::default();
    let mut rx = Receiver {
        buf: IncomingBuffer::new(2048),
        next: 0,
    };
    let send = |q: &mut OutgoingQueue<u32>, wire: &mut Wire, max: usize| {
        let Some(chunk) = q.next_send() else { return };
        assert!(!chunk.bytes.is_empty());
        assert!(chunk.fds.len() <= MAX_FDS_PER_SENDMSG);
        let w = max.min(chunk.bytes.len());
        wire.segs.push_back(Segment {
            bytes: chunk.bytes[..w].to_vec(),
            pos: 0,
            fds: chunk.fds.to_vec(),
        });
        q.advance(w).unwrap();
    };
    let recv = |wire: &mut Wire, rx: &mut Receiver, max: usize| {
        let room = rx.buf.spare_mut(max).len().min(max);
        assert!(room > 0, "receive buffer full");
        let (bytes, fds) = wire.recv(room);
        rx.buf.extend_from_slice(&bytes).unwrap();
        for fd in fds {
            rx.buf.push_fd(fd);
        }
        rx.deframe(&expected);
    };
    for op in ops {
        if let Some((f, fds)) = frames.pop_front() {
            q.push(f, fds).unwrap();
        }
        match *op {
            Op::Send(n) => send(&mut q, &mut wire, n),
            Op::Recv(n) => recv(&mut wire, &mut rx, n),
        }
    }
    for (f, fds) in frames.drain(..) {
        q.push(f, fds).unwrap();
    }
    while !q.is_empty() {
        send(&mut q, &mut wire, usize::MAX);
    }
    while !wire.is_empty() {
        recv(&mut wire, &mut rx, 700);
    }
    assert_eq!(rx.next, msgs.len(), "not every message arrived");
    assert_eq!(rx.buf.buffered_len(), 0);
    assert_eq!(rx.buf.queued_fds(), 0);
    assert_eq!((q.queued_bytes(), q.queued_fds()), (0, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn model_messages_arrive_whole_in_order_with_their_fds(
        msgs in prop::collection::vec(msg(), 0..12),
        ops in prop::collection::vec(op(), 0..300),
    ) {
        run_model(&msgs, &ops, false);
    }

    #[test]
    fn model_messages_pushed_while_sending_arrive_whole_in_order_with_their_fds(
        msgs in prop::collection::vec(msg(), 0..24),
        ops in prop::collection::vec(op(), 0..300),
    ) {
        run_model(&msgs, &ops, true);
    }

    #[test]
    fn push_accepts_exactly_the_sendable_messages(len in 0usize..10, nfds in 0usize..1400) {
        let mut q: OutgoingQueue<()> = OutgoingQueue::new();
        let res = q.push(vec![0; len], vec![(); nfds]);
        let needed = sendmsg_calls_for_fds(nfds);
        if len == 0 {
            prop_assert_eq!(res, Err(QueueError::EmptyMessage));
        } else if len < needed {
            prop_assert_eq!(res, Err(QueueError::TooFewBytesForFds { len, num_fds: nfds, needed_bytes: needed }));
        } else {
            prop_assert!(res.is_ok());
            // One-byte writes: every fd chunk still finds a byte to ride with.
            let mut calls_with_fds = 0;
            while let Some(c) = q.next_send() {
                prop_assert!(!c.bytes.is_empty());
                let has_fds = !c.fds.is_empty();
                q.advance(1).unwrap();
                calls_with_fds += usize::from(has_fds);
            }
            prop_assert_eq!(calls_with_fds, needed);
        }
    }
}

// ---------------------------------------------------------------------------
// The same property over a real socketpair.

fn identity(fd: &impl AsFd) -> (u64, u64) {
    let st = nix::sys::stat::fstat(fd.as_fd()).unwrap();
    (st.st_dev, st.st_ino)
}

#[derive(Debug, Clone, Copy)]
enum RealOp {
    Flush,
    /// Read with this chunk size and batch limit.
    Read(usize),
}

fn real_op() -> impl Strategy<Value = RealOp> {
    prop_oneof![Just(RealOp::Flush), (1usize..5000).prop_map(RealOp::Read)]
}

fn real_msg() -> impl Strategy<Value = Msg> {
    (
        prop::collection::vec(any::<u8>(), 0..20_000),
        prop_oneof![4 => 0usize..4, 1 => 120usize..300],
    )
        .prop_map(|(payload, nfds)| Msg { payload, nfds })
}

fn run_real(msgs: &[Msg], ops: &[RealOp]) {
    // A few distinct files whose identities the received fds must match.
    let ids: Vec<OwnedFd> = (0..5).map(|i| memfd_with(&[i as u8])).collect();
    let id_keys: Vec<(u64, u64)> = ids.iter().map(identity).collect();
    let (mut a, mut b) = socketpair().unwrap();
    a.set_send_buffer_size(4096).unwrap();
    b.set_recv_buffer_size(4096).unwrap();
    let mut expected = vec![];
    for (k, m) in msgs.iter().enumerate() {
        let picks: Vec<usize> = (0..m.nfds).map(|i| (k * 7 + i * 3) % ids.len()).collect();
        let fds = picks.iter().map(|&p| ids[p].try_clone().unwrap()).collect();
        a.queue(frame(&m.payload, m.nfds), fds).unwrap();
        expected.push((m.payload.clone(), picks));
    }
    let mut next = 0;
    let deframe = |b: &mut mojo_platform_channel::Endpoint, next: &mut usize| {
        while let Some((payload, fds)) = take_frame(b) {
            let (want, picks) = &expected[*next];
            assert_eq!(&payload, want, "message {next} payload");
            let got: Vec<(u64, u64)> = fds.iter().map(identity).collect();
            let want_ids: Vec<(u64, u64)> = picks.iter().map(|&p| id_keys[p]).collect();
            assert_eq!(got, want_ids, "message {next} fds");
            *next += 1;
        }
    };
    let read = |b: &mut mojo_platform_channel::Endpoint, n: usize| {
        let limits = Limits {
            read_chunk_size: n,
            max_read_batch_bytes: n,
            ..b.limits()
        };
        b.set_limits(limits).unwrap();
        match b.read_available().unwrap() {
            ReadOutcome::Eof => panic!("unexpected EOF"),
            ReadOutcome::Data { .. } | ReadOutcome::WouldBlock => {}
        }
    };
    for op in ops {
        match *op {
            RealOp::Flush => {
                a.flush().unwrap();
            }
            RealOp::Read(n) => read(&mut b, n),
        }
        deframe(&mut b, &mut next);
    }
    let mut rounds = 0;
    while next < msgs.len() {
        a.flush().unwrap();
        read(&mut b, 64 * 1024);
        deframe(&mut b, &mut next);
        rounds += 1;
        assert!(rounds < 100_000, "no progress");
    }
    assert!(!a.has_pending_output());
    assert_eq!(b.buffered().len(), 0);
    assert_eq!(b.queued_fds(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn socketpair_messages_arrive_whole_in_order_with_their_fds(
        msgs in prop::collection::vec(real_msg(), 0..10),
        ops in prop::collection::vec(real_op(), 0..200),
    ) {
        assert_no_fd_leak(|| run_real(&msgs, &ops));
    }
}
