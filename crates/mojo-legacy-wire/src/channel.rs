//! Channel framing (spec section 1): the 8-byte `LegacyHeader` and the 16-byte
//! `Header`, message types, and the channel-level control messages.
//!
//! A channel message occupies exactly `num_bytes` bytes of the stream; nothing
//! is rounded or padded between messages. [`Frame`] is a borrowed view of one
//! message: its header (kept in the form it arrived in, including any extra
//! header bytes) and its payload.

use mojo_wire_kit::le::{I32, U16, U32};
use mojo_wire_kit::{WireLayout, protocol_enum};

use crate::codec::{Reader, Writer, len_u32, require_exact};
use crate::error::{Error, Result};
use crate::layouts::{FullHeader, LegacyHeader, UpgradeOfferBody};
use crate::limits::{
    HEADER_LEN, LEGACY_HEADER_LEN, MAX_INCOMING_HANDLES_PER_MESSAGE,
    MAX_INCOMING_MESSAGE_NUM_BYTES, MAX_OUTGOING_MESSAGE_NUM_BYTES, UPGRADE_OFFER_PAGES,
};

protocol_enum! {
    /// A channel `message_type` (u16). Unknown values are kept.
    pub struct MessageType(pub u16), unknown "MESSAGE_TYPE_{}", debug wrapped {
        /// 0: payload for the upper layer, 8-byte `LegacyHeader`.
        NORMAL_LEGACY = 0 => "NORMAL_LEGACY",
        /// 1: payload for the upper layer, 16-byte `Header`.
        NORMAL = 1 => "NORMAL",
        /// 2: control, offer of the shared-memory fast path.
        UPGRADE_OFFER = 2 => "UPGRADE_OFFER",
        /// 3: control, offer accepted.
        UPGRADE_ACCEPT = 3 => "UPGRADE_ACCEPT",
        /// 4: control, offer rejected.
        UPGRADE_REJECT = 4 => "UPGRADE_REJECT",
    }
}

impl MessageType {
    /// True for types whose payload goes to the upper layer (0 and 1).
    pub fn is_normal(self) -> bool {
        self.0 <= 1
    }

    /// True for everything handled by the channel itself (2 and above; unknown
    /// values are fatal for a Chromium receiver).
    pub fn is_control(self) -> bool {
        !self.is_normal()
    }
}

/// The two channel header forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderForm {
    /// 8 bytes: `num_bytes u32, num_handles u16, message_type u16 = 0`.
    Legacy,
    /// 16 bytes (plus extra header): `num_bytes u32, num_header_bytes u16,
    /// message_type u16, num_handles u16, padding[6]`.
    Full,
}

impl HeaderForm {
    /// Size of the header without extra header bytes.
    pub fn len(self) -> usize {
        match self {
            Self::Legacy => LEGACY_HEADER_LEN,
            Self::Full => HEADER_LEN,
        }
    }

    /// Always false; present for API symmetry with `len`.
    pub fn is_empty(self) -> bool {
        false
    }
}

/// A decoded channel header. `num_bytes` is not stored: it is recomputed from
/// the payload on encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelHeader<'a> {
    /// The 8-byte `LegacyHeader`; the message type is `NORMAL_LEGACY`.
    Legacy {
        /// Number of fds belonging to the message.
        num_handles: u16,
    },
    /// The 16-byte `Header`, with the extra header bytes that followed it
    /// (`num_header_bytes - 16` bytes; empty on POSIX senders).
    Full {
        /// Message type; never `NORMAL_LEGACY` (type 0 selects the legacy form).
        message_type: MessageType,
        /// Number of fds belonging to the message.
        num_handles: u16,
        /// Bytes 16..`num_header_bytes`, kept verbatim.
        extra_header: &'a [u8],
    },
}

