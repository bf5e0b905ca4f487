//! Writing transcripts: one JSON line per chunk in the format
//! [`Transcript::parse`](crate::Transcript::parse) reads, into any
//! [`Write`], within a byte bound that ends the file with one final line
//! saying it was truncated.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::Direction;

/// Bytes every [`TranscriptWriter`] keeps free for its final line: more
/// than the longest one it writes (all numbers at their widest).
pub const FINAL_LINE_RESERVE: u64 = 320;

/// Times are written clamped to ±this many seconds (about 300 years), so
/// that a line's length is bounded.
pub const MAX_TIME_SECONDS: f64 = 1e10;

/// One chunk to write: what a recorder read or sent on one channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChunkLine<'a> {
    /// Seconds since the recording started (clamped to
    /// ±[`MAX_TIME_SECONDS`]).
    pub time: f64,
    /// Channel number: 0 the inherited socket, N a socket passed in the stream.
    pub channel: u32,
    /// Direction on that channel.
    pub direction: Direction,
    /// The bytes; empty marks end of stream.
    pub bytes: &'a [u8],
    /// A description of each fd that came with the bytes.
    pub fd_kinds: &'a [String],
}

/// Appends `chunk` to `out` as one JSON line (with its `\n`).
///
/// ```
/// use mojo_transcript::{ChunkLine, Direction, Transcript, format_line};
///
/// let mut line = String::new();
/// let kinds = ["pipe".to_string()];
/// let chunk = ChunkLine {
///     time: 0.5,
///     channel: 1,
///     direction: Direction::BToA,
///     bytes: &[0xab, 0x01],
///     fd_kinds: &kinds,
/// };
/// format_line(&chunk, &mut line);
/// assert_eq!(
///     line,
///     "{\"t\":0.500000,\"chan\":1,\"dir\":\"b2a\",\"len\":2,\"hex\":\"ab01\",\"nfds\":1,\"fd_kinds\":[\"pipe\"]}\n"
/// );
/// let read = Transcript::parse(&line)?;
/// assert_eq!(read.chunks[0].bytes, [0xab, 0x01]);
/// # Ok::<(), mojo_transcript::TranscriptError>(())
/// ```
pub fn format_line(chunk: &ChunkLine<'_>, out: &mut String) {
    write_head(
        out,
        chunk.time,
        chunk.channel,
        chunk.direction,
        chunk.bytes.len(),
    );
    out.reserve(chunk.bytes.len() * 2 + 64);
    for b in chunk.bytes {
        let _ = write!(out, "{b:02x}");
    }
    let _ = write!(out, "\",\"nfds\":{},\"fd_kinds\":[", chunk.fd_kinds.len());
    for (i, kind) in chunk.fd_kinds.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_string(kind));
    }
    out.push_str("]}\n");
}

/// `{"t":..,"chan":..,"dir":"..","len":..,"hex":"` (the hex follows).
fn write_head(out: &mut String, time: f64, channel: u32, direction: Direction, len: usize) {
    // A clock that is not finite cannot be written as JSON (0 keeps the
    // line valid), and a bounded one keeps the line's length bounded.
    let time = if time.is_finite() {
        time.clamp(-MAX_TIME_SECONDS, MAX_TIME_SECONDS)
    } else {
        0.0
    };
    let _ = write!(
        out,
        "{{\"t\":{time:.6},\"chan\":{channel},\"dir\":\"{direction}\",\"len\":{len},\"hex\":\""
    );
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// What [`TranscriptWriter::write_chunk`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The chunk's line was written.
    Written,
    /// The chunk did not fit: the final line was written in its place
    /// (its channel, direction and length, no bytes, `"truncated":true`).
    Truncated,
    /// The file was already truncated: nothing was written.
    Stopped,
}

