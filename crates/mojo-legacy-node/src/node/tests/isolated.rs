//! Isolated connections (spec §3.7): the `ACCEPT_PEER` exchange and the
//! merge, between standalone nodes and between nodes that each belong to a
//! network of their own, and what the node refuses.

use mojo_legacy_wire::node::{
    AcceptPeer, NodeChannelContent, NodeFrame, NodeMessage, NodeMessageType,
};
use mojo_legacy_wire::{NodeName, PortName, Profile, Token};
use mojo_wire_kit::SeededRandom;

use super::sim::probed_fd;
use crate::node::{Handle, IsolatedId, IsolatedOutput, LegacyNode, NodeError, PeerRole, PortRef};
use crate::ports::names;

/// Most deliveries one `run` may make before the test fails as "never idle".
const MAX_DELIVERIES: usize = 10_000;

/// Nodes joined by network links (by name) and isolated connections (by
/// id), every frame delivered at once through the real encoders.
struct World {
    nodes: Vec<LegacyNode>,
    /// The two ends of each isolated channel: (node, its id).
    wires: Vec<[(usize, IsolatedId); 2]>,
    /// `Closed` reports: (node, id, error).
    closed: Vec<(usize, IsolatedId, Option<NodeError>)>,
    /// The `ACCEPT_PEER`s seen: (sender, its port name).
    accept_peers: Vec<(usize, PortName)>,
}

fn node(n: u64) -> LegacyNode {
    LegacyNode::new(names::node_name(0x150 + n, n), SeededRandom::new(n))
}

impl World {
    fn new(nodes: Vec<LegacyNode>) -> Self {
        Self {
            nodes,
            wires: Vec::new(),
            closed: Vec::new(),
            accept_peers: Vec::new(),
        }
    }

    /// Links `broker` and `client` as an invitation would.
    fn network(&mut self, broker: usize, client: usize, profile: Profile) {
        let (b, c) = (self.nodes[broker].name(), self.nodes[client].name());
        self.nodes[broker]
            .add_peer(c, profile, PeerRole::Client)
            .unwrap();
        self.nodes[client]
            .add_peer(b, profile, PeerRole::Broker)
            .unwrap();
    }

    /// An isolated connection between `a` and `b`: both call
    /// `connect_isolated`; returns their pipe ends.
    fn isolate(&mut self, a: usize, b: usize, profile: Profile) -> (PortRef, PortRef) {
        let (ia, pa) = self.nodes[a].connect_isolated(profile).unwrap();
        let (ib, pb) = self.nodes[b].connect_isolated(profile).unwrap();
        self.wires.push([(a, ia), (b, ib)]);
        (pa, pb)
    }

    fn index_of(&self, name: NodeName) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name() == name)
            .expect("a frame for a node of the world")
    }

    fn other_end(&self, node: usize, id: IsolatedId) -> (usize, IsolatedId) {
        for [x, y] in &self.wires {
            if *x == (node, id) {
                return *y;
            }
            if *y == (node, id) {
                return *x;
            }
        }
        panic!("{id} of node {node} has no wire");
    }

    fn step(&mut self) -> bool {
        let mut moved = false;
        for i in 0..self.nodes.len() {
            while let Some(t) = self.nodes[i].poll_transmit() {
                moved = true;
                let j = self.index_of(t.peer);
                let from = self.nodes[i].name();
                self.nodes[j]
                    .handle_frame(from, &t.bytes, t.fds)
                    .expect("a network frame");
            }
            while let Some(out) = self.nodes[i].poll_isolated() {
                moved = true;
                match out {
                    IsolatedOutput::Transmit { id, transmit } => {
                        if let Some(port) = accept_peer_port(&transmit.bytes) {
                            self.accept_peers.push((i, port));
                        }
                        let (j, jid) = self.other_end(i, id);
                        self.nodes[j]
                            .handle_isolated_frame(jid, &transmit.bytes, transmit.fds)
                            .expect("an isolated frame");
                    }
                    IsolatedOutput::Closed { id, error } => self.closed.push((i, id, error)),
                }
            }
        }
        moved
    }

    fn run(&mut self) {
        for _ in 0..MAX_DELIVERIES {
            if !self.step() {
                return;
            }
        }
        panic!("never idle");
    }

    fn read(&mut self, n: usize, port: PortRef) -> (Vec<u8>, Vec<Handle>) {
        self.nodes[n]
            .read_message(port)
            .unwrap()
            .expect("a message")
    }
}

