//! Frames in: the receiver checks of §2.7 (through ipcz-wire), then each
//! message to router operations or memory work (§3, §6.4). Parcel data is
//! copied out of its fragment and the fragment freed before the parcel goes
//! anywhere, so a dropped parcel frees it too; parcels whose buffer has
//! not arrived and subparcel sets are held per link, bounded.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::DriverObject;
use ipcz_wire::error::FrameError;
use ipcz_wire::frame::Frame;
use ipcz_wire::limits::DEFAULT_MAX_FRAME_LEN;
use ipcz_wire::message::{DecodeOptions, Message};
use ipcz_wire::messages::{AcceptParcel, AddBlockBuffer, Body};
use ipcz_wire::router_descriptor::RouterDescriptor;
use ipcz_wire::types::{BufferId, DriverObjectIndex, FragmentDescriptor, HandleType, SublinkId};
use mojo_wire_kit::SharedMemory;

use super::{DriverBox, Node, NodeError, NodeEvent, SubparcelError};
use crate::memory::Resolved;
use crate::router::{NewRouter, NodeLinkId, Parcel, RouteMessage, WireHandle};

/// Most RequestMemory messages of one link waiting for an answer; one
/// more is a failure of the link.
pub const MAX_PENDING_MEMORY_REQUESTS_PER_LINK: usize = 64;

/// A parcel waiting for the buffer its data is in.
#[derive(Debug)]
struct HeldParcel {
    sublink: SublinkId,
    sequence_number: u64,
    fragment: FragmentDescriptor,
    handles: Vec<WireHandle<DriverBox>>,
}

/// A handle of a received parcel before subparcels are merged.
#[derive(Debug)]
enum InHandle {
    Wire(WireHandle<DriverBox>),
    Subparcel,
}

#[derive(Debug)]
struct Part {
    data: Vec<u8>,
    handles: Vec<InHandle>,
}

#[derive(Debug)]
struct SubparcelSet {
    count: u32,
    parts: BTreeMap<u32, Part>,
}

/// What one link holds back.
#[derive(Debug, Default)]
pub(super) struct Inbox {
    held: Vec<HeldParcel>,
    subparcels: BTreeMap<(SublinkId, u64), SubparcelSet>,
    /// Buffers the peer added that the caller is mapping, with their block size.
    mapping: BTreeMap<BufferId, u32>,
    /// RequestMemory messages not answered yet.
    pub(super) memory_requests: usize,
}

impl Inbox {
    pub(super) fn held_count(&self) -> usize {
        self.held.len() + self.subparcels.len()
    }
}

/// The router the descriptor describes, as the router table takes it.
pub(crate) fn new_router_of(d: &RouterDescriptor) -> NewRouter {
    NewRouter {
        peer_closed: d.peer_closed,
        closed_peer_sequence_length: d.closed_peer_sequence_length.0,
        new_sublink: d.new_sublink,
        new_link_state: (!d.new_link_state_fragment.is_null()).then_some(d.new_link_state_fragment),
        proxy_already_bypassed: d.proxy_already_bypassed,
        new_decaying_sublink: d.new_decaying_sublink,
        next_outgoing_sequence_number: d.next_outgoing_sequence_number.0,
        next_incoming_sequence_number: d.next_incoming_sequence_number.0,
        decaying_incoming_sequence_length: d.decaying_incoming_sequence_length.0,
        proxy_peer: d
            .proxy_peer_node_name
            .is_valid()
            .then_some((d.proxy_peer_node_name, d.proxy_peer_sublink)),
    }
}