impl<'a> ChannelHeader<'a> {
    /// A header for a fresh upper-layer message in `form` (`NORMAL_LEGACY` for
    /// the legacy form, `NORMAL` for the full form).
    pub fn normal(form: HeaderForm, num_handles: u16) -> ChannelHeader<'static> {
        match form {
            HeaderForm::Legacy => ChannelHeader::Legacy { num_handles },
            HeaderForm::Full => ChannelHeader::Full {
                message_type: MessageType::NORMAL,
                num_handles,
                extra_header: &[],
            },
        }
    }

    /// A full-form header for a control message (every build sends control
    /// messages with the 16-byte header).
    pub fn control(message_type: MessageType, num_handles: u16) -> ChannelHeader<'static> {
        ChannelHeader::Full {
            message_type,
            num_handles,
            extra_header: &[],
        }
    }

    /// Which form this is.
    pub fn form(&self) -> HeaderForm {
        match self {
            Self::Legacy { .. } => HeaderForm::Legacy,
            Self::Full { .. } => HeaderForm::Full,
        }
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::Legacy { .. } => MessageType::NORMAL_LEGACY,
            Self::Full { message_type, .. } => *message_type,
        }
    }

    /// Number of fds belonging to the message.
    pub fn num_handles(&self) -> u16 {
        match self {
            Self::Legacy { num_handles } | Self::Full { num_handles, .. } => *num_handles,
        }
    }

    /// Header size on the wire (`num_header_bytes` for the full form).
    pub fn len(&self) -> usize {
        match self {
            Self::Legacy { .. } => LEGACY_HEADER_LEN,
            Self::Full { extra_header, .. } => HEADER_LEN + extra_header.len(),
        }
    }

    /// Always false; present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Name of the header field at `offset`, for diagnostics (from the
    /// header's layout declaration).
    pub fn field_at(&self, offset: usize) -> &'static str {
        let known = match self {
            Self::Legacy { .. } => LegacyHeader::field_at(offset),
            Self::Full { .. } => FullHeader::field_at(offset),
        };
        match known {
            Some(name) => name,
            None if offset < self.len() => "channel.extra_header",
            None => "channel.payload",
        }
    }

    /// Writes the header for a message of `num_bytes` total bytes.
    fn write(&self, num_bytes: u32, w: &mut Writer<'_>) -> Result<()> {
        match self {
            Self::Legacy { num_handles } => w.layout(&LegacyHeader {
                num_bytes: U32::new(num_bytes),
                num_handles: U16::new(*num_handles),
                message_type: U16::new(MessageType::NORMAL_LEGACY.0),
            }),
            Self::Full {
                message_type,
                num_handles,
                extra_header,
            } => {
                if *message_type == MessageType::NORMAL_LEGACY {
                    return Err(Error::InvalidValue {
                        field: "channel.message_type",
                        value: 0,
                        reason: "type 0 selects the legacy header form",
                    });
                }
                let header_bytes = u16::try_from(self.len()).map_err(|_| Error::LimitExceeded {
                    field: "channel.num_header_bytes",
                    value: self.len() as u64,
                    limit: u64::from(u16::MAX),
                })?;
                w.layout(&FullHeader {
                    num_bytes: U32::new(num_bytes),
                    num_header_bytes: U16::new(header_bytes),
                    message_type: U16::new(message_type.0),
                    num_handles: U16::new(*num_handles),
                    padding: [0; 6],
                });
                w.bytes(extra_header);
            }
        }
        Ok(())
    }
}

/// What the first 8 bytes of a channel message say, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FramePrefix {
    /// Total message length (`num_bytes`), at least 8.
    pub num_bytes: u32,
    /// Header length: 8, or `num_header_bytes` (16..=`num_bytes`).
    pub header_len: usize,
    /// The message type.
    pub message_type: MessageType,
}

