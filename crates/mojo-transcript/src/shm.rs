//! The `shared/vectors/shm/` recordings: the chunk lines of the other
//! transcripts plus two kinds of line about shared memory (see
//! `shared/vectors/shm/README.md`):
//!
//! - `map`: a region passed on a link appears, right after the chunk that
//!   carried it, with its non-zero bytes at that moment;
//! - `diff`: right before a chunk line, the bytes of a region that changed
//!   since the previous line about it.
//!
//! Replaying a file top to bottom and applying every [`Changes`] list to a
//! zeroed buffer per region ([`apply`]) gives, at each chunk line, the
//! memory as the relay saw it when it read that chunk.
//!
//! ```
//! use mojo_transcript::Direction;
//! use mojo_transcript::shm::{Line, apply, parse};
//!
//! let text = r#"
//! {"t":0.1,"chan":0,"dir":"a2b","len":2,"hex":"0a0b","nfds":1,"fd_kinds":["file:/dev/shm/x"]}
//! {"event":"map","shm":0,"chan":0,"dir":"a2b","fd_index":0,"size":16,"kind":"file:/dev/shm/x","changes":[[8,"0102"]]}
//! {"event":"diff","shm":0,"changes":[[0,"ff"]]}
//! "#;
//! let lines = parse(text)?;
//! assert!(matches!(&lines[0], Line::Chunk { dir: Direction::AToB, nfds: 1, .. }));
//! let mut region = vec![0; 16];
//! for line in &lines {
//!     match line {
//!         Line::Map { size, changes, .. } => {
//!             assert_eq!(*size, 16);
//!             apply(&mut region, changes);
//!         }
//!         Line::Diff { changes, .. } => apply(&mut region, changes),
//!         Line::Chunk { .. } => {}
//!     }
//! }
//! assert_eq!(region[..10], [0xff, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
//! # Ok::<(), mojo_transcript::TranscriptError>(())
//! ```

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Direction, TranscriptError, decode_hex};

/// `[offset, bytes]` runs of a region.
pub type Changes = Vec<(usize, Vec<u8>)>;

