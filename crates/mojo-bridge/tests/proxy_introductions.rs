//! Introductions (spec `ipcz.md` §7) on the proxy's host-facing side, in
//! memory and deterministic: a broker host, the [`Proxy`], a legacy client
//! and a third ipcz node C linked to the host only. The host hands the
//! proxy a portal whose peer is on C; the route is reduced through an
//! introduction the host brokers, after which parcels go proxy ⇄ C
//! directly. Then: the loss of that link breaks only the routes over it;
//! an offer beyond [`MAX_INTRODUCED_LINKS`] is a typed error that closes
//! the offer's fds.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use ipcz_node::link::LinkParams;
use ipcz_node::memory::NodeLinkMemory;
use ipcz_node::node::{DriverBox, Node, NodeConfig, NodeEvent, NodeHandle, NodeRole};
use ipcz_node::router::{Handle as IpczHandle, NodeLinkId, RouterId};
use ipcz_node::session::{Session, SessionConfig, SessionEvent};
use ipcz_node::sim::{MemoryAnswer, SharedHeap, SimRegions};
use ipcz_wire::driver_object::{DriverObject, Transport};
use ipcz_wire::frame::FrameHeader;
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::message::Message;
use ipcz_wire::messages::{AcceptIntroduction, Body};
use ipcz_wire::types::{DriverObjectIndex, LinkSide, NodeName, NodeType};
use mojo_bridge::Attachments;
use mojo_bridge::proxy::{
    MAX_INTRODUCED_LINKS, Proxy, ProxyConfig, ProxyError, ProxyEvent, ProxyLink,
};
use mojo_invitation::ipcz::PrimaryBuffer;
use mojo_legacy_node::node::{Handle, PortRef};
use mojo_legacy_node::ports::names;
use mojo_legacy_node::session::{AttachmentName, ClientConfig, ClientSession, Link};
use mojo_legacy_wire::Profile;
use mojo_wire_kit::{Guid, SeededRandom};

const MAX_ROUNDS: usize = 10_000;
const HOST: NodeName = NodeName { high: 0x40, low: 1 };
const C: NodeName = NodeName { high: 0x70, low: 7 };

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

/// Which node a memory or introduction event came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Host,
    C,
    Proxy,
}

struct World {
    host: Node<SharedHeap>,
    /// The host's link to the proxy and to C.
    host_proxy: NodeLinkId,
    host_c: NodeLinkId,
    /// The host's initial portal 1 to the proxy (attachment 0) and to C.
    host_attachment: RouterId,
    host_to_c: RouterId,
    c: Node<SharedHeap>,
    c_host: NodeLinkId,
    c_from_host: RouterId,
    proxy: Proxy<SharedHeap>,
    client: ClientSession,
    regions: SimRegions,
    to_host: Stream,
    to_proxy: HashMap<ProxyLink, Stream>,
    to_client: [Stream; 2],
    /// C's links and what arrives on each.
    to_c: HashMap<NodeLinkId, Stream>,
    /// Introduced links paired: the proxy's link and C's end of it.
    pairs: Vec<(ProxyLink, NodeLinkId)>,
    /// One end of an introduction waiting for the other, by buffer GUID.
    half: HashMap<Guid, Result<ProxyLink, NodeLinkId>>,
    /// Links the proxy asked to adopt (AdoptIntroduced), in order.
    offered: Vec<(ProxyLink, NodeName)>,
    /// Frames the host received (from anyone) so far.
    host_frames: usize,
    /// Whether the driver's part answers the proxy's offers.
    answer_offers: bool,
    /// The proxy's fatal error, once one happened.
    error: Option<ProxyError>,
}

