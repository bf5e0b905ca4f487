//! In-memory simulation of §4.3: a broker session, a non-broker host
//! session that refers a node to it, and the referred session, over
//! simulated sockets. Real socket-pair fds stand for the sockets (an fd's
//! inode names its end), so sockets that travel inside messages are routed
//! the way the kernel would route them.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;

use ipcz_wire::driver_object::SharedBuffer;
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::types::NodeName;
use mojo_invitation::ipcz::PrimaryBuffer;
use mojo_wire_kit::{Guid, SeededRandom};

use super::*;
use crate::node::NodeRole;
use crate::sim::SharedHeap;

const BROKER: usize = 0;
const HOST: usize = 1;
const REFERRED: usize = 2;

fn inode(fd: &OwnedFd) -> u64 {
    let file = std::fs::File::from(fd.try_clone().expect("dup"));
    file.metadata().expect("fstat").ino()
}

fn socket_pair() -> (OwnedFd, OwnedFd) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    (a.into(), b.into())
}

struct Party {
    session: Session<SharedHeap>,
    /// Unconsumed input and fds per socket.
    input: BTreeMap<SocketId, (Vec<u8>, VecDeque<OwnedFd>)>,
    portals: Vec<Option<RouterId>>,
    referral: Option<(SocketId, Vec<Option<RouterId>>)>,
    served: Vec<SocketId>,
    failed: Vec<SessionError>,
    readable: usize,
}

/// One socket end's undelivered bytes and per-write fds.
type InFlight = (Vec<u8>, VecDeque<(usize, Vec<OwnedFd>)>);

struct Net {
    parties: Vec<Party>,
    /// Socket end (inode) -> its peer end.
    peers: BTreeMap<u64, u64>,
    /// Socket end (inode) -> who reads it, once adopted.
    owners: BTreeMap<u64, (usize, SocketId)>,
    /// Bytes written towards an end not yet read, and each write's fds by
    /// the bytes ahead of its first byte (delivered with that byte, as a
    /// unix socket does).
    in_flight: BTreeMap<u64, InFlight>,
    regions: BTreeMap<(u64, u64), SharedHeap>,
    next_guid: u64,
    random: SeededRandom,
    /// fds kept open so their inodes stay unique.
    keep: Vec<OwnedFd>,
    /// Most bytes one step delivers to an end; its fds arrive with the
    /// last of the bytes sent before them (later than a real socket).
    chunk: usize,
}

impl Net {
    fn pair(&mut self) -> (OwnedFd, OwnedFd) {
        let (a, b) = socket_pair();
        let (ia, ib) = (inode(&a), inode(&b));
        self.peers.insert(ia, ib);
        self.peers.insert(ib, ia);
        (a, b)
    }

    fn own(&mut self, fd: OwnedFd, party: usize, socket: SocketId) {
        self.owners.insert(inode(&fd), (party, socket));
        self.keep.push(fd);
    }

    fn region(&mut self) -> (SharedHeap, PrimaryBuffer, OwnedFd) {
        self.next_guid += 1;
        let guid = Guid {
            high: 9,
            low: self.next_guid,
        };
        let heap = SharedHeap::new(PRIMARY_BUFFER_SIZE);
        self.regions.insert((guid.high, guid.low), heap.clone());
        let (fd, spare) = socket_pair();
        (
            heap,
            PrimaryBuffer::new(PRIMARY_BUFFER_SIZE as u32, guid, fd),
            spare,
        )
    }

    fn map(&self, buffer: &SharedBuffer) -> SharedHeap {
        self.regions[&(buffer.guid.high, buffer.guid.low)].clone()
    }

