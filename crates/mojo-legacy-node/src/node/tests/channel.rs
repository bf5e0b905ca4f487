//! NodeChannel dispatch (spec §3.6, §1.6): what the node answers, ignores
//! or refuses on an established link.

use mojo_legacy_wire::channel::{ControlMessage, UpgradeOffer};
use mojo_legacy_wire::event::{Event as WireEvent, EventData, ObserveProxy};
use mojo_legacy_wire::node::{
    AcceptBrokerClient, AcceptInvitation, AcceptInvitee, Introduction, NodeChannelContent,
    NodeFrame, NodeMessage, NodeMessageType, RequestPortMerge,
};
use mojo_legacy_wire::{NodeName, PortName, Profile, Token};

use super::faults::tear_down;
use super::sim::{BROKER, CLIENT, Pair, probed_fd};
use crate::node::{LegacyNode, NodeError, NodeEvent};
use crate::ports::names;

fn encode(m: NodeMessage<'_>, num_handles: u16) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode_frame(Profile::Libchrome, num_handles, &mut out)
        .unwrap();
    out
}

/// The frames `node` wants to send, decoded by the caller.
fn sent(node: &mut LegacyNode) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| node.poll_transmit())
        .map(|t| {
            assert!(t.fds.is_empty());
            t.bytes
        })
        .collect()
}

#[test]
fn upgrade_offer_is_rejected_and_its_fds_closed() {
    let mut pair = Pair::new(Profile::Libchrome);
    let offer = ControlMessage::UpgradeOffer(UpgradeOffer {
        version: UpgradeOffer::VERSION_EVENTFD,
        num_pages: 4,
        trailing: &[],
    });
    let mut bytes = Vec::new();
    offer.encode_frame(2, &mut bytes).unwrap();
    let (fd1, p1) = probed_fd();
    let (fd2, p2) = probed_fd();
    let client = pair.name(CLIENT);
    pair.nodes[BROKER]
        .handle_frame(client, &bytes, vec![fd1, fd2])
        .unwrap();
    assert!(p1.is_closed() && p2.is_closed());
    let out = sent(&mut pair.nodes[BROKER]);
    assert_eq!(out.len(), 1);
    let (frame, _) = NodeFrame::decode(&out[0]).unwrap();
    assert!(matches!(
        frame.content,
        NodeChannelContent::Control(ControlMessage::UpgradeReject { payload: [] })
    ));
    tear_down(pair);
}

#[test]
fn unknown_node_message_types_are_ignored_and_their_fds_closed() {
    let mut pair = Pair::new(Profile::Libchrome);
    let bytes = encode(
        NodeMessage::Unknown {
            message_type: NodeMessageType(77),
            body: &[1, 2, 3],
        },
        1,
    );
    let (fd, probe) = probed_fd();
    let client = pair.name(CLIENT);
    pair.nodes[BROKER]
        .handle_frame(client, &bytes, vec![fd])
        .unwrap();
    assert!(probe.is_closed());
    assert!(pair.nodes[BROKER].has_peer(client));
    assert!(sent(&mut pair.nodes[BROKER]).is_empty());
    tear_down(pair);
}

#[test]
fn unknown_event_types_are_ignored() {
    let mut pair = Pair::new(Profile::Libchrome);
    let mut body = vec![0u8; 8];
    body[0] = 5; // EVENT_MESSAGE
    let mut event = vec![0u8; 24];
    event[0] = 99;
    body.extend_from_slice(&event);
    let bytes = encode(NodeMessage::EventMessage(&body[8..]), 0);
    let client = pair.name(CLIENT);
    pair.nodes[BROKER]
        .handle_frame(client, &bytes, vec![])
        .unwrap();
    assert!(pair.nodes[BROKER].has_peer(client));
    tear_down(pair);
}

#[test]
fn handshake_messages_on_an_established_link_drop_the_peer() {
    let token = Token::new(5, 6);
    let name = NodeName::new(7, 8);
    let messages = [
        NodeMessage::AcceptInvitee(AcceptInvitee {
            inviter_name: name,
            token,
            capabilities: Some(Default::default()),
            trailing: &[],
        }),
        NodeMessage::AcceptInvitation(AcceptInvitation {
            token,
            invitee_name: name,
            capabilities: Some(Default::default()),
            trailing: &[],
        }),
        NodeMessage::AcceptBrokerClient(AcceptBrokerClient {
            broker_name: name,
            capabilities: None,
            trailing: &[],
        }),
    ];
    for m in messages {
        for to in [BROKER, CLIENT] {
            let mut pair = Pair::new(Profile::Libchrome);
            let from = pair.name(1 - to);
            let r = pair.nodes[to].handle_frame(from, &encode(m, 0), vec![]);
            assert_eq!(
                r,
                Err(NodeError::UnexpectedMessage {
                    message_type: m.message_type()
                })
            );
            assert!(!pair.nodes[to].has_peer(from));
            tear_down(pair);
        }
    }
}

#[test]
fn port_merge_requests_only_come_from_clients() {
    let mut pair = Pair::new(Profile::Libchrome);
    let m = NodeMessage::RequestPortMerge(RequestPortMerge {
        connector_port_name: PortName::new(1, 1),
        token: b"x",
    });
    let broker = pair.name(BROKER);
    let r = pair.nodes[CLIENT].handle_frame(broker, &encode(m, 0), vec![]);
    assert_eq!(
        r,
        Err(NodeError::UnexpectedMessage {
            message_type: NodeMessageType::REQUEST_PORT_MERGE
        })
    );
    tear_down(pair);
}

