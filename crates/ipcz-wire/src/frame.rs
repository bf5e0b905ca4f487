//! Channel framing of an ipcz transport (spec §1.2-1.4): one `IpczHeader` per
//! ipcz message, fds out of band.
//!
//! ```text
//! +0  u16 size         header size: 16 (8 from pre-M129 senders)
//! +2  u16 num_handles  fds attached to this frame
//! +4  u32 num_bytes    header + message
//! +8  i64 creation_timeticks_us   (only if size >= 16)
//! +16 ... header bytes of future versions, then the ipcz message
//! ```

use mojo_wire_kit::le::{I64, U16, U32};
use mojo_wire_kit::{CodecError, WireLayout, Writer, append_or_rollback, checked_len, wire_layout};

use crate::error::{FrameError, MessageError};
use crate::layout_ref::prefix_ref;
use crate::limits::{
    DEFAULT_MAX_BUFFERED_EXTRA, DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_SIZE, MIN_FRAME_HEADER_SIZE,
};
use crate::message::Message;

wire_layout! {
    /// `IpczHeader` as Chrome sends it since M129 (16 bytes). Pre-M129
    /// senders send only the first 8 bytes; newer ones may append more,
    /// which [`Frame::header_extension`] keeps.
    pub struct FrameHeaderWire: size 16, names "IpczHeader" {
        /// Header size: 16 (8 from pre-M129 senders).
        pub size: U16,
        /// fds attached to this frame.
        pub num_handles: U16,
        /// Header plus message.
        pub num_bytes: U32,
        /// Sender's `CLOCK_MONOTONIC` in microseconds.
        pub creation_timeticks_us: I64,
    }
}

/// The decoded fields of a frame header. The header size is implied: 8, plus
/// 8 if a timestamp is present, plus the length of the header extension kept
/// in [`Frame::header_extension`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FrameHeader {
    /// Number of fds that belong to this frame (popped from the transport's fd FIFO).
    pub num_handles: u16,
    /// Sender's `CLOCK_MONOTONIC` in microseconds; `None` in 8-byte headers.
    pub timestamp_us: Option<i64>,
}

impl FrameHeader {
    /// A current (16-byte) header.
    pub fn new(num_handles: u16, timestamp_us: i64) -> Self {
        Self {
            num_handles,
            timestamp_us: Some(timestamp_us),
        }
    }

    /// Header size implied by these fields plus an extension of `extension_len` bytes.
    pub fn header_size(&self, extension_len: usize) -> usize {
        MIN_FRAME_HEADER_SIZE + if self.timestamp_us.is_some() { 8 } else { 0 } + extension_len
    }

    /// Appends a header for a payload of `payload_len` bytes. A header or
    /// frame too long for its `u16`/`u32` length field is an error (and
    /// nothing is appended).
    pub fn encode(
        &self,
        extension: &[u8],
        payload_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        append_or_rollback(out, |w| self.write(w, extension, payload_len))
            .map_err(FrameError::Codec)
    }

    fn write(
        &self,
        w: &mut Writer<'_>,
        extension: &[u8],
        payload_len: usize,
    ) -> Result<(), CodecError> {
        let size = self.header_size(extension.len());
        let num_bytes = size.checked_add(payload_len).ok_or(CodecError::TooLong {
            field: "IpczHeader.num_bytes",
            len: usize::MAX,
        })?;
        let header = FrameHeaderWire {
            size: U16::new(checked_len("IpczHeader.size", size)?),
            num_handles: U16::new(self.num_handles),
            num_bytes: U32::new(checked_len("IpczHeader.num_bytes", num_bytes)?),
            creation_timeticks_us: I64::new(self.timestamp_us.unwrap_or(0)),
        };
        if self.timestamp_us.is_some() {
            w.layout(&header);
        } else {
            // A pre-M129 header: the first 8 bytes of the layout.
            w.bytes(
                header
                    .wire_bytes()
                    .get(..MIN_FRAME_HEADER_SIZE)
                    .unwrap_or_default(),
            );
        }
        if !extension.is_empty() {
            w.bytes(extension);
        }
        Ok(())
    }

