//! Sessions: a connector of `mojo-invitation` composed with a [`Node`], so
//! one value takes a socket's stream from the first greeting on and runs
//! the ipcz link it establishes (spec `ipcz.md` §4).
//!
//! A [`Session`] plays one role on one socket:
//!
//! - [`Session::non_broker`]: a non-broker connecting to a broker host
//!   (`NonBrokerConnector`, §4.2; side B). The broker's greeting carries
//!   the primary buffer's fd; the session asks the caller to map it
//!   ([`SessionEvent::MapPrimaryBuffer`]) and builds the node once
//!   [`Session::primary_buffer_mapped`] hands the mapping back;
//! - [`Session::broker`]: a broker accepting a non-broker
//!   (`BrokerConnector`; side A) over a primary buffer the caller created
//!   and mapped; its node is built as soon as the greeting arrives;
//! - [`Session::referred`]: a non-broker inheriting the broker of a
//!   non-broker host (`ReferredConnector`, §4.3; `mojo_proxy
//!   --inherit-ipcz-broker`): the broker's one reply brings two primary
//!   buffers to map (two [`SessionEvent::MapPrimaryBuffer`]s, the broker
//!   link's first) and a second socket, the link to the host, which the
//!   caller adopts ([`SessionEvent::AdoptSocket`]); the initial portals live
//!   on that link.
//!
//! The other two parties of §4.3 run on an established session (module
//! `inherit`): a non-broker refers a node to its broker with
//! [`Session::refer`] (the referrer; the accepted link to the node comes as
//! [`SessionEvent::ReferralAccepted`]), and a broker serves a referral that
//! arrived on one of its links ([`SessionEvent::ReferralRequested`],
//! answered with [`Session::serve_referral`]). A broker may also connect
//! to another broker ([`Session::connect_broker`], module `brokers`;
//! MojoIpcz's isolated invitations), the link coming as
//! [`SessionEvent::BrokerConnected`].
//!
//! A session may so run several sockets ([`SocketId`]): the one it was made
//! for ([`SocketId::HANDSHAKE`]) and each one it asked the caller to adopt.
//! Every transmit names its socket; input goes in with
//! [`Session::handle_socket_stream`].
//!
//! Sans-IO, like the node: stream bytes and the fds received with them go
//! in with [`Session::handle_stream`] (which returns the bytes consumed),
//! frames come out of [`Session::poll_transmit`], and everything the caller
//! must know or do comes out of [`Session::poll_event`]: the link is up
//! (with its initial portals), the primary buffer must be mapped, and the
//! node's own events ([`NodeEvent`]), among them the memory ones
//! (create or map a block buffer) the caller answers on
//! [`Session::node_mut`] with the platform crate. Portals are used through
//! [`Session::node_mut`] once [`SessionEvent::Established`] came.
//!
//! Initial portals (§4.4, §4.5): the session opens its configured number;
//! with [`SessionConfig::close_reserved_portal`] (a Mojo node talking to
//! MojoIpcz, which keeps portal 0 for itself) portal 0 is closed at once
//! and reported as `None`.
//!
//! ```
//! use ipcz_node::session::{Session, SessionConfig, SessionEvent};
//! use ipcz_node::sim::SharedHeap;
//! use ipcz_wire::types::NodeName;
//! use mojo_invitation::ipcz::PrimaryBuffer;
//! use mojo_wire_kit::{Guid, SeededRandom};
//! use std::collections::VecDeque;
//!
//! // The broker's caller made the primary buffer (here: heap memory, and any
//! // fd standing in for the region's).
//! let heap = SharedHeap::new(ipcz_wire::limits::PRIMARY_BUFFER_SIZE);
//! let fd = std::fs::File::open("/dev/null")?.into();
//! let primary = PrimaryBuffer::new(ipcz_wire::limits::PRIMARY_BUFFER_SIZE as u32, Guid { high: 1, low: 2 }, fd);
//! let config = SessionConfig::default();
//! let mut random = SeededRandom::new(7);
//! let broker_name = NodeName { high: 1, low: 1 };
//! let mut broker = Session::broker(broker_name, config, primary, heap.clone(), &mut random)?;
//! let mut client = Session::<SharedHeap>::non_broker(config)?;
//!
//! // One socket's worth of plumbing each way.
//! let (mut to_client, mut to_broker) = (Vec::new(), Vec::new());
//! let (mut fds_to_client, mut fds_to_broker) = (VecDeque::new(), VecDeque::new());
//! for _ in 0..4 {
//!     while let Some(t) = broker.poll_transmit() {
//!         to_client.extend(t.bytes);
//!         fds_to_client.extend(t.fds);
//!     }
//!     while let Some(t) = client.poll_transmit() {
//!         to_broker.extend(t.bytes);
//!         fds_to_broker.extend(t.fds);
//!     }
//!     let used = client.handle_stream(&to_client, &mut fds_to_client)?;
//!     to_client.drain(..used);
//!     while let Some(event) = client.poll_event() {
//!         if let SessionEvent::MapPrimaryBuffer { .. } = event {
//!             client.primary_buffer_mapped(heap.clone())?; // a real caller maps the fd
//!         }
//!     }
//!     let used = broker.handle_stream(&to_broker, &mut fds_to_broker)?;
//!     to_broker.drain(..used);
//! }
//! assert!(client.is_established() && broker.is_established());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod brokers;
mod error;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod inherit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_brokers;
#[cfg(test)]
mod tests_inherit;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::os::fd::OwnedFd;