/// Writes transcript lines to `out`, at most `max_bytes` in all.
///
/// A chunk whose line would leave less than [`FINAL_LINE_RESERVE`] bytes
/// under the bound is not written; in its place comes one final line with
/// that chunk's channel, direction, `len` and fd count, an empty `hex`,
/// `"truncated":true` (the vectors' mark for a chunk recorded without all
/// of its bytes) and a `"note"` naming the bound; nothing is written after
/// it. Every line is whole, so the file always parses.
///
/// ```
/// use mojo_transcript::{ChunkLine, Direction, Recorded, Transcript, TranscriptWriter};
///
/// let mut writer = TranscriptWriter::new(Vec::new(), 400);
/// let chunk = |bytes| ChunkLine {
///     time: 0.0,
///     channel: 0,
///     direction: Direction::AToB,
///     bytes,
///     fd_kinds: &[],
/// };
/// assert_eq!(writer.write_chunk(&chunk(&[1, 2]))?, Recorded::Written);
/// assert_eq!(writer.write_chunk(&chunk(&[7; 100]))?, Recorded::Truncated);
/// assert_eq!(writer.write_chunk(&chunk(&[3]))?, Recorded::Stopped);
/// let text = String::from_utf8(writer.into_inner()).unwrap();
/// assert!(text.len() <= 400);
/// let chunks = Transcript::parse(&text)?.chunks;
/// assert_eq!(chunks.len(), 2);
/// assert!(chunks[1].truncated && chunks[1].len == 100 && chunks[1].bytes.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TranscriptWriter<W: Write> {
    out: W,
    max_bytes: u64,
    written: u64,
    truncated: bool,
    line: String,
}

impl<W: Write> TranscriptWriter<W> {
    /// A writer of at most `max_bytes` (raised to [`FINAL_LINE_RESERVE`] if
    /// smaller, so the final line always fits).
    pub fn new(out: W, max_bytes: u64) -> Self {
        Self {
            out,
            max_bytes: max_bytes.max(FINAL_LINE_RESERVE),
            written: 0,
            truncated: false,
            line: String::new(),
        }
    }

    /// Writes one chunk's line, or the final line if it does not fit.
    pub fn write_chunk(&mut self, chunk: &ChunkLine<'_>) -> io::Result<Recorded> {
        if self.truncated {
            return Ok(Recorded::Stopped);
        }
        self.line.clear();
        let room = self.max_bytes.saturating_sub(self.written);
        // A line longer than the room is never formatted: a huge chunk costs
        // nothing once the bound is near.
        let estimate = (chunk.bytes.len() as u64).saturating_mul(2);
        if estimate.saturating_add(FINAL_LINE_RESERVE) <= room {
            format_line(chunk, &mut self.line);
            if (self.line.len() as u64).saturating_add(FINAL_LINE_RESERVE) <= room {
                return self.emit().map(|()| Recorded::Written);
            }
            self.line.clear();
        }
        self.truncated = true;
        write_head(
            &mut self.line,
            chunk.time,
            chunk.channel,
            chunk.direction,
            chunk.bytes.len(),
        );
        let _ = writeln!(
            self.line,
            "\",\"nfds\":{},\"fd_kinds\":[],\"truncated\":true,\"note\":\"capture limit of {} bytes reached: this chunk and all later ones not recorded\"}}",
            chunk.fd_kinds.len(),
            self.max_bytes
        );
        self.emit().map(|()| Recorded::Truncated)
    }

    /// Writes the end-of-stream line (`len` 0) of one channel and direction.
    pub fn write_end_of_stream(
        &mut self,
        time: f64,
        channel: u32,
        direction: Direction,
    ) -> io::Result<Recorded> {
        self.write_chunk(&ChunkLine {
            time,
            channel,
            direction,
            bytes: &[],
            fd_kinds: &[],
        })
    }

