//! Two brokers handshaking with each other (`BrokerToBroker`, MojoIpcz's
//! isolated invitations): sides by name order, the greater name's buffer
//! used by both, and the greetings the connector refuses.

use std::sync::atomic::Ordering;

use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::messages::{Body, ConnectFromBrokerToBroker, MessageId};
use ipcz_wire::types::{DriverObjectIndex, LinkSide, NodeName, NodeType};
use mojo_wire_kit::{RegionMode, SharedMemory};

use super::super::{BrokerToBrokerConnector, HandshakeError, Link};
use super::*;

const SMALL: NodeName = NodeName { high: 1, low: 9 };
const GREAT: NodeName = NodeName { high: 2, low: 0 };

/// Delivers what `from` sends to `to`; true if there was anything.
fn deliver(from: &mut BrokerToBrokerConnector, to: &mut BrokerToBrokerConnector) -> bool {
    let mut moved = false;
    while let Some(t) = from.poll_transmit() {
        assert_eq!(t.link, Link::Handshake);
        assert_eq!(check_canonical(&t).id(), MessageId(7));
        to.handle_frame(&t.bytes, t.fds).expect("greeting accepted");
        moved = true;
    }
    moved
}

/// Steps two brokers until neither has anything to send.
fn run(a: &mut BrokerToBrokerConnector, b: &mut BrokerToBrokerConnector) {
    while deliver(a, b) | deliver(b, a) {}
}

#[test]
fn the_greater_name_is_side_a_and_both_use_its_buffer() {
    let (small_fd, mut small_probe) = watched_fd();
    let (great_fd, mut great_probe) = watched_fd();
    let (small_primary, small_map) = primary_buffer(small_fd);
    let (great_primary, great_map) = primary_buffer(great_fd);
    let mut small = BrokerToBrokerConnector::new(SMALL, 2, small_primary, &small_map).unwrap();
    let mut great = BrokerToBrokerConnector::new(GREAT, 8, great_primary, &great_map).unwrap();
    run(&mut small, &mut great);
    let at_small = small.finish().expect("small established");
    let at_great = great.finish().expect("great established");

    assert_eq!((at_great.side, at_small.side), (LinkSide::A, LinkSide::B));
    assert_eq!((at_small.local_name, at_small.remote_name), (SMALL, GREAT));
    assert_eq!((at_great.local_name, at_great.remote_name), (GREAT, SMALL));
    assert_eq!(at_small.remote_type, NodeType::BROKER);
    assert_eq!(at_great.remote_type, NodeType::BROKER);
    assert_eq!(at_small.portal_counts.established(), 2);
    assert_eq!(at_great.surplus_portals(), 2..8);
    let sides: Vec<_> = at_small
        .initial_portals()
        .zip(at_great.initial_portals())
        .map(|(s, g)| {
            assert_eq!((s.sublink, s.link_state), (g.sublink, g.link_state));
            (s.side, g.side)
        })
        .collect();
    assert_eq!(sides, [(LinkSide::B, LinkSide::A); 2]);

    // Side A keeps its own mapping; side B got A's buffer to map.
    assert!(at_great.primary_buffer_fd.is_none());
    assert_eq!(at_small.primary_buffer, at_great.primary_buffer);
    let fd = at_small.primary_buffer_fd.as_ref().expect("A's buffer");
    assert_same_socket(fd, &mut great_probe);
    // Both initialized their own (§5.1); B's fd was closed unused by A.
    for map in [&small_map, &great_map] {
        assert_eq!(map.load_u64(0, Ordering::Relaxed), Ok(1));
    }
    assert!(small_probe.is_closed());
    drop(at_small);
    assert!(great_probe.is_closed());
}

/// A ConnectFromBrokerToBroker frame from `name` with a primary buffer.
fn greeting(name: NodeName, buffer_size: u32) -> (Vec<u8>, Vec<OwnedFd>) {
    let body = Body::ConnectFromBrokerToBroker(ConnectFromBrokerToBroker {
        name,
        protocol_version: 0,
        num_initial_portals: 2,
        buffer: DriverObjectIndex(0),
        padding: 0,
        features: Some(vec![0]),
    });
    let buffer = SharedBuffer {
        buffer_size,
        mode: RegionMode::Unsafe,
        guid: BUFFER_GUID,
    };
    let t = super::super::frames::encode_transmit(
        Link::Handshake,
        0,
        body,
        vec![(DriverObject::SharedBuffer(buffer), vec![dev_null()])],
    )
    .unwrap();
    (t.bytes, t.fds)
}

#[test]
fn a_greeting_naming_zero_ourselves_or_a_bad_buffer_fails_the_handshake() {
    type Check = fn(&HandshakeError) -> bool;
    let cases: [(NodeName, u32, Check); 3] = [
        (NodeName::default(), 131072, |e| {
            matches!(e, HandshakeError::ZeroName { field: "name", .. })
        }),
        (SMALL, 131072, |e| {
            matches!(e, HandshakeError::NameCollision { field: "name", .. })
        }),
        (GREAT, 4096, |e| {
            matches!(e, HandshakeError::PrimaryBufferSize { size: 4096, .. })
        }),
    ];
    for (name, size, check) in cases {
        let (primary, map) = primary_buffer(dev_null());
        let mut small = BrokerToBrokerConnector::new(SMALL, 1, primary, &map).unwrap();
        let (bytes, fds) = greeting(name, size);
        let error = small.handle_frame(&bytes, fds).unwrap_err();
        assert!(check(&error), "{error:?}");
        // Sticky.
        assert!(small.finish().is_err());
    }
}

#[test]
fn a_non_broker_greeting_fails_the_handshake() {
    let (primary, map) = primary_buffer(dev_null());
    let mut small = BrokerToBrokerConnector::new(SMALL, 1, primary, &map).unwrap();
    let mut non_broker = super::super::NonBrokerConnector::new(1).unwrap();
    let t = non_broker.poll_transmit().unwrap();
    let error = small.handle_frame(&t.bytes, t.fds).unwrap_err();
    assert!(
        matches!(
            error,
            HandshakeError::UnexpectedMessage {
                found: MessageId(1),
                ..
            }
        ),
        "{error:?}"
    );
}
