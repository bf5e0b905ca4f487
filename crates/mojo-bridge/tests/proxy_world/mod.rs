//! The whole sans-IO proxy in memory, from the first byte: an ipcz broker
//! host (`ipcz_node::session::Session::broker`), the [`Proxy`] and a legacy
//! client (`mojo_legacy_node::session::ClientSession`), their streams moved
//! as bytes (fds as real `OwnedFd`s) until nothing moves, the harness
//! playing the platform for memory and recycling every written buffer as a
//! driver does. Deterministic: every name and token comes from seeded
//! sources. Shared by `proxy_sim.rs` and `proxy_allocations.rs`.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use ipcz_node::node::{Node, NodeEvent};
use ipcz_node::router::RouterId;
use ipcz_node::session::{Session, SessionConfig, SessionEvent};
use ipcz_node::sim::{MemoryAnswer, SharedHeap, SimRegions};
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::types::NodeName;
use mojo_bridge::Attachments;
use mojo_bridge::proxy::{Proxy, ProxyConfig, ProxyEvent, ProxyLink};
use mojo_invitation::ipcz::PrimaryBuffer;
use mojo_legacy_node::node::{Handle, PortRef};
use mojo_legacy_node::ports::names;
use mojo_legacy_node::session::{AttachmentName, ClientConfig, ClientSession, Link};
use mojo_legacy_wire::Profile;
use mojo_wire_kit::{Guid, SeededRandom};

/// Most rounds one `run` takes before the test fails as "never idle".
const MAX_ROUNDS: usize = 10_000;

pub fn dev_null() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

#[derive(Default)]
pub struct Stream {
    pub bytes: Vec<u8>,
    pub fds: VecDeque<OwnedFd>,
}

impl Stream {
    pub fn push(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) {
        self.bytes.extend_from_slice(bytes);
        self.fds.extend(fds);
    }
}

pub struct World {
    pub host: Session<SharedHeap>,
    pub host_portals: Vec<Option<RouterId>>,
    pub proxy: Proxy<SharedHeap>,
    pub client: ClientSession,
    pub primary: SharedHeap,
    pub regions: SimRegions,
    pub to_host: Stream,
    pub to_proxy: [Stream; 3],
    pub to_client: [Stream; 2],
    pub finished: bool,
    /// Hold the host's traffic back (in both directions) while set.
    pub hold_host: bool,
    /// Hold back what the proxy sends the client while set.
    pub hold_client: bool,
    pub pairings_opened: usize,
    pub pairings_closed: usize,
    /// Called with `true` before and `false` after each call into the proxy
    /// from `step` (a no-op unless a test sets it).
    pub proxy_gate: fn(bool),
}

impl World {
    pub fn new(attachments: Attachments, profile: Profile) -> Self {
        let mut world = Self::unconnected(attachments, profile);
        world.run();
        assert!(world.host.is_established(), "the host's link is up");
        assert!(world.client.is_established(), "the client accepted");
        world
    }

    /// The three parties with nothing delivered yet.
    pub fn unconnected(attachments: Attachments, profile: Profile) -> Self {
        let names: Vec<Vec<u8>> = match &attachments {
            Attachments::Named(n) => vec![n.clone()],
            Attachments::Numbered(n) => (0..*n as u64).map(|i| i.to_le_bytes().to_vec()).collect(),
            Attachments::Listed(l) => l.clone(),
        };
        let primary = SharedHeap::new(PRIMARY_BUFFER_SIZE);
        let buffer = PrimaryBuffer::new(
            PRIMARY_BUFFER_SIZE as u32,
            Guid { high: 1, low: 1 },
            dev_null(),
        );
        let config = SessionConfig {
            initial_portals: names.len() as u32 + 1,
            ..SessionConfig::default()
        };
        let host = Session::broker(
            NodeName { high: 0x40, low: 1 },
            config,
            buffer,
            primary.clone(),
            &mut SeededRandom::new(1),
        )
        .unwrap();
        let proxy = Proxy::new(
            &ProxyConfig {
                attachments,
                legacy_profile: profile,
                legacy_name: names::node_name(0x50, 2),
                inherit_broker: false,
            },
            dev_null(),
            SeededRandom::new(2),
        )
        .unwrap();
        let probe: mojo_legacy_node::session::AccessProbe = Box::new(|_| None);
        let client = ClientSession::new(
            ClientConfig {
                profile,
                local_name: names::node_name(0x60, 3),
                attachments: names
                    .into_iter()
                    .map(|n| AttachmentName::from_bytes(n).unwrap())
                    .collect(),
            },
            SeededRandom::new(3),
            probe,
        )
        .unwrap();
        Self {
            host,
            host_portals: Vec::new(),
            proxy,
            client,
            primary,
            regions: SimRegions::default(),
            to_host: Stream::default(),
            to_proxy: Default::default(),
            to_client: Default::default(),
            finished: false,
            hold_host: false,
            hold_client: false,
            pairings_opened: 0,
            pairings_closed: 0,
            proxy_gate: |_| {},
        }
    }

    /// Runs `f` on the proxy between `proxy_gate(true)` and
    /// `proxy_gate(false)`, so a test can tell the proxy's own work (its
    /// allocations, say) from the harness's.
    pub fn in_proxy<R>(&mut self, f: impl FnOnce(&mut Proxy<SharedHeap>) -> R) -> R {
        (self.proxy_gate)(true);
        let r = f(&mut self.proxy);
        (self.proxy_gate)(false);
        r
    }

