//! The owned, semantic model of ports events (spec `legacy-core.md` §4.3).
//!
//! These types carry what the state machine needs and nothing of the wire
//! form: no header form, no padding, no sender fields of the extended header.
//! The user-message payload is opaque (`M`); the ports layer only looks at
//! the attached ports and the sequence number.

use mojo_legacy_wire::{NodeName, PortName};

/// The sequence number of the first user message a port sends or receives
/// (`kInitialSequenceNum`).
pub const INITIAL_SEQUENCE_NUM: u64 = 1;
/// `kInvalidSequenceNum`; in `ObserveProxyAck` it means "retry".
pub const INVALID_SEQUENCE_NUM: u64 = u64::MAX;

/// The state of a port that moves to another node (96 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortDescriptor {
    /// Node of the moving port's current peer.
    pub peer_node_name: NodeName,
    /// That peer port.
    pub peer_port_name: PortName,
    /// The sending node, where the proxy stays; `PortAccepted` goes there.
    pub referring_node_name: NodeName,
    /// The port on the sending node that became the proxy.
    pub referring_port_name: PortName,
    /// Where the moving port continues its outgoing numbering.
    pub next_sequence_num_to_send: u64,
    /// The first incoming sequence number still expected.
    pub next_sequence_num_to_receive: u64,
    /// The peer's last sequence number; meaningful if `peer_closed`.
    pub last_sequence_num_to_receive: u64,
    /// The peer has closed.
    pub peer_closed: bool,
}

/// A user message as the ports layer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMessage<M> {
    /// The number the originating port gave it (1, 2, 3, ...).
    pub sequence_num: u64,
    /// Names of the attached ports on the receiving node.
    pub ports: Vec<PortName>,
    /// One descriptor per attached port when the message crosses nodes;
    /// empty when it is routed within one node.
    pub descriptors: Vec<PortDescriptor>,
    /// The opaque payload (bytes and handles, for the layer above).
    pub payload: M,
}

/// A ports event, addressed to `port_name` on the receiving node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<M> {
    /// Type 0: a user message.
    UserMessage {
        /// Destination port.
        port_name: PortName,
        /// The message.
        message: UserMessage<M>,
    },
    /// Type 1: the port sent in a descriptor now exists; start proxying.
    PortAccepted {
        /// The referring (Buffering) port.
        port_name: PortName,
    },
    /// Type 2: "bypass this proxy"; broadcast (port invalid) means "this
    /// proxy is dead".
    ObserveProxy {
        /// Destination port (invalid for a broadcast).
        port_name: PortName,
        /// Node of the proxy to bypass.
        proxy_node_name: NodeName,
        /// The proxy to bypass.
        proxy_port_name: PortName,
        /// Node of the proxy's peer.
        proxy_target_node_name: NodeName,
        /// The proxy's peer.
        proxy_target_port_name: PortName,
    },
    /// Type 3: answer to ObserveProxy.
    ObserveProxyAck {
        /// The proxy.
        port_name: PortName,
        /// Last message the proxy will receive, or [`INVALID_SEQUENCE_NUM`]
        /// to ask for a new ObserveProxy.
        last_sequence_num: u64,
    },
    /// Type 4: the sending end closed after sending `last_sequence_num`
    /// messages.
    ObserveClosure {
        /// Destination port.
        port_name: PortName,
        /// Last sequence number the closed end sent.
        last_sequence_num: u64,
    },
    /// Type 5: merge `port_name` with the port described here.
    MergePort {
        /// The pending-merge connector port.
        port_name: PortName,
        /// Name of the new port on the receiving node.
        new_port_name: PortName,
        /// Its state.
        new_port_descriptor: PortDescriptor,
    },
    /// Type 6: "tell me when you have read message N".
    UserMessageReadAckRequest {
        /// Destination port.
        port_name: PortName,
        /// N.
        sequence_num_to_acknowledge: u64,
    },
    /// Type 7: "I have read up to N".
    UserMessageReadAck {
        /// Destination port.
        port_name: PortName,
        /// N.
        sequence_num_acknowledged: u64,
    },
    /// Type 8: extended header mode only; ignored in compact mode.
    UpdatePreviousPeer {
        /// Destination port.
        port_name: PortName,
        /// New predecessor node.
        new_node_name: NodeName,
        /// New predecessor port.
        new_port_name: PortName,
    },
}