impl FramePrefix {
    /// Reads and validates the first 8 bytes as a Chromium receiver does
    /// (spec 1.4). `Ok(None)` if fewer than 8 bytes are available.
    pub fn peek(bytes: &[u8], max_num_bytes: u32) -> Result<Option<Self>> {
        if bytes.len() < LEGACY_HEADER_LEN {
            return Ok(None);
        }
        let first: LegacyHeader = Reader::new(bytes).layout()?;
        let num_bytes = first.num_bytes.get();
        // `num_handles` in the legacy form, `num_header_bytes` in the full one.
        let word = first.num_handles.get();
        let message_type = MessageType(first.message_type.get());
        if (num_bytes as usize) < LEGACY_HEADER_LEN {
            return Err(Error::InvalidValue {
                field: "channel.num_bytes",
                value: u64::from(num_bytes),
                reason: "smaller than the 8-byte header",
            });
        }
        if num_bytes > max_num_bytes {
            return Err(Error::LimitExceeded {
                field: "channel.num_bytes",
                value: u64::from(num_bytes),
                limit: u64::from(max_num_bytes),
            });
        }
        let header_len = if message_type == MessageType::NORMAL_LEGACY {
            LEGACY_HEADER_LEN
        } else {
            let hb = usize::from(word);
            if hb < HEADER_LEN {
                return Err(Error::InvalidValue {
                    field: "channel.num_header_bytes",
                    value: u64::from(word),
                    reason: "smaller than the 16-byte header",
                });
            }
            if hb > num_bytes as usize {
                return Err(Error::InvalidValue {
                    field: "channel.num_header_bytes",
                    value: u64::from(word),
                    reason: "larger than num_bytes",
                });
            }
            hb
        };
        Ok(Some(Self {
            num_bytes,
            header_len,
            message_type,
        }))
    }
}

