//! The one error type of the ipcz connectors: every way a handshake can
//! fail (spec `ipcz.md` §4.7), each naming what was wrong.

use std::fmt;

use ipcz_wire::driver_object::ObjectType;
use ipcz_wire::error::{FrameError, MessageError};
use ipcz_wire::messages::MessageId;
use ipcz_wire::types::ReferralId;
use mojo_wire_kit::{RegionMode, ShmAccessError};

use super::Link;

/// Why a handshake failed. After any of these the connection is rejected
/// (Chrome then reports every waiting initial portal disconnected, §4.7);
/// every fd handed in with the failing frame has been closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// A constructor argument is out of range (the caller's fault).
    InvalidConfig {
        /// Which argument.
        field: &'static str,
    },
    /// The frame header is malformed or the frame is cut short.
    Frame {
        /// Where it arrived.
        link: Link,
        /// What ipcz-wire reported.
        error: FrameError,
    },
    /// More bytes were handed in than the frame's `num_bytes` (the caller
    /// must hand in exactly one frame).
    TrailingBytes {
        /// Where it arrived.
        link: Link,
        /// The frame's `num_bytes`.
        frame_len: usize,
        /// Bytes handed in.
        given: usize,
    },
    /// The fds handed in are not the number the header claims.
    FdCount {
        /// Where it arrived.
        link: Link,
        /// The header's `num_handles`.
        claimed: usize,
        /// fds handed in.
        given: usize,
    },
    /// The message fails a receiver check of §2.7 (header, params, arrays,
    /// driver objects and their fds).
    Message {
        /// Where it arrived.
        link: Link,
        /// What ipcz-wire reported.
        error: MessageError,
    },
    /// A known message other than the one this handshake expects (§2.7
    /// rule 9).
    UnexpectedMessage {
        /// Where it arrived.
        link: Link,
        /// What the connector waits for.
        expected: &'static str,
        /// What came.
        found: MessageId,
    },
    /// A driver object field names no object.
    MissingDriverObject {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A driver object field names an object of the wrong type.
    WrongDriverObject {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The type found.
        found: ObjectType,
    },
    /// Two driver objects claim the same fd.
    FdClaimedTwice {
        /// The message.
        message: &'static str,
        /// The field whose object found its fd taken.
        field: &'static str,
    },
    /// A primary buffer is not an unsafe (mode 2) region, so it cannot be
    /// mapped read-write as NodeLinkMemory needs.
    PrimaryBufferMode {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The mode it came with.
        mode: RegionMode,
    },
    /// A primary buffer is smaller than 128 KiB or larger than
    /// [`MAX_PRIMARY_BUFFER_SIZE`](super::MAX_PRIMARY_BUFFER_SIZE).
    PrimaryBufferSize {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// Its `buffer_size`.
        size: u32,
    },
    /// A node name is zero (no Chrome node has that name).
    ZeroName {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
    },
    /// Two names that must differ are equal (e.g. our assigned name and the
    /// broker's).
    NameCollision {
        /// The message.
        message: &'static str,
        /// The second of the two fields.
        field: &'static str,
    },
    /// A referral reply names another referral than ours.
    ReferralMismatch {
        /// Ours.
        expected: ReferralId,
        /// The reply's.
        found: ReferralId,
    },
    /// The broker rejected the referral (NonBrokerReferralRejected): the
    /// referred node never greeted it.
    ReferralRejected {
        /// The referral.
        referral_id: ReferralId,
    },
    /// The peer closed the socket (or it failed) before the handshake
    /// completed.
    PeerClosed {
        /// Which socket.
        link: Link,
        /// What the connector was waiting for.
        waiting_for: &'static str,
    },
    /// A frame came after the handshake completed: it belongs to the node.
    AlreadyEstablished {
        /// Where it arrived.
        link: Link,
    },
    /// `finish` was called before the handshake completed (or twice).
    Incomplete {
        /// What the connector still waits for.
        waiting_for: &'static str,
    },
    /// The caller's mapping of a primary buffer to initialize is smaller
    /// than 128 KiB.
    PrimaryBufferTooSmall {
        /// The mapping's size.
        size: usize,
    },
    /// The caller's mapping of a primary buffer refused the initializing
    /// write (e.g. it is read-only).
    PrimaryBufferWrite {
        /// What the mapping reported.
        error: ShmAccessError,
    },
    /// The random source gave no usable name in
    /// [`MAX_NAME_ATTEMPTS`](super::MAX_NAME_ATTEMPTS) draws.
    NameGeneration,
    /// Encoding an outgoing frame failed (cannot happen with the fixed
    /// handshake messages; reported rather than panicking).
    Encode(MessageError),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig { field } => write!(f, "invalid connector argument: {field}"),
            Self::Frame { link, error } => write!(f, "bad frame on the {link}: {error}"),
            Self::TrailingBytes {
                link,
                frame_len,
                given,
            } => write!(
                f,
                "{given} bytes handed in for one {frame_len}-byte frame on the {link}"
            ),
            Self::FdCount {
                link,
                claimed,
                given,
            } => write!(
                f,
                "frame on the {link} claims {claimed} fds but {given} were handed in"
            ),
            Self::Message { link, error } => write!(f, "invalid message on the {link}: {error}"),
            Self::UnexpectedMessage {
                link,
                expected,
                found,
            } => write!(f, "{found} on the {link} while waiting for {expected}"),
            Self::MissingDriverObject { message, field } => {
                write!(f, "{message}.{field} names no driver object")
            }
            Self::WrongDriverObject {
                message,
                field,
                found,
            } => write!(f, "{message}.{field} is a {found}"),
            Self::FdClaimedTwice { message, field } => {
                write!(f, "{message}.{field}: its fd is claimed by another object")
            }
            Self::PrimaryBufferMode {
                message,
                field,
                mode,
            } => write!(f, "{message}.{field} is a {mode} region, not unsafe"),
            Self::PrimaryBufferSize {
                message,
                field,
                size,
            } => write!(f, "{message}.{field} has {size} bytes"),
            Self::ZeroName { message, field } => write!(f, "{message}.{field} is zero"),
            Self::NameCollision { message, field } => {
                write!(f, "{message}.{field} repeats another name")
            }
            Self::ReferralMismatch { expected, found } => {
                write!(f, "referral reply for {found:?}, expected {expected:?}")
            }
            Self::ReferralRejected { referral_id } => {
                write!(f, "broker rejected referral {referral_id:?}")
            }
            Self::PeerClosed { link, waiting_for } => {
                write!(f, "{link} closed while waiting for {waiting_for}")
            }
            Self::AlreadyEstablished { link } => {
                write!(f, "frame on the {link} after the handshake")
            }
            Self::Incomplete { waiting_for } => {
                write!(f, "handshake not complete: waiting for {waiting_for}")
            }
            Self::PrimaryBufferTooSmall { size } => {
                write!(f, "primary buffer mapping of {size} bytes, 131072 needed")
            }
            Self::PrimaryBufferWrite { error } => {
                write!(f, "initializing a primary buffer: {error}")
            }
            Self::NameGeneration => f.write_str("random source gave no usable node name"),
            Self::Encode(e) => write!(f, "encoding a handshake frame: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {}
