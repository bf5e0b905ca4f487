//! The per-node ports state machine (spec §4.4–§4.7).
//!
//! Events addressed to this node's own ports are not handled recursively as
//! Chromium does: they go through a FIFO (`local`) that every public call
//! drains before it returns, so each call is atomic for the caller, nothing
//! recurses, and a handler never sees a port vanish under it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use mojo_wire_kit::KeyedHasher;
use std::fmt;

use mojo_legacy_wire::{NodeName, PortName};
use mojo_wire_kit::RandomSource;

use super::names;
use super::port::Port;
use super::queue::{QueuedMessage, Refused};
use super::{
    Error, Event, EventKind, INITIAL_SEQUENCE_NUM, INVALID_SEQUENCE_NUM, Limits, OpError,
    PortDescriptor, PortState, Sender, UserMessage,
};

/// How often `create_pipe` asks the random source again when a name is in
/// use (a real source never repeats; a broken one must not hang us).
const NAME_ATTEMPTS: usize = 16;

/// A port status change for the user of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notification {
    /// A user-held port has a new message ready for
    /// [`get_message`](Node::get_message).
    MessageAvailable {
        /// The port.
        port: PortName,
    },
    /// The peer of a user-held port closed or was lost. Messages it sent
    /// before stay readable; then `get_message` reports
    /// [`OpError::PeerClosed`].
    PeerClosed {
        /// The port.
        port: PortName,
    },
    /// The node deleted a port on its own: a proxy that is no longer
    /// needed, a proxy whose peer was lost, or a port that rode in a message
    /// nobody will read. (A port the user closes is not reported.)
    PortRemoved {
        /// The port.
        port: PortName,
    },
}

/// A message taken from a port.
#[derive(Debug, PartialEq, Eq)]
pub struct ReceivedMessage<M> {
    /// Its sequence number on the pipe.
    pub sequence_num: u64,
    /// The attached ports, now Receiving and held by the user. Messages
    /// that reached them while they were in transit were not notified:
    /// check them with [`Node::get_message`] or [`Node::status`].
    pub ports: Vec<PortName>,
    /// The payload.
    pub payload: M,
}

/// What [`Node::status`] reports for a user-held port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortStatus {
    /// The next in-order message is here.
    pub has_messages: bool,
    /// More messages may still be read (false once the peer closed and its
    /// last message was read).
    pub receiving_messages: bool,
    /// The peer closed or was lost.
    pub peer_closed: bool,
    /// The peer lives on another node.
    pub peer_remote: bool,
    /// Messages queued (in order or waiting for a gap).
    pub queued_message_count: usize,
    /// Messages sent and not yet acknowledged as read.
    pub unacknowledged_message_count: u64,
}

/// One node of the ports layer, generic over the opaque user-message
/// payload `M`.
///
/// Drive it quinn-proto style: call the local operations and
/// [`handle_event`](Self::handle_event), then drain
/// [`poll_transmit`](Self::poll_transmit) (events for other nodes),
/// [`poll_broadcast`](Self::poll_broadcast) (events for every other node)
/// and [`poll_notification`](Self::poll_notification). It does no I/O and
/// keeps no clock.
pub struct Node<M> {
    name: NodeName,
    rng: Box<dyn RandomSource + Send>,
    limits: Limits,
    /// Every port by name. A hash map: each event looks ports up several
    /// times, and a B-tree of 10,000 ports costs a cache miss per level per
    /// lookup; nothing iterates it in an order that matters (`ports` sorts).
    ports: HashMap<PortName, Port<M>, KeyedHasher>,
    /// Which local ports send to each (node, port): peer loss and proxy
    /// deletion look ports up by peer (Chromium's `peer_port_maps_`).
    /// One flat set of (peer node, peer port, local port), so that indexing
    /// a port allocates nothing but the occasional B-tree node (a nested map
    /// of sets allocated a set per peer port); it iterates in the same
    /// order as the nested maps did.
    by_peer: BTreeSet<(NodeName, PortName, PortName)>,
    /// How many local ports send to each node (the sizes of `by_peer`'s
    /// sets, kept so that a per-peer port limit costs no walk of the ports).
    towards: BTreeMap<NodeName, usize>,
    queued_messages: usize,
    local: VecDeque<(Event<M>, usize, Sender)>,
    /// How many local ports the event being handled has already passed.
    hops: usize,
    transmits: VecDeque<(NodeName, Event<M>, Sender)>,
    broadcasts: VecDeque<Event<M>>,
    notifications: VecDeque<Notification>,
    deferred_error: Option<Error>,
    direct_handoff: bool,
    /// §4.9: events are numbered per sending port and accepted only from
    /// each port's expected sender, in order; `UpdatePreviousPeer` is sent.
    sender_verification: bool,
}

impl<M> fmt::Debug for Node<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("ports", &self.ports.len())
            .field("proxies", &self.proxy_count())
            .field("queued_messages", &self.queued_messages)
            .field("transmits", &self.transmits.len())
            .finish_non_exhaustive()
    }
}

fn seq_ok(n: u64) -> bool {
    (INITIAL_SEQUENCE_NUM..INVALID_SEQUENCE_NUM).contains(&n)
}

impl<M> Node<M> {
    /// A node named `name` (valid, unique among nodes) that draws port names
    /// from `rng`, with the default [`Limits`].
    pub fn new(name: NodeName, rng: impl RandomSource + Send + 'static) -> Self {
        Self::with_limits(name, rng, Limits::default())
    }

    /// As [`new`](Self::new), with explicit limits.
    pub fn with_limits(
        name: NodeName,
        rng: impl RandomSource + Send + 'static,
        limits: Limits,
    ) -> Self {
        Self {
            name,
            rng: Box::new(rng),
            limits,
            ports: HashMap::default(),
            by_peer: BTreeSet::new(),
            towards: BTreeMap::new(),
            queued_messages: 0,
            local: VecDeque::new(),
            hops: 0,
            transmits: VecDeque::new(),
            broadcasts: VecDeque::new(),
            notifications: VecDeque::new(),
            deferred_error: None,
            direct_handoff: false,
            sender_verification: false,
        }
    }

    /// Runs the extended header's sender verification (§4.9, the desktop
    /// profile): every event a port sends carries its name and its next
    /// control sequence number ([`Self::poll_transmit_with_sender`]),
    /// `UpdatePreviousPeer` tells a port
    /// when its sender changes, and events reach a port only from its
    /// expected sender, in that sender's order (others wait, bounded by
    /// [`Limits::max_control_queue`]). Give incoming sender fields with
    /// [`handle_event_from`](Self::handle_event_from). The direct hand-off
    /// is never used in this mode. Off by default (the compact profile).
    pub fn set_sender_verification(&mut self, on: bool) {
        self.sender_verification = on;
    }

    /// Uses the §4.10 "direct hand-off" when a port whose peer is a local
    /// Receiving port moves to another node (in a message or a merge): no
    /// proxy stays behind, the peer points at the new port at once and the
    /// moving port's queued messages follow the carrying event. Off by
    /// default, which is what Chromium does (and what its recorded traffic
    /// shows).
    ///
    /// Only for the setting §4.10 describes: a broker whose remote ports all
    /// live on one client, in the compact profile. The queued messages rely
    /// on following the carrying event on the same channel; with a third
    /// node, the peer could move there and reach the new port over another
    /// channel before the carrying event has created it.
    pub fn set_direct_handoff(&mut self, on: bool) {
        self.direct_handoff = on;
    }

    fn handoff_allowed(&self) -> bool {
        self.direct_handoff && !self.sender_verification
    }

    /// This node's name.
    pub fn name(&self) -> NodeName {
        self.name
    }