/// One channel message: header plus payload, borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame<'a> {
    /// The header, in the form it arrived in (or will be sent in).
    pub header: ChannelHeader<'a>,
    /// Bytes after the header, up to `num_bytes`.
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Decodes the channel message at the start of `bytes` (which may hold
    /// more after it), with the default incoming size limit. Returns the
    /// frame and the number of bytes it occupies.
    ///
    /// Accepts what a Chromium channel accepts (`Channel::TryDispatchMessage`):
    /// `num_bytes`, `num_header_bytes` and `num_handles` are checked, the six
    /// padding bytes of the 16-byte header are ignored (re-encoding writes
    /// them as zero; [`Frame::decode_exact`] demands zero).
    pub fn decode(bytes: &'a [u8]) -> Result<(Self, usize)> {
        Self::decode_with_limit(bytes, MAX_INCOMING_MESSAGE_NUM_BYTES)
    }

    /// Splits the next frame off a caller-owned receive buffer without
    /// copying it: `Ok(None)` while `buf` does not yet hold the whole frame
    /// (or its first 8 bytes), else the frame (borrowing `buf`) and its
    /// length, which the caller then consumes from its buffer. Stateless,
    /// with the default incoming size limit; a bad header is an error.
    pub fn decode_prefix(buf: &'a [u8]) -> Result<Option<(Self, usize)>> {
        Self::decode_prefix_with_limit(buf, MAX_INCOMING_MESSAGE_NUM_BYTES)
    }

    /// As [`Frame::decode_prefix`] with a caller-chosen limit on `num_bytes`.
    pub fn decode_prefix_with_limit(
        buf: &'a [u8],
        max_num_bytes: u32,
    ) -> Result<Option<(Self, usize)>> {
        match FramePrefix::peek(buf, max_num_bytes)? {
            Some(prefix) if buf.len() >= prefix.num_bytes as usize => {
                Self::decode_with_limit(buf, max_num_bytes).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// As [`Frame::decode`] with a caller-chosen limit on `num_bytes`.
    pub fn decode_with_limit(bytes: &'a [u8], max_num_bytes: u32) -> Result<(Self, usize)> {
        let prefix = FramePrefix::peek(bytes, max_num_bytes)?.ok_or(Error::Truncated {
            what: "channel header",
            needed: LEGACY_HEADER_LEN,
            available: bytes.len(),
        })?;
        let total = prefix.num_bytes as usize;
        let message = bytes.get(..total).ok_or(Error::Truncated {
            what: "channel message",
            needed: total,
            available: bytes.len(),
        })?;
        let mut r = Reader::new(message);
        let header = if prefix.message_type == MessageType::NORMAL_LEGACY {
            let h: LegacyHeader = r.layout()?;
            ChannelHeader::Legacy {
                num_handles: h.num_handles.get(),
            }
        } else {
            let h: FullHeader = r.layout()?;
            let extra_header = r.take(prefix.header_len - HEADER_LEN, "channel.extra_header")?;
            ChannelHeader::Full {
                message_type: prefix.message_type,
                num_handles: h.num_handles.get(),
                extra_header,
            }
        };
        if header.num_handles() > MAX_INCOMING_HANDLES_PER_MESSAGE {
            return Err(Error::LimitExceeded {
                field: "channel.num_handles",
                value: u64::from(header.num_handles()),
                limit: u64::from(MAX_INCOMING_HANDLES_PER_MESSAGE),
            });
        }
        let payload = r.rest();
        Ok((Self { header, payload }, total))
    }

    /// [`Frame::decode`], then requires the header to be in canonical form
    /// (zero padding), so that any `Ok` re-encodes to exactly the consumed
    /// bytes. The payload is kept verbatim and not examined. Fails with
    /// [`Error::NotCanonical`] naming the first differing header field.
    pub fn decode_exact(bytes: &'a [u8]) -> Result<(Self, usize)> {
        let (frame, used) = Self::decode(bytes)?;
        let mut canonical = Vec::with_capacity(frame.header.len());
        frame.header.write(
            len_u32("channel.num_bytes", used)?,
            &mut Writer::new(&mut canonical),
        )?;
        require_exact(
            bytes.get(..frame.header.len()).unwrap_or(&[]),
            &canonical,
            |o| frame.header.field_at(o),
        )?;
        Ok((frame, used))
    }

    /// Decodes `bytes` as exactly one channel message (leniently, as
    /// [`Frame::decode`]); `num_bytes` must equal `bytes.len()`.
    pub fn decode_whole(bytes: &'a [u8]) -> Result<Self> {
        let (frame, used) = Self::decode(bytes)?;
        if used != bytes.len() {
            return Err(Error::Mismatch {
                field: "channel.num_bytes",
                expected: bytes.len() as u64,
                actual: used as u64,
            });
        }
        Ok(frame)
    }

    /// Total size on the wire (`num_bytes`).
    pub fn len(&self) -> usize {
        self.header.len() + self.payload.len()
    }

    /// Always false: a frame has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the frame to `out`; returns the number of bytes written.
    /// Fails (leaving `out` unchanged) only if the frame cannot be
    /// represented (over 4 GiB, an extra header over 64 KiB, or a full
    /// header of type 0).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<usize> {
        let total = self.len();
        let num_bytes = u32::try_from(total).map_err(|_| Error::LimitExceeded {
            field: "channel.num_bytes",
            value: total as u64,
            limit: u64::from(u32::MAX),
        })?;
        mojo_wire_kit::append_or_rollback(out, |w| {
            self.header.write(num_bytes, w)?;
            w.bytes(self.payload);
            Ok(total)
        })
    }
}

/// Builds a fresh channel message in place: [`FrameBuilder::begin`] writes the
/// header with a placeholder length, the caller appends the payload, and
/// [`FrameBuilder::finish`] patches `num_bytes`.
#[derive(Debug)]
#[must_use = "call finish() to patch num_bytes"]
pub struct FrameBuilder {
    start: usize,
}

impl FrameBuilder {
    /// Starts a message with `header` at the end of `out`.
    pub fn begin(out: &mut Vec<u8>, header: &ChannelHeader<'_>) -> Result<Self> {
        let start = out.len();
        mojo_wire_kit::append_or_rollback(out, |w| header.write(0, w))?;
        Ok(Self { start })
    }

    /// Patches `num_bytes`; returns the message length. Fails (and removes the
    /// partial message from `out`) if the message exceeds
    /// [`MAX_OUTGOING_MESSAGE_NUM_BYTES`].
    pub fn finish(self, out: &mut Vec<u8>) -> Result<usize> {
        let total = out.len().saturating_sub(self.start);
        let num_bytes = u32::try_from(total)
            .ok()
            .filter(|&n| n <= MAX_OUTGOING_MESSAGE_NUM_BYTES);
        let Some(num_bytes) = num_bytes else {
            out.truncate(self.start);
            return Err(Error::LimitExceeded {
                field: "channel.num_bytes",
                value: total as u64,
                limit: u64::from(MAX_OUTGOING_MESSAGE_NUM_BYTES),
            });
        };
        let bytes = num_bytes.to_le_bytes();
        match out.get_mut(self.start..self.start + bytes.len()) {
            Some(slot) => slot.copy_from_slice(&bytes),
            None => {
                out.truncate(self.start);
                return Err(Error::Codec(mojo_wire_kit::CodecError::OutOfRange {
                    field: "channel.num_bytes",
                    offset: 0,
                    len: bytes.len(),
                    written: total,
                }));
            }
        }
        Ok(total)
    }
}

/// `UPGRADE_OFFER` payload (8 bytes; two fds travel with it: a sealed memfd
/// and an eventfd).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UpgradeOffer<'a> {
    /// 1 = eventfd notifier, 2 = eventfd with `EFD_ZERO_ON_WAKE`.
    pub version: i32,
    /// Ring size in pages (valid 1..=128, default 4).
    pub num_pages: i32,
    /// Bytes after the 8-byte payload (none from Chromium).
    pub trailing: &'a [u8],
}

impl UpgradeOffer<'_> {
    /// Payload size.
    pub const LEN: usize = 8;
    /// Version 1: plain eventfd notifier.
    pub const VERSION_EVENTFD: i32 = 1;
    /// Version 2: eventfd with `EFD_ZERO_ON_WAKE`.
    pub const VERSION_EVENTFD_ZERO_ON_WAKE: i32 = 2;

    /// Whether `version` is one a Chromium receiver understands (otherwise it
    /// replies `UPGRADE_REJECT`).
    pub fn has_known_version(&self) -> bool {
        matches!(
            self.version,
            Self::VERSION_EVENTFD | Self::VERSION_EVENTFD_ZERO_ON_WAKE
        )
    }

    /// Whether `num_pages` is within [`UPGRADE_OFFER_PAGES`] (a Chromium
    /// receiver sends `UPGRADE_REJECT` otherwise, but carries on processing
    /// the offer: a known quirk, spec 1.6).
    pub fn has_valid_num_pages(&self) -> bool {
        UPGRADE_OFFER_PAGES.contains(&self.num_pages)
    }
}

