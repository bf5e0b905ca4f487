//! The NodeChannel layer of a legacy node (spec §3, §5, §6): [`LegacyNode`]
//! owns a [`ports::Node`] and one link per peer node, turns complete
//! channel frames (bytes and fds) into ports events and NodeChannel
//! answers, and ports output back into frames.
//!
//! Links come from an invitation connector, which runs the handshake
//! (`ACCEPT_INVITEE` / `ACCEPT_INVITATION` / `ACCEPT_BROKER_CLIENT`) and the
//! broker channel itself; once it has finished it calls
//! [`LegacyNode::add_peer`]. Handshake messages that arrive afterwards are
//! protocol errors. An isolated connection (§3.7, [`isolated`]'s page) is a
//! link of another kind: the node runs its `ACCEPT_PEER` exchange itself
//! ([`LegacyNode::connect_isolated`]) and keeps its frames apart
//! ([`LegacyNode::handle_isolated_frame`], [`LegacyNode::poll_isolated`]),
//! beside a broker or client link or without one.
//!
//! Bad input drops the peer: `handle_frame` returns a [`NodeError`] naming
//! what was wrong and the peer is gone (its ports peer-lost, its fds in
//! transit closed). That covers framing and NodeChannel violations, limits,
//! and most events the ports layer refuses (a deliberate choice where
//! Chromium merely drops: a correct peer never sends them, and a dropped
//! peer cannot leave a silent gap in a pipe). What §6.3 says to handle
//! otherwise keeps the link up:
//! - a stale or duplicate sequence number, a PortAccepted or
//!   ObserveProxyAck for a port in another state, an ObserveProxy reaching
//!   a port that already bypasses that proxy (races and replays rather
//!   than corruption): dropped, reported as [`NodeEvent::EventDropped`];
//! - an event that does not decode (too short for its type or for its
//!   declared ports): ignored, its fds closed, reported as
//!   [`NodeEvent::MessageRefused`] without a port;
//! - a user message with valid ports but an unreadable user-message part
//!   or dispatchers that do not deserialize: its ports are accepted (each
//!   gets its PortAccepted, so the peer's proxies do not freeze) and closed,
//!   its fds closed, and the destination pipe broken: the user-held
//!   destination port is closed (the peer observes closure) and reported as
//!   [`NodeEvent::MessageRefused`] with the port. Such a message addressed
//!   to a proxy cannot be broken in place and drops the peer
//!   ([`ports::Error::UndeliverableMessage`]).
//!
//! Messages received before a peer is lost stay readable with their
//! handles; frames not yet written to it are dropped with their fds.
//!
//! This layer opens no sockets, so as a broker it never introduces nodes:
//! a `REQUEST_INTRODUCTION` is answered "unknown" (§3.6, right for a broker
//! with one client). As a non-broker it asks: an event for a node without a
//! link is held and a `REQUEST_INTRODUCTION` goes to the broker (once per
//! node). The broker's `INTRODUCE` without a channel means the node is
//! unknown: the held events are dropped and the ports to that node become
//! peer-lost. With a channel it becomes [`NodeEvent::Introduced`]: the
//! caller adopts the socket and calls [`LegacyNode::add_peer`], which sends
//! the held events (or [`LegacyNode::peer_lost`] to give up). Without a
//! broker link, or beyond [`MAX_PENDING_INTRODUCTIONS`] /
//! [`MAX_EVENTS_AWAITING_INTRODUCTION`], the event is dropped and the node
//! treated as lost.
//!
//! A link in the desktop profile turns on the ports layer's sender
//! verification (§4.9, [`ports::Node::set_sender_verification`]): the
//! extended event header carries the sending port and its control
//! sequence number as Chromium desktop writes them, `UpdatePreviousPeer`
//! is sent, and incoming events are taken only from each port's expected
//! sender in order, as Chromium's receiver does.

mod convert;
mod dispatch;
mod error;
mod handles;
pub mod isolated;
mod outbound;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;

use mojo_legacy_wire::limits::MAX_OUTGOING_HANDLES_PER_MESSAGE;
use mojo_legacy_wire::node::{NodeMessage, RequestPortMerge};
use mojo_legacy_wire::{NodeName, PortName, Profile};
use mojo_wire_kit::{BufferPool, RandomSource};

use crate::ports::{self, names};

