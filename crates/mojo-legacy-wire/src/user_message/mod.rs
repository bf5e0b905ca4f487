//! User message serialization (spec section 5): the message header and the
//! dispatcher headers here; dispatcher states in `dispatcher`, the
//! deserialization rules in `rules`, data pipe control messages in
//! `data_pipe_control`.
//!
//! Layout of the user-message part of a `UserMessage` event:
//!
//! ```text
//! MessageHeader { num_dispatchers u32, header_size u32 }
//! DispatcherHeader[num_dispatchers] { type i32, num_bytes u32, num_ports u32, num_platform_handles u32 }
//! dispatcher states, concatenated (no padding)
//! user payload                 <- starts at header_size
//! ```

mod data_pipe_control;
mod dispatcher;
mod rules;

pub use data_pipe_control::{DataPipeCommand, DataPipeControlMessage};
pub use dispatcher::{
    DataPipeOptions, DataPipeState, Dispatcher, DispatcherType, MessagePipeState, SharedBufferState,
};

use mojo_wire_kit::le::{I32, U32};
use mojo_wire_kit::{WireLayout, append_or_rollback};

use crate::channel::FrameBuilder;
use crate::codec::{Reader, Writer, len_u32, require_exact_encoding};
use crate::error::{Error, Result};
use crate::event::{
    ATTACHED_PORT_LEN, AttachedPort, EventType, SenderInfo, USER_MESSAGE_EVENT_DATA_LEN,
    write_event_header, write_node_event_header, write_user_message_data,
};
use crate::layouts::{DispatcherHeader, MessageHeader};
use crate::limits::{MAX_DECODABLE_DISPATCHERS, MAX_DISPATCHERS_ACCEPTED};
use crate::name::PortName;
use crate::profile::Profile;

/// Size of `MessageHeader`.
pub const MESSAGE_HEADER_LEN: usize = MessageHeader::SIZE;
/// Size of `DispatcherHeader`.
pub const DISPATCHER_HEADER_LEN: usize = DispatcherHeader::SIZE;

/// The user-message part of a `UserMessage` event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct UserMessage<'a> {
    /// Attached handles, in order; they consume the event's ports and the
    /// message's fds in this order.
    pub dispatchers: Vec<Dispatcher<'a>>,
    /// The application's bytes.
    pub payload: &'a [u8],
}

impl<'a> UserMessage<'a> {
    /// A message without handles.
    pub fn plain(payload: &'a [u8]) -> Self {
        Self {
            dispatchers: Vec::new(),
            payload,
        }
    }

    /// Parses and decodes every dispatcher. Fails where a Chromium reader
    /// fails (`UserMessageImpl::CreateFromChannelMessage` and
    /// `ExtractSerializedHandles`: `MOJO_RESULT_ABORTED`), except that unknown
    /// dispatcher types are kept. As in Chromium, the user payload starts at
    /// `header_size`: bytes between the last dispatcher state and
    /// `header_size` are ignored, and a message without dispatchers may even
    /// declare a `header_size` below 8 (Chromium then skips the dispatcher
    /// checks entirely). Dispatcher state padding is ignored. The values in
    /// the states are not checked: run [`UserMessage::check_dispatchers`] for
    /// the rules Chromium applies when it deserializes the handles.
    pub fn decode(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let header: MessageHeader = r.layout_as("user message header")?;
        let num_dispatchers = header.num_dispatchers.get();
        let header_size = header.header_size.get();
        let header_len = header_size as usize;
        if header_len > bytes.len() {
            return Err(Error::InvalidValue {
                field: "message_header.header_size",
                value: u64::from(header_size),
                reason: "larger than the user message",
            });
        }
        // `CreateFromChannelMessage` drops the event above this; below it,
        // `ExtractSerializedHandles` fails above MAX_DECODABLE_DISPATCHERS.
        if num_dispatchers > MAX_DISPATCHERS_ACCEPTED {
            return Err(Error::LimitExceeded {
                field: "message_header.num_dispatchers",
                value: u64::from(num_dispatchers),
                limit: u64::from(MAX_DISPATCHERS_ACCEPTED),
            });
        }
        if num_dispatchers > MAX_DECODABLE_DISPATCHERS {
            return Err(Error::LimitExceeded {
                field: "message_header.num_dispatchers",
                value: u64::from(num_dispatchers),
                limit: u64::from(MAX_DECODABLE_DISPATCHERS),
            });
        }
        let payload = bytes.get(header_len..).unwrap_or(&[]);
        if num_dispatchers == 0 {
            return Ok(Self {
                dispatchers: Vec::new(),
                payload,
            });
        }
        let n = num_dispatchers as usize;
        let headers_end = MESSAGE_HEADER_LEN + DISPATCHER_HEADER_LEN * n;
        if headers_end > header_len {
            return Err(Error::InvalidValue {
                field: "message_header.header_size",
                value: u64::from(header_size),
                reason: "smaller than the dispatcher headers",
            });
        }
        let headers = r.slice_of::<DispatcherHeader>(n, "dispatcher headers")?;
        let mut states = Reader::new(bytes.get(headers_end..header_len).unwrap_or(&[]));
        let mut dispatchers = Vec::with_capacity(n);
        for h in headers {
            let state = states.take(
                h.num_bytes.get() as usize,
                "dispatcher state (within header_size)",
            )?;
            dispatchers.push(dispatcher::decode_dispatcher(
                DispatcherType(h.dispatcher_type.get()),
                h.num_ports.get(),
                h.num_platform_handles.get(),
                state,
            )?);
        }
        Ok(Self {
            dispatchers,
            payload,
        })
    }

