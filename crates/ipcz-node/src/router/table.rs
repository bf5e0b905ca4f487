//! The router table of one node: routers, the sublink table of every node
//! link, and the application API (the link primitives are in `links.rs`).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use mojo_wire_kit::KeyedHasher;

use ipcz_wire::types::{FragmentDescriptor, NodeName, SublinkId};

use super::edge::{Edge, Link, LinkType};
use super::queue::{PushRefused, SequencedQueue};
use super::sublinks::SublinkIndex;
use super::{
    Handle, LinkSide, LinkState, LinkStatus, NodeLinkId, Output, Parcel, PortalError, PortalStatus,
    RouteError, RouteMessage, RouterId,
};

/// Whether this node may leave proxy routers behind when it moves portals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyPolicy {
    /// Move any portal; a proxy is left behind where needed and bypassed.
    #[default]
    Allowed,
    /// Never proxy (§6.10, the `mojo_proxy` node): only a portal whose peer
    /// is a local router can move (the route is split, as for a fresh pipe).
    Never,
}

/// How a table behaves where the protocol leaves a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterConfig {
    /// See [`ProxyPolicy`].
    pub proxy_policy: ProxyPolicy,
    /// Move a portal whose peer is local in the "already bypassed" form
    /// (descriptor variant A) when the local link can be locked. Chrome does;
    /// turning it off exercises the BypassPeerWithLink path instead.
    pub split_local_pairs: bool,
    /// Put the bypass request into the descriptor (variant B2) when the
    /// moved portal's central link can be locked. Chrome does; turning it
    /// off exercises the separate BypassPeer path.
    pub bypass_in_descriptor: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            proxy_policy: ProxyPolicy::Allowed,
            split_local_pairs: true,
            bypass_in_descriptor: true,
        }
    }
}

/// Who holds a router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attachment {
    /// The application holds it as a portal.
    Portal,
    /// It travels inside a parcel of this table.
    InTransit,
    /// Nobody: closed by the application, or moved away (now a proxy).
    Gone,
}

#[derive(Debug)]
pub(crate) struct Router<H> {
    /// Parcels from the outward side (to the application, or forwarded inward).
    pub(crate) inbound: SequencedQueue<Parcel<Handle<H>>>,
    /// Parcels toward the outward side (from the application or from inward).
    pub(crate) outbound: SequencedQueue<Parcel<Handle<H>>>,
    pub(crate) outward: Edge,
    /// Only proxies have an inward edge.
    pub(crate) inward: Option<Edge>,
    pub(crate) attachment: Attachment,
    pub(crate) peer_closed: bool,
    pub(crate) disconnected: bool,
    /// `PeerClosed` was reported.
    pub(crate) peer_closed_reported: bool,
    /// Inbound length up to which `Readable` was reported.
    pub(crate) readable_reported: u64,
}

impl<H> Router<H> {
    pub(crate) fn new(next_incoming: u64, next_outgoing: u64, attachment: Attachment) -> Self {
        Self {
            inbound: SequencedQueue::starting_at(next_incoming),
            outbound: SequencedQueue::starting_at(next_outgoing),
            outward: Edge::default(),
            inward: None,
            attachment,
            peer_closed: false,
            disconnected: false,
            peer_closed_reported: false,
            readable_reported: next_incoming,
        }
    }

