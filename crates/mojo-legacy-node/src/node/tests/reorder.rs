//! Frame-reorder faults: frames on one link delivered in another order than
//! sent, including frames for the same port (which the simulator's
//! reordering never swaps). The ports layer delivers user messages in
//! sequence order whatever the arrival order (§4.6.1, §4.10 rule 4); a
//! closure that overtakes the messages it counts waits for them (§4.6.5,
//! rule 6); an event for an unknown port is ignored (§6.2); a duplicated
//! sequence number is dropped and reported, the link staying up (§6.3).
//! Every case ends with nothing left and every fd closed.

use mojo_legacy_wire::Profile;
use mojo_legacy_wire::user_message::{UserMessage, encode_user_message_frame};
use proptest::prelude::*;

use super::faults::tear_down;
use super::sim::{BROKER, CLIENT, Frame, Pair, Probe, probed_fd};
use crate::node::{Handle, NodeEvent, PortRef};
use crate::ports::{Error as PortsError, names};

/// Messages the broker writes before it closes its end.
const MESSAGES: usize = 5;
/// The message (0-based) that carries a pipe end and an fd.
const CARRIER: usize = 2;

/// A connected attachment, and the frames the broker sent to the client
/// on it, not yet delivered: `MESSAGES` user messages (the `CARRIER`-th
/// with a pipe end and an fd), then the closure of the broker's end.
struct Burst {
    pair: Pair,
    frames: Vec<Frame>,
    p: PortRef,
    keep: PortRef,
    probe: Probe,
}

fn burst(profile: Profile) -> Burst {
    let mut pair = Pair::new(profile);
    let a = pair.nodes[BROKER].reserve_attachment(b"r").unwrap();
    let broker = pair.name(BROKER);
    let p = pair.nodes[CLIENT].request_port_merge(broker, b"r").unwrap();
    pair.run_clean();
    let (keep, give) = pair.nodes[BROKER].create_pipe().unwrap();
    let (fd, probe) = probed_fd();
    let mut extra = Some(vec![Handle::MessagePipe(give), Handle::PlatformHandle(fd)]);
    for i in 0..MESSAGES {
        let handles = if i == CARRIER {
            extra.take().unwrap()
        } else {
            vec![]
        };
        pair.nodes[BROKER]
            .write_message(a, &[i as u8], handles)
            .unwrap();
    }
    pair.nodes[BROKER].close_port(a).unwrap();
    pair.collect();
    let frames: Vec<Frame> = pair.in_flight.drain(..).collect();
    assert_eq!(frames.len(), MESSAGES + 1, "messages and the closure");
    assert!(frames.iter().all(|f| f.to == CLIENT));
    Burst {
        pair,
        frames,
        p,
        keep,
        probe,
    }
}

/// A user message for a port the client never had (compact header).
fn frame_for_unknown_port(profile: Profile) -> Frame {
    let mut bytes = Vec::new();
    encode_user_message_frame(
        &mut bytes,
        profile,
        names::port_name(0xdead, 0xbeef),
        None,
        1,
        &[],
        &UserMessage::plain(b"nobody"),
    )
    .unwrap();
    Frame {
        to: CLIENT,
        bytes,
        fds: vec![],
    }
}

