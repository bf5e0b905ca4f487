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
//!   and mapped; its node is built as soon as the greeting arrives.
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

mod error;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::SharedBuffer;
use ipcz_wire::frame::Frame;
use ipcz_wire::limits::DEFAULT_MAX_FRAME_LEN;
use ipcz_wire::types::NodeName;
use mojo_invitation::ipcz::{
    BrokerConnector, EstablishedLink, MAX_PRIMARY_BUFFER_SIZE, NonBrokerConnector, PrimaryBuffer,
};
use mojo_wire_kit::{RandomSource, SharedMemory};

pub use error::SessionError;

use crate::link::LinkParams;
use crate::memory::MemoryOptions;
use crate::node::{Node, NodeConfig, NodeEvent};
use crate::router::{NodeLinkId, RouterId};

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

/// One frame to write to the session's socket, with its fds.
#[derive(Debug)]
pub struct SessionTransmit {
    /// The whole frame (IpczHeader and message).
    pub bytes: Vec<u8>,
    /// Its fds (SCM_RIGHTS with the frame's first byte), in order.
    pub fds: Vec<OwnedFd>,
}

/// Something the caller of a [`Session`] must know or do.
#[derive(Debug)]
pub enum SessionEvent {
    /// The broker's greeting came with the primary buffer: map `fd` (an
    /// unsafe region described by `buffer`, read-write; from a broker host,
    /// a trusted peer) and call [`Session::primary_buffer_mapped`]. Input
    /// after the greeting is not consumed until then.
    MapPrimaryBuffer {
        /// Size, mode and GUID.
        buffer: SharedBuffer,
        /// The region's fd.
        fd: OwnedFd,
    },
    /// The link is up: its node exists and its initial portals are open.
    Established {
        /// Our node's name.
        local_name: NodeName,
        /// The other node's name.
        remote_name: NodeName,
        /// Initial portal `i` at index `i`; `None` for a portal closed at
        /// once (portal 0 with [`SessionConfig::close_reserved_portal`]).
        /// Portals beyond the other side's count are peer-closed.
        portals: Vec<Option<RouterId>>,
    },
    /// An event of the node: answer the memory ones
    /// ([`NodeEvent::CreateBlockBuffer`], [`NodeEvent::MapBlockBuffer`],
    /// [`NodeEvent::MemoryRequested`]) on [`Session::node_mut`].
    /// [`NodeEvent::LinkDropped`] ends the session: close the socket.
    Node(NodeEvent),
}

/// What an established [`Session`] hands over ([`Session::into_parts`]).
#[derive(Debug)]
pub struct SessionParts<M> {
    /// The node.
    pub node: Node<M>,
    /// Its link over the session's socket.
    pub link: NodeLinkId,
    /// Frames for the socket not yet polled, in order (before any of the
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
    /// The non-broker waits for the caller's mapping of the primary buffer.
    AwaitingMapping(EstablishedLink),
    Running {
        // Boxed: a node is much larger than a connector.
        node: Box<Node<M>>,
        link: NodeLinkId,
    },
    /// The link is gone (dropped, or its socket closed).
    Ended,
}

