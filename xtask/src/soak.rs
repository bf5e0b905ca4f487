//! `cargo xtask soak [--messages N] [--json PATH] [--proxy=PATH]`: issue 11
//! item 5's soak (docs/RELIABILITY.md, "Soak").
//!
//! It builds the release binaries, then runs our test host's `leak`
//! scenario (the reference host's, `mojo_test_peers::host`'s `leak`
//! module) through the proxy to our legacy client: round trips that each
//! move a message pipe, a shared buffer and two fds (a memfd and an OS
//! pipe's write end) through the proxy, 8 messages per round trip, 3 of
//! them with handles. `--messages` (default [`DEFAULT_MESSAGES`]) counts
//! the messages with handles (so 1,000,000 of them are 333,334 round trips
//! and 2.67 million messages in all); the host runs as many round trips as
//! that takes (`--leak-iters`, after the scenario's own 10 warm-up round
//! trips). Meanwhile the proxy (its pid from the host's `[host]
//! spawned pid` line) is sampled through `/proc/PID` every
//! [`SAMPLE_INTERVAL`] (`crate::procfs`, shared with `cargo xtask bench`):
//! `VmRSS` and the fd count. The run fails, with the reasons, unless the
//! host's `leak` and `shutdown` lines pass and the samples are flat after
//! the warm-up ([`verdict`]). A short table goes to stdout, and with
//! `--json` the samples, the verdict and the host's lines to PATH.

pub(crate) mod verdict;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mojo_test_peers::host::{
    LEAK_HANDLE_MESSAGES_PER_ROUND_TRIP, LEAK_MESSAGES_PER_ROUND_TRIP, LEAK_WARMUP,
};
use serde_json::{Value, json};

use crate::procfs::{self, HostStderr};
use verdict::Point;

/// Messages with handles through the proxy without `--messages`.
pub(crate) const DEFAULT_MESSAGES: u64 = 1_000_000;
/// How often the proxy is sampled.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// A progress line every this many samples.
const PROGRESS_EVERY: usize = 30;
/// How long to wait for the host's `spawned pid` line of the proxy.
const PID_WAIT: Duration = Duration::from_secs(10);
/// The slowest rate (messages with handles a second) the host's watchdog
/// allows before it calls the run hung; far below any rate seen
/// (docs/RELIABILITY.md).
const SLOWEST_RATE: u64 = 200;
/// The host's watchdog is never shorter than this (seconds).
const MIN_HOST_TIMEOUT_S: u64 = 300;

/// The command line of `cargo xtask soak`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SoakArgs {
    messages: u64,
    json: Option<PathBuf>,
    /// `--proxy=PATH` (default: our release `mojo_proxy`).
    proxy: Option<String>,
}

fn parse_args(args: &[String]) -> Result<SoakArgs, String> {
    let mut parsed = SoakArgs {
        messages: DEFAULT_MESSAGES,
        json: None,
        proxy: None,
    };
    let mut flags = crate::flags::Flags::new(args);
    while let Some(name) = flags.next_name() {
        match name.as_str() {
            "--json" => parsed.json = Some(PathBuf::from(flags.value()?)),
            "--proxy" if parsed.proxy.is_some() => {
                return Err("soak: --proxy given twice (a soak runs one proxy)".into());
            }
            "--proxy" => parsed.proxy = Some(flags.value()?),
            "--messages" => parsed.messages = flags.positive()?,
            other => return Err(format!("soak: unknown argument {other}")),
        }
    }
    Ok(parsed)
}

/// The host's `--leak-iters` for `messages` messages with handles: round
/// trips after the scenario's warm-up, so that all of them carry at least
/// `messages`.
fn leak_iters(messages: u64) -> Result<i32, String> {
    let round_trips = messages.div_ceil(LEAK_HANDLE_MESSAGES_PER_ROUND_TRIP);
    let warmup = LEAK_WARMUP.unsigned_abs();
    let iters = round_trips.saturating_sub(warmup).max(1);
    i32::try_from(iters)
        .map_err(|_| format!("--messages={messages}: more round trips than the host counts"))
}

/// The host's watchdog (seconds) for `messages` messages.
fn host_timeout_s(messages: u64) -> u64 {
    (messages / SLOWEST_RATE).max(MIN_HOST_TIMEOUT_S)
}

/// What one soak run left.
#[derive(Debug, Default)]
struct SoakRun {
    lines: Vec<Value>,
    points: Vec<Point>,
    /// The proxy's CPU time (ns) at the first and the last sample.
    cpu_ns: (u64, u64),
    /// The proxy's peak RSS (`VmHWM`, KiB) at the last sample.
    hwm_kb: u64,
    wall: Duration,
    host_status: Option<std::process::ExitStatus>,
    stderr_tail: Vec<String>,
}