    pub(crate) fn has_links(&self) -> bool {
        self.outward.has_links() || self.inward.as_ref().is_some_and(Edge::has_links)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SublinkEntry {
    pub(crate) router: RouterId,
    pub(crate) link: Link,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalLinkState {
    pub(crate) status: LinkStatus,
    pub(crate) refs: u8,
}

/// Work waiting for the caller (an introduction or shared-memory capacity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Z role: a bypass needs a node link to `target_node`.
    BypassAwaitingLink {
        z: RouterId,
        requestor: Link,
        target_node: NodeName,
        target_sublink: SublinkId,
    },
    /// Z role: a bypass needs a RouterLinkState on `link`.
    BypassAwaitingCapacity {
        z: RouterId,
        requestor: Link,
        link: NodeLinkId,
        target_sublink: SublinkId,
    },
    /// Y role: bypass toward a local outward peer needs a RouterLinkState.
    SelfBypassAwaitingCapacity { y: RouterId, link: NodeLinkId },
    /// A parcel moving a portal waits for a RouterLinkState on `link`.
    TransmitAwaitingCapacity { router: RouterId, link: NodeLinkId },
}

impl Pending {
    pub(crate) fn router(&self) -> RouterId {
        match *self {
            Self::BypassAwaitingLink { z, .. } | Self::BypassAwaitingCapacity { z, .. } => z,
            Self::SelfBypassAwaitingCapacity { y, .. } => y,
            Self::TransmitAwaitingCapacity { router, .. } => router,
        }
    }
}

/// Every router of one node and the sublink table of each of its node links.
///
/// Calls take the node's [`LinkState`] (`states`) for the shared memory of
/// the links; outputs are drained with [`Routers::poll_output`].
#[derive(Debug)]
pub struct Routers<H> {
    pub(crate) local_name: NodeName,
    pub(crate) config: RouterConfig,
    /// Every router by id. A hash map (with the kit's cheap keyed hasher):
    /// each parcel looks routers up several times, and a B-tree of 10,000
    /// routers costs a cache miss per level per lookup; nothing iterates it
    /// in an order that matters.
    pub(crate) routers: HashMap<RouterId, Router<H>, KeyedHasher>,
    pub(crate) sublinks: SublinkIndex,
    pub(crate) node_links: BTreeMap<NodeLinkId, NodeName>,
    pub(crate) local_states: BTreeMap<u64, LocalLinkState>,
    pub(crate) pending: Vec<Pending>,
    /// RouterLinkStates allocated for portals about to move (split form).
    pub(crate) preallocated: BTreeMap<RouterId, (NodeLinkId, FragmentDescriptor)>,
    pub(crate) outputs: VecDeque<Output<H>>,
    pub(crate) dirty: VecDeque<(RouterId, bool)>,
    /// The emptied queues that keep their burst capacity.
    pub(crate) kept_rings: super::kept_rings::KeptRings,
    next_router: u64,
    next_local_state: u64,
}

impl<H> Routers<H> {
    /// An empty table for the node named `local_name`.
    pub fn new(local_name: NodeName, config: RouterConfig) -> Self {
        Self {
            local_name,
            config,
            routers: HashMap::default(),
            sublinks: SublinkIndex::default(),
            node_links: BTreeMap::new(),
            local_states: BTreeMap::new(),
            pending: Vec::new(),
            preallocated: BTreeMap::new(),
            outputs: VecDeque::new(),
            dirty: VecDeque::new(),
            kept_rings: Default::default(),
            next_router: 1,
            next_local_state: 1,
        }
    }

    /// This node's name.
    pub fn local_name(&self) -> NodeName {
        self.local_name
    }

    /// The next action for the caller.
    pub fn poll_output(&mut self) -> Option<Output<H>> {
        self.outputs.pop_front()
    }

    /// Number of routers alive (portals, parcels in transit, proxies).
    pub fn router_count(&self) -> usize {
        self.routers.len()
    }

    /// Number of registered sublinks on all node links.
    pub fn sublink_count(&self) -> usize {
        self.sublinks.len()
    }

    /// Number of parcels queued in all routers.
    pub fn queued_parcel_count(&self) -> usize {
        self.routers
            .values()
            .map(|r| r.inbound.queued() + r.outbound.queued())
            .sum()
    }

    /// Number of in-process link states alive.
    pub fn local_link_state_count(&self) -> usize {
        self.local_states.len()
    }

    /// Whether anything waits for an introduction or capacity.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Registers node link `link` to the node `remote_name`, and resumes
    /// bypasses that waited for a link to that node.
    pub fn add_node_link(
        &mut self,
        link: NodeLinkId,
        remote_name: NodeName,
        states: &mut impl LinkState,
    ) {
        self.node_links.insert(link, remote_name);
        let (ready, waiting): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(
            |p| matches!(p, Pending::BypassAwaitingLink { target_node, .. } if *target_node == remote_name),
        );
        self.pending = waiting;
        for p in ready {
            if let Pending::BypassAwaitingLink {
                z,
                requestor,
                target_sublink,
                ..
            } = p
                && let Err(e) = self.bypass_peer_with_new_remote_link(
                    z,
                    requestor,
                    link,
                    target_sublink,
                    states,
                )
            {
                log::debug!("bypass of {z:?} failed after introduction: {e}");
                self.disconnect(z, true, states);
            }
        }
        self.run(states);
    }

    /// The introduction to `node` failed: routers waiting for it are
    /// disconnected from their outward side (§6.8.2 step 3).
    pub fn introduction_failed(&mut self, node: NodeName, states: &mut impl LinkState) {
        let (failed, waiting): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(
            |p| matches!(p, Pending::BypassAwaitingLink { target_node, .. } if *target_node == node),
        );
        self.pending = waiting;
        for p in failed {
            self.disconnect(p.router(), true, states);
        }
        self.run(states);
    }

    /// Capacity for RouterLinkStates was added on `link`: retries what waited for it.
    pub fn capacity_added(&mut self, link: NodeLinkId, states: &mut impl LinkState) {
        let (ready, waiting): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|p| match p {
            Pending::BypassAwaitingCapacity { link: l, .. }
            | Pending::SelfBypassAwaitingCapacity { link: l, .. }
            | Pending::TransmitAwaitingCapacity { link: l, .. } => *l == link,
            Pending::BypassAwaitingLink { .. } => false,
        });
        self.pending = waiting;
        for p in ready {
            match p {
                Pending::BypassAwaitingCapacity {
                    z,
                    requestor,
                    link,
                    target_sublink,
                } => {
                    if let Err(e) = self.bypass_peer_with_new_remote_link(
                        z,
                        requestor,
                        link,
                        target_sublink,
                        states,
                    ) {
                        log::debug!("bypass of {z:?} failed: {e}");
                        self.disconnect(z, true, states);
                    }
                }
                Pending::SelfBypassAwaitingCapacity { y, .. } => {
                    let r = self.routers.get(&y);
                    let bridge = r
                        .and_then(|r| r.inward.as_ref())
                        .and_then(|e| e.primary)
                        .and_then(|l| l.local_peer());
                    let outward = r.and_then(|r| r.outward.primary);
                    if let (Some(x), Some(outward)) = (bridge, outward) {
                        if !self.start_bridge_bypass(y, x, outward, states) {
                            self.mark_dirty(y, true);
                        }
                        continue;
                    }
                    let x = r
                        .and_then(|r| r.outward.primary)
                        .and_then(|l| l.local_peer());
                    let inward = r.and_then(|r| r.inward.as_ref()).and_then(|e| e.primary);
                    if let (Some(x), Some(inward)) = (x, inward) {
                        self.start_self_bypass_to_local_peer(y, x, inward, states);
                    } else {
                        self.mark_dirty(y, true);
                    }
                }
                Pending::TransmitAwaitingCapacity { router, .. } => self.mark_dirty(router, true),
                Pending::BypassAwaitingLink { .. } => {}
            }
        }
        self.run(states);
    }

    /// Re-examines every router with a link on `link` (e.g. after a pending
    /// shared buffer arrived, so its RouterLinkStates became usable).
    pub fn flush_node_link(&mut self, link: NodeLinkId, states: &mut impl LinkState) {
        let routers: BTreeSet<RouterId> =
            self.sublinks.on_link(link).map(|(_, e)| e.router).collect();
        for r in routers {
            self.mark_dirty(r, true);
        }
        self.run(states);
    }

    /// The node link `link` is gone (closed, failed, or dropped for a
    /// [`RouteError`]): every route through it is disconnected (§6.7).
    pub fn node_link_lost(&mut self, link: NodeLinkId, states: &mut impl LinkState) {
        let entries: Vec<((NodeLinkId, SublinkId), SublinkEntry)> =
            self.sublinks.on_link(link).map(|(k, e)| (*k, *e)).collect();
        let mut affected = Vec::new();
        for (key, entry) in entries {
            self.sublinks.remove(&key);
            self.release_remote_state(&entry.link, states);
            self.outputs.push_back(Output::SublinkDropped {
                link: key.0,
                sublink: key.1,
            });
            if let Some(r) = self.routers.get_mut(&entry.router) {
                let removed = r.outward.remove(&entry.link)
                    || r.inward.as_mut().is_some_and(|e| e.remove(&entry.link));
                if removed {
                    affected.push((entry.router, entry.link.is_outward()));
                }
            }
        }
        let (lost, kept): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|p| match p {
            Pending::BypassAwaitingLink { requestor, .. } => {
                requestor.remote().is_some_and(|(l, _)| l == link)
            }
            Pending::BypassAwaitingCapacity {
                requestor, link: l, ..
            } => *l == link || requestor.remote().is_some_and(|(rl, _)| rl == link),
            Pending::SelfBypassAwaitingCapacity { link: l, .. }
            | Pending::TransmitAwaitingCapacity { link: l, .. } => *l == link,
        });
        self.pending = kept;
        for p in lost {
            affected.push((p.router(), true));
        }
        self.node_links.remove(&link);
        for (router, outward) in affected {
            self.disconnect(router, outward, states);
        }
        self.run(states);
    }

