//! In-memory simulation of two ipcz networks (a broker session and its
//! non-broker each) whose brokers connect to each other
//! ([`Session::connect_broker`], MojoIpcz's isolated invitations), over
//! simulated sockets routed by (session, socket).

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::types::NodeName;
use mojo_invitation::ipcz::PrimaryBuffer;
use mojo_wire_kit::{Guid, RegionMode, SeededRandom};

use super::*;
use crate::node::{DriverBox, NodeHandle, NodeRole};
use crate::router::Handle;
use crate::sim::SharedHeap;

const B1: usize = 0;
const C1: usize = 1;
const B2: usize = 2;
const C2: usize = 3;
/// Bounds a run that never goes idle (a bug), not a timing assumption.
const MAX_ROUNDS: usize = 100_000;

fn any_fd() -> OwnedFd {
    std::fs::File::open("/dev/null").expect("/dev/null").into()
}

#[derive(Default)]
struct Input {
    bytes: Vec<u8>,
    fds: VecDeque<OwnedFd>,
}

struct World {
    sessions: Vec<Session<SharedHeap>>,
    /// (session, socket) -> the other end's (session, socket).
    routes: BTreeMap<(usize, SocketId), (usize, SocketId)>,
    inputs: BTreeMap<(usize, SocketId), Input>,
    regions: BTreeMap<(u64, u64), SharedHeap>,
    next_guid: u64,
    /// Initial portals of each session's handshake link.
    portals: Vec<Vec<Option<RouterId>>>,
    /// Initial portals of each broker's link to the other broker.
    broker_portals: Vec<Vec<Option<RouterId>>>,
    failed: Vec<(usize, SocketId)>,
}

impl World {
    fn region(&mut self, size: usize) -> (SharedHeap, SharedBuffer) {
        self.next_guid += 1;
        let guid = Guid {
            high: 9,
            low: self.next_guid,
        };
        let heap = SharedHeap::new(size);
        self.regions.insert((guid.high, guid.low), heap.clone());
        let buffer = SharedBuffer {
            buffer_size: size as u32,
            mode: RegionMode::Unsafe,
            guid,
        };
        (heap, buffer)
    }

    fn primary(&mut self) -> (PrimaryBuffer, SharedHeap) {
        let (heap, buffer) = self.region(PRIMARY_BUFFER_SIZE);
        let primary = PrimaryBuffer::new(buffer.buffer_size, buffer.guid, any_fd());
        (primary, heap)
    }

    fn map(&self, buffer: &SharedBuffer) -> SharedHeap {
        self.regions[&(buffer.guid.high, buffer.guid.low)].clone()
    }

    /// Two networks: broker `high` 1 with its client, broker `high` 2 with
    /// its client; each broker a [`NodeRole::Broker`] node.
    fn two_networks() -> Self {
        let mut w = Self {
            sessions: Vec::new(),
            routes: BTreeMap::new(),
            inputs: BTreeMap::new(),
            regions: BTreeMap::new(),
            next_guid: 0,
            portals: vec![Vec::new(); 4],
            broker_portals: vec![Vec::new(); 4],
            failed: Vec::new(),
        };
        let config = SessionConfig {
            initial_portals: 2,
            node: NodeConfig {
                role: NodeRole::Broker,
                ..NodeConfig::default()
            },
            ..SessionConfig::default()
        };
        for high in [1, 2] {
            let (primary, heap) = w.primary();
            let name = NodeName { high, low: 1 };
            let mut random = SeededRandom::new(high);
            let broker = Session::broker(name, config, primary, heap, &mut random).unwrap();
            let client_config = SessionConfig {
                node: NodeConfig::default(),
                ..config
            };
            let client = Session::non_broker(client_config).unwrap();
            let b = w.sessions.len();
            w.sessions.push(broker);
            w.sessions.push(client);
            w.route((b, SocketId::HANDSHAKE), (b + 1, SocketId::HANDSHAKE));
        }
        w.run();
        w
    }

    fn route(&mut self, a: (usize, SocketId), b: (usize, SocketId)) {
        self.routes.insert(a, b);
        self.routes.insert(b, a);
    }

