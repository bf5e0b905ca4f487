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

/// Three nodes: a broker and two clients, `a` and `b`, each linked only to
/// the broker. Frames are routed by their `Transmit::peer`; frames for a
/// node without a link on the sending side never exist (the node holds
/// them), so every transmit has a destination.
struct Three {
    nodes: Vec<LegacyNode>,
    /// Introduction requests seen so far: (requester, named node).
    asked: Vec<(NodeName, NodeName)>,
    /// Hold introduction requests back instead of delivering them.
    hold_requests: bool,
}

impl Three {
    fn new() -> Self {
        use mojo_wire_kit::SeededRandom;
        let broker = LegacyNode::new(names::node_name(1, 1), SeededRandom::new(1));
        let a = LegacyNode::new(names::node_name(2, 2), SeededRandom::new(2));
        let b = LegacyNode::new(names::node_name(3, 3), SeededRandom::new(3));
        let mut nodes = vec![broker, a, b];
        let broker_name = nodes[0].name();
        for i in 1..3 {
            let name = nodes[i].name();
            nodes[0]
                .add_peer(name, Profile::Libchrome, crate::node::PeerRole::Client)
                .unwrap();
            nodes[i]
                .add_peer(
                    broker_name,
                    Profile::Libchrome,
                    crate::node::PeerRole::Broker,
                )
                .unwrap();
        }
        Self {
            nodes,
            asked: Vec::new(),
            hold_requests: false,
        }
    }

    fn index(&self, name: NodeName) -> usize {
        self.nodes.iter().position(|n| n.name() == name).unwrap()
    }

    /// Delivers until idle, noting introduction requests in `asked`.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                while let Some(t) = self.nodes[i].poll_transmit() {
                    moved = true;
                    let from = self.nodes[i].name();
                    if let Ok((frame, _)) = NodeFrame::decode(&t.bytes) {
                        if let NodeChannelContent::Message(NodeMessage::RequestIntroduction(r)) =
                            frame.content
                        {
                            self.asked.push((from, r.name));
                            if self.hold_requests {
                                continue;
                            }
                        }
                    }
                    let to = self.index(t.peer);
                    self.nodes[to].handle_frame(from, &t.bytes, t.fds).unwrap();
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// A pipe between `a` and `b` through the broker: `a` sends one end of a
    /// fresh pipe to the broker, which passes it on to `b`. Once the
    /// broker's proxies collapse, `a`'s end sends straight to `b`, which `a`
    /// has no link to. Returns (a's end, b's end).
    fn pipe_between_clients(&mut self) -> (crate::node::PortRef, crate::node::PortRef) {
        use crate::node::Handle;
        let broker = self.nodes[0].name();
        let to_a = self.nodes[0].reserve_attachment(b"a").unwrap();
        let to_b = self.nodes[0].reserve_attachment(b"b").unwrap();
        let at_a = self.nodes[1].request_port_merge(broker, b"a").unwrap();
        let at_b = self.nodes[2].request_port_merge(broker, b"b").unwrap();
        self.run();
        let (keep, give) = self.nodes[1].create_pipe().unwrap();
        self.nodes[1]
            .write_message(at_a, b"", vec![Handle::MessagePipe(give)])
            .unwrap();
        self.run();
        let (_, mut handles) = self.nodes[0].read_message(to_a).unwrap().unwrap();
        let Some(Handle::MessagePipe(relayed)) = handles.pop() else {
            panic!("no pipe")
        };
        self.nodes[0]
            .write_message(to_b, b"", vec![Handle::MessagePipe(relayed)])
            .unwrap();
        self.run();
        let (_, mut handles) = self.nodes[2].read_message(at_b).unwrap().unwrap();
        let Some(Handle::MessagePipe(far)) = handles.pop() else {
            panic!("no pipe")
        };
        for (node, port) in [(0, to_a), (0, to_b), (1, at_a), (2, at_b)] {
            self.nodes[node].close_port(port).unwrap();
        }
        (keep, far)
    }

    fn assert_clean(&mut self) {
        self.run();
        for n in &self.nodes {
            assert_eq!(n.port_count(), 0, "{:?}", n.name());
            assert_eq!(n.queued_fd_count(), 0);
            assert_eq!(n.pending_transmit_count(), 0);
        }
    }
}