    /// A new route with both ends here: two portals joined by a local central link.
    pub fn open_pair(&mut self, states: &mut impl LinkState) -> (RouterId, RouterId) {
        let a = self.create_router(Router::new(0, 0, Attachment::Portal));
        let b = self.create_router(Router::new(0, 0, Attachment::Portal));
        let state = self.new_local_state(LinkStatus::stable());
        self.router_mut(a).outward.set_primary(Link::Local {
            peer: b,
            side: LinkSide::A,
            state,
        });
        self.router_mut(b).outward.set_primary(Link::Local {
            peer: a,
            side: LinkSide::B,
            state,
        });
        self.run(states);
        (a, b)
    }

    /// An initial portal of a fresh node link (§4.4): central link `sublink`
    /// on `link`, our side `side`, its fixed (unmanaged) RouterLinkState
    /// `state`. Marks our side stable and wakes the other side if waiting.
    pub fn connect_initial_portal(
        &mut self,
        link: NodeLinkId,
        sublink: SublinkId,
        side: LinkSide,
        state: FragmentDescriptor,
        states: &mut impl LinkState,
    ) -> Result<RouterId, RouteError> {
        if !self.node_links.contains_key(&link) {
            return Err(RouteError::UnknownNodeLink);
        }
        if self.sublinks.contains_key(&(link, sublink)) {
            return Err(RouteError::SublinkInUse { sublink });
        }
        let r = self.create_router(Router::new(0, 0, Attachment::Portal));
        let l = Link::Remote {
            node_link: link,
            sublink,
            link_type: LinkType::Central,
            side,
            state: Some(state),
        };
        self.sublinks
            .insert((link, sublink), SublinkEntry { router: r, link: l });
        self.set_outward_link(r, l, states);
        self.run(states);
        Ok(r)
    }

