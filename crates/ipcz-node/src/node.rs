//! The node: several [`NodeLink`]s, one router
//! table, and the conversion between frames on each link and router
//! operations, behind a portal API (open, put, get, close, status).
//!
//! Sans-IO: frames and their fds go in with [`Node::handle_frame`], frames
//! to send come out of [`Node::poll_transmit`], and everything else the
//! caller must know or do (a portal became readable or lost its peer, a
//! link was dropped, memory must be created or mapped) comes out of
//! [`Node::poll_event`].
//!
//! ```
//! use ipcz_node::link::LinkParams;
//! use ipcz_node::node::{Node, NodeConfig};
//! use ipcz_wire::types::{LinkSide, NodeName};
//! use ipcz_node::sim::SharedHeap;
//!
//! // Two nodes, one link over one primary buffer (the broker initializes it).
//! let (broker, client) = (NodeName { high: 1, low: 1 }, NodeName { high: 2, low: 2 });
//! let primary = SharedHeap::new(131072);
//! let mut a = Node::new(broker, NodeConfig::default());
//! let mut b = Node::new(client, NodeConfig::default());
//! let la = a.add_link(LinkParams::new(broker, client, LinkSide::A, primary.clone())
//!     .initializing_primary_buffer())?;
//! let lb = b.add_link(LinkParams::new(client, broker, LinkSide::B, primary))?;
//! let pa = a.open_initial_portals(la, 2, 2)?;
//! let pb = b.open_initial_portals(lb, 2, 2)?;
//!
//! a.put(pa[1], b"hello".to_vec(), Vec::new()).unwrap();
//! while let Some(t) = a.poll_transmit() {
//!     b.handle_frame(lb, &t.bytes, t.fds)?;
//! }
//! assert_eq!(b.get(pb[1]).unwrap().unwrap().data, b"hello");
//! # Ok::<(), ipcz_node::node::NodeError>(())
//! ```

mod driver_box;
mod error;
mod events;
mod incoming;
mod introductions;
mod outgoing;
mod relay;

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ipcz_wire::limits::{MAX_FDS_PER_SENDMSG, MAX_INITIAL_PORTALS};
use ipcz_wire::types::{BufferId, LinkSide as WireSide, NodeName, SublinkId};
use mojo_wire_kit::{BufferPool, SharedMemory};

pub use driver_box::DriverBox;
pub use error::{NodeError, SubparcelError};
pub use events::MAX_QUEUED_EVENTS;
pub use incoming::MAX_PENDING_MEMORY_REQUESTS_PER_LINK;
pub use introductions::MAX_PENDING_INTRODUCTIONS;

use crate::link::{LinkLimits, LinkParams, NodeLink};
use crate::memory::{MemoryAction, NodeLinkMemory};
use crate::router::{
    Handle, LinkSide, NodeLinkId, Output, Parcel, PortalError, PortalStatus, RouterConfig,
    RouterId, Routers,
};
use events::EventQueue;
use incoming::Inbox;
use introductions::Introduction;

/// A handle in a parcel of a [`Node`]: a portal or a boxed driver object.
pub type NodeHandle = Handle<DriverBox>;

/// A parcel of a [`Node`]: bytes and handles.
pub type NodeParcel = Parcel<NodeHandle>;

/// Where parcel data goes when sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ParcelDataPlacement {
    /// Inline in AcceptParcel (what the proxy sends, §6.4).
    #[default]
    Inline,
    /// In a fragment of the link's memory when one is free (§5.7), else inline.
    SharedMemory,
}

/// What a node is in its network (§4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NodeRole {
    /// A non-broker: it asks the broker (the link whose remote is a
    /// broker, [`LinkParams::toward_broker`]) for introductions.
    #[default]
    NonBroker,
    /// The broker: it introduces its non-brokers to each other and never
    /// asks for introductions (a node it has no link to is unknown).
    Broker,
}

