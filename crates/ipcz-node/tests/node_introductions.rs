//! Introductions (§7) between a broker and two non-brokers in memory: a
//! route whose ends land on the two non-brokers is reduced through an
//! introduction the non-brokers ask for, so the broker's proxy goes away
//! and parcels flow directly; introductions to unknown nodes are rejected;
//! unrequested offers are accepted; link loss fails what waited. Each test
//! ends with nothing left.

mod node_support;

use ipcz_node::memory::NodeLinkMemory;
use ipcz_node::node::{
    DriverBox, MAX_PENDING_MEMORY_REQUESTS_PER_LINK, NodeConfig, NodeError, NodeHandle, NodeRole,
};
use ipcz_node::router::{Handle, NodeLinkId, RouterId};
use ipcz_wire::driver_object::DriverObject;
use ipcz_wire::frame::FrameHeader;
use ipcz_wire::message::Message;
use ipcz_wire::messages::{AcceptIntroduction, Body, BypassPeer, RequestMemory};
use ipcz_wire::types::{DriverObjectIndex, LinkSide, NodeName, NodeType, SublinkId};
use node_support::{Net, fd, name};

const BROKER: usize = 0;

fn broker_and_two() -> Net {
    let broker = NodeConfig {
        role: NodeRole::Broker,
        ..NodeConfig::default()
    };
    Net::new(&[broker, NodeConfig::default(), NodeConfig::default()])
}

fn received_portal(net: &mut Net, n: usize, portal: RouterId) -> RouterId {
    let mut got = net.take_all(n, portal);
    assert_eq!(got.len(), 1);
    match got.pop().unwrap().handles.pop() {
        Some(NodeHandle::Portal(p)) => p,
        other => panic!("portal expected, got {other:?}"),
    }
}

/// Message names delivered to node `n` from log entry `from` on.
fn names_since(net: &Net, from: usize, n: usize) -> Vec<&'static str> {
    net.log[from..]
        .iter()
        .filter(|(to, _)| *to == n)
        .filter_map(|(_, id)| ipcz_wire::messages::MessageId(*id).name())
        .collect()
}

fn frame_of(m: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader::new(m.num_fds() as u16, 0)
        .encode_frame(&[], m, &mut out)
        .unwrap();
    out
}

fn close_all(net: &mut Net, n: usize, portals: &[RouterId]) {
    for p in portals {
        let _ = net.nodes[n].close(*p);
    }
}

/// Broker's portals to nodes 1 and 2 (sublink 1 is the application's) and theirs.
struct Star {
    net: Net,
    b1: Vec<RouterId>,
    n1: Vec<RouterId>,
    b2: Vec<RouterId>,
    n2: Vec<RouterId>,
}

fn star() -> Star {
    let mut net = broker_and_two();
    let (_, _, b1, n1) = net.connect_with_portals(BROKER, 1, 2);
    let (_, _, b2, n2) = net.connect_with_portals(BROKER, 2, 2);
    net.run();
    Star {
        net,
        b1,
        n1,
        b2,
        n2,
    }
}

impl Star {
    fn finish(mut self) {
        close_all(&mut self.net, BROKER, &self.b1);
        close_all(&mut self.net, BROKER, &self.b2);
        close_all(&mut self.net, 1, &self.n1);
        close_all(&mut self.net, 2, &self.n2);
        self.net.assert_idle_and_clean();
    }
}

