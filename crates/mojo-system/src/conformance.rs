//! Checks that a [`MojoSystem`] keeps Mojo's data pipe, message pipe and
//! message write semantics, written once and run against every
//! implementation (the node-backed systems in this crate's tests, the test
//! peers' fake in theirs). Each check panics at the first difference,
//! naming it: they are for tests only.

use std::time::{Duration, Instant};

pub mod new_data;
pub mod pipes;
pub mod regions;

use mojo_legacy_wire::Profile;

use crate::ipcz::IpczProtocol;
use crate::legacy::LegacyProtocol;
use crate::runtime::RealSystem;
use crate::{
    DataPipeConsumer, DataPipeProducer, Handle, MessagePipe, MojoError, MojoSystem, Signals,
    WriteMessageError, read_one, wait,
};

/// A system joined to a network and its attached pipes.
pub type Joined<P> = (RealSystem<P>, Vec<MessagePipe>);

/// The name of the one pipe the pairs below attach.
pub const PAIR_PIPE: &[u8] = b"pipe";

/// A legacy broker and client of `profile` joined over a socket pair in
/// this process (each with its own I/O thread), with one attached pipe.
pub fn legacy_pair(profile: Profile) -> (Joined<LegacyProtocol>, Joined<LegacyProtocol>) {
    let (broker_end, client_end) = mojo_platform_channel::socketpair().expect("socketpair");
    let broker_fd = broker_end.into_fd(false).expect("a fresh end");
    let names = vec![PAIR_PIPE.to_vec()];
    let broker = crate::legacy::send_invitation(broker_fd, profile, &names).expect("broker");
    let accepting = std::thread::spawn(move || {
        crate::legacy::accept_invitation(client_end, profile, &names).expect("client")
    });
    (broker, accepting.join().expect("the client thread"))
}

/// A Mojo+ipcz inviter and invitee joined over a socket pair in this
/// process, with one attached pipe.
pub fn ipcz_pair() -> (Joined<IpczProtocol>, Joined<IpczProtocol>) {
    let (broker_end, client_end) = mojo_platform_channel::socketpair().expect("socketpair");
    let broker_fd = broker_end.into_fd(false).expect("a fresh end");
    let accepting = std::thread::spawn(move || {
        crate::ipcz::accept_invitation(client_end, &[PAIR_PIPE.to_vec()]).expect("invitee")
    });
    let broker = crate::ipcz::send_invitation(broker_fd, &[PAIR_PIPE.to_vec()]).expect("inviter");
    (broker, accepting.join().expect("the invitee thread"))
}

/// How long a check waits for a change to cross a link.
pub const SETTLE: Duration = Duration::from_secs(20);

/// A deadline [`SETTLE`] from now.
pub fn deadline() -> Option<Instant> {
    Some(Instant::now() + SETTLE)
}

fn satisfied<S: MojoSystem + ?Sized>(sys: &S, raw: crate::MojoHandle, s: Signals) -> bool {
    sys.query_signals(raw)
        .is_ok_and(|st| st.satisfied.intersects(s))
}

fn satisfiable<S: MojoSystem + ?Sized>(sys: &S, raw: crate::MojoHandle, s: Signals) -> bool {
    sys.query_signals(raw)
        .is_ok_and(|st| st.satisfiable.intersects(s))
}

