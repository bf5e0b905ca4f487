//! Ports events (spec 4.1-4.3 and 4.9): the event header in its compact
//! (24-byte) and extended (48-byte) forms, and every event's data.
//!
//! An event is the body of a NodeChannel `EVENT_MESSAGE`. The header form is
//! not self-describing: [`Event::parse`] takes an [`EventHeaderForm`], and a
//! parsed [`Event`] remembers it (`sender` is `Some` exactly for the extended
//! form), so re-encoding reproduces the input.

use crate::codec::{
    Reader, len_u32, put_name, put_u8, put_u32, put_u64, put_zeros, require_canonical,
};
use crate::error::{Error, Result};
use crate::name::{NodeName, PortName};
use crate::node::NodeMessageType;
use crate::profile::{EventHeaderForm, Profile};
use crate::protocol_enum::protocol_enum;

/// Size of a serialized [`PortDescriptor`].
pub const PORT_DESCRIPTOR_LEN: usize = 96;
/// Size of `UserMessageEventData` (before descriptors and names).
pub const USER_MESSAGE_EVENT_DATA_LEN: usize = 16;
/// Bytes per attached port: a descriptor plus the port's new name.
pub const ATTACHED_PORT_LEN: usize = PORT_DESCRIPTOR_LEN + 16;

protocol_enum! {
    /// A ports event type (u32). Unknown values are kept (and ignored by Chromium).
    pub struct EventType(pub u32), unknown "EventType" {
        /// 0: a user message.
        USER_MESSAGE = 0 => "UserMessage",
        /// 1: a transferred port was accepted.
        PORT_ACCEPTED = 1 => "PortAccepted",
        /// 2: a proxy asks to be bypassed.
        OBSERVE_PROXY = 2 => "ObserveProxy",
        /// 3: answer to `ObserveProxy`.
        OBSERVE_PROXY_ACK = 3 => "ObserveProxyAck",
        /// 4: the peer closed.
        OBSERVE_CLOSURE = 4 => "ObserveClosure",
        /// 5: merge a port with a new one (answer to `REQUEST_PORT_MERGE`).
        MERGE_PORT = 5 => "MergePort",
        /// 6: asks for a read acknowledgement.
        USER_MESSAGE_READ_ACK_REQUEST = 6 => "UserMessageReadAckRequest",
        /// 7: a read acknowledgement.
        USER_MESSAGE_READ_ACK = 7 => "UserMessageReadAck",
        /// 8: extended mode only: a port's predecessor changed.
        UPDATE_PREVIOUS_PEER = 8 => "UpdatePreviousPeer",
    }
}

/// The sender-verification fields of the extended header (spec 4.9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SenderInfo {
    /// The sending port (invalid for `PortAccepted`, `MergePort`, broadcasts).
    pub from_port: PortName,
    /// Per-sending-port counter (u64::MAX where `from_port` is invalid).
    pub control_sequence_num: u64,
}

/// A serialized port (96 bytes): how to re-create a transferred port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PortDescriptor {
    /// Node of the transferred port's current peer.
    pub peer_node_name: NodeName,
    /// That peer port.
    pub peer_port_name: PortName,
    /// Node sending the port (must be valid).
    pub referring_node_name: NodeName,
    /// Port on the sending node that becomes a proxy; `PortAccepted` goes there.
    pub referring_port_name: PortName,
    /// Continue outgoing numbering here.
    pub next_sequence_num_to_send: u64,
    /// First incoming sequence number still expected.
    pub next_sequence_num_to_receive: u64,
    /// Meaningful if `peer_closed`.
    pub last_sequence_num_to_receive: u64,
    /// Whether the peer is already closed.
    pub peer_closed: bool,
}

impl PortDescriptor {
    fn read(r: &mut Reader<'_>) -> Result<Self> {
        r.need(PORT_DESCRIPTOR_LEN, "port descriptor")?;
        let d = Self {
            peer_node_name: r.name("port_descriptor.peer_node_name")?,
            peer_port_name: r.name("port_descriptor.peer_port_name")?,
            referring_node_name: r.name("port_descriptor.referring_node_name")?,
            referring_port_name: r.name("port_descriptor.referring_port_name")?,
            next_sequence_num_to_send: r.u64("port_descriptor.next_sequence_num_to_send")?,
            next_sequence_num_to_receive: r.u64("port_descriptor.next_sequence_num_to_receive")?,
            last_sequence_num_to_receive: r.u64("port_descriptor.last_sequence_num_to_receive")?,
            peer_closed: r.bool("port_descriptor.peer_closed")?,
        };
        r.padding(7, "port_descriptor.padding")?;
        Ok(d)
    }