use ipcz_wire::frame::Frame;
use ipcz_wire::limits::DEFAULT_MAX_FRAME_LEN;
use ipcz_wire::types::{NodeName, ReferralId};
use mojo_invitation::ipcz::{
    BrokerConnector, BrokerReferralConnector, BrokerToBrokerConnector, EstablishedLink,
    LinkTransport, MAX_PRIMARY_BUFFER_SIZE, NonBrokerConnector, PrimaryBuffer, ReferredConnector,
};
use mojo_wire_kit::{RandomSource, SharedMemory};

pub use error::SessionError;
pub use events::{SessionEvent, SessionTransmit};
pub use inherit::BrokerReferralMemory;

use crate::link::LinkParams;
use crate::memory::MemoryOptions;
use crate::node::{Node, NodeConfig, NodeEvent};
use crate::router::{NodeLinkId, RouterId};

/// Most sockets one session runs (its own and the ones it adopted: a
/// broker gets one per referral it serves).
pub const MAX_SESSION_SOCKETS: usize = 256;

/// Most referrals a session has pending at once (referred by it, or
/// waiting to be served by it).
pub const MAX_PENDING_REFERRALS: usize = 64;

/// One of a session's sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(pub u32);

impl SocketId {
    /// The socket the session was made for.
    pub const HANDSHAKE: Self = Self(0);
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session socket {}", self.0)
    }
}

/// How a session behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Initial portals opened on our side (at most
    /// [`mojo_invitation::ipcz::MAX_INITIAL_PORTALS`]; a Mojo node:
    /// attachments + 1).
    pub initial_portals: u32,
    /// Close initial portal 0 at once (§4.5: MojoIpcz keeps it for its own
    /// service; a Mojo node that is not MojoIpcz closes it).
    pub close_reserved_portal: bool,
    /// The node's configuration.
    pub node: NodeConfig,
    /// How the link's memory may grow (the default, as MojoIpcz: fixed
    /// parcel capacity, so parcel data beyond the primary buffer's blocks
    /// goes inline).
    pub memory: MemoryOptions,
}

impl Default for SessionConfig {
    /// Two initial portals (one attachment), portal 0 closed.
    fn default() -> Self {
        Self {
            initial_portals: 2,
            close_reserved_portal: true,
            node: NodeConfig::default(),
            memory: MemoryOptions::default(),
        }
    }
}

