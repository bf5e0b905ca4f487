//! A deterministic in-memory network of [`Node`]s for the node tests: each
//! link is a pair of FIFO frame queues over one shared primary buffer; the
//! harness plays the platform (creates and maps buffers, introduces nodes
//! when a bypass needs a link) and steps everything until idle.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::os::fd::OwnedFd;

use ipcz_node::link::{LinkParams, NodeLink};
use ipcz_node::node::{DriverBox, Node, NodeConfig, NodeError, NodeEvent, NodeRole};
use ipcz_node::router::{NodeLinkId, RouterId};
use ipcz_node::sim::{SharedHeap, SimRegions};
use ipcz_wire::driver_object::{DriverObject, Transport};
use ipcz_wire::memory::primary;
use ipcz_wire::types::{BufferId, LinkSide, NodeName};
use mojo_wire_kit::Guid;

pub type TestNode = Node<SharedHeap>;

pub fn name(node: usize) -> NodeName {
    NodeName {
        high: 0x1d,
        low: node as u64 + 1,
    }
}

/// A real fd to put into boxes (the node only holds and drops fds).
pub fn fd() -> OwnedFd {
    OwnedFd::from(File::open("/dev/null").expect("/dev/null"))
}

/// A box carrying one fd (a TransmissiblePlatformHandle).
pub fn fd_box() -> DriverBox {
    DriverBox::new(DriverObject::TransmissiblePlatformHandle, vec![fd()]).unwrap()
}

/// One frame in flight.
pub struct Frame {
    pub bytes: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

#[derive(Clone, Copy, Debug)]
pub struct End {
    pub node: usize,
    pub link: NodeLinkId,
    pub peer_node: usize,
    pub peer_link: NodeLinkId,
}

pub struct Net {
    pub nodes: Vec<TestNode>,
    /// Every live link end, by (node, link).
    pub ends: BTreeMap<(usize, NodeLinkId), End>,
    /// Frames sent by (node, link), not yet delivered to the other end.
    pub in_flight: BTreeMap<(usize, NodeLinkId), VecDeque<Frame>>,
    /// Regions the harness created, by GUID (the "fds" of shared buffers).
    regions: SimRegions,
    pub readable: Vec<Vec<RouterId>>,
    pub peer_closed: Vec<Vec<(RouterId, bool)>>,
    pub dropped: Vec<(usize, NodeLinkId, NodeError)>,
    /// (node, block size) of every buffer a node added.
    pub buffers_added: Vec<(usize, u32)>,
    pub buffers_mapped: usize,
    /// Every frame delivered: (receiving node, message id byte).
    pub log: Vec<(usize, u8)>,
    /// When set, MapBlockBuffer events wait here instead of being answered.
    pub deferred_maps: Option<Vec<(usize, NodeLinkId, BufferId, SharedHeap)>>,
    /// Introduced link ends waiting for their other end, by memory GUID.
    pub half_links: HashMap<Guid, (usize, NodeLinkId)>,
    /// When set, a broker's CreateIntroduction events wait here.
    pub deferred_introductions: Option<Vec<(usize, NodeName, NodeName)>>,
    /// When set, brokers answer CreateIntroduction with introduction_impossible.
    pub refuse_introductions: bool,
    /// Introductions the nodes accepted: (node, introduced node).
    pub introduced: Vec<(usize, NodeName)>,
    /// Errors of accept_introduction: (node, error).
    pub introduction_errors: Vec<(usize, NodeError)>,
    /// Memory requests seen: (node, link, size).
    pub memory_requests: Vec<(usize, NodeLinkId, u32)>,
}

impl Net {
    pub fn new(configs: &[NodeConfig]) -> Self {
        Self {
            nodes: configs
                .iter()
                .enumerate()
                .map(|(i, c)| Node::new(name(i), *c))
                .collect(),
            ends: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            regions: SimRegions::default(),
            readable: vec![Vec::new(); configs.len()],
            peer_closed: vec![Vec::new(); configs.len()],
            dropped: Vec::new(),
            buffers_added: Vec::new(),
            buffers_mapped: 0,
            log: Vec::new(),
            deferred_maps: None,
            half_links: HashMap::new(),
            deferred_introductions: None,
            refuse_introductions: false,
            introduced: Vec::new(),
            introduction_errors: Vec::new(),
            memory_requests: Vec::new(),
        }
    }

    pub fn with_nodes(n: usize) -> Self {
        Self::new(&vec![NodeConfig::default(); n])
    }