    fn write(&self, out: &mut Vec<u8>) {
        put_name(out, self.peer_node_name);
        put_name(out, self.peer_port_name);
        put_name(out, self.referring_node_name);
        put_name(out, self.referring_port_name);
        put_u64(out, self.next_sequence_num_to_send);
        put_u64(out, self.next_sequence_num_to_receive);
        put_u64(out, self.last_sequence_num_to_receive);
        put_u8(out, u8::from(self.peer_closed));
        put_zeros(out, 7);
    }

    fn field_at(offset: usize) -> &'static str {
        match offset {
            0..16 => "port_descriptor.peer_node_name",
            16..32 => "port_descriptor.peer_port_name",
            32..48 => "port_descriptor.referring_node_name",
            48..64 => "port_descriptor.referring_port_name",
            64..72 => "port_descriptor.next_sequence_num_to_send",
            72..80 => "port_descriptor.next_sequence_num_to_receive",
            80..88 => "port_descriptor.last_sequence_num_to_receive",
            88 => "port_descriptor.peer_closed",
            _ => "port_descriptor.padding",
        }
    }
}

/// One port attached to a user message: its descriptor and its new name on
/// the receiving node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct AttachedPort {
    /// The descriptor (`descriptors[i]`).
    pub descriptor: PortDescriptor,
    /// The new port name on the receiver (`ports[i]`).
    pub name: PortName,
}

/// A `UserMessage` event's data.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct UserMessageEvent<'a> {
    /// Sequence number assigned by the originating port (>= 1).
    pub sequence_num: u64,
    /// The transferred ports, in order.
    pub ports: Vec<AttachedPort>,
    /// The serialized user message (section 5), parsed separately with
    /// [`crate::user_message::UserMessage::parse`].
    pub message: &'a [u8],
}

/// `ObserveProxyEventData` (64 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ObserveProxy {
    /// Node of the proxy to bypass.
    pub proxy_node_name: NodeName,
    /// The proxy port.
    pub proxy_port_name: PortName,
    /// Node of the proxy's peer.
    pub proxy_target_node_name: NodeName,
    /// The proxy's peer port.
    pub proxy_target_port_name: PortName,
}

/// `MergePortEventData` (112 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MergePort {
    /// Name of the new port on the receiver.
    pub new_port_name: PortName,
    /// How to create it.
    pub new_port_descriptor: PortDescriptor,
}

/// The data of an event, by type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EventData<'a> {
    /// Type 0.
    UserMessage(UserMessageEvent<'a>),
    /// Type 1 (no data).
    PortAccepted,
    /// Type 2.
    ObserveProxy(ObserveProxy),
    /// Type 3 (`u64::MAX` = retry).
    ObserveProxyAck {
        /// Last sequence number the acknowledging port sent.
        last_sequence_num: u64,
    },
    /// Type 4.
    ObserveClosure {
        /// Last user message number sent by the closed end.
        last_sequence_num: u64,
    },
    /// Type 5.
    MergePort(MergePort),
    /// Type 6.
    UserMessageReadAckRequest {
        /// Number to acknowledge once read.
        sequence_num_to_acknowledge: u64,
    },
    /// Type 7.
    UserMessageReadAck {
        /// Number read.
        sequence_num_acknowledged: u64,
    },
    /// Type 8 (extended mode).
    UpdatePreviousPeer {
        /// New predecessor node.
        new_node_name: NodeName,
        /// New predecessor port.
        new_port_name: PortName,
    },
    /// Any other type, data kept raw.
    Unknown {
        /// The type.
        event_type: EventType,
        /// Everything after the event header.
        data: &'a [u8],
    },
}