pub use error::{ApiError, HandleError, Layer, NodeError};
pub use handles::{DataPipeEnd, Handle, PortRef, SharedBuffer};
pub use isolated::{ISOLATED_ATTACHMENT_NAME, IsolatedId, IsolatedOutput};

use handles::{Body, FdCounter};

/// Default for [`NodeLimits::max_queued_messages_per_port`]: only a
/// backstop against a flood. A real Mojo node never drops a peer because
/// its own application reads slowly, and a sender may legitimately write
/// tens of thousands of messages before the reader wakes (the test peers'
/// throughput scenarios do), so the limit sits far above any such burst.
pub const DEFAULT_MAX_QUEUED_MESSAGES_PER_PORT: usize = 1 << 20;
/// Default for [`NodeLimits::max_ports_per_peer`].
pub const DEFAULT_MAX_PORTS_PER_PEER: usize = 16_384;
/// Default for [`NodeLimits::max_fds_per_peer`].
pub const DEFAULT_MAX_FDS_PER_PEER: usize = 4_096;
/// Most [`NodeEvent::EventDropped`] reports queued at once.
pub const MAX_QUEUED_DROP_REPORTS: usize = 64;
/// Most nodes a non-broker waits to have introduced at once.
pub const MAX_PENDING_INTRODUCTIONS: usize = 64;
/// Most events held for one node until its introduction; one more and the
/// node is given up on (treated as lost).
pub const MAX_EVENTS_AWAITING_INTRODUCTION: usize = 1_024;
/// Spare buffers (frames and payloads) kept for reuse (see
/// [`LegacyNode::recycle`]).
///
/// One read of input (up to 256 KiB) may carry a couple of thousand small
/// messages, each needing a buffer before any frame is written, so the count
/// is generous; the byte bound, [`MAX_SPARE_BUFFER_BYTES`], is what limits
/// the memory kept.
pub const MAX_SPARE_BUFFERS: usize = 4096;
/// Most capacity, in bytes, kept in spare buffers: an idle node holds no more
/// than this, whatever sizes it carried.
pub const MAX_SPARE_BUFFER_BYTES: usize = 1 << 20;

/// What one peer may make a [`LegacyNode`] hold. Input beyond a limit is a
/// [`NodeError`] and drops the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// Most user messages one user-held port queues
    /// ([`DEFAULT_MAX_QUEUED_MESSAGES_PER_PORT`]).
    pub max_queued_messages_per_port: usize,
    /// Most ports of this node whose peer lives on one peer node
    /// ([`DEFAULT_MAX_PORTS_PER_PEER`]).
    pub max_ports_per_peer: usize,
    /// Most fds received from one peer that the node holds in queued
    /// messages ([`DEFAULT_MAX_FDS_PER_PEER`]).
    pub max_fds_per_peer: usize,
    /// The ports layer's own limits.
    pub ports: ports::Limits,
}

impl Default for NodeLimits {
    fn default() -> Self {
        Self {
            max_queued_messages_per_port: DEFAULT_MAX_QUEUED_MESSAGES_PER_PORT,
            max_ports_per_peer: DEFAULT_MAX_PORTS_PER_PEER,
            max_fds_per_peer: DEFAULT_MAX_FDS_PER_PEER,
            ports: ports::Limits::default(),
        }
    }
}

/// A message read from a port: the payload bytes and the attached handles,
/// in the order they were written.
pub type Message = (Vec<u8>, Vec<Handle>);

/// What the remote node of a link is to this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// Our broker: it answers introductions and relays broadcasts.
    Broker,
    /// Our client (we are its broker): it asks for merges and introductions.
    Client,
    /// The other end of an isolated connection (§3.7): a node of another
    /// network, neither our broker nor our client; it only exchanges events.
    Peer,
}

/// One frame to write to a peer's channel, with the fds to pass with it
/// (`SCM_RIGHTS`), in order.
#[derive(Debug)]
pub struct Transmit {
    /// The peer.
    pub peer: NodeName,
    /// The complete channel frame.
    pub bytes: Vec<u8>,
    /// Its fds (as many as its header's `num_handles`).
    pub fds: Vec<OwnedFd>,
}