#[test]
fn a_route_between_two_non_brokers_is_reduced_through_an_introduction() {
    let mut s = star();
    let net = &mut s.net;
    let broker_routers = net.nodes[BROKER].router_count();
    let (x, y) = net.nodes[BROKER].create_portal_pair();
    net.nodes[BROKER]
        .put(s.b1[1], b"x".to_vec(), vec![Handle::Portal(x)])
        .unwrap();
    net.run();
    let x1 = received_portal(net, 1, s.n1[1]);
    // Parcels from node 1 are in flight while y moves to node 2.
    net.nodes[1].put(x1, b"early".to_vec(), Vec::new()).unwrap();
    let mark = net.log.len();
    net.nodes[BROKER]
        .put(s.b2[1], b"y".to_vec(), vec![Handle::Portal(y)])
        .unwrap();
    net.run();
    let y2 = received_portal(net, 2, s.n2[1]);

    // Node 2 asked the broker; both got the introduction (node 1 unasked).
    assert!(names_since(net, mark, BROKER).contains(&"RequestIntroduction"));
    assert!(names_since(net, mark, 1).contains(&"AcceptIntroduction"));
    assert!(names_since(net, mark, 2).contains(&"AcceptIntroduction"));
    assert!(net.end(1, 2).is_some() && net.end(2, 1).is_some());
    let l21 = net.nodes[2].link_to(name(1)).unwrap();
    assert_eq!(net.nodes[2].link(l21).unwrap().side(), LinkSide::A);
    let l12 = net.nodes[1].link_to(name(2)).unwrap();
    assert_eq!(net.nodes[1].link(l12).unwrap().side(), LinkSide::B);
    assert!(net.half_links.is_empty());
    // The route reduced: the broker keeps only its initial portals.
    assert_eq!(net.nodes[BROKER].router_count(), broker_routers);
    assert_eq!(net.nodes[BROKER].pending_introduction_count(), 0);
    assert!(!net.nodes[1].has_pending() && !net.nodes[2].has_pending());

    // From now on parcels go directly, the broker sees none of them.
    let mark = net.log.len();
    net.nodes[1]
        .put(x1, b"direct".to_vec(), Vec::new())
        .unwrap();
    net.nodes[2].put(y2, b"back".to_vec(), Vec::new()).unwrap();
    net.run();
    assert!(names_since(net, mark, BROKER).is_empty());
    let got: Vec<_> = net.take_all(2, y2).into_iter().map(|p| p.data).collect();
    assert_eq!(got, vec![b"early".to_vec(), b"direct".to_vec()]);
    assert_eq!(net.take_all(1, x1)[0].data, b"back");

    net.nodes[1].close(x1).unwrap();
    net.run();
    assert!(names_since(net, mark, BROKER).is_empty());
    let status = net.nodes[2].status(y2).unwrap();
    assert!(status.peer_closed && !status.disconnected);
    net.nodes[2].close(y2).unwrap();
    // Every frame any node sent passed its receiver's checks (§11.3).
    assert!(net.dropped.is_empty(), "{:?}", net.dropped);
    s.finish();
}

/// A BypassPeer from `from` to node `to` over their link, for the router
/// on `sublink`, naming `target`.
fn inject_bypass_peer(net: &mut Net, from: usize, to: usize, sublink: u64, target: NodeName) {
    let link = net.end(from, to).unwrap().link;
    let m = Message::new(
        0,
        Body::BypassPeer(BypassPeer {
            sublink: SublinkId(sublink),
            reserved0: 0,
            bypass_target_node: target,
            bypass_target_sublink: SublinkId(40),
        }),
    );
    net.inject(from, link, &frame_of(&m), Vec::new()).unwrap();
}

#[test]
fn an_introduction_to_an_unknown_node_is_rejected() {
    let mut s = star();
    let net = &mut s.net;
    let nobody = NodeName {
        high: 0xdead,
        low: 1,
    };
    let mark = net.log.len();
    // The broker (as node 1's outward peer) asks it to bypass toward nobody.
    inject_bypass_peer(net, BROKER, 1, 1, nobody);
    net.run();
    assert_eq!(
        names_since(net, mark, BROKER),
        ["RequestIntroduction", "RouteDisconnected"]
    );
    assert!(names_since(net, mark, 1).contains(&"RejectIntroduction"));
    let status = net.nodes[1].status(s.n1[1]).unwrap();
    assert!(status.peer_closed && status.disconnected);
    assert!(net.nodes[BROKER].status(s.b1[1]).unwrap().disconnected);
    // The other route through the broker is untouched.
    net.nodes[2]
        .put(s.n2[1], b"fine".to_vec(), Vec::new())
        .unwrap();
    net.run();
    assert_eq!(net.take_all(BROKER, s.b2[1]).len(), 1);

    // A broker needing a node it has no link to fails at once, asking nobody.
    let mark = net.log.len();
    inject_bypass_peer(net, 2, BROKER, 1, nobody);
    net.run();
    assert_eq!(names_since(net, mark, 2), ["RouteDisconnected"]);
    assert!(net.nodes[BROKER].status(s.b2[1]).unwrap().disconnected);
    s.finish();
}

