//! Fault injection: truncated, corrupted, duplicated and miscounted frames
//! end in a typed error (the peer dropped) or correct behaviour, never a
//! panic or a leaked port or fd; the named limits are enforced.

use std::os::fd::OwnedFd;

use mojo_legacy_wire::Profile;
use mojo_legacy_wire::event::{Event as WireEvent, EventData};

use super::sim::{BROKER, CLIENT, Frame, Pair, Probe, probed_fd};
use crate::node::{
    Handle, LegacyNode, MAX_QUEUED_DROP_REPORTS, NodeError, NodeEvent, NodeLimits, PortRef,
};
use crate::ports::Error as PortsError;

/// Closes every user-held port of `node` (others refuse; that is fine).
pub(crate) fn close_all(node: &mut LegacyNode) {
    node.close_all_ports();
}

/// Cuts the pair, closes every port on both sides, and checks that nothing
/// is left.
pub(crate) fn tear_down(mut pair: Pair) {
    pair.cut();
    for _ in 0..4 {
        for i in [BROKER, CLIENT] {
            close_all(&mut pair.nodes[i]);
        }
        pair.run();
    }
    pair.assert_clean();
}

/// A connected pair and the frame of a broker message carrying a pipe and
/// an fd, not yet delivered; the probe watches the fd.
fn pair_with_frame() -> (Pair, Frame, Probe) {
    let (pair, frame, probe, _) = pair_with_frame_ends();
    (pair, frame, probe)
}

/// The pipe ends of [`pair_with_frame_ends`]: the attachment's ends on the
/// broker (`a`) and the client (`p`), and the broker's end of the pipe
/// whose other end travels in the frame (`keep`).
struct Ends {
    a: PortRef,
    p: PortRef,
    keep: PortRef,
}

fn pair_with_frame_ends() -> (Pair, Frame, Probe, Ends) {
    let mut pair = Pair::new(Profile::Libchrome);
    let a = pair.nodes[BROKER].reserve_attachment(b"x").unwrap();
    let broker = pair.name(BROKER);
    let p = pair.nodes[CLIENT].request_port_merge(broker, b"x").unwrap();
    pair.run_clean();
    pair.nodes[BROKER]
        .write_message(a, b"ping", vec![])
        .unwrap();
    pair.run_clean();
    assert_eq!(pair.read(CLIENT, p), b"ping");
    let (keep, give) = pair.nodes[BROKER].create_pipe().unwrap();
    let (fd, probe) = probed_fd();
    pair.nodes[BROKER]
        .write_message(
            a,
            b"payload",
            vec![Handle::MessagePipe(give), Handle::PlatformHandle(fd)],
        )
        .unwrap();
    pair.collect();
    let frame = pair.in_flight.pop_front().expect("the frame");
    assert!(pair.in_flight.is_empty());
    (pair, frame, probe, Ends { a, p, keep })
}

fn deliver(pair: &mut Pair, to: usize, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), NodeError> {
    let from = pair.name(1 - to);
    let r = pair.nodes[to].handle_frame(from, bytes, fds);
    pair.collect();
    r
}

fn assert_dropped(pair: &mut Pair, to: usize) {
    assert!(!pair.nodes[to].has_peer(pair.name(1 - to)));
    let events = pair.take_events(to);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, NodeEvent::PeerLost { error: Some(_), .. })),
        "{events:?}"
    );
}

#[test]
fn truncated_frames_are_typed_errors_and_close_their_fds() {
    let (_, frame, _) = pair_with_frame();
    for len in 0..frame.bytes.len() {
        let (mut pair, frame, probe) = pair_with_frame();
        let r = deliver(&mut pair, CLIENT, &frame.bytes[..len], frame.fds);
        assert!(
            matches!(r, Err(NodeError::Malformed { .. })),
            "len {len}: {r:?}"
        );
        assert_dropped(&mut pair, CLIENT);
        assert!(probe.is_closed(), "len {len}");
        tear_down(pair);
    }
}

