//! Typed errors of the legacy connectors: each names what was wrong and on
//! which socket, never with a `String`.

use std::fmt;

use mojo_legacy_wire::broker::BrokerMessageType;
use mojo_legacy_wire::channel::MessageType;
use mojo_legacy_wire::node::NodeMessageType;
use mojo_legacy_wire::{NodeName, Token};

use super::{FdAccess, Link};

/// What kind of frame arrived, for [`HandshakeError::UnexpectedMessage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A NodeChannel message of this type.
    Node(NodeMessageType),
    /// A channel control message of this type.
    Control(MessageType),
    /// A broker message of this type.
    Broker(BrokerMessageType),
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Node(t) => write!(f, "NodeChannel {t:?}"),
            Self::Control(t) => write!(f, "control {t:?}"),
            Self::Broker(t) => write!(f, "broker {t:?}"),
        }
    }
}

/// Why an invitation handshake failed. Every error is fatal for the
/// invitation (as for a Chromium peer, which drops the connection) and
/// sticky: the connector returns it again on every later call. Fds handed in
/// with the failing frame are closed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The frame does not decode as a Chromium receiver requires.
    Malformed {
        /// The socket it came from.
        link: Link,
        /// What the wire crate found wrong.
        error: mojo_legacy_wire::Error,
    },
    /// The bytes handed in are not exactly one channel message.
    NotOneFrame {
        /// The socket.
        link: Link,
        /// The message length its header gives.
        frame_len: usize,
        /// The bytes handed in.
        given: usize,
    },
    /// The number of fds handed in differs from what the message must carry.
    FdCount {
        /// The socket.
        link: Link,
        /// The message or rule concerned, e.g. `"INIT"`.
        what: &'static str,
        /// Fds required.
        expected: usize,
        /// Fds handed in.
        actual: usize,
    },
    /// The client's exact-size read of a broker message failed (spec §2.3):
    /// wrong size, fd count or broker type.
    BadBootstrapRead(mojo_legacy_wire::Error),
    /// A message that has no place at this point of the handshake.
    UnexpectedMessage {
        /// The socket.
        link: Link,
        /// What the connector waits for.
        expected: &'static str,
        /// What came.
        found: FrameKind,
    },
    /// `ACCEPT_INVITATION` echoed another token than the one sent.
    TokenMismatch {
        /// The token in `ACCEPT_INVITEE`.
        expected: Token,
        /// The token that came back.
        found: Token,
    },
    /// A node name is zero, or clashes with this node's own name.
    InvalidName {
        /// The field, e.g. `"accept_invitation.invitee_name"`.
        field: &'static str,
        /// The name found.
        name: NodeName,
    },
    /// `ACCEPT_BROKER_CLIENT` names a broker other than the inviter; this
    /// crate supports only the broker-is-inviter setup of `mojo_proxy`.
    BrokerIsNotInviter {
        /// The inviter from `ACCEPT_INVITEE`.
        inviter: NodeName,
        /// The broker named in `ACCEPT_BROKER_CLIENT`.
        broker: NodeName,
    },
    /// The peer closed a socket before the handshake completed.
    PeerClosed {
        /// The socket that closed.
        link: Link,
        /// What the connector was waiting for.
        waiting_for: &'static str,
    },
    /// The handshake is complete: this frame belongs to the node layer.
    AlreadyEstablished,
    /// A configuration value is unusable.
    InvalidConfig {
        /// Which one.
        field: &'static str,
    },
    /// Encoding an outgoing message failed (cannot happen for the fixed
    /// handshake messages; kept so nothing panics).
    Encode(mojo_legacy_wire::Error),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { link, error } => write!(f, "malformed frame on the {link}: {error}"),
            Self::NotOneFrame {
                link,
                frame_len,
                given,
            } => write!(
                f,
                "{given} bytes handed in from the {link}, but the frame is {frame_len}"
            ),
            Self::FdCount {
                link,
                what,
                expected,
                actual,
            } => write!(
                f,
                "{what} on the {link} needs {expected} fds, {actual} came"
            ),
            Self::BadBootstrapRead(e) => {
                write!(f, "bad broker message on the bootstrap socket: {e}")
            }
            Self::UnexpectedMessage {
                link,
                expected,
                found,
            } => write!(f, "{found} on the {link} while waiting for {expected}"),
            Self::TokenMismatch { expected, found } => {
                write!(f, "invitation token {found:?} is not {expected:?}")
            }
            Self::InvalidName { field, name } => write!(f, "{field} {name:?} is not usable"),
            Self::BrokerIsNotInviter { inviter, broker } => write!(
                f,
                "broker {broker:?} is not the inviter {inviter:?} (unsupported)"
            ),
            Self::PeerClosed { link, waiting_for } => {
                write!(f, "peer closed the {link} while waiting for {waiting_for}")
            }
            Self::AlreadyEstablished => f.write_str("handshake already complete"),
            Self::InvalidConfig { field } => write!(f, "invalid configuration: {field}"),
            Self::Encode(e) => write!(f, "encoding failed: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Why a shared-memory request on the bootstrap socket failed (spec §2.4).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BufferError {
    /// A frame on the bootstrap socket does not decode (fatal: Chromium's
    /// broker host drops the channel on malformed data).
    Malformed(mojo_legacy_wire::Error),
    /// The bytes handed in are not exactly one channel message.
    NotOneFrame {
        /// The message length its header gives.
        frame_len: usize,
        /// The bytes handed in.
        given: usize,
    },
    /// Fds arrived on the bootstrap socket, whose broker-side channel
    /// rejects handles (fatal).
    UnexpectedFds {
        /// How many.
        count: usize,
    },
    /// The fd count handed in differs from the frame's `num_handles`.
    FdCount {
        /// Fds the header claims.
        expected: usize,
        /// Fds handed in.
        actual: usize,
    },
    /// More requests unanswered than [`super::MAX_PENDING_BUFFER_REQUESTS`].
    TooManyPendingRequests {
        /// The limit.
        limit: usize,
    },
    /// No pending request has this id (already answered, or never asked).
    UnknownRequest {
        /// The id given.
        id: u64,
    },
    /// A region's guid is zero (clients reject it, spec §2.4).
    ZeroGuid,
    /// A region fd has the wrong access mode (a Chromium client would abort
    /// on it). `found` is `None` when the probe could not tell.
    WrongFdMode {
        /// 0 for the read-write fd, 1 for the read-only one.
        index: usize,
        /// The mode required.
        expected: FdAccess,
        /// The mode found.
        found: Option<FdAccess>,
    },
    /// The client's exact-size read of `BUFFER_RESPONSE` failed (wrong size,
    /// fd count or type); the allocation fails, as in Chromium.
    BadResponse(mojo_legacy_wire::Error),
    /// The broker answered with the failure response (zero guid, no fds).
    AllocationFailed,
    /// The client asked again while a request is outstanding (Chromium's
    /// client holds a lock: one at a time).
    RequestOutstanding,
    /// A response came with no request outstanding.
    NoRequestOutstanding,
    /// The bootstrap socket is closed.
    Closed,
    /// Encoding an outgoing message failed.
    Encode(mojo_legacy_wire::Error),
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed broker message: {e}"),
            Self::NotOneFrame { frame_len, given } => {
                write!(f, "{given} bytes handed in, but the frame is {frame_len}")
            }
            Self::UnexpectedFds { count } => {
                write!(f, "{count} fds on the bootstrap socket, which takes none")
            }
            Self::FdCount { expected, actual } => {
                write!(f, "frame claims {expected} fds, {actual} handed in")
            }
            Self::TooManyPendingRequests { limit } => {
                write!(f, "more than {limit} buffer requests unanswered")
            }
            Self::UnknownRequest { id } => write!(f, "no pending buffer request {id}"),
            Self::ZeroGuid => f.write_str("region guid is zero"),
            Self::WrongFdMode {
                index,
                expected,
                found,
            } => write!(f, "region fd {index} is {found:?}, not {expected:?}"),
            Self::BadResponse(e) => write!(f, "bad BUFFER_RESPONSE: {e}"),
            Self::AllocationFailed => f.write_str("the broker could not allocate the region"),
            Self::RequestOutstanding => f.write_str("a buffer request is already outstanding"),
            Self::NoRequestOutstanding => f.write_str("BUFFER_RESPONSE without a request"),
            Self::Closed => f.write_str("bootstrap socket closed"),
            Self::Encode(e) => write!(f, "encoding failed: {e}"),
        }
    }
}

impl std::error::Error for BufferError {}
