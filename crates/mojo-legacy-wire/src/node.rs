//! NodeChannel messages (spec section 3): the 8-byte NodeChannel header
//! (`type u32, padding u32`) and every message body.
//!
//! Bodies that grew a version keep the version they arrived in: the V1 fields
//! are an `Option` (`None` = the shorter V0 body), and bytes after the newest
//! layout are kept in `trailing` so that re-encoding is exact. Fresh messages
//! should use the newest layout (`Some`) with empty `trailing`.

use mojo_wire_kit::le::{U32, U64};
use mojo_wire_kit::{WireLayout, protocol_enum};

use crate::channel::{ChannelHeader, ControlMessage, Frame, FrameBuilder};
use crate::codec::{Reader, Writer, require_exact, require_exact_frame};
use crate::error::{Error, Result};
use crate::layouts::{
    AcceptBrokerClientBody, AcceptInvitationBody, AcceptInviteeBody, AcceptPeerBody,
    AddBrokerClientBody, BindBrokerHostBody, BrokerClientAddedBody, IntroductionBody, NodeHeader,
    RequestPortMergeBody,
};
use crate::name::{NodeName, PortName, Token, WireValue};
use crate::profile::Profile;

/// Size of the NodeChannel header.
pub const NODE_HEADER_LEN: usize = 8;

protocol_enum! {
    /// A NodeChannel message type (u32, POSIX numbering). Unknown values are kept
    /// (and ignored by Chromium receivers).
    pub struct NodeMessageType(pub u32), unknown "NODE_TYPE_{}", debug wrapped {
        /// 0: broker -> client, first message of the invitation.
        ACCEPT_INVITEE = 0 => "ACCEPT_INVITEE",
        /// 1: client -> broker, answer to `ACCEPT_INVITEE`.
        ACCEPT_INVITATION = 1 => "ACCEPT_INVITATION",
        /// 2: client -> broker, the client invited a child of its own.
        ADD_BROKER_CLIENT = 2 => "ADD_BROKER_CLIENT",
        /// 3: broker -> client, answer to 2 (1 fd).
        BROKER_CLIENT_ADDED = 3 => "BROKER_CLIENT_ADDED",
        /// 4: broker -> client, completes the handshake.
        ACCEPT_BROKER_CLIENT = 4 => "ACCEPT_BROKER_CLIENT",
        /// 5: both ways, a serialized ports event.
        EVENT_MESSAGE = 5 => "EVENT_MESSAGE",
        /// 6: client -> broker, connect an invitation attachment.
        REQUEST_PORT_MERGE = 6 => "REQUEST_PORT_MERGE",
        /// 7: client -> broker, asks for a channel to another node.
        REQUEST_INTRODUCTION = 7 => "REQUEST_INTRODUCTION",
        /// 8: broker -> client, answer to 7 (0 or 1 fd).
        INTRODUCE = 8 => "INTRODUCE",
        /// 9: client -> broker, a complete channel message to broadcast.
        BROADCAST_EVENT = 9 => "BROADCAST_EVENT",
        /// 10: isolated connections only.
        ACCEPT_PEER = 10 => "ACCEPT_PEER",
        /// 11: client -> broker, async invitations only (1 fd).
        BIND_BROKER_HOST = 11 => "BIND_BROKER_HOST",
    }
}

bitflags::bitflags! {
    /// Node capability bits (u64). Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct NodeCapabilities: u64 {
        /// `kNodeCapabilitySupportsUpgrade`: the channel upgrade of spec 1.6.
        const SUPPORTS_UPGRADE = 1;
    }
}

impl NodeCapabilities {
    /// `kNodeCapabilityNone`; what the broker should advertise.
    pub const NONE: Self = Self::empty();
}