#[test]
fn corrupted_frames_never_panic_or_leak() {
    let (_, frame, _) = pair_with_frame();
    for at in 0..frame.bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let (mut pair, frame, probe) = pair_with_frame();
            let mut bytes = frame.bytes;
            bytes[at] ^= flip;
            if deliver(&mut pair, CLIENT, &bytes, frame.fds).is_err() {
                assert_dropped(&mut pair, CLIENT);
            }
            pair.run();
            tear_down(pair);
            assert!(probe.is_closed(), "byte {at} ^ {flip:#x}");
        }
    }
}

/// §6.3: a replayed user message is dropped (reported, typed), the link
/// stays up and the pipe keeps working; likewise an out-of-place
/// PortAccepted.
#[test]
fn duplicated_frames_are_dropped_and_reported() {
    let mut pair = Pair::new(Profile::Libchrome);
    let a = pair.nodes[BROKER].reserve_attachment(b"x").unwrap();
    let broker = pair.name(BROKER);
    let p = pair.nodes[CLIENT].request_port_merge(broker, b"x").unwrap();
    pair.run_clean();
    pair.nodes[BROKER]
        .write_message(a, b"once", vec![])
        .unwrap();
    pair.collect();
    let frame = pair.in_flight.pop_front().unwrap();
    deliver(&mut pair, CLIENT, &frame.bytes, vec![]).unwrap();
    deliver(&mut pair, CLIENT, &frame.bytes, vec![]).unwrap();
    let events = pair.take_events(CLIENT);
    assert!(
        events.iter().any(|e| matches!(
            e,
            NodeEvent::EventDropped {
                error: PortsError::DuplicateSequenceNum { .. }
                    | PortsError::StaleSequenceNum { .. },
                ..
            }
        )),
        "{events:?}"
    );
    assert_eq!(pair.nodes[CLIENT].dropped_event_count(), 1);
    assert!(pair.nodes[CLIENT].has_peer(broker));
    assert_eq!(pair.read(CLIENT, p), b"once");
    assert!(pair.nodes[CLIENT].read_message(p).unwrap().is_none());
    // A PortAccepted for a port that is not Buffering.
    let mut accepted = Vec::new();
    WireEvent::new(p.name(), EventData::PortAccepted)
        .encode_frame(Profile::Libchrome, 0, &mut accepted)
        .unwrap();
    deliver(&mut pair, CLIENT, &accepted, vec![]).unwrap();
    assert_eq!(pair.nodes[CLIENT].dropped_event_count(), 2);
    assert!(pair.take_events(CLIENT).iter().any(|e| matches!(
        e,
        NodeEvent::EventDropped {
            error: PortsError::UnexpectedPortAccepted { .. },
            ..
        }
    )));
    // The pipe still works.
    pair.nodes[CLIENT]
        .write_message(p, b"still fine", vec![])
        .unwrap();
    pair.run_clean();
    assert_eq!(pair.read(BROKER, a), b"still fine");
    tear_down(pair);
}

/// Reports of dropped events are bounded; the count is not.
#[test]
fn drop_reports_are_bounded() {
    let mut pair = Pair::new(Profile::Libchrome);
    let a = pair.nodes[BROKER].reserve_attachment(b"x").unwrap();
    let broker = pair.name(BROKER);
    let _p = pair.nodes[CLIENT].request_port_merge(broker, b"x").unwrap();
    pair.run_clean();
    pair.nodes[BROKER]
        .write_message(a, b"once", vec![])
        .unwrap();
    pair.collect();
    let frame = pair.in_flight.pop_front().unwrap();
    deliver(&mut pair, CLIENT, &frame.bytes, vec![]).unwrap();
    let replays = MAX_QUEUED_DROP_REPORTS + 10;
    for _ in 0..replays {
        let from = pair.name(BROKER);
        pair.nodes[CLIENT]
            .handle_frame(from, &frame.bytes, vec![])
            .unwrap();
    }
    assert_eq!(pair.nodes[CLIENT].dropped_event_count(), replays as u64);
    let reports = std::iter::from_fn(|| pair.nodes[CLIENT].poll_event())
        .filter(|e| matches!(e, NodeEvent::EventDropped { .. }))
        .count();
    assert_eq!(reports, MAX_QUEUED_DROP_REPORTS);
    tear_down(pair);
}