    /// Both brokers call `connect_broker`; their sockets are wired.
    fn connect_brokers(&mut self, portals: [u32; 2]) {
        let (p1, h1) = self.primary();
        let (p2, h2) = self.primary();
        let s1 = self.sessions[B1]
            .connect_broker(p1, h1, portals[0])
            .unwrap();
        let s2 = self.sessions[B2]
            .connect_broker(p2, h2, portals[1])
            .unwrap();
        self.route((B1, s1), (B2, s2));
        self.run();
    }

    /// Answers session `i`'s events; true if a primary buffer was mapped.
    fn answer(&mut self, i: usize) -> bool {
        let mut mapped = false;
        while let Some(event) = self.sessions[i].poll_event() {
            match event {
                SessionEvent::MapPrimaryBuffer { buffer, .. } => {
                    let heap = self.map(&buffer);
                    self.sessions[i].primary_buffer_mapped(heap).unwrap();
                    mapped = true;
                }
                SessionEvent::Established { portals, .. } => self.portals[i] = portals,
                SessionEvent::BrokerConnected { portals, .. } => self.broker_portals[i] = portals,
                SessionEvent::SocketFailed { socket, .. } => self.failed.push((i, socket)),
                SessionEvent::Node(NodeEvent::CreateBlockBuffer {
                    link,
                    block_size,
                    buffer_size,
                }) => {
                    let (heap, buffer) = self.region(buffer_size);
                    let boxed =
                        DriverBox::new(DriverObject::SharedBuffer(buffer), vec![any_fd()]).unwrap();
                    let node = self.sessions[i].node_mut().unwrap();
                    node.provide_block_buffer(link, block_size, heap, boxed)
                        .unwrap();
                }
                SessionEvent::Node(NodeEvent::MapBlockBuffer {
                    link, id, buffer, ..
                }) => {
                    let DriverObject::SharedBuffer(b) = *buffer.object() else {
                        panic!("not a shared buffer");
                    };
                    let heap = self.map(&b);
                    let node = self.sessions[i].node_mut().unwrap();
                    node.block_buffer_mapped(link, id, heap).unwrap();
                }
                _ => {}
            }
        }
        mapped
    }

    fn step(&mut self) -> bool {
        let mut moved = false;
        for i in 0..self.sessions.len() {
            moved |= self.answer(i);
            while let Some(t) = self.sessions[i].poll_transmit() {
                moved = true;
                let to = self.routes[&(i, t.socket)];
                let input = self.inputs.entry(to).or_default();
                input.bytes.extend(t.bytes);
                input.fds.extend(t.fds);
            }
        }
        let keys: Vec<(usize, SocketId)> = self.inputs.keys().copied().collect();
        for (i, socket) in keys {
            let Some(input) = self.inputs.get_mut(&(i, socket)) else {
                continue;
            };
            if input.bytes.is_empty() {
                continue;
            }
            let session = &mut self.sessions[i];
            match session.handle_socket_stream(socket, &input.bytes, &mut input.fds) {
                Ok(used) => {
                    input.bytes.drain(..used);
                    moved |= used > 0;
                }
                // That socket is over (reported as SocketFailed).
                Err(_) => {
                    input.bytes.clear();
                    input.fds.clear();
                    moved = true;
                }
            }
            moved |= self.answer(i);
        }
        moved
    }

    fn run(&mut self) {
        for _ in 0..MAX_ROUNDS {
            if !self.step() {
                return;
            }
        }
        panic!("not idle after {MAX_ROUNDS} rounds");
    }

    fn node(&mut self, i: usize) -> &mut Node<SharedHeap> {
        self.sessions[i].node_mut().expect("established")
    }

    fn read(&mut self, i: usize, portal: RouterId) -> (Vec<u8>, Vec<NodeHandle>) {
        let parcel = self.node(i).get(portal).unwrap().expect("a parcel");
        (parcel.data, parcel.handles)
    }
}

