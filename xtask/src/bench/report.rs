//! The pure half of `cargo xtask bench`: reading the test host's JSON lines
//! and the proxy's allocation counter line, and turning the figures of
//! every case into the flat JSON object and the table (the `/proc` parsers
//! are `crate::procfs`, shared with `cargo xtask soak`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The case every ratio is taken against.
pub(crate) const FLOOR: &str = "floor";
/// The case whose added latency over it is reported (the same host stack as
/// the floor and the proxy, without the hop).
pub(crate) const DIRECT: &str = "direct";

/// Latency runs of the host: (`latency_<size>` line, key prefix).
const LATENCY_RUNS: [(&str, &str); 2] = [("latency_64", "rtt_64"), ("latency_4096", "rtt_4096")];
/// Percentile fields of a latency line and the key suffix of each.
const PERCENTILES: [(&str, &str); 3] = [
    ("p50_us", "p50_us"),
    ("p99_us", "p99_us"),
    ("p999_us", "p99_9_us"),
];

/// Bookkeeping figures that get no `_vs_floor` ratio.
const NOT_RATIOS: [&str; 2] = ["runs", "failed_runs"];
/// The suffix of a figure's run-to-run spread (no ratio either).
pub(crate) const SPREAD_SUFFIX: &str = "_spread_pct";

/// Figures of one case, by figure name (`rtt_64_p50_us`, ...).
pub(crate) type Figures = BTreeMap<String, f64>;

/// The figures of one host run, from its JSON result lines. Fails, naming
/// them, if any line did not pass or a figure is missing.
pub(crate) fn host_figures(lines: &[Value]) -> Result<Figures, String> {
    let failed: Vec<String> = lines
        .iter()
        .filter(|l| l["pass"] != Value::Bool(true) && l["scenario"] != "config")
        .map(|l| {
            format!(
                "{} ({})",
                l["scenario"].as_str().unwrap_or("?"),
                l["error"].as_str().unwrap_or("no error given")
            )
        })
        .collect();
    if !failed.is_empty() {
        return Err(format!("failed: {}", failed.join(", ")));
    }
    let line = |name: &str| {
        lines
            .iter()
            .find(|l| l["scenario"] == name)
            .ok_or_else(|| format!("no {name} line"))
    };
    let number = |l: &Value, field: &str| {
        l[field]
            .as_f64()
            .ok_or_else(|| format!("{} has no number {field}", l["scenario"]))
    };
    let mut figures = Figures::new();
    let connect = line("connect")?;
    figures.insert(
        "launch_to_first_message_ms".into(),
        number(connect, "from_spawn_ms")?,
    );
    for (name, prefix) in LATENCY_RUNS {
        let l = line(name)?;
        for (field, suffix) in PERCENTILES {
            figures.insert(format!("{prefix}_{suffix}"), number(l, field)?);
        }
    }
    super::tput::throughput_figures(lines, &mut figures)?;
    Ok(figures)
}

/// The message count of the host's `throughput_64` line.
pub(crate) fn throughput_64_count(lines: &[Value]) -> Option<u64> {
    lines
        .iter()
        .find(|l| l["scenario"] == "throughput_64")?
        .get("count")?
        .as_u64()
}

/// The counter address in a `bench-alloc` build's `...: bench-alloc
/// counter at 0xADDR` stderr line (`mojo_proxy --features bench-alloc`).
pub(crate) fn alloc_counter_address(line: &str) -> Option<u64> {
    let (_, hex) = line.split_once("bench-alloc counter at 0x")?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The hop's allocation counter at the two ends of one run's 64 B
/// throughput window (the host stopped at `connect` and at `throughput_64`)
/// and the messages the host sent in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AllocWindow {
    /// The counter with the host stopped after its `connect` line.
    pub(crate) before: u64,
    /// The counter with the host stopped after its `throughput_64` line.
    pub(crate) after: u64,
    /// The `count` of that `throughput_64` line.
    pub(crate) messages: u64,
}

impl AllocWindow {
    /// Allocations per message in this window (it also holds the one
    /// `SinkStart` and the one `SinkAck` of the run).
    pub(crate) fn per_message(self) -> Option<f64> {
        (self.messages > 0 && self.after >= self.before)
            .then(|| (self.after - self.before) as f64 / self.messages as f64)
    }
}

/// Most allocations a run may make once, whatever its message count (the
/// pools and chunks of both nodes filling up to the burst's size; the
/// `SinkStart` and `SinkAck`), before the windows are called inconsistent.
/// The nodes' pools hold at most 4,096 buffers each.
pub(crate) const MAX_ALLOCS_PER_RUN: f64 = 20_000.0;

