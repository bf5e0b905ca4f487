//! Two ipcz sessions (broker and non-broker) over a real socket pair, each
//! under its own `mojo_driver::Driver`, with a real memfd primary buffer and
//! real mappings: parcels both ways, a moved portal, parcel data in shared
//! memory (block buffers created, sent and mapped), then nothing left.

use std::time::Duration;

use ipcz_node::memory::MemoryOptions;
use ipcz_node::node::{NodeConfig, NodeEvent, NodeHandle, ParcelDataPlacement};
use ipcz_node::router::{Handle, RouterId};
use ipcz_node::session::{SessionConfig, SessionEvent};
use ipcz_wire::types::NodeName;
use mojo_driver::Driver;
use mojo_platform_channel::socketpair;
use mojo_test_peers::ipcz_core::{CoreEvent, SessionCore};
use mojo_wire_kit::SeededRandom;

/// Most driver turns a test waits for a condition (each turn waits at most
/// a few milliseconds, so this bounds a hang, not a timing assumption).
const MAX_TURNS: usize = 20_000;

struct Peer {
    driver: Driver,
    core: SessionCore,
    portals: Vec<Option<RouterId>>,
    readable: usize,
}

impl Peer {
    fn turn(&mut self) {
        self.driver
            .turn(&mut self.core, Some(Duration::from_millis(2)))
            .expect("turn");
        while let Some(event) = self.core.poll_event() {
            match event {
                CoreEvent::Session(SessionEvent::Established { portals, .. }) => {
                    self.portals = portals
                }
                CoreEvent::Session(SessionEvent::Node(NodeEvent::Readable { .. })) => {
                    self.readable += 1
                }
                CoreEvent::Session(SessionEvent::Node(NodeEvent::PeerClosed { .. })) => {}
                other => panic!("unexpected event {other:?}"),
            }
        }
    }

    fn portal(&self, i: usize) -> RouterId {
        self.portals[i].expect("open portal")
    }
}

fn turn_until(a: &mut Peer, b: &mut Peer, mut done: impl FnMut(&mut Peer, &mut Peer) -> bool) {
    for _ in 0..MAX_TURNS {
        if done(a, b) {
            return;
        }
        a.turn();
        b.turn();
    }
    panic!("condition not reached in {MAX_TURNS} turns");
}

fn idle(p: &Peer) -> bool {
    p.driver.link_stats(p.core.link()).is_some_and(|s| {
        s.pending_output_bytes == 0 && s.buffered_input_bytes == 0 && s.received_fds == 0
    })
}

fn peers(config: SessionConfig) -> (Peer, Peer) {
    let (host_end, client_end) = socketpair().expect("socketpair");
    let mut host_driver = Driver::new().expect("epoll");
    let host_link = host_driver.add_link(host_end).expect("add");
    let mut client_driver = Driver::new().expect("epoll");
    let client_link = client_driver.add_link(client_end).expect("add");
    let mut random = SeededRandom::new(9);
    let host = SessionCore::broker(host_link, NodeName { high: 5, low: 5 }, config, &mut random)
        .expect("broker");
    let client = SessionCore::non_broker(client_link, config).expect("non-broker");
    let mk = |driver, core| Peer {
        driver,
        core,
        portals: Vec::new(),
        readable: 0,
    };
    (mk(host_driver, host), mk(client_driver, client))
}

fn get_data(p: &mut Peer, portal: RouterId) -> Option<Vec<u8>> {
    let parcel = p.core.node_mut()?.get(portal).expect("get")?;
    Some(parcel.data)
}

fn assert_nothing_left(p: &Peer) {
    let node = p.core.node().expect("node");
    assert_eq!(node.router_count(), 0, "routers");
    assert_eq!(node.sublink_count(), 0, "sublinks");
    assert_eq!(node.queued_parcel_count(), 0, "parcels");
    assert_eq!(node.held_parcel_count(), 0, "held");
    assert_eq!(node.received_fds_alive(), 0, "fds");
    assert!(!node.has_pending());
    assert_eq!(p.core.pending_fds(), 0, "unclaimed fds");
    assert!(p.core.error().is_none(), "{:?}", p.core.error());
}

