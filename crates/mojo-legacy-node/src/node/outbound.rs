//! From ports output to frames: every event the ports layer wants sent is
//! encoded for its peer's profile (user messages with their dispatchers and
//! fds), broadcasts go to the broker or to every client, notifications
//! become [`NodeEvent`]s.

use std::os::fd::OwnedFd;

use mojo_legacy_wire::node::{Introduction, NodeCapabilities, NodeMessage};
use mojo_legacy_wire::user_message::{UserMessage, encode_user_message_frame};
use mojo_legacy_wire::{NodeName, Profile};
use mojo_wire_kit::BufferPool;

use super::handles::{self, Body};
use super::{
    LegacyNode, MAX_EVENTS_AWAITING_INTRODUCTION, MAX_PENDING_INTRODUCTIONS, NodeEvent, PeerRole,
    PortRef, Transmit, convert,
};
use crate::ports::{Event, Notification, Sender};

impl LegacyNode {
    /// Moves everything the ports layer produced into the node's queues.
    /// Called at the end of every public operation.
    pub(super) fn flush(&mut self) {
        loop {
            let mut moved = false;
            while let Some((node, event, sender)) = self.ports.poll_transmit_with_sender() {
                moved = true;
                self.send_event(node, event, sender);
            }
            while let Some(event) = self.ports.poll_broadcast() {
                moved = true;
                self.send_broadcast(&event);
            }
            while let Some(n) = self.ports.poll_notification() {
                moved = true;
                match n {
                    Notification::MessageAvailable { port } => {
                        self.events.push_back(NodeEvent::MessageReadable {
                            port: PortRef::new(port),
                        });
                    }
                    Notification::PeerClosed { port } => {
                        self.events.push_back(NodeEvent::PeerClosed {
                            port: PortRef::new(port),
                        });
                    }
                    Notification::PortRemoved { .. } => {}
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Encodes `event` for `node`. Without a link to it, a non-broker holds
    /// the event and asks its broker to introduce the node (§3.6, once per
    /// node; [`LegacyNode::handle_frame`] takes the `INTRODUCE`); otherwise,
    /// or beyond the named limits, the event is dropped and the node
    /// reported lost again (as the ports layer asks).
    pub(super) fn send_event(&mut self, node: NodeName, event: Event<Body>, sender: Sender) {
        let Some(link) = self.links.get(&node) else {
            self.hold_for_introduction(node, event, sender);
            return;
        };
        let (profile, isolated) = (link.profile, link.isolated);
        let mut bytes = self.buffer();
        // An event that cannot be encoded (sizes beyond their wire fields,
        // only reachable with absurd local input) is dropped with its fds.
        if let Ok(fds) = encode_event(profile, event, sender, &mut bytes, &mut self.spare) {
            let t = Transmit {
                peer: node,
                bytes,
                fds,
            };
            match isolated {
                None => self.transmits.push_back(t),
                Some(id) => self.isolated.push_transmit(id, t),
            }
        }
    }

    fn hold_for_introduction(&mut self, node: NodeName, event: Event<Body>, sender: Sender) {
        let broker = self
            .links
            .iter()
            .find(|(_, l)| l.role == PeerRole::Broker)
            .map(|(n, l)| (*n, l.profile));
        let Some((broker, profile)) = broker else {
            drop(event);
            self.ports.lost_node(node);
            return;
        };
        if let Some(held) = self.introductions.get_mut(&node) {
            if held.len() < MAX_EVENTS_AWAITING_INTRODUCTION {
                held.push((event, sender));
                return;
            }
            // The introduction is not coming soon enough: give up on the node.
            drop(event);
            self.give_up_introduction(node);
            return;
        }
        if self.introductions.len() >= MAX_PENDING_INTRODUCTIONS {
            drop(event);
            self.ports.lost_node(node);
            return;
        }
        let request = NodeMessage::RequestIntroduction(Introduction {
            name: node,
            capabilities: Some(NodeCapabilities::NONE),
            trailing: &[],
        });
        let mut bytes = self.buffer();
        if request.encode_frame(profile, 0, &mut bytes).is_err() {
            drop(event);
            self.ports.lost_node(node);
            return;
        }
        self.transmits.push_back(Transmit {
            peer: broker,
            bytes,
            fds: Vec::new(),
        });
        self.introductions.insert(node, vec![(event, sender)]);
    }

    /// Drops what waits for `node`'s introduction (its fds closed) and
    /// treats the node as lost: its ports become peer-lost.
    pub(super) fn give_up_introduction(&mut self, node: NodeName) {
        if let Some(held) = self.introductions.remove(&node) {
            drop(held);
            self.ports.lost_node(node);
        }
    }

    /// A dead-proxy broadcast: to our broker as `BROADCAST_EVENT`, to every
    /// client as a plain `EVENT_MESSAGE` (§3.6); to isolated peers as a
    /// plain `EVENT_MESSAGE` too, but only from a node without a broker (as
    /// Chromium, where a broker sends it to all its peers and a non-broker
    /// only to its broker).
    fn send_broadcast(&mut self, event: &Event<Body>) {
        let has_broker = self.links.values().any(|l| l.role == PeerRole::Broker);
        let targets: Vec<(NodeName, Profile, PeerRole)> = self
            .links
            .iter()
            .filter(|(_, l)| !(has_broker && l.role == PeerRole::Peer))
            .map(|(n, l)| (*n, l.profile, l.role))
            .collect();
        for (peer, profile, role) in targets {
            let mut bytes = self.buffer();
            let form = profile.event_header_form();
            let wire = convert::event_to_wire(event, &[], form);
            let ok = match role {
                PeerRole::Client | PeerRole::Peer => {
                    wire.encode_frame(profile, 0, &mut bytes).is_ok()
                }
                PeerRole::Broker => {
                    let mut inner = Vec::new();
                    wire.encode_frame(profile, 0, &mut inner).is_ok()
                        && NodeMessage::BroadcastEvent(&inner)
                            .encode_frame(profile, 0, &mut bytes)
                            .is_ok()
                }
            };
            if ok {
                self.push_transmit(Transmit {
                    peer,
                    bytes,
                    fds: Vec::new(),
                });
            }
        }
    }

    /// Queues a frame for its peer's channel: an isolated connection's own
    /// queue or the node's.
    pub(super) fn push_transmit(&mut self, t: Transmit) {
        match self.links.get(&t.peer).and_then(|l| l.isolated) {
            None => self.transmits.push_back(t),
            Some(id) => self.isolated.push_transmit(id, t),
        }
    }
}

/// Appends the frame for `event` in `profile` to `out`; returns its fds. A
/// user message's payload buffer goes back to `spare` once copied.
pub(super) fn encode_event(
    profile: Profile,
    event: Event<Body>,
    sender: Sender,
    out: &mut Vec<u8>,
    spare: &mut BufferPool,
) -> Result<Vec<OwnedFd>, mojo_legacy_wire::Error> {
    let form = profile.event_header_form();
    match event {
        Event::UserMessage { port_name, message } => {
            let attached = convert::attached_ports(&message);
            let Body {
                bytes, attachments, ..
            } = message.payload;
            let (dispatchers, fds) = handles::to_dispatchers(attachments);
            let user_message = UserMessage {
                dispatchers,
                payload: &bytes,
            };
            let encoded = encode_user_message_frame(
                out,
                profile,
                port_name,
                convert::sender_for(form, sender),
                message.sequence_num,
                &attached,
                &user_message,
            );
            spare.give(bytes);
            encoded?;
            Ok(fds)
        }
        other => {
            convert::event_to_wire_from(&other, &[], form, sender).encode_frame(profile, 0, out)?;
            Ok(Vec::new())
        }
    }
}