#[test]
fn fd_count_must_match_the_header() {
    for extra in [0usize, 2] {
        let (mut pair, frame, probe) = pair_with_frame();
        drop(frame.fds);
        assert!(probe.is_closed());
        let fds: Vec<OwnedFd> = (0..extra).map(|_| probed_fd().0).collect();
        let r = deliver(&mut pair, CLIENT, &frame.bytes, fds);
        assert_eq!(
            r,
            Err(NodeError::FdCountMismatch {
                declared: 1,
                received: extra
            })
        );
        assert_dropped(&mut pair, CLIENT);
        tear_down(pair);
    }
}

/// Legacy header: `num_bytes` u32, `num_handles` u16, `message_type` u16.
fn set_num_handles(bytes: &mut [u8], n: u16) {
    bytes[4..6].copy_from_slice(&n.to_le_bytes());
}

/// Delivers a broker frame whose user-message part the client cannot
/// read, then checks §6.3's rule: the link stays up, the message's pipe end
/// was accepted (its PortAccepted collapses the broker's proxy) and closed,
/// its fd closed, and the destination pipe broken: the client's end is
/// gone and the broker's end observes closure.
fn assert_refused_and_pipe_broken(mut bytes: Vec<u8>, fds: Vec<OwnedFd>) {
    let (mut pair, frame, probe, ends) = pair_with_frame_ends();
    bytes.truncate(frame.bytes.len());
    let fd_count = fds.len();
    drop(frame.fds);
    let r = deliver(&mut pair, CLIENT, &bytes, fds);
    assert_eq!(r, Ok(()), "{fd_count} fds");
    assert!(pair.nodes[CLIENT].has_peer(pair.name(BROKER)));
    let events = pair.take_events(CLIENT);
    assert!(
        events.iter().any(|e| matches!(
            e,
            NodeEvent::MessageRefused { port: Some(port), .. } if *port == ends.p
        )),
        "{events:?}"
    );
    assert!(pair.nodes[CLIENT].read_message(ends.p).is_err());
    pair.run_clean();
    assert!(probe.is_closed());
    for (node, end) in [(BROKER, ends.a), (BROKER, ends.keep)] {
        assert!(pair.nodes[node].port_status(end).unwrap().peer_closed);
    }
    assert_eq!(pair.nodes[BROKER].proxy_count(), 0);
    assert_eq!(pair.nodes[CLIENT].port_count(), 0);
    tear_down(pair);
}

/// §6.3 "Dispatcher decode failure when translating a message": a platform
/// handle dispatcher whose fd did not come.
#[test]
fn dispatcher_decode_failure_accepts_the_ports_and_breaks_the_pipe() {
    let (_, frame, _) = pair_with_frame();
    let mut bytes = frame.bytes;
    set_num_handles(&mut bytes, 0);
    assert_refused_and_pipe_broken(bytes, vec![]);
}

/// Offset of the user-message part in the libchrome frame of
/// [`pair_with_frame`]: channel 8 + NodeChannel 8 + event header 24 +
/// UserMessageEventData 16 + one port (96 + 16).
const USER_MESSAGE_AT: usize = 8 + 8 + 24 + 16 + 112;

/// §6.3 "User message with valid ports but an invalid user-message part":
/// `header_size` beyond the part's length.
#[test]
fn unreadable_user_message_part_accepts_the_ports_and_breaks_the_pipe() {
    let (_, frame, _) = pair_with_frame();
    let mut bytes = frame.bytes;
    bytes[USER_MESSAGE_AT + 4..USER_MESSAGE_AT + 8].copy_from_slice(&0xffffu32.to_le_bytes());
    let (fd, _) = probed_fd();
    assert_refused_and_pipe_broken(bytes, vec![fd]);
}

