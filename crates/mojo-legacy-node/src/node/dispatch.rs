//! From frames to actions: decodes one complete channel frame from a peer
//! and dispatches it (spec §3.6 for NodeChannel messages, §1.6 for channel
//! control, §4 through the ports layer for events, §5 for user messages).

use std::os::fd::OwnedFd;

use mojo_legacy_wire::channel::{ControlMessage, Frame};
use mojo_legacy_wire::event as wire;
use mojo_legacy_wire::node::{
    Introduction, NodeCapabilities, NodeChannelContent, NodeFrame, NodeMessage, RequestPortMerge,
};
use mojo_legacy_wire::user_message::UserMessage;
use mojo_legacy_wire::{NodeName, PortName};

use super::error::{Layer, NodeError};
use super::handles::{self, Body};
use super::{LegacyNode, NodeEvent, PeerRole, PortRef, Transmit, convert};
use crate::ports::{self, Event, names};

pub(super) fn malformed(layer: Layer) -> impl FnOnce(mojo_legacy_wire::Error) -> NodeError {
    move |error| NodeError::Malformed { layer, error }
}

impl LegacyNode {
    /// Handles one complete channel frame from `peer` with the fds that
    /// came with it. On error the peer has been dropped (see [`NodeError`])
    /// and `fds` closed; a [`NodeEvent::PeerLost`] carries the error too.
    pub fn handle_frame(
        &mut self,
        peer: NodeName,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        if !self.links.contains_key(&peer) {
            return Err(NodeError::UnknownPeer { peer });
        }
        let result = self.dispatch_frame(peer, bytes, fds);
        if let Err(e) = &result {
            self.remove_peer(peer, Some(e.clone()));
        }
        self.flush();
        result
    }

    fn dispatch_frame(
        &mut self,
        peer: NodeName,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        let frame = Frame::decode_whole(bytes).map_err(malformed(Layer::Frame))?;
        let declared = usize::from(frame.header.num_handles());
        if declared != fds.len() {
            return Err(NodeError::FdCountMismatch {
                declared,
                received: fds.len(),
            });
        }
        let frame = NodeFrame::from_frame(&frame).map_err(malformed(Layer::NodeMessage))?;
        match frame.content {
            NodeChannelContent::Control(c) => self.on_control(peer, c),
            NodeChannelContent::Message(m) => {
                m.check_handles(fds.len())
                    .map_err(malformed(Layer::NodeMessage))?;
                self.on_message(peer, m, fds)
            }
        }
    }

    /// Channel control (§1.6): every upgrade offer is refused; its fds are
    /// closed by the caller's drop of `fds`.
    fn on_control(&mut self, peer: NodeName, c: ControlMessage<'_>) -> Result<(), NodeError> {
        match c {
            ControlMessage::UpgradeOffer(_) => {
                let mut bytes = self.buffer();
                let reject = ControlMessage::UpgradeReject { payload: &[] };
                reject
                    .encode_frame(0, &mut bytes)
                    .map_err(malformed(Layer::Frame))?;
                self.push_transmit(Transmit {
                    peer,
                    bytes,
                    fds: Vec::new(),
                });
                Ok(())
            }
            // Chromium ignores these (we never offer an upgrade).
            ControlMessage::ShortUpgradeOffer { .. }
            | ControlMessage::UpgradeAccept { .. }
            | ControlMessage::UpgradeReject { .. } => Ok(()),
            ControlMessage::Unknown { message_type, .. } => {
                Err(NodeError::UnexpectedControl { message_type })
            }
        }
    }

    fn role(&self, peer: NodeName) -> Option<PeerRole> {
        self.links.get(&peer).map(|l| l.role)
    }

    fn on_message(
        &mut self,
        peer: NodeName,
        m: NodeMessage<'_>,
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        let unexpected = NodeError::UnexpectedMessage {
            message_type: m.message_type(),
        };
        let role = self.role(peer);
        match m {
            NodeMessage::EventMessage(body) => self.on_event(peer, body, fds),
            NodeMessage::RequestPortMerge(r) if role == Some(PeerRole::Client) => {
                self.on_request_port_merge(peer, r)
            }
            NodeMessage::RequestIntroduction(i) if role == Some(PeerRole::Client) => {
                self.on_request_introduction(peer, i)
            }
            NodeMessage::Introduce(i) if role == Some(PeerRole::Broker) => {
                self.on_introduce(peer, i, fds)
            }
            NodeMessage::BroadcastEvent(_) if role == Some(PeerRole::Client) => {
                let inner = m
                    .broadcast_inner()
                    .map_err(malformed(Layer::Broadcast))?
                    .ok_or(NodeError::InvalidBroadcast)?;
                self.on_broadcast(peer, inner)
            }
            // A client inviting children of its own: out of scope, ignored
            // (§3.6); the grandchild's invitation never completes.
            NodeMessage::AddBrokerClient(_) if role == Some(PeerRole::Client) => Ok(()),
            // Unknown types are ignored, their fds closed (§3.2).
            NodeMessage::Unknown { .. } => Ok(()),
            _ => Err(unexpected),
        }
    }

