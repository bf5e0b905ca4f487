//! Replay of real peers against our nodes, names substituted. First test: the
//! recorded client's NodeChannel frames are fed to a `LegacyNode` broker
//! named as the recorded broker. Each `MergePort` our broker answers is
//! aligned with the recorded broker's answer to the same connector, which
//! maps the recorded broker's port names (the merged port, the reserved
//! port, the new client port) to ours; every later client frame has those
//! names replaced before it is fed. Then the ports protocol runs for real:
//! the client's proxies collapse through our broker, its messages arrive
//! on our attachment ends (both profiles), and, in the libchrome profile
//! wherever neither application moved ports, our broker
//! sends the same ports-protocol events (ObserveProxy, ObserveProxyAck,
//! PortAccepted, MergePort), in the same order, as the recorded broker did.
//! In every recording (both profiles, moved ports or not) the MergePorts
//! come in the recorded order and every attached port gets exactly one
//! PortAccepted, as from the real peer. What else the real peer sent
//! follows its application (the pipes it made and sent, when it read and
//! closed), which the replay does not play, so it is not compared. The
//! desktop recordings' sender fields are not compared: this node writes
//! "no sender" (see the crate's `node` module).

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use mojo_legacy_node::node::{Handle, LegacyNode, PeerRole, PortRef};
use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::event::{Event as WireEvent, EventData, EventType};
use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame, NodeMessage};
use mojo_legacy_wire::user_message::UserMessage;
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

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn recorded_clients_converge_with_our_broker() {
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
        // and closes them changes the run. (Desktop peers also run sender
        // verification, which this node does not.)
        if !moves_ports(&from_broker, profile)
            && !moves_ports(&from_client, profile)
            && profile == Profile::Libchrome
        {
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
        if profile == Profile::Libchrome {
            assert_eq!(our_accepted, recorded_accepted, "{}", file.path.display());
        }
        broker.peer_lost(client_name);
        broker.close_all_ports();
        while broker.poll_transmit().is_some() {}
        assert_eq!(broker.port_count(), 0, "{}", file.path.display());
        assert_eq!(broker.queued_fd_count(), 0);
        replayed += 1;
    }
    eprintln!(
        "{replayed} clients replayed, {exact} with the recorded ports protocol; \
         {messages} messages read, {sub_pipes} pipe ends received"
    );
    assert!(
        replayed > 0 && exact > 0,
        "the vectors hold replayable recordings"
    );
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
        if !moves_ports(&from_broker, profile)
            && !moves_ports(&from_client, profile)
            && profile == Profile::Libchrome
        {
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
    assert!(
        replayed > 0 && exact > 0,
        "the vectors hold replayable recordings"
    );
}
