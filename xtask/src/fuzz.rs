//! `cargo xtask fuzz`: the CI smoke run and fuzzing campaigns over every
//! cargo-fuzz target of `fuzz/` (docs/RELIABILITY.md says how to read them).
//!
//! - `--smoke [--seconds CAP] [--runs N] [--seed N]`: every target from its
//!   seeds and past crash inputs, for a fixed number of runs with a fixed
//!   seed, so the run is the same every time; the time cap only guards
//!   against a hang, and a target that reaches it is reported (its run was
//!   cut short, so it was not the fixed run).
//! - `--campaign [--seconds N] [--plateau S] [TARGET]...`: each target (all
//!   by default) until its coverage has not grown for `S` seconds, or for
//!   `N` seconds at most, growing a corpus kept under
//!   `target/fuzz-campaign/<target>/`; a crash input is copied into
//!   `fuzz/regressions/<target>/` (where the fuzz library's test replays it
//!   until it is fixed), and the campaign fails.
//! - `--list`: the target names.
//!
//! Both build every target once first (`cargo fuzz build`), so no run pays
//! for a build.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{cargo, run, workspace_root};

/// Smoke runs per target with `--smoke` and no `--runs`: each finishes in
/// about 10 s or less on a 2-core machine like CI's (from a CI run's
/// `Done N runs in S second(s)` lines, docs/RELIABILITY.md), well inside
/// the default 30 s cap. Targets that execute slowly (whole nodes,
/// sessions, the proxy) get fewer runs.
const SMOKE_RUNS: &[(&str, u64)] = &[
    ("ipcz_deframer", 100_000),
    ("ipcz_driver_object", 200_000),
    ("ipcz_fragment", 200_000),
    ("ipcz_frame", 200_000),
    ("ipcz_invitation", 50_000),
    ("ipcz_message", 200_000),
    ("ipcz_node_frames", 5_000),
    ("ipcz_router_descriptor", 200_000),
    ("ipcz_session_streams", 30_000),
    ("legacy_broker_message", 200_000),
    ("legacy_channel_frame", 200_000),
    ("legacy_deframer", 100_000),
    ("legacy_invitation_broker", 200_000),
    ("legacy_invitation_client", 200_000),
    ("legacy_node_frames", 50_000),
    ("legacy_node_message", 200_000),
    ("legacy_ports_event", 200_000),
    ("legacy_session_streams", 50_000),
    ("legacy_user_message", 200_000),
    ("proxy_streams", 20_000),
];

/// Smoke runs of a target missing from [`SMOKE_RUNS`] (a new one).
const DEFAULT_SMOKE_RUNS: u64 = 10_000;

/// Default time cap of one smoke target, seconds.
const DEFAULT_SMOKE_CAP_SECONDS: u64 = 30;

/// Default longest campaign run of one target, seconds.
const DEFAULT_CAMPAIGN_SECONDS: u64 = 600;

/// Default plateau: a target whose coverage has not grown for this long
/// (seconds) is done.
const DEFAULT_PLATEAU_SECONDS: u64 = 60;

/// Every target name: the file stems of `fuzz/fuzz_targets/*.rs`, sorted.
pub(crate) fn targets() -> Result<Vec<String>, String> {
    let dir = workspace_root().join("fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    Ok(names)
}

/// `cargo xtask fuzz ARGS`.
pub(crate) fn main(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--list") {
        for name in targets()? {
            println!("{name}");
        }
        return Ok(());
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let campaign = args.iter().any(|a| a == "--campaign");
    if smoke == campaign {
        return Err("fuzz: pass --smoke (CI's short fixed run), --campaign, or --list".into());
    }
    let have_cargo_fuzz = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_cargo_fuzz {
        return Err("cargo-fuzz is not installed (cargo install cargo-fuzz --locked)".into());
    }
    let mut build = cargo();
    build
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "build", "--fuzz-dir", "fuzz"]);
    run("fuzz build (every target)", build)?;
    if smoke {
        smoke_run(args)
    } else {
        campaign_run(args)
    }
}

