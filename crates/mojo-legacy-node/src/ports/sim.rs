//! A deterministic in-memory network of nodes for tests: it delivers each
//! node's `poll_transmit` output to the target node's `handle_event` and
//! broadcasts to every other node, stepped until idle. With a seed it
//! reorders deliveries between different routes (sender, receiver,
//! destination port) while keeping each route in order.

use std::collections::VecDeque;

use mojo_legacy_wire::{NodeName, PortName};
use mojo_wire_kit::{RandomSource, SeededRandom};

use super::{Error, Event, EventKind, Limits, Node, Notification, PortState, names};

/// Most deliveries one `run` may make before the test fails as "never idle".
const MAX_DELIVERIES: usize = 200_000;

pub(crate) struct Delivery<M> {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) event: Event<M>,
}

/// One delivered event, for assertions about the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    pub(crate) from: usize,
    pub(crate) to: usize,
    pub(crate) kind: EventKind,
    pub(crate) port: PortName,
    /// `last_sequence_num` of ObserveProxyAck / ObserveClosure, the
    /// sequence number of a user message, else 0.
    pub(crate) number: u64,
}

pub(crate) struct Sim<M> {
    pub(crate) nodes: Vec<Node<M>>,
    pub(crate) alive: Vec<bool>,
    pub(crate) in_flight: VecDeque<Delivery<M>>,
    reorder: Option<SeededRandom>,
    pub(crate) log: Vec<Seen>,
    pub(crate) errors: Vec<(usize, Error)>,
    pub(crate) notifications: Vec<Vec<Notification>>,
}

pub(crate) fn node_name_of(i: usize) -> NodeName {
    names::node_name(0xA000 + i as u64, 0x5EED)
}

impl<M: std::fmt::Debug> Sim<M> {
    pub(crate) fn new(n: usize) -> Self {
        Self::build(n, None, Limits::default())
    }

    pub(crate) fn reordering(n: usize, seed: u64) -> Self {
        Self::build(n, Some(seed), Limits::default())
    }

    pub(crate) fn build(n: usize, seed: Option<u64>, limits: Limits) -> Self {
        let nodes = (0..n)
            .map(|i| Node::with_limits(node_name_of(i), SeededRandom::new(100 + i as u64), limits))
            .collect();
        Self {
            nodes,
            alive: vec![true; n],
            in_flight: VecDeque::new(),
            reorder: seed.map(SeededRandom::new),
            log: Vec::new(),
            errors: Vec::new(),
            notifications: vec![Vec::new(); n],
        }
    }

    pub(crate) fn name(&self, i: usize) -> NodeName {
        self.nodes[i].name()
    }

    fn index_of(&self, name: NodeName) -> Option<usize> {
        self.nodes.iter().position(|n| n.name() == name)
    }

    /// Moves every node's output into the network, checking the rules a
    /// sender must keep (§4.10 "never"): descriptors name the sender as the
    /// referring node and carry valid names.
    pub(crate) fn collect(&mut self) {
        loop {
            let unreachable = self.collect_once();
            if unreachable.is_empty() {
                return;
            }
            // What a driver does with an event for a node it has no channel
            // to (Chromium's controller, after the broker could not
            // introduce it): that node is lost for the sender too.
            for (i, gone) in unreachable {
                let name = self.name(gone);
                self.nodes[i].lost_node(name);
            }
        }
    }

    /// One pass of [`collect`](Self::collect); returns the (sender, dead
    /// node) pairs that had events sent to a dead node.
    fn collect_once(&mut self) -> Vec<(usize, usize)> {
        let mut unreachable = Vec::new();
        for i in 0..self.nodes.len() {
            while let Some(n) = self.nodes[i].poll_notification() {
                self.notifications[i].push(n);
            }
            if !self.alive[i] {
                while self.nodes[i].poll_transmit().is_some() {}
                while self.nodes[i].poll_broadcast().is_some() {}
                continue;
            }
            while let Some((to, event)) = self.nodes[i].poll_transmit() {
                check_outgoing(self.name(i), &event);
                let to = self.index_of(to).expect("event for an unknown node");
                assert_ne!(to, i, "a node transmitted to itself");
                if self.alive[to] {
                    check_against_receiver(&self.nodes[to], &event);
                }
                if self.alive[to] {
                    self.in_flight.push_back(Delivery { from: i, to, event });
                } else if !unreachable.contains(&(i, to)) {
                    unreachable.push((i, to));
                }
            }
            while let Some(event) = self.nodes[i].poll_broadcast() {
                for to in 0..self.nodes.len() {
                    if to != i && self.alive[to] {
                        self.in_flight.push_back(Delivery {
                            from: i,
                            to,
                            event: clone_broadcast(&event),
                        });
                    }
                }
            }
        }
        unreachable
    }

    /// Delivers one event; false when the network is idle.
    pub(crate) fn step(&mut self) -> bool {
        self.collect();
        let pick = match &mut self.reorder {
            None => 0,
            Some(rng) => {
                // Heads of routes: the first delivery of each (from, to, port).
                let mut heads = Vec::new();
                let mut seen_routes = Vec::new();
                for (k, d) in self.in_flight.iter().enumerate() {
                    let route = (d.from, d.to, d.event.port_name());
                    if !seen_routes.contains(&route) {
                        seen_routes.push(route);
                        heads.push(k);
                    }
                    if heads.len() >= 8 {
                        break;
                    }
                }
                if heads.is_empty() {
                    0
                } else {
                    heads[(rng.next_u64() % heads.len() as u64) as usize]
                }
            }
        };
        let Some(d) = self.in_flight.remove(pick) else {
            return false;
        };
        let number = match &d.event {
            Event::UserMessage { message, .. } => message.sequence_num,
            Event::ObserveProxyAck {
                last_sequence_num, ..
            }
            | Event::ObserveClosure {
                last_sequence_num, ..
            } => *last_sequence_num,
            _ => 0,
        };
        self.log.push(Seen {
            from: d.from,
            to: d.to,
            kind: d.event.kind(),
            port: d.event.port_name(),
            number,
        });
        let from = self.name(d.from);
        if let Err(e) = self.nodes[d.to].handle_event(from, d.event) {
            self.errors.push((d.to, e));
        }
        true
    }