#[test]
fn introduction_requests_are_answered_unknown() {
    let mut pair = Pair::new(Profile::Libchrome);
    let stranger = names::node_name(99, 99);
    let m = NodeMessage::RequestIntroduction(Introduction {
        name: stranger,
        capabilities: None,
        trailing: &[],
    });
    let client = pair.name(CLIENT);
    pair.nodes[BROKER]
        .handle_frame(client, &encode(m, 0), vec![])
        .unwrap();
    let out = sent(&mut pair.nodes[BROKER]);
    assert_eq!(out.len(), 1);
    let (frame, _) = NodeFrame::decode(&out[0]).unwrap();
    let NodeChannelContent::Message(NodeMessage::Introduce(i)) = frame.content else {
        panic!("{frame:?}")
    };
    assert_eq!(i.name, stranger);
    assert_eq!(i.capabilities, Some(Default::default()));
    assert_eq!(frame.header.num_handles(), 0);
    // The client learns that the stranger is unknown.
    let broker = pair.name(BROKER);
    pair.nodes[CLIENT]
        .handle_frame(broker, &out[0], vec![])
        .unwrap();
    let events = pair.take_events(CLIENT);
    assert!(matches!(
        events[..],
        [NodeEvent::Introduced { name, channel: None }] if name == stranger
    ));
    // Asking for oneself drops the requester.
    let m = NodeMessage::RequestIntroduction(Introduction {
        name: client,
        capabilities: None,
        trailing: &[],
    });
    let r = pair.nodes[BROKER].handle_frame(client, &encode(m, 0), vec![]);
    assert_eq!(r, Err(NodeError::InvalidIntroduction { name: client }));
    tear_down(pair);
}

#[test]
fn broadcasts_are_applied_and_relayed_to_clients() {
    let mut pair = Pair::new(Profile::Libchrome);
    let dead = WireEvent::new(
        PortName::INVALID,
        EventData::ObserveProxy(ObserveProxy {
            proxy_node_name: pair.name(CLIENT),
            proxy_port_name: PortName::new(3, 3),
            proxy_target_node_name: NodeName::INVALID,
            proxy_target_port_name: PortName::INVALID,
        }),
    );
    let mut inner = Vec::new();
    dead.encode_frame(Profile::Libchrome, 0, &mut inner)
        .unwrap();
    let client = pair.name(CLIENT);
    pair.nodes[BROKER]
        .handle_frame(
            client,
            &encode(NodeMessage::BroadcastEvent(&inner), 0),
            vec![],
        )
        .unwrap();
    let out = sent(&mut pair.nodes[BROKER]);
    assert_eq!(out, vec![inner.clone()]);
    // Anything else in a broadcast drops the sender.
    let mut bad = Vec::new();
    WireEvent::new(PortName::new(1, 1), EventData::PortAccepted)
        .encode_frame(Profile::Libchrome, 0, &mut bad)
        .unwrap();
    let r = pair.nodes[BROKER].handle_frame(
        client,
        &encode(NodeMessage::BroadcastEvent(&bad), 0),
        vec![],
    );
    assert_eq!(r, Err(NodeError::InvalidBroadcast));
    tear_down(pair);
}

#[test]
fn frames_from_strangers_are_refused_without_dropping_anyone() {
    let mut pair = Pair::new(Profile::Libchrome);
    let stranger = names::node_name(42, 42);
    let (fd, probe) = probed_fd();
    let r = pair.nodes[BROKER].handle_frame(stranger, &[0; 16], vec![fd]);
    assert_eq!(r, Err(NodeError::UnknownPeer { peer: stranger }));
    assert!(probe.is_closed());
    assert!(pair.take_events(BROKER).is_empty());
    tear_down(pair);
}

#[test]
fn merge_requests_need_a_valid_connector() {
    let mut pair = Pair::new(Profile::Libchrome);
    let _a = pair.nodes[BROKER].reserve_attachment(b"x").unwrap();
    let m = NodeMessage::RequestPortMerge(RequestPortMerge {
        connector_port_name: PortName::INVALID,
        token: b"x",
    });
    let client = pair.name(CLIENT);
    let r = pair.nodes[BROKER].handle_frame(client, &encode(m, 0), vec![]);
    assert_eq!(
        r,
        Err(NodeError::InvalidMerge {
            port: PortName::INVALID
        })
    );
    pair.nodes[BROKER].cancel_attachments();
    tear_down(pair);
}

#[test]
fn introductions_with_a_channel_reach_the_application() {
    let mut pair = Pair::new(Profile::Libchrome);
    let other = names::node_name(77, 77);
    let m = NodeMessage::Introduce(Introduction {
        name: other,
        capabilities: None,
        trailing: &[],
    });
    let (fd, probe) = probed_fd();
    let broker = pair.name(BROKER);
    pair.nodes[CLIENT]
        .handle_frame(broker, &encode(m, 1), vec![fd])
        .unwrap();
    let mut events = pair.take_events(CLIENT);
    let Some(NodeEvent::Introduced {
        name,
        channel: Some(channel),
    }) = events.pop()
    else {
        panic!("no introduction")
    };
    assert_eq!(name, other);
    assert!(!probe.is_closed());
    drop(channel);
    assert!(probe.is_closed());
    // More than one fd is fatal (§6.1), and only a broker introduces.
    let (fd1, p1) = probed_fd();
    let (fd2, p2) = probed_fd();
    let r = pair.nodes[CLIENT].handle_frame(broker, &encode(m, 2), vec![fd1, fd2]);
    assert!(matches!(r, Err(NodeError::Malformed { .. })), "{r:?}");
    assert!(p1.is_closed() && p2.is_closed());
    let client = pair.name(CLIENT);
    let r = pair.nodes[BROKER].handle_frame(client, &encode(m, 0), vec![]);
    assert_eq!(
        r,
        Err(NodeError::UnexpectedMessage {
            message_type: NodeMessageType::INTRODUCE
        })
    );
    tear_down(pair);
}
