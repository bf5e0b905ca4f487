//! Property tests: random operations on 2 or 3 simulated nodes (pipes
//! created and merged across nodes, messages with attached pipe ends, reads,
//! closes, partial delivery, optionally reordered) never panic, never lose or
//! reorder a message on a pipe, and leave nothing behind once every end is
//! closed.
//!
//! A model tracks logical pipe ends independently of port names: each
//! message says which end sent it, its index on that end and which ends it
//! carries, so the receiver can check it is exactly the next one expected.

use std::collections::VecDeque;

use mojo_legacy_wire::PortName;
use proptest::prelude::*;

use super::sim::Sim;
use super::{Limits, OpError};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    from: usize,
    n: u64,
    carried: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    /// Held by the user of `node` as `port`.
    At(usize, PortName),
    /// Inside a message not read yet.
    InTransit,
    /// Closed by the user.
    Closed,
    /// Closed by the nodes (it rode in a message nobody will read).
    Dead,
}

#[derive(Debug)]
struct End {
    peer: usize,
    at: Where,
    sent: u64,
    /// Messages sent to this end and not read yet: (n, carried ends).
    pending: VecDeque<(u64, Vec<usize>)>,
}

struct Model {
    sim: Sim<Msg>,
    ends: Vec<End>,
}

#[derive(Debug, Clone)]
enum Op {
    CreatePipe(u8),
    Connect(u8, u8),
    Send { end: u8, attach: Option<u8> },
    Read(u8),
    Close(u8),
    Step(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => any::<u8>().prop_map(Op::CreatePipe),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Connect(a, b)),
        6 => (any::<u8>(), proptest::option::of(any::<u8>()))
            .prop_map(|(end, attach)| Op::Send { end, attach }),
        3 => any::<u8>().prop_map(Op::Read),
        1 => any::<u8>().prop_map(Op::Close),
        3 => any::<u8>().prop_map(Op::Step),
    ]
}

impl Model {
    /// Bit `i` of `handoff` turns on the direct hand-off at node `i`, but
    /// only between two nodes delivering in order: the shortcut relies on
    /// the one channel's order (see `Node::set_direct_handoff`).
    fn with_handoff(nodes: usize, seed: Option<u64>, handoff: u8) -> Self {
        let handoff = if nodes == 2 && seed.is_none() {
            handoff
        } else {
            0
        };
        let limits = Limits {
            // Small enough that reordering can reach it, so the limit is
            // exercised; legitimate traffic must still never exceed it.
            max_reorder_window: 64,
            ..Limits::default()
        };
        let mut sim = Sim::build(nodes, seed, limits);
        for (i, node) in sim.nodes.iter_mut().enumerate() {
            node.set_direct_handoff(handoff & (1 << i) != 0);
        }
        Self {
            sim,
            ends: Vec::new(),
        }
    }

    fn add_pipe(&mut self, a: (usize, PortName), b: (usize, PortName)) {
        let i = self.ends.len();
        for (at, peer) in [(a, i + 1), (b, i)] {
            self.ends.push(End {
                peer,
                at: Where::At(at.0, at.1),
                sent: 0,
                pending: VecDeque::new(),
            });
        }
    }

    fn usable(&self) -> Vec<usize> {
        (0..self.ends.len())
            .filter(|&e| matches!(self.ends[e].at, Where::At(..)))
            .collect()
    }

    fn gone(&self, e: usize) -> bool {
        matches!(self.ends[e].at, Where::Closed | Where::Dead)
    }

    /// `e` was closed: what was sent to it is lost, and the ends riding in
    /// those messages die with them.
    fn lose_pending(&mut self, e: usize) {
        let mut work = vec![e];
        while let Some(e) = work.pop() {
            for (_, carried) in std::mem::take(&mut self.ends[e].pending) {
                for c in carried {
                    self.ends[c].at = Where::Dead;
                    work.push(c);
                }
            }
        }
    }

    /// True if `from` holds `to` through a chain of unread messages;
    /// sending `from` to `to` then would make a cycle nobody can read.
    fn holds(&self, from: usize, to: usize) -> bool {
        let mut work = vec![from];
        let mut seen = vec![false; self.ends.len()];
        while let Some(e) = work.pop() {
            if e == to {
                return true;
            }
            if std::mem::replace(&mut seen[e], true) {
                continue;
            }
            for (_, carried) in &self.ends[e].pending {
                work.extend(carried.iter().copied());
            }
        }
        false
    }