    /// Steps until idle; returns the number of deliveries.
    pub(crate) fn run(&mut self) -> usize {
        let mut n = 0;
        while self.step() {
            n += 1;
            assert!(n < MAX_DELIVERIES, "the network never became idle");
        }
        self.collect();
        n
    }

    /// Delivers at most `n` events.
    pub(crate) fn run_some(&mut self, n: usize) {
        for _ in 0..n {
            if !self.step() {
                break;
            }
        }
        self.collect();
    }

    /// Node `i` disappears: its traffic is dropped and every other node
    /// learns of the loss.
    pub(crate) fn kill(&mut self, i: usize) {
        self.collect();
        self.alive[i] = false;
        self.in_flight.retain(|d| d.from != i && d.to != i);
        let name = self.name(i);
        for j in 0..self.nodes.len() {
            if self.alive[j] {
                self.nodes[j].lost_node(name);
            }
        }
        self.collect();
    }

    pub(crate) fn count(&self, kind: EventKind) -> usize {
        self.log.iter().filter(|s| s.kind == kind).count()
    }

    pub(crate) fn take_notifications(&mut self, i: usize) -> Vec<Notification> {
        self.collect();
        std::mem::take(&mut self.notifications[i])
    }

    /// Every live node holds no port, proxy, queued message or output, and
    /// no node reported an error.
    pub(crate) fn assert_clean(&mut self) {
        self.run();
        self.assert_counts_consistent();
        assert_eq!(self.errors, Vec::new(), "nodes reported errors");
        for (i, node) in self.nodes.iter().enumerate() {
            if !self.alive[i] {
                continue;
            }
            let ports: Vec<_> = node.ports().collect();
            assert_eq!(ports, Vec::new(), "node {i} leaks ports");
            assert_eq!(node.proxy_count(), 0, "node {i} leaks proxies");
            assert_eq!(node.queued_message_count(), 0, "node {i} leaks messages");
            assert_eq!(node.recount_queued(), 0, "node {i} miscounts messages");
            assert_eq!(node.deferred_event_count(), 0, "node {i} leaks events");
        }
        assert!(self.in_flight.is_empty());
    }

    /// Every live node's running message count matches its queues.
    pub(crate) fn assert_counts_consistent(&self) {
        for node in &self.nodes {
            assert_eq!(node.queued_message_count(), node.recount_queued());
            node.check_peer_index();
        }
    }
}

fn check_outgoing<M>(sender: NodeName, event: &Event<M>) {
    let descriptors = match event {
        Event::UserMessage { message, .. } => {
            assert!(message.sequence_num >= 1, "user message numbered 0");
            assert_eq!(message.ports.len(), message.descriptors.len());
            message.descriptors.clone()
        }
        Event::MergePort {
            new_port_descriptor,
            ..
        } => vec![*new_port_descriptor],
        _ => Vec::new(),
    };
    for d in descriptors {
        assert_eq!(
            d.referring_node_name, sender,
            "descriptor names another referring node"
        );
        assert!(names::port_is_valid(d.referring_port_name));
        assert!(names::node_is_valid(d.peer_node_name));
        assert!(names::port_is_valid(d.peer_port_name));
    }
    assert!(
        names::port_is_valid(event.port_name()),
        "unicast to the invalid port"
    );
}

/// The §4.10 "never" rules that depend on the receiver's state, checked
/// when the event leaves its sender (what the receiver holds then is what
/// it holds when the event arrives, up to ports it erases meanwhile): no
/// `PortAccepted` to a port that is not Buffering, no `ObserveProxyAck` to
/// a port that is not a proxy, no descriptor whose new port name already
/// exists there. A port that is already gone is fine (it ignores them).
pub(crate) fn check_against_receiver<M>(receiver: &Node<M>, event: &Event<M>) {
    let state = receiver.port_state(event.port_name());
    match event {
        Event::PortAccepted { port_name } => assert!(
            matches!(state, None | Some(PortState::Buffering)),
            "PortAccepted to {port_name} in state {state:?}"
        ),
        Event::ObserveProxyAck { port_name, .. } => assert!(
            matches!(state, None | Some(PortState::Proxying)),
            "ObserveProxyAck to {port_name}, which is not a proxy ({state:?})"
        ),
        Event::UserMessage { message, .. } => {
            for p in &message.ports {
                assert_eq!(
                    receiver.port_state(*p),
                    None,
                    "descriptor for {p}, which exists on the receiver"
                );
            }
        }
        Event::MergePort { new_port_name, .. } => assert_eq!(
            receiver.port_state(*new_port_name),
            None,
            "MergePort's new port {new_port_name} exists on the receiver"
        ),
        _ => {}
    }
}

fn clone_broadcast<M>(event: &Event<M>) -> Event<M> {
    match event {
        Event::ObserveProxy {
            port_name,
            proxy_node_name,
            proxy_port_name,
            proxy_target_node_name,
            proxy_target_port_name,
        } => Event::ObserveProxy {
            port_name: *port_name,
            proxy_node_name: *proxy_node_name,
            proxy_port_name: *proxy_port_name,
            proxy_target_node_name: *proxy_target_node_name,
            proxy_target_port_name: *proxy_target_port_name,
        },
        other => panic!("only ObserveProxy is broadcast, not {:?}", other.kind()),
    }
}
