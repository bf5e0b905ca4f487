//! Relayed messages (§3.3) in a network of a broker (node 0) and two
//! non-brokers (1, 2) linked to it and to each other: the broker relays a
//! RelayMessage as AcceptRelayedMessage, the destination handles the inner
//! AddBlockBuffer on its link to the sender, and every message out of its
//! role, or bad inside, is a typed error on the right link.

mod node_support;

use std::os::fd::OwnedFd;

use ipcz_node::node::{NodeConfig, NodeError, NodeRole};
use ipcz_node::router::NodeLinkId;
use ipcz_wire::driver_object::AttachedObject;
use ipcz_wire::frame::{Frame, FrameHeader};
use ipcz_wire::memory::block::added_buffer_size;
use ipcz_wire::message::Message;
use ipcz_wire::messages::{
    AcceptParcelDriverObjects, AcceptRelayedMessage, Body, MessageId, RelayMessage,
};
use ipcz_wire::types::{DriverObjectArray, NodeName, SequenceNumber, SublinkId};
use node_support::{Net, name};

struct Three {
    net: Net,
    /// (node 1's link to the broker, node 2's link to the broker)
    to_broker: [NodeLinkId; 2],
    /// (node 1's link to node 2, node 2's link to node 1)
    direct: [NodeLinkId; 2],
}

fn three() -> Three {
    let broker = NodeConfig {
        role: NodeRole::Broker,
        ..NodeConfig::default()
    };
    let mut net = Net::new(&[broker, NodeConfig::default(), NodeConfig::default()]);
    let (_, l10) = net.connect(0, 1);
    let (_, l20) = net.connect(0, 2);
    let (l12, l21) = net.connect(1, 2);
    net.run();
    Three {
        net,
        to_broker: [l10, l20],
        direct: [l12, l21],
    }
}

fn frame(message: &Message<'_>, fds: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    FrameHeader::new(fds as u16, 0)
        .encode_frame(&[], message, &mut bytes)
        .unwrap();
    bytes
}

/// The AddBlockBuffer node 1 sends node 2 for a fresh 4096-byte-block
/// buffer, as a relayed message would carry it: the message bytes with no
/// object table of their own, and the buffer object beside them.
fn add_block_buffer_from_1(t: &mut Three) -> (Vec<u8>, Vec<AttachedObject>, Vec<OwnedFd>) {
    let size = added_buffer_size(4096);
    let (region, buffer) = t.net.new_region(size);
    t.net.nodes[1]
        .provide_block_buffer(t.direct[0], 4096, region, buffer)
        .unwrap();
    let f = t.net.take_frame(1, t.direct[0]).expect("AddBlockBuffer");
    let (frame, _) = Frame::decode(&f.bytes).unwrap();
    let mut message = Message::decode(frame.payload, f.fds.len()).unwrap();
    assert_eq!(message.id(), MessageId::AddBlockBuffer);
    let objects = std::mem::take(&mut message.driver_objects);
    let mut inner = Vec::new();
    message.encode(&mut inner).unwrap();
    (inner, objects, f.fds)
}

#[test]
fn the_broker_relays_and_the_destination_adds_the_buffer() {
    let mut t = three();
    let (inner, objects, fds) = add_block_buffer_from_1(&mut t);
    let mut relay = Message::new(
        7,
        Body::RelayMessage(RelayMessage {
            destination: name(2),
            data: &inner,
            padding: 0,
            driver_objects: DriverObjectArray::new(0, 1),
        }),
    );
    relay.driver_objects = objects.clone();
    let bytes = frame(&relay, fds.len());
    t.net.inject(1, t.to_broker[0], &bytes, fds).unwrap();
    // The broker's AcceptRelayedMessage to node 2 names node 1.
    let out = t.net.take_frame(0, t.net.end(0, 2).unwrap().link).unwrap();
    let (f, _) = Frame::decode(&out.bytes).unwrap();
    let accept = Message::decode(f.payload, out.fds.len()).unwrap();
    let Body::AcceptRelayedMessage(a) = &accept.body else {
        panic!("{accept:?}");
    };
    assert_eq!((a.source, a.data), (name(1), &inner[..]));
    assert_eq!(a.driver_objects, DriverObjectArray::new(0, 1));
    assert_eq!(accept.driver_objects[0].object, objects[0].object);
    assert_eq!(out.fds.len(), 1);
    t.net
        .inject(0, t.net.end(0, 2).unwrap().link, &out.bytes, out.fds)
        .unwrap();
    t.net.run();
    assert!(t.net.dropped.is_empty(), "{:?}", t.net.dropped);
    assert_eq!(t.net.buffers_mapped, 1);
    for (n, l) in [(1, t.direct[0]), (2, t.direct[1])] {
        assert_eq!(t.net.nodes[n].link(l).unwrap().memory().num_buffers(), 2);
    }
    t.net.assert_nothing_left();
}

