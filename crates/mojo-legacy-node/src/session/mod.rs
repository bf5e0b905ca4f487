//! Sans-IO sessions: a legacy invitation connector and the
//! [`LegacyNode`](crate::LegacyNode)
//! composed into one value a driver can run with no protocol knowledge.
//!
//! A session owns the two sockets of a legacy invitation by name
//! ([`Link::Bootstrap`], [`Link::NodeChannel`]). The driver hands in each
//! link's stream bytes and received fds as they arrive
//! ([`BrokerSession::handle_stream`], [`ClientSession::handle_stream`]):
//! the session deframes them itself (at most [`MAX_SESSION_FRAME_BYTES`] a
//! frame; a frame whose fds have not all arrived is an error, since fds
//! travel with the first byte of their `sendmsg`) and returns how many
//! bytes it consumed. It gives back [`Transmit`]s per link and, for the
//! client, the node-channel socket to adopt ([`ClientSession::poll_adopt`]).
//! Before the handshake completes frames go to the connector; from the
//! frame after it on, to the node, which [`node`](BrokerSession::node)
//! exposes to the application.
//!
//! - [`BrokerSession`]: the inviter. Reserves its attachments at once (their
//!   ports are usable immediately; messages wait for the client's merges),
//!   runs the [`BrokerConnector`](mojo_invitation::legacy::BrokerConnector) until established, then adds the client
//!   as a peer. Its bootstrap link keeps serving `BUFFER_REQUEST`s: each one
//!   becomes a [`RegionRequest`] the caller fulfils with a real region
//!   ([`BrokerSession::answer_region`]).
//! - [`ClientSession`]: the invitee. Reads `INIT` with the exact-size read
//!   Chromium uses, hands out the node-channel socket, runs the
//!   [`ClientConnector`](mojo_invitation::legacy::ClientConnector), then adds the broker as a peer and requests one
//!   merge per attachment name ([`ClientSession::attachments`]). Shared
//!   memory comes from the broker ([`ClientSession::request_buffer`],
//!   [`ClientSession::poll_buffer_grant`]).

mod broker;
mod client;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::OwnedFd;

use mojo_invitation::legacy::{BufferError, HandshakeError};
use mojo_legacy_wire::channel::Frame;

pub use broker::{BrokerInvitation, BrokerSession};
pub use client::{AccessProbe, ClientSession};
pub use mojo_invitation::legacy::{
    AttachmentName, BrokerConfig, BufferGrant, ClientConfig, Link, RegionFds, RegionRequest,
    RequestId, Transmit,
};

use crate::node::{ApiError, NodeError};

/// Largest channel frame a session accepts on either link (the wire
/// crate's incoming limit, as Chromium's channel).
pub const MAX_SESSION_FRAME_BYTES: u32 = mojo_legacy_wire::limits::MAX_INCOMING_MESSAGE_NUM_BYTES;

/// Most buffer grants (or failures) a client session keeps unread.
pub const MAX_QUEUED_BUFFER_GRANTS: usize = 4;

/// Why a session refused a link's input or a request. The link concerned
/// should be dropped; the session stays usable for the rest.
#[derive(Debug)]
pub enum SessionError {
    /// The invitation handshake failed.
    Handshake(HandshakeError),
    /// The synchronous broker protocol failed.
    Buffer(BufferError),
    /// The node refused a frame (the peer is already dropped).
    Node(NodeError),
    /// The node refused a local operation of the session (reserving or
    /// merging an attachment, adding the peer).
    Api(ApiError),
    /// A frame did not deframe.
    Frame {
        /// The link.
        link: Link,
        /// What was wrong.
        error: mojo_legacy_wire::Error,
    },
    /// A whole frame arrived without all the fds its header claims.
    MissingFds {
        /// The link.
        link: Link,
        /// Fds the header claims.
        claimed: usize,
        /// Fds received.
        received: usize,
    },
    /// Bytes arrived on a link that should be silent now (e.g. the
    /// bootstrap socket of a client with no buffer request outstanding).
    Unexpected {
        /// The link.
        link: Link,
    },
    /// More buffer grants than [`MAX_QUEUED_BUFFER_GRANTS`] wait unread.
    TooManyGrants,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(e) => write!(f, "invitation: {e}"),
            Self::Buffer(e) => write!(f, "broker channel: {e}"),
            Self::Node(e) => write!(f, "node: {e}"),
            Self::Api(e) => write!(f, "node operation: {e}"),
            Self::Frame { link, error } => write!(f, "{link}: bad frame: {error}"),
            Self::MissingFds {
                link,
                claimed,
                received,
            } => write!(f, "{link}: frame claims {claimed} fds, {received} arrived"),
            Self::Unexpected { link } => write!(f, "{link}: unexpected bytes"),
            Self::TooManyGrants => f.write_str("too many unread buffer grants"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<HandshakeError> for SessionError {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}
impl From<BufferError> for SessionError {
    fn from(e: BufferError) -> Self {
        Self::Buffer(e)
    }
}
impl From<NodeError> for SessionError {
    fn from(e: NodeError) -> Self {
        Self::Node(e)
    }
}

/// The next whole frame at the start of `input`: its length and its fds
/// (taken from the front of `fds`), or `None` while incomplete.
fn next_frame(
    link: Link,
    input: &[u8],
    fds: &mut VecDeque<OwnedFd>,
) -> Result<Option<(usize, Vec<OwnedFd>)>, SessionError> {
    let (claimed, len) = match Frame::decode_prefix_with_limit(input, MAX_SESSION_FRAME_BYTES) {
        Ok(Some((frame, len))) => (usize::from(frame.header.num_handles()), len),
        Ok(None) => return Ok(None),
        Err(error) => return Err(SessionError::Frame { link, error }),
    };
    take_fds(link, fds, claimed).map(|taken| Some((len, taken)))
}

fn take_fds(
    link: Link,
    fds: &mut VecDeque<OwnedFd>,
    claimed: usize,
) -> Result<Vec<OwnedFd>, SessionError> {
    if fds.len() < claimed {
        return Err(SessionError::MissingFds {
            link,
            claimed,
            received: fds.len(),
        });
    }
    Ok(fds.drain(..claimed).collect())
}

/// A node transmit as a session transmit (the node has one peer: the other
/// end of the node channel).
fn node_transmit(t: crate::node::Transmit) -> Transmit {
    Transmit {
        link: Link::NodeChannel,
        bytes: t.bytes,
        fds: t.fds,
    }
}
