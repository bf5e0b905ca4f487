//! The sans-IO bridge engine of `mojo_proxy`: one ipcz node (a non-broker
//! towards the Mojo+ipcz host) and one legacy Mojo Core node (the broker
//! of the legacy client), with every ipcz portal paired to a legacy message
//! pipe end and messages forwarded both ways.
//!
//! - Payload bytes are copied verbatim (ipcz §8.1), empty messages too;
//!   each pipe keeps its FIFO order and each message its handle order.
//! - Handles are translated (ipcz §8.2, §8.5): a message pipe end becomes
//!   a portal and the other way round, each with a pairing of its own; a
//!   shared memory region keeps its size, GUID and mode; a platform handle
//!   keeps its fd. What has no counterpart (ipcz transports, data pipe
//!   ends without a [`RingMemory`] or beyond the data pipe limits) closes
//!   that message's handles, is reported as
//!   [`BridgeEvent::Untranslatable`], and the pipe keeps working.
//! - A legacy pipe end that comes back (the peer of a port the bridge
//!   pairs, nothing left between them) is not paired again: its pairing's
//!   portal goes on instead, so bouncing a host's pipe through the client
//!   leaves no chain of pairings behind.
//! - Data pipe ends (ipcz §8.3, with a [`RingMemory`] installed by
//!   [`Bridge::with_ring_memory`]): the bridge keeps the arriving end, a
//!   fresh pipe is made on the other side and its matching end forwarded,
//!   and bytes are pumped between the rings with flow control; closure
//!   follows the last byte.
//! - Closure (ipcz §8.4): once one side of a pairing is closed or lost and
//!   everything it sent has been forwarded, the other side is closed.
//!
//! - Counting (`stats`): messages, bytes and handles per direction, per
//!   pipe and in total, pairings opened and closed, failures; a
//!   [`BridgeSnapshot`] of the pipes and what the nodes hold on demand.
//!
//! Sans-IO: frames and fds go in with [`Bridge::handle_ipcz_frame`] and
//! [`Bridge::handle_legacy_frame`]; frames to write come out of
//! [`Bridge::poll_transmit`], tagged by side; what the driver must do
//! (create or map memory, drop a transport) comes out of
//! [`Bridge::poll_event`].
//!
//! A host, the bridge and a client in memory, one message each way over
//! attachment 0:
//!
//! ```
//! use ipcz_node::link::LinkParams;
//! use ipcz_node::node::{Node, NodeConfig};
//! use ipcz_node::sim::SharedHeap;
//! use ipcz_wire::types::{LinkSide, NodeName};
//! use mojo_bridge::{Attachments, Bridge, BridgeTransmit};
//! use mojo_legacy_node::node::{LegacyNode, PeerRole};
//! use mojo_legacy_node::ports::names;
//! use mojo_legacy_wire::Profile;
//! use mojo_wire_kit::SeededRandom;
//!
//! // The ipcz host (broker) and the bridge's ipcz node, one link.
//! let (host_name, proxy_name) = (NodeName { high: 1, low: 1 }, NodeName { high: 2, low: 2 });
//! let primary = SharedHeap::new(ipcz_wire::memory::primary::SIZE);
//! let mut host = Node::new(host_name, NodeConfig::default());
//! let host_link = host.add_link(
//!     LinkParams::new(host_name, proxy_name, LinkSide::A, primary.clone())
//!         .initializing_primary_buffer(),
//! )?;
//! let mut proxy_ipcz = Node::new(proxy_name, NodeConfig::default());
//! let proxy_link = proxy_ipcz.add_link(LinkParams::new(proxy_name, host_name, LinkSide::B, primary))?;
//! let host_portals = host.open_initial_portals(host_link, 2, 2)?;
//!
//! // The bridge's legacy node (broker) and the legacy client.
//! let mut proxy_legacy = LegacyNode::new(names::node_name(3, 3), SeededRandom::new(3));
//! let mut client = LegacyNode::new(names::node_name(4, 4), SeededRandom::new(4));
//! proxy_legacy.add_peer(client.name(), Profile::Libchrome, PeerRole::Client)?;
//! client.add_peer(proxy_legacy.name(), Profile::Libchrome, PeerRole::Broker)?;
//! let client_end = client.request_port_merge(proxy_legacy.name(), &0u64.to_le_bytes())?;
//!
//! let mut bridge = Bridge::new(proxy_ipcz, proxy_link, 2, proxy_legacy, &Attachments::Numbered(1))?;
//! host.put(host_portals[1], b"ping".to_vec(), Vec::new()).unwrap();
//! client.write_message(client_end, b"pong", Vec::new())?;
//!
//! // What a driver does with sockets, until nothing moves.
//! let proxy_legacy_name = bridge.legacy().name();
//! loop {
//!     let mut moved = false;
//!     while let Some(t) = host.poll_transmit() {
//!         bridge.handle_ipcz_frame(proxy_link, &t.bytes, t.fds)?;
//!         moved = true;
//!     }
//!     while let Some(t) = client.poll_transmit() {
//!         bridge.handle_legacy_frame(client.name(), &t.bytes, t.fds)?;
//!         moved = true;
//!     }
//!     while let Some(t) = bridge.poll_transmit() {
//!         match t {
//!             BridgeTransmit::Ipcz(t) => host.handle_frame(host_link, &t.bytes, t.fds)?,
//!             BridgeTransmit::Legacy(t) => client.handle_frame(proxy_legacy_name, &t.bytes, t.fds)?,
//!         }
//!         moved = true;
//!     }
//!     while bridge.poll_event().is_some() {}
//!     if !moved {
//!         break;
//!     }
//! }
//! assert_eq!(client.read_message(client_end)?.unwrap().0, b"ping");
//! assert_eq!(host.get(host_portals[1]).unwrap().unwrap().data, b"pong");
//! assert_eq!(bridge.pairing_count(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
// Peer input reaches every path here: no panics outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

