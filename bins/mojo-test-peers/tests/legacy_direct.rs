//! `mojo-test-host --direct=legacy --client=mojo-test-client` over real
//! processes and sockets: the built host is the legacy broker, the built
//! client accepts its invitation, and every scenario (the default set and
//! `datapipe`) must pass, in
//! both wire profiles (the desktop run starts the client through a script
//! that adds `--legacy-profile=desktop`, since the host passes its profile
//! on to nothing, as the spec says).
//!
//! The host's own timeouts bound each scenario; the watchdog here only
//! stops a wedged run from hanging the test suite.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mojo_test_peers::harness::{self, HostRun};
use mojo_test_peers::host::DEFAULT_SCENARIOS;
use serde_json::Value;

const HOST: &str = env!("CARGO_BIN_EXE_mojo-test-host");
const CLIENT: &str = env!("CARGO_BIN_EXE_mojo-test-client");

fn run_host(args: &[String]) -> HostRun {
    harness::run_host(Path::new(HOST), args)
}

fn check_all_pass(run: &HostRun, multi: bool) {
    harness::assert_all_pass(run, &harness::result_lines(multi, true), "direct_legacy");
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
    .chain([
        format!("--client={client}"),
        format!("--scenarios={},datapipe", DEFAULT_SCENARIOS.join(",")),
    ])
    .collect()
}

#[test]
fn every_scenario_passes_libchrome() {
    let _g = harness::serialized();
    check_all_pass(&run_host(&common_args(CLIENT)), false);
}

#[test]
fn every_scenario_passes_desktop_numeric_attachments() {
    let _g = harness::serialized();
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
    let run = run_host(&args);
    let _ = std::fs::remove_dir_all(&dir);
    check_all_pass(&run, true);
}

#[test]
fn mismatched_profiles_fail_connect_and_exit_nonzero() {
    let _g = harness::serialized();
    // The host speaks desktop, the client libchrome: the client cannot read
    // INIT, so `connect` fails and the host gives up (status 1), no hang.
    let mut args = common_args(CLIENT);
    args.push("--legacy-profile=desktop".into());
    args.push("--timeout=30".into());
    args.push("--handle-timeout=5".into());
    let HostRun { code, lines, .. } = run_host(&args);
    let connect = lines
        .iter()
        .find(|l| l["scenario"] == "connect")
        .expect("a connect line");
    assert_eq!(connect["pass"], Value::Bool(false), "{connect}");
    assert_ne!(code, 0);
}
