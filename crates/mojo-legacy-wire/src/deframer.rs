//! Turns a byte stream, fed in arbitrary pieces, into complete channel
//! messages (spec 1.4).
//!
//! The deframer holds no fds: each frame reports how many fds belong to it
//! (`frame.header.num_handles()`), and the caller pops that many from its own
//! fd FIFO (spec 1.5). A malformed header is a typed [`Error`] and is sticky:
//! the stream cannot be resynchronised, exactly as for a Chromium receiver.
//! Exceeding the buffer limit is sticky too: the refused bytes are lost, so
//! the stream is no longer whole.
//!
//! A caller that owns its receive buffer can skip the copy into a deframer
//! and split frames in place with [`crate::channel::Frame::decode_prefix`].

use crate::channel::{Frame, FramePrefix};
use crate::error::{Error, Result};
use crate::limits::MAX_INCOMING_MESSAGE_NUM_BYTES;

/// Incremental stream deframer with bounded buffering.
#[derive(Debug, Clone)]
pub struct Deframer {
    buf: Vec<u8>,
    start: usize,
    stream_offset: u64,
    max_num_bytes: u32,
    error: Option<Error>,
}

/// One complete frame taken from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deframed<'a> {
    /// Stream offset of the frame's first byte.
    pub offset: u64,
    /// The frame's bytes exactly as received.
    pub bytes: &'a [u8],
    /// The parsed frame (borrowing `bytes`).
    pub frame: Frame<'a>,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::new()
    }
}

impl Deframer {
    /// A deframer accepting frames up to
    /// [`MAX_INCOMING_MESSAGE_NUM_BYTES`].
    pub fn new() -> Self {
        Self::with_limit(MAX_INCOMING_MESSAGE_NUM_BYTES)
    }

    /// A deframer accepting frames up to `max_num_bytes` bytes.
    pub fn with_limit(max_num_bytes: u32) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            stream_offset: 0,
            max_num_bytes,
            error: None,
        }
    }

    /// Most bytes the deframer will buffer: two maximum-size messages. Callers
    /// that drain [`Deframer::next_frame`] after every push never get near it.
    pub fn max_buffered(&self) -> usize {
        (self.max_num_bytes as usize).saturating_mul(2)
    }

    /// Appends received bytes. Fails if the stream already failed, or if
    /// buffering them would exceed [`Deframer::max_buffered`]; that error is
    /// sticky (every later call returns it), as the bytes are lost.
    pub fn push(&mut self, data: &[u8]) -> Result<()> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let total = self.buf.len().saturating_add(data.len());
        if total > self.max_buffered() {
            let e = Error::LimitExceeded {
                field: "deframer.buffered",
                value: total as u64,
                limit: self.max_buffered() as u64,
            };
            self.error = Some(e.clone());
            return Err(e);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// Stream offset of the next byte not yet returned in a frame.
    pub fn stream_offset(&self) -> u64 {
        self.stream_offset
    }

    /// Bytes still missing before the next frame is complete: `None` if a
    /// frame is already complete or the header is not yet known.
    pub fn missing(&self) -> Option<usize> {
        let pending = self.buf.get(self.start..).unwrap_or(&[]);
        let prefix = FramePrefix::peek(pending, self.max_num_bytes).ok()??;
        (prefix.num_bytes as usize)
            .checked_sub(pending.len())
            .filter(|&m| m > 0)
    }

    /// Returns the next complete frame, `Ok(None)` if more bytes are needed,
    /// or the (sticky) error that makes the stream unusable.
    pub fn next_frame(&mut self) -> Result<Option<Deframed<'_>>> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let pending = self.buf.get(self.start..).unwrap_or(&[]);
        let prefix = match FramePrefix::peek(pending, self.max_num_bytes) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.error = Some(e.clone());
                return Err(e);
            }
        };
        let len = prefix.num_bytes as usize;
        if pending.len() < len {
            return Ok(None);
        }
        let offset = self.stream_offset;
        let start = self.start;
        let bytes = self.buf.get(start..start + len).unwrap_or(&[]);
        match Frame::decode_with_limit(bytes, self.max_num_bytes) {
            Ok((frame, _)) => {
                self.start += len;
                self.stream_offset += len as u64;
                Ok(Some(Deframed {
                    offset,
                    bytes,
                    frame,
                }))
            }
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0, 0xab]);
        s.extend_from_slice(&[16, 0, 0, 0, 16, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        s.extend_from_slice(&[8, 0, 0, 0, 2, 0, 0, 0]);
        s
    }

    #[test]
    fn byte_by_byte() {
        let s = stream();
        let mut d = Deframer::new();
        let mut got = Vec::new();
        for b in &s {
            d.push(std::slice::from_ref(b)).unwrap();
            while let Some(f) = d.next_frame().unwrap() {
                got.push((f.offset, f.bytes.to_vec(), f.frame.header.num_handles()));
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, 0);
        assert_eq!(got[1].0, 9);
        assert_eq!(got[2], (25, s[25..].to_vec(), 2));
        assert_eq!(d.buffered(), 0);
        assert_eq!(d.stream_offset(), 33);
    }

    #[test]
    fn errors_are_sticky() {
        let mut d = Deframer::new();
        d.push(&[4, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        let e = d.next_frame().unwrap_err();
        assert_eq!(e.field(), "channel.num_bytes");
        assert_eq!(d.next_frame().unwrap_err(), e);
        assert!(d.push(&[1]).is_err());
    }

    #[test]
    fn reports_missing_bytes() {
        let mut d = Deframer::new();
        d.push(&[20, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!(d.missing(), Some(11));
        assert_eq!(d.next_frame().unwrap(), None);
    }

    #[test]
    fn buffering_is_bounded() {
        let mut d = Deframer::with_limit(16);
        d.push(&[0; 32]).unwrap();
        assert!(d.push(&[0]).is_err());
    }

    #[test]
    fn buffer_limit_errors_are_sticky() {
        let mut d = Deframer::with_limit(16);
        d.push(&[8, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        let e = d.push(&[0; 32]).unwrap_err();
        assert_eq!(e.field(), "deframer.buffered");
        // The stream lost bytes: no frame comes out any more.
        assert_eq!(d.next_frame().unwrap_err(), e);
        assert_eq!(d.push(&[]).unwrap_err(), e);
    }

    #[test]
    fn frames_split_in_place_match_the_deframer() {
        let s = stream();
        let mut rest = &s[..];
        let mut offsets = Vec::new();
        let mut at = 0;
        while let Some((frame, used)) = Frame::decode_prefix(rest).unwrap() {
            assert_eq!(frame.len(), used);
            offsets.push(at);
            at += used;
            rest = &rest[used..];
        }
        assert_eq!(offsets, [0, 9, 25]);
        assert_eq!(Frame::decode_prefix(&s[..5]), Ok(None));
        assert_eq!(Frame::decode_prefix(&s[..8]), Ok(None));
        assert!(Frame::decode_prefix(&[4, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
