//! `cargo xtask bench --scale[=N,N,...]`: the scale curve of issue 11
//! ("10,000 pipes alive at once with per-message cost unchanged"). For each
//! N (default [`DEFAULT_CURVE`]) and each proxy (`--proxy=PATH`, default
//! ours), `--runs` times, interleaved: host → proxy → legacy client with the
//! host's own `scale` scenario (`--scenarios=scale --scale-pipes=N`, see
//! `bins/mojo-test-peers/src/host/scale.rs`) and `--stop-after-each-line`.
//!
//! The proxy is sampled through `/proc/PID` (the bench's sampling code) with
//! the host stopped after each line: at `scale_open` once it has settled
//! (all N pipes alive and idle: `rss_kb`, `fds`), at `scale_rtt`,
//! `scale_tput_main` and `scale` once settled (its CPU time in each window
//! over the `messages` of the line ending it: `cpu_us_per_rtt_msg` for the
//! 64 B round trips, on the main pipe and spread; `cpu_us_per_msg_main` for
//! a one-way 64 B run on the main pipe with N pipes alive, the window of
//! the main bench's `cpu_us_per_msg_64`; `cpu_us_per_msg` for the same run
//! spread over the N pipes), and at `scale_close` (`rss_after_close_kb`); the
//! largest `VmHWM` is `peak_rss_kb`. The host's figures come from its
//! `scale` line (`rtt_64_*`, `spread_rtt_64_*`, `tput_64_msgs_s`) and its
//! `scale_open` line (`open_us_per_pipe`). Keys: `<case>.scale_<N>.<figure>`
//! (medians, with `_spread_pct`), plus `<case>.scale.<figure>_ratio` (the
//! largest N's figure over the smallest's) and `<case>.scale.rss_kb_per_pipe`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

use super::report::{self, Figures};
use super::{PID_WAIT, settled_sample, signal, wait_stopped};
use crate::procfs::{HostStderr, ProcSample as HopSample};

/// The curve without a list: 1 to 10,000 pipes.
pub(super) const DEFAULT_CURVE: &[u32] = &[1, 10, 100, 1000, 10000];
/// Largest N the harness accepts (the client's own bound is higher).
pub(super) const MAX_SCALE_PIPES: u32 = 50_000;
/// The host's watchdog for one scale run (seconds; opening 10,000 pipes
/// takes about a second here).
const SCALE_HOST_TIMEOUT_S: u32 = 600;

/// Figures of the host's `scale` line: (field, figure).
const SCALE_LINE_FIGURES: [(&str, &str); 6] = [
    ("rtt_64_p50_us", "rtt_64_p50_us"),
    ("rtt_64_p99_us", "rtt_64_p99_us"),
    ("spread_rtt_64_p50_us", "spread_rtt_64_p50_us"),
    ("spread_rtt_64_p99_us", "spread_rtt_64_p99_us"),
    ("tput_64_msgs_s", "tput_64_msgs_s"),
    ("main_tput_64_msgs_s", "main_tput_64_msgs_s"),
];

/// Figures whose largest-N over smallest-N ratio is reported.
pub(super) const RATIO_FIGURES: [&str; 8] = [
    "cpu_us_per_msg_main",
    "main_tput_64_msgs_s",
    "cpu_us_per_msg",
    "cpu_us_per_rtt_msg",
    "rtt_64_p50_us",
    "spread_rtt_64_p50_us",
    "tput_64_msgs_s",
    "rss_kb",
];

/// Rows of the table, in order.
const TABLE_COLUMNS: [&str; 14] = [
    "rtt_64_p50_us",
    "rtt_64_p99_us",
    "spread_rtt_64_p50_us",
    "spread_rtt_64_p99_us",
    "main_tput_64_msgs_s",
    "cpu_us_per_msg_main",
    "tput_64_msgs_s",
    "cpu_us_per_msg",
    "cpu_us_per_rtt_msg",
    "open_us_per_pipe",
    "rss_kb",
    "peak_rss_kb",
    "rss_after_close_kb",
    "fds",
];