/// What an established [`Session`] hands over ([`Session::into_parts`]).
#[derive(Debug)]
pub struct SessionParts<M> {
    /// The node.
    pub node: Node<M>,
    /// Its link over the session's socket.
    pub link: NodeLinkId,
    /// The links over adopted sockets.
    pub sockets: Vec<(SocketId, NodeLinkId)>,
    /// Frames for the sockets not yet polled, in order (before any of the
    /// node's own).
    pub transmits: VecDeque<SessionTransmit>,
    /// Events not yet polled, in order.
    pub events: VecDeque<SessionEvent>,
}

/// Where a session is.
#[derive(Debug)]
enum Phase<M> {
    NonBrokerHandshake(NonBrokerConnector),
    BrokerHandshake {
        connector: BrokerConnector,
        mapping: M,
    },
    ReferredHandshake(ReferredConnector),
    /// The handshake's primary buffers are being mapped (`Session::awaiting`).
    AwaitingMapping,
    Running {
        // Boxed: a node is much larger than a connector.
        node: Box<Node<M>>,
        link: NodeLinkId,
    },
    /// The link is gone (dropped, or its socket closed).
    Ended,
}

/// Why a link waits for its primary buffer's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// One of the handshake's links.
    Handshake,
    /// The link a referral of ours produced.
    Referral(ReferralId),
    /// The link to another broker on this socket.
    BrokerPeer(SocketId),
}

/// What one of the adopted sockets is.
#[derive(Debug)]
enum Socket {
    /// Carries this link of the node.
    Link(NodeLinkId),
    /// Broker: a referred node's socket, waiting for the caller's resources.
    ReferralRequested {
        referrer: NodeLinkId,
        referral: mojo_invitation::ipcz::Referral,
        fd: OwnedFd,
    },
    /// Broker: a referred node's handshake.
    Referral {
        referrer: NodeLinkId,
        connector: Box<BrokerReferralConnector>,
    },
    /// Broker: the handshake with another broker.
    BrokerPeer(Box<BrokerToBrokerConnector>),
    /// Broker: the other broker greeted; its buffer is being mapped.
    BrokerPeerMapping,
}

/// A connector and then a [`Node`] over one socket (or more): see the
/// module docs.
pub struct Session<M> {
    config: SessionConfig,
    phase: Phase<M>,
    events: VecDeque<SessionEvent>,
    /// Connector frames not yet polled when the connector was done.
    transmits: VecDeque<SessionTransmit>,
    error: Option<SessionError>,
    /// Links waiting for the caller's mapping of their primary buffer, in
    /// the order their events went out.
    awaiting: VecDeque<(EstablishedLink, Purpose)>,
    /// The handshake's links already mapped.
    mapped: Vec<(EstablishedLink, M)>,
    sockets: BTreeMap<SocketId, Socket>,
    next_socket: u32,
    /// Referrals of ours waiting for the broker's answer.
    referrals: Vec<mojo_invitation::ipcz::ReferrerConnector>,
    next_referral: u64,
    /// Broker link mappings of referrals being served, by socket.
    referral_mappings: BTreeMap<SocketId, M>,
    /// Our primary buffers of broker-to-broker handshakes, by socket.
    broker_peer_mappings: BTreeMap<SocketId, M>,
}

impl<M> fmt::Debug for Session<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("established", &matches!(self.phase, Phase::Running { .. }))
            .field("error", &self.error)
            .field("sockets", &self.sockets.len())
            .field("referrals", &self.referrals.len())
            .finish_non_exhaustive()
    }
}

impl<M: SharedMemory> Session<M> {
    /// A non-broker session (side B), its greeting queued.
    pub fn non_broker(config: SessionConfig) -> Result<Self, SessionError> {
        let connector = NonBrokerConnector::new(config.initial_portals)?;
        Ok(Self::with_phase(
            config,
            Phase::NonBrokerHandshake(connector),
        ))
    }

