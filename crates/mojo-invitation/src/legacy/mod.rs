//! Legacy Mojo Core connectors (spec `legacy-core.md` §2–§3): the broker
//! side that sends an invitation over an inherited bootstrap socket and the
//! client side that accepts one, as a libchrome daemon does.
//!
//! # Roles and sockets
//!
//! The broker holds the bootstrap socket S (the inherited one) and creates the
//! node channel N. [`BrokerConnector`] writes `INIT` (carrying the client's
//! end of N) on S and `ACCEPT_INVITEE` on N, answers `ACCEPT_INVITATION` with
//! `ACCEPT_BROKER_CLIENT`, and is then [`Established`]. From the start it also
//! serves S as a [`BrokerHost`]: every `BUFFER_REQUEST` becomes a
//! [`RegionRequest`] the caller fulfils with a fresh region's read-write and
//! read-only fds, and is answered with exactly one `BUFFER_RESPONSE` (§2.4).
//!
//! [`ClientConnector`] is the mirror image: it takes the `INIT` read from S
//! (handing out the node-channel socket), answers `ACCEPT_INVITEE`, is
//! established by `ACCEPT_BROKER_CLIENT`, and keeps S as a
//! [`SyncBrokerClient`] that asks for shared memory.
//!
//! # What goes in and out (sans-IO)
//!
//! - **In: one frame at a time.** The caller deframes each socket's stream
//!   (with `mojo_legacy_wire::channel::Frame::decode_prefix` or a
//!   `mojo_legacy_wire::Deframer`) and hands in the raw bytes of exactly one
//!   channel message plus exactly the fds its header claims (popped from its
//!   fd FIFO). The connector decodes it itself, so a bad frame is a
//!   [`HandshakeError`] naming what was wrong. The one exception is the
//!   client's bootstrap socket, which Chromium reads with exact-size reads
//!   (§2.3): there the caller passes what one read of
//!   [`ClientConnector::bootstrap_read_len`] bytes returned.
//! - **Out: [`Transmit`]s** from `poll_transmit`, each one frame for one
//!   [`Link`] with its fds, to be written with a single `sendmsg`.
//! - **Sockets and regions come from the caller.** The broker's node-channel
//!   socket pair is made by the caller (both ends `O_NONBLOCK`), which passes
//!   the client's end to [`BrokerConnector::new`] and keeps its own end as the
//!   node channel. Shared memory is an action: [`BrokerHost::poll_region_request`]
//!   asks for a region, [`BrokerHost::answer_buffer_request`] takes its fds.
//!   Checking an fd's access mode is a system call, so it goes through an
//!   injected [`FdAccessProbe`].
//! - **Nothing is left over.** Because input is whole frames, the connector
//!   never holds bytes or fds that belong to the node: every frame after the
//!   one that completed the handshake goes to the node layer (for the
//!   broker: the client's `REQUEST_PORT_MERGE`s), and the connector refuses
//!   it ([`HandshakeError::AlreadyEstablished`]). Drain `poll_transmit` before
//!   the node sends anything: `ACCEPT_BROKER_CLIENT` must precede its events.
//!
//! Attachments are only names here ([`AttachmentName`]): nothing about them
//! is sent during the handshake. The node layer maps them to reserved ports
//! and answers the client's `REQUEST_PORT_MERGE`s.

mod broker;
mod client;
mod error;
mod frames;
#[doc(hidden)]
pub mod fuzzing;
mod host;
#[cfg(test)]
mod tests;

use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};

use mojo_legacy_wire::node::NodeCapabilities;
use mojo_legacy_wire::{NodeName, Profile, Token};

pub use broker::{BrokerConfig, BrokerConnector};
pub use client::{BufferGrant, ClientConfig, ClientConnector, SyncBrokerClient};
pub use error::{BufferError, FrameKind, HandshakeError};
pub use host::{BrokerHost, RegionFds, RegionRequest, RequestId};

/// Most `BUFFER_REQUEST`s the host keeps unanswered at once. A Chromium client
/// holds a lock and has at most one outstanding; more is a misbehaving peer.
pub const MAX_PENDING_BUFFER_REQUESTS: usize = 8;

/// Largest region the host asks the caller to create; larger requests get
/// the failure response (spec §2.4: `max_shared_memory_num_bytes`, 1 GiB).
pub const MAX_BUFFER_REQUEST_SIZE: u64 = mojo_legacy_wire::limits::MAX_SHARED_MEMORY_NUM_BYTES;

/// Most attachments one invitation may name.
pub const MAX_ATTACHMENTS: usize = 4096;