/// `--scale` (the default curve) or `--scale=N,N,...` (sorted, deduplicated).
pub(super) fn parse_curve(value: Option<&str>) -> Result<Vec<u32>, String> {
    let Some(list) = value else {
        return Ok(DEFAULT_CURVE.to_vec());
    };
    let mut curve = Vec::new();
    for word in list.split(',').filter(|w| !w.trim().is_empty()) {
        let n: u32 = word
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=MAX_SCALE_PIPES).contains(n))
            .ok_or_else(|| {
                format!("--scale={list}: {word} is not a pipe count in 1..={MAX_SCALE_PIPES}")
            })?;
        curve.push(n);
    }
    if curve.is_empty() {
        return Err(format!("--scale={list}: no pipe count"));
    }
    curve.sort_unstable();
    curve.dedup();
    Ok(curve)
}

/// What one scale run left: the host's lines and the proxy's samples.
#[derive(Debug, Default)]
pub(super) struct ScaleRun {
    pub(super) lines: Vec<Value>,
    /// Settled, after `scale_open` (all pipes alive).
    pub(super) open: Option<HopSample>,
    /// Settled, after `scale_rtt` (the round trips done).
    pub(super) rtt: Option<HopSample>,
    /// Settled, after `scale_tput_main` (the main-pipe one-way run done).
    pub(super) tput_main: Option<HopSample>,
    /// Settled, after `scale` (the spread one-way run done).
    pub(super) measured: Option<HopSample>,
    /// After `scale_close`.
    pub(super) closed: Option<HopSample>,
    /// The largest `VmHWM` seen.
    pub(super) peak_hwm_kb: u64,
}

fn line<'a>(lines: &'a [Value], scenario: &str) -> Result<&'a Value, String> {
    let l = lines
        .iter()
        .find(|l| l["scenario"] == scenario)
        .ok_or_else(|| format!("no `{scenario}` line"))?;
    if l["pass"] != true {
        return Err(format!("`{scenario}` failed: {l}"));
    }
    Ok(l)
}

/// The figures of one run; fails naming the line that is missing or failed.
pub(super) fn scale_figures(run: &ScaleRun) -> Result<Figures, String> {
    let mut f = Figures::new();
    let scale = line(&run.lines, "scale")?;
    for (field, figure) in SCALE_LINE_FIGURES {
        let v = scale[field]
            .as_f64()
            .ok_or_else(|| format!("`scale` has no {field}"))?;
        f.insert(figure.into(), v);
    }
    let open = line(&run.lines, "scale_open")?;
    if let Some(v) = open["open_us_per_pipe"].as_f64() {
        f.insert("open_us_per_pipe".into(), v);
    }
    line(&run.lines, "scale_close")?;
    let rtt = line(&run.lines, "scale_rtt")?;
    let tput_main = line(&run.lines, "scale_tput_main")?;
    let windows = [
        ("cpu_us_per_rtt_msg", run.open, run.rtt, rtt),
        ("cpu_us_per_msg_main", run.rtt, run.tput_main, tput_main),
        ("cpu_us_per_msg", run.tput_main, run.measured, scale),
    ];
    for (figure, start, end, at_end) in windows {
        let messages = at_end["messages"].as_u64().filter(|m| *m > 0);
        if let (Some(a), Some(b), Some(m)) = (start, end, messages) {
            if b.cpu_ns >= a.cpu_ns {
                f.insert(figure.into(), (b.cpu_ns - a.cpu_ns) as f64 / 1e3 / m as f64);
            }
        }
    }
    if let Some(s) = run.open {
        f.insert("rss_kb".into(), s.rss_kb as f64);
        f.insert("fds".into(), s.fds as f64);
    }
    if let Some(s) = run.closed {
        f.insert("rss_after_close_kb".into(), s.rss_kb as f64);
    }
    if run.peak_hwm_kb > 0 {
        f.insert("peak_rss_kb".into(), run.peak_hwm_kb as f64);
    }
    Ok(f)
}

/// Over a case's curve (median figures per N, N ascending): each of
/// [`RATIO_FIGURES`] at the largest N over the smallest (`<figure>_ratio`),
/// and the resident memory each further pipe costs (`rss_kb_per_pipe`).
pub(super) fn summary(curve: &[(u32, Figures)]) -> Figures {
    let mut out = Figures::new();
    let (Some((n0, first)), Some((n1, last))) = (curve.first(), curve.last()) else {
        return out;
    };
    if n1 <= n0 {
        return out;
    }
    for figure in RATIO_FIGURES {
        if let (Some(a), Some(b)) = (first.get(figure), last.get(figure)) {
            if *a != 0.0 {
                out.insert(format!("{figure}_ratio"), b / a);
            }
        }
    }
    if let (Some(a), Some(b)) = (first.get("rss_kb"), last.get("rss_kb")) {
        out.insert("rss_kb_per_pipe".into(), (b - a) / f64::from(n1 - n0));
    }
    out.insert("pipes_min".into(), f64::from(*n0));
    out.insert("pipes_max".into(), f64::from(*n1));
    out
}

