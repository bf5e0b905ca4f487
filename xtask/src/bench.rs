//! `cargo xtask bench [--quick] [--json PATH] [--proxy=PATH]... [--runs N]
//! [--taskset=CPUS] [--capture] [--scale[=N,N,...]]`: the benchmark harness
//! of docs/PERFORMANCE.md. `--scale` runs only the scale curve instead
//! (module [`scale`]).
//!
//! It builds the release binaries, then runs the test host's `throughput`
//! and `latency` scenarios and its own `throughput_extra` (1 MiB messages,
//! and messages carrying one fd, shared buffer or new pipe each; module
//! [`tput`]) over every case, interleaved, `--runs` times:
//!
//! - `floor`: host → `mojo-relay` (bytes and fds moved, no protocol work) →
//!   ipcz client (`mojo-test-host --relay`);
//! - `proxy` (and `proxy2`, ... for more `--proxy`): host → the proxy →
//!   legacy client;
//! - `proxy_capture` (with `--capture`): our proxy with `--capture-dir` (a
//!   fresh directory under the temp dir for each run, removed after it) and
//!   a bound no run reaches, so capture is on for the whole run;
//! - `direct`: host ↔ ipcz client on one socket pair (`--direct=ipcz`), and
//!   `direct_legacy` (`--direct=legacy`).
//!
//! For the hop cases it also watches the hop process through `/proc/PID`
//! (the pid from the host's `[host] spawned pid N: PATH` line). Their host
//! runs with `--stop-after-each-line`: it stops itself (SIGSTOP) after each
//! result line, the harness waits until it has, samples the hop and sends
//! SIGCONT, so nothing of the next scenario has started while the hop is
//! sampled. At `connect` and `throughput_64` the sample is taken once the
//! hop has settled (no CPU time and no allocation over a few ms), so the
//! window between the two holds exactly the 64 B throughput run (its
//! `SinkStart`, messages and `SinkAck`). Figures: the hop's RSS and fd count
//! when idle (one extra run per hop, the host held stopped after `connect`
//! for a while), its peak RSS and fd count, and its CPU time in the window
//! divided by the window's message count. Our own proxy's idle run uses its
//! `bench-alloc` build (in `target/bench-alloc`), whose allocation counter
//! is read through `/proc/PID/mem` at both ends of the window; one more run
//! of that build with the full counts gives a second window, and
//! allocations per 64 B message are the difference of the two windows over
//! the difference of their message counts; the rest is what a run costs
//! once (pools warming up), reported too (see [`report::alloc_figures`]). Each figure is the median of
//! the runs, with its spread (`_spread_pct`). The result is one flat JSON
//! object (`<case>.<figure>`, with `_vs_floor` ratios; see
//! [`report::flat_json`]) and a table on stdout.

pub(crate) mod report;
mod scale;
mod tput;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::procfs::{self, HostStderr, ProcSample, sample};
use report::Figures;

/// Runs of every case without `--runs` (the median is reported).
const DEFAULT_RUNS: usize = 3;
/// Runs of every case with `--quick`.
const QUICK_RUNS: usize = 3;
/// How long the host stays stopped before the idle sample is taken.
const IDLE_SETTLE: Duration = Duration::from_millis(200);
/// How long the hop must stay still (no CPU time, no allocation) to count
/// as done with what the stopped host left it.
const SETTLE_STEP: Duration = Duration::from_millis(5);
/// The longest the harness waits for the hop to settle.
const SETTLE_MAX: Duration = Duration::from_secs(1);
/// How long the host may take to stop itself after a line.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// `--capture-max-bytes` of the `proxy_capture` case: far more than one
/// run records, so that capture stays on for all of it.
const CAPTURE_MAX_BYTES: u64 = 1 << 30;
/// How long to wait for the host's `spawned pid` line after `connect`.
const PID_WAIT: Duration = Duration::from_secs(2);
/// The host's own watchdog for one run (seconds).
const HOST_TIMEOUT_S: u32 = 300;

/// The command line of `cargo xtask bench`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BenchArgs {
    quick: bool,
    json: Option<PathBuf>,
    /// `--proxy=PATH`, in order (default: our `mojo_proxy`).
    proxies: Vec<String>,
    runs: usize,
    taskset: Option<String>,
    /// `--capture`: also the `proxy_capture` case (our proxy with
    /// `--capture-dir`).
    capture: bool,
    /// `--scale[=N,...]`: only the scale curve (see [`scale`]), these N.
    scale: Option<Vec<u32>>,
}