/// How a node behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NodeConfig {
    /// Broker or not.
    pub role: NodeRole,
    /// The router table's choices.
    pub routers: RouterConfig,
    /// Where parcel data is sent.
    pub parcel_data: ParcelDataPlacement,
    /// Limits enforced on each link.
    pub limits: LinkLimits,
}

/// One frame to write to a link's transport, with its fds.
#[derive(Debug)]
pub struct Transmit {
    /// The link.
    pub link: NodeLinkId,
    /// The frame (IpczHeader and message). Give the vector back with
    /// [`Node::recycle`] once written, to reuse its allocation.
    pub bytes: Vec<u8>,
    /// The fds to send with it (SCM_RIGHTS), in order.
    pub fds: Vec<OwnedFd>,
}

/// Something the caller must know or do.
#[derive(Debug)]
pub enum NodeEvent {
    /// More parcels are ready on `portal`.
    Readable {
        /// The portal.
        portal: RouterId,
    },
    /// The portal's peer is gone and every parcel it sent has arrived.
    PeerClosed {
        /// The portal.
        portal: RouterId,
        /// The route broke (RouteDisconnected, link loss) rather than closed.
        disconnected: bool,
    },
    /// The link was dropped for `error`; every route through it was
    /// disconnected and its fds closed. Close its transport.
    LinkDropped {
        /// The link.
        link: NodeLinkId,
        /// Its remote node.
        remote: NodeName,
        /// Why.
        error: NodeError,
    },
    /// Create a zero-filled shared region of `buffer_size` bytes, then call
    /// [`Node::provide_block_buffer`] (or [`Node::block_buffer_failed`]).
    CreateBlockBuffer {
        /// The link whose memory needs it.
        link: NodeLinkId,
        /// Its block size.
        block_size: u32,
        /// Its size.
        buffer_size: usize,
    },
    /// The peer added a buffer: map `buffer`, then call
    /// [`Node::block_buffer_mapped`] (or [`Node::block_buffer_unmappable`]).
    MapBlockBuffer {
        /// The link.
        link: NodeLinkId,
        /// The buffer's id.
        id: BufferId,
        /// Its block size.
        block_size: u32,
        /// The shared buffer and its fds.
        buffer: DriverBox,
    },
    /// A bypass needs a link to `node` and this node has no broker link to
    /// ask for an introduction (with one, the node asks itself, §7.2): add
    /// the link with [`Node::add_link`] once it exists, or call
    /// [`Node::introduction_failed`].
    NeedNodeLink {
        /// The node.
        node: NodeName,
    },
    /// The peer (an allocation client) asks for `size` bytes of memory:
    /// answer with [`Node::provide_memory`].
    MemoryRequested {
        /// The link.
        link: NodeLinkId,
        /// Bytes wanted.
        size: u32,
    },
    /// The broker introduces node `name` (§7.3, requested or not): map
    /// `memory` (the new link's primary buffer) and take `transport` (the
    /// socket to `name`), then call [`Node::accept_introduction`] (or
    /// [`Node::introduction_unusable`]). Dropping both boxes instead
    /// closes their fds, but leaves the introduction pending until the
    /// broker link goes.
    IntroductionOffered {
        /// The link it came on.
        link: NodeLinkId,
        /// The introduced node.
        name: NodeName,
        /// Our side on the new link.
        side: WireSide,
        /// The node's protocol version.
        remote_protocol_version: u32,
        /// The transport to it.
        transport: DriverBox,
        /// The new link's primary buffer.
        memory: DriverBox,
    },
    /// Broker: `requester` asked for a link to `target`, both ours: create
    /// a socket pair and a zero-filled region of
    /// [`ipcz_wire::memory::primary::SIZE`] bytes, then call
    /// [`Node::introduce`] (or [`Node::introduction_impossible`]).
    CreateIntroduction {
        /// The node that asked (it takes side A).
        requester: NodeName,
        /// The node it asked for (side B).
        target: NodeName,
    },
}