#[test]
fn a_broker_that_cannot_create_an_introduction_rejects_it() {
    let mut s = star();
    let net = &mut s.net;
    net.refuse_introductions = true;
    let mark = net.log.len();
    // Node 2 (reached by the broker) is a real node: the broker tries.
    inject_bypass_peer(net, BROKER, 1, 1, name(2));
    net.run();
    assert!(names_since(net, mark, 1).contains(&"RejectIntroduction"));
    assert!(net.nodes[1].status(s.n1[1]).unwrap().disconnected);
    assert!(net.end(1, 2).is_none());
    s.finish();
}

/// Injects from the broker to node `to` an AcceptIntroduction of `other`
/// over the region of `buffer`.
fn offer(net: &mut Net, to: usize, other: NodeName, side: LinkSide, buffer: DriverObject) {
    let mut m = Message::new(
        0,
        Body::AcceptIntroduction(AcceptIntroduction {
            name: other,
            link_side: side,
            remote_node_type: NodeType::NORMAL,
            padding: 0,
            remote_protocol_version: 0,
            transport: DriverObjectIndex(0),
            memory: DriverObjectIndex(1),
            remote_features: Some(vec![0]),
        }),
    );
    m.push_object(DriverObject::Transport(Default::default()));
    m.push_object(buffer);
    let link = net.end(BROKER, to).unwrap().link;
    net.inject(BROKER, link, &frame_of(&m), vec![fd(), fd()])
        .unwrap();
}

#[test]
fn unrequested_introductions_build_a_working_link_and_redundant_ones_are_dropped() {
    let mut s = star();
    let net = &mut s.net;
    // The broker creates and initializes the region, then tells both.
    let (region, memory) = net.new_region(ipcz_wire::memory::primary::SIZE);
    NodeLinkMemory::initialize_primary_buffer(&region).unwrap();
    let buffer = *memory.object();
    offer(net, 1, name(2), LinkSide::A, buffer);
    offer(net, 2, name(1), LinkSide::B, buffer);
    net.run();
    assert!(net.introduced.contains(&(1, name(2))) && net.introduced.contains(&(2, name(1))));
    assert!(net.end(1, 2).is_some());
    assert_eq!(net.nodes[1].pending_introduction_count(), 0);

    // A route whose ends land on 1 and 2 now reduces over that link
    // without asking the broker for anything.
    let mark = net.log.len();
    let (x, y) = net.nodes[BROKER].create_portal_pair();
    net.nodes[BROKER]
        .put(s.b1[1], b"x".to_vec(), vec![Handle::Portal(x)])
        .unwrap();
    net.run();
    net.nodes[BROKER]
        .put(s.b2[1], b"y".to_vec(), vec![Handle::Portal(y)])
        .unwrap();
    net.run();
    let x1 = received_portal(net, 1, s.n1[1]);
    let y2 = received_portal(net, 2, s.n2[1]);
    assert!(!names_since(net, mark, BROKER).contains(&"RequestIntroduction"));
    net.nodes[1]
        .put(x1, b"direct".to_vec(), Vec::new())
        .unwrap();
    net.run();
    assert_eq!(net.take_all(2, y2)[0].data, b"direct");

    // A redundant offer is dropped with its fds.
    let (_, memory) = net.new_region(ipcz_wire::memory::primary::SIZE);
    offer(net, 2, name(1), LinkSide::B, *memory.object());
    net.run();
    assert_eq!(net.nodes[2].link_count(), 2);
    assert_eq!(net.nodes[2].received_fds_alive(), 0);
    assert_eq!(net.nodes[2].pending_introduction_count(), 0);
    net.nodes[1].close(x1).unwrap();
    net.nodes[2].close(y2).unwrap();
    s.finish();
}