/// Runs the host and samples the proxy until it is gone.
fn run_host(
    host: &Path,
    client: &Path,
    proxy: &str,
    iters: i32,
    timeout_s: u64,
) -> Result<SoakRun, String> {
    let mut cmd = Command::new(host);
    cmd.arg(format!("--proxy={proxy}"))
        .arg(format!("--client={}", client.display()))
        .arg("--scenarios=leak")
        .arg(format!("--leak-iters={iters}"))
        .arg("--label=soak")
        .arg(format!("--timeout={timeout_s}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    eprintln!("==> soak: {cmd:?}");
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", host.display()))?;
    let stdout = child.stdout.take().ok_or("host stdout not piped")?;
    let stderr = child.stderr.take().ok_or("host stderr not piped")?;
    let host_stderr = HostStderr::spawn(stderr, Some(proxy.to_string()), |_| {});
    let stdout_thread = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .collect::<Vec<Value>>()
    });
    let mut run = SoakRun::default();
    match host_stderr.pids.recv_timeout(PID_WAIT) {
        Ok(pid) => sample_until_gone(pid, started, &mut run),
        Err(_) => {
            eprintln!("soak: no `spawned pid` line for {proxy} within {PID_WAIT:?}");
            let _ = child.kill();
        }
    }
    run.host_status = child.wait().ok();
    run.wall = started.elapsed();
    run.lines = stdout_thread.join().unwrap_or_default();
    run.stderr_tail = host_stderr.finish();
    Ok(run)
}

/// Samples `pid` every [`SAMPLE_INTERVAL`] until it is gone, with a
/// progress line every [`PROGRESS_EVERY`] samples.
fn sample_until_gone(pid: u32, started: Instant, run: &mut SoakRun) {
    let first = Instant::now();
    let mut next = first;
    while let Some(s) = procfs::sample(pid) {
        let t_s = first.elapsed().as_secs_f64();
        if run.points.is_empty() {
            run.cpu_ns.0 = s.cpu_ns;
        }
        run.cpu_ns.1 = s.cpu_ns;
        run.hwm_kb = s.hwm_kb;
        run.points.push(Point {
            t_s,
            rss_kb: s.rss_kb,
            fds: s.fds,
        });
        if run.points.len() % PROGRESS_EVERY == 0 {
            eprintln!(
                "soak: {:.0} s, proxy pid {pid}: RSS {} KiB, {} fds",
                started.elapsed().as_secs_f64(),
                s.rss_kb,
                s.fds
            );
        }
        next += SAMPLE_INTERVAL;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// The host's line of `scenario`, if it printed one.
fn line<'a>(lines: &'a [Value], scenario: &str) -> Option<&'a Value> {
    lines.iter().find(|l| l["scenario"] == scenario)
}

/// Why the host's side of the run failed (empty: it passed).
fn host_failures(run: &SoakRun) -> Vec<String> {
    let mut failures = Vec::new();
    match run.host_status {
        Some(s) if s.success() => {}
        Some(s) => failures.push(format!("the host exited with {s}")),
        None => failures.push("the host could not be waited for".into()),
    }
    for scenario in ["leak", "shutdown"] {
        match line(&run.lines, scenario) {
            Some(l) if l["pass"] == true => {}
            Some(l) => failures.push(format!("the host's {scenario} line failed: {l}")),
            None => failures.push(format!("the host printed no {scenario} line")),
        }
    }
    failures
}