/// Delivers the frames of `b` to the client in `order` (indices into the
/// frames; an index past them is the unknown-port frame, a repeated index
/// a duplicate of that frame, with fresh fds as a replayed frame would
/// bring), then checks that the
/// client reads every message once, in sequence order, the carried pipe
/// and fd among them, and then sees the closure.
fn deliver_in(mut b: Burst, order: &[usize], profile: Profile) {
    let broker = b.pair.name(BROKER);
    let mut frames: Vec<Option<Frame>> = b.frames.drain(..).map(Some).collect();
    let copies: Vec<(Vec<u8>, usize)> = frames
        .iter()
        .map(|f| f.as_ref().map(|f| (f.bytes.clone(), f.fds.len())).unwrap())
        .collect();
    // The fds that came with duplicates: each must be closed.
    let mut duplicate_probes = Vec::new();
    let mut duplicates = 0;
    for &i in order {
        let (bytes, fds) = if i >= copies.len() {
            let f = frame_for_unknown_port(profile);
            (f.bytes, f.fds)
        } else if let Some(f) = frames[i].take() {
            (f.bytes, f.fds)
        } else {
            duplicates += 1;
            let (bytes, n) = &copies[i];
            let fds = (0..*n)
                .map(|_| {
                    let (fd, probe) = probed_fd();
                    duplicate_probes.push(probe);
                    fd
                })
                .collect();
            (bytes.clone(), fds)
        };
        b.pair.nodes[CLIENT]
            .handle_frame(broker, &bytes, fds)
            .unwrap_or_else(|e| panic!("order {order:?}: {e:?}"));
        b.pair.collect();
    }
    assert!(frames.iter().all(Option::is_none), "every frame delivered");
    b.pair.run_clean();
    assert!(b.pair.nodes[CLIENT].has_peer(broker), "the link stays up");
    let events = b.pair.take_events(CLIENT);
    let dropped = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                NodeEvent::EventDropped {
                    error: PortsError::DuplicateSequenceNum { .. }
                        | PortsError::StaleSequenceNum { .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(dropped, duplicates, "order {order:?}: {events:?}");
    let mut received = None;
    for i in 0..MESSAGES {
        let (bytes, mut handles) = b.pair.nodes[CLIENT]
            .read_message(b.p)
            .unwrap()
            .unwrap_or_else(|| panic!("order {order:?}: message {i} missing"));
        assert_eq!(bytes, [i as u8], "order {order:?}");
        if i == CARRIER {
            assert!(matches!(handles.pop(), Some(Handle::PlatformHandle(_))));
            let Some(Handle::MessagePipe(pipe)) = handles.pop() else {
                panic!("order {order:?}: no pipe end");
            };
            received = Some(pipe);
        }
        assert!(handles.is_empty());
    }
    assert!(
        b.pair.nodes[CLIENT].read_message(b.p).is_err(),
        "order {order:?}: the closure comes after the last message"
    );
    // The carried pipe end works.
    let received = received.unwrap();
    b.pair.nodes[BROKER]
        .write_message(b.keep, b"after", vec![])
        .unwrap();
    b.pair.run_clean();
    assert_eq!(b.pair.read(CLIENT, received), b"after");
    assert!(b.probe.is_closed(), "the carried fd was read and dropped");
    assert!(
        duplicate_probes.iter().all(Probe::is_closed),
        "duplicates' fds closed"
    );
    tear_down(b.pair);
}

/// Every permutation of `0..n` (Heap's algorithm).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn heap(k: usize, a: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if k <= 1 {
            out.push(a.clone());
            return;
        }
        for i in 0..k - 1 {
            heap(k - 1, a, out);
            if k % 2 == 0 {
                a.swap(i, k - 1);
            } else {
                a.swap(0, k - 1);
            }
        }
        heap(k - 1, a, out);
    }
    let mut out = Vec::new();
    heap(n, &mut (0..n).collect(), &mut out);
    out
}

/// All 720 orders of the five messages and the closure, for one port.
#[test]
fn one_ports_frames_in_every_order_are_delivered_in_sequence() {
    let orders = permutations(MESSAGES + 1);
    assert_eq!(orders.len(), 720);
    for order in orders {
        deliver_in(burst(Profile::Libchrome), &order, Profile::Libchrome);
    }
}

/// A few orders in the desktop profile (extended headers, sender
/// verification): reversed, closure first, carrier last.
#[test]
fn reordered_frames_in_the_desktop_profile() {
    for order in [
        vec![5, 4, 3, 2, 1, 0],
        vec![5, 0, 1, 2, 3, 4],
        vec![0, 1, 3, 4, 5, 2],
    ] {
        deliver_in(burst(Profile::Desktop), &order, Profile::Desktop);
    }
}

/// An event for an unknown port and a duplicated message, mixed in:
/// ignored and dropped-and-reported respectively; the rest is unchanged.
#[test]
fn unknown_ports_and_duplicates_among_reordered_frames() {
    let unknown = MESSAGES + 1;
    for order in [
        vec![unknown, 3, 1, 1, 0, 5, 2, 4],
        vec![0, 1, 2, 3, 4, 5, 2, 0],
        vec![5, 2, 4, 2, 3, 1, 0],
        vec![4, 4, 3, 2, unknown, 1, 0, 5],
        vec![5, 0, 0, 0, 1, 2, 3, 4, unknown],
    ] {
        deliver_in(burst(Profile::Libchrome), &order, Profile::Libchrome);
    }
}

