//! A deterministic in-memory network of router tables for the router tests:
//! node links are FIFO queues, and a seeded generator picks which link
//! delivers next, so messages on different links are reordered.

#![allow(dead_code, unreachable_pub)]

use std::collections::{BTreeMap, VecDeque};

use ipcz_node::router::{
    Handle, InMemoryLinkState, LinkSide, NodeLinkId, Output, Parcel, RouteError, RouteMessage,
    RouterConfig, RouterId, Routers,
};
use ipcz_wire::types::{FragmentDescriptor, NodeName, SublinkId};

/// A handle object the tests attach to parcels.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Obj(pub u32);

pub type Table = Routers<Obj>;

pub fn name(node: usize) -> NodeName {
    NodeName {
        high: 0xabc,
        low: node as u64 + 1,
    }
}

/// A tiny deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy)]
struct End {
    node: usize,
    peer_node: usize,
    peer_end: NodeLinkId,
}

pub struct Net {
    pub nodes: Vec<Table>,
    pub states: InMemoryLinkState,
    ends: BTreeMap<NodeLinkId, End>,
    /// Messages sent by one end, in order, not yet delivered to the other.
    in_flight: BTreeMap<NodeLinkId, VecDeque<RouteMessage<Obj>>>,
    next_link: u64,
    pub rng: Rng,
    /// Readable / PeerClosed outputs seen, per node.
    pub readable: Vec<Vec<RouterId>>,
    pub peer_closed: Vec<Vec<(RouterId, bool)>>,
    /// Every message delivered: (receiving node, message name).
    pub log: Vec<(usize, &'static str)>,
    /// Route errors returned by handle_message.
    pub errors: Vec<(usize, RouteError)>,
}

impl Net {
    pub fn new(configs: &[RouterConfig], seed: u64) -> Self {
        Self {
            nodes: configs
                .iter()
                .enumerate()
                .map(|(i, c)| Routers::new(name(i), *c))
                .collect(),
            states: InMemoryLinkState::default(),
            ends: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_link: 1,
            rng: Rng::new(seed),
            readable: vec![Vec::new(); configs.len()],
            peer_closed: vec![Vec::new(); configs.len()],
            log: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub fn with_nodes(n: usize, seed: u64) -> Self {
        Self::new(&vec![RouterConfig::default(); n], seed)
    }

    /// A node link between `a` and `b`: (a's end, b's end).
    pub fn connect(&mut self, a: usize, b: usize) -> (NodeLinkId, NodeLinkId) {
        let la = NodeLinkId(self.next_link);
        let lb = NodeLinkId(self.next_link + 1);
        self.next_link += 2;
        self.states.bind(la, lb);
        self.ends.insert(
            la,
            End {
                node: a,
                peer_node: b,
                peer_end: lb,
            },
        );
        self.ends.insert(
            lb,
            End {
                node: b,
                peer_node: a,
                peer_end: la,
            },
        );
        self.nodes[a].add_node_link(la, name(b), &mut self.states);
        self.nodes[b].add_node_link(lb, name(a), &mut self.states);
        (la, lb)
    }

    pub fn link_between(&self, a: usize, b: usize) -> Option<NodeLinkId> {
        self.ends
            .iter()
            .find(|(_, e)| e.node == a && e.peer_node == b)
            .map(|(l, _)| *l)
    }

    /// Initial portal `i` on the link (la on node a is side A).
    pub fn initial_portal(&mut self, la: NodeLinkId, i: u64) -> (RouterId, RouterId) {
        let e = self.ends[&la];
        let state = FragmentDescriptor::new(0, 256 + 64 * i as u32, 64);
        self.states.add_unmanaged(la, state);
        let pa = self.nodes[e.node]
            .connect_initial_portal(la, SublinkId(i), LinkSide::A, state, &mut self.states)
            .unwrap();
        let pb = self.nodes[e.peer_node]
            .connect_initial_portal(
                e.peer_end,
                SublinkId(i),
                LinkSide::B,
                state,
                &mut self.states,
            )
            .unwrap();
        (pa, pb)
    }

    /// Two connected nodes with one route: (portal on a, portal on b).
    pub fn route(&mut self, a: usize, b: usize) -> (RouterId, RouterId) {
        let la = self
            .link_between(a, b)
            .unwrap_or_else(|| self.connect(a, b).0);
        // Initial-portal sublinks stay below the allocator's first id.
        let i = (0..ipcz_node::router::IN_MEMORY_FIRST_SUBLINK)
            .find(|i| {
                self.states
                    .status(la, FragmentDescriptor::new(0, 256 + 64 * *i as u32, 64))
                    .is_none()
            })
            .expect("room for initial portals");
        self.initial_portal(la, i)
    }

    /// Moves every output of every node into the link queues.
    pub fn collect(&mut self) {
        for n in 0..self.nodes.len() {
            while let Some(out) = self.nodes[n].poll_output() {
                match out {
                    Output::Send { link, message } => {
                        if self.ends.contains_key(&link) {
                            self.in_flight.entry(link).or_default().push_back(message);
                        }
                    }
                    Output::Readable { portal } => self.readable[n].push(portal),
                    Output::PeerClosed {
                        portal,
                        disconnected,
                    } => self.peer_closed[n].push((portal, disconnected)),
                    Output::SublinkDropped { .. } => {}
                    Output::NeedNodeLink { node } => {
                        let target = (0..self.nodes.len())
                            .find(|i| name(*i) == node)
                            .expect("known node");
                        match self.link_between(n, target) {
                            Some(l) => {
                                let remote = name(target);
                                self.nodes[n].add_node_link(l, remote, &mut self.states);
                            }
                            None => {
                                self.connect(n, target);
                            }
                        }
                    }
                    Output::NeedLinkStateCapacity { link } => {
                        self.states.set_capacity(link, 1_000_000);
                        self.nodes[n].capacity_added(link, &mut self.states);
                    }
                }
            }
        }
    }

    /// Delivers one message from a randomly chosen link; false when idle.
    pub fn step(&mut self) -> bool {
        self.collect();
        let busy: Vec<NodeLinkId> = self
            .in_flight
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(l, _)| *l)
            .collect();
        if busy.is_empty() {
            return false;
        }
        let from = busy[self.rng.below(busy.len())];
        let msg = self.in_flight.get_mut(&from).unwrap().pop_front().unwrap();
        let End {
            peer_node,
            peer_end,
            ..
        } = self.ends[&from];
        self.log.push((peer_node, msg.name()));
        if let Err(e) = self.nodes[peer_node].handle_message(peer_end, msg, &mut self.states) {
            self.errors.push((peer_node, e));
            self.lose_link(peer_end);
        }
        self.collect();
        true
    }

    pub fn run(&mut self) {
        let mut steps = 0;
        while self.step() {
            steps += 1;
            assert!(steps < 1_000_000, "network never became idle");
        }
    }

    /// Both ends of the link learn it is gone; what was in flight is lost.
    pub fn lose_link(&mut self, end: NodeLinkId) {
        let Some(e) = self.ends.remove(&end) else {
            return;
        };
        self.ends.remove(&e.peer_end);
        self.in_flight.remove(&end);
        self.in_flight.remove(&e.peer_end);
        self.nodes[e.node].node_link_lost(end, &mut self.states);
        self.nodes[e.peer_node].node_link_lost(e.peer_end, &mut self.states);
        self.states.forget(end);
        self.collect();
    }

    pub fn put(&mut self, node: usize, portal: RouterId, data: &[u8]) {
        self.nodes[node]
            .put(portal, data.to_vec(), Vec::new(), &mut self.states)
            .unwrap();
    }

    pub fn put_portal(&mut self, node: usize, carrier: RouterId, moved: RouterId) {
        self.nodes[node]
            .put(
                carrier,
                b"portal".to_vec(),
                vec![Handle::Portal(moved)],
                &mut self.states,
            )
            .unwrap();
    }

    pub fn get(&mut self, node: usize, portal: RouterId) -> Option<Parcel<Handle<Obj>>> {
        self.nodes[node].get(portal, &mut self.states).unwrap()
    }

    /// Takes every ready parcel's bytes.
    pub fn read_all(&mut self, node: usize, portal: RouterId) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(p) = self.get(node, portal) {
            assert!(p.handles.is_empty(), "unexpected handles");
            out.push(p.data);
        }
        out
    }

