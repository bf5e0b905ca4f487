//! The synchronous broker protocol on the bootstrap socket (spec section 2):
//! `INIT`, `BUFFER_REQUEST`, `BUFFER_RESPONSE`.
//!
//! Each broker message is the payload of a channel message and starts with an
//! 8-byte `BrokerMessageHeader` (`type u32, padding u32`). The client reads
//! broker messages with exact sizes computed from its *own* channel header
//! form (spec 2.3); [`expected_frame_len`] and [`check_client_read`] model that.

use mojo_wire_kit::le::U32;
use mojo_wire_kit::{Guid, WireLayout, protocol_enum};

use crate::channel::{ChannelHeader, Frame, FrameBuilder, HeaderForm};
use crate::codec::{Reader, Writer, require_exact, require_exact_frame};
use crate::error::{Error, Result};
use crate::layouts::{BrokerHeader, BufferRequestBody, BufferResponseBody};
use crate::profile::Profile;

/// Size of `BrokerMessageHeader`.
pub const BROKER_HEADER_LEN: usize = BrokerHeader::SIZE;
/// Size of `BufferRequestData`.
pub const BUFFER_REQUEST_DATA_LEN: usize = BufferRequestBody::SIZE;
/// Size of `BufferResponseData`.
pub const BUFFER_RESPONSE_DATA_LEN: usize = BufferResponseBody::SIZE;

protocol_enum! {
    /// A broker message type (u32). Unknown values are kept.
    pub struct BrokerMessageType(pub u32), unknown "BROKER_TYPE_{}", debug wrapped {
        /// 0: broker -> client, carries the node-channel socket (1 fd).
        INIT = 0 => "INIT",
        /// 1: client -> broker, asks for a shared memory region.
        BUFFER_REQUEST = 1 => "BUFFER_REQUEST",
        /// 2: broker -> client, the region (2 fds) or a failure (0 fds).
        BUFFER_RESPONSE = 2 => "BUFFER_RESPONSE",
    }
}

/// A broker message (the channel payload on the bootstrap socket).
///
/// `trailing` holds bytes after the known body (none from POSIX senders; the
/// Windows `INIT` appends a pipe name); they are kept so re-encoding is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BrokerMessage<'a> {
    /// `INIT` (no body on POSIX).
    Init {
        /// Bytes after the header.
        trailing: &'a [u8],
    },
    /// `BUFFER_REQUEST { size }`.
    BufferRequest {
        /// Bytes requested.
        size: u32,
        /// Bytes after the 4-byte body.
        trailing: &'a [u8],
    },
    /// `BUFFER_RESPONSE { guid_high, guid_low }`; an all-zero guid means failure.
    BufferResponse {
        /// Region id.
        guid: Guid,
        /// Bytes after the 16-byte body.
        trailing: &'a [u8],
    },
    /// Any other type, body kept raw.
    Unknown {
        /// The type.
        message_type: BrokerMessageType,
        /// Everything after the 8-byte header.
        body: &'a [u8],
    },
}

impl<'a> BrokerMessage<'a> {
    /// [`BrokerMessage::decode`], then requires `payload` to be the canonical
    /// encoding of the result (zero `broker.padding`); any `Ok` re-encodes to
    /// exactly `payload`. Fails with [`Error::NotCanonical`] otherwise.
    pub fn decode_exact(payload: &'a [u8]) -> Result<Self> {
        let m = Self::decode(payload)?;
        let mut out = Vec::with_capacity(m.encoded_len());
        m.encode(&mut out)?;
        require_exact(payload, &out, |o| m.field_at(o))?;
        Ok(m)
    }

    /// Decodes a channel payload as a broker message, as the receivers do
    /// (`BrokerHost::OnChannelMessage`, `WaitForBrokerMessage`): the type and
    /// the body sizes are checked, `broker.padding` is never read and is
    /// ignored here too.
    pub fn decode(payload: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(payload);
        let header: BrokerHeader = r.layout_as("broker message header")?;
        let message_type = BrokerMessageType(header.message_type.get());
        Ok(match message_type {
            BrokerMessageType::INIT => Self::Init { trailing: r.rest() },
            BrokerMessageType::BUFFER_REQUEST => {
                let body: BufferRequestBody = r.layout_as("BUFFER_REQUEST body")?;
                Self::BufferRequest {
                    size: body.size.get(),
                    trailing: r.rest(),
                }
            }
            BrokerMessageType::BUFFER_RESPONSE => {
                let body: BufferResponseBody = r.layout_as("BUFFER_RESPONSE body")?;
                Self::BufferResponse {
                    guid: body.guid.into(),
                    trailing: r.rest(),
                }
            }
            message_type => Self::Unknown {
                message_type,
                body: r.rest(),
            },
        })
    }

    /// The message type.
    pub fn message_type(&self) -> BrokerMessageType {
        match self {
            Self::Init { .. } => BrokerMessageType::INIT,
            Self::BufferRequest { .. } => BrokerMessageType::BUFFER_REQUEST,
            Self::BufferResponse { .. } => BrokerMessageType::BUFFER_RESPONSE,
            Self::Unknown { message_type, .. } => *message_type,
        }
    }