/// A sans-IO ipcz node over shared memory of type `M`.
#[derive(Debug)]
pub struct Node<M> {
    name: NodeName,
    config: NodeConfig,
    routers: Routers<DriverBox>,
    links: crate::link::Links<M>,
    inboxes: BTreeMap<NodeLinkId, Inbox>,
    transmits: VecDeque<Transmit>,
    events: EventQueue,
    spare_buffers: BufferPool,
    fds_alive: Arc<AtomicUsize>,
    /// Non-broker: introductions requested or offered, by node.
    introductions: BTreeMap<NodeName, Introduction>,
    /// Broker: (requester, target) introductions the caller is creating,
    /// and whether the target asked for the requester too.
    brokering: BTreeMap<(NodeName, NodeName), bool>,
    next_link: u64,
    timestamp_us: i64,
}

/// Most spare buffers (frames and parcel data) kept for reuse.
///
/// One read of input (up to 256 KiB) may carry a couple of thousand small
/// messages, each needing a buffer before any frame is written, so the count
/// is generous; the byte bound, [`MAX_SPARE_BUFFER_BYTES`], is what limits
/// the memory kept.
pub const MAX_SPARE_BUFFERS: usize = 4096;
/// Most capacity, in bytes, kept in spare buffers: an idle node holds no more
/// than this, whatever sizes it carried.
pub const MAX_SPARE_BUFFER_BYTES: usize = 1 << 20;

impl<M: SharedMemory> Node<M> {
    /// A node named `name` with no links.
    pub fn new(name: NodeName, config: NodeConfig) -> Self {
        Self {
            name,
            config,
            routers: Routers::new(name, config.routers),
            links: crate::link::Links::default(),
            inboxes: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: EventQueue::default(),
            spare_buffers: BufferPool::new(MAX_SPARE_BUFFERS, MAX_SPARE_BUFFER_BYTES),
            fds_alive: Arc::new(AtomicUsize::new(0)),
            introductions: BTreeMap::new(),
            brokering: BTreeMap::new(),
            next_link: 1,
            timestamp_us: 0,
        }
    }

    /// This node's name.
    pub fn name(&self) -> NodeName {
        self.name
    }

    /// Sets the timestamp written into frame headers from now on (the
    /// caller's monotonic clock in microseconds; receivers ignore it).
    pub fn set_timestamp_us(&mut self, now_us: i64) {
        self.timestamp_us = now_us;
    }

    /// Adds a link from `params` (its remote node must not have one yet).
    pub fn add_link(&mut self, params: LinkParams<M>) -> Result<NodeLinkId, NodeError> {
        if self.links.by_name(params.remote_name).is_some() {
            return Err(NodeError::DuplicateLink(params.remote_name));
        }
        let id = NodeLinkId(self.next_link);
        self.next_link += 1;
        let remote = params.remote_name;
        let link = NodeLink::new(id, params)?;
        if !self.links.insert(link) {
            return Err(NodeError::DuplicateLink(remote));
        }
        self.inboxes.insert(id, Inbox::default());
        self.routers.add_node_link(id, remote, &mut self.links);
        self.pump();
        Ok(id)
    }

    /// The link `id`.
    pub fn link(&self, id: NodeLinkId) -> Option<&NodeLink<M>> {
        self.links.get(id)
    }

    /// The link to node `name`.
    pub fn link_to(&self, name: NodeName) -> Option<NodeLinkId> {
        self.links.by_name(name)
    }

    /// Number of links.
    pub fn link_count(&self) -> usize {
        self.links.len()
    }