/// The route messages that are plain values on the wire.
fn plain_route_message(body: &Body<'_>) -> Option<RouteMessage<DriverBox>> {
    Some(match body {
        Body::RouteClosed(m) => RouteMessage::RouteClosed {
            sublink: m.sublink,
            sequence_length: m.sequence_length.0,
        },
        Body::RouteDisconnected(m) => RouteMessage::RouteDisconnected { sublink: m.sublink },
        Body::BypassPeer(m) => RouteMessage::BypassPeer {
            sublink: m.sublink,
            bypass_target_node: m.bypass_target_node,
            bypass_target_sublink: m.bypass_target_sublink,
        },
        Body::AcceptBypassLink(m) => RouteMessage::AcceptBypassLink {
            current_peer_node: m.current_peer_node,
            current_peer_sublink: m.current_peer_sublink,
            inbound_sequence_length_from_bypassed_link: m
                .inbound_sequence_length_from_bypassed_link
                .0,
            new_sublink: m.new_sublink,
            new_link_state: m.new_link_state_fragment,
        },
        Body::StopProxying(m) => RouteMessage::StopProxying {
            sublink: m.sublink,
            inbound_sequence_length: m.inbound_sequence_length.0,
            outbound_sequence_length: m.outbound_sequence_length.0,
        },
        Body::ProxyWillStop(m) => RouteMessage::ProxyWillStop {
            sublink: m.sublink,
            inbound_sequence_length: m.inbound_sequence_length.0,
        },
        Body::BypassPeerWithLink(m) => RouteMessage::BypassPeerWithLink {
            sublink: m.sublink,
            new_sublink: m.new_sublink,
            new_link_state: m.new_link_state_fragment,
            inbound_sequence_length: m.inbound_sequence_length.0,
        },
        Body::StopProxyingToLocalPeer(m) => RouteMessage::StopProxyingToLocalPeer {
            sublink: m.sublink,
            outbound_sequence_length: m.outbound_sequence_length.0,
        },
        Body::FlushRouter(m) => RouteMessage::FlushRouter { sublink: m.sublink },
        _ => return None,
    })
}

impl<M: SharedMemory> Node<M> {
    /// Handles one frame (IpczHeader and message, exactly `bytes`) that
    /// arrived on `link` with `fds`. An error means the frame broke a rule:
    /// the link has been dropped ([`NodeEvent::LinkDropped`]), and only it.
    /// Unknown message ids are ignored (§2.7 item 8).
    pub fn handle_frame(
        &mut self,
        link: NodeLinkId,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        if self.links.get(link).is_none() {
            return Err(NodeError::UnknownLink(link));
        }
        let result = self.process_frame(link, bytes, fds);
        if let Err(e) = &result {
            self.drop_link(link, e.clone());
        }
        self.pump();
        result
    }

    /// Handles every whole frame at the start of `input`, a link's receive
    /// buffer (the bytes of its stream not consumed yet), taking each
    /// frame's fds from the front of `fds` (the link's received fds, in
    /// order); returns the bytes consumed. A whole frame whose fds have not
    /// all arrived is [`NodeError::FdCount`] (they ride with its first
    /// byte, so they never will). An error dropped the link, as for
    /// [`Self::handle_frame`]; a frame longer than
    /// [`ipcz_wire::limits::DEFAULT_MAX_FRAME_LEN`] is one.
    pub fn handle_stream(
        &mut self,
        link: NodeLinkId,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, NodeError> {
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            if let Some(len) = rest.get(4..8) {
                let mut word = [0; 4];
                word.copy_from_slice(len);
                let num_bytes = u32::from_le_bytes(word);
                if num_bytes > DEFAULT_MAX_FRAME_LEN {
                    let e = NodeError::Frame(FrameError::TooLarge {
                        num_bytes,
                        max: DEFAULT_MAX_FRAME_LEN,
                    });
                    self.drop_link(link, e.clone());
                    self.pump();
                    return Err(e);
                }
            }
            let (num_handles, used) = match Frame::decode_prefix(rest) {
                Ok(Some((frame, used))) => (usize::from(frame.header.num_handles), used),
                Ok(None) => return Ok(consumed),
                Err(e) => {
                    let e = NodeError::Frame(e);
                    self.drop_link(link, e.clone());
                    self.pump();
                    return Err(e);
                }
            };
            if fds.len() < num_handles {
                // A frame's fds travel with its first byte, so once all of
                // its bytes are here its fds are too: a peer that claims
                // more is lying, and waiting for them would stall forever.
                let e = NodeError::FdCount {
                    header: u16::try_from(num_handles).unwrap_or(u16::MAX),
                    received: fds.len(),
                };
                self.drop_link(link, e.clone());
                self.pump();
                return Err(e);
            }
            let frame_fds = fds.drain(..num_handles).collect();
            let bytes = rest.get(..used).unwrap_or_default();
            self.handle_frame(link, bytes, frame_fds)?;
            consumed += used;
        }
    }

    /// The caller mapped the buffer of a [`NodeEvent::MapBlockBuffer`]:
    /// it joins the link's memory, and whatever waited for it resumes.
    pub fn block_buffer_mapped(
        &mut self,
        link: NodeLinkId,
        id: BufferId,
        memory: M,
    ) -> Result<(), NodeError> {
        let block_size = self
            .inboxes
            .get_mut(&link)
            .ok_or(NodeError::UnknownLink(link))?
            .mapping
            .remove(&id)
            .ok_or(NodeError::UnexpectedMapping(id))?;
        let result = self.register_block_buffer(link, id, block_size, memory);
        if let Err(e) = &result {
            self.drop_link(link, e.clone());
        }
        self.pump();
        result
    }