impl EventData<'_> {
    /// The event type.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::UserMessage(_) => EventType::USER_MESSAGE,
            Self::PortAccepted => EventType::PORT_ACCEPTED,
            Self::ObserveProxy(_) => EventType::OBSERVE_PROXY,
            Self::ObserveProxyAck { .. } => EventType::OBSERVE_PROXY_ACK,
            Self::ObserveClosure { .. } => EventType::OBSERVE_CLOSURE,
            Self::MergePort(_) => EventType::MERGE_PORT,
            Self::UserMessageReadAckRequest { .. } => EventType::USER_MESSAGE_READ_ACK_REQUEST,
            Self::UserMessageReadAck { .. } => EventType::USER_MESSAGE_READ_ACK,
            Self::UpdatePreviousPeer { .. } => EventType::UPDATE_PREVIOUS_PEER,
            Self::Unknown { event_type, .. } => *event_type,
        }
    }

    /// True for the variants whose data extends to the end of the event
    /// (`UserMessage`, `Unknown`), which therefore never have trailing bytes.
    pub fn is_open_ended(&self) -> bool {
        matches!(self, Self::UserMessage(_) | Self::Unknown { .. })
    }
}

/// A ports event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event<'a> {
    /// Destination port on the receiving node (invalid only for a broadcast
    /// `ObserveProxy`).
    pub port_name: PortName,
    /// Extended header fields; `Some` exactly when the event uses the 48-byte
    /// header.
    pub sender: Option<SenderInfo>,
    /// Type and data.
    pub data: EventData<'a>,
    /// Bytes after a fixed-size event's data (ignored by receivers; always
    /// empty for `UserMessage` and `Unknown`, whose data runs to the end).
    pub trailing: &'a [u8],
}

impl<'a> Event<'a> {
    /// A compact-header (libchrome) event without trailing bytes.
    pub fn new(port_name: PortName, data: EventData<'a>) -> Self {
        Self {
            port_name,
            sender: None,
            data,
            trailing: &[],
        }
    }

