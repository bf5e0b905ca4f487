//! Relayed messages (§3.3): a node whose transport cannot carry a driver
//! object sends the message to its broker in RelayMessage, and the broker
//! hands it on in AcceptRelayedMessage. With the MojoIpcz driver this never
//! happens on POSIX (every transport carries fds), but a peer can still
//! send them, so each role does what Chromium's `NodeLink` does:
//!
//! - RelayMessage on a node that is not a broker, or AcceptRelayedMessage
//!   on a link whose remote is not a broker, is a failure of that link
//!   ([`NodeError::RelayOutOfRole`]).
//! - A broker relays: to a node it has no link to, the message is dropped
//!   (its fds close); otherwise the destination gets AcceptRelayedMessage
//!   naming the sender as `source`, with the same bytes and objects.
//! - A non-broker takes an AcceptRelayedMessage from its broker as if the
//!   inner message had come on its link to `source` (ignored if there is
//!   none): AddBlockBuffer is handled as such; AcceptParcelDriverObjects,
//!   the object half of a split parcel, is [`NodeError::RelayedObject`]
//!   like the split AcceptParcel itself (this node never joins split
//!   parcels); any other inner message is ignored, so a newer message may
//!   be relayed. A bad inner message is the fault of `source`, whose link
//!   is dropped; the broker link, which only carried it, stays. (Chromium
//!   ignores the inner handler's verdict altogether; dropping the sender's
//!   link is the stricter reading of §2.7.)

use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::DriverObject;
use ipcz_wire::error::MessageError;
use ipcz_wire::limits::MESSAGE_HEADER_SIZE;
use ipcz_wire::message::{DecodeOptions, Message};
use ipcz_wire::messages::{AcceptRelayedMessage, Body, MessageId, RelayMessage};
use ipcz_wire::types::DriverObjectArray;
use mojo_wire_kit::SharedMemory;

use super::{Node, NodeError, NodeRole};
use crate::link::NodeLink;
use crate::router::NodeLinkId;

/// Offset of `message_id` in a MessageHeader.
const MESSAGE_ID_OFFSET: usize = 2;

impl<M: SharedMemory> Node<M> {
    /// RelayMessage on `link`: relayed by a broker, a failure elsewhere.
    pub(super) fn on_relay_message(
        &mut self,
        link: NodeLinkId,
        message: &Message<'_>,
        r: &RelayMessage<'_>,
        fds: &mut [Option<OwnedFd>],
    ) -> Result<(), NodeError> {
        if self.config.role != NodeRole::Broker {
            return Err(NodeError::RelayOutOfRole(message.id()));
        }
        let source = self
            .links
            .get(link)
            .map(NodeLink::remote_name)
            .ok_or(NodeError::UnknownLink(link))?;
        let Some(destination) = self.links.by_name(r.destination) else {
            // No such node (any more): the message and its fds are dropped.
            return Ok(());
        };
        let (objects, own) = take_objects(message, r.driver_objects, fds)?;
        let count = u32::try_from(objects.len()).unwrap_or(u32::MAX);
        let body = Body::AcceptRelayedMessage(AcceptRelayedMessage {
            source,
            data: r.data,
            padding: 0,
            driver_objects: DriverObjectArray::new(0, count),
        });
        self.queue_message(destination, body, &objects, own);
        Ok(())
    }

    /// AcceptRelayedMessage on `link`: from our broker, the inner message
    /// as if it had come on our link to `source`.
    pub(super) fn on_accept_relayed_message(
        &mut self,
        link: NodeLinkId,
        message: &Message<'_>,
        a: &AcceptRelayedMessage<'_>,
        fds: &mut [Option<OwnedFd>],
    ) -> Result<(), NodeError> {
        if !self.links.get(link).is_some_and(NodeLink::remote_is_broker) {
            return Err(NodeError::RelayOutOfRole(message.id()));
        }
        let Some(source) = self.links.by_name(a.source) else {
            return Ok(());
        };
        let result = self.dispatch_relayed(source, message, a, fds);
        match result {
            Err(e) if source != link => {
                self.drop_link(source, e);
                Ok(())
            }
            other => other,
        }
    }

    fn dispatch_relayed(
        &mut self,
        source: NodeLinkId,
        outer: &Message<'_>,
        a: &AcceptRelayedMessage<'_>,
        fds: &mut [Option<OwnedFd>],
    ) -> Result<(), NodeError> {
        if a.data.len() < MESSAGE_HEADER_SIZE {
            return Err(NodeError::Message(MessageError::TooShort {
                len: a.data.len(),
            }));
        }
        let id = MessageId(a.data.get(MESSAGE_ID_OFFSET).copied().unwrap_or(0));
        if id != MessageId::AddBlockBuffer && id != MessageId::AcceptParcelDriverObjects {
            return Ok(());
        }
        let objects: Vec<_> = a
            .driver_objects
            .indices()
            .filter_map(|i| outer.driver_objects.get(i).copied())
            .collect();
        let options = DecodeOptions {
            detect_descriptor_format: true,
            ..DecodeOptions::default()
        };
        let inner = Message::decode_relayed(a.data, objects, options)?;
        inner.check_semantics()?;
        match &inner.body {
            Body::AddBlockBuffer(add) => self.on_add_block_buffer(source, &inner, add, fds),
            Body::AcceptParcelDriverObjects(p) => {
                Err(NodeError::RelayedObject { sublink: p.sublink })
            }
            _ => Ok(()),
        }
    }
}

/// The objects of `array` in `message` and their fds, in order, the fds
/// renumbered from 0 as [`Message::push_object`] will assign them.
fn take_objects(
    message: &Message<'_>,
    array: DriverObjectArray,
    fds: &mut [Option<OwnedFd>],
) -> Result<(Vec<DriverObject>, Vec<OwnedFd>), NodeError> {
    let mut objects = Vec::new();
    let mut own = Vec::new();
    for i in array.indices() {
        let attached = message
            .driver_objects
            .get(i)
            .ok_or(NodeError::UnexpectedMessage(message.id()))?;
        for fd in attached.fds.range() {
            own.push(
                fds.get_mut(fd)
                    .and_then(Option::take)
                    .ok_or(NodeError::FdReused { index: fd })?,
            );
        }
        objects.push(attached.object);
    }
    Ok((objects, own))
}
