//! Reader for the wire transcripts recorded under `shared/vectors/`.
//!
//! A transcript is a JSON-lines file: one object per `recvmsg()` chunk that the
//! capture relay read (see `shared/vectors/README.md`). Chunk boundaries are the
//! relay's reads, not message boundaries, so consumers almost always want the
//! reassembled [`Stream`] of one `(channel, direction)` pair: its bytes in order,
//! plus the stream offsets at which fds arrived.
//!
//! It knows nothing about either protocol. Besides reading, [`writer`]
//! writes the same format ([`TranscriptWriter`], within a byte bound, into
//! any `io::Write`: the recorder owns the file), so a recording made by our
//! own proxy reads like the vectors. [`shm`] reads the recordings with
//! shared-memory snapshots (`map` and `diff` lines). [`testing`] holds the test support every crate shares (vector and corpus
//! loading, `unhex`, stream pieces), and [`build_script`] the one rule for
//! missing vectors: their tests are reported as ignored, with the reason.
//!
//! ```
//! use mojo_transcript::{Direction, StreamKey, Transcript};
//!
//! // Two chunks of one message on channel 1, then its end of stream.
//! let text = r#"
//! {"t":0.1,"chan":1,"dir":"a2b","len":3,"hex":"0a0b0c","nfds":1,"fd_kinds":["pipe"]}
//! {"t":0.2,"chan":1,"dir":"a2b","len":2,"hex":"0d0e","nfds":0,"fd_kinds":[]}
//! {"t":0.3,"chan":1,"dir":"a2b","len":0,"hex":"","nfds":0,"fd_kinds":[]}
//! "#;
//! let transcript = Transcript::parse(text)?;
//! let streams = transcript.streams();
//! let stream = &streams[&StreamKey { channel: 1, direction: Direction::AToB }];
//! assert_eq!(stream.bytes, [0x0a, 0x0b, 0x0c, 0x0d, 0x0e]);
//! assert_eq!(stream.fds_in(0..3), 1); // the fd came with the first chunk
//! assert!(stream.saw_eof);
//! # Ok::<(), mojo_transcript::TranscriptError>(())
//! ```

#![forbid(unsafe_code)]

pub mod build_script;
mod locate;
pub mod shm;
pub mod testing;
pub mod writer;

pub use locate::{VECTORS_ENV, VectorsLocation, locate_vectors};
pub use writer::{ChunkLine, FINAL_LINE_RESERVE, Recorded, TranscriptWriter, format_line};

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Direction of a chunk on its channel, as the relay names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// From side A (or, on a passed channel, from the side that sent the socket).
    AToB,
    /// The opposite direction.
    BToA,
}

impl Direction {
    /// The transcript spelling: `a2b` or `b2a`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AToB => "a2b",
            Self::BToA => "b2a",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `recvmsg()` chunk as recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// Seconds since the recording started.
    pub time: f64,
    /// Channel number: 0 is the inherited socket, N a socket passed in the stream.
    pub channel: u32,
    /// Direction on that channel.
    pub direction: Direction,
    /// The bytes read. Empty with `len` 0 marks end of stream.
    pub bytes: Vec<u8>,
    /// Number of bytes the relay read (can exceed `bytes.len()` only if `truncated`).
    pub len: usize,
    /// Number of fds that arrived with this chunk.
    pub num_fds: usize,
    /// A description of each fd (`socket->chanN`, `memfd:NAME`, `pipe`, ...).
    pub fd_kinds: Vec<String>,
    /// True if the recording kept fewer bytes than were read.
    pub truncated: bool,
}

impl Chunk {
    /// True for the zero-length chunk that marks end of stream.
    pub fn is_eof(&self) -> bool {
        self.len == 0
    }
}

/// Fds that arrived with the chunk starting at `offset` of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdArrival {
    /// Stream offset of the first byte of the chunk that carried the fds.
    pub offset: usize,
    /// Length in bytes of that chunk.
    pub chunk_len: usize,
    /// How many fds arrived.
    pub count: usize,
    /// Their descriptions, as recorded.
    pub kinds: Vec<String>,
}