/// §6.3 "User message event too short for its declared ports": ignored
/// (the ports cannot be named), its fds closed; the link stays up.
#[test]
fn user_message_too_short_for_its_ports_is_ignored() {
    let (mut pair, frame, probe, ends) = pair_with_frame_ends();
    let mut bytes = frame.bytes;
    // num_ports 1 -> 200: far more descriptors than the frame holds.
    bytes[8 + 8 + 24 + 8..8 + 8 + 24 + 12].copy_from_slice(&200u32.to_le_bytes());
    deliver(&mut pair, CLIENT, &bytes, frame.fds).unwrap();
    assert!(probe.is_closed());
    assert!(pair.nodes[CLIENT].has_peer(pair.name(BROKER)));
    let events = pair.take_events(CLIENT);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, NodeEvent::MessageRefused { port: None, .. })),
        "{events:?}"
    );
    assert_eq!(pair.nodes[CLIENT].dropped_event_count(), 1);
    // The pipe itself still carries messages the other way.
    pair.nodes[CLIENT]
        .write_message(ends.p, b"still here", vec![])
        .unwrap();
    pair.run();
    assert_eq!(pair.read(BROKER, ends.a), b"still here");
    tear_down(pair);
}

#[test]
fn unclaimed_fds_are_closed_at_once() {
    let (mut pair, frame, probe) = pair_with_frame();
    let mut bytes = frame.bytes;
    set_num_handles(&mut bytes, 2);
    let (extra, extra_probe) = probed_fd();
    let mut fds = frame.fds;
    fds.push(extra);
    deliver(&mut pair, CLIENT, &bytes, fds).unwrap();
    assert!(extra_probe.is_closed());
    assert!(!probe.is_closed());
    assert_eq!(pair.nodes[CLIENT].held_fd_count(pair.name(BROKER)), 1);
    tear_down(pair);
    assert!(probe.is_closed());
}

fn limited(limits: NodeLimits) -> (Pair, PortRef, PortRef) {
    let mut pair = Pair::build(Profile::Libchrome, None, limits);
    let a = pair.nodes[BROKER].reserve_attachment(b"x").unwrap();
    let broker = pair.name(BROKER);
    let p = pair.nodes[CLIENT].request_port_merge(broker, b"x").unwrap();
    pair.run_clean();
    (pair, a, p)
}

#[test]
fn queued_messages_per_port_are_limited() {
    let limits = NodeLimits {
        max_queued_messages_per_port: 2,
        ..NodeLimits::default()
    };
    let (mut pair, a, _p) = limited(limits);
    for i in 0..3u8 {
        pair.nodes[BROKER].write_message(a, &[i], vec![]).unwrap();
    }
    pair.run();
    assert!(
        matches!(
            pair.errors[..],
            [(CLIENT, NodeError::TooManyQueuedMessages { limit: 2, .. })]
        ),
        "{:?}",
        pair.errors
    );
    assert_dropped(&mut pair, CLIENT);
    tear_down(pair);
}

#[test]
fn fds_per_peer_are_limited() {
    let limits = NodeLimits {
        max_fds_per_peer: 1,
        ..NodeLimits::default()
    };
    let (mut pair, a, _p) = limited(limits);
    let (fd1, probe1) = probed_fd();
    let (fd2, probe2) = probed_fd();
    pair.nodes[BROKER]
        .write_message(a, b"", vec![Handle::PlatformHandle(fd1)])
        .unwrap();
    pair.nodes[BROKER]
        .write_message(a, b"", vec![Handle::PlatformHandle(fd2)])
        .unwrap();
    pair.run();
    assert!(
        matches!(
            pair.errors[..],
            [(CLIENT, NodeError::TooManyFds { limit: 1 })]
        ),
        "{:?}",
        pair.errors
    );
    assert!(probe2.is_closed());
    tear_down(pair);
    assert!(probe1.is_closed());
}

#[test]
fn ports_per_peer_are_limited() {
    let limits = NodeLimits {
        max_ports_per_peer: 2,
        ..NodeLimits::default()
    };
    let (mut pair, a, _p) = limited(limits);
    let mut handles = Vec::new();
    for _ in 0..2 {
        let (_keep, give) = pair.nodes[BROKER].create_pipe().unwrap();
        handles.push(Handle::MessagePipe(give));
    }
    pair.nodes[BROKER].write_message(a, b"", handles).unwrap();
    pair.run();
    assert!(
        matches!(
            pair.errors[..],
            [(CLIENT, NodeError::TooManyPorts { limit: 2 })]
        ),
        "{:?}",
        pair.errors
    );
    tear_down(pair);
}

