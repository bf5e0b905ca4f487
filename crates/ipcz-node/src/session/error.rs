//! Why a session ended.

use std::fmt;

use ipcz_wire::error::FrameError;
use mojo_invitation::ipcz::HandshakeError;

use crate::node::NodeError;

/// Why a [`Session`](super::Session) failed; after one, the session is over
/// (close its socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// The handshake failed (a bad or unexpected greeting, the socket
    /// closed before it, a bad configuration).
    Handshake(HandshakeError),
    /// The node refused something (a frame on the link broke a rule, which
    /// dropped the link).
    Node(NodeError),
    /// A frame before the node existed is malformed.
    Frame(FrameError),
    /// A frame before the node existed claims more than
    /// [`ipcz_wire::limits::DEFAULT_MAX_FRAME_LEN`] bytes.
    FrameTooLarge {
        /// What it claimed.
        num_bytes: u32,
    },
    /// A whole frame before the link was up (or on a referral socket)
    /// claims more fds than arrived with it. A frame's fds ride with its
    /// first byte, so they never will: the peer lied.
    FdCount {
        /// The fds its header claims.
        header: usize,
        /// The fds that arrived.
        received: usize,
    },
    /// The established link carried no primary buffer fd to map.
    MissingPrimaryBuffer,
    /// The caller's mapping of the primary buffer is smaller than the
    /// buffer the greeting described.
    PrimaryMappingTooSmall {
        /// The mapping's size.
        size: usize,
        /// The described size.
        wanted: u32,
    },
    /// The socket closed while the primary buffer was being mapped.
    ClosedBeforeMapping,
    /// Closing the reserved initial portal failed.
    Portal(crate::router::PortalError),
    /// The call does not fit the session's phase (a mapping nobody asked for).
    WrongPhase,
    /// More sockets than [`super::MAX_SESSION_SOCKETS`].
    TooManySockets {
        /// The limit.
        limit: usize,
    },
    /// More pending referrals than [`super::MAX_PENDING_REFERRALS`].
    TooManyReferrals {
        /// The limit.
        limit: usize,
    },
    /// A referral needs the session's link to go to a broker.
    NotTowardBroker,
    /// A connection to another broker needs this node to be a broker
    /// ([`crate::node::NodeRole::Broker`]), as MojoIpcz's isolated
    /// invitations do.
    NotABroker,
    /// No such socket (or not in the state the call needs).
    UnknownSocket(super::SocketId),
}

impl From<HandshakeError> for SessionError {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl From<NodeError> for SessionError {
    fn from(e: NodeError) -> Self {
        Self::Node(e)
    }
}

impl From<crate::router::PortalError> for SessionError {
    fn from(e: crate::router::PortalError) -> Self {
        Self::Portal(e)
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(e) => write!(f, "handshake failed: {e}"),
            Self::Node(e) => write!(f, "link dropped: {e}"),
            Self::Frame(e) => write!(f, "malformed frame before the link was up: {e}"),
            Self::FrameTooLarge { num_bytes } => {
                write!(f, "a frame of {num_bytes} bytes before the link was up")
            }
            Self::FdCount { header, received } => write!(
                f,
                "a frame before the link was up claims {header} fds, {received} arrived with it"
            ),
            Self::MissingPrimaryBuffer => f.write_str("no primary buffer fd came with the link"),
            Self::PrimaryMappingTooSmall { size, wanted } => write!(
                f,
                "the primary buffer's mapping has {size} bytes, the greeting described {wanted}"
            ),
            Self::ClosedBeforeMapping => {
                f.write_str("the socket closed while the primary buffer was being mapped")
            }
            Self::WrongPhase => f.write_str("not expected in the session's phase"),
            Self::Portal(e) => write!(f, "initial portal: {e}"),
            Self::TooManySockets { limit } => write!(f, "more than {limit} sockets"),
            Self::TooManyReferrals { limit } => write!(f, "more than {limit} pending referrals"),
            Self::NotTowardBroker => f.write_str("a referral needs a link to our broker"),
            Self::NotABroker => f.write_str("only a broker connects to another broker"),
            Self::UnknownSocket(s) => write!(f, "{s} is not known (or not in that state)"),
        }
    }
}

impl std::error::Error for SessionError {}