    /// The number of fds this message must carry: 1 for `INIT`, 2 for a
    /// successful `BUFFER_RESPONSE` (read-write, then read-only), else 0.
    pub fn expected_handles(&self) -> u16 {
        match self {
            Self::Init { .. } => 1,
            Self::BufferResponse { guid, .. } if guid.is_valid() => 2,
            _ => 0,
        }
    }

    /// Size of the encoded payload.
    pub fn encoded_len(&self) -> usize {
        BROKER_HEADER_LEN
            + match self {
                Self::Init { trailing } => trailing.len(),
                Self::BufferRequest { trailing, .. } => BUFFER_REQUEST_DATA_LEN + trailing.len(),
                Self::BufferResponse { trailing, .. } => BUFFER_RESPONSE_DATA_LEN + trailing.len(),
                Self::Unknown { body, .. } => body.len(),
            }
    }

    /// Appends the payload (broker header and body, no channel header).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<()> {
        let mut w = Writer::new(out);
        w.layout(&BrokerHeader {
            message_type: U32::new(self.message_type().0),
            padding: [0; 4],
        });
        match self {
            Self::Init { trailing } => w.bytes(trailing),
            Self::BufferRequest { size, trailing } => {
                w.layout(&BufferRequestBody {
                    size: U32::new(*size),
                });
                w.bytes(trailing);
            }
            Self::BufferResponse { guid, trailing } => {
                w.layout(&BufferResponseBody {
                    guid: (*guid).into(),
                });
                w.bytes(trailing);
            }
            Self::Unknown { body, .. } => w.bytes(body),
        }
        Ok(())
    }

    /// Name of the field at `offset` of the encoded payload, for diagnostics.
    pub fn field_at(&self, offset: usize) -> &'static str {
        if let Some(name) = BrokerHeader::field_at(offset) {
            return name;
        }
        let o = offset - BROKER_HEADER_LEN;
        let body = match self {
            Self::BufferRequest { .. } => BufferRequestBody::field_at(o),
            Self::BufferResponse { .. } => BufferResponseBody::field_at(o),
            Self::Unknown { .. } => Some("broker.body"),
            Self::Init { .. } => None,
        };
        body.unwrap_or("broker.trailing")
    }

    /// Appends a complete fresh channel message in `profile`'s header form
    /// with [`BrokerMessage::expected_handles`] fds. Write it with a single
    /// `sendmsg` carrying those fds.
    pub fn encode_frame(&self, profile: Profile, out: &mut Vec<u8>) -> Result<usize> {
        let b = FrameBuilder::begin(out, &profile.normal_header(self.expected_handles()))?;
        self.encode(out)?;
        b.finish(out)
    }
}

/// A channel message on the bootstrap socket, decoded down to the broker
/// message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BrokerFrame<'a> {
    /// The channel header as received.
    pub header: ChannelHeader<'a>,
    /// The broker message.
    pub message: BrokerMessage<'a>,
}

impl<'a> BrokerFrame<'a> {
    /// Decodes the frame at the start of `bytes`; returns it and its length.
    /// Control message types are rejected (the broker channel never carries
    /// them).
    pub fn decode(bytes: &'a [u8]) -> Result<(Self, usize)> {
        let (frame, used) = Frame::decode(bytes)?;
        Ok((Self::from_frame(&frame)?, used))
    }

    /// [`BrokerFrame::decode`], then requires the consumed bytes to be the
    /// canonical encoding of the result (header and broker padding zero), so
    /// any `Ok` re-encodes byte for byte; fails with [`Error::NotCanonical`].
    pub fn decode_exact(bytes: &'a [u8]) -> Result<(Self, usize)> {
        require_exact_frame(bytes, Self::decode(bytes)?, Self::encode, |frame, o| {
            let hl = frame.header.len();
            if o < hl {
                frame.header.field_at(o)
            } else {
                frame.message.field_at(o - hl)
            }
        })
    }

    /// Decodes the payload of an already parsed frame.
    pub fn from_frame(frame: &Frame<'a>) -> Result<Self> {
        let t = frame.header.message_type();
        if t.is_control() {
            return Err(Error::InvalidValue {
                field: "channel.message_type",
                value: u64::from(t.0),
                reason: "control messages do not occur on the broker channel",
            });
        }
        Ok(Self {
            header: frame.header,
            message: BrokerMessage::decode(frame.payload)?,
        })
    }

    /// Re-encodes the frame with its original header.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<usize> {
        let b = FrameBuilder::begin(out, &self.header)?;
        self.message.encode(out)?;
        b.finish(out)
    }
}

