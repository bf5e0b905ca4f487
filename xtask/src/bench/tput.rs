//! The one-way throughput figures of a host run: the spec's `throughput`
//! lines (`throughput_64`, `_4096`, `_65536`) and those of the host's own
//! `throughput_extra` scenario (`throughput_1048576`, and the handle runs
//! `throughput_fd`, `throughput_shm`, `throughput_pipe`, in which every
//! 64 B message carries one fd, one shared buffer or one new message pipe
//! end; see `bins/mojo-test-peers/src/host/tput.rs`).

use serde_json::Value;

use super::report::Figures;

/// The host's `--scenarios` in a measured run.
pub(crate) const MEASURED_SCENARIOS: &str = "throughput,latency,throughput_extra";

/// Runs of messages without handles: (line, key prefix). Each gives
/// `<prefix>_msgs_s` and `<prefix>_mb_s`.
pub(crate) const PLAIN_RUNS: [(&str, &str); 4] = [
    ("throughput_64", "tput_64"),
    ("throughput_4096", "tput_4096"),
    ("throughput_65536", "tput_65536"),
    ("throughput_1048576", "tput_1048576"),
];

/// Runs of messages with one handle each: (line, key prefix). Each gives
/// `<prefix>_msgs_s` (their 64 B payloads make MB/s meaningless).
pub(crate) const HANDLE_RUNS: [(&str, &str); 3] = [
    ("throughput_fd", "tput_fd"),
    ("throughput_shm", "tput_shm"),
    ("throughput_pipe", "tput_pipe"),
];

/// Adds the throughput figures of `lines` to `figures`. Fails, naming it,
/// if a line is missing or lacks a number, or if a handle run's client did
/// not receive one handle with every message sent (`handles` and
/// `received` must both be the line's `count`, and that more than 0): the
/// host fails such a line itself, and this keeps a host that does not from
/// reporting a rate.
pub(crate) fn throughput_figures(lines: &[Value], figures: &mut Figures) -> Result<(), String> {
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
    for (name, prefix) in PLAIN_RUNS {
        let l = line(name)?;
        figures.insert(format!("{prefix}_msgs_s"), number(l, "msgs_per_s")?);
        figures.insert(format!("{prefix}_mb_s"), number(l, "mb_per_s")?);
    }
    for (name, prefix) in HANDLE_RUNS {
        let l = line(name)?;
        let count = l["count"].as_u64().filter(|c| *c > 0);
        let (Some(count), Some(received), Some(handles)) =
            (count, l["received"].as_u64(), l["handles"].as_u64())
        else {
            return Err(format!("{name}: no count, received or handles"));
        };
        if received != count || handles != count {
            return Err(format!(
                "{name}: {received} messages and {handles} handles received of {count}"
            ));
        }
        figures.insert(format!("{prefix}_msgs_s"), number(l, "msgs_per_s")?);
    }
    Ok(())
}

/// Every key [`throughput_figures`] adds.
#[cfg(test)]
fn keys() -> Vec<String> {
    let mut keys = Vec::new();
    for (_, prefix) in PLAIN_RUNS {
        keys.push(format!("{prefix}_msgs_s"));
        keys.push(format!("{prefix}_mb_s"));
    }
    for (_, prefix) in HANDLE_RUNS {
        keys.push(format!("{prefix}_msgs_s"));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle_line(name: &str, count: u64, received: u64, handles: u64) -> Value {
        serde_json::json!({
            "scenario": name, "pass": true, "size": 64, "count": count,
            "received": received, "handles": handles, "bad": 0,
            "msgs_per_s": 50000.0, "mb_per_s": 3.2,
        })
    }

    fn plain_lines() -> Vec<Value> {
        PLAIN_RUNS
            .iter()
            .map(|(name, _)| {
                serde_json::json!({"scenario": name, "pass": true, "msgs_per_s": 1000.0, "mb_per_s": 64.0})
            })
            .collect()
    }

    #[test]
    fn every_run_gives_its_figures() {
        let mut lines = plain_lines();
        for (name, _) in HANDLE_RUNS {
            lines.push(handle_line(name, 1000, 1000, 1000));
        }
        let mut f = Figures::new();
        throughput_figures(&lines, &mut f).unwrap();
        let got: Vec<&String> = f.keys().collect();
        let mut want = keys();
        want.sort();
        assert_eq!(got, want.iter().collect::<Vec<_>>());
        assert_eq!(want.len(), 4 * 2 + 3);
        assert_eq!(f["tput_1048576_mb_s"], 64.0);
        assert_eq!(f["tput_fd_msgs_s"], 50000.0);
        assert!(want.contains(&"tput_pipe_msgs_s".to_string()));
        assert!(want.contains(&"tput_shm_msgs_s".to_string()));
        assert!(!want.contains(&"tput_fd_mb_s".to_string()));
    }

    #[test]
    fn a_missing_run_or_a_short_handle_count_is_an_error() {
        let mut all = plain_lines();
        for (name, _) in HANDLE_RUNS {
            all.push(handle_line(name, 1000, 1000, 1000));
        }
        for i in 0..all.len() {
            let mut lines = all.clone();
            let name = lines.remove(i)["scenario"].as_str().unwrap().to_string();
            let e = throughput_figures(&lines, &mut Figures::new()).unwrap_err();
            assert_eq!(e, format!("no {name} line"));
        }
        for (received, handles) in [(999, 1000), (1000, 999), (1000, 0)] {
            let mut lines = all.clone();
            let last = lines.len() - 1;
            lines[last] = handle_line("throughput_pipe", 1000, received, handles);
            let e = throughput_figures(&lines, &mut Figures::new()).unwrap_err();
            assert!(e.starts_with("throughput_pipe: "), "{e}");
        }
        let mut lines = all.clone();
        lines[5] = handle_line("throughput_shm", 0, 0, 0);
        assert!(throughput_figures(&lines, &mut Figures::new()).is_err());
        let mut lines = all;
        lines[4]["handles"] = Value::Null;
        let e = throughput_figures(&lines, &mut Figures::new()).unwrap_err();
        assert!(e.contains("throughput_fd"), "{e}");
    }
}