/// The value after `flag` as a whole number, if the flag is there.
fn number(args: &[String], flag: &str) -> Result<Option<u64>, String> {
    match args.iter().position(|a| a == flag) {
        Some(i) => args
            .get(i + 1)
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| format!("{flag} needs a whole number")),
        None => Ok(None),
    }
}

/// The corpus folders of `target` after the one new inputs go to: its seeds,
/// then its past crash inputs if it has any (libFuzzer reads them all
/// before mutating, so every run re-checks each old crash).
fn input_dirs(root: &Path, target: &str) -> Vec<PathBuf> {
    let mut dirs = vec![root.join("fuzz/corpus").join(target)];
    let regressions = root.join("fuzz/regressions").join(target);
    if regressions.is_dir() {
        dirs.push(regressions);
    }
    dirs
}

/// A `cargo fuzz run` of `target` writing new inputs to `scratch`.
fn fuzz_run(root: &Path, target: &str, scratch: &Path) -> Result<Command, String> {
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let mut cmd = cargo();
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", "--fuzz-dir", "fuzz", target])
        .arg(scratch)
        .args(input_dirs(root, target))
        .arg("--");
    Ok(cmd)
}

/// What libFuzzer's last line says: `Done N runs in S second(s)`.
fn done_line(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("Done ")?;
    let mut words = rest.split_whitespace();
    let runs = words.next()?.parse().ok()?;
    let seconds = words.nth(2)?.parse().ok()?;
    Some((runs, seconds))
}

/// The coverage figure of a libFuzzer status line (`#N NEW cov: C ft: F
/// corp: ...`), as (cov, ft).
fn coverage(line: &str) -> Option<(u64, u64)> {
    let after = |key: &str| -> Option<u64> {
        let at = line.find(key)? + key.len();
        line.get(at..)?.split_whitespace().next()?.parse().ok()
    };
    Some((after("cov: ")?, after("ft: ")?))
}

fn smoke_run(args: &[String]) -> Result<(), String> {
    let cap = number(args, "--seconds")?.unwrap_or(DEFAULT_SMOKE_CAP_SECONDS);
    let runs_override = number(args, "--runs")?;
    let seed = number(args, "--seed")?.unwrap_or(1);
    let root = workspace_root();
    let mut capped = Vec::new();
    for target in targets()? {
        let runs = runs_override.unwrap_or_else(|| {
            SMOKE_RUNS
                .iter()
                .find(|(name, _)| *name == target)
                .map_or(DEFAULT_SMOKE_RUNS, |(_, runs)| *runs)
        });
        // New inputs go to a scratch folder under target/, so a smoke run
        // never dirties the checked-in seeds.
        let scratch = root.join("target/fuzz-smoke").join(&target);
        let mut cmd = fuzz_run(&root, &target, &scratch)?;
        cmd.arg(format!("-max_total_time={cap}"))
            .arg(format!("-runs={runs}"))
            .arg(format!("-seed={seed}"))
            .stderr(Stdio::piped());
        eprintln!("==> fuzz {target}: {runs} runs, seed {seed}");
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("fuzz {target}: cannot start: {e}"))?;
        let mut done = None;
        let mut tail = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                done = done.or_else(|| done_line(&line));
                // Keep what a failure needs: the end of libFuzzer's output.
                tail.push(line);
                if tail.len() > 80 {
                    tail.remove(0);
                }
            }
        }
        let status = child.wait().map_err(|e| format!("fuzz {target}: {e}"))?;
        if !status.success() {
            for line in &tail {
                eprintln!("{line}");
            }
            return Err(format!("fuzz {target} failed ({status})"));
        }
        match done {
            Some((did, seconds)) if did >= runs => {
                eprintln!("    {target}: {did} runs in {seconds} s");
            }
            Some((did, seconds)) => {
                eprintln!(
                    "    {target}: cut short by the {cap} s cap after {did} of {runs} runs ({seconds} s)"
                );
                capped.push(target);
            }
            None => return Err(format!("fuzz {target}: no `Done` line from libFuzzer")),
        }
    }
    if capped.is_empty() {
        eprintln!("fuzz smoke: every target ran its fixed run count");
    } else {
        // Still a pass (nothing failed), but not the fixed run: say so.
        eprintln!(
            "note: fuzz smoke: {} target(s) hit the time cap before their run count: {}; lower their SMOKE_RUNS",
            capped.len(),
            capped.join(", ")
        );
    }
    Ok(())
}

