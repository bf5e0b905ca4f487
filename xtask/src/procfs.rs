//! Another process seen through `/proc/PID`, shared by `cargo xtask bench`
//! and `cargo xtask soak`: one [`ProcSample`] (RSS, peak RSS, open fds, CPU
//! time, last CPU), the parsers of the `status`, `stat` and `schedstat`
//! texts behind it (pure, unit-tested), the test host's `[host]
//! spawned pid N: ...` stderr line that names the process to watch, and
//! [`HostStderr`], the thread that reads the host's stderr while it runs.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;

/// Host stderr lines kept to explain a failed run.
pub(crate) const STDERR_TAIL: usize = 30;

/// The test host's stderr, read on a thread until it closes: the pid of
/// the hop it spawned (its `spawned pid` line) arrives on [`Self::pids`],
/// every line is shown to the caller's `on_line`, and the last
/// [`STDERR_TAIL`] lines are kept for [`Self::finish`].
pub(crate) struct HostStderr {
    /// Pids of `[host] spawned pid N: PROGRAM` lines for the watched program.
    pub(crate) pids: Receiver<u32>,
    thread: JoinHandle<VecDeque<String>>,
}

impl HostStderr {
    /// Starts reading `stderr`, watching for the spawn of `program` (none:
    /// no pid is looked for).
    pub(crate) fn spawn(
        stderr: impl Read + Send + 'static,
        program: Option<String>,
        mut on_line: impl FnMut(&str) + Send + 'static,
    ) -> Self {
        let (pid_tx, pids) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut tail = VecDeque::with_capacity(STDERR_TAIL);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(pid) = program.as_deref().and_then(|p| spawned_pid(&line, p)) {
                    let _ = pid_tx.send(pid);
                }
                on_line(&line);
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            tail
        });
        Self { pids, thread }
    }

    /// Waits for the stderr to close; its last lines.
    pub(crate) fn finish(self) -> Vec<String> {
        self.thread.join().map(Vec::from).unwrap_or_default()
    }
}

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
    fn host_stderr_keeps_the_tail_and_finds_the_pid() {
        let mut text = String::from("[host] spawned pid 7: /bin/proxy --x\n");
        for i in 0..STDERR_TAIL + 5 {
            text.push_str(&format!("line {i}\n"));
        }
        let (tx, seen) = mpsc::channel();
        let reader = HostStderr::spawn(
            std::io::Cursor::new(text.into_bytes()),
            Some("/bin/proxy".into()),
            move |l| {
                let _ = tx.send(l.len());
            },
        );
        let tail = reader.pids.recv().map(|pid| (pid, reader.finish()));
        let (pid, tail) = tail.unwrap();
        assert_eq!(pid, 7);
        assert_eq!(tail.len(), STDERR_TAIL);
        assert_eq!(tail[0], "line 5");
        assert_eq!(tail.last().unwrap(), &format!("line {}", STDERR_TAIL + 4));
        assert_eq!(seen.iter().count(), STDERR_TAIL + 6);
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
