//! `mojo-dump -` reads a transcript from standard input.

use std::io::Write;
use std::process::{Command, Stdio};

use mojo_transcript::{LinkProtocol, vector_files, vectors_dir};

#[test]
fn a_transcript_on_standard_input_is_verified() {
    let Some(dir) = vectors_dir() else {
        eprintln!("shared/vectors not found; skipping");
        return;
    };
    let files = vector_files(&dir).unwrap();
    let file = files
        .iter()
        .find(|f| f.protocol == LinkProtocol::Ipcz)
        .expect("an ipcz transcript");
    let text = std::fs::read(&file.path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mojo-dump"))
        .args(["--verify", "--protocol=ipcz", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("verified ")
            && last.ends_with(", 0 failed")
            && !last.starts_with("verified 0 "),
        "{last}"
    );
}

#[test]
fn garbage_on_standard_input_fails_with_the_line_number() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mojo-dump"))
        .args(["--verify", "--protocol=legacy", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"not json\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("line 1"), "{stdout}");
}