    /// A link between `a` (side A, initializes the primary buffer as a
    /// broker would) and `b` (side B): (a's end, b's end).
    pub fn connect(&mut self, a: usize, b: usize) -> (NodeLinkId, NodeLinkId) {
        let primary = SharedHeap::new(primary::SIZE);
        let mut pa = LinkParams::new(name(a), name(b), LinkSide::A, primary.clone())
            .initializing_primary_buffer();
        let mut pb = LinkParams::new(name(b), name(a), LinkSide::B, primary);
        // A link to a broker node is its peer's broker link.
        if self.nodes[b].config().role == NodeRole::Broker {
            pa = pa.toward_broker();
        }
        if self.nodes[a].config().role == NodeRole::Broker {
            pb = pb.toward_broker();
        }
        let la = self.nodes[a].add_link(pa).unwrap();
        let lb = self.nodes[b].add_link(pb).unwrap();
        self.pair_ends(a, la, b, lb);
        (la, lb)
    }

    /// Records that (a, la) and (b, lb) are the two ends of one transport.
    pub fn pair_ends(&mut self, a: usize, la: NodeLinkId, b: usize, lb: NodeLinkId) {
        self.ends.insert(
            (a, la),
            End {
                node: a,
                link: la,
                peer_node: b,
                peer_link: lb,
            },
        );
        self.ends.insert(
            (b, lb),
            End {
                node: b,
                link: lb,
                peer_node: a,
                peer_link: la,
            },
        );
    }

    /// A link with `n` initial portals on each side: the portals of a and b.
    pub fn connect_with_portals(
        &mut self,
        a: usize,
        b: usize,
        n: usize,
    ) -> (NodeLinkId, NodeLinkId, Vec<RouterId>, Vec<RouterId>) {
        let (la, lb) = self.connect(a, b);
        let pa = self.nodes[a].open_initial_portals(la, n, n).unwrap();
        let pb = self.nodes[b].open_initial_portals(lb, n, n).unwrap();
        (la, lb, pa, pb)
    }

    pub fn end(&self, node: usize, peer: usize) -> Option<End> {
        self.ends
            .values()
            .find(|e| e.node == node && e.peer_node == peer)
            .copied()
    }

    /// Moves every frame and event out of every node; false if there was nothing.
    pub fn collect(&mut self) -> bool {
        let mut any = false;
        for n in 0..self.nodes.len() {
            while let Some(t) = self.nodes[n].poll_transmit() {
                any = true;
                let half = self.half_links.values().any(|h| *h == (n, t.link));
                if self.ends.contains_key(&(n, t.link)) || half {
                    self.in_flight
                        .entry((n, t.link))
                        .or_default()
                        .push_back(Frame {
                            bytes: t.bytes.clone(),
                            fds: t.fds,
                        });
                }
                self.nodes[n].recycle(t.bytes);
            }
            while let Some(event) = self.nodes[n].poll_event() {
                any = true;
                self.handle_event(n, event);
            }
        }
        any
    }

    /// A region the harness can map again by its GUID, with a box of it.
    pub fn new_region(&mut self, size: usize) -> (SharedHeap, DriverBox) {
        self.regions.new_region(size).unwrap()
    }