mod collapse;
mod data_pipe;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod proxy;
mod stats;
mod translate;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use mojo_wire_kit::KeyedHasher;
use std::os::fd::OwnedFd;

use ipcz_node::node::{Node, NodeEvent};
use ipcz_node::router::{Handle as IpczHandle, NodeLinkId, RouterId};
use mojo_legacy_node::node::{self as legacy, ApiError, LegacyNode, PortRef};
use mojo_legacy_wire::NodeName as LegacyNodeName;
use mojo_wire_kit::SharedMemory;

pub use data_pipe::{
    MAX_DATA_PIPE_BYTES, MAX_DATA_PIPE_CAPACITY, MAX_DATA_PIPES, NewRing, RingMemory,
    RingMemoryError,
};
pub use error::{BridgeError, Untranslatable};
pub use stats::{
    BridgeSnapshot, BridgeTotals, DirectionTotals, LinkTotals, PipeSnapshot, ProxySnapshot,
    ProxyTotals,
};

/// Most attachments one invitation carries (MojoIpcz's
/// `Invitation::kMaxAttachments`, ipcz §4.5).
pub const MAX_ATTACHMENTS: usize = 7;

/// Most [`BridgeEvent::Untranslatable`] and [`BridgeEvent::ForwardFailed`]
/// reports queued at once; further ones are only counted
/// ([`Bridge::unreported_count`]), so a peer cannot grow the queue.
pub const MAX_QUEUED_REPORTS: usize = 256;

/// The invitation's attachments (ipcz §4.5, legacy §3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachments {
    /// One attachment with a string name (`--attachment-name`): initial
    /// portal 1.
    Named(Vec<u8>),
    /// `n` attachments named by the 8 little-endian bytes of `0..n`
    /// (`--num-attachments`): attachment `i` is initial portal `i + 1`.
    Numbered(usize),
    /// Attachments with these names, in order (`--numeric-attachment-names`
    /// with a list that is not `0..n`): attachment `i` is initial portal
    /// `i + 1`.
    Listed(Vec<Vec<u8>>),
}

impl Attachments {
    /// Each attachment's name and initial portal index.
    fn names(&self) -> Result<Vec<(Vec<u8>, usize)>, BridgeError> {
        match self {
            Self::Named(name) => Ok(vec![(name.clone(), 1)]),
            Self::Numbered(n) if (1..=MAX_ATTACHMENTS).contains(n) => Ok((0..*n)
                .map(|i| ((i as u64).to_le_bytes().to_vec(), i + 1))
                .collect()),
            Self::Numbered(n) => Err(BridgeError::AttachmentCount { count: *n }),
            Self::Listed(names) if (1..=MAX_ATTACHMENTS).contains(&names.len()) => Ok(names
                .iter()
                .enumerate()
                .map(|(i, name)| (name.clone(), i + 1))
                .collect()),
            Self::Listed(names) => Err(BridgeError::AttachmentCount { count: names.len() }),
        }
    }
}

/// Which node a transmit or report belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The ipcz node, towards the host.
    Ipcz,
    /// The legacy node, towards the client.
    Legacy,
}

