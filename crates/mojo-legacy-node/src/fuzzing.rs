//! Oracle for the cargo-fuzz target `fuzz/fuzz_targets/legacy_node_frames.rs`
//! (and for the unit test that runs it on generated seeds under stable).
//!
//! It drives one [`LegacyNode`] with arbitrary incoming frames from one
//! peer and checks the node's contract:
//!
//! * nothing panics; bad input only ever produces a [`NodeError`], after
//!   which the peer is gone (the oracle links it again and carries on);
//! * every frame the node emits is one whole valid channel frame whose
//!   `num_handles` equals the fds that come with it;
//! * once the peer is lost and every port closed, no port, proxy, queued
//!   message or fd is left.
//!
//! Input layout: byte 0 picks the peer's role (bit 0: client or broker),
//! the profile (bit 1: libchrome or desktop) and whether the frames come
//! over an isolated connection instead (bit 2, spec §3.7: the node has
//! called `connect_isolated` and the frames go to `handle_isolated_frame`,
//! so the first should be the peer's `ACCEPT_PEER`; after an error the
//! oracle connects again); then records of a `u16` LE length, that many
//! frame bytes, and one byte giving the number of fds (at most
//! [`MAX_FDS_PER_FRAME`]) to pass with the frame.

use std::os::fd::OwnedFd;

use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::event::{AttachedPort, PortDescriptor};
use mojo_legacy_wire::node::{AcceptPeer, NodeMessage, RequestPortMerge};
use mojo_legacy_wire::user_message::{
    Dispatcher, MessagePipeState, UserMessage, encode_user_message_frame,
};
use mojo_legacy_wire::{NodeName, Profile, Token};
use mojo_wire_kit::SeededRandom;

use crate::node::{IsolatedId, IsolatedOutput, LegacyNode, NodeError, NodeLimits, PeerRole};
use crate::ports::names;

/// Most fds the oracle passes with one frame.
pub const MAX_FDS_PER_FRAME: usize = 8;

/// The peer the frames come from.
pub const PEER: NodeName = names::node_name(0xFEED, 0xF00D);

/// Runs `data` (see the module docs) against a fresh node; `make_fd` makes
/// the fds passed with frames (the fuzz target opens `/dev/null`).
/// Returns how many frames the node refused.
pub fn node_frames(data: &[u8], make_fd: &mut dyn FnMut() -> OwnedFd) -> usize {
    let Some((&mode, rest)) = data.split_first() else {
        return 0;
    };
    let mut refused = 0;
    let role = if mode & 1 == 0 {
        PeerRole::Client
    } else {
        PeerRole::Broker
    };
    let profile = if mode & 2 == 0 {
        Profile::Libchrome
    } else {
        Profile::Desktop
    };
    let limits = NodeLimits {
        max_queued_messages_per_port: 64,
        max_ports_per_peer: 64,
        max_fds_per_peer: 32,
        ..NodeLimits::default()
    };
    let mut node = LegacyNode::with_limits(names::node_name(1, 1), SeededRandom::new(1), limits);
    if mode & 4 != 0 {
        return isolated_frames(node, profile, rest, make_fd);
    }
    link(&mut node, profile, role);
    // Some state for the frames to meet: reserved attachments (broker
    // side), a requested merge (client side), and a connected local pipe.
    let _ = node.reserve_attachment(b"x");
    let _ = node.reserve_attachment(&0u64.to_le_bytes());
    let _ = node.request_port_merge(PEER, &1u64.to_le_bytes());
    let _ = node.create_pipe();
    drain(&mut node);

    for (frame, count) in frame_records(rest) {
        let fds = (0..count).map(|_| make_fd()).collect();
        match node.handle_frame(PEER, frame, fds) {
            Ok(()) => {}
            Err(NodeError::UnknownPeer { .. }) => unreachable!("the peer is linked"),
            Err(_) => {
                refused += 1;
                assert!(!node.has_peer(PEER), "an error drops the peer");
                link(&mut node, profile, role);
            }
        }
        drain(&mut node);
    }

    node.peer_lost(PEER);
    node.cancel_attachments();
    for _ in 0..4 {
        node.close_all_ports();
        drain(&mut node);
    }
    assert_eq!(node.port_count(), 0, "ports left");
    assert_eq!(node.queued_message_count(), 0, "messages left");
    assert_eq!(node.queued_fd_count(), 0, "fds left");
    assert_eq!(node.pending_transmit_count(), 0, "frames left");
    refused
}