    fn apply(&mut self, op: Op) {
        let nodes = self.sim.nodes.len();
        match op {
            Op::CreatePipe(n) => {
                let n = n as usize % nodes;
                let (a, b) = self.sim.nodes[n].create_pipe().unwrap();
                self.add_pipe((n, a), (n, b));
            }
            Op::Connect(a, b) => {
                let a = a as usize % nodes;
                let b = (a + 1 + b as usize % (nodes - 1)) % nodes;
                let (x, reserved) = self.sim.nodes[a].create_pipe().unwrap();
                let (p0, p1) = self.sim.nodes[b].create_merge_pipe().unwrap();
                let b_name = self.sim.name(b);
                self.sim.nodes[a]
                    .merge_with_remote(reserved, b_name, p1)
                    .unwrap();
                self.add_pipe((a, x), (b, p0));
            }
            Op::Send { end, attach } => {
                let usable = self.usable();
                if usable.is_empty() {
                    return;
                }
                let s = usable[end as usize % usable.len()];
                let Where::At(node, port) = self.ends[s].at else {
                    unreachable!()
                };
                let target = self.ends[s].peer;
                let candidates: Vec<usize> = usable
                    .iter()
                    .copied()
                    .filter(|&c| {
                        c != s
                            && c != target
                            && matches!(self.ends[c].at, Where::At(n, _) if n == node)
                            && !self.holds(c, target)
                    })
                    .collect();
                let carried: Vec<usize> = match attach {
                    Some(k) if !candidates.is_empty() => {
                        vec![candidates[k as usize % candidates.len()]]
                    }
                    _ => Vec::new(),
                };
                let ports = carried
                    .iter()
                    .map(|&c| match self.ends[c].at {
                        Where::At(_, p) => p,
                        _ => unreachable!(),
                    })
                    .collect();
                let n = self.ends[s].sent;
                let msg = Msg {
                    from: s,
                    n,
                    carried: carried.clone(),
                };
                match self.sim.nodes[node].send_message(port, msg, ports) {
                    Ok(()) => {
                        self.ends[s].sent += 1;
                        for &c in &carried {
                            self.ends[c].at = Where::InTransit;
                        }
                        if self.gone(target) {
                            for &c in &carried {
                                self.ends[c].at = Where::Dead;
                                self.lose_pending(c);
                            }
                        } else {
                            self.ends[target].pending.push_back((n, carried));
                        }
                    }
                    Err(OpError::PeerClosed { .. }) => {
                        assert!(self.gone(target), "peer closed but end {target} is open");
                        for &c in &carried {
                            self.ends[c].at = Where::Dead;
                            self.lose_pending(c);
                        }
                    }
                    Err(e) => panic!("send refused: {e}"),
                }
            }
            Op::Read(end) => {
                let usable = self.usable();
                if let Some(&r) = usable.get(end as usize % usable.len().max(1)) {
                    self.read(r);
                }
            }
            Op::Close(end) => {
                let usable = self.usable();
                if let Some(&e) = usable.get(end as usize % usable.len().max(1)) {
                    let Where::At(node, port) = self.ends[e].at else {
                        unreachable!()
                    };
                    self.sim.nodes[node].close_port(port).unwrap();
                    self.ends[e].at = Where::Closed;
                    self.lose_pending(e);
                }
            }
            Op::Step(n) => self.sim.run_some(n as usize % 16),
        }
        self.sim.collect();
        self.sim.assert_counts_consistent();
        assert_eq!(self.sim.errors, Vec::new());
    }