    /// One round: every party's transmits move, input is handled, events
    /// answered. Returns whether anything happened.
    fn step(&mut self) -> bool {
        let mut progressed = false;
        for from in 0..self.parties.len() {
            while let Some(t) = self.parties[from].session.poll_transmit() {
                progressed = true;
                let end = self
                    .owners
                    .iter()
                    .find(|(_, o)| **o == (from, t.socket))
                    .map(|(ino, _)| *ino)
                    .expect("a known socket");
                let flight = self.in_flight.entry(self.peers[&end]).or_default();
                if !t.fds.is_empty() {
                    flight.1.push_back((flight.0.len(), t.fds));
                }
                flight.0.extend(t.bytes);
            }
        }
        let ends: Vec<u64> = self.in_flight.keys().copied().collect();
        for end in ends {
            let Some(&(party, socket)) = self.owners.get(&end) else {
                continue;
            };
            let Some((bytes, fds)) = self.in_flight.get_mut(&end) else {
                continue;
            };
            let n = self.chunk.min(bytes.len());
            let input = self.parties[party].input.entry(socket).or_default();
            progressed |= n > 0;
            input.0.extend(bytes.drain(..n));
            for (ahead, write_fds) in fds.iter_mut() {
                if *ahead < n {
                    input.1.extend(write_fds.drain(..));
                }
                *ahead = ahead.saturating_sub(n);
            }
            fds.retain(|(_, write_fds)| !write_fds.is_empty());
        }
        for party in 0..self.parties.len() {
            let sockets: Vec<SocketId> = self.parties[party].input.keys().copied().collect();
            for socket in sockets {
                loop {
                    let p = &mut self.parties[party];
                    let (bytes, fds) = p.input.get_mut(&socket).expect("input");
                    let used = match p.session.handle_socket_stream(socket, bytes, fds) {
                        Ok(used) => used,
                        Err(e) => {
                            // That socket is done with: nothing more is read.
                            bytes.clear();
                            fds.clear();
                            p.failed.push(e);
                            break;
                        }
                    };
                    bytes.drain(..used);
                    progressed |= used > 0;
                    if !self.answer(party) {
                        break;
                    }
                }
            }
            progressed |= self.answer(party);
        }
        progressed
    }

    /// Answers a party's events; true if any came.
    fn answer(&mut self, party: usize) -> bool {
        let mut any = false;
        while let Some(event) = self.parties[party].session.poll_event() {
            any = true;
            match event {
                SessionEvent::MapPrimaryBuffer { buffer, .. } => {
                    let heap = self.map(&buffer);
                    self.parties[party]
                        .session
                        .primary_buffer_mapped(heap)
                        .expect("mapped");
                }
                SessionEvent::AdoptSocket { socket, fd } => self.own(fd, party, socket),
                SessionEvent::Established { portals, .. } => {
                    self.parties[party].portals = portals;
                }
                SessionEvent::ReferralAccepted {
                    socket, portals, ..
                } => self.parties[party].referral = Some((socket, portals)),
                SessionEvent::ReferralRequested { socket } => {
                    let (broker_link_mapping, broker_link_buffer, _) = self.region();
                    let (referrer_link_mapping, referrer_link_buffer, _) = self.region();
                    let for_referrer = referrer_link_buffer.fd.try_clone().expect("dup");
                    let (referred_socket, referrer_socket) = self.pair();
                    let memory = BrokerReferralMemory {
                        broker_link_buffer,
                        broker_link_mapping,
                        referrer_link_buffer,
                        referrer_link_buffer_for_referrer: for_referrer,
                        referrer_link_mapping,
                        referred_socket,
                        referrer_socket,
                    };
                    let p = &mut self.parties[party];
                    p.session
                        .serve_referral(socket, memory, &mut self.random)
                        .expect("served");
                }
                SessionEvent::ReferralServed { socket, .. } => {
                    self.parties[party].served.push(socket);
                }
                SessionEvent::ReferralFailed { error, .. }
                | SessionEvent::SocketFailed { error, .. } => {
                    self.parties[party].failed.push(error);
                }
                SessionEvent::Node(NodeEvent::Readable { .. }) => {
                    self.parties[party].readable += 1;
                }
                SessionEvent::Node(NodeEvent::PeerClosed { .. }) => {}
                SessionEvent::BrokerConnected { .. } => panic!("no broker connections here"),
                SessionEvent::Node(NodeEvent::MapBlockBuffer {
                    link, id, buffer, ..
                }) => {
                    let ipcz_wire::driver_object::DriverObject::SharedBuffer(b) = *buffer.object()
                    else {
                        panic!("not a shared buffer");
                    };
                    let heap = self.map(&b);
                    let node = self.parties[party].session.node_mut().expect("node");
                    node.block_buffer_mapped(link, id, heap).expect("mapped");
                }
                SessionEvent::Node(other) => panic!("unexpected event {other:?}"),
            }
        }
        any
    }

    fn run_until_idle(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("never idle");
    }

