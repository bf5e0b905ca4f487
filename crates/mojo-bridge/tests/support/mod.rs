//! A deterministic in-memory world for the bridge tests: an ipcz "host"
//! node linked to the bridge's ipcz node over a shared heap primary buffer,
//! and a legacy "client" node linked to the bridge's legacy node; frames
//! travel as bytes (fds as real `OwnedFd`s) through FIFO queues, stepped
//! until idle; the harness plays the platform for memory requests.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use ipcz_node::link::LinkParams;
use ipcz_node::node::{Node, NodeConfig, NodeEvent, NodeParcel};
use ipcz_node::router::{NodeLinkId, RouterId};
use ipcz_node::sim::{MemoryAnswer, SharedHeap, SimRegions};
use ipcz_wire::memory::primary;
use ipcz_wire::types::{LinkSide, NodeName};
use mojo_bridge::{Attachments, Bridge, BridgeEvent, BridgeTransmit, Side, Untranslatable};
use mojo_legacy_node::node::{LegacyNode, Message, NodeEvent as LegacyEvent, PeerRole, PortRef};
use mojo_legacy_node::ports::names;
use mojo_legacy_wire::Profile;
use mojo_wire_kit::SeededRandom;

/// Most frames one `run` delivers before the test fails as "never idle".
const MAX_DELIVERIES: usize = 200_000;

pub const HOST: NodeName = NodeName { high: 0x40, low: 1 };
pub const PROXY: NodeName = NodeName { high: 0x50, low: 2 };

pub struct Frame {
    pub bytes: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

pub struct World {
    pub host: Node<SharedHeap>,
    pub host_link: NodeLinkId,
    /// The host's initial portals (portal 0 included).
    pub host_portals: Vec<RouterId>,
    pub client: LegacyNode,
    /// The client's attachment ends, in attachment order.
    pub client_ends: Vec<PortRef>,
    pub bridge: Bridge<SharedHeap>,
    pub bridge_link: NodeLinkId,
    to_host: VecDeque<Frame>,
    to_bridge_ipcz: VecDeque<Frame>,
    to_client: VecDeque<Frame>,
    to_bridge_legacy: VecDeque<Frame>,
    regions: SimRegions,
    pub bridge_events: Vec<BridgeEvent>,
    pub host_events: Vec<NodeEvent>,
    pub client_events: Vec<LegacyEvent>,
    /// Frames a receiver refused (none in a correct run).
    pub errors: Vec<String>,
}

/// A real fd and the far end of its socket pair.
pub fn probed_fd() -> (OwnedFd, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    (OwnedFd::from(a), b)
}

/// Whether `fd` is the near end of `probe`'s pair: a byte written on it
/// arrives at the probe.
pub fn same_socket(fd: &OwnedFd, probe: &UnixStream) -> bool {
    let mut stream = UnixStream::from(fd.try_clone().unwrap());
    stream.write_all(b"x").unwrap();
    probe.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    matches!((&*probe).read(&mut b), Ok(1))
}

/// Whether every copy of the probe's peer fd is closed.
pub fn probe_closed(probe: &UnixStream) -> bool {
    probe.set_nonblocking(true).unwrap();
    let mut b = [0u8; 16];
    loop {
        match (&*probe).read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) => panic!("probe read: {e}"),
        }
    }
}

impl World {
    /// Host, bridge and client with `attachments`; the host announces
    /// `host_portals` initial portals and opens as many.
    pub fn new(attachments: Attachments, host_portals: usize) -> Self {
        Self::with_profile(attachments, host_portals, Profile::Libchrome)
    }