    /// A referred non-broker session (§4.3; side B on both its links), its
    /// greeting to the broker queued.
    pub fn referred(config: SessionConfig) -> Result<Self, SessionError> {
        let connector = ReferredConnector::new(config.initial_portals)?;
        Ok(Self::with_phase(
            config,
            Phase::ReferredHandshake(connector),
        ))
    }

    /// A broker session (side A) named `local_name`, greeting a new
    /// non-broker over `primary`, a region the caller created (unsafe, 128
    /// KiB to [`MAX_PRIMARY_BUFFER_SIZE`]) and mapped as `mapping`, which
    /// the connector initializes; its greeting (with the fd) is queued.
    pub fn broker(
        local_name: NodeName,
        config: SessionConfig,
        primary: PrimaryBuffer,
        mapping: M,
        random: &mut dyn RandomSource,
    ) -> Result<Self, SessionError> {
        let connector = BrokerConnector::new(
            local_name,
            config.initial_portals,
            primary,
            &mapping,
            random,
        )?;
        Ok(Self::with_phase(
            config,
            Phase::BrokerHandshake { connector, mapping },
        ))
    }

    fn with_phase(config: SessionConfig, phase: Phase<M>) -> Self {
        Self {
            config,
            phase,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            error: None,
            awaiting: VecDeque::new(),
            mapped: Vec::new(),
            sockets: BTreeMap::new(),
            next_socket: 1,
            referrals: Vec::new(),
            next_referral: 0,
            referral_mappings: BTreeMap::new(),
            broker_peer_mappings: BTreeMap::new(),
        }
    }

    /// Takes the session socket's unconsumed input: handles every whole
    /// frame at its start whose fds (taken from the front of `fds`) have
    /// arrived, and returns the bytes consumed. A non-broker stops after the
    /// broker's greeting until the primary buffer is mapped; offer the rest
    /// again then. An error ends the session (close the socket); it is
    /// returned again by every later call.
    pub fn handle_stream(
        &mut self,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let result = self.consume(input, fds);
        if let Err(e) = &result {
            self.fail(e.clone());
        }
        result
    }

