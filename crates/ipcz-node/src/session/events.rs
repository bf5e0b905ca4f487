//! What a [`Session`](super::Session) gives its caller: frames to write
//! ([`SessionTransmit`]) and things to know or do ([`SessionEvent`]).

use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::SharedBuffer;
use ipcz_wire::types::{NodeName, ReferralId};

#[cfg(doc)]
use super::{Session, SessionConfig};
use super::{SessionError, SocketId};
use crate::node::NodeEvent;
use crate::router::RouterId;

/// One frame to write to one of the session's sockets, with its fds.
#[derive(Debug)]
pub struct SessionTransmit {
    /// Which socket.
    pub socket: SocketId,
    /// The whole frame (IpczHeader and message).
    pub bytes: Vec<u8>,
    /// Its fds (SCM_RIGHTS with the frame's first byte), in order.
    pub fds: Vec<OwnedFd>,
}

/// Something the caller of a [`Session`] must know or do.
#[derive(Debug)]
pub enum SessionEvent {
    /// A handshake or referral came with a link's primary buffer: map `fd`
    /// (an unsafe region described by `buffer`, read-write; it always comes
    /// from the broker, a trusted peer) and call
    /// [`Session::primary_buffer_mapped`]. Several are answered in the
    /// order they came. Input after the greeting is not consumed until
    /// every buffer of the handshake is mapped.
    MapPrimaryBuffer {
        /// Size, mode and GUID.
        buffer: SharedBuffer,
        /// The region's fd.
        fd: OwnedFd,
    },
    /// Adopt `fd` as the session's socket `socket` (non-blocking) and read
    /// it at once, feeding it to [`Session::handle_socket_stream`]; its
    /// link already exists and has no handshake of its own.
    AdoptSocket {
        /// The session's name for it.
        socket: SocketId,
        /// The socket.
        fd: OwnedFd,
    },
    /// The link is up: its node exists and its initial portals are open.
    Established {
        /// Our node's name.
        local_name: NodeName,
        /// The other node's name (referred: the referrer's).
        remote_name: NodeName,
        /// Initial portal `i` at index `i`; `None` for a portal closed at
        /// once (portal 0 with [`SessionConfig::close_reserved_portal`]).
        /// Portals beyond the other side's count are peer-closed.
        portals: Vec<Option<RouterId>>,
    },
    /// A referral of ours ([`Session::refer`]) was accepted: the link to
    /// the referred node runs over `socket` (adopted first) with these
    /// initial portals.
    ReferralAccepted {
        /// The referral.
        referral_id: ReferralId,
        /// The socket to the referred node.
        socket: SocketId,
        /// The referred node's name.
        remote_name: NodeName,
        /// Its initial portals, as in [`Self::Established`].
        portals: Vec<Option<RouterId>>,
    },
    /// A referral of ours failed (rejected, or its answer was bad).
    ReferralFailed {
        /// The referral.
        referral_id: ReferralId,
        /// Why.
        error: SessionError,
    },
    /// Broker: a non-broker referred a node to us over `socket` (not
    /// adopted yet): create its resources and call
    /// [`Session::serve_referral`], or [`Session::refuse_referral`].
    ReferralRequested {
        /// The session's name for the referred node's socket.
        socket: SocketId,
    },
    /// Broker: the referred node on `socket` greeted and is linked (no
    /// initial portals on that link).
    ReferralServed {
        /// Its socket.
        socket: SocketId,
        /// Its name.
        remote_name: NodeName,
    },
    /// Broker: a connection to another broker ([`Session::connect_broker`])
    /// is up over `socket`, with these initial portals.
    BrokerConnected {
        /// The socket.
        socket: SocketId,
        /// The other broker's name.
        remote_name: NodeName,
        /// Its initial portals, as in [`Self::Established`].
        portals: Vec<Option<RouterId>>,
    },
    /// An adopted socket's handshake or link failed: close it (the rest of
    /// the session goes on).
    SocketFailed {
        /// The socket.
        socket: SocketId,
        /// Why.
        error: SessionError,
    },
    /// An event of the node: answer the memory ones
    /// ([`NodeEvent::CreateBlockBuffer`], [`NodeEvent::MapBlockBuffer`],
    /// [`NodeEvent::MemoryRequested`]) on [`Session::node_mut`].
    /// [`NodeEvent::LinkDropped`] of the handshake socket's link ends the
    /// session: close the socket.
    Node(NodeEvent),
}
