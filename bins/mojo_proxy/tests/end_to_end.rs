//! Our test host → `mojo_proxy` → our legacy test client, over real
//! processes and sockets: every default scenario of `test-peers.md`, and
//! `datapipe` (a data pipe each way, which Chromium's proxy cannot carry),
//! must pass through the proxy, in both ipcz modes and both legacy wire
//! profiles, with a string attachment and with 1 and 7 numeric ones, and
//! the proxy must exit 0 after the host's `shutdown` (the host reports the
//! proxy's status).
//!
//! The test peers are binaries of another package: they are found next to
//! this package's `mojo_proxy` (a `cargo test --workspace` builds them; a
//! lone `cargo test -p mojo_proxy` needs `cargo build -p mojo-test-peers`
//! first, and says so).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mojo_test_peers::harness::{self, HostRun, serialized};
use mojo_test_peers::host::DEFAULT_SCENARIOS;
use serde_json::Value;

const PROXY: &str = env!("CARGO_BIN_EXE_mojo_proxy");

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

/// Runs the host; the children's stderr (the proxy's log at `warn`) must
/// not hold the proxy's report of fds left open at its exit.
fn run_host(args: &[String]) -> HostRun {
    let run = harness::run_host(&peer("mojo-test-host"), args);
    assert!(
        !run.stderr.contains("still open at exit"),
        "the proxy leaked fds: {}",
        run.stderr
    );
    run
}

/// Every default line and both data pipe lines passed with `label`, and the host saw the proxy and
/// the client exit 0.
fn check_all_pass(run: &HostRun, multi: bool, label: &str) {
    harness::assert_all_pass(run, &harness::result_lines(multi, true), label);
    let shutdown = run.lines.last().unwrap();
    assert_eq!(
        shutdown["proxy_exit"], 0,
        "the proxy's exit status: {shutdown}"
    );
    assert_eq!(
        shutdown["client_exit"], 0,
        "the client's exit status: {shutdown}"
    );
}

fn args(client: &Path, extra: &[&str]) -> Vec<String> {
    ["--quick", "--timeout=120", "--handle-timeout=20"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .chain([
            format!("--proxy={PROXY}"),
            format!("--client={}", client.display()),
            format!("--scenarios={},datapipe", DEFAULT_SCENARIOS.join(",")),
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
    let run = run_host(&args(&peer("mojo-test-client"), &[]));
    check_all_pass(&run, false, "proxy");
}

#[test]
fn every_scenario_passes_libchrome_one_numeric_attachment() {
    let _g = serialized();
    let run = run_host(&args(&peer("mojo-test-client"), &["--num-attachments=1"]));
    check_all_pass(&run, false, "proxy");
}

#[test]
fn every_scenario_passes_libchrome_seven_numeric_attachments() {
    let _g = serialized();
    let run = run_host(&args(&peer("mojo-test-client"), &["--num-attachments=7"]));
    check_all_pass(&run, true, "proxy");
}

#[test]
fn every_scenario_passes_desktop_named_attachment() {
    let _g = serialized();
    let client = DesktopClient::new();
    let run = run_host(&args(
        &client.script,
        &["--proxy-extra-args=--legacy-profile=desktop"],
    ));
    check_all_pass(&run, false, "proxy");
}

#[test]
fn every_scenario_passes_desktop_one_numeric_attachment() {
    let _g = serialized();
    let client = DesktopClient::new();
    let run = run_host(&args(
        &client.script,
        &[
            "--num-attachments=1",
            "--proxy-extra-args=--legacy-profile=desktop",
        ],
    ));
    check_all_pass(&run, false, "proxy");
}

#[test]
fn every_scenario_passes_desktop_seven_numeric_attachments() {
    let _g = serialized();
    let client = DesktopClient::new();
    let run = run_host(&args(
        &client.script,
        &[
            "--num-attachments=7",
            "--proxy-extra-args=--legacy-profile=desktop",
        ],
    ));
    check_all_pass(&run, true, "proxy");
}

/// `--mode=inherit` (spec `ipcz.md` §4.3): the host is an ipcz non-broker
/// that joined its broker copy and referred the proxy to it; the proxy
/// runs `--inherit-ipcz-broker` and reaches the host over the socket the
/// broker's reply brought. Same lines as a direct run, labelled
/// `proxy_inherit`.
fn check_all_pass_inherit(run: &HostRun, multi: bool) {
    check_all_pass(run, multi, "proxy_inherit");
    assert_eq!(run.lines[0]["inherit_broker"], Value::Bool(true), "config");
}

#[test]
fn every_scenario_passes_inherit_mode_named_attachment() {
    let _g = serialized();
    let run = run_host(&args(&peer("mojo-test-client"), &["--mode=inherit"]));
    check_all_pass_inherit(&run, false);
}

#[test]
fn every_scenario_passes_inherit_mode_seven_numeric_attachments() {
    let _g = serialized();
    let run = run_host(&args(
        &peer("mojo-test-client"),
        &["--mode=inherit", "--num-attachments=7"],
    ));
    check_all_pass_inherit(&run, true);
}

#[test]
fn every_scenario_passes_inherit_mode_desktop_profile() {
    let _g = serialized();
    let client = DesktopClient::new();
    let run = run_host(&args(
        &client.script,
        &[
            "--mode=inherit",
            "--proxy-extra-args=--legacy-profile=desktop",
        ],
    ));
    check_all_pass_inherit(&run, false);
}
