//! The host's result lines: building and printing them, and the figures
//! they share (milliseconds, joined errors, a child's exit state).

use std::time::{Duration, Instant};

use super::{ChildRole, ChildStatus, Host};
use crate::json::JsonLine;
use crate::system::MojoSystem;

/// A duration in milliseconds, as the result lines give it.
pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Appends `e` to a scenario's error text (`; ` between errors).
pub(super) fn add_err(err: &mut String, e: &str) {
    if e.is_empty() {
        return;
    }
    if !err.is_empty() {
        err.push_str("; ");
    }
    err.push_str(e);
}

impl<S: MojoSystem> Host<'_, S> {
    /// A result line of this run (its `label`).
    pub(super) fn line(&self, scenario: &str, pass: bool) -> JsonLine {
        JsonLine::new(scenario, &self.cfg.label, pass)
    }

    /// Prints a result line and flushes it at once (a watchdog exit must not lose it).
    pub(super) fn print(&mut self, j: &JsonLine) {
        let _ = writeln!(self.out, "{}", j.finish());
        let _ = self.out.flush();
    }

    /// Adds `<prefix>_state` and `<prefix>_exit_ms` (relative to `t0`) for a child.
    pub(super) fn add_proc_state(
        &mut self,
        j: &mut JsonLine,
        prefix: &str,
        role: ChildRole,
        t0: Instant,
    ) {
        match self.status(role) {
            ChildStatus::NotLaunched => {}
            ChildStatus::Running => {
                j.str(&format!("{prefix}_state"), "running");
            }
            ChildStatus::Exited { code, at } => {
                let desc = if code >= 128 {
                    format!("signal:{}", code - 128)
                } else {
                    format!("exit:{code}")
                };
                j.str(&format!("{prefix}_state"), &desc);
                let since = if at >= t0 { ms(at - t0) } else { -ms(t0 - at) };
                j.num(&format!("{prefix}_exit_ms"), since);
            }
        }
    }
}