#[test]
fn broker_link_loss_fails_the_pending_introduction_and_only_it() {
    let mut s = star();
    let net = &mut s.net;
    net.deferred_introductions = Some(Vec::new());
    inject_bypass_peer(net, BROKER, 1, 1, name(2));
    net.run();
    assert_eq!(net.nodes[1].pending_introduction_count(), 1);
    assert_eq!(net.nodes[BROKER].pending_introduction_count(), 1);
    assert!(net.nodes[1].has_pending());
    // Node 1's broker link goes while the broker creates the introduction.
    let l10 = net.end(1, BROKER).unwrap().link;
    net.close_transport(1, l10);
    net.run();
    assert_eq!(net.nodes[1].pending_introduction_count(), 0);
    assert_eq!(net.nodes[BROKER].pending_introduction_count(), 0);
    assert!(!net.nodes[1].has_pending());
    assert!(net.nodes[1].status(s.n1[1]).unwrap().disconnected);
    // Answering now finds nothing pending.
    let stale = net.deferred_introductions.take().unwrap();
    assert_eq!(stale.len(), 1);
    let (n, requester, target) = stale[0];
    let (region, first) = net.new_region(ipcz_wire::memory::primary::SIZE);
    let second = DriverBox::new(*first.object(), vec![fd()]).unwrap();
    let transport =
        || DriverBox::new(DriverObject::Transport(Default::default()), vec![fd()]).unwrap();
    assert_eq!(
        net.nodes[n].introduce(
            requester,
            target,
            region,
            [first, second],
            [transport(), transport()]
        ),
        Err(NodeError::IntroductionNotPending(target))
    );
    // Node 2's route through the broker still works.
    net.nodes[2]
        .put(s.n2[1], b"fine".to_vec(), Vec::new())
        .unwrap();
    net.run();
    assert_eq!(net.take_all(BROKER, s.b2[1]).len(), 1);
    s.finish();
}

#[test]
fn the_broker_answers_memory_requests_up_to_a_limit() {
    let mut s = star();
    let net = &mut s.net;
    let l10 = net.end(1, BROKER).unwrap().link;
    let lb1: NodeLinkId = net.end(BROKER, 1).unwrap().link;
    let request = frame_of(&Message::new(
        0,
        Body::RequestMemory(RequestMemory {
            size: 8192,
            padding: 0,
        }),
    ));
    for _ in 0..3 {
        net.inject(1, l10, &request, Vec::new()).unwrap();
    }
    net.collect();
    net.collect();
    assert_eq!(net.memory_requests, vec![(BROKER, lb1, 8192); 3]);
    // Each answered with ProvideMemory and its buffer (taken off the wire
    // here: node 1, which never asked, would refuse them).
    let answers = net.in_flight.remove(&(BROKER, lb1)).unwrap_or_default();
    let ids: Vec<u8> = answers.iter().map(|f| f.bytes[18]).collect();
    assert_eq!(ids, vec![65; 3]);
    assert!(answers.iter().all(|f| f.fds.len() == 1));
    drop(answers);

    // Unanswered requests are bounded: one more than the limit drops the link.
    for _ in 0..MAX_PENDING_MEMORY_REQUESTS_PER_LINK {
        net.nodes[BROKER]
            .handle_frame(lb1, &request, Vec::new())
            .unwrap();
    }
    assert_eq!(
        net.nodes[BROKER].handle_frame(lb1, &request, Vec::new()),
        Err(NodeError::TooManyMemoryRequests {
            limit: MAX_PENDING_MEMORY_REQUESTS_PER_LINK
        })
    );
    net.run();
    assert!(net.nodes[1].status(s.n1[1]).unwrap().disconnected);
    s.finish();
}

