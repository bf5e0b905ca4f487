//! Typed errors: [`Error`] for bad input from a peer node, [`OpError`] for a
//! local operation the node refuses.

use std::fmt;

use mojo_legacy_wire::PortName;

use super::EventKind;
use super::PortState;

/// What was wrong with an event from a peer node. The node stays consistent
/// (ports a refused user message carried are accepted and closed, so their
/// proxies do not freeze); the caller decides whether to drop the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `handle_event` was called with this node's own name (or the invalid
    /// name) as the sender.
    EventFromSelf,
    /// A user message numbered 0 or [`INVALID_SEQUENCE_NUM`](super::INVALID_SEQUENCE_NUM).
    InvalidSequenceNum {
        /// Destination port.
        port: PortName,
        /// The number.
        sequence_num: u64,
    },
    /// A user message whose port list and descriptor list differ in length.
    PortCountMismatch {
        /// Attached port names.
        ports: usize,
        /// Descriptors.
        descriptors: usize,
    },
    /// A user message carrying more ports than [`Limits::max_ports_per_message`](super::Limits).
    TooManyPortsInMessage {
        /// Ports carried.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// An attached or merged port's new name is the invalid name.
    InvalidNewPortName,
    /// A descriptor field is invalid.
    InvalidDescriptor {
        /// The descriptor's index in its message (0 for MergePort).
        index: usize,
        /// The field.
        field: &'static str,
    },
    /// A port the peer wants created already exists here.
    PortExists {
        /// Its name.
        port: PortName,
    },
    /// A user message would create its own destination port, which would
    /// then sit in its own queue forever.
    MessageCarriesItsDestination {
        /// The port.
        port: PortName,
    },
    /// A user message whose user-message part cannot be read (§6.3) is
    /// addressed to a proxy or to a port still inside a queued message,
    /// which cannot be closed in its place.
    UndeliverableMessage {
        /// The port.
        port: PortName,
    },
    /// Sender verification (§4.9): a second event from the same sender with
    /// the same control sequence number is waiting for its turn.
    DuplicateControlSequenceNum {
        /// The destination port.
        port: PortName,
        /// The repeated number.
        control_sequence_num: u64,
    },
    /// An `UpdatePreviousPeer` names an invalid node or port.
    InvalidUpdatePreviousPeer {
        /// The destination port.
        port: PortName,
    },
    /// One message names the same new port twice.
    DuplicateNewPort {
        /// Its name.
        port: PortName,
    },
    /// Accepting the ports would exceed [`Limits::max_ports`](super::Limits).
    TooManyPorts {
        /// The limit.
        limit: usize,
    },
    /// A user message numbered below the port's next expected number.
    StaleSequenceNum {
        /// Destination port.
        port: PortName,
        /// The number.
        sequence_num: u64,
        /// The next number the port expects.
        next_expected: u64,
    },
    /// A second user message with a number already queued.
    DuplicateSequenceNum {
        /// Destination port.
        port: PortName,
        /// The number.
        sequence_num: u64,
    },
    /// A user message too far ahead of the in-order messages
    /// ([`Limits::max_reorder_window`](super::Limits)).
    ReorderWindowExceeded {
        /// Destination port.
        port: PortName,
        /// The number.
        sequence_num: u64,
        /// The limit.
        limit: u64,
    },
    /// Queuing the message would exceed [`Limits::max_queued_messages`](super::Limits).
    TooManyQueuedMessages {
        /// The limit.
        limit: usize,
    },
    /// A Buffering port's deferred control events would exceed
    /// [`Limits::max_control_queue`](super::Limits).
    ControlQueueFull {
        /// The Buffering port.
        port: PortName,
        /// The limit.
        limit: usize,
    },
    /// `PortAccepted` for a port that is not Buffering.
    UnexpectedPortAccepted {
        /// The port.
        port: PortName,
        /// Its state.
        state: PortState,
    },
    /// `ObserveProxyAck` for a port that is not a proxy.
    UnexpectedObserveProxyAck {
        /// The port.
        port: PortName,
        /// Its state.
        state: PortState,
    },
    /// An `ObserveProxy` that reached a port already bypassing that proxy
    /// (its peer is the proxy's target): a replay. Forwarding it on would
    /// send it round the ring forever, so it is dropped.
    StaleObserveProxy {
        /// The port it reached.
        port: PortName,
        /// The proxy it announces.
        proxy: PortName,
    },
    /// An `ObserveProxy` with an invalid or self-referencing name.
    InvalidObserveProxy {
        /// The field.
        field: &'static str,
    },
    /// An `ObserveProxyAck` claims fewer messages than the proxy already
    /// passed on (a closure that does is read as "nothing more comes").
    LastSequenceNumBehind {
        /// The port.
        port: PortName,
        /// The event that carried it.
        event: EventKind,
        /// The claimed last sequence number.
        last_sequence_num: u64,
        /// Messages already taken from the port's queue.
        already_taken: u64,
    },
    /// `MergePort` for a port that is not a pending merge connector.
    UnexpectedMergePort {
        /// The port.
        port: PortName,
    },
    /// `MergePort` whose two ports cannot be merged (both were closed).
    MergeRefused {
        /// The connector port.
        port: PortName,
        /// Why.
        reason: &'static str,
    },
    /// `UserMessageReadAck` for a message a receiving port never sent.
    ReadAckBeyondSent {
        /// The port.
        port: PortName,
        /// The acknowledged number.
        acknowledged: u64,
        /// The port's next number to send.
        next_to_send: u64,
    },
    /// An event went round a ring of local ports without finding its
    /// target (only a forged event can); it was dropped.
    RoutingLoop {
        /// The event's type.
        event: EventKind,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EventFromSelf => write!(f, "event claims to come from this node"),
            Self::InvalidSequenceNum { port, sequence_num } => {
                write!(
                    f,
                    "user message to {port} has invalid sequence_num {sequence_num}"
                )
            }
            Self::PortCountMismatch { ports, descriptors } => write!(
                f,
                "user message carries {ports} port names but {descriptors} descriptors"
            ),
            Self::TooManyPortsInMessage { count, limit } => {
                write!(f, "user message carries {count} ports (limit {limit})")
            }
            Self::InvalidNewPortName => write!(f, "new port name is invalid (zero)"),
            Self::InvalidDescriptor { index, field } => {
                write!(f, "port descriptor {index}: invalid {field}")
            }
            Self::PortExists { port } => write!(f, "port {port} already exists"),
            Self::DuplicateNewPort { port } => write!(f, "new port {port} named twice"),
            Self::DuplicateControlSequenceNum {
                port,
                control_sequence_num,
            } => write!(
                f,
                "control sequence number {control_sequence_num} to {port} already waits"
            ),
            Self::InvalidUpdatePreviousPeer { port } => {
                write!(f, "UpdatePreviousPeer to {port} names an invalid sender")
            }
            Self::UndeliverableMessage { port } => {
                write!(
                    f,
                    "unreadable user message to {port}, which is not a user's endpoint"
                )
            }
            Self::MessageCarriesItsDestination { port } => {
                write!(f, "user message to {port} would create {port} itself")
            }
            Self::TooManyPorts { limit } => write!(f, "more than {limit} ports"),
            Self::StaleSequenceNum {
                port,
                sequence_num,
                next_expected,
            } => write!(
                f,
                "user message {sequence_num} to {port} is stale (next expected {next_expected})"
            ),
            Self::DuplicateSequenceNum { port, sequence_num } => {
                write!(f, "user message {sequence_num} to {port} is a duplicate")
            }
            Self::ReorderWindowExceeded {
                port,
                sequence_num,
                limit,
            } => write!(
                f,
                "user message {sequence_num} to {port} is more than {limit} ahead of the in-order messages"
            ),
            Self::TooManyQueuedMessages { limit } => {
                write!(f, "more than {limit} queued user messages")
            }
            Self::ControlQueueFull { port, limit } => {
                write!(f, "buffering port {port} defers more than {limit} events")
            }
            Self::UnexpectedPortAccepted { port, state } => {
                write!(f, "PortAccepted for {port} in state {state:?}")
            }
            Self::UnexpectedObserveProxyAck { port, state } => {
                write!(f, "ObserveProxyAck for {port} in state {state:?}")
            }
            Self::StaleObserveProxy { port, proxy } => {
                write!(
                    f,
                    "ObserveProxy for {proxy} at {port}, which already bypasses it"
                )
            }
            Self::InvalidObserveProxy { field } => write!(f, "ObserveProxy: invalid {field}"),
            Self::LastSequenceNumBehind {
                port,
                event,
                last_sequence_num,
                already_taken,
            } => write!(
                f,
                "{event:?} for {port} says last {last_sequence_num}, but {already_taken} messages were already taken"
            ),
            Self::UnexpectedMergePort { port } => {
                write!(f, "MergePort for {port}, which is not a pending merge port")
            }
            Self::MergeRefused { port, reason } => {
                write!(f, "merge with {port} refused: {reason}")
            }
            Self::ReadAckBeyondSent {
                port,
                acknowledged,
                next_to_send,
            } => write!(
                f,
                "UserMessageReadAck {acknowledged} for {port}, which has only sent up to {}",
                next_to_send.saturating_sub(1)
            ),
            Self::RoutingLoop { event } => {
                write!(f, "{event:?} looped through local ports and was dropped")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Why a local operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpError {
    /// No such port, or the port is not held by the user (it was sent, or it
    /// rides in a message not read yet).
    UnknownPort {
        /// The port.
        port: PortName,
    },
    /// The port is not Receiving.
    WrongState {
        /// The port.
        port: PortName,
        /// Its state.
        state: PortState,
    },
    /// The peer has closed (or was lost) and every message it sent has been
    /// read (`get_message`), or it can receive nothing more (`send_message`).
    PeerClosed {
        /// The port.
        port: PortName,
    },
    /// A port cannot carry itself.
    CannotSendSelf {
        /// The port.
        port: PortName,
    },
    /// A port cannot carry its own (local) peer.
    CannotSendPeer {
        /// The peer.
        port: PortName,
    },
    /// The same port is attached twice.
    DuplicateAttachment {
        /// The port.
        port: PortName,
    },
    /// [`Limits::max_ports`](super::Limits) reached.
    TooManyPorts,
    /// The random source kept giving names already in use.
    NameGenerationFailed,
    /// The port has used up its sequence numbers.
    SequenceExhausted {
        /// The port.
        port: PortName,
    },
    /// A merge needs a remote node and a valid port name.
    InvalidMergeTarget,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownPort { port } => write!(f, "port {port} is not held by the user"),
            Self::WrongState { port, state } => write!(f, "port {port} is {state:?}"),
            Self::PeerClosed { port } => write!(f, "peer of {port} is closed"),
            Self::CannotSendSelf { port } => write!(f, "port {port} cannot carry itself"),
            Self::CannotSendPeer { port } => write!(f, "cannot send {port} to its own peer"),
            Self::DuplicateAttachment { port } => write!(f, "port {port} attached twice"),
            Self::TooManyPorts => write!(f, "port limit reached"),
            Self::NameGenerationFailed => write!(f, "random source gave only names in use"),
            Self::SequenceExhausted { port } => {
                write!(f, "port {port} ran out of sequence numbers")
            }
            Self::InvalidMergeTarget => {
                write!(f, "merge target must be a remote node and a valid port")
            }
        }
    }
}

impl std::error::Error for OpError {}