#[test]
fn sessions_over_a_socket_pair_exchange_parcels_and_a_portal() {
    let config = SessionConfig {
        initial_portals: 3,
        ..SessionConfig::default()
    };
    let (mut host, mut client) = peers(config);
    turn_until(&mut host, &mut client, |h, c| {
        h.portals.len() == 3 && c.portals.len() == 3
    });
    assert!(host.portals[0].is_none() && client.portals[0].is_none());

    for i in 1..3 {
        let (hp, cp) = (host.portal(i), client.portal(i));
        let n = host.core.node_mut().expect("node");
        n.put(hp, format!("to client {i}").into_bytes(), Vec::new())
            .expect("put");
        let n = client.core.node_mut().expect("node");
        n.put(cp, format!("to host {i}").into_bytes(), Vec::new())
            .expect("put");
    }
    let (keep, send) = client.core.node_mut().expect("node").create_portal_pair();
    let cp1 = client.portal(1);
    client
        .core
        .node_mut()
        .expect("node")
        .put(cp1, b"a portal".to_vec(), vec![NodeHandle::Portal(send)])
        .expect("put");

    let mut got_host = vec![Vec::new(); 3];
    let mut got_client = vec![Vec::new(); 3];
    let mut arrived = None;
    turn_until(&mut host, &mut client, |h, c| {
        for i in 1..3 {
            let hp = h.portal(i);
            while let Some(parcel) = h.core.node_mut().expect("node").get(hp).expect("get") {
                let mut parcel = parcel;
                if let Some(Handle::Portal(p)) = parcel.handles.pop() {
                    arrived = Some(p);
                }
                got_host[i].push(parcel.data);
            }
            let cp = c.portal(i);
            while let Some(data) = get_data(c, cp) {
                got_client[i].push(data);
            }
        }
        got_host[1].len() == 2
            && got_host[2].len() == 1
            && got_client[1].len() == 1
            && got_client[2].len() == 1
    });
    assert_eq!(
        got_host[1],
        vec![b"to host 1".to_vec(), b"a portal".to_vec()]
    );
    assert_eq!(got_host[2], vec![b"to host 2".to_vec()]);
    assert_eq!(got_client[1], vec![b"to client 1".to_vec()]);
    assert_eq!(got_client[2], vec![b"to client 2".to_vec()]);

    let arrived = arrived.expect("the moved portal");
    host.core
        .node_mut()
        .expect("node")
        .put(arrived, b"over the moved portal".to_vec(), Vec::new())
        .expect("put");
    let mut over = None;
    turn_until(&mut host, &mut client, |_, c| {
        over = over.take().or_else(|| get_data(c, keep));
        over.is_some()
    });
    assert_eq!(over.as_deref(), Some(&b"over the moved portal"[..]));

    host.core
        .node_mut()
        .expect("node")
        .close(arrived)
        .expect("close");
    client
        .core
        .node_mut()
        .expect("node")
        .close(keep)
        .expect("close");
    for i in 1..3 {
        let hp = host.portal(i);
        host.core
            .node_mut()
            .expect("node")
            .close(hp)
            .expect("close");
        let cp = client.portal(i);
        client
            .core
            .node_mut()
            .expect("node")
            .close(cp)
            .expect("close");
    }
    turn_until(&mut host, &mut client, |h, c| {
        h.core.node().is_some_and(|n| n.router_count() == 0)
            && c.core.node().is_some_and(|n| n.router_count() == 0)
            && idle(h)
            && idle(c)
    });
    assert!(host.readable > 0 && client.readable > 0);
    assert_nothing_left(&host);
    assert_nothing_left(&client);
}

#[test]
fn parcel_data_in_shared_memory_makes_both_sides_add_block_buffers() {
    let config = SessionConfig {
        initial_portals: 2,
        node: NodeConfig {
            parcel_data: ParcelDataPlacement::SharedMemory,
            ..NodeConfig::default()
        },
        memory: MemoryOptions {
            fixed_parcel_capacity: false,
        },
        ..SessionConfig::default()
    };
    let (mut host, mut client) = peers(config);
    turn_until(&mut host, &mut client, |h, c| {
        h.portals.len() == 2 && c.portals.len() == 2
    });
    // Enough data that the primary buffer's blocks run out on each side.
    const PARCELS: usize = 64;
    let payload = |i: usize| vec![i as u8; 4096];
    let (hp, cp) = (host.portal(1), client.portal(1));
    let mut got_host = Vec::new();
    let mut got_client = Vec::new();
    // All at once, before anything is read: the fragments stay allocated.
    for i in 0..PARCELS {
        let n = host.core.node_mut().expect("node");
        n.put(hp, payload(i), Vec::new()).expect("put");
        let n = client.core.node_mut().expect("node");
        n.put(cp, payload(i), Vec::new()).expect("put");
    }
    turn_until(&mut host, &mut client, |h, c| {
        while let Some(d) = get_data(h, hp) {
            got_host.push(d);
        }
        while let Some(d) = get_data(c, cp) {
            got_client.push(d);
        }
        got_host.len() == PARCELS && got_client.len() == PARCELS
    });
    for (i, (a, b)) in got_host.iter().zip(&got_client).enumerate() {
        assert_eq!(a, &payload(i));
        assert_eq!(b, &payload(i));
    }
    assert!(host.core.buffers_created() > 0, "the host added a buffer");
    assert!(
        client.core.buffers_created() > 0,
        "the client added a buffer"
    );
    assert!(host.core.buffers_mapped() > 0 && client.core.buffers_mapped() > 0);

    host.core
        .node_mut()
        .expect("node")
        .close(hp)
        .expect("close");
    client
        .core
        .node_mut()
        .expect("node")
        .close(cp)
        .expect("close");
    turn_until(&mut host, &mut client, |h, c| {
        h.core.node().is_some_and(|n| n.router_count() == 0)
            && c.core.node().is_some_and(|n| n.router_count() == 0)
            && idle(h)
            && idle(c)
    });
    assert_nothing_left(&host);
    assert_nothing_left(&client);
}

#[test]
fn a_peer_hanging_up_disconnects_the_portals() {
    let (mut host, mut client) = peers(SessionConfig::default());
    turn_until(&mut host, &mut client, |h, c| {
        h.portals.len() == 2 && c.portals.len() == 2
    });
    drop(host);
    let mut closed = false;
    for _ in 0..MAX_TURNS {
        client
            .driver
            .turn(&mut client.core, Some(Duration::from_millis(2)))
            .expect("turn");
        while let Some(event) = client.core.poll_event() {
            closed |= matches!(event, CoreEvent::LinkClosed(_));
        }
        if closed {
            break;
        }
    }
    assert!(closed && client.core.is_closed());
    let cp = client.portal(1);
    let status = client
        .core
        .node()
        .expect("node")
        .status(cp)
        .expect("status");
    assert!(status.dead, "the peer is gone");
    client
        .core
        .node_mut()
        .expect("node")
        .close(cp)
        .expect("close");
    assert_eq!(client.core.node().expect("node").router_count(), 0);
}