    /// [`UserMessage::decode`], then requires `bytes` to be the canonical
    /// encoding of the result (`header_size` exactly 8 + 16 per dispatcher +
    /// state bytes, zero state padding); any `Ok` re-encodes to exactly
    /// `bytes`. Fails with [`Error::NotCanonical`] otherwise.
    pub fn decode_exact(bytes: &'a [u8]) -> Result<Self> {
        require_exact_encoding(bytes, Self::decode(bytes)?, Self::encode, Self::field_at)
    }

    /// [`UserMessage::decode`], then checks that the dispatchers consume no
    /// more than `num_ports` ports (the event's) and `num_fds` fds (the
    /// channel message's), as a Chromium reader does.
    pub fn decode_checked(bytes: &'a [u8], num_ports: usize, num_fds: usize) -> Result<Self> {
        let m = Self::decode(bytes)?;
        if m.num_ports() > num_ports as u64 {
            return Err(Error::LimitExceeded {
                field: "dispatcher.num_ports",
                value: m.num_ports(),
                limit: num_ports as u64,
            });
        }
        if m.num_platform_handles() > num_fds as u64 {
            return Err(Error::LimitExceeded {
                field: "dispatcher.num_platform_handles",
                value: m.num_platform_handles(),
                limit: num_fds as u64,
            });
        }
        Ok(m)
    }

    /// Checks every dispatcher as Chromium does when it deserializes the
    /// message's handles ([`Dispatcher::check_state`], in order, first failure
    /// returned), plus the dispatcher count limit
    /// ([`MAX_DECODABLE_DISPATCHERS`], only reachable for a hand-built value).
    ///
    /// `Ok` after [`UserMessage::decode`] (or [`UserMessage::decode_checked`])
    /// means a Chromium receiver gets valid handles, as far as the bytes go.
    /// `Err` means it gets none: the message's handle extraction fails and the
    /// message is dropped, but the channel stays up, which is why `decode`
    /// accepts such messages.
    pub fn check_dispatchers(&self) -> Result<()> {
        if self.dispatchers.len() > MAX_DECODABLE_DISPATCHERS as usize {
            return Err(Error::LimitExceeded {
                field: "message_header.num_dispatchers",
                value: self.dispatchers.len() as u64,
                limit: u64::from(MAX_DECODABLE_DISPATCHERS),
            });
        }
        self.dispatchers
            .iter()
            .try_for_each(Dispatcher::check_state)
    }

    /// `header_size`: 8 + 16 per dispatcher + state bytes.
    pub fn header_size(&self) -> usize {
        MESSAGE_HEADER_LEN
            + self
                .dispatchers
                .iter()
                .map(|d| DISPATCHER_HEADER_LEN + d.state_len())
                .sum::<usize>()
    }

    /// Total ports the dispatchers consume.
    pub fn num_ports(&self) -> u64 {
        self.dispatchers
            .iter()
            .map(|d| u64::from(d.num_ports()))
            .sum()
    }

    /// Total fds the dispatchers consume (the channel header's `num_handles`).
    pub fn num_platform_handles(&self) -> u64 {
        self.dispatchers
            .iter()
            .map(|d| u64::from(d.num_platform_handles()))
            .sum()
    }

    /// Size of the encoding.
    pub fn encoded_len(&self) -> usize {
        self.header_size() + self.payload.len()
    }

