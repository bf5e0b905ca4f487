//! Route reduction (§6.8): every role a peer can put a router of this node
//! in (Z with X remote, on Y's node, or local; X), and the proxy role Y for
//! tables that proxy.

use ipcz_wire::types::{FragmentDescriptor, NodeName, SublinkId};

use super::edge::{Link, LinkType};
use super::table::Pending;
use super::{
    LinkSide, LinkState, LinkStatus, NodeLinkId, Output, RouteError, RouteMessage, RouterId,
    Routers,
};

/// Most routers of one table waiting for introductions at a time (Z role
/// bypasses toward nodes without a link); one more is disconnected as if
/// its introduction had failed.
pub const MAX_ROUTERS_AWAITING_LINKS: usize = 4096;

impl<H> Routers<H> {
    fn node_link_to(&self, node: NodeName) -> Option<NodeLinkId> {
        self.node_links
            .iter()
            .find(|(_, n)| **n == node)
            .map(|(l, _)| *l)
    }

    /// Frees a RouterLinkState we allocated (both references are ours).
    fn free_allocated(link: NodeLinkId, state: FragmentDescriptor, states: &mut impl LinkState) {
        states.release(link, state);
        states.release(link, state);
    }

    /// Releases the reference a peer handed over with a state we ignore.
    fn drop_offered(link: NodeLinkId, state: FragmentDescriptor, states: &mut impl LinkState) {
        if states.adopt(link, state) {
            states.release(link, state);
        }
    }

    pub(crate) fn on_bypass_peer(
        &mut self,
        link: NodeLinkId,
        sublink: SublinkId,
        target_node: NodeName,
        target_sublink: SublinkId,
        states: &mut impl LinkState,
    ) -> Result<(), RouteError> {
        let Some(e) = self.entry(link, sublink) else {
            return Ok(());
        };
        let Some(primary) = self.routers.get(&e.router).and_then(|r| r.outward.primary) else {
            return Ok(());
        };
        if primary != e.link {
            return Err(RouteError::BypassFromNonOutwardPeer { sublink });
        }
        self.bypass_peer(e.router, e.link, target_node, target_sublink, states)
    }

    /// Z role (§6.8.2): bypass the proxy behind `requestor` with a link to
    /// `target_node`, where X is bound to `target_sublink`.
    pub(crate) fn bypass_peer(
        &mut self,
        z: RouterId,
        requestor: Link,
        target_node: NodeName,
        target_sublink: SublinkId,
        states: &mut impl LinkState,
    ) -> Result<(), RouteError> {
        if target_node == self.local_name {
            return self.bypass_peer_with_new_local_link(z, requestor, target_sublink, states);
        }
        if !target_node.is_valid() {
            // No node has that name: as a failed introduction (§6.8.2 step 3).
            self.disconnect(z, true, states);
            return Ok(());
        }
        match self.node_link_to(target_node) {
            Some(t) => {
                self.bypass_peer_with_new_remote_link(z, requestor, t, target_sublink, states)
            }
            None => {
                let waiting = self
                    .pending
                    .iter()
                    .filter(|p| matches!(p, Pending::BypassAwaitingLink { .. }))
                    .count();
                if waiting >= MAX_ROUTERS_AWAITING_LINKS {
                    // As if the introduction had failed (§6.8.2 step 3).
                    log::debug!("too many routers wait for introductions; {z:?} disconnects");
                    self.disconnect(z, true, states);
                    return Ok(());
                }
                let asked = self
                    .pending
                    .iter()
                    .any(|p| matches!(p, Pending::BypassAwaitingLink { target_node: n, .. } if *n == target_node));
                self.pending.push(Pending::BypassAwaitingLink {
                    z,
                    requestor,
                    target_node,
                    target_sublink,
                });
                if !asked {
                    self.outputs
                        .push_back(Output::NeedNodeLink { node: target_node });
                }
                Ok(())
            }
        }
    }