/// The allocation figures of two windows of different message counts.
/// Each window holds `per_run + steady * messages` allocations: what the
/// run costs once (pools warming up to the burst, `SinkStart`, `SinkAck`)
/// and what each message costs. Two windows give both:
/// `allocs_per_msg_64`, the steady-state cost of one more 64 B message (the
/// difference of the windows over the difference of their counts), and
/// `allocs_per_run_64`, the rest; plus each window's own
/// `allocs_per_msg_64_at_<count>`. Fails when that model does not fit: a
/// negative cost per run (the small window missed allocations of its
/// messages) or one above [`MAX_ALLOCS_PER_RUN`] (it held more than its
/// run).
pub(crate) fn alloc_figures(small: AllocWindow, large: AllocWindow) -> Result<Figures, String> {
    let (a, b) = match (small.per_message(), large.per_message()) {
        (Some(a), Some(b)) if large.messages > small.messages => (a, b),
        _ => return Err(format!("unusable allocation windows {small:?}, {large:?}")),
    };
    let small_total = (small.after - small.before) as f64;
    let extra = (large.after - large.before) as f64 - small_total;
    let steady = extra / (large.messages - small.messages) as f64;
    let per_run = small_total - steady * small.messages as f64;
    let mut f = Figures::new();
    f.insert("allocs_per_msg_64".into(), steady);
    f.insert("allocs_per_run_64".into(), per_run);
    f.insert(format!("allocs_per_msg_64_at_{}", small.messages), a);
    f.insert(format!("allocs_per_msg_64_at_{}", large.messages), b);
    if !(-0.5..=MAX_ALLOCS_PER_RUN).contains(&per_run) {
        return Err(format!(
            "allocation windows do not fit one cost per run plus one per message: \
             {a:.3} per message over {} messages, {b:.3} over {}, so {steady:.3} for each \
             one more and {per_run:.0} once",
            small.messages, large.messages
        ));
    }
    Ok(f)
}

/// The spread of one figure over the runs: (max - min) / median, in
/// percent (`None` for fewer than two runs or a zero median).
pub(crate) fn spread_pct(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let mut v = values.to_vec();
    let m = median(&mut v)?;
    let (lo, hi) = (v.first()?, v.last()?);
    (m != 0.0).then(|| (hi - lo) / m.abs() * 100.0)
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let upper = *values.get(mid)?;
    Some(if values.len() % 2 == 0 {
        (upper + *values.get(mid - 1)?) / 2.0
    } else {
        upper
    })
}

/// The figures of every case merged into the flat object: `<case>.<figure>`
/// for each, `<case>.<figure>_vs_floor` (value / the floor's) for every
/// figure the floor has too, and `<case>.added_rtt_<size>_p50_us` (the
/// case's p50 round trip minus the direct one) with its ratio to the
/// floor's. `meta` entries are copied as they are.
pub(crate) fn flat_json(
    cases: &[(String, Figures)],
    meta: &[(String, Value)],
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in meta {
        out.insert(key.clone(), value.clone());
    }
    let floor = cases.iter().find(|(c, _)| c == FLOOR).map(|(_, f)| f);
    let direct = cases.iter().find(|(c, _)| c == DIRECT).map(|(_, f)| f);
    for (case, figures) in cases {
        let mut all = figures.clone();
        if let Some(direct) = direct.filter(|_| case != DIRECT) {
            for size in ["64", "4096"] {
                let key = format!("rtt_{size}_p50_us");
                if let (Some(mine), Some(theirs)) = (figures.get(&key), direct.get(&key)) {
                    all.insert(format!("added_rtt_{size}_p50_us"), mine - theirs);
                }
            }
        }
        for (figure, value) in &all {
            out.insert(format!("{case}.{figure}"), number(*value));
        }
        if case == FLOOR {
            continue;
        }
        let Some(floor) = floor else { continue };
        let mut floor_all = floor.clone();
        if let Some(direct) = direct {
            for size in ["64", "4096"] {
                let key = format!("rtt_{size}_p50_us");
                if let (Some(f), Some(d)) = (floor.get(&key), direct.get(&key)) {
                    floor_all.insert(format!("added_rtt_{size}_p50_us"), f - d);
                }
            }
        }
        for (figure, value) in all
            .iter()
            .filter(|(f, _)| !NOT_RATIOS.contains(&f.as_str()) && !f.ends_with(SPREAD_SUFFIX))
        {
            if let Some(base) = floor_all.get(figure).filter(|b| **b != 0.0) {
                out.insert(format!("{case}.{figure}_vs_floor"), number(value / base));
            }
        }
    }
    out
}

