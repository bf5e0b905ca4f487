//! Our test host → `mojo_proxy` → our legacy test client, over real
//! processes and sockets: every default scenario of `test-peers.md` must
//! pass through the proxy, in both legacy wire profiles, with a string
//! attachment and with 1 and 7 numeric ones, and the proxy must exit 0
//! after the host's `shutdown` (the host reports the proxy's status).
//!
//! The test peers are binaries of another package: they are found next to
//! this package's `mojo_proxy` (a `cargo test --workspace` builds them; a
//! lone `cargo test -p mojo_proxy` needs `cargo build -p mojo-test-peers`
//! first, and says so).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

const PROXY: &str = env!("CARGO_BIN_EXE_mojo_proxy");

/// Far beyond what a run takes; only a hang reaches it.
const WATCHDOG: Duration = Duration::from_secs(600);

/// The result lines of a default run through a proxy, in order
/// (`multi_attach` only with more than one attachment).
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

/// A test peer binary next to the proxy.
fn peer(name: &str) -> PathBuf {
    let path = Path::new(PROXY).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p mojo-test-peers` (or test the whole workspace)",
        path.display()
    );
    path
}

/// Runs the host; returns its exit status and its JSON lines. The
/// children's stderr (the proxy's log at `warn`) is checked for the
/// proxy's report of fds left open at its exit.
fn run_host(args: &[String]) -> (i32, Vec<Value>) {
    let mut child = Command::new(peer("mojo-test-host"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let Ok(text) = rx.recv_timeout(WATCHDOG) else {
        let _ = child.kill();
        panic!("the host hung past the watchdog");
    };
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let errors = errors.join().unwrap();
    eprint!("{errors}");
    assert!(
        !errors.contains("still open at exit"),
        "the proxy leaked fds: {errors}"
    );
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
        assert_eq!(l["label"], "proxy", "{l}");
    }
    let shutdown = lines.last().unwrap();
    assert_eq!(
        shutdown["proxy_exit"], 0,
        "the proxy's exit status: {shutdown}"
    );
    assert_eq!(
        shutdown["client_exit"], 0,
        "the client's exit status: {shutdown}"
    );
    assert_eq!(code, 0, "host exit status");
}

fn args(client: &Path, extra: &[&str]) -> Vec<String> {
    ["--quick", "--timeout=120", "--handle-timeout=20"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .chain([
            format!("--proxy={PROXY}"),
            format!("--client={}", client.display()),
        ])
        .collect()
}

/// A script that starts our client with the desktop profile (the host
/// passes its profile on to nothing, as the spec says).
struct DesktopClient {
    dir: PathBuf,
    script: PathBuf,
}

impl DesktopClient {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("proxy-e2e-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("desktop-client");
        let client = peer("mojo-test-client");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nexec '{}' --legacy-profile=desktop \"$@\"\n",
                client.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir, script }
    }
}

impl Drop for DesktopClient {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn every_scenario_passes_libchrome_named_attachment() {
    let _g = serialized();
    let (code, lines) = run_host(&args(&peer("mojo-test-client"), &[]));
    check_all_pass(code, &lines, false);
}

#[test]
fn every_scenario_passes_libchrome_one_numeric_attachment() {
    let _g = serialized();
    let (code, lines) = run_host(&args(&peer("mojo-test-client"), &["--num-attachments=1"]));
    check_all_pass(code, &lines, false);
}

#[test]
fn every_scenario_passes_libchrome_seven_numeric_attachments() {
    let _g = serialized();
    let (code, lines) = run_host(&args(&peer("mojo-test-client"), &["--num-attachments=7"]));
    check_all_pass(code, &lines, true);
}

#[test]
fn every_scenario_passes_desktop_named_attachment() {
    let _g = serialized();
    let client = DesktopClient::new();
    let (code, lines) = run_host(&args(
        &client.script,
        &["--proxy-extra-args=--legacy-profile=desktop"],
    ));
    check_all_pass(code, &lines, false);
}

#[test]
fn every_scenario_passes_desktop_seven_numeric_attachments() {
    let _g = serialized();
    let client = DesktopClient::new();
    let (code, lines) = run_host(&args(
        &client.script,
        &[
            "--num-attachments=7",
            "--proxy-extra-args=--legacy-profile=desktop",
        ],
    ));
    check_all_pass(code, &lines, true);
}

/// `--mode=inherit` (spec `ipcz.md` §4.3): the host is an ipcz non-broker
/// that joined its broker copy and referred the proxy to it; the proxy
/// runs `--inherit-ipcz-broker` and reaches the host over the socket the
/// broker's reply brought. Same lines as a direct run, labelled
/// `proxy_inherit`.
fn check_all_pass_inherit(code: i32, lines: &[Value], multi: bool) {
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
        assert_eq!(l["label"], "proxy_inherit", "{l}");
    }
    assert_eq!(lines[0]["inherit_broker"], Value::Bool(true), "config");
    let shutdown = lines.last().unwrap();
    assert_eq!(
        shutdown["proxy_exit"], 0,
        "the proxy's exit status: {shutdown}"
    );
    assert_eq!(
        shutdown["client_exit"], 0,
        "the client's exit status: {shutdown}"
    );
    assert_eq!(code, 0, "host exit status");
}

#[test]
fn every_scenario_passes_inherit_mode_named_attachment() {
    let _g = serialized();
    let (code, lines) = run_host(&args(&peer("mojo-test-client"), &["--mode=inherit"]));
    check_all_pass_inherit(code, &lines, false);
}

#[test]
fn every_scenario_passes_inherit_mode_seven_numeric_attachments() {
    let _g = serialized();
    let (code, lines) = run_host(&args(
        &peer("mojo-test-client"),
        &["--mode=inherit", "--num-attachments=7"],
    ));
    check_all_pass_inherit(code, &lines, true);
}

#[test]
fn every_scenario_passes_inherit_mode_desktop_profile() {
    let _g = serialized();
    let client = DesktopClient::new();
    let (code, lines) = run_host(&args(
        &client.script,
        &[
            "--mode=inherit",
            "--proxy-extra-args=--legacy-profile=desktop",
        ],
    ));
    check_all_pass_inherit(code, &lines, false);
}
