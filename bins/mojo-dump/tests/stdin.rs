//! `mojo-dump -` reads a transcript from standard input.

use std::io::Write;
use std::process::{Command, Stdio};

use mojo_transcript::LinkProtocol;
use mojo_transcript::testing::vector_files_of;

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn a_transcript_on_standard_input_is_verified() {
    let files = vector_files_of(LinkProtocol::Ipcz);
    let file = files.first().expect("an ipcz transcript");
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
