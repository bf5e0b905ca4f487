//! Moving portals between nodes: serializing a router into a descriptor as
//! its parcel leaves (§6.5.2, and Chrome's proxy form), and building a
//! router from a received descriptor (§6.5.1).

use ipcz_wire::types::{NodeName, SublinkId};

use super::edge::{Edge, Link, LinkType};
use super::table::{Attachment, Router};
use super::{LinkSide, LinkState, NewRouter, NodeLinkId, RouteError, RouterId, Routers};

/// What to do once the parcel carrying a descriptor was handed to its link.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AfterTransmit {
    /// The moved router's local peer takes the new central link; the moved
    /// router forwards what it holds over the decaying sublink, then goes.
    Split {
        x: RouterId,
        y: RouterId,
        new_sublink: SublinkId,
        decaying_sublink: SublinkId,
    },
    /// The moved router stays as a proxy toward the new router.
    Proxy { y: RouterId, new_sublink: SublinkId },
}

impl<H> Routers<H> {
    /// Turns in-transit router `y` into a descriptor for node link `nl`.
    pub(crate) fn serialize_router(
        &mut self,
        y: RouterId,
        nl: NodeLinkId,
        states: &mut impl LinkState,
    ) -> (NewRouter, AfterTransmit) {
        let to_name = self.node_links.get(&nl).copied().unwrap_or(NodeName::NONE);
        let preallocated = self.preallocated.remove(&y).map(|(_, s)| s);
        let r = self.router_mut(y);
        r.attachment = Attachment::Gone;
        let primary = r.outward.primary;
        let local_peer = primary.and_then(|l| l.local_peer());
        let allowed = if local_peer.is_some() {
            self.config.split_local_pairs
        } else {
            self.config.bypass_in_descriptor
        };
        let initiate =
            allowed && primary.is_some_and(|p| self.try_lock_for_bypass(&p, to_name, states));

        if let (Some(x), true, Some(state)) = (local_peer, initiate, preallocated) {
            let splittable = self
                .routers
                .get(&x)
                .is_some_and(|p| p.outward.primary.and_then(|l| l.local_peer()) == Some(y));
            if splittable {
                return self.serialize_split(x, y, nl, state, states);
            }
        }
        if let Some(state) = preallocated {
            // Not used after all: both references are ours to drop.
            states.release(nl, state);
            states.release(nl, state);
        }

        let new_sublink = states.allocate_sublinks(nl, 1);
        let r = self.router_mut(y);
        let mut d = NewRouter {
            new_sublink,
            next_outgoing_sequence_number: r.outbound.current_len(),
            next_incoming_sequence_number: r.inbound.base(),
            ..NewRouter::default()
        };
        let mut inward = Edge::default();
        let mut unlock = None;
        if r.peer_closed {
            d.peer_closed = true;
            d.closed_peer_sequence_length =
                r.inbound.final_length().unwrap_or(r.inbound.current_len());
            inward.begin_primary_decay();
            inward.length_to_decaying = Some(d.closed_peer_sequence_length);
            inward.length_from_decaying = Some(r.outbound.base());
            if initiate {
                unlock = primary;
            }
        } else if initiate && let Some(p) = primary {
            match p {
                Link::Remote {
                    node_link, sublink, ..
                } => {
                    let peer_node = self
                        .node_links
                        .get(&node_link)
                        .copied()
                        .unwrap_or(NodeName::NONE);
                    d.proxy_peer = Some((peer_node, sublink));
                    inward.begin_primary_decay();
                    let r = self.router_mut(y);
                    r.outward.begin_primary_decay();
                }
                Link::Local { .. } => unlock = Some(p),
            }
        }
        let r = self.router_mut(y);
        r.inward = Some(inward);
        if let Some(p) = unlock {
            self.unlock(&p, states);
        }
        let link = Link::Remote {
            node_link: nl,
            sublink: new_sublink,
            link_type: LinkType::PeripheralInward,
            side: LinkSide::A,
            state: None,
        };
        self.register(y, link);
        (d, AfterTransmit::Proxy { y, new_sublink })
    }

