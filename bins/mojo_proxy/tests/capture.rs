//! `mojo_proxy --capture-dir` under our test host and client: both files
//! are transcripts whose protocol `mojo-dump` recognises unaided and that
//! `--verify` re-encodes byte for byte, they hold the scenarios' frames
//! (every parcel the host sent reaches the client as one user message, and
//! back; the legacy INIT passes the node channel as
//! `socket->chan1`; shared memory and platform handles on both links), in
//! inherit mode the broker's socket is channel 1 of the host link, and
//! `--capture-max-bytes` ends each file cleanly at its bound; `mojo-dump
//! --pipes` on both files gives back exactly the pipes and messages the
//! scenarios sent, in order, paired across the proxy.
//!
//! Like `end_to_end.rs`, this needs the test peers and `mojo-dump` built next
//! to this package's `mojo_proxy` (`cargo build -p mojo-test-peers -p
//! mojo-dump`, or a workspace build), and says so.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mojo_transcript::{Direction, Transcript};
use serde_json::Value;

const PROXY: &str = env!("CARGO_BIN_EXE_mojo_proxy");

/// Far beyond what a run takes; only a hang reaches it.
const WATCHDOG: Duration = Duration::from_secs(600);

/// The scenarios run: small echoes, shared memory and platform handles
/// from the host (one parcel each, besides `connect`'s).
const SCENARIOS: &str = "echo_small,shmem,platform_handle";

/// Parcels each way at least: `connect`'s, 320 echoes, `shmem`'s, `platform_handle`'s.
const MIN_PARCELS: usize = 323;