/// The port an `ACCEPT_PEER` frame names, if it is one.
fn accept_peer_port(bytes: &[u8]) -> Option<PortName> {
    let (frame, _) = NodeFrame::decode(bytes).ok()?;
    match frame.content {
        NodeChannelContent::Message(NodeMessage::AcceptPeer(a)) => Some(a.port_name),
        _ => None,
    }
}

fn frame(m: NodeMessage<'_>, profile: Profile) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode_frame(profile, 0, &mut out).unwrap();
    out
}

fn accept_peer(peer_name: NodeName, port_name: PortName) -> Vec<u8> {
    frame(
        NodeMessage::AcceptPeer(AcceptPeer {
            token: Token::new(7, 7),
            peer_name,
            port_name,
            trailing: &[],
        }),
        Profile::Libchrome,
    )
}

/// A message each way on the isolated pipe, then a pipe end and an fd
/// through it, used both ways; then everything closes cleanly.
fn exchange(w: &mut World, (a, pa): (usize, PortRef), (b, pb): (usize, PortRef)) {
    w.nodes[a].write_message(pa, b"to b", vec![]).unwrap();
    w.nodes[b].write_message(pb, b"to a", vec![]).unwrap();
    w.run();
    assert_eq!(w.read(b, pb).0, b"to b");
    assert_eq!(w.read(a, pa).0, b"to a");

    let (mine, theirs) = w.nodes[a].create_pipe().unwrap();
    let (fd, probe) = probed_fd();
    let handles = vec![Handle::MessagePipe(theirs), Handle::PlatformHandle(fd)];
    w.nodes[a].write_message(pa, b"handles", handles).unwrap();
    w.run();
    let (bytes, mut handles) = w.read(b, pb);
    assert_eq!(bytes, b"handles");
    let Some(Handle::PlatformHandle(fd)) = handles.pop() else {
        panic!("no fd")
    };
    let Some(Handle::MessagePipe(got)) = handles.pop() else {
        panic!("no pipe")
    };
    assert!(!probe.is_closed());
    drop(fd);
    assert!(probe.is_closed());
    w.nodes[b].write_message(got, b"over it", vec![]).unwrap();
    w.nodes[a].write_message(mine, b"and back", vec![]).unwrap();
    w.run();
    assert_eq!(w.read(a, mine).0, b"over it");
    assert_eq!(w.read(b, got).0, b"and back");
    // The moved end's proxies collapsed: only the user ends are left.
    assert_eq!(w.nodes[a].proxy_count() + w.nodes[b].proxy_count(), 0);

    w.nodes[a].close_port(mine).unwrap();
    w.nodes[b].close_port(got).unwrap();
    w.nodes[a].close_port(pa).unwrap();
    w.run();
    let status = w.nodes[b].port_status(pb).unwrap();
    assert!(status.peer_closed);
    w.nodes[b].close_port(pb).unwrap();
    w.run();
}

#[test]
fn two_standalone_nodes_get_one_pipe_whichever_side_merges() {
    let mut merged_by = [0usize; 2];
    for (seed, profile) in (1..=8).zip([Profile::Libchrome, Profile::Desktop].into_iter().cycle()) {
        let mut w = World::new(vec![node(seed), node(seed + 100)]);
        let (pa, pb) = w.isolate(0, 1, profile);
        w.run();
        let (n0, n1) = (w.nodes[0].name(), w.nodes[1].name());
        assert_eq!(w.nodes[0].isolated_peer(w.wires[0][0].1), Some(n1));
        assert_eq!(w.nodes[1].isolated_peer(w.wires[0][1].1), Some(n0));
        assert!(w.nodes[0].has_peer(n1) && w.nodes[1].has_peer(n0));
        // The side with the smaller port name merged.
        let ports = w.accept_peers.clone();
        assert_eq!(ports.len(), 2);
        let smaller = ports.iter().min_by_key(|(_, p)| *p).unwrap().0;
        merged_by[smaller] += 1;
        exchange(&mut w, (0, pa), (1, pb));
        assert_eq!(w.nodes[0].port_count() + w.nodes[1].port_count(), 0);
        assert!(w.closed.is_empty());
        assert_eq!(w.nodes[0].pending_transmit_count(), 0);
    }
    assert!(merged_by[0] > 0 && merged_by[1] > 0, "{merged_by:?}");
}

