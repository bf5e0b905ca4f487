//! The pure half of `cargo xtask soak`: whether the proxy's fd count and
//! RSS stayed flat over a series of once-a-second samples, and the summary
//! and JSON of a run.
//!
//! The first [`WARMUP_FRACTION`] of the samples (at least
//! [`WARMUP_MIN_SAMPLES`]) are warm-up: start-up, the first pipes, buffer
//! pools and allocator arenas filling. Of the samples after it, the first
//! and the last [`WINDOW_FRACTION`] are compared by their medians (a
//! median, so that handles in flight at the instant of one sample do not
//! count): the fd count must not grow at all ([`FD_GROWTH_TOLERANCE`]), RSS
//! by at most [`RSS_GROWTH_TOLERANCE_KB`]. A run with fewer than
//! [`MIN_MEASURED_SAMPLES`] samples after the warm-up is too short to judge
//! and fails too.

use serde_json::{Value, json};

use crate::bench::report::median;

/// Of all samples, the share that is warm-up.
pub(crate) const WARMUP_FRACTION: f64 = 0.10;
/// The least number of warm-up samples (10 s at one sample a second).
pub(crate) const WARMUP_MIN_SAMPLES: usize = 10;
/// The least number of samples after the warm-up for a verdict.
pub(crate) const MIN_MEASURED_SAMPLES: usize = 20;
/// The share of the measured samples in each compared window.
pub(crate) const WINDOW_FRACTION: f64 = 0.25;
/// How many fds the last window's median may exceed the first's by.
pub(crate) const FD_GROWTH_TOLERANCE: f64 = 0.0;
/// How many KiB the last window's median RSS may exceed the first's by:
/// room for allocator noise, far below what a leak of a few bytes per
/// message adds over a million messages.
pub(crate) const RSS_GROWTH_TOLERANCE_KB: f64 = 2048.0;

/// One sample of the proxy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    /// Seconds since the proxy was first sampled.
    pub(crate) t_s: f64,
    /// `VmRSS` (KiB).
    pub(crate) rss_kb: u64,
    /// Open fds.
    pub(crate) fds: u64,
}

/// What [`judge`] found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    /// Samples in all.
    pub(crate) samples: usize,
    /// Of those, warm-up.
    pub(crate) warmup: usize,
    /// Samples in each compared window.
    pub(crate) window: usize,
    /// Median fd count of the first and the last window.
    pub(crate) fds: (f64, f64),
    /// Least and most fds after the warm-up.
    pub(crate) fds_range: (u64, u64),
    /// Median RSS (KiB) of the first and the last window.
    pub(crate) rss_kb: (f64, f64),
    /// Least and most RSS (KiB) after the warm-up.
    pub(crate) rss_range_kb: (u64, u64),
    /// Why the run is not flat (empty: it is).
    pub(crate) failures: Vec<String>,
}

impl Verdict {
    /// Flat, and long enough to say so.
    pub(crate) fn pass(&self) -> bool {
        self.failures.is_empty()
    }
}

fn window_median(points: &[Point], value: fn(&Point) -> u64) -> f64 {
    let mut v: Vec<f64> = points.iter().map(|p| value(p) as f64).collect();
    median(&mut v).unwrap_or(0.0)
}

fn range(points: &[Point], value: fn(&Point) -> u64) -> (u64, u64) {
    let min = points.iter().map(value).min().unwrap_or(0);
    let max = points.iter().map(value).max().unwrap_or(0);
    (min, max)
}

