//! Whole-frame decoding down to the deepest layer, with a byte-exact
//! re-encode check: what `mojo-dump --verify` and the vector tests run, and a
//! convenient one-call decoder for a bridge's logging.
//!
//! [`decode_frame`] decodes every layer with the lenient parsers (what a
//! Chromium receiver accepts); [`check_frame`] is the whole-frame exact
//! variant: it also re-encodes the decoded values and requires the very input
//! bytes back, so non-zero padding, a bool other than 0/1 or `header_size`
//! slack anywhere in the frame is reported as [`Fault::Differs`] naming the
//! field. Both are deliberately stricter than a Chromium receiver in one
//! more way: unknown type values at any layer, fd counts that disagree with
//! the content, and event port counts that disagree with the dispatchers are
//! all reported as a [`Fault`], because a frame only counts as understood
//! when every layer decoded.

use std::fmt;

use mojo_wire_kit::WireLayout;

use crate::broker::BrokerMessage;
use crate::channel::{ChannelHeader, ControlMessage, Frame, FrameBuilder};
use crate::codec::first_frame_difference;
use crate::error::Error;
use crate::event::write_node_event_header;
use crate::event::{Event, EventData};
use crate::layouts::NodeHeader;
use crate::node::NodeMessage;
use crate::profile::EventHeaderForm;
use crate::user_message::{Dispatcher, UserMessage, encode_user_message_event};

/// Which protocol a socket carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelRole {
    /// The bootstrap socket: broker messages.
    Broker,
    /// A node channel: NodeChannel messages and control messages.
    Node,
}

/// A frame decoded through every layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked<'a> {
    /// The channel header as received.
    pub header: ChannelHeader<'a>,
    /// The decoded content.
    pub content: Content<'a>,
}

/// What a checked frame carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content<'a> {
    /// A broker message (bootstrap socket).
    Broker(BrokerMessage<'a>),
    /// A channel control message.
    Control(ControlMessage<'a>),
    /// A NodeChannel message other than `EVENT_MESSAGE` and `BROADCAST_EVENT`.
    Node(NodeMessage<'a>),
    /// An `EVENT_MESSAGE`, with its user message decoded for `UserMessage`.
    Event {
        /// The event.
        event: Event<'a>,
        /// The decoded user message of a `UserMessage` event.
        user_message: Option<UserMessage<'a>>,
    },
    /// A `BROADCAST_EVENT` with its embedded event.
    Broadcast {
        /// The channel header of the embedded message.
        header: ChannelHeader<'a>,
        /// The embedded event.
        event: Event<'a>,
    },
}

/// Why a frame did not check out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A layer failed to parse (or was inconsistent).
    Layer {
        /// `"channel"`, `"broker message"`, `"node message"`, `"control message"`,
        /// `"event"`, `"broadcast event"` or `"user message"`.
        layer: &'static str,
        /// The parse error.
        error: Error,
    },
    /// A layer holds a type value this crate does not decode further.
    Unknown {
        /// The layer.
        layer: &'static str,
        /// The type field.
        field: &'static str,
        /// Its value.
        value: i64,
    },
    /// Re-encoding the decoded values gave different bytes: the frame is
    /// valid but not canonical (the whole-frame form of
    /// [`Error::NotCanonical`]).
    Differs {
        /// First differing frame offset (a `num_bytes` difference, which only
        /// follows the length, is reported where the length changed).
        offset: usize,
        /// The field at that offset.
        field: &'static str,
    },
}

impl Fault {
    /// The field concerned.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Layer { error, .. } => error.field(),
            Self::Unknown { field, .. } | Self::Differs { field, .. } => field,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Layer { layer, error } => write!(f, "{layer}: {error}"),
            Self::Unknown {
                layer,
                field,
                value,
            } => write!(f, "{layer}: unknown type {value} ({field})"),
            Self::Differs { offset, field } => {
                write!(f, "re-encode differs at byte {offset} ({field})")
            }
        }
    }
}

impl std::error::Error for Fault {}

fn layer(layer: &'static str) -> impl Fn(Error) -> Fault {
    move |error| Fault::Layer { layer, error }
}

fn mismatch(l: &'static str, field: &'static str, expected: u64, actual: u64) -> Fault {
    Fault::Layer {
        layer: l,
        error: Error::Mismatch {
            field,
            expected,
            actual,
        },
    }
}

