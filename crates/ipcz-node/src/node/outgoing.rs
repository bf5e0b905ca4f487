//! Route messages and memory messages out: owned router values to
//! Chrome's exact message layout (§2.8, §6.4 sending table, §6.5.2), framed
//! for the link's transport, with the fds of the boxed driver objects.

use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::DriverObject;
use ipcz_wire::frame::FrameHeader;
use ipcz_wire::message::Message;
use ipcz_wire::messages::{
    AcceptBypassLink, AcceptParcel, AddBlockBuffer, Body, BypassPeer, BypassPeerWithLink,
    FlushRouter, ProvideMemory, ProxyWillStop, RouteClosed, RouteDisconnected, StopProxying,
    StopProxyingToLocalPeer,
};
use ipcz_wire::router_descriptor::RouterDescriptor;
use ipcz_wire::types::{
    BufferId, DriverObjectArray, FragmentDescriptor, HandleType, NodeName, SequenceNumber,
    SublinkId,
};
use mojo_wire_kit::SharedMemory;

use super::{DriverBox, Node, NodeError, ParcelDataPlacement, Transmit};
use crate::router::{NewRouter, NodeLinkId, RouteMessage, WireHandle};

/// The descriptor sent for a new router (the router table chose the form).
pub(crate) fn descriptor_of(r: &NewRouter) -> RouterDescriptor {
    let (proxy_peer_node_name, proxy_peer_sublink) =
        r.proxy_peer.unwrap_or((NodeName::NONE, SublinkId(0)));
    RouterDescriptor {
        closed_peer_sequence_length: SequenceNumber(r.closed_peer_sequence_length),
        new_sublink: r.new_sublink,
        new_link_state_fragment: r.new_link_state.unwrap_or(FragmentDescriptor::NULL),
        new_decaying_sublink: r.new_decaying_sublink,
        next_outgoing_sequence_number: SequenceNumber(r.next_outgoing_sequence_number),
        next_incoming_sequence_number: SequenceNumber(r.next_incoming_sequence_number),
        decaying_incoming_sequence_length: SequenceNumber(r.decaying_incoming_sequence_length),
        peer_closed: r.peer_closed,
        proxy_already_bypassed: r.proxy_already_bypassed,
        proxy_peer_node_name,
        proxy_peer_sublink,
    }
}

impl<M: SharedMemory> Node<M> {
    /// Encodes `message` for `link` and queues it; a link that is gone
    /// takes nothing (the message's handles are dropped with it).
    pub(super) fn send_route_message(
        &mut self,
        link: NodeLinkId,
        message: RouteMessage<DriverBox>,
    ) {
        if self.links.get(link).is_none() {
            return;
        }
        let (sublink, parcel) = match message {
            RouteMessage::AcceptParcel { sublink, parcel } => (sublink, parcel),
            other => {
                if let Some(body) = plain_body(other) {
                    self.queue_message(link, body, &[], Vec::new());
                }
                return;
            }
        };
        let mut boxes = Vec::new();
        let mut handle_types = Vec::with_capacity(parcel.handles.len());
        let mut new_routers = Vec::new();
        for h in parcel.handles {
            match h {
                WireHandle::Router(r) => {
                    handle_types.push(HandleType::PORTAL);
                    new_routers.push(descriptor_of(&r));
                }
                WireHandle::Object(b) => {
                    handle_types.push(HandleType::BOXED_DRIVER_OBJECT);
                    boxes.push(b);
                }
            }
        }
        let mut fragment = FragmentDescriptor::NULL;
        if self.config.parcel_data == ParcelDataPlacement::SharedMemory
            && !parcel.data.is_empty()
            && let Some(l) = self.links.get_mut(link)
        {
            match l.memory_mut().allocate_parcel_data(&parcel.data) {
                Ok(Some(f)) => fragment = f,
                Ok(None) => {}
                Err(e) => {
                    self.drop_link(link, NodeError::Memory(e));
                    return;
                }
            }
        }
        let objects: Vec<DriverObject> = boxes.iter().map(|b| *b.object()).collect();
        let fds: Vec<OwnedFd> = boxes.into_iter().flat_map(|b| b.into_parts().1).collect();
        let inline = if fragment.is_null() {
            &parcel.data[..]
        } else {
            &[][..]
        };
        let mut p = AcceptParcel::inline(
            sublink.0,
            parcel.sequence_number,
            inline,
            handle_types,
            new_routers,
        );
        p.parcel_fragment = fragment;
        p.driver_objects =
            DriverObjectArray::new(0, u32::try_from(objects.len()).unwrap_or(u32::MAX));
        self.queue_message(link, Body::AcceptParcel(p), &objects, fds);
        // Copied into the frame or a fragment: the buffer is free again.
        self.spare_buffers.give(parcel.data);
    }

