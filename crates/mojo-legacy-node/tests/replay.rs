//! Replay of real peers against our nodes, names substituted, over all 28
//! legacy-side recordings of `shared/vectors` (cros/ and desktop/: the
//! twelve `*-proxy_client` and the two `direct_legacy*` each; the count is
//! asserted, so none is skipped silently).
//!
//! First test: the recorded client's NodeChannel frames are fed to a
//! `LegacyNode` broker named as the recorded broker. Each `MergePort` our
//! broker answers is aligned with the recorded broker's answer to the same
//! connector, which maps the recorded broker's port names (the merged port,
//! the reserved port, the new client port) to ours; every later client
//! frame has those names replaced before it is fed. Then the ports protocol
//! runs for real: the client's proxies collapse through our broker and its
//! messages arrive on our attachment ends. The second test is the mirror
//! image (the recorded broker fed to our client).
//!
//! What is compared, in the role of the recorded side:
//! - every recording, both roles: the NodeChannel message types after the
//!   handshake, in order (the handshake itself is compared byte for byte by
//!   mojo-invitation's `legacy_replay`); the events owed to the peer's own
//!   traffic (MergePort, PortAccepted, ObserveProxyAck), per type and in
//!   order, and the ports they went to; the MergePorts in the recorded
//!   order; one PortAccepted per attached port; every message the peer sent
//!   to a pipe we hold arrives;
//! - except the broker's ObserveProxyAcks in the four recordings where the
//!   client sends back a pipe end whose peer is on the broker
//!   (pipe_roundtrip and direct_legacy_c2h, both profiles): that pipe was
//!   made by the real broker's application, which the replay does not play,
//!   so the ack for the client's proxy of it is not ours to send; there ours
//!   must be among the recorded ones (same ports);
//! - the twelve recordings where neither application moves a port
//!   (connect_only, multi_attach, platform_handle(_c2h), shmem(_c2h)): the
//!   whole ports protocol, i.e. every event type but UserMessage and
//!   ObserveClosure, per type and in order, and in the desktop profile each
//!   event's header fields (destination, sender port and number).
//!
//! What is not compared, and why: UserMessage and ObserveClosure events
//! (what the applications write and when they close: the replay does not
//! play the recorded application, so none of its writes or closes happen;
//! their order against the protocol traffic is also timing, i.e. when each
//! process ran); and, where an application moves pipes (the other sixteen
//! recordings), ObserveProxy and UpdatePreviousPeer, which the proxies of
//! the application's moved pipes send (which pipes it made, and when it
//! read them, decide how many there are and when they collapse).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use mojo_legacy_node::node::{Handle, LegacyNode, PeerRole, PortRef};
use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::event::{Event as WireEvent, EventData, EventType};
use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame, NodeMessage, NodeMessageType};
use mojo_legacy_wire::user_message::UserMessage;
use mojo_legacy_wire::{Deframer, NodeName, PortName, Profile};
use mojo_transcript::testing::vectors;
use mojo_transcript::{
    Direction, LinkProtocol, StreamKey, Transcript, VectorProfile, vector_files,
};
use mojo_wire_kit::SeededRandom;

/// The legacy-side recordings in `shared/vectors`: per profile (cros/,
/// desktop/), the twelve `*-proxy_client` and the two `direct_legacy*`.
const LEGACY_RECORDINGS: usize = 28;
/// Those where neither application moves a port: connect_only,
/// multi_attach, platform_handle(_c2h), shmem(_c2h), in both profiles.
const EXACT_RECORDINGS: usize = 12;

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

fn event(frame: &[u8], profile: Profile) -> Option<WireEvent<'_>> {
    let Some(NodeMessage::EventMessage(body)) = message(frame) else {
        return None;
    };
    WireEvent::decode(body, profile.event_header_form()).ok()
}

fn fds(n: usize) -> Vec<OwnedFd> {
    (0..n)
        .map(|_| OwnedFd::from(UnixStream::pair().unwrap().0))
        .collect()
}