/// §3.6 seen from a non-broker: an event for a node it has no link to is
/// held and REQUEST_INTRODUCTION goes to the broker (once); the broker's
/// answer "unknown" (INTRODUCE without fd, as this crate's broker gives)
/// makes the ports to that node peer-lost.
#[test]
fn non_broker_asks_for_an_introduction_and_an_unknown_node_is_peer_lost() {
    let mut three = Three::new();
    let (keep, far) = three.pipe_between_clients();
    // (The request may already be answered: then writing fails.)
    let _ = three.nodes[1].write_message(keep, b"one", vec![]);
    three.run();
    let asked = three.asked.clone();
    let (a, b) = (three.nodes[1].name(), three.nodes[2].name());
    // One client asked for the other (which one depends on who sends
    // first after the broker's proxies collapse), each once per node.
    assert!(!asked.is_empty(), "{asked:?}");
    assert!(
        asked.iter().all(|r| *r == (a, b) || *r == (b, a)),
        "{asked:?}"
    );
    let mut unique = asked.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), asked.len(), "{asked:?}");
    // This broker answers "unknown": the requester's end of the pipe is
    // peer-lost; the closure it then sends reaches the other end.
    for (requester, _) in &asked {
        let (i, end) = if *requester == a { (1, keep) } else { (2, far) };
        assert!(three.nodes[i].port_status(end).unwrap().peer_closed);
    }
    three.nodes[1].close_port(keep).unwrap();
    three.nodes[2].close_port(far).unwrap();
    three.assert_clean();
}

/// INTRODUCE with a channel: the caller adopts the socket and adds the
/// peer; what was held for the node is then sent to it, in order.
#[test]
fn introduced_node_receives_the_held_events_once_linked() {
    let mut three = Three::new();
    // The test answers the requests itself, as a broker with channels would.
    three.hold_requests = true;
    let (keep, far) = three.pipe_between_clients();
    let (a, b) = (three.nodes[1].name(), three.nodes[2].name());
    let broker = three.nodes[0].name();
    three.nodes[1].write_message(keep, b"one", vec![]).unwrap();
    three.nodes[1].write_message(keep, b"two", vec![]).unwrap();
    three.run();
    let held_requests: Vec<NodeName> = three.asked.iter().map(|(r, _)| *r).collect();
    assert!(!held_requests.is_empty());
    // The broker's INTRODUCE with a channel, to every requester.
    for requester in held_requests {
        let i = three.index(requester);
        let other = if requester == a { b } else { a };
        let m = NodeMessage::Introduce(Introduction {
            name: other,
            capabilities: None,
            trailing: &[],
        });
        let (fd, _probe) = probed_fd();
        three.nodes[i]
            .handle_frame(broker, &encode(m, 1), vec![fd])
            .unwrap();
        let events: Vec<NodeEvent> = std::iter::from_fn(|| three.nodes[i].poll_event()).collect();
        assert!(
            events.iter().any(|e| matches!(
                e,
                NodeEvent::Introduced { name, channel: Some(_) } if *name == other
            )),
            "{events:?}"
        );
        three.nodes[i]
            .add_peer(other, Profile::Libchrome, crate::node::PeerRole::Client)
            .unwrap();
        if !three.nodes[three.index(other)].has_peer(requester) {
            let j = three.index(other);
            three.nodes[j]
                .add_peer(requester, Profile::Libchrome, crate::node::PeerRole::Client)
                .unwrap();
        }
    }
    three.run();
    assert_eq!(three.nodes[2].read_message(far).unwrap().unwrap().0, b"one");
    assert_eq!(three.nodes[2].read_message(far).unwrap().unwrap().0, b"two");
    // The pipe now runs over the introduced link, both ways.
    three.nodes[2].write_message(far, b"back", vec![]).unwrap();
    three.run();
    assert_eq!(
        three.nodes[1].read_message(keep).unwrap().unwrap().0,
        b"back"
    );
    assert_eq!(three.nodes[0].proxy_count(), 0);
    three.nodes[1].close_port(keep).unwrap();
    three.nodes[2].close_port(far).unwrap();
    three.assert_clean();
}