/// The verdict on a series of samples, in time order.
pub(crate) fn judge(points: &[Point]) -> Verdict {
    let warmup = ((points.len() as f64 * WARMUP_FRACTION).ceil() as usize)
        .max(WARMUP_MIN_SAMPLES)
        .min(points.len());
    let measured = points.get(warmup..).unwrap_or(&[]);
    let window = ((measured.len() as f64 * WINDOW_FRACTION).ceil() as usize).max(1);
    let mut verdict = Verdict {
        samples: points.len(),
        warmup,
        window,
        fds: (0.0, 0.0),
        fds_range: range(measured, |p| p.fds),
        rss_kb: (0.0, 0.0),
        rss_range_kb: range(measured, |p| p.rss_kb),
        failures: Vec::new(),
    };
    if measured.len() < MIN_MEASURED_SAMPLES {
        verdict.failures.push(format!(
            "too short to judge: {} sample(s) after a warm-up of {warmup}, at least {MIN_MEASURED_SAMPLES} needed",
            measured.len()
        ));
        return verdict;
    }
    let first = measured.get(..window).unwrap_or(measured);
    let last = measured
        .get(measured.len().saturating_sub(window)..)
        .unwrap_or(measured);
    verdict.fds = (
        window_median(first, |p| p.fds),
        window_median(last, |p| p.fds),
    );
    verdict.rss_kb = (
        window_median(first, |p| p.rss_kb),
        window_median(last, |p| p.rss_kb),
    );
    let (f0, f1) = verdict.fds;
    if f1 - f0 > FD_GROWTH_TOLERANCE {
        verdict.failures.push(format!(
            "the fd count grew: median {f0} over the first {window} samples after warm-up, {f1} over the last {window} (tolerance {FD_GROWTH_TOLERANCE})"
        ));
    }
    let (r0, r1) = verdict.rss_kb;
    if r1 - r0 > RSS_GROWTH_TOLERANCE_KB {
        verdict.failures.push(format!(
            "RSS grew by {} KiB: median {r0} KiB over the first {window} samples after warm-up, {r1} KiB over the last {window} (tolerance {RSS_GROWTH_TOLERANCE_KB} KiB)",
            r1 - r0
        ));
    }
    verdict
}

/// The verdict as JSON (with its tolerances).
pub(crate) fn verdict_json(v: &Verdict) -> Value {
    json!({
        "pass": v.pass(),
        "failures": v.failures,
        "samples": v.samples,
        "warmup_samples": v.warmup,
        "window_samples": v.window,
        "fds_first_median": v.fds.0,
        "fds_last_median": v.fds.1,
        "fds_min": v.fds_range.0,
        "fds_max": v.fds_range.1,
        "rss_kb_first_median": v.rss_kb.0,
        "rss_kb_last_median": v.rss_kb.1,
        "rss_kb_min": v.rss_range_kb.0,
        "rss_kb_max": v.rss_range_kb.1,
        "fd_growth_tolerance": FD_GROWTH_TOLERANCE,
        "rss_growth_tolerance_kb": RSS_GROWTH_TOLERANCE_KB,
        "warmup_fraction": WARMUP_FRACTION,
        "window_fraction": WINDOW_FRACTION,
    })
}

/// The samples as JSON objects.
pub(crate) fn samples_json(points: &[Point]) -> Value {
    points
        .iter()
        .map(
            |p| json!({"t_s": (p.t_s * 1000.0).round() / 1000.0, "rss_kb": p.rss_kb, "fds": p.fds}),
        )
        .collect()
}

/// Rows of the series table: the sample nearest each tenth of the run
/// (and the last one).
pub(crate) fn series_rows(points: &[Point]) -> Vec<Point> {
    let Some(last) = points.len().checked_sub(1) else {
        return Vec::new();
    };
    let mut idx: Vec<usize> = (0..10).map(|d| d * last / 10).collect();
    idx.push(last);
    idx.dedup();
    idx.iter().filter_map(|&i| points.get(i).copied()).collect()
}

