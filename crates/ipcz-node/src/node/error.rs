//! Typed node errors. Errors from a link's input drop that link only
//! (§2.7); errors from the caller's own calls leave everything as it was.

use core::fmt;

use ipcz_wire::error::{FrameError, MessageError};
use ipcz_wire::messages::MessageId;
use ipcz_wire::types::{BufferId, NodeName, SublinkId};

use crate::memory::MemoryError;
use crate::router::{NodeLinkId, RouteError};

/// What went wrong with a subparcel set (§6.4 step 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubparcelError {
    /// Parts disagree on `num_subparcels`.
    CountMismatch,
    /// The same `subparcel_index` arrived twice.
    Duplicate,
    /// The main parcel's `kBoxedSubparcel` placeholders do not number
    /// `num_subparcels - 1`, or a subparcel has placeholders of its own.
    PlaceholderCount,
    /// A shape MojoIpcz never sends: only a main parcel with no data and
    /// one placeholder (the lazily serialized message, §6.4) is unwrapped.
    UnsupportedShape,
    /// A part's data is in a buffer that has not arrived.
    PendingData,
}

/// A node error. Those returned by [`super::Node::handle_frame`] dropped
/// the link the frame came on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeError {
    /// No link with this id (it never existed or was dropped).
    UnknownLink(NodeLinkId),
    /// The node already has a link to this node.
    DuplicateLink(NodeName),
    /// The frame is malformed (§1.2).
    Frame(FrameError),
    /// Bytes after the frame's `num_bytes`.
    TrailingBytes {
        /// The frame's length.
        frame_len: usize,
        /// Bytes given.
        len: usize,
    },
    /// The frame header's `num_handles` differs from the fds received with it.
    FdCount {
        /// `num_handles`.
        header: u16,
        /// fds received.
        received: usize,
    },
    /// Two driver objects claim the same fd.
    FdReused {
        /// The fd index in the frame.
        index: usize,
    },
    /// The message fails a receiver check (§2.7) or a handler's stateless check.
    Message(MessageError),
    /// A known message this node never accepts here (§2.7 item 9).
    UnexpectedMessage(MessageId),
    /// A route message breaks a router rule.
    Route(RouteError),
    /// The link's shared memory is corrupt, full or misused by the peer.
    Memory(MemoryError),
    /// A relay message this node's role never receives (§3.3, §4.6, §7.3):
    /// RelayMessage on a node that is not a broker, or AcceptRelayedMessage
    /// on a link whose remote is not a broker.
    RelayOutOfRole(MessageId),
    /// A parcel uses a relayed driver object (never sent on POSIX).
    RelayedObject {
        /// The parcel's sublink.
        sublink: SublinkId,
    },
    /// A subparcel set is invalid or unsupported.
    Subparcel {
        /// The parcel's sublink.
        sublink: SublinkId,
        /// Its sequence number.
        sequence_number: u64,
        /// What is wrong.
        reason: SubparcelError,
    },
    /// ProvideMemory without a RequestMemory (this node never asks).
    UnrequestedMemory {
        /// The size offered.
        size: u32,
    },
    /// AddBlockBuffer for a buffer id already being mapped.
    DuplicateBlockBuffer(BufferId),
    /// The caller reported a mapping for a buffer the node did not ask for.
    UnexpectedMapping(BufferId),
    /// The caller could not map the buffer the peer added (§3.3: must map).
    UnmappableBuffer(BufferId),
    /// The link's fds alive in this node would exceed the limit.
    TooManyFds {
        /// The limit.
        limit: usize,
    },
    /// The link's sublinks would exceed the limit.
    TooManySublinks {
        /// The limit.
        limit: usize,
    },
    /// The parcels queued through the link would exceed the limit.
    TooManyQueuedParcels {
        /// The limit.
        limit: usize,
    },
    /// The parcels held back on the link (awaiting a buffer or subparcels)
    /// would exceed the limit.
    TooManyHeldParcels {
        /// The limit.
        limit: usize,
    },
    /// A box given to the node has the wrong number of fds for its object.
    BoxFds {
        /// fds the object needs.
        expected: usize,
        /// fds given.
        got: usize,
    },
    /// An AddBlockBuffer box is not an unsafe-mode shared buffer of the mapped size.
    BadBlockBufferBox,
    /// Encoding a message for the link failed.
    Encode(MessageError),
    /// The link's unanswered RequestMemory messages would exceed the limit.
    TooManyMemoryRequests {
        /// The limit.
        limit: usize,
    },
    /// The introductions in progress would exceed the limit.
    TooManyIntroductions {
        /// The limit.
        limit: usize,
    },
    /// No introduction of (or to) this node is in progress.
    IntroductionNotPending(NodeName),
    /// An introduction's boxes are not a Transport and an unsafe-mode
    /// primary buffer of the right size.
    BadIntroductionBox,
    /// The caller could not use the introduction of this node (its memory
    /// did not map or its transport was invalid).
    UnusableIntroduction(NodeName),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownLink(l) => write!(f, "no node link {l:?}"),
            Self::DuplicateLink(n) => write!(f, "already linked to node {n}"),
            Self::Frame(e) => write!(f, "bad frame: {e}"),
            Self::TrailingBytes { frame_len, len } => {
                write!(f, "{len} bytes given for a {frame_len}-byte frame")
            }
            Self::FdCount { header, received } => {
                write!(f, "frame announces {header} fds, {received} received")
            }
            Self::FdReused { index } => write!(f, "fd {index} claimed by two driver objects"),
            Self::Message(e) => write!(f, "bad message: {e}"),
            Self::UnexpectedMessage(id) => write!(f, "unexpected message {id}"),
            Self::Route(e) => write!(f, "route error: {e}"),
            Self::Memory(e) => write!(f, "shared memory error: {e}"),
            Self::RelayOutOfRole(id) => {
                write!(f, "{id} is only for brokers to receive or to send")
            }
            Self::RelayedObject { sublink } => {
                write!(
                    f,
                    "parcel on sublink {sublink} uses a relayed driver object"
                )
            }
            Self::Subparcel {
                sublink,
                sequence_number,
                reason,
            } => write!(
                f,
                "subparcels of parcel {sequence_number} on sublink {sublink}: {reason:?}"
            ),
            Self::UnrequestedMemory { size } => {
                write!(f, "ProvideMemory of {size} bytes was never requested")
            }
            Self::DuplicateBlockBuffer(id) => write!(f, "buffer {id} added twice"),
            Self::UnexpectedMapping(id) => write!(f, "buffer {id} was not being mapped"),
            Self::UnmappableBuffer(id) => write!(f, "buffer {id} could not be mapped"),
            Self::TooManyFds { limit } => write!(f, "more than {limit} fds from one link"),
            Self::TooManySublinks { limit } => write!(f, "more than {limit} sublinks on one link"),
            Self::TooManyQueuedParcels { limit } => {
                write!(f, "more than {limit} parcels queued through one link")
            }
            Self::TooManyHeldParcels { limit } => {
                write!(f, "more than {limit} parcels held back on one link")
            }
            Self::BoxFds { expected, got } => {
                write!(f, "driver object needs {expected} fds, {got} given")
            }
            Self::BadBlockBufferBox => f.write_str("AddBlockBuffer needs an unsafe shared buffer"),
            Self::Encode(e) => write!(f, "cannot encode message: {e}"),
            Self::TooManyMemoryRequests { limit } => {
                write!(
                    f,
                    "more than {limit} unanswered memory requests on one link"
                )
            }
            Self::TooManyIntroductions { limit } => {
                write!(f, "more than {limit} introductions in progress")
            }
            Self::IntroductionNotPending(n) => write!(f, "no introduction of node {n} pending"),
            Self::BadIntroductionBox => {
                f.write_str("an introduction needs a Transport and an unsafe primary buffer")
            }
            Self::UnusableIntroduction(n) => write!(f, "introduction of node {n} is unusable"),
        }
    }
}

impl std::error::Error for NodeError {}

impl From<MemoryError> for NodeError {
    fn from(e: MemoryError) -> Self {
        Self::Memory(e)
    }
}

impl From<RouteError> for NodeError {
    fn from(e: RouteError) -> Self {
        Self::Route(e)
    }
}

impl From<MessageError> for NodeError {
    fn from(e: MessageError) -> Self {
        Self::Message(e)
    }
}