    fn node(&mut self, party: usize) -> &mut Node<SharedHeap> {
        self.parties[party].session.node_mut().expect("node")
    }
}

fn party(session: Session<SharedHeap>) -> Party {
    Party {
        session,
        input: BTreeMap::new(),
        portals: Vec::new(),
        referral: None,
        served: Vec::new(),
        failed: Vec::new(),
        readable: 0,
    }
}

/// The broker and the host connected (the host's broker pipe on portal 1),
/// the referred node greeting over the socket whose other end the host
/// keeps (returned).
fn network(referred_portals: u32) -> (Net, OwnedFd) {
    let mut net = Net {
        parties: Vec::new(),
        peers: BTreeMap::new(),
        owners: BTreeMap::new(),
        in_flight: BTreeMap::new(),
        regions: BTreeMap::new(),
        next_guid: 0,
        random: SeededRandom::new(11),
        keep: Vec::new(),
        chunk: usize::MAX,
    };
    let (heap, primary, _) = net.region();
    let broker_config = SessionConfig {
        node: NodeConfig {
            role: NodeRole::Broker,
            ..NodeConfig::default()
        },
        ..SessionConfig::default()
    };
    let mut random = SeededRandom::new(5);
    let broker = Session::broker(
        NodeName { high: 3, low: 3 },
        broker_config,
        primary,
        heap,
        &mut random,
    )
    .expect("broker");
    let host = Session::non_broker(SessionConfig::default()).expect("host");
    let referred = Session::referred(SessionConfig {
        initial_portals: referred_portals,
        ..SessionConfig::default()
    })
    .expect("referred");
    net.parties = vec![party(broker), party(host), party(referred)];
    let (b, h) = net.pair();
    net.own(b, BROKER, SocketId::HANDSHAKE);
    net.own(h, HOST, SocketId::HANDSHAKE);
    let (kept, r) = net.pair();
    net.own(r, REFERRED, SocketId::HANDSHAKE);
    (net, kept)
}

#[test]
fn a_referred_node_links_to_the_broker_and_to_the_host_that_referred_it() {
    let (mut net, kept) = network(3);
    net.run_until_idle();
    assert!(net.parties[HOST].session.is_established());
    // The referred node waits for the broker, which has not got its socket.
    assert!(!net.parties[REFERRED].session.is_established());
    let id = net.parties[HOST].session.refer(kept, 3).expect("refer");
    assert_eq!(id, ReferralId(0));
    net.run_until_idle();
    for p in &net.parties {
        assert!(p.failed.is_empty(), "{:?}", p.failed);
    }
    assert_eq!(net.parties[BROKER].served.len(), 1);
    let (host_socket, host_portals) = net.parties[HOST].referral.clone().expect("accepted");
    assert_eq!(host_portals.len(), 3);
    assert_eq!(net.parties[REFERRED].portals.len(), 3);
    // Broker link and referrer link; the broker link goes to the broker.
    let referred = net.parties[REFERRED].session.node().expect("node");
    assert_eq!(referred.link_count(), 2);
    assert_eq!(referred.broker_link(), net.parties[REFERRED].session.link());
    assert_eq!(net.node(BROKER).link_count(), 2);
    assert_eq!(net.node(HOST).link_count(), 2);
    assert!(net.parties[HOST].session.socket_link(host_socket).is_some());

    // Parcels both ways on portals 1 and 2 of the referrer link.
    for (i, hp) in host_portals.iter().enumerate().skip(1) {
        let hp = hp.expect("host portal");
        let rp = net.parties[REFERRED].portals[i].expect("referred portal");
        net.node(HOST)
            .put(hp, format!("to referred {i}").into_bytes(), Vec::new())
            .expect("put");
        net.node(REFERRED)
            .put(rp, format!("to host {i}").into_bytes(), Vec::new())
            .expect("put");
        net.run_until_idle();
        let got = net.node(REFERRED).get(rp).expect("get").expect("parcel");
        assert_eq!(got.data, format!("to referred {i}").into_bytes());
        let got = net.node(HOST).get(hp).expect("get").expect("parcel");
        assert_eq!(got.data, format!("to host {i}").into_bytes());
    }
    // Closing the host's end reaches the referred node.
    let hp = host_portals[1].expect("portal");
    net.node(HOST).close(hp).expect("close");
    net.run_until_idle();
    let rp = net.parties[REFERRED].portals[1].expect("portal");
    assert!(net.node(REFERRED).status(rp).expect("status").peer_closed);
}