    /// Appends the serialized message. Fails (leaving `out` unchanged) only
    /// if a count or size does not fit its `u32` field.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        append_or_rollback(out, |w| self.write(w))
    }

    fn write(&self, w: &mut Writer<'_>) -> Result<()> {
        w.layout(&MessageHeader {
            num_dispatchers: U32::new(len_u32(
                "message_header.num_dispatchers",
                self.dispatchers.len(),
            )?),
            header_size: U32::new(len_u32("message_header.header_size", self.header_size())?),
        });
        for d in &self.dispatchers {
            w.layout(&DispatcherHeader {
                dispatcher_type: I32::new(d.dispatcher_type().0),
                num_bytes: U32::new(len_u32("dispatcher.num_bytes", d.state_len())?),
                num_ports: U32::new(d.num_ports()),
                num_platform_handles: U32::new(d.num_platform_handles()),
            });
        }
        for d in &self.dispatchers {
            d.write_state(w);
        }
        w.bytes(self.payload);
        Ok(())
    }

    /// Name of the field at `offset` of the encoded message, for diagnostics.
    pub fn field_at(&self, offset: usize) -> &'static str {
        if let Some(name) = MessageHeader::field_at(offset) {
            return name;
        }
        let headers_end = MESSAGE_HEADER_LEN + DISPATCHER_HEADER_LEN * self.dispatchers.len();
        if offset < headers_end {
            let o = (offset - MESSAGE_HEADER_LEN) % DISPATCHER_HEADER_LEN;
            return DispatcherHeader::field_at(o).unwrap_or("dispatcher.num_platform_handles");
        }
        let mut start = headers_end;
        for d in &self.dispatchers {
            let end = start + d.state_len();
            if offset < end {
                return d.state_field_at(offset - start);
            }
            start = end;
        }
        "payload"
    }
}

/// Appends a complete `UserMessage` event (header, event data, user message)
/// without building the user message separately. `sender` selects the
/// extended header form.
pub fn encode_user_message_event(
    out: &mut Vec<u8>,
    port_name: PortName,
    sender: Option<SenderInfo>,
    sequence_num: u64,
    ports: &[AttachedPort],
    message: &UserMessage<'_>,
) -> Result<()> {
    append_or_rollback(out, |w| {
        write_event_header(w, EventType::USER_MESSAGE, port_name, sender);
        write_user_message_data(w, sequence_num, ports)?;
        message.write(w)
    })
}

/// Room reserved for a user message frame's channel, node and event headers:
/// at least the largest of them in any profile, so a fresh buffer is sized
/// once.
const FRAME_HEADERS_RESERVE: usize = 128;

/// Appends a complete fresh channel message carrying a `UserMessage` event in
/// `profile` (header form and event header form), with `num_handles` set to the
/// dispatchers' fd count. Returns the frame length.
pub fn encode_user_message_frame(
    out: &mut Vec<u8>,
    profile: Profile,
    port_name: PortName,
    sender: Option<SenderInfo>,
    sequence_num: u64,
    ports: &[AttachedPort],
    message: &UserMessage<'_>,
) -> Result<usize> {
    let fds = message.num_platform_handles();
    let num_handles = u16::try_from(fds).map_err(|_| Error::LimitExceeded {
        field: "channel.num_handles",
        value: fds,
        limit: u64::from(u16::MAX),
    })?;
    // One allocation (or none, in a reused buffer) instead of one per
    // field as the frame grows.
    out.reserve(
        FRAME_HEADERS_RESERVE
            + USER_MESSAGE_EVENT_DATA_LEN
            + ports.len() * ATTACHED_PORT_LEN
            + message.encoded_len(),
    );
    let b = FrameBuilder::begin(out, &profile.normal_header(num_handles))?;
    write_node_event_header(out);
    encode_user_message_event(out, port_name, sender, sequence_num, ports, message)?;
    b.finish(out)
}

#[cfg(test)]
mod tests {
    use mojo_wire_kit::{Guid, RegionMode};

    use super::*;

    #[test]
    fn a_frame_is_encoded_into_one_allocation() {
        let ports = [AttachedPort::default(); 3];
        let payload = [7u8; 300];
        let m = UserMessage::plain(&payload);
        for profile in [Profile::Libchrome, Profile::Desktop] {
            for sender in [None, Some(SenderInfo::default())] {
                let mut out = Vec::new();
                let len = encode_user_message_frame(
                    &mut out,
                    profile,
                    PortName::default(),
                    sender,
                    9,
                    &ports,
                    &m,
                )
                .unwrap();
                let reserved = FRAME_HEADERS_RESERVE
                    + USER_MESSAGE_EVENT_DATA_LEN
                    + ports.len() * ATTACHED_PORT_LEN
                    + m.encoded_len();
                assert!(
                    len <= reserved,
                    "{profile:?} {sender:?}: {len} > {reserved}"
                );
                assert_eq!(out.capacity(), reserved, "grown after the reserve");
            }
        }
    }