    /// Appends this header and `message` encoded as its payload. The header's
    /// `num_handles` is written as given (use [`Message::num_fds`] for a new
    /// frame). On error nothing is appended.
    pub fn encode_frame(
        &self,
        extension: &[u8],
        message: &Message<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), MessageError> {
        append_or_rollback(out, |w| {
            self.write(w, extension, 0)?;
            message.encode_into(w)?;
            let num_bytes = checked_len("IpczHeader.num_bytes", w.len())?;
            w.put_u32_at(4, num_bytes, "IpczHeader.num_bytes")?;
            Ok(())
        })
    }
}

/// One frame: header fields, future-version header bytes, and the payload
/// (the ipcz message bytes), borrowed from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Header fields.
    pub header: FrameHeader,
    /// Header bytes beyond the known fields (empty from Chrome).
    pub header_extension: &'a [u8],
    /// The ipcz message.
    pub payload: &'a [u8],
}

/// What the first bytes of a stream say about the next frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FramePrefix {
    /// The header's `size`.
    header_size: u16,
    /// The header's `num_handles`.
    num_handles: u16,
    /// The header's `num_bytes`: the whole frame's length.
    num_bytes: u32,
}

impl FramePrefix {
    /// Reads and checks the first 8 bytes (`Ok(None)` if fewer are given).
    /// Checks are Chrome's: `size >= 8` and `num_bytes >= size`.
    fn decode_prefix(bytes: &[u8]) -> Result<Option<Self>, FrameError> {
        let wire = match prefix_ref::<FrameHeaderWire>(bytes, FrameHeaderWire::NAME) {
            Ok(wire) => *wire,
            // An 8-byte header at the end of the input: its first 8 bytes
            // (the timestamp reads as zero and is not used).
            Err(_) => match bytes.get(..MIN_FRAME_HEADER_SIZE) {
                Some(prefix) => FrameHeaderWire::from_zero_extended(prefix),
                None => return Ok(None),
            },
        };
        let (header_size, num_handles, num_bytes) = (
            wire.size.get(),
            wire.num_handles.get(),
            wire.num_bytes.get(),
        );
        if usize::from(header_size) < MIN_FRAME_HEADER_SIZE {
            Err(FrameError::HeaderSize { size: header_size })
        } else if num_bytes < u32::from(header_size) {
            Err(FrameError::LengthBelowHeader {
                num_bytes,
                header_size,
            })
        } else {
            Ok(Some(Self {
                header_size,
                num_handles,
                num_bytes,
            }))
        }
    }
}

impl<'a> Frame<'a> {
    /// A current-format frame around `payload`.
    pub fn new(payload: &'a [u8], num_handles: u16, timestamp_us: i64) -> Self {
        Self {
            header: FrameHeader::new(num_handles, timestamp_us),
            header_extension: &[],
            payload,
        }
    }

    /// Decodes one frame from the start of `bytes`; returns it and the number
    /// of bytes it occupies. Fewer bytes than the frame needs are an error
    /// ([`FrameError::Truncated`]); [`Self::decode_prefix`] waits instead.
    pub fn decode(bytes: &'a [u8]) -> Result<(Self, usize), FrameError> {
        let Some(prefix) = FramePrefix::decode_prefix(bytes)? else {
            return Err(FrameError::Truncated {
                needed: MIN_FRAME_HEADER_SIZE,
                available: bytes.len(),
            });
        };
        let total = prefix.num_bytes as usize;
        let Some(frame_bytes) = bytes.get(..total) else {
            return Err(FrameError::Truncated {
                needed: total,
                available: bytes.len(),
            });
        };
        Ok((Self::from_parts(prefix, frame_bytes), total))
    }

    /// Splits the next frame off the start of a caller-owned receive buffer,
    /// without copying: `Ok(None)` if the buffer does not hold the whole frame
    /// yet. The second value is the number of bytes the frame occupies (the
    /// caller drops them once done with the frame). A malformed header is an
    /// error however many bytes follow.
    pub fn decode_prefix(buf: &'a [u8]) -> Result<Option<(Self, usize)>, FrameError> {
        let Some(prefix) = FramePrefix::decode_prefix(buf)? else {
            return Ok(None);
        };
        let total = prefix.num_bytes as usize;
        Ok(buf
            .get(..total)
            .map(|frame_bytes| (Self::from_parts(prefix, frame_bytes), total)))
    }