/// Replaces every 16-byte occurrence of a mapped name.
fn substitute(frame: &mut [u8], names: &BTreeMap<[u8; 16], [u8; 16]>) {
    if frame.len() < 16 {
        return;
    }
    let mut i = 0;
    while i + 16 <= frame.len() {
        let window: [u8; 16] = frame[i..i + 16].try_into().unwrap();
        if let Some(to) = names.get(&window) {
            frame[i..i + 16].copy_from_slice(to);
            i += 16;
        } else {
            i += 1;
        }
    }
}

/// Reads every message on `ends` and on every pipe end that arrives in
/// them, recursively: the payloads (sorted) and the names of the pipe ends.
fn read_all(node: &mut LegacyNode, ends: &[PortRef]) -> (Vec<Vec<u8>>, Vec<PortName>) {
    let mut queue: Vec<PortRef> = ends.to_vec();
    let mut held = Vec::new();
    let mut read = Vec::new();
    while let Some(port) = queue.pop() {
        while let Ok(Some((bytes, handles))) = node.read_message(port) {
            read.push(bytes);
            for h in handles {
                if let Handle::MessagePipe(p) = h {
                    held.push(p.name());
                    queue.push(p);
                }
            }
        }
    }
    read.sort();
    (read, held)
}

/// The payloads (sorted) of the user messages in `frames` addressed, once
/// `names` are substituted, to one of `ports`.
fn payloads_to(
    frames: &[Vec<u8>],
    names: &BTreeMap<[u8; 16], [u8; 16]>,
    ports: &[PortName],
    profile: Profile,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in frames {
        let mut f = f.clone();
        substitute(&mut f, names);
        if let Some(e) = event(&f, profile) {
            if let EventData::UserMessage(m) = &e.data {
                if ports.contains(&e.port_name) {
                    out.push(UserMessage::decode(m.message).unwrap().payload.to_vec());
                }
            }
        }
    }
    out.sort();
    out
}

/// Whether any user message in `frames` carries ports.
fn moves_ports(frames: &[Vec<u8>], profile: Profile) -> bool {
    frames.iter().any(|f| {
        event(f, profile)
            .is_some_and(|e| matches!(&e.data, EventData::UserMessage(m) if !m.ports.is_empty()))
    })
}

fn protocol_types(frames: &[Vec<u8>], profile: Profile) -> BTreeMap<EventType, usize> {
    let mut counts = BTreeMap::new();
    for f in frames {
        if let Some(e) = event(f, profile) {
            let t = e.event_type();
            if matches!(
                t,
                EventType::PORT_ACCEPTED | EventType::OBSERVE_PROXY | EventType::OBSERVE_PROXY_ACK
            ) {
                *counts.entry(t).or_default() += 1;
            }
        }
    }
    counts
}

/// The ports-protocol events in `frames`, in order: everything but user
/// messages and closures, whose timing is the applications' (when each one
/// writes, reads and closes), not the protocol's.
fn protocol_sequence(frames: &[Vec<u8>], profile: Profile) -> Vec<EventType> {
    frames
        .iter()
        .filter_map(|f| event(f, profile))
        .map(|e| e.event_type())
        .filter(|t| !matches!(*t, EventType::USER_MESSAGE | EventType::OBSERVE_CLOSURE))
        .collect()
}

/// An event's type, destination and sender fields (port, number).
type EventHeader = (EventType, PortName, Option<(PortName, u64)>);