    /// Takes the unconsumed input of `socket`, as [`Self::handle_stream`]
    /// does for [`SocketId::HANDSHAKE`]. An error on an adopted socket
    /// ends only that socket (close it); [`SessionEvent::SocketFailed`]
    /// says so too.
    pub fn handle_socket_stream(
        &mut self,
        socket: SocketId,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, SessionError> {
        if socket == SocketId::HANDSHAKE {
            return self.handle_stream(input, fds);
        }
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.consume_adopted(socket, input, fds)
    }

    fn consume(
        &mut self,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, SessionError> {
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            match &self.phase {
                Phase::AwaitingMapping | Phase::Ended => return Ok(consumed),
                Phase::Running { .. }
                | Phase::NonBrokerHandshake(_)
                | Phase::BrokerHandshake { .. }
                | Phase::ReferredHandshake(_) => {}
            }
            let prefix = match (frame_prefix(rest), &mut self.phase) {
                // The node drops its link for a bad frame, as it always did.
                (Err(_), Phase::Running { node, link }) => {
                    let result = node.handle_stream(*link, rest, fds);
                    self.drain_node();
                    return Ok(consumed + result?);
                }
                (prefix, _) => prefix?,
            };
            let Some((used, num_handles, id)) = prefix else {
                return Ok(consumed);
            };
            if fds.len() < num_handles {
                // The fds of a whole frame came with its first byte or
                // never will: a lie, not a frame to wait for.
                if let Phase::Running { node, link } = &mut self.phase {
                    // The node names it and drops the link, as for any
                    // frame it refuses.
                    let result = node.handle_stream(*link, rest, fds);
                    self.drain_node();
                    return Ok(consumed + result?);
                }
                return Err(SessionError::FdCount {
                    header: num_handles,
                    received: fds.len(),
                });
            }
            let frame_fds: Vec<OwnedFd> = fds.drain(..num_handles).collect();
            let bytes = rest.get(..used).unwrap_or_default();
            match &mut self.phase {
                Phase::Running { link, .. } => {
                    let link = *link;
                    if inherit::is_referral_message(id) {
                        self.referral_frame(link, id, bytes, frame_fds)?;
                    } else {
                        self.frame_to_node(link, bytes, frame_fds)?;
                    }
                }
                Phase::NonBrokerHandshake(c) => {
                    c.handle_frame(bytes, frame_fds)?;
                    if c.is_established() {
                        // The greeting may not have been polled yet.
                        while let Some(t) = c.poll_transmit() {
                            self.transmits.push_back(from_connector(t));
                        }
                        let established = c.finish()?;
                        self.await_mapping(vec![established])?;
                    }
                }
                Phase::ReferredHandshake(c) => {
                    c.handle_frame(bytes, frame_fds)?;
                    if c.is_established() {
                        while let Some(t) = c.poll_transmit() {
                            self.transmits.push_back(from_connector(t));
                        }
                        let inherited = c.finish()?;
                        self.await_mapping(vec![inherited.broker, inherited.referrer])?;
                    }
                }
                Phase::BrokerHandshake { connector, .. } => {
                    connector.handle_frame(bytes, frame_fds)?;
                    if connector.is_established() {
                        while let Some(t) = connector.poll_transmit() {
                            self.transmits.push_back(from_connector(t));
                        }
                        let established = connector.finish()?;
                        self.start_broker(established)?;
                    }
                }
                Phase::AwaitingMapping | Phase::Ended => {}
            }
            consumed += used;
        }
    }

    /// Asks the caller to map each link's primary buffer, in order.
    fn await_mapping(&mut self, links: Vec<EstablishedLink>) -> Result<(), SessionError> {
        for mut established in links {
            let fd = established
                .primary_buffer_fd
                .take()
                .ok_or(SessionError::MissingPrimaryBuffer)?;
            self.events.push_back(SessionEvent::MapPrimaryBuffer {
                buffer: established.primary_buffer,
                fd,
            });
            self.awaiting.push_back((established, Purpose::Handshake));
        }
        self.phase = Phase::AwaitingMapping;
        Ok(())
    }

    fn start_broker(&mut self, established: EstablishedLink) -> Result<(), SessionError> {
        let Phase::BrokerHandshake { mapping, .. } =
            std::mem::replace(&mut self.phase, Phase::Ended)
        else {
            return Err(SessionError::WrongPhase);
        };
        self.start(vec![(established, mapping)])
    }

    /// The caller mapped the primary buffer of the oldest unanswered
    /// [`SessionEvent::MapPrimaryBuffer`] (at least as large as it said).
    /// Once every buffer of the handshake is mapped the node is built and
    /// the initial portals open; input left unconsumed must be offered
    /// again.
    pub fn primary_buffer_mapped(&mut self, mapping: M) -> Result<(), SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let Some((established, purpose)) = self.awaiting.pop_front() else {
            return Err(SessionError::WrongPhase);
        };
        let wanted = established.primary_buffer.buffer_size;
        if mapping.size() < wanted as usize || wanted > MAX_PRIMARY_BUFFER_SIZE {
            let e = SessionError::PrimaryMappingTooSmall {
                size: mapping.size(),
                wanted,
            };
            return match purpose {
                Purpose::Handshake => {
                    self.fail(e.clone());
                    Err(e)
                }
                Purpose::Referral(referral_id) => {
                    self.events.push_back(SessionEvent::ReferralFailed {
                        referral_id,
                        error: e.clone(),
                    });
                    Err(e)
                }
                Purpose::BrokerPeer(socket) => {
                    self.fail_referral(socket, e.clone());
                    Err(e)
                }
            };
        }
        let result = match purpose {
            Purpose::Handshake => {
                self.mapped.push((established, mapping));
                if self.awaiting.iter().any(|(_, p)| *p == Purpose::Handshake) {
                    return Ok(());
                }
                let links = std::mem::take(&mut self.mapped);
                self.start(links)
            }
            Purpose::Referral(referral_id) => {
                self.referral_link_mapped(referral_id, established, mapping)
            }
            Purpose::BrokerPeer(socket) => {
                // Only that socket fails.
                if let Err(e) = self.broker_peer_link(socket, established, mapping) {
                    self.fail_referral(socket, e.clone());
                    return Err(e);
                }
                Ok(())
            }
        };
        if let Err(e) = &result {
            self.fail(e.clone());
        }
        result
    }

