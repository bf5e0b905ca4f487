//! Typed errors of the node layer: [`NodeError`] for bad input from a peer
//! (the node has dropped that peer when it returns one), [`ApiError`] for a
//! local operation the node refuses, [`HandleError`] for a handle value
//! that cannot travel.

use std::fmt;

use mojo_legacy_wire::channel::MessageType;
use mojo_legacy_wire::node::NodeMessageType;
use mojo_legacy_wire::user_message::DispatcherType;
use mojo_legacy_wire::{NodeName, PortName};
use mojo_wire_kit::RegionMode;

use super::isolated::IsolatedId;
use crate::ports;

/// Which layer of a frame failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The channel header and framing (§1).
    Frame,
    /// The NodeChannel header or a NodeChannel body (§3).
    NodeMessage,
    /// A ports event (§4.2, §4.3).
    Event,
    /// The user-message part of a `UserMessage` event (§5.1).
    UserMessage,
    /// An attached dispatcher's state (§5.2).
    Dispatcher,
    /// The channel message inside a `BROADCAST_EVENT` (§3.6).
    Broadcast,
}

/// What was wrong with input from a peer. When `handle_frame` returns one,
/// the node has already dropped the peer (its ports are peer-lost, every fd
/// it held in transit is closed), except for [`NodeError::UnknownPeer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeError {
    /// The frame names a peer that has no link (never added, or dropped).
    UnknownPeer {
        /// The peer.
        peer: NodeName,
    },
    /// A layer of the frame did not decode.
    Malformed {
        /// The layer.
        layer: Layer,
        /// What the wire crate reported (it names the field).
        error: mojo_legacy_wire::Error,
    },
    /// The channel header's `num_handles` differs from the fds that came
    /// with the frame.
    FdCountMismatch {
        /// `num_handles`.
        declared: usize,
        /// Fds received.
        received: usize,
    },
    /// The dispatchers of a user message claim more fds than it carries.
    FdClaimsExceedFds {
        /// Fds the dispatchers claim.
        claimed: u64,
        /// Fds available.
        received: usize,
    },
    /// The dispatchers of a user message claim a different number of ports
    /// than the event attaches.
    PortClaimMismatch {
        /// Ports the dispatchers claim.
        claimed: u64,
        /// Ports the event attaches.
        attached: usize,
    },
    /// A dispatcher of a type that cannot be transferred.
    UntransferableDispatcher {
        /// Its type.
        dispatcher_type: DispatcherType,
    },
    /// A received handle is invalid.
    BadHandle(HandleError),
    /// A NodeChannel message this node must not receive on an established
    /// link (handshake messages, or a message for the other role).
    UnexpectedMessage {
        /// Its type.
        message_type: NodeMessageType,
    },
    /// A channel control message other than the upgrade messages.
    UnexpectedControl {
        /// Its type.
        message_type: MessageType,
    },
    /// `REQUEST_INTRODUCTION` or `INTRODUCE` naming the sender itself or the
    /// invalid node.
    InvalidIntroduction {
        /// The name.
        name: NodeName,
    },
    /// A `BROADCAST_EVENT` whose event is not a broadcast `ObserveProxy`.
    InvalidBroadcast,
    /// `REQUEST_PORT_MERGE` naming an invalid connector port, or
    /// `ACCEPT_PEER` naming an invalid port or this side's own connector.
    InvalidMerge {
        /// The connector port.
        port: PortName,
    },
    /// The ports layer refused the event (except for the refusals reported
    /// as [`NodeEvent::EventDropped`](super::NodeEvent::EventDropped)).
    Ports(ports::Error),
    /// A port already holds [`NodeLimits::max_queued_messages_per_port`](super::NodeLimits).
    TooManyQueuedMessages {
        /// The port.
        port: PortName,
        /// The limit.
        limit: usize,
    },
    /// The peer would have more than [`NodeLimits::max_ports_per_peer`](super::NodeLimits)
    /// ports pointing at it.
    TooManyPorts {
        /// The limit.
        limit: usize,
    },
    /// The node would hold more than [`NodeLimits::max_fds_per_peer`](super::NodeLimits)
    /// fds received from the peer.
    TooManyFds {
        /// The limit.
        limit: usize,
    },
    /// A frame for an isolated connection the node does not have (never
    /// made, or over).
    UnknownIsolatedConnection {
        /// The connection.
        id: IsolatedId,
    },
    /// An isolated connection's first frame is not `ACCEPT_PEER` (§3.7).
    NotAcceptPeer,
    /// `ACCEPT_PEER` naming this node or the invalid node.
    InvalidIsolatedPeer {
        /// The name.
        name: NodeName,
    },
    /// `ACCEPT_PEER` from a node that is already this node's broker or
    /// client.
    IsolatedPeerInUse {
        /// The node.
        peer: NodeName,
    },
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownPeer { peer } => write!(f, "no link to peer {peer}"),
            Self::Malformed { layer, error } => write!(f, "malformed {layer:?}: {error}"),
            Self::FdCountMismatch { declared, received } => {
                write!(f, "frame declares {declared} fds, {received} came")
            }
            Self::FdClaimsExceedFds { claimed, received } => {
                write!(f, "dispatchers claim {claimed} fds, {received} came")
            }
            Self::PortClaimMismatch { claimed, attached } => {
                write!(
                    f,
                    "dispatchers claim {claimed} ports, event attaches {attached}"
                )
            }
            Self::UntransferableDispatcher { dispatcher_type } => {
                write!(f, "dispatcher {dispatcher_type:?} cannot be transferred")
            }
            Self::BadHandle(e) => write!(f, "bad handle: {e}"),
            Self::UnexpectedMessage { message_type } => {
                write!(f, "unexpected {message_type:?} on an established link")
            }
            Self::UnexpectedControl { message_type } => {
                write!(f, "unexpected control message {message_type:?}")
            }
            Self::InvalidIntroduction { name } => write!(f, "introduction of {name} refused"),
            Self::InvalidBroadcast => write!(f, "broadcast is not a dead-proxy ObserveProxy"),
            Self::InvalidMerge { port } => write!(f, "merge with connector {port} refused"),
            Self::Ports(e) => write!(f, "ports: {e}"),
            Self::TooManyQueuedMessages { port, limit } => {
                write!(f, "port {port} already queues {limit} messages")
            }
            Self::TooManyPorts { limit } => write!(f, "peer exceeds {limit} ports"),
            Self::TooManyFds { limit } => write!(f, "peer exceeds {limit} held fds"),
            Self::UnknownIsolatedConnection { id } => write!(f, "no {id}"),
            Self::NotAcceptPeer => {
                write!(f, "an isolated connection must begin with ACCEPT_PEER")
            }
            Self::InvalidIsolatedPeer { name } => {
                write!(f, "ACCEPT_PEER names {name}, which cannot be a peer")
            }
            Self::IsolatedPeerInUse { peer } => {
                write!(f, "ACCEPT_PEER from {peer}, already linked in this network")
            }
        }
    }
}