/// The exact total size a client expects for a broker message when its own
/// channel header is `form` (spec 2.3): `INIT` 16/24, `BUFFER_REQUEST` 20/28,
/// `BUFFER_RESPONSE` 32/40. `None` for unknown types.
pub fn expected_frame_len(form: HeaderForm, message_type: BrokerMessageType) -> Option<usize> {
    let data = match message_type {
        BrokerMessageType::INIT => 0,
        BrokerMessageType::BUFFER_REQUEST => BUFFER_REQUEST_DATA_LEN,
        BrokerMessageType::BUFFER_RESPONSE => BUFFER_RESPONSE_DATA_LEN,
        _ => return None,
    };
    Some(form.len() + BROKER_HEADER_LEN + data)
}

/// Checks a broker message the way a client's blocking exact-size read does
/// (spec 2.3): one read of exactly the expected size with exactly the expected
/// fds, and the broker type at offset `form.len()`. The channel header itself
/// is not checked, as the client does not check it.
pub fn check_client_read(
    bytes: &[u8],
    num_fds: usize,
    form: HeaderForm,
    expected: BrokerMessageType,
    expected_fds: usize,
) -> Result<()> {
    let want = expected_frame_len(form, expected).ok_or(Error::InvalidValue {
        field: "broker.type",
        value: u64::from(expected.0),
        reason: "no fixed size for this broker message type",
    })?;
    if bytes.len() != want {
        return Err(Error::Mismatch {
            field: "broker read size",
            expected: want as u64,
            actual: bytes.len() as u64,
        });
    }
    if num_fds != expected_fds {
        return Err(Error::Mismatch {
            field: "broker read fds",
            expected: expected_fds as u64,
            actual: num_fds as u64,
        });
    }
    let mut r = Reader::new(bytes);
    r.take(form.len(), "channel header")?;
    let t = r.layout::<BrokerHeader>()?.message_type.get();
    if t != expected.0 {
        return Err(Error::Mismatch {
            field: "broker.type",
            expected: u64::from(expected.0),
            actual: u64::from(t),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_padding_is_ignored_but_not_exact() {
        // A legacy-header BUFFER_REQUEST with a non-zero broker padding byte.
        let b = [20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 9, 0, 0, 16, 0, 0];
        let (f, used) = BrokerFrame::decode(&b).unwrap();
        assert_eq!(used, 20);
        assert_eq!(
            f.message,
            BrokerMessage::BufferRequest {
                size: 4096,
                trailing: &[]
            }
        );
        assert_eq!(
            BrokerFrame::decode_exact(&b),
            Err(Error::NotCanonical {
                offset: 14,
                field: "broker.padding"
            })
        );
        assert!(BrokerMessage::decode_exact(&b[8..]).is_err());
    }

    #[test]
    fn sizes_of_2_3() {
        use BrokerMessageType as T;
        assert_eq!(expected_frame_len(HeaderForm::Legacy, T::INIT), Some(16));
        assert_eq!(expected_frame_len(HeaderForm::Full, T::INIT), Some(24));
        assert_eq!(
            expected_frame_len(HeaderForm::Legacy, T::BUFFER_REQUEST),
            Some(20)
        );
        assert_eq!(
            expected_frame_len(HeaderForm::Full, T::BUFFER_REQUEST),
            Some(28)
        );
        assert_eq!(
            expected_frame_len(HeaderForm::Legacy, T::BUFFER_RESPONSE),
            Some(32)
        );
        assert_eq!(
            expected_frame_len(HeaderForm::Full, T::BUFFER_RESPONSE),
            Some(40)
        );
        assert_eq!(expected_frame_len(HeaderForm::Full, T(9)), None);
    }

    #[test]
    fn fresh_encodes_follow_the_profile() {
        for profile in [Profile::Libchrome, Profile::Desktop] {
            let mut out = Vec::new();
            let init = BrokerMessage::Init { trailing: &[] };
            init.encode_frame(profile, &mut out).unwrap();
            check_client_read(&out, 1, profile.header_form(), BrokerMessageType::INIT, 1).unwrap();
            let mut out = Vec::new();
            let resp = BrokerMessage::BufferResponse {
                guid: Guid::new(1, 2),
                trailing: &[],
            };
            resp.encode_frame(profile, &mut out).unwrap();
            check_client_read(
                &out,
                2,
                profile.header_form(),
                BrokerMessageType::BUFFER_RESPONSE,
                2,
            )
            .unwrap();
            let (f, _) = BrokerFrame::decode(&out).unwrap();
            assert_eq!(f.message, resp);
            assert_eq!(f.header.num_handles(), 2);
        }
    }

    #[test]
    fn client_read_rejects_wrong_sizes() {
        let mut out = Vec::new();
        BrokerMessage::Init { trailing: &[] }
            .encode_frame(Profile::Desktop, &mut out)
            .unwrap();
        // A libchrome client reading a desktop INIT gets the wrong size.
        let e =
            check_client_read(&out, 1, HeaderForm::Legacy, BrokerMessageType::INIT, 1).unwrap_err();
        assert_eq!(e.field(), "broker read size");
    }

    #[test]
    fn failure_response_has_no_fds() {
        let m = BrokerMessage::BufferResponse {
            guid: Guid::default(),
            trailing: &[],
        };
        assert_eq!(m.expected_handles(), 0);
    }
}