/// Names one pairing of an ipcz portal with a legacy pipe end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairingId(pub u64);

/// A frame to write, tagged by side.
#[derive(Debug)]
pub enum BridgeTransmit {
    /// To the ipcz host's transport.
    Ipcz(ipcz_node::node::Transmit),
    /// To the legacy client's channel.
    Legacy(legacy::Transmit),
}

/// Something the driver must know or do.
#[derive(Debug)]
pub enum BridgeEvent {
    /// An ipcz node event for the driver (memory to create or map, a link
    /// dropped, an introduction); portal readiness is handled inside.
    Ipcz(NodeEvent),
    /// A legacy node event for the driver (a peer lost, an event dropped,
    /// an introduction); pipe readiness is handled inside.
    Legacy(legacy::NodeEvent),
    /// A portal and a legacy pipe end were paired.
    PairingOpened {
        /// The pairing.
        pairing: PairingId,
        /// Its ipcz portal.
        portal: RouterId,
        /// Its legacy pipe end.
        port: PortRef,
    },
    /// A pairing ended: both its ends are closed.
    PairingClosed {
        /// The pairing.
        pairing: PairingId,
    },
    /// A message's handles could not be carried over and were closed; its
    /// bytes were forwarded without them.
    Untranslatable {
        /// The side the message came from.
        from: Side,
        /// What could not be translated.
        what: Untranslatable,
    },
    /// A message could not be written on the other side (its pipe end
    /// already lost its peer, or its queue was full) and is lost.
    ForwardFailed {
        /// The side it was to be written to.
        to: Side,
        /// The pairing.
        pairing: PairingId,
    },
}

#[derive(Debug, Clone, Copy)]
struct Pairing {
    portal: RouterId,
    port: PortRef,
    /// Forwarded on this pipe, each way.
    to_legacy: DirectionTotals,
    to_ipcz: DirectionTotals,
}

/// The bridge engine: an ipcz node, a legacy node and the pairings between
/// their pipes.
#[derive(Debug)]
pub struct Bridge<M> {
    ipcz: Node<M>,
    legacy: LegacyNode,
    // Hash maps: every message looks its pairing up, and B-trees of
    // 10,000 pairings cost a cache miss per level per lookup. Nothing
    // iterates them in an order that matters (`close_all` and the
    // snapshot sort by pairing id).
    pairings: HashMap<PairingId, Pairing, KeyedHasher>,
    by_portal: HashMap<RouterId, PairingId, KeyedHasher>,
    by_port: HashMap<PortRef, PairingId, KeyedHasher>,
    next_pairing: u64,
    dirty_portals: BTreeSet<RouterId>,
    dirty_ports: BTreeSet<PortRef>,
    events: VecDeque<BridgeEvent>,
    queued_reports: usize,
    unreported: u64,
    rings: Option<data_pipe::Rings<M>>,
    pipes: BTreeMap<u64, data_pipe::BridgedPipe<M>>,
    pipe_by_port: BTreeMap<PortRef, u64>,
    pipe_by_portal: BTreeMap<RouterId, u64>,
    dirty_pipes: BTreeSet<u64>,
    next_pipe: u64,
    next_pipe_id: u64,
    ring_bytes: u64,
    scratch: Vec<u8>,
    totals: BridgeTotals,
}

impl<M: SharedMemory> Bridge<M> {
    /// A bridge over `ipcz` (already linked to the host by `host_link`, the
    /// host having announced `host_initial_portals`) and `legacy` (already
    /// linked to the client, or about to be): opens the initial portals,
    /// closes portal 0 (the host's shared-memory service, which the proxy
    /// does not use) and pairs each attachment with its portal.
    pub fn new(
        mut ipcz: Node<M>,
        host_link: NodeLinkId,
        host_initial_portals: usize,
        mut legacy: LegacyNode,
        attachments: &Attachments,
    ) -> Result<Self, BridgeError> {
        let names = attachments.names()?;
        let ours = names.iter().map(|(_, i)| i + 1).max().unwrap_or(1);
        let portals = ipcz.open_initial_portals(host_link, ours, host_initial_portals)?;
        if let Some(&zero) = portals.first() {
            let _ = ipcz.close(zero);
        }
        let mut ends = Vec::with_capacity(names.len());
        for (name, index) in &names {
            let port = legacy.reserve_attachment(name)?;
            if let Some(&portal) = portals.get(*index) {
                ends.push((portal, port));
            }
        }
        Ok(Self::from_pairs(ipcz, legacy, ends))
    }

