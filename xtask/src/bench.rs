//! `cargo xtask bench [--quick] [--json PATH] [--proxy=PATH]... [--runs N]
//! [--taskset=CPUS]`: the benchmark harness of docs/PERFORMANCE.md.
//!
//! It builds the release binaries, then runs the test host's `throughput`
//! and `latency` scenarios over every case, interleaved, `--runs` times:
//!
//! - `floor`: host → `mojo-relay` (bytes and fds moved, no protocol work) →
//!   ipcz client (`mojo-test-host --relay`);
//! - `proxy` (and `proxy2`, ... for more `--proxy`): host → the proxy →
//!   legacy client;
//! - `direct`: host ↔ ipcz client on one socket pair (`--direct=ipcz`), and
//!   `direct_legacy` (`--direct=legacy`).
//!
//! For the hop cases it also watches the hop process through `/proc/PID`
//! (the pid from the host's `[host] spawned pid N: PATH` line): its RSS and
//! fd count when idle (one extra run per hop, the host stopped with SIGSTOP
//! right after `connect` so the hop has nothing to do), its peak RSS and fd
//! count, and its CPU time between the `connect` and `throughput_64` lines
//! divided by that run's message count. The idle run of our own proxy uses
//! its `bench-alloc` build (in `target/bench-alloc`), whose allocation
//! counter is read through `/proc/PID/mem` at `connect` and `throughput_64`
//! with the host stopped: allocations per 64 B message. Each figure is the
//! median of the runs. The result is one flat JSON object (`<case>.<figure>`, with
//! `_vs_floor` ratios; see [`report::flat_json`]) and a table on stdout.

mod report;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use report::{Figures, HopSample};

/// Runs of every case without `--runs` (the median is reported).
const DEFAULT_RUNS: usize = 3;
/// Runs of every case with `--quick`.
const QUICK_RUNS: usize = 3;
/// How long the host stays stopped before the idle sample is taken.
const IDLE_SETTLE: Duration = Duration::from_millis(200);
/// How long to wait for the host's `spawned pid` line after `connect`.
const PID_WAIT: Duration = Duration::from_secs(2);
/// The host's own watchdog for one run (seconds).
const HOST_TIMEOUT_S: u32 = 300;
/// Host stderr lines kept to explain a failed run.
const STDERR_TAIL: usize = 30;

/// The command line of `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BenchArgs {
    quick: bool,
    json: Option<PathBuf>,
    /// `--proxy=PATH`, in order (default: our `mojo_proxy`).
    proxies: Vec<String>,
    runs: usize,
    taskset: Option<String>,
}

fn parse_args(args: &[String]) -> Result<BenchArgs, String> {
    let mut parsed = BenchArgs {
        quick: false,
        json: None,
        proxies: Vec::new(),
        runs: 0,
        taskset: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--quick" => parsed.quick = true,
            "--json" => parsed.json = Some(PathBuf::from(value()?)),
            "--proxy" => parsed.proxies.push(value()?),
            "--taskset" => parsed.taskset = Some(value()?),
            "--runs" => {
                let v = value()?;
                parsed.runs = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--runs={v}: expected a positive number"))?;
            }
            other => return Err(format!("bench: unknown argument {other}")),
        }
    }
    if parsed.runs == 0 {
        parsed.runs = if parsed.quick {
            QUICK_RUNS
        } else {
            DEFAULT_RUNS
        };
    }
    Ok(parsed)
}

/// One case: its name, the host's switches for it, and the hop program
/// (whose process is watched), if any.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    host_args: Vec<String>,
    hop: Option<String>,
    /// The hop of the idle run when it differs (our proxy's `bench-alloc`
    /// build, whose allocation counter that run reads).
    idle_hop: Option<String>,
}

impl Case {
    /// The case as its idle run launches it.
    fn for_idle_run(&self) -> Self {
        let Some(idle_hop) = &self.idle_hop else {
            return self.clone();
        };
        Self {
            host_args: vec![format!("--proxy={idle_hop}")],
            hop: Some(idle_hop.clone()),
            ..self.clone()
        }
    }
}

