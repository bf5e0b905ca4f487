//! Real traffic through the node: for every legacy transcript under
//! `shared/vectors`, the client's NodeChannel frames (after its handshake)
//! are fed to a `LegacyNode` broker named as the recorded broker, and the
//! broker's frames to a `LegacyNode` client named as the recorded client,
//! each with as many real fds as the frame declares. Port names differ from
//! the recorded run, so most events meet unknown ports and are dropped as
//! races are; what this proves is that every real frame passes the whole
//! inbound path (framing, NodeChannel, events, user messages, dispatchers,
//! fd accounting) without a `NodeError`, that every frame the node emits in
//! answer is whole, that every merge request is answered as the recorded
//! broker answered it (names aside), and that no fd or port is left
//! afterwards.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use mojo_legacy_node::node::{LegacyNode, PeerRole, PortRef};
use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::event::{Event as WireEvent, EventData, PortDescriptor};
use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame, NodeMessage};
use mojo_legacy_wire::{Deframer, NodeName, PortName, Profile};
use mojo_transcript::testing::vectors;
use mojo_transcript::{
    Direction, LinkProtocol, StreamKey, Transcript, VectorProfile, vector_files,
};
use mojo_wire_kit::SeededRandom;

fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut d = Deframer::new();
    d.push(bytes).unwrap();
    let mut out = Vec::new();
    while let Some(f) = d.next_frame().unwrap() {
        out.push(f.bytes.to_vec());
    }
    out
}

fn message(frame: &[u8]) -> Option<NodeMessage<'_>> {
    match NodeFrame::decode(frame).ok()?.0.content {
        NodeChannelContent::Message(m) => Some(m),
        NodeChannelContent::Control(_) => None,
    }
}

/// Real fds (socket ends) and their probes; a probe reads EOF once every
/// copy of its end is closed.
fn fds(n: usize, probes: &mut Vec<UnixStream>) -> Vec<OwnedFd> {
    (0..n)
        .map(|_| {
            let (a, b) = UnixStream::pair().unwrap();
            b.set_nonblocking(true).unwrap();
            probes.push(b);
            OwnedFd::from(a)
        })
        .collect()
}

fn all_closed(probes: &[UnixStream]) -> bool {
    use std::io::Read;
    probes
        .iter()
        .all(|mut p| matches!(p.read(&mut [0u8; 1]), Ok(0)))
}

/// Takes every output; returns the frames, each checked whole.
fn drain(node: &mut LegacyNode) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(t) = node.poll_transmit() {
        let f = Frame::decode_whole(&t.bytes).expect("whole frames");
        assert_eq!(usize::from(f.header.num_handles()), t.fds.len());
        out.push(t.bytes);
    }
    while node.poll_event().is_some() {}
    out
}

/// The MergePort event a frame carries: (connector port, descriptor).
fn merge_port(frame: &[u8], profile: Profile) -> Option<(PortName, PortDescriptor)> {
    let Some(NodeMessage::EventMessage(body)) = message(frame) else {
        return None;
    };
    let event = WireEvent::decode(body, profile.event_header_form()).ok()?;
    match event.data {
        EventData::MergePort(m) => Some((event.port_name, m.new_port_descriptor)),
        _ => None,
    }
}

/// A descriptor without its names (which differ between runs).
fn shape(d: &PortDescriptor) -> (u64, u64, u64, bool) {
    (
        d.next_sequence_num_to_send,
        d.next_sequence_num_to_receive,
        d.last_sequence_num_to_receive,
        d.peer_closed,
    )
}

struct Fed {
    /// The attachment ends the broker reserved on the way.
    reserved: Vec<PortRef>,
    /// For each REQUEST_PORT_MERGE: its connector and the MergePort
    /// descriptor the node answered with at once.
    merges: Vec<(PortName, PortDescriptor)>,
}