/// One target's campaign result.
struct CampaignResult {
    target: String,
    seconds: u64,
    runs: u64,
    cov: u64,
    ft: u64,
    plateaued: bool,
    crash: Option<PathBuf>,
}

fn campaign_run(args: &[String]) -> Result<(), String> {
    let longest = number(args, "--seconds")?.unwrap_or(DEFAULT_CAMPAIGN_SECONDS);
    let plateau = number(args, "--plateau")?.unwrap_or(DEFAULT_PLATEAU_SECONDS);
    let all = targets()?;
    let mut chosen = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        match arg.as_str() {
            "--campaign" => {}
            "--seconds" | "--plateau" => skip_value = true,
            name if all.iter().any(|t| t == name) => chosen.push(name.to_owned()),
            other => return Err(format!("fuzz --campaign: unknown target or flag {other}")),
        }
    }
    if chosen.is_empty() {
        chosen = all;
    }
    let root = workspace_root();
    let mut results = Vec::new();
    for target in &chosen {
        results.push(campaign_target(&root, target, longest, plateau)?);
    }
    println!(
        "{:<26} {:>8} {:>10} {:>6} {:>7}  end",
        "target", "seconds", "runs", "cov", "ft"
    );
    for r in &results {
        let end = match (&r.crash, r.plateaued) {
            (Some(path), _) => format!("CRASH {}", path.display()),
            (None, true) => format!("plateau ({plateau} s without new coverage)"),
            (None, false) => "time limit, coverage still growing".to_owned(),
        };
        println!(
            "{:<26} {:>8} {:>10} {:>6} {:>7}  {end}",
            r.target, r.seconds, r.runs, r.cov, r.ft
        );
    }
    let crashes = results.iter().filter(|r| r.crash.is_some()).count();
    if crashes > 0 {
        return Err(format!(
            "fuzz campaign: {crashes} target(s) crashed; each input is in fuzz/regressions/<target>/"
        ));
    }
    Ok(())
}

/// What a campaign has read of one libFuzzer run's status lines, and when
/// its coverage plateaued.
///
/// The plateau clock starts at the `#N INITED` line, not at the start of
/// the process: before it come cargo's own lines and the loading of the
/// corpus, and a plateau measured from the start would kill a target that
/// has not fuzzed yet (0 runs, 0 coverage). The clock is only read when a
/// line arrives (libFuzzer's `pulse` lines come at doubling run counts).
#[derive(Debug)]
struct Monitor {
    plateau: u64,
    cov: u64,
    ft: u64,
    runs: u64,
    /// Seconds (from the start) of the `INITED` line, once seen.
    inited_at: Option<u64>,
    /// Seconds of the last growth of `cov` or `ft`.
    last_growth: u64,
    plateaued: bool,
}

impl Monitor {
    fn new(plateau: u64) -> Self {
        Self {
            plateau,
            cov: 0,
            ft: 0,
            runs: 0,
            inited_at: None,
            last_growth: 0,
            plateaued: false,
        }
    }

    /// Reads one stderr line seen `now` seconds after the start; true once,
    /// when the run should be stopped for a plateau.
    fn line(&mut self, line: &str, now: u64) -> bool {
        let line = line.trim_end();
        if let Some((c, f)) = coverage(line) {
            if line.split_whitespace().nth(1) == Some("INITED") && self.inited_at.is_none() {
                self.inited_at = Some(now);
                self.last_growth = now;
            }
            if c > self.cov || f > self.ft {
                self.last_growth = now;
            }
            (self.cov, self.ft) = (self.cov.max(c), self.ft.max(f));
            if let Some(n) = status_runs(line) {
                self.runs = self.runs.max(n);
            }
        }
        if let Some((n, _)) = done_line(line) {
            self.runs = n;
        }
        if let Some(n) = line
            .strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
        {
            self.runs = n;
        }
        if self.plateaued || self.inited_at.is_none() {
            return false;
        }
        if now.saturating_sub(self.last_growth) > self.plateau {
            self.plateaued = true;
            return true;
        }
        false
    }
}