/// Longest attachment name accepted (bytes).
pub const MAX_ATTACHMENT_NAME_LEN: usize = 4096;

/// Capabilities this crate advertises: none, so no peer ever offers the
/// channel upgrade (spec §3.4, §1.6).
pub const ADVERTISED_CAPABILITIES: NodeCapabilities = NodeCapabilities::NONE;

/// The two sockets of a legacy invitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    /// The inherited bootstrap socket S: `INIT`, then the synchronous broker
    /// protocol (`BUFFER_REQUEST` / `BUFFER_RESPONSE`).
    Bootstrap,
    /// The node channel N, whose client end travels in `INIT`.
    NodeChannel,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bootstrap => "bootstrap socket",
            Self::NodeChannel => "node channel",
        })
    }
}

/// One frame to send: write `bytes` with one `sendmsg` carrying `fds`
/// (spec §1.5, §2.3). The fds are closed in this process once sent.
#[derive(Debug)]
pub struct Transmit {
    /// Which socket.
    pub link: Link,
    /// The whole channel message.
    pub bytes: Vec<u8>,
    /// The fds that belong to it (as many as its header says).
    pub fds: Vec<OwnedFd>,
}

/// Which side of the invitation a connector plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The inviter, which is also the broker.
    Broker,
    /// The non-broker invitee.
    Client,
}

/// The name of an invitation attachment (spec §3.5): arbitrary non-empty
/// bytes. String names are their bytes without terminator; numeric names
/// are the 8 little-endian bytes of the number.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttachmentName(Vec<u8>);

impl AttachmentName {
    /// A string name (its UTF-8 bytes); `None` if empty or longer than
    /// [`MAX_ATTACHMENT_NAME_LEN`].
    pub fn from_str_name(name: &str) -> Option<Self> {
        Self::from_bytes(name.as_bytes().to_vec())
    }

    /// Raw name bytes; `None` if empty or longer than
    /// [`MAX_ATTACHMENT_NAME_LEN`].
    pub fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (!bytes.is_empty() && bytes.len() <= MAX_ATTACHMENT_NAME_LEN).then_some(Self(bytes))
    }

    /// A numeric name: the 8 little-endian bytes of `n`
    /// (`AttachMessagePipe(uint64_t)`).
    pub fn numeric(n: u64) -> Self {
        Self(n.to_le_bytes().to_vec())
    }

    /// The numeric names 0..`count`, as `--num-attachments` uses them.
    pub fn numeric_range(count: u64) -> Vec<Self> {
        (0..count).map(Self::numeric).collect()
    }

    /// The name's bytes, as `REQUEST_PORT_MERGE` carries them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for AttachmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) if s.chars().all(|c| c.is_ascii_graphic() || c == ' ') => write!(f, "{s:?}"),
            _ => {
                f.write_str("0x")?;
                self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }
    }
}

/// What a connector hands over once the handshake is complete: everything
/// the node layer needs to treat the peer as connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Established {
    /// This side's role.
    pub role: Role,
    /// This node's name.
    pub local_name: NodeName,
    /// The peer's node name (the client's real name, or the broker's).
    pub peer_name: NodeName,
    /// Capabilities the peer advertised (none if it sent V0 bodies).
    pub peer_capabilities: NodeCapabilities,
    /// The invitation token the broker chose.
    pub token: Token,
    /// The wire profile this side emits.
    pub profile: Profile,
    /// The attachment names: for the broker, the names it reserved ports
    /// for; for the client, the names it was configured to extract (may be
    /// empty: a client extracts by name whenever it likes).
    pub attachments: Vec<AttachmentName>,
}

/// An fd's access mode (`fcntl(F_GETFL) & O_ACCMODE`), which Chromium checks
/// with a hard `CHECK` on every writable region (spec §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FdAccess {
    /// `O_RDONLY`.
    ReadOnly,
    /// `O_WRONLY`.
    WriteOnly,
    /// `O_RDWR`.
    ReadWrite,
}

/// Reports an fd's access mode. Injected because asking is a system call
/// and the connectors make none; production code wraps
/// `mojo_platform_channel::fd_access_mode`. Any `Fn(BorrowedFd) ->
/// Option<FdAccess>` is a probe; `None` means the mode could not be read.
pub trait FdAccessProbe {
    /// The access mode of `fd`, or `None` if it cannot be determined.
    fn access_mode(&self, fd: BorrowedFd<'_>) -> Option<FdAccess>;
}

impl<F: Fn(BorrowedFd<'_>) -> Option<FdAccess>> FdAccessProbe for F {
    fn access_mode(&self, fd: BorrowedFd<'_>) -> Option<FdAccess> {
        self(fd)
    }
}