/// `AcceptInviteeData` (V0 32 bytes, V1 40).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AcceptInvitee<'a> {
    /// The inviter's node name.
    pub inviter_name: NodeName,
    /// The invitation token (also the invitee's temporary name).
    pub token: Token,
    /// V1: the sender's capabilities; `None` for a V0 body.
    pub capabilities: Option<NodeCapabilities>,
    /// Bytes after the body.
    pub trailing: &'a [u8],
}

/// `AcceptInvitationData` (V0 32 bytes, V1 40).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AcceptInvitation<'a> {
    /// Must equal the token of `ACCEPT_INVITEE`.
    pub token: Token,
    /// The invitee's real node name.
    pub invitee_name: NodeName,
    /// V1: the sender's capabilities; `None` for a V0 body.
    pub capabilities: Option<NodeCapabilities>,
    /// Bytes after the body.
    pub trailing: &'a [u8],
}

/// `AddBrokerClientData` (24 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddBrokerClient<'a> {
    /// The sender's own invitee.
    pub client_name: NodeName,
    /// POSIX: pid or 0 (ignored).
    pub process_handle: u32,
    /// Bytes after the body.
    pub trailing: &'a [u8],
}

/// `BrokerClientAddedData` (16 bytes; the message carries exactly 1 fd).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BrokerClientAdded<'a> {
    /// The client that was added.
    pub client_name: NodeName,
    /// Bytes after the body.
    pub trailing: &'a [u8],
}

/// V1 fields of `AcceptBrokerClientData`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct BrokerClientCapabilities {
    /// The sender's capabilities.
    pub capabilities: NodeCapabilities,
    /// The broker's capabilities.
    pub broker_capabilities: NodeCapabilities,
}

/// `AcceptBrokerClientData` (V0 16 bytes, V1 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AcceptBrokerClient<'a> {
    /// The broker's node name; must be valid.
    pub broker_name: NodeName,
    /// V1 fields; `None` for a V0 body.
    pub capabilities: Option<BrokerClientCapabilities>,
    /// Bytes after the body.
    pub trailing: &'a [u8],
}

/// `RequestPortMergeData` plus the attachment name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestPortMerge<'a> {
    /// The sender's connector port.
    pub connector_port_name: PortName,
    /// The attachment name bytes (at least 1; no terminator, no padding).
    pub token: &'a [u8],
}

/// `IntroductionData` (V0 16 bytes, V1 24), for `REQUEST_INTRODUCTION` and
/// `INTRODUCE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Introduction<'a> {
    /// The node to be introduced.
    pub name: NodeName,
    /// V1: that node's capabilities; `None` for a V0 body.
    pub capabilities: Option<NodeCapabilities>,
    /// Bytes after the body.
    pub trailing: &'a [u8],
}

/// `AcceptPeerData` (48 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AcceptPeer<'a> {
    /// Random per-side token.
    pub token: Token,
    /// The sender's node name.
    pub peer_name: NodeName,
    /// The sender's port to merge.
    pub port_name: PortName,
    /// Bytes after the body.
    pub trailing: &'a [u8],
}

/// `BindBrokerHostData` (8 zero bytes; the message carries exactly 1 fd).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct BindBrokerHost<'a> {
    /// Bytes after the 8 zero bytes.
    pub trailing: &'a [u8],
}