    /// An initial portal merged at once with one end of a fresh local
    /// pair, as MojoIpcz does with each invitation attachment
    /// (MergePortals): the router on `sublink` becomes a proxy whose
    /// outward link is that central link and whose inward link goes to the
    /// returned portal; it asks its outward peer for a link straight to
    /// the portal as soon as it can lock the link (see
    /// `start_bridge_bypass`), which is what a real MojoIpcz node sends
    /// right after connecting.
    pub fn connect_merged_initial_portal(
        &mut self,
        link: NodeLinkId,
        sublink: SublinkId,
        side: LinkSide,
        state: FragmentDescriptor,
        states: &mut impl LinkState,
    ) -> Result<RouterId, RouteError> {
        if !self.node_links.contains_key(&link) {
            return Err(RouteError::UnknownNodeLink);
        }
        if self.sublinks.contains_key(&(link, sublink)) {
            return Err(RouteError::SublinkInUse { sublink });
        }
        let y = self.create_router(Router::new(0, 0, Attachment::Gone));
        let x = self.create_router(Router::new(0, 0, Attachment::Portal));
        let local = self.new_local_state(LinkStatus::stable());
        let mut inward = Edge::default();
        inward.set_primary(Link::Local {
            peer: x,
            side: LinkSide::A,
            state: local,
        });
        self.router_mut(y).inward = Some(inward);
        self.router_mut(x).outward.set_primary(Link::Local {
            peer: y,
            side: LinkSide::B,
            state: local,
        });
        let remote = Link::Remote {
            node_link: link,
            sublink,
            link_type: LinkType::Central,
            side,
            state: Some(state),
        };
        self.sublinks.insert(
            (link, sublink),
            SublinkEntry {
                router: y,
                link: remote,
            },
        );
        self.set_outward_link(y, remote, states);
        self.run(states);
        Ok(x)
    }