fn cases(release: &Path, proxies: &[String], alloc_proxy: Option<&str>) -> Vec<Case> {
    let relay = release.join("mojo-relay").display().to_string();
    let ours = release.join("mojo_proxy").display().to_string();
    let mut cases = vec![Case {
        name: report::FLOOR.into(),
        host_args: vec![format!("--relay={relay}")],
        hop: Some(relay),
        idle_hop: None,
    }];
    for (i, proxy) in proxies.iter().enumerate() {
        let name = if i == 0 {
            "proxy".to_string()
        } else {
            format!("proxy{}", i + 1)
        };
        cases.push(Case {
            name,
            host_args: vec![format!("--proxy={proxy}")],
            hop: Some(proxy.clone()),
            idle_hop: alloc_proxy.filter(|_| *proxy == ours).map(str::to_string),
        });
    }
    for (name, direct) in [(report::DIRECT, "ipcz"), ("direct_legacy", "legacy")] {
        cases.push(Case {
            name: name.into(),
            host_args: vec![format!("--direct={direct}")],
            hop: None,
            idle_hop: None,
        });
    }
    cases
}

/// What one host run left: its JSON lines and the samples of the hop.
#[derive(Debug, Default)]
struct RunOutput {
    lines: Vec<Value>,
    /// At the `connect` line (for `idle`: after the host was stopped).
    at_connect: Option<HopSample>,
    /// At the `throughput_64` line.
    at_throughput_64: Option<HopSample>,
    /// The largest RSS peak and fd count seen.
    peak: HopSample,
    cpus: Vec<u32>,
    /// The hop's allocation counter at the `connect` and `throughput_64`
    /// lines (idle run, a hop that prints its counter's address).
    allocs: (Option<u64>, Option<u64>),
}

/// The `u64` at `address` in process `pid` (its `bench-alloc` counter).
fn read_counter(pid: u32, address: u64) -> Option<u64> {
    use std::os::unix::fs::FileExt as _;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut word = [0u8; 8];
    mem.read_exact_at(&mut word, address).ok()?;
    Some(u64::from_ne_bytes(word))
}

/// Reads `/proc/PID` of the hop; `None` once it is gone.
fn sample(pid: u32) -> Option<HopSample> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let status = std::fs::read_to_string(proc.join("status")).ok()?;
    let (rss_kb, hwm_kb) = report::status_rss_hwm(&status)?;
    let fds = std::fs::read_dir(proc.join("fd")).ok()?.count() as u64;
    let cpu_ns = std::fs::read_dir(proc.join("task"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| report::schedstat_ns(&s))
        .sum();
    let cpu = std::fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|s| report::stat_processor(&s));
    Some(HopSample {
        rss_kb,
        hwm_kb,
        fds,
        cpu_ns,
        cpu,
    })
}