/// A JSON number rounded to 3 decimals (null if not finite).
fn number(value: f64) -> Value {
    let rounded = (value * 1000.0).round() / 1000.0;
    serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
}

/// The rows of the table, in order: (figure, unit shown).
const TABLE_ROWS: [&str; 29] = [
    "rtt_64_p50_us",
    "rtt_64_p99_us",
    "rtt_64_p99_9_us",
    "rtt_4096_p50_us",
    "rtt_4096_p99_us",
    "rtt_4096_p99_9_us",
    "added_rtt_64_p50_us",
    "added_rtt_4096_p50_us",
    "tput_64_msgs_s",
    "tput_64_mb_s",
    "tput_4096_msgs_s",
    "tput_4096_mb_s",
    "tput_65536_msgs_s",
    "tput_65536_mb_s",
    "tput_1048576_msgs_s",
    "tput_1048576_mb_s",
    "tput_fd_msgs_s",
    "tput_shm_msgs_s",
    "tput_pipe_msgs_s",
    "launch_to_first_message_ms",
    "idle_rss_kb",
    "peak_rss_kb",
    "idle_fds",
    "max_fds",
    "cpu_us_per_msg_64",
    "allocs_per_msg_64",
    "cpus_seen",
    "runs",
    "failed_runs",
];

/// The short human table: one row per figure, one column per case, then
/// each non-floor hop case's ratio to the floor.
pub(crate) fn table(json: &Map<String, Value>, cases: &[String]) -> String {
    let ratio_cases: Vec<&String> = cases
        .iter()
        .filter(|c| *c != FLOOR && !c.starts_with(DIRECT))
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:<28}", "figure");
    for case in cases {
        let _ = write!(out, " {case:>13}");
    }
    for case in &ratio_cases {
        let _ = write!(out, " {:>13}", format!("{case}/floor"));
    }
    out.push('\n');
    for row in TABLE_ROWS {
        let cells: Vec<Option<&Value>> = cases
            .iter()
            .map(|c| json.get(&format!("{c}.{row}")))
            .collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let _ = write!(out, "{row:<28}");
        for cell in cells {
            let _ = write!(out, " {:>13}", cell.map_or("-".to_string(), show));
        }
        for case in &ratio_cases {
            let cell = json.get(&format!("{case}.{row}_vs_floor"));
            let _ = write!(
                out,
                " {:>13}",
                cell.map_or("-".to_string(), |v| format!("{}x", show(v)))
            );
        }
        out.push('\n');
    }
    out
}

