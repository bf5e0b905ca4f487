//! `mojo-dump --verify --protocol=ipcz` over every ipcz transcript of the
//! vectors (host_proxy links and direct_ipcz baselines, cros and desktop), and
//! over corrupted copies that must fail naming the frame and the field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mojo_transcript::LinkProtocol;
use mojo_transcript::testing::{vector_files_of, vectors};

fn run(files: &[PathBuf]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mojo-dump"))
        .args(["--verify", "--protocol=ipcz", "--quiet"])
        .args(files)
        .output()
        .expect("run mojo-dump")
}

fn ipcz_files() -> Vec<PathBuf> {
    vector_files_of(LinkProtocol::Ipcz)
        .into_iter()
        .map(|f| f.path)
        .collect()
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn every_ipcz_transcript_verifies() {
    let files = ipcz_files();
    for folder in ["cros", "desktop"] {
        for kind in ["-host_proxy.jsonl", "direct_ipcz"] {
            assert!(
                files.iter().any(|f| {
                    let s = f.to_string_lossy();
                    s.contains(&format!("/{folder}/")) && s.contains(kind)
                }),
                "no {kind} transcript in {folder}/"
            );
        }
    }
    let output = run(&files);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "mojo-dump failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(summary.starts_with("verified "), "{summary}");
    assert!(summary.ends_with(", 0 failed"), "{summary}");
    let frames: usize = summary
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(frames > 800, "{summary}");
}

/// Copies `source` with one byte of the ConnectFromBrokerToNonBroker frame
/// (a whole 184-byte chunk in the recordings) replaced, and runs mojo-dump.
fn corrupted_run(source: &Path, frame_byte: usize, value: u8, tag: &str) -> (bool, String) {
    let text = std::fs::read_to_string(source).expect("read transcript");
    let marker = "\"hex\":\"10000100b8000000";
    let at = text
        .find(marker)
        .expect("a ConnectFromBrokerToNonBroker chunk")
        + 7
        + frame_byte * 2;
    let mut bytes = text.into_bytes();
    bytes[at..at + 2].copy_from_slice(format!("{value:02x}").as_bytes());
    let path =
        std::env::temp_dir().join(format!("mojo-dump-ipcz-{}-{tag}.jsonl", std::process::id()));
    std::fs::write(&path, bytes).expect("write corrupted copy");
    let output = run(std::slice::from_ref(&path));
    let _ = std::fs::remove_file(&path);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// [`corrupted_run`] that must fail: returns the whole output and its first
/// `FAIL` line.
fn failing_run(source: &Path, frame_byte: usize, value: u8, tag: &str) -> (String, String) {
    let (ok, out) = corrupted_run(source, frame_byte, value, tag);
    assert!(!ok, "corrupted transcript verified:\n{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .expect("a FAIL line")
        .to_string();
    (out, line)
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn a_corrupted_field_fails_naming_frame_and_field() {
    let source = vectors().join("cros/close-host_proxy.jsonl");

    // Frame byte 88 = message offset 72: the `buffer` driver object index,
    // now naming an object the message does not have.
    let (out, line) = failing_run(&source, 88, 0x05, "index");
    assert!(line.contains("chan0 a2b frame 0 @0"), "{line}");
    assert!(
        line.contains("ConnectFromBrokerToNonBroker.buffer"),
        "{line}"
    );
    assert!(out.trim_end().ends_with(", 1 failed"), "{out}");

    // Frame byte 19 = message byte 3: `header.reserved0`, which Chrome
    // ignores but never sends non-zero, so the frame no longer re-encodes
    // identically.
    let (_, line) = failing_run(&source, 19, 0x01, "reserved");
    assert!(line.contains("chan0 a2b frame 0 @0"), "{line}");
    assert!(line.contains("header.reserved0"), "{line}");

    // Frame byte 100 = message offset 84: the implicit padding that rounds the
    // V1 block (`features`) up to 8 bytes.
    let (_, line) = failing_run(&source, 100, 0x01, "v1pad");
    assert!(line.contains("frame 0 @0"), "{line}");
    assert!(
        line.contains("padding of ConnectFromBrokerToNonBroker"),
        "{line}"
    );

    // Frame byte 160 = the SharedBuffer's mode (unsafe, 2) set to 7.
    let (_, line) = failing_run(&source, 160, 0x07, "mode");
    assert!(line.contains("frame 0 @0"), "{line}");
    assert!(line.contains("SharedBuffer.mode"), "{line}");
}