    /// Builds the node and the handshake's links, opens the initial portals
    /// (on the link that has some; the referred node's broker link has none).
    fn start(&mut self, links: Vec<(EstablishedLink, M)>) -> Result<(), SessionError> {
        let Some(local_name) = links.first().map(|(e, _)| e.local_name) else {
            return Err(SessionError::WrongPhase);
        };
        let mut node = Node::new(local_name, self.config.node);
        let mut handshake_link = None;
        let mut portal_link = None;
        for (established, mapping) in links {
            let (link, socket) = self.add_link(&mut node, established, mapping)?;
            if socket.is_none() {
                handshake_link = Some(link.0);
            }
            if link.1.local > 0 || portal_link.is_none() {
                portal_link = Some(link);
            }
        }
        let (Some(handshake_link), Some(((link, counts), remote_name))) = (
            handshake_link,
            portal_link.map(|l| {
                let remote = node.link(l.0).map(|x| x.remote_name()).unwrap_or_default();
                (l, remote)
            }),
        ) else {
            return Err(SessionError::WrongPhase);
        };
        let portals = self.open_portals(&mut node, link, counts)?;
        self.phase = Phase::Running {
            node: Box::new(node),
            link: handshake_link,
        };
        self.events.push_back(SessionEvent::Established {
            local_name,
            remote_name,
            portals,
        });
        self.drain_node();
        Ok(())
    }

    /// Adds one established link to `node`; a link over a new socket gets a
    /// [`SocketId`] and its [`SessionEvent::AdoptSocket`].
    fn add_link(
        &mut self,
        node: &mut Node<M>,
        established: EstablishedLink,
        mapping: M,
    ) -> Result<
        (
            (NodeLinkId, mojo_invitation::ipcz::PortalCounts),
            Option<SocketId>,
        ),
        SessionError,
    > {
        // The creator's connector already initialized the primary buffer.
        let mut params = LinkParams::new(
            established.local_name,
            established.remote_name,
            established.side,
            mapping,
        );
        params.remote_protocol_version = established.remote_protocol_version;
        // A broker remote makes this the link introductions are asked on (§7.2).
        params.remote_node_type = established.remote_type;
        params.memory_options = self.config.memory;
        let link = node.add_link(params)?;
        let counts = established.portal_counts;
        let socket = match established.transport {
            LinkTransport::Handshake => None,
            LinkTransport::Socket { fd, .. } => {
                let socket = self.new_socket()?;
                self.sockets.insert(socket, Socket::Link(link));
                self.events
                    .push_back(SessionEvent::AdoptSocket { socket, fd });
                Some(socket)
            }
        };
        Ok(((link, counts), socket))
    }

    /// A fresh socket id ([`SessionError::TooManySockets`] past the limit).
    fn new_socket(&mut self) -> Result<SocketId, SessionError> {
        if self.sockets.len() >= MAX_SESSION_SOCKETS {
            return Err(SessionError::TooManySockets {
                limit: MAX_SESSION_SOCKETS,
            });
        }
        let socket = SocketId(self.next_socket);
        self.next_socket = self.next_socket.wrapping_add(1).max(1);
        Ok(socket)
    }