/// The key of one reassembled stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey {
    /// Channel number.
    pub channel: u32,
    /// Direction.
    pub direction: Direction,
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chan{} {}", self.channel, self.direction)
    }
}

/// All bytes of one `(channel, direction)` pair, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stream {
    /// The concatenated chunk bytes.
    pub bytes: Vec<u8>,
    /// Where fds arrived, in order.
    pub fds: Vec<FdArrival>,
    /// Whether an end-of-stream chunk was seen.
    pub saw_eof: bool,
    /// Whether any chunk was recorded truncated (the bytes are then incomplete).
    pub truncated: bool,
}

impl Stream {
    /// Total fds received on this stream.
    pub fn total_fds(&self) -> usize {
        self.fds.iter().map(|a| a.count).sum()
    }

    /// Fds that arrived with chunks starting in `range` of stream offsets.
    pub fn fds_in(&self, range: std::ops::Range<usize>) -> usize {
        self.fds
            .iter()
            .filter(|a| range.contains(&a.offset))
            .map(|a| a.count)
            .sum()
    }
}

/// Which frame each fd arrival of a [`Stream`] belongs to
/// ([`Stream::fds_per_frame`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdsPerFrame<'s> {
    /// Fds per frame, in the order of the frame starts given.
    pub counts: Vec<usize>,
    /// Arrivals whose chunk holds no frame start: no frame can own them.
    pub stray: Vec<&'s FdArrival>,
}

impl Stream {
    /// Assigns each fd arrival to the last frame that starts inside the
    /// chunk that carried it (the vectors README rule): senders attach a
    /// message's fds to the `sendmsg` holding its first byte, and the kernel
    /// ends a read after such a `sendmsg`'s data. `frame_starts` are the
    /// stream offsets of the frames, in order.
    ///
    /// ```
    /// use mojo_transcript::{FdArrival, Stream};
    ///
    /// let stream = Stream {
    ///     bytes: vec![0; 30],
    ///     fds: vec![FdArrival { offset: 0, chunk_len: 20, count: 2, kinds: vec![] }],
    ///     ..Stream::default()
    /// };
    /// // Frames at 0, 10 and 20: the chunk 0..20 holds the first two starts.
    /// assert_eq!(stream.fds_per_frame(&[0, 10, 20]).counts, [0, 2, 0]);
    /// assert_eq!(stream.fds_per_frame(&[25]).stray.len(), 1);
    /// ```
    pub fn fds_per_frame(&self, frame_starts: &[usize]) -> FdsPerFrame<'_> {
        let mut counts = vec![0; frame_starts.len()];
        let mut stray = Vec::new();
        for arrival in &self.fds {
            let end = arrival.offset + arrival.chunk_len;
            let owner = frame_starts
                .iter()
                .rposition(|&start| start >= arrival.offset && start < end);
            match owner.and_then(|index| counts.get_mut(index)) {
                Some(count) => *count += arrival.count,
                None => stray.push(arrival),
            }
        }
        FdsPerFrame { counts, stray }
    }
}

/// A parsed transcript file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transcript {
    /// Every chunk, in file order.
    pub chunks: Vec<Chunk>,
}

/// Why a transcript could not be read.
#[derive(Debug)]
pub enum TranscriptError {
    /// The file could not be read.
    Io(std::io::Error),
    /// A line is not valid JSON, or lacks a field.
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
}

impl fmt::Display for TranscriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read transcript: {e}"),
            Self::BadLine { line, reason } => write!(f, "line {line}: {reason}"),
        }
    }
}

impl std::error::Error for TranscriptError {}

impl From<std::io::Error> for TranscriptError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl Transcript {
    /// Reads a transcript file.
    pub fn from_path(path: &Path) -> Result<Self, TranscriptError> {
        Self::parse(&std::fs::read_to_string(path)?)
    }