/// Decodes one complete channel message (`bytes` is exactly the frame) down
/// to the deepest layer, then re-encodes it from the decoded values and
/// compares with `bytes`: any `Ok` re-encodes (with [`encode`]) to exactly
/// `bytes`. This is what `mojo-dump --verify` and the vector tests run.
pub fn check_frame(
    bytes: &[u8],
    role: ChannelRole,
    form: EventHeaderForm,
) -> Result<Checked<'_>, Fault> {
    let checked = decode_frame(bytes, role, form)?;
    let mut out = Vec::with_capacity(bytes.len());
    encode(&checked, &mut out).map_err(layer("channel"))?;
    if let Some(offset) = first_frame_difference(bytes, &out) {
        return Err(Fault::Differs {
            offset,
            field: field_at(&checked, offset),
        });
    }
    Ok(checked)
}

/// Decodes one complete channel message down to the deepest layer with the
/// lenient parsers (padding and reserved bytes ignored as Chromium ignores
/// them), still reporting unknown types and count mismatches as
/// [`check_frame`] does, but without the re-encode comparison.
pub fn decode_frame(
    bytes: &[u8],
    role: ChannelRole,
    form: EventHeaderForm,
) -> Result<Checked<'_>, Fault> {
    let frame = Frame::decode_whole(bytes).map_err(layer("channel"))?;
    decode(&frame, role, form)
}

fn decode<'a>(
    frame: &Frame<'a>,
    role: ChannelRole,
    form: EventHeaderForm,
) -> Result<Checked<'a>, Fault> {
    let header = frame.header;
    let num_handles = u64::from(header.num_handles());
    let t = header.message_type();
    let content = match role {
        ChannelRole::Broker => {
            if t.is_control() {
                return Err(Fault::Unknown {
                    layer: "channel",
                    field: "channel.message_type",
                    value: i64::from(t.0),
                });
            }
            let m = BrokerMessage::decode(frame.payload).map_err(layer("broker message"))?;
            if let BrokerMessage::Unknown { message_type, .. } = m {
                return Err(Fault::Unknown {
                    layer: "broker message",
                    field: "broker.type",
                    value: i64::from(message_type.0),
                });
            }
            let expected = u64::from(m.expected_handles());
            if num_handles != expected {
                return Err(mismatch(
                    "broker message",
                    "channel.num_handles",
                    expected,
                    num_handles,
                ));
            }
            Content::Broker(m)
        }
        ChannelRole::Node if t.is_control() => {
            let c = ControlMessage::decode(t, frame.payload).map_err(layer("control message"))?;
            if let ControlMessage::Unknown { message_type, .. } = c {
                return Err(Fault::Unknown {
                    layer: "control message",
                    field: "channel.message_type",
                    value: i64::from(message_type.0),
                });
            }
            Content::Control(c)
        }
        ChannelRole::Node => {
            let m = NodeMessage::decode(frame.payload).map_err(layer("node message"))?;
            m.check_handles(num_handles as usize)
                .map_err(layer("node message"))?;
            match m {
                NodeMessage::Unknown { message_type, .. } => {
                    return Err(Fault::Unknown {
                        layer: "node message",
                        field: "node.type",
                        value: i64::from(message_type.0),
                    });
                }
                NodeMessage::EventMessage(body) => decode_event(body, form, num_handles)?,
                NodeMessage::BroadcastEvent(raw) => {
                    if num_handles != 0 {
                        return Err(mismatch(
                            "node message",
                            "channel.num_handles",
                            0,
                            num_handles,
                        ));
                    }
                    let inner_header = Frame::decode_whole(raw)
                        .map_err(layer("broadcast event"))?
                        .header;
                    let inner = m
                        .broadcast_inner()
                        .map_err(layer("broadcast event"))?
                        .unwrap_or(&[]);
                    let event = Event::decode(inner, form).map_err(layer("broadcast event"))?;
                    if let EventData::Unknown { event_type, .. } = event.data {
                        return Err(Fault::Unknown {
                            layer: "broadcast event",
                            field: "event.type",
                            value: i64::from(event_type.0),
                        });
                    }
                    Content::Broadcast {
                        header: inner_header,
                        event,
                    }
                }
                NodeMessage::BrokerClientAdded(_)
                | NodeMessage::AcceptBrokerClient(_)
                | NodeMessage::Introduce(_)
                | NodeMessage::BindBrokerHost(_) => Content::Node(m),
                _ => {
                    if num_handles != 0 {
                        return Err(mismatch(
                            "node message",
                            "channel.num_handles",
                            0,
                            num_handles,
                        ));
                    }
                    Content::Node(m)
                }
            }
        }
    };
    Ok(Checked { header, content })
}

