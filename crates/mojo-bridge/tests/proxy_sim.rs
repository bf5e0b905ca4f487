//! The whole sans-IO proxy in memory, from the first byte: an ipcz broker
//! host (`ipcz_node::session::Session::broker`), the [`Proxy`] and a legacy
//! client (`mojo_legacy_node::session::ClientSession`), their streams moved
//! as bytes (fds as real `OwnedFd`s) until nothing moves, the harness
//! playing the platform for memory. Deterministic: every name and token
//! comes from seeded sources.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;

use ipcz_node::node::{DriverBox, Node, NodeEvent};
use ipcz_node::router::RouterId;
use ipcz_node::session::{Session, SessionConfig, SessionEvent};
use ipcz_node::sim::SharedHeap;
use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::types::NodeName;
use mojo_bridge::Attachments;
use mojo_bridge::proxy::{Proxy, ProxyConfig, ProxyEvent, ProxyLink};
use mojo_invitation::ipcz::PrimaryBuffer;
use mojo_legacy_node::node::{Handle, PortRef};
use mojo_legacy_node::ports::names;
use mojo_legacy_node::session::{AttachmentName, ClientConfig, ClientSession, Link};
use mojo_legacy_wire::Profile;
use mojo_wire_kit::{Guid, RegionMode, SeededRandom};

/// Most rounds one `run` takes before the test fails as "never idle".
const MAX_ROUNDS: usize = 10_000;

fn dev_null() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

#[derive(Default)]
struct Stream {
    bytes: Vec<u8>,
    fds: VecDeque<OwnedFd>,
}

impl Stream {
    fn push(&mut self, bytes: Vec<u8>, fds: Vec<OwnedFd>) {
        self.bytes.extend(bytes);
        self.fds.extend(fds);
    }
}

struct World {
    host: Session<SharedHeap>,
    host_portals: Vec<Option<RouterId>>,
    proxy: Proxy<SharedHeap>,
    client: ClientSession,
    primary: SharedHeap,
    regions: HashMap<Guid, SharedHeap>,
    next_guid: u64,
    to_host: Stream,
    to_proxy: [Stream; 3],
    to_client: [Stream; 2],
    finished: bool,
    /// Hold the host's traffic back (in both directions) while set.
    hold_host: bool,
    /// Hold back what the proxy sends the client while set.
    hold_client: bool,
    pairings_opened: usize,
    pairings_closed: usize,
}

impl World {
    fn new(attachments: Attachments, profile: Profile) -> Self {
        let mut world = Self::unconnected(attachments, profile);
        world.run();
        assert!(world.host.is_established(), "the host's link is up");
        assert!(world.client.is_established(), "the client accepted");
        world
    }

    /// The three parties with nothing delivered yet.
    fn unconnected(attachments: Attachments, profile: Profile) -> Self {
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
            regions: HashMap::new(),
            next_guid: 1,
            to_host: Stream::default(),
            to_proxy: Default::default(),
            to_client: Default::default(),
            finished: false,
            hold_host: false,
            hold_client: false,
            pairings_opened: 0,
            pairings_closed: 0,
        }
    }

    fn host_node(&mut self) -> &mut Node<SharedHeap> {
        self.host.node_mut().unwrap()
    }

    fn new_region(&mut self, size: usize) -> (SharedHeap, DriverBox) {
        let guid = Guid::new(0x5eed, self.next_guid);
        self.next_guid += 1;
        let region = SharedHeap::new(size);
        self.regions.insert(guid, region.clone());
        let object = DriverObject::SharedBuffer(SharedBuffer {
            buffer_size: size as u32,
            mode: RegionMode::Unsafe,
            guid,
        });
        (region, DriverBox::new(object, vec![dev_null()]).unwrap())
    }

    /// Answers a memory event on `node`.
    fn memory(&mut self, on_proxy: bool, event: NodeEvent) {
        match event {
            NodeEvent::CreateBlockBuffer {
                link,
                block_size,
                buffer_size,
            } => {
                let (region, boxed) = self.new_region(buffer_size);
                let node = if on_proxy {
                    self.proxy.ipcz_mut().unwrap()
                } else {
                    self.host.node_mut().unwrap()
                };
                node.provide_block_buffer(link, block_size, region, boxed)
                    .unwrap();
            }
            NodeEvent::MapBlockBuffer {
                link, id, buffer, ..
            } => {
                let region = match buffer.object() {
                    DriverObject::SharedBuffer(b) => self.regions.get(&b.guid).cloned(),
                    _ => None,
                };
                let node = if on_proxy {
                    self.proxy.ipcz_mut().unwrap()
                } else {
                    self.host.node_mut().unwrap()
                };
                match region {
                    Some(r) => node.block_buffer_mapped(link, id, r).unwrap(),
                    None => node.block_buffer_unmappable(link, id),
                }
            }
            other => panic!("unexpected memory event {other:?}"),
        }
    }

    /// One pass over every output and input; returns whether anything moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(t) = self.host.poll_transmit() {
            self.to_proxy[0].push(t.bytes, t.fds);
            moved = true;
        }
        while let Some(t) = self.proxy.poll_transmit() {
            match t.link {
                ProxyLink::Host => self.to_host.push(t.bytes, t.fds),
                ProxyLink::ClientBootstrap => self.to_client[0].push(t.bytes, t.fds),
                ProxyLink::ClientNodeChannel => self.to_client[1].push(t.bytes, t.fds),
                ProxyLink::Referrer => panic!("no referrer with a broker host"),
                ProxyLink::Introduced(_) => {
                    panic!("no introductions here (proxy_introductions.rs)")
                }
            }
            moved = true;
        }
        while let Some(t) = self.client.poll_transmit() {
            let slot = match t.link {
                Link::Bootstrap => 1,
                Link::NodeChannel => 2,
            };
            self.to_proxy[slot].push(t.bytes, t.fds);
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
        while let Some(event) = self.proxy.poll_event() {
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
                let used = self
                    .proxy
                    .handle_stream(link, &s.bytes, &mut s.fds)
                    .unwrap();
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

    fn run(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if !self.step() {
                return;
            }
        }
        panic!("never idle");
    }

    fn host_portal(&self, attachment: usize) -> RouterId {
        self.host_portals[attachment + 1].unwrap()
    }

    fn client_end(&self, attachment: usize) -> PortRef {
        self.client.attachments().unwrap()[attachment]
    }
}