/// A binary of another package next to the proxy.
fn sibling(name: &str) -> PathBuf {
    let path = Path::new(PROXY).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p mojo-test-peers -p mojo-dump` (or build the workspace)",
        path.display()
    );
    path
}

/// A fresh directory, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("proxy-capture-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the host through a capturing proxy; asserts every scenario passed
/// and the proxy left no fd open (its own report at `warn`).
fn run_capturing(dir: &Path, extra: &str) {
    run_capturing_with(dir, extra, &[], SCENARIOS);
}

/// [`run_capturing`] with more host arguments and other scenarios.
fn run_capturing_with(dir: &Path, extra: &str, host_args: &[&str], scenarios: &str) {
    let mut child = Command::new(sibling("mojo-test-host"))
        .args(["--quick", "--timeout=120", "--handle-timeout=20"])
        .args(host_args)
        .arg(format!("--scenarios={scenarios}"))
        .arg(format!("--proxy={PROXY}"))
        .arg(format!(
            "--client={}",
            sibling("mojo-test-client").display()
        ))
        .arg(format!(
            "--proxy-extra-args=--capture-dir={} {extra}",
            dir.display()
        ))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let Ok(text) = rx.recv_timeout(WATCHDOG) else {
        let _ = child.kill();
        panic!("the host hung past the watchdog");
    };
    let status = child.wait().unwrap();
    let errors = errors.join().unwrap();
    eprint!("{errors}");
    // The capture files are closed before the proxy's exit check.
    assert!(
        !errors.contains("still open at exit"),
        "the proxy leaked fds: {errors}"
    );
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for l in &lines {
        assert_eq!(l["pass"], Value::Bool(true), "{l}");
    }
    let last = lines.last().expect("result lines");
    assert_eq!(last["scenario"], "shutdown", "{last}");
    assert_eq!(last["proxy_exit"], 0, "{last}");
    assert!(status.success(), "host: {status}");
}

/// `mojo-dump [--verify -q]` of one capture, the protocol detected from
/// its bytes (as a user runs it): success and its output.
fn dump(file: &Path, verify: bool) -> (bool, String) {
    let mut cmd = Command::new(sibling("mojo-dump"));
    if verify {
        cmd.args(["--verify", "-q"]);
    }
    let output = cmd.arg(file).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// The time-ordered view of one capture, whose header must name the
/// reading `mojo-dump` detected.
fn view(file: &Path, detected: &str) -> String {
    let (ok, text) = dump(file, false);
    assert!(ok, "{}: {text}", file.display());
    let header = text.lines().next().unwrap_or_default();
    assert_eq!(
        header,
        format!("== {} (detected: {detected})", file.display())
    );
    text
}

fn count(text: &str, stream: &str, what: &str) -> usize {
    text.lines()
        .filter(|l| l.contains(stream) && l.contains(what))
        .count()
}

fn assert_verifies(file: &Path) {
    let (ok, out) = dump(file, true);
    let summary = out.lines().last().unwrap_or_default();
    assert!(ok, "{}: {out}", file.display());
    assert!(
        summary.starts_with("verified ")
            && !summary.starts_with("verified 0 ")
            && summary.ends_with(", 0 failed"),
        "{summary}"
    );
}

#[test]
fn a_capture_verifies_and_holds_the_scenarios_frames() {
    let dir = TempDir::new("full");
    run_capturing(&dir.0, "");
    let host = dir.0.join("host_proxy.jsonl");
    let client = dir.0.join("proxy_client.jsonl");
    assert_verifies(&host);
    assert_verifies(&client);

    let ipcz = view(&host, "ipcz");
    let legacy = view(&client, "legacy, libchrome profile");
    let first = ipcz
        .lines()
        .find(|l| l.contains(" chan0 a2b #0 "))
        .unwrap_or_default();
    assert!(
        first.contains("ConnectFromBrokerToNonBroker"),
        "the host (side A) is the broker: {first}"
    );
    let host_parcels = count(&ipcz, "chan0 a2b", "AcceptParcel");
    let to_client = count(&legacy, "chan1 a2b", "UserMessage");
    let from_client = count(&legacy, "chan1 b2a", "UserMessage");
    let to_host = count(&ipcz, "chan0 b2a", "AcceptParcel");
    assert!(
        host_parcels >= MIN_PARCELS,
        "{host_parcels} parcels from the host"
    );
    assert_eq!(
        to_client, host_parcels,
        "each host parcel reaches the client"
    );
    assert!(
        from_client >= MIN_PARCELS,
        "{from_client} messages from the client"
    );
    assert_eq!(to_host, from_client, "each client message reaches the host");
    assert!(count(&ipcz, "chan0 a2b", "SharedBuffer(writable, 1048576 B") >= 1);
    assert!(count(&ipcz, "chan0 a2b", "WrappedPlatformHandle") >= 1);
    assert!(count(&legacy, "chan1 a2b", "SharedBuffer(1048576 bytes") >= 1);
    assert!(count(&legacy, "chan1 a2b", "PlatformHandle(1 fd)") >= 1);

    // The bootstrap socket carries INIT with the node channel, chan1.
    let transcript = Transcript::from_path(&client).unwrap();
    let init = transcript
        .chunks
        .iter()
        .find(|c| c.channel == 0 && c.direction == Direction::AToB)
        .expect("INIT");
    assert_eq!(init.fd_kinds, ["socket->chan1"]);
    assert!(legacy.contains(" chan0 a2b #0 16B fds=[socket->chan1]: Broker INIT\n"));
    let fd_kinds: Vec<&String> = transcript.chunks.iter().flat_map(|c| &c.fd_kinds).collect();
    assert!(
        fd_kinds.iter().any(|k| k.starts_with("memfd:")),
        "{fd_kinds:?}"
    );
    assert!(fd_kinds.iter().any(|k| *k == "pipe"), "{fd_kinds:?}");
}

#[test]
fn the_size_bound_ends_each_file_with_one_truncated_line() {
    const BOUND: u64 = 20_000;
    let dir = TempDir::new("bound");
    run_capturing(&dir.0, &format!("--capture-max-bytes={BOUND}"));
    for (name, detected) in [
        ("host_proxy.jsonl", "ipcz"),
        ("proxy_client.jsonl", "legacy, libchrome profile"),
    ] {
        let file = dir.0.join(name);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.len() as u64 <= BOUND, "{name}: {} bytes", text.len());
        assert!(text.ends_with('\n'), "{name} ends inside a line");
        let chunks = Transcript::parse(&text).unwrap().chunks;
        let (last, before) = chunks.split_last().expect("lines");
        assert!(last.truncated && last.bytes.is_empty(), "{name}: {last:?}");
        assert!(
            text.lines()
                .last()
                .unwrap()
                .contains("\"note\":\"capture limit of 20000 bytes")
        );
        assert!(
            before.iter().all(|c| !c.truncated),
            "{name}: one truncated line"
        );
        assert!(
            before.len() > 5,
            "{name}: {} chunks before the bound",
            before.len()
        );
        // What was recorded still re-encodes byte for byte, and its
        // protocol is still recognised.
        assert_verifies(&file);
        view(&file, detected);
    }
}

#[test]
fn in_inherit_mode_the_brokers_socket_is_channel_1_of_the_host_link() {
    let dir = TempDir::new("inherit");
    run_capturing_with(&dir.0, "", &["--mode=inherit"], SCENARIOS);
    let host = dir.0.join("host_proxy.jsonl");
    assert_verifies(&host);
    assert_verifies(&dir.0.join("proxy_client.jsonl"));
    // As the vectors' inherit_* recordings: the host refers us to its
    // broker over chan0, passing the socket that becomes chan1.
    let transcript = Transcript::from_path(&host).unwrap();
    assert!(
        transcript.chunks.iter().any(|c| c.channel == 0
            && c.direction == Direction::AToB
            && c.fd_kinds.iter().any(|k| k == "socket->chan1")),
        "no socket->chan1 from the host"
    );
    let ipcz = view(&host, "ipcz");
    assert!(count(&ipcz, "chan1 a2b", "AcceptParcel") >= MIN_PARCELS);
    assert!(count(&ipcz, "chan1 b2a", "AcceptParcel") >= MIN_PARCELS);
}

/// One message line of `mojo-dump --pipes`: direction, size, opcode name
/// and what it carries (`+...` fields, carried pipes as `pipe X`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PipeMessage {
    dir: String,
    size: usize,
    op: String,
    carries: Vec<String>,
}

/// The pipes of one `--pipes` output with at least one message, by label,
/// in the order printed; and the pairing lines.
fn parse_pipes(text: &str) -> (Vec<(String, Vec<PipeMessage>)>, Vec<String>) {
    let mut pipes: Vec<(String, Vec<PipeMessage>)> = Vec::new();
    let mut pairings = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("pipe ") {
            let label = rest.split(':').next().unwrap_or_default().to_string();
            pipes.push((label, Vec::new()));
        } else if line.contains(" <-> ") && line.contains(": host to client ") {
            pairings.push(line.to_string());
        } else if line.starts_with("    ") && line.contains(" seq=") {
            // `  TIME chanN DIR #i -> END seq=N SIZEB op=NAME(n) +... -> pipe X`
            let words: Vec<&str> = line.split_whitespace().collect();
            let size = words
                .iter()
                .find_map(|w| w.strip_suffix('B').and_then(|n| n.parse().ok()))
                .unwrap_or_else(|| panic!("no size: {line}"));
            let op = words
                .iter()
                .find_map(|w| w.strip_prefix("op="))
                .map(|o| o.split('(').next().unwrap_or_default().to_string())
                .unwrap_or_default();
            let mut carries = Vec::new();
            for part in line.split(" +").skip(1) {
                match part.split_once(" -> pipe ") {
                    Some((_, pipe)) => carries.push(format!("pipe {}", pipe.trim())),
                    None => carries.push(part.split('(').next().unwrap_or_default().into()),
                }
            }
            let message = PipeMessage {
                dir: words[2].to_string(),
                size,
                op,
                carries,
            };
            pipes.last_mut().expect("a pipe heading").1.push(message);
        }
    }
    pipes.retain(|(_, m)| !m.is_empty());
    (pipes, pairings)
}