/// The type of an [`Event`], for logs, errors and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// [`Event::UserMessage`].
    UserMessage,
    /// [`Event::PortAccepted`].
    PortAccepted,
    /// [`Event::ObserveProxy`].
    ObserveProxy,
    /// [`Event::ObserveProxyAck`].
    ObserveProxyAck,
    /// [`Event::ObserveClosure`].
    ObserveClosure,
    /// [`Event::MergePort`].
    MergePort,
    /// [`Event::UserMessageReadAckRequest`].
    UserMessageReadAckRequest,
    /// [`Event::UserMessageReadAck`].
    UserMessageReadAck,
    /// [`Event::UpdatePreviousPeer`].
    UpdatePreviousPeer,
}

impl<M> Event<M> {
    /// The destination port on the receiving node.
    pub fn port_name(&self) -> PortName {
        match self {
            Self::UserMessage { port_name, .. }
            | Self::PortAccepted { port_name }
            | Self::ObserveProxy { port_name, .. }
            | Self::ObserveProxyAck { port_name, .. }
            | Self::ObserveClosure { port_name, .. }
            | Self::MergePort { port_name, .. }
            | Self::UserMessageReadAckRequest { port_name, .. }
            | Self::UserMessageReadAck { port_name, .. }
            | Self::UpdatePreviousPeer { port_name, .. } => *port_name,
        }
    }

    /// The event's type.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::UserMessage { .. } => EventKind::UserMessage,
            Self::PortAccepted { .. } => EventKind::PortAccepted,
            Self::ObserveProxy { .. } => EventKind::ObserveProxy,
            Self::ObserveProxyAck { .. } => EventKind::ObserveProxyAck,
            Self::ObserveClosure { .. } => EventKind::ObserveClosure,
            Self::MergePort { .. } => EventKind::MergePort,
            Self::UserMessageReadAckRequest { .. } => EventKind::UserMessageReadAckRequest,
            Self::UserMessageReadAck { .. } => EventKind::UserMessageReadAck,
            Self::UpdatePreviousPeer { .. } => EventKind::UpdatePreviousPeer,
        }
    }
    /// The same event with its user-message payload converted by `f`
    /// (which only a `UserMessage` calls); `f`'s error is returned as is.
    pub fn try_map_payload<N, E>(self, f: impl FnOnce(M) -> Result<N, E>) -> Result<Event<N>, E> {
        Ok(match self {
            Self::UserMessage { port_name, message } => Event::UserMessage {
                port_name,
                message: UserMessage {
                    sequence_num: message.sequence_num,
                    ports: message.ports,
                    descriptors: message.descriptors,
                    payload: f(message.payload)?,
                },
            },
            Self::PortAccepted { port_name } => Event::PortAccepted { port_name },
            Self::ObserveProxy {
                port_name,
                proxy_node_name,
                proxy_port_name,
                proxy_target_node_name,
                proxy_target_port_name,
            } => Event::ObserveProxy {
                port_name,
                proxy_node_name,
                proxy_port_name,
                proxy_target_node_name,
                proxy_target_port_name,
            },
            Self::ObserveProxyAck {
                port_name,
                last_sequence_num,
            } => Event::ObserveProxyAck {
                port_name,
                last_sequence_num,
            },
            Self::ObserveClosure {
                port_name,
                last_sequence_num,
            } => Event::ObserveClosure {
                port_name,
                last_sequence_num,
            },
            Self::MergePort {
                port_name,
                new_port_name,
                new_port_descriptor,
            } => Event::MergePort {
                port_name,
                new_port_name,
                new_port_descriptor,
            },
            Self::UserMessageReadAckRequest {
                port_name,
                sequence_num_to_acknowledge,
            } => Event::UserMessageReadAckRequest {
                port_name,
                sequence_num_to_acknowledge,
            },
            Self::UserMessageReadAck {
                port_name,
                sequence_num_acknowledged,
            } => Event::UserMessageReadAck {
                port_name,
                sequence_num_acknowledged,
            },
            Self::UpdatePreviousPeer {
                port_name,
                new_node_name,
                new_port_name,
            } => Event::UpdatePreviousPeer {
                port_name,
                new_node_name,
                new_port_name,
            },
        })
    }
}
