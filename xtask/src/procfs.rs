//! Another process seen through `/proc/PID`, shared by `cargo xtask bench`
//! and `cargo xtask soak`: one [`ProcSample`] (RSS, peak RSS, open fds, CPU
//! time, last CPU), the parsers of the `status`, `stat` and `schedstat`
//! texts behind it (pure, unit-tested), and the test host's `[host]
//! spawned pid N: ...` stderr line that names the process to watch.

use std::path::PathBuf;

/// One look at a process through `/proc/PID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ProcSample {
    /// `VmRSS` (KiB).
    pub(crate) rss_kb: u64,
    /// `VmHWM`, the peak RSS so far (KiB).
    pub(crate) hwm_kb: u64,
    /// Open fds (entries of `/proc/PID/fd`).
    pub(crate) fds: u64,
    /// CPU time of all its threads (ns, `schedstat`).
    pub(crate) cpu_ns: u64,
    /// The CPU it last ran on.
    pub(crate) cpu: Option<u32>,
}

/// Reads `/proc/PID` of a process; `None` once it is gone (or a zombie,
/// whose `status` has no `VmRSS`).
pub(crate) fn sample(pid: u32) -> Option<ProcSample> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let status = std::fs::read_to_string(proc.join("status")).ok()?;
    let (rss_kb, hwm_kb) = status_rss_hwm(&status)?;
    let fds = std::fs::read_dir(proc.join("fd")).ok()?.count() as u64;
    let cpu_ns = std::fs::read_dir(proc.join("task"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| schedstat_ns(&s))
        .sum();
    let cpu = std::fs::read_to_string(proc.join("stat"))
        .ok()
        .and_then(|s| stat_processor(&s));
    Some(ProcSample {
        rss_kb,
        hwm_kb,
        fds,
        cpu_ns,
        cpu,
    })
}

/// The state letter of process `pid` now (`None` once it is gone).
pub(crate) fn state(pid: u32) -> Option<char> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_state(&s))
}

/// The pid in the test host's `[host] spawned pid N: PROGRAM ...` stderr
/// line, when it launched `program`.
pub(crate) fn spawned_pid(line: &str, program: &str) -> Option<u32> {
    let rest = line.strip_prefix("[host] spawned pid ")?;
    let (pid, command) = rest.split_once(": ")?;
    (command.split_whitespace().next()? == program)
        .then(|| pid.parse().ok())
        .flatten()
}

/// `VmRSS` and `VmHWM` (KiB) of a `/proc/PID/status` text.
pub(crate) fn status_rss_hwm(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The run time (ns) of a `/proc/PID/task/TID/schedstat` text: its first
/// field (nanosecond resolution, where `stat`'s utime+stime are ticks).
pub(crate) fn schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The `processor` field (39th) of a `/proc/PID/stat` text; the fields are
/// counted after the command name's closing parenthesis, which may itself
/// hold spaces.
pub(crate) fn stat_processor(stat: &str) -> Option<u32> {
    let (_, after) = stat.rsplit_once(')')?;
    // After ")" comes field 3 (state); processor is field 39.
    after.split_whitespace().nth(39 - 3)?.parse().ok()
}

/// The state letter (3rd field) of a `/proc/PID/stat` text: `T` once the
/// process is stopped, `Z` once it has exited.
pub(crate) fn stat_state(stat: &str) -> Option<char> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().next()?.chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_stderr_and_proc_files_are_read() {
        let line = "[host] spawned pid 4242: /t/release/mojo_proxy --legacy-client-fd=5 ";
        assert_eq!(spawned_pid(line, "/t/release/mojo_proxy"), Some(4242));
        assert_eq!(spawned_pid(line, "/t/release/mojo-test-client"), None);
        assert_eq!(spawned_pid("mojo_proxy: warning", "mojo_proxy"), None);
        let status = "Name:\tmojo_proxy\nVmHWM:\t    2048 kB\nVmRSS:\t    1536 kB\n";
        assert_eq!(status_rss_hwm(status), Some((1536, 2048)));
        assert_eq!(status_rss_hwm("Name:\tx\n"), None);
        assert_eq!(schedstat_ns("566779 63214 1\n"), Some(566_779));
        let mut stat = String::from("77 (a b) S");
        for i in 4..=39 {
            stat.push_str(&format!(" {i}"));
        }
        stat.push_str(" 40 41");
        assert_eq!(stat_processor(&stat), Some(39));
    }

    #[test]
    fn the_stopped_state_is_read_after_the_command_name() {
        assert_eq!(stat_state("77 (a) b) T 1 2"), Some('T'));
        assert_eq!(stat_state("77 (host) S 1 2"), Some('S'));
        assert_eq!(stat_state("77 (host) Z 1 2"), Some('Z'));
        assert_eq!(stat_state("garbage"), None);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = sample(std::process::id()).unwrap();
        assert!(me.rss_kb > 0 && me.hwm_kb >= me.rss_kb, "{me:?}");
        assert!(me.fds >= 3, "{me:?}");
        // The harness's main thread is running or waiting for this test.
        let state = state(std::process::id());
        assert!(matches!(state, Some('R' | 'S')), "{state:?}");
        assert_eq!(super::state(u32::MAX), None);
    }
}