    /// Reads one message at end `r`, checking it is the next one expected.
    /// Returns false if nothing was there.
    fn read(&mut self, r: usize) -> bool {
        let Where::At(node, port) = self.ends[r].at else {
            return false;
        };
        match self.sim.nodes[node].get_message(port) {
            Ok(Some(m)) => {
                let (n, carried) = self.ends[r]
                    .pending
                    .pop_front()
                    .expect("a message nobody sent");
                assert_eq!(
                    m.payload.from, self.ends[r].peer,
                    "message from the wrong end"
                );
                assert_eq!(m.payload.n, n, "message lost or out of order on end {r}");
                assert_eq!(m.payload.carried, carried);
                assert_eq!(m.ports.len(), carried.len());
                for (c, p) in carried.into_iter().zip(m.ports) {
                    assert_eq!(self.ends[c].at, Where::InTransit);
                    self.ends[c].at = Where::At(node, p);
                }
                true
            }
            Ok(None) => false,
            Err(OpError::PeerClosed { .. }) => {
                assert!(
                    self.ends[r].pending.is_empty(),
                    "peer closed before all messages"
                );
                false
            }
            Err(e) => panic!("get_message: {e}"),
        }
    }

    /// Runs to idle and reads everything; every open end then has all its
    /// peer sent, and sees the peer closed if it is.
    fn finish(&mut self) {
        loop {
            self.sim.run();
            let mut progress = false;
            for r in self.usable() {
                while self.read(r) {
                    progress = true;
                }
            }
            if !progress {
                break;
            }
        }
        for e in self.usable() {
            assert!(self.ends[e].pending.is_empty(), "end {e} lost messages");
            let Where::At(node, port) = self.ends[e].at else {
                unreachable!()
            };
            let peer_gone = self.gone(self.ends[e].peer);
            let status = self.sim.nodes[node].status(port).unwrap();
            assert_eq!(status.peer_closed, peer_gone, "end {e}: peer status");
        }
        for e in 0..self.ends.len() {
            assert_ne!(self.ends[e].at, Where::InTransit, "end {e} never arrived");
        }
        for e in self.usable() {
            let Where::At(node, port) = self.ends[e].at else {
                unreachable!()
            };
            self.sim.nodes[node].close_port(port).unwrap();
            self.ends[e].at = Where::Closed;
        }
        self.sim.assert_clean();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_operations_keep_pipes_intact_and_leak_nothing(
        nodes in 2usize..=3,
        reorder in proptest::option::of(any::<u64>()),
        ops in proptest::collection::vec(op(), 1..120),
        handoff in any::<u8>(),
    ) {
        let mut model = Model::with_handoff(nodes, reorder, handoff);
        // Start with one connection so cross-node traffic is likely.
        model.apply(Op::Connect(0, 0));
        for op in ops {
            model.apply(op);
        }
        model.finish();
    }

    #[test]
    fn losing_a_node_mid_traffic_leaves_the_others_clean(
        nodes in 2usize..=3,
        reorder in proptest::option::of(any::<u64>()),
        ops in proptest::collection::vec(op(), 1..80),
        victim in any::<u8>(),
        in_flight in 0usize..8,
        handoff in any::<u8>(),
    ) {
        let mut model = Model::with_handoff(nodes, reorder, handoff);
        model.apply(Op::Connect(0, 0));
        for op in ops {
            model.apply(op);
        }
        model.sim.run_some(in_flight);
        let victim = victim as usize % nodes;
        model.sim.kill(victim);
        close_everything(&mut model.sim, nodes == 2);
    }
}

/// Reads every message on every port the users of the live nodes hold
/// (taking the ports they carry), then closes all of them, until nothing
/// is left. The live nodes must end error-free with no user port and no
/// queued message. With two nodes they must end with no port at all; with
/// three, a proxy whose way round the ring ran through the lost node may be
/// stranded, since compact mode has no event that could reach it (Chromium
/// keeps it too).
fn close_everything(sim: &mut Sim<Msg>, expect_clean: bool) {
    loop {
        sim.run();
        let mut progress = false;
        for i in 0..sim.nodes.len() {
            if !sim.alive[i] {
                continue;
            }
            let ports: Vec<PortName> = sim.nodes[i].ports().map(|(p, _)| p).collect();
            for p in ports {
                while let Ok(Some(_)) = sim.nodes[i].get_message(p) {
                    progress = true;
                }
            }
            let ports: Vec<PortName> = sim.nodes[i].ports().map(|(p, _)| p).collect();
            for p in ports {
                // Only ports the user holds can be closed; the rest are
                // proxies or ride in messages, and go when those do.
                if sim.nodes[i].close_port(p).is_ok() {
                    progress = true;
                }
            }
        }
        if !progress {
            break;
        }
    }
    if expect_clean {
        sim.assert_clean();
        return;
    }
    assert_eq!(sim.errors, Vec::new());
    for (i, node) in sim.nodes.iter().enumerate() {
        if !sim.alive[i] {
            continue;
        }
        // What is left is stranded proxies and the ports riding in the
        // messages they still hold, none of them the user's.
        let left: Vec<_> = node.ports().collect();
        if !left.is_empty() {
            assert!(
                left.iter().any(|(_, s)| *s == super::PortState::Proxying),
                "node {i}: ports left without a stranded proxy: {left:?}"
            );
        }
        for (port, state) in left {
            assert_ne!(state, super::PortState::Buffering, "node {i}: {port} left");
            if state == super::PortState::Receiving {
                assert!(
                    node.status(port).is_err(),
                    "node {i}: user port {port} left"
                );
            }
        }
    }
}

// ----- a hostile peer ------------------------------------------------------

/// Names a forged event may use: the node's own ports (by index into its
/// port list), a few made-up ones, or the invalid name.
#[derive(Debug, Clone, Copy)]
enum PortPick {
    Existing(u8),
    Made(u8),
    Invalid,
}

fn port_pick() -> impl Strategy<Value = PortPick> {
    prop_oneof![
        4 => any::<u8>().prop_map(PortPick::Existing),
        2 => any::<u8>().prop_map(PortPick::Made),
        1 => Just(PortPick::Invalid),
    ]
}

/// Nodes a forged event may name: 0 = the victim itself, 1 = the peer,
/// 2 = some other node, 3 = the invalid name.
fn node_pick() -> impl Strategy<Value = u8> {
    0u8..4
}

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..6, Just(u64::MAX), Just(u64::MAX - 1), any::<u64>()]
}