#[test]
fn pipes_reconstructs_the_scenarios_pipes_and_messages_in_order() {
    use mojo_test_peers::protocol::Payload;
    let dir = TempDir::new("pipes");
    run_capturing_with(&dir.0, "", &[], "subpipe,shmem");
    let output = Command::new(sibling("mojo-dump"))
        .current_dir(&dir.0)
        .args(["--pipes", "host_proxy.jsonl", "proxy_client.jsonl"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{text}");
    assert!(text.ends_with(" 0 failed\n"), "{text}");
    let (pipes, pairings) = parse_pipes(&text);

    // What the scenarios send (test-peers.md section 3, the host's code):
    // on the attached pipe, `connect`'s Hello each way; `subpipe`'s SubPipe
    // carrying a new pipe, answered by SubPipeDone; `shmem`'s Shmem carrying
    // a shared buffer, answered by ShmemAck. On the carried pipe, the
    // host's echoes of 16 + 100 i bytes, echoed back in order.
    let m = |dir: &str, payload: &Payload, op: &str, carries: &[&str]| PipeMessage {
        dir: dir.into(),
        size: payload.encode().len(),
        op: op.into(),
        carries: carries.iter().map(|c| c.to_string()).collect(),
    };
    let main = |carried: &str| {
        let pipe = format!("pipe {carried}");
        let mut to_client = vec![
            m("a2b", &Payload::Hello { index: 0 }, "Hello", &[]),
            m("a2b", &Payload::SubPipe, "SubPipe", &[pipe.as_str()]),
            m(
                "a2b",
                &Payload::Shmem { size: 0 },
                "Shmem",
                &["SharedBuffer"],
            ),
        ];
        let to_host = vec![
            m("b2a", &Payload::Hello { index: 0 }, "Hello", &[]),
            m(
                "b2a",
                &Payload::SubPipeDone { echoed: 0 },
                "SubPipeDone",
                &[],
            ),
            m("b2a", &Payload::ShmemAck { fnv: 0 }, "ShmemAck", &[]),
        ];
        to_client.extend(to_host);
        to_client
    };
    let total = mojo_test_peers::host::Counts::new(true, false).subpipe_total;
    let echoes: Vec<PipeMessage> = ["a2b", "b2a"]
        .iter()
        .flat_map(|dir| {
            (0..total).map(move |i| PipeMessage {
                dir: dir.to_string(),
                size: 16 + i * 100,
                op: "Echo".into(),
                carries: Vec::new(),
            })
        })
        .collect();
    // Each file: the attached pipe, then the one it carried; nothing else
    // carries a message. Directions are sorted (a2b first): order within a
    // direction is what the test checks, the interleaving is timing.
    let by_direction = |mut messages: Vec<PipeMessage>| {
        messages.sort_by(|a, b| a.dir.cmp(&b.dir));
        messages
    };
    let labels: Vec<&str> = pipes.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["I2", "I3", "L1", "L2"], "{text}");
    for (attached, carried) in [(0, 1), (2, 3)] {
        let (_, main_messages) = &pipes[attached];
        let (carried_label, carried_messages) = &pipes[carried];
        assert_eq!(
            by_direction(main_messages.clone()),
            main(carried_label),
            "{text}"
        );
        assert_eq!(by_direction(carried_messages.clone()), echoes, "{text}");
    }
    // Paired across the proxy, every message with its forward, same bytes.
    assert_eq!(
        pairings,
        [
            "I2 <-> L1: host to client 3 sent, 3 forwarded, 3 with the same bytes; \
             client to host 3 sent, 3 forwarded, 3 with the same bytes"
                .to_string(),
            format!(
                "I3 <-> L2: host to client {total} sent, {total} forwarded, {total} with the \
                 same bytes; client to host {total} sent, {total} forwarded, {total} with the \
                 same bytes"
            ),
        ],
        "{text}"
    );
    assert!(
        text.contains("pipe L1: initial attachment 0;")
            && text.contains("pipe I2: initial portal 1;")
            && text
                .contains("paired with L1 (inferred: initial attachment 0 <-> initial portal 1)"),
        "{text}"
    );
}
