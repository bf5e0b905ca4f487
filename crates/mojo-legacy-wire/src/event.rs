//! Ports events (spec 4.1-4.3 and 4.9): the event header in its compact
//! (24-byte) and extended (48-byte) forms, and every event's data.
//!
//! An event is the body of a NodeChannel `EVENT_MESSAGE`. The header form is
//! not self-describing: [`Event::decode`] takes an [`EventHeaderForm`], and a
//! parsed [`Event`] remembers it (`sender` is `Some` exactly for the extended
//! form), so re-encoding reproduces the input.

use mojo_wire_kit::le::{U32, U64};
use mojo_wire_kit::{WireLayout, protocol_enum};

use crate::codec::{Reader, Writer, len_u32, require_exact};
use crate::error::{Error, Result};
use crate::layouts::{
    CompactEventHeader, ExtendedEventHeader, MergePortBody, ObserveClosureBody,
    ObserveProxyAckBody, ObserveProxyBody, PortDescriptorBody, ReadAckBody, ReadAckRequestBody,
    UpdatePreviousPeerBody, UserMessageEventBody,
};
use crate::name::{NodeName, PortName, WireName, WireValue};
use crate::node::NodeMessageType;
use crate::profile::{EventHeaderForm, Profile};

/// Size of a serialized [`PortDescriptor`].
pub const PORT_DESCRIPTOR_LEN: usize = PortDescriptorBody::SIZE;
/// Size of `UserMessageEventData` (before descriptors and names).
pub const USER_MESSAGE_EVENT_DATA_LEN: usize = UserMessageEventBody::SIZE;
/// Bytes per attached port: a descriptor plus the port's new name.
pub const ATTACHED_PORT_LEN: usize = PORT_DESCRIPTOR_LEN + 16;

protocol_enum! {
    /// A ports event type (u32). Unknown values are kept (and ignored by Chromium).
    pub struct EventType(pub u32), unknown "EventType{}", debug wrapped {
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
    fn from_body(d: &PortDescriptorBody) -> Self {
        Self {
            peer_node_name: d.peer_node_name.into(),
            peer_port_name: d.peer_port_name.into(),
            referring_node_name: d.referring_node_name.into(),
            referring_port_name: d.referring_port_name.into(),
            next_sequence_num_to_send: d.next_sequence_num_to_send.get(),
            next_sequence_num_to_receive: d.next_sequence_num_to_receive.get(),
            last_sequence_num_to_receive: d.last_sequence_num_to_receive.get(),
            // A C++ bool copied without validation: any non-zero byte.
            peer_closed: d.peer_closed != 0,
        }
    }

    fn to_body(self) -> PortDescriptorBody {
        PortDescriptorBody {
            peer_node_name: self.peer_node_name.into(),
            peer_port_name: self.peer_port_name.into(),
            referring_node_name: self.referring_node_name.into(),
            referring_port_name: self.referring_port_name.into(),
            next_sequence_num_to_send: U64::new(self.next_sequence_num_to_send),
            next_sequence_num_to_receive: U64::new(self.next_sequence_num_to_receive),
            last_sequence_num_to_receive: U64::new(self.last_sequence_num_to_receive),
            peer_closed: u8::from(self.peer_closed),
            padding: [0; 7],
        }
    }

    fn field_at(offset: usize) -> &'static str {
        PortDescriptorBody::field_at(offset).unwrap_or("port_descriptor.padding")
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
    /// [`crate::user_message::UserMessage::decode`].
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

/// The fixed-size event data catalog: one line per event type whose data is
/// one layout (variant and fields, type constant, layout, what too-short
/// data is called), generating decode, encode and field names. Fields map
/// by name to the layout's fields through [`WireValue`].
macro_rules! event_catalog {
    (
        structs { $( $variant:ident { $($field:ident),* } = $ty:ident, $layout:ident, $what:literal; )* }
        tuples { $( $tvariant:ident($tstruct:ident { $($tfield:ident),* }) = $tty:ident, $tlayout:ident, $twhat:literal; )* }
    ) => {
        impl EventData<'_> {
            fn decode_fixed(t: EventType, r: &mut Reader<'_>) -> Result<Option<Self>> {
                Ok(Some(match t {
                    $( EventType::$ty => {
                        let b: $layout = r.layout_as($what)?;
                        Self::$variant { $( $field: WireValue::from_wire(b.$field), )* }
                    } )*
                    $( EventType::$tty => {
                        let b: $tlayout = r.layout_as($twhat)?;
                        Self::$tvariant($tstruct { $( $tfield: WireValue::from_wire(b.$tfield), )* })
                    } )*
                    _ => return Ok(None),
                }))
            }

            /// Writes the data of a catalog variant, or a non-catalog
            /// variant's raw data (`Unknown`); nothing for the others.
            fn encode_fixed(&self, w: &mut Writer<'_>) {
                match self {
                    $( Self::$variant { $($field),* } => w.layout(&$layout {
                        $( $field: $field.to_wire(), )*
                    }), )*
                    $( Self::$tvariant(v) => w.layout(&$tlayout {
                        $( $tfield: v.$tfield.to_wire(), )*
                    }), )*
                    Self::Unknown { data, .. } => w.bytes(data),
                    _ => {}
                }
            }

            fn fixed_field_at(&self, o: usize) -> Option<&'static str> {
                match self {
                    $( Self::$variant { .. } => $layout::field_at(o), )*
                    $( Self::$tvariant(_) => $tlayout::field_at(o), )*
                    _ => None,
                }
            }
        }
    };
}

