//! `--summary`: per file, the frames per message type and direction, the
//! bytes per direction, and the handshake timeline.

use std::collections::BTreeMap;
use std::io::Write;

use mojo_transcript::{Direction, StreamKey};

use crate::select::is_handshake;

/// What `--summary` counts of one file.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    /// Frames per message type: `[a2b, b2a]`.
    types: BTreeMap<String, [usize; 2]>,
    /// Frames per direction.
    frames: [usize; 2],
    /// Frame bytes per direction.
    bytes: [usize; 2],
    /// Fds per direction.
    fds: [usize; 2],
    /// Frames that failed.
    failed: usize,
    /// Handshake frames: time, stream, type and description.
    handshake: Vec<(f64, StreamKey, String)>,
}

fn side(d: Direction) -> usize {
    match d {
        Direction::AToB => 0,
        Direction::BToA => 1,
    }
}

impl Summary {
    /// Counts one shown frame.
    pub(crate) fn add(
        &mut self,
        time: f64,
        key: StreamKey,
        kind: &str,
        len: usize,
        fds: usize,
        failed: bool,
    ) {
        let s = side(key.direction);
        self.types.entry(kind.to_string()).or_default()[s] += 1;
        self.frames[s] += 1;
        self.bytes[s] += len;
        self.fds[s] += fds;
        self.failed += usize::from(failed);
        if is_handshake(kind) {
            self.handshake.push((time, key, kind.to_string()));
        }
    }

    /// Prints the summary.
    pub(crate) fn print(&self, out: &mut impl Write) {
        let _ = writeln!(
            out,
            "  frames: a2b {} ({} bytes, {} fds), b2a {} ({} bytes, {} fds), {} failed",
            self.frames[0],
            self.bytes[0],
            self.fds[0],
            self.frames[1],
            self.bytes[1],
            self.fds[1],
            self.failed
        );
        let width = self.types.keys().map(String::len).max().unwrap_or(0);
        let _ = writeln!(out, "  {:width$}   a2b   b2a", "type");
        for (kind, [a, b]) in &self.types {
            let _ = writeln!(out, "  {kind:width$} {a:5} {b:5}");
        }
        if !self.handshake.is_empty() {
            let _ = writeln!(out, "  handshake:");
            for (time, key, kind) in &self.handshake {
                let _ = writeln!(out, "  {time:10.6} {key} {kind}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_go_to_their_direction_and_type() {
        let mut s = Summary::default();
        let a2b = StreamKey {
            channel: 1,
            direction: Direction::AToB,
        };
        let b2a = StreamKey {
            direction: Direction::BToA,
            ..a2b
        };
        s.add(0.1, a2b, "ACCEPT_INVITEE", 56, 0, false);
        s.add(0.2, b2a, "UserMessage", 72, 2, true);
        s.add(0.3, b2a, "UserMessage", 80, 0, false);
        let mut out = Vec::new();
        s.print(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("a2b 1 (56 bytes, 0 fds), b2a 2 (152 bytes, 2 fds), 1 failed"),
            "{text}"
        );
        assert!(text.contains("  UserMessage        0     2"), "{text}");
        assert!(
            text.contains("  handshake:\n    0.100000 chan1 a2b ACCEPT_INVITEE\n"),
            "{text}"
        );
    }
}
