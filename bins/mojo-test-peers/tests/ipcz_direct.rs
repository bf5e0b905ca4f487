//! `mojo-test-host --direct=ipcz --client=mojo-test-client` over real
//! processes and sockets: the built host is the ipcz broker, the built
//! client (launched with `--ipcz`) accepts its invitation as a Mojo+ipcz
//! non-broker, and every scenario (the default set and `datapipe`) must
//! pass, with one named attachment and with numeric ones.
//!
//! The host's own timeouts bound each scenario; the watchdog here only
//! stops a wedged run from hanging the test suite.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use mojo_test_peers::host::DEFAULT_SCENARIOS;
use serde_json::Value;

const HOST: &str = env!("CARGO_BIN_EXE_mojo-test-host");
const CLIENT: &str = env!("CARGO_BIN_EXE_mojo-test-client");

/// Far beyond what a run takes; only a hang reaches it.
const WATCHDOG: Duration = Duration::from_secs(600);

/// Every result line of a run of every scenario (the default set plus
/// `datapipe`), in order (`multi_attach` only with more than one
/// attachment).
const SCENARIOS: &[&str] = &[
    "config",
    "connect",
    "multi_attach",
    "echo_small",
    "echo_large",
    "subpipe",
    "shmem",
    "platform_handle",
    "close_host_to_client",
    "close_client_to_host",
    "throughput_64",
    "throughput_4096",
    "throughput_65536",
    "latency_64",
    "latency_4096",
    "subpipe_c2h",
    "shmem_c2h",
    "shmem_c2h_readonly",
    "platform_handle_c2h",
    "pipe_roundtrip",
    "pipe_roundtrip_5hop",
    "many_pipes",
    "datapipe_h2c",
    "datapipe_c2h",
    "shutdown",
];

/// One run at a time: a script written while another test forks would be
/// open for writing in that child (ETXTBSY), and the runs compete for CPU.
static RUN_LOCK: Mutex<()> = Mutex::new(());

fn serialized() -> MutexGuard<'static, ()> {
    RUN_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the host; returns its exit status and its JSON lines.
fn run_host(args: &[String]) -> (i32, Vec<Value>) {
    let mut child = Command::new(HOST)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
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
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (code, lines)
}

fn check_all_pass(code: i32, lines: &[Value], multi: bool) {
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["scenario"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = SCENARIOS
        .iter()
        .copied()
        .filter(|s| multi || *s != "multi_attach")
        .collect();
    assert_eq!(names, expected, "result lines");
    for l in lines {
        assert_eq!(l["pass"], Value::Bool(true), "{l}");
        assert_eq!(l["label"], "direct_ipcz", "{l}");
    }
    assert_eq!(code, 0, "host exit status");
}

fn common_args() -> Vec<String> {
    [
        "--direct=ipcz",
        "--quick",
        "--timeout=120",
        "--handle-timeout=20",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--client={CLIENT}"),
        format!("--scenarios={},datapipe", DEFAULT_SCENARIOS.join(",")),
    ])
    .collect()
}

#[test]
fn every_scenario_passes_with_one_named_attachment() {
    let _g = serialized();
    let (code, lines) = run_host(&common_args());
    check_all_pass(code, &lines, false);
}

#[test]
fn every_scenario_passes_with_numeric_attachments() {
    let _g = serialized();
    let mut args = common_args();
    args.push("--num-attachments=3".into());
    let (code, lines) = run_host(&args);
    check_all_pass(code, &lines, true);
}

#[test]
fn a_legacy_client_does_not_connect_and_the_host_exits_nonzero() {
    let _g = serialized();
    // A script that drops `--ipcz`: the client then expects a legacy
    // invitation from an ipcz broker; `connect` fails, no hang.
    let dir = std::env::temp_dir().join(format!("ipcz-direct-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("legacy-client");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a; do shift; [ \"$a\" = --ipcz ] || set -- \"$@\" \"$a\"; done\nexec '{CLIENT}' \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut args = common_args();
    args.retain(|a| !a.starts_with("--client="));
    args.push(format!("--client={}", script.display()));
    args.push("--timeout=30".into());
    args.push("--handle-timeout=5".into());
    let (code, lines) = run_host(&args);
    let _ = std::fs::remove_dir_all(&dir);
    // The host's connector gives up (no connect line) or `connect` fails.
    assert!(
        lines
            .iter()
            .all(|l| l["scenario"] != "connect" || l["pass"] == Value::Bool(false)),
        "{lines:?}"
    );
    assert_ne!(code, 0, "host exit status");
}