    pub(super) fn send_add_block_buffer(
        &mut self,
        link: NodeLinkId,
        id: BufferId,
        block_size: u32,
        buffer: DriverBox,
    ) {
        let (object, fds) = buffer.into_parts();
        let body = Body::AddBlockBuffer(AddBlockBuffer {
            id,
            block_size,
            buffer: ipcz_wire::types::DriverObjectIndex(0),
        });
        self.queue_message(link, body, &[object], fds);
    }

    pub(super) fn send_provide_memory(&mut self, link: NodeLinkId, size: u32, buffer: DriverBox) {
        let (object, fds) = buffer.into_parts();
        let body = Body::ProvideMemory(ProvideMemory {
            size,
            buffer: ipcz_wire::types::DriverObjectIndex(0),
        });
        self.queue_message(link, body, &[object], fds);
    }

    /// Takes `link`'s next outgoing NodeLink sequence number for a frame the
    /// caller encodes itself (a handshake-level message the node does not
    /// speak, such as a referral, §4.3); queue it with
    /// [`Self::queue_encoded`].
    pub fn take_sequence_number(&mut self, link: NodeLinkId) -> Result<u64, NodeError> {
        self.links
            .get_mut(link)
            .map(|l| l.take_message_sequence())
            .ok_or(NodeError::UnknownLink(link))
    }

    /// Queues a whole frame the caller encoded for `link` (with a sequence
    /// number from [`Self::take_sequence_number`]) behind the node's own.
    /// Receivers of this crate do not require frames in sequence order.
    pub fn queue_encoded(
        &mut self,
        link: NodeLinkId,
        bytes: Vec<u8>,
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        if self.links.get(link).is_none() {
            return Err(NodeError::UnknownLink(link));
        }
        self.transmits.push_back(Transmit { link, bytes, fds });
        Ok(())
    }

    /// Frames `body` with `objects` (fds in order) and queues it for `link`.
    pub(crate) fn queue_message(
        &mut self,
        link: NodeLinkId,
        body: Body<'_>,
        objects: &[DriverObject],
        fds: Vec<OwnedFd>,
    ) {
        let Some(l) = self.links.get_mut(link) else {
            return;
        };
        let mut message = Message::new(l.take_message_sequence(), body);
        for o in objects {
            message.push_object(*o);
        }
        let num_fds = u16::try_from(fds.len()).unwrap_or(u16::MAX);
        let mut bytes = self.buffer();
        let header = FrameHeader::new(num_fds, self.timestamp_us);
        match header.encode_frame(&[], &message, &mut bytes) {
            Ok(()) => self.transmits.push_back(Transmit { link, bytes, fds }),
            Err(e) => self.drop_link(link, NodeError::Encode(e)),
        }
    }
}