fn read_all_client(world: &mut World, end: PortRef) -> Vec<(Vec<u8>, Vec<Handle>)> {
    let mut out = Vec::new();
    while let Ok(Some(m)) = world.client.node().read_message(end) {
        out.push(m);
    }
    out
}

#[test]
fn messages_cross_both_ways_on_every_attachment_in_both_profiles() {
    for profile in [Profile::Libchrome, Profile::Desktop] {
        for attachments in [
            Attachments::Named(b"pipe!".to_vec()),
            Attachments::Numbered(1),
            Attachments::Numbered(7),
        ] {
            let count = match attachments {
                Attachments::Numbered(n) => n,
                _ => 1,
            };
            let mut w = World::new(attachments, profile);
            assert_eq!(w.pairings_opened, count);
            for i in 0..count {
                let portal = w.host_portal(i);
                w.host_node()
                    .put(portal, format!("to client {i}").into_bytes(), Vec::new())
                    .unwrap();
                let end = w.client_end(i);
                w.client
                    .node()
                    .write_message(end, format!("to host {i}").as_bytes(), Vec::new())
                    .unwrap();
                // An empty message too.
                w.host_node().put(portal, Vec::new(), Vec::new()).unwrap();
            }
            w.run();
            for i in 0..count {
                let end = w.client_end(i);
                let got = read_all_client(&mut w, end);
                let bytes: Vec<&[u8]> = got.iter().map(|(b, _)| b.as_slice()).collect();
                assert_eq!(
                    bytes,
                    [format!("to client {i}").as_bytes(), b""],
                    "{profile:?}"
                );
                let portal = w.host_portal(i);
                let parcel = w.host_node().get(portal).unwrap().unwrap();
                assert_eq!(parcel.data, format!("to host {i}").into_bytes());
            }
        }
    }
}

#[test]
fn messages_written_before_the_host_link_is_up_are_forwarded() {
    // The client accepts and writes while the host's frames are held back:
    // the proxy has no bridge yet, the message waits in its legacy node.
    let mut w = World::unconnected(Attachments::Numbered(2), Profile::Libchrome);
    w.hold_host = true;
    w.run();
    assert!(w.client.is_established(), "the client accepted");
    assert!(w.proxy.bridge().is_none(), "the host's link is not up");
    let end = w.client_end(1);
    w.client
        .node()
        .write_message(end, b"early", Vec::new())
        .unwrap();
    w.run();
    assert!(w.proxy.bridge().is_none());
    w.hold_host = false;
    w.run();
    assert!(w.proxy.bridge().is_some());
    let portal = w.host_portal(1);
    assert_eq!(w.host_node().get(portal).unwrap().unwrap().data, b"early");
}

#[test]
fn messages_from_the_host_wait_for_the_client() {
    // The other way round: the host's link is up and the host writes before
    // the client has even read INIT.
    let mut w = World::unconnected(Attachments::Named(b"pipe!".to_vec()), Profile::Desktop);
    w.hold_client = true;
    w.run();
    assert!(w.host.is_established() && !w.client.is_established());
    let portal = w.host_portal(0);
    w.host_node()
        .put(portal, b"waiting".to_vec(), Vec::new())
        .unwrap();
    w.run();
    w.hold_client = false;
    w.run();
    let end = w.client_end(0);
    assert_eq!(
        w.client.node().read_message(end).unwrap().unwrap().0,
        b"waiting"
    );
}