/// One line of a recording with shared-memory snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Bytes (and fds) the relay read from a socket.
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
        /// Region id (from 0, in order of appearance).
        shm: usize,
        /// Channel of that chunk.
        chan: u32,
        /// Its direction.
        dir: Direction,
        /// Which fd of the chunk.
        fd_index: usize,
        /// Region size.
        size: usize,
        /// Its non-zero bytes.
        changes: Changes,
    },
    /// Changes to a region, right before a chunk line.
    Diff {
        /// Region id.
        shm: usize,
        /// The bytes that changed.
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

fn chan(v: &Value) -> Result<u32, String> {
    u32::try_from(num(v, "chan")?).map_err(|_| "`chan` is too large".to_string())
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

fn line_from_json(v: &Value) -> Result<Line, String> {
    Ok(match v.get("event").and_then(Value::as_str) {
        None => Line::Chunk {
            chan: chan(v)?,
            dir: direction(v)?,
            bytes: decode_hex(field(v, "hex")?.as_str().ok_or("`hex` is not a string")?)?,
            nfds: num(v, "nfds").unwrap_or(0),
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
        },
        Some("map") => Line::Map {
            shm: num(v, "shm")?,
            chan: chan(v)?,
            dir: direction(v)?,
            fd_index: num(v, "fd_index")?,
            size: num(v, "size")?,
            changes: changes(v)?,
        },
        Some("diff") => Line::Diff {
            shm: num(v, "shm")?,
            changes: changes(v)?,
        },
        Some(other) => return Err(format!("unknown event {other}")),
    })
}

/// Parses a recording (JSON lines; blank lines are skipped).
pub fn parse(text: &str) -> Result<Vec<Line>, TranscriptError> {
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| TranscriptError::BadLine {
            line: index + 1,
            reason,
        };
        let value: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        lines.push(line_from_json(&value).map_err(bad)?);
    }
    Ok(lines)
}

/// Writes `changes` into `region`; runs beyond its end are cut there (a
/// recording's offsets are the relay's and need not fit a smaller copy).
pub fn apply(region: &mut [u8], changes: &[(usize, Vec<u8>)]) {
    for (offset, bytes) in changes {
        let Some(room) = region.len().checked_sub(*offset) else {
            continue;
        };
        let n = bytes.len().min(room);
        if let (Some(dst), Some(src)) = (region.get_mut(*offset..*offset + n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
    }
}

/// Every recording of `shm/cros` and `shm/desktop` under the vectors
/// directory `dir` whose file name passes `keep`, sorted, each with
/// whether it is the desktop profile. Missing folders give no files.
pub fn recordings(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<(PathBuf, bool)> {
    let mut files = Vec::new();
    for (profile, desktop) in [("cros", false), ("desktop", true)] {
        let Ok(entries) = std::fs::read_dir(dir.join("shm").join(profile)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".jsonl") && keep(name) {
                files.push((path, desktop));
            }
        }
    }
    files.sort();
    files
}

/// The scenario part of a recording's file name (`shm_echo_small` of
/// `shm_echo_small-host_proxy.jsonl`).
pub fn scenario(path: &Path) -> String {
    let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or("");
    name.split('-').next().unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_line_parses() {
        let text = concat!(
            r#"{"t":0,"chan":2,"dir":"b2a","len":1,"hex":"ff","nfds":2,"fd_kinds":["socket->chan3","pipe"]}"#,
            "\n\n",
            r#"{"event":"map","shm":1,"chan":2,"dir":"b2a","fd_index":1,"size":64,"kind":"memfd:x","changes":[[0,"00"],[56,"0102030405060708"]]}"#,
            "\n",
            r#"{"event":"diff","shm":1,"changes":[]}"#,
        );
        let lines = parse(text).unwrap();
        assert_eq!(
            lines,
            vec![
                Line::Chunk {
                    chan: 2,
                    dir: Direction::BToA,
                    bytes: vec![0xff],
                    nfds: 2,
                    fd_kinds: vec!["socket->chan3".into(), "pipe".into()],
                },
                Line::Map {
                    shm: 1,
                    chan: 2,
                    dir: Direction::BToA,
                    fd_index: 1,
                    size: 64,
                    changes: vec![(0, vec![0]), (56, vec![1, 2, 3, 4, 5, 6, 7, 8])],
                },
                Line::Diff {
                    shm: 1,
                    changes: vec![]
                },
            ]
        );
    }

    #[test]
    fn bad_lines_name_their_line_and_fault() {
        for (text, line, fault) in [
            ("{}\n{\"event\":\"zap\"}", 1, "missing `chan`"),
            (
                "\n{\"event\":\"diff\",\"shm\":0,\"changes\":[[0,\"f\"]]}",
                2,
                "odd number",
            ),
            ("{\"event\":\"map\",\"shm\":0}", 1, "missing `chan`"),
            ("{\"chan\":0,\"dir\":\"up\",\"hex\":\"\"}", 1, "bad dir"),
            ("not json", 1, "not JSON"),
            ("{\"event\":\"zap\"}", 1, "unknown event zap"),
        ] {
            match parse(text) {
                Err(TranscriptError::BadLine { line: l, reason }) => {
                    assert_eq!(l, line, "{text}");
                    assert!(reason.contains(fault), "{text}: {reason}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn apply_writes_runs_and_cuts_them_at_the_end() {
        let mut region = vec![0u8; 8];
        apply(
            &mut region,
            &[(1, vec![1, 2]), (6, vec![6, 7, 8, 9]), (100, vec![5])],
        );
        assert_eq!(region, [0, 1, 2, 0, 0, 0, 6, 7]);
    }

    #[test]
    fn scenario_is_the_name_before_the_link() {
        assert_eq!(
            scenario(Path::new("/v/shm/cros/shm_echo_small-host_proxy.jsonl")),
            "shm_echo_small"
        );
        assert_eq!(scenario(Path::new("plain")), "plain");
    }

    #[test]
    fn recordings_lists_both_profiles_sorted_and_filtered() {
        let dir = std::env::temp_dir().join(format!("shm-recordings-{}", std::process::id()));
        for (profile, name) in [
            ("desktop", "b-host_proxy.jsonl"),
            ("cros", "b-host_proxy.jsonl"),
            ("cros", "a_legacy-host_client.jsonl"),
            ("cros", "README.md"),
        ] {
            let sub = dir.join("shm").join(profile);
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join(name), "").unwrap();
        }
        let got = recordings(&dir, |n| !n.contains("legacy"));
        let names: Vec<(String, bool)> = got
            .iter()
            .map(|(p, d)| (p.strip_prefix(&dir).unwrap().display().to_string(), *d))
            .collect();
        assert_eq!(
            names,
            vec![
                ("shm/cros/b-host_proxy.jsonl".to_string(), false),
                ("shm/desktop/b-host_proxy.jsonl".to_string(), true),
            ]
        );
        assert!(recordings(&dir.join("nowhere"), |_| true).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