    /// A bridge over nodes whose initial pipes someone else opened (the
    /// proxy's sessions): each `(portal, port)` of `pairs` becomes a
    /// pairing, in order, and whatever already waits on either end is
    /// forwarded on the next call.
    pub fn from_pairs(ipcz: Node<M>, legacy: LegacyNode, pairs: Vec<(RouterId, PortRef)>) -> Self {
        let mut bridge = Self {
            ipcz,
            legacy,
            pairings: HashMap::default(),
            by_portal: HashMap::default(),
            by_port: HashMap::default(),
            next_pairing: 1,
            dirty_portals: BTreeSet::new(),
            dirty_ports: BTreeSet::new(),
            events: VecDeque::new(),
            queued_reports: 0,
            unreported: 0,
            rings: None,
            pipes: BTreeMap::new(),
            pipe_by_port: BTreeMap::new(),
            pipe_by_portal: BTreeMap::new(),
            dirty_pipes: BTreeSet::new(),
            next_pipe: 1,
            next_pipe_id: 0,
            ring_bytes: 0,
            scratch: Vec::new(),
            totals: BridgeTotals::default(),
        };
        for (portal, port) in pairs {
            bridge.pair(portal, port);
        }
        bridge.process();
        bridge
    }

    /// Handles one whole frame (and its fds) from the ipcz link `link`.
    /// An error means the ipcz node dropped that link.
    pub fn handle_ipcz_frame(
        &mut self,
        link: NodeLinkId,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), BridgeError> {
        let result = self.ipcz.handle_frame(link, bytes, fds);
        self.process();
        result.map_err(BridgeError::Ipcz)
    }

    /// Handles one whole channel frame (and its fds) from the legacy peer
    /// `peer`. An error means the legacy node dropped that peer.
    pub fn handle_legacy_frame(
        &mut self,
        peer: LegacyNodeName,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), BridgeError> {
        let result = self.legacy.handle_frame(peer, bytes, fds);
        self.process();
        result.map_err(BridgeError::Legacy)
    }

    /// The ipcz link's transport is gone: its routes break, and each
    /// pairing over it closes its legacy end after forwarding what arrived.
    pub fn ipcz_link_lost(&mut self, link: NodeLinkId) {
        self.ipcz.link_lost(link);
        self.process();
    }

    /// The legacy peer's channel is gone: its pipes break, and each pairing
    /// closes its portal after forwarding what arrived.
    pub fn legacy_peer_lost(&mut self, peer: LegacyNodeName) {
        self.legacy.peer_lost(peer);
        self.process();
    }

    /// Shuts the bridge down (SIGTERM): everything already received is
    /// forwarded, then every pairing is closed on both sides and the
    /// attachments the client never asked for are cancelled. Drain
    /// [`poll_transmit`](Self::poll_transmit) before closing the sockets.
    pub fn close_all(&mut self) {
        self.process();
        let mut all: Vec<PairingId> = self.pairings.keys().copied().collect();
        all.sort_unstable();
        for pairing in all {
            self.close_pairing(pairing);
        }
        self.close_all_pipes();
        self.legacy.cancel_attachments();
        self.process();
    }