    /// Splits an already checked frame.
    fn from_parts(prefix: FramePrefix, frame_bytes: &'a [u8]) -> Self {
        let size = usize::from(prefix.header_size);
        let (timestamp_us, ext_start) = if size >= FRAME_HEADER_SIZE {
            // `size` >= 16 and `num_bytes` >= `size`: the timestamp is there.
            let timestamp = prefix_ref::<FrameHeaderWire>(frame_bytes, FrameHeaderWire::NAME)
                .map(|wire| wire.creation_timeticks_us.get());
            (timestamp.ok(), FRAME_HEADER_SIZE)
        } else {
            (None, MIN_FRAME_HEADER_SIZE)
        };
        Self {
            header: FrameHeader {
                num_handles: prefix.num_handles,
                timestamp_us,
            },
            header_extension: frame_bytes.get(ext_start..size).unwrap_or(&[]),
            payload: frame_bytes.get(size..).unwrap_or(&[]),
        }
    }

    /// Total encoded length.
    pub fn len(&self) -> usize {
        self.header.header_size(self.header_extension.len()) + self.payload.len()
    }

    /// Whether the frame has neither header nor payload (never true).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the frame's bytes: exactly the received form.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        append_or_rollback(out, |w| {
            self.header
                .write(w, self.header_extension, self.payload.len())?;
            w.bytes(self.payload);
            Ok(())
        })
        .map_err(FrameError::Codec)
    }
}

/// Yields complete frames from a byte stream fed in arbitrary pieces.
///
/// Buffering is bounded: a frame longer than `max_frame_len` is an error, and
/// so is feeding more undrained bytes than `max_frame_len + extra`. The caller
/// owns the fds: each frame reports how many it claims, and (optionally,
/// after [`Deframer::track_fds`]) the deframer holds back a frame until that
/// many fds have been reported with [`Deframer::fds_arrived`], as Chrome does.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    start: usize,
    stream_offset: u64,
    max_frame_len: u32,
    max_buffered: usize,
    fds: Option<usize>,
    error: Option<FrameError>,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::new()
    }
}

impl Deframer {
    /// A deframer with the default limits.
    pub fn new() -> Self {
        Self::with_limits(DEFAULT_MAX_FRAME_LEN, DEFAULT_MAX_BUFFERED_EXTRA)
    }

