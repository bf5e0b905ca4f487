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
