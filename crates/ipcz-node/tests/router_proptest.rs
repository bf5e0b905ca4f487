//! Random operation sequences on 3 nodes: open routes, put, move portals
//! between nodes (leaving proxies that are bypassed), read, close, and
//! deliver messages in a seeded order. Parcels are never lost, duplicated
//! or reordered on a route; closure always arrives; nothing leaks.

#![allow(clippy::needless_range_loop)] // node indices index several tables at once

mod router_support;

use ipcz_node::router::{Handle, PortalError, RouterConfig, RouterId};
use proptest::prelude::*;
use router_support::Net;

const NODES: usize = 3;
const MOVE: u32 = u32::MAX;

#[derive(Debug, Clone)]
enum Op {
    Open(usize),
    Put(usize, u8),
    Move(usize, usize),
    Read(usize),
    Close(usize),
    Step(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..NODES).prop_map(Op::Open),
        4 => (any::<usize>(), 1..4u8).prop_map(|(e, n)| Op::Put(e, n)),
        3 => (any::<usize>(), 0..NODES).prop_map(|(e, d)| Op::Move(e, d)),
        2 => any::<usize>().prop_map(Op::Read),
        1 => any::<usize>().prop_map(Op::Close),
        4 => (1..20u8).prop_map(Op::Step),
    ]
}

#[derive(Debug)]
struct End {
    node: usize,
    rid: RouterId,
    peer: usize,
    sent: u32,
    received: u32,
    closed: bool,
    moving: bool,
}

struct World {
    net: Net,
    ends: Vec<End>,
    /// carrier[a][b]: the portal on node a of the carrier route between a and b.
    carrier: [[Option<RouterId>; NODES]; NODES],
}

impl World {
    fn new(configs: &[RouterConfig; NODES], seed: u64) -> Self {
        let mut net = Net::new(configs, seed);
        let mut carrier = [[None; NODES]; NODES];
        for a in 0..NODES {
            for b in a + 1..NODES {
                let (pa, pb) = net.route(a, b);
                carrier[a][b] = Some(pa);
                carrier[b][a] = Some(pb);
            }
        }
        Self {
            net,
            ends: Vec::new(),
            carrier,
        }
    }

    fn usable(&self, e: usize) -> bool {
        !self.ends[e].closed && !self.ends[e].moving
    }

    /// Takes parcels that carry moved portals off every carrier.
    fn pump_carriers(&mut self) {
        for a in 0..NODES {
            for b in 0..NODES {
                let Some(c) = self.carrier[a][b] else {
                    continue;
                };
                while let Some(p) = self.net.get(a, c) {
                    let tag = u32::from_le_bytes(p.data[0..4].try_into().unwrap());
                    let id = u32::from_le_bytes(p.data[4..8].try_into().unwrap()) as usize;
                    assert_eq!(tag, MOVE);
                    let [Handle::Portal(r)] = p.handles.as_slice() else {
                        panic!("carrier parcel without its portal")
                    };
                    let e = &mut self.ends[id];
                    assert!(e.moving, "portal arrived twice");
                    e.moving = false;
                    e.node = a;
                    e.rid = *r;
                }
            }
        }
    }

    fn read(&mut self, e: usize) {
        let End {
            node, rid, peer, ..
        } = self.ends[e];
        while let Some(p) = self.net.get(node, rid) {
            assert!(p.handles.is_empty());
            let from = u32::from_le_bytes(p.data[0..4].try_into().unwrap()) as usize;
            let n = u32::from_le_bytes(p.data[4..8].try_into().unwrap());
            assert_eq!(from, peer, "parcel from the wrong route");
            assert_eq!(n, self.ends[e].received, "lost, duplicated or reordered");
            self.ends[e].received += 1;
        }
    }