/// Sends a signal to `pid` with kill(1) (the only signals the harness sends
/// are SIGSTOP and SIGCONT to its own host child).
fn signal(pid: u32, name: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("kill -{name}: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("kill -{name} {pid}: {status}"))
}

/// Runs the host once for `case`. With `idle`, the host is stopped right
/// after `connect` while the hop is sampled.
fn run_host(
    host: &Path,
    client: &Path,
    case: &Case,
    quick: bool,
    taskset: Option<&str>,
    idle: bool,
) -> Result<RunOutput, String> {
    let mut cmd = match taskset {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(host);
            c
        }
        None => Command::new(host),
    };
    cmd.arg(format!("--client={}", client.display()))
        .args(&case.host_args)
        .arg("--scenarios=throughput,latency")
        .arg(format!("--label={}", case.name))
        .arg(format!("--timeout={HOST_TIMEOUT_S}"));
    if quick || idle {
        cmd.arg("--quick");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", host.display()))?;
    let host_pid = child.id();
    let stdout = child.stdout.take().ok_or("host stdout not piped")?;
    let stderr = child.stderr.take().ok_or("host stderr not piped")?;
    let (pid_tx, pid_rx) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    let hop = case.hop.clone();
    let stderr_thread = std::thread::spawn(move || {
        let mut tail: Vec<String> = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(pid) = hop.as_deref().and_then(|h| report::spawned_pid(&line, h)) {
                let _ = pid_tx.send(pid);
            }
            if let Some(address) = report::alloc_counter_address(&line) {
                let _ = addr_tx.send(address);
            }
            if tail.len() == STDERR_TAIL {
                tail.remove(0);
            }
            tail.push(line);
        }
        tail
    });
    let mut out = RunOutput::default();
    let mut hop_pid: Option<u32> = None;
    let mut counter: Option<u64> = None;
    let keep = |s: HopSample, out: &mut RunOutput| {
        out.peak.hwm_kb = out.peak.hwm_kb.max(s.hwm_kb);
        out.peak.fds = out.peak.fds.max(s.fds);
        if let Some(cpu) = s.cpu.filter(|c| !out.cpus.contains(c)) {
            out.cpus.push(cpu);
        }
        s
    };
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading the host's output: {e}"))?;
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let scenario = value["scenario"].as_str().unwrap_or("").to_string();
        out.lines.push(value);
        if case.hop.is_none() {
            continue;
        }
        if scenario == "connect" && hop_pid.is_none() {
            hop_pid = pid_rx.recv_timeout(PID_WAIT).ok();
        }
        let Some(pid) = hop_pid else { continue };
        if scenario == "connect" && idle {
            signal(host_pid, "STOP")?;
            std::thread::sleep(IDLE_SETTLE);
            let s = sample(pid);
            // The proxy prints its counter's address before it reads a byte.
            counter = addr_rx.try_recv().ok();
            out.allocs.0 = counter.and_then(|a| read_counter(pid, a));
            signal(host_pid, "CONT")?;
            out.at_connect = s.map(|s| keep(s, &mut out));
            continue;
        }
        if scenario == "throughput_64" && idle {
            if let Some(address) = counter {
                signal(host_pid, "STOP")?;
                out.allocs.1 = read_counter(pid, address);
                signal(host_pid, "CONT")?;
            }
        }
        let s = sample(pid).map(|s| keep(s, &mut out));
        match scenario.as_str() {
            "connect" => out.at_connect = s,
            "throughput_64" => out.at_throughput_64 = s,
            _ => {}
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the host: {e}"))?;
    let tail = stderr_thread.join().unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "{}: host {status}; its last stderr lines:\n  {}",
            case.name,
            tail.join("\n  ")
        ));
    }
    if case.hop.is_some() && hop_pid.is_none() {
        return Err(format!("{}: no `spawned pid` line for the hop", case.name));
    }
    Ok(out)
}

/// The hop figures of one measured run.
fn hop_figures(run: &RunOutput) -> Figures {
    let mut f = Figures::new();
    if run.peak.hwm_kb > 0 {
        f.insert("peak_rss_kb".into(), run.peak.hwm_kb as f64);
        f.insert("max_fds".into(), run.peak.fds as f64);
    }
    let count = report::throughput_64_count(&run.lines);
    if let (Some(a), Some(b), Some(n)) = (run.at_connect, run.at_throughput_64, count) {
        if n > 0 && b.cpu_ns >= a.cpu_ns {
            f.insert(
                "cpu_us_per_msg_64".into(),
                (b.cpu_ns - a.cpu_ns) as f64 / 1e3 / n as f64,
            );
        }
    }
    f
}

/// Per case: every run's figures, the idle run's, and the CPUs seen.
#[derive(Debug, Default)]
struct CaseRuns {
    runs: Vec<Figures>,
    failures: Vec<String>,
    idle: Figures,
    cpus: Vec<u32>,
}

