//! The driver's part of introductions (ipcz §7): a real `mojo_driver`
//! loop runs `ProxyCore` over real sockets and memfds, an in-process ipcz
//! broker host (a `Session` over a socket pair) introduces the proxy to a
//! third in-process node C, and the core must map the link's primary
//! buffer, adopt the new socket and carry C's frames over it, both ways.
//! No legacy client is needed: the route reduction is ipcz's alone.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use ipcz_node::link::LinkParams;
use ipcz_node::node::{DriverBox, Node, NodeConfig, NodeEvent, NodeHandle, NodeRole};
use ipcz_node::router::{Handle, RouterId};
use ipcz_node::session::{Session, SessionConfig, SessionEvent};
use ipcz_wire::driver_object::{DriverObject, SharedBuffer, Transport};
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::types::{LinkSide, NodeName};
use mojo_bridge::Attachments;
use mojo_bridge::proxy::{Proxy, ProxyConfig, ProxyLink};
use mojo_driver::Driver;
use mojo_invitation::ipcz::PrimaryBuffer;
use mojo_legacy_node::ports::names;
use mojo_legacy_wire::Profile;
use mojo_platform_channel::{
    Endpoint, Mapping, OsRandom, ReadOutcome, SharedMemoryRegion, socketpair,
};
use mojo_proxy::core::ProxyCore;
use mojo_wire_kit::{Guid, RegionMode, SeededRandom};

const HOST: NodeName = NodeName { high: 0x40, low: 1 };
const C: NodeName = NodeName { high: 0x70, low: 7 };

/// A socket end read into a stream buffer and an fd queue.
struct Peer {
    ep: Endpoint,
    fds: VecDeque<OwnedFd>,
    eof: bool,
}

impl Peer {
    fn new(ep: Endpoint) -> Self {
        Self {
            ep,
            fds: VecDeque::new(),
            eof: false,
        }
    }

    fn read(&mut self) {
        loop {
            match self.ep.read_available().unwrap() {
                ReadOutcome::Data { .. } => {}
                ReadOutcome::Eof => {
                    self.eof = true;
                    break;
                }
                _ => break,
            }
        }
        let n = self.ep.queued_fds();
        self.fds.extend(self.ep.take_fds(n).unwrap_or_default());
    }
}

fn region(size: usize, random: &mut OsRandom) -> (SharedMemoryRegion, Guid) {
    let region = SharedMemoryRegion::create(RegionMode::Unsafe, size, random).unwrap();
    let guid = Guid::from(region.guid());
    (region, guid)
}

fn buffer_box(guid: Guid, fd: OwnedFd) -> DriverBox {
    let object = DriverObject::SharedBuffer(SharedBuffer {
        buffer_size: PRIMARY_BUFFER_SIZE as u32,
        mode: RegionMode::Unsafe,
        guid,
    });
    DriverBox::new(object, vec![fd]).unwrap()
}

/// Answers a node's memory events with memfds, as the proxy's core does.
fn answer_memory(node: &mut Node<Mapping>, event: NodeEvent, random: &mut OsRandom) {
    match event {
        NodeEvent::CreateBlockBuffer {
            link,
            block_size,
            buffer_size,
        } => {
            let region =
                SharedMemoryRegion::create(RegionMode::Unsafe, buffer_size, random).unwrap();
            let mapping = region.map().unwrap();
            let object = DriverObject::SharedBuffer(SharedBuffer {
                buffer_size: buffer_size as u32,
                mode: RegionMode::Unsafe,
                guid: Guid::from(region.guid()),
            });
            let boxed = DriverBox::new(object, region.into_fds()).unwrap();
            node.provide_block_buffer(link, block_size, mapping, boxed)
                .unwrap();
        }
        NodeEvent::MapBlockBuffer {
            link, id, buffer, ..
        } => {
            let mapping = map_box(buffer);
            node.block_buffer_mapped(link, id, mapping).unwrap();
        }
        NodeEvent::LinkDropped { error, .. } => panic!("{} dropped a link: {error}", node.name()),
        _ => {}
    }
}

/// Maps a SharedBuffer box.
fn map_box(buffer: DriverBox) -> Mapping {
    let (object, fds) = buffer.into_parts();
    let DriverObject::SharedBuffer(b) = object else {
        panic!("a buffer")
    };
    SharedMemoryRegion::from_fds(b.mode, b.buffer_size as usize, u128::from(b.guid), fds)
        .unwrap()
        .trust_peer()
        .map()
        .unwrap()
}