/// A forged descriptor: new name, peer, referring port, next to send,
/// next to receive, last to receive, peer closed.
type ForgedDescriptor = (
    PortPick,
    (u8, PortPick),
    (u8, PortPick),
    u64,
    u64,
    u64,
    bool,
);

#[derive(Debug, Clone)]
struct Forged {
    kind: u8,
    port: PortPick,
    a: (u8, PortPick),
    b: (u8, PortPick),
    n: u64,
    descriptors: Vec<ForgedDescriptor>,
}

fn forged() -> impl Strategy<Value = Forged> {
    let endpoint = || (node_pick(), port_pick());
    let descriptor = (
        port_pick(),
        endpoint(),
        endpoint(),
        number(),
        number(),
        number(),
        any::<bool>(),
    );
    (
        0u8..9,
        port_pick(),
        endpoint(),
        endpoint(),
        number(),
        proptest::collection::vec(descriptor, 0..3),
    )
        .prop_map(|(kind, port, a, b, n, descriptors)| Forged {
            kind,
            port,
            a,
            b,
            n,
            descriptors,
        })
}

use super::{Event, Node, PortDescriptor, UserMessage, names};
use mojo_legacy_wire::NodeName;
use mojo_wire_kit::SeededRandom;

fn resolve_port(node: &Node<()>, pick: PortPick) -> PortName {
    match pick {
        PortPick::Existing(i) => {
            let ports: Vec<PortName> = node.ports().map(|(p, _)| p).collect();
            if ports.is_empty() {
                names::port_name(1, 1)
            } else {
                ports[i as usize % ports.len()]
            }
        }
        PortPick::Made(i) => names::port_name(0xF0, u64::from(i % 8)),
        PortPick::Invalid => names::INVALID_PORT,
    }
}

fn resolve_node(nodes: &[NodeName; 3], pick: u8) -> NodeName {
    match pick {
        0..=2 => nodes[pick as usize],
        _ => names::INVALID_NODE,
    }
}