    /// The event's header form.
    pub fn form(&self) -> EventHeaderForm {
        if self.sender.is_some() {
            EventHeaderForm::Extended
        } else {
            EventHeaderForm::Compact
        }
    }

    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.data.event_type()
    }

    /// Parses an `EVENT_MESSAGE` body whose header has the given form, as
    /// `ports::Event::Deserialize` does: sizes and `num_ports` are checked;
    /// `event.padding`, `event.user_message_padding` and
    /// `port_descriptor.padding` are never read by Chromium and are ignored,
    /// and `peer_closed` is true for any non-zero byte.
    pub fn parse(bytes: &'a [u8], form: EventHeaderForm) -> Result<Self> {
        let mut r = Reader::new(bytes);
        r.need(
            form.len(),
            match form {
                EventHeaderForm::Compact => "event header (24 bytes)",
                EventHeaderForm::Extended => "event header (48 bytes)",
            },
        )?;
        let event_type = EventType(r.u32("event.type")?);
        r.padding(4, "event.padding")?;
        let port_name = r.name("event.port_name")?;
        let sender = match form {
            EventHeaderForm::Compact => None,
            EventHeaderForm::Extended => Some(SenderInfo {
                from_port: r.name("event.from_port")?,
                control_sequence_num: r.u64("event.control_sequence_num")?,
            }),
        };
        let data = match event_type {
            EventType::USER_MESSAGE => {
                r.need(USER_MESSAGE_EVENT_DATA_LEN, "UserMessage event data")?;
                let sequence_num = r.u64("event.sequence_num")?;
                let num_ports = r.u32("event.num_ports")?;
                r.padding(4, "event.user_message_padding")?;
                let need = (num_ports as usize).checked_mul(ATTACHED_PORT_LEN).ok_or(
                    Error::LimitExceeded {
                        field: "event.num_ports",
                        value: u64::from(num_ports),
                        limit: (usize::MAX / ATTACHED_PORT_LEN) as u64,
                    },
                )?;
                r.need(need, "UserMessage port descriptors and names")?;
                let mut descriptors = Vec::with_capacity(num_ports as usize);
                for _ in 0..num_ports {
                    descriptors.push(PortDescriptor::read(&mut r)?);
                }
                let mut ports = Vec::with_capacity(num_ports as usize);
                for descriptor in descriptors {
                    ports.push(AttachedPort {
                        descriptor,
                        name: r.name("event.port_names")?,
                    });
                }
                EventData::UserMessage(UserMessageEvent {
                    sequence_num,
                    ports,
                    message: r.rest(),
                })
            }
            EventType::PORT_ACCEPTED => EventData::PortAccepted,
            EventType::OBSERVE_PROXY => {
                r.need(64, "ObserveProxy event data")?;
                EventData::ObserveProxy(ObserveProxy {
                    proxy_node_name: r.name("observe_proxy.proxy_node_name")?,
                    proxy_port_name: r.name("observe_proxy.proxy_port_name")?,
                    proxy_target_node_name: r.name("observe_proxy.proxy_target_node_name")?,
                    proxy_target_port_name: r.name("observe_proxy.proxy_target_port_name")?,
                })
            }
            EventType::OBSERVE_PROXY_ACK => {
                r.need(8, "ObserveProxyAck event data")?;
                EventData::ObserveProxyAck {
                    last_sequence_num: r.u64("observe_proxy_ack.last_sequence_num")?,
                }
            }
            EventType::OBSERVE_CLOSURE => {
                r.need(8, "ObserveClosure event data")?;
                EventData::ObserveClosure {
                    last_sequence_num: r.u64("observe_closure.last_sequence_num")?,
                }
            }
            EventType::MERGE_PORT => {
                r.need(112, "MergePort event data")?;
                EventData::MergePort(MergePort {
                    new_port_name: r.name("merge_port.new_port_name")?,
                    new_port_descriptor: PortDescriptor::read(&mut r)?,
                })
            }
            EventType::USER_MESSAGE_READ_ACK_REQUEST => {
                r.need(8, "UserMessageReadAckRequest event data")?;
                EventData::UserMessageReadAckRequest {
                    sequence_num_to_acknowledge: r
                        .u64("user_message_read_ack_request.sequence_num_to_acknowledge")?,
                }
            }
            EventType::USER_MESSAGE_READ_ACK => {
                r.need(8, "UserMessageReadAck event data")?;
                EventData::UserMessageReadAck {
                    sequence_num_acknowledged: r
                        .u64("user_message_read_ack.sequence_num_acknowledged")?,
                }
            }
            EventType::UPDATE_PREVIOUS_PEER => {
                r.need(32, "UpdatePreviousPeer event data")?;
                EventData::UpdatePreviousPeer {
                    new_node_name: r.name("update_previous_peer.new_node_name")?,
                    new_port_name: r.name("update_previous_peer.new_port_name")?,
                }
            }
            event_type => EventData::Unknown {
                event_type,
                data: r.rest(),
            },
        };
        Ok(Self {
            port_name,
            sender,
            data,
            trailing: r.rest(),
        })
    }

    /// [`Event::parse`], then requires `bytes` to be the canonical encoding of
    /// the result (zero padding, `peer_closed` 0 or 1); any `Ok` re-encodes to
    /// exactly `bytes`. The user message part of a `UserMessage` event is kept
    /// raw (see [`crate::UserMessage::parse_exact`]). Fails with
    /// [`Error::NotCanonical`] otherwise.
    pub fn parse_exact(bytes: &'a [u8], form: EventHeaderForm) -> Result<Self> {
        let e = Self::parse(bytes, form)?;
        let mut out = Vec::with_capacity(bytes.len());
        e.encode(&mut out);
        require_canonical(bytes, &out, |o| e.field_at(o))?;
        Ok(e)
    }

    /// Appends the event header.
    fn write_header(&self, out: &mut Vec<u8>) {
        write_event_header(out, self.event_type(), self.port_name, self.sender);
    }

    /// Appends the serialized event (header, data, trailing bytes).
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.write_header(out);
        match &self.data {
            EventData::UserMessage(m) => {
                write_user_message_data(out, m.sequence_num, &m.ports);
                out.extend_from_slice(m.message);
            }
            EventData::PortAccepted => {}
            EventData::ObserveProxy(o) => {
                put_name(out, o.proxy_node_name);
                put_name(out, o.proxy_port_name);
                put_name(out, o.proxy_target_node_name);
                put_name(out, o.proxy_target_port_name);
            }
            EventData::ObserveProxyAck { last_sequence_num }
            | EventData::ObserveClosure { last_sequence_num } => put_u64(out, *last_sequence_num),
            EventData::MergePort(m) => {
                put_name(out, m.new_port_name);
                m.new_port_descriptor.write(out);
            }
            EventData::UserMessageReadAckRequest {
                sequence_num_to_acknowledge: n,
            }
            | EventData::UserMessageReadAck {
                sequence_num_acknowledged: n,
            } => put_u64(out, *n),
            EventData::UpdatePreviousPeer {
                new_node_name,
                new_port_name,
            } => {
                put_name(out, *new_node_name);
                put_name(out, *new_port_name);
            }
            EventData::Unknown { data, .. } => out.extend_from_slice(data),
        }
        out.extend_from_slice(self.trailing);
    }

    /// Appends a complete fresh channel message (`profile` header form,
    /// NodeChannel `EVENT_MESSAGE`, this event).
    pub fn encode_frame(
        &self,
        profile: Profile,
        num_handles: u16,
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let b = crate::channel::FrameBuilder::begin(out, &profile.normal_header(num_handles))?;
        put_u32(out, NodeMessageType::EVENT_MESSAGE.0);
        put_u32(out, 0);
        self.encode(out);
        b.finish(out)
    }

    /// Offset of the user message part within the encoded event, for
    /// `UserMessage` events.
    pub fn message_offset(&self) -> Option<usize> {
        match &self.data {
            EventData::UserMessage(m) => Some(
                self.form().len() + USER_MESSAGE_EVENT_DATA_LEN + ATTACHED_PORT_LEN * m.ports.len(),
            ),
            _ => None,
        }
    }

    /// Name of the field at `offset` of the encoded event, for diagnostics.
    /// Offsets inside a user message part return `"user_message"` (see
    /// [`Event::message_offset`]).
    pub fn field_at(&self, offset: usize) -> &'static str {
        let h = self.form().len();
        match offset {
            0..4 => return "event.type",
            4..8 => return "event.padding",
            8..24 => return "event.port_name",
            24..40 if h == 48 => return "event.from_port",
            40..48 if h == 48 => return "event.control_sequence_num",
            _ => {}
        }
        let o = offset - h;
        match &self.data {
            EventData::UserMessage(m) => {
                let descriptors_end = 16 + PORT_DESCRIPTOR_LEN * m.ports.len();
                let names_end = descriptors_end + 16 * m.ports.len();
                match o {
                    0..8 => "event.sequence_num",
                    8..12 => "event.num_ports",
                    12..16 => "event.user_message_padding",
                    o if o < descriptors_end => {
                        PortDescriptor::field_at((o - 16) % PORT_DESCRIPTOR_LEN)
                    }
                    o if o < names_end => "event.port_names",
                    _ => "user_message",
                }
            }
            EventData::PortAccepted => "event.trailing",
            EventData::ObserveProxy(_) => match o {
                0..16 => "observe_proxy.proxy_node_name",
                16..32 => "observe_proxy.proxy_port_name",
                32..48 => "observe_proxy.proxy_target_node_name",
                48..64 => "observe_proxy.proxy_target_port_name",
                _ => "event.trailing",
            },
            EventData::ObserveProxyAck { .. } if o < 8 => "observe_proxy_ack.last_sequence_num",
            EventData::ObserveClosure { .. } if o < 8 => "observe_closure.last_sequence_num",
            EventData::UserMessageReadAckRequest { .. } if o < 8 => {
                "user_message_read_ack_request.sequence_num_to_acknowledge"
            }
            EventData::UserMessageReadAck { .. } if o < 8 => {
                "user_message_read_ack.sequence_num_acknowledged"
            }
            EventData::MergePort(_) => match o {
                0..16 => "merge_port.new_port_name",
                16..112 => PortDescriptor::field_at(o - 16),
                _ => "event.trailing",
            },
            EventData::UpdatePreviousPeer { .. } => match o {
                0..16 => "update_previous_peer.new_node_name",
                16..32 => "update_previous_peer.new_port_name",
                _ => "event.trailing",
            },
            EventData::Unknown { .. } => "event.data",
            _ => "event.trailing",
        }
    }
}