/// `cargo xtask soak`.
pub(crate) fn run(raw_args: &[String]) -> Result<(), String> {
    let args = parse_args(raw_args)?;
    let mut build = crate::cargo();
    build.args(["build", "--release", "-p", "mojo-test-peers"]);
    crate::run("release build", build)?;
    let release = crate::target_dir().join("release");
    let host = release.join("mojo-test-host");
    let client = release.join("mojo-test-client");
    let proxy = match args.proxy.clone() {
        Some(proxy) => proxy,
        None => crate::dist::build(&["mojo_proxy"], &[], &crate::target_dir())?
            .join("mojo_proxy")
            .display()
            .to_string(),
    };
    let iters = leak_iters(args.messages)?;
    let timeout_s = host_timeout_s(args.messages);
    let run = run_host(&host, &client, &proxy, iters, timeout_s)?;
    let leak = line(&run.lines, "leak");
    let round_trips = leak.and_then(|l| l["round_trips_ok"].as_u64()).unwrap_or(0);
    let messages = round_trips * LEAK_MESSAGES_PER_ROUND_TRIP;
    let leak_s = leak.and_then(|l| l["elapsed_s"].as_f64()).unwrap_or(0.0);
    let measured = leak.and_then(|l| l["iterations"].as_u64()).unwrap_or(0);
    let per_s = |per_round_trip: u64| {
        if leak_s > 0.0 {
            (measured * per_round_trip) as f64 / leak_s
        } else {
            0.0
        }
    };
    let (rate, handle_rate) = (
        per_s(LEAK_MESSAGES_PER_ROUND_TRIP),
        per_s(LEAK_HANDLE_MESSAGES_PER_ROUND_TRIP),
    );
    let figure = |key: &str| leak.and_then(|l| l[key].as_i64()).unwrap_or(-1);
    let cpu_s = run.cpu_ns.1.saturating_sub(run.cpu_ns.0) as f64 / 1e9;
    let verdict = verdict::judge(&run.points);
    let mut failures = host_failures(&run);
    failures.extend(verdict.failures.iter().cloned());

    println!(
        "soak: {} messages with handles ({messages} in all, {round_trips} round trips) through {proxy}",
        round_trips * LEAK_HANDLE_MESSAGES_PER_ROUND_TRIP
    );
    println!(
        "wall {:.0} s; the leak scenario's {measured} measured round trips took {leak_s:.0} s: {handle_rate:.0} messages with handles/s ({rate:.0} messages/s); proxy CPU {cpu_s:.1} s, peak RSS {} KiB",
        run.wall.as_secs_f64(),
        run.hwm_kb
    );
    println!(
        "host's leak line: proxy fds {} -> {}, RSS {} -> {} KiB; client fds {} -> {}, RSS {} -> {} KiB",
        figure("proxy_fds_start"),
        figure("proxy_fds_end"),
        figure("proxy_rss_kb_start"),
        figure("proxy_rss_kb_end"),
        figure("client_fds_start"),
        figure("client_fds_end"),
        figure("client_rss_kb_start"),
        figure("client_rss_kb_end"),
    );
    print!("{}", verdict::summary(&verdict, &run.points));
    if let Some(path) = &args.json {
        let command: String = std::iter::once("cargo xtask soak")
            .chain(raw_args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        let mut json = json!({
            "command": command,
            "proxy": proxy,
            "messages_requested": args.messages,
            "messages": messages,
            "round_trips": round_trips,
            "handle_messages": round_trips * LEAK_HANDLE_MESSAGES_PER_ROUND_TRIP,
            "wall_s": run.wall.as_secs_f64(),
            "leak_elapsed_s": leak_s,
            "messages_per_s": rate,
            "handle_messages_per_s": handle_rate,
            "proxy_cpu_s": cpu_s,
            "proxy_peak_rss_kb": run.hwm_kb,
            "sample_interval_s": SAMPLE_INTERVAL.as_secs_f64(),
            "verdict": verdict::verdict_json(&verdict),
            "pass": failures.is_empty(),
            "failures": failures,
            "host_lines": run.lines,
            "samples": verdict::samples_json(&run.points),
        });
        for (key, value) in crate::bench::machine() {
            json[key] = value;
        }
        let text = serde_json::to_string_pretty(&json).map_err(|e| format!("JSON: {e}"))?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    if failures.is_empty() {
        return Ok(());
    }
    if run.host_status.is_none_or(|s| !s.success()) {
        eprintln!(
            "the host's last stderr lines:\n  {}",
            run.stderr_tail.join("\n  ")
        );
    }
    Err(format!("soak failed:\n  {}", failures.join("\n  ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_line() {
        let a = parse_args(&args(&[
            "--messages",
            "20_000",
            "--json=/tmp/s.json",
            "--proxy=/x/p",
        ]))
        .unwrap();
        assert_eq!(a.messages, 20_000);
        assert_eq!(a.json, Some(PathBuf::from("/tmp/s.json")));
        assert_eq!(a.proxy.as_deref(), Some("/x/p"));
        assert_eq!(parse_args(&[]).unwrap().messages, DEFAULT_MESSAGES);
        assert!(parse_args(&args(&["--messages=0"])).is_err());
        assert!(parse_args(&args(&["--messages=lots"])).is_err());
        assert!(parse_args(&args(&["--proxy=/a", "--proxy=/b"])).is_err());
        assert!(parse_args(&args(&["--quick"])).is_err());
    }

    #[test]
    fn messages_become_round_trips_after_the_warm_up() {
        // 1,000,000 / 3 = 333,334 round trips, 10 of them warm-up.
        assert_eq!(leak_iters(1_000_000), Ok(333_324));
        assert_eq!(leak_iters(1_000_003), Ok(333_325));
        assert_eq!(leak_iters(3), Ok(1));
        assert!(leak_iters(u64::MAX).is_err());
        assert_eq!(host_timeout_s(1_000_000), 5000);
        assert_eq!(host_timeout_s(1000), MIN_HOST_TIMEOUT_S);
    }

    #[test]
    fn a_failed_or_missing_host_line_fails_the_run() {
        let mut run = SoakRun {
            lines: vec![
                json!({"scenario": "leak", "pass": true}),
                json!({"scenario": "shutdown", "pass": false}),
            ],
            ..SoakRun::default()
        };
        let f = host_failures(&run);
        assert!(f.iter().any(|f| f.contains("could not be waited")), "{f:?}");
        assert!(
            f.iter().any(|f| f.contains("shutdown line failed")),
            "{f:?}"
        );
        run.lines.remove(0);
        assert!(
            host_failures(&run)
                .iter()
                .any(|f| f.contains("no leak line"))
        );
    }
}