    /// Variant A: the local peer `x` of moved router `y` gets a central link
    /// straight to the new router.
    fn serialize_split(
        &mut self,
        x: RouterId,
        y: RouterId,
        nl: NodeLinkId,
        state: ipcz_wire::types::FragmentDescriptor,
        states: &mut impl LinkState,
    ) -> (NewRouter, AfterTransmit) {
        let xr = self.router_mut(x);
        let proxy_inbound_length = xr.outbound.base();
        let x_old = xr.outward.release_primary();
        if let Some(l) = x_old {
            self.deactivate(l, states);
        }
        let new_sublink = states.allocate_sublinks(nl, 2);
        // Wrapping: a corrupt shared counter must not panic (the link is dropped).
        let decaying_sublink = SublinkId(new_sublink.0.wrapping_add(1));
        let central = Link::Remote {
            node_link: nl,
            sublink: new_sublink,
            link_type: LinkType::Central,
            side: LinkSide::A,
            state: Some(state),
        };
        if !self.register(x, central) {
            // Only a peer that took ids it was never given gets here; the
            // peer's reference travels in the descriptor, ours goes now.
            states.release(nl, state);
        }
        self.register(
            y,
            Link::Remote {
                node_link: nl,
                sublink: decaying_sublink,
                link_type: LinkType::PeripheralInward,
                side: LinkSide::A,
                state: None,
            },
        );
        let r = self.router_mut(y);
        let mut d = NewRouter {
            new_sublink,
            new_link_state: Some(state),
            proxy_already_bypassed: true,
            new_decaying_sublink: decaying_sublink,
            next_outgoing_sequence_number: r.outbound.current_len(),
            next_incoming_sequence_number: r.inbound.base(),
            decaying_incoming_sequence_length: proxy_inbound_length,
            ..NewRouter::default()
        };
        if let Some(f) = r.inbound.final_length() {
            d.peer_closed = true;
            d.closed_peer_sequence_length = f;
        }
        let mut inward = Edge::default();
        inward.begin_primary_decay();
        inward.length_to_decaying = Some(proxy_inbound_length);
        inward.length_from_decaying = Some(r.outbound.current_len());
        r.inward = Some(inward);
        (
            d,
            AfterTransmit::Split {
                x,
                y,
                new_sublink,
                decaying_sublink,
            },
        )
    }

    /// The link registered for `router` at `sublink`, if that is whose it is.
    fn link_of(&self, nl: NodeLinkId, sublink: SublinkId, router: RouterId) -> Option<Link> {
        self.sublinks
            .get(&(nl, sublink))
            .filter(|e| e.router == router)
            .map(|e| e.link)
    }

    /// After the descriptor left: hand the new links to the routers that use them.
    pub(crate) fn begin_proxying(
        &mut self,
        after: AfterTransmit,
        nl: NodeLinkId,
        states: &mut impl LinkState,
    ) {
        match after {
            AfterTransmit::Split {
                x,
                y,
                new_sublink,
                decaying_sublink,
            } => {
                let central = self.link_of(nl, new_sublink, x);
                let decaying = self.link_of(nl, decaying_sublink, y);
                let y_old = self
                    .routers
                    .get_mut(&y)
                    .and_then(|r| r.outward.release_primary());
                if let Some(l) = y_old {
                    self.deactivate(l, states);
                }
                if let Some(d) = decaying
                    && let Some(r) = self.routers.get_mut(&y)
                    && let Some(e) = r.inward.as_mut()
                {
                    e.set_primary(d);
                }
                match central {
                    Some(c) => self.set_outward_link(x, c, states),
                    None => self.disconnect(x, true, states),
                }
                self.mark_dirty(y, true);
            }
            AfterTransmit::Proxy { y, new_sublink } => {
                let Some(link) = self.link_of(nl, new_sublink, y) else {
                    self.mark_dirty(y, true);
                    return;
                };
                let r = self.router_mut(y);
                if r.disconnected {
                    self.send_disconnected(y, link, states);
                    self.mark_dirty(y, true);
                    return;
                }
                let e = r.inward.get_or_insert_with(Edge::default);
                e.set_primary(link);
                let stable = e.is_stable() && r.outward.is_stable();
                if stable && let Some(p) = r.outward.primary {
                    self.mark_side_stable(&p, states);
                }
                self.mark_dirty(y, true);
            }
        }
    }