/// The run count of a status line (`#N\tNEW ...`, `#N pulse ...`).
fn status_runs(line: &str) -> Option<u64> {
    line.strip_prefix('#')?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn campaign_target(
    root: &Path,
    target: &str,
    longest: u64,
    plateau: u64,
) -> Result<CampaignResult, String> {
    let corpus = root.join("target/fuzz-campaign").join(target);
    let artifacts = root.join("target/fuzz-campaign-artifacts").join(target);
    std::fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    let mut cmd = fuzz_run(root, target, &corpus)?;
    cmd.arg(format!("-max_total_time={longest}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .stderr(Stdio::piped());
    eprintln!("==> fuzz campaign {target}: at most {longest} s, plateau {plateau} s");
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("fuzz {target}: cannot start: {e}"))?;
    let pid = child.id();
    let mut monitor = Monitor::new(plateau);
    let mut crash_artifact = None;
    if let Some(stderr) = child.stderr.take() {
        let mut reader = BufReader::new(stderr);
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            // A line that is not UTF-8 (a target's own output) must not end
            // the reading: the rest of libFuzzer's lines still count.
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&bytes);
            if let Some(path) = line.split("Test unit written to ").nth(1) {
                crash_artifact = Some(PathBuf::from(path.trim()));
            }
            if monitor.line(&line, start.elapsed().as_secs()) {
                // libFuzzer ends cleanly, with its final stats, on SIGINT.
                let _ = Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status();
                let _ = Command::new("pkill")
                    .args(["-INT", "-P", &pid.to_string()])
                    .status();
            }
        }
    }
    let Monitor {
        cov,
        ft,
        runs,
        plateaued,
        ..
    } = monitor;
    let status = child.wait().map_err(|e| format!("fuzz {target}: {e}"))?;
    let crash = match crash_artifact {
        Some(artifact) if !plateaued || !status.success() => {
            let keep = root.join("fuzz/regressions").join(target);
            std::fs::create_dir_all(&keep).map_err(|e| format!("{}: {e}", keep.display()))?;
            let name = artifact
                .file_name()
                .map_or_else(|| "crash".into(), |n| n.to_owned());
            let dest = keep.join(name);
            std::fs::copy(&artifact, &dest)
                .map_err(|e| format!("{} -> {}: {e}", artifact.display(), dest.display()))?;
            Some(dest)
        }
        _ => None,
    };
    Ok(CampaignResult {
        target: target.to_owned(),
        seconds: start.elapsed().as_secs(),
        runs,
        cov,
        ft,
        plateaued,
        crash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libfuzzer_lines_are_read() {
        assert_eq!(
            done_line("Done 200000 runs in 12 second(s)"),
            Some((200_000, 12))
        );
        assert_eq!(done_line("#1024 pulse cov: 10 ft: 12"), None);
        assert_eq!(
            coverage("#19077\tNEW    cov: 2492 ft: 10879 corp: 365/62Kb lim: 322 exec/s: 953"),
            Some((2492, 10879))
        );
        assert_eq!(coverage("INFO: Seed: 1"), None);
    }

    /// Real stderr lines of `ipcz_frame` and `legacy_ports_event` (libFuzzer
    /// from cargo-fuzz, `-print_final_stats=1`), in the order they came.
    const IPCZ_FRAME: &[&str] = &[
        "INFO: Running with entropic power schedule (0xFF, 100).",
        "INFO: Seed: 1",
        "INFO:       44 files found in fuzz/corpus/ipcz_frame",
        "INFO: seed corpus: files: 44 min: 56b max: 4216b total: 14752b rss: 33Mb",
        "#45\tINITED cov: 1123 ft: 1427 corp: 18/2496b exec/s: 0 rss: 42Mb",
        "\tNEW_FUNC[1/2]: 0x5621a9304ad0 in <alloc::raw_vec::RawVec<ipcz_wire::message::codec::FieldSpan>>::grow_one",
        "#46\tNEW    cov: 1174 ft: 1513 corp: 19/2624b lim: 312 exec/s: 0 rss: 43Mb L: 128/312 MS: 1 ChangeByte-",
        "#131072\tpulse  cov: 1862 ft: 2843 corp: 245/41Kb lim: 746 exec/s: 65536 rss: 342Mb",
        "#262144\tpulse  cov: 2202 ft: 3322 corp: 316/54Kb lim: 1315 exec/s: 52428 rss: 452Mb",
        "\"\\377\\377\\377\\033\" # Uses: 120",
        "Done 447949 runs in 9 second(s)",
        "stat::number_of_executed_units: 447949",
    ];
    /// `legacy_ports_event -runs=200000 -seed=1 -print_final_stats=1` from an
    /// empty corpus (Dec 4 2026), its first and last status lines.
    const LEGACY_PORTS_EVENT: &[&str] = &[
        "#2\tINITED cov: 33 ft: 33 corp: 1/1b exec/s: 0 rss: 33Mb",
        "#4712\tREDUCE cov: 133 ft: 169 corp: 16/368b lim: 33 exec/s: 0 rss: 42Mb L: 27/33 MS: 1 EraseBytes-",
        "#5494\tREDUCE cov: 135 ft: 172 corp: 19/451b lim: 33 exec/s: 0 rss: 42Mb L: 25/33 MS: 3 InsertRepeatedBytes-ChangeBinInt-EraseBytes-",
        "#198171\tREDUCE cov: 455 ft: 624 corp: 81/4955b lim: 1460 exec/s: 99085 rss: 163Mb L: 87/274 MS: 2 ShuffleBytes-EraseBytes-",
        "#200000\tDONE   cov: 455 ft: 624 corp: 81/4955b lim: 1470 exec/s: 100000 rss: 164Mb",
        "Done 200000 runs in 2 second(s)",
        "stat::number_of_executed_units: 200000",
    ];

    #[test]
    fn status_lines_of_real_runs_are_read() {
        let mut m = Monitor::new(60);
        for line in IPCZ_FRAME {
            assert!(!m.line(line, 1), "{line}");
        }
        assert_eq!((m.runs, m.cov, m.ft), (447_949, 2202, 3322));
        let mut m = Monitor::new(60);
        for line in LEGACY_PORTS_EVENT {
            assert!(!m.line(line, 1), "{line}");
        }
        assert_eq!((m.runs, m.cov, m.ft), (200_000, 455, 624));
    }

    #[test]
    fn plateau_clock_starts_at_inited() {
        // cargo's build and the corpus load print nothing libFuzzer-like for
        // longer than the plateau: no kill before INITED (the 0-run bug).
        let mut m = Monitor::new(60);
        assert!(!m.line("   Compiling ipcz-wire v0.1.0", 0));
        assert!(!m.line("    Finished `release` profile [optimized] target(s)", 200));
        assert!(!m.line(IPCZ_FRAME[2], 200));
        assert!(!m.line(IPCZ_FRAME[4], 201));
        assert!(!m.line(IPCZ_FRAME[6], 230));
        assert!(!m.line(IPCZ_FRAME[7], 290), "60 s since growth, not more");
        // A pulse with no growth after the plateau stops the run, once.
        let same =
            "#524288\tpulse  cov: 2202 ft: 3322 corp: 316/54Kb lim: 1315 exec/s: 52428 rss: 452Mb";
        assert!(!m.line(IPCZ_FRAME[8], 300));
        assert!(m.line(same, 361));
        assert!(m.plateaued);
        assert!(!m.line(same, 500));
        assert_eq!((m.runs, m.cov), (524_288, 2202));
    }

    #[test]
    fn a_target_that_prints_nothing_reads_as_nothing() {
        let mut m = Monitor::new(1);
        assert!(!m.line("INFO: Seed: 1", 100));
        assert!(!m.line("==12== libFuzzer: run interrupted; exiting", 200));
        assert_eq!((m.runs, m.cov, m.ft, m.plateaued), (0, 0, 0, false));
    }

    #[test]
    fn every_target_has_a_smoke_run_count() {
        let names = targets().unwrap();
        let listed: Vec<&str> = SMOKE_RUNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, listed, "SMOKE_RUNS lists every target, in order");
    }
}
