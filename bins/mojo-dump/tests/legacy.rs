//! `mojo-dump --verify --protocol=legacy` over every legacy transcript (exit 0),
//! and over corrupted copies (non-zero exit, output naming frame and field).
//! Without `--verify` the decoder is as lenient as a Chromium receiver:
//! corrupted padding then decodes, while fields Chromium checks still fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::event::{Event, EventData};
use mojo_legacy_wire::fuzzing::deframe_pieces;
use mojo_legacy_wire::node::NodeMessage;
use mojo_legacy_wire::{Deframer, EventHeaderForm};
use mojo_transcript::testing::vector_files_of;
use mojo_transcript::{Direction, LinkProtocol, Transcript, VectorProfile};

fn run(profile: &str, files: &[PathBuf]) -> Output {
    run_mode(true, profile, files)
}

fn run_mode(verify: bool, profile: &str, files: &[PathBuf]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mojo-dump"));
    if verify {
        cmd.arg("--verify");
    }
    cmd.arg("--protocol=legacy")
        .arg(format!("--legacy-profile={profile}"))
        .args(files)
        .output()
        .expect("run mojo-dump")
}

fn legacy_files(profile: VectorProfile) -> Vec<PathBuf> {
    vector_files_of(LinkProtocol::Legacy)
        .into_iter()
        .filter(|f| f.profile == profile)
        .map(|f| f.path)
        .collect()
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn every_legacy_transcript_verifies() {
    for (profile, arg) in [
        (VectorProfile::Libchrome, "libchrome"),
        (VectorProfile::Desktop, "desktop"),
    ] {
        let files = legacy_files(profile);
        assert!(
            files.len() >= 10,
            "{arg}: only {} legacy transcripts",
            files.len()
        );
        let out = run(arg, &files);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{arg}: mojo-dump failed:\n{}",
            stdout
                .lines()
                .filter(|l| l.starts_with("FAIL"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let summary = stdout.lines().last().unwrap_or_default();
        assert!(summary.ends_with(", 0 failed"), "{arg}: {summary}");
        assert!(!summary.starts_with("verified 0 "), "{arg}: {summary}");
        // One line per frame down to the user message.
        assert!(stdout.contains("| NodeChannel EVENT_MESSAGE | UserMessage port="));
        assert!(stdout.contains("| dispatchers: MessagePipe("));
        assert!(stdout.contains("| Broker INIT"));
    }
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn the_wrong_profile_fails() {
    let files = legacy_files(VectorProfile::Libchrome);
    let file = files
        .iter()
        .find(|p| p.ends_with("connect_only-proxy_client.jsonl"))
        .expect("connect_only-proxy_client.jsonl in the vectors");
    let out = run("desktop", std::slice::from_ref(file));
    assert!(!out.status.success());
}

/// Writes a copy of `path` with one byte of the stream `(chan, dir)` XORed,
/// at stream offset `offset`.
fn corrupt(path: &Path, chan: u32, dir: Direction, offset: usize, xor: u8, tag: &str) -> PathBuf {
    let text = std::fs::read_to_string(path).unwrap();
    let transcript = Transcript::parse(&text).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), transcript.chunks.len());
    let mut pos = 0;
    let mut out_lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let mut done = false;
    for (i, chunk) in transcript.chunks.iter().enumerate() {
        if chunk.channel != chan || chunk.direction != dir {
            continue;
        }
        let end = pos + chunk.bytes.len();
        if !done && offset >= pos && offset < end {
            let mut bytes = chunk.bytes.clone();
            bytes[offset - pos] ^= xor;
            let old = format!("\"{}\"", mojo_transcript::encode_hex(&chunk.bytes));
            let new = format!("\"{}\"", mojo_transcript::encode_hex(&bytes));
            assert!(out_lines[i].contains(&old));
            out_lines[i] = out_lines[i].replacen(&old, &new, 1);
            done = true;
        }
        pos = end;
    }
    assert!(done, "offset {offset} not in the stream");
    let dest = std::env::temp_dir().join(format!(
        "mojo-dump-legacy-{}-{tag}.jsonl",
        std::process::id()
    ));
    std::fs::write(&dest, out_lines.join("\n") + "\n").unwrap();
    dest
}

/// Index, stream offset and header length of the first EVENT_MESSAGE frame of
/// chan1 a2b whose event `want` accepts.
fn first_event_frame(path: &Path, want: impl Fn(&Event<'_>) -> bool) -> (usize, usize, usize) {
    let t = Transcript::from_path(path).unwrap();
    let streams = t.streams();
    let stream = streams
        .iter()
        .find(|(k, _)| k.channel == 1 && k.direction == Direction::AToB)
        .map(|(_, s)| s)
        .expect("chan1 a2b");
    let deframed = deframe_pieces(Deframer::new(), [&stream.bytes[..]]);
    deframed.end.unwrap();
    for (index, copy) in deframed.frames.iter().enumerate() {
        let f = Frame::decode_whole(&copy.bytes).unwrap();
        if let Ok(NodeMessage::EventMessage(body)) = NodeMessage::decode(f.payload) {
            let event = Event::decode_exact(body, EventHeaderForm::Compact)
                .expect("a recorded event is canonical");
            if want(&event) {
                return (index, copy.offset as usize, f.header.len());
            }
        }
    }
    panic!("no event frame");
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn corrupted_copies_fail_naming_frame_and_field() {
    let files = legacy_files(VectorProfile::Libchrome);
    let file = files
        .iter()
        .find(|p| p.ends_with("connect_only-proxy_client.jsonl"))
        .expect("connect_only-proxy_client.jsonl in the vectors");
    let any = |_: &Event<'_>| true;
    let user = |e: &Event<'_>| matches!(e.data, EventData::UserMessage(_));
    // Offsets are within the channel payload (after the channel header),
    // except for the channel header case (`in_payload` false): NodeChannel
    // header 8, compact event header 24, then the event data (UserMessage:
    // 16 bytes, no ports here, then the user message).
    // `lenient_fails`: whether a plain decode (no --verify) fails too, i.e.
    // Chromium (or, for unknown types, the decoder's "understood" policy)
    // rejects the frame. Padding, bools and header_size slack are not checked
    // by Chromium; only --verify reports them, as not canonical.
    type Case<'a> = (
        &'a dyn Fn(&Event<'_>) -> bool,
        bool,
        usize,
        u8,
        &'a str,
        bool,
    );
    let cases: [Case<'_>; 8] = [
        (&any, true, 8 + 4, 0x01, "event.padding", false),
        (&any, true, 4, 0x80, "node.padding", false),
        // MergePort (the first event): its descriptor's peer_closed 0 -> 2,
        // which Chromium reads as true.
        (
            &any,
            true,
            8 + 24 + 16 + 88,
            0x02,
            "port_descriptor.peer_closed",
            false,
        ),
        // Event type: becomes an unknown type.
        (&any, true, 8, 0x40, "event.type", true),
        // header_size 8 -> 9: Chromium starts the payload one byte later.
        (
            &user,
            true,
            8 + 24 + 16 + 4,
            0x01,
            "message_header.header_size",
            false,
        ),
        // header_size 8 -> 0x4008: larger than the message, Chromium rejects.
        (
            &user,
            true,
            8 + 24 + 16 + 5,
            0x40,
            "message_header.header_size",
            true,
        ),
        // num_dispatchers 0 -> 0x01000000: over 65535, Chromium aborts.
        (
            &user,
            true,
            8 + 24 + 16 + 3,
            0x01,
            "message_header.num_dispatchers",
            true,
        ),
        // Channel header: message_type 0 -> 0x100 makes it a 16-byte header
        // whose num_header_bytes (the old num_handles, 0) is invalid.
        (&any, false, 7, 0x01, "channel.num_header_bytes", true),
    ];
    for (n, (want, in_payload, field_offset, xor, field, lenient_fails)) in
        cases.into_iter().enumerate()
    {
        let (index, offset, header_len) = first_event_frame(file, want);
        let field_offset = field_offset + if in_payload { header_len } else { 0 };
        let copy = corrupt(
            file,
            1,
            Direction::AToB,
            offset + field_offset,
            xor,
            &n.to_string(),
        );
        let out = run("libchrome", std::slice::from_ref(&copy));
        let lenient = run_mode(false, "libchrome", std::slice::from_ref(&copy));
        let _ = std::fs::remove_file(&copy);
        assert_eq!(
            !lenient.status.success(),
            lenient_fails,
            "{field}: plain decode:\n{}",
            String::from_utf8_lossy(&lenient.stdout)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success(),
            "{field}: corrupted copy verified:\n{stdout}"
        );
        let fail = stdout
            .lines()
            .find(|l| l.starts_with("FAIL"))
            .unwrap_or_else(|| panic!("{field}: no FAIL line:\n{stdout}"));
        assert!(
            fail.contains(&format!("chan1 a2b frame {index} @{offset}")),
            "{field}: wrong frame: {fail}"
        );
        assert!(fail.contains(field), "{field}: field not named: {fail}");
        assert!(
            stdout
                .lines()
                .last()
                .unwrap_or_default()
                .ends_with("1 failed")
        );
    }
}