fn parse_args(args: &[String]) -> Result<BenchArgs, String> {
    let mut parsed = BenchArgs {
        quick: false,
        json: None,
        proxies: Vec::new(),
        runs: 0,
        taskset: None,
        capture: false,
        scale: None,
    };
    let mut flags = crate::flags::Flags::new(args);
    while let Some(name) = flags.next_name() {
        match name.as_str() {
            "--quick" => parsed.quick = true,
            "--capture" => parsed.capture = true,
            "--scale" => parsed.scale = Some(scale::parse_curve(flags.inline())?),
            "--json" => parsed.json = Some(PathBuf::from(flags.value()?)),
            "--proxy" => parsed.proxies.push(flags.value()?),
            "--taskset" => parsed.taskset = Some(flags.value()?),
            "--runs" => parsed.runs = flags.positive()?,
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
    /// The hop prints its allocation counter's address (`bench-alloc`).
    alloc_counter: bool,
    /// The proxy's `--capture-dir`, emptied before and removed after each
    /// run.
    capture_dir: Option<PathBuf>,
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
            alloc_counter: true,
            ..self.clone()
        }
    }
}

/// The cases of a run: the floor, each proxy, with `capture` (a directory
/// for its files) the `proxy_capture` case, and the two direct ones.
fn cases(
    release: &Path,
    proxies: &[String],
    alloc_proxy: Option<&str>,
    capture: Option<&Path>,
) -> Vec<Case> {
    let relay = release.join("mojo-relay").display().to_string();
    let ours = release.join("mojo_proxy").display().to_string();
    let mut cases = vec![Case {
        name: report::FLOOR.into(),
        host_args: vec![format!("--relay={relay}")],
        hop: Some(relay),
        idle_hop: None,
        alloc_counter: false,
        capture_dir: None,
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
            alloc_counter: false,
            capture_dir: None,
        });
    }
    if let Some(dir) = capture {
        cases.push(Case {
            name: "proxy_capture".into(),
            host_args: vec![
                format!("--proxy={ours}"),
                format!(
                    "--proxy-extra-args=--capture-dir={} --capture-max-bytes={CAPTURE_MAX_BYTES}",
                    dir.display()
                ),
            ],
            hop: Some(ours.clone()),
            idle_hop: None,
            alloc_counter: false,
            capture_dir: Some(dir.to_path_buf()),
        });
    }
    for (name, direct) in [(report::DIRECT, "ipcz"), ("direct_legacy", "legacy")] {
        cases.push(Case {
            name: name.into(),
            host_args: vec![format!("--direct={direct}")],
            hop: None,
            idle_hop: None,
            alloc_counter: false,
            capture_dir: None,
        });
    }
    cases
}

/// What one host run left: its JSON lines and the samples of the hop.
#[derive(Debug, Default)]
struct RunOutput {
    lines: Vec<Value>,
    /// With the host stopped after its `connect` line and the hop settled
    /// (for `idle`: after [`IDLE_SETTLE`]).
    at_connect: Option<ProcSample>,
    /// With the host stopped after its `throughput_64` line, the hop settled.
    at_throughput_64: Option<ProcSample>,
    /// The largest RSS peak and fd count seen.
    peak: ProcSample,
    cpus: Vec<u32>,
    /// The hop's allocation counter at the `connect` and `throughput_64`
    /// lines (a hop that prints its counter's address).
    allocs: (Option<u64>, Option<u64>),
    /// Bytes the proxy's capture files took (the `proxy_capture` case).
    capture_bytes: Option<u64>,
}

impl RunOutput {
    /// The 64 B throughput window of the allocation counter, if it was read.
    fn alloc_window(&self) -> Option<report::AllocWindow> {
        Some(report::AllocWindow {
            before: self.allocs.0?,
            after: self.allocs.1?,
            messages: report::throughput_64_count(&self.lines)?,
        })
    }
}

/// The `u64` at `address` in process `pid` (its `bench-alloc` counter).
fn read_counter(pid: u32, address: u64) -> Option<u64> {
    use std::os::unix::fs::FileExt as _;
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut word = [0u8; 8];
    mem.read_exact_at(&mut word, address).ok()?;
    Some(u64::from_ne_bytes(word))
}

