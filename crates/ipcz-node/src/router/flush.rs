//! The flush of §6.9, generalized to proxies as in Chrome's `Router::Flush`:
//! send what can be sent, finish decays, report status, close or drop
//! links, and try a bypass.

use ipcz_wire::types::SublinkId;

use super::edge::Link;
use super::table::{Attachment, Pending};
use super::{Handle, LinkState, Output, Parcel, RouteMessage, Routers, WireHandle};

impl<H> Routers<H> {
    pub(crate) fn flush(&mut self, rid: super::RouterId, force: bool, states: &mut impl LinkState) {
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
            if let Some(len) = closure {
                self.send_closed(link, len, states);
            }
            self.deactivate(link, states);
        }
        if let Some(link) = dead_inward {
            if let Some(len) = final_in {
                self.send_closed(link, len, states);
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

    /// Sends RouteClosed over `link`; over a local link the peer learns it directly.
    fn send_closed(&mut self, link: Link, sequence_length: u64, states: &mut impl LinkState) {
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
                // A conflict here means a remote peer lied about this route
                // earlier (a RouteClosed before a bypass): it can never
                // complete, so it breaks instead of hanging.
                if self
                    .accept_route_closed(peer, true, sequence_length, SublinkId(0))
                    .is_err()
                {
                    self.disconnect(peer, true, states);
                }
            }
        }
    }

    /// Sends queued parcels of one direction (outbound toward the outward
    /// edge, or a proxy's inbound toward its inward edge) in order.
    fn transmit(
        &mut self,
        rid: super::RouterId,
        toward_outward: bool,
        states: &mut impl LinkState,
    ) {
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
            self.transmit_parcel(link, parcel, states);
        }
    }

    /// Makes sure each portal to move over `node_link` can be split without a
    /// proxy where that is possible (allocating its RouterLinkState first),
    /// and that a table which never proxies waits for capacity instead.
    fn prepare_transfers(
        &mut self,
        rid: super::RouterId,
        moves: &[super::RouterId],
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
        link: Link,
        parcel: Parcel<Handle<H>>,
        states: &mut impl LinkState,
    ) {
        match link {
            Link::Local { peer, .. } => {
                // In-process queues share the limit; an overflow drops the parcel.
                let _ = self.accept_parcel(peer, true, parcel, SublinkId(0));
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