    pub fn host_node(&mut self) -> &mut Node<SharedHeap> {
        self.host.node_mut().unwrap()
    }

    /// Answers a memory event on `node`.
    pub fn memory(&mut self, on_proxy: bool, event: NodeEvent) {
        let node = if on_proxy {
            self.proxy.ipcz_mut().unwrap()
        } else {
            self.host.node_mut().unwrap()
        };
        match self.regions.answer(node, event) {
            MemoryAnswer::Provided(r) | MemoryAnswer::Mapped(r) => r.unwrap(),
            MemoryAnswer::Unmappable => {}
            MemoryAnswer::RegionFailed(e) => panic!("no region: {e}"),
            MemoryAnswer::NotMemory(other) => panic!("unexpected memory event {other:?}"),
        }
    }

    /// One pass over every output and input; returns whether anything moved.
    pub fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(t) = self.host.poll_transmit() {
            self.to_proxy[0].push(&t.bytes, t.fds);
            moved = true;
        }
        while let Some(t) = self.in_proxy(Proxy::poll_transmit) {
            let stream = match t.link {
                ProxyLink::Host => &mut self.to_host,
                ProxyLink::ClientBootstrap => &mut self.to_client[0],
                ProxyLink::ClientNodeChannel => &mut self.to_client[1],
                ProxyLink::Referrer => panic!("no referrer with a broker host"),
                ProxyLink::Introduced(_) => {
                    panic!("no introductions here (proxy_introductions.rs)")
                }
            };
            stream.push(&t.bytes, t.fds);
            // Written: the buffer goes back, as the driver gives it back.
            self.in_proxy(|p| p.recycle(t.link, t.bytes));
            moved = true;
        }
        while let Some(t) = self.client.poll_transmit() {
            let slot = match t.link {
                Link::Bootstrap => 1,
                Link::NodeChannel => 2,
            };
            self.to_proxy[slot].push(&t.bytes, t.fds);
            moved = true;
        }
        // The node-channel socket the client would adopt is this sim's link.
        while self.client.poll_adopt().is_some() {}
        while let Some(event) = self.host.poll_event() {
            moved = true;
            match event {
                SessionEvent::Established { portals, .. } => self.host_portals = portals,
                SessionEvent::Node(
                    e @ (NodeEvent::CreateBlockBuffer { .. } | NodeEvent::MapBlockBuffer { .. }),
                ) => self.memory(false, e),
                _ => {}
            }
        }
        while let Some(event) = self.in_proxy(Proxy::poll_event) {
            moved = true;
            match event {
                ProxyEvent::MapPrimaryBuffer { .. } => {
                    let primary = self.primary.clone();
                    self.proxy.primary_buffer_mapped(primary).unwrap();
                }
                ProxyEvent::Memory(e) => self.memory(true, e),
                ProxyEvent::RegionRequest(r) => self.proxy.fail_region(r.id).unwrap(),
                ProxyEvent::PairingOpened { .. } => self.pairings_opened += 1,
                ProxyEvent::PairingClosed { .. } => self.pairings_closed += 1,
                ProxyEvent::Dropped(e) => panic!("dropped: {e:?}"),
                ProxyEvent::Finished => self.finished = true,
                ProxyEvent::AdoptReferrer { .. } => panic!("no referrer with a broker host"),
                ProxyEvent::AdoptIntroduced { .. } => panic!("no introductions here"),
            }
        }
        let s = &mut self.to_host;
        if !s.bytes.is_empty() && !self.hold_host {
            let used = self.host.handle_stream(&s.bytes, &mut s.fds).unwrap();
            moved |= used > 0;
            s.bytes.drain(..used);
        }
        for (slot, link) in [
            (0, ProxyLink::Host),
            (1, ProxyLink::ClientBootstrap),
            (2, ProxyLink::ClientNodeChannel),
        ] {
            let held = slot == 0 && self.hold_host;
            let s = &mut self.to_proxy[slot];
            if !s.bytes.is_empty() && !held {
                (self.proxy_gate)(true);
                let used = self.proxy.handle_stream(link, &s.bytes, &mut s.fds);
                (self.proxy_gate)(false);
                let used = used.unwrap();
                moved |= used > 0;
                s.bytes.drain(..used);
            }
        }
        for (slot, link) in [(0, Link::Bootstrap), (1, Link::NodeChannel)] {
            let s = &mut self.to_client[slot];
            if !s.bytes.is_empty() && !self.hold_client {
                let used = self
                    .client
                    .handle_stream(link, &s.bytes, &mut s.fds)
                    .unwrap();
                moved |= used > 0;
                s.bytes.drain(..used);
            }
        }
        moved
    }

    pub fn run(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if !self.step() {
                return;
            }
        }
        panic!("never idle");
    }

    pub fn host_portal(&self, attachment: usize) -> RouterId {
        self.host_portals[attachment + 1].unwrap()
    }

    pub fn client_end(&self, attachment: usize) -> PortRef {
        self.client.attachments().unwrap()[attachment]
    }
}

pub fn read_all_client(world: &mut World, end: PortRef) -> Vec<(Vec<u8>, Vec<Handle>)> {
    let mut out = Vec::new();
    while let Ok(Some(m)) = world.client.node().read_message(end) {
        out.push(m);
    }
    out
}