#[test]
fn inherit_mode_asks_on_the_broker_link_not_the_referrer_link() {
    // Node 3 is node 1's referrer (a non-broker host sharing its broker, §4.3):
    // node 1 has a broker link and a referrer link with the initial portals.
    let broker = NodeConfig {
        role: NodeRole::Broker,
        ..NodeConfig::default()
    };
    let nb = NodeConfig::default();
    let mut net = Net::new(&[broker, nb, nb, nb]);
    let (_, _, b2, n2) = net.connect_with_portals(BROKER, 2, 2);
    let (_, _, b3, h3) = net.connect_with_portals(BROKER, 3, 2);
    let (_, l10) = net.connect(BROKER, 1);
    let (_, l13, h1, n1) = net.connect_with_portals(3, 1, 2);
    net.run();
    assert_eq!(net.nodes[1].broker_link(), Some(l10));
    assert_ne!(net.nodes[1].broker_link(), Some(l13));

    let (x, y) = net.nodes[BROKER].create_portal_pair();
    net.nodes[BROKER]
        .put(b2[1], b"x".to_vec(), vec![Handle::Portal(x)])
        .unwrap();
    net.nodes[BROKER]
        .put(b3[1], b"y".to_vec(), vec![Handle::Portal(y)])
        .unwrap();
    net.run();
    let x2 = received_portal(&mut net, 2, n2[1]);
    let y3 = received_portal(&mut net, 3, h3[1]);
    // The host passes its end on to node 1 over the referrer link.
    let mark = net.log.len();
    net.nodes[3]
        .put(h1[1], b"y".to_vec(), vec![Handle::Portal(y3)])
        .unwrap();
    net.run();
    let y1 = received_portal(&mut net, 1, n1[1]);
    let to_broker = names_since(&net, mark, BROKER);
    assert!(to_broker.contains(&"RequestIntroduction"), "{to_broker:?}");
    assert!(!names_since(&net, mark, 3).contains(&"RequestIntroduction"));
    assert!(net.end(1, 2).is_some(), "1 and 2 were introduced");

    let mark = net.log.len();
    net.nodes[1].put(y1, b"to 2".to_vec(), Vec::new()).unwrap();
    net.nodes[2].put(x2, b"to 1".to_vec(), Vec::new()).unwrap();
    net.run();
    assert!(names_since(&net, mark, BROKER).is_empty());
    assert!(names_since(&net, mark, 3).is_empty());
    assert_eq!(net.take_all(2, x2)[0].data, b"to 2");
    assert_eq!(net.take_all(1, y1)[0].data, b"to 1");
    // Nothing of the route is left on the broker or the host.
    assert_eq!(net.nodes[BROKER].router_count(), 4);
    assert_eq!(net.nodes[3].router_count(), 4);
    net.nodes[1].close(y1).unwrap();
    net.nodes[2].close(x2).unwrap();
    close_all(&mut net, BROKER, &b2);
    close_all(&mut net, BROKER, &b3);
    close_all(&mut net, 2, &n2);
    close_all(&mut net, 3, &h3);
    close_all(&mut net, 3, &h1);
    close_all(&mut net, 1, &n1);
    assert!(net.dropped.is_empty(), "{:?}", net.dropped);
    net.assert_idle_and_clean();
}

#[test]
fn a_rejection_fails_exactly_the_routers_that_waited_for_that_node() {
    let mut s = star();
    let net = &mut s.net;
    let nobody = NodeName {
        high: 0xdead,
        low: 2,
    };
    net.deferred_introductions = Some(Vec::new());
    inject_bypass_peer(net, BROKER, 1, 0, nobody);
    inject_bypass_peer(net, BROKER, 1, 1, name(2));
    net.run();
    // The broker rejected nobody at once; node 2's introduction is pending.
    assert!(net.nodes[1].status(s.n1[0]).unwrap().disconnected);
    assert!(!net.nodes[1].status(s.n1[1]).unwrap().disconnected);
    assert_eq!(net.nodes[1].pending_introduction_count(), 1);
    net.refuse_introductions = true;
    net.answer_deferred_introductions();
    net.run();
    assert!(net.nodes[1].status(s.n1[1]).unwrap().disconnected);
    assert_eq!(net.nodes[1].pending_introduction_count(), 0);
    assert!(!net.nodes[1].has_pending());
    s.finish();
}

