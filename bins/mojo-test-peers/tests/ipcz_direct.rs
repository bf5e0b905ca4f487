//! `mojo-test-host --direct=ipcz --client=mojo-test-client` over real
//! processes and sockets: the built host is the ipcz broker, the built
//! client (launched with `--ipcz`) accepts its invitation as a Mojo+ipcz
//! non-broker, and every scenario (the default set and `datapipe`) must
//! pass, with one named attachment and with numeric ones.
//!
//! The host's own timeouts bound each scenario; the watchdog here only
//! stops a wedged run from hanging the test suite.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use mojo_test_peers::harness::{self, HostRun};
use mojo_test_peers::host::DEFAULT_SCENARIOS;
use serde_json::Value;

const HOST: &str = env!("CARGO_BIN_EXE_mojo-test-host");
const CLIENT: &str = env!("CARGO_BIN_EXE_mojo-test-client");

fn run_host(args: &[String]) -> HostRun {
    harness::run_host(Path::new(HOST), args)
}

fn check_all_pass(run: &HostRun, multi: bool) {
    harness::assert_all_pass(run, &harness::result_lines(multi, true), "direct_ipcz");
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
    let _g = harness::serialized();
    check_all_pass(&run_host(&common_args()), false);
}

#[test]
fn every_scenario_passes_with_numeric_attachments() {
    let _g = harness::serialized();
    let mut args = common_args();
    args.push("--num-attachments=3".into());
    check_all_pass(&run_host(&args), true);
}

#[test]
fn a_legacy_client_does_not_connect_and_the_host_exits_nonzero() {
    let _g = harness::serialized();
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
    let HostRun { code, lines, .. } = run_host(&args);
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