    /// A fresh non-zero random 128-bit value from the node's source (for a
    /// wire token, such as `ACCEPT_PEER`'s).
    pub(crate) fn random_u128(&mut self) -> (u64, u64) {
        self.rng.nonzero_u128()
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    // ----- outputs -------------------------------------------------------

    /// The next event to send to another node. If there is no channel to
    /// that node (it is gone, or the broker cannot introduce it), drop the
    /// event and call [`lost_node`](Self::lost_node) for it again, as
    /// Chromium's node controller does: a port may learn of a peer on a
    /// node only after that node's loss was handled.
    pub fn poll_transmit(&mut self) -> Option<(NodeName, Event<M>)> {
        self.transmits
            .pop_front()
            .map(|(node, event, _)| (node, event))
    }

    /// As [`poll_transmit`](Self::poll_transmit), with the event's sender
    /// fields for the extended header (§4.9).
    pub fn poll_transmit_with_sender(&mut self) -> Option<(NodeName, Event<M>, Sender)> {
        self.transmits.pop_front()
    }

    /// The next event to send to every other node (an `ObserveProxy`
    /// announcing a dead proxy; a non-broker sends it to its broker as
    /// `BROADCAST_EVENT`, a broker to every peer).
    pub fn poll_broadcast(&mut self) -> Option<Event<M>> {
        self.broadcasts.pop_front()
    }

    /// The next port status change.
    pub fn poll_notification(&mut self) -> Option<Notification> {
        self.notifications.pop_front()
    }

    // ----- counts for leak checks ---------------------------------------

    /// Ports of every state.
    pub fn port_count(&self) -> usize {
        self.ports.len()
    }

    /// Buffering and Proxying ports.
    pub fn proxy_count(&self) -> usize {
        self.ports
            .values()
            .filter(|p| p.state != PortState::Receiving)
            .count()
    }

    /// User messages queued in all ports.
    pub fn queued_message_count(&self) -> usize {
        self.queued_messages
    }

    /// Control events deferred by Buffering ports.
    pub fn deferred_event_count(&self) -> usize {
        self.ports.values().map(|p| p.control_queue.len()).sum()
    }

    /// Outputs not yet polled (transmits, broadcasts, notifications).
    pub fn pending_output_count(&self) -> usize {
        self.transmits.len() + self.broadcasts.len() + self.notifications.len()
    }

    /// The state of any port, for diagnostics and tests.
    pub fn port_state(&self, port: PortName) -> Option<PortState> {
        self.ports.get(&port).map(|p| p.state)
    }

    /// Every port's name with its state, in name order.
    pub fn ports(&self) -> impl Iterator<Item = (PortName, PortState)> + '_ {
        let mut all: Vec<(PortName, PortState)> =
            self.ports.iter().map(|(n, p)| (*n, p.state)).collect();
        all.sort_unstable_by_key(|(n, _)| *n);
        all.into_iter()
    }

    /// The (node, port) a port sends to, for diagnostics and tests.
    pub fn peer_of(&self, port: PortName) -> Option<(NodeName, PortName)> {
        self.ports.get(&port).map(|p| (p.peer_node, p.peer_port))
    }

    // ----- local operations ---------------------------------------------

    /// Creates a pipe: two entangled Receiving ports held by the user (§4.7.1).
    pub fn create_pipe(&mut self) -> Result<(PortName, PortName), OpError> {
        if self.ports.len().saturating_add(2) > self.limits.max_ports {
            return Err(OpError::TooManyPorts);
        }
        let a = self.unused_port_name(None)?;
        let b = self.unused_port_name(Some(a))?;
        let me = self.name;
        let first = INITIAL_SEQUENCE_NUM;
        self.insert_port(a, Port::new(me, b, first, first));
        self.insert_port(b, Port::new(me, a, first, first));
        Ok((a, b))
    }

    /// Creates a pipe whose second port is a merge connector: the port named
    /// in `REQUEST_PORT_MERGE`, which a later `MergePort` event joins to a
    /// port of another node (§3.5 step 4, §4.6.6). Both are held by the
    /// caller; the connector should not be used for messages.
    pub fn create_merge_pipe(&mut self) -> Result<(PortName, PortName), OpError> {
        let (end, connector) = self.create_pipe()?;
        if let Some(p) = self.ports.get_mut(&connector) {
            p.pending_merge_peer = true;
        }
        Ok((end, connector))
    }

    /// Sends `payload` with the `attached` ports from `port` (§4.7.2). The
    /// attached ports leave the user's hands. On error the message is
    /// dropped and the attached ports (except `port` itself) are closed, as
    /// in Chromium.
    pub fn send_message(
        &mut self,
        port: PortName,
        payload: M,
        attached: Vec<PortName>,
    ) -> Result<(), OpError> {
        let result = self.send_message_inner(port, payload, &attached);
        if result.is_err() {
            let doomed: Vec<PortName> = attached
                .into_iter()
                .filter(|p| *p != port && self.user_port(*p).is_ok())
                .collect();
            self.close_ports(doomed);
        }
        self.drain_local();
        self.deferred_error = None;
        result
    }

    fn send_message_inner(
        &mut self,
        port: PortName,
        payload: M,
        attached: &[PortName],
    ) -> Result<(), OpError> {
        let sender = self.user_port(port)?;
        if sender.state != PortState::Receiving {
            return Err(OpError::WrongState {
                port,
                state: sender.state,
            });
        }
        let (peer_node, peer_port) = (sender.peer_node, sender.peer_port);
        let mut seen = BTreeSet::new();
        for &q in attached {
            if q == port {
                return Err(OpError::CannotSendSelf { port });
            }
            if !seen.insert(q) {
                return Err(OpError::DuplicateAttachment { port: q });
            }
            let p = self.user_port(q)?;
            if p.state != PortState::Receiving {
                return Err(OpError::WrongState {
                    port: q,
                    state: p.state,
                });
            }
            if peer_node == self.name && q == peer_port {
                return Err(OpError::CannotSendPeer { port: q });
            }
        }
        let sender = self.user_port(port)?;
        if sender.peer_closed {
            return Err(OpError::PeerClosed { port });
        }
        let sequence_num = sender.next_sequence_num_to_send;
        if !seq_ok(sequence_num.saturating_add(1)) {
            return Err(OpError::SequenceExhausted { port });
        }
        if let Some(sender) = self.ports.get_mut(&port) {
            sender.next_sequence_num_to_send += 1;
        }
        let mut after = Vec::new();
        let (ports, descriptors) = self.prepare_attached(attached.to_vec(), peer_node, &mut after);
        let message = UserMessage {
            sequence_num,
            ports,
            descriptors,
            payload,
        };
        self.forward_from(
            port,
            peer_node,
            Event::UserMessage {
                port_name: peer_port,
                message,
            },
        );
        for (node, event, sender) in after {
            self.forward_as(sender, node, event);
        }
        Ok(())
    }

    /// Takes the next in-order message from `port`. `Ok(None)`: nothing yet;
    /// [`OpError::PeerClosed`]: the peer closed and everything it sent has
    /// been read.
    pub fn get_message(&mut self, port: PortName) -> Result<Option<ReceivedMessage<M>>, OpError> {
        let p = self.user_port(port)?;
        if p.state != PortState::Receiving {
            return Err(OpError::WrongState {
                port,
                state: p.state,
            });
        }
        if !p.can_accept_more_messages() {
            return Err(OpError::PeerClosed { port });
        }
        let Some(p) = self.ports.get_mut(&port) else {
            return Err(OpError::UnknownPort { port });
        };
        let Some(message) = p.queue.take_next() else {
            return Ok(None);
        };
        self.queued_messages = self.queued_messages.saturating_sub(1);
        if message.sequence_num == p.sequence_num_to_acknowledge {
            let (node, event) = (
                p.peer_node,
                Event::UserMessageReadAck {
                    port_name: p.peer_port,
                    sequence_num_acknowledged: p.sequence_num_to_acknowledge,
                },
            );
            self.forward_from(port, node, event);
        }
        for q in &message.ports {
            if let Some(p) = self.ports.get_mut(q) {
                p.held_by_user = true;
            }
        }
        self.drain_local();
        self.deferred_error = None;
        Ok(Some(ReceivedMessage {
            sequence_num: message.sequence_num,
            ports: message.ports,
            payload: message.payload,
        }))
    }

    /// Closes a user-held Receiving port (§4.7.3): its peer observes closure
    /// after the messages already sent; ports in unread messages are closed.
    pub fn close_port(&mut self, port: PortName) -> Result<(), OpError> {
        let p = self.user_port(port)?;
        if p.state != PortState::Receiving {
            return Err(OpError::WrongState {
                port,
                state: p.state,
            });
        }
        let inner = self.close_one(port);
        self.close_ports(inner);
        self.drain_local();
        self.deferred_error = None;
        Ok(())
    }

    /// The broker's half of `REQUEST_PORT_MERGE` (§4.7.6): turns the
    /// user-held Receiving `port` into a proxy towards a fresh port on
    /// `node` and sends `MergePort{to_port}` there. `port` leaves the user's
    /// hands.
    pub fn merge_with_remote(
        &mut self,
        port: PortName,
        node: NodeName,
        to_port: PortName,
    ) -> Result<(), OpError> {
        if node == self.name || !names::node_is_valid(node) || !names::port_is_valid(to_port) {
            return Err(OpError::InvalidMergeTarget);
        }
        let p = self.user_port(port)?;
        if p.state != PortState::Receiving {
            return Err(OpError::WrongState {
                port,
                state: p.state,
            });
        }
        let mut after = Vec::new();
        if let Some((new_port_name, new_port_descriptor)) = self.move_port(port, node, &mut after) {
            self.forward(
                node,
                Event::MergePort {
                    port_name: to_port,
                    new_port_name,
                    new_port_descriptor,
                },
            );
        }
        for (node, event, sender) in after {
            self.forward_as(sender, node, event);
        }
        self.drain_local();
        self.deferred_error = None;
        Ok(())
    }