#[test]
fn messages_written_before_the_peer_answers_arrive_in_order() {
    let mut w = World::new(vec![node(3), node(4)]);
    let (ia, pa) = w.nodes[0].connect_isolated(Profile::Libchrome).unwrap();
    for i in 0..3u8 {
        w.nodes[0].write_message(pa, &[i], vec![]).unwrap();
    }
    // The other side only now starts its half.
    let (ib, pb) = w.nodes[1].connect_isolated(Profile::Libchrome).unwrap();
    w.wires.push([(0, ia), (1, ib)]);
    w.run();
    for i in 0..3u8 {
        assert_eq!(w.read(1, pb).0, [i]);
    }
}

/// Network 1: broker 0, client 1. Network 2: broker 2, client 3. The two
/// clients, each already in its network, get an isolated pipe.
fn two_networks(profile: Profile) -> (World, [PortRef; 4], (PortRef, PortRef)) {
    let mut w = World::new((10..14).map(node).collect());
    w.network(0, 1, profile);
    w.network(2, 3, profile);
    let b1 = w.nodes[0].reserve_attachment(b"net").unwrap();
    let (n0, n2) = (w.nodes[0].name(), w.nodes[2].name());
    let c1 = w.nodes[1].request_port_merge(n0, b"net").unwrap();
    let b2 = w.nodes[2].reserve_attachment(b"net").unwrap();
    let c2 = w.nodes[3].request_port_merge(n2, b"net").unwrap();
    let iso = w.isolate(1, 3, profile);
    w.run();
    (w, [b1, c1, b2, c2], iso)
}

#[test]
fn clients_of_two_networks_join_by_an_isolated_pipe_and_keep_their_networks() {
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let (mut w, [b1, c1, b2, c2], (i1, i3)) = two_networks(profile);
        // Each client has its broker and the other client, nothing more.
        let peers = |w: &World, n: usize| w.nodes[n].peers().collect::<Vec<_>>();
        let mut want = vec![w.nodes[0].name(), w.nodes[3].name()];
        want.sort();
        assert_eq!(peers(&w, 1), want);
        assert_eq!(peers(&w, 0), [w.nodes[1].name()]);
        assert_eq!(peers(&w, 2), [w.nodes[3].name()]);

        // The network pipes work as before, the isolated one too.
        w.nodes[0].write_message(b1, b"net 1", vec![]).unwrap();
        w.nodes[3].write_message(c2, b"net 2", vec![]).unwrap();
        w.run();
        assert_eq!(w.read(1, c1).0, b"net 1");
        assert_eq!(w.read(2, b2).0, b"net 2");
        exchange(&mut w, (1, i1), (3, i3));

        // Losing the isolated channel leaves the networks alone.
        let (id, _) = (w.wires[0][0].1, ());
        let (n1, n3) = (w.nodes[1].name(), w.nodes[3].name());
        w.nodes[1].isolated_lost(id);
        w.nodes[3].peer_lost(n1);
        assert!(!w.nodes[1].has_peer(n3) && w.nodes[1].has_peer(w.nodes[0].name()));
        assert_eq!(w.nodes[1].isolated_connection_count(), 0);
        // The peer's own end reported `Closed` for `peer_lost`.
        w.run();
        assert!(matches!(w.closed[..], [(3, _, None)]));
        w.nodes[1].write_message(c1, b"still", vec![]).unwrap();
        w.run();
        assert_eq!(w.read(0, b1).0, b"still");
    }
}