    fn handle_event(&mut self, n: usize, event: NodeEvent) {
        match event {
            NodeEvent::Readable { portal } => self.readable[n].push(portal),
            NodeEvent::PeerClosed {
                portal,
                disconnected,
            } => self.peer_closed[n].push((portal, disconnected)),
            NodeEvent::LinkDropped { link, error, .. } => {
                self.dropped.push((n, link, error));
                self.close_transport(n, link);
            }
            NodeEvent::CreateBlockBuffer {
                link,
                block_size,
                buffer_size,
            } => {
                // §11.3: a Chrome host asserts on more blocks than i16 indexes.
                assert!(
                    buffer_size / block_size as usize <= 32767,
                    "node {n} asks for {buffer_size} bytes of {block_size}-byte blocks"
                );
                let (region, buffer) = self.new_region(buffer_size);
                match self.nodes[n].provide_block_buffer(link, block_size, region, buffer) {
                    Ok(()) => self.buffers_added.push((n, block_size)),
                    // Shared state the peer corrupted: the node dropped the
                    // link (a LinkDropped event follows), which the tests
                    // that expect no drop assert against.
                    Err(NodeError::Memory(_)) => {}
                    Err(e) => panic!("node {n} refused its own block buffer: {e:?}"),
                }
            }
            NodeEvent::MapBlockBuffer {
                link, id, buffer, ..
            } => {
                let guid = match buffer.object() {
                    DriverObject::SharedBuffer(b) => b.guid,
                    other => panic!("AddBlockBuffer with {other:?}"),
                };
                match self.regions.region(&guid) {
                    Some(region) if self.deferred_maps.is_some() => {
                        if let Some(d) = self.deferred_maps.as_mut() {
                            d.push((n, link, id, region));
                        }
                    }
                    Some(region) => {
                        self.buffers_mapped += 1;
                        let _ = self.nodes[n].block_buffer_mapped(link, id, region);
                    }
                    None => self.nodes[n].block_buffer_unmappable(link, id),
                }
            }
            NodeEvent::NeedNodeLink { node } => {
                match (0..self.nodes.len()).find(|i| name(*i) == node) {
                    // The harness introduces them, as a broker would.
                    Some(target) if self.end(n, target).is_none() => {
                        self.connect(n, target);
                    }
                    Some(_) => {}
                    None => self.nodes[n].introduction_failed(node),
                }
            }
            NodeEvent::MemoryRequested { link, size } => {
                self.memory_requests.push((n, link, size));
                let (_, buffer) = self.new_region(size as usize);
                // The link may have been dropped since it asked.
                let _ = self.nodes[n].provide_memory(link, size, buffer);
            }
            NodeEvent::IntroductionOffered {
                name: introduced,
                transport,
                memory,
                ..
            } => {
                assert!(matches!(transport.object(), DriverObject::Transport(_)));
                let guid = match memory.object() {
                    DriverObject::SharedBuffer(b) => b.guid,
                    _ => Guid::default(),
                };
                // The caller maps the memory and owns the socket from here.
                drop((transport, memory));
                let Some(region) = self.regions.region(&guid) else {
                    self.nodes[n].introduction_unusable(introduced);
                    return;
                };
                match self.nodes[n].accept_introduction(introduced, region) {
                    Ok(link) => {
                        self.introduced.push((n, introduced));
                        match self.half_links.remove(&guid) {
                            Some((m, other)) => self.pair_ends(n, link, m, other),
                            None => {
                                self.half_links.insert(guid, (n, link));
                            }
                        }
                    }
                    Err(e) => self.introduction_errors.push((n, e)),
                }
            }
            NodeEvent::CreateIntroduction { requester, target } => {
                if let Some(d) = self.deferred_introductions.as_mut() {
                    d.push((n, requester, target));
                } else {
                    self.answer_introduction(n, requester, target);
                }
            }
        }
    }

    /// Broker `n` creates the introduction of `requester` to `target`
    /// (or refuses it when [`Self::refuse_introductions`] is set).
    pub fn answer_introduction(&mut self, n: usize, requester: NodeName, target: NodeName) {
        if self.refuse_introductions {
            self.nodes[n].introduction_impossible(requester, target);
            return;
        }
        let (region, first) = self.new_region(primary::SIZE);
        let second = DriverBox::new(*first.object(), vec![fd()]).unwrap();
        let transport =
            || DriverBox::new(DriverObject::Transport(Transport::default()), vec![fd()]).unwrap();
        self.nodes[n]
            .introduce(
                requester,
                target,
                region,
                [first, second],
                [transport(), transport()],
            )
            .unwrap();
    }

    /// Answers the CreateIntroduction events that were held back.
    pub fn answer_deferred_introductions(&mut self) {
        for (n, requester, target) in self.deferred_introductions.take().unwrap_or_default() {
            self.answer_introduction(n, requester, target);
        }
    }

    /// The transport of `link` on node `n` closes: both ends learn it.
    pub fn close_transport(&mut self, n: usize, link: NodeLinkId) {
        if let Some(guid) = self
            .half_links
            .iter()
            .find(|(_, h)| **h == (n, link))
            .map(|(g, _)| *g)
        {
            // The other end never came: only this node learns it.
            self.half_links.remove(&guid);
            self.in_flight.remove(&(n, link));
            self.nodes[n].link_lost(link);
            return;
        }
        let Some(end) = self.ends.remove(&(n, link)) else {
            return;
        };
        self.in_flight.remove(&(n, link));
        self.in_flight.remove(&(end.peer_node, end.peer_link));
        self.ends.remove(&(end.peer_node, end.peer_link));
        self.nodes[n].link_lost(link);
        self.nodes[end.peer_node].link_lost(end.peer_link);
    }

    /// Answers the MapBlockBuffer events that were held back.
    pub fn answer_deferred_maps(&mut self) {
        for (n, link, id, region) in self.deferred_maps.take().unwrap_or_default() {
            self.buffers_mapped += 1;
            let _ = self.nodes[n].block_buffer_mapped(link, id, region);
        }
    }

