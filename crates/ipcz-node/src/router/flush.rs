//! The flush of §6.9, generalized to proxies as in Chrome's `Router::Flush`:
//! send what can be sent, finish decays, report status, close or drop
//! links, and try a bypass.

use ipcz_wire::types::SublinkId;

use super::edge::Link;
use super::table::{Attachment, Pending};
use super::{Handle, LinkState, Output, Parcel, RouteMessage, RouterId, Routers, WireHandle};

impl<H> Routers<H> {
    pub(crate) fn flush(&mut self, rid: RouterId, force: bool, states: &mut impl LinkState) {
        if !self.routers.contains_key(&rid) {
            return;
        }
        self.transmit(rid, true, states);
        self.transmit(rid, false, states);
        let Some(r) = self.routers.get_mut(&rid) else {
            return;
        };
        let outward_decayed = r
            .outward
            .maybe_finish_decay(r.outbound.base(), r.inbound.current_len());
        let inward_decayed = match r.inward.as_mut() {
            Some(e) => e.maybe_finish_decay(r.inbound.base(), r.outbound.current_len()),
            None => None,
        };
        if r.attachment == Attachment::Portal {
            if r.inbound.current_len() > r.readable_reported {
                r.readable_reported = r.inbound.current_len();
                self.outputs.push_back(Output::Readable { portal: rid });
            }
            if r.peer_closed && !r.peer_closed_reported && !r.inbound.expects_more() {
                r.peer_closed_reported = true;
                self.outputs.push_back(Output::PeerClosed {
                    portal: rid,
                    disconnected: r.disconnected,
                });
            }
        }
        let primary = r.outward.primary;
        let on_central = primary.is_some_and(|l| l.is_central());
        let inward_stable = r.inward.as_ref().is_none_or(|e| e.decaying.is_none());
        let outward_stable = primary.is_some() && r.outward.decaying.is_none();
        let mark_stable = on_central
            && (outward_decayed.is_some() || inward_decayed.is_some())
            && inward_stable
            && outward_stable;
        let closure_ready = on_central && r.outbound.fully_consumed();
        let inbound_done = !r.inbound.expects_more();
        let inbound_consumed = r.inbound.fully_consumed();
        let final_in = r.inbound.final_length();
        let final_out = r.outbound.final_length();

        for link in [outward_decayed, inward_decayed].into_iter().flatten() {
            self.deactivate(link, states);
        }
        if mark_stable && let Some(p) = primary {
            self.mark_side_stable(&p, states);
        }
        let mut closure = None;
        let mut dead_outward = None;
        if let Some(p) = primary {
            if closure_ready && self.try_lock(&p, states) {
                closure = final_out;
                dead_outward = Some(p);
            } else if inbound_done {
                dead_outward = Some(p);
            }
        }
        let mut dead_inward = None;
        {
            let r = self.router_mut(rid);
            if dead_outward.is_some() {
                r.outward.release_primary();
            }
            if inbound_consumed && let Some(e) = r.inward.as_mut() {
                dead_inward = e.release_primary();
            }
        }
        if let Some(link) = dead_outward {
            match closure {
                Some(len) => self.send_closed(rid, link, len, states),
                None => self.release_local_peer(rid, link, states),
            }
            self.deactivate(link, states);
        }
        if let Some(link) = dead_inward {
            if let Some(len) = final_in {
                self.send_closed(rid, link, len, states);
            }
            self.deactivate(link, states);
        }
        if dead_outward.is_some() || !on_central || !(mark_stable || force) {
            self.maybe_destroy(rid);
            return;
        }
        let has_inward_link = self
            .routers
            .get(&rid)
            .and_then(|r| r.inward.as_ref())
            .is_some_and(|e| e.primary.is_some());
        if has_inward_link && self.maybe_start_self_bypass(rid, states) {
            self.maybe_destroy(rid);
            return;
        }
        if let Some(p) = self.routers.get(&rid).and_then(|r| r.outward.primary) {
            self.flush_other_side_if_waiting(&p, states);
        }
        self.maybe_destroy(rid);
    }