    /// Opens a link's initial portals, closing the reserved one if asked.
    fn open_portals(
        &self,
        node: &mut Node<M>,
        link: NodeLinkId,
        counts: mojo_invitation::ipcz::PortalCounts,
    ) -> Result<Vec<Option<RouterId>>, SessionError> {
        let opened =
            node.open_initial_portals(link, counts.local as usize, counts.remote as usize)?;
        let mut portals: Vec<Option<RouterId>> = opened.into_iter().map(Some).collect();
        if self.config.close_reserved_portal {
            if let Some(slot) = portals.first_mut() {
                if let Some(portal) = slot.take() {
                    node.close(portal)?;
                }
            }
        }
        Ok(portals)
    }

    /// Moves the node's events into the session's queue; a dropped link
    /// ends the session if it is the handshake socket's, else that socket.
    fn drain_node(&mut self) {
        let mut dropped = None;
        let mut failed_sockets = Vec::new();
        if let Phase::Running { node, link } = &mut self.phase {
            while let Some(event) = node.poll_event() {
                if let NodeEvent::LinkDropped { link: l, error, .. } = &event {
                    if l == link {
                        dropped = Some(error.clone());
                    } else if let Some(socket) = self
                        .sockets
                        .iter()
                        .find(|(_, s)| matches!(s, Socket::Link(x) if x == l))
                        .map(|(id, _)| *id)
                    {
                        failed_sockets.push((socket, error.clone()));
                    }
                }
                self.events.push_back(SessionEvent::Node(event));
            }
        }
        for (socket, error) in failed_sockets {
            self.sockets.remove(&socket);
            self.events.push_back(SessionEvent::SocketFailed {
                socket,
                error: SessionError::Node(error),
            });
        }
        if let Some(error) = dropped {
            self.error = Some(SessionError::Node(error));
        }
    }

    fn fail(&mut self, error: SessionError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
        if !matches!(self.phase, Phase::Running { .. }) {
            self.phase = Phase::Ended;
        }
    }

    /// The socket reached end of stream or failed: before the handshake
    /// completed this is [`SessionError::Handshake`]; after, every route
    /// through the link is disconnected (the node reports it).
    pub fn handle_closed(&mut self) -> Result<(), SessionError> {
        let result = match &mut self.phase {
            Phase::NonBrokerHandshake(c) => c.handle_closed().map_err(SessionError::from),
            Phase::ReferredHandshake(c) => c.handle_closed().map_err(SessionError::from),
            Phase::BrokerHandshake { connector, .. } => {
                connector.handle_closed().map_err(SessionError::from)
            }
            Phase::AwaitingMapping => Err(SessionError::ClosedBeforeMapping),
            Phase::Running { node, link } => {
                node.link_lost(*link);
                Ok(())
            }
            Phase::Ended => Ok(()),
        };
        self.drain_node();
        if let Err(e) = &result {
            self.fail(e.clone());
        }
        result
    }

    /// `socket` reached end of stream or failed, as [`Self::handle_closed`]
    /// for [`SocketId::HANDSHAKE`]; an adopted socket's link is lost (its
    /// routes disconnected), a referral being served is rejected.
    pub fn handle_socket_closed(&mut self, socket: SocketId) -> Result<(), SessionError> {
        if socket == SocketId::HANDSHAKE {
            return self.handle_closed();
        }
        self.adopted_closed(socket);
        self.drain_node();
        Ok(())
    }