/// A connector and then a [`Node`] over one socket: see the module docs.
#[derive(Debug)]
pub struct Session<M> {
    config: SessionConfig,
    phase: Phase<M>,
    events: VecDeque<SessionEvent>,
    /// Connector frames not yet polled when the connector was done.
    transmits: VecDeque<SessionTransmit>,
    error: Option<SessionError>,
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
        }
    }

    /// Takes the socket's unconsumed input: handles every whole frame at
    /// its start whose fds (taken from the front of `fds`) have arrived,
    /// and returns the bytes consumed. A non-broker stops after the
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

    fn consume(
        &mut self,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, SessionError> {
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            match &mut self.phase {
                Phase::Running { node, link } => {
                    let used = node.handle_stream(*link, rest, fds);
                    self.drain_node();
                    return Ok(consumed + used?);
                }
                Phase::AwaitingMapping(_) | Phase::Ended => return Ok(consumed),
                Phase::NonBrokerHandshake(_) | Phase::BrokerHandshake { .. } => {}
            }
            let Some((used, num_handles)) = frame_prefix(rest)? else {
                return Ok(consumed);
            };
            if fds.len() < num_handles {
                return Ok(consumed);
            }
            let frame_fds: Vec<OwnedFd> = fds.drain(..num_handles).collect();
            let bytes = rest.get(..used).unwrap_or_default();
            match &mut self.phase {
                Phase::NonBrokerHandshake(c) => {
                    c.handle_frame(bytes, frame_fds)?;
                    if c.is_established() {
                        // The greeting may not have been polled yet.
                        while let Some(t) = c.poll_transmit() {
                            self.transmits.push_back(from_connector(t));
                        }
                        let established = c.finish()?;
                        self.await_mapping(established)?;
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
                _ => {}
            }
            consumed += used;
        }
    }

    fn await_mapping(&mut self, mut established: EstablishedLink) -> Result<(), SessionError> {
        let fd = established
            .primary_buffer_fd
            .take()
            .ok_or(SessionError::MissingPrimaryBuffer)?;
        self.events.push_back(SessionEvent::MapPrimaryBuffer {
            buffer: established.primary_buffer,
            fd,
        });
        self.phase = Phase::AwaitingMapping(established);
        Ok(())
    }

    fn start_broker(&mut self, established: EstablishedLink) -> Result<(), SessionError> {
        let Phase::BrokerHandshake { mapping, .. } =
            std::mem::replace(&mut self.phase, Phase::Ended)
        else {
            return Err(SessionError::WrongPhase);
        };
        self.start(established, mapping)
    }

    /// The caller mapped the primary buffer of
    /// [`SessionEvent::MapPrimaryBuffer`] (at least as large as it said):
    /// the node is built and the initial portals open. Input left
    /// unconsumed must be offered again.
    pub fn primary_buffer_mapped(&mut self, mapping: M) -> Result<(), SessionError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if !matches!(self.phase, Phase::AwaitingMapping(_)) {
            return Err(SessionError::WrongPhase);
        }
        let Phase::AwaitingMapping(established) = std::mem::replace(&mut self.phase, Phase::Ended)
        else {
            return Err(SessionError::WrongPhase);
        };
        let wanted = established.primary_buffer.buffer_size;
        let result = if mapping.size() < wanted as usize || wanted > MAX_PRIMARY_BUFFER_SIZE {
            Err(SessionError::PrimaryMappingTooSmall {
                size: mapping.size(),
                wanted,
            })
        } else {
            self.start(established, mapping)
        };
        if let Err(e) = &result {
            self.fail(e.clone());
        }
        result
    }

    /// Builds the node and its link, opens the initial portals.
    fn start(&mut self, established: EstablishedLink, mapping: M) -> Result<(), SessionError> {
        let local_name = established.local_name;
        let remote_name = established.remote_name;
        let mut node = Node::new(local_name, self.config.node);
        // The creator's connector already initialized the primary buffer.
        let mut params = LinkParams::new(local_name, remote_name, established.side, mapping);
        params.remote_protocol_version = established.remote_protocol_version;
        // A broker remote makes this the link introductions are asked on (§7.2).
        params.remote_node_type = established.remote_type;
        params.memory_options = self.config.memory;
        let link = node.add_link(params)?;
        let counts = established.portal_counts;
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
        self.phase = Phase::Running {
            node: Box::new(node),
            link,
        };
        self.events.push_back(SessionEvent::Established {
            local_name,
            remote_name,
            portals,
        });
        self.drain_node();
        Ok(())
    }

    /// Moves the node's events into the session's queue; a dropped link
    /// ends the session.
    fn drain_node(&mut self) {
        let mut dropped = None;
        if let Phase::Running { node, link } = &mut self.phase {
            while let Some(event) = node.poll_event() {
                if let NodeEvent::LinkDropped { link: l, error, .. } = &event {
                    if l == link {
                        dropped = Some(error.clone());
                    }
                }
                self.events.push_back(SessionEvent::Node(event));
            }
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
            Phase::BrokerHandshake { connector, .. } => {
                connector.handle_closed().map_err(SessionError::from)
            }
            Phase::AwaitingMapping(_) => Err(SessionError::ClosedBeforeMapping),
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

    /// The next frame to write.
    pub fn poll_transmit(&mut self) -> Option<SessionTransmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        match &mut self.phase {
            Phase::NonBrokerHandshake(c) => c.poll_transmit().map(from_connector),
            Phase::BrokerHandshake { connector, .. } => {
                connector.poll_transmit().map(from_connector)
            }
            Phase::Running { node, .. } => {
                let t = node.poll_transmit()?;
                Some(SessionTransmit {
                    bytes: t.bytes,
                    fds: t.fds,
                })
            }
            Phase::AwaitingMapping(_) | Phase::Ended => None,
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

    /// Ends an established session and hands over what it ran: the node,
    /// its link, and the frames and events not yet polled (write and handle
    /// those first). From then on the caller feeds the socket's stream to
    /// [`Node::handle_stream`] itself. Before establishment (or after the
    /// session ended) the session is given back unchanged.
    pub fn into_parts(mut self: Box<Self>) -> Result<SessionParts<M>, Box<Self>> {
        self.drain_node();
        match self.phase {
            Phase::Running { node, link } => Ok(SessionParts {
                node: *node,
                link,
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
        bytes: t.bytes,
        fds: t.fds,
    }
}

/// The length and fd count of the whole frame at the start of `rest`, or
/// `None` until it has all arrived.
fn frame_prefix(rest: &[u8]) -> Result<Option<(usize, usize)>, SessionError> {
    if let Some(len) = rest.get(4..8) {
        let mut word = [0; 4];
        word.copy_from_slice(len);
        let num_bytes = u32::from_le_bytes(word);
        if num_bytes > DEFAULT_MAX_FRAME_LEN {
            return Err(SessionError::FrameTooLarge { num_bytes });
        }
    }
    match Frame::decode_prefix(rest) {
        Ok(Some((frame, used))) => Ok(Some((used, usize::from(frame.header.num_handles)))),
        Ok(None) => Ok(None),
        Err(e) => Err(SessionError::Frame(e)),
    }
}
