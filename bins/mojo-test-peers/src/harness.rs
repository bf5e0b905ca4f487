//! Test support for runs of the built `mojo-test-host` (here and in
//! `mojo_proxy`'s tests): launch it with a watchdog, collect its JSON result
//! lines and its children's stderr, and check that every scenario passed in
//! the spec's order.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

/// Far beyond what a run takes; only a hang reaches it.
pub const WATCHDOG: Duration = Duration::from_secs(600);

/// Every result line of a run of the default scenarios and `datapipe`, in
/// the order the host prints them (test-peers.md §3 and §4).
const RESULT_LINES: &[&str] = &[
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

/// The result lines a run prints: `multi_attach` only with more than one
/// attachment, the data pipe lines only when `datapipe` was named.
pub fn result_lines(multi_attach: bool, datapipe: bool) -> Vec<&'static str> {
    RESULT_LINES
        .iter()
        .copied()
        .filter(|s| multi_attach || *s != "multi_attach")
        .filter(|s| datapipe || !s.starts_with("datapipe_"))
        .collect()
}

/// One run at a time in a test binary: a script written while another test
/// forks would be open for writing in that child (ETXTBSY), and the runs
/// compete for CPU.
pub fn serialized() -> MutexGuard<'static, ()> {
    static RUN_LOCK: Mutex<()> = Mutex::new(());
    RUN_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one host run printed.
#[derive(Debug)]
pub struct HostRun {
    /// Its exit status (-1 for a signal).
    pub code: i32,
    /// Its JSON result lines.
    pub lines: Vec<Value>,
    /// Its stderr and its children's (already echoed to ours).
    pub stderr: String,
}

/// Runs `host` with `args` and `RUST_LOG=warn` for its children; panics
/// past [`WATCHDOG`] or on a stdout line that is not JSON.
pub fn run_host(host: &Path, args: &[String]) -> HostRun {
    let mut child = Command::new(host)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", host.display()));
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        panic!("the host's pipes");
    };
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
    let code = child.wait().map(|s| s.code().unwrap_or(-1)).unwrap_or(-1);
    let stderr = errors.join().unwrap_or_default();
    eprint!("{stderr}");
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    HostRun {
        code,
        lines,
        stderr,
    }
}

/// Asserts that `run` printed exactly `expected` lines, in order, each
/// passing with `label`, and exited 0.
pub fn assert_all_pass(run: &HostRun, expected: &[&str], label: &str) {
    let names: Vec<&str> = run
        .lines
        .iter()
        .map(|l| l["scenario"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(names, expected, "result lines");
    for l in &run.lines {
        assert_eq!(l["pass"], Value::Bool(true), "{l}");
        assert_eq!(l["label"], label, "{l}");
    }
    assert_eq!(run.code, 0, "host exit status");
}
