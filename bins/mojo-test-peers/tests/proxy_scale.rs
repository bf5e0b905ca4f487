//! The host's own scenarios (ours, not the spec's) over real processes:
//! `mojo-test-host` → the real `mojo_proxy` → `mojo-test-client`.
//!
//! `scale`, with a small number of pipes alive at once: every line of the
//! scenario must pass: each pipe echoes its probe once, round trips on the
//! main pipe and spread over the pipes, a one-way run spread over them,
//! every pipe closed and seen closed, and both children exit 0.
//!
//! `throughput_extra` (what `cargo xtask bench` measures besides the spec's
//! `throughput`): 1 MiB messages, and messages carrying one fd, one shared
//! buffer or one new pipe each, through the proxy, through the bench's
//! floor (`mojo-relay`, with the ipcz client) and over both direct
//! connections; every message and every handle must reach the client.
//!
//! Run `cargo build -p mojo_proxy -p mojo-relay` first: the proxy and the
//! relay are other packages' binaries, found next to the test peers.

#[allow(dead_code)]
mod proxy_support;

use std::process::Command;

use serde_json::Value;

use proxy_support::{client_bin, proxy_bin, serialized};

const HOST_BIN: &str = env!("CARGO_BIN_EXE_mojo-test-host");

/// Pipes alive at once: a few ScaleOpen batches, the last one partial.
const PIPES: u32 = 150;

fn lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn find<'a>(lines: &'a [Value], scenario: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["scenario"] == scenario)
        .unwrap_or_else(|| panic!("no `{scenario}` line in {lines:?}"))
}

#[test]
fn scale_scenario_passes_through_the_proxy() {
    let _run = serialized();
    let out = Command::new(HOST_BIN)
        .arg(format!("--proxy={}", proxy_bin().display()))
        .arg(format!("--client={}", client_bin()))
        .args(["--scenarios=scale", "--quick", "--timeout=120"])
        .arg(format!("--scale-pipes={PIPES}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "host: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = lines(&out.stdout);
    for scenario in [
        "connect",
        "scale_open",
        "scale_rtt",
        "scale",
        "scale_close",
        "shutdown",
    ] {
        let l = find(&lines, scenario);
        assert_eq!(l["pass"], true, "{l}");
    }
    let open = find(&lines, "scale_open");
    assert_eq!(open["opened"], PIPES);
    assert_eq!(open["echoed"], PIPES);
    let scale = find(&lines, "scale");
    assert_eq!(scale["pipes"], PIPES);
    assert_eq!(scale["tput_received"], scale["tput_count"]);
    assert_eq!(
        scale["client_echoed"], 1200,
        "200 warm-up + 1,000 --quick round trips"
    );
    assert!(scale["spread_rtt_64_p50_us"].as_f64().unwrap() > 0.0);
    let close = find(&lines, "scale_close");
    assert_eq!(close["client_closed"], PIPES);
    assert_eq!(close["peer_closed"], PIPES);
    let shutdown = find(&lines, "shutdown");
    assert_eq!(shutdown["proxy_exit"], 0);
    assert_eq!(shutdown["client_exit"], 0);
    // Not in the default set: the spec's scenarios stay as they are.
    assert!(!mojo_test_peers::host::DEFAULT_SCENARIOS.contains(&"scale"));
}

#[test]
fn throughput_extra_delivers_every_message_and_handle() {
    let _run = serialized();
    for mode in [
        format!("--proxy={}", proxy_bin().display()),
        format!(
            "--relay={}",
            proxy_bin().with_file_name("mojo-relay").display()
        ),
        "--direct=ipcz".to_string(),
        "--direct=legacy".to_string(),
    ] {
        let out = Command::new(HOST_BIN)
            .arg(&mode)
            .arg(format!("--client={}", client_bin()))
            .args(["--scenarios=throughput_extra", "--quick", "--timeout=120"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{mode}: host: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = lines(&out.stdout);
        let names: Vec<&str> = lines
            .iter()
            .filter_map(|l| l["scenario"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "config",
                "connect",
                "throughput_1048576",
                "throughput_fd",
                "throughput_shm",
                "throughput_pipe",
                "shutdown"
            ],
            "{mode}"
        );
        for l in &lines {
            assert_eq!(l["pass"], true, "{mode}: {l}");
        }
        let big = find(&lines, "throughput_1048576");
        assert_eq!(big["received"], 100, "{mode}: --quick count");
        assert_eq!(big["bytes"], 100u64 << 20, "{mode}");
        for (name, _) in mojo_test_peers::host::HANDLE_RUNS {
            let l = find(&lines, name);
            assert_eq!(l["count"], 1000, "{mode}: --quick count");
            assert_eq!(l["handles"], l["count"], "{mode}: {l}");
            assert_eq!(l["received"], l["count"], "{mode}: {l}");
        }
    }
    assert!(!mojo_test_peers::host::DEFAULT_SCENARIOS.contains(&"throughput_extra"));
}