/// Samples the hop once it has finished what the stopped host left it:
/// until its CPU time and allocation counter stay the same over
/// [`SETTLE_STEP`] (at most [`SETTLE_MAX`]; a hop still busy then is taken
/// as it is, with a warning).
fn settled_sample(pid: u32, counter: Option<u64>) -> (Option<ProcSample>, Option<u64>) {
    let look = || {
        let s = sample(pid);
        let c = counter.and_then(|a| read_counter(pid, a));
        (s, c)
    };
    let mut last = look();
    let deadline = std::time::Instant::now() + SETTLE_MAX;
    loop {
        std::thread::sleep(SETTLE_STEP);
        let now = look();
        let same = now.0.map(|s| s.cpu_ns) == last.0.map(|s| s.cpu_ns) && now.1 == last.1;
        last = now;
        if same {
            return last;
        }
        if std::time::Instant::now() >= deadline {
            eprintln!("bench: the hop (pid {pid}) was still busy after {SETTLE_MAX:?}");
            return last;
        }
    }
}

/// Waits until the host (run with `--stop-after-each-line`) has stopped
/// itself after the line just read: `true` once stopped, `false` if it
/// exited instead (a line not printed through the stopping output).
fn wait_stopped(pid: u32) -> Result<bool, String> {
    let deadline = std::time::Instant::now() + STOP_WAIT;
    loop {
        match procfs::state(pid) {
            Some('T') => return Ok(true),
            None | Some('Z' | 'X') => return Ok(false),
            Some(_) if std::time::Instant::now() >= deadline => {
                return Err(format!(
                    "the host (pid {pid}) did not stop after a line within {STOP_WAIT:?}"
                ));
            }
            Some(_) => std::thread::sleep(Duration::from_micros(100)),
        }
    }
}

/// Sends a signal to `pid` with kill(1) (the only signals the harness sends
/// are SIGCONT to its own host child).
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

/// Which kind of host run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunKind {
    /// A measured run (`--quick` counts with `--quick`).
    Measured,
    /// The idle run (`--quick` counts): the host stays stopped after
    /// `connect` for [`IDLE_SETTLE`] before the hop's idle RSS is taken.
    Idle,
    /// The allocation counter's second window: full counts, `throughput`
    /// only.
    AllocFull,
}

/// The total size of the files in `dir` (not recursive).
fn dir_bytes(dir: &Path) -> Option<u64> {
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
            .sum(),
    )
}