/// The table: one row per N, one column per figure, for one case.
pub(super) fn table(json: &Map<String, Value>, case: &str, curve: &[u32]) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{case}\n{:>7}", "pipes");
    for c in TABLE_COLUMNS {
        let _ = write!(
            out,
            " {:>12}",
            c.trim_end_matches("_us").trim_end_matches("_kb")
        );
    }
    out.push('\n');
    for n in curve {
        let _ = write!(out, "{n:>7}");
        for c in TABLE_COLUMNS {
            let cell = json
                .get(&format!("{case}.scale_{n}.{c}"))
                .and_then(Value::as_f64)
                .map_or("-".to_string(), |v| {
                    if v.fract() == 0.0 || v.abs() >= 1000.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.2}")
                    }
                });
            let _ = write!(out, " {cell:>12}");
        }
        out.push('\n');
    }
    for figure in RATIO_FIGURES {
        if let Some(v) = json
            .get(&format!("{case}.scale.{figure}_ratio"))
            .and_then(Value::as_f64)
        {
            let _ = writeln!(
                out,
                "  {figure} at the largest N / at the smallest: {v:.2}x"
            );
        }
    }
    if let Some(v) = json
        .get(&format!("{case}.scale.rss_kb_per_pipe"))
        .and_then(Value::as_f64)
    {
        let _ = writeln!(
            out,
            "  resident memory per further pipe: {:.0} bytes",
            v * 1024.0
        );
    }
    out
}

/// Runs the host once with `n` scale pipes through `proxy`, sampling the
/// proxy after each line (see the module page).
pub(super) fn run_scale_host(
    host: &Path,
    client: &Path,
    proxy: &str,
    label: &str,
    n: u32,
    quick: bool,
    taskset: Option<&str>,
) -> Result<ScaleRun, String> {
    let mut cmd = match taskset {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(host);
            c
        }
        None => Command::new(host),
    };
    cmd.arg(format!("--client={}", client.display()))
        .arg(format!("--proxy={proxy}"))
        .arg("--scenarios=scale")
        .arg(format!("--scale-pipes={n}"))
        .arg(format!("--label={label}"))
        .arg(format!("--timeout={SCALE_HOST_TIMEOUT_S}"))
        .arg("--stop-after-each-line");
    if quick {
        cmd.arg("--quick");
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", host.display()))?;
    let result = watch(&mut child, proxy);
    if result.is_err() {
        let _ = child.kill();
    }
    let status = child.wait();
    let (run, tail) = result?;
    let status = status.map_err(|e| format!("waiting for the host: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{label} N={n}: host {status}; its last stderr lines:\n  {}",
            tail.join("\n  ")
        ));
    }
    Ok(run)
}

fn watch(child: &mut std::process::Child, proxy: &str) -> Result<(ScaleRun, Vec<String>), String> {
    let host_pid = child.id();
    let stdout = child.stdout.take().ok_or("host stdout not piped")?;
    let stderr = child.stderr.take().ok_or("host stderr not piped")?;
    let host_stderr = HostStderr::spawn(stderr, Some(proxy.to_string()), |_| {});
    let mut run = ScaleRun::default();
    let mut hop_pid = None;
    for text in BufReader::new(stdout).lines() {
        let text = text.map_err(|e| format!("reading the host's output: {e}"))?;
        let stopped = wait_stopped(host_pid)?;
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            let scenario = value["scenario"].as_str().unwrap_or("").to_string();
            run.lines.push(value);
            if scenario == "connect" && hop_pid.is_none() {
                hop_pid = host_stderr.pids.recv_timeout(PID_WAIT).ok();
            }
            if let (Some(pid), true) = (hop_pid, stopped) {
                let s = match scenario.as_str() {
                    "scale_open" | "scale_rtt" | "scale_tput_main" | "scale" => {
                        settled_sample(pid, None).0
                    }
                    _ => crate::procfs::sample(pid),
                };
                if let Some(s) = s {
                    run.peak_hwm_kb = run.peak_hwm_kb.max(s.hwm_kb);
                }
                match scenario.as_str() {
                    "scale_open" => run.open = s,
                    "scale_rtt" => run.rtt = s,
                    "scale_tput_main" => run.tput_main = s,
                    "scale" => run.measured = s,
                    "scale_close" => run.closed = s,
                    _ => {}
                }
            }
        }
        if stopped {
            signal(host_pid, "CONT")?;
        }
    }
    let tail = host_stderr.finish();
    if hop_pid.is_none() {
        return Err("no `spawned pid` line for the proxy".into());
    }
    Ok((run, tail))
}

