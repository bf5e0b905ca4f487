//! `mojo-test-host --direct=legacy --client=mojo-test-client` over real
//! processes and sockets: the built host is the legacy broker, the built
//! client accepts its invitation, and every default scenario must pass, in
//! both wire profiles (the desktop run starts the client through a script
//! that adds `--legacy-profile=desktop`, since the host passes its profile
//! on to nothing, as the spec says).
//!
//! The host's own timeouts bound each scenario; the watchdog here only
//! stops a wedged run from hanging the test suite.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

const HOST: &str = env!("CARGO_BIN_EXE_mojo-test-host");
const CLIENT: &str = env!("CARGO_BIN_EXE_mojo-test-client");

/// Far beyond what a run takes; only a hang reaches it.
const WATCHDOG: Duration = Duration::from_secs(600);

/// Every result line of a default run, in order (`multi_attach` only with
/// more than one attachment).
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
        assert_eq!(l["label"], "direct_legacy", "{l}");
    }
    assert_eq!(code, 0, "host exit status");
}

fn common_args(client: &str) -> Vec<String> {
    [
        "--direct=legacy",
        "--quick",
        "--timeout=120",
        "--handle-timeout=20",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--client={client}")])
    .collect()
}

#[test]
fn every_scenario_passes_libchrome() {
    let _g = serialized();
    let (code, lines) = run_host(&common_args(CLIENT));
    check_all_pass(code, &lines, false);
}

#[test]
fn every_scenario_passes_desktop_numeric_attachments() {
    let _g = serialized();
    let dir = std::env::temp_dir().join(format!("legacy-direct-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script: PathBuf = dir.join("desktop-client");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nexec '{CLIENT}' --legacy-profile=desktop \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut args = common_args(script.to_str().unwrap());
    args.push("--legacy-profile=desktop".into());
    args.push("--num-attachments=3".into());
    let (code, lines) = run_host(&args);
    let _ = std::fs::remove_dir_all(&dir);
    check_all_pass(code, &lines, true);
}

#[test]
fn mismatched_profiles_fail_connect_and_exit_nonzero() {
    let _g = serialized();
    // The host speaks desktop, the client libchrome: the client cannot read
    // INIT, so `connect` fails and the host gives up (status 1), no hang.
    let mut args = common_args(CLIENT);
    args.push("--legacy-profile=desktop".into());
    args.push("--timeout=30".into());
    args.push("--handle-timeout=5".into());
    let (code, lines) = run_host(&args);
    let connect = lines
        .iter()
        .find(|l| l["scenario"] == "connect")
        .expect("a connect line");
    assert_eq!(connect["pass"], Value::Bool(false), "{connect}");
    assert_ne!(code, 0);
}