/// The header fields of the ports-protocol events in `frames` (as in
/// [`protocol_sequence`]): type, destination, sending port and control
/// sequence number. User messages share a port's control counter (§4.9),
/// and when the applications write them is theirs, so a number here counts
/// only the other events: it is lowered by the user messages the same port
/// sent to the same destination with a lower number.
fn protocol_headers(frames: &[Vec<u8>], profile: Profile) -> Vec<EventHeader> {
    let events: Vec<WireEvent<'_>> = frames.iter().filter_map(|f| event(f, profile)).collect();
    let user_numbers: Vec<(PortName, PortName, u64)> = events
        .iter()
        .filter(|e| e.event_type() == EventType::USER_MESSAGE)
        .filter_map(|e| {
            e.sender
                .map(|s| (s.from_port, e.port_name, s.control_sequence_num))
        })
        .collect();
    events
        .iter()
        .filter(|e| {
            !matches!(
                e.event_type(),
                EventType::USER_MESSAGE | EventType::OBSERVE_CLOSURE
            )
        })
        .map(|e| {
            let sender = e.sender.map(|s| {
                let earlier = user_numbers
                    .iter()
                    .filter(|(from, to, n)| {
                        *from == s.from_port && *to == e.port_name && *n < s.control_sequence_num
                    })
                    .count() as u64;
                let number = if s.control_sequence_num == u64::MAX {
                    u64::MAX
                } else {
                    s.control_sequence_num - earlier
                };
                (s.from_port, number)
            });
            (e.event_type(), e.port_name, sender)
        })
        .collect()
}

/// PortAccepted events in `frames`, and the port descriptors they carry
/// (ports attached to user messages, and each MergePort's new port).
fn accepted_and_attached(frames: &[Vec<u8>], profile: Profile) -> (usize, usize) {
    let (mut accepted, mut attached) = (0, 0);
    for e in frames.iter().filter_map(|f| event(f, profile)) {
        match &e.data {
            EventData::PortAccepted => accepted += 1,
            EventData::UserMessage(m) => attached += m.ports.len(),
            EventData::MergePort(_) => attached += 1,
            _ => {}
        }
    }
    (accepted, attached)
}

/// The NodeChannel message types of `frames` other than `EVENT_MESSAGE`,
/// in order (the events are compared by their own types).
fn node_channel_types(frames: &[Vec<u8>]) -> Vec<NodeMessageType> {
    frames
        .iter()
        .filter_map(|f| message(f))
        .filter(|m| !matches!(m, NodeMessage::EventMessage(_)))
        .map(|m| m.message_type())
        .collect()
}

/// How many events of each type `frames` carry.
fn event_counts(frames: &[Vec<u8>], profile: Profile) -> BTreeMap<EventType, usize> {
    let mut counts = BTreeMap::new();
    for e in frames.iter().filter_map(|f| event(f, profile)) {
        *counts.entry(e.event_type()).or_default() += 1;
    }
    counts
}

/// The events a node owes its peer's own traffic, in the order sent:
/// MergePort (a merge request's answer), PortAccepted (one per attached
/// port) and, with `acks`, ObserveProxyAck (the peer's proxies bypassed).
fn owed_sequence(frames: &[Vec<u8>], profile: Profile, acks: bool) -> Vec<EventType> {
    frames
        .iter()
        .filter_map(|f| event(f, profile))
        .map(|e| e.event_type())
        .filter(|t| {
            matches!(*t, EventType::MERGE_PORT | EventType::PORT_ACCEPTED)
                || (acks && *t == EventType::OBSERVE_PROXY_ACK)
        })
        .collect()
}

/// The destinations of the PortAccepted and ObserveProxyAck events in
/// `frames`, sorted: ports of the peer, named by the peer or, for a
/// merge's new port, by the node (mapped to ours by the replay's name
/// substitution).
fn owed_destinations(frames: &[Vec<u8>], profile: Profile) -> Vec<(EventType, PortName)> {
    let mut out: Vec<(EventType, PortName)> = frames
        .iter()
        .filter_map(|f| event(f, profile))
        .filter(|e| {
            matches!(
                e.event_type(),
                EventType::PORT_ACCEPTED | EventType::OBSERVE_PROXY_ACK
            )
        })
        .map(|e| (e.event_type(), e.port_name))
        .collect();
    out.sort_by_key(|(t, p)| (t.0, p.to_bytes()));
    out
}

/// Whether every element of `sub` (sorted) is in `all` (sorted), with
/// multiplicity.
fn is_sub_multiset<T: PartialEq>(sub: &[T], all: &[T]) -> bool {
    let mut rest: Vec<&T> = all.iter().collect();
    sub.iter().all(|x| match rest.iter().position(|y| *y == x) {
        Some(i) => {
            rest.remove(i);
            true
        }
        None => false,
    })
}