/// Runs the host once for `case`. A hop case's host runs with
/// `--stop-after-each-line`: after each line the harness waits until the
/// host has stopped, samples the hop (at `connect` and `throughput_64` once
/// it has settled, so that the window between the two holds exactly the
/// 64 B throughput run), and lets the host go on with SIGCONT.
fn run_host(
    host: &Path,
    client: &Path,
    case: &Case,
    quick: bool,
    taskset: Option<&str>,
    kind: RunKind,
) -> Result<RunOutput, String> {
    if let Some(dir) = &case.capture_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
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
        .arg(match kind {
            RunKind::AllocFull => "--scenarios=throughput".to_string(),
            RunKind::Idle => "--scenarios=throughput,latency".to_string(),
            RunKind::Measured => format!("--scenarios={}", tput::MEASURED_SCENARIOS),
        })
        .arg(format!("--label={}", case.name))
        .arg(format!("--timeout={HOST_TIMEOUT_S}"));
    if kind == RunKind::Idle || (kind == RunKind::Measured && quick) {
        cmd.arg("--quick");
    }
    if case.hop.is_some() {
        cmd.arg("--stop-after-each-line");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", host.display()))?;
    let result = watch_host(&mut child, case, kind);
    if result.is_err() {
        // A host left stopped would wait for ever.
        let _ = child.kill();
    }
    let status = child.wait();
    let (out, tail) = result?;
    let status = status.map_err(|e| format!("waiting for the host: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{}: host {status}; its last stderr lines:\n  {}",
            case.name,
            tail.join("\n  ")
        ));
    }
    let mut out = out;
    if let Some(dir) = &case.capture_dir {
        out.capture_bytes = dir_bytes(dir);
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(out)
}

/// Reads the host's output to its end, sampling the hop (see [`run_host`]);
/// returns what it saw and the host's last stderr lines.
fn watch_host(
    child: &mut std::process::Child,
    case: &Case,
    kind: RunKind,
) -> Result<(RunOutput, Vec<String>), String> {
    let host_pid = child.id();
    let stdout = child.stdout.take().ok_or("host stdout not piped")?;
    let stderr = child.stderr.take().ok_or("host stderr not piped")?;
    let (addr_tx, addr_rx) = mpsc::channel();
    let host_stderr = HostStderr::spawn(stderr, case.hop.clone(), move |line| {
        if let Some(address) = report::alloc_counter_address(line) {
            let _ = addr_tx.send(address);
        }
    });
    let mut out = RunOutput::default();
    let mut hop_pid: Option<u32> = None;
    let mut counter: Option<u64> = None;
    let keep = |s: ProcSample, out: &mut RunOutput| {
        out.peak.hwm_kb = out.peak.hwm_kb.max(s.hwm_kb);
        out.peak.fds = out.peak.fds.max(s.fds);
        if let Some(cpu) = s.cpu.filter(|c| !out.cpus.contains(c)) {
            out.cpus.push(cpu);
        }
        s
    };
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading the host's output: {e}"))?;
        let stopped = case.hop.is_some() && wait_stopped(host_pid)?;
        if let Ok(value) = serde_json::from_str::<Value>(&line) {
            let scenario = value["scenario"].as_str().unwrap_or("").to_string();
            out.lines.push(value);
            if scenario == "connect" && case.hop.is_some() && hop_pid.is_none() {
                hop_pid = host_stderr.pids.recv_timeout(PID_WAIT).ok();
                if case.alloc_counter {
                    // The proxy prints its counter's address before it
                    // reads a byte, so it is there by now.
                    counter = addr_rx.recv_timeout(PID_WAIT).ok();
                    if counter.is_none() {
                        return Err(format!("{}: no bench-alloc counter line", case.name));
                    }
                }
            }
            if let (Some(pid), true) = (hop_pid, stopped) {
                if scenario == "connect" && kind == RunKind::Idle {
                    std::thread::sleep(IDLE_SETTLE);
                }
                match scenario.as_str() {
                    "connect" | "throughput_64" => {
                        let (s, allocs) = settled_sample(pid, counter);
                        let s = s.map(|s| keep(s, &mut out));
                        if scenario == "connect" {
                            (out.at_connect, out.allocs.0) = (s, allocs);
                        } else {
                            (out.at_throughput_64, out.allocs.1) = (s, allocs);
                        }
                    }
                    _ => {
                        sample(pid).map(|s| keep(s, &mut out));
                    }
                }
            }
        }
        if stopped {
            signal(host_pid, "CONT")?;
        }
    }
    let tail = host_stderr.finish();
    if case.hop.is_some() && hop_pid.is_none() {
        let seen: Vec<&str> = out
            .lines
            .iter()
            .filter_map(|l| l["scenario"].as_str())
            .collect();
        return Err(format!(
            "{}: no `spawned pid` line for the hop by `connect` (result lines: {seen:?}); \
             the host's last stderr lines:\n  {}",
            case.name,
            tail.join("\n  ")
        ));
    }
    Ok((out, tail))
}

