//! The proxy's router table as the host-driven tests use it: the three nodes'
//! names, the proxy's end of the host link, and a [`Proxy`] wrapper that feeds
//! it host messages and checks teardown.

#![allow(dead_code, unreachable_pub, unused_imports)]

pub use ipcz_node::router::{
    Handle, InMemoryLinkState, LinkSide, LinkState, NewRouter, NodeLinkId, Output, Parcel,
    PortalError, ProxyPolicy, RouteError, RouteMessage, RouterConfig, RouterId, Routers,
    WireHandle,
};
pub use ipcz_wire::types::{FragmentDescriptor, NodeName, SublinkId};

pub const HOST: NodeName = NodeName {
    high: 0xc282,
    low: 0x7b0a,
};
pub const PROXY: NodeName = NodeName {
    high: 0x4ecd,
    low: 0xd169,
};
pub const RENDERER: NodeName = NodeName {
    high: 0x5555,
    low: 0x6666,
};
/// The proxy's end of the host link, and the host's.
pub const L: NodeLinkId = NodeLinkId(2);
pub const HOST_END: NodeLinkId = NodeLinkId(1);

pub fn frag(offset: u32) -> FragmentDescriptor {
    FragmentDescriptor::new(0, offset, 64)
}

pub struct Proxy {
    pub table: Routers<()>,
    pub states: InMemoryLinkState,
}

impl Proxy {
    pub fn new() -> Self {
        let mut states = InMemoryLinkState::default();
        states.bind(HOST_END, L);
        let config = RouterConfig {
            proxy_policy: ProxyPolicy::Never,
            ..RouterConfig::default()
        };
        let mut table = Routers::new(PROXY, config);
        table.add_node_link(L, HOST, &mut states);
        Self { table, states }
    }

    pub fn host(&mut self, m: RouteMessage<()>) {
        self.table.handle_message(L, m, &mut self.states).unwrap();
    }

    /// Messages sent since the last call (other outputs dropped).
    pub fn sent(&mut self) -> Vec<(NodeLinkId, RouteMessage<()>)> {
        let mut v = Vec::new();
        while let Some(o) = self.table.poll_output() {
            if let Output::Send { link, message } = o {
                v.push((link, message));
            }
        }
        v
    }

    /// Closes `portals`, loses `links`, and checks nothing is left.
    pub fn teardown(mut self, portals: &[RouterId], links: &[NodeLinkId]) {
        for p in portals {
            self.table.close(*p, &mut self.states).unwrap();
        }
        for l in links {
            self.table.node_link_lost(*l, &mut self.states);
        }
        assert_eq!(self.table.router_count(), 0);
        assert_eq!(self.table.sublink_count(), 0);
        assert_eq!(self.table.queued_parcel_count(), 0);
        assert_eq!(self.table.local_link_state_count(), 0);
        assert!(!self.table.has_pending());
    }

    pub fn get(&mut self, p: RouterId) -> Parcel<Handle<()>> {
        self.table
            .get(p, &mut self.states)
            .unwrap()
            .expect("parcel ready")
    }
}

pub fn parcel(sublink: u64, seq: u64, handles: Vec<WireHandle<()>>) -> RouteMessage<()> {
    RouteMessage::AcceptParcel {
        sublink: SublinkId(sublink),
        parcel: Parcel::new(seq, seq.to_le_bytes().to_vec(), handles),
    }
}

/// The "already bypassed" descriptor a host sends for a fresh pipe end.
pub fn bypassed(sublink: u64, state: FragmentDescriptor, decaying_incoming: u64) -> WireHandle<()> {
    WireHandle::Router(NewRouter {
        new_sublink: SublinkId(sublink),
        new_link_state: Some(state),
        proxy_already_bypassed: true,
        new_decaying_sublink: SublinkId(sublink + 1),
        decaying_incoming_sequence_length: decaying_incoming,
        ..NewRouter::default()
    })
}

pub fn portal_of(p: &Parcel<Handle<()>>) -> RouterId {
    match p.handles.as_slice() {
        [Handle::Portal(r)] => *r,
        other => panic!("expected a portal, got {other:?}"),
    }
}