    /// The next frame to write.
    pub fn poll_transmit(&mut self) -> Option<SessionTransmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        match &mut self.phase {
            Phase::NonBrokerHandshake(c) => c.poll_transmit().map(from_connector),
            Phase::ReferredHandshake(c) => c.poll_transmit().map(from_connector),
            Phase::BrokerHandshake { connector, .. } => {
                connector.poll_transmit().map(from_connector)
            }
            Phase::Running { node, link } => {
                let t = node.poll_transmit()?;
                let socket = if t.link == *link {
                    SocketId::HANDSHAKE
                } else {
                    self.sockets
                        .iter()
                        .find(|(_, s)| matches!(s, Socket::Link(x) if *x == t.link))
                        .map(|(id, _)| *id)
                        // A frame for a socket already gone: nobody reads it.
                        .unwrap_or(SocketId(u32::MAX))
                };
                Some(SessionTransmit {
                    socket,
                    bytes: t.bytes,
                    fds: t.fds,
                })
            }
            Phase::AwaitingMapping | Phase::Ended => None,
        }
    }

    /// The next event. Call after every call into the session or its node
    /// (node events queue in the node until then).
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.drain_node();
        self.events.pop_front()
    }

    /// Whether the link is up (its node exists).
    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Running { .. })
    }

    /// The error that ended the session, if one did.
    pub fn error(&self) -> Option<&SessionError> {
        self.error.as_ref()
    }

    /// The node, once established.
    pub fn node(&self) -> Option<&Node<M>> {
        match &self.phase {
            Phase::Running { node, .. } => Some(node),
            _ => None,
        }
    }

    /// The node, once established: use its portal API and answer its
    /// memory events on it.
    pub fn node_mut(&mut self) -> Option<&mut Node<M>> {
        match &mut self.phase {
            Phase::Running { node, .. } => Some(node),
            _ => None,
        }
    }

    /// The node's link over this session's socket, once established.
    pub fn link(&self) -> Option<NodeLinkId> {
        match &self.phase {
            Phase::Running { link, .. } => Some(*link),
            _ => None,
        }
    }

    /// The node's link over `socket`, once it has one.
    pub fn socket_link(&self, socket: SocketId) -> Option<NodeLinkId> {
        if socket == SocketId::HANDSHAKE {
            return self.link();
        }
        match self.sockets.get(&socket) {
            Some(Socket::Link(link)) => Some(*link),
            _ => None,
        }
    }

    /// Ends an established session and hands over what it ran: the node,
    /// its links, and the frames and events not yet polled (write and
    /// handle those first). From then on the caller feeds the sockets'
    /// streams to [`Node::handle_stream`] itself (referrals are then no
    /// longer possible). Before establishment (or after the session ended)
    /// the session is given back unchanged.
    pub fn into_parts(mut self: Box<Self>) -> Result<SessionParts<M>, Box<Self>> {
        self.drain_node();
        match std::mem::replace(&mut self.phase, Phase::Ended) {
            Phase::Running { node, link } => Ok(SessionParts {
                node: *node,
                link,
                sockets: self
                    .sockets
                    .iter()
                    .filter_map(|(id, s)| match s {
                        Socket::Link(l) => Some((*id, *l)),
                        _ => None,
                    })
                    .collect(),
                transmits: std::mem::take(&mut self.transmits),
                events: std::mem::take(&mut self.events),
            }),
            phase => {
                self.phase = phase;
                Err(self)
            }
        }
    }
}

fn from_connector(t: mojo_invitation::ipcz::Transmit) -> SessionTransmit {
    SessionTransmit {
        socket: SocketId::HANDSHAKE,
        bytes: t.bytes,
        fds: t.fds,
    }
}

/// The length, fd count and message id of the whole frame at the start of
/// `rest`, or `None` until it has all arrived.
fn frame_prefix(rest: &[u8]) -> Result<Option<(usize, usize, u8)>, SessionError> {
    if let Some(len) = rest.get(4..8) {
        let mut word = [0; 4];
        word.copy_from_slice(len);
        let num_bytes = u32::from_le_bytes(word);
        if num_bytes > DEFAULT_MAX_FRAME_LEN {
            return Err(SessionError::FrameTooLarge { num_bytes });
        }
    }
    match Frame::decode_prefix(rest) {
        Ok(Some((frame, used))) => Ok(Some((
            used,
            usize::from(frame.header.num_handles),
            frame.payload.get(2).copied().unwrap_or(u8::MAX),
        ))),
        Ok(None) => Ok(None),
        Err(e) => Err(SessionError::Frame(e)),
    }
}
