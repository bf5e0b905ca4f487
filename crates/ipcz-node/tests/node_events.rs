//! The bounded event queue through the node API: Readable coalesces per
//! portal, and at the limit portal notifications wait in order without loss.

use std::collections::BTreeSet;

use ipcz_node::node::{MAX_QUEUED_EVENTS, Node, NodeConfig, NodeEvent};
use ipcz_node::sim::SharedHeap;
use ipcz_wire::types::NodeName;

fn node() -> Node<SharedHeap> {
    Node::new(NodeName { high: 9, low: 9 }, NodeConfig::default())
}

#[test]
fn many_parcels_to_one_portal_make_one_readable_event() {
    let mut n = node();
    let (a, b) = n.create_portal_pair();
    for i in 0..1000u32 {
        n.put(a, i.to_le_bytes().to_vec(), Vec::new()).unwrap();
    }
    assert_eq!(n.pending_event_count(), 1);
    assert!(matches!(n.poll_event(), Some(NodeEvent::Readable { portal }) if portal == b));
    let mut got = 0;
    while n.get(b).unwrap().is_some() {
        got += 1;
    }
    assert_eq!(got, 1000);
    // Once polled, the next parcel is news again.
    n.put(a, b"again".to_vec(), Vec::new()).unwrap();
    assert!(matches!(n.poll_event(), Some(NodeEvent::Readable { portal }) if portal == b));
    assert!(n.get(b).unwrap().is_some());
    n.close(a).unwrap();
    n.close(b).unwrap();
    while n.poll_event().is_some() {}
    assert_eq!(n.router_count(), 0);
}

#[test]
fn portal_events_beyond_the_limit_wait_in_order_and_none_is_lost() {
    let mut n = node();
    let pairs: Vec<_> = (0..MAX_QUEUED_EVENTS + 50)
        .map(|_| n.create_portal_pair())
        .collect();
    for (a, _) in &pairs {
        n.put(*a, b"x".to_vec(), Vec::new()).unwrap();
        n.put(*a, b"y".to_vec(), Vec::new()).unwrap();
    }
    // The first sender closes last: its peer's PeerClosed follows its Readable.
    n.close(pairs[0].0).unwrap();
    assert_eq!(n.queued_event_count(), MAX_QUEUED_EVENTS);
    assert_eq!(n.pending_event_count(), pairs.len() + 1);
    let mut seen = Vec::new();
    let mut closed = None;
    while let Some(e) = n.poll_event() {
        assert!(n.queued_event_count() <= MAX_QUEUED_EVENTS);
        match e {
            NodeEvent::Readable { portal } => seen.push(portal),
            NodeEvent::PeerClosed { portal, .. } => closed = Some((portal, seen.len())),
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<_> = pairs.iter().map(|(_, b)| *b).collect();
    assert_eq!(seen, expected, "one Readable per portal, in order");
    assert_eq!(closed, Some((pairs[0].1, pairs.len())));
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), pairs.len());
    for (a, b) in pairs {
        assert_eq!(n.get(b).unwrap().unwrap().data, b"x");
        assert_eq!(n.get(b).unwrap().unwrap().data, b"y");
        let _ = n.close(a);
        n.close(b).unwrap();
    }
    while n.poll_event().is_some() {}
    assert_eq!(n.router_count(), 0);
    assert_eq!(n.pending_event_count(), 0);
}

#[test]
fn block_buffer_boxes_that_do_not_match_their_mapping_are_refused() {
    use ipcz_node::link::LinkParams;
    use ipcz_node::node::{DriverBox, NodeError};
    use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
    use mojo_wire_kit::{Guid, RegionMode};
    let mut n = node();
    let link = n
        .add_link(
            LinkParams::new(
                NodeName { high: 9, low: 9 },
                NodeName { high: 8, low: 8 },
                ipcz_wire::types::LinkSide::A,
                SharedHeap::new(ipcz_wire::memory::primary::SIZE),
            )
            .initializing_primary_buffer(),
        )
        .unwrap();
    let fd = || std::os::fd::OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    // §11.3: a file smaller than its buffer_size, or a mode the fds do not
    // have, breaks the host; the node refuses to announce such a box.
    for (size, mode) in [(65536, RegionMode::Unsafe), (131072, RegionMode::ReadOnly)] {
        let object = DriverObject::SharedBuffer(SharedBuffer {
            buffer_size: size,
            mode,
            guid: Guid { high: 1, low: 1 },
        });
        let fds = (0..object.fd_count()).map(|_| fd()).collect();
        let buffer = DriverBox::new(object, fds).unwrap();
        assert_eq!(
            n.provide_block_buffer(link, 4096, SharedHeap::new(131072), buffer),
            Err(NodeError::BadBlockBufferBox)
        );
    }
    assert!(n.poll_transmit().is_none());
    n.link_lost(link);
    assert_eq!(n.link_count(), 0);
}