    /// The next frame to write, tagged by side.
    pub fn poll_transmit(&mut self) -> Option<BridgeTransmit> {
        self.process();
        if let Some(t) = self.ipcz.poll_transmit() {
            return Some(BridgeTransmit::Ipcz(t));
        }
        self.legacy.poll_transmit().map(BridgeTransmit::Legacy)
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<BridgeEvent> {
        self.process();
        let event = self.events.pop_front();
        if matches!(
            event,
            Some(BridgeEvent::Untranslatable { .. } | BridgeEvent::ForwardFailed { .. })
        ) {
            self.queued_reports = self.queued_reports.saturating_sub(1);
        }
        event
    }

    /// Gives a written transmit's buffer back for reuse.
    pub fn recycle(&mut self, side: Side, bytes: Vec<u8>) {
        match side {
            Side::Ipcz => self.ipcz.recycle(bytes),
            Side::Legacy => self.legacy.recycle(bytes),
        }
    }

    /// The ipcz node, for the driver's answers to [`BridgeEvent::Ipcz`]
    /// (memory provided or mapped, links added). The bridge picks up what
    /// follows on its next call.
    pub fn ipcz_mut(&mut self) -> &mut Node<M> {
        &mut self.ipcz
    }

    /// The ipcz node.
    pub fn ipcz(&self) -> &Node<M> {
        &self.ipcz
    }

    /// The legacy node, for the driver's answers to
    /// [`BridgeEvent::Legacy`] (peers added or lost).
    pub fn legacy_mut(&mut self) -> &mut LegacyNode {
        &mut self.legacy
    }

    /// The legacy node.
    pub fn legacy(&self) -> &LegacyNode {
        &self.legacy
    }

    /// Pairings alive.
    pub fn pairing_count(&self) -> usize {
        self.pairings.len()
    }

    /// Reports dropped because [`MAX_QUEUED_REPORTS`] were queued.
    pub fn unreported_count(&self) -> u64 {
        self.unreported
    }

    /// Whether nothing waits to be forwarded or reported and the legacy
    /// node has no frame to write (the ipcz node's frames are seen only
    /// through [`poll_transmit`](Self::poll_transmit): drain it first).
    pub fn is_idle(&self) -> bool {
        self.events.is_empty()
            && self.dirty_portals.is_empty()
            && self.dirty_ports.is_empty()
            && self.dirty_pipes.is_empty()
            && self.legacy.pending_transmit_count() == 0
    }

    /// Whether every pairing is gone (the proxy's work is over).
    pub fn is_finished(&self) -> bool {
        self.pairings.is_empty()
    }

    fn pair(&mut self, portal: RouterId, port: PortRef) {
        let pairing = PairingId(self.next_pairing);
        self.next_pairing += 1;
        self.totals.pairings_opened += 1;
        self.pairings.insert(
            pairing,
            Pairing {
                portal,
                port,
                to_legacy: DirectionTotals::default(),
                to_ipcz: DirectionTotals::default(),
            },
        );
        self.by_portal.insert(portal, pairing);
        self.by_port.insert(port, pairing);
        // Whatever is already queued on either end moves at once.
        self.dirty_portals.insert(portal);
        self.dirty_ports.insert(port);
        log::debug!(
            "pairing {} opened: portal {portal:?}, port {port:?}",
            pairing.0
        );
        self.events.push_back(BridgeEvent::PairingOpened {
            pairing,
            portal,
            port,
        });
    }

    fn close_pairing(&mut self, pairing: PairingId) {
        let Some(p) = self.pairings.remove(&pairing) else {
            return;
        };
        self.totals.pairings_closed += 1;
        self.by_portal.remove(&p.portal);
        self.by_port.remove(&p.port);
        self.dirty_portals.remove(&p.portal);
        self.dirty_ports.remove(&p.port);
        let _ = self.ipcz.close(p.portal);
        let _ = self.legacy.close_port(p.port);
        log::debug!("pairing {} closed", pairing.0);
        self.events
            .push_back(BridgeEvent::PairingClosed { pairing });
    }

    fn report(&mut self, event: BridgeEvent) {
        match event {
            BridgeEvent::Untranslatable { .. } => self.totals.untranslatable += 1,
            BridgeEvent::ForwardFailed { .. } => self.totals.forward_failures += 1,
            _ => {}
        }
        if self.queued_reports < MAX_QUEUED_REPORTS {
            self.queued_reports += 1;
            self.events.push_back(event);
        } else {
            self.unreported = self.unreported.saturating_add(1);
        }
    }

    /// Moves node events into readiness marks and driver events, and
    /// forwards everything ready, until nothing changes.
    fn process(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.ipcz.poll_event() {
                progressed = true;
                match event {
                    NodeEvent::Readable { portal } | NodeEvent::PeerClosed { portal, .. } => {
                        if self.by_portal.contains_key(&portal) {
                            self.dirty_portals.insert(portal);
                        } else if let Some(&id) = self.pipe_by_portal.get(&portal) {
                            self.dirty_pipes.insert(id);
                        }
                    }
                    other => self.events.push_back(BridgeEvent::Ipcz(other)),
                }
            }
            while let Some(event) = self.legacy.poll_event() {
                progressed = true;
                match event {
                    // A refused message (§6.3) closed its destination:
                    // draining it finds the port gone and ends the pairing.
                    legacy::NodeEvent::MessageReadable { port }
                    | legacy::NodeEvent::PeerClosed { port }
                    | legacy::NodeEvent::MessageRefused {
                        port: Some(port), ..
                    } => {
                        if self.by_port.contains_key(&port) {
                            self.dirty_ports.insert(port);
                        } else if let Some(&id) = self.pipe_by_port.get(&port) {
                            self.dirty_pipes.insert(id);
                        }
                    }
                    other => self.events.push_back(BridgeEvent::Legacy(other)),
                }
            }
            while let Some(portal) = self.dirty_portals.pop_first() {
                progressed = true;
                self.drain_portal(portal);
            }
            while let Some(port) = self.dirty_ports.pop_first() {
                progressed = true;
                self.drain_port(port);
            }
            while let Some(id) = self.dirty_pipes.pop_first() {
                progressed = true;
                self.pump_pipe(id);
            }
            if !progressed {
                break;
            }
        }
    }

