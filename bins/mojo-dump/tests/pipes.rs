//! `mojo-dump --pipes` on a corrupted copy of a vector: the frame that
//! fails is shown in place, on the pipe its event header names, with the
//! field that is wrong; the frames after it still decode and keep their
//! pipes; and the run fails.

use std::path::PathBuf;
use std::process::Command;

use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::event::{Event, EventData};
use mojo_legacy_wire::fuzzing::deframe_pieces;
use mojo_legacy_wire::node::NodeMessage;
use mojo_legacy_wire::{Deframer, EventHeaderForm};
use mojo_transcript::testing::vectors;
use mojo_transcript::{Direction, Transcript};

/// Stream offset of the first UserMessage frame of chan1 a2b, and its
/// channel header's length.
fn first_user_message(t: &Transcript) -> (usize, usize) {
    let streams = t.streams();
    let stream = streams
        .iter()
        .find(|(k, _)| k.channel == 1 && k.direction == Direction::AToB)
        .map(|(_, s)| s)
        .expect("chan1 a2b");
    let deframed = deframe_pieces(Deframer::new(), [&stream.bytes[..]]);
    for copy in &deframed.frames {
        let f = Frame::decode_whole(&copy.bytes).unwrap();
        if let Ok(NodeMessage::EventMessage(body)) = NodeMessage::decode(f.payload)
            && let Ok(event) = Event::decode(body, EventHeaderForm::Compact)
            && matches!(event.data, EventData::UserMessage(_))
        {
            return (copy.offset as usize, f.header.len());
        }
    }
    panic!("no user message");
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn a_failed_frame_is_shown_on_its_pipe_and_decoding_goes_on() {
    let path = vectors().join("cros/subpipe-proxy_client.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let t = Transcript::parse(&text).unwrap();
    let (frame, header) = first_user_message(&t);
    // NodeChannel header 8, compact event header 24, UserMessage data 16
    // (no ports), then the user message header: its num_dispatchers' high
    // byte 0 -> 1 (over 65535, which Chromium rejects).
    let at = frame + header + 8 + 24 + 16 + 3;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let mut pos = 0;
    for (i, chunk) in t.chunks.iter().enumerate() {
        if chunk.channel != 1 || chunk.direction != Direction::AToB {
            continue;
        }
        let end = pos + chunk.bytes.len();
        if (pos..end).contains(&at) {
            let mut bytes = chunk.bytes.clone();
            bytes[at - pos] ^= 0x01;
            let old = format!("\"{}\"", mojo_transcript::encode_hex(&chunk.bytes));
            let new = format!("\"{}\"", mojo_transcript::encode_hex(&bytes));
            out[i] = out[i].replacen(&old, &new, 1);
        }
        pos = end;
    }
    let copy: PathBuf = std::env::temp_dir().join(format!(
        "mojo-dump-pipes-{}-proxy_client.jsonl",
        std::process::id()
    ));
    std::fs::write(&copy, out.join("\n") + "\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mojo-dump"))
        .arg("--pipes")
        .arg(&copy)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&copy);
    let got = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{got}");
    assert!(got.ends_with(" 1 failed\n"), "{got}");
    // In place: on the attached pipe, where the Hello was, naming the field.
    let l1: Vec<&str> = got
        .lines()
        .skip_while(|l| !l.starts_with("pipe L1:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    let failed = l1
        .iter()
        .position(|l| l.contains(" chan1 a2b ") && l.contains("FAIL"))
        .unwrap_or_else(|| panic!("no failure on L1:\n{got}"));
    assert!(
        l1[failed].contains("UserMessage") && l1[failed].contains("num_dispatchers"),
        "{}",
        l1[failed]
    );
    // What follows still decodes: the SubPipe after it, carrying L2, and
    // L2's echoes.
    assert!(
        l1[failed..]
            .iter()
            .any(|l| l.contains("op=SubPipe(5) +MessagePipe") && l.ends_with("-> pipe L2")),
        "{got}"
    );
    assert_eq!(
        got.lines()
            .filter(|l| l.contains(" chan1 a2b ") && l.contains("op=Echo(1)"))
            .count(),
        6,
        "{got}"
    );
}