/// The host, the proxy and the client connected (the host as a session),
/// then the host's node taken out of the session and linked to C.
fn world() -> World {
    let primary = SharedHeap::new(PRIMARY_BUFFER_SIZE);
    let buffer = PrimaryBuffer::new(
        PRIMARY_BUFFER_SIZE as u32,
        Guid { high: 1, low: 1 },
        dev_null(),
    );
    let config = SessionConfig {
        initial_portals: 2,
        node: NodeConfig {
            role: NodeRole::Broker,
            ..NodeConfig::default()
        },
        ..SessionConfig::default()
    };
    let mut host = Box::new(
        Session::broker(
            HOST,
            config,
            buffer,
            primary.clone(),
            &mut SeededRandom::new(1),
        )
        .unwrap(),
    );
    let mut proxy = Proxy::new(
        &ProxyConfig {
            attachments: Attachments::Named(b"pipe!".to_vec()),
            legacy_profile: Profile::Libchrome,
            legacy_name: names::node_name(0x50, 2),
            inherit_broker: false,
        },
        dev_null(),
        SeededRandom::new(2),
    )
    .unwrap();
    let probe: mojo_legacy_node::session::AccessProbe = Box::new(|_| None);
    let mut client = ClientSession::new(
        ClientConfig {
            profile: Profile::Libchrome,
            local_name: names::node_name(0x60, 3),
            attachments: vec![AttachmentName::from_bytes(b"pipe!".to_vec()).unwrap()],
        },
        SeededRandom::new(3),
        probe,
    )
    .unwrap();
    // Until the host's session is up: only the handshakes move.
    let mut to_host = Stream::default();
    let mut to_proxy: [Stream; 3] = Default::default();
    let mut to_client: [Stream; 2] = Default::default();
    let mut portals = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let mut moved = false;
        while let Some(t) = host.poll_transmit() {
            to_proxy[0].push(t.bytes, t.fds);
            moved = true;
        }
        while let Some(t) = proxy.poll_transmit() {
            moved = true;
            match t.link {
                ProxyLink::Host => to_host.push(t.bytes, t.fds),
                ProxyLink::ClientBootstrap => to_client[0].push(t.bytes, t.fds),
                ProxyLink::ClientNodeChannel => to_client[1].push(t.bytes, t.fds),
                other => panic!("a frame for {other}"),
            }
        }
        while let Some(t) = client.poll_transmit() {
            moved = true;
            let slot = if t.link == Link::Bootstrap { 1 } else { 2 };
            to_proxy[slot].push(t.bytes, t.fds);
        }
        while client.poll_adopt().is_some() {}
        while let Some(e) = host.poll_event() {
            moved = true;
            if let SessionEvent::Established { portals: p, .. } = e {
                portals = p;
            }
        }
        while let Some(e) = proxy.poll_event() {
            moved = true;
            match e {
                ProxyEvent::MapPrimaryBuffer { .. } => {
                    proxy.primary_buffer_mapped(primary.clone()).unwrap()
                }
                ProxyEvent::PairingOpened { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        if !to_host.bytes.is_empty() {
            let used = host
                .handle_stream(&to_host.bytes, &mut to_host.fds)
                .unwrap();
            moved |= used > 0;
            to_host.bytes.drain(..used);
        }
        for (slot, link) in [
            (0, ProxyLink::Host),
            (1, ProxyLink::ClientBootstrap),
            (2, ProxyLink::ClientNodeChannel),
        ] {
            let s = &mut to_proxy[slot];
            if !s.bytes.is_empty() {
                let used = proxy.handle_stream(link, &s.bytes, &mut s.fds).unwrap();
                moved |= used > 0;
                s.bytes.drain(..used);
            }
        }
        for (slot, link) in [(0, Link::Bootstrap), (1, Link::NodeChannel)] {
            let s = &mut to_client[slot];
            if !s.bytes.is_empty() {
                let used = client.handle_stream(link, &s.bytes, &mut s.fds).unwrap();
                moved |= used > 0;
                s.bytes.drain(..used);
            }
        }
        if !moved {
            break;
        }
    }
    assert!(host.is_established() && client.is_established());
    assert!(proxy.bridge().is_some());
    let parts = host.into_parts().expect("the host's session runs");
    assert!(parts.transmits.is_empty() && to_host.bytes.is_empty());
    let mut host = parts.node;
    let host_proxy = parts.link;
    // C: a non-broker with a link to the host only.
    let mut c = Node::new(C, NodeConfig::default());
    let link_memory = SharedHeap::new(PRIMARY_BUFFER_SIZE);
    let host_c = host
        .add_link(
            LinkParams::new(HOST, C, LinkSide::A, link_memory.clone())
                .initializing_primary_buffer(),
        )
        .unwrap();
    let c_host = c
        .add_link(LinkParams::new(C, HOST, LinkSide::B, link_memory).toward_broker())
        .unwrap();
    let host_to_c = host.open_initial_portals(host_c, 2, 2).unwrap()[1];
    let c_from_host = c.open_initial_portals(c_host, 2, 2).unwrap()[1];
    let [host_stream, bootstrap, node_channel] = to_proxy;
    let mut w = World {
        host,
        host_proxy,
        host_c,
        host_attachment: portals[1].unwrap(),
        host_to_c,
        c,
        c_host,
        c_from_host,
        proxy,
        client,
        regions: SimRegions::default(),
        to_host,
        to_proxy: HashMap::from([
            (ProxyLink::Host, host_stream),
            (ProxyLink::ClientBootstrap, bootstrap),
            (ProxyLink::ClientNodeChannel, node_channel),
        ]),
        to_client,
        to_c: HashMap::from([(c_host, Stream::default())]),
        pairs: Vec::new(),
        half: HashMap::new(),
        offered: Vec::new(),
        host_frames: 0,
        answer_offers: true,
        error: None,
    };
    w.run();
    w
}

impl World {
    fn node(&mut self, who: Who) -> &mut Node<SharedHeap> {
        match who {
            Who::Host => &mut self.host,
            Who::C => &mut self.c,
            Who::Proxy => self.proxy.ipcz_mut().unwrap(),
        }
    }

    fn new_region(&mut self, size: usize) -> (SharedHeap, DriverBox) {
        self.regions.new_region(size).unwrap()
    }

    fn node_event(&mut self, who: Who, event: NodeEvent) {
        let node = match who {
            Who::Host => &mut self.host,
            Who::C => &mut self.c,
            Who::Proxy => self.proxy.ipcz_mut().unwrap(),
        };
        let event = match self.regions.answer(node, event) {
            MemoryAnswer::NotMemory(event) => event,
            MemoryAnswer::RegionFailed(e) => panic!("no region: {e}"),
            _ => return,
        };
        match event {
            NodeEvent::CreateIntroduction { requester, target } => {
                assert_eq!(who, Who::Host);
                let (region, first) = self.new_region(PRIMARY_BUFFER_SIZE);
                let second = DriverBox::new(*first.object(), vec![dev_null()]).unwrap();
                let transport = || {
                    DriverBox::new(
                        DriverObject::Transport(Transport::default()),
                        vec![dev_null()],
                    )
                    .unwrap()
                };
                self.host
                    .introduce(
                        requester,
                        target,
                        region,
                        [first, second],
                        [transport(), transport()],
                    )
                    .unwrap();
            }
            NodeEvent::IntroductionOffered {
                name,
                transport,
                memory,
                ..
            } => {
                assert_eq!(who, Who::C, "the proxy's offers become AdoptIntroduced");
                let DriverObject::SharedBuffer(b) = *memory.object() else {
                    panic!("a buffer");
                };
                drop((transport, memory));
                let region = self.regions.region(&b.guid).unwrap();
                let link = self.c.accept_introduction(name, region).unwrap();
                self.to_c.insert(link, Stream::default());
                self.pair(b.guid, Err(link));
            }
            NodeEvent::LinkDropped { link, error, .. } => {
                panic!("{who:?} dropped link {link:?}: {error}")
            }
            _ => {}
        }
    }

    /// One end of the introduction with buffer `guid` is set up.
    fn pair(&mut self, guid: Guid, end: Result<ProxyLink, NodeLinkId>) {
        match (self.half.remove(&guid), end) {
            (None, end) => {
                self.half.insert(guid, end);
            }
            (Some(Ok(p)), Err(c)) | (Some(Err(c)), Ok(p)) => self.pairs.push((p, c)),
            (Some(a), b) => panic!("both ends on one node: {a:?} {b:?}"),
        }
    }

    fn proxy_link_of(&self, c_link: NodeLinkId) -> Option<ProxyLink> {
        self.pairs
            .iter()
            .find(|(_, c)| *c == c_link)
            .map(|(p, _)| *p)
    }

    fn c_link_of(&self, link: ProxyLink) -> Option<NodeLinkId> {
        self.pairs.iter().find(|(p, _)| *p == link).map(|(_, c)| *c)
    }

    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(t) = self.host.poll_transmit() {
            moved = true;
            if t.link == self.host_proxy {
                self.to_proxy
                    .entry(ProxyLink::Host)
                    .or_default()
                    .push(t.bytes, t.fds);
            } else if t.link == self.host_c {
                self.to_c
                    .entry(self.c_host)
                    .or_default()
                    .push(t.bytes, t.fds);
            }
        }
        while let Some(t) = self.c.poll_transmit() {
            moved = true;
            if t.link == self.c_host {
                self.host_frames += 1;
                self.host
                    .handle_frame(self.host_c, &t.bytes, t.fds)
                    .unwrap();
            } else if let Some(p) = self.proxy_link_of(t.link) {
                self.to_proxy.entry(p).or_default().push(t.bytes, t.fds);
            }
        }
        while let Some(t) = self.proxy.poll_transmit() {
            moved = true;
            match t.link {
                ProxyLink::Host => self.to_host.push(t.bytes, t.fds),
                ProxyLink::ClientBootstrap => self.to_client[0].push(t.bytes, t.fds),
                ProxyLink::ClientNodeChannel => self.to_client[1].push(t.bytes, t.fds),
                ProxyLink::Referrer => panic!("no referrer"),
                link @ ProxyLink::Introduced(_) => {
                    let c = self.c_link_of(link).expect("adopted and paired");
                    self.to_c.entry(c).or_default().push(t.bytes, t.fds);
                }
            }
        }
        while let Some(t) = self.client.poll_transmit() {
            moved = true;
            let link = if t.link == Link::Bootstrap {
                ProxyLink::ClientBootstrap
            } else {
                ProxyLink::ClientNodeChannel
            };
            self.to_proxy.entry(link).or_default().push(t.bytes, t.fds);
        }
        while self.client.poll_adopt().is_some() {}
        for who in [Who::Host, Who::C] {
            while let Some(e) = self.node(who).poll_event() {
                moved = true;
                self.node_event(who, e);
            }
        }
        while let Some(event) = self.proxy.poll_event() {
            moved = true;
            match event {
                ProxyEvent::Memory(e) => self.node_event(Who::Proxy, e),
                ProxyEvent::AdoptIntroduced {
                    link,
                    node,
                    fd,
                    buffer,
                    buffer_fds,
                } => {
                    assert_eq!(buffer_fds.len(), 1);
                    self.offered.push((link, node));
                    if !self.answer_offers {
                        continue;
                    }
                    drop((fd, buffer_fds));
                    let region = self.regions.region(&buffer.guid).unwrap();
                    self.proxy.introduction_mapped(link, region).unwrap();
                    self.proxy.introduced_adopted(link);
                    self.pair(buffer.guid, Ok(link));
                }
                ProxyEvent::PairingOpened { .. } | ProxyEvent::PairingClosed { .. } => {}
                ProxyEvent::Finished => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        if !self.to_host.bytes.is_empty() {
            let s = &mut self.to_host;
            let used = self
                .host
                .handle_stream(self.host_proxy, &s.bytes, &mut s.fds)
                .unwrap();
            moved |= used > 0;
            self.host_frames += usize::from(used > 0);
            s.bytes.drain(..used);
        }
        let links: Vec<ProxyLink> = self.to_proxy.keys().copied().collect();
        for link in links {
            let s = self.to_proxy.get_mut(&link).unwrap();
            if s.bytes.is_empty() || self.error.is_some() {
                continue;
            }
            match self.proxy.handle_stream(link, &s.bytes, &mut s.fds) {
                Ok(used) => {
                    moved |= used > 0;
                    s.bytes.drain(..used);
                }
                Err(e) => {
                    self.error = Some(e);
                    return true;
                }
            }
        }
        let links: Vec<NodeLinkId> = self.to_c.keys().copied().collect();
        for link in links {
            let s = self.to_c.get_mut(&link).unwrap();
            if !s.bytes.is_empty() {
                let used = self.c.handle_stream(link, &s.bytes, &mut s.fds).unwrap();
                moved |= used > 0;
                s.bytes.drain(..used);
            }
        }
        for (slot, link) in [(0, Link::Bootstrap), (1, Link::NodeChannel)] {
            let s = &mut self.to_client[slot];
            if !s.bytes.is_empty() {
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
            if !self.step() || self.error.is_some() {
                return;
            }
        }
        panic!("never idle");
    }

    fn client_attachment(&self) -> PortRef {
        self.client.attachments().unwrap()[0]
    }

    fn client_read(&mut self, end: PortRef) -> Vec<(Vec<u8>, Vec<Handle>)> {
        let mut out = Vec::new();
        while let Ok(Some(m)) = self.client.node().read_message(end) {
            out.push(m);
        }
        out
    }

    fn c_read(&mut self, portal: RouterId) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Ok(Some(p)) = self.c.get(portal) {
            out.push(p.data);
        }
        out
    }

    /// The host makes a portal pair, sends one end to C and the other to
    /// the proxy (which hands it to the client as a pipe): C's portal and
    /// the client's pipe end.
    fn split_pair_between_c_and_client(&mut self) -> (RouterId, PortRef) {
        let (ours, theirs) = self.host.create_portal_pair();
        let to_c = self.host_to_c;
        self.host
            .put(to_c, b"to C".to_vec(), vec![IpczHandle::Portal(ours)])
            .unwrap();
        self.run();
        let from_host = self.c_from_host;
        let mut got = Vec::new();
        while let Ok(Some(p)) = self.c.get(from_host) {
            got.push(p);
        }
        assert_eq!(got.len(), 1);
        let Some(NodeHandle::Portal(at_c)) = got.pop().unwrap().handles.pop() else {
            panic!("a portal at C");
        };
        let attachment = self.host_attachment;
        self.host
            .put(
                attachment,
                b"to the client".to_vec(),
                vec![IpczHandle::Portal(theirs)],
            )
            .unwrap();
        self.run();
        let end = self.client_attachment();
        let mut got = self.client_read(end);
        assert_eq!(got.len(), 1);
        let Some(Handle::MessagePipe(at_client)) = got.pop().unwrap().1.into_iter().next() else {
            panic!("a pipe at the client");
        };
        (at_c, at_client)
    }
}

#[test]
fn the_host_introduces_the_proxy_to_a_third_node_and_parcels_go_directly() {
    let mut w = world();
    let host_routers = w.host.router_count();
    let (at_c, at_client) = w.split_pair_between_c_and_client();

    // The host introduced the proxy and C; the proxy's link is up.
    assert_eq!(
        w.offered,
        [(ProxyLink::Introduced(0), C)],
        "one offer adopted"
    );
    assert_eq!(w.pairs.len(), 1, "both ends of the introduction are set up");
    assert_eq!(w.proxy.introduced_link_count(), 1);
    assert!(w.proxy.ipcz_mut().unwrap().link_to(C).is_some());
    // The route reduced: nothing of it is left on the host.
    assert_eq!(w.host.router_count(), host_routers);
    assert_eq!(w.host.pending_introduction_count(), 0);
    assert_eq!(w.proxy.ipcz_mut().unwrap().pending_introduction_count(), 0);

    // Both ways, with the host seeing none of it.
    let mark = w.host_frames;
    for i in 0..3 {
        w.c.put(at_c, format!("from C {i}").into_bytes(), Vec::new())
            .unwrap();
        w.client
            .node()
            .write_message(
                at_client,
                format!("from the client {i}").as_bytes(),
                Vec::new(),
            )
            .unwrap();
        w.run();
    }
    let got: Vec<Vec<u8>> = w.client_read(at_client).into_iter().map(|m| m.0).collect();
    assert_eq!(
        got,
        [
            b"from C 0".to_vec(),
            b"from C 1".to_vec(),
            b"from C 2".to_vec()
        ]
    );
    assert_eq!(
        w.c_read(at_c),
        [
            b"from the client 0".to_vec(),
            b"from the client 1".to_vec(),
            b"from the client 2".to_vec()
        ]
    );
    assert_eq!(w.host_frames, mark, "the host carried none of it");
    let t = w.proxy.totals();
    assert!(t.introduced.bytes_in > 0 && t.introduced.bytes_out > 0);
    assert!(w.error.is_none());
}

#[test]
fn losing_an_introduced_link_breaks_only_the_routes_over_it() {
    let mut w = world();
    let (at_c, at_client) = w.split_pair_between_c_and_client();
    let link = w.offered[0].0;
    let c_link = w.c_link_of(link).unwrap();
    w.c.put(at_c, b"before".to_vec(), Vec::new()).unwrap();
    w.run();

    // The socket closes on both sides.
    w.proxy.handle_link_closed(link).unwrap();
    w.c.link_lost(c_link);
    w.to_c.remove(&c_link);
    w.run();
    assert_eq!(w.proxy.introduced_link_count(), 0);
    assert!(w.proxy.ipcz_mut().unwrap().link_to(C).is_none());
    // What arrived was forwarded; then the pipe is broken at the client.
    let got = w.client_read(at_client);
    assert_eq!(got.len(), 1);
    assert!(
        w.client.node().read_message(at_client).is_err(),
        "peer closed"
    );
    assert!(w.c.status(at_c).unwrap().peer_closed);

    // The attachment through the host still works both ways.
    let attachment = w.host_attachment;
    w.host
        .put(attachment, b"still here".to_vec(), Vec::new())
        .unwrap();
    let end = w.client_attachment();
    w.client
        .node()
        .write_message(end, b"me too", Vec::new())
        .unwrap();
    w.run();
    assert_eq!(w.client_read(end)[0].0, b"still here");
    assert_eq!(w.host.get(attachment).unwrap().unwrap().data, b"me too");
    assert!(w.error.is_none() && !w.proxy.is_finished());
}

#[test]
fn a_protocol_violation_on_an_introduced_link_ends_the_run_as_on_the_host_link() {
    let mut w = world();
    let _ = w.split_pair_between_c_and_client();
    let link = w.offered[0].0;
    // A frame header claiming more bytes than any frame may have.
    let mut garbage = vec![0u8; 16];
    garbage[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    w.to_proxy.get_mut(&link).unwrap().push(garbage, Vec::new());
    w.run();
    let error = w.error.take().expect("a protocol error");
    assert!(
        matches!(error, ProxyError::Introduced { link: l, node, .. } if l == link && node == C),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("introduced link 0"),
        "{error}"
    );
    // The node dropped that link (§2.7) before the proxy gave up.
    assert!(w.proxy.ipcz_mut().unwrap().link_to(C).is_none());
}

/// An unrequested AcceptIntroduction of node `name` from the host, with
/// `transport` as its socket.
fn offer_frame(w: &mut World, name: NodeName) -> (Vec<u8>, Guid) {
    let (region, memory) = w.new_region(PRIMARY_BUFFER_SIZE);
    NodeLinkMemory::initialize_primary_buffer(&region).unwrap();
    let DriverObject::SharedBuffer(b) = *memory.object() else {
        unreachable!()
    };
    let mut m = Message::new(
        0,
        Body::AcceptIntroduction(AcceptIntroduction {
            name,
            link_side: LinkSide::B,
            remote_node_type: NodeType::NORMAL,
            padding: 0,
            remote_protocol_version: 0,
            transport: DriverObjectIndex(0),
            memory: DriverObjectIndex(1),
            remote_features: None,
        }),
    );
    m.push_object(DriverObject::Transport(Transport::default()));
    m.push_object(DriverObject::SharedBuffer(b));
    let mut out = Vec::new();
    FrameHeader::new(2, 0)
        .encode_frame(&[], &m, &mut out)
        .unwrap();
    (out, b.guid)
}

/// Whether the peer of `ours` (a socket pair end handed away) is closed.
fn closed(peer: &mut UnixStream) -> bool {
    peer.set_nonblocking(true).unwrap();
    let mut buf = [0; 1];
    matches!(peer.read(&mut buf), Ok(0))
}

#[test]
fn offers_beyond_the_limit_are_a_typed_error_and_close_their_fds() {
    let mut w = world();
    let mut peers = Vec::new();
    for i in 0..=MAX_INTRODUCED_LINKS {
        let name = NodeName {
            high: 0x90,
            low: i as u64 + 1,
        };
        let (frame, _) = offer_frame(&mut w, name);
        let (transport, transport_peer) = UnixStream::pair().unwrap();
        let (memory, memory_peer) = UnixStream::pair().unwrap();
        peers.push((transport_peer, memory_peer));
        w.to_proxy
            .get_mut(&ProxyLink::Host)
            .unwrap()
            .push(frame, vec![transport.into(), memory.into()]);
        w.run();
        if i < MAX_INTRODUCED_LINKS {
            assert!(w.error.is_none(), "offer {i}: {:?}", w.error);
        }
    }
    let error = w.error.take().expect("the last offer is refused");
    assert!(
        matches!(
            error,
            ProxyError::TooManyIntroducedLinks { limit, node }
                if limit == MAX_INTRODUCED_LINKS && node.low == MAX_INTRODUCED_LINKS as u64 + 1
        ),
        "{error:?}"
    );
    assert_eq!(w.proxy.introduced_link_count(), MAX_INTRODUCED_LINKS);
    assert_eq!(w.offered.len(), MAX_INTRODUCED_LINKS);
    // The refused offer's fds are closed at once (the others went to the
    // driver, which here drops them).
    let (mut t, mut m) = peers.pop().unwrap();
    assert!(closed(&mut t) && closed(&mut m), "the refused offer's fds");
    assert_eq!(w.proxy.ipcz_mut().unwrap().received_fds_alive(), 0);
    drop(w);
    for (mut t, mut m) in peers {
        assert!(closed(&mut t) && closed(&mut m));
    }
}