    #[test]
    fn plain_message() {
        let bytes = [0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x2d];
        let m = UserMessage::decode(&bytes).unwrap();
        assert_eq!(m, UserMessage::plain(&[1, 0, 0, 0, 0x2d]));
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
    }

    #[test]
    fn header_size_slack_is_skipped_but_not_exact() {
        // One platform handle but header_size 32 (8 bytes of gap): Chromium
        // starts the payload at header_size and never looks at the gap.
        let mut b = Vec::new();
        let mut w = Writer::new(&mut b);
        w.u32(1);
        w.u32(32);
        w.i32(-1);
        w.u32(0);
        w.u32(0);
        w.u32(1);
        b.extend_from_slice(&[0xee; 8]);
        b.extend_from_slice(b"hi");
        let m = UserMessage::decode(&b).unwrap();
        assert_eq!(m.dispatchers, [Dispatcher::PlatformHandle]);
        assert_eq!(m.payload, b"hi");
        assert_eq!(m.header_size(), 24);
        assert_eq!(
            UserMessage::decode_exact(&b),
            Err(Error::NotCanonical {
                offset: 4,
                field: "message_header.header_size"
            })
        );
        // A dispatcher state running past header_size is still fatal.
        b[4..8].copy_from_slice(&20u32.to_le_bytes());
        b[12..16].copy_from_slice(&8u32.to_le_bytes());
        assert!(UserMessage::decode(&b).is_err());
    }

    #[test]
    fn no_dispatchers_skips_the_header_checks() {
        // Chromium's ExtractSerializedHandles returns early without
        // dispatchers, so header_size may even be below 8.
        let b = [0, 0, 0, 0, 2, 0, 0, 0, 7];
        let m = UserMessage::decode(&b).unwrap();
        assert!(m.dispatchers.is_empty());
        assert_eq!(m.payload, &b[2..]);
        let e = UserMessage::decode_exact(&b).unwrap_err();
        assert_eq!(e.field(), "message_header.header_size");
        // header_size beyond the message is rejected as by Chromium.
        assert!(UserMessage::decode(&[0, 0, 0, 0, 10, 0, 0, 0, 7]).is_err());
    }

    #[test]
    fn state_padding_is_ignored_but_not_exact() {
        let m = UserMessage {
            dispatchers: vec![Dispatcher::MessagePipe(MessagePipeState {
                pipe_id: 5,
                endpoint: 1,
            })],
            payload: b"x",
        };
        let mut b = Vec::new();
        m.encode(&mut b).unwrap();
        // Byte 9 of the 16-byte state is message_pipe.padding.
        let o = 8 + 16 + 9;
        assert_eq!(m.field_at(o), "message_pipe.padding");
        b[o] = 0x5a;
        assert_eq!(UserMessage::decode(&b).unwrap(), m);
        assert_eq!(
            UserMessage::decode_exact(&b),
            Err(Error::NotCanonical {
                offset: o,
                field: "message_pipe.padding"
            })
        );
    }

    #[test]
    fn wrong_counts_are_named() {
        let m = UserMessage {
            dispatchers: vec![Dispatcher::SharedBuffer(SharedBufferState {
                num_bytes: 4096,
                access_mode: RegionMode::Writable,
                guid: Guid { high: 1, low: 2 },
            })],
            payload: &[],
        };
        let mut b = Vec::new();
        m.encode(&mut b).unwrap();
        assert_eq!(UserMessage::decode(&b).unwrap(), m);
        // num_platform_handles 2 -> 1.
        b[20] = 1;
        let e = UserMessage::decode(&b).unwrap_err();
        assert_eq!(e.field(), "dispatcher.num_platform_handles");
        b[20] = 2;
        assert!(UserMessage::decode_checked(&b, 0, 1).is_err());
        assert!(UserMessage::decode_checked(&b, 0, 2).is_ok());
    }

    #[test]
    fn dispatcher_count_limits() {
        for (n, limit) in [
            (MAX_DECODABLE_DISPATCHERS + 1, MAX_DECODABLE_DISPATCHERS),
            (MAX_DISPATCHERS_ACCEPTED + 1, MAX_DISPATCHERS_ACCEPTED),
        ] {
            let mut b = Vec::new();
            let mut w = Writer::new(&mut b);
            w.u32(n);
            w.u32(8);
            assert_eq!(
                UserMessage::decode(&b),
                Err(Error::LimitExceeded {
                    field: "message_header.num_dispatchers",
                    value: u64::from(n),
                    limit: u64::from(limit),
                })
            );
        }
    }
}