    /// Parses transcript text (JSON lines; blank lines are skipped).
    pub fn parse(text: &str) -> Result<Self, TranscriptError> {
        let mut chunks = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |reason: String| TranscriptError::BadLine {
                line: index + 1,
                reason,
            };
            let value: serde_json::Value =
                serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
            chunks.push(chunk_from_json(&value).map_err(bad)?);
        }
        Ok(Self { chunks })
    }

    /// Reassembles every `(channel, direction)` stream, ordered by key.
    pub fn streams(&self) -> BTreeMap<StreamKey, Stream> {
        let mut streams: BTreeMap<StreamKey, Stream> = BTreeMap::new();
        for chunk in &self.chunks {
            let key = StreamKey {
                channel: chunk.channel,
                direction: chunk.direction,
            };
            let stream = streams.entry(key).or_default();
            if chunk.is_eof() {
                stream.saw_eof = true;
                continue;
            }
            if chunk.num_fds > 0 {
                stream.fds.push(FdArrival {
                    offset: stream.bytes.len(),
                    chunk_len: chunk.bytes.len(),
                    count: chunk.num_fds,
                    kinds: chunk.fd_kinds.clone(),
                });
            }
            stream.truncated |= chunk.truncated || chunk.bytes.len() != chunk.len;
            stream.bytes.extend_from_slice(&chunk.bytes);
        }
        streams
    }
}

fn chunk_from_json(value: &serde_json::Value) -> Result<Chunk, String> {
    let field = |name: &str| value.get(name).ok_or_else(|| format!("missing `{name}`"));
    let as_u64 = |name: &str| {
        field(name)?
            .as_u64()
            .ok_or_else(|| format!("`{name}` is not an unsigned integer"))
    };
    let direction = match field("dir")?.as_str() {
        Some("a2b") => Direction::AToB,
        Some("b2a") => Direction::BToA,
        other => return Err(format!("`dir` is {other:?}, expected \"a2b\" or \"b2a\"")),
    };
    let hex = field("hex")?
        .as_str()
        .ok_or_else(|| "`hex` is not a string".to_string())?;
    let bytes = decode_hex(hex)?;
    let fd_kinds = match value.get("fd_kinds") {
        None => Vec::new(),
        Some(kinds) => kinds
            .as_array()
            .ok_or_else(|| "`fd_kinds` is not an array".to_string())?
            .iter()
            .map(|k| k.as_str().unwrap_or("?").to_string())
            .collect(),
    };
    let channel = u32::try_from(as_u64("chan")?).map_err(|_| "`chan` too large".to_string())?;
    let len = usize::try_from(as_u64("len")?).map_err(|_| "`len` too large".to_string())?;
    let num_fds = match value.get("nfds") {
        None => 0,
        Some(_) => usize::try_from(as_u64("nfds")?).map_err(|_| "`nfds` too large".to_string())?,
    };
    Ok(Chunk {
        time: value.get("t").and_then(|t| t.as_f64()).unwrap_or(0.0),
        channel,
        direction,
        bytes,
        len,
        num_fds,
        fd_kinds,
        truncated: value
            .get("truncated")
            .and_then(|t| t.as_bool())
            .unwrap_or(false),
    })
}

/// Decodes lower- or upper-case hex.
pub fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let digits = hex.as_bytes();
    if digits.len() % 2 != 0 {
        return Err("hex has an odd number of digits".into());
    }
    digits
        .chunks_exact(2)
        .map(|pair| match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(format!(
                "bad hex digit in {:?}",
                String::from_utf8_lossy(pair)
            )),
        })
        .collect()
}

/// Encodes bytes as lower-case hex.
pub fn encode_hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Which protocol a transcript file carries, judged from its file name
/// (`<scenario>-<link>.jsonl`, see `shared/vectors/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkProtocol {
    /// `host_proxy` links and `direct_ipcz*` baselines.
    Ipcz,
    /// `proxy_client` links and `direct_legacy*` baselines.
    Legacy,
}

/// The legacy wire profile a vector folder was recorded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorProfile {
    /// `cros/`: 8-byte channel headers, compact event headers.
    Libchrome,
    /// `desktop/`: 16-byte channel headers, extended event headers.
    Desktop,
}

/// One transcript file of the vectors directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VectorFile {
    /// Full path.
    pub path: PathBuf,
    /// Protocol on its links.
    pub protocol: LinkProtocol,
    /// Profile of its folder.
    pub profile: VectorProfile,
}