#[test]
fn a_frame_before_accept_peer_fails_the_connection_and_breaks_its_pipe() {
    let mut a = node(1);
    let (id, end) = a.connect_isolated(Profile::Libchrome).unwrap();
    let bytes = frame(
        NodeMessage::Unknown {
            message_type: NodeMessageType(77),
            body: &[1],
        },
        Profile::Libchrome,
    );
    assert_eq!(
        a.handle_isolated_frame(id, &bytes, vec![]),
        Err(NodeError::NotAcceptPeer)
    );
    assert!(a.port_status(end).unwrap().peer_closed);
    // Its unwritten ACCEPT_PEER went with it; the caller hears `Closed`.
    let out: Vec<_> = std::iter::from_fn(|| a.poll_isolated()).collect();
    assert!(
        matches!(&out[..], [IsolatedOutput::Closed { id: i, error: Some(NodeError::NotAcceptPeer) }] if *i == id),
        "{out:?}"
    );
    assert_eq!(a.pending_transmit_count(), 0);
    assert_eq!(
        a.handle_isolated_frame(id, &bytes, vec![]),
        Err(NodeError::UnknownIsolatedConnection { id })
    );
    a.close_port(end).unwrap();
    assert_eq!(a.port_count(), 0);
}

#[test]
fn accept_peer_naming_this_node_the_invalid_node_or_a_bad_port_is_refused() {
    let mut a = node(1);
    let me = a.name();
    let other = names::node_name(9, 9);
    let cases = [
        (
            me,
            names::port_name(1, 1),
            NodeError::InvalidIsolatedPeer { name: me },
        ),
        (
            names::INVALID_NODE,
            names::port_name(1, 1),
            NodeError::InvalidIsolatedPeer {
                name: names::INVALID_NODE,
            },
        ),
        (
            other,
            names::INVALID_PORT,
            NodeError::InvalidMerge {
                port: names::INVALID_PORT,
            },
        ),
    ];
    for (peer, port, want) in cases {
        let (id, end) = a.connect_isolated(Profile::Libchrome).unwrap();
        assert_eq!(
            a.handle_isolated_frame(id, &accept_peer(peer, port), vec![]),
            Err(want)
        );
        assert!(a.port_status(end).unwrap().peer_closed);
        assert!(!a.has_peer(other));
        a.close_port(end).unwrap();
    }
    // Each failure was reported `Closed` with its error.
    let closed = std::iter::from_fn(|| a.poll_isolated())
        .filter(|o| matches!(o, IsolatedOutput::Closed { error: Some(_), .. }))
        .count();
    assert_eq!(closed, 3);
    // Our own connector's name sent back would leave both sides waiting.
    let (id, end) = a.connect_isolated(Profile::Libchrome).unwrap();
    let Some(IsolatedOutput::Transmit { transmit, .. }) = a.poll_isolated() else {
        panic!("no ACCEPT_PEER")
    };
    let ours = accept_peer_port(&transmit.bytes).unwrap();
    assert_eq!(
        a.handle_isolated_frame(id, &accept_peer(other, ours), vec![]),
        Err(NodeError::InvalidMerge { port: ours })
    );
    a.close_port(end).unwrap();
    assert_eq!(a.port_count(), 0);
}

#[test]
fn accept_peer_from_our_broker_is_refused_and_the_broker_link_kept() {
    let mut w = World::new(vec![node(1), node(2)]);
    w.network(0, 1, Profile::Libchrome);
    let broker = w.nodes[0].name();
    let (id, end) = w.nodes[1].connect_isolated(Profile::Libchrome).unwrap();
    let bytes = accept_peer(broker, names::port_name(5, 5));
    assert_eq!(
        w.nodes[1].handle_isolated_frame(id, &bytes, vec![]),
        Err(NodeError::IsolatedPeerInUse { peer: broker })
    );
    assert!(w.nodes[1].has_peer(broker));
    assert!(w.nodes[1].port_status(end).unwrap().peer_closed);
    // ACCEPT_PEER on the network link itself stays an error (§6.1).
    let client = w.nodes[1].name();
    let on_link = accept_peer(client, names::port_name(5, 5));
    assert_eq!(
        w.nodes[0].handle_frame(client, &on_link, vec![]),
        Err(NodeError::UnexpectedMessage {
            message_type: NodeMessageType::ACCEPT_PEER
        })
    );
    assert!(!w.nodes[0].has_peer(client));
}