    /// Puts a parcel into `portal`. Portals among `handles` move with it:
    /// they stop being the caller's and become the receiver's.
    pub fn put(
        &mut self,
        portal: RouterId,
        data: Vec<u8>,
        handles: Vec<Handle<H>>,
        states: &mut impl LinkState,
    ) -> Result<(), PortalError> {
        let r = self.routers.get(&portal).ok_or(PortalError::NotAPortal)?;
        if r.attachment != Attachment::Portal {
            return Err(PortalError::NotAPortal);
        }
        if r.peer_closed || r.disconnected {
            return Err(PortalError::PeerClosed);
        }
        let peer = r.outward.primary.and_then(|l| l.local_peer());
        let mut moved = BTreeSet::new();
        for h in &handles {
            if let Handle::Portal(p) = h {
                let ok = *p != portal
                    && Some(*p) != peer
                    && moved.insert(*p)
                    && self
                        .routers
                        .get(p)
                        .is_some_and(|m| m.attachment == Attachment::Portal);
                if !ok {
                    return Err(PortalError::InvalidTransfer);
                }
                if self.would_cycle(*p, portal) {
                    return Err(PortalError::InvalidTransfer);
                }
                if self.config.proxy_policy == ProxyPolicy::Never && !self.is_splittable(*p) {
                    return Err(PortalError::WouldProxy);
                }
            }
        }
        let r = self.router_mut(portal);
        let seq = r.outbound.current_len();
        if let Err((refused, _)) = r.outbound.push(seq, Parcel::new(seq, data, handles)) {
            return Err(match refused {
                PushRefused::Full => PortalError::QueueFull,
                _ => PortalError::SequenceExhausted,
            });
        }
        for p in moved {
            self.router_mut(p).attachment = Attachment::InTransit;
        }
        self.mark_dirty(portal, false);
        self.run(states);
        Ok(())
    }

    /// Takes the next parcel of `portal` in sequence order, `Ok(None)` if
    /// none is ready. Portals in it become the caller's.
    pub fn get(
        &mut self,
        portal: RouterId,
        states: &mut impl LinkState,
    ) -> Result<Option<Parcel<Handle<H>>>, PortalError> {
        let r = self
            .routers
            .get_mut(&portal)
            .filter(|r| r.attachment == Attachment::Portal)
            .ok_or(PortalError::NotAPortal)?;
        if r.inbound.peek().is_none() {
            return Ok(None);
        }
        let mut parcel = r.inbound.pop();
        self.keep_or_trim_ring(portal, true);
        if let Some(p) = &mut parcel {
            // The application has it now: no longer queued here.
            p.discharge();
            for h in &p.handles {
                if let Handle::Portal(moved) = h
                    && let Some(m) = self.routers.get_mut(moved)
                {
                    m.attachment = Attachment::Portal;
                    self.dirty.push_back((*moved, false));
                }
            }
        }
        self.mark_dirty(portal, false);
        self.run(states);
        Ok(parcel)
    }

    /// After a parcel was taken from a queue of `router` (`inbound` or
    /// outbound): an emptied ring with excess capacity is kept, within the
    /// table's bounds, or trimmed, and rings pushed out of the bounds are
    /// trimmed (`kept_rings`).
    pub(crate) fn keep_or_trim_ring(&mut self, router: RouterId, inbound: bool) {
        fn queue<H>(r: &mut Router<H>, inbound: bool) -> &mut SequencedQueue<Parcel<Handle<H>>> {
            if inbound {
                &mut r.inbound
            } else {
                &mut r.outbound
            }
        }
        let Some(r) = self.routers.get_mut(&router) else {
            return;
        };
        let q = queue(r, inbound);
        let excess = q.excess_bytes();
        if q.queued() != 0 || excess == 0 {
            return;
        }
        if !self.kept_rings.keep((router, inbound), excess) {
            q.trim_excess();
        }
        while let Some((id, inbound)) = self.kept_rings.next_to_trim() {
            if let Some(r) = self.routers.get_mut(&id) {
                queue(r, inbound).trim_excess();
            }
        }
    }