    /// The initial portals of a fresh link (§4.4): `ours` portals, the
    /// remote node announced `theirs`. Portal `i` uses sublink `i` and the
    /// fixed RouterLinkState slot `i`; portals beyond `theirs` start
    /// peer-closed. MojoIpcz keeps portal 0 for itself (§4.5). At most
    /// [`MAX_INITIAL_PORTALS`] are opened.
    pub fn open_initial_portals(
        &mut self,
        link: NodeLinkId,
        ours: usize,
        theirs: usize,
    ) -> Result<Vec<RouterId>, NodeError> {
        let side = match self.links.get(link) {
            Some(l) if l.side() == WireSide::A => LinkSide::A,
            Some(_) => LinkSide::B,
            None => return Err(NodeError::UnknownLink(link)),
        };
        let mut portals = Vec::new();
        for i in 0..ours.min(MAX_INITIAL_PORTALS) {
            if i < theirs {
                let state = NodeLinkMemory::<M>::initial_router_link_state_fragment(i)?;
                let portal = self.routers.connect_initial_portal(
                    link,
                    SublinkId(i as u64),
                    side,
                    state,
                    &mut self.links,
                )?;
                portals.push(portal);
            } else {
                let (portal, gone) = self.routers.open_pair(&mut self.links);
                let _ = self.routers.close(gone, &mut self.links);
                portals.push(portal);
            }
        }
        self.pump();
        Ok(portals)
    }

    /// As [`Self::open_initial_portals`], each portal but portal 0 merged
    /// with one end of a fresh local pair as MojoIpcz does with invitation
    /// attachments: the router on the initial sublink proxies to the
    /// returned portal and, as soon as it holds the link's lock, asks the
    /// remote node for a link straight to it (BypassPeerWithLink), as a
    /// real MojoIpcz node does right after connecting (the `direct_ipcz`
    /// recordings). Portal 0, MojoIpcz's own (§4.5), and portals beyond
    /// `theirs` (peer-closed) are not merged.
    pub fn open_merged_initial_portals(
        &mut self,
        link: NodeLinkId,
        ours: usize,
        theirs: usize,
    ) -> Result<Vec<RouterId>, NodeError> {
        let side = match self.links.get(link) {
            Some(l) if l.side() == WireSide::A => LinkSide::A,
            Some(_) => LinkSide::B,
            None => return Err(NodeError::UnknownLink(link)),
        };
        let mut portals = Vec::new();
        for i in 0..ours.min(MAX_INITIAL_PORTALS) {
            if i == 0 && i < theirs {
                let state = NodeLinkMemory::<M>::initial_router_link_state_fragment(i)?;
                let portal = self.routers.connect_initial_portal(
                    link,
                    SublinkId(0),
                    side,
                    state,
                    &mut self.links,
                )?;
                portals.push(portal);
            } else if i < theirs {
                let state = NodeLinkMemory::<M>::initial_router_link_state_fragment(i)?;
                let portal = self.routers.connect_merged_initial_portal(
                    link,
                    SublinkId(i as u64),
                    side,
                    state,
                    &mut self.links,
                )?;
                portals.push(portal);
            } else {
                let (portal, gone) = self.routers.open_pair(&mut self.links);
                let _ = self.routers.close(gone, &mut self.links);
                portals.push(portal);
            }
        }
        self.pump();
        Ok(portals)
    }

    /// A new route with both ends here.
    pub fn create_portal_pair(&mut self) -> (RouterId, RouterId) {
        let pair = self.routers.open_pair(&mut self.links);
        self.pump();
        pair
    }

    /// Puts a parcel into `portal`; portals among `handles` move with it.
    /// At most [`MAX_FDS_PER_SENDMSG`] fds may ride in one parcel.
    pub fn put(
        &mut self,
        portal: RouterId,
        data: Vec<u8>,
        handles: Vec<NodeHandle>,
    ) -> Result<(), PortalError> {
        let fds: usize = handles
            .iter()
            .map(|h| match h {
                Handle::Object(b) => b.fds().len(),
                Handle::Portal(_) => 0,
            })
            .sum();
        if fds > MAX_FDS_PER_SENDMSG {
            return Err(PortalError::TooManyFds);
        }
        let result = self.routers.put(portal, data, handles, &mut self.links);
        self.pump();
        result
    }

    /// The next parcel of `portal`, if one is ready.
    pub fn get(&mut self, portal: RouterId) -> Result<Option<NodeParcel>, PortalError> {
        let result = self.routers.get(portal, &mut self.links);
        self.pump();
        result
    }