fn median_figures(c: &CaseRuns) -> Figures {
    let mut keys: Vec<&String> = c.runs.iter().flat_map(|f| f.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Figures::new();
    for key in keys {
        let mut values: Vec<f64> = c.runs.iter().filter_map(|f| f.get(key).copied()).collect();
        if let Some(m) = report::median(&mut values) {
            out.insert(key.clone(), m);
        }
    }
    out.extend(c.idle.iter().map(|(k, v)| (k.clone(), *v)));
    out.insert("runs".into(), c.runs.len() as f64);
    out.insert("failed_runs".into(), c.failures.len() as f64);
    out
}

/// The machine, as the report describes it.
fn machine() -> Vec<(String, Value)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let allowed = read("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|l| l.trim().to_string())
        .unwrap_or_default();
    let load = read("/proc/loadavg");
    vec![
        ("machine.cpu_model".into(), model.into()),
        ("machine.cpus".into(), cores.into()),
        (
            "machine.kernel".into(),
            read("/proc/sys/kernel/osrelease").trim().into(),
        ),
        ("machine.cpus_allowed".into(), allowed.into()),
        (
            "machine.loadavg_at_start".into(),
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
                .into(),
        ),
    ]
}

/// `cargo xtask bench`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let args = parse_args(args)?;
    let root = crate::workspace_root();
    let mut build = crate::cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "mojo_proxy",
        "-p",
        "mojo-test-peers",
        "-p",
        "mojo-relay",
    ]);
    crate::run("release build", build)?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let release = target.join("release");
    // Our proxy with the counting allocator, in its own target directory
    // so that target/release keeps the normal build; only the idle run of
    // the `proxy` case uses it (allocations per message).
    let alloc_target = target.join("bench-alloc");
    let mut build = crate::cargo();
    build
        .args([
            "build",
            "--release",
            "-p",
            "mojo_proxy",
            "--features",
            "bench-alloc",
        ])
        .env("CARGO_TARGET_DIR", &alloc_target);
    crate::run("release build with the counting allocator", build)?;
    let alloc_proxy = alloc_target.join("release").join("mojo_proxy");
    let host = release.join("mojo-test-host");
    let client = release.join("mojo-test-client");
    let mut proxies = args.proxies.clone();
    if proxies.is_empty() {
        proxies.push(release.join("mojo_proxy").display().to_string());
    }
    let cases = cases(
        &release,
        &proxies,
        Some(alloc_proxy.display().to_string().as_str()),
    );
    let mut meta = machine();
    meta.push(("run.quick".into(), args.quick.into()));
    meta.push(("run.runs".into(), args.runs.into()));
    meta.push((
        "run.taskset".into(),
        args.taskset.clone().unwrap_or_else(|| "none".into()).into(),
    ));
    for case in &cases {
        if let Some(hop) = &case.hop {
            meta.push((format!("{}.hop", case.name), hop.clone().into()));
        }
    }
    let taskset = args.taskset.as_deref();
    let mut results: Vec<CaseRuns> = cases.iter().map(|_| CaseRuns::default()).collect();
    for (case, result) in cases.iter().zip(&mut results) {
        if case.hop.is_none() {
            continue;
        }
        eprintln!("==> bench {}: idle run", case.name);
        let idle = run_host(&host, &client, &case.for_idle_run(), true, taskset, true)?;
        if let Some(s) = idle.at_connect {
            result.idle.insert("idle_rss_kb".into(), s.rss_kb as f64);
            result.idle.insert("idle_fds".into(), s.fds as f64);
        }
        let count = report::throughput_64_count(&idle.lines);
        if let ((Some(a), Some(b)), Some(n)) = (idle.allocs, count) {
            if n > 0 && b >= a {
                result
                    .idle
                    .insert("allocs_per_msg_64".into(), (b - a) as f64 / n as f64);
            }
        }
    }
    for round in 1..=args.runs {
        for (case, result) in cases.iter().zip(&mut results) {
            eprintln!("==> bench {}: run {round}/{}", case.name, args.runs);
            let run = run_host(&host, &client, case, args.quick, taskset, false);
            match run.and_then(|r| {
                let mut f =
                    report::host_figures(&r.lines).map_err(|e| format!("{}: {e}", case.name))?;
                f.extend(hop_figures(&r));
                Ok((f, r.cpus))
            }) {
                Ok((f, cpus)) => {
                    result.runs.push(f);
                    for c in cpus {
                        if !result.cpus.contains(&c) {
                            result.cpus.push(c);
                        }
                    }
                }
                Err(e) => {
                    eprintln!("bench: {e}");
                    result.failures.push(e);
                }
            }
        }
    }
    let figures: Vec<(String, Figures)> = cases
        .iter()
        .zip(&results)
        .map(|(c, r)| (c.name.clone(), median_figures(r)))
        .collect();
    for (case, result) in cases.iter().zip(&mut results) {
        if case.hop.is_some() {
            result.cpus.sort_unstable();
            let cpus: Vec<String> = result.cpus.iter().map(u32::to_string).collect();
            meta.push((format!("{}.cpus_seen", case.name), cpus.join(",").into()));
        }
    }
    let json = report::flat_json(&figures, &meta);
    let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    println!(
        "machine: {} ({} CPUs allowed: {}), kernel {}, load {} at start; taskset: {}",
        json["machine.cpu_model"].as_str().unwrap_or("?"),
        json["machine.cpus"],
        json["machine.cpus_allowed"].as_str().unwrap_or("?"),
        json["machine.kernel"].as_str().unwrap_or("?"),
        json["machine.loadavg_at_start"].as_str().unwrap_or("?"),
        args.taskset
            .as_deref()
            .unwrap_or("none (the scheduler places every process)"),
    );
    println!(
        "{} run(s) per case{}; medians; the hop is the relay (floor) or the proxy",
        args.runs,
        if args.quick { ", --quick counts" } else { "" }
    );
    print!("{}", report::table(&json, &names));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&Value::Object(json.clone()))
            .map_err(|e| format!("JSON: {e}"))?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    let failed: usize = results.iter().map(|r| r.failures.len()).sum();
    if failed > 0 {
        return Err(format!("{failed} run(s) failed (see above)"));
    }
    Ok(())
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
            "--quick",
            "--json",
            "/tmp/b.json",
            "--proxy=/x/p",
            "--proxy",
            "/y/q",
        ]))
        .unwrap();
        assert!(a.quick);
        assert_eq!(a.json, Some(PathBuf::from("/tmp/b.json")));
        assert_eq!(a.proxies, ["/x/p", "/y/q"]);
        assert_eq!(a.runs, QUICK_RUNS);
        assert_eq!(parse_args(&[]).unwrap().runs, DEFAULT_RUNS);
        assert_eq!(
            parse_args(&args(&["--runs=5", "--taskset=0"]))
                .unwrap()
                .taskset
                .as_deref(),
            Some("0")
        );
        assert!(parse_args(&args(&["--runs=0"])).is_err());
        assert!(parse_args(&args(&["--json"])).is_err());
        assert!(parse_args(&args(&["--fast"])).is_err());
    }

    #[test]
    fn cases_put_the_relay_and_each_proxy_in_the_hop() {
        let c = cases(
            Path::new("/r"),
            &["/r/mojo_proxy".into(), "/o/proxy".into()],
            Some("/a/mojo_proxy"),
        );
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["floor", "proxy", "proxy2", "direct", "direct_legacy"]
        );
        assert_eq!(c[0].host_args, ["--relay=/r/mojo-relay"]);
        assert_eq!(c[0].hop.as_deref(), Some("/r/mojo-relay"));
        assert_eq!(c[2].host_args, ["--proxy=/o/proxy"]);
        assert_eq!(c[3].host_args, ["--direct=ipcz"]);
        assert!(c[4].hop.is_none());
        // Only our own proxy's idle run swaps in the counting build.
        assert_eq!(c[1].for_idle_run().host_args, ["--proxy=/a/mojo_proxy"]);
        assert_eq!(c[1].for_idle_run().hop.as_deref(), Some("/a/mojo_proxy"));
        assert_eq!(c[2].for_idle_run().host_args, ["--proxy=/o/proxy"]);
        assert_eq!(c[0].for_idle_run().hop, c[0].hop);
    }
}
