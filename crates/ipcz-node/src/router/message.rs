//! The route-level messages of spec §3.4 as owned values, decoupled from the
//! wire crate's borrowed views.

use ipcz_wire::types::{FragmentDescriptor, NodeName, SublinkId};

use super::{Parcel, WireHandle};

/// A RouterDescriptor (§6.5): how to build the router for a portal that
/// travels in a parcel. Field meanings are those of the wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NewRouter {
    /// Whether the moved portal's peer is already closed.
    pub peer_closed: bool,
    /// If `peer_closed`: how many parcels the peer sent in all.
    pub closed_peer_sequence_length: u64,
    /// New link from the sender's router to the new one.
    pub new_sublink: SublinkId,
    /// RouterLinkState of `new_sublink` if it is central (`proxy_already_bypassed`).
    pub new_link_state: Option<FragmentDescriptor>,
    /// Whether the sender already linked the portal's peer to the new router.
    pub proxy_already_bypassed: bool,
    /// If bypassed: the peripheral link carrying parcels already queued at the sender.
    pub new_decaying_sublink: SublinkId,
    /// First sequence number the new router sends.
    pub next_outgoing_sequence_number: u64,
    /// First sequence number the new router expects.
    pub next_incoming_sequence_number: u64,
    /// If bypassed: parcels below this arrive over `new_decaying_sublink`.
    pub decaying_incoming_sequence_length: u64,
    /// Start a bypass at once (variant B2) toward this node and sublink.
    pub proxy_peer: Option<(NodeName, SublinkId)>,
}

/// A route message (§3.4) addressed to a router by sublink on the node link
/// it travels on. `H` is the caller's handle type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMessage<H> {
    /// A parcel (ID 20).
    AcceptParcel {
        /// Receiving router.
        sublink: SublinkId,
        /// The parcel.
        parcel: Parcel<WireHandle<H>>,
    },
    /// The sending side closed (ID 22).
    RouteClosed {
        /// Receiving router.
        sublink: SublinkId,
        /// Number of parcels the closed side ever sent.
        sequence_length: u64,
    },
    /// The route broke without orderly closure (ID 23).
    RouteDisconnected {
        /// Receiving router.
        sublink: SublinkId,
    },
    /// Proxy Y asks its inward peer Z to bypass it (ID 30).
    BypassPeer {
        /// The recipient Z.
        sublink: SublinkId,
        /// Node of X, Y's outward peer.
        bypass_target_node: NodeName,
        /// Sublink of the X-Y link on the link between X's and Y's nodes.
        bypass_target_sublink: SublinkId,
    },
    /// Z offers X a new central link that bypasses Y (ID 31).
    AcceptBypassLink {
        /// Node of the proxy Y.
        current_peer_node: NodeName,
        /// Sublink of the X-Y link between X's and Y's nodes.
        current_peer_sublink: SublinkId,
        /// Number of parcels Z sent toward Y.
        inbound_sequence_length_from_bypassed_link: u64,
        /// The new central link X-Z on the carrying node link.
        new_sublink: SublinkId,
        /// Its RouterLinkState.
        new_link_state: FragmentDescriptor,
    },
    /// Tells proxy Y its final lengths in both directions (ID 32).
    StopProxying {
        /// The proxy Y.
        sublink: SublinkId,
        /// Parcels Y will receive from its outward peer.
        inbound_sequence_length: u64,
        /// Parcels Y will receive from its inward peer.
        outbound_sequence_length: u64,
    },
    /// Tells Z how many parcels X sent toward Y (ID 33).
    ProxyWillStop {
        /// The recipient Z, on the new X-Z link.
        sublink: SublinkId,
        /// Parcels X sent toward Y.
        inbound_sequence_length: u64,
    },
    /// Y, whose outward peer X is on its own node, gives Z a link to X (ID 34).
    BypassPeerWithLink {
        /// The recipient Z.
        sublink: SublinkId,
        /// New central link X-Z on this node link.
        new_sublink: SublinkId,
        /// Its RouterLinkState.
        new_link_state: FragmentDescriptor,
        /// Parcels X sent toward Y before the switch.
        inbound_sequence_length: u64,
    },
    /// Z tells Y how many parcels it sent over the old link (ID 35).
    StopProxyingToLocalPeer {
        /// The proxy Y, on the old Y-Z link.
        sublink: SublinkId,
        /// Parcels Z sent over the old link.
        outbound_sequence_length: u64,
    },
    /// "Re-examine your state" (ID 36).
    FlushRouter {
        /// Recipient.
        sublink: SublinkId,
    },
}

impl<H> RouteMessage<H> {
    /// The sublink the message addresses on its node link.
    pub fn sublink(&self) -> SublinkId {
        match self {
            Self::AcceptParcel { sublink, .. }
            | Self::RouteClosed { sublink, .. }
            | Self::RouteDisconnected { sublink }
            | Self::BypassPeer { sublink, .. }
            | Self::StopProxying { sublink, .. }
            | Self::ProxyWillStop { sublink, .. }
            | Self::BypassPeerWithLink { sublink, .. }
            | Self::StopProxyingToLocalPeer { sublink, .. }
            | Self::FlushRouter { sublink } => *sublink,
            Self::AcceptBypassLink { new_sublink, .. } => *new_sublink,
        }
    }

    /// The message's name as in the spec.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AcceptParcel { .. } => "AcceptParcel",
            Self::RouteClosed { .. } => "RouteClosed",
            Self::RouteDisconnected { .. } => "RouteDisconnected",
            Self::BypassPeer { .. } => "BypassPeer",
            Self::AcceptBypassLink { .. } => "AcceptBypassLink",
            Self::StopProxying { .. } => "StopProxying",
            Self::ProxyWillStop { .. } => "ProxyWillStop",
            Self::BypassPeerWithLink { .. } => "BypassPeerWithLink",
            Self::StopProxyingToLocalPeer { .. } => "StopProxyingToLocalPeer",
            Self::FlushRouter { .. } => "FlushRouter",
        }
    }
}