    pub(crate) fn bypass_peer_with_new_remote_link(
        &mut self,
        z: RouterId,
        requestor: Link,
        t: NodeLinkId,
        target_sublink: SublinkId,
        states: &mut impl LinkState,
    ) -> Result<(), RouteError> {
        let Some(state) = states.allocate(t) else {
            self.pending.push(Pending::BypassAwaitingCapacity {
                z,
                requestor,
                link: t,
                target_sublink,
            });
            self.outputs
                .push_back(Output::NeedLinkStateCapacity { link: t });
            return Ok(());
        };
        let Some(r) = self.routers.get_mut(&z) else {
            Self::free_allocated(t, state, states);
            return Ok(());
        };
        if r.disconnected || r.outward.primary != Some(requestor) {
            Self::free_allocated(t, state, states);
            // It may have waited with nothing else holding it.
            self.mark_dirty(z, false);
            return Ok(());
        }
        let length_to = r.outbound.base();
        let requestor_sublink = requestor.remote().map_or(SublinkId(0), |(_, s)| s);
        if !r.outward.begin_primary_decay() {
            Self::free_allocated(t, state, states);
            return Err(RouteError::AlreadyDecaying {
                sublink: requestor_sublink,
            });
        }
        r.outward.length_to_decaying = Some(length_to);
        let new_sublink = states.allocate_sublinks(t, 1);
        let link = Link::Remote {
            node_link: t,
            sublink: new_sublink,
            link_type: LinkType::Central,
            side: LinkSide::A,
            state: Some(state),
        };
        if !self.register(z, link) {
            Self::free_allocated(t, state, states);
            self.disconnect(z, true, states);
            return Ok(());
        }
        let y_node = requestor
            .remote()
            .and_then(|(l, _)| self.node_links.get(&l).copied())
            .unwrap_or(NodeName::NONE);
        self.send(
            t,
            RouteMessage::AcceptBypassLink {
                current_peer_node: y_node,
                current_peer_sublink: target_sublink,
                inbound_sequence_length_from_bypassed_link: length_to,
                new_sublink,
                new_link_state: state,
            },
        );
        self.router_mut(z).outward.set_primary(link);
        self.mark_dirty(z, false);
        Ok(())
    }

    /// Z role with X on our own node (§6.8.5).
    fn bypass_peer_with_new_local_link(
        &mut self,
        z: RouterId,
        requestor: Link,
        target_sublink: SublinkId,
        states: &mut impl LinkState,
    ) -> Result<(), RouteError> {
        let Some((u, requestor_sublink)) = requestor.remote() else {
            return Ok(());
        };
        let Some(k) = self
            .entry(u, target_sublink)
            .map(|e| e.router)
            .filter(|k| *k != z)
        else {
            self.disconnect(z, true, states);
            return Ok(());
        };
        let usable = |r: Option<&super::table::Router<H>>| {
            r.is_some_and(|r| !r.disconnected && r.outward.primary.is_some())
        };
        if !usable(self.routers.get(&z)) || !usable(self.routers.get(&k)) {
            return Ok(());
        }
        let len_from_proxy = self.routers[&k].outbound.base();
        let len_to_proxy = self.routers[&z].outbound.base();
        if self.routers[&z].outward.is_decaying() || self.routers[&k].outward.is_decaying() {
            return Err(RouteError::AlreadyDecaying {
                sublink: requestor_sublink,
            });
        }
        let state = self.new_local_state(LinkStatus::default());
        let zr = self.router_mut(z);
        zr.outward.begin_primary_decay();
        zr.outward.length_to_decaying = Some(len_to_proxy);
        zr.outward.length_from_decaying = Some(len_from_proxy);
        zr.outward.set_primary(Link::Local {
            peer: k,
            side: LinkSide::A,
            state,
        });
        let kr = self.router_mut(k);
        kr.outward.begin_primary_decay();
        kr.outward.length_to_decaying = Some(len_from_proxy);
        kr.outward.length_from_decaying = Some(len_to_proxy);
        kr.outward.set_primary(Link::Local {
            peer: z,
            side: LinkSide::B,
            state,
        });
        if let Some((node_link, sublink)) = kr.outward.decaying.and_then(|l| l.remote()) {
            self.send(
                node_link,
                RouteMessage::StopProxying {
                    sublink,
                    inbound_sequence_length: len_from_proxy,
                    outbound_sequence_length: len_to_proxy,
                },
            );
        }
        self.mark_dirty(z, false);
        self.mark_dirty(k, false);
        Ok(())
    }