    /// Asks the peer to acknowledge every `interval` messages read
    /// (0 stops asking); answers arrive as `UserMessageReadAck`.
    pub fn set_acknowledge_request_interval(
        &mut self,
        port: PortName,
        interval: u64,
    ) -> Result<(), OpError> {
        let p = self.user_port(port)?;
        if p.state != PortState::Receiving {
            return Err(OpError::WrongState {
                port,
                state: p.state,
            });
        }
        let Some(p) = self.ports.get_mut(&port) else {
            return Err(OpError::UnknownPort { port });
        };
        p.sequence_num_acknowledge_interval = interval;
        if interval != 0 {
            let (node, event) = (
                p.peer_node,
                Event::UserMessageReadAckRequest {
                    port_name: p.peer_port,
                    sequence_num_to_acknowledge: p
                        .last_sequence_num_acknowledged
                        .saturating_add(interval),
                },
            );
            self.forward_from(port, node, event);
            self.drain_local();
            self.deferred_error = None;
        }
        Ok(())
    }

    /// The status of a user-held Receiving port.
    pub fn status(&self, port: PortName) -> Result<PortStatus, OpError> {
        let p = self.user_port(port)?;
        if p.state != PortState::Receiving {
            return Err(OpError::WrongState {
                port,
                state: p.state,
            });
        }
        Ok(PortStatus {
            has_messages: p.queue.has_next(),
            receiving_messages: p.can_accept_more_messages(),
            peer_closed: p.peer_closed,
            peer_remote: p.peer_node != self.name,
            queued_message_count: p.queue.len(),
            unacknowledged_message_count: p
                .next_sequence_num_to_send
                .saturating_sub(p.last_sequence_num_acknowledged)
                .saturating_sub(1),
        })
    }

    /// The local peer of the user-held `port` when nothing is left between
    /// them: the peer is a user-held, open, receiving port of this node and
    /// each of the two has read everything the other sent (none queued,
    /// none in flight, by their sequence numbers). Such a pair only relays
    /// to itself (a pipe end that came back to the node that sent it away),
    /// so both can be closed without losing a message. The peer's own peer
    /// may still be the proxy the port left behind.
    pub fn settled_local_peer(&self, port: PortName) -> Option<PortName> {
        let p = self.user_port(port).ok()?;
        if p.state != PortState::Receiving || p.peer_node != self.name || p.peer_closed {
            return None;
        }
        let q = self.user_port(p.peer_port).ok()?;
        let settled = q.state == PortState::Receiving
            && !q.peer_closed
            && p.queue.len() == 0
            && q.queue.len() == 0
            && p.queue.next_seq() == q.next_sequence_num_to_send
            && q.queue.next_seq() == p.next_sequence_num_to_send;
        settled.then_some(p.peer_port)
    }

    /// The connection to `node` is gone (§4.7.7): ports whose peer is there
    /// become peer-lost (already-received messages stay readable), proxies
    /// towards it are deleted and their death is broadcast.
    pub fn lost_node(&mut self, node: NodeName) {
        if node != self.name {
            self.destroy_ports_with_peer(node, None);
        }
        self.drain_local();
        self.deferred_error = None;
    }

    // ----- incoming events ----------------------------------------------

    /// Handles an event that arrived from node `from` (never this node).
    /// Events for unknown ports are ignored, as races make them normal. An
    /// error names what was wrong with the event (or with one it caused
    /// here); the node stays consistent either way.
    pub fn handle_event(&mut self, from: NodeName, event: Event<M>) -> Result<(), Error> {
        self.handle_event_from(from, event, Sender::NONE)
    }

    /// As [`handle_event`](Self::handle_event), with the sender fields of
    /// the extended header (used with
    /// [`set_sender_verification`](Self::set_sender_verification)).
    pub fn handle_event_from(
        &mut self,
        from: NodeName,
        event: Event<M>,
        sender: Sender,
    ) -> Result<(), Error> {
        if from == self.name || !names::node_is_valid(from) {
            return Err(Error::EventFromSelf);
        }
        self.deferred_error = None;
        self.hops = 0;
        let result = self.accept_checked(from, event, sender);
        self.drain_local();
        let deferred = self.deferred_error.take();
        result.and(deferred.map_or(Ok(()), Err))
    }

    // ----- routing -------------------------------------------------------

    /// Sends a new event that names no sender to `node` (this node:
    /// through the local FIFO).
    fn forward(&mut self, node: NodeName, event: Event<M>) {
        self.route(node, event, 0, Sender::NONE);
    }

    /// Sends a new event from port `from` (its name and next control
    /// number are the sender fields).
    fn forward_from(&mut self, from: PortName, node: NodeName, event: Event<M>) {
        let sender = self.take_sender(from);
        self.route(node, event, 0, sender);
    }

    /// Sends an event with sender fields taken earlier.
    fn forward_as(&mut self, sender: Sender, node: NodeName, event: Event<M>) {
        self.route(node, event, 0, sender);
    }

    /// Port `from` passes the event being handled on to the next port.
    fn forward_onward_from(&mut self, from: PortName, node: NodeName, event: Event<M>) {
        let sender = self.take_sender(from);
        self.forward_onward_as(sender, node, event);
    }

    fn forward_onward_as(&mut self, sender: Sender, node: NodeName, event: Event<M>) {
        let hops = self.hops.saturating_add(1);
        self.route(node, event, hops, sender);
    }

    /// The sender fields of the next event port `from` sends (its control
    /// counter advances); none for a port that does not exist.
    fn take_sender(&mut self, from: PortName) -> Sender {
        let Some(p) = self.ports.get_mut(&from) else {
            return Sender::NONE;
        };
        let control_sequence_num = p.next_control_to_send;
        p.next_control_to_send = p.next_control_to_send.saturating_add(1);
        Sender {
            from_port: from,
            control_sequence_num,
        }
    }

    /// Sender verification: tells the peer of port `from` (with `from`'s
    /// next number) that its events now come from `new_prev`.
    fn update_previous_peer(
        &mut self,
        from: PortName,
        to: (NodeName, PortName),
        new_prev: (NodeName, PortName),
        out: &mut Vec<(NodeName, Event<M>, Sender)>,
    ) {
        if !self.sender_verification {
            return;
        }
        let sender = self.take_sender(from);
        out.push((
            to.0,
            Event::UpdatePreviousPeer {
                port_name: to.1,
                new_node_name: new_prev.0,
                new_port_name: new_prev.1,
            },
            sender,
        ));
    }

    fn route(&mut self, node: NodeName, event: Event<M>, hops: usize, sender: Sender) {
        if node != self.name {
            self.transmits.push_back((node, event, sender));
        } else if hops > self.ports.len().saturating_add(1) {
            // Only a forged event can travel further than there are ports.
            self.note_error(Error::RoutingLoop {
                event: event.kind(),
            });
            if let Event::UserMessage { message, .. } = event {
                self.close_ports(message.ports);
            }
        } else {
            self.local.push_back((event, hops, sender));
        }
    }

    fn drain_local(&mut self) {
        while let Some((event, hops, sender)) = self.local.pop_front() {
            self.hops = hops;
            let me = self.name;
            if let Err(e) = self.accept_checked(me, event, sender) {
                self.note_error(e);
            }
        }
        self.hops = 0;
    }

    fn note_error(&mut self, error: Error) {
        if self.deferred_error.is_none() {
            self.deferred_error = Some(error);
        }
    }

    fn notify(&mut self, n: Notification) {
        self.notifications.push_back(n);
    }

    fn user_port(&self, port: PortName) -> Result<&Port<M>, OpError> {
        match self.ports.get(&port) {
            Some(p) if p.held_by_user => Ok(p),
            _ => Err(OpError::UnknownPort { port }),
        }
    }

    fn unused_port_name(&mut self, also_not: Option<PortName>) -> Result<PortName, OpError> {
        for _ in 0..NAME_ATTEMPTS {
            let name = names::random_port_name(&mut *self.rng);
            if !self.ports.contains_key(&name) && Some(name) != also_not {
                return Ok(name);
            }
        }
        Err(OpError::NameGenerationFailed)
    }

    // ----- event handlers (§4.6) ----------------------------------------

    /// Whether sender verification orders this event (Chromium's
    /// `IsEventFromPreviousPeer`).
    fn from_previous_peer(event: &Event<M>) -> bool {
        match event {
            Event::PortAccepted { .. } | Event::MergePort { .. } => false,
            Event::ObserveProxy { port_name, .. } => names::port_is_valid(*port_name),
            _ => true,
        }
    }

