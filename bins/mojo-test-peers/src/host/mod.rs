//! `mojo-test-host`'s work: run the scenarios of test-peers.md §3 and §2.1 on
//! pipe 0 in the reference's order and print one JSON line per result, as
//! `rm_host.cc` prints them (`config` first, then `connect`, `multi_attach`
//! when there are several pipes, the selected scenarios, `shutdown`).
//!
//! The per-scenario watchdog (`--timeout`) is a deadline that every wait of
//! a scenario honours: when it passes, [`run`] prints
//! `"pass":false,"error":"timeout"` for the current scenario, kills the
//! children and returns [`HostOutcome::TimedOut`] (exit status 3, the
//! reference's `_exit(3)`). The children themselves are behind [`Children`]
//! (real processes in [`crate::process`], threads in tests).
//!
//! The work is split by concern: this module holds the configuration, the
//! outcome and [`run`]; `runner` sequences `connect`, the scenarios and
//! `shutdown`; `io` is the reads and writes every scenario shares (under the
//! watchdog); `report` builds the result lines; `scenarios` are the §3 ones,
//! `c2h` the §2.1 client-to-host ones, `datapipe` the data pipe ones and
//! `leak` the reference host's `leak` (which the spec does not list).

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::system::{MessagePipe, MojoSystem};

pub use tput::{HANDLE_RUNS, HANDLE_SINK_SHM_SIZE, HANDLE_SINK_SIZE};

pub use leak::{
    DEFAULT_LEAK_ITERS, LEAK_ECHO_VALUE, LEAK_FD_TOLERANCE, LEAK_HANDLE_MESSAGES_PER_ROUND_TRIP,
    LEAK_MEMFD_SIZE, LEAK_MESSAGES_PER_ROUND_TRIP, LEAK_SETTLE_AFTER, LEAK_SETTLE_BEFORE,
    LEAK_SHMEM_SIZE, LEAK_WARMUP,
};

mod c2h;
mod datapipe;
mod io;
mod leak;
mod report;
mod runner;
mod scale;
mod scenarios;
mod tput;

/// Every scenario name this host runs, in the order it runs them (the
/// reference's `RUN` order: `leak`, then the data pipe ones, come last).
pub const RUN_ORDER: &[&str] = &[
    "echo_small",
    "echo_large",
    "subpipe",
    "shmem",
    "platform_handle",
    "close",
    "throughput",
    "latency",
    "subpipe_c2h",
    "shmem_c2h",
    "platform_handle_c2h",
    "pipe_roundtrip",
    "many_pipes",
    "leak",
    "datapipe",
    "datapipe_h2c",
    "datapipe_c2h",
];

/// How many scenarios at the end of [`RUN_ORDER`] run only when named
/// (`leak` and the data pipe ones).
const ONLY_WHEN_NAMED: usize = 4;

/// The scenarios run when `--scenarios` is not given (the reference's
/// list): every one of [`RUN_ORDER`] but `leak` and the data pipe ones.
pub const DEFAULT_SCENARIOS: &[&str] = RUN_ORDER.split_at(RUN_ORDER.len() - ONLY_WHEN_NAMED).0;

/// Scenarios of ours, not the spec's: run after [`RUN_ORDER`], only when
/// named in `--scenarios` (never by default). `scale`: `--scale-pipes=N`
/// pipes opened at once, then round trips and throughput with all of them
/// alive (`cargo xtask bench --scale`; see `host/scale.rs`);
/// `throughput_extra`: one-way runs of 1 MiB messages and of messages that
/// each carry one fd, shared buffer or new pipe (`cargo xtask bench`; see
/// `host/tput.rs`).
pub const OUR_SCENARIOS: &[&str] = &["scale", "throughput_extra"];

/// `--scale-pipes` when not given.
pub const DEFAULT_SCALE_PIPES: u32 = 1000;
/// Pipe ends per ScaleOpen message (far below the ports-per-message limits
/// of both protocols).
pub const SCALE_OPEN_BATCH: usize = 64;

/// Scenario names the reference host also knows (robustness runs with its
/// capture relay, a memory probe) that this host does not run.
pub const REFERENCE_ONLY_SCENARIOS: &[&str] = &["proxy_mem", "garbage", "kill_client", "kill_host"];

/// Echo sizes of `echo_small` (cycled).
pub const ECHO_SMALL_SIZES: [usize; 12] = [4, 5, 7, 8, 16, 31, 64, 100, 255, 256, 1000, 4096];
/// Warm-up round trips of `latency`.
pub const LATENCY_WARMUP: usize = 200;
/// Deadline for the client's report after a failed data pipe transfer.
pub const DATAPIPE_REPORT_GRACE: Duration = Duration::from_secs(3);
/// Deadline for the client's report after a failed subpipe_c2h / many_pipes.
pub const C2H_REPORT_GRACE: Duration = Duration::from_secs(2);
/// Deadline of the consumer probe's peer-closed wait.
pub const CONSUMER_PROBE_WAIT: Duration = Duration::from_secs(2);
/// How long the data pipe scenarios let an exiting proxy be observed.
pub const SETTLE_AFTER_DATAPIPE: Duration = Duration::from_millis(300);
/// Poll interval while waiting for a child to exit.
pub const CHILD_POLL: Duration = Duration::from_millis(2);