#[test]
fn the_core_adopts_an_introduced_socket_and_carries_its_frames() {
    let mut random = OsRandom::new().unwrap();
    let mut driver = Driver::new().unwrap();
    let (host_ours, host_theirs) = socketpair().unwrap();
    let (client_ours, _client_theirs) = socketpair().unwrap();
    let host_link = driver.add_link(host_ours).unwrap();
    let bootstrap = driver.add_link(client_ours).unwrap();
    let (node_channel, client_end) = driver.new_link_pair().unwrap();
    let proxy = Proxy::new(
        &ProxyConfig {
            attachments: Attachments::Named(b"pipe!".to_vec()),
            legacy_profile: Profile::Libchrome,
            legacy_name: names::node_name(0x50, 2),
            inherit_broker: false,
        },
        client_end,
        OsRandom::new().unwrap(),
    )
    .unwrap();
    let mut core = ProxyCore::new(
        proxy,
        host_link,
        bootstrap,
        node_channel,
        OsRandom::new().unwrap(),
    );

    // The host: a broker session on its end of the socket.
    let (primary, guid) = region(PRIMARY_BUFFER_SIZE, &mut random);
    let mapping = primary.map().unwrap();
    let fd = primary.into_fds().pop().unwrap();
    let config = SessionConfig {
        initial_portals: 2,
        node: NodeConfig {
            role: NodeRole::Broker,
            ..NodeConfig::default()
        },
        ..SessionConfig::default()
    };
    let buffer = PrimaryBuffer::new(PRIMARY_BUFFER_SIZE as u32, guid, fd);
    let mut session = Box::new(
        Session::broker(HOST, config, buffer, mapping, &mut SeededRandom::new(1)).unwrap(),
    );
    let mut host_peer = Peer::new(host_theirs);
    let mut portals = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !session.is_established() || portals.is_empty() {
        assert!(Instant::now() < deadline, "the host's link never came up");
        while let Some(t) = session.poll_transmit() {
            host_peer.ep.send(t.bytes, t.fds).unwrap();
        }
        driver
            .turn(&mut core, Some(Duration::from_millis(5)))
            .unwrap();
        host_peer.read();
        let used = session
            .handle_stream(host_peer.ep.buffered(), &mut host_peer.fds)
            .unwrap();
        host_peer.ep.consume(used).unwrap();
        while let Some(e) = session.poll_event() {
            match e {
                SessionEvent::Established { portals: p, .. } => portals = p,
                SessionEvent::Node(e) => answer_memory(session.node_mut().unwrap(), e, &mut random),
                _ => {}
            }
        }
    }
    let parts = session.into_parts().expect("running");
    for t in parts.transmits {
        host_peer.ep.send(t.bytes, t.fds).unwrap();
    }
    let mut host = parts.node;
    let host_proxy = parts.link;
    let host_attachment = portals[1].unwrap();

    // C, linked to the host in memory.
    let (c_primary, _) = region(PRIMARY_BUFFER_SIZE, &mut random);
    let mut c = Node::new(C, NodeConfig::default());
    let host_c = host
        .add_link(
            LinkParams::new(HOST, C, LinkSide::A, c_primary.map().unwrap())
                .initializing_primary_buffer(),
        )
        .unwrap();
    let c_host = c
        .add_link(LinkParams::new(C, HOST, LinkSide::B, c_primary.map().unwrap()).toward_broker())
        .unwrap();
    let host_to_c = host.open_initial_portals(host_c, 2, 2).unwrap()[1];
    let c_from_host = c.open_initial_portals(c_host, 2, 2).unwrap()[1];

    // The host splits a pair between C and the proxy.
    let (ours, theirs) = host.create_portal_pair();
    host.put(host_to_c, b"to C".to_vec(), vec![Handle::Portal(ours)])
        .unwrap();
    host.put(
        host_attachment,
        b"to the proxy".to_vec(),
        vec![Handle::Portal(theirs)],
    )
    .unwrap();

    let mut c_peer: Option<(Peer, ipcz_node::router::NodeLinkId)> = None;
    let mut c_kept_end: Option<Endpoint> = None;
    let mut at_c: Option<RouterId> = None;
    let mut c_received = 0usize;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "no traffic over the introduced link"
        );
        // The host's node: to the proxy's socket, or to C in memory.
        while let Some(t) = host.poll_transmit() {
            if t.link == host_proxy {
                host_peer.ep.send(t.bytes, t.fds).unwrap();
            } else if t.link == host_c {
                c.handle_frame(c_host, &t.bytes, t.fds).unwrap();
            }
        }
        while let Some(t) = c.poll_transmit() {
            if t.link == c_host {
                host.handle_frame(host_c, &t.bytes, t.fds).unwrap();
            } else if let Some((peer, _)) = &mut c_peer {
                peer.ep.send(t.bytes, t.fds).unwrap();
            }
        }
        while let Some(e) = host.poll_event() {
            match e {
                NodeEvent::CreateIntroduction { requester, target } => {
                    let (memory, guid) = region(PRIMARY_BUFFER_SIZE, &mut random);
                    let mapping = memory.map().unwrap();
                    let fd = memory.into_fds().pop().unwrap();
                    let fd2 = fd.try_clone().unwrap();
                    // The socket between the proxy and C: one end goes to
                    // the proxy inside AcceptIntroduction, C keeps the other.
                    let (proxy_end, c_end) = socketpair().unwrap();
                    let proxy_fd = proxy_end.into_fd(true).ok().unwrap();
                    let placeholder = proxy_fd.try_clone().unwrap();
                    c_kept_end = Some(c_end);
                    let (first, second) = if requester == C {
                        (placeholder, proxy_fd)
                    } else {
                        (proxy_fd, placeholder)
                    };
                    let transport = |fd| {
                        DriverBox::new(DriverObject::Transport(Transport::default()), vec![fd])
                            .unwrap()
                    };
                    host.introduce(
                        requester,
                        target,
                        mapping,
                        [buffer_box(guid, fd), buffer_box(guid, fd2)],
                        [transport(first), transport(second)],
                    )
                    .unwrap();
                }
                e => answer_memory(&mut host, e, &mut random),
            }
        }
        while let Some(e) = c.poll_event() {
            match e {
                NodeEvent::IntroductionOffered { name, memory, .. } => {
                    let mapping = map_box(memory);
                    let link = c.accept_introduction(name, mapping).unwrap();
                    c_peer = Some((Peer::new(c_kept_end.take().unwrap()), link));
                }
                e => answer_memory(&mut c, e, &mut random),
            }
        }
        driver
            .turn(&mut core, Some(Duration::from_millis(5)))
            .unwrap();
        assert!(core.error().is_none(), "{:?}", core.error());
        host_peer.read();
        let used = host
            .handle_stream(host_proxy, host_peer.ep.buffered(), &mut host_peer.fds)
            .unwrap();
        host_peer.ep.consume(used).unwrap();
        if let Some((peer, link)) = &mut c_peer {
            peer.read();
            let before = peer.ep.buffered().len();
            let used = c
                .handle_stream(*link, peer.ep.buffered(), &mut peer.fds)
                .unwrap();
            peer.ep.consume(used).unwrap();
            c_received += usize::from(before > 0);
            assert!(!peer.eof, "the proxy closed the introduced socket");
        }
        if at_c.is_none()
            && let Ok(Some(mut p)) = c.get(c_from_host)
        {
            let Some(NodeHandle::Portal(portal)) = p.handles.pop() else {
                panic!("a portal at C");
            };
            at_c = Some(portal);
        }
        // Once the link is up, C writes on its portal: the parcel must go
        // over the introduced socket, and the proxy's frames come back.
        let introduced = core
            .links()
            .any(|(l, _)| matches!(l, ProxyLink::Introduced(_)));
        if introduced && let Some(portal) = at_c {
            let t = core.proxy().totals().introduced;
            if t.bytes_in > 0 && t.bytes_out > 0 && c_received > 0 {
                break;
            }
            if t.bytes_in == 0 {
                c.put(portal, b"from C".to_vec(), Vec::new()).unwrap();
            }
        }
    }
    assert_eq!(core.proxy().introduced_link_count(), 1);
    let proxy_name = core.proxy().bridge().expect("bridged").ipcz().name();
    assert!(c.link_to(proxy_name).is_some());
}