event_catalog! {
    structs {
        ObserveProxyAck { last_sequence_num } = OBSERVE_PROXY_ACK, ObserveProxyAckBody,
            "ObserveProxyAck event data";
        ObserveClosure { last_sequence_num } = OBSERVE_CLOSURE, ObserveClosureBody,
            "ObserveClosure event data";
        UserMessageReadAckRequest { sequence_num_to_acknowledge } =
            USER_MESSAGE_READ_ACK_REQUEST, ReadAckRequestBody,
            "UserMessageReadAckRequest event data";
        UserMessageReadAck { sequence_num_acknowledged } = USER_MESSAGE_READ_ACK, ReadAckBody,
            "UserMessageReadAck event data";
        UpdatePreviousPeer { new_node_name, new_port_name } = UPDATE_PREVIOUS_PEER,
            UpdatePreviousPeerBody, "UpdatePreviousPeer event data";
    }
    tuples {
        ObserveProxy(ObserveProxy {
            proxy_node_name, proxy_port_name, proxy_target_node_name, proxy_target_port_name
        }) = OBSERVE_PROXY, ObserveProxyBody, "ObserveProxy event data";
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

    /// Decodes an `EVENT_MESSAGE` body whose header has the given form, as
    /// `ports::Event::Deserialize` does: sizes and `num_ports` are checked;
    /// `event.padding`, `event.user_message_padding` and
    /// `port_descriptor.padding` are never read by Chromium and are ignored,
    /// and `peer_closed` is true for any non-zero byte.
    pub fn decode(bytes: &'a [u8], form: EventHeaderForm) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let (event_type, port_name, sender) = match form {
            EventHeaderForm::Compact => {
                let h: CompactEventHeader = r.layout_as("event header (24 bytes)")?;
                (h.event_type.get(), h.port_name.into(), None)
            }
            EventHeaderForm::Extended => {
                let h: ExtendedEventHeader = r.layout_as("event header (48 bytes)")?;
                let sender = SenderInfo {
                    from_port: h.from_port.into(),
                    control_sequence_num: h.control_sequence_num.get(),
                };
                (h.event_type.get(), h.port_name.into(), Some(sender))
            }
        };
        let data = match EventType(event_type) {
            EventType::USER_MESSAGE => {
                let body: UserMessageEventBody = r.layout_as("UserMessage event data")?;
                let num_ports = body.num_ports.get();
                let need = (num_ports as usize).checked_mul(ATTACHED_PORT_LEN).ok_or(
                    Error::LimitExceeded {
                        field: "event.num_ports",
                        value: u64::from(num_ports),
                        limit: (usize::MAX / ATTACHED_PORT_LEN) as u64,
                    },
                )?;
                r.need(need, "UserMessage port descriptors and names")?;
                let n = num_ports as usize;
                let descriptors = r.slice_of::<PortDescriptorBody>(n, "port descriptor")?;
                let names = r.slice_of::<WireName>(n, "event.port_names")?;
                let ports = descriptors
                    .iter()
                    .zip(names)
                    .map(|(d, name)| AttachedPort {
                        descriptor: PortDescriptor::from_body(d),
                        name: (*name).into(),
                    })
                    .collect();
                EventData::UserMessage(UserMessageEvent {
                    sequence_num: body.sequence_num.get(),
                    ports,
                    message: r.rest(),
                })
            }
            EventType::PORT_ACCEPTED => EventData::PortAccepted,
            EventType::MERGE_PORT => {
                let b: MergePortBody = r.layout_as("MergePort event data")?;
                EventData::MergePort(MergePort {
                    new_port_name: b.new_port_name.into(),
                    new_port_descriptor: PortDescriptor::from_body(&b.new_port_descriptor),
                })
            }
            t => match EventData::decode_fixed(t, &mut r)? {
                Some(data) => data,
                None => EventData::Unknown {
                    event_type: t,
                    data: r.rest(),
                },
            },
        };
        Ok(Self {
            port_name,
            sender,
            data,
            trailing: r.rest(),
        })
    }

    /// [`Event::decode`], then requires `bytes` to be the canonical encoding
    /// of the result (zero padding, `peer_closed` 0 or 1); any `Ok` re-encodes
    /// to exactly `bytes`. The user message part of a `UserMessage` event is
    /// kept raw (see [`crate::user_message::UserMessage::decode_exact`]). Fails with
    /// [`Error::NotCanonical`] otherwise.
    pub fn decode_exact(bytes: &'a [u8], form: EventHeaderForm) -> Result<Self> {
        let e = Self::decode(bytes, form)?;
        let mut out = Vec::with_capacity(bytes.len());
        e.encode(&mut out)?;
        require_exact(bytes, &out, |o| e.field_at(o))?;
        Ok(e)
    }

    /// Appends the serialized event (header, data, trailing bytes).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        mojo_wire_kit::append_or_rollback(out, |w| {
            write_event_header(w, self.event_type(), self.port_name, self.sender);
            match &self.data {
                EventData::UserMessage(m) => {
                    write_user_message_data(w, m.sequence_num, &m.ports)?;
                    w.bytes(m.message);
                }
                EventData::MergePort(m) => w.layout(&MergePortBody {
                    new_port_name: m.new_port_name.into(),
                    new_port_descriptor: m.new_port_descriptor.to_body(),
                }),
                EventData::PortAccepted => {}
                fixed => fixed.encode_fixed(w),
            }
            w.bytes(self.trailing);
            Ok(())
        })
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
        write_node_event_header(out);
        self.encode(out)?;
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
        let header = match self.form() {
            EventHeaderForm::Compact => CompactEventHeader::field_at(offset),
            EventHeaderForm::Extended => ExtendedEventHeader::field_at(offset),
        };
        if let Some(name) = header {
            return name;
        }
        let o = offset - h;
        let fixed = match &self.data {
            EventData::UserMessage(m) => return user_message_field_at(o, m.ports.len()),
            EventData::Unknown { .. } => return "event.data",
            EventData::PortAccepted => None,
            EventData::MergePort(_) => match MergePortBody::field_at(o) {
                Some("merge_port.new_port_descriptor") => {
                    Some(PortDescriptor::field_at(o - NodeName::LEN))
                }
                other => other,
            },
            fixed => fixed.fixed_field_at(o),
        };
        fixed.unwrap_or("event.trailing")
    }
}

