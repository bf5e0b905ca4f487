//! A view of a user message payload: its test-peer opcode (the u32 every
//! test-peer message starts with, `shared/spec/test-peers.md` section 2) and
//! a short hex excerpt.

use std::fmt::Write as _;

/// Bytes a payload excerpt shows.
const EXCERPT_BYTES: usize = 24;

/// The test-peer opcodes and their names.
const OPCODES: &[(u32, &str)] = &[
    (1, "Echo"),
    (2, "SinkStart"),
    (3, "SinkData"),
    (4, "SinkAck"),
    (5, "SubPipe"),
    (6, "SubPipeDone"),
    (7, "Shmem"),
    (8, "ShmemAck"),
    (9, "PlatHandle"),
    (10, "PlatHandleAck"),
    (11, "CloseWatch"),
    (12, "CloseWatchReady"),
    (13, "CloseSeen"),
    (14, "CloseSelf"),
    (15, "Hello"),
    (16, "DataPipe"),
    (17, "DataPipeAck"),
    (18, "DataPipeReverse"),
    (19, "DataPipeConsumer"),
    (20, "DataPipeReverseDone"),
    (21, "kSubPipeC2H"),
    (22, "kSubPipeC2HReady"),
    (23, "kSubPipeC2HDone"),
    (24, "kShmemC2H"),
    (25, "kShmemC2HBuffer"),
    (26, "kShmemC2HAck"),
    (27, "kShmemC2HResult"),
    (28, "kPlatHandleC2H"),
    (29, "kPlatHandleC2HFds"),
    (30, "kPlatHandleC2HAck"),
    (31, "kPlatHandleC2HResult"),
    (32, "kPipeBounce"),
    (33, "kPipeBounceBack"),
    (34, "kManyPipe"),
    (35, "kManyPipesDone"),
    (99, "Error"),
];

/// `Name(n)` when `payload` starts with a test-peer opcode.
pub(crate) fn opcode(payload: &[u8]) -> Option<String> {
    let first: [u8; 4] = payload.get(..4)?.try_into().ok()?;
    let op = u32::from_le_bytes(first);
    OPCODES
        .iter()
        .find(|(code, _)| *code == op)
        .map(|(code, name)| format!("{name}({code})"))
}

/// Up to [`EXCERPT_BYTES`] of `payload` in hex, in groups of four, with
/// the total length.
pub(crate) fn excerpt(payload: &[u8]) -> String {
    let mut s = String::new();
    for (i, b) in payload.iter().take(EXCERPT_BYTES).enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    if payload.len() > EXCERPT_BYTES {
        s.push_str(" ...");
    }
    let _ = write!(s, " ({} bytes)", payload.len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opcode_is_named_only_when_the_payload_starts_with_one() {
        assert_eq!(opcode(&[7, 0, 0, 0, 1]).as_deref(), Some("Shmem(7)"));
        assert_eq!(
            opcode(&[35, 0, 0, 0]).as_deref(),
            Some("kManyPipesDone(35)")
        );
        assert_eq!(opcode(&[0, 0, 0, 0]), None);
        assert_eq!(opcode(&[1, 0, 0, 1]), None);
        assert_eq!(opcode(&[1, 0, 0]), None);
    }

    #[test]
    fn an_excerpt_is_short_and_gives_the_length() {
        assert_eq!(excerpt(&[1, 0, 0, 0, 0xab]), "01000000 ab (5 bytes)");
        let long = excerpt(&[0; 100]);
        assert!(long.ends_with("... (100 bytes)"), "{long}");
        assert_eq!(long.matches(' ').count(), 5 + 1 + 2);
        assert_eq!(excerpt(&[]), " (0 bytes)");
    }
}