    /// Builds the router for a descriptor that arrived in a parcel on
    /// sublink `carrier` of node link `nl` (§6.5.1). The new router is in
    /// transit until the application takes the parcel.
    pub(crate) fn deserialize_router(
        &mut self,
        nl: NodeLinkId,
        carrier: SublinkId,
        d: &NewRouter,
        states: &mut impl LinkState,
    ) -> Result<RouterId, RouteError> {
        let conflict = d.new_sublink == carrier
            || (d.proxy_already_bypassed
                && (d.new_sublink == d.new_decaying_sublink || d.new_decaying_sublink == carrier));
        if conflict {
            return Err(RouteError::DescriptorSublinkConflict { sublink: carrier });
        }
        let mut router = Router::new(
            d.next_incoming_sequence_number,
            d.next_outgoing_sequence_number,
            Attachment::InTransit,
        );
        if d.peer_closed {
            router
                .inbound
                .set_final_length(d.closed_peer_sequence_length)
                .map_err(|()| RouteError::DescriptorPeerClosedLength {
                    length: d.closed_peer_sequence_length,
                })?;
            router.peer_closed = true;
        }
        if d.proxy_already_bypassed {
            let Some(state) = d.new_link_state else {
                return Err(RouteError::InvalidLinkState {
                    sublink: d.new_sublink,
                });
            };
            let decaying = Link::Remote {
                node_link: nl,
                sublink: d.new_decaying_sublink,
                link_type: LinkType::PeripheralOutward,
                side: LinkSide::B,
                state: None,
            };
            let central = Link::Remote {
                node_link: nl,
                sublink: d.new_sublink,
                link_type: LinkType::Central,
                side: LinkSide::B,
                state: Some(state),
            };
            for sublink in [d.new_decaying_sublink, d.new_sublink] {
                if self.sublinks.contains_key(&(nl, sublink)) {
                    return Err(RouteError::SublinkInUse { sublink });
                }
            }
            if !states.adopt(nl, state) {
                return Err(RouteError::InvalidLinkState {
                    sublink: d.new_sublink,
                });
            }
            router.outward.set_primary(decaying);
            router.outward.begin_primary_decay();
            router.outward.length_to_decaying = Some(d.next_outgoing_sequence_number);
            router.outward.length_from_decaying =
                Some(if d.decaying_incoming_sequence_length > 0 {
                    d.decaying_incoming_sequence_length
                } else {
                    d.next_incoming_sequence_number
                });
            router.outward.set_primary(central);
            let id = self.create_router(router);
            self.register(id, decaying);
            self.register(id, central);
            self.mark_dirty(id, true);
            return Ok(id);
        }
        if d.new_link_state.is_some() {
            return Err(RouteError::InvalidLinkState {
                sublink: d.new_sublink,
            });
        }
        let link = Link::Remote {
            node_link: nl,
            sublink: d.new_sublink,
            link_type: LinkType::PeripheralOutward,
            side: LinkSide::B,
            state: None,
        };
        let id = self.create_router(router);
        if self.register(id, link) {
            self.router_mut(id).outward.set_primary(link);
            if let Some((node, sublink)) = d.proxy_peer
                && node.is_valid()
                && let Err(e) = self.bypass_peer(id, link, node, sublink, states)
            {
                // A fresh router cannot fail these checks; Chrome ignores the result too.
                log::debug!("bypass requested by a descriptor failed: {e}");
            }
        } else if !d.peer_closed {
            self.disconnect(id, true, states);
        }
        self.mark_dirty(id, true);
        Ok(id)
    }
}