/// Records split into (frame bytes, fd count), as the module docs say.
fn frame_records(mut rest: &[u8]) -> impl Iterator<Item = (&[u8], usize)> {
    std::iter::from_fn(move || {
        if rest.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let (frame, tail) = rest[2..].split_at(len.min(rest.len() - 2));
        let (count, tail) = match tail.split_first() {
            Some((&n, t)) => (usize::from(n) % (MAX_FDS_PER_FRAME + 1), t),
            None => (0, tail),
        };
        rest = tail;
        Some((frame, count))
    })
}

/// The isolated mode: every frame goes to the node's isolated connection;
/// a refused frame ends that connection (and its peer link, once it is
/// one), and the oracle opens a new one. At the end every connection is
/// lost and nothing may be left.
fn isolated_frames(
    mut node: LegacyNode,
    profile: Profile,
    rest: &[u8],
    make_fd: &mut dyn FnMut() -> OwnedFd,
) -> usize {
    let connect = |node: &mut LegacyNode| -> IsolatedId {
        node.connect_isolated(profile)
            .expect("a fresh isolated connection")
            .0
    };
    let mut id = connect(&mut node);
    let mut ids = vec![id];
    let mut refused = 0;
    drain_isolated(&mut node);
    for (frame, count) in frame_records(rest) {
        let fds = (0..count).map(|_| make_fd()).collect();
        match node.handle_isolated_frame(id, frame, fds) {
            Ok(()) => {}
            Err(NodeError::UnknownIsolatedConnection { .. }) => {
                unreachable!("the connection is open")
            }
            Err(_) => {
                refused += 1;
                assert!(
                    node.isolated_peer(id).is_none_or(|p| !node.has_peer(p)),
                    "an error drops the isolated peer"
                );
                drain_isolated(&mut node);
                id = connect(&mut node);
                ids.push(id);
            }
        }
        drain_isolated(&mut node);
    }
    for id in ids {
        node.isolated_lost(id);
    }
    for _ in 0..4 {
        node.close_all_ports();
        drain_isolated(&mut node);
    }
    assert_eq!(node.isolated_connection_count(), 0, "connections left");
    assert_eq!(node.port_count(), 0, "ports left");
    assert_eq!(node.queued_message_count(), 0, "messages left");
    assert_eq!(node.queued_fd_count(), 0, "fds left");
    assert_eq!(node.pending_transmit_count(), 0, "frames left");
    refused
}

/// Takes every output of the isolated connections (and of any other link),
/// checking each frame.
fn drain_isolated(node: &mut LegacyNode) {
    while let Some(out) = node.poll_isolated() {
        if let IsolatedOutput::Transmit { transmit, .. } = out {
            let frame = Frame::decode_whole(&transmit.bytes).expect("whole frames");
            assert_eq!(usize::from(frame.header.num_handles()), transmit.fds.len());
            node.recycle(transmit.bytes);
        }
    }
    while let Some(t) = node.poll_transmit() {
        let frame = Frame::decode_whole(&t.bytes).expect("the node emits whole frames");
        assert_eq!(usize::from(frame.header.num_handles()), t.fds.len());
        node.recycle(t.bytes);
    }
    while node.poll_event().is_some() {}
}

fn link(node: &mut LegacyNode, profile: Profile, role: PeerRole) {
    assert!(node.add_peer(PEER, profile, role).is_ok());
}