    /// Forwards every parcel ready on `portal` to its legacy end; closes
    /// the pairing once the portal is dead.
    fn drain_portal(&mut self, portal: RouterId) {
        let Some(&pairing) = self.by_portal.get(&portal) else {
            return;
        };
        let Some(port) = self.pairings.get(&pairing).map(|p| p.port) else {
            return;
        };
        let mut moved = DirectionTotals::default();
        while let Ok(Some(parcel)) = self.ipcz.get(portal) {
            let handles = self.ipcz_to_legacy(parcel.handles);
            let (len, count) = (parcel.data.len(), handles.len());
            // The parcel's buffer becomes the legacy message's body; one of
            // the legacy node's spares goes the other way, so a one-way flow
            // does not drain the ipcz node's pool.
            let sent = self.legacy.write_message_owned(port, parcel.data, handles);
            if let Some(spare) = self.legacy.take_spare() {
                self.ipcz.recycle(spare);
            }
            if sent.is_err() {
                self.report(BridgeEvent::ForwardFailed {
                    to: Side::Legacy,
                    pairing,
                });
            } else {
                moved.count(len, count);
            }
        }
        self.count_forwarded(pairing, Side::Legacy, moved);
        if self.ipcz.status(portal).map_or(true, |s| s.dead) {
            self.close_pairing(pairing);
        }
    }

    /// Forwards every message ready on `port` to its portal; closes the
    /// pairing once the port's peer is gone and everything was read.
    fn drain_port(&mut self, port: PortRef) {
        let Some(&pairing) = self.by_port.get(&port) else {
            return;
        };
        let Some(portal) = self.pairings.get(&pairing).map(|p| p.portal) else {
            return;
        };
        let mut moved = DirectionTotals::default();
        let port_gone = loop {
            match self.legacy.read_message(port) {
                Ok(Some((bytes, handles))) => {
                    let handles = self.legacy_to_ipcz(handles);
                    let (len, count) = (bytes.len(), handles.len());
                    // A refused parcel leaves its portals with us: close them,
                    // so their pairings see closure instead of lingering.
                    let moved_portals: Vec<RouterId> = handles
                        .iter()
                        .filter_map(|h| match h {
                            IpczHandle::Portal(p) => Some(*p),
                            IpczHandle::Object(_) => None,
                        })
                        .collect();
                    let sent = self.ipcz.put(portal, bytes, handles);
                    // The payload's buffer stays with the ipcz node; one of
                    // its spares goes the other way, so a one-way flow does
                    // not drain the legacy node's pool.
                    if let Some(spare) = self.ipcz.take_spare() {
                        self.legacy.recycle(spare);
                    }
                    if sent.is_err() {
                        for p in moved_portals {
                            let _ = self.ipcz.close(p);
                        }
                        self.report(BridgeEvent::ForwardFailed {
                            to: Side::Ipcz,
                            pairing,
                        });
                    } else {
                        moved.count(len, count);
                    }
                }
                Ok(None) => break false,
                // The message was consumed and its ports closed; go on.
                Err(ApiError::InconsistentMessage { .. }) => {}
                // PeerClosed once everything was read; any other error means
                // the port is unusable.
                Err(_) => break true,
            }
        };
        self.count_forwarded(pairing, Side::Ipcz, moved);
        if port_gone {
            self.close_pairing(pairing);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_and_portals() {
        assert_eq!(
            Attachments::Named(b"pipe!".to_vec()).names().unwrap(),
            vec![(b"pipe!".to_vec(), 1)]
        );
        let numbered = Attachments::Numbered(3).names().unwrap();
        assert_eq!(numbered.len(), 3);
        for (i, (name, portal)) in numbered.iter().enumerate() {
            assert_eq!(name, &(i as u64).to_le_bytes());
            assert_eq!(*portal, i + 1);
        }
        for bad in [0, MAX_ATTACHMENTS + 1] {
            assert!(matches!(
                Attachments::Numbered(bad).names(),
                Err(BridgeError::AttachmentCount { count }) if count == bad
            ));
        }
    }
}
