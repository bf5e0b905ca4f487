//! The one place that converts between the wire crate's borrowed ports
//! events (`mojo_legacy_wire::event`) and the ports layer's owned events
//! ([`crate::ports::Event`]), port descriptors included.
//!
//! The user-message part of a `UserMessage` event is not interpreted here:
//! the caller decodes it (into the payload type `M`) or supplies its encoded
//! bytes.

use mojo_legacy_wire::EventHeaderForm;
use mojo_legacy_wire::event::{self as wire, AttachedPort, EventData, SenderInfo};

use crate::ports::{Event, PortDescriptor, Sender, UserMessage};

/// A wire descriptor as the ports layer's descriptor.
pub(crate) fn descriptor_from_wire(d: &wire::PortDescriptor) -> PortDescriptor {
    PortDescriptor {
        peer_node_name: d.peer_node_name,
        peer_port_name: d.peer_port_name,
        referring_node_name: d.referring_node_name,
        referring_port_name: d.referring_port_name,
        next_sequence_num_to_send: d.next_sequence_num_to_send,
        next_sequence_num_to_receive: d.next_sequence_num_to_receive,
        last_sequence_num_to_receive: d.last_sequence_num_to_receive,
        peer_closed: d.peer_closed,
    }
}

/// The ports layer's descriptor in wire form.
pub(crate) fn descriptor_to_wire(d: &PortDescriptor) -> wire::PortDescriptor {
    wire::PortDescriptor {
        peer_node_name: d.peer_node_name,
        peer_port_name: d.peer_port_name,
        referring_node_name: d.referring_node_name,
        referring_port_name: d.referring_port_name,
        next_sequence_num_to_send: d.next_sequence_num_to_send,
        next_sequence_num_to_receive: d.next_sequence_num_to_receive,
        last_sequence_num_to_receive: d.last_sequence_num_to_receive,
        peer_closed: d.peer_closed,
    }
}

/// Converts a decoded wire event. `payload` turns the user-message part of
/// a `UserMessage` event into `M` (it is given the part's bytes and the
/// number of attached ports). `Ok(None)` for an event type this node does
/// not know, which is ignored (§6.2).
pub(crate) fn event_from_wire<M, E>(
    event: &wire::Event<'_>,
    payload: impl FnOnce(&[u8], usize) -> Result<M, E>,
) -> Result<Option<Event<M>>, E> {
    let port_name = event.port_name;
    Ok(Some(match &event.data {
        EventData::UserMessage(m) => Event::UserMessage {
            port_name,
            message: UserMessage {
                sequence_num: m.sequence_num,
                ports: m.ports.iter().map(|p| p.name).collect(),
                descriptors: m
                    .ports
                    .iter()
                    .map(|p| descriptor_from_wire(&p.descriptor))
                    .collect(),
                payload: payload(m.message, m.ports.len())?,
            },
        },
        EventData::PortAccepted => Event::PortAccepted { port_name },
        EventData::ObserveProxy(o) => Event::ObserveProxy {
            port_name,
            proxy_node_name: o.proxy_node_name,
            proxy_port_name: o.proxy_port_name,
            proxy_target_node_name: o.proxy_target_node_name,
            proxy_target_port_name: o.proxy_target_port_name,
        },
        EventData::ObserveProxyAck { last_sequence_num } => Event::ObserveProxyAck {
            port_name,
            last_sequence_num: *last_sequence_num,
        },
        EventData::ObserveClosure { last_sequence_num } => Event::ObserveClosure {
            port_name,
            last_sequence_num: *last_sequence_num,
        },
        EventData::MergePort(m) => Event::MergePort {
            port_name,
            new_port_name: m.new_port_name,
            new_port_descriptor: descriptor_from_wire(&m.new_port_descriptor),
        },
        EventData::UserMessageReadAckRequest {
            sequence_num_to_acknowledge,
        } => Event::UserMessageReadAckRequest {
            port_name,
            sequence_num_to_acknowledge: *sequence_num_to_acknowledge,
        },
        EventData::UserMessageReadAck {
            sequence_num_acknowledged,
        } => Event::UserMessageReadAck {
            port_name,
            sequence_num_acknowledged: *sequence_num_acknowledged,
        },
        EventData::UpdatePreviousPeer {
            new_node_name,
            new_port_name,
        } => Event::UpdatePreviousPeer {
            port_name,
            new_node_name: *new_node_name,
            new_port_name: *new_port_name,
        },
        EventData::Unknown { .. } => return Ok(None),
    }))
}

