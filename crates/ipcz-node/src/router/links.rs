//! The link primitives the handlers share: registering and deactivating
//! remote links, link-state locks, closing and disconnecting routers, and
//! accepting parcels into a router's queues.

use ipcz_wire::types::{FragmentDescriptor, NodeName, SublinkId};

use super::edge::{Edge, Link, LinkType};
use super::queue::PushRefused;
use super::table::{Attachment, Pending, SublinkEntry};
use super::{
    Handle, LinkSide, LinkState, LinkStatus, NodeLinkId, Output, Parcel, RouteError, RouteMessage,
    RouterId, Routers,
};

impl<H> Routers<H> {
    /// Registers a remote link for `router`; `false` if the sublink is taken
    /// or the node link unknown.
    pub(crate) fn register(&mut self, router: RouterId, link: Link) -> bool {
        let Some((node_link, sublink)) = link.remote() else {
            return false;
        };
        if !self.node_links.contains_key(&node_link)
            || self.sublinks.contains_key(&(node_link, sublink))
        {
            return false;
        }
        self.sublinks
            .insert((node_link, sublink), SublinkEntry { router, link });
        true
    }

    /// Drops a link without a message: its sublink entry (and one reference
    /// to its RouterLinkState) for a remote link, our reference to the
    /// shared in-process state for a local one.
    pub(crate) fn deactivate(&mut self, link: Link, states: &mut impl LinkState) {
        match link {
            Link::Remote {
                node_link, sublink, ..
            } => {
                if self
                    .sublinks
                    .get(&(node_link, sublink))
                    .is_some_and(|e| e.link == link)
                {
                    self.sublinks.remove(&(node_link, sublink));
                    self.release_remote_state(&link, states);
                    self.outputs.push_back(Output::SublinkDropped {
                        link: node_link,
                        sublink,
                    });
                }
            }
            Link::Local { state, .. } => {
                if let Some(s) = self.local_states.get_mut(&state) {
                    s.refs -= 1;
                    if s.refs == 0 {
                        self.local_states.remove(&state);
                    }
                }
            }
        }
    }

    pub(super) fn release_remote_state(&mut self, link: &Link, states: &mut impl LinkState) {
        if let Link::Remote {
            node_link,
            state: Some(state),
            ..
        } = link
        {
            states.release(*node_link, *state);
        }
    }

    pub(crate) fn send(&mut self, link: NodeLinkId, message: RouteMessage<H>) {
        self.outputs.push_back(Output::Send { link, message });
    }

    /// Applies `f` to the RouterLinkState of a central `link`; `None` for a
    /// link without one.
    pub(crate) fn with_state<S: LinkState, T>(
        &mut self,
        link: &Link,
        states: &mut S,
        f: impl FnOnce(&mut LinkStatus, LinkSide) -> T,
        g: impl FnOnce(&mut S, NodeLinkId, FragmentDescriptor, LinkSide) -> T,
    ) -> Option<T> {
        match *link {
            Link::Local { side, state, .. } => self
                .local_states
                .get_mut(&state)
                .map(|s| f(&mut s.status, side)),
            Link::Remote {
                node_link,
                state: Some(state),
                side,
                link_type: LinkType::Central,
                ..
            } => Some(g(states, node_link, state, side)),
            Link::Remote { .. } => None,
        }
    }

    pub(crate) fn mark_side_stable(&mut self, link: &Link, states: &mut impl LinkState) {
        self.with_state(
            link,
            states,
            |s, side| s.set_side_stable(side),
            |st, l, f, side| st.set_side_stable(l, f, side),
        );
    }

    pub(crate) fn try_lock(&mut self, link: &Link, states: &mut impl LinkState) -> bool {
        self.with_state(
            link,
            states,
            |s, side| s.try_lock(side),
            |st, l, f, side| st.try_lock(l, f, side),
        )
        .unwrap_or(false)
    }