#[test]
fn an_offer_whose_broker_link_is_gone_is_ignored() {
    let mut s = star();
    let net = &mut s.net;
    let (_, memory) = net.new_region(ipcz_wire::memory::primary::SIZE);
    // The offer arrives, then the broker link goes before the caller maps it.
    offer(net, 1, name(2), LinkSide::A, *memory.object());
    let l10 = net.end(1, BROKER).unwrap().link;
    net.close_transport(1, l10);
    net.run();
    assert_eq!(
        net.introduction_errors,
        vec![(1, NodeError::IntroductionNotPending(name(2)))]
    );
    assert_eq!(net.nodes[1].link_count(), 0);
    assert_eq!(net.nodes[1].received_fds_alive(), 0);
    s.finish();
}

#[test]
fn the_brokers_accept_introduction_has_the_layout_of_the_spec_example() {
    let mut s = star();
    let net = &mut s.net;
    net.deferred_introductions = Some(Vec::new());
    let (x, y) = net.nodes[BROKER].create_portal_pair();
    net.nodes[BROKER]
        .put(s.b1[1], b"x".to_vec(), vec![Handle::Portal(x)])
        .unwrap();
    net.run();
    net.nodes[BROKER]
        .put(s.b2[1], b"y".to_vec(), vec![Handle::Portal(y)])
        .unwrap();
    net.run();
    let b1 = net.end(BROKER, 1).unwrap().link;
    let b2 = net.end(BROKER, 2).unwrap().link;
    let (n, requester, target) = net.deferred_introductions.take().unwrap()[0];
    assert_eq!((n, requester, target), (BROKER, name(2), name(1)));
    net.answer_introduction(n, requester, target);
    // §9.9.5: a 200-byte frame with 2 fds (socket, then memory), message id
    // 11, the introduced name, our side, a non-broker, objects 0 and 1, one
    // features word.
    for (link, introduced, side) in [(b2, name(1), 0u8), (b1, name(2), 1u8)] {
        let f = net.take_frame(BROKER, link).unwrap();
        let b = &f.bytes;
        assert_eq!(b.len(), 200);
        assert_eq!(&b[0..8], &[16, 0, 2, 0, 200, 0, 0, 0]);
        assert_eq!(b[18], 11);
        assert_eq!(&b[0x30..0x38], &introduced.high.to_le_bytes());
        assert_eq!(&b[0x38..0x40], &introduced.low.to_le_bytes());
        assert_eq!(
            &b[0x40..0x50],
            &[side, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            &b[0x50..0x60],
            &[72, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            &b[0x70..0x80],
            &[112, 0, 0, 0, 0, 0, 1, 0, 136, 0, 0, 0, 1, 0, 1, 0]
        );
        assert_eq!(
            &b[0x80..0x90],
            &[24, 0, 0, 0, 16, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(&b[0xa8..0xb0], &[32, 0, 0, 0, 0, 0, 2, 0]);
        assert_eq!(f.fds.len(), 2);
        // Back on the wire: the introduction completes.
        net.in_flight
            .entry((BROKER, link))
            .or_default()
            .push_front(f);
    }
    net.run();
    assert!(net.end(1, 2).is_some());
    assert!(net.dropped.is_empty(), "{:?}", net.dropped);
    let x1 = received_portal(net, 1, s.n1[1]);
    let y2 = received_portal(net, 2, s.n2[1]);
    net.nodes[1].close(x1).unwrap();
    net.nodes[2].close(y2).unwrap();
    s.finish();
}