    /// As [`World::new`], the legacy link speaking `profile`.
    pub fn with_profile(attachments: Attachments, host_portals: usize, profile: Profile) -> Self {
        let primary = SharedHeap::new(primary::SIZE);
        let mut host = Node::new(HOST, NodeConfig::default());
        let host_link = host
            .add_link(
                LinkParams::new(HOST, PROXY, LinkSide::A, primary.clone())
                    .initializing_primary_buffer(),
            )
            .unwrap();
        let mut proxy_ipcz = Node::new(PROXY, NodeConfig::default());
        let bridge_link = proxy_ipcz
            .add_link(LinkParams::new(PROXY, HOST, LinkSide::B, primary))
            .unwrap();
        let names_of: Vec<Vec<u8>> = match &attachments {
            Attachments::Named(n) => vec![n.clone()],
            Attachments::Numbered(n) => (0..*n as u64).map(|i| i.to_le_bytes().to_vec()).collect(),
            Attachments::Listed(names) => names.clone(),
        };
        let ours = match &attachments {
            Attachments::Named(_) => 2,
            Attachments::Numbered(n) => n + 1,
            Attachments::Listed(names) => names.len() + 1,
        };
        let host_portals_v = host
            .open_initial_portals(host_link, host_portals, ours)
            .unwrap();
        let mut proxy_legacy = LegacyNode::new(names::node_name(0x60, 3), SeededRandom::new(3));
        let mut client = LegacyNode::new(names::node_name(0x70, 4), SeededRandom::new(4));
        proxy_legacy
            .add_peer(client.name(), profile, PeerRole::Client)
            .unwrap();
        client
            .add_peer(proxy_legacy.name(), profile, PeerRole::Broker)
            .unwrap();
        let client_ends = names_of
            .iter()
            .map(|n| client.request_port_merge(proxy_legacy.name(), n).unwrap())
            .collect();
        let bridge = Bridge::new(
            proxy_ipcz,
            bridge_link,
            host_portals,
            proxy_legacy,
            &attachments,
        )
        .unwrap();
        let mut world = Self {
            host,
            host_link,
            host_portals: host_portals_v,
            client,
            client_ends,
            bridge,
            bridge_link,
            to_host: VecDeque::new(),
            to_bridge_ipcz: VecDeque::new(),
            to_client: VecDeque::new(),
            to_bridge_legacy: VecDeque::new(),
            regions: SimRegions::default(),
            bridge_events: Vec::new(),
            host_events: Vec::new(),
            client_events: Vec::new(),
            errors: Vec::new(),
        };
        world.run();
        // The bridge closed portal 0; the host drops its end, as MojoIpcz does.
        let zero = world.host_portals[0];
        assert!(
            world.host.status(zero).unwrap().peer_closed,
            "portal 0 closed"
        );
        world.host.close(zero).unwrap();
        world.run();
        world
    }

    /// The host's portal for attachment `i`.
    pub fn host_portal(&self, i: usize) -> RouterId {
        self.host_portals[i + 1]
    }

    /// Answers a memory event for `node` (host or the bridge's ipcz node);
    /// returns the events that are not memory work.
    fn memory_event(&mut self, bridge: bool, event: NodeEvent) -> Option<NodeEvent> {
        let node = if bridge {
            self.bridge.ipcz_mut()
        } else {
            &mut self.host
        };
        match self.regions.answer(node, event) {
            MemoryAnswer::Provided(result) => result.expect("own block buffer refused"),
            MemoryAnswer::RegionFailed(e) => panic!("no region: {e}"),
            MemoryAnswer::Mapped(_) | MemoryAnswer::Unmappable => {}
            MemoryAnswer::NotMemory(other) => return Some(other),
        }
        None
    }

    /// Moves every transmit and event out of the three nodes; false if
    /// there was none.
    fn collect(&mut self) -> bool {
        let mut any = false;
        while let Some(t) = self.host.poll_transmit() {
            any = true;
            self.to_bridge_ipcz.push_back(Frame {
                bytes: t.bytes,
                fds: t.fds,
            });
        }
        while let Some(e) = self.host.poll_event() {
            any = true;
            if let Some(e) = self.memory_event(false, e) {
                self.host_events.push(e);
            }
        }
        while let Some(t) = self.client.poll_transmit() {
            any = true;
            self.to_bridge_legacy.push_back(Frame {
                bytes: t.bytes,
                fds: t.fds,
            });
        }
        while let Some(e) = self.client.poll_event() {
            any = true;
            self.client_events.push(e);
        }
        while let Some(t) = self.bridge.poll_transmit() {
            any = true;
            match t {
                BridgeTransmit::Ipcz(t) => self.to_host.push_back(Frame {
                    bytes: t.bytes,
                    fds: t.fds,
                }),
                BridgeTransmit::Legacy(t) => {
                    assert_eq!(t.peer, self.client.name());
                    self.to_client.push_back(Frame {
                        bytes: t.bytes,
                        fds: t.fds,
                    });
                }
            }
        }
        while let Some(e) = self.bridge.poll_event() {
            any = true;
            match e {
                BridgeEvent::Ipcz(e) => {
                    if let Some(e) = self.memory_event(true, e) {
                        self.bridge_events.push(BridgeEvent::Ipcz(e));
                    }
                }
                other => self.bridge_events.push(other),
            }
        }
        any
    }

    /// Delivers one frame from each queue that has one; false if all were empty.
    pub fn step(&mut self) -> bool {
        let mut moved = self.collect();
        for queue in 0..4 {
            moved |= self.deliver(queue);
        }
        moved
    }