#[test]
fn the_broker_drops_a_relay_to_a_node_it_does_not_know() {
    let mut t = three();
    let (inner, objects, fds) = add_block_buffer_from_1(&mut t);
    let mut relay = Message::new(
        0,
        Body::RelayMessage(RelayMessage {
            destination: NodeName { high: 9, low: 9 },
            data: &inner,
            padding: 0,
            driver_objects: DriverObjectArray::new(0, 1),
        }),
    );
    relay.driver_objects = objects;
    let bytes = frame(&relay, fds.len());
    t.net.inject(1, t.to_broker[0], &bytes, fds).unwrap();
    t.net.run();
    assert!(t.net.dropped.is_empty(), "{:?}", t.net.dropped);
    assert_eq!(t.net.nodes[0].received_fds_alive(), 0, "the fd closed");
    assert_eq!(t.net.nodes[0].link_count(), 2);
    t.net.assert_nothing_left();
}

#[test]
fn a_non_broker_never_relays() {
    let mut t = three();
    let relay = Message::new(
        0,
        Body::RelayMessage(RelayMessage {
            destination: name(0),
            data: &[],
            padding: 0,
            driver_objects: DriverObjectArray::new(0, 0),
        }),
    );
    let e = t
        .net
        .inject(1, t.direct[0], &frame(&relay, 0), Vec::new())
        .unwrap_err();
    assert_eq!(e, NodeError::RelayOutOfRole(MessageId::RelayMessage));
    t.net.run();
    assert_eq!(t.net.dropped.len(), 1);
    assert_eq!(t.net.dropped[0].0, 2);
    assert_eq!(t.net.nodes[2].link_count(), 1, "the broker link stays");
    t.net.assert_nothing_left();
}

fn accept_relayed<'a>(source: NodeName, data: &'a [u8]) -> Message<'a> {
    Message::new(
        0,
        Body::AcceptRelayedMessage(AcceptRelayedMessage {
            source,
            data,
            padding: 0,
            driver_objects: DriverObjectArray::new(0, 0),
        }),
    )
}

#[test]
fn accept_relayed_message_only_comes_from_the_broker() {
    let mut t = three();
    let m = accept_relayed(name(0), &[]);
    let e = t
        .net
        .inject(1, t.direct[0], &frame(&m, 0), Vec::new())
        .unwrap_err();
    assert_eq!(
        e,
        NodeError::RelayOutOfRole(MessageId::AcceptRelayedMessage)
    );
    // Nor does a broker take one (no link of the broker goes to a broker).
    let m = accept_relayed(name(2), &[]);
    let e = t
        .net
        .inject(1, t.to_broker[0], &frame(&m, 0), Vec::new())
        .unwrap_err();
    assert_eq!(
        e,
        NodeError::RelayOutOfRole(MessageId::AcceptRelayedMessage)
    );
    t.net.run();
    assert_eq!(t.net.dropped.len(), 2, "{:?}", t.net.dropped);
    t.net.assert_nothing_left();
}

#[test]
fn relayed_messages_from_the_broker_are_judged_as_the_senders() {
    let mut t = three();
    let to_2 = t.net.end(0, 2).unwrap().link;
    // An unknown source, and an inner message that is never relayed: ignored.
    let route_closed = {
        let m = Message::new(
            0,
            Body::RouteClosed(ipcz_wire::messages::RouteClosed {
                sublink: SublinkId(0),
                sequence_length: SequenceNumber(0),
            }),
        );
        let mut b = Vec::new();
        m.encode(&mut b).unwrap();
        b
    };
    for m in [
        accept_relayed(NodeName { high: 9, low: 9 }, &[1, 2, 3]),
        accept_relayed(name(1), &route_closed),
    ] {
        t.net.inject(0, to_2, &frame(&m, 0), Vec::new()).unwrap();
    }
    t.net.run();
    assert!(t.net.dropped.is_empty(), "{:?}", t.net.dropped);

    // The object half of a split parcel, which this node never joins: the
    // sender's link is dropped, the broker's stays.
    let split = {
        let m = Message::new(
            0,
            Body::AcceptParcelDriverObjects(AcceptParcelDriverObjects {
                sublink: SublinkId(5),
                sequence_number: SequenceNumber(0),
                driver_objects: DriverObjectArray::new(0, 0),
            }),
        );
        let mut b = Vec::new();
        m.encode(&mut b).unwrap();
        b
    };
    let m = accept_relayed(name(1), &split);
    t.net.inject(0, to_2, &frame(&m, 0), Vec::new()).unwrap();
    t.net.run();
    assert_eq!(t.net.dropped.len(), 1, "{:?}", t.net.dropped);
    let (node, link, error) = &t.net.dropped[0];
    assert_eq!((*node, *link), (2, t.direct[1]));
    assert_eq!(
        *error,
        NodeError::RelayedObject {
            sublink: SublinkId(5)
        }
    );
    assert_eq!(t.net.nodes[2].link_to(name(0)), Some(t.to_broker[1]));

    // A cut inner message: the sender (here reconnected) is at fault.
    let (l12, l21) = t.net.connect(1, 2);
    t.direct = [l12, l21];
    let m = accept_relayed(name(1), &split[..10]);
    t.net.inject(0, to_2, &frame(&m, 0), Vec::new()).unwrap();
    t.net.run();
    assert_eq!(t.net.dropped.len(), 2, "{:?}", t.net.dropped);
    assert!(matches!(
        t.net.dropped[1],
        (2, l, NodeError::Message(_)) if l == l21
    ));
    assert_eq!(t.net.nodes[2].link_count(), 1);
    t.net.assert_nothing_left();
}