    fn on_event(
        &mut self,
        peer: NodeName,
        body: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        let Some(link) = self.links.get(&peer) else {
            return Err(NodeError::UnknownPeer { peer });
        };
        let form = link.profile.event_header_form();
        // §6.3: an event that does not decode (too short for its type or
        // for its declared ports, which then cannot be named) is ignored,
        // its fds closed.
        let event = match wire::Event::decode(body, form) {
            Ok(event) => event,
            Err(error) => {
                let error = NodeError::Malformed {
                    layer: Layer::Event,
                    error,
                };
                self.report_refused(peer, None, error);
                return Ok(());
            }
        };
        let sender = event.sender;
        let max_fds = self.limits.max_fds_per_peer;
        let held = link.held_fds.get();
        let counter = &link.held_fds;
        let node_counter = &self.queued_fds;
        let spare = &mut self.spare;
        // The payload is `Err` for a user-message part that cannot be read
        // (§6.3: the ports are still accepted); only limits fail the frame.
        let converted = convert::event_from_wire(&event, |message, num_ports| {
            let um = match UserMessage::decode(message) {
                Ok(um) => um,
                Err(error) => {
                    return Ok(Err(NodeError::Malformed {
                        layer: Layer::UserMessage,
                        error,
                    }));
                }
            };
            let claimed = usize::try_from(um.num_platform_handles()).unwrap_or(usize::MAX);
            if held.saturating_add(claimed) > max_fds {
                return Err(NodeError::TooManyFds { limit: max_fds });
            }
            let attachments = match handles::from_dispatchers(&um.dispatchers, num_ports, fds) {
                Ok(attachments) => attachments,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let mut body = Body {
                bytes: spare.copy_of(um.payload),
                attachments,
                ticket: None,
                node_ticket: None,
            };
            body.ticket = counter.ticket(body.num_fds());
            body.node_ticket = node_counter.ticket(body.num_fds());
            Ok(Ok(body))
        })?;
        // An unknown event type is ignored (§6.2).
        let Some(event) = converted else {
            return Ok(());
        };
        if let Event::UserMessage { port_name, message } = &event {
            self.check_user_message_limits(peer, *port_name, message.descriptors.len())?;
        }
        if let Event::MergePort { .. } = &event {
            self.check_port_limit(peer, 1)?;
        }
        let event = match event {
            Event::UserMessage {
                port_name,
                message:
                    ports::UserMessage {
                        sequence_num,
                        ports,
                        descriptors,
                        payload: Err(refusal),
                    },
            } => {
                let message = ports::UserMessage {
                    sequence_num,
                    ports,
                    descriptors,
                    payload: (),
                };
                return self.refuse_user_message(peer, port_name, message, refusal);
            }
            other => other.try_map_payload(|payload| payload)?,
        };
        let sender = convert::sender_from_wire(sender);
        self.deliver_event(peer, event, sender)
    }

    /// §6.3, a user message with valid ports but an unreadable user-message
    /// part (or dispatchers that do not deserialize): its ports are accepted
    /// and closed, its fds are closed, and the destination pipe is broken
    /// (closed; the peer observes closure) rather than left with a silent
    /// gap. Reported as [`NodeEvent::MessageRefused`]; the link stays up.
    fn refuse_user_message<M>(
        &mut self,
        peer: NodeName,
        port_name: PortName,
        message: ports::UserMessage<M>,
        refusal: NodeError,
    ) -> Result<(), NodeError> {
        let closed = self
            .ports
            .refuse_user_message(
                peer,
                port_name,
                message.sequence_num,
                message.ports,
                message.descriptors,
            )
            .map_err(NodeError::Ports)?;
        let port = closed.then(|| PortRef::new(port_name));
        self.report_refused(peer, port, refusal);
        Ok(())
    }

    /// Hands an event to the ports layer. What §6.3 says to drop rather
    /// than fail on (a stale or duplicate sequence number, a PortAccepted or
    /// ObserveProxyAck for a port in another state, a replayed
    /// ObserveProxy) is reported as a
    /// [`NodeEvent::EventDropped`] and the link stays up; any other refusal
    /// drops the peer.
    fn deliver_event(
        &mut self,
        peer: NodeName,
        event: Event<Body>,
        sender: ports::Sender,
    ) -> Result<(), NodeError> {
        match self.ports.handle_event_from(peer, event, sender) {
            Ok(()) => Ok(()),
            Err(
                e @ (ports::Error::StaleSequenceNum { .. }
                | ports::Error::DuplicateSequenceNum { .. }
                | ports::Error::UnexpectedPortAccepted { .. }
                | ports::Error::UnexpectedObserveProxyAck { .. }
                | ports::Error::StaleObserveProxy { .. }),
            ) => {
                self.report_dropped(peer, e);
                Ok(())
            }
            Err(e) => Err(NodeError::Ports(e)),
        }
    }

    fn check_user_message_limits(
        &self,
        peer: NodeName,
        port: PortName,
        new_ports: usize,
    ) -> Result<(), NodeError> {
        if let Ok(status) = self.ports.status(port) {
            let limit = self.limits.max_queued_messages_per_port;
            if status.queued_message_count >= limit {
                return Err(NodeError::TooManyQueuedMessages { port, limit });
            }
        }
        if new_ports > 0 {
            self.check_port_limit(peer, new_ports)?;
        }
        Ok(())
    }

    /// Whether `new_ports` more ports towards `peer` stay within the limit.
    fn check_port_limit(&self, peer: NodeName, new_ports: usize) -> Result<(), NodeError> {
        let limit = self.limits.max_ports_per_peer;
        let towards = self.ports.ports_towards(peer);
        if towards.saturating_add(new_ports) > limit {
            return Err(NodeError::TooManyPorts { limit });
        }
        Ok(())
    }

    /// §3.5 step 7. For an unknown name the client's pipe is merged with a
    /// port whose peer is already closed, so it reports closure instead of
    /// hanging (the improvement §3.5 suggests; Chromium ignores the request).
    fn on_request_port_merge(
        &mut self,
        peer: NodeName,
        r: RequestPortMerge<'_>,
    ) -> Result<(), NodeError> {
        let connector = r.connector_port_name;
        if !names::port_is_valid(connector) {
            return Err(NodeError::InvalidMerge { port: connector });
        }
        self.check_port_limit(peer, 1)?;
        let port = match self.reserved.remove(r.token) {
            Some(b) => b,
            None => {
                let Ok((closed, port)) = self.ports.create_pipe() else {
                    return Err(NodeError::TooManyPorts {
                        limit: self.limits.ports.max_ports,
                    });
                };
                let _ = self.ports.close_port(closed);
                port
            }
        };
        self.ports
            .merge_with_remote(port, peer, connector)
            .map_err(|_| NodeError::InvalidMerge { port: connector })
    }

    /// Only one link per peer exists and this layer opens no sockets, so
    /// every introduction is answered "unknown" (§3.6).
    fn on_request_introduction(
        &mut self,
        peer: NodeName,
        i: Introduction<'_>,
    ) -> Result<(), NodeError> {
        if i.name == peer || !names::node_is_valid(i.name) {
            return Err(NodeError::InvalidIntroduction { name: i.name });
        }
        let Some(link) = self.links.get(&peer) else {
            return Err(NodeError::UnknownPeer { peer });
        };
        let profile = link.profile;
        let answer = NodeMessage::Introduce(Introduction {
            name: i.name,
            capabilities: Some(NodeCapabilities::NONE),
            trailing: &[],
        });
        let mut bytes = self.buffer();
        answer
            .encode_frame(profile, 0, &mut bytes)
            .map_err(malformed(Layer::NodeMessage))?;
        self.transmits.push_back(Transmit {
            peer,
            bytes,
            fds: Vec::new(),
        });
        Ok(())
    }

    fn on_introduce(
        &mut self,
        _peer: NodeName,
        i: Introduction<'_>,
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        if i.name == self.name() || !names::node_is_valid(i.name) {
            return Err(NodeError::InvalidIntroduction { name: i.name });
        }
        let channel = fds.into_iter().next();
        if channel.is_none() {
            // Unknown to the broker (§3.6): what waited for it is dropped
            // and the ports to it become peer-lost.
            self.introductions.remove(&i.name);
            self.ports.lost_node(i.name);
        }
        self.events.push_back(NodeEvent::Introduced {
            name: i.name,
            channel,
        });
        Ok(())
    }

    /// A client's dead-proxy broadcast: applied here and re-sent to every
    /// client, the sender included, as Chromium's broker does (§3.6).
    fn on_broadcast(&mut self, peer: NodeName, inner: &[u8]) -> Result<(), NodeError> {
        let Some(link) = self.links.get(&peer) else {
            return Err(NodeError::UnknownPeer { peer });
        };
        let form = link.profile.event_header_form();
        let event = wire::Event::decode(inner, form).map_err(malformed(Layer::Broadcast))?;
        let is_dead_proxy = matches!(event.data, wire::EventData::ObserveProxy(_))
            && !names::port_is_valid(event.port_name);
        if !is_dead_proxy {
            return Err(NodeError::InvalidBroadcast);
        }
        let converted: Option<Event<Body>> =
            convert::event_from_wire(&event, |_, _| Err(NodeError::InvalidBroadcast))?;
        let Some(event) = converted else {
            return Err(NodeError::InvalidBroadcast);
        };
        let clients: Vec<NodeName> = self
            .links
            .iter()
            .filter(|(_, l)| l.role == PeerRole::Client)
            .map(|(n, _)| *n)
            .collect();
        for client in clients {
            let Some(profile) = self.links.get(&client).map(|l| l.profile) else {
                continue;
            };
            let mut bytes = self.buffer();
            let wire_event = convert::event_to_wire(&event, &[], profile.event_header_form());
            if wire_event.encode_frame(profile, 0, &mut bytes).is_ok() {
                self.transmits.push_back(Transmit {
                    peer: client,
                    bytes,
                    fds: Vec::new(),
                });
            }
        }
        self.deliver_event(peer, event, ports::Sender::NONE)
    }
}
