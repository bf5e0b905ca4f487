//! A reader of the `shared/vectors/shm/` recordings: the chunk lines of the
//! other transcripts plus `map` (a shared region appears, with its non-zero
//! bytes) and `diff` (the bytes of a region that changed since its previous
//! line). See `shared/vectors/shm/README.md`.

use std::path::PathBuf;

use mojo_transcript::{Direction, decode_hex};
use serde_json::Value;

/// `[offset, bytes]` runs.
pub type Changes = Vec<(usize, Vec<u8>)>;

/// One line of a recording.
#[derive(Debug)]
pub enum Line {
    /// Bytes (and fds) read from a socket.
    Chunk {
        /// Channel.
        chan: u32,
        /// Direction.
        dir: Direction,
        /// The bytes.
        bytes: Vec<u8>,
        /// fds that came with them.
        nfds: usize,
        /// What each fd is (`socket->chanN`, `file:...`).
        fd_kinds: Vec<String>,
    },
    /// A region mapped by the relay, right after the chunk that carried it.
    Map {
        /// Region id.
        shm: usize,
        /// Channel of that chunk.
        chan: u32,
        /// Its direction.
        dir: Direction,
        /// Which fd of the chunk.
        fd_index: usize,
        /// Region size.
        size: usize,
        /// Non-zero bytes.
        changes: Changes,
    },
    /// Changes to a region, right before a chunk line.
    Diff {
        /// Region id.
        shm: usize,
        /// Changed bytes.
        changes: Changes,
    },
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name).ok_or_else(|| format!("missing `{name}`"))
}

fn num(v: &Value, name: &str) -> Result<usize, String> {
    field(v, name)?
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("`{name}` is not a count"))
}

fn direction(v: &Value) -> Result<Direction, String> {
    match field(v, "dir")?.as_str() {
        Some("a2b") => Ok(Direction::AToB),
        Some("b2a") => Ok(Direction::BToA),
        other => Err(format!("bad dir {other:?}")),
    }
}

fn changes(v: &Value) -> Result<Changes, String> {
    field(v, "changes")?
        .as_array()
        .ok_or("`changes` is not an array")?
        .iter()
        .map(|run| {
            let offset = run
                .get(0)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or("bad change offset")?;
            let hex = run
                .get(1)
                .and_then(Value::as_str)
                .ok_or("bad change bytes")?;
            Ok((offset, decode_hex(hex)?))
        })
        .collect()
}

/// Parses one recording.
pub fn parse(text: &str) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: String| format!("line {}: {e}", i + 1);
        let v: Value = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let parsed = match v.get("event").and_then(Value::as_str) {
            None => {
                let chan =
                    u32::try_from(num(&v, "chan").map_err(at)?).map_err(|e| at(e.to_string()))?;
                let hex = field(&v, "hex")
                    .map_err(at)?
                    .as_str()
                    .ok_or_else(|| at("hex".into()))?;
                Line::Chunk {
                    chan,
                    dir: direction(&v).map_err(at)?,
                    bytes: decode_hex(hex).map_err(at)?,
                    nfds: num(&v, "nfds").unwrap_or(0),
                    fd_kinds: v
                        .get("fd_kinds")
                        .and_then(Value::as_array)
                        .map(|kinds| {
                            kinds
                                .iter()
                                .map(|k| k.as_str().unwrap_or("?").to_string())
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            }
            Some("map") => Line::Map {
                shm: num(&v, "shm").map_err(at)?,
                chan: u32::try_from(num(&v, "chan").map_err(at)?).map_err(|e| at(e.to_string()))?,
                dir: direction(&v).map_err(at)?,
                fd_index: num(&v, "fd_index").map_err(at)?,
                size: num(&v, "size").map_err(at)?,
                changes: changes(&v).map_err(at)?,
            },
            Some("diff") => Line::Diff {
                shm: num(&v, "shm").map_err(at)?,
                changes: changes(&v).map_err(at)?,
            },
            Some(other) => return Err(at(format!("unknown event {other}"))),
        };
        lines.push(parsed);
    }
    Ok(lines)
}

/// The legacy data pipe recordings (`shm/{cros,desktop}/*datapipe*legacy*`),
/// sorted, each with whether it is the desktop profile (panics without
/// the vectors: `mojo_transcript::testing::vectors`).
pub fn legacy_data_pipe_recordings() -> Vec<(PathBuf, bool)> {
    let dir = mojo_transcript::testing::vectors();
    let mut files = Vec::new();
    for (profile, desktop) in [("cros", false), ("desktop", true)] {
        let Ok(entries) = std::fs::read_dir(dir.join("shm").join(profile)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".jsonl") && name.contains("datapipe") && name.contains("legacy") {
                files.push((path, desktop));
            }
        }
    }
    files.sort();
    files
}