/// Medians of `runs` per figure, with each figure's spread.
fn medians(runs: &[Figures]) -> Figures {
    let mut keys: Vec<&String> = runs.iter().flat_map(|f| f.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Figures::new();
    for key in keys {
        let mut values: Vec<f64> = runs.iter().filter_map(|f| f.get(key).copied()).collect();
        if let Some(spread) = report::spread_pct(&values) {
            out.insert(format!("{key}{}", report::SPREAD_SUFFIX), spread);
        }
        if let Some(m) = report::median(&mut values) {
            out.insert(key.clone(), m);
        }
    }
    out.insert("runs".into(), runs.len() as f64);
    out
}

/// What `cargo xtask bench --scale` was asked for.
pub(super) struct ScaleBench<'a> {
    pub(super) curve: &'a [u32],
    pub(super) runs: usize,
    pub(super) quick: bool,
    pub(super) taskset: Option<&'a str>,
    pub(super) host: &'a Path,
    pub(super) client: &'a Path,
    pub(super) proxies: &'a [String],
    pub(super) json: Option<&'a Path>,
}

/// Runs the curve for every proxy (interleaved, `runs` times), prints the
/// tables and writes the JSON.
pub(super) fn run(b: &ScaleBench<'_>) -> Result<(), String> {
    let cases: Vec<(String, &String)> = b
        .proxies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let name = if i == 0 {
                "proxy".to_string()
            } else {
                format!("proxy{}", i + 1)
            };
            (name, p)
        })
        .collect();
    let mut results: Vec<Vec<Vec<Figures>>> = vec![vec![Vec::new(); b.curve.len()]; cases.len()];
    let mut failures = Vec::new();
    for round in 1..=b.runs {
        for (ni, &n) in b.curve.iter().enumerate() {
            for (ci, (name, proxy)) in cases.iter().enumerate() {
                eprintln!("==> bench scale {name} N={n}: run {round}/{}", b.runs);
                let label = format!("{name}_scale_{n}");
                let run = run_scale_host(b.host, b.client, proxy, &label, n, b.quick, b.taskset);
                match run.and_then(|r| scale_figures(&r)) {
                    Ok(f) => results[ci][ni].push(f),
                    Err(e) => {
                        eprintln!("bench: {name} N={n}: {e}");
                        failures.push(e);
                    }
                }
            }
        }
    }
    let mut figures = Vec::new();
    for ((name, _), per_n) in cases.iter().zip(&results) {
        let curve: Vec<(u32, Figures)> = b
            .curve
            .iter()
            .zip(per_n)
            .filter(|(_, runs)| !runs.is_empty())
            .map(|(n, runs)| (*n, medians(runs)))
            .collect();
        figures.push((format!("{name}.scale"), summary(&curve)));
        figures.extend(
            curve
                .into_iter()
                .map(|(n, f)| (format!("{name}.scale_{n}"), f)),
        );
    }
    let mut meta = super::machine();
    meta.push(("run.quick".into(), b.quick.into()));
    meta.push(("run.runs".into(), b.runs.into()));
    meta.push(("run.taskset".into(), b.taskset.unwrap_or("none").into()));
    let curve_text: Vec<String> = b.curve.iter().map(u32::to_string).collect();
    meta.push(("run.scale_curve".into(), curve_text.join(",").into()));
    for (name, proxy) in &cases {
        meta.push((format!("{name}.hop"), proxy.as_str().into()));
    }
    let json = report::flat_json(&figures, &meta);
    println!(
        "machine: {} ({} CPUs), load {} at start; taskset: {}; {} run(s) per N{}, medians",
        json["machine.cpu_model"].as_str().unwrap_or("?"),
        json["machine.cpus"],
        json["machine.loadavg_at_start"].as_str().unwrap_or("?"),
        b.taskset.unwrap_or("none"),
        b.runs,
        if b.quick { ", --quick counts" } else { "" }
    );
    for (name, _) in &cases {
        print!("{}", table(&json, name, b.curve));
    }
    if let Some(path) = b.json {
        let text = serde_json::to_string_pretty(&Value::Object(json.clone()))
            .map_err(|e| format!("JSON: {e}"))?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    if !failures.is_empty() {
        return Err(format!(
            "{} scale run(s) failed (see above)",
            failures.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_parsing() {
        assert_eq!(parse_curve(None).unwrap(), DEFAULT_CURVE);
        assert_eq!(parse_curve(Some("100, 1,10,1")).unwrap(), [1, 10, 100]);
        for bad in ["", "0", "x", "1,,y", "50001"] {
            assert!(parse_curve(Some(bad)).is_err(), "{bad}");
        }
    }

    fn lines(pass: bool) -> Vec<Value> {
        let scale = serde_json::json!({
            "scenario": "scale", "pass": pass, "rtt_64_p50_us": 30.0,
            "rtt_64_p99_us": 60.0, "spread_rtt_64_p50_us": 32.0,
            "spread_rtt_64_p99_us": 70.0, "tput_64_msgs_s": 200000.0, "messages": 1000,
            "main_tput_64_msgs_s": 300000.0
        });
        vec![
            serde_json::json!({"scenario": "scale_open", "pass": true, "open_us_per_pipe": 40.0}),
            serde_json::json!({"scenario": "scale_rtt", "pass": true, "messages": 500}),
            serde_json::json!({"scenario": "scale_tput_main", "pass": true, "messages": 250}),
            scale,
            serde_json::json!({"scenario": "scale_close", "pass": true}),
        ]
    }

    fn sample(rss_kb: u64, cpu_ns: u64) -> Option<HopSample> {
        Some(HopSample {
            rss_kb,
            hwm_kb: rss_kb,
            fds: 10,
            cpu_ns,
            cpu: None,
        })
    }

    #[test]
    fn figures_of_a_run() {
        let run = ScaleRun {
            lines: lines(true),
            open: sample(5000, 1_000_000),
            rtt: sample(5050, 6_000_000),
            tput_main: sample(5050, 6_000_000),
            measured: sample(5100, 8_000_000),
            closed: sample(4000, 8_100_000),
            peak_hwm_kb: 6000,
        };
        let f = scale_figures(&run).unwrap();
        assert_eq!(f["cpu_us_per_msg"], 2.0, "2 ms of CPU over 1000 messages");
        assert_eq!(f["cpu_us_per_rtt_msg"], 10.0, "5 ms over 500");
        assert_eq!(f["cpu_us_per_msg_main"], 0.0, "no CPU time in that window");
        assert_eq!(f["main_tput_64_msgs_s"], 300000.0);
        assert_eq!(f["rss_kb"], 5000.0);
        assert_eq!(f["rss_after_close_kb"], 4000.0);
        assert_eq!(f["peak_rss_kb"], 6000.0);
        assert_eq!(f["fds"], 10.0);
        assert_eq!(f["spread_rtt_64_p50_us"], 32.0);
        assert_eq!(f["open_us_per_pipe"], 40.0);
        let failed = ScaleRun {
            lines: lines(false),
            ..ScaleRun::default()
        };
        assert!(
            scale_figures(&failed)
                .unwrap_err()
                .contains("`scale` failed")
        );
        assert!(scale_figures(&ScaleRun::default()).is_err());
    }

    #[test]
    fn summary_ratios_and_memory_per_pipe() {
        let at = |cpu: f64, rss: f64| {
            Figures::from([("cpu_us_per_msg".into(), cpu), ("rss_kb".into(), rss)])
        };
        let s = summary(&[
            (1, at(2.0, 5000.0)),
            (100, at(2.0, 5100.0)),
            (10001, at(3.0, 15000.0)),
        ]);
        assert_eq!(s["cpu_us_per_msg_ratio"], 1.5);
        assert_eq!(s["rss_kb_per_pipe"], 1.0);
        assert_eq!(s["pipes_max"], 10001.0);
        assert!(!s.contains_key("rtt_64_p50_us_ratio"));
        assert!(summary(&[(1, at(2.0, 5000.0))]).is_empty());
        let mut json = Map::new();
        json.insert("proxy.scale_1.rss_kb".into(), 5000.into());
        json.insert("proxy.scale.cpu_us_per_msg_ratio".into(), 1.5.into());
        let t = table(&json, "proxy", &[1, 10]);
        assert!(t.contains("5000") && t.contains("1.50x"), "{t}");
    }
}