/// A channel control message (types 2 and above). Never reaches the
/// NodeChannel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlMessage<'a> {
    /// `UPGRADE_OFFER`.
    UpgradeOffer(UpgradeOffer<'a>),
    /// `UPGRADE_OFFER` whose payload is shorter than [`UpgradeOffer::LEN`].
    /// Not a parse error: a Chromium receiver ignores it (no reply, the fds
    /// are closed, the channel stays up), and so should the layer above.
    ShortUpgradeOffer {
        /// The payload bytes (fewer than 8), kept so that it re-encodes.
        payload: &'a [u8],
    },
    /// `UPGRADE_ACCEPT`; the payload is normally empty.
    UpgradeAccept {
        /// Payload bytes, kept.
        payload: &'a [u8],
    },
    /// `UPGRADE_REJECT`; the payload is normally empty.
    UpgradeReject {
        /// Payload bytes, kept.
        payload: &'a [u8],
    },
    /// Any other control type (fatal for a Chromium receiver).
    Unknown {
        /// The type.
        message_type: MessageType,
        /// The payload.
        payload: &'a [u8],
    },
}

impl<'a> ControlMessage<'a> {
    /// Decodes the payload of a control message of type `message_type`.
    pub fn decode(message_type: MessageType, payload: &'a [u8]) -> Result<Self> {
        Ok(match message_type {
            MessageType::UPGRADE_OFFER => {
                if payload.len() < UpgradeOffer::LEN {
                    return Ok(Self::ShortUpgradeOffer { payload });
                }
                let mut r = Reader::new(payload);
                let body: UpgradeOfferBody = r.layout()?;
                Self::UpgradeOffer(UpgradeOffer {
                    version: body.version.get(),
                    num_pages: body.num_pages.get(),
                    trailing: r.rest(),
                })
            }
            MessageType::UPGRADE_ACCEPT => Self::UpgradeAccept { payload },
            MessageType::UPGRADE_REJECT => Self::UpgradeReject { payload },
            t if t.is_normal() => {
                return Err(Error::InvalidValue {
                    field: "channel.message_type",
                    value: u64::from(t.0),
                    reason: "not a control message type",
                });
            }
            message_type => Self::Unknown {
                message_type,
                payload,
            },
        })
    }