/// Classifies a transcript by its file name; `None` for files that are not transcripts.
pub fn classify(path: &Path) -> Option<LinkProtocol> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".jsonl")?;
    if stem.ends_with("-host_proxy") || stem.starts_with("direct_ipcz") {
        Some(LinkProtocol::Ipcz)
    } else if stem.ends_with("-proxy_client") || stem.starts_with("direct_legacy") {
        Some(LinkProtocol::Legacy)
    } else {
        None
    }
}

/// The vectors directory: `$MOJO_VECTORS_DIR`, else `shared/vectors` beside the
/// checkout (`<workspace>/../shared/vectors`). `None` if that is not a
/// directory ([`locate_vectors`] says which case; tests use
/// [`testing::vectors`]).
pub fn vectors_dir() -> Option<PathBuf> {
    match locate_vectors() {
        VectorsLocation::Found(dir) => Some(dir),
        VectorsLocation::Missing(_) | VectorsLocation::EnvNotADirectory(_) => None,
    }
}

/// Every transcript under `dir` (`cros/` and `desktop/`), sorted by path.
pub fn vector_files(dir: &Path) -> std::io::Result<Vec<VectorFile>> {
    let mut files = Vec::new();
    for (folder, profile) in [
        ("cros", VectorProfile::Libchrome),
        ("desktop", VectorProfile::Desktop),
    ] {
        let sub = dir.join(folder);
        if !sub.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&sub)? {
            let path = entry?.path();
            if let Some(protocol) = classify(&path) {
                files.push(VectorFile {
                    path,
                    protocol,
                    profile,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassembles_streams_and_fd_offsets() {
        let text = r#"{"t":0.1,"chan":0,"dir":"a2b","len":2,"hex":"0102","nfds":0,"fd_kinds":[]}
{"t":0.2,"chan":0,"dir":"b2a","len":1,"hex":"ff","nfds":0,"fd_kinds":[]}
{"t":0.3,"chan":0,"dir":"a2b","len":3,"hex":"030405","nfds":2,"fd_kinds":["pipe","socket->chan1"]}
{"t":0.4,"chan":0,"dir":"a2b","len":0,"hex":"","nfds":0,"fd_kinds":[]}
"#;
        let transcript = Transcript::parse(text).unwrap();
        assert_eq!(transcript.chunks.len(), 4);
        let streams = transcript.streams();
        let a2b = &streams[&StreamKey {
            channel: 0,
            direction: Direction::AToB,
        }];
        assert_eq!(a2b.bytes, [1, 2, 3, 4, 5]);
        assert_eq!(a2b.fds.len(), 1);
        assert_eq!(a2b.fds[0].offset, 2);
        assert_eq!(a2b.fds[0].count, 2);
        assert_eq!(a2b.fds_in(0..2), 0);
        assert_eq!(a2b.fds_in(2..5), 2);
        assert!(a2b.saw_eof);
        let b2a = &streams[&StreamKey {
            channel: 0,
            direction: Direction::BToA,
        }];
        assert_eq!(b2a.bytes, [0xff]);
        assert!(!b2a.saw_eof);
    }

    /// A 30-byte stream with one fd arrival.
    fn thirty_bytes_with_fds(offset: usize, chunk_len: usize, count: usize) -> Stream {
        Stream {
            bytes: vec![0; 30],
            fds: vec![FdArrival {
                offset,
                chunk_len,
                count,
                kinds: vec![],
            }],
            saw_eof: false,
            truncated: false,
        }
    }

    #[test]
    fn fds_go_to_the_last_frame_starting_in_their_chunk() {
        let stream = thirty_bytes_with_fds(5, 20, 2);
        let FdsPerFrame { counts, stray } = stream.fds_per_frame(&[0, 10, 20]);
        assert_eq!(counts, [0, 0, 2]);
        assert!(stray.is_empty());
    }

    #[test]
    fn fds_in_a_chunk_without_a_frame_start_are_stray() {
        let stream = thirty_bytes_with_fds(12, 5, 1);
        let FdsPerFrame { counts, stray } = stream.fds_per_frame(&[0, 10]);
        assert_eq!(counts, [0, 0]);
        assert_eq!(stray.len(), 1);
        assert_eq!(stray[0].offset, 12);
    }

    #[test]
    fn bad_lines_are_named() {
        let err = Transcript::parse("{\"chan\":0}\n").unwrap_err();
        assert!(matches!(err, TranscriptError::BadLine { line: 1, .. }));
        let err = Transcript::parse("{\"t\":0,\"chan\":0,\"dir\":\"up\",\"len\":0,\"hex\":\"\"}\n")
            .unwrap_err();
        assert!(err.to_string().contains("dir"));
        let err =
            Transcript::parse("{\"t\":0,\"chan\":0,\"dir\":\"a2b\",\"len\":1,\"hex\":\"zz\"}\n")
                .unwrap_err();
        assert!(err.to_string().contains("hex"));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(decode_hex(&encode_hex(&bytes)).unwrap(), bytes);
        assert!(decode_hex("abc").is_err());
    }

    #[test]
    fn classifies_vector_names() {
        assert_eq!(
            classify(Path::new("x/close-host_proxy.jsonl")),
            Some(LinkProtocol::Ipcz)
        );
        assert_eq!(
            classify(Path::new("direct_ipcz_c2h-host_client.jsonl")),
            Some(LinkProtocol::Ipcz)
        );
        assert_eq!(
            classify(Path::new("close-proxy_client.jsonl")),
            Some(LinkProtocol::Legacy)
        );
        assert_eq!(
            classify(Path::new("direct_legacy-host_client.jsonl")),
            Some(LinkProtocol::Legacy)
        );
        assert_eq!(classify(Path::new("INDEX.md")), None);
    }

    #[test]
    #[cfg_attr(
        mojo_vectors_missing,
        ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
    )]
    fn every_shared_vector_reads() {
        let dir = testing::vectors();
        let files = vector_files(&dir).unwrap();
        assert!(!files.is_empty(), "no transcripts in {}", dir.display());
        for file in files {
            let transcript = Transcript::from_path(&file.path)
                .unwrap_or_else(|e| panic!("{}: {e}", file.path.display()));
            for stream in transcript.streams().values() {
                assert!(!stream.truncated, "{} is truncated", file.path.display());
            }
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(text in ".{0,400}") {
                let _ = Transcript::parse(&text);
            }

            #[test]
            fn hex_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                prop_assert_eq!(decode_hex(&encode_hex(&bytes)).unwrap(), bytes);
            }

            #[test]
            fn streams_concatenate_chunks_in_order(
                chunks in proptest::collection::vec(
                    (0u32..3, any::<bool>(), proptest::collection::vec(any::<u8>(), 1..20), 0usize..3),
                    0..30,
                )
            ) {
                let text: String = chunks
                    .iter()
                    .map(|(chan, a2b, bytes, nfds)| {
                        format!(
                            "{{\"t\":0,\"chan\":{chan},\"dir\":\"{}\",\"len\":{},\"hex\":\"{}\",\"nfds\":{nfds}}}\n",
                            if *a2b { "a2b" } else { "b2a" },
                            bytes.len(),
                            encode_hex(bytes)
                        )
                    })
                    .collect();
                let streams = Transcript::parse(&text).unwrap().streams();
                for (key, stream) in &streams {
                    let expected: Vec<u8> = chunks
                        .iter()
                        .filter(|(chan, a2b, _, _)| {
                            *chan == key.channel && (*a2b == (key.direction == Direction::AToB))
                        })
                        .flat_map(|(_, _, bytes, _)| bytes.clone())
                        .collect();
                    prop_assert_eq!(&stream.bytes, &expected);
                    let fds: usize = chunks
                        .iter()
                        .filter(|(chan, a2b, _, _)| {
                            *chan == key.channel && (*a2b == (key.direction == Direction::AToB))
                        })
                        .map(|(_, _, _, n)| n)
                        .sum();
                    prop_assert_eq!(stream.total_fds(), fds);
                }
            }
        }
    }
}