/// Waits until `consumer` has at least `n` readable bytes.
fn wait_readable<S: MojoSystem + ?Sized>(sys: &S, consumer: &DataPipeConsumer, n: usize) {
    let until = Instant::now() + SETTLE;
    while sys.query_data(consumer).unwrap_or(0) < n {
        assert!(Instant::now() < until, "{n} bytes never became readable");
        let _ = wait(sys, consumer.raw(), Signals::READABLE, deadline());
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Two-phase writes on a fresh pipe of `sys` (element size 1, capacity 16):
/// end without begin, begin twice, writes during the phase, an end with
/// more than begun, the signals after each call, and a full ring.
pub fn two_phase_write<S: MojoSystem + ?Sized>(sys: &S) {
    let (p, c) = sys.create_data_pipe(1, 16).expect("create");
    assert_eq!(
        sys.end_write_data(&p, &[]),
        Err(MojoError::FailedPrecondition),
        "end without begin"
    );
    let mut buf = sys.begin_write_data(&p).expect("begin");
    assert_eq!(buf.len(), 16, "all the room is offered");
    assert!(
        !satisfied(sys, p.raw(), Signals::WRITABLE),
        "writable mid-write"
    );
    assert!(satisfiable(sys, p.raw(), Signals::WRITABLE));
    assert_eq!(
        sys.begin_write_data(&p),
        Err(MojoError::Busy),
        "begin twice"
    );
    assert_eq!(
        sys.write_data(&p, b"x"),
        Err(MojoError::Busy),
        "write mid-write"
    );
    assert_eq!(
        sys.end_write_data(&p, &[0; 17]),
        Err(MojoError::InvalidArgument),
        "end with more than begun"
    );
    // The failed end ended the phase and committed nothing.
    assert!(satisfied(sys, p.raw(), Signals::WRITABLE));
    assert_eq!(sys.query_data(&c), Ok(0));
    assert_eq!(
        sys.end_write_data(&p, &[]),
        Err(MojoError::FailedPrecondition)
    );

    buf = sys.begin_write_data(&p).expect("begin again");
    buf[..5].copy_from_slice(b"hello");
    sys.end_write_data(&p, &buf[..5]).expect("end");
    wait_readable(sys, &c, 5);
    assert!(satisfied(sys, c.raw(), Signals::READABLE));
    assert_eq!(sys.write_data(&p, &[b'.'; 11]), Ok(11));
    assert_eq!(sys.begin_write_data(&p), Err(MojoError::ShouldWait), "full");
    assert!(!satisfied(sys, p.raw(), Signals::WRITABLE));
    wait_readable(sys, &c, 16);
    let mut out = [0; 16];
    assert_eq!(sys.read_data(&c, &mut out), Ok(16));
    assert_eq!(&out, b"hello...........");
    // An empty end commits nothing.
    let room = wait_for_room(sys, &p);
    assert!(room > 0);
    assert_eq!(sys.end_write_data(&p, &[]), Ok(()));
    assert_eq!(sys.query_data(&c), Ok(0));
}

/// Begins a two-phase write once there is room; returns the buffer size
/// (the two-phase write is then under way).
fn wait_for_room<S: MojoSystem + ?Sized>(sys: &S, p: &DataPipeProducer) -> usize {
    let until = Instant::now() + SETTLE;
    loop {
        match sys.begin_write_data(p) {
            Ok(buf) => return buf.len(),
            Err(MojoError::ShouldWait) => {
                assert!(Instant::now() < until, "the room never came back");
                let _ = wait(sys, p.raw(), Signals::WRITABLE, deadline());
            }
            Err(e) => panic!("begin_write_data: {e}"),
        }
    }
}

/// Two-phase reads, discard and query on a fresh pipe of `sys` (element
/// size 2, capacity 16).
pub fn two_phase_read<S: MojoSystem + ?Sized>(sys: &S) {
    let (p, c) = sys.create_data_pipe(2, 16).expect("create");
    assert_eq!(
        sys.end_read_data(&c, 0),
        Err(MojoError::FailedPrecondition),
        "end without begin"
    );
    assert_eq!(sys.begin_read_data(&c), Err(MojoError::ShouldWait), "empty");
    assert_eq!(sys.write_data(&p, b"abcdefgh"), Ok(8));
    wait_readable(sys, &c, 8);
    let seen = sys.begin_read_data(&c).expect("begin");
    assert_eq!(seen, b"abcdefgh");
    assert!(
        !satisfied(sys, c.raw(), Signals::READABLE),
        "readable mid-read"
    );
    assert!(satisfiable(sys, c.raw(), Signals::READABLE));
    assert_eq!(sys.begin_read_data(&c), Err(MojoError::Busy), "begin twice");
    let mut out = [0; 8];
    assert_eq!(sys.read_data(&c, &mut out), Err(MojoError::Busy));
    assert_eq!(sys.discard_data(&c, 2), Err(MojoError::Busy));
    assert_eq!(sys.query_data(&c), Err(MojoError::Busy));
    assert_eq!(
        sys.end_read_data(&c, 10),
        Err(MojoError::InvalidArgument),
        "end with more than begun"
    );
    assert!(satisfied(sys, c.raw(), Signals::READABLE));
    assert_eq!(sys.query_data(&c), Ok(8), "a failed end consumes nothing");
    sys.begin_read_data(&c).expect("begin");
    assert_eq!(
        sys.end_read_data(&c, 3),
        Err(MojoError::InvalidArgument),
        "a partial element"
    );
    sys.begin_read_data(&c).expect("begin");
    sys.end_read_data(&c, 4).expect("end");
    assert_eq!(sys.query_data(&c), Ok(4));
    assert_eq!(sys.read_data(&c, &mut out), Ok(4));
    assert_eq!(&out[..4], b"efgh");

    assert_eq!(sys.write_data(&p, b"ijklmn"), Ok(6));
    wait_readable(sys, &c, 6);
    assert_eq!(sys.discard_data(&c, 3), Err(MojoError::InvalidArgument));
    assert_eq!(sys.discard_data(&c, 0), Err(MojoError::ShouldWait));
    assert_eq!(sys.discard_data(&c, 4), Ok(4));
    assert_eq!(sys.query_data(&c), Ok(2));
    assert_eq!(sys.discard_data(&c, 10), Ok(2));
    assert_eq!(sys.discard_data(&c, 2), Err(MojoError::ShouldWait));
    assert!(!satisfied(sys, c.raw(), Signals::READABLE));
    drop(p);
    wait(sys, c.raw(), Signals::PEER_CLOSED, deadline()).expect("peer closed");
    assert_eq!(sys.discard_data(&c, 2), Err(MojoError::FailedPrecondition));
    assert_eq!(sys.query_data(&c), Ok(0));
}

/// The peer closing in the middle of a two-phase write and of a two-phase
/// read; and an end in a two-phase operation refused by `write_message`.
pub fn peer_closed_mid_two_phase<S: MojoSystem + ?Sized>(sys: &S) {
    // Write side: the end still succeeds, then the producer is done.
    let (p, c) = sys.create_data_pipe(1, 16).expect("create");
    let buf = sys.begin_write_data(&p).expect("begin");
    drop(c);
    wait(sys, p.raw(), Signals::PEER_CLOSED, deadline()).expect("peer closed");
    assert!(!satisfiable(sys, p.raw(), Signals::WRITABLE));
    assert_eq!(sys.end_write_data(&p, &buf[..4]), Ok(()));
    assert_eq!(sys.write_data(&p, b"x"), Err(MojoError::FailedPrecondition));
    assert_eq!(sys.begin_write_data(&p), Err(MojoError::FailedPrecondition));

    // Read side: what was written stays readable to the end.
    let (p, c) = sys.create_data_pipe(1, 16).expect("create");
    assert_eq!(sys.write_data(&p, b"abcdef"), Ok(6));
    wait_readable(sys, &c, 6);
    assert_eq!(sys.begin_read_data(&c).expect("begin"), b"abcdef");
    drop(p);
    wait(sys, c.raw(), Signals::PEER_CLOSED, deadline()).expect("peer closed");
    sys.end_read_data(&c, 2).expect("end");
    assert!(satisfied(sys, c.raw(), Signals::READABLE));
    assert_eq!(sys.begin_read_data(&c).expect("begin"), b"cdef");
    sys.end_read_data(&c, 4).expect("end");
    assert_eq!(sys.begin_read_data(&c), Err(MojoError::FailedPrecondition));
    assert!(!satisfiable(sys, c.raw(), Signals::READABLE));

    // An end mid-phase cannot travel.
    let (p, c) = sys.create_data_pipe(1, 16).expect("create");
    let (a, _b) = sys.create_message_pipe().expect("pipe");
    let _buf = sys.begin_write_data(&p).expect("begin");
    assert_eq!(
        sys.write_message(&a, b"end", vec![p.into()]),
        Err(MojoError::Busy)
    );
    wait(sys, c.raw(), Signals::PEER_CLOSED, deadline()).expect("the refused end closed");
}

/// A producer on `a` and its consumer sent over `pipe_a` to `b` (the other
/// end, `pipe_b`): two-phase calls on both sides of a real link, 64 KiB
/// through a 256-byte ring, every byte in order; then the producer closes
/// while the far consumer is in a two-phase read.
pub fn two_phase_across<A: MojoSystem + ?Sized, B: MojoSystem + ?Sized>(
    a: &A,
    pipe_a: &MessagePipe,
    b: &B,
    pipe_b: &MessagePipe,
) {
    const TOTAL: usize = 64 * 1024;
    let (p, c) = a.create_data_pipe(1, 256).expect("create");
    a.write_message(pipe_a, b"consumer", vec![c.into()])
        .expect("send the consumer");
    let mut m = read_one(b, pipe_b, deadline()).expect("the consumer arrives");
    let c = m
        .handles
        .pop()
        .and_then(|h| h.into_data_pipe_consumer().ok())
        .expect("a consumer");
    let pattern = |i: usize| (i.wrapping_mul(11).wrapping_add(7) % 256) as u8;
    let writer = |sent: &mut usize| {
        if *sent == TOTAL {
            return;
        }
        match a.begin_write_data(&p) {
            Ok(mut buf) => {
                let n = buf.len().min(TOTAL - *sent).min(100);
                for (k, byte) in buf[..n].iter_mut().enumerate() {
                    *byte = pattern(*sent + k);
                }
                a.end_write_data(&p, &buf[..n]).expect("end write");
                *sent += n;
            }
            Err(MojoError::ShouldWait) => {}
            Err(e) => panic!("begin_write_data: {e}"),
        }
    };
    let (mut sent, mut got) = (0, 0);
    let until = Instant::now() + SETTLE;
    while got < TOTAL {
        assert!(Instant::now() < until, "stuck at {got} of {TOTAL} bytes");
        writer(&mut sent);
        match b.begin_read_data(&c) {
            Ok(seen) => {
                let n = seen.len().min(77);
                for (k, byte) in seen[..n].iter().enumerate() {
                    assert_eq!(*byte, pattern(got + k), "byte {}", got + k);
                }
                b.end_read_data(&c, n).expect("end read");
                got += n;
            }
            Err(MojoError::ShouldWait) => {
                let _ = b.wait_any(
                    &[(c.raw(), Signals::READABLE)],
                    Some(Instant::now() + Duration::from_millis(5)),
                );
            }
            Err(e) => panic!("begin_read_data: {e}"),
        }
    }
    // The producer closes while the far consumer is mid-read: what was
    // written stays readable, the end succeeds, then the pipe is drained.
    assert_eq!(a.write_data(&p, b"tail"), Ok(4));
    wait_readable(b, &c, 4);
    assert_eq!(b.begin_read_data(&c).expect("begin"), b"tail");
    drop(p);
    wait(b, c.raw(), Signals::PEER_CLOSED, deadline()).expect("producer closure crosses");
    b.end_read_data(&c, 1).expect("end after closure");
    assert_eq!(b.begin_read_data(&c).expect("the rest"), b"ail");
    b.end_read_data(&c, 3).expect("end");
    assert_eq!(b.begin_read_data(&c), Err(MojoError::FailedPrecondition));
}

/// A write that fails before its message is formed hands every handle
/// back, still usable (a pipe in its own message, an end mid-two-phase);
/// one that fails after (the peer is closed) closes them.
pub fn failed_writes_hand_handles_back<S: MojoSystem + ?Sized>(sys: &S) {
    let (a, b) = sys.create_message_pipe().expect("pipe");
    let (mut x, y) = sys.create_message_pipe().expect("pipe");
    let (p, c) = sys.create_data_pipe(1, 16).expect("data pipe");
    let back = |r: Result<(), WriteMessageError>, error, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.error, error, "{what}");
        e.handles
    };

    // The pipe itself among its handles, and a handle the system never
    // made (both forged with a closer that does nothing).
    let forge = |raw| {
        Handle::from(MessagePipe::from_raw(
            raw,
            std::sync::Arc::new(IgnoreClose) as std::sync::Arc<dyn crate::HandleCloser>,
        ))
    };
    let unknown = crate::MojoHandle::new(u32::MAX).expect("non-zero");
    for (forged, what) in [
        (a.raw(), "the pipe in its own message"),
        (unknown, "an unknown handle"),
    ] {
        let handles = back(
            sys.try_write_message(&a, b"m", vec![Handle::from(x), forge(forged)]),
            MojoError::InvalidArgument,
            what,
        );
        assert_eq!(handles.len(), 2, "{what}");
        assert_eq!(handles[1].raw(), forged, "{what}");
        x = handles
            .into_iter()
            .next()
            .and_then(|h| h.into_message_pipe().ok())
            .expect("x back");
    }

    // An end in a two-phase write is busy and stays in its phase.
    let room = sys.begin_write_data(&p).expect("begin");
    let mut handles = back(
        sys.try_write_message(&a, b"m", vec![Handle::from(p)]),
        MojoError::Busy,
        "a producer mid-write",
    );
    let p = handles
        .pop()
        .and_then(|h| match h {
            Handle::DataPipeProducer(p) => Some(p),
            _ => None,
        })
        .expect("p back");
    sys.end_write_data(&p, &room[..2])
        .expect("the phase went on");
    assert_eq!(sys.query_data(&c), Ok(2), "the two bytes arrived");

    // Still usable: the write goes through, and the other end reads x.
    sys.write_message(&a, b"ok", vec![Handle::from(x)])
        .expect("write after the failures");
    let m = read_one(sys, &b, Some(Instant::now() + SETTLE)).expect("read");
    assert_eq!((m.bytes.as_slice(), m.handles.len()), (&b"ok"[..], 1));

    // After the peer closed, the message and its handles are gone.
    drop(b);
    let until = Instant::now() + SETTLE;
    while !satisfied(sys, a.raw(), Signals::PEER_CLOSED) {
        assert!(Instant::now() < until, "peer closure never seen");
        let _ = wait(sys, a.raw(), Signals::PEER_CLOSED, deadline());
    }
    let y_raw = y.raw();
    let closed = back(
        sys.try_write_message(&a, b"m", vec![Handle::from(y)]),
        MojoError::FailedPrecondition,
        "a closed peer",
    );
    assert!(closed.is_empty(), "the handles went with the message");
    assert_eq!(
        sys.query_signals(y_raw),
        Err(MojoError::InvalidArgument),
        "y was closed"
    );
    drop((p, c));
}