    /// Runs until the parcel carrying a portal arrives at `portal`; returns the moved portal.
    pub fn receive_portal(&mut self, node: usize, portal: RouterId) -> RouterId {
        self.run();
        let p = self.get(node, portal).expect("carrier parcel arrived");
        match p.handles.as_slice() {
            [Handle::Portal(r)] => *r,
            other => panic!("expected one portal, got {other:?}"),
        }
    }

    pub fn close(&mut self, node: usize, portal: RouterId) {
        self.nodes[node].close(portal, &mut self.states).unwrap();
    }

    pub fn is_peer_closed(&self, node: usize, portal: RouterId) -> bool {
        self.nodes[node].status(portal).unwrap().peer_closed
    }

    /// Nothing left anywhere: routers, sublinks, parcels, link states, messages.
    pub fn assert_clean(&mut self) {
        self.run();
        for (i, n) in self.nodes.iter().enumerate() {
            assert_eq!(n.router_count(), 0, "node {i} routers: {n:#?}");
            assert_eq!(n.sublink_count(), 0, "node {i} sublinks");
            assert_eq!(n.queued_parcel_count(), 0, "node {i} parcels");
            assert_eq!(n.local_link_state_count(), 0, "node {i} local states");
            assert!(!n.has_pending(), "node {i} pending work");
        }
        assert_eq!(self.states.live_states(), 0, "RouterLinkStates left");
        assert!(self.in_flight.values().all(VecDeque::is_empty));
    }

    pub fn count(&self, message: &str) -> usize {
        self.log.iter().filter(|(_, m)| *m == message).count()
    }
}