    /// The caller could not map the buffer of a [`NodeEvent::MapBlockBuffer`]:
    /// the link is dropped (§3.3: the buffer must map).
    pub fn block_buffer_unmappable(&mut self, link: NodeLinkId, id: BufferId) {
        self.drop_link(link, NodeError::UnmappableBuffer(id));
        self.pump();
    }

    fn register_block_buffer(
        &mut self,
        link: NodeLinkId,
        id: BufferId,
        block_size: u32,
        memory: M,
    ) -> Result<(), NodeError> {
        let l = self
            .links
            .get_mut(link)
            .ok_or(NodeError::UnknownLink(link))?;
        l.memory_mut().add_block_buffer(id, block_size, memory)?;
        l.apply_pending_state_ops(id)?;
        let ready = match self.inboxes.get_mut(&link) {
            Some(inbox) => {
                let (ready, waiting) = std::mem::take(&mut inbox.held)
                    .into_iter()
                    .partition(|h| h.fragment.buffer_id == id);
                inbox.held = waiting;
                ready
            }
            None => Vec::new(),
        };
        for held in ready {
            let spare = self.spare_buffers.take();
            let data = match self.links.get_mut(link) {
                Some(l) => match l.memory_mut().take_parcel_data_into(held.fragment, spare)? {
                    Resolved::Ready(data) => data,
                    Resolved::Pending(_) => Vec::new(),
                },
                None => return Err(NodeError::UnknownLink(link)),
            };
            self.deliver(link, held.sublink, held.sequence_number, data, held.handles)?;
        }
        self.routers.flush_node_link(link, &mut self.links);
        Ok(())
    }

    fn process_frame(
        &mut self,
        link: NodeLinkId,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
    ) -> Result<(), NodeError> {
        let (frame, used) = Frame::decode(bytes).map_err(NodeError::Frame)?;
        if used != bytes.len() {
            return Err(NodeError::TrailingBytes {
                frame_len: used,
                len: bytes.len(),
            });
        }
        if usize::from(frame.header.num_handles) != fds.len() {
            return Err(NodeError::FdCount {
                header: frame.header.num_handles,
                received: fds.len(),
            });
        }
        let limit = self.config.limits.max_fds;
        let alive = self.links.get(link).map_or(0, |l| l.fds_alive());
        if alive.saturating_add(fds.len()) > limit {
            return Err(NodeError::TooManyFds { limit });
        }
        let options = DecodeOptions {
            detect_descriptor_format: true,
            ..DecodeOptions::default()
        };
        let message = Message::decode_with(frame.payload, fds.len(), options)?;
        message.check_semantics()?;
        let mut fds: Vec<Option<OwnedFd>> = fds.into_iter().map(Some).collect();
        self.dispatch(link, &message, &mut fds)
    }

    fn dispatch(
        &mut self,
        link: NodeLinkId,
        message: &Message<'_>,
        fds: &mut [Option<OwnedFd>],
    ) -> Result<(), NodeError> {
        if let Some(route) = plain_route_message(&message.body) {
            return self
                .routers
                .handle_message(link, route, &mut self.links)
                .map_err(NodeError::Route);
        }
        match &message.body {
            Body::AcceptParcel(p) => self.on_accept_parcel(link, message, p, fds),
            Body::AddBlockBuffer(a) => self.on_add_block_buffer(link, message, a, fds),
            Body::RequestMemory(r) => {
                let inbox = self.inboxes.entry(link).or_default();
                if inbox.memory_requests >= MAX_PENDING_MEMORY_REQUESTS_PER_LINK {
                    return Err(NodeError::TooManyMemoryRequests {
                        limit: MAX_PENDING_MEMORY_REQUESTS_PER_LINK,
                    });
                }
                inbox.memory_requests += 1;
                self.events
                    .push(NodeEvent::MemoryRequested { link, size: r.size });
                Ok(())
            }
            Body::ProvideMemory(p) => Err(NodeError::UnrequestedMemory { size: p.size }),
            Body::AcceptIntroduction(a) => self.on_accept_introduction(link, message, a, fds),
            Body::RejectIntroduction(r) => self.on_reject_introduction(link, message, r.name),
            Body::RequestIntroduction(r) => self.on_request_introduction(link, message, r.name),
            Body::RelayMessage(r) => self.on_relay_message(link, message, r, fds),
            Body::AcceptRelayedMessage(a) => self.on_accept_relayed_message(link, message, a, fds),
            Body::Unknown(_) => Ok(()),
            other => Err(NodeError::UnexpectedMessage(other.id())),
        }
    }