/// A NodeChannel message: the payload of a `NORMAL`/`NORMAL_LEGACY` channel
/// message on a node channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeMessage<'a> {
    /// `ACCEPT_INVITEE`.
    AcceptInvitee(AcceptInvitee<'a>),
    /// `ACCEPT_INVITATION`.
    AcceptInvitation(AcceptInvitation<'a>),
    /// `ADD_BROKER_CLIENT`.
    AddBrokerClient(AddBrokerClient<'a>),
    /// `BROKER_CLIENT_ADDED`.
    BrokerClientAdded(BrokerClientAdded<'a>),
    /// `ACCEPT_BROKER_CLIENT`.
    AcceptBrokerClient(AcceptBrokerClient<'a>),
    /// `EVENT_MESSAGE`: the serialized ports event, parsed separately with
    /// [`crate::event::Event::decode`] (a bad event is dropped, not fatal).
    EventMessage(&'a [u8]),
    /// `REQUEST_PORT_MERGE`.
    RequestPortMerge(RequestPortMerge<'a>),
    /// `REQUEST_INTRODUCTION`.
    RequestIntroduction(Introduction<'a>),
    /// `INTRODUCE`.
    Introduce(Introduction<'a>),
    /// `BROADCAST_EVENT`: a complete serialized channel message
    /// (see [`NodeMessage::broadcast_inner`]).
    BroadcastEvent(&'a [u8]),
    /// `ACCEPT_PEER`.
    AcceptPeer(AcceptPeer<'a>),
    /// `BIND_BROKER_HOST`.
    BindBrokerHost(BindBrokerHost<'a>),
    /// Any other type, body kept raw (Chromium ignores these).
    Unknown {
        /// The type.
        message_type: NodeMessageType,
        /// The body after the NodeChannel header.
        body: &'a [u8],
    },
}

/// A fixed NodeChannel body: its layout (declared once in
/// [`crate::layouts`], at its newest version) and the conversion to and from
/// the typed value. Decoding, encoding and field names of every such body go
/// through [`decode_body`], [`encode_body`] and the layout's field table.
trait NodeBody<'a>: Sized {
    /// The body at its newest version.
    type Layout: WireLayout;
    /// Size of the oldest version (the least a receiver accepts).
    const V0_LEN: usize;
    /// Builds the value from the layout; `v1` says whether the sender sent
    /// the bytes after `V0_LEN` (otherwise they read as zero).
    fn from_layout(l: &Self::Layout, v1: bool, trailing: &'a [u8]) -> Self;
    /// The layout, whether the V1 part is present, and the trailing bytes.
    fn to_layout(&self) -> (Self::Layout, bool, &'a [u8]);
}

/// Decodes a versioned fixed body: at least `V0_LEN` bytes (else
/// `Truncated { what }`), the newest version if it fits, the rest trailing.
fn decode_body<'a, T: NodeBody<'a>>(r: &mut Reader<'a>, what: &'static str) -> Result<T> {
    r.need(T::V0_LEN, what)?;
    let v1 = r.remaining() >= T::Layout::SIZE;
    let len = if v1 { T::Layout::SIZE } else { T::V0_LEN };
    let layout = T::Layout::from_zero_extended(r.take(len, what)?);
    Ok(T::from_layout(&layout, v1, r.rest()))
}

fn encode_body<'a, T: NodeBody<'a>>(body: &T, w: &mut Writer<'_>) {
    let (layout, v1, trailing) = body.to_layout();
    let bytes = layout.wire_bytes();
    let len = if v1 { T::Layout::SIZE } else { T::V0_LEN };
    w.bytes(bytes.get(..len).unwrap_or(bytes));
    w.bytes(trailing);
}

fn caps(v: U64, present: bool) -> Option<NodeCapabilities> {
    present.then(|| NodeCapabilities::from_bits_retain(v.get()))
}

fn caps_wire(c: Option<NodeCapabilities>) -> U64 {
    U64::new(c.map_or(0, |c| c.bits()))
}

/// Implements [`NodeBody`] from one line per body: the typed struct, its
/// layout, the V0 size, the fields both share (converted with
/// [`WireValue`]), the optional V1 capabilities field, a padding field the
/// typed value does not hold, and the field that keeps the bytes after the
/// body.
macro_rules! node_bodies {
    ($(
        $ty:ident: $layout:ident, v0 $v0:literal { $($field:ident),* }
        $(v1 $v1:ident)? $(pad $pad:ident)?, rest $rest:ident;
    )*) => {
        $(
            impl<'a> NodeBody<'a> for $ty<'a> {
                type Layout = $layout;
                const V0_LEN: usize = $v0;
                fn from_layout(l: &Self::Layout, _v1: bool, rest: &'a [u8]) -> Self {
                    Self {
                        $( $field: WireValue::from_wire(l.$field), )*
                        $( $v1: caps(l.$v1, _v1), )?
                        $rest: rest,
                    }
                }
                fn to_layout(&self) -> (Self::Layout, bool, &'a [u8]) {
                    let l = $layout {
                        $( $field: self.$field.to_wire(), )*
                        $( $v1: caps_wire(self.$v1), )?
                        $( $pad: Default::default(), )?
                    };
                    (l, node_bodies!(@v1 self $($v1)?), self.$rest)
                }
            }
        )*
    };
    (@v1 $self:ident) => { true };
    (@v1 $self:ident $v1:ident) => { $self.$v1.is_some() };
}

node_bodies! {
    AcceptInvitee: AcceptInviteeBody, v0 32 { inviter_name, token } v1 capabilities, rest trailing;
    AcceptInvitation: AcceptInvitationBody, v0 32 { token, invitee_name } v1 capabilities,
        rest trailing;
    AddBrokerClient: AddBrokerClientBody, v0 24 { client_name, process_handle } pad padding,
        rest trailing;
    BrokerClientAdded: BrokerClientAddedBody, v0 16 { client_name }, rest trailing;
    RequestPortMerge: RequestPortMergeBody, v0 16 { connector_port_name }, rest token;
    Introduction: IntroductionBody, v0 16 { name } v1 capabilities, rest trailing;
    AcceptPeer: AcceptPeerBody, v0 48 { token, peer_name, port_name }, rest trailing;
}

// Its V1 part is two fields in one `Option`, so it is written out.
impl<'a> NodeBody<'a> for AcceptBrokerClient<'a> {
    type Layout = AcceptBrokerClientBody;
    const V0_LEN: usize = 16;
    fn from_layout(l: &Self::Layout, v1: bool, trailing: &'a [u8]) -> Self {
        Self {
            broker_name: l.broker_name.into(),
            capabilities: v1.then(|| BrokerClientCapabilities {
                capabilities: NodeCapabilities::from_bits_retain(l.capabilities.get()),
                broker_capabilities: NodeCapabilities::from_bits_retain(
                    l.broker_capabilities.get(),
                ),
            }),
            trailing,
        }
    }
    fn to_layout(&self) -> (Self::Layout, bool, &'a [u8]) {
        let c = self.capabilities.unwrap_or_default();
        let l = AcceptBrokerClientBody {
            broker_name: self.broker_name.into(),
            capabilities: U64::new(c.capabilities.bits()),
            broker_capabilities: U64::new(c.broker_capabilities.bits()),
        };
        (l, self.capabilities.is_some(), self.trailing)
    }
}

/// The NodeChannel message catalog: one line per message type with a fixed
/// body (variant, body type, type constant, what a too-short body is
/// called), generating the decode, encode and field-name dispatch. The
/// open-ended bodies (events, broadcasts, `BIND_BROKER_HOST`, unknown
/// types) are handled beside it.
macro_rules! node_catalog {
    ($( $variant:ident($body:ident) = $ty:ident, $what:literal; )*) => {
        impl<'a> NodeMessage<'a> {
            fn decode_fixed(t: NodeMessageType, r: &mut Reader<'a>) -> Result<Option<Self>> {
                Ok(Some(match t {
                    $( NodeMessageType::$ty => Self::$variant(decode_body::<$body<'a>>(r, $what)?), )*
                    _ => return Ok(None),
                }))
            }

            fn encode_fixed(&self, w: &mut Writer<'_>) -> bool {
                match self {
                    $( Self::$variant(b) => encode_body(b, w), )*
                    _ => return false,
                }
                true
            }

            fn fixed_field_at(&self, o: usize) -> Option<Option<&'static str>> {
                Some(match self {
                    $( Self::$variant(_) => <$body<'a> as NodeBody<'a>>::Layout::field_at(o), )*
                    _ => return None,
                })
            }

            /// The message type.
            pub fn message_type(&self) -> NodeMessageType {
                match self {
                    $( Self::$variant(_) => NodeMessageType::$ty, )*
                    Self::EventMessage(_) => NodeMessageType::EVENT_MESSAGE,
                    Self::BroadcastEvent(_) => NodeMessageType::BROADCAST_EVENT,
                    Self::BindBrokerHost(_) => NodeMessageType::BIND_BROKER_HOST,
                    Self::Unknown { message_type, .. } => *message_type,
                }
            }
        }
    };
}

node_catalog! {
    AcceptInvitee(AcceptInvitee) = ACCEPT_INVITEE, "ACCEPT_INVITEE body";
    AcceptInvitation(AcceptInvitation) = ACCEPT_INVITATION, "ACCEPT_INVITATION body";
    AddBrokerClient(AddBrokerClient) = ADD_BROKER_CLIENT, "ADD_BROKER_CLIENT body";
    BrokerClientAdded(BrokerClientAdded) = BROKER_CLIENT_ADDED, "BROKER_CLIENT_ADDED body";
    AcceptBrokerClient(AcceptBrokerClient) = ACCEPT_BROKER_CLIENT, "ACCEPT_BROKER_CLIENT body";
    RequestPortMerge(RequestPortMerge) = REQUEST_PORT_MERGE,
        "REQUEST_PORT_MERGE body (port name and a non-empty token)";
    RequestIntroduction(Introduction) = REQUEST_INTRODUCTION, "REQUEST_INTRODUCTION body";
    Introduce(Introduction) = INTRODUCE, "INTRODUCE body";
    AcceptPeer(AcceptPeer) = ACCEPT_PEER, "ACCEPT_PEER body";
}

impl<'a> NodeMessage<'a> {
    /// Decodes a channel payload as a NodeChannel message, as
    /// `NodeChannel::OnChannelMessage` does. A payload of 8 bytes or less, or
    /// a known body shorter than its oldest layout, is an error (fatal for a
    /// Chromium receiver). Padding and reserved bytes (`node.padding`,
    /// `add_broker_client.padding`, `bind_broker_host.reserved`) are never
    /// read by Chromium and are ignored; `BIND_BROKER_HOST` needs no body size
    /// beyond the general "more than the 8-byte header".
    pub fn decode(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        r.need(
            NODE_HEADER_LEN + 1,
            "NodeChannel message (header and a body)",
        )?;
        let header: NodeHeader = r.layout()?;
        let message_type = NodeMessageType(header.message_type.get());
        if message_type == NodeMessageType::REQUEST_PORT_MERGE {
            // The token must not be empty.
            r.need(
                17,
                "REQUEST_PORT_MERGE body (port name and a non-empty token)",
            )?;
        }
        if let Some(m) = Self::decode_fixed(message_type, &mut r)? {
            return Ok(m);
        }
        Ok(match message_type {
            NodeMessageType::EVENT_MESSAGE => Self::EventMessage(r.rest()),
            NodeMessageType::BROADCAST_EVENT => Self::BroadcastEvent(r.rest()),
            NodeMessageType::BIND_BROKER_HOST => {
                // Chromium only checks the fd count; a body shorter than the
                // 8 reserved bytes is accepted (and re-encodes to 8 zeros).
                let reserved = r.remaining().min(BindBrokerHostBody::SIZE);
                r.padding(reserved, "bind_broker_host.reserved")?;
                Self::BindBrokerHost(BindBrokerHost { trailing: r.rest() })
            }
            message_type => Self::Unknown {
                message_type,
                body: r.rest(),
            },
        })
    }

    /// [`NodeMessage::decode`], then requires `payload` to be the canonical
    /// encoding of the result (zero padding and reserved bytes, an 8-byte
    /// `BIND_BROKER_HOST` body); any `Ok` re-encodes to exactly `payload`.
    /// Event and broadcast bodies are kept raw and not examined here (see
    /// [`crate::event::Event::decode_exact`], [`crate::verify::check_frame`]). Fails
    /// with [`Error::NotCanonical`] otherwise.
    pub fn decode_exact(payload: &'a [u8]) -> Result<Self> {
        let m = Self::decode(payload)?;
        let mut out = Vec::with_capacity(payload.len());
        m.encode(&mut out)?;
        require_exact(payload, &out, |o| m.field_at(o))?;
        Ok(m)
    }

    /// Appends the NodeChannel header and body (no channel header).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let mut w = Writer::new(out);
        w.layout(&NodeHeader {
            message_type: U32::new(self.message_type().0),
            padding: [0; 4],
        });
        if !self.encode_fixed(&mut w) {
            match self {
                Self::EventMessage(body) | Self::BroadcastEvent(body) => w.bytes(body),
                Self::BindBrokerHost(m) => {
                    w.layout(&BindBrokerHostBody { reserved: [0; 8] });
                    w.bytes(m.trailing);
                }
                Self::Unknown { body, .. } => w.bytes(body),
                _ => {}
            }
        }
        Ok(())
    }

    /// Appends a complete fresh channel message in `profile`'s header form.
    pub fn encode_frame(
        &self,
        profile: Profile,
        num_handles: u16,
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let b = FrameBuilder::begin(out, &profile.normal_header(num_handles))?;
        self.encode(out)?;
        b.finish(out)
    }

    /// Checks the fd count rules a Chromium receiver applies (spec 6.1):
    /// `BROKER_CLIENT_ADDED` and `BIND_BROKER_HOST` need exactly 1,
    /// `ACCEPT_BROKER_CLIENT` and `INTRODUCE` at most 1, `ADD_BROKER_CLIENT`
    /// none. Other types accept any count.
    pub fn check_handles(&self, num_handles: usize) -> Result<()> {
        let (field, ok, expected) = match self {
            Self::BrokerClientAdded(_) => ("BROKER_CLIENT_ADDED fds", num_handles == 1, 1),
            Self::BindBrokerHost(_) => ("BIND_BROKER_HOST fds", num_handles == 1, 1),
            Self::AcceptBrokerClient(_) => ("ACCEPT_BROKER_CLIENT fds", num_handles <= 1, 1),
            Self::Introduce(_) => ("INTRODUCE fds", num_handles <= 1, 1),
            Self::AddBrokerClient(_) => ("ADD_BROKER_CLIENT fds", num_handles == 0, 0),
            _ => return Ok(()),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Mismatch {
                field,
                expected,
                actual: num_handles as u64,
            })
        }
    }

    /// For `BROADCAST_EVENT`: decodes the embedded channel message with the
    /// rules Chromium applies (exact length, no extra header, no fds, and a
    /// NodeChannel `EVENT_MESSAGE` inside). Returns the embedded event bytes;
    /// `Ok(None)` for any other message.
    pub fn broadcast_inner(&self) -> Result<Option<&'a [u8]>> {
        let Self::BroadcastEvent(bytes) = self else {
            return Ok(None);
        };
        decode_broadcast(bytes).map(Some)
    }

    /// Name of the field at `offset` of the encoded message (NodeChannel
    /// header included), for diagnostics.
    pub fn field_at(&self, offset: usize) -> &'static str {
        if let Some(name) = NodeHeader::field_at(offset) {
            return name;
        }
        let o = offset - NODE_HEADER_LEN;
        if let Some(name) = self.fixed_field_at(o) {
            return match (self, name) {
                (_, Some(name)) => name,
                (Self::RequestPortMerge(_), None) => "request_port_merge.token",
                (_, None) => "node.trailing",
            };
        }
        match self {
            Self::EventMessage(_) => "event",
            Self::BroadcastEvent(_) => "broadcast_event.message",
            Self::BindBrokerHost(_) => BindBrokerHostBody::field_at(o).unwrap_or("node.trailing"),
            _ => "node.body",
        }
    }
}

fn decode_broadcast(bytes: &[u8]) -> Result<&[u8]> {
    let frame = Frame::decode_whole(bytes)?;
    if frame.header.num_handles() != 0 {
        return Err(Error::Mismatch {
            field: "broadcast_event.num_handles",
            expected: 0,
            actual: u64::from(frame.header.num_handles()),
        });
    }
    if let ChannelHeader::Full { extra_header, .. } = frame.header {
        if !extra_header.is_empty() {
            return Err(Error::InvalidValue {
                field: "broadcast_event.num_header_bytes",
                value: (16 + extra_header.len()) as u64,
                reason: "a broadcast message has no extra header",
            });
        }
    }
    if frame.header.message_type().is_control() {
        return Err(Error::InvalidValue {
            field: "broadcast_event.message_type",
            value: u64::from(frame.header.message_type().0),
            reason: "a broadcast message is a NORMAL message",
        });
    }
    match NodeMessage::decode(frame.payload)? {
        NodeMessage::EventMessage(event) => Ok(event),
        other => Err(Error::Mismatch {
            field: "broadcast_event.node_type",
            expected: u64::from(NodeMessageType::EVENT_MESSAGE.0),
            actual: u64::from(other.message_type().0),
        }),
    }
}

/// What a node channel carries in one channel message: a NodeChannel message
/// (types `NORMAL_LEGACY`/`NORMAL`) or a channel control message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeChannelContent<'a> {
    /// A NodeChannel message.
    Message(NodeMessage<'a>),
    /// A control message (`UPGRADE_*` or unknown).
    Control(ControlMessage<'a>),
}

/// A channel message on a node channel, decoded down to the NodeChannel level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeFrame<'a> {
    /// The channel header as received.
    pub header: ChannelHeader<'a>,
    /// What it carries.
    pub content: NodeChannelContent<'a>,
}

impl<'a> NodeFrame<'a> {
    /// Decodes the frame at the start of `bytes`; returns it and its length.
    pub fn decode(bytes: &'a [u8]) -> Result<(Self, usize)> {
        let (frame, used) = Frame::decode(bytes)?;
        Ok((Self::from_frame(&frame)?, used))
    }

    /// [`NodeFrame::decode`], then requires the consumed bytes to be the
    /// canonical encoding of the result at the channel and NodeChannel layers
    /// (as [`Frame::decode_exact`] and [`NodeMessage::decode_exact`]); any `Ok`
    /// re-encodes byte for byte. Fails with [`Error::NotCanonical`].
    pub fn decode_exact(bytes: &'a [u8]) -> Result<(Self, usize)> {
        require_exact_frame(bytes, Self::decode(bytes)?, Self::encode, Self::field_at)
    }

    /// Name of the field at `offset` of the encoded frame, for diagnostics.
    pub fn field_at(&self, offset: usize) -> &'static str {
        let hl = self.header.len();
        if offset < hl {
            return self.header.field_at(offset);
        }
        match &self.content {
            NodeChannelContent::Message(m) => m.field_at(offset - hl),
            NodeChannelContent::Control(c) => c.field_at(offset - hl),
        }
    }

    /// Decodes the payload of an already parsed frame.
    pub fn from_frame(frame: &Frame<'a>) -> Result<Self> {
        let t = frame.header.message_type();
        let content = if t.is_normal() {
            NodeChannelContent::Message(NodeMessage::decode(frame.payload)?)
        } else {
            NodeChannelContent::Control(ControlMessage::decode(t, frame.payload)?)
        };
        Ok(Self {
            header: frame.header,
            content,
        })
    }

    /// Re-encodes the frame with its original header.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<usize> {
        let b = FrameBuilder::begin(out, &self.header)?;
        match &self.content {
            NodeChannelContent::Message(m) => m.encode(out)?,
            NodeChannelContent::Control(c) => c.encode_payload(out)?,
        }
        b.finish(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v0_bodies_stay_v0() {
        let mut body = vec![0, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&[1; 32]);
        body.extend_from_slice(&[7, 7, 7, 7]);
        let m = NodeMessage::decode(&body).unwrap();
        let NodeMessage::AcceptInvitee(a) = m else {
            panic!("{m:?}")
        };
        assert_eq!(a.capabilities, None);
        assert_eq!(a.trailing, &[7, 7, 7, 7]);
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn short_bodies_name_the_message() {
        let mut body = vec![0; 8];
        body.extend_from_slice(&[1; 20]);
        let e = NodeMessage::decode(&body).unwrap_err();
        assert_eq!(
            e.to_string(),
            "too short for ACCEPT_INVITEE body: need 32 bytes, have 20"
        );
        assert!(NodeMessage::decode(&[5, 0, 0, 0, 0, 0, 0, 0]).is_err());
        let e = NodeMessage::decode(&[6, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap_err();
        assert!(e.field().starts_with("REQUEST_PORT_MERGE"));
    }

    #[test]
    fn unknown_types_keep_their_body() {
        let bytes = [42, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3];
        let m = NodeMessage::decode(&bytes).unwrap();
        assert_eq!(
            m,
            NodeMessage::Unknown {
                message_type: NodeMessageType(42),
                body: &[1, 2, 3]
            }
        );
        assert_eq!(m.field_at(9), "node.body");
    }

    #[test]
    fn bind_broker_host_body_is_not_checked() {
        // Chromium only requires more than the 8-byte NodeChannel header.
        let short = [11, 0, 0, 0, 0, 0, 0, 0, 0xff];
        let m = NodeMessage::decode(&short).unwrap();
        assert_eq!(
            m,
            NodeMessage::BindBrokerHost(BindBrokerHost { trailing: &[] })
        );
        assert_eq!(
            NodeMessage::decode_exact(&short),
            Err(Error::NotCanonical {
                offset: 8,
                field: "bind_broker_host.reserved"
            })
        );
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        assert_eq!(out, [11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(NodeMessage::decode_exact(&out), Ok(m));
        assert!(NodeMessage::decode(&[11, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn node_padding_is_ignored_but_not_exact() {
        let mut b = vec![7, 0, 0, 0, 0, 0, 0x10, 0];
        b.extend_from_slice(&[3; 16]);
        let m = NodeMessage::decode(&b).unwrap();
        assert!(matches!(m, NodeMessage::RequestIntroduction(_)));
        assert_eq!(
            NodeMessage::decode_exact(&b),
            Err(Error::NotCanonical {
                offset: 6,
                field: "node.padding"
            })
        );
    }

    #[test]
    fn fd_rules() {
        let m = NodeMessage::BrokerClientAdded(BrokerClientAdded {
            client_name: NodeName::new(1, 2),
            trailing: &[],
        });
        assert!(m.check_handles(0).is_err());
        assert!(m.check_handles(1).is_ok());
    }

    #[test]
    fn broadcast_inner_is_checked() {
        let inner_event = [2u8, 0, 0, 0, 0, 0, 0, 0, 9];
        let mut inner = Vec::new();
        NodeMessage::EventMessage(&inner_event)
            .encode_frame(Profile::Libchrome, 0, &mut inner)
            .unwrap();
        let m = NodeMessage::BroadcastEvent(&inner);
        assert_eq!(m.broadcast_inner(), Ok(Some(&inner_event[..])));
        let mut with_fd = Vec::new();
        NodeMessage::EventMessage(&inner_event)
            .encode_frame(Profile::Libchrome, 1, &mut with_fd)
            .unwrap();
        assert!(
            NodeMessage::BroadcastEvent(&with_fd)
                .broadcast_inner()
                .is_err()
        );
    }
}
