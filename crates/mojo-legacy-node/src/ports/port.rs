//! One port's state (spec §4.4; field names follow Chromium's `port.h`).

use mojo_legacy_wire::{NodeName, PortName};

use std::collections::BTreeMap;

use super::queue::MessageQueue;
use super::{Event, INITIAL_SEQUENCE_NUM};

/// What a port is doing. Closed ports are deleted at once (compact mode), so
/// there is no Closed state to observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    /// A pipe end: the user reads and writes here.
    Receiving,
    /// Just sent to another node; waits for `PortAccepted`, holding what
    /// arrives.
    Buffering,
    /// Forwards everything to its peer until it can be removed.
    Proxying,
}

#[derive(Debug)]
pub(crate) struct Port<M> {
    pub(crate) state: PortState,
    pub(crate) peer_node: NodeName,
    pub(crate) peer_port: PortName,
    pub(crate) next_sequence_num_to_send: u64,
    pub(crate) queue: MessageQueue<M>,
    pub(crate) last_sequence_num_to_receive: u64,
    pub(crate) peer_closed: bool,
    pub(crate) peer_lost_unexpectedly: bool,
    pub(crate) remove_proxy_on_last_message: bool,
    /// The retry-ack (node, proxy port) owed once this proxy is removed.
    pub(crate) send_on_proxy_removal: Option<(NodeName, PortName)>,
    /// Events a Buffering port defers until it is accepted.
    pub(crate) control_queue: Vec<(NodeName, Event<M>, super::Sender)>,
    pub(crate) last_sequence_num_acknowledged: u64,
    pub(crate) sequence_num_acknowledge_interval: u64,
    pub(crate) sequence_num_to_acknowledge: u64,
    pub(crate) pending_merge_peer: bool,
    /// Sender verification (§4.9): the port expected to send to this one.
    pub(crate) prev: (NodeName, PortName),
    /// The next control sequence number this port sends (reset to 1
    /// whenever its peer changes).
    pub(crate) next_control_to_send: u64,
    /// The next control sequence number expected from `prev`.
    pub(crate) next_control_to_receive: u64,
    /// Events from senders other than `prev`, or ahead of their turn, by
    /// (sender node, sender port, control sequence number).
    pub(crate) held_events: BTreeMap<(NodeName, PortName, u64), Event<M>>,
    /// The user holds this port: it may be used in local operations and its
    /// changes are notified. False while it rides in an unread message
    /// (Chromium's "signalable") and once it is sent away.
    pub(crate) held_by_user: bool,
}

impl<M> Port<M> {
    /// A Receiving port; the numbers must be at least 1.
    pub(crate) fn new(
        peer_node: NodeName,
        peer_port: PortName,
        next_sequence_num_to_send: u64,
        next_sequence_num_to_receive: u64,
    ) -> Self {
        Self {
            state: PortState::Receiving,
            peer_node,
            peer_port,
            next_sequence_num_to_send,
            queue: MessageQueue::new(next_sequence_num_to_receive),
            last_sequence_num_to_receive: 0,
            peer_closed: false,
            peer_lost_unexpectedly: false,
            remove_proxy_on_last_message: false,
            send_on_proxy_removal: None,
            control_queue: Vec::new(),
            last_sequence_num_acknowledged: next_sequence_num_to_send.saturating_sub(1),
            sequence_num_acknowledge_interval: 0,
            sequence_num_to_acknowledge: 0,
            pending_merge_peer: false,
            prev: (peer_node, peer_port),
            next_control_to_send: INITIAL_SEQUENCE_NUM,
            next_control_to_receive: INITIAL_SEQUENCE_NUM,
            held_events: BTreeMap::new(),
            held_by_user: true,
        }
    }

    /// Chromium's `CanAcceptMoreMessages`: false once the last expected
    /// message has been taken from the queue.
    pub(crate) fn can_accept_more_messages(&self) -> bool {
        if self.peer_closed || self.remove_proxy_on_last_message {
            if self.peer_lost_unexpectedly {
                return self.queue.has_next();
            }
            if self.last_sequence_num_to_receive == self.queue.next_seq().saturating_sub(1) {
                return false;
            }
        }
        true
    }

    /// The last number this port will still receive, for a descriptor or a
    /// closure it sends. After a peer loss Chromium leaves
    /// `last_sequence_num_to_receive` stale; the true answer is the end of
    /// the in-order messages it holds.
    pub(crate) fn last_expected(&self) -> u64 {
        if self.peer_lost_unexpectedly {
            self.queue.contiguous_end()
        } else {
            self.last_sequence_num_to_receive
        }
    }

    /// Messages taken from the queue so far (read or forwarded).
    pub(crate) fn taken(&self) -> u64 {
        self.queue.next_seq().saturating_sub(1)
    }
}
