//! The reference host's `leak` scenario, as our test host runs it, over
//! real processes: our host → `mojo_proxy` → our legacy client, a few
//! hundred round trips that each move a pipe, a shared buffer and two fds
//! through the proxy. Every round trip must complete, the proxy's fd count
//! must not grow, and the host must have read the proxy's and the client's
//! figures from `/proc` (so the check it makes is a real one). `cargo
//! xtask soak` runs the same scenario for a million messages with handles.
//!
//! Like `end_to_end.rs`, it needs the test peers next to the proxy (`cargo
//! build -p mojo-test-peers`).

use std::path::{Path, PathBuf};

use mojo_test_peers::harness::{self, serialized};
use mojo_test_peers::host::LEAK_WARMUP;

const PROXY: &str = env!("CARGO_BIN_EXE_mojo_proxy");

/// Measured round trips: enough that a leak of one fd per hundred round
/// trips shows.
const ROUND_TRIPS: i64 = 300;

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

#[test]
fn leak_round_trips_through_the_proxy_leave_its_fd_count_flat() {
    let _g = serialized();
    let args: Vec<String> = vec![
        format!("--proxy={PROXY}"),
        format!("--client={}", peer("mojo-test-client").display()),
        "--scenarios=leak".into(),
        format!("--leak-iters={ROUND_TRIPS}"),
        "--timeout=120".into(),
    ];
    let run = harness::run_host(&peer("mojo-test-host"), &args);
    harness::assert_all_pass(&run, &["config", "connect", "leak", "shutdown"], "proxy");
    assert!(
        !run.stderr.contains("still open at exit"),
        "the proxy leaked fds: {}",
        run.stderr
    );
    let leak = &run.lines[2];
    assert_eq!(leak["iterations"], ROUND_TRIPS, "{leak}");
    assert_eq!(leak["round_trips_ok"], ROUND_TRIPS + LEAK_WARMUP, "{leak}");
    let figure = |key: &str| {
        leak[key]
            .as_i64()
            .unwrap_or_else(|| panic!("{key} in {leak}"))
    };
    for key in [
        "proxy_fds_start",
        "proxy_rss_kb_start",
        "client_fds_start",
        "client_rss_kb_start",
        "host_fds_start",
    ] {
        assert!(
            figure(key) > 0,
            "{key}: the host did not read /proc: {leak}"
        );
    }
    assert!(
        figure("proxy_fds_end") <= figure("proxy_fds_start"),
        "the proxy's fd count grew: {leak}"
    );
    assert!(
        figure("client_fds_end") <= figure("client_fds_start"),
        "the client's fd count grew: {leak}"
    );
    let shutdown = &run.lines[3];
    assert_eq!(shutdown["proxy_exit"], 0, "{shutdown}");
    assert_eq!(shutdown["client_exit"], 0, "{shutdown}");
}