impl std::error::Error for NodeError {}

/// A handle that cannot travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleError {
    /// A shared buffer of size 0.
    ZeroSizedBuffer,
    /// A shared buffer with the all-zero guid.
    InvalidGuid,
    /// A shared buffer whose fd count does not match its mode.
    SharedBufferFdCount {
        /// The mode.
        mode: RegionMode,
        /// Fds the mode needs.
        expected: usize,
        /// Fds given.
        actual: usize,
    },
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroSizedBuffer => write!(f, "zero-sized shared buffer"),
            Self::InvalidGuid => write!(f, "shared buffer without a guid"),
            Self::SharedBufferFdCount {
                mode,
                expected,
                actual,
            } => write!(f, "{mode} region needs {expected} fds, got {actual}"),
        }
    }
}

impl std::error::Error for HandleError {}

/// Why a local operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The ports layer refused it.
    Ports(ports::OpError),
    /// No link to that peer.
    UnknownPeer {
        /// The peer.
        peer: NodeName,
    },
    /// `add_peer` for this node, the invalid name, or a peer already linked.
    InvalidPeer {
        /// The peer.
        peer: NodeName,
    },
    /// A handle cannot travel.
    BadHandle(HandleError),
    /// More fds in one message than a Chromium peer accepts
    /// ([`MAX_OUTGOING_HANDLES_PER_MESSAGE`](mojo_legacy_wire::limits::MAX_OUTGOING_HANDLES_PER_MESSAGE)).
    TooManyFds {
        /// Fds attached.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An attachment name must not be empty.
    EmptyAttachmentName,
    /// An attachment of that name is already reserved.
    AttachmentNameInUse,
    /// A message read from the port carried handles that did not match its
    /// ports (a bug); the message was dropped and its ports closed.
    InconsistentMessage {
        /// Ports the handles claim.
        claimed: usize,
        /// Ports the message carried.
        ports: usize,
    },
    /// A frame could not be encoded (a size beyond its wire field).
    Encode(mojo_legacy_wire::Error),
}

impl From<ports::OpError> for ApiError {
    fn from(e: ports::OpError) -> Self {
        Self::Ports(e)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ports(e) => write!(f, "{e}"),
            Self::UnknownPeer { peer } => write!(f, "no link to peer {peer}"),
            Self::InvalidPeer { peer } => write!(f, "cannot link peer {peer}"),
            Self::BadHandle(e) => write!(f, "{e}"),
            Self::TooManyFds { count, limit } => {
                write!(f, "{count} fds in one message, at most {limit}")
            }
            Self::EmptyAttachmentName => write!(f, "empty attachment name"),
            Self::AttachmentNameInUse => write!(f, "attachment name already reserved"),
            Self::InconsistentMessage { claimed, ports } => {
                write!(
                    f,
                    "message handles claim {claimed} ports, it carried {ports}"
                )
            }
            Self::Encode(e) => write!(f, "encode: {e}"),
        }
    }
}

impl std::error::Error for ApiError {}