pub(crate) fn write_event_header(
    out: &mut Vec<u8>,
    event_type: EventType,
    port_name: PortName,
    sender: Option<SenderInfo>,
) {
    put_u32(out, event_type.0);
    put_u32(out, 0);
    put_name(out, port_name);
    if let Some(s) = sender {
        put_name(out, s.from_port);
        put_u64(out, s.control_sequence_num);
    }
}

pub(crate) fn write_user_message_data(
    out: &mut Vec<u8>,
    sequence_num: u64,
    ports: &[AttachedPort],
) {
    put_u64(out, sequence_num);
    put_u32(out, len_u32(ports.len()));
    put_u32(out, 0);
    for p in ports {
        p.descriptor.write(out);
    }
    for p in ports {
        put_name(out, p.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::Name;

    #[test]
    fn compact_and_extended_round_trip() {
        for sender in [
            None,
            Some(SenderInfo {
                from_port: Name::new(3, 4),
                control_sequence_num: 7,
            }),
        ] {
            let e = Event {
                port_name: Name::new(1, 2),
                sender,
                data: EventData::ObserveClosure {
                    last_sequence_num: 30,
                },
                trailing: &[],
            };
            let mut out = Vec::new();
            e.encode(&mut out);
            assert_eq!(out.len(), e.form().len() + 8);
            assert_eq!(Event::parse(&out, e.form()).unwrap(), e);
        }
    }

    #[test]
    fn truncated_port_list_is_an_error() {
        let mut out = Vec::new();
        write_event_header(&mut out, EventType::USER_MESSAGE, Name::new(1, 1), None);
        put_u64(&mut out, 1);
        put_u32(&mut out, u32::MAX);
        put_u32(&mut out, 0);
        let e = Event::parse(&out, EventHeaderForm::Compact).unwrap_err();
        assert!(matches!(
            e,
            Error::Truncated { .. } | Error::LimitExceeded { .. }
        ));
    }

    #[test]
    fn unknown_events_keep_data() {
        let mut out = Vec::new();
        write_event_header(&mut out, EventType(77), Name::new(1, 1), None);
        out.extend_from_slice(&[1, 2, 3]);
        let e = Event::parse(&out, EventHeaderForm::Compact).unwrap();
        assert_eq!(
            e.data,
            EventData::Unknown {
                event_type: EventType(77),
                data: &[1, 2, 3]
            }
        );
        let mut again = Vec::new();
        e.encode(&mut again);
        assert_eq!(again, out);
    }

    #[test]
    fn padding_and_bools_are_lenient_but_not_exact() {
        let d = PortDescriptor {
            peer_closed: true,
            ..PortDescriptor::default()
        };
        let e = Event::new(
            Name::new(1, 1),
            EventData::MergePort(MergePort {
                new_port_name: Name::new(2, 2),
                new_port_descriptor: d,
            }),
        );
        let mut canonical = Vec::new();
        e.encode(&mut canonical);
        assert_eq!(
            Event::parse_exact(&canonical, EventHeaderForm::Compact),
            Ok(e.clone())
        );
        // peer_closed (offset 24 + 16 + 88) = 2 still reads as true.
        for (offset, value, field) in [
            (4, 9, "event.padding"),
            (24 + 16 + 88, 2, "port_descriptor.peer_closed"),
            (24 + 16 + 90, 1, "port_descriptor.padding"),
        ] {
            let mut b = canonical.clone();
            b[offset] = value;
            assert_eq!(Event::parse(&b, EventHeaderForm::Compact), Ok(e.clone()));
            assert_eq!(
                Event::parse_exact(&b, EventHeaderForm::Compact),
                Err(Error::NotCanonical { offset, field })
            );
        }
    }

    #[test]
    fn field_names() {
        let e = Event::new(
            Name::new(1, 1),
            EventData::UserMessage(UserMessageEvent {
                sequence_num: 1,
                ports: vec![AttachedPort::default()],
                message: &[0, 0, 0, 0, 8, 0, 0, 0],
            }),
        );
        assert_eq!(e.field_at(24), "event.sequence_num");
        assert_eq!(e.field_at(40 + 88), "port_descriptor.peer_closed");
        assert_eq!(e.field_at(40 + 96), "event.port_names");
        assert_eq!(e.message_offset(), Some(152));
        assert_eq!(e.field_at(152), "user_message");
    }
}