/// Field names of a `UserMessage` event's data (`o` after the event header).
fn user_message_field_at(o: usize, num_ports: usize) -> &'static str {
    if let Some(name) = UserMessageEventBody::field_at(o) {
        return name;
    }
    let descriptors_end = USER_MESSAGE_EVENT_DATA_LEN + PORT_DESCRIPTOR_LEN * num_ports;
    let names_end = descriptors_end + PortName::LEN * num_ports;
    match o {
        o if o < descriptors_end => {
            PortDescriptor::field_at((o - USER_MESSAGE_EVENT_DATA_LEN) % PORT_DESCRIPTOR_LEN)
        }
        o if o < names_end => "event.port_names",
        _ => "user_message",
    }
}

/// The NodeChannel header of an `EVENT_MESSAGE`.
pub(crate) fn write_node_event_header(out: &mut Vec<u8>) {
    Writer::new(out).layout(&crate::layouts::NodeHeader {
        message_type: U32::new(NodeMessageType::EVENT_MESSAGE.0),
        padding: [0; 4],
    });
}

pub(crate) fn write_event_header(
    w: &mut Writer<'_>,
    event_type: EventType,
    port_name: PortName,
    sender: Option<SenderInfo>,
) {
    match sender {
        None => w.layout(&CompactEventHeader {
            event_type: U32::new(event_type.0),
            padding: [0; 4],
            port_name: port_name.into(),
        }),
        Some(s) => w.layout(&ExtendedEventHeader {
            event_type: U32::new(event_type.0),
            padding: [0; 4],
            port_name: port_name.into(),
            from_port: s.from_port.into(),
            control_sequence_num: U64::new(s.control_sequence_num),
        }),
    }
}