/// Feeds `frames` from `peer` to `node`.
fn feed(
    node: &mut LegacyNode,
    peer: NodeName,
    profile: Profile,
    frames: &[Vec<u8>],
    probes: &mut Vec<UnixStream>,
) -> Fed {
    let mut fed = Fed {
        reserved: Vec::new(),
        merges: Vec::new(),
    };
    for (i, f) in frames.iter().enumerate() {
        let merge = match message(f) {
            Some(NodeMessage::RequestPortMerge(r)) => {
                if let Ok(a) = node.reserve_attachment(r.token) {
                    fed.reserved.push(a);
                }
                Some(r.connector_port_name)
            }
            _ => None,
        };
        let n = usize::from(Frame::decode_whole(f).unwrap().header.num_handles());
        node.handle_frame(peer, f, fds(n, probes))
            .unwrap_or_else(|e| panic!("frame {i}: {e:?}"));
        let out = drain(node);
        if let Some(connector) = merge {
            // Answered at once with exactly one MergePort to the connector.
            let answers: Vec<_> = out.iter().filter_map(|f| merge_port(f, profile)).collect();
            assert_eq!(answers.len(), 1, "frame {i}: {} answers", answers.len());
            assert_eq!(answers[0].0, connector);
            fed.merges.push(answers[0]);
        }
    }
    fed
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn recorded_legacy_frames_pass_the_whole_inbound_path() {
    let dir = vectors();
    let mut checked = 0;
    let mut merges = 0;
    for file in vector_files(&dir).unwrap() {
        if file.protocol != LinkProtocol::Legacy {
            continue;
        }
        let profile = match file.profile {
            VectorProfile::Libchrome => Profile::Libchrome,
            VectorProfile::Desktop => Profile::Desktop,
        };
        let streams = Transcript::from_path(&file.path).unwrap().streams();
        let stream = |direction| {
            streams
                .get(&StreamKey {
                    channel: 1,
                    direction,
                })
                .map(|s| frames(&s.bytes))
        };
        let (Some(from_broker), Some(from_client)) =
            (stream(Direction::AToB), stream(Direction::BToA))
        else {
            continue;
        };
        let Some(NodeMessage::AcceptInvitee(invitee)) =
            from_broker.first().and_then(|f| message(f))
        else {
            continue;
        };
        let Some(NodeMessage::AcceptInvitation(invitation)) =
            from_client.first().and_then(|f| message(f))
        else {
            continue;
        };
        let (broker_name, client_name) = (invitee.inviter_name, invitation.invitee_name);
        let mut probes = Vec::new();

        // The client's frames, after ACCEPT_INVITATION, into our broker.
        let mut broker = LegacyNode::new(broker_name, SeededRandom::new(1));
        broker
            .add_peer(client_name, profile, PeerRole::Client)
            .unwrap();
        let fed = feed(
            &mut broker,
            client_name,
            profile,
            &from_client[1..],
            &mut probes,
        );
        // The recorded broker answered each merge the same way, names
        // aside: same connector order, same descriptor numbers and flags,
        // naming itself as peer and referrer.
        let recorded: Vec<_> = from_broker
            .iter()
            .filter_map(|f| merge_port(f, profile))
            .collect();
        assert_eq!(recorded.len(), fed.merges.len(), "{}", file.path.display());
        for ((rc, rd), (oc, od)) in recorded.iter().zip(&fed.merges) {
            assert_eq!(rc, oc, "{}", file.path.display());
            assert_eq!(shape(rd), shape(od), "{}", file.path.display());
            assert_eq!(od.peer_node_name, broker_name);
            assert_eq!(od.referring_node_name, broker_name);
            assert_eq!(rd.referring_node_name, broker_name);
        }
        merges += fed.merges.len();
        broker.peer_lost(client_name);
        for a in fed.reserved {
            broker.close_port(a).unwrap();
        }
        drain(&mut broker);
        assert_eq!(broker.port_count(), 0, "{}", file.path.display());
        assert_eq!(broker.queued_fd_count(), 0);

        // The broker's frames, after ACCEPT_INVITEE and
        // ACCEPT_BROKER_CLIENT, into our client.
        let mut client = LegacyNode::new(client_name, SeededRandom::new(2));
        client
            .add_peer(broker_name, profile, PeerRole::Broker)
            .unwrap();
        feed(
            &mut client,
            broker_name,
            profile,
            &from_broker[2..],
            &mut probes,
        );
        client.peer_lost(broker_name);
        drain(&mut client);
        assert_eq!(client.port_count(), 0, "{}", file.path.display());
        assert_eq!(client.queued_fd_count(), 0);

        assert!(all_closed(&probes), "{}", file.path.display());
        checked += 1;
    }
    eprintln!("{checked} transcripts replayed, {merges} merges answered as recorded");
    assert!(checked > 0, "the vectors hold legacy transcripts");
}