    /// Delivers one frame from (node, link); false if none was waiting.
    pub fn deliver_one(&mut self, from: (usize, NodeLinkId)) -> bool {
        // Frames on a link whose other end is not there yet wait.
        let Some(end) = self.ends.get(&from).copied() else {
            return false;
        };
        let Some(frame) = self.in_flight.get_mut(&from).and_then(VecDeque::pop_front) else {
            return false;
        };
        self.log
            .push((end.peer_node, frame.bytes.get(16 + 2).copied().unwrap_or(0)));
        let _ = self.nodes[end.peer_node].handle_frame(end.peer_link, &frame.bytes, frame.fds);
        true
    }

    /// Steps until no node has anything left to send or report.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            let collected = self.collect();
            let keys: Vec<_> = self.in_flight.keys().copied().collect();
            let mut delivered = false;
            for k in keys {
                while self.deliver_one(k) {
                    delivered = true;
                }
            }
            if !collected && !delivered {
                return;
            }
        }
        panic!("network did not settle");
    }

    /// Takes every parcel ready on `portal` of node `n`.
    pub fn take_all(&mut self, n: usize, portal: RouterId) -> Vec<ipcz_node::node::NodeParcel> {
        let mut out = Vec::new();
        while let Some(p) = self.nodes[n].get(portal).unwrap() {
            out.push(p);
        }
        out
    }

    /// Every block of every allocator of `link`'s memory is free.
    pub fn assert_all_blocks_free(&self, n: usize, link: NodeLinkId) {
        let l: &NodeLink<SharedHeap> = self.nodes[n].link(link).expect("link");
        let memory = l.memory();
        for allocator in memory.block_allocators() {
            let region = memory.buffer(allocator.buffer()).unwrap();
            let free = allocator.free_list(region).unwrap();
            assert_eq!(
                free.len(),
                allocator.region().num_blocks - 1,
                "node {n} link {link:?}: buffer {} {}-byte blocks",
                allocator.buffer(),
                allocator.block_size()
            );
        }
        assert_eq!(memory.num_deferred_frees(), 0);
        assert_eq!(l.pending_state_ops(), 0);
    }

    /// Checks every link's memory, closes every transport, and asserts
    /// that no router, sublink, parcel, link or fd is left anywhere.
    pub fn assert_nothing_left(&mut self) {
        self.run();
        let ends: Vec<_> = self.ends.keys().copied().collect();
        for (n, link) in &ends {
            self.assert_all_blocks_free(*n, *link);
        }
        let halves: Vec<_> = self.half_links.values().copied().collect();
        for (n, link) in ends.into_iter().chain(halves) {
            self.close_transport(n, link);
        }
        self.run();
        for (i, node) in self.nodes.iter().enumerate() {
            assert_eq!(node.router_count(), 0, "node {i}: routers");
            assert_eq!(node.sublink_count(), 0, "node {i}: sublinks");
            assert_eq!(node.queued_parcel_count(), 0, "node {i}: parcels");
            assert_eq!(node.link_count(), 0, "node {i}: links");
            assert_eq!(node.held_parcel_count(), 0, "node {i}: held parcels");
            assert_eq!(node.received_fds_alive(), 0, "node {i}: fds");
            assert!(!node.has_pending(), "node {i}: pending work");
            assert_eq!(node.pending_event_count(), 0, "node {i}: events");
        }
    }

    /// Like [`Self::assert_nothing_left`] but requires every router to be
    /// gone while the links still stand (nothing was lost on the way).
    pub fn assert_idle_and_clean(&mut self) {
        self.run();
        for (i, node) in self.nodes.iter().enumerate() {
            assert_eq!(node.router_count(), 0, "node {i}: routers");
            assert_eq!(node.sublink_count(), 0, "node {i}: sublinks");
        }
        self.assert_nothing_left();
    }
}

impl Net {
    /// Takes the next frame `node` sent on `link` without delivering it.
    pub fn take_frame(&mut self, node: usize, link: NodeLinkId) -> Option<Frame> {
        self.collect();
        self.in_flight.get_mut(&(node, link))?.pop_front()
    }

    /// Hands `bytes` and `fds` to the other end of (node, link) as if they
    /// had arrived there; the result of `handle_frame`.
    /// As [`Net::inject`], through the peer's stream input
    /// (`Node::handle_stream`), which takes each frame's fds from `fds`.
    pub fn inject_stream(
        &mut self,
        node: usize,
        link: NodeLinkId,
        bytes: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, NodeError> {
        let end = self.ends[&(node, link)];
        self.nodes[end.peer_node].handle_stream(end.peer_link, bytes, fds)
    }

    pub fn inject(
        &mut self,
        node: usize,
        link: NodeLinkId,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        let end = self.ends[&(node, link)];
        self.nodes[end.peer_node].handle_frame(end.peer_link, bytes, fds)
    }
}