    /// §4.9: with sender verification, an event reaches its port only from
    /// the port's expected sender and in that sender's order; others wait
    /// (bounded). Then whatever waited for its turn follows.
    fn accept_checked(
        &mut self,
        from: NodeName,
        event: Event<M>,
        sender: Sender,
    ) -> Result<(), Error> {
        if !Self::from_previous_peer(&event) {
            return self.accept_event(from, event);
        }
        let port_name = event.port_name();
        if !self.sender_verification {
            // Nothing waits, but the counters follow what an in-order
            // sender sends, so verification can start later (a broker's
            // attachment ends may talk before its desktop peer is linked).
            let in_turn = self.ports.get(&port_name).is_some_and(|p| {
                p.prev == (from, sender.from_port)
                    && p.next_control_to_receive == sender.control_sequence_num
            });
            let result = self.accept_event(from, event);
            if in_turn {
                if let Some(p) = self.ports.get_mut(&port_name) {
                    p.next_control_to_receive = p.next_control_to_receive.saturating_add(1);
                }
            }
            return result;
        }
        let limit = self.limits.max_control_queue;
        let Some(port) = self.ports.get_mut(&port_name) else {
            return self.accept_event(from, event);
        };
        let turn = port.prev == (from, sender.from_port)
            && port.next_control_to_receive == sender.control_sequence_num;
        if !turn {
            if port.held_events.len() >= limit {
                return Err(Error::ControlQueueFull {
                    port: port_name,
                    limit,
                });
            }
            let key = (from, sender.from_port, sender.control_sequence_num);
            if port.held_events.contains_key(&key) {
                return Err(Error::DuplicateControlSequenceNum {
                    port: port_name,
                    control_sequence_num: sender.control_sequence_num,
                });
            }
            port.held_events.insert(key, event);
            return Ok(());
        }
        let mut result = self.accept_event(from, event);
        loop {
            let Some(port) = self.ports.get_mut(&port_name) else {
                return result;
            };
            port.next_control_to_receive = port.next_control_to_receive.saturating_add(1);
            let key = (port.prev.0, port.prev.1, port.next_control_to_receive);
            let Some(next) = port.held_events.remove(&key) else {
                return result;
            };
            let r = self.accept_event(key.0, next);
            result = result.and(r);
        }
    }

    fn accept_event(&mut self, from: NodeName, event: Event<M>) -> Result<(), Error> {
        match event {
            Event::UserMessage { port_name, message } => {
                self.on_user_message(from, port_name, message)
            }
            Event::PortAccepted { port_name } => self.on_port_accepted(port_name),
            Event::ObserveProxy {
                port_name,
                proxy_node_name,
                proxy_port_name,
                proxy_target_node_name,
                proxy_target_port_name,
            } => self.on_observe_proxy(
                port_name,
                (proxy_node_name, proxy_port_name),
                (proxy_target_node_name, proxy_target_port_name),
            ),
            Event::ObserveProxyAck {
                port_name,
                last_sequence_num,
            } => self.on_observe_proxy_ack(port_name, last_sequence_num),
            Event::ObserveClosure {
                port_name,
                last_sequence_num,
            } => self.on_observe_closure(port_name, last_sequence_num),
            Event::MergePort {
                port_name,
                new_port_name,
                new_port_descriptor,
            } => self.on_merge_port(from, port_name, new_port_name, new_port_descriptor),
            Event::UserMessageReadAckRequest {
                port_name,
                sequence_num_to_acknowledge,
            } => self.on_read_ack_request(port_name, sequence_num_to_acknowledge),
            Event::UserMessageReadAck {
                port_name,
                sequence_num_acknowledged,
            } => self.on_read_ack(port_name, sequence_num_acknowledged),
            Event::UpdatePreviousPeer {
                port_name,
                new_node_name,
                new_port_name,
            } => self.on_update_previous_peer(port_name, new_node_name, new_port_name),
        }
    }

    fn check_descriptor(
        &self,
        from: NodeName,
        index: usize,
        new_name: PortName,
        d: &PortDescriptor,
    ) -> Result<(), Error> {
        let bad = |field| Err(Error::InvalidDescriptor { index, field });
        if !names::port_is_valid(new_name) {
            return Err(Error::InvalidNewPortName);
        }
        if self.ports.contains_key(&new_name) {
            return Err(Error::PortExists { port: new_name });
        }
        if !names::node_is_valid(d.peer_node_name) {
            return bad("peer_node_name");
        }
        if !names::port_is_valid(d.peer_port_name)
            || (d.peer_node_name == self.name && d.peer_port_name == new_name)
        {
            return bad("peer_port_name");
        }
        // The proxy always stays on the node that sends the port.
        if d.referring_node_name != from {
            return bad("referring_node_name");
        }
        if !names::port_is_valid(d.referring_port_name) {
            return bad("referring_port_name");
        }
        if !seq_ok(d.next_sequence_num_to_send) {
            return bad("next_sequence_num_to_send");
        }
        if !seq_ok(d.next_sequence_num_to_receive) {
            return bad("next_sequence_num_to_receive");
        }
        Ok(())
    }

    /// Creates a port from a descriptor and tells the referring port
    /// (§4.6.1 step 1). The descriptor has been checked.
    fn accept_port(&mut self, name: PortName, d: &PortDescriptor) {
        let mut port = Port::new(
            d.peer_node_name,
            d.peer_port_name,
            d.next_sequence_num_to_send,
            d.next_sequence_num_to_receive,
        );
        port.last_sequence_num_to_receive = d.last_sequence_num_to_receive;
        let already = d.next_sequence_num_to_receive.saturating_sub(1);
        if d.peer_closed && d.last_sequence_num_to_receive < already {
            // Chromium describes a port whose peer was lost with last 0:
            // nothing more is coming.
            port.last_sequence_num_to_receive = already;
        }
        port.peer_closed = d.peer_closed;
        port.held_by_user = false;
        // Its events come from the proxy it replaces (§4.9).
        port.prev = (d.referring_node_name, d.referring_port_name);
        self.insert_port(name, port);
        self.forward(
            d.referring_node_name,
            Event::PortAccepted {
                port_name: d.referring_port_name,
            },
        );
    }

    fn on_user_message(
        &mut self,
        from: NodeName,
        port_name: PortName,
        message: UserMessage<M>,
    ) -> Result<(), Error> {
        let UserMessage {
            sequence_num,
            ports,
            descriptors,
            payload,
        } = message;
        if from != self.name {
            self.accept_attached(from, port_name, sequence_num, &ports, &descriptors)?;
        }
        let accepting = self
            .ports
            .get(&port_name)
            .is_some_and(|p| p.can_accept_more_messages());
        if !accepting {
            // Unknown, or past its last message: the ports are orphans.
            self.close_ports(ports);
            return Ok(());
        }
        if self.queued_messages >= self.limits.max_queued_messages {
            self.close_ports(ports);
            return Err(Error::TooManyQueuedMessages {
                limit: self.limits.max_queued_messages,
            });
        }
        let window = self.limits.max_reorder_window;
        let Some(port) = self.ports.get_mut(&port_name) else {
            return Ok(());
        };
        let queued = QueuedMessage {
            sequence_num,
            ports,
            payload,
        };
        let readable = match port.queue.insert(queued, window) {
            Ok(readable) => readable,
            Err((why, queued)) => {
                self.close_ports(queued.ports);
                return Err(match why {
                    Refused::Stale { next_expected } => Error::StaleSequenceNum {
                        port: port_name,
                        sequence_num,
                        next_expected,
                    },
                    Refused::Duplicate => Error::DuplicateSequenceNum {
                        port: port_name,
                        sequence_num,
                    },
                    Refused::TooFarAhead => Error::ReorderWindowExceeded {
                        port: port_name,
                        sequence_num,
                        limit: window,
                    },
                });
            }
        };
        self.queued_messages += 1;
        match port.state {
            PortState::Receiving => {
                if readable && port.held_by_user {
                    self.notify(Notification::MessageAvailable { port: port_name });
                }
            }
            PortState::Proxying => {
                self.forward_from_proxy(port_name);
                self.try_remove_proxy(port_name);
            }
            PortState::Buffering => {}
        }
        Ok(())
    }

    /// Checks the attached ports of a user message from another node and
    /// accepts them (§4.6.1 step 1: each gets its PortAccepted). Nothing is
    /// created unless every part is acceptable.
    fn accept_attached(
        &mut self,
        from: NodeName,
        port_name: PortName,
        sequence_num: u64,
        ports: &[PortName],
        descriptors: &[PortDescriptor],
    ) -> Result<(), Error> {
        if !seq_ok(sequence_num) {
            return Err(Error::InvalidSequenceNum {
                port: port_name,
                sequence_num,
            });
        }
        // A replayed message is refused as such before its ports are
        // looked at (§6.3: dropped, never fatal): its ports exist already,
        // and their PortAccepted went out with the original.
        if !ports.is_empty() {
            if let Some(why) = self
                .ports
                .get(&port_name)
                .and_then(|p| p.queue.already_seen(sequence_num))
            {
                return Err(match why {
                    Refused::Stale { next_expected } => Error::StaleSequenceNum {
                        port: port_name,
                        sequence_num,
                        next_expected,
                    },
                    _ => Error::DuplicateSequenceNum {
                        port: port_name,
                        sequence_num,
                    },
                });
            }
        }
        if ports.len() != descriptors.len() {
            return Err(Error::PortCountMismatch {
                ports: ports.len(),
                descriptors: descriptors.len(),
            });
        }
        if ports.len() > self.limits.max_ports_per_message {
            return Err(Error::TooManyPortsInMessage {
                count: ports.len(),
                limit: self.limits.max_ports_per_message,
            });
        }
        if self.ports.len().saturating_add(ports.len()) > self.limits.max_ports {
            return Err(Error::TooManyPorts {
                limit: self.limits.max_ports,
            });
        }
        if ports.contains(&port_name) {
            return Err(Error::MessageCarriesItsDestination { port: port_name });
        }
        let mut seen = BTreeSet::new();
        for (i, (name, d)) in ports.iter().zip(descriptors).enumerate() {
            self.check_descriptor(from, i, *name, d)?;
            if !seen.insert(*name) {
                return Err(Error::DuplicateNewPort { port: *name });
            }
        }
        for (name, d) in ports.iter().zip(descriptors) {
            self.accept_port(*name, d);
        }
        Ok(())
    }