/// The short summary printed at the end of a run.
pub(crate) fn summary(v: &Verdict, points: &[Point]) -> String {
    let mut out = String::from("     t (s)   RSS (KiB)   fds\n");
    for p in series_rows(points) {
        out.push_str(&format!("{:>10.0} {:>11} {:>5}\n", p.t_s, p.rss_kb, p.fds));
    }
    out.push_str(&format!(
        "{} samples, {} of them warm-up; windows of {} samples after it\n",
        v.samples, v.warmup, v.window
    ));
    out.push_str(&format!(
        "fds: median {} -> {} (range {}..{} after warm-up; tolerance +{FD_GROWTH_TOLERANCE})\n",
        v.fds.0, v.fds.1, v.fds_range.0, v.fds_range.1
    ));
    out.push_str(&format!(
        "RSS: median {} -> {} KiB (range {}..{} after warm-up; tolerance +{RSS_GROWTH_TOLERANCE_KB} KiB)\n",
        v.rss_kb.0, v.rss_kb.1, v.rss_range_kb.0, v.rss_range_kb.1
    ));
    out.push_str(if v.pass() {
        "verdict: flat\n"
    } else {
        "verdict: NOT flat\n"
    });
    for f in &v.failures {
        out.push_str(&format!("  {f}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` samples a second apart, from `f(i)` = (rss_kb, fds).
    fn series(n: usize, f: impl Fn(usize) -> (u64, u64)) -> Vec<Point> {
        (0..n)
            .map(|i| {
                let (rss_kb, fds) = f(i);
                Point {
                    t_s: i as f64,
                    rss_kb,
                    fds,
                }
            })
            .collect()
    }

    #[test]
    fn a_flat_series_with_noise_and_handles_in_flight_passes() {
        // Start-up growth during the warm-up, then a level with noise and
        // now and then a sample that caught fds in flight.
        let s = series(600, |i| {
            let rss = if i < 30 {
                4000 + 100 * i as u64
            } else {
                7000 + (i as u64 * 37 % 500)
            };
            let fds = if i < 5 {
                6
            } else {
                11 + u64::from(i % 17 == 0) * 2
            };
            (rss, fds)
        });
        let v = judge(&s);
        assert!(v.pass(), "{v:?}");
        assert_eq!(v.warmup, 60);
        assert_eq!(v.window, 135);
        assert_eq!(v.fds, (11.0, 11.0));
        assert_eq!(v.fds_range, (11, 13));
        assert!(summary(&v, &s).contains("verdict: flat"));
        assert_eq!(verdict_json(&v)["pass"], true);
    }

    #[test]
    fn a_growing_fd_count_fails() {
        // One fd more every 50 s: 12 over a 600 s run.
        let s = series(600, |i| (7000, 11 + i as u64 / 50));
        let v = judge(&s);
        assert!(!v.pass());
        assert!(v.failures[0].contains("the fd count grew"), "{v:?}");
        assert!(v.fds.1 > v.fds.0);
        assert!(summary(&v, &s).contains("NOT flat"));
        // Even a single fd held for good after the first window fails.
        let s = series(100, |i| (7000, if i < 60 { 11 } else { 12 }));
        assert!(!judge(&s).pass());
    }

    #[test]
    fn a_growing_rss_fails_and_a_small_drift_does_not() {
        // 10 KiB a second: 6 MB over the run.
        let s = series(600, |i| (7000 + 10 * i as u64, 11));
        let v = judge(&s);
        assert!(!v.pass());
        assert!(v.failures[0].starts_with("RSS grew by"), "{v:?}");
        // 2 KiB a second stays within the tolerance between the windows'
        // medians (about 400 s apart).
        let s = series(600, |i| (7000 + 2 * i as u64, 11));
        assert!(judge(&s).pass());
        // RSS that falls is no leak.
        let s = series(600, |i| (9000 - 2 * i as u64, 11));
        assert!(judge(&s).pass());
    }

    #[test]
    fn too_few_samples_cannot_pass() {
        let v = judge(&series(25, |_| (7000, 11)));
        assert!(!v.pass());
        assert!(v.failures[0].starts_with("too short to judge"), "{v:?}");
        assert!(!judge(&[]).pass());
        assert!(judge(&series(30, |_| (7000, 11))).pass());
    }

    #[test]
    fn the_series_table_takes_every_tenth_and_the_last() {
        let s = series(101, |i| (i as u64, 1));
        let rows: Vec<u64> = series_rows(&s).iter().map(|p| p.rss_kb).collect();
        assert_eq!(rows, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        assert_eq!(series_rows(&series(3, |i| (i as u64, 1))).len(), 3);
        assert!(series_rows(&[]).is_empty());
        assert_eq!(
            samples_json(&s[..1]),
            json!([{"t_s": 0.0, "rss_kb": 0, "fds": 1}])
        );
    }
}