    /// X role (§6.8.4): Z offers, on node link `t`, a link that bypasses the
    /// proxy on node `y_node`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_accept_bypass_link(
        &mut self,
        t: NodeLinkId,
        y_node: NodeName,
        s: SublinkId,
        k: u64,
        n: SublinkId,
        f: FragmentDescriptor,
        states: &mut impl LinkState,
    ) -> Result<(), RouteError> {
        let x = self
            .node_link_to(y_node)
            .and_then(|u| Some((u, self.entry(u, s)?.router)));
        let Some((u, x)) = x else {
            // The route is gone: the reference meant for us is dropped.
            Self::drop_offered(t, f, states);
            return Ok(());
        };
        if !states.adopt(t, f) {
            return Err(RouteError::InvalidLinkState { sublink: n });
        }
        let r = &self.routers[&x];
        let Some(old) = r.outward.primary.filter(|_| !r.disconnected) else {
            states.release(t, f);
            return Ok(());
        };
        let Some((_, old_sublink)) = old.remote() else {
            states.release(t, f);
            return Err(RouteError::OutwardLinkNotRemote { sublink: s });
        };
        if t != u {
            let requester = self.node_links.get(&t).copied().unwrap_or(NodeName::NONE);
            let allowed = self
                .with_state(
                    &old,
                    states,
                    |st, side| st.can_node_request_bypass(side, requester),
                    |st, l, fr, side| st.can_node_request_bypass(l, fr, side, requester),
                )
                .unwrap_or(false);
            if !allowed {
                states.release(t, f);
                return Err(RouteError::BypassNotAuthorized { sublink: s });
            }
        }
        let r = self.router_mut(x);
        let length_to = r.outbound.base();
        if !r.outward.begin_primary_decay() {
            states.release(t, f);
            return Err(RouteError::AlreadyDecaying { sublink: s });
        }
        let link = Link::Remote {
            node_link: t,
            sublink: n,
            link_type: LinkType::Central,
            side: LinkSide::B,
            state: Some(f),
        };
        if !self.register(x, link) {
            states.release(t, f);
            self.disconnect(x, true, states);
            return Ok(());
        }
        let r = self.router_mut(x);
        r.outward.length_to_decaying = Some(length_to);
        r.outward.length_from_decaying = Some(k);
        r.outward.set_primary(link);
        if t == u {
            self.send(
                u,
                RouteMessage::StopProxyingToLocalPeer {
                    sublink: old_sublink,
                    outbound_sequence_length: length_to,
                },
            );
        } else {
            self.send(
                u,
                RouteMessage::StopProxying {
                    sublink: old_sublink,
                    inbound_sequence_length: length_to,
                    outbound_sequence_length: k,
                },
            );
            self.send(
                t,
                RouteMessage::ProxyWillStop {
                    sublink: n,
                    inbound_sequence_length: length_to,
                },
            );
        }
        self.mark_dirty(x, false);
        Ok(())
    }

    /// Y role: X's final lengths arrive (§3.4 StopProxying).
    pub(crate) fn on_stop_proxying(
        &mut self,
        link: NodeLinkId,
        sublink: SublinkId,
        inbound_length: u64,
        outbound_length: u64,
    ) -> Result<(), RouteError> {
        let Some(e) = self.entry(link, sublink) else {
            return Ok(());
        };
        let r = self.router_mut(e.router);
        let Some(inward) = r.inward.as_mut().filter(|i| i.is_decaying()) else {
            return Err(RouteError::NotAProxy { sublink });
        };
        if r.outward.is_stable() {
            return Err(RouteError::NotAProxy { sublink });
        }
        inward.length_to_decaying = Some(inbound_length);
        inward.length_from_decaying = Some(outbound_length);
        r.outward.length_to_decaying = Some(outbound_length);
        r.outward.length_from_decaying = Some(inbound_length);
        self.mark_dirty(e.router, false);
        Ok(())
    }

    /// Z role: how many parcels X sent toward Y (§6.8.2 step 9).
    pub(crate) fn on_proxy_will_stop(
        &mut self,
        link: NodeLinkId,
        sublink: SublinkId,
        inbound_length: u64,
    ) -> Result<(), RouteError> {
        let Some(e) = self.entry(link, sublink) else {
            return Ok(());
        };
        let r = self.router_mut(e.router);
        if r.outward.is_stable() {
            return if r.disconnected {
                Ok(())
            } else {
                Err(RouteError::NotDecaying { sublink })
            };
        }
        // ProxyWillStop tells how many parcels still come through a
        // bypassed remote proxy. The limits of an in-process decaying link
        // are set on both ends by this table; one end waiting for more than
        // the other sends would never finish its decay, and leak.
        if r.outward.decaying.is_some_and(|d| d.local_peer().is_some()) {
            return Err(RouteError::ProxyWillStopNotOnBypassLink { sublink });
        }
        r.outward.length_from_decaying = Some(inbound_length);
        self.mark_dirty(e.router, false);
        Ok(())
    }

    /// Z role with X on Y's node (§6.8.3).
    pub(crate) fn on_bypass_peer_with_link(
        &mut self,
        link: NodeLinkId,
        sublink: SublinkId,
        new_sublink: SublinkId,
        f: FragmentDescriptor,
        k: u64,
        states: &mut impl LinkState,
    ) -> Result<(), RouteError> {
        let Some(e) = self.entry(link, sublink) else {
            Self::drop_offered(link, f, states);
            return Ok(());
        };
        if !states.adopt(link, f) {
            return Err(RouteError::InvalidLinkState {
                sublink: new_sublink,
            });
        }
        let z = e.router;
        let r = &self.routers[&z];
        let Some(old) = r.outward.primary.filter(|_| !r.disconnected) else {
            states.release(link, f);
            return Ok(());
        };
        let Some((old_link, old_sublink)) = old.remote() else {
            states.release(link, f);
            return Err(RouteError::OutwardLinkNotRemote { sublink });
        };
        let r = self.router_mut(z);
        let length_to = r.outbound.base();
        if !r.outward.begin_primary_decay() {
            states.release(link, f);
            return Err(RouteError::AlreadyDecaying { sublink });
        }
        let new = Link::Remote {
            node_link: link,
            sublink: new_sublink,
            link_type: LinkType::Central,
            side: LinkSide::B,
            state: Some(f),
        };
        if !self.register(z, new) {
            states.release(link, f);
            self.disconnect(z, true, states);
            return Ok(());
        }
        let r = self.router_mut(z);
        r.outward.length_to_decaying = Some(length_to);
        r.outward.length_from_decaying = Some(k);
        r.outward.set_primary(new);
        self.send(
            old_link,
            RouteMessage::StopProxyingToLocalPeer {
                sublink: old_sublink,
                outbound_sequence_length: length_to,
            },
        );
        self.mark_dirty(z, false);
        Ok(())
    }

    /// Y role: Z's final length on the old link, with X on our node (§3.4).
    pub(crate) fn on_stop_proxying_to_local_peer(
        &mut self,
        link: NodeLinkId,
        sublink: SublinkId,
        length: u64,
    ) -> Result<(), RouteError> {
        let Some(e) = self.entry(link, sublink) else {
            return Ok(());
        };
        let y = e.router;
        let r = &self.routers[&y];
        // A bridge proxy (see start_bridge_bypass): the answer comes on its
        // decaying outward link, and x waits on the decaying inward one.
        let bridge = r
            .inward
            .as_ref()
            .and_then(|i| i.decaying)
            .and_then(|l| l.local_peer())
            .filter(|_| r.outward.decaying == Some(e.link));
        if let Some(x) = bridge {
            let waits = self
                .routers
                .get(&x)
                .and_then(|p| p.outward.decaying)
                .and_then(|l| l.local_peer());
            if waits != Some(y) {
                return Err(RouteError::NotAProxy { sublink });
            }
            self.router_mut(x).outward.length_from_decaying = Some(length);
            let r = self.router_mut(y);
            r.outward.length_from_decaying = Some(length);
            if let Some(i) = r.inward.as_mut() {
                i.length_to_decaying = Some(length);
            }
            self.mark_dirty(y, false);
            self.mark_dirty(x, false);
            return Ok(());
        }
        let Some(decaying) = r.outward.decaying else {
            return if r.disconnected {
                Ok(())
            } else {
                Err(RouteError::NotAProxy { sublink })
            };
        };
        let Some(x) = decaying.local_peer() else {
            return Err(RouteError::NotAProxy { sublink });
        };
        let Some(peer_decaying) = self.routers.get(&x).and_then(|p| p.outward.decaying) else {
            return Ok(());
        };
        if r.inward.is_none() || peer_decaying.local_peer() != Some(y) {
            return Err(RouteError::NotAProxy { sublink });
        }
        self.router_mut(x).outward.length_from_decaying = Some(length);
        let r = self.router_mut(y);
        r.outward.length_to_decaying = Some(length);
        if let Some(i) = r.inward.as_mut() {
            i.length_from_decaying = Some(length);
        }
        self.mark_dirty(y, false);
        self.mark_dirty(x, false);
        Ok(())
    }

    /// Y role: a proxy with stable links asks to be bypassed. `true` if a
    /// bypass started (or waits for capacity).
    pub(crate) fn maybe_start_self_bypass(
        &mut self,
        y: RouterId,
        states: &mut impl LinkState,
    ) -> bool {
        let Some(r) = self.routers.get(&y) else {
            return false;
        };
        let Some(inward) = r
            .inward
            .as_ref()
            .filter(|e| e.is_stable())
            .and_then(|e| e.primary)
        else {
            return false;
        };
        let Some(outward) = r.outward.primary else {
            return false;
        };
        if let (Some(x), Link::Remote { .. }) = (inward.local_peer(), outward) {
            return self.start_bridge_bypass(y, x, outward, states);
        }
        let Some((inward_link, inward_sublink)) = inward.remote() else {
            return false;
        };
        let inward_name = self
            .node_links
            .get(&inward_link)
            .copied()
            .unwrap_or(NodeName::NONE);
        if !self.try_lock_for_bypass(&outward, inward_name, states) {
            return false;
        }
        match outward {
            Link::Remote {
                node_link, sublink, ..
            } => {
                let r = self.router_mut(y);
                r.outward.begin_primary_decay();
                if let Some(i) = r.inward.as_mut() {
                    i.begin_primary_decay();
                }
                let target = self
                    .node_links
                    .get(&node_link)
                    .copied()
                    .unwrap_or(NodeName::NONE);
                self.send(
                    inward_link,
                    RouteMessage::BypassPeer {
                        sublink: inward_sublink,
                        bypass_target_node: target,
                        bypass_target_sublink: sublink,
                    },
                );
                true
            }
            Link::Local { peer, .. } => {
                self.start_self_bypass_to_local_peer(y, peer, inward, states)
            }
        }
    }

    /// A merged initial portal's proxy `y` (outward: the remote central
    /// link; inward: its local portal `x`) gives its outward peer a link
    /// straight to `x` (BypassPeerWithLink on the outward link), once it
    /// holds that link's lock: of two such proxies facing each other only
    /// one wins, and the other is bypassed first (§6.8.3 on its side), then
    /// tries again over the new link. `true` if a bypass started (or waits
    /// for capacity).
    pub(crate) fn start_bridge_bypass(
        &mut self,
        y: RouterId,
        x: RouterId,
        outward: Link,
        states: &mut impl LinkState,
    ) -> bool {
        let Some((nl, outward_sublink)) = outward.remote() else {
            return false;
        };
        let usable = |r: Option<&super::table::Router<H>>| {
            r.is_some_and(|r| !r.disconnected && r.outward.primary.is_some())
        };
        if !usable(self.routers.get(&x)) || self.routers[&x].outward.is_decaying() {
            return false;
        }
        if !self.try_lock_for_bypass(&outward, NodeName::NONE, states) {
            return false;
        }
        let Some(state) = states.allocate(nl) else {
            self.unlock(&outward, states);
            self.pending
                .push(Pending::SelfBypassAwaitingCapacity { y, link: nl });
            self.outputs
                .push_back(Output::NeedLinkStateCapacity { link: nl });
            return true;
        };
        let new_sublink = states.allocate_sublinks(nl, 1);
        let link = Link::Remote {
            node_link: nl,
            sublink: new_sublink,
            link_type: LinkType::Central,
            side: LinkSide::A,
            state: Some(state),
        };
        if !self.register(x, link) {
            Self::free_allocated(nl, state, states);
            self.unlock(&outward, states);
            return false;
        }
        // What x sent went through y; what y got from outward up to the
        // length StopProxyingToLocalPeer names still goes through y.
        let xr = self.router_mut(x);
        let len = xr.outbound.base();
        xr.outward.begin_primary_decay();
        xr.outward.length_to_decaying = Some(len);
        let yr = self.router_mut(y);
        yr.outward.begin_primary_decay();
        yr.outward.length_to_decaying = Some(len);
        if let Some(i) = yr.inward.as_mut() {
            i.begin_primary_decay();
            i.length_from_decaying = Some(len);
        }
        self.send(
            nl,
            RouteMessage::BypassPeerWithLink {
                sublink: outward_sublink,
                new_sublink,
                new_link_state: state,
                inbound_sequence_length: len,
            },
        );
        self.set_outward_link(x, link, states);
        true
    }

    /// Y role with X local: give Z a link straight to X (BypassPeerWithLink).
    pub(crate) fn start_self_bypass_to_local_peer(
        &mut self,
        y: RouterId,
        x: RouterId,
        inward: Link,
        states: &mut impl LinkState,
    ) -> bool {
        let Some((nl, inward_sublink)) = inward.remote() else {
            return false;
        };
        let Some(state) = states.allocate(nl) else {
            self.pending
                .push(Pending::SelfBypassAwaitingCapacity { y, link: nl });
            self.outputs
                .push_back(Output::NeedLinkStateCapacity { link: nl });
            return true;
        };
        let usable = |r: Option<&super::table::Router<H>>| {
            r.is_some_and(|r| !r.disconnected && r.outward.primary.is_some())
        };
        if !usable(self.routers.get(&y)) || !usable(self.routers.get(&x)) {
            Self::free_allocated(nl, state, states);
            return false;
        }
        let new_sublink = states.allocate_sublinks(nl, 1);
        let xr = self.router_mut(x);
        let len = xr.outbound.base();
        xr.outward.begin_primary_decay();
        xr.outward.length_to_decaying = Some(len);
        let yr = self.router_mut(y);
        yr.outward.begin_primary_decay();
        yr.outward.length_from_decaying = Some(len);
        if let Some(i) = yr.inward.as_mut() {
            i.begin_primary_decay();
            i.length_to_decaying = Some(len);
        }
        let link = Link::Remote {
            node_link: nl,
            sublink: new_sublink,
            link_type: LinkType::Central,
            side: LinkSide::A,
            state: Some(state),
        };
        if !self.register(x, link) {
            Self::free_allocated(nl, state, states);
            self.disconnect(y, true, states);
            return false;
        }
        self.send(
            nl,
            RouteMessage::BypassPeerWithLink {
                sublink: inward_sublink,
                new_sublink,
                new_link_state: state,
                inbound_sequence_length: len,
            },
        );
        self.set_outward_link(x, link, states);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Handle, InMemoryLinkState, RouterConfig};
    use super::*;

    const L: NodeLinkId = NodeLinkId(20);
    const PEER_END: NodeLinkId = NodeLinkId(21);

    /// router_fuzz found it: a portal `b` whose peer `a` is local moves
    /// (unsplit) over the host link, so `b` stays as a proxy and asks to be
    /// bypassed with a link straight to `a` (both decay their in-process
    /// link). A ProxyWillStop on `b`'s inward sublink then made `b` wait for
    /// a parcel `a` never sends on that link: `b` outlived every link and
    /// portal. It is a typed error now, and nothing is left.
    #[test]
    fn proxy_will_stop_for_a_proxy_bypassed_toward_a_local_peer_is_refused() {
        let mut states = InMemoryLinkState::default();
        states.bind(PEER_END, L);
        states.set_capacity(L, 3);
        let config = RouterConfig {
            split_local_pairs: false,
            ..RouterConfig::default()
        };
        let mut table: Routers<()> = Routers::new(NodeName { high: 1, low: 1 }, config);
        table.add_node_link(L, NodeName { high: 3, low: 3 }, &mut states);
        let slot = FragmentDescriptor::new(0, 256, 64);
        states.add_unmanaged(PEER_END, slot);
        states.set_side_stable(PEER_END, slot, LinkSide::A);
        let c = table
            .connect_initial_portal(L, SublinkId(0), LinkSide::B, slot, &mut states)
            .unwrap();
        let (a, b) = table.open_pair(&mut states);
        table
            .put(c, vec![], vec![Handle::Portal(b)], &mut states)
            .unwrap();
        let sent: Vec<_> = std::iter::from_fn(|| table.poll_output())
            .filter_map(|o| match o {
                Output::Send { message, .. } => Some(message),
                _ => None,
            })
            .collect();
        let Some(&RouteMessage::BypassPeerWithLink {
            sublink: inward, ..
        }) = sent
            .iter()
            .find(|m| matches!(m, RouteMessage::BypassPeerWithLink { .. }))
        else {
            panic!("{sent:?}")
        };
        assert!(table.routers[&b].outward.decaying.is_some());
        let lie = RouteMessage::ProxyWillStop {
            sublink: inward,
            inbound_sequence_length: 1,
        };
        assert_eq!(
            table.handle_message(L, lie, &mut states),
            Err(RouteError::ProxyWillStopNotOnBypassLink { sublink: inward })
        );
        table.node_link_lost(L, &mut states);
        for p in [a, c] {
            table.close(p, &mut states).unwrap();
        }
        assert_eq!(table.router_count(), 0, "{table:#?}");
        assert_eq!(table.local_link_state_count(), 0);
    }
}