    /// A user message from `from` whose attached ports are valid but whose
    /// user-message part cannot be read (§6.3): the ports are accepted (so
    /// the sender's proxies get their PortAccepted and do not freeze) and
    /// closed at once, and the destination, if it is a Receiving port of
    /// user-held port, is closed too (ObserveClosure), so the sender sees a
    /// broken pipe instead of a silent gap in its sequence numbers. Returns
    /// whether the destination was closed (false: no such port; the ports
    /// were closed as orphans). A destination that is a proxy, or a port
    /// still inside a queued message, cannot be broken here (the message
    /// would have to travel on): [`Error::UndeliverableMessage`], and
    /// nothing is created.
    pub fn refuse_user_message(
        &mut self,
        from: NodeName,
        port_name: PortName,
        sequence_num: u64,
        ports: Vec<PortName>,
        descriptors: Vec<PortDescriptor>,
    ) -> Result<bool, Error> {
        if from == self.name || !names::node_is_valid(from) {
            return Err(Error::EventFromSelf);
        }
        self.deferred_error = None;
        self.hops = 0;
        let closed = match self.ports.get(&port_name) {
            None => false,
            Some(p) if p.state == PortState::Receiving && p.held_by_user => true,
            Some(_) => return Err(Error::UndeliverableMessage { port: port_name }),
        };
        self.accept_attached(from, port_name, sequence_num, &ports, &descriptors)?;
        self.close_ports(ports);
        if closed {
            let carried = self.close_one(port_name);
            self.close_ports(carried);
        }
        self.drain_local();
        let deferred = self.deferred_error.take();
        deferred.map_or(Ok(closed), Err)
    }

    /// §4.9: the port's events now come from (`node`, `port`), numbered
    /// from 1. Compact mode has no sender verification to update.
    fn on_update_previous_peer(
        &mut self,
        port_name: PortName,
        node: NodeName,
        port: PortName,
    ) -> Result<(), Error> {
        if !self.sender_verification {
            return Ok(());
        }
        if !names::node_is_valid(node) || !names::port_is_valid(port) {
            return Err(Error::InvalidUpdatePreviousPeer { port: port_name });
        }
        let Some(p) = self.ports.get_mut(&port_name) else {
            return Ok(());
        };
        p.prev = (node, port);
        // The caller advances it to the first number of the new sender.
        p.next_control_to_receive = INITIAL_SEQUENCE_NUM - 1;
        Ok(())
    }

    fn on_port_accepted(&mut self, port_name: PortName) -> Result<(), Error> {
        let Some(port) = self.ports.get_mut(&port_name) else {
            return Ok(());
        };
        if port.state != PortState::Buffering {
            return Err(Error::UnexpectedPortAccepted {
                port: port_name,
                state: port.state,
            });
        }
        // Begin proxying (§4.6.2).
        port.state = PortState::Proxying;
        let deferred = std::mem::take(&mut port.control_queue);
        for (node, event, sender) in deferred {
            self.forward_as(sender, node, event);
        }
        self.forward_from_proxy(port_name);
        let Some(port) = self.ports.get_mut(&port_name) else {
            return Ok(());
        };
        if port.sequence_num_to_acknowledge != 0 {
            let (node, event) = (
                port.peer_node,
                Event::UserMessageReadAckRequest {
                    port_name: port.peer_port,
                    sequence_num_to_acknowledge: port.sequence_num_to_acknowledge,
                },
            );
            port.sequence_num_to_acknowledge = 0;
            self.forward_from(port_name, node, event);
        }
        if self
            .ports
            .get(&port_name)
            .is_some_and(|p| p.remove_proxy_on_last_message)
        {
            self.try_remove_proxy(port_name);
        } else {
            self.initiate_proxy_removal(port_name);
        }
        Ok(())
    }

    fn on_observe_proxy(
        &mut self,
        port_name: PortName,
        proxy: (NodeName, PortName),
        target: (NodeName, PortName),
    ) -> Result<(), Error> {
        let bad = |field| Err(Error::InvalidObserveProxy { field });
        if !names::node_is_valid(proxy.0) {
            return bad("proxy_node_name");
        }
        if !names::port_is_valid(proxy.1) {
            return bad("proxy_port_name");
        }
        if !names::port_is_valid(port_name) {
            // Broadcast: that proxy is dead (§4.6.3).
            self.destroy_ports_with_peer(proxy.0, Some(proxy.1));
            return Ok(());
        }
        if !names::node_is_valid(target.0) {
            return bad("proxy_target_node_name");
        }
        if !names::port_is_valid(target.1) {
            return bad("proxy_target_port_name");
        }
        let limit = self.limits.max_control_queue;
        let Some(port) = self.ports.get_mut(&port_name) else {
            return Ok(());
        };
        if (port.peer_node, port.peer_port) == proxy {
            if target == (self.name, port_name) {
                // The proxy's peer is this very port: a ring with one end.
                return bad("proxy_target_port_name");
            }
            if port.state == PortState::Receiving {
                let ack = Event::ObserveProxyAck {
                    port_name: proxy.1,
                    last_sequence_num: port.next_sequence_num_to_send.saturating_sub(1),
                };
                // Numbered before the peer changes (which restarts it).
                let sender = self.take_sender(port_name);
                self.set_peer(port_name, target);
                self.forward_as(sender, proxy.0, ack);
                self.resend_read_ack_state(port_name);
            } else {
                // A proxy cannot answer for its successor yet: ask for a
                // retry once it is gone itself.
                port.send_on_proxy_removal = Some(proxy);
            }
            return Ok(());
        }
        if (port.peer_node, port.peer_port) == target && target != (self.name, port_name) {
            // This port already points past the proxy (it answered an
            // earlier copy): the ring holds nobody left to answer, and
            // forwarding would circle it forever (never acknowledged, so
            // never an ObserveProxyAck to a port that is no proxy).
            return Err(Error::StaleObserveProxy {
                port: port_name,
                proxy: proxy.1,
            });
        }
        let (node, event) = (
            port.peer_node,
            Event::ObserveProxy {
                port_name: port.peer_port,
                proxy_node_name: proxy.0,
                proxy_port_name: proxy.1,
                proxy_target_node_name: target.0,
                proxy_target_port_name: target.1,
            },
        );
        if port.state == PortState::Buffering {
            if port.control_queue.len() >= limit {
                return Err(Error::ControlQueueFull {
                    port: port_name,
                    limit,
                });
            }
            let sender = self.take_sender(port_name);
            if let Some(port) = self.ports.get_mut(&port_name) {
                port.control_queue.push((node, event, sender));
            }
        } else {
            self.forward_onward_from(port_name, node, event);
        }
        Ok(())
    }

    /// After a receiving port's peer changed: the old proxy may have eaten
    /// an ack or an ack request, so repeat them to the new peer.
    fn resend_read_ack_state(&mut self, port_name: PortName) {
        let Some(port) = self.ports.get(&port_name) else {
            return;
        };
        let (node, peer) = (port.peer_node, port.peer_port);
        let read = port.taken();
        let mut events = Vec::new();
        if port.sequence_num_to_acknowledge != 0 && read != 0 {
            events.push(Event::UserMessageReadAck {
                port_name: peer,
                sequence_num_acknowledged: read,
            });
        }
        if port.sequence_num_acknowledge_interval != 0 {
            events.push(Event::UserMessageReadAckRequest {
                port_name: peer,
                sequence_num_to_acknowledge: port
                    .last_sequence_num_acknowledged
                    .saturating_add(port.sequence_num_acknowledge_interval),
            });
        }
        for e in events {
            self.forward_from(port_name, node, e);
        }
    }