    /// Closes `portal`: parcels already put still go out, then the peer
    /// learns the final length (§6.6). Unread parcels are discarded.
    pub fn close(
        &mut self,
        portal: RouterId,
        states: &mut impl LinkState,
    ) -> Result<(), PortalError> {
        self.routers
            .get(&portal)
            .filter(|r| r.attachment == Attachment::Portal)
            .ok_or(PortalError::NotAPortal)?;
        self.close_router(portal, states);
        self.run(states);
        Ok(())
    }

    /// What the application can observe of `portal`.
    pub fn status(&self, portal: RouterId) -> Result<PortalStatus, PortalError> {
        let r = self
            .routers
            .get(&portal)
            .filter(|r| r.attachment == Attachment::Portal)
            .ok_or(PortalError::NotAPortal)?;
        let peer_closed = r.peer_closed && !r.inbound.expects_more();
        Ok(PortalStatus {
            peer_closed,
            disconnected: r.disconnected,
            dead: peer_closed && r.inbound.fully_consumed(),
            readable_parcels: r.inbound.current_len() - r.inbound.base(),
        })
    }

    /// Handles one route message that arrived on node link `link`. An error
    /// means the link must be dropped ([`Routers::node_link_lost`]).
    pub fn handle_message(
        &mut self,
        link: NodeLinkId,
        message: RouteMessage<H>,
        states: &mut impl LinkState,
    ) -> Result<(), RouteError> {
        if !self.node_links.contains_key(&link) {
            return Err(RouteError::UnknownNodeLink);
        }
        let result = self.dispatch(link, message, states);
        self.run(states);
        result
    }

    // ----- primitives shared by the handlers -----

    pub(crate) fn create_router(&mut self, router: Router<H>) -> RouterId {
        let id = RouterId(self.next_router);
        self.next_router += 1;
        self.routers.insert(id, router);
        id
    }

    /// The router `id`, which the caller knows to exist.
    pub(crate) fn router_mut(&mut self, id: RouterId) -> &mut Router<H> {
        self.routers
            .get_mut(&id)
            .expect("router id held by the table")
    }

    pub(crate) fn new_local_state(&mut self, status: LinkStatus) -> u64 {
        let id = self.next_local_state;
        self.next_local_state += 1;
        self.local_states
            .insert(id, LocalLinkState { status, refs: 2 });
        id
    }

    pub(crate) fn mark_dirty(&mut self, router: RouterId, force: bool) {
        self.dirty.push_back((router, force));
    }

    /// Flushes dirty routers until nothing changes.
    pub(crate) fn run(&mut self, states: &mut impl LinkState) {
        while let Some((router, force)) = self.dirty.pop_front() {
            self.flush(router, force, states);
        }
    }

    /// Whether `portal` can move without leaving a proxy: its outward peer
    /// is a local router linked straight back to it.
    pub(crate) fn is_splittable(&self, portal: RouterId) -> bool {
        let Some(r) = self.routers.get(&portal) else {
            return false;
        };
        let Some(peer) = r.outward.primary.and_then(|l| l.local_peer()) else {
            return false;
        };
        r.outward.is_stable()
            && self.routers.get(&peer).is_some_and(|p| {
                p.outward.primary.and_then(|l| l.local_peer()) == Some(portal)
                    && p.outward.is_stable()
            })
    }

    /// Whether putting `moved` into `carrier` would queue it, through a local
    /// link, inside itself (directly or inside portals it holds): such a
    /// cycle of parcels could never be taken out again.
    fn would_cycle(&self, moved: RouterId, carrier: RouterId) -> bool {
        let Some(c) = self.routers.get(&carrier) else {
            return false;
        };
        let receivers: Vec<RouterId> = c
            .outward
            .primary
            .iter()
            .chain(c.outward.decaying.iter())
            .filter_map(Link::local_peer)
            .collect();
        let mut seen = BTreeSet::new();
        let mut todo = vec![moved];
        while let Some(r) = todo.pop() {
            if receivers.contains(&r) {
                return true;
            }
            if !seen.insert(r) {
                continue;
            }
            if let Some(router) = self.routers.get(&r) {
                for parcel in router.inbound.iter().chain(router.outbound.iter()) {
                    todo.extend(parcel.handles.iter().filter_map(|h| match h {
                        Handle::Portal(p) => Some(*p),
                        Handle::Object(_) => None,
                    }));
                }
            }
        }
        false
    }
}
