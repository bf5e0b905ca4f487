//! NodeChannel messages (spec section 3): the 8-byte NodeChannel header
//! (`type u32, padding u32`) and every message body.
//!
//! Bodies that grew a version keep the version they arrived in: the V1 fields
//! are an `Option` (`None` = the shorter V0 body), and bytes after the newest
//! layout are kept in `trailing` so that re-encoding is exact. Fresh messages
//! should use the newest layout (`Some`) with empty `trailing`.

use crate::channel::{ChannelHeader, ControlMessage, Frame, FrameBuilder};
use crate::codec::{
    Reader, put_name, put_u32, put_u64, put_zeros, require_canonical,
    require_canonical_frame_encoding,
};
use crate::error::{Error, Result};
use crate::name::{Name, NodeName, PortName};
use crate::profile::Profile;
use crate::protocol_enum::protocol_enum;

/// Size of the NodeChannel header.
pub const NODE_HEADER_LEN: usize = 8;

protocol_enum! {
    /// A NodeChannel message type (u32, POSIX numbering). Unknown values are kept
    /// (and ignored by Chromium receivers).
    pub struct NodeMessageType(pub u32), unknown "NODE_TYPE_" {
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
    pub token: Name,
    /// V1: the sender's capabilities; `None` for a V0 body.
    pub capabilities: Option<NodeCapabilities>,
    /// Bytes after the body.
    pub trailing: &'a [u8],
}

/// `AcceptInvitationData` (V0 32 bytes, V1 40).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AcceptInvitation<'a> {
    /// Must equal the token of `ACCEPT_INVITEE`.
    pub token: Name,
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
    pub token: Name,
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
    /// [`crate::event::Event::parse`] (a bad event is dropped, not fatal).
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

fn caps(r: &mut Reader<'_>, what: &'static str) -> Result<Option<NodeCapabilities>> {
    if r.remaining() >= 8 {
        Ok(Some(NodeCapabilities::from_bits_retain(r.u64(what)?)))
    } else {
        Ok(None)
    }
}

fn put_caps(out: &mut Vec<u8>, c: Option<NodeCapabilities>) {
    if let Some(c) = c {
        put_u64(out, c.bits());
    }
}

impl<'a> NodeMessage<'a> {
    /// Parses a channel payload as a NodeChannel message, as
    /// `NodeChannel::OnChannelMessage` does. A payload of 8 bytes or less, or
    /// a known body shorter than its oldest layout, is an error (fatal for a
    /// Chromium receiver). Padding and reserved bytes (`node.padding`,
    /// `add_broker_client.padding`, `bind_broker_host.reserved`) are never
    /// read by Chromium and are ignored; `BIND_BROKER_HOST` needs no body size
    /// beyond the general "more than the 8-byte header".
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        r.need(
            NODE_HEADER_LEN + 1,
            "NodeChannel message (header and a body)",
        )?;
        let message_type = NodeMessageType(r.u32("node.type")?);
        r.padding(4, "node.padding")?;
        Ok(match message_type {
            NodeMessageType::ACCEPT_INVITEE => {
                r.need(32, "ACCEPT_INVITEE body")?;
                Self::AcceptInvitee(AcceptInvitee {
                    inviter_name: r.name("accept_invitee.inviter_name")?,
                    token: r.name("accept_invitee.token")?,
                    capabilities: caps(&mut r, "accept_invitee.capabilities")?,
                    trailing: r.rest(),
                })
            }
            NodeMessageType::ACCEPT_INVITATION => {
                r.need(32, "ACCEPT_INVITATION body")?;
                Self::AcceptInvitation(AcceptInvitation {
                    token: r.name("accept_invitation.token")?,
                    invitee_name: r.name("accept_invitation.invitee_name")?,
                    capabilities: caps(&mut r, "accept_invitation.capabilities")?,
                    trailing: r.rest(),
                })
            }
            NodeMessageType::ADD_BROKER_CLIENT => {
                r.need(24, "ADD_BROKER_CLIENT body")?;
                let client_name = r.name("add_broker_client.client_name")?;
                let process_handle = r.u32("add_broker_client.process_handle")?;
                r.padding(4, "add_broker_client.padding")?;
                Self::AddBrokerClient(AddBrokerClient {
                    client_name,
                    process_handle,
                    trailing: r.rest(),
                })
            }
            NodeMessageType::BROKER_CLIENT_ADDED => {
                r.need(16, "BROKER_CLIENT_ADDED body")?;
                Self::BrokerClientAdded(BrokerClientAdded {
                    client_name: r.name("broker_client_added.client_name")?,
                    trailing: r.rest(),
                })
            }
            NodeMessageType::ACCEPT_BROKER_CLIENT => {
                r.need(16, "ACCEPT_BROKER_CLIENT body")?;
                let broker_name = r.name("accept_broker_client.broker_name")?;
                let capabilities = if r.remaining() >= 16 {
                    Some(BrokerClientCapabilities {
                        capabilities: NodeCapabilities::from_bits_retain(
                            r.u64("accept_broker_client.capabilities")?,
                        ),
                        broker_capabilities: NodeCapabilities::from_bits_retain(
                            r.u64("accept_broker_client.broker_capabilities")?,
                        ),
                    })
                } else {
                    None
                };
                Self::AcceptBrokerClient(AcceptBrokerClient {
                    broker_name,
                    capabilities,
                    trailing: r.rest(),
                })
            }
            NodeMessageType::EVENT_MESSAGE => Self::EventMessage(r.rest()),
            NodeMessageType::REQUEST_PORT_MERGE => {
                r.need(
                    17,
                    "REQUEST_PORT_MERGE body (port name and a non-empty token)",
                )?;
                Self::RequestPortMerge(RequestPortMerge {
                    connector_port_name: r.name("request_port_merge.connector_port_name")?,
                    token: r.rest(),
                })
            }
            NodeMessageType::REQUEST_INTRODUCTION | NodeMessageType::INTRODUCE => {
                let what = if message_type == NodeMessageType::INTRODUCE {
                    "INTRODUCE body"
                } else {
                    "REQUEST_INTRODUCTION body"
                };
                r.need(16, what)?;
                let intro = Introduction {
                    name: r.name("introduction.name")?,
                    capabilities: caps(&mut r, "introduction.capabilities")?,
                    trailing: r.rest(),
                };
                if message_type == NodeMessageType::INTRODUCE {
                    Self::Introduce(intro)
                } else {
                    Self::RequestIntroduction(intro)
                }
            }
            NodeMessageType::BROADCAST_EVENT => Self::BroadcastEvent(r.rest()),
            NodeMessageType::ACCEPT_PEER => {
                r.need(48, "ACCEPT_PEER body")?;
                Self::AcceptPeer(AcceptPeer {
                    token: r.name("accept_peer.token")?,
                    peer_name: r.name("accept_peer.peer_name")?,
                    port_name: r.name("accept_peer.port_name")?,
                    trailing: r.rest(),
                })
            }
            NodeMessageType::BIND_BROKER_HOST => {
                // Chromium only checks the fd count; a body shorter than the
                // 8 reserved bytes is accepted (and re-encodes to 8 zeros).
                let reserved = r.remaining().min(8);
                r.padding(reserved, "bind_broker_host.reserved")?;
                Self::BindBrokerHost(BindBrokerHost { trailing: r.rest() })
            }
            message_type => Self::Unknown {
                message_type,
                body: r.rest(),
            },
        })
    }

    /// [`NodeMessage::parse`], then requires `payload` to be the canonical
    /// encoding of the result (zero padding and reserved bytes, an 8-byte
    /// `BIND_BROKER_HOST` body); any `Ok` re-encodes to exactly `payload`.
    /// Event and broadcast bodies are kept raw and not examined here (see
    /// [`crate::Event::parse_exact`], [`crate::verify::check_frame`]). Fails
    /// with [`Error::NotCanonical`] otherwise.
    pub fn parse_exact(payload: &'a [u8]) -> Result<Self> {
        let m = Self::parse(payload)?;
        let mut out = Vec::with_capacity(payload.len());
        m.encode(&mut out);
        require_canonical(payload, &out, |o| m.field_at(o))?;
        Ok(m)
    }

    /// The message type.
    pub fn message_type(&self) -> NodeMessageType {
        use NodeMessageType as T;
        match self {
            Self::AcceptInvitee(_) => T::ACCEPT_INVITEE,
            Self::AcceptInvitation(_) => T::ACCEPT_INVITATION,
            Self::AddBrokerClient(_) => T::ADD_BROKER_CLIENT,
            Self::BrokerClientAdded(_) => T::BROKER_CLIENT_ADDED,
            Self::AcceptBrokerClient(_) => T::ACCEPT_BROKER_CLIENT,
            Self::EventMessage(_) => T::EVENT_MESSAGE,
            Self::RequestPortMerge(_) => T::REQUEST_PORT_MERGE,
            Self::RequestIntroduction(_) => T::REQUEST_INTRODUCTION,
            Self::Introduce(_) => T::INTRODUCE,
            Self::BroadcastEvent(_) => T::BROADCAST_EVENT,
            Self::AcceptPeer(_) => T::ACCEPT_PEER,
            Self::BindBrokerHost(_) => T::BIND_BROKER_HOST,
            Self::Unknown { message_type, .. } => *message_type,
        }
    }

    /// Appends the NodeChannel header and body (no channel header).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.message_type().0);
        put_u32(out, 0);
        match self {
            Self::AcceptInvitee(m) => {
                put_name(out, m.inviter_name);
                put_name(out, m.token);
                put_caps(out, m.capabilities);
                out.extend_from_slice(m.trailing);
            }
            Self::AcceptInvitation(m) => {
                put_name(out, m.token);
                put_name(out, m.invitee_name);
                put_caps(out, m.capabilities);
                out.extend_from_slice(m.trailing);
            }
            Self::AddBrokerClient(m) => {
                put_name(out, m.client_name);
                put_u32(out, m.process_handle);
                put_u32(out, 0);
                out.extend_from_slice(m.trailing);
            }
            Self::BrokerClientAdded(m) => {
                put_name(out, m.client_name);
                out.extend_from_slice(m.trailing);
            }
            Self::AcceptBrokerClient(m) => {
                put_name(out, m.broker_name);
                if let Some(c) = m.capabilities {
                    put_u64(out, c.capabilities.bits());
                    put_u64(out, c.broker_capabilities.bits());
                }
                out.extend_from_slice(m.trailing);
            }
            Self::EventMessage(body) | Self::BroadcastEvent(body) => out.extend_from_slice(body),
            Self::RequestPortMerge(m) => {
                put_name(out, m.connector_port_name);
                out.extend_from_slice(m.token);
            }
            Self::RequestIntroduction(m) | Self::Introduce(m) => {
                put_name(out, m.name);
                put_caps(out, m.capabilities);
                out.extend_from_slice(m.trailing);
            }
            Self::AcceptPeer(m) => {
                put_name(out, m.token);
                put_name(out, m.peer_name);
                put_name(out, m.port_name);
                out.extend_from_slice(m.trailing);
            }
            Self::BindBrokerHost(m) => {
                put_zeros(out, 8);
                out.extend_from_slice(m.trailing);
            }
            Self::Unknown { body, .. } => out.extend_from_slice(body),
        }
    }

    /// Appends a complete fresh channel message in `profile`'s header form.
    pub fn encode_frame(
        &self,
        profile: Profile,
        num_handles: u16,
        out: &mut Vec<u8>,
    ) -> Result<usize> {
        let b = FrameBuilder::begin(out, &profile.normal_header(num_handles))?;
        self.encode(out);
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

    /// For `BROADCAST_EVENT`: parses the embedded channel message with the
    /// rules Chromium applies (exact length, no extra header, no fds, and a
    /// NodeChannel `EVENT_MESSAGE` inside). Returns the embedded event bytes.
    pub fn broadcast_inner(&self) -> Option<Result<&'a [u8]>> {
        let Self::BroadcastEvent(bytes) = self else {
            return None;
        };
        Some(parse_broadcast(bytes))
    }

    /// Name of the field at `offset` of the encoded message (NodeChannel
    /// header included), for diagnostics.
    pub fn field_at(&self, offset: usize) -> &'static str {
        match offset {
            0..4 => return "node.type",
            4..8 => return "node.padding",
            _ => {}
        }
        let o = offset - NODE_HEADER_LEN;
        let fixed: &[(usize, &'static str)] = match self {
            Self::AcceptInvitee(_) => &[
                (16, "accept_invitee.inviter_name"),
                (32, "accept_invitee.token"),
                (40, "accept_invitee.capabilities"),
            ],
            Self::AcceptInvitation(_) => &[
                (16, "accept_invitation.token"),
                (32, "accept_invitation.invitee_name"),
                (40, "accept_invitation.capabilities"),
            ],
            Self::AddBrokerClient(_) => &[
                (16, "add_broker_client.client_name"),
                (20, "add_broker_client.process_handle"),
                (24, "add_broker_client.padding"),
            ],
            Self::BrokerClientAdded(_) => &[(16, "broker_client_added.client_name")],
            Self::AcceptBrokerClient(_) => &[
                (16, "accept_broker_client.broker_name"),
                (24, "accept_broker_client.capabilities"),
                (32, "accept_broker_client.broker_capabilities"),
            ],
            Self::EventMessage(_) => &[(usize::MAX, "event")],
            Self::RequestPortMerge(_) => &[
                (16, "request_port_merge.connector_port_name"),
                (usize::MAX, "request_port_merge.token"),
            ],
            Self::RequestIntroduction(_) | Self::Introduce(_) => {
                &[(16, "introduction.name"), (24, "introduction.capabilities")]
            }
            Self::BroadcastEvent(_) => &[(usize::MAX, "broadcast_event.message")],
            Self::AcceptPeer(_) => &[
                (16, "accept_peer.token"),
                (32, "accept_peer.peer_name"),
                (48, "accept_peer.port_name"),
            ],
            Self::BindBrokerHost(_) => &[(8, "bind_broker_host.reserved")],
            Self::Unknown { .. } => &[(usize::MAX, "node.body")],
        };
        fixed
            .iter()
            .find(|(end, _)| o < *end)
            .map_or("node.trailing", |(_, name)| name)
    }
}