    fn on_observe_proxy_ack(&mut self, port_name: PortName, last: u64) -> Result<(), Error> {
        let Some(port) = self.ports.get_mut(&port_name) else {
            return Ok(());
        };
        if port.state != PortState::Proxying {
            return Err(Error::UnexpectedObserveProxyAck {
                port: port_name,
                state: port.state,
            });
        }
        if last == INVALID_SEQUENCE_NUM {
            self.initiate_proxy_removal(port_name);
            return Ok(());
        }
        if last < port.taken() {
            return Err(Error::LastSequenceNumBehind {
                port: port_name,
                event: EventKind::ObserveProxyAck,
                last_sequence_num: last,
                already_taken: port.taken(),
            });
        }
        port.remove_proxy_on_last_message = true;
        port.last_sequence_num_to_receive = last;
        self.try_remove_proxy(port_name);
        Ok(())
    }

    fn on_observe_closure(&mut self, port_name: PortName, last: u64) -> Result<(), Error> {
        let limit = self.limits.max_control_queue;
        let Some(port) = self.ports.get_mut(&port_name) else {
            return Ok(());
        };
        // Fewer than already taken: Chromium sends that after a peer loss
        // (its last number goes stale); it means nothing more is coming.
        let last = last.max(port.taken());
        if port.state == PortState::Buffering && port.control_queue.len() >= limit {
            return Err(Error::ControlQueueFull {
                port: port_name,
                limit,
            });
        }
        let newly_closed = !port.peer_closed;
        port.peer_closed = true;
        port.last_sequence_num_to_receive = last;
        let mut forwarded_last = last;
        if port.state == PortState::Receiving {
            // Past the receiving end the closure only tells dead-end proxies
            // how much this end sent them.
            forwarded_last = port.next_sequence_num_to_send.saturating_sub(1);
            port.last_sequence_num_acknowledged = forwarded_last;
        } else {
            port.remove_proxy_on_last_message = true;
        }
        let (state, held) = (port.state, port.held_by_user);
        let (node, event) = (
            port.peer_node,
            Event::ObserveClosure {
                port_name: port.peer_port,
                last_sequence_num: forwarded_last,
            },
        );
        // Numbered before a proxy removal numbers its own events.
        let sender = self.take_sender(port_name);
        match state {
            PortState::Buffering => {
                if let Some(port) = self.ports.get_mut(&port_name) {
                    port.control_queue.push((node, event, sender));
                }
            }
            PortState::Proxying => {
                self.try_remove_proxy(port_name);
                self.forward_onward_as(sender, node, event);
            }
            PortState::Receiving => {
                self.forward_onward_as(sender, node, event);
                if newly_closed && held {
                    self.notify(Notification::PeerClosed { port: port_name });
                }
            }
        }
        Ok(())
    }

    fn on_merge_port(
        &mut self,
        from: NodeName,
        port_name: PortName,
        new_name: PortName,
        d: PortDescriptor,
    ) -> Result<(), Error> {
        if from == self.name {
            return Err(Error::EventFromSelf);
        }
        if self.ports.len() >= self.limits.max_ports {
            return Err(Error::TooManyPorts {
                limit: self.limits.max_ports,
            });
        }
        self.check_descriptor(from, 0, new_name, &d)?;
        // Accept first, so the sender's proxy is never left Buffering.
        self.accept_port(new_name, &d);
        let pending = match self.ports.get(&port_name) {
            None => {
                self.close_ports(vec![new_name]);
                return Ok(());
            }
            Some(p) => p.pending_merge_peer && p.held_by_user && p.state == PortState::Receiving,
        };
        if !pending {
            self.close_ports(vec![new_name]);
            return Err(Error::UnexpectedMergePort { port: port_name });
        }
        if let Some(p) = self.ports.get_mut(&port_name) {
            p.pending_merge_peer = false;
        }
        self.merge_ports(port_name, new_name)
    }

    /// Joins two Receiving ports of different pipes into one pipe: each
    /// takes the other's peer and both become proxies (§4.6.6).
    fn merge_ports(&mut self, a: PortName, b: PortName) -> Result<(), Error> {
        let me = self.name;
        let refusal = match (self.ports.get(&a), self.ports.get(&b)) {
            (Some(pa), Some(pb)) => {
                if (pa.peer_node, pa.peer_port) == (me, b)
                    || (pb.peer_node, pb.peer_port) == (me, a)
                {
                    Some("the ports are each other's peer")
                } else if pa.next_sequence_num_to_send != INITIAL_SEQUENCE_NUM
                    || pb.next_sequence_num_to_send != INITIAL_SEQUENCE_NUM
                {
                    Some("a port has already sent messages")
                } else {
                    None
                }
            }
            _ => Some("a port is gone"),
        };
        if let Some(reason) = refusal {
            self.close_ports(vec![a, b]);
            return Err(Error::MergeRefused { port: a, reason });
        }
        let (Some(pa), Some(pb)) = (self.ports.get(&a), self.ports.get(&b)) else {
            return Ok(());
        };
        let (peer_a, peer_b) = ((pa.peer_node, pa.peer_port), (pb.peer_node, pb.peer_port));
        // §4.9: each old peer now hears from the other port; numbered from
        // the old counters, sent once the queued messages went on.
        let mut updates = Vec::new();
        self.update_previous_peer(a, peer_a, (me, b), &mut updates);
        self.update_previous_peer(b, peer_b, (me, a), &mut updates);
        for (name, peer) in [(a, peer_b), (b, peer_a)] {
            self.set_peer(name, peer);
            if let Some(p) = self.ports.get_mut(&name) {
                p.state = PortState::Proxying;
                p.held_by_user = false;
                if p.peer_closed {
                    p.remove_proxy_on_last_message = true;
                }
            }
        }
        for name in [a, b] {
            // A port whose new peer is a local port already closed would
            // only forward into a name nobody answers (and would wait for a
            // closure that a lost node may never send): drop it now.
            let dead_end = self
                .ports
                .get(&name)
                .is_some_and(|p| p.peer_node == me && !self.ports.contains_key(&p.peer_port));
            if dead_end {
                let carried = self.erase_port(name, true);
                self.close_ports(carried);
            }
        }
        self.forward_from_proxy(a);
        self.forward_from_proxy(b);
        for (node, event, sender) in updates {
            self.forward_as(sender, node, event);
        }
        for name in [a, b] {
            let Some(p) = self.ports.get(&name) else {
                continue;
            };
            let remove_now = p.remove_proxy_on_last_message;
            let closure = (remove_now || p.peer_closed).then(|| {
                (
                    p.peer_node,
                    Event::ObserveClosure {
                        port_name: p.peer_port,
                        last_sequence_num: p.last_expected(),
                    },
                )
            });
            let closure = closure.map(|(node, event)| (node, event, self.take_sender(name)));
            if remove_now {
                self.try_remove_proxy(name);
            } else {
                self.initiate_proxy_removal(name);
            }
            if let Some((node, event, sender)) = closure {
                self.forward_as(sender, node, event);
            }
        }
        Ok(())
    }

    fn on_read_ack_request(&mut self, port_name: PortName, n: u64) -> Result<(), Error> {
        let limit = self.limits.max_control_queue;
        let Some(port) = self.ports.get_mut(&port_name) else {
            return Ok(());
        };
        let node = port.peer_node;
        if port.state == PortState::Proxying {
            let event = Event::UserMessageReadAckRequest {
                port_name: port.peer_port,
                sequence_num_to_acknowledge: n,
            };
            self.forward_onward_from(port_name, node, event);
            return Ok(());
        }
        let read = port.taken();
        if read >= n {
            let event = Event::UserMessageReadAck {
                port_name: port.peer_port,
                sequence_num_acknowledged: read,
            };
            if port.state == PortState::Buffering {
                if port.control_queue.len() >= limit {
                    return Err(Error::ControlQueueFull {
                        port: port_name,
                        limit,
                    });
                }
                let sender = self.take_sender(port_name);
                if let Some(port) = self.ports.get_mut(&port_name) {
                    port.control_queue.push((node, event, sender));
                }
            } else {
                self.forward_from(port_name, node, event);
            }
            let Some(port) = self.ports.get_mut(&port_name) else {
                return Ok(());
            };
            port.sequence_num_to_acknowledge = port.sequence_num_to_acknowledge.max(read);
        } else {
            // Requests may overtake each other: keep the earliest future one.
            let pending = port.sequence_num_to_acknowledge > read;
            if !pending || port.sequence_num_to_acknowledge > n {
                port.sequence_num_to_acknowledge = n;
            }
        }
        Ok(())
    }