    pub(crate) fn try_lock_for_bypass(
        &mut self,
        link: &Link,
        source: NodeName,
        states: &mut impl LinkState,
    ) -> bool {
        self.with_state(
            link,
            states,
            |s, side| s.try_lock_for_bypass(side, source),
            |st, l, f, side| st.try_lock_for_bypass(l, f, side, source),
        )
        .unwrap_or(false)
    }

    pub(crate) fn unlock(&mut self, link: &Link, states: &mut impl LinkState) {
        self.with_state(
            link,
            states,
            |s, side| s.unlock(side),
            |st, l, f, side| st.unlock(l, f, side),
        );
    }

    /// FlushOtherSideIfWaiting (§5.3).
    pub(crate) fn flush_other_side_if_waiting(&mut self, link: &Link, states: &mut impl LinkState) {
        let woke = self
            .with_state(
                link,
                states,
                |s, side| s.reset_waiting_bit(side.opposite()),
                |st, l, f, side| st.reset_waiting_bit(l, f, side.opposite()),
            )
            .unwrap_or(false);
        if !woke {
            return;
        }
        match *link {
            Link::Remote {
                node_link, sublink, ..
            } => self.send(node_link, RouteMessage::FlushRouter { sublink }),
            Link::Local { peer, .. } => self.mark_dirty(peer, true),
        }
    }

    /// Releases a parcel nobody will receive: its portals are closed so
    /// their routes learn about it; objects are dropped.
    pub(crate) fn discard_parcel(&mut self, parcel: Parcel<Handle<H>>) {
        for h in parcel.handles {
            if let Handle::Portal(p) = h {
                self.close_router_deferred(p);
            }
        }
    }

    fn close_router_deferred(&mut self, router: RouterId) {
        let Some(r) = self.routers.get_mut(&router) else {
            return;
        };
        if r.attachment == Attachment::Gone {
            return;
        }
        r.attachment = Attachment::Gone;
        let len = r.outbound.current_len();
        // A known final length (disconnection) stays.
        let _ = r.outbound.set_final_length(len);
        // Unread parcels are dropped as they become next in sequence, so the
        // sequence still advances for closure and decay accounting.
        let mut dropped = Vec::new();
        while let Some(p) = r.inbound.pop() {
            dropped.push(p);
        }
        // Closed: nothing more is read from it.
        r.inbound.trim_excess();
        for p in dropped {
            self.discard_parcel(p);
        }
        self.mark_dirty(router, false);
    }

    pub(crate) fn close_router(&mut self, router: RouterId, states: &mut impl LinkState) {
        self.close_router_deferred(router);
        self.run(states);
    }

    /// Disconnection (§6.7): marks the router, cuts the sequence that can
    /// no longer complete, and tells every link it still has.
    pub(crate) fn disconnect(
        &mut self,
        router: RouterId,
        from_outward: bool,
        states: &mut impl LinkState,
    ) {
        let Some(r) = self.routers.get_mut(&router) else {
            return;
        };
        r.disconnected = true;
        let dropped = if from_outward {
            r.peer_closed = true;
            r.inbound.force_terminate()
        } else {
            r.outbound.force_terminate()
        };
        let mut links = r.outward.release_all();
        if let Some(inward) = r.inward.as_mut() {
            links.extend(inward.release_all());
        }
        for p in dropped {
            self.discard_parcel(p);
        }
        for link in links {
            self.send_disconnected(router, link, states);
        }
        self.pending.retain(|p| p.router() != router);
        self.mark_dirty(router, false);
    }

    /// Sends RouteDisconnected over `link` (held by `holder`) and drops it.
    pub(crate) fn send_disconnected(
        &mut self,
        holder: RouterId,
        link: Link,
        states: &mut impl LinkState,
    ) {
        match link {
            Link::Remote {
                node_link, sublink, ..
            } => {
                self.send(node_link, RouteMessage::RouteDisconnected { sublink });
            }
            Link::Local { peer, side, state } => {
                let mirror = Link::Local {
                    peer: holder,
                    side: side.opposite(),
                    state,
                };
                let from_outward = self.local_end_is_outward(peer, holder);
                let removed = self.routers.get_mut(&peer).is_some_and(|p| {
                    if from_outward {
                        p.outward.remove(&mirror)
                    } else {
                        p.inward.as_mut().is_some_and(|e| e.remove(&mirror))
                    }
                });
                if removed {
                    self.deactivate(mirror, states);
                    self.disconnect(peer, from_outward, states);
                }
            }
        }
        self.deactivate(link, states);
    }