#[test]
fn a_referral_the_referred_node_never_answers_is_rejected_when_its_socket_closes() {
    let (mut net, kept) = network(2);
    // The referred node is gone before it greets.
    net.parties.pop();
    net.owners.retain(|_, (p, _)| *p != REFERRED);
    net.in_flight.clear();
    net.run_until_idle();
    net.parties[HOST].session.refer(kept, 2).expect("refer");
    net.run_until_idle();
    let (&end, _) = net
        .owners
        .iter()
        .find(|(_, (p, s))| *p == BROKER && *s != SocketId::HANDSHAKE)
        .expect("the broker adopted the referred socket");
    let (_, socket) = net.owners[&end];
    net.parties[BROKER]
        .session
        .handle_socket_closed(socket)
        .expect("closed");
    net.run_until_idle();
    assert!(net.parties[HOST].referral.is_none());
    assert!(matches!(
        net.parties[HOST].failed.as_slice(),
        [SessionError::Handshake(
            mojo_invitation::ipcz::HandshakeError::ReferralRejected { .. }
        )]
    ));
}

#[test]
fn a_referral_frame_without_its_fds_fails_that_referral_not_waits() {
    let (mut net, kept) = network(2);
    net.run_until_idle();
    // The referred node's greeting waits in the referred socket; make its
    // header claim an fd that never comes.
    let flight = net.in_flight.get_mut(&inode(&kept)).expect("the greeting");
    flight.0[2..4].copy_from_slice(&1u16.to_le_bytes());
    net.parties[HOST].session.refer(kept, 2).expect("refer");
    net.run_until_idle();
    assert!(
        net.parties[BROKER].failed.contains(&SessionError::FdCount {
            header: 1,
            received: 0
        }),
        "{:?}",
        net.parties[BROKER].failed
    );
    assert!(net.parties[BROKER].served.is_empty());
    // The broker's own link is unharmed.
    assert!(net.parties[BROKER].session.is_established());
}

#[test]
fn only_a_link_to_a_broker_refers_and_only_a_broker_serves() {
    let (mut net, kept) = network(2);
    net.run_until_idle();
    // The broker's own link goes to a non-broker.
    assert_eq!(
        net.parties[BROKER].session.refer(kept, 2),
        Err(SessionError::NotTowardBroker)
    );
    let (_, spare) = socket_pair();
    assert_eq!(
        net.parties[REFERRED].session.refer(spare, 2),
        Err(SessionError::WrongPhase)
    );
    assert_eq!(
        net.parties[BROKER].session.refuse_referral(SocketId(7)),
        Err(SessionError::UnknownSocket(SocketId(7)))
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// The three parties come up and carry parcels however the streams are
    /// cut (frames split anywhere, fds arriving late).
    #[test]
    fn the_inherit_handshake_survives_any_stream_cut(
        chunk in 1usize..600,
        sizes in proptest::collection::vec(0usize..6000, 1..8),
    ) {
        let (mut net, kept) = network(2);
        net.chunk = chunk;
        net.run_until_idle();
        net.parties[HOST].session.refer(kept, 2).expect("refer");
        net.run_until_idle();
        for p in &net.parties {
            proptest::prop_assert!(p.failed.is_empty(), "{:?}", p.failed);
        }
        let (_, host_portals) = net.parties[HOST].referral.clone().expect("accepted");
        let hp = host_portals[1].expect("host portal");
        let rp = net.parties[REFERRED].portals[1].expect("referred portal");
        for (i, &size) in sizes.iter().enumerate() {
            net.node(HOST).put(hp, vec![i as u8; size], Vec::new()).expect("put");
            net.node(REFERRED).put(rp, vec![!(i as u8); size], Vec::new()).expect("put");
        }
        net.run_until_idle();
        for (i, &size) in sizes.iter().enumerate() {
            let got = net.node(REFERRED).get(rp).expect("get").expect("parcel");
            proptest::prop_assert_eq!(got.data, vec![i as u8; size]);
            let got = net.node(HOST).get(hp).expect("get").expect("parcel");
            proptest::prop_assert_eq!(got.data, vec![!(i as u8); size]);
        }
    }
}
