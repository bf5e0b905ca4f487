//! Arbitrary route messages (and application calls between them) fed to a
//! router table: only typed errors, never a panic, and once every portal is
//! closed and every link gone, nothing is left.

use std::collections::BTreeSet;

use ipcz_node::router::{
    Handle, InMemoryLinkState, LinkSide, LinkState, NewRouter, NodeLinkId, Output, Parcel,
    RouteMessage, RouterConfig, RouterId, Routers, WireHandle,
};
use ipcz_wire::types::{FragmentDescriptor, NodeName, SublinkId};
use proptest::prelude::*;

const ME: NodeName = NodeName { high: 1, low: 1 };
const PEERS: [NodeName; 3] = [
    NodeName { high: 2, low: 2 },
    NodeName { high: 3, low: 3 },
    NodeName::NONE,
];
const LINKS: [NodeLinkId; 2] = [NodeLinkId(10), NodeLinkId(20)];
/// The peer ends of LINKS in the shared in-memory states.
const PEER_ENDS: [NodeLinkId; 2] = [NodeLinkId(11), NodeLinkId(21)];

fn sublink() -> impl Strategy<Value = SublinkId> {
    prop_oneof![9 => 0..24u64, 1 => any::<u64>()].prop_map(SublinkId)
}

fn length() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..12u64, 1 => Just(u64::MAX), 1 => any::<u64>()]
}

/// States the peer might name: some it allocated, some garbage.
fn state() -> impl Strategy<Value = FragmentDescriptor> {
    prop_oneof![
        4 => (0..6u32).prop_map(|i| FragmentDescriptor::new(1, 64 * i, 64)),
        1 => Just(FragmentDescriptor::NULL),
        1 => (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(b, o, s)| FragmentDescriptor::new(b, o, s)),
    ]
}

fn node() -> impl Strategy<Value = NodeName> {
    prop_oneof![3 => (0..3usize).prop_map(|i| PEERS[i]), 1 => Just(ME)]
}

fn descriptor() -> impl Strategy<Value = NewRouter> {
    (
        (
            any::<bool>(),
            length(),
            sublink(),
            proptest::option::of(state()),
            any::<bool>(),
        ),
        (
            sublink(),
            length(),
            length(),
            length(),
            proptest::option::of((node(), sublink())),
        ),
    )
        .prop_map(|((pc, cl, ns, st, byp), (ds, no, ni, di, pp))| NewRouter {
            peer_closed: pc,
            closed_peer_sequence_length: cl,
            new_sublink: ns,
            new_link_state: st,
            proxy_already_bypassed: byp,
            new_decaying_sublink: ds,
            next_outgoing_sequence_number: no,
            next_incoming_sequence_number: ni,
            decaying_incoming_sequence_length: di,
            proxy_peer: pp,
        })
}

fn message() -> impl Strategy<Value = RouteMessage<u8>> {
    let handles = proptest::collection::vec(
        prop_oneof![
            descriptor().prop_map(WireHandle::Router),
            any::<u8>().prop_map(WireHandle::Object)
        ],
        0..3,
    );
    prop_oneof![
        6 => (sublink(), length(), handles).prop_map(|(s, q, h)| RouteMessage::AcceptParcel {
            sublink: s,
            parcel: Parcel::new(q, vec![1, 2, 3], h),
        }),
        2 => (sublink(), length()).prop_map(|(s, l)| RouteMessage::RouteClosed { sublink: s, sequence_length: l }),
        1 => sublink().prop_map(|s| RouteMessage::RouteDisconnected { sublink: s }),
        2 => (sublink(), node(), sublink()).prop_map(|(s, n, t)| RouteMessage::BypassPeer {
            sublink: s,
            bypass_target_node: n,
            bypass_target_sublink: t,
        }),
        2 => (node(), sublink(), length(), sublink(), state()).prop_map(|(n, s, k, ns, f)| {
            RouteMessage::AcceptBypassLink {
                current_peer_node: n,
                current_peer_sublink: s,
                inbound_sequence_length_from_bypassed_link: k,
                new_sublink: ns,
                new_link_state: f,
            }
        }),
        1 => (sublink(), length(), length()).prop_map(|(s, i, o)| RouteMessage::StopProxying {
            sublink: s,
            inbound_sequence_length: i,
            outbound_sequence_length: o,
        }),
        2 => (sublink(), length()).prop_map(|(s, k)| RouteMessage::ProxyWillStop { sublink: s, inbound_sequence_length: k }),
        2 => (sublink(), sublink(), state(), length()).prop_map(|(s, n, f, k)| RouteMessage::BypassPeerWithLink {
            sublink: s,
            new_sublink: n,
            new_link_state: f,
            inbound_sequence_length: k,
        }),
        1 => (sublink(), length()).prop_map(|(s, o)| RouteMessage::StopProxyingToLocalPeer {
            sublink: s,
            outbound_sequence_length: o,
        }),
        1 => sublink().prop_map(|s| RouteMessage::FlushRouter { sublink: s }),
    ]
}