    /// Whether `peer` holds its end of a local link to `holder` on its
    /// outward edge (as portals of one pair do) rather than its inward one
    /// (as a merged initial portal's proxy does): what comes over the link
    /// arrives from that side.
    pub(crate) fn local_end_is_outward(&self, peer: RouterId, holder: RouterId) -> bool {
        let Some(p) = self.routers.get(&peer) else {
            return true;
        };
        let holds = |e: &Edge| {
            [e.primary, e.decaying]
                .into_iter()
                .flatten()
                .any(|l| l.local_peer() == Some(holder))
        };
        holds(&p.outward) || !p.inward.as_ref().is_some_and(holds)
    }

    /// Removes `router` if nothing holds it and it has no links left.
    pub(crate) fn maybe_destroy(&mut self, router: RouterId) {
        let Some(r) = self.routers.get(&router) else {
            return;
        };
        if r.attachment != Attachment::Gone || r.has_links() {
            return;
        }
        // A Z-role bypass waiting for a link or capacity would replace the
        // outward link; with none left it is moot (§6.8.2 step 5), and
        // waiting on would keep the router until the wait ends, if ever.
        self.pending.retain(|p| {
            p.router() != router
                || !matches!(
                    p,
                    Pending::BypassAwaitingLink { .. } | Pending::BypassAwaitingCapacity { .. }
                )
        });
        if self.pending.iter().any(|p| p.router() == router) {
            return;
        }
        let mut r = self.routers.remove(&router).expect("checked above");
        for p in r.inbound.drain().into_iter().chain(r.outbound.drain()) {
            self.discard_parcel(p);
        }
    }

    /// Pushes a parcel that arrived on `link` into `router`.
    pub(crate) fn accept_parcel(
        &mut self,
        router: RouterId,
        from_outward: bool,
        parcel: Parcel<Handle<H>>,
        sublink: SublinkId,
    ) -> Result<(), RouteError> {
        let Some(r) = self.routers.get_mut(&router) else {
            self.discard_parcel(parcel);
            return Ok(());
        };
        let queue = if from_outward {
            &mut r.inbound
        } else {
            &mut r.outbound
        };
        match queue.push(parcel.sequence_number, parcel) {
            Ok(()) => {
                if from_outward && r.attachment == Attachment::Gone && r.inward.is_none() {
                    // A closed terminal router takes and drops what arrives.
                    let mut dropped = Vec::new();
                    while let Some(p) = r.inbound.pop() {
                        dropped.push(p);
                    }
                    r.inbound.trim_excess();
                    for p in dropped {
                        self.discard_parcel(p);
                    }
                }
                self.mark_dirty(router, false);
                Ok(())
            }
            Err((PushRefused::Full, p)) => {
                self.discard_parcel(p);
                Err(RouteError::TooManyQueuedParcels { sublink })
            }
            Err((_, p)) => {
                self.discard_parcel(p);
                Ok(())
            }
        }
    }

    /// Sets the outward primary link (§6.8: SetOutwardLink): marks our side
    /// stable if the edge is stable, and forces a flush.
    pub(crate) fn set_outward_link(
        &mut self,
        router: RouterId,
        link: Link,
        states: &mut impl LinkState,
    ) {
        let Some(r) = self.routers.get_mut(&router) else {
            self.send_disconnected(router, link, states);
            return;
        };
        if r.disconnected {
            self.send_disconnected(router, link, states);
            return;
        }
        r.outward.set_primary(link);
        let stable = r.outward.is_stable() && r.inward.as_ref().is_none_or(Edge::is_stable);
        if link.is_central() && stable {
            self.mark_side_stable(&link, states);
        }
        self.mark_dirty(router, true);
    }
}
