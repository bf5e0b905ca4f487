//! What the table asks of its caller.

use ipcz_wire::types::{NodeName, SublinkId};

use super::{NodeLinkId, RouteMessage, RouterId};

/// An action for the caller, in the order the table produced them (the
/// messages for one node link must be sent in that order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<H> {
    /// Send `message` on node link `link`.
    Send {
        /// The node link.
        link: NodeLinkId,
        /// The message (its sublink is in it).
        message: RouteMessage<H>,
    },
    /// More parcels are ready for [`super::Routers::get`] on `portal`.
    Readable {
        /// The portal.
        portal: RouterId,
    },
    /// The portal's peer is gone and every parcel it sent has arrived.
    PeerClosed {
        /// The portal.
        portal: RouterId,
        /// Whether the route broke (RouteDisconnected, link loss) rather than closed.
        disconnected: bool,
    },
    /// A sublink was deactivated; nothing more will be sent or accepted on it.
    SublinkDropped {
        /// Its node link.
        link: NodeLinkId,
        /// The sublink.
        sublink: SublinkId,
    },
    /// A bypass needs a node link to `node`: introduce us (§7), then call
    /// [`super::Routers::add_node_link`], or [`super::Routers::introduction_failed`].
    NeedNodeLink {
        /// The node.
        node: NodeName,
    },
    /// A RouterLinkState could not be allocated on `link`: add capacity
    /// (AddBlockBuffer, §5.6), then call [`super::Routers::capacity_added`].
    NeedLinkStateCapacity {
        /// The node link.
        link: NodeLinkId,
    },
}

/// What the application can observe of a portal (§8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortalStatus {
    /// The peer closed (or the route broke) and all its parcels arrived.
    pub peer_closed: bool,
    /// The route broke rather than closed.
    pub disconnected: bool,
    /// Peer closed and every parcel taken: nothing more will ever be readable.
    pub dead: bool,
    /// Parcels ready to take.
    pub readable_parcels: u64,
}
