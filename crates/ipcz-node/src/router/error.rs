//! Typed errors: route messages that break a rule (the node then drops the
//! node link they came on) and refused application calls.

use core::fmt;

use ipcz_wire::types::SublinkId;

/// A route message that violates the protocol. The node link it arrived
/// on must be dropped (§6.7); every route through it is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// A message for a node link the table was never told about.
    UnknownNodeLink,
    /// A RouterDescriptor reuses the carrying sublink or its own sublinks (§6.5.1 step 1).
    DescriptorSublinkConflict {
        /// The sublink carrying the parcel.
        sublink: SublinkId,
    },
    /// A descriptor's `closed_peer_sequence_length` cannot be a final length.
    DescriptorPeerClosedLength {
        /// The length.
        length: u64,
    },
    /// A central link's RouterLinkState is missing or invalid, or a
    /// peripheral link has one.
    InvalidLinkState {
        /// The link the state was for.
        sublink: SublinkId,
    },
    /// A new link names a sublink already registered on the node link.
    SublinkInUse {
        /// The sublink.
        sublink: SublinkId,
    },
    /// RouteClosed with a final length that conflicts with what arrived.
    FinalLengthConflict {
        /// The router's sublink.
        sublink: SublinkId,
        /// The offered length.
        sequence_length: u64,
    },
    /// BypassPeer from a link that is not the router's outward primary.
    BypassFromNonOutwardPeer {
        /// The sublink it came on.
        sublink: SublinkId,
    },
    /// A bypass would decay a link while another one is still decaying.
    AlreadyDecaying {
        /// The router's sublink.
        sublink: SublinkId,
    },
    /// A bypass needs a remote outward link and the router has a local one.
    OutwardLinkNotRemote {
        /// The router's sublink.
        sublink: SublinkId,
    },
    /// AcceptBypassLink from a node the proxy did not authorize (§6.8.4 step 5).
    BypassNotAuthorized {
        /// The X-Y sublink.
        sublink: SublinkId,
    },
    /// StopProxying / StopProxyingToLocalPeer for a router that is not a
    /// proxy in the middle of a bypass (§6.10: a terminal router).
    NotAProxy {
        /// The sublink.
        sublink: SublinkId,
    },
    /// ProxyWillStop for a router whose outward edge is not decaying.
    NotDecaying {
        /// The sublink.
        sublink: SublinkId,
    },
    /// ProxyWillStop for a router whose decaying outward link is in-process
    /// (§3.4: X sends it to Z about a bypassed remote proxy).
    ProxyWillStopNotOnBypassLink {
        /// The sublink it came on.
        sublink: SublinkId,
    },
    /// A parcel addressed to a router that the parcel itself carries.
    ParcelForItsOwnPortal {
        /// The sublink.
        sublink: SublinkId,
    },
    /// The peer sent more parcels than a router may hold.
    TooManyQueuedParcels {
        /// The sublink.
        sublink: SublinkId,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownNodeLink => f.write_str("route message on an unknown node link"),
            Self::DescriptorSublinkConflict { sublink } => {
                write!(f, "router descriptor on sublink {sublink} reuses a sublink")
            }
            Self::DescriptorPeerClosedLength { length } => {
                write!(
                    f,
                    "router descriptor has an impossible closed-peer length {length}"
                )
            }
            Self::InvalidLinkState { sublink } => {
                write!(f, "invalid RouterLinkState for sublink {sublink}")
            }
            Self::SublinkInUse { sublink } => write!(f, "sublink {sublink} is already in use"),
            Self::FinalLengthConflict {
                sublink,
                sequence_length,
            } => write!(
                f,
                "RouteClosed on sublink {sublink} with conflicting length {sequence_length}"
            ),
            Self::BypassFromNonOutwardPeer { sublink } => {
                write!(
                    f,
                    "BypassPeer on sublink {sublink}, not the router's outward link"
                )
            }
            Self::AlreadyDecaying { sublink } => {
                write!(
                    f,
                    "bypass of the router on sublink {sublink} while a link still decays"
                )
            }
            Self::OutwardLinkNotRemote { sublink } => {
                write!(
                    f,
                    "bypass of the router on sublink {sublink} whose outward link is local"
                )
            }
            Self::BypassNotAuthorized { sublink } => {
                write!(
                    f,
                    "AcceptBypassLink for sublink {sublink} from a node not allowed to bypass"
                )
            }
            Self::NotAProxy { sublink } => {
                write!(
                    f,
                    "proxy message for sublink {sublink}, which is not a bypassed proxy"
                )
            }
            Self::NotDecaying { sublink } => {
                write!(
                    f,
                    "ProxyWillStop for sublink {sublink}, whose outward link is not decaying"
                )
            }
            Self::ProxyWillStopNotOnBypassLink { sublink } => {
                write!(
                    f,
                    "ProxyWillStop for sublink {sublink}, whose decaying link is in-process"
                )
            }
            Self::ParcelForItsOwnPortal { sublink } => {
                write!(
                    f,
                    "parcel on sublink {sublink} carries the portal it is addressed to"
                )
            }
            Self::TooManyQueuedParcels { sublink } => {
                write!(f, "too many parcels queued for sublink {sublink}")
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// An application call the table refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalError {
    /// Not a portal the application holds (unknown, closed, moved or in transit).
    NotAPortal,
    /// The peer is closed or the route disconnected: nothing can be sent.
    PeerClosed,
    /// The portal has [`super::MAX_QUEUED_PARCELS_PER_ROUTER`] parcels waiting to be sent.
    QueueFull,
    /// The route's sequence numbers are used up (a peer-supplied
    /// descriptor started them near the end of the range).
    SequenceExhausted,
    /// A portal handle in the parcel is the sending portal itself, its local
    /// peer, not a portal, or listed twice.
    InvalidTransfer,
    /// The table never proxies ([`super::ProxyPolicy::Never`]) and moving
    /// this portal would need a proxy (its peer is not a fresh local peer).
    WouldProxy,
    /// The parcel's objects carry more fds than one `sendmsg()` may
    /// ([`ipcz_wire::limits::MAX_FDS_PER_SENDMSG`]); a Chrome host would
    /// lose the rest (spec §11.3). Checked by the node, which knows the fds.
    TooManyFds,
}

impl fmt::Display for PortalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAPortal => "not a portal the application holds",
            Self::PeerClosed => "the portal's peer is closed",
            Self::QueueFull => "too many parcels queued on the portal",
            Self::SequenceExhausted => "the route has no sequence numbers left",
            Self::InvalidTransfer => "a portal cannot be sent through itself or its peer",
            Self::TooManyFds => "the parcel carries more fds than one sendmsg may",
            Self::WouldProxy => {
                "moving this portal would need a proxy, and this node never proxies"
            }
        })
    }
}

impl std::error::Error for PortalError {}