/// `throughput_extra`'s 1 MiB messages without `--quick`. The host writes
/// a run as one burst, with no flow control (Mojo has none), so the whole
/// run may be queued between it and a client that reads more slowly; 1,000
/// (1 GiB) made the stacks drop the pipe after about 245 MiB through the
/// proxy, the relay and `--direct=legacy` (Dec 4 2026), so a run stays well
/// below that.
pub const THROUGHPUT_1M_FULL_COUNT: u64 = 200;

/// Message counts and sizes of every scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    /// `echo_small` lock-step messages.
    pub echo_lockstep: usize,
    /// `echo_small` pipelined messages.
    pub echo_pipelined: usize,
    /// `echo_large` message sizes.
    pub echo_large_sizes: Vec<usize>,
    /// `subpipe`: messages queued before the end moves.
    pub subpipe_before: usize,
    /// `subpipe`: messages in all.
    pub subpipe_total: usize,
    /// `shmem` buffer size.
    pub shmem_size: u64,
    /// `platform_handle` memfd size.
    pub plat_size: u64,
    /// `throughput` (size, count) runs.
    pub throughput: Vec<(usize, u64)>,
    /// `throughput_extra` (ours): (size, count) runs of large messages.
    pub throughput_extra: Vec<(usize, u64)>,
    /// `throughput_extra`: messages of each handle run (one handle each).
    pub handle_sink: u64,
    /// `latency` (size, rounds) runs.
    pub latency: Vec<(usize, usize)>,
    /// `latency` warm-up round trips.
    pub latency_warmup: usize,
    /// `datapipe` total bytes.
    pub datapipe_total: u64,
    /// `datapipe` capacity.
    pub datapipe_capacity: u32,
    /// `subpipe_c2h` m (queued by the client).
    pub c2h_queued: u32,
    /// `subpipe_c2h` K (echoes).
    pub c2h_echoes: u32,
    /// `shmem_c2h` buffer size.
    pub shmem_c2h_size: u64,
    /// `platform_handle_c2h` memfd size.
    pub plat_c2h_size: u64,
    /// `pipe_roundtrip` Q (queued).
    pub roundtrip_queued: usize,
    /// `pipe_roundtrip` K (per direction).
    pub roundtrip_messages: usize,
    /// `many_pipes` N.
    pub many_pipes: u32,
    /// `scale` (ours): pipes opened (`--scale-pipes`).
    pub scale_pipes: u32,
    /// `scale`: 64 B round trips on the main pipe and again spread over
    /// the scale pipes, after [`LATENCY_WARMUP`] warm-up ones each.
    pub scale_rounds: usize,
    /// `scale`: 64 B messages of the one-way run spread over the pipes.
    pub scale_sink: u64,
    /// `leak` measured round trips (`--leak-iters`, the reference's
    /// switch; a negative value runs none, and fails, as there).
    pub leak_iters: i32,
}

impl Counts {
    /// The counts of the spec and the reference for `--quick` / `--vector`.
    pub fn new(quick: bool, vector: bool) -> Self {
        Self {
            echo_lockstep: if vector { 12 } else { 120 },
            echo_pipelined: if vector { 12 } else { 200 },
            echo_large_sizes: vec![1 << 20, 1 << 20, 1 << 20, 1 << 20, 4 << 20, 16 << 20],
            subpipe_before: if vector { 3 } else { 10 },
            subpipe_total: if vector { 6 } else { 50 },
            shmem_size: 1 << 20,
            plat_size: 64 * 1024,
            throughput: if quick {
                vec![(64, 2000), (4096, 2000), (65536, 400)]
            } else {
                vec![(64, 20000), (4096, 20000), (65536, 4000)]
            },
            throughput_extra: if quick {
                vec![(1 << 20, 100)]
            } else {
                vec![(1 << 20, THROUGHPUT_1M_FULL_COUNT)]
            },
            handle_sink: if quick { 1000 } else { 10000 },
            latency: if quick {
                vec![(64, 1000), (4096, 500)]
            } else {
                vec![(64, 10000), (4096, 5000)]
            },
            latency_warmup: LATENCY_WARMUP,
            datapipe_total: 1 << 20,
            datapipe_capacity: 64 * 1024,
            c2h_queued: if vector { 3 } else { 10 },
            c2h_echoes: if vector { 3 } else { 50 },
            shmem_c2h_size: 1 << 20,
            plat_c2h_size: 64 * 1024,
            roundtrip_queued: if vector { 2 } else { 5 },
            roundtrip_messages: if vector { 2 } else { 20 },
            many_pipes: if vector { 5 } else { 200 },
            scale_pipes: DEFAULT_SCALE_PIPES,
            scale_rounds: if quick { 1000 } else { 10000 },
            scale_sink: if quick { 2000 } else { 20000 },
            leak_iters: DEFAULT_LEAK_ITERS,
        }
    }
}