/// Arrival order for the proptest: a shuffle of the burst, the unknown
/// port's frame, and up to two duplicates.
fn arrival() -> impl Strategy<Value = Vec<usize>> {
    (proptest::collection::vec(0..MESSAGES, 0..=2), any::<bool>()).prop_flat_map(
        |(dups, unknown)| {
            let mut v: Vec<usize> = (0..=MESSAGES).collect();
            v.extend(dups);
            if unknown {
                v.push(MESSAGES + 1);
            }
            Just(v).prop_shuffle()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn shuffled_frames_with_duplicates_and_strays(order in arrival()) {
        // A duplicate placed before its original is the original (the
        // later copy is the duplicate): `deliver_in` counts by position.
        deliver_in(burst(Profile::Libchrome), &order, Profile::Libchrome);
    }
}

/// Port events out of order too: every batch of frames in flight, both
/// ways, is delivered reversed while a pipe end moves to the client and
/// back and messages flow on it. PortAccepted, ObserveProxy,
/// ObserveProxyAck, closures and user messages for the same ports then
/// arrive in other orders than sent; the pipes still deliver in order and
/// nothing is left.
#[test]
fn port_events_delivered_in_reversed_batches_still_converge() {
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let mut pair = Pair::new(profile);
        let a = pair.nodes[BROKER].reserve_attachment(b"r").unwrap();
        let broker = pair.name(BROKER);
        let p = pair.nodes[CLIENT].request_port_merge(broker, b"r").unwrap();
        let run_reversed = |pair: &mut Pair| {
            for _ in 0..10_000 {
                pair.collect();
                if pair.in_flight.is_empty() {
                    return;
                }
                let mut batch: Vec<Frame> = pair.in_flight.drain(..).collect();
                batch.reverse();
                for f in batch {
                    let from = pair.name(1 - f.to);
                    if let Err(e) = pair.nodes[f.to].handle_frame(from, &f.bytes, f.fds) {
                        panic!("{profile:?}: {e:?}");
                    }
                }
            }
            panic!("never idle");
        };
        run_reversed(&mut pair);
        let (keep, give) = pair.nodes[BROKER].create_pipe().unwrap();
        for i in 0..3u8 {
            pair.nodes[BROKER]
                .write_message(keep, &[i], vec![])
                .unwrap();
        }
        pair.nodes[BROKER]
            .write_message(a, b"pipe", vec![Handle::MessagePipe(give)])
            .unwrap();
        for i in 3..6u8 {
            pair.nodes[BROKER]
                .write_message(keep, &[i], vec![])
                .unwrap();
        }
        run_reversed(&mut pair);
        let (_, mut h) = pair.nodes[CLIENT].read_message(p).unwrap().unwrap();
        let Some(Handle::MessagePipe(got)) = h.pop() else {
            panic!("no pipe")
        };
        for i in 0..6u8 {
            assert_eq!(pair.read(CLIENT, got), [i], "{profile:?}");
        }
        // Back to the broker, with messages behind it.
        pair.nodes[CLIENT]
            .write_message(p, b"back", vec![Handle::MessagePipe(got)])
            .unwrap();
        for i in 6..9u8 {
            pair.nodes[BROKER]
                .write_message(keep, &[i], vec![])
                .unwrap();
        }
        run_reversed(&mut pair);
        let (_, mut h) = pair.nodes[BROKER].read_message(a).unwrap().unwrap();
        let Some(Handle::MessagePipe(back)) = h.pop() else {
            panic!("no pipe")
        };
        for i in 6..9u8 {
            assert_eq!(pair.read(BROKER, back), [i], "{profile:?}");
        }
        pair.nodes[BROKER].close_port(keep).unwrap();
        pair.nodes[BROKER].close_port(back).unwrap();
        pair.nodes[BROKER].close_port(a).unwrap();
        pair.nodes[CLIENT].close_port(p).unwrap();
        run_reversed(&mut pair);
        assert!(pair.errors.is_empty());
        pair.assert_clean();
    }
}