/// Every route message but AcceptParcel (`None`), which carries data and handles.
fn plain_body(message: RouteMessage<DriverBox>) -> Option<Body<'static>> {
    Some(match message {
        RouteMessage::AcceptParcel { .. } => return None,
        RouteMessage::RouteClosed {
            sublink,
            sequence_length,
        } => Body::RouteClosed(RouteClosed {
            sublink,
            sequence_length: SequenceNumber(sequence_length),
        }),
        RouteMessage::RouteDisconnected { sublink } => {
            Body::RouteDisconnected(RouteDisconnected { sublink })
        }
        RouteMessage::BypassPeer {
            sublink,
            bypass_target_node,
            bypass_target_sublink,
        } => Body::BypassPeer(BypassPeer {
            sublink,
            reserved0: 0,
            bypass_target_node,
            bypass_target_sublink,
        }),
        RouteMessage::AcceptBypassLink {
            current_peer_node,
            current_peer_sublink,
            inbound_sequence_length_from_bypassed_link,
            new_sublink,
            new_link_state,
        } => Body::AcceptBypassLink(AcceptBypassLink {
            current_peer_node,
            current_peer_sublink,
            inbound_sequence_length_from_bypassed_link: SequenceNumber(
                inbound_sequence_length_from_bypassed_link,
            ),
            new_sublink,
            new_link_state_fragment: new_link_state,
        }),
        RouteMessage::StopProxying {
            sublink,
            inbound_sequence_length,
            outbound_sequence_length,
        } => Body::StopProxying(StopProxying {
            sublink,
            inbound_sequence_length: SequenceNumber(inbound_sequence_length),
            outbound_sequence_length: SequenceNumber(outbound_sequence_length),
        }),
        RouteMessage::ProxyWillStop {
            sublink,
            inbound_sequence_length,
        } => Body::ProxyWillStop(ProxyWillStop {
            sublink,
            inbound_sequence_length: SequenceNumber(inbound_sequence_length),
        }),
        RouteMessage::BypassPeerWithLink {
            sublink,
            new_sublink,
            new_link_state,
            inbound_sequence_length,
        } => Body::BypassPeerWithLink(BypassPeerWithLink {
            sublink,
            new_sublink,
            new_link_state_fragment: new_link_state,
            inbound_sequence_length: SequenceNumber(inbound_sequence_length),
        }),
        RouteMessage::StopProxyingToLocalPeer {
            sublink,
            outbound_sequence_length,
        } => Body::StopProxyingToLocalPeer(StopProxyingToLocalPeer {
            sublink,
            outbound_sequence_length: SequenceNumber(outbound_sequence_length),
        }),
        RouteMessage::FlushRouter { sublink } => Body::FlushRouter(FlushRouter { sublink }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::incoming::new_router_of;
    use super::*;

    #[test]
    fn descriptors_round_trip_through_the_router_form() {
        let forms = [
            NewRouter {
                new_sublink: SublinkId(12),
                new_link_state: Some(FragmentDescriptor::new(0, 1088, 64)),
                proxy_already_bypassed: true,
                new_decaying_sublink: SublinkId(13),
                ..NewRouter::default()
            },
            NewRouter {
                peer_closed: true,
                closed_peer_sequence_length: 4,
                new_sublink: SublinkId(20),
                next_outgoing_sequence_number: 3,
                next_incoming_sequence_number: 5,
                proxy_peer: Some((NodeName { high: 1, low: 2 }, SublinkId(7))),
                ..NewRouter::default()
            },
        ];
        for r in forms {
            assert_eq!(new_router_of(&descriptor_of(&r)), r);
        }
        let d = descriptor_of(&NewRouter::default());
        assert!(d.new_link_state_fragment.is_null());
        assert!(!d.proxy_peer_node_name.is_valid());
    }

    #[test]
    fn every_route_message_but_parcels_has_a_plain_body() {
        let s = SublinkId(3);
        let f = FragmentDescriptor::new(0, 1088, 64);
        let n = NodeName { high: 1, low: 1 };
        let messages: Vec<RouteMessage<DriverBox>> = vec![
            RouteMessage::RouteClosed {
                sublink: s,
                sequence_length: 2,
            },
            RouteMessage::RouteDisconnected { sublink: s },
            RouteMessage::BypassPeer {
                sublink: s,
                bypass_target_node: n,
                bypass_target_sublink: s,
            },
            RouteMessage::AcceptBypassLink {
                current_peer_node: n,
                current_peer_sublink: s,
                inbound_sequence_length_from_bypassed_link: 1,
                new_sublink: s,
                new_link_state: f,
            },
            RouteMessage::StopProxying {
                sublink: s,
                inbound_sequence_length: 1,
                outbound_sequence_length: 2,
            },
            RouteMessage::ProxyWillStop {
                sublink: s,
                inbound_sequence_length: 1,
            },
            RouteMessage::BypassPeerWithLink {
                sublink: s,
                new_sublink: s,
                new_link_state: f,
                inbound_sequence_length: 1,
            },
            RouteMessage::StopProxyingToLocalPeer {
                sublink: s,
                outbound_sequence_length: 1,
            },
            RouteMessage::FlushRouter { sublink: s },
        ];
        for m in messages {
            let name = m.name();
            let body = plain_body(m).expect("a body");
            assert_eq!(body.name(), name);
        }
        let parcel = RouteMessage::AcceptParcel {
            sublink: s,
            parcel: crate::router::Parcel::new(0, Vec::new(), Vec::new()),
        };
        assert!(plain_body(parcel).is_none());
    }
}