#[test]
fn brokers_of_two_networks_connect_and_keep_their_networks() {
    let mut w = World::two_networks();
    w.connect_brokers([2, 8]);
    assert!(w.failed.is_empty(), "{:?}", w.failed);
    // Portal 0 closed (Mojo's own), portal 1 the isolated pipe; broker 2's
    // surplus portals are peer-closed.
    for (b, n) in [(B1, 2), (B2, 8)] {
        assert_eq!(w.broker_portals[b].len(), n);
        assert!(w.broker_portals[b][0].is_none());
    }
    let surplus = w.broker_portals[B2][2].unwrap();
    assert!(w.node(B2).status(surplus).unwrap().peer_closed);
    let (p1, p2) = (
        w.broker_portals[B1][1].unwrap(),
        w.broker_portals[B2][1].unwrap(),
    );
    // Broker 2 has the greater name: side A.
    let link = w.sessions[B2].socket_link(SocketId(1)).expect("link");
    let side = w.node(B2).link(link).expect("link").side();
    assert_eq!(side, ipcz_wire::types::LinkSide::A);

    w.node(B1).put(p1, b"to b2".to_vec(), Vec::new()).unwrap();
    w.node(B2).put(p2, b"to b1".to_vec(), Vec::new()).unwrap();
    // A portal of broker 1 travels to broker 2 and is used both ways.
    let (keep, send) = w.node(B1).create_portal_pair();
    let handles = vec![NodeHandle::Portal(send)];
    w.node(B1).put(p1, b"a portal".to_vec(), handles).unwrap();
    w.run();
    assert_eq!(w.read(B2, p2).0, b"to b2");
    assert_eq!(w.read(B1, p1).0, b"to b1");
    let (bytes, mut handles) = w.read(B2, p2);
    assert_eq!(bytes, b"a portal");
    let Some(Handle::Portal(got)) = handles.pop() else {
        panic!("no portal")
    };
    w.node(B2)
        .put(got, b"over it".to_vec(), Vec::new())
        .unwrap();
    w.node(B1)
        .put(keep, b"and back".to_vec(), Vec::new())
        .unwrap();
    w.run();
    assert_eq!(w.read(B1, keep).0, b"over it");
    assert_eq!(w.read(B2, got).0, b"and back");

    // Each network's own pipe still works.
    for (b, c) in [(B1, C1), (B2, C2)] {
        let (bp, cp) = (w.portals[b][1].unwrap(), w.portals[c][1].unwrap());
        w.node(b).put(bp, b"net".to_vec(), Vec::new()).unwrap();
        w.run();
        assert_eq!(w.read(c, cp).0, b"net");
    }

    // Closing one end reaches the other broker.
    w.node(B1).close(p1).unwrap();
    w.run();
    assert!(w.node(B2).status(p2).unwrap().peer_closed);
}

#[test]
fn only_an_established_broker_connects_to_a_broker() {
    let mut w = World::two_networks();
    let (primary, heap) = w.primary();
    assert_eq!(
        w.sessions[C1].connect_broker(primary, heap, 2),
        Err(SessionError::NotABroker)
    );
    let (primary, heap) = w.primary();
    let config = SessionConfig {
        node: NodeConfig {
            role: NodeRole::Broker,
            ..NodeConfig::default()
        },
        ..SessionConfig::default()
    };
    let (p, h) = w.primary();
    let mut fresh = Session::broker(
        NodeName { high: 5, low: 5 },
        config,
        p,
        h,
        &mut SeededRandom::new(5),
    )
    .unwrap();
    assert_eq!(
        fresh.connect_broker(primary, heap, 2),
        Err(SessionError::WrongPhase)
    );
}

#[test]
fn a_broker_peer_greeting_with_our_name_fails_only_that_socket() {
    let mut w = World::two_networks();
    let (p1, h1) = w.primary();
    let s1 = w.sessions[B1].connect_broker(p1, h1, 2).unwrap();
    // Broker 1 talks to itself: the greeting names it.
    w.route((B1, s1), (B1, s1));
    w.run();
    assert_eq!(w.failed, [(B1, s1)]);
    assert!(w.broker_portals[B1].is_empty());
    // The network goes on.
    let (bp, cp) = (w.portals[B1][1].unwrap(), w.portals[C1][1].unwrap());
    w.node(B1).put(bp, b"still".to_vec(), Vec::new()).unwrap();
    w.run();
    assert_eq!(w.read(C1, cp).0, b"still");
}
