//! The live parts of `cargo xtask demo`: a run of our test host (directly
//! with our client, or through `mojo_proxy`), each scenario's result shown
//! as it arrives with its timing, and a short decoded view of the proxy's
//! capture.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

/// Numeric fields of a result line shown as its timing (at most this many).
const TIMING_FIELDS_SHOWN: usize = 3;

/// Runs `host` (a `mojo-test-host` command line), printing one line per
/// scenario: pass or fail, the wall time since the previous result, and the
/// host's own timing fields. Fails unless every scenario passed and the host
/// exited 0.
pub(crate) fn run_scenarios(mut host: Command) -> Result<(), String> {
    eprintln!("==> {host:?}");
    let mut child = host
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the test host: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or("the host's stdout is not piped")?;
    println!(
        "  {:<22} {:<6} {:>9}  host's timing",
        "scenario", "result", "wall ms"
    );
    let mut last = Instant::now();
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading the host's output: {e}"))?;
        let now = Instant::now();
        let wall = now.duration_since(last).as_secs_f64() * 1000.0;
        last = now;
        let Ok(result) = serde_json::from_str::<Value>(&line) else {
            println!("  {line}");
            continue;
        };
        let name = result["scenario"].as_str().unwrap_or("?");
        let pass = result["pass"] == Value::Bool(true);
        if pass {
            passed += 1;
        } else {
            failed += 1;
        }
        println!(
            "  {name:<22} {:<6} {wall:>9.1}  {}",
            if pass { "PASS" } else { "FAIL" },
            timing(&result)
        );
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the host: {e}"))?;
    println!("  {passed} passed, {failed} failed; host {status}");
    if failed == 0 && passed > 0 && status.success() {
        Ok(())
    } else {
        Err(format!(
            "the run did not pass; run it again to see the peers' logs: {host:?}"
        ))
    }
}

/// The host's timing fields of one result (`*_ms`, `*_s`, `*_us`, rates).
fn timing(result: &Value) -> String {
    let Some(fields) = result.as_object() else {
        return String::new();
    };
    fields
        .iter()
        .filter(|(key, value)| {
            value.is_number() && ["_ms", "_s", "_us"].iter().any(|unit| key.ends_with(unit))
        })
        .take(TIMING_FIELDS_SHOWN)
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints the first `frames` frames of each stream of one capture file
/// (`mojo-dump`), then its `--verify` summary.
pub(crate) fn show_capture(
    dump: &Path,
    file: &Path,
    protocol: &str,
    frames: usize,
) -> Result<(), String> {
    let output = Command::new(dump)
        .arg(format!("--protocol={protocol}"))
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run mojo-dump: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let name = file
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    println!("--- {name} ({protocol}) ---");
    let mut shown: Vec<(String, usize)> = Vec::new();
    for line in text.lines() {
        // The view's `  TIME chanN DIR #i LENB: description`.
        let mut words = line.split_whitespace();
        let (Some(_), Some(chan), Some(dir), Some(index)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if !index.starts_with('#') {
            continue;
        }
        let stream = format!("{chan} {dir}");
        let count = match shown.iter_mut().find(|(s, _)| *s == stream) {
            Some((_, count)) => count,
            None => {
                shown.push((stream.clone(), 0));
                &mut shown.last_mut().ok_or("no stream")?.1
            }
        };
        *count += 1;
        if *count <= frames {
            println!("  {}", shorten(line.trim_start(), 200));
        }
    }
    let verify = Command::new(dump)
        .args(["--verify", "-q"])
        .arg(format!("--protocol={protocol}"))
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run mojo-dump: {e}"))?;
    let summary = String::from_utf8_lossy(&verify.stdout);
    for line in summary.lines() {
        println!("  {line}");
    }
    if verify.status.success() {
        Ok(())
    } else {
        Err(format!("mojo-dump --verify failed on {}", file.display()))
    }
}

/// Prints what `mojo-dump --pipes` of both capture files says about the
/// pipes across the proxy: its pairing section (one line per pipe pair,
/// with how many messages were forwarded with the same bytes each way).
pub(crate) fn show_pipes(dump: &Path, capture: &Path) -> Result<(), String> {
    let output = Command::new(dump)
        .current_dir(capture)
        .args(["--pipes", "host_proxy.jsonl", "proxy_client.jsonl"])
        .output()
        .map_err(|e| format!("cannot run mojo-dump: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let pipes = text.lines().filter(|l| l.starts_with("pipe ")).count();
    println!("  {pipes} pipes in the two files; paired across the proxy:");
    for line in text
        .lines()
        .skip_while(|l| !l.starts_with("== pairing"))
        .skip(1)
    {
        println!("  {}", shorten(line, 200));
    }
    Ok(())
}

/// `text` cut to at most `max` characters, marked with `...`.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_shows_the_timed_fields_only() {
        let result: Value = serde_json::from_str(
            r#"{"scenario":"connect","pass":true,"first_rtt_ms":1.5,"from_spawn_ms":18,"label":"proxy","count":3}"#,
        )
        .unwrap();
        assert_eq!(timing(&result), "first_rtt_ms=1.5 from_spawn_ms=18");
        assert_eq!(shorten("abcdef", 3), "abc...");
        assert_eq!(shorten("abc", 3), "abc");
    }
}