    fn on_read_ack(&mut self, port_name: PortName, n: u64) -> Result<(), Error> {
        let Some(port) = self.ports.get_mut(&port_name) else {
            return Ok(());
        };
        if n >= port.next_sequence_num_to_send {
            // A proxy keeps the number it had as a pipe end, so acks meant
            // for its successor land here legitimately; a pipe end cannot
            // have a message read that it never sent.
            if port.state == PortState::Receiving {
                return Err(Error::ReadAckBeyondSent {
                    port: port_name,
                    acknowledged: n,
                    next_to_send: port.next_sequence_num_to_send,
                });
            }
            return Ok(());
        }
        if n <= port.last_sequence_num_acknowledged {
            return Ok(());
        }
        port.last_sequence_num_acknowledged = n;
        if port.sequence_num_acknowledge_interval != 0 && !port.peer_closed {
            let (node, event) = (
                port.peer_node,
                Event::UserMessageReadAckRequest {
                    port_name: port.peer_port,
                    sequence_num_to_acknowledge: n
                        .saturating_add(port.sequence_num_acknowledge_interval),
                },
            );
            self.forward_from(port_name, node, event);
        }
        Ok(())
    }

    // ----- proxies (§4.7.2–§4.7.5) --------------------------------------

    /// Readies ports attached to a message headed for `node`: carried by
    /// name within this node, converted to proxies for another one.
    /// Events a direct hand-off adds go to `after`, to be sent after the
    /// message that carries the ports.
    fn prepare_attached(
        &mut self,
        ports: Vec<PortName>,
        node: NodeName,
        after: &mut Vec<(NodeName, Event<M>, Sender)>,
    ) -> (Vec<PortName>, Vec<PortDescriptor>) {
        if node == self.name {
            for q in &ports {
                if let Some(p) = self.ports.get_mut(q) {
                    p.held_by_user = false;
                }
            }
            return (ports, Vec::new());
        }
        let mut names_out = Vec::with_capacity(ports.len());
        let mut descriptors = Vec::with_capacity(ports.len());
        for q in ports {
            if let Some((name, d)) = self.move_port(q, node, after) {
                names_out.push(name);
                descriptors.push(d);
            }
        }
        (names_out, descriptors)
    }

    /// Moves Receiving port `q` to `node`: by direct hand-off if enabled
    /// and possible, else by turning it into a proxy.
    fn move_port(
        &mut self,
        q: PortName,
        node: NodeName,
        after: &mut Vec<(NodeName, Event<M>, Sender)>,
    ) -> Option<(PortName, PortDescriptor)> {
        if self.handoff_allowed() {
            if let Some(moved) = self.hand_off(q, node, after) {
                return Some(moved);
            }
        }
        self.convert_to_proxy(q, node, after)
    }

    /// The §4.10 shortcut for a port whose peer F is a local Receiving port:
    /// F points at the new port at once, `q` is deleted (its name retired,
    /// so the later `PortAccepted{q}` is ignored) and the messages queued in
    /// `q` follow, unchanged, addressed to the new port.
    fn hand_off(
        &mut self,
        q: PortName,
        node: NodeName,
        after: &mut Vec<(NodeName, Event<M>, Sender)>,
    ) -> Option<(PortName, PortDescriptor)> {
        let me = self.name;
        let p = self.ports.get(&q)?;
        if p.state != PortState::Receiving || p.peer_node != me {
            return None;
        }
        let f = p.peer_port;
        let received = p.queue.contiguous_end();
        // Only a settled local pair qualifies: F points back at `q`, every
        // message F sent is already in `q` (a proxy being bypassed may still
        // be forwarding some), and no event is still on its way to `q`
        // inside this node. Otherwise the retired name would swallow them.
        let settled = self.ports.get(&f).is_some_and(|fp| {
            fp.state == PortState::Receiving
                && (fp.peer_node, fp.peer_port) == (me, q)
                && fp.next_sequence_num_to_send.saturating_sub(1) == received
        });
        if !settled || self.local.iter().any(|(e, _, _)| e.port_name() == q) {
            return None;
        }
        let new_name = names::random_port_name(&mut *self.rng);
        let p = self.ports.get_mut(&q)?;
        let d = PortDescriptor {
            peer_node_name: me,
            peer_port_name: f,
            referring_node_name: me,
            referring_port_name: q,
            next_sequence_num_to_send: p.next_sequence_num_to_send,
            next_sequence_num_to_receive: p.queue.next_seq(),
            last_sequence_num_to_receive: p.last_sequence_num_to_receive,
            peer_closed: p.peer_closed,
        };
        let queued = p.queue.take_all();
        self.queued_messages = self.queued_messages.saturating_sub(queued.len());
        self.erase_one(q, false);
        self.set_peer(f, (node, new_name));
        for m in queued {
            let mut nested = Vec::new();
            let (ports, descriptors) = self.prepare_attached(m.ports, node, &mut nested);
            after.push((
                node,
                Event::UserMessage {
                    port_name: new_name,
                    message: UserMessage {
                        sequence_num: m.sequence_num,
                        ports,
                        descriptors,
                        payload: m.payload,
                    },
                },
                Sender::NONE,
            ));
            after.append(&mut nested);
        }
        Some((new_name, d))
    }

    /// Turns Receiving port `q` into a Buffering proxy towards a new port on
    /// `node`; returns the new port's name and descriptor.
    fn convert_to_proxy(
        &mut self,
        q: PortName,
        node: NodeName,
        after: &mut Vec<(NodeName, Event<M>, Sender)>,
    ) -> Option<(PortName, PortDescriptor)> {
        let new_name = names::random_port_name(&mut *self.rng);
        let me = self.name;
        let p = self.ports.get_mut(&q)?;
        if p.state != PortState::Receiving {
            return None;
        }
        // A port whose peer was lost expects exactly the in-order messages
        // it holds (this proxy forwards them); say so, instead of the stale
        // last number Chromium sends.
        let last = p.last_expected();
        let d = PortDescriptor {
            peer_node_name: p.peer_node,
            peer_port_name: p.peer_port,
            referring_node_name: me,
            referring_port_name: q,
            next_sequence_num_to_send: p.next_sequence_num_to_send,
            next_sequence_num_to_receive: p.queue.next_seq(),
            last_sequence_num_to_receive: last,
            peer_closed: p.peer_closed,
        };
        p.state = PortState::Buffering;
        p.held_by_user = false;
        p.pending_merge_peer = false;
        if p.peer_closed {
            p.remove_proxy_on_last_message = true;
        }
        // §4.9: the peer hears from the new port from now on (numbered
        // before the peer change restarts the counter).
        let old_peer = (p.peer_node, p.peer_port);
        self.update_previous_peer(q, old_peer, (node, new_name), after);
        self.set_peer(q, (node, new_name));
        Some((new_name, d))
    }

    /// Passes every in-order queued message of proxy `name` on (§4.7.4).
    fn forward_from_proxy(&mut self, name: PortName) {
        loop {
            let Some(p) = self.ports.get_mut(&name) else {
                return;
            };
            let Some(message) = p.queue.take_next() else {
                return;
            };
            let (node, peer) = (p.peer_node, p.peer_port);
            self.queued_messages = self.queued_messages.saturating_sub(1);
            let mut after = Vec::new();
            let (ports, descriptors) = self.prepare_attached(message.ports, node, &mut after);
            let event = Event::UserMessage {
                port_name: peer,
                message: UserMessage {
                    sequence_num: message.sequence_num,
                    ports,
                    descriptors,
                    payload: message.payload,
                },
            };
            self.forward_onward_from(name, node, event);
            for (node, event, sender) in after {
                self.forward_as(sender, node, event);
            }
        }
    }

    fn initiate_proxy_removal(&mut self, name: PortName) {
        let Some(p) = self.ports.get(&name) else {
            return;
        };
        let (node, event) = (
            p.peer_node,
            Event::ObserveProxy {
                port_name: p.peer_port,
                proxy_node_name: self.name,
                proxy_port_name: name,
                proxy_target_node_name: p.peer_node,
                proxy_target_port_name: p.peer_port,
            },
        );
        self.forward_from(name, node, event);
    }

    /// Deletes proxy `name` once it knows its last message and has passed
    /// it on; then sends the retry-ack it owes, if any.
    fn try_remove_proxy(&mut self, name: PortName) {
        let Some(p) = self.ports.get_mut(&name) else {
            return;
        };
        if p.state != PortState::Proxying
            || !p.remove_proxy_on_last_message
            || p.can_accept_more_messages()
        {
            return;
        }
        let owed = p.send_on_proxy_removal.take();
        let (peer, prev) = ((p.peer_node, p.peer_port), p.prev);
        // §4.9, as Chromium numbers them: the retry ack first, then the
        // UpdatePreviousPeer, which is sent first.
        let owed = owed.map(|owed| (owed, self.take_sender(name)));
        let mut updates = Vec::new();
        self.update_previous_peer(name, peer, prev, &mut updates);
        for (node, event, sender) in updates {
            self.forward_as(sender, node, event);
        }
        let leftovers = self.erase_port(name, true);
        self.close_ports(leftovers);
        if let Some(((node, proxy), sender)) = owed {
            self.forward_as(
                sender,
                node,
                Event::ObserveProxyAck {
                    port_name: proxy,
                    last_sequence_num: INVALID_SEQUENCE_NUM,
                },
            );
        }
    }

    // ----- removal --------------------------------------------------------