    /// Moves driver object `index` and its fds into a box counted on `link`.
    pub(super) fn take_box(
        &self,
        link: NodeLinkId,
        message: &Message<'_>,
        index: DriverObjectIndex,
        fds: &mut [Option<OwnedFd>],
    ) -> Result<DriverBox, NodeError> {
        let i = index.get().unwrap_or(usize::MAX);
        self.take_object(link, message, i, fds)
    }

    fn take_object(
        &self,
        link: NodeLinkId,
        message: &Message<'_>,
        index: usize,
        fds: &mut [Option<OwnedFd>],
    ) -> Result<DriverBox, NodeError> {
        let attached = message
            .driver_objects
            .get(index)
            .ok_or(NodeError::UnexpectedMessage(message.id()))?;
        let mut own = Vec::with_capacity(usize::from(attached.fds.count));
        for fd in attached.fds.range() {
            own.push(
                fds.get_mut(fd)
                    .and_then(Option::take)
                    .ok_or(NodeError::FdReused { index: fd })?,
            );
        }
        let l = self.links.get(link).ok_or(NodeError::UnknownLink(link))?;
        Ok(DriverBox::received(attached.object, own, self.counters(l)))
    }

    pub(super) fn on_add_block_buffer(
        &mut self,
        link: NodeLinkId,
        message: &Message<'_>,
        a: &AddBlockBuffer,
        fds: &mut [Option<OwnedFd>],
    ) -> Result<(), NodeError> {
        let size = match message.object(a.buffer) {
            Some(DriverObject::SharedBuffer(b)) => b.buffer_size as usize,
            _ => 0,
        };
        let l = self.links.get(link).ok_or(NodeError::UnknownLink(link))?;
        l.memory().check_block_buffer(a.id, a.block_size, size)?;
        let inbox = self.inboxes.entry(link).or_default();
        if inbox.mapping.contains_key(&a.id) {
            return Err(NodeError::DuplicateBlockBuffer(a.id));
        }
        inbox.mapping.insert(a.id, a.block_size);
        let buffer = self.take_box(link, message, a.buffer, fds)?;
        self.events.push(NodeEvent::MapBlockBuffer {
            link,
            id: a.id,
            block_size: a.block_size,
            buffer,
        });
        Ok(())
    }