/// Whether a user message in `frames` attaches a port whose peer is on
/// `node` (a pipe end coming back to the node that holds its peer).
fn returns_ports_to(frames: &[Vec<u8>], profile: Profile, node: NodeName) -> bool {
    frames
        .iter()
        .filter_map(|f| event(f, profile))
        .any(|e| match &e.data {
            EventData::UserMessage(m) => {
                m.ports.iter().any(|p| p.descriptor.peer_node_name == node)
            }
            _ => false,
        })
}

/// Event types whose count follows the recorded applications (what they
/// wrote, which pipes they made and moved, when they read and closed),
/// which the replay does not play: user messages, closures, and the
/// ObserveProxy / UpdatePreviousPeer traffic of the proxies their moved
/// pipes leave behind.
const APPLICATION_TYPES: [EventType; 4] = [
    EventType::USER_MESSAGE,
    EventType::OBSERVE_CLOSURE,
    EventType::OBSERVE_PROXY,
    EventType::UPDATE_PREVIOUS_PEER,
];

/// `counts` without the types of [`APPLICATION_TYPES`] (and, unless
/// `acks`, without ObserveProxyAck).
fn owed_counts(mut counts: BTreeMap<EventType, usize>, acks: bool) -> BTreeMap<EventType, usize> {
    counts.retain(|t, _| {
        !APPLICATION_TYPES.contains(t) && (acks || *t != EventType::OBSERVE_PROXY_ACK)
    });
    counts
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn recorded_clients_converge_with_our_broker() {
    let dir = vectors();
    let (mut replayed, mut exact, mut messages, mut sub_pipes) = (0, 0, 0, 0);
    let mut acks_compared = 0;
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
        let (broker_name, client_name): (NodeName, NodeName) =
            (invitee.inviter_name, invitation.invitee_name);
        let recorded_merges: BTreeMap<PortName, (PortName, PortName, PortName)> = from_broker
            .iter()
            .filter_map(|f| {
                let e = event(f, profile)?;
                match e.data {
                    EventData::MergePort(m) => Some((
                        e.port_name,
                        (
                            m.new_port_name,
                            m.new_port_descriptor.peer_port_name,
                            m.new_port_descriptor.referring_port_name,
                        ),
                    )),
                    _ => None,
                }
            })
            .collect();

        let mut broker = LegacyNode::new(broker_name, SeededRandom::new(1));
        broker
            .add_peer(client_name, profile, PeerRole::Client)
            .unwrap();
        let mut names = BTreeMap::new();
        let mut ends: Vec<PortRef> = Vec::new();
        let mut sent = Vec::new();
        // Our broker-side ports of each attachment (the merged and the
        // reserved port): client messages to them end on our ends.
        let mut attachment_ports = Vec::new();
        for (i, f) in from_client[1..].iter().enumerate() {
            let mut f = f.clone();
            substitute(&mut f, &names);
            let connector = match message(&f) {
                Some(NodeMessage::RequestPortMerge(r)) => {
                    ends.push(broker.reserve_attachment(r.token).unwrap());
                    Some(r.connector_port_name)
                }
                _ => None,
            };
            let n = usize::from(Frame::decode_whole(&f).unwrap().header.num_handles());
            broker
                .handle_frame(client_name, &f, fds(n))
                .unwrap_or_else(|e| panic!("{} frame {i}: {e:?}", file.path.display()));
            assert!(broker.has_peer(client_name));
            while let Some(t) = broker.poll_transmit() {
                if let (Some(c), Some(e)) = (connector, event(&t.bytes, profile)) {
                    if let (EventData::MergePort(m), Some(rec)) = (&e.data, recorded_merges.get(&c))
                    {
                        assert_eq!(e.port_name, c);
                        let ours = (
                            m.new_port_name,
                            m.new_port_descriptor.peer_port_name,
                            m.new_port_descriptor.referring_port_name,
                        );
                        for (r, o) in [(rec.0, ours.0), (rec.1, ours.1), (rec.2, ours.2)] {
                            names.insert(r.to_bytes(), o.to_bytes());
                        }
                        attachment_ports.extend([ours.1, ours.2]);
                    }
                }
                sent.push(t.bytes);
            }
            while broker.poll_event().is_some() {}
        }
        // Every user message the client addressed to an attachment's
        // broker-side port, or to a pipe end it sent us, arrives.
        let (read, held) = read_all(&mut broker, &ends);
        messages += read.len();
        sub_pipes += held.len();
        attachment_ports.extend(held);
        let expected = payloads_to(&from_client, &names, &attachment_ports, profile);
        assert_eq!(read, expected, "{}", file.path.display());
        // Where neither application moved ports (the scenario's only pipes
        // are the attachments), the ports protocol the recorded broker ran
        // is exactly ours; with moved pipes, when each application reads
        // and closes them changes the run. In the desktop profile the
        // sequence includes the UpdatePreviousPeer events of sender
        // verification, and each event's header fields must be the recorded
        // ones (names substituted).
        if !moves_ports(&from_broker, profile) && !moves_ports(&from_client, profile) {
            assert_eq!(
                protocol_types(&sent, profile),
                protocol_types(&from_broker, profile),
                "{}",
                file.path.display()
            );
            // Not only as many of each: the same events in the same order
            // (the MergePorts, then the proxies' ObserveProxy and the acks).
            assert_eq!(
                protocol_sequence(&sent, profile),
                protocol_sequence(&from_broker, profile),
                "{}",
                file.path.display()
            );
            if profile == Profile::Desktop {
                let recorded: Vec<Vec<u8>> = from_broker
                    .iter()
                    .map(|f| {
                        let mut f = f.clone();
                        substitute(&mut f, &names);
                        f
                    })
                    .collect();
                assert_eq!(
                    protocol_headers(&sent, profile),
                    protocol_headers(&recorded, profile),
                    "{}",
                    file.path.display()
                );
            }
            exact += 1;
        }
        // Deterministic in every recording, moved ports or not: the MergePorts
        // answer the merge requests one each, in the recorded order, and every
        // port the client attached got exactly one PortAccepted from us, as
        // from the real broker (§4.10 rule 2). The rest of the real broker's
        // output follows its application (the pipes it creates and sends,
        // when it reads and closes them), which this replay does not play.
        let merges = |frames: &[Vec<u8>]| -> Vec<PortName> {
            frames
                .iter()
                .filter_map(|f| event(f, profile))
                .filter(|e| matches!(e.data, EventData::MergePort(_)))
                .map(|e| e.port_name)
                .collect()
        };
        let recorded_merge_order: Vec<PortName> = merges(&from_broker)
            .into_iter()
            .map(|p| {
                let mut b = p.to_bytes();
                substitute(&mut b, &names);
                PortName::from_bytes(b)
            })
            .collect();
        assert_eq!(
            merges(&sent),
            recorded_merge_order,
            "{}",
            file.path.display()
        );
        let (recorded_accepted, _) = accepted_and_attached(&from_broker, profile);
        let (our_accepted, _) = accepted_and_attached(&sent, profile);
        let (_, client_attached) = accepted_and_attached(&from_client, profile);
        assert_eq!(our_accepted, client_attached, "{}", file.path.display());
        assert_eq!(our_accepted, recorded_accepted, "{}", file.path.display());
        // Every recording: the NodeChannel types after the handshake (the
        // handshake itself is compared byte for byte in mojo-invitation's
        // legacy_replay), and the events owed to the client's own traffic,
        // by type and in order. The acks are owed only to the client's
        // proxies of its own pipes; where the client sends back a pipe end
        // whose peer is on the broker (pipe_roundtrip, direct_legacy_c2h),
        // the real broker's application made that pipe, the replay did
        // not, and the ack for the client's proxy of it is the application's.
        assert_eq!(
            node_channel_types(&sent),
            node_channel_types(&from_broker[2..]),
            "{}",
            file.path.display()
        );
        let acks = !returns_ports_to(&from_client, profile, broker_name);
        assert_eq!(
            owed_counts(event_counts(&sent, profile), acks),
            owed_counts(event_counts(&from_broker, profile), acks),
            "{}",
            file.path.display()
        );
        assert_eq!(
            owed_sequence(&sent, profile, acks),
            owed_sequence(&from_broker, profile, acks),
            "{}",
            file.path.display()
        );
        // The same client ports got them; where the acks are the
        // application's, ours are among the recorded ones.
        let recorded: Vec<Vec<u8>> = from_broker
            .iter()
            .map(|f| {
                let mut f = f.clone();
                substitute(&mut f, &names);
                f
            })
            .collect();
        let (ours, recorded) = (
            owed_destinations(&sent, profile),
            owed_destinations(&recorded, profile),
        );
        if acks {
            assert_eq!(ours, recorded, "{}", file.path.display());
            acks_compared += 1;
        } else {
            assert!(is_sub_multiset(&ours, &recorded), "{}", file.path.display());
        }
        broker.peer_lost(client_name);
        broker.close_all_ports();
        while broker.poll_transmit().is_some() {}
        assert_eq!(broker.port_count(), 0, "{}", file.path.display());
        assert_eq!(broker.queued_fd_count(), 0);
        replayed += 1;
    }
    eprintln!(
        "{replayed} clients replayed, {exact} with the recorded ports protocol, \
         {acks_compared} with the recorded acks; \
         {messages} messages read, {sub_pipes} pipe ends received"
    );
    assert_eq!(
        replayed, LEGACY_RECORDINGS,
        "every legacy recording replayed"
    );
    assert_eq!(exact, EXACT_RECORDINGS);
    assert_eq!(acks_compared, LEGACY_RECORDINGS - 4);
}

