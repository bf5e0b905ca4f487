//! A recording cut at its size bound (`mojo_transcript::TranscriptWriter`,
//! as `mojo_proxy --capture-dir` writes them) still verifies: the frames cut
//! off by the final `truncated` line are notes, not failures; the same
//! bytes without that line fail.

use std::process::Command;

use mojo_transcript::testing::vectors;
use mojo_transcript::{ChunkLine, Recorded, Transcript, TranscriptWriter};

/// Every chunk of a real recording split in two halves (fds with the
/// first), so that some bounds cut a frame in the middle; then written
/// within `max_bytes`.
fn rewrite(transcript: &Transcript, max_bytes: u64) -> (String, bool) {
    let mut writer = TranscriptWriter::new(Vec::new(), max_bytes);
    let mut cut = false;
    'chunks: for chunk in &transcript.chunks {
        let half = chunk.bytes.len().div_ceil(2);
        let (first, second) = chunk.bytes.split_at(half);
        for (bytes, kinds) in [(first, &chunk.fd_kinds[..]), (second, &[][..])] {
            if bytes.is_empty() && !chunk.is_eof() {
                continue;
            }
            let line = ChunkLine {
                time: chunk.time,
                channel: chunk.channel,
                direction: chunk.direction,
                bytes,
                fd_kinds: kinds,
            };
            if writer.write_chunk(&line).unwrap() != Recorded::Written {
                cut = true;
                break 'chunks;
            }
            if chunk.is_eof() {
                break;
            }
        }
    }
    (String::from_utf8(writer.into_inner()).unwrap(), cut)
}

fn verify(text: &str, protocol: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("mojo-dump-truncated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cut.jsonl");
    std::fs::write(&file, text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mojo-dump"))
        .args(["--verify", "-q", &format!("--protocol={protocol}")])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn a_capture_cut_at_its_bound_verifies_and_the_cut_is_a_note() {
    for (file, protocol) in [
        ("cros/shmem-proxy_client.jsonl", "legacy"),
        ("cros/shmem-host_proxy.jsonl", "ipcz"),
    ] {
        let transcript = Transcript::from_path(&vectors().join(file)).unwrap();
        let (whole, cut) = rewrite(&transcript, u64::MAX);
        assert!(!cut);
        let (ok, out) = verify(&whole, protocol);
        assert!(ok, "{file} split in halves: {out}");
        let mut partial_tails = 0;
        for max_bytes in (1000..whole.len() as u64).step_by(397) {
            let (text, cut) = rewrite(&transcript, max_bytes);
            assert!(cut && text.len() as u64 <= max_bytes);
            let (ok, out) = verify(&text, protocol);
            assert!(ok, "{file} cut at {max_bytes}: {out}");
            if out.contains("where the recording stopped") {
                partial_tails += 1;
                // Without its final line the same recording is broken.
                let unmarked: String = text
                    .lines()
                    .filter(|l| !l.contains("\"truncated\":true"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let (ok, out) = verify(&unmarked, protocol);
                assert!(!ok, "{file} cut at {max_bytes} without its mark: {out}");
            }
        }
        assert!(partial_tails > 0, "{file}: no bound cut a frame");
    }
}