/// The hop figures of one measured run.
fn hop_figures(run: &RunOutput) -> Figures {
    let mut f = Figures::new();
    if run.peak.hwm_kb > 0 {
        f.insert("peak_rss_kb".into(), run.peak.hwm_kb as f64);
        f.insert("max_fds".into(), run.peak.fds as f64);
    }
    if let Some(bytes) = run.capture_bytes {
        f.insert("capture_mb".into(), bytes as f64 / 1e6);
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
        if let Some(spread) = report::spread_pct(&values) {
            out.insert(format!("{key}{}", report::SPREAD_SUFFIX), spread);
        }
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
pub(crate) fn machine() -> Vec<(String, Value)> {
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
    build.args(["build", "--release", "-p", "mojo-test-peers"]);
    crate::run("release build", build)?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let release = target.join("release");
    let host = release.join("mojo-test-host");
    let client = release.join("mojo-test-client");
    // The hops are measured as they are deployed: statically linked.
    let hops = crate::dist::build(&crate::dist::HOPS, &[], &target)?;
    let mut proxies = args.proxies.clone();
    if proxies.is_empty() {
        proxies.push(hops.join("mojo_proxy").display().to_string());
    }
    if let Some(curve) = &args.scale {
        return scale::run(&scale::ScaleBench {
            curve,
            runs: args.runs,
            quick: args.quick,
            taskset: args.taskset.as_deref(),
            host: &host,
            client: &client,
            proxies: &proxies,
            json: args.json.as_deref(),
        });
    }
    // Our proxy with the counting allocator, in its own target directory
    // so that target/release keeps the normal build; only the idle run of
    // the `proxy` case uses it (allocations per message).
    let alloc_target = target.join("bench-alloc");
    let alloc_proxy =
        crate::dist::build(&["mojo_proxy"], &["bench-alloc"], &alloc_target)?.join("mojo_proxy");
    let capture_dir =
        std::env::temp_dir().join(format!("mojo-bench-capture-{}", std::process::id()));
    if capture_dir
        .display()
        .to_string()
        .contains(char::is_whitespace)
    {
        return Err(format!(
            "{}: the capture directory is passed in --proxy-extra-args, which splits on spaces",
            capture_dir.display()
        ));
    }
    let cases = cases(
        &hops,
        &proxies,
        Some(alloc_proxy.display().to_string().as_str()),
        args.capture.then_some(capture_dir.as_path()),
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
        let idle_case = case.for_idle_run();
        let idle = run_host(&host, &client, &idle_case, true, taskset, RunKind::Idle)?;
        if let Some(s) = idle.at_connect {
            result.idle.insert("idle_rss_kb".into(), s.rss_kb as f64);
            result.idle.insert("idle_fds".into(), s.fds as f64);
        }
        if !idle_case.alloc_counter {
            continue;
        }
        // The allocation counter over two windows of different message
        // counts: the idle run's (`--quick`) and a full-count one.
        eprintln!("==> bench {}: allocation run", case.name);
        let full = run_host(
            &host,
            &client,
            &idle_case,
            false,
            taskset,
            RunKind::AllocFull,
        )?;
        let windows = idle.alloc_window().zip(full.alloc_window());
        let figures = windows
            .ok_or_else(|| format!("{}: the allocation counter was not read", case.name))
            .and_then(|(small, large)| report::alloc_figures(small, large));
        match figures {
            Ok(f) => result.idle.extend(f),
            Err(e) => {
                eprintln!("bench: {}: {e}", case.name);
                result.failures.push(e);
            }
        }
    }
    for round in 1..=args.runs {
        for (case, result) in cases.iter().zip(&mut results) {
            eprintln!("==> bench {}: run {round}/{}", case.name, args.runs);
            let run = run_host(&host, &client, case, args.quick, taskset, RunKind::Measured);
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
        assert_eq!(a.scale, None);
        let s = parse_args(&args(&["--scale"])).unwrap();
        assert_eq!(s.scale.as_deref(), Some(scale::DEFAULT_CURVE));
        let s = parse_args(&args(&["--scale=10,1"])).unwrap();
        assert_eq!(s.scale.as_deref(), Some(&[1, 10][..]));
        assert!(parse_args(&args(&["--scale=0"])).is_err());
    }

    #[test]
    fn cases_put_the_relay_and_each_proxy_in_the_hop() {
        let c = cases(
            Path::new("/r"),
            &["/r/mojo_proxy".into(), "/o/proxy".into()],
            Some("/a/mojo_proxy"),
            None,
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
        assert!(c[1].for_idle_run().alloc_counter && !c[1].alloc_counter);
        assert!(!c[2].for_idle_run().alloc_counter);
        assert!(c.iter().all(|c| c.capture_dir.is_none()));
    }

    #[test]
    fn the_capture_case_runs_our_proxy_with_a_capture_dir() {
        let c = cases(
            Path::new("/r"),
            &["/o/proxy".into()],
            Some("/a/mojo_proxy"),
            Some(Path::new("/tmp/cap")),
        );
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["floor", "proxy", "proxy_capture", "direct", "direct_legacy"]
        );
        let capture = &c[2];
        assert_eq!(
            capture.host_args,
            [
                "--proxy=/r/mojo_proxy".to_string(),
                format!(
                    "--proxy-extra-args=--capture-dir=/tmp/cap --capture-max-bytes={CAPTURE_MAX_BYTES}"
                )
            ]
        );
        assert_eq!(capture.hop.as_deref(), Some("/r/mojo_proxy"));
        assert_eq!(capture.capture_dir.as_deref(), Some(Path::new("/tmp/cap")));
        // Its idle run keeps the capture on (no counting build swapped in).
        assert_eq!(capture.for_idle_run().host_args, capture.host_args);
        assert!(parse_args(&args(&["--capture"])).unwrap().capture);
    }
}