/// Something the application should know.
#[derive(Debug)]
pub enum NodeEvent {
    /// A message is ready for [`LegacyNode::read_message`] on the port.
    MessageReadable {
        /// The port.
        port: PortRef,
    },
    /// The port's peer closed or was lost; what it sent stays readable.
    PeerClosed {
        /// The port.
        port: PortRef,
    },
    /// The link to a peer is gone: dropped for bad input (`error`), or by
    /// [`LegacyNode::peer_lost`] / [`LegacyNode::drop_peer`] (`None`).
    PeerLost {
        /// The peer.
        peer: NodeName,
        /// Why, if for bad input.
        error: Option<NodeError>,
    },
    /// An event from `peer` was dropped as §6.3 recommends (a stale or
    /// duplicate sequence number, a PortAccepted or ObserveProxyAck for a
    /// port in another state); the link stays up. At most
    /// [`MAX_QUEUED_DROP_REPORTS`] wait in the queue; further drops are
    /// only counted ([`LegacyNode::dropped_event_count`]).
    EventDropped {
        /// The peer.
        peer: NodeName,
        /// What the ports layer refused.
        error: ports::Error,
    },
    /// An event from `peer` could not be read and was refused as §6.3
    /// says, the link staying up: an event that does not decode is ignored
    /// (`port` is `None`); a user message whose ports are valid but whose
    /// user-message part or dispatchers cannot be read has its ports
    /// accepted and closed, its fds closed, and its destination `port`
    /// (if it is a user-held port of this node) closed, so the peer sees a
    /// broken pipe: `port` is no longer valid. Reports without a port share
    /// the [`MAX_QUEUED_DROP_REPORTS`] budget of
    /// [`EventDropped`](Self::EventDropped).
    MessageRefused {
        /// The peer.
        peer: NodeName,
        /// The destination port this node closed, if any.
        port: Option<PortRef>,
        /// What could not be read.
        error: NodeError,
    },
    /// The broker answered an introduction (`INTRODUCE`). Without a channel
    /// the node is unknown and its ports are already peer-lost; with one
    /// the caller may run a channel on it and
    /// [`add_peer`](LegacyNode::add_peer), which sends the events held for
    /// it (or give up with [`peer_lost`](LegacyNode::peer_lost)).
    Introduced {
        /// The introduced node.
        name: NodeName,
        /// One end of a socket pair to it.
        channel: Option<OwnedFd>,
    },
}

#[derive(Debug)]
struct Link {
    profile: Profile,
    role: PeerRole,
    held_fds: FdCounter,
    /// The isolated connection this link runs on (its frames go out
    /// through [`LegacyNode::poll_isolated`]), if it is one.
    isolated: Option<IsolatedId>,
}

/// A legacy Mojo Core node: ports, peer links, NodeChannel dispatch and
/// user messages with handles, sans-IO.
///
/// Feed it complete frames with [`handle_frame`](Self::handle_frame) and
/// local operations; drain [`poll_transmit`](Self::poll_transmit) into the
/// peers' sockets and [`poll_event`](Self::poll_event) into the
/// application.
#[derive(Debug)]
pub struct LegacyNode {
    ports: ports::Node<Body>,
    limits: NodeLimits,
    links: BTreeMap<NodeName, Link>,
    /// Broker side: attachment name -> the reserved port B (§3.5).
    reserved: BTreeMap<Vec<u8>, PortName>,
    /// Client side: connector ports of merges requested from each peer.
    pending_merges: BTreeMap<NodeName, Vec<PortName>>,
    /// Client side: merges requested before the link existed (connector,
    /// attachment name).
    queued_merges: BTreeMap<NodeName, Vec<(PortName, Vec<u8>)>>,
    /// Non-broker side: events held for nodes whose introduction was
    /// requested from the broker.
    introductions: BTreeMap<NodeName, Vec<(ports::Event<Body>, ports::Sender)>>,
    /// Fds held in queued messages, whoever sent them.
    queued_fds: FdCounter,
    transmits: VecDeque<Transmit>,
    events: VecDeque<NodeEvent>,
    /// `EventDropped` reports in `events`.
    queued_drop_reports: usize,
    /// Events dropped per §6.3 since the node started.
    dropped_events: u64,
    /// Spare frame and payload buffers.
    spare: BufferPool,
    /// Isolated connections (§3.7) and their output.
    isolated: isolated::Connections,
}