    /// Closes `portal` (§6.6).
    pub fn close(&mut self, portal: RouterId) -> Result<(), PortalError> {
        let result = self.routers.close(portal, &mut self.links);
        self.pump();
        result
    }

    /// What can be observed of `portal`.
    pub fn status(&self, portal: RouterId) -> Result<PortalStatus, PortalError> {
        self.routers.status(portal)
    }

    /// The next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event. Portal notifications coalesce: while a
    /// [`NodeEvent::Readable`] for a portal waits, another adds nothing, so
    /// after one the caller takes parcels until `get` returns none. At most
    /// [`MAX_QUEUED_EVENTS`] events wait in the queue; portal notifications
    /// beyond it wait, in order, in an overflow that refills it.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop()
    }

    /// Events waiting for [`Self::poll_event`] (overflow included).
    pub fn pending_event_count(&self) -> usize {
        self.events.len()
    }

    /// Events in the bounded queue proper (see [`MAX_QUEUED_EVENTS`]).
    pub fn queued_event_count(&self) -> usize {
        self.events.queued()
    }

    /// Gives back a buffer for reuse: a transmitted frame's, or a parcel's
    /// data once the caller is done with it. The node takes its frames and
    /// the data of the parcels it receives from these.
    pub fn recycle(&mut self, bytes: Vec<u8>) {
        self.spare_buffers.give(bytes);
    }

    /// A spare buffer (empty), if the node holds one: lets a caller that
    /// moves payloads between nodes hand one back to where it came from.
    pub fn take_spare(&mut self) -> Option<Vec<u8>> {
        (!self.spare_buffers.is_empty()).then(|| self.spare_buffers.take())
    }

    /// The transport of `link` is gone (closed or failed): every route
    /// through it is disconnected, its held parcels and fds dropped.
    pub fn link_lost(&mut self, link: NodeLinkId) {
        self.remove_link(link);
        self.pump();
    }

    /// The caller created the region [`NodeEvent::CreateBlockBuffer`]
    /// asked for: `memory` is its mapping, `buffer` the SharedBuffer (mode
    /// unsafe) and fds to announce it with AddBlockBuffer.
    pub fn provide_block_buffer(
        &mut self,
        link: NodeLinkId,
        block_size: u32,
        memory: M,
        buffer: DriverBox,
    ) -> Result<(), NodeError> {
        let l = self
            .links
            .get_mut(link)
            .ok_or(NodeError::UnknownLink(link))?;
        match buffer.object() {
            ipcz_wire::driver_object::DriverObject::SharedBuffer(b)
                if b.mode == mojo_wire_kit::RegionMode::Unsafe
                    && b.buffer_size as usize == memory.size() => {}
            _ => return Err(NodeError::BadBlockBufferBox),
        }
        let added = match l.memory_mut().provide_block_buffer(block_size, memory) {
            Ok(added) => added,
            Err(e) => {
                l.memory_mut().block_buffer_failed(block_size);
                // The box and region were checked above, so what failed is
                // the link's shared state (say a buffer id counter the peer
                // scribbled over): that link cannot be trusted any more.
                let error = NodeError::from(e);
                self.drop_link(link, error.clone());
                self.pump();
                return Err(error);
            }
        };
        self.send_add_block_buffer(link, added.id, block_size, buffer);
        self.routers.capacity_added(link, &mut self.links);
        self.pump();
        Ok(())
    }

    /// No link to `node` can be had (the introduction was rejected or is
    /// impossible): the routes waiting for it are disconnected (§6.8.2).
    pub fn introduction_failed(&mut self, node: NodeName) {
        self.routers.introduction_failed(node, &mut self.links);
        self.pump();
    }

    /// The caller could not create the region asked for.
    pub fn block_buffer_failed(&mut self, link: NodeLinkId, block_size: u32) {
        if let Some(l) = self.links.get_mut(link) {
            l.memory_mut().block_buffer_failed(block_size);
        }
    }

    /// Answers a [`NodeEvent::MemoryRequested`] with ProvideMemory.
    pub fn provide_memory(
        &mut self,
        link: NodeLinkId,
        size: u32,
        buffer: DriverBox,
    ) -> Result<(), NodeError> {
        let inbox = self
            .inboxes
            .get_mut(&link)
            .ok_or(NodeError::UnknownLink(link))?;
        inbox.memory_requests = inbox.memory_requests.saturating_sub(1);
        self.send_provide_memory(link, size, buffer);
        self.pump();
        Ok(())
    }

    /// Number of routers alive (portals, parcels in transit, proxies).
    pub fn router_count(&self) -> usize {
        self.routers.router_count()
    }

    /// Number of sublinks registered on all links.
    pub fn sublink_count(&self) -> usize {
        self.routers.sublink_count()
    }

    /// Number of sublinks registered on `link`.
    pub fn sublinks_on(&self, link: NodeLinkId) -> usize {
        self.routers.sublinks.count_on(link)
    }

    /// Number of parcels queued in all routers.
    pub fn queued_parcel_count(&self) -> usize {
        self.routers.queued_parcel_count()
    }

    /// fds received from any link that are still alive (in boxes).
    pub fn received_fds_alive(&self) -> usize {
        self.fds_alive.load(Ordering::Relaxed)
    }

    /// Parcels held back on all links (awaiting a buffer or subparcels).
    pub fn held_parcel_count(&self) -> usize {
        self.inboxes.values().map(Inbox::held_count).sum()
    }

    /// Whether anything waits for an introduction or capacity.
    pub fn has_pending(&self) -> bool {
        self.routers.has_pending() || self.pending_introduction_count() > 0
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Drains the router table's outputs, the links' memory actions and
    /// failures until nothing is left.
    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(out) = self.routers.poll_output() {
                progressed = true;
                match out {
                    Output::Send { link, message } => self.send_route_message(link, message),
                    Output::Readable { portal } => self.events.push(NodeEvent::Readable { portal }),
                    Output::PeerClosed {
                        portal,
                        disconnected,
                    } => self.events.push(NodeEvent::PeerClosed {
                        portal,
                        disconnected,
                    }),
                    Output::SublinkDropped { .. } | Output::NeedLinkStateCapacity { .. } => {}
                    Output::NeedNodeLink { node } => self.need_node_link(node),
                }
            }
            // Not collected first: this runs several times per frame.
            for (id, l) in self.links.iter_mut() {
                for action in l.memory_mut().take_actions() {
                    let MemoryAction::CreateBlockBuffer {
                        block_size,
                        buffer_size,
                    } = action;
                    self.events.push(NodeEvent::CreateBlockBuffer {
                        link: id,
                        block_size,
                        buffer_size,
                    });
                }
            }
            for (link, error) in self.links.take_failures() {
                progressed = true;
                self.drop_link(link, NodeError::Memory(error));
            }
            if !progressed {
                break;
            }
        }
    }

    /// Drops `link` for `error` (§2.7: only this link).
    fn drop_link(&mut self, link: NodeLinkId, error: NodeError) {
        let Some(remote) = self.links.get(link).map(NodeLink::remote_name) else {
            return;
        };
        log::debug!("dropping link {link:?} to {remote}: {error}");
        self.events.push(NodeEvent::LinkDropped {
            link,
            remote,
            error,
        });
        self.remove_link(link);
    }

    fn remove_link(&mut self, link: NodeLinkId) {
        let Some(remote) = self.links.get(link).map(NodeLink::remote_name) else {
            return;
        };
        self.introductions_lost(link, remote);
        self.inboxes.remove(&link);
        self.routers.node_link_lost(link, &mut self.links);
        self.links.remove(link);
        self.transmits.retain(|t| t.link != link);
    }

    /// A buffer for a new frame.
    fn buffer(&mut self) -> Vec<u8> {
        self.spare_buffers.take()
    }

    fn counters(&self, link: &NodeLink<M>) -> [Arc<AtomicUsize>; 2] {
        [link.fd_counter().clone(), self.fds_alive.clone()]
    }
}