#[derive(Debug, Clone)]
enum Event {
    Message(usize, RouteMessage<u8>),
    Put(usize, bool),
    Read(usize),
    Close(usize),
    Introduce(usize),
    IntroductionFailed(usize),
    Capacity(usize),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        12 => (0..2usize, message()).prop_map(|(l, m)| Event::Message(l, m)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(p, m)| Event::Put(p, m)),
        2 => any::<usize>().prop_map(Event::Read),
        1 => any::<usize>().prop_map(Event::Close),
        1 => (0..2usize).prop_map(Event::Introduce),
        1 => (0..2usize).prop_map(Event::IntroductionFailed),
        1 => (0..2usize).prop_map(Event::Capacity),
    ]
}

struct Harness {
    table: Routers<u8>,
    states: InMemoryLinkState,
    portals: Vec<RouterId>,
    live_links: BTreeSet<usize>,
}

impl Harness {
    fn new(config: RouterConfig) -> Self {
        let mut states = InMemoryLinkState::default();
        let mut table = Routers::new(ME, config);
        let mut portals = Vec::new();
        for (i, (l, p)) in LINKS.iter().zip(PEER_ENDS).enumerate() {
            states.bind(p, *l);
            states.set_capacity(*l, 3);
            // What the peer "allocated" and may hand over.
            for k in 0..6 {
                states.add_allocated(p, FragmentDescriptor::new(1, 64 * k, 64));
            }
            table.add_node_link(*l, PEERS[i], &mut states);
            for s in 0..3u64 {
                let slot = FragmentDescriptor::new(0, 256 + 64 * s as u32, 64);
                states.add_unmanaged(p, slot);
                if s != 1 {
                    states.set_side_stable(p, slot, LinkSide::A);
                }
                portals.push(
                    table
                        .connect_initial_portal(*l, SublinkId(s), LinkSide::B, slot, &mut states)
                        .unwrap(),
                );
            }
        }
        let (a, b) = table.open_pair(&mut states);
        portals.extend([a, b]);
        Self {
            table,
            states,
            portals,
            live_links: [0, 1].into(),
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.table.poll_output() {
            if let Output::Send { link, message } = o {
                assert!(LINKS.contains(&link));
                drop(message);
            }
        }
    }

    fn apply(&mut self, e: Event) {
        let n = self.portals.len();
        match e {
            Event::Message(l, m) if self.live_links.contains(&l) => {
                // A typed error: the node drops the link, as it must.
                if let Err(e) = self.table.handle_message(LINKS[l], m, &mut self.states) {
                    assert!(!e.to_string().is_empty());
                    self.table.node_link_lost(LINKS[l], &mut self.states);
                    self.live_links.remove(&l);
                }
            }
            Event::Put(p, with_portal) if n > 0 => {
                let from = self.portals[p % n];
                let handles = if with_portal {
                    vec![Handle::Portal(self.portals[(p / 7) % n])]
                } else {
                    vec![Handle::Object(7)]
                };
                let moved = match handles[0] {
                    Handle::Portal(r) => Some(r),
                    Handle::Object(_) => None,
                };
                if self
                    .table
                    .put(from, vec![9], handles, &mut self.states)
                    .is_ok()
                    && let Some(r) = moved
                {
                    self.portals.retain(|x| *x != r);
                }
            }
            Event::Read(p) if n > 0 => {
                let portal = self.portals[p % n];
                while let Ok(Some(parcel)) = self.table.get(portal, &mut self.states) {
                    for h in parcel.handles {
                        if let Handle::Portal(r) = h {
                            self.portals.push(r);
                        }
                    }
                }
            }
            Event::Close(p) if n > 0 => {
                let portal = self.portals.remove(p % n);
                self.table.close(portal, &mut self.states).unwrap();
            }
            Event::Introduce(i) => {
                let l = LINKS[i];
                if self.live_links.contains(&i) {
                    self.table.add_node_link(l, PEERS[i], &mut self.states);
                }
            }
            Event::IntroductionFailed(i) => {
                self.table.introduction_failed(PEERS[i], &mut self.states)
            }
            Event::Capacity(i) => {
                self.states.set_capacity(LINKS[i], 3);
                self.table.capacity_added(LINKS[i], &mut self.states);
            }
            _ => {}
        }
        self.drain();
    }

    fn finish(mut self) {
        for l in std::mem::take(&mut self.live_links) {
            self.table.node_link_lost(LINKS[l], &mut self.states);
        }
        // Whatever is still readable may carry portals; take them, then close all.
        while let Some(p) = self.portals.pop() {
            while let Ok(Some(parcel)) = self.table.get(p, &mut self.states) {
                for h in parcel.handles {
                    if let Handle::Portal(r) = h {
                        self.portals.push(r);
                    }
                }
            }
            self.table.close(p, &mut self.states).unwrap();
        }
        self.drain();
        assert_eq!(self.table.router_count(), 0, "{:#?}", self.table);
        assert_eq!(self.table.sublink_count(), 0);
        assert_eq!(self.table.queued_parcel_count(), 0);
        assert_eq!(self.table.local_link_state_count(), 0);
        assert!(!self.table.has_pending());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_route_messages_give_typed_errors_only(
        split in any::<bool>(),
        events in proptest::collection::vec(event(), 0..60),
    ) {
        let config = RouterConfig { split_local_pairs: split, ..RouterConfig::default() };
        let mut h = Harness::new(config);
        for e in events {
            h.apply(e);
        }
        h.finish();
    }
}

#[test]
fn errors_name_what_was_wrong() {
    let mut h = Harness::new(RouterConfig::default());
    let bad_state = RouteMessage::BypassPeerWithLink {
        sublink: SublinkId(0),
        new_sublink: SublinkId(12),
        new_link_state: FragmentDescriptor::NULL,
        inbound_sequence_length: 0,
    };
    let e = h
        .table
        .handle_message(LINKS[0], bad_state, &mut h.states)
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid RouterLinkState for sublink 12");
    let conflict = RouteMessage::RouteClosed {
        sublink: SublinkId(2),
        sequence_length: 0,
    };
    h.table
        .handle_message(LINKS[0], conflict, &mut h.states)
        .unwrap();
    let again = RouteMessage::RouteClosed {
        sublink: SublinkId(2),
        sequence_length: 5,
    };
    assert!(
        h.table
            .handle_message(LINKS[0], again, &mut h.states)
            .is_ok(),
        "a longer length after a shorter one is accepted"
    );
    let parcel = RouteMessage::AcceptParcel {
        sublink: SublinkId(0),
        parcel: Parcel::new(
            0,
            vec![],
            vec![WireHandle::Router(NewRouter {
                new_sublink: SublinkId(0),
                ..NewRouter::default()
            })],
        ),
    };
    assert!(matches!(
        h.table.handle_message(LINKS[0], parcel, &mut h.states),
        Err(ipcz_node::router::RouteError::DescriptorSublinkConflict { .. })
    ));
    let _ = h.states.allocate(LINKS[0]);
}