impl LegacyNode {
    /// A node named `name` (valid; unique among nodes) drawing port names
    /// from `rng`, with the default [`NodeLimits`].
    pub fn new(name: NodeName, rng: impl RandomSource + Send + 'static) -> Self {
        Self::with_limits(name, rng, NodeLimits::default())
    }

    /// Changes [`NodeLimits::max_fds_per_peer`] from now on (an
    /// application sets it from its own fd limit; fds already held count).
    pub fn set_max_fds_per_peer(&mut self, limit: usize) {
        self.limits.max_fds_per_peer = limit;
    }

    /// As [`new`](Self::new), with explicit limits.
    pub fn with_limits(
        name: NodeName,
        rng: impl RandomSource + Send + 'static,
        limits: NodeLimits,
    ) -> Self {
        Self {
            ports: ports::Node::with_limits(name, rng, limits.ports),
            limits,
            links: BTreeMap::new(),
            reserved: BTreeMap::new(),
            pending_merges: BTreeMap::new(),
            queued_merges: BTreeMap::new(),
            introductions: BTreeMap::new(),
            queued_fds: FdCounter::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            queued_drop_reports: 0,
            dropped_events: 0,
            spare: BufferPool::new(MAX_SPARE_BUFFERS, MAX_SPARE_BUFFER_BYTES),
            isolated: isolated::Connections::default(),
        }
    }

    /// This node's name.
    pub fn name(&self) -> NodeName {
        self.ports.name()
    }

    /// The limits in force.
    pub fn limits(&self) -> NodeLimits {
        self.limits
    }

    /// Uses the §4.10 direct hand-off for ports moving to another node
    /// (see [`ports::Node::set_direct_handoff`]): only for a broker with a
    /// single client in the libchrome profile. Off by default.
    pub fn set_direct_handoff(&mut self, on: bool) {
        self.ports.set_direct_handoff(on);
    }

    // ----- links ---------------------------------------------------------

    /// Adds the link to `peer` once its handshake has finished; frames to
    /// it are encoded in `profile`.
    pub fn add_peer(
        &mut self,
        peer: NodeName,
        profile: Profile,
        role: PeerRole,
    ) -> Result<(), ApiError> {
        self.add_link(peer, profile, role, None)
    }

    fn add_link(
        &mut self,
        peer: NodeName,
        profile: Profile,
        role: PeerRole,
        isolated: Option<IsolatedId>,
    ) -> Result<(), ApiError> {
        if peer == self.name() || !names::node_is_valid(peer) || self.links.contains_key(&peer) {
            return Err(ApiError::InvalidPeer { peer });
        }
        // Desktop peers verify senders and expect to be verified (§4.9).
        if profile.event_header_form() == mojo_legacy_wire::EventHeaderForm::Extended {
            self.ports.set_sender_verification(true);
        }
        self.links.insert(
            peer,
            Link {
                profile,
                role,
                held_fds: FdCounter::default(),
                isolated,
            },
        );
        // Events held for its introduction go out first, in order.
        for (event, sender) in self.introductions.remove(&peer).unwrap_or_default() {
            self.send_event(peer, event, sender);
        }
        // Merges requested before the link existed go out now, in order.
        for (connector, name) in self.queued_merges.remove(&peer).unwrap_or_default() {
            if self.send_merge_request(peer, connector, &name).is_err() {
                let _ = self.ports.close_port(connector);
            }
        }
        self.flush();
        Ok(())
    }

    /// Whether a link to `peer` exists.
    pub fn has_peer(&self, peer: NodeName) -> bool {
        self.links.contains_key(&peer)
    }

