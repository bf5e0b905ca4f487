//! The proxy's public vocabulary: its links, configuration, transmits,
//! events and errors.

use super::*;

/// One of the proxy's three links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyLink {
    /// The Mojo+ipcz host's socket (`--host-ipcz-transport-fd`).
    Host,
    /// The legacy client's bootstrap socket (`--legacy-client-fd`).
    ClientBootstrap,
    /// The legacy node channel (our end of the pair sent in `INIT`).
    ClientNodeChannel,
    /// Inherit mode: the link to the host that the broker's reply brought
    /// (the host's socket then leads to the broker).
    Referrer,
    /// A link to a node the host introduced us to (§7), by the proxy's
    /// number for it (see [`ProxyEvent::AdoptIntroduced`]).
    Introduced(u64),
}

impl ProxyLink {
    pub(super) fn legacy(link: Link) -> Self {
        match link {
            Link::Bootstrap => Self::ClientBootstrap,
            Link::NodeChannel => Self::ClientNodeChannel,
        }
    }
}

impl fmt::Display for ProxyLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Host => "host link",
            Self::ClientBootstrap => "client bootstrap link",
            Self::ClientNodeChannel => "client node channel",
            Self::Referrer => "host referrer link",
            Self::Introduced(n) => return write!(f, "introduced link {n}"),
        })
    }
}

/// How the proxy is set up (the command line).
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The invitation's attachments.
    pub attachments: Attachments,
    /// The legacy wire profile the client speaks.
    pub legacy_profile: Profile,
    /// Our legacy node name (random, not zero).
    pub legacy_name: LegacyNodeName,
    /// `--inherit-ipcz-broker`: the host is a non-broker sharing its
    /// broker (§4.3).
    pub inherit_broker: bool,
}

/// One frame to write.
#[derive(Debug)]
pub struct ProxyTransmit {
    /// Where.
    pub link: ProxyLink,
    /// The whole frame.
    pub bytes: Vec<u8>,
    /// Its fds.
    pub fds: Vec<OwnedFd>,
}

/// What the driver must do or know.
#[derive(Debug)]
pub enum ProxyEvent {
    /// The host's greeting carried the primary buffer: map it and call
    /// [`Proxy::primary_buffer_mapped`], then offer the host link's unconsumed
    /// input again.
    MapPrimaryBuffer {
        /// Size, mode and GUID.
        buffer: SharedBuffer,
        /// The region's fd.
        fd: OwnedFd,
    },
    /// Inherit mode: adopt `fd`, the socket to the host, as
    /// [`ProxyLink::Referrer`] and read it at once (it has no handshake),
    /// then call [`Proxy::referrer_adopted`]; frames for it wait until then.
    AdoptReferrer {
        /// The socket.
        fd: OwnedFd,
    },
    /// The host introduced us to node `node` (§7): map `buffer` (its fds
    /// `buffer_fds`, the host's memory like the primary buffer) and call
    /// [`Proxy::introduction_mapped`] (or [`Proxy::introduction_unusable`]),
    /// then adopt `fd`, the socket to that node, as `link` (a
    /// [`ProxyLink::Introduced`]) and call [`Proxy::introduced_adopted`]
    /// (or, if it cannot be adopted, [`Proxy::handle_link_closed`]); frames
    /// for it wait until then.
    AdoptIntroduced {
        /// The new link.
        link: ProxyLink,
        /// The node it leads to (for logs).
        node: NodeName,
        /// The socket.
        fd: OwnedFd,
        /// The link's primary buffer: size, mode, GUID.
        buffer: SharedBuffer,
        /// Its fds.
        buffer_fds: Vec<OwnedFd>,
    },
    /// A memory request of the ipcz node ([`NodeEvent::CreateBlockBuffer`],
    /// [`NodeEvent::MapBlockBuffer`], [`NodeEvent::MemoryRequested`]):
    /// answer it on [`Proxy::ipcz_mut`].
    Memory(NodeEvent),
    /// The client asked for a shared memory region: create it and call
    /// [`Proxy::answer_region`] (or [`Proxy::fail_region`]).
    RegionRequest(RegionRequest),
    /// A pairing opened.
    PairingOpened {
        /// The pairing's number (for logs).
        pairing: u64,
    },
    /// A pairing closed.
    PairingClosed {
        /// The pairing's number.
        pairing: u64,
    },
    /// Something the bridge could not carry over or deliver (already
    /// handled; worth a log line).
    Dropped(BridgeEvent),
    /// Every pairing is gone: write what is queued and exit (status 0).
    Finished,
}

/// Why the proxy gave up on a link (and so on its job).
#[derive(Debug)]
pub enum ProxyError {
    /// The host broke the ipcz protocol (or its handshake).
    Host(ipcz_node::session::SessionError),
    /// The host link's node refused a frame.
    HostNode(ipcz_node::node::NodeError),
    /// A node the host introduced us to broke the ipcz protocol on its
    /// link (the node dropped that link; the run ends as for the host).
    Introduced {
        /// The link.
        link: ProxyLink,
        /// The node.
        node: NodeName,
        /// What it did.
        error: ipcz_node::node::NodeError,
    },
    /// The host offered one introduction more than [`MAX_INTRODUCED_LINKS`]
    /// (the offer's fds are closed).
    TooManyIntroducedLinks {
        /// The node offered.
        node: NodeName,
        /// [`MAX_INTRODUCED_LINKS`].
        limit: usize,
    },
    /// The client broke the legacy protocol (or its handshake).
    Client(mojo_legacy_node::session::SessionError),
    /// The host's socket closed before its invitation arrived.
    HostClosedEarly,
    /// Setting up the bridge failed.
    Bridge(BridgeError),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host(e) => write!(f, "host: {e}"),
            Self::HostNode(e) => write!(f, "host: {e}"),
            Self::Introduced { link, node, error } => write!(f, "{link} (node {node}): {error}"),
            Self::TooManyIntroducedLinks { node, limit } => write!(
                f,
                "host: introduction of node {node} beyond the limit of {limit} introduced links"
            ),
            Self::Client(e) => write!(f, "legacy client: {e}"),
            Self::HostClosedEarly => f.write_str("host: closed before its invitation arrived"),
            Self::Bridge(e) => write!(f, "bridge: {e}"),
        }
    }
}

impl std::error::Error for ProxyError {}