/// The event type of an event frame.
fn event_type(bytes: &[u8], profile: Profile) -> Option<mojo_legacy_wire::event::EventType> {
    use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame, NodeMessage};
    let (frame, _) = NodeFrame::decode(bytes).ok()?;
    let NodeChannelContent::Message(NodeMessage::EventMessage(body)) = frame.content else {
        return None;
    };
    Some(
        WireEvent::decode(body, profile.event_header_form())
            .ok()?
            .event_type(),
    )
}

/// §4.10 "never send ObserveProxyAck to a client port that is not a
/// proxy", on the sending side: every ObserveProxy on the link arrives
/// twice while pipe ends move to the client and back. The first copy is
/// answered (the proxy is real); the second finds the ring already past the
/// proxy and must not be answered again (the simulator checks, as every
/// frame leaves, that an ObserveProxyAck only goes to a port that is a
/// proxy or gone) nor circle the ring forever. The pipes keep working.
#[test]
fn never_observe_proxy_ack_to_a_non_proxy_even_with_duplicated_observe_proxies() {
    use mojo_legacy_wire::event::EventType;
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let mut pair = Pair::new(profile);
        let a = pair.nodes[BROKER].reserve_attachment(b"d").unwrap();
        let broker = pair.name(BROKER);
        let p = pair.nodes[CLIENT].request_port_merge(broker, b"d").unwrap();
        let (mut duplicated, mut acks) = (0, 0);
        let mut run_doubling = |pair: &mut Pair| {
            for _ in 0..10_000 {
                pair.collect();
                let Some(f) = pair.in_flight.pop_front() else {
                    return;
                };
                let from = pair.name(1 - f.to);
                let kind = event_type(&f.bytes, profile);
                acks += usize::from(kind == Some(EventType::OBSERVE_PROXY_ACK));
                let copy = (kind == Some(EventType::OBSERVE_PROXY)).then(|| f.bytes.clone());
                if let Err(e) = pair.nodes[f.to].handle_frame(from, &f.bytes, f.fds) {
                    pair.errors.push((f.to, e));
                }
                pair.collect();
                if let Some(copy) = copy {
                    duplicated += 1;
                    if let Err(e) = pair.nodes[f.to].handle_frame(from, &copy, vec![]) {
                        pair.errors.push((f.to, e));
                    }
                }
            }
            panic!("{profile:?}: never idle (a duplicated ObserveProxy circles the ring)");
        };
        run_doubling(&mut pair);
        // A pipe end to the client and back: proxies on both sides.
        let (keep, give) = pair.nodes[BROKER].create_pipe().unwrap();
        pair.nodes[BROKER]
            .write_message(a, b"pipe", vec![Handle::MessagePipe(give)])
            .unwrap();
        run_doubling(&mut pair);
        let (_, mut h) = pair.nodes[CLIENT].read_message(p).unwrap().unwrap();
        let Some(Handle::MessagePipe(got)) = h.pop() else {
            panic!("no pipe")
        };
        pair.nodes[CLIENT]
            .write_message(p, b"back", vec![Handle::MessagePipe(got)])
            .unwrap();
        run_doubling(&mut pair);
        let (_, mut h) = pair.nodes[BROKER].read_message(a).unwrap().unwrap();
        let Some(Handle::MessagePipe(back)) = h.pop() else {
            panic!("no pipe")
        };
        pair.nodes[BROKER]
            .write_message(keep, b"still", vec![])
            .unwrap();
        run_doubling(&mut pair);
        assert_eq!(pair.read(BROKER, back), b"still", "{profile:?}");
        assert!(
            duplicated > 0 && acks > 0,
            "{profile:?}: {duplicated} {acks}"
        );
        assert!(pair.errors.is_empty(), "{profile:?}: {:?}", pair.errors);
        assert_eq!(pair.nodes[BROKER].proxy_count(), 0, "{profile:?}");
        assert_eq!(pair.nodes[CLIENT].proxy_count(), 0, "{profile:?}");
        for port in [keep, back] {
            pair.nodes[BROKER].close_port(port).unwrap();
        }
        tear_down(pair);
    }
}