    /// Delivers the next frame of one queue (0: to the host, 1: to the
    /// bridge's ipcz node, 2: to the client, 3: to the bridge's legacy
    /// node); false if it was empty.
    pub fn deliver(&mut self, queue: usize) -> bool {
        self.collect();
        let mut moved = false;
        if queue == 0
            && let Some(f) = self.to_host.pop_front()
        {
            moved = true;
            if let Err(e) = self.host.handle_frame(self.host_link, &f.bytes, f.fds) {
                self.errors.push(format!("host: {e}"));
            }
        }
        if queue == 1
            && let Some(f) = self.to_bridge_ipcz.pop_front()
        {
            moved = true;
            if let Err(e) = self
                .bridge
                .handle_ipcz_frame(self.bridge_link, &f.bytes, f.fds)
            {
                self.errors.push(format!("bridge ipcz: {e}"));
            }
        }
        if queue == 2
            && let Some(f) = self.to_client.pop_front()
        {
            moved = true;
            let from = self.bridge.legacy().name();
            if let Err(e) = self.client.handle_frame(from, &f.bytes, f.fds) {
                self.errors.push(format!("client: {e}"));
            }
        }
        if queue == 3
            && let Some(f) = self.to_bridge_legacy.pop_front()
        {
            moved = true;
            let from = self.client.name();
            if let Err(e) = self.bridge.handle_legacy_frame(from, &f.bytes, f.fds) {
                self.errors.push(format!("bridge legacy: {e}"));
            }
        }
        moved
    }

    /// Steps until nothing moves anywhere.
    pub fn run(&mut self) {
        for _ in 0..MAX_DELIVERIES {
            if !self.step() {
                assert!(self.errors.is_empty(), "refused frames: {:?}", self.errors);
                assert!(self.bridge.is_idle(), "bridge idle once nothing moves");
                return;
            }
        }
        panic!("the world never became idle");
    }

    /// Every parcel ready on the host's `portal`.
    pub fn host_take(&mut self, portal: RouterId) -> Vec<NodeParcel> {
        let mut out = Vec::new();
        while let Some(p) = self.host.get(portal).unwrap() {
            out.push(p);
        }
        out
    }

    /// Every message ready on the client's `port`.
    pub fn client_take(&mut self, port: PortRef) -> Vec<Message> {
        let mut out = Vec::new();
        while let Ok(Some(m)) = self.client.read_message(port) {
            out.push(m);
        }
        out
    }

    /// The untranslatable reports so far.
    pub fn untranslatable(&self) -> Vec<(Side, Untranslatable)> {
        self.bridge_events
            .iter()
            .filter_map(|e| match e {
                BridgeEvent::Untranslatable { from, what } => Some((*from, *what)),
                _ => None,
            })
            .collect()
    }

    /// Closes every attachment end on both outer nodes.
    pub fn close_attachments(&mut self) {
        for i in 0..self.client_ends.len() {
            let _ = self.host.close(self.host_portal(i));
            let _ = self.client.close_port(self.client_ends[i]);
        }
        self.run();
    }

    /// Nothing is left anywhere: no pairing, port, router, parcel or fd,
    /// while both transports still stand.
    pub fn assert_nothing_left(&mut self) {
        self.run();
        assert_eq!(self.bridge.pairing_count(), 0, "pairings");
        assert!(self.bridge.is_finished());
        let ipcz = self.bridge.ipcz();
        assert_eq!(ipcz.router_count(), 0, "bridge routers");
        assert_eq!(ipcz.queued_parcel_count(), 0, "bridge parcels");
        assert_eq!(ipcz.held_parcel_count(), 0, "bridge held parcels");
        assert_eq!(ipcz.received_fds_alive(), 0, "bridge ipcz fds");
        let legacy = self.bridge.legacy();
        assert_eq!(legacy.port_count(), 0, "bridge ports");
        assert_eq!(legacy.queued_fd_count(), 0, "bridge legacy fds");
        assert_eq!(
            legacy.reserved_attachment_count(),
            0,
            "reserved attachments"
        );
        assert_eq!(self.host.router_count(), 0, "host routers");
        assert_eq!(self.host.queued_parcel_count(), 0, "host parcels");
        assert_eq!(self.host.received_fds_alive(), 0, "host fds");
        assert_eq!(self.client.port_count(), 0, "client ports");
        assert_eq!(self.client.queued_fd_count(), 0, "client fds");
        assert!(self.errors.is_empty(), "{:?}", self.errors);
    }
}
