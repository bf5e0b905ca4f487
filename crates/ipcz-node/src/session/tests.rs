//! In-memory simulations of a broker session and a non-broker session over
//! one simulated socket, stepped until idle.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::types::NodeName;
use mojo_invitation::ipcz::PrimaryBuffer;
use mojo_wire_kit::{Guid, RegionMode, SeededRandom};

use super::*;
use crate::memory::MemoryOptions;
use crate::node::{DriverBox, NodeConfig, NodeError, NodeHandle, ParcelDataPlacement};
use crate::router::Handle;
use crate::sim::SharedHeap;

fn any_fd() -> OwnedFd {
    std::fs::File::open("/dev/null").expect("/dev/null").into()
}

/// One side: its session, the bytes and fds in flight towards it, and what
/// the application saw.
struct Side {
    session: Session<SharedHeap>,
    input: Vec<u8>,
    fds: VecDeque<OwnedFd>,
    portals: Vec<Option<RouterId>>,
    readable: usize,
    peer_closed: usize,
    /// Bytes and fds sent to this side not yet delivered (the simulated
    /// socket), and how many bytes one step delivers.
    in_flight: VecDeque<u8>,
    /// Each transmit's fds, by the number of bytes still in flight ahead
    /// of its first byte when it was sent (counted down as bytes arrive).
    fds_in_flight: VecDeque<(usize, Vec<OwnedFd>)>,
    chunk: usize,
}

impl Side {
    fn new(session: Session<SharedHeap>) -> Self {
        Self {
            session,
            input: Vec::new(),
            fds: VecDeque::new(),
            portals: Vec::new(),
            readable: 0,
            peer_closed: 0,
            in_flight: VecDeque::new(),
            fds_in_flight: VecDeque::new(),
            chunk: usize::MAX,
        }
    }

    fn node(&mut self) -> &mut Node<SharedHeap> {
        self.session.node_mut().expect("established")
    }

    fn portal(&self, i: usize) -> RouterId {
        self.portals[i].expect("open portal")
    }
}

/// The regions both sides know, by GUID (what mapping an fd means here).
#[derive(Default)]
struct Memory {
    regions: BTreeMap<(u64, u64), SharedHeap>,
    next_guid: u64,
}