    /// `holder` drops its outward `link` because nothing more can arrive on
    /// it. A remote peer dropped its end when it sent the closure, but a
    /// local peer still holding its end was not closed through this link
    /// (the closure came over another one, e.g. a decaying link from a
    /// proxy that lied): it must let go too, or it waits on a router that
    /// left. If it has not sent everything it will ever send, those parcels
    /// can no longer arrive: it is disconnected (§6.7).
    fn release_local_peer(&mut self, holder: RouterId, link: Link, states: &mut impl LinkState) {
        let Link::Local { peer, side, state } = link else {
            return;
        };
        let mirror = Link::Local {
            peer: holder,
            side: side.opposite(),
            state,
        };
        let from_outward = self.local_end_is_outward(peer, holder);
        let Some(p) = self.routers.get_mut(&peer) else {
            return;
        };
        let (removed, done) = if from_outward {
            (p.outward.remove(&mirror), p.outbound.fully_consumed())
        } else {
            let removed = p.inward.as_mut().is_some_and(|e| e.remove(&mirror));
            (removed, p.inbound.fully_consumed())
        };
        if !removed {
            return;
        }
        self.deactivate(mirror, states);
        if done {
            self.mark_dirty(peer, false);
        } else {
            self.disconnect(peer, from_outward, states);
        }
    }

    /// Sends RouteClosed over `link`; over a local link the peer learns it directly.
    fn send_closed(
        &mut self,
        holder: RouterId,
        link: Link,
        sequence_length: u64,
        states: &mut impl LinkState,
    ) {
        match link {
            Link::Remote {
                node_link, sublink, ..
            } => self.send(
                node_link,
                RouteMessage::RouteClosed {
                    sublink,
                    sequence_length,
                },
            ),
            Link::Local { peer, .. } => {
                let from_outward = self.local_end_is_outward(peer, holder);
                // A conflict here means a remote peer lied about this route
                // earlier (a RouteClosed before a bypass): it can never
                // complete, so it breaks instead of hanging.
                if self
                    .accept_route_closed(peer, from_outward, sequence_length, SublinkId(0))
                    .is_err()
                {
                    self.disconnect(peer, from_outward, states);
                }
            }
        }
    }

    /// Sends queued parcels of one direction (outbound toward the outward
    /// edge, or a proxy's inbound toward its inward edge) in order.
    fn transmit(&mut self, rid: RouterId, toward_outward: bool, states: &mut impl LinkState) {
        loop {
            let Some(r) = self.routers.get_mut(&rid) else {
                return;
            };
            let (queue, edge) = if toward_outward {
                (&mut r.outbound, &r.outward)
            } else {
                match r.inward.as_ref() {
                    Some(e) => (&mut r.inbound, e),
                    None => return,
                }
            };
            let Some(head) = queue.peek() else {
                return;
            };
            let Some(link) = edge.link_for(queue.base()) else {
                return;
            };
            let moves: Vec<_> = head
                .handles
                .iter()
                .filter_map(|h| match h {
                    Handle::Portal(p) => Some(*p),
                    Handle::Object(_) => None,
                })
                .collect();
            if let Link::Remote { node_link, .. } = link
                && !self.prepare_transfers(rid, &moves, node_link, states)
            {
                return;
            }
            let r = self.router_mut(rid);
            let queue = if toward_outward {
                &mut r.outbound
            } else {
                &mut r.inbound
            };
            let parcel = queue.pop().expect("peeked above");
            self.keep_or_trim_ring(rid, !toward_outward);
            self.transmit_parcel(rid, link, parcel, states);
        }
    }