    /// The channel message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::UpgradeOffer(_) | Self::ShortUpgradeOffer { .. } => MessageType::UPGRADE_OFFER,
            Self::UpgradeAccept { .. } => MessageType::UPGRADE_ACCEPT,
            Self::UpgradeReject { .. } => MessageType::UPGRADE_REJECT,
            Self::Unknown { message_type, .. } => *message_type,
        }
    }

    /// Appends the payload (no channel header).
    pub fn encode_payload(&self, out: &mut Vec<u8>) -> Result<()> {
        let mut w = Writer::new(out);
        match self {
            Self::UpgradeOffer(o) => {
                w.layout(&UpgradeOfferBody {
                    version: I32::new(o.version),
                    num_pages: I32::new(o.num_pages),
                });
                w.bytes(o.trailing);
            }
            Self::ShortUpgradeOffer { payload }
            | Self::UpgradeAccept { payload }
            | Self::UpgradeReject { payload }
            | Self::Unknown { payload, .. } => w.bytes(payload),
        }
        Ok(())
    }

    /// Name of the payload field at `offset`, for diagnostics.
    pub fn field_at(&self, offset: usize) -> &'static str {
        match self {
            Self::UpgradeOffer(_) => {
                UpgradeOfferBody::field_at(offset).unwrap_or("upgrade_offer.trailing")
            }
            Self::ShortUpgradeOffer { .. } => "upgrade_offer.short_payload",
            _ => "control.payload",
        }
    }

    /// Appends a complete fresh control message (16-byte header, as every
    /// build sends control messages). `UPGRADE_OFFER` carries 2 fds.
    pub fn encode_frame(&self, num_handles: u16, out: &mut Vec<u8>) -> Result<usize> {
        let b = FrameBuilder::begin(
            out,
            &ChannelHeader::control(self.message_type(), num_handles),
        )?;
        self.encode_payload(out)?;
        b.finish(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(FramePrefix::peek(&[1, 2, 3], u32::MAX), Ok(None));
        let e = Frame::decode(&[7, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.field(), "channel.num_bytes");
        // Full header with num_header_bytes 8.
        let e = Frame::decode(&[16, 0, 0, 0, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.field(), "channel.num_header_bytes");
        // num_header_bytes > num_bytes.
        let e = Frame::decode(&[16, 0, 0, 0, 24, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.field(), "channel.num_header_bytes");
        // Too large.
        let e = Frame::decode(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).unwrap_err();
        assert!(matches!(e, Error::LimitExceeded { .. }));
        // Incomplete.
        let e = Frame::decode(&[9, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert!(matches!(e, Error::Truncated { needed: 9, .. }));
    }

    #[test]
    fn header_padding_is_ignored_but_not_canonical() {
        // Chromium's channel never reads the six padding bytes.
        let bytes = [16, 0, 0, 0, 16, 0, 1, 0, 3, 0, 0, 0, 0, 1, 0, 0];
        let (f, used) = Frame::decode(&bytes).unwrap();
        assert_eq!(used, 16);
        assert_eq!(f.header.num_handles(), 3);
        assert_eq!(
            Frame::decode_exact(&bytes).unwrap_err(),
            Error::NotCanonical {
                offset: 13,
                field: "channel.padding"
            }
        );
        let mut out = Vec::new();
        f.encode(&mut out).unwrap();
        assert_eq!(out, [16, 0, 0, 0, 16, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Frame::decode_exact(&out), Ok((f, 16)));
    }

    #[test]
    fn odd_lengths_and_extra_header_round_trip() {
        let bytes = [
            27, 0, 0, 0, 24, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
            0xee,
        ];
        let (f, used) = Frame::decode(&bytes).unwrap();
        assert_eq!(used, 27);
        assert_eq!(f.header.num_handles(), 2);
        assert_eq!(f.header.len(), 24);
        assert_eq!(f.payload, &[9, 10, 11]);
        let mut out = Vec::new();
        assert_eq!(f.encode(&mut out), Ok(27));
        assert_eq!(out, &bytes[..27]);
    }

    #[test]
    fn full_header_of_type_zero_is_not_encodable() {
        let f = Frame {
            header: ChannelHeader::Full {
                message_type: MessageType::NORMAL_LEGACY,
                num_handles: 0,
                extra_header: &[],
            },
            payload: &[],
        };
        let mut out = vec![1];
        assert!(f.encode(&mut out).is_err());
        assert_eq!(out, [1]);
    }

    #[test]
    fn builder_patches_length() {
        let mut out = vec![0xaa];
        let b = FrameBuilder::begin(&mut out, &ChannelHeader::Legacy { num_handles: 1 }).unwrap();
        out.extend_from_slice(&[0; 8]);
        assert_eq!(b.finish(&mut out), Ok(16));
        assert_eq!(&out[1..9], &[16, 0, 0, 0, 1, 0, 0, 0]);
    }

    #[test]
    fn upgrade_reject_is_the_16_byte_form() {
        // Spec example E.
        let mut out = Vec::new();
        ControlMessage::UpgradeReject { payload: &[] }
            .encode_frame(0, &mut out)
            .unwrap();
        assert_eq!(out, [16, 0, 0, 0, 16, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let f = Frame::decode_whole(&out).unwrap();
        assert_eq!(
            ControlMessage::decode(f.header.message_type(), f.payload),
            Ok(ControlMessage::UpgradeReject { payload: &[] })
        );
    }

    #[test]
    fn short_upgrade_offer_is_a_value() {
        for len in 0..UpgradeOffer::LEN {
            let payload = &[1, 0, 0, 0, 4, 0, 0][..len];
            let c = ControlMessage::decode(MessageType::UPGRADE_OFFER, payload).unwrap();
            assert_eq!(c, ControlMessage::ShortUpgradeOffer { payload });
            assert_eq!(c.message_type(), MessageType::UPGRADE_OFFER);
            let mut out = Vec::new();
            let n = c.encode_frame(2, &mut out).unwrap();
            assert_eq!(n, HEADER_LEN + len);
            let (f, used) = Frame::decode_exact(&out).unwrap();
            assert_eq!(used, n);
            assert_eq!(
                ControlMessage::decode(f.header.message_type(), f.payload),
                Ok(c)
            );
        }
        let full = [1, 0, 0, 0, 4, 0, 0, 0];
        let Ok(ControlMessage::UpgradeOffer(o)) =
            ControlMessage::decode(MessageType::UPGRADE_OFFER, &full)
        else {
            panic!("8 bytes are a full offer")
        };
        assert!(o.has_known_version() && o.has_valid_num_pages());
    }

    #[test]
    fn upgrade_offer_checks() {
        let offer = |version, num_pages| UpgradeOffer {
            version,
            num_pages,
            trailing: &[],
        };
        for p in [1, 4, 128] {
            assert!(offer(1, p).has_valid_num_pages());
        }
        for p in [0, -1, 129, i32::MIN, i32::MAX] {
            assert!(!offer(1, p).has_valid_num_pages());
        }
        assert!(offer(1, 4).has_known_version());
        assert!(offer(2, 4).has_known_version());
        assert!(!offer(0, 4).has_known_version());
        assert!(!offer(3, 4).has_known_version());
    }
}