/// The mirror image: the recorded broker's frames fed to our client, named
/// as the recorded client. Our client asks for the same attachments in the
/// same order, which maps each recorded connector to ours; each
/// ObserveProxy our client sends is aligned with the recorded client's one
/// for the same proxy, which maps the recorded pipe end (P0) to ours. Then
/// every message the broker sent to an attachment end arrives on ours,
/// and, wherever neither application moved ports, our client sends the
/// same ports-protocol events as the recorded one did.
#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn recorded_brokers_converge_with_our_client() {
    let dir = vectors();
    let (mut replayed, mut exact, mut messages, mut sub_pipes) = (0, 0, 0, 0);
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
        // The recorded client's ObserveProxy events: proxy port -> target.
        let recorded_observes: BTreeMap<PortName, PortName> = from_client
            .iter()
            .filter_map(|f| match event(f, profile)?.data {
                EventData::ObserveProxy(o) if o.proxy_node_name == client_name => {
                    Some((o.proxy_port_name, o.proxy_target_port_name))
                }
                _ => None,
            })
            .collect();

        let mut client = LegacyNode::new(client_name, SeededRandom::new(2));
        client
            .add_peer(broker_name, profile, PeerRole::Broker)
            .unwrap();
        let mut names = BTreeMap::new();
        let mut ends = Vec::new();
        let mut end_names = Vec::new();
        let mut sent = Vec::new();
        let take_output = |client: &mut LegacyNode,
                           names: &mut BTreeMap<[u8; 16], [u8; 16]>,
                           sent: &mut Vec<Vec<u8>>| {
            while let Some(t) = client.poll_transmit() {
                if let Some(e) = event(&t.bytes, profile) {
                    if let EventData::ObserveProxy(o) = e.data {
                        if let Some(recorded) = recorded_observes.get(&o.proxy_port_name) {
                            names.insert(recorded.to_bytes(), o.proxy_target_port_name.to_bytes());
                        }
                    }
                }
                sent.push(t.bytes);
            }
            while client.poll_event().is_some() {}
        };
        for f in &from_client {
            if let Some(NodeMessage::RequestPortMerge(r)) = message(f) {
                let end = client.request_port_merge(broker_name, r.token).unwrap();
                let t = client.poll_transmit().expect("the merge request");
                let Some(NodeMessage::RequestPortMerge(ours)) = message(&t.bytes) else {
                    panic!("not a merge request")
                };
                names.insert(
                    r.connector_port_name.to_bytes(),
                    ours.connector_port_name.to_bytes(),
                );
                ends.push(end);
                end_names.extend([end.name(), ours.connector_port_name]);
                sent.push(t.bytes);
            }
        }
        for (i, f) in from_broker[2..].iter().enumerate() {
            let mut f = f.clone();
            substitute(&mut f, &names);
            let n = usize::from(Frame::decode_whole(&f).unwrap().header.num_handles());
            client
                .handle_frame(broker_name, &f, fds(n))
                .unwrap_or_else(|e| panic!("{} frame {i}: {e:?}", file.path.display()));
            take_output(&mut client, &mut names, &mut sent);
        }
        // Messages to an attachment's end, its connector or the port the
        // merge created all end on our end.
        for f in &from_broker {
            if let Some(e) = event(f, profile) {
                if let EventData::MergePort(m) = &e.data {
                    end_names.push(m.new_port_name);
                }
            }
        }
        // ... or to a pipe end it sent us.
        let (read, held) = read_all(&mut client, &ends);
        messages += read.len();
        sub_pipes += held.len();
        end_names.extend(held);
        let expected = payloads_to(&from_broker, &names, &end_names, profile);
        assert_eq!(read, expected, "{}", file.path.display());
        if !moves_ports(&from_broker, profile) && !moves_ports(&from_client, profile) {
            assert_eq!(
                protocol_types(&sent, profile),
                protocol_types(&from_client, profile),
                "{}",
                file.path.display()
            );
            assert_eq!(
                protocol_sequence(&sent, profile),
                protocol_sequence(&from_client, profile),
                "{}",
                file.path.display()
            );
            if profile == Profile::Desktop {
                let recorded: Vec<Vec<u8>> = from_client
                    .iter()
                    .map(|f| {
                        let mut f = f.clone();
                        substitute(&mut f, &names);
                        f
                    })
                    .collect();
                assert_eq!(
                    protocol_headers(&sent, profile),
                    protocol_headers(&recorded, profile),
                    "{}",
                    file.path.display()
                );
            }
            exact += 1;
        }
        // Every descriptor the broker sent (attached ports and merges) got
        // exactly one PortAccepted from our client, as from the real one
        // (whatever the applications did).
        let (our_accepted, _) = accepted_and_attached(&sent, profile);
        let (recorded_accepted, _) = accepted_and_attached(&from_client, profile);
        let (_, broker_attached) = accepted_and_attached(&from_broker, profile);
        assert_eq!(our_accepted, broker_attached, "{}", file.path.display());
        assert_eq!(our_accepted, recorded_accepted, "{}", file.path.display());
        // Every recording: the NodeChannel types (the merge requests, in
        // order; the handshake is compared byte for byte in
        // mojo-invitation's legacy_replay), and the events owed to the
        // broker's traffic (PortAccepted, ObserveProxyAck to the broker's
        // proxies), by type and in order.
        assert_eq!(
            node_channel_types(&sent),
            node_channel_types(&from_client[1..]),
            "{}",
            file.path.display()
        );
        assert_eq!(
            owed_counts(event_counts(&sent, profile), true),
            owed_counts(event_counts(&from_client, profile), true),
            "{}",
            file.path.display()
        );
        assert_eq!(
            owed_sequence(&sent, profile, true),
            owed_sequence(&from_client, profile, true),
            "{}",
            file.path.display()
        );
        assert_eq!(
            owed_destinations(&sent, profile),
            owed_destinations(&from_client, profile),
            "{}",
            file.path.display()
        );
        client.peer_lost(broker_name);
        client.close_all_ports();
        while client.poll_transmit().is_some() {}
        assert_eq!(client.port_count(), 0, "{}", file.path.display());
        assert_eq!(client.queued_fd_count(), 0);
        replayed += 1;
    }
    eprintln!(
        "{replayed} brokers replayed, {exact} with the recorded ports protocol; \
         {messages} messages read, {sub_pipes} pipe ends received"
    );
    assert_eq!(
        replayed, LEGACY_RECORDINGS,
        "every legacy recording replayed"
    );
    assert_eq!(exact, EXACT_RECORDINGS);
}