    fn apply(&mut self, op: &Op) {
        let n = self.ends.len();
        match *op {
            Op::Open(node) => {
                let (a, b) = self.net.nodes[node].open_pair(&mut self.net.states);
                for (rid, peer) in [(a, n + 1), (b, n)] {
                    self.ends.push(End {
                        node,
                        rid,
                        peer,
                        sent: 0,
                        received: 0,
                        closed: false,
                        moving: false,
                    });
                }
            }
            Op::Put(e, count) if n > 0 && self.usable(e % n) => {
                let e = e % n;
                for _ in 0..count {
                    let End {
                        node, rid, sent, ..
                    } = self.ends[e];
                    let data = [(e as u32).to_le_bytes(), sent.to_le_bytes()].concat();
                    match self.net.nodes[node].put(rid, data, vec![], &mut self.net.states) {
                        Ok(()) => self.ends[e].sent += 1,
                        Err(PortalError::PeerClosed) => break,
                        Err(other) => panic!("put: {other}"),
                    }
                }
            }
            Op::Move(e, dest) if n > 0 && self.usable(e % n) && self.ends[e % n].node != dest => {
                let e = e % n;
                let End { node, rid, .. } = self.ends[e];
                let carrier = self.carrier[node][dest].unwrap();
                let data = [MOVE.to_le_bytes(), (e as u32).to_le_bytes()].concat();
                match self.net.nodes[node].put(
                    carrier,
                    data,
                    vec![Handle::Portal(rid)],
                    &mut self.net.states,
                ) {
                    Ok(()) => self.ends[e].moving = true,
                    // Only after a link loss (the carrier route is gone).
                    Err(PortalError::PeerClosed) => {}
                    Err(other) => panic!("move: {other}"),
                }
            }
            Op::Read(e) if n > 0 && self.usable(e % n) => self.read(e % n),
            Op::Close(e) if n > 0 && self.usable(e % n) => {
                let e = e % n;
                self.read(e);
                let End { node, rid, .. } = self.ends[e];
                self.net.close(node, rid);
                self.ends[e].closed = true;
            }
            Op::Step(k) => {
                for _ in 0..k {
                    self.net.step();
                }
            }
            _ => {}
        }
        self.net.collect();
        self.pump_carriers();
    }

    fn settle(&mut self) {
        loop {
            self.net.run();
            self.pump_carriers();
            self.net.collect();
            if !self.net.step() {
                break;
            }
        }
    }

    /// Closes everything; checks that closure reached every live end with
    /// every parcel its peer sent.
    fn finish(mut self) {
        self.settle();
        assert!(
            self.ends.iter().all(|e| !e.moving),
            "a moved portal never arrived"
        );
        for e in 0..self.ends.len() {
            if self.ends[e].closed {
                continue;
            }
            self.read(e);
            let peer = self.ends[e].peer;
            let End { node, rid, .. } = self.ends[e];
            let st = self.net.nodes[node].status(rid).unwrap();
            if self.ends[peer].closed {
                assert!(
                    st.peer_closed && !st.disconnected,
                    "closure never arrived at end {e}"
                );
                assert_eq!(
                    self.ends[e].received, self.ends[peer].sent,
                    "parcels lost on end {e}"
                );
                assert!(st.dead);
            } else {
                assert!(!st.peer_closed);
            }
            self.net.close(node, rid);
            self.ends[e].closed = true;
            self.settle();
        }
        for a in 0..NODES {
            for b in 0..NODES {
                if let Some(c) = self.carrier[a][b].take() {
                    self.net.close(a, c);
                }
            }
        }
        assert!(self.net.errors.is_empty(), "{:?}", self.net.errors);
        self.net.assert_clean();
    }
}

fn config() -> impl Strategy<Value = RouterConfig> {
    (any::<bool>(), any::<bool>()).prop_map(|(split, b2)| RouterConfig {
        split_local_pairs: split,
        bypass_in_descriptor: b2,
        ..RouterConfig::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_every_route_exact(
        configs in proptest::array::uniform3(config()),
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut w = World::new(&configs, seed);
        for op in &ops {
            w.apply(op);
        }
        w.finish();
    }

    #[test]
    fn link_loss_at_any_point_leaks_nothing(
        configs in proptest::array::uniform3(config()),
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..60),
        lose_at in any::<usize>(),
        lose in (0..NODES, 0..NODES),
    ) {
        let mut w = World::new(&configs, seed);
        let lose_at = lose_at % (ops.len() + 1);
        for (i, op) in ops.iter().enumerate() {
            if i == lose_at && lose.0 != lose.1 {
                if let Some(l) = w.net.link_between(lose.0, lose.1) {
                    w.net.lose_link(l);
                }
            }
            w.apply(op);
        }
        w.settle();
        // Close everything still open (no closure guarantees after a loss).
        for e in 0..w.ends.len() {
            if !w.ends[e].closed && !w.ends[e].moving {
                let End { node, rid, .. } = w.ends[e];
                while let Ok(Some(_)) = w.net.nodes[node].get(rid, &mut w.net.states) {}
                w.net.close(node, rid);
                w.ends[e].closed = true;
            }
        }
        for a in 0..NODES {
            for b in 0..NODES {
                if let Some(c) = w.carrier[a][b].take() {
                    w.net.close(a, c);
                }
            }
        }
        // Portals whose carrier parcel was lost with the link are gone too.
        w.net.assert_clean();
    }
}