    /// The linked peers, in name order.
    pub fn peers(&self) -> impl Iterator<Item = NodeName> + '_ {
        self.links.keys().copied()
    }

    /// The peer's socket closed (§4.7.7): its ports become peer-lost,
    /// frames not yet written to it are dropped with their fds, and merges
    /// it never answered (or was never sent) end in peer closure. Also valid
    /// for a peer whose link was never added (a failed invitation).
    pub fn peer_lost(&mut self, peer: NodeName) {
        self.remove_peer(peer, None);
        self.flush();
    }

    /// Drops the link to `peer` on the caller's initiative; the same as
    /// [`peer_lost`](Self::peer_lost). The caller closes the socket.
    pub fn drop_peer(&mut self, peer: NodeName) {
        self.peer_lost(peer);
    }

    fn remove_peer(&mut self, peer: NodeName, error: Option<NodeError>) {
        self.queued_merges.remove(&peer);
        self.give_up_introduction(peer);
        let link = self.links.remove(&peer);
        let linked = link.is_some();
        if let Some(id) = link.as_ref().and_then(|l| l.isolated) {
            self.end_isolated(id, error.clone());
        }
        if linked {
            self.transmits.retain(|t| t.peer != peer);
            self.ports.lost_node(peer);
        }
        // Without its broker nobody will introduce the nodes it waited for.
        if link.is_some_and(|l| l.role == PeerRole::Broker)
            && !self.links.values().any(|l| l.role == PeerRole::Broker)
        {
            let waiting: Vec<NodeName> = self.introductions.keys().copied().collect();
            for node in waiting {
                self.give_up_introduction(node);
            }
        }
        // A merge the peer never answered would leave its pipe end hanging
        // (its connector's peer is local, so peer loss does not reach it):
        // close the connector so the end observes closure.
        for connector in self.pending_merges.remove(&peer).unwrap_or_default() {
            if self.is_unmerged_connector(connector) {
                let _ = self.ports.close_port(connector);
            }
        }
        if linked {
            self.events.push_back(NodeEvent::PeerLost { peer, error });
        }
    }

    // ----- outputs -------------------------------------------------------

    /// The next frame to write.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        let event = self.events.pop_front();
        if let Some(NodeEvent::EventDropped { .. } | NodeEvent::MessageRefused { port: None, .. }) =
            event
        {
            self.queued_drop_reports = self.queued_drop_reports.saturating_sub(1);
        }
        event
    }

    /// Events dropped as §6.3 recommends (see [`NodeEvent::EventDropped`]),
    /// reported or not.
    pub fn dropped_event_count(&self) -> u64 {
        self.dropped_events
    }

    fn report_dropped(&mut self, peer: NodeName, error: ports::Error) {
        self.dropped_events = self.dropped_events.saturating_add(1);
        if self.queued_drop_reports < MAX_QUEUED_DROP_REPORTS {
            self.queued_drop_reports += 1;
            self.events
                .push_back(NodeEvent::EventDropped { peer, error });
        }
    }

    fn report_refused(&mut self, peer: NodeName, port: Option<PortRef>, error: NodeError) {
        self.dropped_events = self.dropped_events.saturating_add(1);
        // A report naming a closed port is bounded by the ports there were.
        if port.is_some() || self.queued_drop_reports < MAX_QUEUED_DROP_REPORTS {
            if port.is_none() {
                self.queued_drop_reports += 1;
            }
            self.events
                .push_back(NodeEvent::MessageRefused { peer, port, error });
        }
    }

    /// Gives a buffer back for reuse: a written frame's, or a read
    /// message's payload once the caller is done with it. The node takes
    /// its frames and the payloads of the messages it receives from these.
    pub fn recycle(&mut self, buffer: Vec<u8>) {
        self.spare.give(buffer);
    }

    /// A spare buffer (empty), if the node holds one: lets a caller that
    /// moves payloads between nodes hand one back to where it came from.
    pub fn take_spare(&mut self) -> Option<Vec<u8>> {
        (!self.spare.is_empty()).then(|| self.spare.take())
    }

    // ----- pipes and messages --------------------------------------------

    /// A new pipe: two entangled user-held ports.
    pub fn create_pipe(&mut self) -> Result<(PortRef, PortRef), ApiError> {
        let (a, b) = self.ports.create_pipe()?;
        Ok((PortRef::new(a), PortRef::new(b)))
    }

    /// Writes a message with `handles` on `port`. The handles leave the
    /// caller's hands whatever the result: on error the message's ports are
    /// closed and its fds dropped.
    pub fn write_message(
        &mut self,
        port: PortRef,
        payload: &[u8],
        handles: Vec<Handle>,
    ) -> Result<(), ApiError> {
        let bytes = self.spare.copy_of(payload);
        self.write_message_owned(port, bytes, handles)
    }

    /// [`LegacyNode::write_message`] for a payload the caller already owns: the
    /// buffer becomes the message's body without a copy (a bridge forwarding
    /// a parcel it just read saves one copy of every payload this way).
    pub fn write_message_owned(
        &mut self,
        port: PortRef,
        payload: Vec<u8>,
        handles: Vec<Handle>,
    ) -> Result<(), ApiError> {
        let count: usize = handles.iter().map(Handle::num_fds).sum();
        let (attachments, attached) = handles::split_handles(handles);
        let body = Body {
            bytes: payload,
            attachments,
            ticket: None,
            node_ticket: self.queued_fds.ticket(count),
        };
        let result = if count > MAX_OUTGOING_HANDLES_PER_MESSAGE {
            // The ports layer closes the attached ports when it refuses a
            // message; do the same here.
            for p in attached {
                if p != port.name() {
                    let _ = self.ports.close_port(p);
                }
            }
            Err(ApiError::TooManyFds {
                count,
                limit: MAX_OUTGOING_HANDLES_PER_MESSAGE,
            })
        } else {
            self.ports
                .send_message(port.name(), body, attached)
                .map_err(ApiError::from)
        };
        self.flush();
        result
    }

    /// Reads the next message from `port`: `Ok(None)` if none is ready,
    /// [`ports::OpError::PeerClosed`] once the peer closed and everything
    /// it sent was read. Attached message pipes arrive as new user-held
    /// ports.
    pub fn read_message(&mut self, port: PortRef) -> Result<Option<Message>, ApiError> {
        let received = self.ports.get_message(port.name());
        let result = match received {
            Ok(Some(m)) => {
                let Body {
                    bytes, attachments, ..
                } = m.payload;
                match handles::join_handles(attachments, m.ports.clone()) {
                    Ok(handles) => Ok(Some((bytes, handles))),
                    Err((claimed, ports)) => {
                        for p in m.ports {
                            let _ = self.ports.close_port(p);
                        }
                        Err(ApiError::InconsistentMessage { claimed, ports })
                    }
                }
            }
            Ok(None) => Ok(None),
            Err(e) => Err(ApiError::from(e)),
        };
        self.flush();
        result
    }

    /// Closes a user-held port; its peer observes closure after the
    /// messages already sent.
    pub fn close_port(&mut self, port: PortRef) -> Result<(), ApiError> {
        let result = self.ports.close_port(port.name()).map_err(ApiError::from);
        self.flush();
        result
    }

    /// The status of a user-held port.
    pub fn port_status(&self, port: PortRef) -> Result<ports::PortStatus, ApiError> {
        Ok(self.ports.status(port.name())?)
    }

    /// The local peer of `port` if the two only relay to each other and
    /// hold nothing (see [`ports::Node::settled_local_peer`]): a pipe end
    /// that came back, which a bridge may close together with its peer.
    pub fn settled_local_peer(&self, port: PortRef) -> Option<PortRef> {
        self.ports.settled_local_peer(port.name()).map(PortRef::new)
    }

    // ----- invitation attachments (§3.5) ----------------------------------

    /// Broker side: reserves the attachment `name` (string bytes, or the 8
    /// little-endian bytes of a numeric name) and returns the local end of
    /// its pipe. A client's `REQUEST_PORT_MERGE` for the name connects it.
    pub fn reserve_attachment(&mut self, name: &[u8]) -> Result<PortRef, ApiError> {
        if name.is_empty() {
            return Err(ApiError::EmptyAttachmentName);
        }
        if self.reserved.contains_key(name) {
            return Err(ApiError::AttachmentNameInUse);
        }
        let (a, b) = self.ports.create_pipe()?;
        self.reserved.insert(name.to_vec(), b);
        Ok(PortRef::new(a))
    }

    /// Cancels the reserved attachment `name` (the invitation failed, or
    /// the client will never ask for it): its local end observes peer
    /// closure, as in Chromium when an invitee disconnects. False if it was
    /// not reserved.
    pub fn cancel_attachment(&mut self, name: &[u8]) -> bool {
        let Some(b) = self.reserved.remove(name) else {
            return false;
        };
        let _ = self.ports.close_port(b);
        self.flush();
        true
    }

    /// Cancels every reserved attachment (see
    /// [`cancel_attachment`](Self::cancel_attachment)).
    pub fn cancel_attachments(&mut self) {
        for (_, b) in std::mem::take(&mut self.reserved) {
            let _ = self.ports.close_port(b);
        }
        self.flush();
    }

    /// A requested merge's connector that no `MergePort` has reached yet:
    /// still Receiving with a local peer (a merge makes it a proxy).
    fn is_unmerged_connector(&self, connector: PortName) -> bool {
        self.ports.port_state(connector) == Some(ports::PortState::Receiving)
            && self
                .ports
                .peer_of(connector)
                .is_some_and(|(node, _)| node == self.name())
    }

    /// Attachments reserved and not yet merged.
    pub fn reserved_attachment_count(&self) -> usize {
        self.reserved.len()
    }

    /// Client side: asks `peer` (the broker) to connect its attachment
    /// `name`, and returns this side's end of it at once; messages written
    /// on it wait until the merge completes. Before the link to `peer` is
    /// added the request waits too, and goes out when it is (§3.5 step 4);
    /// if `peer` is lost first, the end observes peer closure.
    pub fn request_port_merge(&mut self, peer: NodeName, name: &[u8]) -> Result<PortRef, ApiError> {
        if name.is_empty() {
            return Err(ApiError::EmptyAttachmentName);
        }
        if peer == self.name() || !names::node_is_valid(peer) {
            return Err(ApiError::InvalidPeer { peer });
        }
        let (end, connector) = self.ports.create_merge_pipe()?;
        if self.links.contains_key(&peer) {
            if let Err(e) = self.send_merge_request(peer, connector, name) {
                let _ = self.ports.close_port(end);
                let _ = self.ports.close_port(connector);
                self.flush();
                return Err(e);
            }
        } else {
            self.queued_merges
                .entry(peer)
                .or_default()
                .push((connector, name.to_vec()));
        }
        let mut pending = self.pending_merges.remove(&peer).unwrap_or_default();
        pending.retain(|c| self.is_unmerged_connector(*c));
        pending.push(connector);
        self.pending_merges.insert(peer, pending);
        Ok(PortRef::new(end))
    }

    fn send_merge_request(
        &mut self,
        peer: NodeName,
        connector: PortName,
        name: &[u8],
    ) -> Result<(), ApiError> {
        let Some(link) = self.links.get(&peer) else {
            return Err(ApiError::UnknownPeer { peer });
        };
        let profile = link.profile;
        let message = NodeMessage::RequestPortMerge(RequestPortMerge {
            connector_port_name: connector,
            token: name,
        });
        let mut bytes = self.buffer();
        message
            .encode_frame(profile, 0, &mut bytes)
            .map_err(ApiError::Encode)?;
        self.transmits.push_back(Transmit {
            peer,
            bytes,
            fds: Vec::new(),
        });
        Ok(())
    }

    /// Closes every user-held port, e.g. at shutdown (§10 step 12): each
    /// one's peer observes closure after the messages already sent. Flush
    /// [`poll_transmit`](Self::poll_transmit) before closing the sockets.
    pub fn close_all_ports(&mut self) {
        let names: Vec<PortName> = self.ports.ports().map(|(n, _)| n).collect();
        for n in names {
            let _ = self.ports.close_port(n);
        }
        self.flush();
    }

    // ----- counts for leak checks ------------------------------------------

    /// Ports of every state.
    pub fn port_count(&self) -> usize {
        self.ports.port_count()
    }

    /// Buffering and Proxying ports.
    pub fn proxy_count(&self) -> usize {
        self.ports.proxy_count()
    }

    /// User messages queued in all ports.
    pub fn queued_message_count(&self) -> usize {
        self.ports.queued_message_count()
    }

    /// Fds received from `peer` that queued messages still hold, while the
    /// link exists. (Messages received before a peer is lost stay readable
    /// with their handles; [`queued_fd_count`](Self::queued_fd_count)
    /// still counts them.)
    pub fn held_fd_count(&self, peer: NodeName) -> usize {
        self.links.get(&peer).map_or(0, |l| l.held_fds.get())
    }

    /// Fds held in queued messages (received or written locally).
    pub fn queued_fd_count(&self) -> usize {
        self.queued_fds.get()
    }

    /// Frames waiting in [`poll_transmit`](Self::poll_transmit) and
    /// [`poll_isolated`](Self::poll_isolated).
    pub fn pending_transmit_count(&self) -> usize {
        self.transmits.len() + self.isolated.pending_transmit_count()
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.spare.take()
    }
}