fn build(node: &Node<()>, nodes: &[NodeName; 3], f: &Forged) -> Event<()> {
    let port_name = resolve_port(node, f.port);
    let end = |e: (u8, PortPick)| (resolve_node(nodes, e.0), resolve_port(node, e.1));
    let (an, ap) = end(f.a);
    let (bn, bp) = end(f.b);
    let descriptors: Vec<(PortName, PortDescriptor)> = f
        .descriptors
        .iter()
        .map(|(name, peer, referring, s, r, l, closed)| {
            let (pn, pp) = end(*peer);
            let (rn, rp) = end(*referring);
            (
                resolve_port(node, *name),
                PortDescriptor {
                    peer_node_name: pn,
                    peer_port_name: pp,
                    referring_node_name: rn,
                    referring_port_name: rp,
                    next_sequence_num_to_send: *s,
                    next_sequence_num_to_receive: *r,
                    last_sequence_num_to_receive: *l,
                    peer_closed: *closed,
                },
            )
        })
        .collect();
    match f.kind {
        0 => Event::UserMessage {
            port_name,
            message: UserMessage {
                sequence_num: f.n,
                ports: descriptors.iter().map(|d| d.0).collect(),
                descriptors: descriptors.iter().map(|d| d.1).collect(),
                payload: (),
            },
        },
        1 => Event::PortAccepted { port_name },
        2 => Event::ObserveProxy {
            port_name,
            proxy_node_name: an,
            proxy_port_name: ap,
            proxy_target_node_name: bn,
            proxy_target_port_name: bp,
        },
        3 => Event::ObserveProxyAck {
            port_name,
            last_sequence_num: f.n,
        },
        4 => Event::ObserveClosure {
            port_name,
            last_sequence_num: f.n,
        },
        5 => Event::MergePort {
            port_name,
            new_port_name: ap,
            new_port_descriptor: descriptors.first().map_or(
                PortDescriptor {
                    peer_node_name: bn,
                    peer_port_name: bp,
                    referring_node_name: an,
                    referring_port_name: ap,
                    next_sequence_num_to_send: 1,
                    next_sequence_num_to_receive: 1,
                    last_sequence_num_to_receive: f.n,
                    peer_closed: false,
                },
                |d| d.1,
            ),
        },
        6 => Event::UserMessageReadAckRequest {
            port_name,
            sequence_num_to_acknowledge: f.n,
        },
        7 => Event::UserMessageReadAck {
            port_name,
            sequence_num_acknowledged: f.n,
        },
        _ => Event::UpdatePreviousPeer {
            port_name,
            new_node_name: an,
            new_port_name: ap,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Anything a peer sends gives a typed error or correct behaviour,
    /// never a panic or a hang; counts stay consistent; once both other
    /// nodes are declared lost and the user closes what it holds, nothing
    /// is left.
    #[test]
    fn forged_events_never_panic_and_leave_nothing_behind(
        events in proptest::collection::vec(forged(), 1..40),
        reads in any::<u8>(),
    ) {
        let nodes = [
            super::sim::node_name_of(0),
            super::sim::node_name_of(1),
            super::sim::node_name_of(2),
        ];
        let limits = Limits { max_ports: 64, max_reorder_window: 8, ..Limits::default() };
        let mut node: Node<()> = Node::with_limits(nodes[0], SeededRandom::new(3), limits);
        // Some state to hit: local pipes, a port in transit, a Buffering
        // proxy towards the peer and a merge connector.
        let (a, b) = node.create_pipe().unwrap();
        let (c, d) = node.create_pipe().unwrap();
        let (_e, connector) = node.create_merge_pipe().unwrap();
        node.send_message(a, (), vec![c]).unwrap();
        node.merge_with_remote(b, nodes[1], names::port_name(0xEE, 1)).unwrap();
        let _ = (d, connector);
        for f in &events {
            let event = build(&node, &nodes, f);
            let _ = node.handle_event(nodes[1], event);
            assert_eq!(node.queued_message_count(), node.recount_queued());
            node.check_peer_index();
            // Now and then the user reads whatever it can.
            if reads & 1 == 1 {
                let held: Vec<PortName> = node.ports().map(|(p, _)| p).collect();
                for p in held {
                    while let Ok(Some(_)) = node.get_message(p) {}
                }
            }
            while node.poll_transmit().is_some() {}
            while node.poll_broadcast().is_some() {}
            while node.poll_notification().is_some() {}
        }
        node.lost_node(nodes[1]);
        node.lost_node(nodes[2]);
        for _ in 0..8 {
            let held: Vec<PortName> = node.ports().map(|(p, _)| p).collect();
            for p in held {
                while let Ok(Some(_)) = node.get_message(p) {}
                let _ = node.close_port(p);
            }
        }
        let left: Vec<_> = node.ports().collect();
        prop_assert_eq!(left, Vec::new());
        prop_assert_eq!(node.queued_message_count(), 0);
    }
}