    /// Makes sure each portal to move over `node_link` can be split without a
    /// proxy where that is possible (allocating its RouterLinkState first),
    /// and that a table which never proxies waits for capacity instead.
    fn prepare_transfers(
        &mut self,
        rid: RouterId,
        moves: &[RouterId],
        node_link: super::NodeLinkId,
        states: &mut impl LinkState,
    ) -> bool {
        for &p in moves {
            if self.preallocated.contains_key(&p)
                || !self.config.split_local_pairs
                || !self.is_splittable(p)
            {
                continue;
            }
            match states.allocate(node_link) {
                Some(state) => {
                    self.preallocated.insert(p, (node_link, state));
                }
                None if self.config.proxy_policy == super::ProxyPolicy::Never => {
                    let pending = Pending::TransmitAwaitingCapacity {
                        router: rid,
                        link: node_link,
                    };
                    if !self.pending.contains(&pending) {
                        self.pending.push(pending);
                        self.outputs
                            .push_back(Output::NeedLinkStateCapacity { link: node_link });
                    }
                    return false;
                }
                None => {}
            }
        }
        true
    }

    fn transmit_parcel(
        &mut self,
        holder: RouterId,
        link: Link,
        parcel: Parcel<Handle<H>>,
        states: &mut impl LinkState,
    ) {
        match link {
            Link::Local { peer, .. } => {
                // In-process queues share the limit; an overflow drops the parcel.
                let from_outward = self.local_end_is_outward(peer, holder);
                let _ = self.accept_parcel(peer, from_outward, parcel, SublinkId(0));
            }
            Link::Remote {
                node_link, sublink, ..
            } => {
                let mut afters = Vec::new();
                let mut handles = Vec::with_capacity(parcel.handles.len());
                for h in parcel.handles {
                    handles.push(match h {
                        Handle::Object(o) => WireHandle::Object(o),
                        Handle::Portal(p) => {
                            let (descriptor, after) = self.serialize_router(p, node_link, states);
                            afters.push(after);
                            WireHandle::Router(descriptor)
                        }
                    });
                }
                self.send(
                    node_link,
                    RouteMessage::AcceptParcel {
                        sublink,
                        parcel: Parcel::new(parcel.sequence_number, parcel.data, handles),
                    },
                );
                for after in afters {
                    self.begin_proxying(after, node_link, states);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ipcz_wire::types::{FragmentDescriptor, NodeName};

    use super::super::{InMemoryLinkState, LinkSide, NewRouter, NodeLinkId, RouterConfig};
    use super::*;

    const ME: NodeName = NodeName { high: 1, low: 1 };
    const HOST: NodeName = NodeName { high: 2, low: 2 };
    const L: NodeLinkId = NodeLinkId(10);
    const HOST_END: NodeLinkId = NodeLinkId(11);

    struct Setup {
        table: Routers<()>,
        states: InMemoryLinkState,
        /// Portal on sublink 1: `z`'s peer, bypassed locally.
        k: RouterId,
        /// Portal on sublink 2: the parcel carrying `z` waits in it.
        carrier: RouterId,
        z: RouterId,
    }

    /// Two initial portals toward the host; the host then moves back to us
    /// (on sublink 2) the pipe end whose peer is `k`, after one parcel went
    /// through its proxy, naming our own node (§6.8.5). The new router `z`
    /// and `k` are linked in-process; `k`'s old sublink 1 decays.
    fn local_bypass() -> Setup {
        let mut states = InMemoryLinkState::default();
        states.bind(HOST_END, L);
        let mut table = Routers::new(
            ME,
            RouterConfig {
                split_local_pairs: false,
                ..RouterConfig::default()
            },
        );
        table.add_node_link(L, HOST, &mut states);
        let mut portal = |s: u64, table: &mut Routers<()>| {
            let slot = FragmentDescriptor::new(0, 256 + 64 * s as u32, 64);
            states.add_unmanaged(HOST_END, slot);
            table
                .connect_initial_portal(L, SublinkId(s), LinkSide::B, slot, &mut states)
                .unwrap()
        };
        let k = portal(1, &mut table);
        let carrier = portal(2, &mut table);
        let moved = NewRouter {
            new_sublink: SublinkId(3),
            next_outgoing_sequence_number: 1,
            proxy_peer: Some((ME, SublinkId(1))),
            ..NewRouter::default()
        };
        let m = RouteMessage::AcceptParcel {
            sublink: SublinkId(2),
            parcel: Parcel::new(0, vec![], vec![WireHandle::Router(moved)]),
        };
        table.handle_message(L, m, &mut states).unwrap();
        let sent: Vec<_> = std::iter::from_fn(|| table.poll_output())
            .filter_map(|o| match o {
                Output::Send { message, .. } => Some(message),
                _ => None,
            })
            .collect();
        assert_eq!(
            sent,
            [RouteMessage::StopProxying {
                sublink: SublinkId(1),
                inbound_sequence_length: 0,
                outbound_sequence_length: 1
            }]
        );
        let z = RouterId(table.routers.keys().map(|r| r.0).max().unwrap());
        assert_eq!(
            table.routers[&z]
                .outward
                .primary
                .and_then(|l| l.local_peer()),
            Some(k)
        );
        Setup {
            table,
            states,
            k,
            carrier,
            z,
        }
    }

    fn take_z(s: &mut Setup) {
        let parcel = s.table.get(s.carrier, &mut s.states).unwrap().unwrap();
        assert!(matches!(parcel.handles[..], [Handle::Portal(p)] if p == s.z));
    }

    fn teardown(mut s: Setup, portals: &[RouterId]) {
        s.table.node_link_lost(L, &mut s.states);
        for p in portals {
            s.table.close(*p, &mut s.states).unwrap();
        }
        assert_eq!(s.table.router_count(), 0, "{:#?}", s.table);
        assert_eq!(s.table.sublink_count(), 0);
        assert_eq!(s.table.local_link_state_count(), 0);
        assert!(!s.table.has_pending());
    }

    /// router_fuzz found it: after the local bypass, the host's proxy claims
    /// (over `k`'s decaying sublink) that the route closed after 0 parcels.
    /// `k` is done and drops its in-process link; `z`, which never closed,
    /// was left holding its end, waiting forever, and leaked.
    #[test]
    fn local_bypass_then_route_closed_on_the_decaying_link_disconnects_z() {
        let mut s = local_bypass();
        let closed = RouteMessage::RouteClosed {
            sublink: SublinkId(1),
            sequence_length: 0,
        };
        s.table.handle_message(L, closed, &mut s.states).unwrap();
        assert!(s.table.status(s.k).unwrap().peer_closed);
        take_z(&mut s);
        let status = s.table.status(s.z).unwrap();
        assert!(status.disconnected && status.peer_closed, "{status:?}");
        assert!(!s.table.routers[&s.z].has_links());
        let (k, z, carrier) = (s.k, s.z, s.carrier);
        teardown(s, &[k, z, carrier]);
    }

    /// The same claim, but `z` was closed first and waits to lock the
    /// in-process link (`k`'s side is not stable while sublink 1 decays,
    /// and that decay can no longer end). `z` has sent everything, so when
    /// `k` drops the link `z` lets go without being disconnected, and
    /// nothing is sent to the host for it.
    #[test]
    fn closed_z_waiting_for_the_lock_lets_go_when_k_is_done() {
        let mut s = local_bypass();
        take_z(&mut s);
        s.table.close(s.z, &mut s.states).unwrap();
        assert!(s.table.routers[&s.z].has_links(), "waits for k's side");
        while s.table.poll_output().is_some() {}
        let closed = RouteMessage::RouteClosed {
            sublink: SublinkId(1),
            sequence_length: 0,
        };
        s.table.handle_message(L, closed, &mut s.states).unwrap();
        assert!(!s.table.routers.contains_key(&s.z), "{:#?}", s.table);
        let outputs: Vec<_> = std::iter::from_fn(|| s.table.poll_output()).collect();
        assert!(
            outputs.iter().all(|o| !matches!(o, Output::Send { .. })),
            "{outputs:?}"
        );
        assert!(s.table.status(s.k).unwrap().dead);
        let (k, carrier) = (s.k, s.carrier);
        teardown(s, &[k, carrier]);
    }
}