fn parse_broadcast(bytes: &[u8]) -> Result<&[u8]> {
    let frame = Frame::parse_whole(bytes)?;
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
    match NodeMessage::parse(frame.payload)? {
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
    /// Parses the frame at the start of `bytes`; returns it and its length.
    pub fn parse(bytes: &'a [u8]) -> Result<(Self, usize)> {
        let (frame, used) = Frame::parse(bytes)?;
        Ok((Self::from_frame(&frame)?, used))
    }

    /// [`NodeFrame::parse`], then requires the consumed bytes to be the
    /// canonical encoding of the result at the channel and NodeChannel layers
    /// (as [`Frame::parse_exact`] and [`NodeMessage::parse_exact`]); any `Ok`
    /// re-encodes byte for byte. Fails with [`Error::NotCanonical`].
    pub fn parse_exact(bytes: &'a [u8]) -> Result<(Self, usize)> {
        require_canonical_frame_encoding(bytes, Self::parse(bytes)?, Self::encode, Self::field_at)
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
            NodeChannelContent::Message(NodeMessage::parse(frame.payload)?)
        } else {
            NodeChannelContent::Control(ControlMessage::parse(t, frame.payload)?)
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
            NodeChannelContent::Message(m) => m.encode(out),
            NodeChannelContent::Control(c) => c.encode_payload(out),
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
        let m = NodeMessage::parse(&body).unwrap();
        let NodeMessage::AcceptInvitee(a) = m else {
            panic!("{m:?}")
        };
        assert_eq!(a.capabilities, None);
        assert_eq!(a.trailing, &[7, 7, 7, 7]);
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out, body);
    }

    #[test]
    fn short_bodies_name_the_message() {
        let mut body = vec![0; 8];
        body.extend_from_slice(&[1; 20]);
        let e = NodeMessage::parse(&body).unwrap_err();
        assert_eq!(
            e.to_string(),
            "too short for ACCEPT_INVITEE body: need 32 bytes, have 20"
        );
        assert!(NodeMessage::parse(&[5, 0, 0, 0, 0, 0, 0, 0]).is_err());
        let e = NodeMessage::parse(&[6, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap_err();
        assert!(e.field().starts_with("REQUEST_PORT_MERGE"));
    }

    #[test]
    fn unknown_types_keep_their_body() {
        let bytes = [42, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3];
        let m = NodeMessage::parse(&bytes).unwrap();
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
        let m = NodeMessage::parse(&short).unwrap();
        assert_eq!(
            m,
            NodeMessage::BindBrokerHost(BindBrokerHost { trailing: &[] })
        );
        assert_eq!(
            NodeMessage::parse_exact(&short),
            Err(Error::NotCanonical {
                offset: 8,
                field: "bind_broker_host.reserved"
            })
        );
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out, [11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(NodeMessage::parse_exact(&out), Ok(m));
        assert!(NodeMessage::parse(&[11, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn node_padding_is_ignored_but_not_exact() {
        let mut b = vec![7, 0, 0, 0, 0, 0, 0x10, 0];
        b.extend_from_slice(&[3; 16]);
        let m = NodeMessage::parse(&b).unwrap();
        assert!(matches!(m, NodeMessage::RequestIntroduction(_)));
        assert_eq!(
            NodeMessage::parse_exact(&b),
            Err(Error::NotCanonical {
                offset: 6,
                field: "node.padding"
            })
        );
    }

    #[test]
    fn fd_rules() {
        let m = NodeMessage::BrokerClientAdded(BrokerClientAdded {
            client_name: Name::new(1, 2),
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
        assert_eq!(m.broadcast_inner(), Some(Ok(&inner_event[..])));
        let mut with_fd = Vec::new();
        NodeMessage::EventMessage(&inner_event)
            .encode_frame(Profile::Libchrome, 1, &mut with_fd)
            .unwrap();
        assert!(matches!(
            NodeMessage::BroadcastEvent(&with_fd).broadcast_inner(),
            Some(Err(_))
        ));
    }
}