/// A closer for forged handles: they were never the system's to close.
struct IgnoreClose;

impl crate::HandleCloser for IgnoreClose {
    fn close_handle(&self, _: crate::MojoHandle) {}
}

/// `PEER_REMOTE` of message pipes: never satisfied for a local pair,
/// satisfiable until the peer closes; for `pipe_a` (joined to `pipe_b` of
/// `b`) and a pipe end sent from `a` to `b` satisfied exactly when the
/// protocol knows remote peers (`remote`: legacy yes, ipcz no, as Mojo's
/// ipcz driver never raises it).
pub fn peer_remote<A: MojoSystem + ?Sized, B: MojoSystem + ?Sized>(
    a: &A,
    pipe_a: &MessagePipe,
    b: &B,
    pipe_b: &MessagePipe,
    remote: bool,
) {
    let (x, y) = a.create_message_pipe().expect("pipe");
    let s = a.query_signals(x.raw()).expect("query");
    assert!(
        !s.satisfied.intersects(Signals::PEER_REMOTE),
        "a local pair"
    );
    assert!(s.satisfiable.intersects(Signals::PEER_REMOTE));
    let s = a.query_signals(pipe_a.raw()).expect("query");
    assert_eq!(
        s.satisfied.intersects(Signals::PEER_REMOTE),
        remote,
        "joined pipe"
    );
    assert!(s.satisfiable.intersects(Signals::PEER_REMOTE));

    a.write_message(pipe_a, b"end", vec![y.into()])
        .expect("send y");
    let m = read_one(b, pipe_b, deadline()).expect("y arrives");
    assert_eq!(m.handles.len(), 1);
    if remote {
        wait(a, x.raw(), Signals::PEER_REMOTE, deadline()).expect("x's peer went away");
    }
    drop(m);
    wait(a, x.raw(), Signals::PEER_CLOSED, deadline()).expect("y closed");
    let s = a.query_signals(x.raw()).expect("query");
    assert!(
        !s.satisfiable.intersects(Signals::PEER_REMOTE),
        "no peer, no remote"
    );
    let e = a
        .wait_any(&[(x.raw(), Signals::PEER_REMOTE)], deadline())
        .unwrap_err();
    assert_eq!(e.error, MojoError::FailedPrecondition);
}