    /// A deframer accepting frames up to `max_frame_len` bytes and buffering at
    /// most `max_frame_len + extra` undrained bytes.
    pub fn with_limits(max_frame_len: u32, extra: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            stream_offset: 0,
            max_frame_len,
            max_buffered: (max_frame_len as usize).saturating_add(extra),
            fds: None,
            error: None,
        }
    }

    /// Makes [`Self::next_frame`] wait until enough fds have arrived.
    pub fn track_fds(&mut self) {
        self.fds.get_or_insert(0);
    }

    /// Reports `count` fds received from the socket (only with fd tracking).
    pub fn fds_arrived(&mut self, count: usize) {
        if let Some(n) = &mut self.fds {
            *n = n.saturating_add(count);
        }
    }

    /// fds reported but not yet claimed by a frame (only with fd tracking).
    pub fn unclaimed_fds(&self) -> Option<usize> {
        self.fds
    }

    /// Bytes buffered and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Stream offset of the first buffered byte.
    pub fn stream_offset(&self) -> u64 {
        self.stream_offset
    }

    /// Appends received bytes. Exceeding the buffer limit is final: the
    /// stream has lost bytes, so this and every later call return the same
    /// [`FrameError::BufferFull`].
    pub fn push(&mut self, data: &[u8]) -> Result<(), FrameError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let buffered = self.buf.len().saturating_add(data.len());
        if buffered > self.max_buffered {
            let e = FrameError::BufferFull {
                buffered,
                max: self.max_buffered,
            };
            self.error = Some(e.clone());
            return Err(e);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The next complete frame with its stream offset, `None` if more bytes
    /// (or fds) are needed. An error is final: the transport is broken.
    pub fn next_frame(&mut self) -> Result<Option<(u64, Frame<'_>)>, FrameError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let prefix = match FramePrefix::decode_prefix(pending) {
            Ok(None) => return Ok(None),
            Err(e) => {
                self.error = Some(e.clone());
                return Err(e);
            }
            Ok(Some(p)) => p,
        };
        if prefix.num_bytes > self.max_frame_len {
            let e = FrameError::TooLarge {
                num_bytes: prefix.num_bytes,
                max: self.max_frame_len,
            };
            self.error = Some(e.clone());
            return Err(e);
        }
        let total = prefix.num_bytes as usize;
        if pending.len() < total {
            return Ok(None);
        }
        if let Some(available) = &mut self.fds {
            let needed = usize::from(prefix.num_handles);
            if *available < needed {
                return Ok(None);
            }
            *available -= needed;
        }
        let offset = self.stream_offset;
        let begin = self.start;
        self.start += total;
        self.stream_offset += total as u64;
        let frame_bytes = self.buf.get(begin..begin + total).unwrap_or_default();
        Ok(Some((offset, Frame::from_parts(prefix, frame_bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(header_size: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&header_size.to_le_bytes());
        v.extend_from_slice(&1u16.to_le_bytes());
        v.extend_from_slice(&(u32::from(header_size) + payload.len() as u32).to_le_bytes());
        v.resize(usize::from(header_size), 0xab);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn parses_and_reencodes_every_header_size() {
        for size in [8u16, 9, 15, 16, 24] {
            let bytes = frame_bytes(size, &[1, 2, 3]);
            let (frame, used) = Frame::decode(&bytes).unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(frame.payload, &[1, 2, 3]);
            assert_eq!(frame.header.num_handles, 1);
            assert_eq!(frame.header.timestamp_us.is_some(), size >= 16);
            let mut out = Vec::new();
            frame.encode(&mut out).unwrap();
            assert_eq!(out, bytes, "size {size}");
        }
    }

    #[test]
    fn rejects_what_chrome_rejects() {
        let mut b = frame_bytes(16, &[]);
        b[0] = 7;
        assert_eq!(Frame::decode(&b), Err(FrameError::HeaderSize { size: 7 }));
        let mut b = frame_bytes(16, &[]);
        b[4] = 15;
        assert!(matches!(
            Frame::decode(&b),
            Err(FrameError::LengthBelowHeader { num_bytes: 15, .. })
        ));
        assert!(matches!(
            Frame::decode(&[16, 0, 0]),
            Err(FrameError::Truncated { .. })
        ));
    }

    #[test]
    fn deframer_handles_byte_by_byte_and_fd_waits() {
        let mut stream = frame_bytes(16, &[9; 24]);
        stream.extend(frame_bytes(8, &[7; 8]));
        let mut d = Deframer::new();
        d.track_fds();
        let mut got = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b)).unwrap();
            while let Some((off, f)) = d.next_frame().unwrap() {
                got.push((off, f.payload.to_vec()));
            }
        }
        assert!(got.is_empty(), "frames must wait for their fds");
        d.fds_arrived(2);
        while let Some((off, f)) = d.next_frame().unwrap() {
            got.push((off, f.payload.to_vec()));
        }
        assert_eq!(got, vec![(0, vec![9; 24]), (40, vec![7; 8])]);
        assert_eq!(d.unclaimed_fds(), Some(0));
    }

    #[test]
    fn decode_prefix_waits_for_the_whole_frame() {
        let mut buf = frame_bytes(16, &[5; 8]);
        buf.extend(frame_bytes(8, &[6; 3]));
        for cut in 0..24 {
            assert_eq!(Frame::decode_prefix(&buf[..cut]), Ok(None), "{cut}");
        }
        let (first, used) = Frame::decode_prefix(&buf).unwrap().unwrap();
        assert_eq!((first.payload, used), (&[5u8; 8][..], 24));
        let (second, used) = Frame::decode_prefix(&buf[24..]).unwrap().unwrap();
        assert_eq!((second.payload, used), (&[6u8; 3][..], 11));
        let mut bad = buf.clone();
        bad[0] = 7;
        assert_eq!(
            Frame::decode_prefix(&bad[..8]),
            Err(FrameError::HeaderSize { size: 7 })
        );
    }

    #[test]
    fn buffer_limit_errors_are_sticky() {
        let mut d = Deframer::with_limits(64, 0);
        let full = d.push(&[0; 65]).unwrap_err();
        assert!(matches!(full, FrameError::BufferFull { .. }));
        assert_eq!(d.push(&[]), Err(full.clone()));
        assert_eq!(d.next_frame().map(|f| f.is_some()), Err(full));
    }

    #[test]
    fn deframer_limits() {
        let mut d = Deframer::with_limits(64, 0);
        d.push(&frame_bytes(16, &[0; 100])[..8]).unwrap();
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge { .. })));
        let mut d = Deframer::with_limits(64, 0);
        assert!(matches!(
            d.push(&[0; 65]),
            Err(FrameError::BufferFull { .. })
        ));
    }
}
