//! Random applications on three nodes (links 0-1 and 1-2, more made on
//! demand for bypasses): pairs created, parcels with data, fd boxes and
//! portals put, taken and closed, frames delivered in random interleavings
//! across links (in order within one). Whatever happens, once everything
//! is read and closed nothing is left: no router, sublink, link, block,
//! fragment or fd, and no link was ever dropped.

mod node_support;

use ipcz_node::node::{NodeConfig, NodeHandle, ParcelDataPlacement};
use ipcz_node::router::{Handle, RouterId};
use node_support::{Net, fd_box};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    NewPair(usize),
    Put {
        node: usize,
        portal: usize,
        len: usize,
        attach: Option<usize>,
        fd: bool,
    },
    Get(usize, usize),
    Close(usize, usize),
    Deliver(usize),
    Run,
    /// A hostile peer writes `value` at word `offset` of a link's primary buffer.
    Scribble(usize, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..3usize).prop_map(Op::NewPair),
        6 => (0..3usize, 0..8usize, 0..600usize, proptest::option::of(0..8usize), any::<bool>())
            .prop_map(|(node, portal, len, attach, fd)| Op::Put { node, portal, len, attach, fd }),
        3 => (0..3usize, 0..8usize).prop_map(|(n, p)| Op::Get(n, p)),
        1 => (0..3usize, 0..8usize).prop_map(|(n, p)| Op::Close(n, p)),
        4 => (0..16usize).prop_map(Op::Deliver),
        1 => Just(Op::Run),
    ]
}

fn op_or_scribble() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => op(),
        1 => (prop_oneof![0usize..640, 0usize..(1 << 14)], prop_oneof![any::<u64>(), 0u64..4])
            .prop_map(|(o, v)| Op::Scribble(o, v)),
    ]
}

struct World {
    net: Net,
    portals: Vec<Vec<RouterId>>,
    /// Portals that carry moved portals: the initial ones, which never
    /// move themselves. (A portal carried along its own route would loop
    /// forever, in ipcz as here: the application must not build cycles.)
    carriers: Vec<Vec<RouterId>>,
}

impl World {
    fn new(placement: [bool; 3]) -> Self {
        let configs: Vec<NodeConfig> = placement
            .iter()
            .map(|fragments| NodeConfig {
                parcel_data: if *fragments {
                    ParcelDataPlacement::SharedMemory
                } else {
                    ParcelDataPlacement::Inline
                },
                ..NodeConfig::default()
            })
            .collect();
        let mut net = Net::new(&configs);
        let (_, _, a, b1) = net.connect_with_portals(0, 1, 2);
        let (_, _, b2, c) = net.connect_with_portals(1, 2, 2);
        let mut portals = vec![a, b1, c];
        portals[1].extend(b2);
        let carriers = portals.clone();
        Self {
            net,
            portals,
            carriers,
        }
    }

    fn pick(&self, node: usize, i: usize) -> Option<RouterId> {
        let list = &self.portals[node];
        (!list.is_empty()).then(|| list[i % list.len()])
    }

    fn absorb(&mut self, node: usize, handles: Vec<NodeHandle>) {
        for h in handles {
            if let Handle::Portal(p) = h {
                self.portals[node].push(p);
            }
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::NewPair(n) => {
                let (a, b) = self.net.nodes[n].create_portal_pair();
                self.portals[n].extend([a, b]);
            }
            Op::Put {
                node,
                portal,
                len,
                attach,
                fd,
            } => {
                let carrier = attach.and_then(|_| {
                    let c = &self.carriers[node];
                    Some(c[portal % c.len()]).filter(|c| self.portals[node].contains(c))
                });
                let Some(p) = carrier.or_else(|| self.pick(node, portal)) else {
                    return;
                };
                let mut handles = Vec::new();
                let moved = attach
                    .filter(|_| carrier.is_some())
                    .and_then(|i| self.pick(node, i))
                    .filter(|m| *m != p && !self.carriers[node].contains(m));
                if let Some(m) = moved {
                    handles.push(Handle::Portal(m));
                }
                if fd {
                    handles.push(Handle::Object(fd_box()));
                }
                let data = vec![len as u8; len];
                if self.net.nodes[node].put(p, data, handles).is_ok()
                    && let Some(m) = moved
                {
                    self.portals[node].retain(|x| *x != m);
                }
            }
            Op::Get(n, i) => {
                if let Some(p) = self.pick(n, i)
                    && let Ok(Some(parcel)) = self.net.nodes[n].get(p)
                {
                    self.absorb(n, parcel.handles);
                }
            }
            Op::Close(n, i) => {
                if let Some(p) = self.pick(n, i) {
                    self.net.nodes[n].close(p).unwrap();
                    self.portals[n].retain(|x| *x != p);
                }
            }
            Op::Deliver(k) => {
                self.net.collect();
                let keys: Vec<_> = self.net.in_flight.keys().copied().collect();
                if !keys.is_empty() {
                    let from = keys[k % keys.len()];
                    self.net.deliver_one(from);
                }
            }
            Op::Run => self.net.run(),
            Op::Scribble(offset, value) => {
                use mojo_wire_kit::SharedMemory;
                let ends: Vec<_> = self.net.ends.keys().copied().collect();
                if let Some((n, link)) = ends.get(offset % ends.len().max(1))
                    && let Some(l) = self.net.nodes[*n].link(*link)
                {
                    let _ = l.memory().primary().write(offset * 8, &value.to_le_bytes());
                }
            }
        }
    }

    /// Reads and closes everything, repeatedly (parcels bring portals).
    fn drain(&mut self) {
        for _ in 0..100 {
            self.net.run();
            let mut any = false;
            for n in 0..3 {
                let list = std::mem::take(&mut self.portals[n]);
                for p in list {
                    any = true;
                    while let Ok(Some(parcel)) = self.net.nodes[n].get(p) {
                        self.absorb(n, parcel.handles);
                    }
                    self.net.nodes[n].close(p).unwrap();
                }
            }
            if !any {
                return;
            }
        }
        panic!("portals keep coming");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_applications_leave_nothing_behind(
        placement in any::<[bool; 3]>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut w = World::new(placement);
        for op in ops {
            w.apply(op);
        }
        w.drain();
        prop_assert!(w.net.dropped.is_empty(), "links dropped: {:?}", w.net.dropped);
        w.net.assert_idle_and_clean();
    }

    /// The same with a hostile peer scribbling over the shared memory now
    /// and then: links may be dropped with typed errors, nothing panics,
    /// and once every transport is closed nothing is left in any node.
    #[test]
    fn random_applications_with_scribbled_memory_leave_nothing_behind(
        placement in any::<[bool; 3]>(),
        ops in proptest::collection::vec(op_or_scribble(), 1..80),
    ) {
        let mut w = World::new(placement);
        for op in ops {
            w.apply(op);
        }
        w.drain();
        let ends: Vec<_> = w.net.ends.keys().copied().collect();
        for (n, link) in ends {
            w.net.close_transport(n, link);
        }
        w.drain();
        w.net.assert_nothing_left();
    }
}