#[test]
fn a_newer_isolated_connection_to_the_same_node_replaces_the_older() {
    let mut w = World::new(vec![node(1), node(2)]);
    let (old_a, old_b) = w.isolate(0, 1, Profile::Libchrome);
    w.run();
    let (new_a, new_b) = w.isolate(0, 1, Profile::Libchrome);
    w.run();
    let old_ids = w.wires[0];
    // Both sides dropped the old channel and said so.
    let mut closed: Vec<_> = w.closed.iter().map(|(n, id, _)| (*n, *id)).collect();
    closed.sort();
    assert_eq!(closed, old_ids);
    assert!(w.nodes[0].port_status(old_a).unwrap().peer_closed);
    assert!(w.nodes[1].port_status(old_b).unwrap().peer_closed);
    assert_eq!(w.nodes[0].isolated_connection_count(), 1);
    w.nodes[0].close_port(old_a).unwrap();
    w.nodes[1].close_port(old_b).unwrap();
    w.wires.remove(0);
    exchange(&mut w, (0, new_a), (1, new_b));
    assert_eq!(w.nodes[0].port_count() + w.nodes[1].port_count(), 0);
}

#[test]
fn losing_the_channel_before_or_after_accept_peer_breaks_the_pipe() {
    // Before: the end observes closure, nothing else is reported.
    let mut a = node(1);
    let (id, end) = a.connect_isolated(Profile::Libchrome).unwrap();
    a.isolated_lost(id);
    assert!(a.port_status(end).unwrap().peer_closed);
    assert!(a.poll_isolated().is_none());
    a.close_port(end).unwrap();
    assert_eq!(a.port_count(), 0);

    // After: the peer is lost, on either side.
    let mut w = World::new(vec![node(1), node(2)]);
    let (pa, pb) = w.isolate(0, 1, Profile::Libchrome);
    w.run();
    for (n, p) in [(0, pa), (1, pb)] {
        let id = w.wires[0][n].1;
        w.nodes[n].isolated_lost(id);
        assert!(w.nodes[n].port_status(p).unwrap().peer_closed);
        w.nodes[n].close_port(p).unwrap();
        assert_eq!(w.nodes[n].port_count(), 0);
    }
    let (ia, pa) = w.nodes[0].connect_isolated(Profile::Libchrome).unwrap();
    let bytes = accept_peer(names::node_name(9, 9), names::port_name(u64::MAX, 1));
    // Our connector is smaller: we merge; the peer never answers.
    w.nodes[0]
        .handle_isolated_frame(ia, &bytes, vec![])
        .unwrap();
    w.nodes[0].isolated_lost(ia);
    assert!(w.nodes[0].port_status(pa).unwrap().peer_closed);
    let bytes = accept_peer(names::node_name(9, 9), names::port_name(0, 1));
    let (ib, pb) = w.nodes[0].connect_isolated(Profile::Libchrome).unwrap();
    // The peer's is smaller: we wait for a MergePort that never comes.
    w.nodes[0]
        .handle_isolated_frame(ib, &bytes, vec![])
        .unwrap();
    assert!(!w.nodes[0].port_status(pb).unwrap().peer_closed);
    w.nodes[0].isolated_lost(ib);
    assert!(w.nodes[0].port_status(pb).unwrap().peer_closed);
}

proptest::proptest! {
    /// A first frame that is a valid `ACCEPT_PEER` with a few bytes
    /// changed either links the peer or is a typed error that ends the
    /// connection and breaks its pipe; nothing panics, nothing leaks.
    #[test]
    fn a_mangled_accept_peer_links_or_fails_cleanly(
        edits in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 0..4),
        cut in 0usize..8,
    ) {
        let mut a = node(1);
        let (id, end) = a.connect_isolated(Profile::Libchrome).unwrap();
        let mut bytes = accept_peer(names::node_name(9, 9), names::port_name(u64::MAX, 1));
        for (at, value) in edits {
            if let Some(b) = bytes.get_mut(at) {
                *b = value;
            }
        }
        bytes.truncate(bytes.len().saturating_sub(cut));
        match a.handle_isolated_frame(id, &bytes, vec![]) {
            Ok(()) => proptest::prop_assert!(a.isolated_peer(id).is_some()),
            Err(_) => {
                proptest::prop_assert!(a.port_status(end).unwrap().peer_closed);
                proptest::prop_assert_eq!(a.isolated_connection_count(), 0);
            }
        }
        a.isolated_lost(id);
        a.close_port(end).unwrap();
        proptest::prop_assert_eq!(a.port_count(), 0);
    }
}