/// Takes every output, checking each frame.
fn drain(node: &mut LegacyNode) {
    while let Some(t) = node.poll_transmit() {
        assert_eq!(t.peer, PEER);
        let frame = Frame::decode_whole(&t.bytes).expect("the node emits whole frames");
        assert_eq!(usize::from(frame.header.num_handles()), t.fds.len());
        node.recycle(t.bytes);
    }
    while node.poll_event().is_some() {}
}

/// The seed inputs of the fuzz target, by file name: the same on every call
/// (`cargo xtask corpus` writes them to `fuzz/corpus/legacy_node_frames/`).
#[doc(hidden)]
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("request_port_merge", merge_seed()),
        ("user_message_with_port_and_fd", user_message_seed()),
        ("isolated_accept_peer", isolated_seed()),
    ]
}

/// An isolated connection: the peer's `ACCEPT_PEER`, then a user message
/// to the port it named (whichever side merges, the frames are valid).
fn isolated_seed() -> Vec<u8> {
    let mut accept = Vec::new();
    NodeMessage::AcceptPeer(AcceptPeer {
        token: Token::new(3, 4),
        peer_name: PEER,
        port_name: names::port_name(u64::MAX, u64::MAX),
        trailing: &[],
    })
    .encode_frame(Profile::Libchrome, 0, &mut accept)
    .expect("a valid frame");
    let mut seed = vec![4u8];
    record(&mut seed, &accept, 0);
    seed
}

fn record(out: &mut Vec<u8>, frame: &[u8], fds: u8) {
    out.extend_from_slice(&(frame.len() as u16).to_le_bytes());
    out.extend_from_slice(frame);
    out.push(fds);
}

/// A client's merge request for attachment "x" (peer as client).
fn merge_seed() -> Vec<u8> {
    let mut merge = Vec::new();
    NodeMessage::RequestPortMerge(RequestPortMerge {
        connector_port_name: names::port_name(5, 5),
        token: b"x",
    })
    .encode_frame(Profile::Libchrome, 0, &mut merge)
    .expect("a valid frame");
    let mut seed = vec![0u8];
    record(&mut seed, &merge, 0);
    seed
}

/// A user message carrying a port and an fd (peer as broker).
fn user_message_seed() -> Vec<u8> {
    let descriptor = PortDescriptor {
        peer_node_name: PEER,
        peer_port_name: names::port_name(7, 7),
        referring_node_name: PEER,
        referring_port_name: names::port_name(8, 8),
        next_sequence_num_to_send: 1,
        next_sequence_num_to_receive: 1,
        last_sequence_num_to_receive: 0,
        peer_closed: false,
    };
    let message = UserMessage {
        dispatchers: vec![
            Dispatcher::MessagePipe(MessagePipeState::default()),
            Dispatcher::PlatformHandle,
        ],
        payload: b"payload",
    };
    let mut frame = Vec::new();
    encode_user_message_frame(
        &mut frame,
        Profile::Libchrome,
        names::port_name(9, 9),
        None,
        1,
        &[AttachedPort {
            descriptor,
            name: names::port_name(10, 10),
        }],
        &message,
    )
    .expect("a valid frame");
    let mut seed = vec![1u8];
    record(&mut seed, &frame, 1);
    seed
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    fn dev_null() -> OwnedFd {
        OwnedFd::from(File::open("/dev/null").unwrap())
    }

    /// The seeds, then each mutated at every byte.
    #[test]
    fn oracle_holds_on_mutated_seeds() {
        for (_, seed) in seeds() {
            assert_eq!(node_frames(&seed, &mut dev_null), 0, "a seed is refused");
            for at in 1..seed.len() {
                for flip in [1u8, 0x80] {
                    let mut input = seed.clone();
                    input[at] ^= flip;
                    node_frames(&input, &mut dev_null);
                }
            }
        }
    }

    #[test]
    fn oracle_holds_on_arbitrary_bytes() {
        let mut rng = SeededRandom::new(5);
        for _ in 0..200 {
            let mut input = vec![0u8; 96];
            mojo_wire_kit::RandomSource::fill(&mut rng, &mut input);
            node_frames(&input, &mut dev_null);
        }
    }
}