impl Memory {
    fn create(&mut self, size: usize) -> (SharedHeap, SharedBuffer) {
        self.next_guid += 1;
        let guid = Guid {
            high: 7,
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

    fn map(&self, buffer: &SharedBuffer) -> SharedHeap {
        self.regions[&(buffer.guid.high, buffer.guid.low)].clone()
    }
}

/// Moves one side's transmits into the other's input; handles input and
/// events. Returns whether anything happened.
fn step(from: &mut Side, to: &mut Side, memory: &mut Memory) -> bool {
    let mut progressed = false;
    while let Some(t) = from.session.poll_transmit() {
        progressed = true;
        if !t.fds.is_empty() {
            to.fds_in_flight.push_back((to.in_flight.len(), t.fds));
        }
        to.in_flight.extend(t.bytes);
    }
    // Part of the stream arrives; a transmit's fds with its first byte, as
    // a unix socket delivers them (so a whole frame always has its fds).
    let n = to.chunk.min(to.in_flight.len());
    progressed |= n > 0;
    to.input.extend(to.in_flight.drain(..n));
    for (ahead, fds) in to.fds_in_flight.iter_mut() {
        if *ahead < n {
            to.fds.extend(fds.drain(..));
        }
        *ahead = ahead.saturating_sub(n);
    }
    to.fds_in_flight.retain(|(_, fds)| !fds.is_empty());
    loop {
        let used = to
            .session
            .handle_stream(&to.input, &mut to.fds)
            .expect("stream");
        to.input.drain(..used);
        progressed |= used > 0;
        if !answer_events(to, memory) {
            break;
        }
    }
    progressed
}

/// Answers the side's events; true if the primary buffer was mapped (so
/// input waits to be offered again).
fn answer_events(side: &mut Side, memory: &mut Memory) -> bool {
    let mut mapped = false;
    while let Some(event) = side.session.poll_event() {
        match event {
            SessionEvent::MapPrimaryBuffer { buffer, fd } => {
                drop(fd);
                side.session
                    .primary_buffer_mapped(memory.map(&buffer))
                    .expect("mapped");
                mapped = true;
            }
            SessionEvent::Established { portals, .. } => side.portals = portals,
            SessionEvent::Node(NodeEvent::Readable { .. }) => side.readable += 1,
            SessionEvent::Node(NodeEvent::PeerClosed { .. }) => side.peer_closed += 1,
            SessionEvent::Node(NodeEvent::CreateBlockBuffer {
                link,
                block_size,
                buffer_size,
            }) => {
                let (heap, buffer) = memory.create(buffer_size);
                let boxed = DriverBox::new(DriverObject::SharedBuffer(buffer), vec![any_fd()])
                    .expect("box");
                side.node()
                    .provide_block_buffer(link, block_size, heap, boxed)
                    .expect("provided");
            }
            SessionEvent::Node(NodeEvent::MapBlockBuffer {
                link, id, buffer, ..
            }) => {
                let DriverObject::SharedBuffer(b) = *buffer.object() else {
                    panic!("not a shared buffer");
                };
                let heap = memory.map(&b);
                side.node()
                    .block_buffer_mapped(link, id, heap)
                    .expect("mapped");
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    mapped
}

/// Bounds a run that never goes idle (a bug), not a timing assumption.
const MAX_ROUNDS: usize = 1_000_000;

fn run_until_idle(a: &mut Side, b: &mut Side, memory: &mut Memory) {
    for _ in 0..MAX_ROUNDS {
        let x = step(a, b, memory);
        let y = step(b, a, memory);
        if !x && !y {
            return;
        }
    }
    panic!("not idle after {MAX_ROUNDS} rounds");
}

fn pair(portals: u32) -> (Side, Side, Memory) {
    pair_with(portals, MemoryOptions::default())
}

fn pair_with(portals: u32, memory_options: MemoryOptions) -> (Side, Side, Memory) {
    let mut memory = Memory::default();
    let (heap, buffer) = memory.create(PRIMARY_BUFFER_SIZE);
    let primary = PrimaryBuffer::new(buffer.buffer_size, buffer.guid, any_fd());
    let config = SessionConfig {
        initial_portals: portals,
        memory: memory_options,
        node: NodeConfig {
            parcel_data: ParcelDataPlacement::SharedMemory,
            ..NodeConfig::default()
        },
        ..SessionConfig::default()
    };
    let mut random = SeededRandom::new(42);
    let broker = Session::broker(
        NodeName { high: 1, low: 1 },
        config,
        primary,
        heap,
        &mut random,
    )
    .expect("broker");
    let client = Session::non_broker(config).expect("client");
    (Side::new(broker), Side::new(client), memory)
}

fn assert_nothing_left(side: &mut Side) {
    let node = side.session.node().expect("node");
    assert_eq!(node.router_count(), 0, "routers");
    assert_eq!(node.sublink_count(), 0, "sublinks");
    assert_eq!(node.queued_parcel_count(), 0, "parcels");
    assert_eq!(node.held_parcel_count(), 0, "held parcels");
    assert_eq!(node.received_fds_alive(), 0, "fds");
    assert!(!node.has_pending(), "pending");
    assert!(
        side.input.is_empty() && side.fds.is_empty(),
        "unconsumed input"
    );
    assert!(side.session.error().is_none());
}

#[test]
fn broker_and_non_broker_sessions_exchange_parcels_and_a_portal() {
    let (mut host, mut client, mut memory) = pair(3);
    run_until_idle(&mut host, &mut client, &mut memory);
    assert!(host.session.is_established() && client.session.is_established());
    assert_eq!(host.portals.len(), 3);
    assert_eq!(client.portals.len(), 3);
    assert!(host.portals[0].is_none() && client.portals[0].is_none());
    // The client's link goes to a broker: introductions are asked there.
    assert_eq!(
        client.session.node().and_then(Node::broker_link),
        client.session.link()
    );
    assert_eq!(host.session.node().and_then(Node::broker_link), None);
    assert_eq!(
        client.session.node().map(Node::name),
        Some(
            host.session
                .node()
                .expect("node")
                .link(host.session.link().expect("link"))
                .expect("link")
                .remote_name()
        )
    );

    // Parcels both ways on portals 1 and 2.
    for i in 1..3 {
        let (hp, cp) = (host.portal(i), client.portal(i));
        host.node()
            .put(hp, format!("to client {i}").into_bytes(), Vec::new())
            .expect("put");
        client
            .node()
            .put(cp, format!("to host {i}").into_bytes(), Vec::new())
            .expect("put");
    }
    // A portal travels from the client to the host on portal 1.
    let (keep, send) = client.node().create_portal_pair();
    let cp1 = client.portal(1);
    client
        .node()
        .put(cp1, b"a portal".to_vec(), vec![NodeHandle::Portal(send)])
        .expect("put portal");
    run_until_idle(&mut host, &mut client, &mut memory);

    for i in 1..3 {
        let hp = host.portal(i);
        let got = host.node().get(hp).expect("get").expect("parcel");
        assert_eq!(got.data, format!("to host {i}").into_bytes());
        let cp = client.portal(i);
        let got = client.node().get(cp).expect("get").expect("parcel");
        assert_eq!(got.data, format!("to client {i}").into_bytes());
    }
    let hp1 = host.portal(1);
    let mut moved = host.node().get(hp1).expect("get").expect("portal parcel");
    assert_eq!(moved.data, b"a portal");
    let Some(Handle::Portal(arrived)) = moved.handles.pop() else {
        panic!("no portal in the parcel");
    };
    host.node()
        .put(arrived, b"over the moved portal".to_vec(), Vec::new())
        .expect("put");
    run_until_idle(&mut host, &mut client, &mut memory);
    let got = client.node().get(keep).expect("get").expect("parcel");
    assert_eq!(got.data, b"over the moved portal");

    // Close everything; both nodes end empty.
    host.node().close(arrived).expect("close");
    client.node().close(keep).expect("close");
    for i in 1..3 {
        let hp = host.portal(i);
        host.node().close(hp).expect("close");
        let cp = client.portal(i);
        client.node().close(cp).expect("close");
    }
    run_until_idle(&mut host, &mut client, &mut memory);
    assert!(host.readable > 0 && client.readable > 0);
    assert_nothing_left(&mut host);
    assert_nothing_left(&mut client);
}

#[test]
fn the_non_broker_waits_for_its_mapping_before_reading_on() {
    let (mut host, mut client, _memory) = pair(2);
    // The host's greeting and a parcel right behind it, before the client
    // has said anything.
    while let Some(t) = host.session.poll_transmit() {
        client.input.extend(t.bytes);
        client.fds.extend(t.fds);
    }
    let used = client
        .session
        .handle_stream(&client.input, &mut client.fds)
        .expect("greeting");
    assert_eq!(used, client.input.len(), "just the greeting");
    assert!(!client.session.is_established());
    assert!(matches!(
        client.session.poll_event(),
        Some(SessionEvent::MapPrimaryBuffer { .. })
    ));
    assert_eq!(client.session.handle_stream(&[], &mut client.fds), Ok(0));
    // A mapping smaller than described ends the session.
    assert!(matches!(
        client.session.primary_buffer_mapped(SharedHeap::new(4096)),
        Err(SessionError::PrimaryMappingTooSmall { size: 4096, .. })
    ));
    assert!(client.session.error().is_some());
    assert!(client.session.handle_stream(&[], &mut client.fds).is_err());
}

#[test]
fn a_closed_socket_before_the_greeting_fails_the_handshake() {
    let (mut host, mut client, _memory) = pair(2);
    assert!(matches!(
        host.session.handle_closed(),
        Err(SessionError::Handshake(_))
    ));
    assert!(matches!(
        client.session.handle_closed(),
        Err(SessionError::Handshake(_))
    ));
    assert!(
        client
            .session
            .primary_buffer_mapped(SharedHeap::new(PRIMARY_BUFFER_SIZE))
            .is_err()
    );
}

#[test]
fn garbage_before_the_greeting_is_a_typed_error() {
    let (_host, mut client, _memory) = pair(2);
    let mut fds = VecDeque::new();
    let mut junk = vec![0u8; 64];
    junk[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        client.session.handle_stream(&junk, &mut fds),
        Err(SessionError::FrameTooLarge { .. })
    ));
    let (_host, mut client, _memory) = pair(2);
    let junk = [0u8; 64];
    assert!(client.session.handle_stream(&junk, &mut fds).is_err());
}

#[test]
fn a_greeting_without_its_fd_is_a_typed_error_not_a_wait() {
    let (mut host, mut client, _memory) = pair(2);
    // The broker's greeting carries the primary buffer's fd; it arrives
    // whole, but without it.
    let t = host.session.poll_transmit().expect("greeting");
    assert!(!t.fds.is_empty(), "the greeting carries the buffer");
    let mut no_fds = VecDeque::new();
    assert_eq!(
        client.session.handle_stream(&t.bytes, &mut no_fds),
        Err(SessionError::FdCount {
            header: t.fds.len(),
            received: 0,
        })
    );
}

#[test]
fn a_running_frame_without_its_fds_drops_the_link() {
    let (mut host, mut client, mut memory) = pair(2);
    run_until_idle(&mut host, &mut client, &mut memory);
    // A parcel with a boxed fd, whose fd is lost on the way.
    let (hp, _) = (host.portal(1), client.portal(1));
    let boxed =
        DriverBox::new(DriverObject::TransmissiblePlatformHandle, vec![any_fd()]).expect("box");
    host.node()
        .put(hp, b"with an fd".to_vec(), vec![Handle::Object(boxed)])
        .expect("put");
    let mut bytes = Vec::new();
    let mut sent_fds = 0;
    while let Some(t) = host.session.poll_transmit() {
        sent_fds += t.fds.len();
        bytes.extend(t.bytes);
    }
    assert_eq!(sent_fds, 1, "the parcel's fd");
    let mut no_fds = VecDeque::new();
    assert!(matches!(
        client.session.handle_stream(&bytes, &mut no_fds),
        Err(SessionError::Node(NodeError::FdCount { .. }))
    ));
}

#[test]
fn the_link_dropping_after_a_closed_socket_disconnects_the_portals() {
    let (mut host, mut client, mut memory) = pair(2);
    run_until_idle(&mut host, &mut client, &mut memory);
    client.session.handle_closed().expect("closed");
    let mut disconnected = false;
    while let Some(event) = client.session.poll_event() {
        if let SessionEvent::Node(NodeEvent::PeerClosed {
            disconnected: d, ..
        }) = event
        {
            disconnected |= d;
        }
    }
    assert!(disconnected);
    let cp = client.portal(1);
    client.node().close(cp).expect("close");
    let node = client.session.node().expect("node");
    assert_eq!(node.router_count(), 0);
    assert_eq!(node.link_count(), 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// The streams cut into chunks of any size, fds arriving after their
    /// bytes, parcels of any sizes both ways (in fragments of added block
    /// buffers when they fit): everything arrives in order, nothing is left.
    #[test]
    fn sessions_survive_any_stream_cut(
        host_chunk in 1usize..4096,
        client_chunk in 1usize..4096,
        sizes in proptest::collection::vec(0usize..20_000, 1..24),
    ) {
        let (mut host, mut client, mut memory) =
            pair_with(2, MemoryOptions { fixed_parcel_capacity: false });
        host.chunk = host_chunk;
        client.chunk = client_chunk;
        run_until_idle(&mut host, &mut client, &mut memory);
        let (hp, cp) = (host.portal(1), client.portal(1));
        for (i, &size) in sizes.iter().enumerate() {
            host.node().put(hp, vec![i as u8; size], Vec::new()).expect("put");
            client.node().put(cp, vec![!(i as u8); size], Vec::new()).expect("put");
        }
        run_until_idle(&mut host, &mut client, &mut memory);
        for (i, &size) in sizes.iter().enumerate() {
            let got = client.node().get(cp).expect("get").expect("parcel");
            proptest::prop_assert_eq!(got.data, vec![i as u8; size]);
            let got = host.node().get(hp).expect("get").expect("parcel");
            proptest::prop_assert_eq!(got.data, vec![!(i as u8); size]);
        }
        host.node().close(hp).expect("close");
        client.node().close(cp).expect("close");
        run_until_idle(&mut host, &mut client, &mut memory);
        assert_nothing_left(&mut host);
        assert_nothing_left(&mut client);
    }
}