/// The figures of the `config` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLine {
    /// `profile`: "cros" for the libchrome legacy profile, "desktop".
    pub profile: String,
    /// `host_ipcz`: false only with `--direct=legacy`.
    pub host_ipcz: bool,
    /// `proxy`: the proxy path, empty with `--direct`.
    pub proxy: String,
    /// `client`: the client path.
    pub client: String,
    /// `direct`: "", "ipcz" or "legacy".
    pub direct: String,
    /// `num_attachments` (0 for a named attachment).
    pub num_attachments: u64,
    /// `inherit_broker` (`--mode=inherit`).
    pub inherit_broker: bool,
}

/// What the host runs and how.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// `label` of every line.
    pub label: String,
    /// Selected scenario names.
    pub scenarios: BTreeSet<String>,
    /// Per-scenario watchdog (`--timeout`; `None` for 0, as `alarm(0)`).
    pub timeout: Option<Duration>,
    /// Per-scenario deadline of the §2.1 scenarios (`--handle-timeout`).
    pub handle_timeout: Duration,
    /// Deadline of each data pipe scenario (`--datapipe-timeout`, default 10).
    pub datapipe_timeout: Duration,
    /// How long `shutdown` waits for each child (`--shutdown-wait`, default 15).
    pub shutdown_wait: Duration,
    /// No proxy (`--direct`): `proxy_crossings` are 0.
    pub direct: bool,
    /// Counts and sizes.
    pub counts: Counts,
    /// The `config` line.
    pub config_line: ConfigLine,
}

/// The host's connection, made by the connector code: the attached pipes
/// (pipe 0 first) and when things happened.
#[derive(Debug)]
pub struct Connection {
    /// The attached pipes, in attachment order.
    pub pipes: Vec<MessagePipe>,
    /// When the children were launched (`from_spawn_ms`).
    pub spawned_at: Instant,
    /// When the invitation was sent (`first_rtt_ms`).
    pub invitation_sent_at: Instant,
}

/// Which child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildRole {
    /// The proxy (absent with `--direct`).
    Proxy,
    /// The client.
    Client,
}

/// A child's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStatus {
    /// Never launched.
    NotLaunched,
    /// Still running.
    Running,
    /// Exited with `code` (128 + signal for a signal) at `at`.
    Exited {
        /// Exit status, or 128 + signal number.
        code: i32,
        /// When it was reaped.
        at: Instant,
    },
}

/// The host's children, as the scenarios see them.
pub trait Children {
    /// The child's state now (reaps it without blocking).
    fn status(&mut self, role: ChildRole) -> ChildStatus;
    /// SIGKILLs every child still running.
    fn kill_all(&mut self);
    /// The child's process id, if it is a process (`leak` reads its
    /// `/proc` entry); `None` by default (children that are threads).
    fn pid(&self, role: ChildRole) -> Option<u32> {
        let _ = role;
        None
    }
}

/// How [`run`] ended; [`exit_code`](Self::exit_code) is the process status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostOutcome {
    /// `shutdown` ran (whatever the scenarios' verdicts): exit 0.
    Completed,
    /// `connect` failed: exit 1 (the children are killed).
    ConnectFailed,
    /// A scenario's watchdog expired: exit 3 (the children are killed).
    TimedOut,
}

impl HostOutcome {
    /// The reference's exit status.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Completed => 0,
            Self::ConnectFailed => 1,
            Self::TimedOut => 3,
        }
    }
}

/// The watchdog expired inside a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut;

/// Runs everything: `config`, `connect`, `multi_attach`, the selected
/// scenarios, `shutdown`.
pub fn run<S: MojoSystem>(
    system: &S,
    connection: Connection,
    config: &HostConfig,
    children: &mut dyn Children,
    out: &mut dyn Write,
) -> HostOutcome {
    let Connection {
        pipes,
        spawned_at,
        invitation_sent_at,
    } = connection;
    let mut host = Host {
        sys: system,
        cfg: config,
        children,
        out,
        scenario: "startup",
        watchdog: config.timeout.map(|t| spawned_at + t),
    };
    let c = &config.config_line;
    let mut j = host.line("config", true);
    j.str("profile", &c.profile)
        .bool("host_ipcz", c.host_ipcz)
        .str("proxy", &c.proxy)
        .str("client", &c.client)
        .str("direct", &c.direct)
        .int("num_attachments", i128::from(c.num_attachments))
        .bool("relay", false)
        .bool("inherit_broker", c.inherit_broker);
    host.print(&j);
    match host.run_all(pipes, spawned_at, invitation_sent_at) {
        Ok(outcome) => outcome,
        Err(TimedOut) => {
            let mut j = host.line(host.scenario, false);
            j.error("timeout");
            host.print(&j);
            host.children.kill_all();
            HostOutcome::TimedOut
        }
    }
}

/// One run's state, shared by every scenario.
struct Host<'a, S: MojoSystem> {
    sys: &'a S,
    cfg: &'a HostConfig,
    children: &'a mut dyn Children,
    out: &'a mut dyn Write,
    /// The reference's `g_scenario`: named in a timeout line.
    scenario: &'static str,
    watchdog: Option<Instant>,
}