/// A value as the table shows it: numbers with at most 2 decimals.
fn show(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 => format!("{f:.0}"),
            Some(f) if f.abs() >= 100.0 => format!("{f:.1}"),
            Some(f) => format!("{f:.2}"),
            None => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every figure of a host run, as the issue names them (a list of its
    /// own: a figure the code stops producing fails the tests).
    const HOST_KEYS: [&str; 18] = [
        "launch_to_first_message_ms",
        "rtt_64_p50_us",
        "rtt_64_p99_us",
        "rtt_64_p99_9_us",
        "rtt_4096_p50_us",
        "rtt_4096_p99_us",
        "rtt_4096_p99_9_us",
        "tput_64_msgs_s",
        "tput_64_mb_s",
        "tput_4096_msgs_s",
        "tput_4096_mb_s",
        "tput_65536_msgs_s",
        "tput_65536_mb_s",
        "tput_1048576_msgs_s",
        "tput_1048576_mb_s",
        "tput_fd_msgs_s",
        "tput_shm_msgs_s",
        "tput_pipe_msgs_s",
    ];

    /// The lines of a passing `--scenarios=throughput,latency,
    /// throughput_extra` host run, as the host prints them.
    fn host_lines(p50: f64) -> Vec<Value> {
        let text = format!(
            r#"{{"scenario":"config","label":"x","pass":true}}
{{"scenario":"connect","label":"x","pass":true,"first_rtt_ms":1.2,"from_spawn_ms":3.5}}
{{"scenario":"throughput_64","label":"x","pass":true,"size":64,"count":2000,"msgs_per_s":200000.0,"mb_per_s":12.8}}
{{"scenario":"throughput_4096","label":"x","pass":true,"size":4096,"count":2000,"msgs_per_s":100000.0,"mb_per_s":409.6}}
{{"scenario":"throughput_65536","label":"x","pass":true,"size":65536,"count":400,"msgs_per_s":10000.0,"mb_per_s":655.36}}
{{"scenario":"latency_64","label":"x","pass":true,"p50_us":{p50},"p90_us":20.0,"p99_us":30.0,"p999_us":50.0}}
{{"scenario":"latency_4096","label":"x","pass":true,"p50_us":25.0,"p90_us":30.0,"p99_us":40.0,"p999_us":90.0}}
{{"scenario":"throughput_1048576","label":"x","pass":true,"size":1048576,"count":100,"msgs_per_s":800.0,"mb_per_s":838.8608}}
{{"scenario":"throughput_fd","label":"x","pass":true,"size":64,"count":1000,"received":1000,"handles":1000,"bad":0,"msgs_per_s":60000.0,"mb_per_s":3.84}}
{{"scenario":"throughput_shm","label":"x","pass":true,"size":64,"count":1000,"received":1000,"handles":1000,"bad":0,"msgs_per_s":20000.0,"mb_per_s":1.28}}
{{"scenario":"throughput_pipe","label":"x","pass":true,"size":64,"count":1000,"received":1000,"handles":1000,"bad":0,"msgs_per_s":40000.0,"mb_per_s":2.56}}
{{"scenario":"shutdown","label":"x","pass":true}}"#
        );
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn host_lines_become_figures() {
        let f = host_figures(&host_lines(15.0)).unwrap();
        assert_eq!(f["rtt_64_p50_us"], 15.0);
        assert_eq!(f["rtt_64_p99_us"], 30.0);
        assert_eq!(f["rtt_64_p99_9_us"], 50.0);
        assert_eq!(f["rtt_4096_p50_us"], 25.0);
        assert_eq!(f["tput_4096_mb_s"], 409.6);
        assert_eq!(f["tput_65536_mb_s"], 655.36);
        assert_eq!(f["tput_64_msgs_s"], 200000.0);
        assert_eq!(f["launch_to_first_message_ms"], 3.5);
        assert_eq!(f["tput_1048576_msgs_s"], 800.0);
        assert_eq!(f["tput_1048576_mb_s"], 838.8608);
        assert_eq!(f["tput_fd_msgs_s"], 60000.0);
        assert_eq!(f["tput_shm_msgs_s"], 20000.0);
        assert_eq!(f["tput_pipe_msgs_s"], 40000.0);
        let mut want = HOST_KEYS.to_vec();
        want.sort_unstable();
        assert_eq!(f.keys().map(String::as_str).collect::<Vec<_>>(), want);
        assert_eq!(throughput_64_count(&host_lines(1.0)), Some(2000));
    }

    #[test]
    fn a_failed_or_missing_line_is_an_error() {
        let mut lines = host_lines(15.0);
        lines[5]["pass"] = Value::Bool(false);
        lines[5]["error"] = "timed out".into();
        let e = host_figures(&lines).unwrap_err();
        assert!(e.contains("latency_64 (timed out)"), "{e}");
        // Without any one result line there are no figures.
        let all = host_lines(15.0);
        for i in 1..all.len() - 1 {
            let mut lines = all.clone();
            let name = lines.remove(i)["scenario"].as_str().unwrap().to_string();
            assert_eq!(host_figures(&lines).unwrap_err(), format!("no {name} line"));
        }
        // A handle run whose client got fewer handles than messages.
        let mut lines = host_lines(15.0);
        lines[9]["handles"] = 999.into();
        let e = host_figures(&lines).unwrap_err();
        assert!(e.contains("throughput_shm"), "{e}");
    }

    #[test]
    fn the_alloc_counter_line_is_read() {
        assert_eq!(
            alloc_counter_address("mojo_proxy: bench-alloc counter at 0x55ba450ef270"),
            Some(0x55ba_450e_f270)
        );
        assert_eq!(
            alloc_counter_address("mojo_proxy: bench-alloc counter at 0xzz"),
            None
        );
        assert_eq!(alloc_counter_address("[host] spawned pid 1: x"), None);
    }

    fn window(before: u64, after: u64, messages: u64) -> AllocWindow {
        AllocWindow {
            before,
            after,
            messages,
        }
    }

    #[test]
    fn allocations_per_message_and_per_run_come_from_two_windows() {
        // 12 per message plus 30 the run costs once (SinkStart, SinkAck).
        let small = window(1_000, 1_000 + 30 + 12 * 2_000, 2_000);
        let large = window(5_000, 5_000 + 30 + 12 * 20_000, 20_000);
        let f = alloc_figures(small, large).unwrap();
        assert_eq!(f["allocs_per_msg_64"], 12.0);
        assert_eq!(f["allocs_per_run_64"], 30.0);
        assert_eq!(f["allocs_per_msg_64_at_2000"], 12.015);
        assert_eq!(f["allocs_per_msg_64_at_20000"], 12.0015);
        // Pools warming up once per burst and nothing per message (the
        // Dec 4 figures): a cost per run, about none per message.
        let f = alloc_figures(window(0, 2_892, 2_000), window(0, 2_980, 20_000)).unwrap();
        assert!(f["allocs_per_msg_64"] < 0.005);
        assert!((f["allocs_per_run_64"] - 2_882.2).abs() < 0.1);
        // A small window that missed most of its messages' allocations.
        let e = alloc_figures(window(0, 2_000, 2_000), window(0, 240_000, 20_000)).unwrap_err();
        assert!(e.contains("do not fit"), "{e}");
        // One that held far more than its run.
        let e = alloc_figures(window(0, 50_000, 2_000), window(0, 50_100, 20_000)).unwrap_err();
        assert!(e.contains("do not fit"), "{e}");
        // Nothing allocated is a figure too.
        let f = alloc_figures(window(7, 7, 2_000), window(9, 9, 20_000)).unwrap();
        assert_eq!(f["allocs_per_msg_64"], 0.0);
        assert!(alloc_figures(large, small).is_err());
        assert!(alloc_figures(window(5, 4, 2_000), large).is_err());
        assert!(alloc_figures(window(0, 4, 0), large).is_err());
    }

    #[test]
    fn spread_is_max_minus_min_over_the_median() {
        assert_eq!(spread_pct(&[10.0, 12.0, 11.0]), Some(2.0 / 11.0 * 100.0));
        assert_eq!(spread_pct(&[10.0]), None);
        assert_eq!(spread_pct(&[0.0, 0.0]), None);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn flat_json_has_every_case_figure_and_ratios_to_the_floor() {
        let mut cases = Vec::new();
        for (case, p50) in [("floor", 20.0), ("proxy", 30.0), ("direct", 10.0)] {
            let mut f = host_figures(&host_lines(p50)).unwrap();
            if case != "direct" {
                f.insert("idle_rss_kb".into(), 1000.0);
            }
            f.insert("runs".into(), 3.0);
            f.insert("rtt_64_p50_us_spread_pct".into(), 5.0);
            cases.push((case.to_string(), f));
        }
        let meta = [("machine.kernel".to_string(), Value::from("6.1"))];
        let json = flat_json(&cases, &meta);
        for case in ["floor", "proxy", "direct"] {
            for figure in HOST_KEYS {
                assert!(
                    json[&format!("{case}.{figure}")].is_number(),
                    "{case}.{figure}"
                );
                if case != "floor" {
                    assert!(
                        json[&format!("{case}.{figure}_vs_floor")].is_number(),
                        "{case}.{figure}_vs_floor"
                    );
                }
            }
        }
        assert_eq!(json["machine.kernel"], "6.1");
        assert_eq!(json["proxy.rtt_64_p50_us_vs_floor"], 1.5);
        assert_eq!(json["direct.rtt_64_p50_us_vs_floor"], 0.5);
        assert_eq!(json["proxy.idle_rss_kb_vs_floor"], 1.0);
        assert!(json.get("floor.rtt_64_p50_us_vs_floor").is_none());
        assert!(json.get("proxy.runs_vs_floor").is_none());
        assert!(
            json.get("proxy.rtt_64_p50_us_spread_pct_vs_floor")
                .is_none()
        );
        assert!(json.get("direct.idle_rss_kb").is_none());
        // The hop's added latency: proxy 30 - direct 10 = 20, floor 20 - 10 = 10.
        assert_eq!(json["proxy.added_rtt_64_p50_us"], 20.0);
        assert_eq!(json["floor.added_rtt_64_p50_us"], 10.0);
        assert_eq!(json["proxy.added_rtt_64_p50_us_vs_floor"], 2.0);
        assert!(json.get("direct.added_rtt_64_p50_us").is_none());

        let names: Vec<String> = cases.iter().map(|(c, _)| c.clone()).collect();
        let t = table(&json, &names);
        let header = t.lines().next().unwrap();
        assert!(
            header.contains("floor") && header.contains("proxy/floor"),
            "{t}"
        );
        let row = t.lines().find(|l| l.starts_with("rtt_64_p50_us ")).unwrap();
        assert!(row.contains("1.50x"), "{row}");
        // Every figure of a host run has its row, with the ratio.
        for figure in HOST_KEYS {
            let row = t
                .lines()
                .find(|l| l.split_whitespace().next() == Some(figure))
                .unwrap_or_else(|| panic!("no {figure} row in\n{t}"));
            assert!(row.ends_with('x'), "{row}");
        }
        assert!(
            !t.contains("allocs_per_msg_64"),
            "rows with no figure are left out"
        );
    }
}