    /// Removes a port, and with it the local proxies that only fed it: what
    /// they would forward would be dropped at the vanished name anyway, and
    /// in an intact ring nothing else would reach them (a proxy forwards its
    /// last message before its successor goes), but when a node is lost the
    /// closure that should free them may never come (Chromium keeps them
    /// forever). Returns the ports carried by the messages they all held.
    fn erase_port(&mut self, name: PortName, notify: bool) -> Vec<PortName> {
        let mut carried = self.erase_one(name, notify);
        // Usually no proxy feeds the port: then nothing here allocates.
        let mut work = Vec::new();
        let mut next = Some(name);
        while let Some(target) = next.take().or_else(|| work.pop()) {
            for feeder in self.local_proxies_feeding(target) {
                carried.extend(self.erase_one(feeder, true));
                work.push(feeder);
            }
        }
        carried
    }

    /// Removes one port; returns the ports carried by the messages it held.
    fn erase_one(&mut self, name: PortName, notify: bool) -> Vec<PortName> {
        let Some(mut p) = self.ports.remove(&name) else {
            return Vec::new();
        };
        self.unindex(name, (p.peer_node, p.peer_port));
        let messages = p.queue.take_all();
        self.queued_messages = self.queued_messages.saturating_sub(messages.len());
        let mut carried = Vec::new();
        for m in messages {
            carried.extend(m.ports);
        }
        let held = std::mem::take(&mut p.held_events).into_values();
        for e in p.control_queue.drain(..).map(|(_, e, _)| e).chain(held) {
            if let Event::UserMessage { message, .. } = e {
                carried.extend(message.ports);
            }
        }
        if notify {
            self.notify(Notification::PortRemoved { port: name });
        }
        carried
    }

    /// Closes one Receiving port; returns the ports in its unread messages.
    fn close_one(&mut self, name: PortName) -> Vec<PortName> {
        let Some(p) = self.ports.get(&name) else {
            return Vec::new();
        };
        if p.state != PortState::Receiving {
            return Vec::new();
        }
        let (node, event) = (
            p.peer_node,
            Event::ObserveClosure {
                port_name: p.peer_port,
                last_sequence_num: p.next_sequence_num_to_send.saturating_sub(1),
            },
        );
        let notify = !p.held_by_user;
        let lost = p.peer_lost_unexpectedly;
        let sender = self.take_sender(name);
        let mut carried;
        if lost {
            // The closure cannot travel past the lost part of the ring, so
            // the proxies still feeding this port, here or elsewhere, would
            // never learn of it (Chromium strands them). Announce the port's
            // death as a dead proxy's is announced: whoever feeds it gives up.
            carried = self.erase_one(name, notify);
            carried.extend(self.announce_death(name));
        } else {
            carried = self.erase_port(name, notify);
        }
        self.forward_as(sender, node, event);
        carried
    }

    /// Closes Receiving ports the node itself owns (orphans in messages),
    /// and whatever their queues carry, without recursion.
    fn close_ports(&mut self, mut work: Vec<PortName>) {
        while let Some(name) = work.pop() {
            let carried = self.close_one(name);
            work.extend(carried);
        }
    }

    /// Chromium's `DestroyAllPortsWithPeer` (§4.7.7): every port whose peer
    /// is on `node` (and is `port`, if given) loses its peer; proxies among
    /// them are deleted and their death announced, which in turn affects
    /// the local ports pointing at them.
    fn destroy_ports_with_peer(&mut self, node: NodeName, port: Option<PortName>) {
        let orphans = self.lose_peers(node, port);
        self.close_ports(orphans);
    }

    /// Broadcasts that local port `dead` is gone and applies that here;
    /// returns the ports to close.
    fn announce_death(&mut self, dead: PortName) -> Vec<PortName> {
        self.broadcasts.push_back(Event::ObserveProxy {
            port_name: names::INVALID_PORT,
            proxy_node_name: self.name,
            proxy_port_name: dead,
            proxy_target_node_name: names::INVALID_NODE,
            proxy_target_port_name: names::INVALID_PORT,
        });
        self.lose_peers(self.name, Some(dead))
    }

    /// The work of [`destroy_ports_with_peer`](Self::destroy_ports_with_peer)
    /// without recursion; returns the ports that rode in deleted proxies'
    /// queues, for the caller to close.
    fn lose_peers(&mut self, node: NodeName, port: Option<PortName>) -> Vec<PortName> {
        let mut work = vec![(node, port)];
        let mut orphans = Vec::new();
        while let Some((node, port)) = work.pop() {
            let hit = self.ports_with_peer(node, port);
            let mut dead = Vec::new();
            for name in hit {
                let Some(p) = self.ports.get_mut(&name) else {
                    continue;
                };
                if !p.peer_closed {
                    p.peer_closed = true;
                    p.peer_lost_unexpectedly = true;
                    if p.state == PortState::Receiving && p.held_by_user {
                        self.notifications
                            .push_back(Notification::PeerClosed { port: name });
                    }
                }
                if p.state != PortState::Receiving {
                    dead.push(name);
                }
            }
            for name in dead {
                orphans.extend(self.erase_one(name, true));
                self.broadcasts.push_back(Event::ObserveProxy {
                    port_name: names::INVALID_PORT,
                    proxy_node_name: self.name,
                    proxy_port_name: name,
                    proxy_target_node_name: names::INVALID_NODE,
                    proxy_target_port_name: names::INVALID_PORT,
                });
                work.push((self.name, Some(name)));
            }
        }
        orphans
    }

    // ----- the peer index ------------------------------------------------

    fn insert_port(&mut self, name: PortName, port: Port<M>) {
        let peer = (port.peer_node, port.peer_port);
        self.ports.insert(name, port);
        self.index(name, peer);
    }

    fn index(&mut self, name: PortName, peer: (NodeName, PortName)) {
        if self.by_peer.insert((peer.0, peer.1, name)) {
            *self.towards.entry(peer.0).or_default() += 1;
        }
    }

    /// How many local ports (of any state) send to `node`: what the ports
    /// index holds for it, without walking the ports.
    pub fn ports_towards(&self, node: NodeName) -> usize {
        self.towards.get(&node).copied().unwrap_or(0)
    }

    fn set_peer(&mut self, name: PortName, peer: (NodeName, PortName)) {
        let Some(p) = self.ports.get_mut(&name) else {
            return;
        };
        let old = (p.peer_node, p.peer_port);
        (p.peer_node, p.peer_port) = peer;
        // A new peer numbers this port's events from 1 (§4.9).
        p.next_control_to_send = INITIAL_SEQUENCE_NUM;
        self.unindex(name, old);
        self.index(name, peer);
    }

    fn unindex(&mut self, name: PortName, peer: (NodeName, PortName)) {
        if !self.by_peer.remove(&(peer.0, peer.1, name)) {
            return;
        }
        if let Some(count) = self.towards.get_mut(&peer.0) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.towards.remove(&peer.0);
            }
        }
    }

    /// Local Proxying ports whose peer is local port `target`, by name (the
    /// vector allocates only if there is one).
    fn local_proxies_feeding(&self, target: PortName) -> Vec<PortName> {
        let (me, first, last) = (
            self.name,
            PortName::new(0, 0),
            PortName::new(u64::MAX, u64::MAX),
        );
        self.by_peer
            .range((me, target, first)..=(me, target, last))
            .map(|&(_, _, name)| name)
            .filter(|n| self.port_state(*n) == Some(PortState::Proxying))
            .collect()
    }

    /// Local ports whose peer is on `node` (and is `port`, if given), by
    /// peer port, then name.
    fn ports_with_peer(&self, node: NodeName, port: Option<PortName>) -> Vec<PortName> {
        const FIRST: PortName = PortName::new(0, 0);
        const LAST: PortName = PortName::new(u64::MAX, u64::MAX);
        let (from, to) = match port {
            Some(port) => ((node, port, FIRST), (node, port, LAST)),
            None => ((node, FIRST, FIRST), (node, LAST, LAST)),
        };
        self.by_peer
            .range(from..=to)
            .map(|&(_, _, name)| name)
            .collect()
    }

    /// The peer index matches the ports (tests check it after each step).
    #[cfg(test)]
    pub(crate) fn check_peer_index(&self) {
        let expected: BTreeSet<(NodeName, PortName, PortName)> = self
            .ports
            .iter()
            .map(|(name, p)| (p.peer_node, p.peer_port, *name))
            .collect();
        assert_eq!(expected, self.by_peer, "peer index out of date");
        let mut counts: BTreeMap<NodeName, usize> = BTreeMap::new();
        for (node, _, _) in &expected {
            *counts.entry(*node).or_default() += 1;
        }
        assert_eq!(counts, self.towards, "per-node port counts out of date");
    }

    /// Recounts queued messages (tests check the running count).
    #[cfg(test)]
    pub(crate) fn recount_queued(&self) -> usize {
        self.ports.values().map(|p| p.queue.len()).sum()
    }
}