#[test]
fn a_pipe_sent_by_the_host_reaches_the_client_and_works() {
    let mut w = World::new(Attachments::Named(b"pipe!".to_vec()), Profile::Libchrome);
    let (ours, theirs) = w.host_node().create_portal_pair();
    let portal = w.host_portal(0);
    w.host_node()
        .put(
            portal,
            b"take this".to_vec(),
            vec![ipcz_node::router::Handle::Portal(theirs)],
        )
        .unwrap();
    w.run();
    let end = w.client_end(0);
    let mut got = read_all_client(&mut w, end);
    assert_eq!(got.len(), 1);
    let (bytes, handles) = got.remove(0);
    assert_eq!(bytes, b"take this");
    let Some(Handle::MessagePipe(sub)) = handles.into_iter().next() else {
        panic!("a pipe end");
    };
    w.client
        .node()
        .write_message(sub, b"on the sub", Vec::new())
        .unwrap();
    w.run();
    assert_eq!(
        w.host_node().get(ours).unwrap().unwrap().data,
        b"on the sub"
    );
    assert_eq!(w.pairings_opened, 2);
}

#[test]
fn closing_every_host_portal_finishes_the_proxy_after_forwarding() {
    let mut w = World::new(Attachments::Numbered(3), Profile::Desktop);
    for i in 0..3 {
        let portal = w.host_portal(i);
        w.host_node()
            .put(portal, b"last words".to_vec(), Vec::new())
            .unwrap();
        w.host_node().close(portal).unwrap();
    }
    w.run();
    assert!(w.finished, "the proxy reports Finished");
    assert!(w.proxy.is_finished());
    assert_eq!(w.pairings_closed, 3);
    for i in 0..3 {
        let end = w.client_end(i);
        let got = read_all_client(&mut w, end);
        assert_eq!(got.len(), 1, "forwarded before closing");
        assert!(
            w.client.node().read_message(end).is_err(),
            "then peer closed"
        );
    }
}

#[test]
fn the_client_going_away_finishes_the_proxy_and_closes_the_host_portals() {
    let mut w = World::new(Attachments::Numbered(2), Profile::Libchrome);
    let end = w.client_end(0);
    w.client
        .node()
        .write_message(end, b"bye", Vec::new())
        .unwrap();
    w.run();
    w.proxy
        .handle_link_closed(ProxyLink::ClientNodeChannel)
        .unwrap();
    w.run();
    assert!(w.finished);
    let portal = w.host_portal(0);
    assert_eq!(w.host_node().get(portal).unwrap().unwrap().data, b"bye");
    for i in 0..2 {
        let portal = w.host_portal(i);
        let status = w.host_node().status(portal).unwrap();
        assert!(status.peer_closed, "attachment {i}: {status:?}");
    }
}

#[test]
fn the_snapshot_counts_links_waiting_messages_and_pipes() {
    // Before the host's link is up, the client's message waits in the
    // legacy node and the snapshot says so.
    let mut w = World::unconnected(Attachments::Numbered(2), Profile::Libchrome);
    w.hold_host = true;
    w.run();
    let end = w.client_end(0);
    w.client
        .node()
        .write_message(end, b"early", Vec::new())
        .unwrap();
    w.run();
    let snap = w.proxy.snapshot();
    assert!(snap.bridge.is_none());
    assert_eq!(snap.waiting_for_host, 1);
    // INIT carried the node channel's client end.
    assert_eq!(snap.totals.client_bootstrap.fds_out, 1);
    assert!(snap.totals.client_node_channel.bytes_in > 0);
    w.hold_host = false;
    w.run();
    let portal = w.host_portal(1);
    w.host_node().put(portal, vec![1; 100], Vec::new()).unwrap();
    w.run();
    let snap = w.proxy.snapshot();
    assert_eq!(snap.waiting_for_host, 0);
    let bridge = snap.bridge.expect("the bridge is up");
    assert_eq!(bridge.pipes.len(), 2);
    let t = snap.totals;
    assert_eq!((t.bridge.to_ipcz.messages, t.bridge.to_ipcz.bytes), (1, 5));
    assert_eq!(
        (t.bridge.to_legacy.messages, t.bridge.to_legacy.bytes),
        (1, 100)
    );
    assert_eq!(t, w.proxy.totals());
    // The wire totals: the host's greeting brought the primary buffer's fd;
    // both links carried more than the payloads.
    assert_eq!(t.host.fds_in, 1);
    assert!(t.host.bytes_in > 5 && t.host.bytes_out > 0);
    assert!(t.client_node_channel.bytes_out > 100);
    assert_eq!(t.referrer, mojo_bridge::LinkTotals::default());
}