pub(crate) fn write_user_message_data(
    w: &mut Writer<'_>,
    sequence_num: u64,
    ports: &[AttachedPort],
) -> Result<()> {
    w.layout(&UserMessageEventBody {
        sequence_num: U64::new(sequence_num),
        num_ports: U32::new(len_u32("event.num_ports", ports.len())?),
        padding: [0; 4],
    });
    for p in ports {
        w.layout(&p.descriptor.to_body());
    }
    for p in ports {
        w.layout(&WireName::from(p.name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Writer;

    #[test]
    fn compact_and_extended_round_trip() {
        for sender in [
            None,
            Some(SenderInfo {
                from_port: PortName::new(3, 4),
                control_sequence_num: 7,
            }),
        ] {
            let e = Event {
                port_name: PortName::new(1, 2),
                sender,
                data: EventData::ObserveClosure {
                    last_sequence_num: 30,
                },
                trailing: &[],
            };
            let mut out = Vec::new();
            e.encode(&mut out).unwrap();
            assert_eq!(out.len(), e.form().len() + 8);
            assert_eq!(Event::decode(&out, e.form()).unwrap(), e);
        }
    }

    #[test]
    fn truncated_port_list_is_an_error() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        write_event_header(&mut w, EventType::USER_MESSAGE, PortName::new(1, 1), None);
        w.u64(1);
        w.u32(u32::MAX);
        w.u32(0);
        let e = Event::decode(&out, EventHeaderForm::Compact).unwrap_err();
        assert!(matches!(
            e,
            Error::Truncated { .. } | Error::LimitExceeded { .. }
        ));
    }

    #[test]
    fn unknown_events_keep_data() {
        let mut out = Vec::new();
        write_event_header(
            &mut Writer::new(&mut out),
            EventType(77),
            PortName::new(1, 1),
            None,
        );
        out.extend_from_slice(&[1, 2, 3]);
        let e = Event::decode(&out, EventHeaderForm::Compact).unwrap();
        assert_eq!(
            e.data,
            EventData::Unknown {
                event_type: EventType(77),
                data: &[1, 2, 3]
            }
        );
        let mut again = Vec::new();
        e.encode(&mut again).unwrap();
        assert_eq!(again, out);
    }

    #[test]
    fn padding_and_bools_are_lenient_but_not_exact() {
        let d = PortDescriptor {
            peer_closed: true,
            ..PortDescriptor::default()
        };
        let e = Event::new(
            PortName::new(1, 1),
            EventData::MergePort(MergePort {
                new_port_name: PortName::new(2, 2),
                new_port_descriptor: d,
            }),
        );
        let mut canonical = Vec::new();
        e.encode(&mut canonical).unwrap();
        assert_eq!(
            Event::decode_exact(&canonical, EventHeaderForm::Compact),
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
            assert_eq!(Event::decode(&b, EventHeaderForm::Compact), Ok(e.clone()));
            assert_eq!(
                Event::decode_exact(&b, EventHeaderForm::Compact),
                Err(Error::NotCanonical { offset, field })
            );
        }
    }

    #[test]
    fn field_names() {
        let e = Event::new(
            PortName::new(1, 1),
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