    fn emit(&mut self) -> io::Result<()> {
        self.out.write_all(self.line.as_bytes())?;
        self.written = self.written.saturating_add(self.line.len() as u64);
        Ok(())
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Whether the final (truncation) line has been written.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transcript;
    use proptest::prelude::*;

    #[test]
    fn the_final_line_fits_the_reserve_at_its_widest() {
        let mut writer = TranscriptWriter::new(Vec::new(), u64::MAX);
        writer.written = u64::MAX - FINAL_LINE_RESERVE;
        writer.max_bytes = u64::MAX;
        let kinds = vec!["x".repeat(1000); 300];
        let chunk = ChunkLine {
            time: 1e300,
            channel: u32::MAX,
            direction: Direction::BToA,
            bytes: &[0; 200],
            fd_kinds: &kinds,
        };
        assert_eq!(writer.write_chunk(&chunk).unwrap(), Recorded::Truncated);
        let out = writer.into_inner();
        assert!(
            out.len() as u64 <= FINAL_LINE_RESERVE,
            "{} bytes: {}",
            out.len(),
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn odd_fd_kinds_and_clocks_stay_valid_json() {
        let kinds = ["file:/dev/shm/a \"b\"\\\n (deleted)".to_string()];
        let mut line = String::new();
        format_line(
            &ChunkLine {
                time: f64::NAN,
                channel: 3,
                direction: Direction::AToB,
                bytes: &[],
                fd_kinds: &kinds,
            },
            &mut line,
        );
        let chunk = &Transcript::parse(&line).unwrap().chunks[0];
        assert_eq!(chunk.fd_kinds, kinds);
        assert!(chunk.is_eof());
        assert_eq!(chunk.time, 0.0);
    }

    fn chunks() -> impl Strategy<Value = Vec<(u32, bool, Vec<u8>, Vec<String>)>> {
        proptest::collection::vec(
            (
                0u32..3,
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..64),
                proptest::collection::vec("[ -~]{0,12}", 0..3),
            ),
            0..40,
        )
    }

    proptest! {
        #[test]
        fn written_chunks_read_back(chunks in chunks()) {
            let mut writer = TranscriptWriter::new(Vec::new(), u64::MAX);
            for (i, (channel, a2b, bytes, kinds)) in chunks.iter().enumerate() {
                let direction = if *a2b { Direction::AToB } else { Direction::BToA };
                let chunk = ChunkLine { time: i as f64 / 8.0, channel: *channel, direction, bytes, fd_kinds: kinds };
                prop_assert_eq!(writer.write_chunk(&chunk).unwrap(), Recorded::Written);
            }
            let text = String::from_utf8(writer.into_inner()).unwrap();
            let read = Transcript::parse(&text).unwrap();
            prop_assert_eq!(read.chunks.len(), chunks.len());
            for (got, (channel, a2b, bytes, kinds)) in read.chunks.iter().zip(&chunks) {
                prop_assert_eq!(got.channel, *channel);
                prop_assert_eq!(got.direction == Direction::AToB, *a2b);
                prop_assert_eq!(&got.bytes, bytes);
                prop_assert_eq!(got.len, bytes.len());
                prop_assert_eq!(got.num_fds, kinds.len());
                prop_assert_eq!(&got.fd_kinds, kinds);
                prop_assert!(!got.truncated);
            }
        }

        #[test]
        fn the_bound_holds_and_the_file_ends_cleanly(chunks in chunks(), max in 0u64..4000) {
            let mut writer = TranscriptWriter::new(Vec::new(), max);
            let mut outcomes = Vec::new();
            for (channel, a2b, bytes, kinds) in &chunks {
                let direction = if *a2b { Direction::AToB } else { Direction::BToA };
                let chunk = ChunkLine { time: 0.25, channel: *channel, direction, bytes, fd_kinds: kinds };
                outcomes.push(writer.write_chunk(&chunk).unwrap());
            }
            let truncated = writer.is_truncated();
            let text = String::from_utf8(writer.into_inner()).unwrap();
            prop_assert!(text.len() as u64 <= max.max(FINAL_LINE_RESERVE));
            let read = Transcript::parse(&text).unwrap();
            let written = outcomes.iter().filter(|o| **o == Recorded::Written).count();
            // Written chunks are a prefix, then at most one final line, then nothing.
            prop_assert!(outcomes[..written].iter().all(|o| *o == Recorded::Written));
            prop_assert_eq!(read.chunks.len(), written + usize::from(truncated));
            for (got, (_, _, bytes, _)) in read.chunks.iter().zip(&chunks) {
                if got.truncated {
                    prop_assert!(got.bytes.is_empty());
                    prop_assert_eq!(got.len, bytes.len());
                } else {
                    prop_assert_eq!(&got.bytes, bytes);
                }
            }
            prop_assert_eq!(read.chunks.last().is_some_and(|c| c.truncated), truncated);
        }
    }
}