    fn on_accept_parcel(
        &mut self,
        link: NodeLinkId,
        message: &Message<'_>,
        p: &AcceptParcel<'_>,
        fds: &mut [Option<OwnedFd>],
    ) -> Result<(), NodeError> {
        let limits = self.config.limits;
        let new_sublinks = p.new_routers.len().saturating_mul(2);
        if self.sublinks_on(link).saturating_add(new_sublinks) > limits.max_sublinks {
            return Err(NodeError::TooManySublinks {
                limit: limits.max_sublinks,
            });
        }
        let queued = self.links.get(link).map_or(0, |l| l.queued_parcels());
        if queued >= limits.max_queued_parcels {
            return Err(NodeError::TooManyQueuedParcels {
                limit: limits.max_queued_parcels,
            });
        }
        let held = self.inboxes.get(&link).map_or(0, Inbox::held_count);
        let needs_holding = !p.parcel_fragment.is_null() || p.num_subparcels > 1;
        if needs_holding && held >= limits.max_held_parcels {
            return Err(NodeError::TooManyHeldParcels {
                limit: limits.max_held_parcels,
            });
        }

        // Handles in order (the checks of §6.4 steps 1-3 passed already).
        let mut handles = Vec::with_capacity(p.handle_types.len());
        let mut descriptors = p.new_routers.iter();
        let mut next_object = 0;
        for handle in &p.handle_types {
            match *handle {
                HandleType::PORTAL => {
                    if let Some(d) = descriptors.next() {
                        handles.push(InHandle::Wire(WireHandle::Router(new_router_of(d))));
                    }
                }
                HandleType::BOXED_DRIVER_OBJECT => {
                    let b = self.take_object(link, message, next_object, fds)?;
                    next_object += 1;
                    handles.push(InHandle::Wire(WireHandle::Object(b)));
                }
                HandleType::BOXED_SUBPARCEL => handles.push(InHandle::Subparcel),
                _ => return Err(NodeError::RelayedObject { sublink: p.sublink }),
            }
        }

        let sequence_number = p.sequence_number.0;
        let subparcel_error = |reason| NodeError::Subparcel {
            sublink: p.sublink,
            sequence_number,
            reason,
        };
        let data = if p.parcel_fragment.is_null() {
            Resolved::Ready(self.spare_buffers.copy_of(p.parcel_data))
        } else {
            let l = self
                .links
                .get_mut(link)
                .ok_or(NodeError::UnknownLink(link))?;
            l.memory_mut()
                .take_parcel_data_into(p.parcel_fragment, self.spare_buffers.take())?
        };

        if p.num_subparcels <= 1 {
            let handles = handles
                .into_iter()
                .map(|h| match h {
                    InHandle::Wire(w) => Ok(w),
                    InHandle::Subparcel => Err(subparcel_error(SubparcelError::PlaceholderCount)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            return match data {
                Resolved::Ready(data) => {
                    self.deliver(link, p.sublink, sequence_number, data, handles)
                }
                Resolved::Pending(_) => {
                    self.inboxes.entry(link).or_default().held.push(HeldParcel {
                        sublink: p.sublink,
                        sequence_number,
                        fragment: p.parcel_fragment,
                        handles,
                    });
                    Ok(())
                }
            };
        }

        let Resolved::Ready(data) = data else {
            return Err(subparcel_error(SubparcelError::PendingData));
        };
        let inbox = self.inboxes.entry(link).or_default();
        let key = (p.sublink, sequence_number);
        let set = inbox.subparcels.entry(key).or_insert(SubparcelSet {
            count: p.num_subparcels,
            parts: BTreeMap::new(),
        });
        if set.count != p.num_subparcels {
            return Err(subparcel_error(SubparcelError::CountMismatch));
        }
        if set
            .parts
            .insert(p.subparcel_index, Part { data, handles })
            .is_some()
        {
            return Err(subparcel_error(SubparcelError::Duplicate));
        }
        if set.parts.len() < set.count as usize {
            return Ok(());
        }
        let Some(set) = inbox.subparcels.remove(&key) else {
            return Ok(());
        };
        let (data, handles) = unwrap_subparcels(set).map_err(subparcel_error)?;
        self.deliver(link, p.sublink, sequence_number, data, handles)
    }

    fn deliver(
        &mut self,
        link: NodeLinkId,
        sublink: SublinkId,
        sequence_number: u64,
        data: Vec<u8>,
        handles: Vec<WireHandle<DriverBox>>,
    ) -> Result<(), NodeError> {
        let mut parcel = Parcel::new(sequence_number, data, handles);
        if let Some(l) = self.links.get(link) {
            parcel.charge_to(l.queued_parcel_counter());
        }
        self.routers
            .handle_message(
                link,
                RouteMessage::AcceptParcel { sublink, parcel },
                &mut self.links,
            )
            .map_err(NodeError::Route)
    }
}

/// The Mojo message of a complete subparcel set: MojoIpcz sends a lazily
/// serialized message as a main parcel with no data and one placeholder,
/// after one subparcel with the message (§6.4); that is unwrapped.
fn unwrap_subparcels(
    mut set: SubparcelSet,
) -> Result<(Vec<u8>, Vec<WireHandle<DriverBox>>), SubparcelError> {
    let main = set
        .parts
        .remove(&0)
        .ok_or(SubparcelError::PlaceholderCount)?;
    let placeholders = main
        .handles
        .iter()
        .filter(|h| matches!(h, InHandle::Subparcel))
        .count();
    if placeholders + 1 != set.count as usize {
        return Err(SubparcelError::PlaceholderCount);
    }
    let mut subs = Vec::new();
    for part in set.parts.into_values() {
        let mut handles = Vec::with_capacity(part.handles.len());
        for h in part.handles {
            match h {
                InHandle::Wire(w) => handles.push(w),
                InHandle::Subparcel => return Err(SubparcelError::PlaceholderCount),
            }
        }
        subs.push((part.data, handles));
    }
    if main.data.is_empty() && main.handles.len() == 1 && subs.len() == 1 {
        return subs.pop().ok_or(SubparcelError::UnsupportedShape);
    }
    Err(SubparcelError::UnsupportedShape)
}