/// The attached ports of a user message in wire form (names and
/// descriptors, in order).
pub(crate) fn attached_ports<M>(message: &UserMessage<M>) -> Vec<AttachedPort> {
    message
        .ports
        .iter()
        .zip(&message.descriptors)
        .map(|(name, d)| AttachedPort {
            descriptor: descriptor_to_wire(d),
            name: *name,
        })
        .collect()
}

/// The header's sender fields for `form`: none in the compact header, the
/// ports layer's `sender` in the extended one (§4.9).
pub(crate) fn sender_for(form: EventHeaderForm, sender: Sender) -> Option<SenderInfo> {
    match form {
        EventHeaderForm::Compact => None,
        EventHeaderForm::Extended => Some(SenderInfo {
            from_port: sender.from_port,
            control_sequence_num: sender.control_sequence_num,
        }),
    }
}

/// The sender fields of an incoming event (none in the compact header).
pub(crate) fn sender_from_wire(sender: Option<SenderInfo>) -> Sender {
    sender.map_or(Sender::NONE, |s| Sender {
        from_port: s.from_port,
        control_sequence_num: s.control_sequence_num,
    })
}

/// The wire form of a ports event, with the header form `form`. For a
/// `UserMessage`, `message` is the encoded user-message part.
pub(crate) fn event_to_wire<'a, M>(
    event: &Event<M>,
    message: &'a [u8],
    form: EventHeaderForm,
) -> wire::Event<'a> {
    event_to_wire_from(event, message, form, Sender::NONE)
}

/// As [`event_to_wire`], with the sender fields of the extended header.
pub(crate) fn event_to_wire_from<'a, M>(
    event: &Event<M>,
    message: &'a [u8],
    form: EventHeaderForm,
    sender: Sender,
) -> wire::Event<'a> {
    let data = match event {
        Event::UserMessage { message: m, .. } => EventData::UserMessage(wire::UserMessageEvent {
            sequence_num: m.sequence_num,
            ports: attached_ports(m),
            message,
        }),
        Event::PortAccepted { .. } => EventData::PortAccepted,
        Event::ObserveProxy {
            proxy_node_name,
            proxy_port_name,
            proxy_target_node_name,
            proxy_target_port_name,
            ..
        } => EventData::ObserveProxy(wire::ObserveProxy {
            proxy_node_name: *proxy_node_name,
            proxy_port_name: *proxy_port_name,
            proxy_target_node_name: *proxy_target_node_name,
            proxy_target_port_name: *proxy_target_port_name,
        }),
        Event::ObserveProxyAck {
            last_sequence_num, ..
        } => EventData::ObserveProxyAck {
            last_sequence_num: *last_sequence_num,
        },
        Event::ObserveClosure {
            last_sequence_num, ..
        } => EventData::ObserveClosure {
            last_sequence_num: *last_sequence_num,
        },
        Event::MergePort {
            new_port_name,
            new_port_descriptor,
            ..
        } => EventData::MergePort(wire::MergePort {
            new_port_name: *new_port_name,
            new_port_descriptor: descriptor_to_wire(new_port_descriptor),
        }),
        Event::UserMessageReadAckRequest {
            sequence_num_to_acknowledge,
            ..
        } => EventData::UserMessageReadAckRequest {
            sequence_num_to_acknowledge: *sequence_num_to_acknowledge,
        },
        Event::UserMessageReadAck {
            sequence_num_acknowledged,
            ..
        } => EventData::UserMessageReadAck {
            sequence_num_acknowledged: *sequence_num_acknowledged,
        },
        Event::UpdatePreviousPeer {
            new_node_name,
            new_port_name,
            ..
        } => EventData::UpdatePreviousPeer {
            new_node_name: *new_node_name,
            new_port_name: *new_port_name,
        },
    };
    wire::Event {
        port_name: event.port_name(),
        sender: sender_for(form, sender),
        data,
        trailing: &[],
    }
}
