//! Receiving route messages (§3.4, §6.4, §6.6, §6.7, FlushRouter): look up
//! the addressed router and hand the message to the role that handles it.

use ipcz_wire::types::SublinkId;

use super::table::SublinkEntry;
use super::{
    Handle, LinkState, NodeLinkId, Parcel, RouteError, RouteMessage, RouterId, Routers, WireHandle,
};

impl<H> Routers<H> {
    pub(crate) fn entry(&self, link: NodeLinkId, sublink: SublinkId) -> Option<SublinkEntry> {
        self.sublinks.get(&(link, sublink)).copied()
    }

    pub(crate) fn dispatch(
        &mut self,
        link: NodeLinkId,
        message: RouteMessage<H>,
        states: &mut impl LinkState,
    ) -> Result<(), RouteError> {
        match message {
            RouteMessage::AcceptParcel { sublink, parcel } => {
                self.on_accept_parcel(link, sublink, parcel, states)
            }
            RouteMessage::RouteClosed {
                sublink,
                sequence_length,
            } => match self.entry(link, sublink) {
                Some(e) => self.accept_route_closed(
                    e.router,
                    e.link.is_outward(),
                    sequence_length,
                    sublink,
                ),
                None => Ok(()),
            },
            RouteMessage::RouteDisconnected { sublink } => {
                if let Some(e) = self.entry(link, sublink) {
                    self.disconnect(e.router, e.link.is_outward(), states);
                }
                Ok(())
            }
            RouteMessage::BypassPeer {
                sublink,
                bypass_target_node,
                bypass_target_sublink,
            } => self.on_bypass_peer(
                link,
                sublink,
                bypass_target_node,
                bypass_target_sublink,
                states,
            ),
            RouteMessage::AcceptBypassLink {
                current_peer_node,
                current_peer_sublink,
                inbound_sequence_length_from_bypassed_link,
                new_sublink,
                new_link_state,
            } => self.on_accept_bypass_link(
                link,
                current_peer_node,
                current_peer_sublink,
                inbound_sequence_length_from_bypassed_link,
                new_sublink,
                new_link_state,
                states,
            ),
            RouteMessage::StopProxying {
                sublink,
                inbound_sequence_length,
                outbound_sequence_length,
            } => self.on_stop_proxying(
                link,
                sublink,
                inbound_sequence_length,
                outbound_sequence_length,
            ),
            RouteMessage::ProxyWillStop {
                sublink,
                inbound_sequence_length,
            } => self.on_proxy_will_stop(link, sublink, inbound_sequence_length),
            RouteMessage::BypassPeerWithLink {
                sublink,
                new_sublink,
                new_link_state,
                inbound_sequence_length,
            } => self.on_bypass_peer_with_link(
                link,
                sublink,
                new_sublink,
                new_link_state,
                inbound_sequence_length,
                states,
            ),
            RouteMessage::StopProxyingToLocalPeer {
                sublink,
                outbound_sequence_length,
            } => self.on_stop_proxying_to_local_peer(link, sublink, outbound_sequence_length),
            RouteMessage::FlushRouter { sublink } => {
                if let Some(e) = self.entry(link, sublink) {
                    self.mark_dirty(e.router, true);
                }
                Ok(())
            }
        }
    }

    /// §6.4: new routers are built before the sublink is looked up, so their
    /// sublinks exist even if the parcel is then dropped (and closed).
    fn on_accept_parcel(
        &mut self,
        link: NodeLinkId,
        sublink: SublinkId,
        parcel: Parcel<WireHandle<H>>,
        states: &mut impl LinkState,
    ) -> Result<(), RouteError> {
        let mut handles = Vec::with_capacity(parcel.handles.len());
        let mut failure = None;
        let mut parcel = parcel;
        for h in std::mem::take(&mut parcel.handles) {
            match h {
                WireHandle::Object(o) => handles.push(Handle::Object(o)),
                WireHandle::Router(d) if failure.is_none() => {
                    match self.deserialize_router(link, sublink, &d, states) {
                        Ok(r) => handles.push(Handle::Portal(r)),
                        Err(e) => failure = Some(e),
                    }
                }
                WireHandle::Router(_) => {}
            }
        }
        let parcel = parcel.with_handles(handles);
        if let Some(e) = failure {
            self.discard_parcel(parcel);
            return Err(e);
        }
        let target = self.entry(link, sublink);
        if let Some(e) = target
            && parcel
                .handles
                .iter()
                .any(|h| matches!(h, Handle::Portal(p) if *p == e.router))
        {
            // A portal inside its own queue could never be taken out.
            self.discard_parcel(parcel);
            return Err(RouteError::ParcelForItsOwnPortal { sublink });
        }
        match target {
            Some(e) => self.accept_parcel(e.router, e.link.is_outward(), parcel, sublink),
            None => {
                self.discard_parcel(parcel);
                Ok(())
            }
        }
    }

    /// §6.6: the side beyond `from_outward`'s link closed after `len` parcels.
    pub(crate) fn accept_route_closed(
        &mut self,
        router: RouterId,
        from_outward: bool,
        len: u64,
        sublink: SublinkId,
    ) -> Result<(), RouteError> {
        let Some(r) = self.routers.get_mut(&router) else {
            return Ok(());
        };
        let queue = if from_outward {
            &mut r.inbound
        } else {
            &mut r.outbound
        };
        if queue.set_final_length(len).is_err() && queue.final_length().is_none_or(|f| f > len) {
            return Err(RouteError::FinalLengthConflict {
                sublink,
                sequence_length: len,
            });
        }
        if from_outward {
            r.peer_closed = true;
        }
        self.mark_dirty(router, false);
        Ok(())
    }
}