fn decode_event(
    body: &[u8],
    form: EventHeaderForm,
    num_handles: u64,
) -> Result<Content<'_>, Fault> {
    let event = Event::decode(body, form).map_err(layer("event"))?;
    let user_message = match &event.data {
        EventData::Unknown { event_type, .. } => {
            return Err(Fault::Unknown {
                layer: "event",
                field: "event.type",
                value: i64::from(event_type.0),
            });
        }
        EventData::UserMessage(u) => {
            let m = UserMessage::decode_checked(u.message, u.ports.len(), num_handles as usize)
                .map_err(layer("user message"))?;
            if let Some(Dispatcher::Unknown {
                dispatcher_type, ..
            }) = m
                .dispatchers
                .iter()
                .find(|d| matches!(d, Dispatcher::Unknown { .. }))
            {
                return Err(Fault::Unknown {
                    layer: "user message",
                    field: "dispatcher.type",
                    value: i64::from(dispatcher_type.0),
                });
            }
            if m.num_platform_handles() != num_handles {
                return Err(mismatch(
                    "user message",
                    "channel.num_handles",
                    m.num_platform_handles(),
                    num_handles,
                ));
            }
            if m.num_ports() != u.ports.len() as u64 {
                return Err(mismatch(
                    "user message",
                    "event.num_ports",
                    m.num_ports(),
                    u.ports.len() as u64,
                ));
            }
            Some(m)
        }
        _ => {
            if num_handles != 0 {
                return Err(mismatch("event", "channel.num_handles", 0, num_handles));
            }
            None
        }
    };
    Ok(Content::Event {
        event,
        user_message,
    })
}

/// Re-encodes a checked frame from its decoded values (user messages from
/// their decoded dispatchers, not from the received bytes).
pub fn encode(checked: &Checked<'_>, out: &mut Vec<u8>) -> Result<usize, Error> {
    let b = FrameBuilder::begin(out, &checked.header)?;
    match &checked.content {
        Content::Broker(m) => m.encode(out)?,
        Content::Control(c) => c.encode_payload(out)?,
        Content::Node(m) => m.encode(out)?,
        Content::Event {
            event,
            user_message,
        } => {
            write_node_event_header(out);
            match (&event.data, user_message) {
                (EventData::UserMessage(u), Some(m)) => {
                    encode_user_message_event(
                        out,
                        event.port_name,
                        event.sender,
                        u.sequence_num,
                        &u.ports,
                        m,
                    )?;
                    out.extend_from_slice(event.trailing);
                }
                _ => event.encode(out)?,
            }
        }
        Content::Broadcast { header, event } => {
            // The embedded message is rebuilt from its header and its
            // re-encoded event.
            let mut inner = Vec::new();
            let ib = FrameBuilder::begin(&mut inner, header)?;
            write_node_event_header(&mut inner);
            event.encode(&mut inner)?;
            ib.finish(&mut inner)?;
            NodeMessage::BroadcastEvent(&inner).encode(out)?;
        }
    }
    b.finish(out)
}

/// Name of the field at frame offset `offset` of a checked frame, down to the
/// deepest decoded layer.
pub fn field_at(checked: &Checked<'_>, offset: usize) -> &'static str {
    let hl = checked.header.len();
    if offset < hl {
        return checked.header.field_at(offset);
    }
    let p = offset - hl;
    match &checked.content {
        Content::Broker(m) => m.field_at(p),
        Content::Control(c) => c.field_at(p),
        Content::Node(m) => m.field_at(p),
        Content::Broadcast { .. } => NodeHeader::field_at(p).unwrap_or("broadcast_event.message"),
        Content::Event {
            event,
            user_message,
        } => match NodeHeader::field_at(p) {
            Some(name) => name,
            None => {
                let e = p - NodeHeader::SIZE;
                match (event.field_at(e), event.message_offset(), user_message) {
                    ("user_message", Some(mo), Some(m)) if e >= mo => m.field_at(e - mo),
                    (name, _, _) => name,
                }
            }
        },
    }
}
