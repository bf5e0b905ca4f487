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

use std::collections::BTreeSet;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::stat::{SFlag, fstat};
use nix::sys::uio::{pread, pwrite};

use crate::json::JsonLine;
use crate::protocol::{
    self, CLIENT_MARK, CLIENT_PIPE_MSG, Direction, Fnv, HOST_MARK, HOST_PIPE_MSG, Payload, op,
};
use crate::system::{
    BufferMapping, Handle, HandleKind, Message, MessagePipe, MojoError, MojoResult, MojoSystem,
    Signals, peer_closed, read_one, result_code, wait,
};

/// The scenarios run when `--scenarios` is not given (the reference's list).
pub const DEFAULT_SCENARIOS: &[&str] = &[
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
];

/// Every scenario name this host runs, in the order it runs them (the
/// reference's `RUN` order: the data pipe ones come last).
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
    "datapipe",
    "datapipe_h2c",
    "datapipe_c2h",
];

/// Scenario names the reference host also knows (robustness runs with its
/// capture relay, leak and memory probes) that this host does not run.
pub const REFERENCE_ONLY_SCENARIOS: &[&str] =
    &["leak", "proxy_mem", "garbage", "kill_client", "kill_host"];

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

struct Host<'a, S: MojoSystem> {
    sys: &'a S,
    cfg: &'a HostConfig,
    children: &'a mut dyn Children,
    out: &'a mut dyn Write,
    /// The reference's `g_scenario`: named in a timeout line.
    scenario: &'static str,
    watchdog: Option<Instant>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn add_err(err: &mut String, e: &str) {
    if e.is_empty() {
        return;
    }
    if !err.is_empty() {
        err.push_str("; ");
    }
    err.push_str(e);
}

/// The earlier of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

impl<S: MojoSystem> Host<'_, S> {
    fn line(&self, scenario: &str, pass: bool) -> JsonLine {
        JsonLine::new(scenario, &self.cfg.label, pass)
    }

    fn print(&mut self, j: &JsonLine) {
        let _ = writeln!(self.out, "{}", j.finish());
        let _ = self.out.flush();
    }

    fn arm(&mut self, scenario: &'static str) {
        self.scenario = scenario;
        self.watchdog = self.cfg.timeout.map(|t| Instant::now() + t);
    }

    fn check_watchdog(&self) -> Result<(), TimedOut> {
        match self.watchdog {
            Some(w) if Instant::now() >= w => Err(TimedOut),
            _ => Ok(()),
        }
    }

    /// Was a `DEADLINE_EXCEEDED` for `deadline` the watchdog's?
    fn watchdog_hit(&self, deadline: Option<Instant>) -> bool {
        match (self.watchdog, deadline) {
            (Some(w), Some(d)) => w < d && Instant::now() >= w,
            (Some(w), None) => Instant::now() >= w,
            (None, _) => false,
        }
    }

    fn write(&self, pipe: &MessagePipe, bytes: &[u8], handles: Vec<Handle>) -> MojoResult<()> {
        self.sys.write_message(pipe, bytes, handles)
    }

    fn send(&self, pipe: &MessagePipe, p: &Payload, handles: Vec<Handle>) -> MojoResult<()> {
        self.write(pipe, &p.encode(), handles)
    }

    /// `ReadOneDeadline` under the watchdog.
    fn read(
        &self,
        pipe: &MessagePipe,
        deadline: Option<Instant>,
    ) -> Result<MojoResult<Message>, TimedOut> {
        let r = read_one(self.sys, pipe, earliest(deadline, self.watchdog));
        if r.as_ref().err() == Some(&MojoError::DeadlineExceeded) && self.watchdog_hit(deadline) {
            return Err(TimedOut);
        }
        Ok(r)
    }

    /// `WaitDeadline` under the watchdog.
    fn wait(
        &self,
        h: crate::system::MojoHandle,
        signals: Signals,
        deadline: Option<Instant>,
    ) -> Result<MojoResult<()>, TimedOut> {
        let r = wait(self.sys, h, signals, earliest(deadline, self.watchdog));
        if r == Err(MojoError::DeadlineExceeded) && self.watchdog_hit(deadline) {
            return Err(TimedOut);
        }
        Ok(r)
    }

    /// The reference's `ReadExpect` (no deadline but the watchdog).
    fn read_expect(
        &self,
        pipe: &MessagePipe,
        opcode: u32,
        err: &mut String,
    ) -> Result<Option<Message>, TimedOut> {
        match self.read(pipe, None)? {
            Err(e) => {
                *err = format!("read failed r={}", e.code());
                Ok(None)
            }
            Ok(m) if protocol::opcode_of(&m.bytes) != opcode => {
                *err = format!(
                    "unexpected op {} (wanted {opcode}) detail {},{}",
                    protocol::opcode_of(&m.bytes),
                    protocol::get_u64(&m.bytes, 4),
                    protocol::get_u64(&m.bytes, 12)
                );
                Ok(None)
            }
            Ok(m) => Ok(Some(m)),
        }
    }

    /// The reference's `ReadExpectDeadline`.
    fn read_expect_deadline(
        &self,
        pipe: &MessagePipe,
        opcode: u32,
        err: &mut String,
        deadline: Instant,
        what: &str,
    ) -> Result<Option<Message>, TimedOut> {
        match self.read(pipe, Some(deadline))? {
            Err(MojoError::DeadlineExceeded) => {
                *err = format!("timeout waiting for {what}");
                Ok(None)
            }
            Err(e) => {
                *err = format!("read {what} failed r={}", e.code());
                Ok(None)
            }
            Ok(m) if protocol::opcode_of(&m.bytes) != opcode => {
                *err = format!(
                    "unexpected op {} (wanted {opcode} for {what}) detail {},{}",
                    protocol::opcode_of(&m.bytes),
                    protocol::get_u64(&m.bytes, 4),
                    protocol::get_u64(&m.bytes, 12)
                );
                Ok(None)
            }
            Ok(m) => Ok(Some(m)),
        }
    }

    /// Decodes a reply of the expected opcode strictly; a bad length adds
    /// an error (the reference would read missing fields as zero).
    fn decode(&self, m: &Message, err: &mut String) -> Option<Payload> {
        match Payload::decode(&m.bytes) {
            Ok(p) => Some(p),
            Err(e) => {
                add_err(err, &format!("malformed reply: {e}"));
                None
            }
        }
    }

    fn status(&mut self, role: ChildRole) -> ChildStatus {
        self.children.status(role)
    }

    fn add_proc_state(&mut self, j: &mut JsonLine, prefix: &str, role: ChildRole, t0: Instant) {
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

    fn settle(&mut self, max: Duration) {
        let end = Instant::now() + max;
        while Instant::now() < end {
            let proxy_done = self.status(ChildRole::Proxy) != ChildStatus::Running;
            let client_done = self.status(ChildRole::Client) != ChildStatus::Running;
            if proxy_done && client_done {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `WaitChild`: the exit code, -1 on timeout, -4 if never launched.
    fn wait_child(&mut self, role: ChildRole, timeout: Duration) -> Result<i64, TimedOut> {
        let t0 = Instant::now();
        loop {
            match self.status(role) {
                ChildStatus::NotLaunched => return Ok(-4),
                ChildStatus::Exited { code, .. } => return Ok(i64::from(code)),
                ChildStatus::Running => {}
            }
            if t0.elapsed() > timeout {
                return Ok(-1);
            }
            self.check_watchdog()?;
            std::thread::sleep(CHILD_POLL);
        }
    }

    fn run_all(
        &mut self,
        pipes: Vec<MessagePipe>,
        spawned_at: Instant,
        invitation_sent_at: Instant,
    ) -> Result<HostOutcome, TimedOut> {
        let Some(pipe) = pipes.first() else {
            let mut j = self.line("connect", false);
            j.error("no attached pipe");
            self.print(&j);
            self.children.kill_all();
            return Ok(HostOutcome::ConnectFailed);
        };
        self.scenario = "connect";
        let mut err = String::new();
        let _ = self.send(pipe, &Payload::Hello { index: 0 }, Vec::new());
        let ok = self.read_expect(pipe, op::HELLO, &mut err)?.is_some();
        let mut j = self.line("connect", ok);
        j.num("first_rtt_ms", ms(invitation_sent_at.elapsed()))
            .num("from_spawn_ms", ms(spawned_at.elapsed()))
            .error(&err);
        self.print(&j);
        if !ok {
            self.children.kill_all();
            return Ok(HostOutcome::ConnectFailed);
        }
        if pipes.len() > 1 {
            self.scenario = "multi_attach";
            self.multi_attach(&pipes)?;
        }
        for &name in RUN_ORDER {
            if !self.cfg.scenarios.contains(name) {
                continue;
            }
            self.arm(name);
            match name {
                "echo_small" => self.echo_small(pipe)?,
                "echo_large" => self.echo_large(pipe)?,
                "subpipe" => self.subpipe(pipe)?,
                "shmem" => self.shmem(pipe)?,
                "platform_handle" => self.platform_handle(pipe)?,
                "close" => self.close(pipe)?,
                "throughput" => self.throughput(pipe)?,
                "latency" => self.latency(pipe)?,
                "subpipe_c2h" => self.subpipe_c2h(pipe)?,
                "shmem_c2h" => {
                    self.shmem_c2h(pipe, false)?;
                    self.scenario = "shmem_c2h_readonly";
                    self.shmem_c2h(pipe, true)?;
                }
                "platform_handle_c2h" => self.platform_handle_c2h(pipe)?,
                "pipe_roundtrip" => {
                    self.pipe_roundtrip(pipe, 1, "pipe_roundtrip")?;
                    self.scenario = "pipe_roundtrip_5hop";
                    self.pipe_roundtrip(pipe, 5, "pipe_roundtrip_5hop")?;
                }
                "many_pipes" => self.many_pipes(pipe)?,
                "datapipe" => {
                    self.scenario = "datapipe_h2c";
                    self.datapipe_h2c(pipe)?;
                    self.scenario = "datapipe_c2h";
                    self.datapipe_c2h(pipe)?;
                }
                "datapipe_h2c" => self.datapipe_h2c(pipe)?,
                "datapipe_c2h" => self.datapipe_c2h(pipe)?,
                _ => {}
            }
        }
        // shutdown: close our pipes; the client and the proxy must exit 0.
        self.arm("shutdown");
        let t0 = Instant::now();
        drop(pipes);
        let wait = self.cfg.shutdown_wait;
        let client_rc = self.wait_child(ChildRole::Client, wait)?;
        let t_client = t0.elapsed();
        let has_proxy = self.status(ChildRole::Proxy) != ChildStatus::NotLaunched;
        let proxy_rc = if has_proxy {
            self.wait_child(ChildRole::Proxy, wait)?
        } else {
            0
        };
        let t_proxy = t0.elapsed();
        if client_rc == -1 || proxy_rc == -1 {
            self.children.kill_all();
        }
        let mut j = self.line("shutdown", client_rc == 0 && proxy_rc == 0);
        j.int("client_exit", i128::from(client_rc))
            .num("client_exit_ms", ms(t_client));
        if has_proxy {
            j.int("proxy_exit", i128::from(proxy_rc))
                .num("proxy_exit_ms", ms(t_proxy));
        }
        self.print(&j);
        Ok(HostOutcome::Completed)
    }

    fn multi_attach(&mut self, pipes: &[MessagePipe]) -> Result<(), TimedOut> {
        let mut ok = 0usize;
        let mut err = String::new();
        for (i, p) in pipes.iter().enumerate() {
            let _ = self.send(p, &Payload::Hello { index: i as u32 }, Vec::new());
        }
        for (i, p) in pipes.iter().enumerate() {
            if let Some(m) = self.read_expect(p, op::HELLO, &mut err)? {
                if protocol::get_u32(&m.bytes, 4) as usize == i {
                    ok += 1;
                }
            }
        }
        let mut j = self.line("multi_attach", ok == pipes.len());
        j.int("pipes", pipes.len() as i128)
            .int("ok", ok as i128)
            .error(&err);
        self.print(&j);
        Ok(())
    }

    fn echo_small(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let c = &self.cfg.counts;
        let (lock, piped) = (c.echo_lockstep, c.echo_pipelined);
        let mut seed: u64 = 0x1234567;
        let (mut n, mut bad) = (0usize, 0usize);
        let mut err = String::new();
        let t0 = Instant::now();
        for i in 0..lock {
            let m = protocol::random_payload(op::ECHO, ECHO_SMALL_SIZES[i % 12], &mut seed);
            let _ = self.write(pipe, &m, Vec::new());
            let Some(got) = self.read_expect(pipe, op::ECHO, &mut err)? else {
                bad += 1;
                break;
            };
            n += 1;
            if got.bytes != m {
                bad += 1;
            }
        }
        let mut sent = Vec::with_capacity(piped);
        for i in 0..piped {
            let m = protocol::random_payload(op::ECHO, ECHO_SMALL_SIZES[(i * 5) % 12], &mut seed);
            let _ = self.write(pipe, &m, Vec::new());
            sent.push(m);
        }
        for m in &sent {
            if !err.is_empty() {
                break;
            }
            let Some(got) = self.read_expect(pipe, op::ECHO, &mut err)? else {
                bad += 1;
                break;
            };
            n += 1;
            if got.bytes != *m {
                bad += 1;
            }
        }
        let mut j = self.line("echo_small", bad == 0 && n == lock + piped);
        j.int("messages", n as i128)
            .int("mismatches", bad as i128)
            .num("elapsed_s", t0.elapsed().as_secs_f64())
            .error(&err);
        self.print(&j);
        Ok(())
    }

    fn echo_large(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let sizes = self.cfg.counts.echo_large_sizes.clone();
        let mut seed: u64 = 0x9876543;
        let (mut bad, mut n) = (0usize, 0usize);
        let mut err = String::new();
        let mut times = String::from("[");
        for (i, &size) in sizes.iter().enumerate() {
            let m = protocol::random_payload(op::ECHO, size, &mut seed);
            let t0 = Instant::now();
            let _ = self.write(pipe, &m, Vec::new());
            let Some(got) = self.read_expect(pipe, op::ECHO, &mut err)? else {
                bad += 1;
                break;
            };
            let dt = t0.elapsed();
            n += 1;
            if got.bytes != m {
                bad += 1;
            }
            times.push_str(&format!(
                "{}{{\"size\":{size},\"rtt_ms\":{:.3}}}",
                if i > 0 { "," } else { "" },
                ms(dt)
            ));
        }
        times.push(']');
        let mut j = self.line("echo_large", bad == 0 && n == sizes.len());
        j.int("messages", n as i128)
            .int("mismatches", bad as i128)
            .raw("rtts", &times)
            .error(&err);
        self.print(&j);
        Ok(())
    }

    fn subpipe(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let (before, total) = (
            self.cfg.counts.subpipe_before,
            self.cfg.counts.subpipe_total,
        );
        let mut err = String::new();
        let Ok((h0, h1)) = self.sys.create_message_pipe() else {
            let mut j = self.line("subpipe", false);
            j.int("echoed", 0)
                .int("mismatches", 0)
                .int("client_count", 0)
                .error("create pipe failed");
            self.print(&j);
            return Ok(());
        };
        let mut seed: u64 = 42;
        let mut sent = Vec::with_capacity(total);
        for i in 0..before {
            sent.push(protocol::random_payload(op::ECHO, 16 + i * 100, &mut seed));
            let _ = self.write(&h0, sent.last().map_or(&[][..], |v| v), Vec::new());
        }
        let wr = self.send(pipe, &Payload::SubPipe, vec![h1.into()]);
        for i in before..total {
            sent.push(protocol::random_payload(op::ECHO, 16 + i * 100, &mut seed));
            let _ = self.write(&h0, sent.last().map_or(&[][..], |v| v), Vec::new());
        }
        let (mut n, mut bad) = (0usize, 0usize);
        for m in &sent {
            let Some(got) = self.read_expect(&h0, op::ECHO, &mut err)? else {
                break;
            };
            n += 1;
            if got.bytes != *m {
                bad += 1;
            }
        }
        drop(h0);
        let mut client_count = 0u64;
        if err.is_empty() {
            if let Some(m) = self.read_expect(pipe, op::SUB_PIPE_DONE, &mut err)? {
                if let Some(Payload::SubPipeDone { echoed }) = self.decode(&m, &mut err) {
                    client_count = echoed;
                }
            }
        }
        let pass =
            wr.is_ok() && n == total && bad == 0 && client_count == total as u64 && err.is_empty();
        let mut j = self.line("subpipe", pass);
        j.int("echoed", n as i128)
            .int("mismatches", bad as i128)
            .int("client_count", i128::from(client_count))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    fn shmem(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let size = self.cfg.counts.shmem_size;
        let mut err = String::new();
        let (mut ok, mut got_fnv, mut expect, mut pattern_bad) = (false, 0u64, 0u64, 0u64);
        let created = self
            .sys
            .create_shared_buffer(size)
            .and_then(|b| self.sys.map_buffer(&b, 0, size).map(|m| (b, m)));
        match created {
            Err(e) => err = format!("create/map failed {}", e.code()),
            Ok((buf, mut map)) => {
                let content = protocol::pattern_bytes(size as usize, protocol::shmem_host_byte);
                let _ = map.write(0, &content);
                expect = protocol::fnv1a(&content[..(size / 2) as usize]);
                let wr = self.send(pipe, &Payload::Shmem { size }, vec![buf.into()]);
                if let Err(e) = wr {
                    err = format!("write failed {}", e.code());
                } else if let Some(m) = self.read_expect(pipe, op::SHMEM_ACK, &mut err)? {
                    if let Some(Payload::ShmemAck { fnv }) = self.decode(&m, &mut err) {
                        got_fnv = fnv;
                    }
                    let mut second = vec![0u8; (size - size / 2) as usize];
                    if map.read((size / 2) as usize, &mut second).is_err() {
                        pattern_bad = second.len() as u64;
                    } else {
                        pattern_bad = second
                            .iter()
                            .zip(size / 2..)
                            .filter(|&(&b, i)| b != protocol::shmem_client_byte(i))
                            .count() as u64;
                    }
                    ok = got_fnv == expect && pattern_bad == 0 && err.is_empty();
                }
            }
        }
        let mut j = self.line("shmem", ok);
        j.int("size", i128::from(size))
            .bool("checksum_match", got_fnv == expect && got_fnv != 0)
            .int("client_write_mismatches", i128::from(pattern_bad))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    fn platform_handle(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let size = self.cfg.counts.plat_size;
        let mut err = String::new();
        let (mut ok, mut fnv_ok, mut mark_ok, mut pipe_ok) = (false, false, false, false);
        let content = protocol::pattern_bytes(size as usize, protocol::memfd_host_byte);
        match make_memfd_and_pipe("rm_host_memfd", &content) {
            Err(e) => err = format!("memfd/pipe failed {e}"),
            Ok((memfd, r, w)) => {
                let handles = memfd
                    .try_clone()
                    .map_err(|_| MojoError::ResourceExhausted)
                    .and_then(|d| self.sys.wrap_platform_handle(d))
                    .and_then(|h0| {
                        self.sys
                            .wrap_platform_handle(w)
                            .map(|h1| vec![h0.into(), h1.into()])
                    });
                let wr = handles.and_then(|hs| self.send(pipe, &Payload::PlatHandle { size }, hs));
                if let Err(e) = wr {
                    err = format!("write failed {}", e.code());
                } else if let Some(m) = self.read_expect(pipe, op::PLAT_HANDLE_ACK, &mut err)? {
                    if let Some(Payload::PlatHandleAck { fnv, .. }) = self.decode(&m, &mut err) {
                        fnv_ok = fnv == protocol::fnv1a(&content);
                    }
                    let mut mark = [0u8; CLIENT_MARK.len()];
                    mark_ok = matches!(pread(memfd.as_fd(), &mut mark, size as i64), Ok(n) if n == mark.len())
                        && mark == CLIENT_MARK;
                    let _ = fcntl(r.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
                    let mut pb = [0u8; 63];
                    pipe_ok = matches!(nix::unistd::read(&r, &mut pb), Ok(n) if n > 0 && &pb[..n] == CLIENT_PIPE_MSG);
                    ok = fnv_ok && mark_ok && pipe_ok;
                }
            }
        }
        let mut j = self.line("platform_handle", ok);
        j.bool("memfd_checksum_ok", fnv_ok)
            .bool("memfd_client_write_ok", mark_ok)
            .bool("pipe_fd_ok", pipe_ok)
            .error(&err);
        self.print(&j);
        Ok(())
    }

    fn close(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        // close_host_to_client
        {
            let mut err = String::new();
            let (mut ok, mut res, mut latency) = (false, 999u64, 0.0);
            match self.sys.create_message_pipe() {
                Err(e) => err = format!("create pipe failed {}", e.code()),
                Ok((h0, h1)) => {
                    let _ = self.send(pipe, &Payload::CloseWatch, vec![h1.into()]);
                    ok = self
                        .read_expect(pipe, op::CLOSE_WATCH_READY, &mut err)?
                        .is_some();
                    let t0 = Instant::now();
                    drop(h0);
                    if ok {
                        match self.read(pipe, None)? {
                            Err(e) => {
                                err = format!("read failed r={}", e.code());
                                ok = false;
                                res = 0;
                            }
                            Ok(m) => {
                                res = protocol::get_u64(&m.bytes, 4);
                                if protocol::opcode_of(&m.bytes) != op::CLOSE_SEEN {
                                    err = format!(
                                        "unexpected op {} (wanted {}) detail {},{}",
                                        protocol::opcode_of(&m.bytes),
                                        op::CLOSE_SEEN,
                                        protocol::get_u64(&m.bytes, 4),
                                        protocol::get_u64(&m.bytes, 12)
                                    );
                                    ok = false;
                                } else if self.decode(&m, &mut err).is_none() {
                                    ok = false;
                                }
                            }
                        }
                    }
                    latency = ms(t0.elapsed());
                }
            }
            let mut j = self.line("close_host_to_client", ok && res == 0);
            j.int("client_wait_result", i128::from(res))
                .num("latency_ms", latency)
                .error(&err);
            self.print(&j);
        }
        // close_client_to_host
        {
            let (r, latency) = match self.sys.create_message_pipe() {
                Err(e) => (Err(e), 0.0),
                Ok((h0, h1)) => {
                    let t0 = Instant::now();
                    let _ = self.send(pipe, &Payload::CloseSelf, vec![h1.into()]);
                    let r = self.wait(h0.raw(), Signals::PEER_CLOSED, None)?;
                    (r, ms(t0.elapsed()))
                }
            };
            let mut j = self.line("close_client_to_host", r.is_ok());
            j.int("wait_result", i128::from(result_code(&r)))
                .num("latency_ms", latency);
            self.print(&j);
        }
        Ok(())
    }

    fn throughput(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        for (size, count) in self.cfg.counts.throughput.clone() {
            let start = Payload::SinkStart {
                count,
                size: size as u64,
            };
            let mut data = vec![0xabu8; size.max(4)];
            data[..4].copy_from_slice(&op::SINK_DATA.to_le_bytes());
            let t0 = Instant::now();
            let _ = self.send(pipe, &start, Vec::new());
            for _ in 0..count {
                let _ = self.write(pipe, &data, Vec::new());
            }
            let mut err = String::new();
            let ack = self.read_expect(pipe, op::SINK_ACK, &mut err)?;
            let dt = t0.elapsed().as_secs_f64();
            let (mut got, mut bytes, mut bad) = (0, 0, 0);
            let mut ok = false;
            if let Some(m) = ack {
                (got, bytes, bad) = (
                    protocol::get_u64(&m.bytes, 4),
                    protocol::get_u64(&m.bytes, 12),
                    protocol::get_u64(&m.bytes, 20),
                );
                ok = self.decode(&m, &mut err).is_some();
            }
            let mut j = self.line(
                &format!("throughput_{size}"),
                ok && got == count && bad == 0,
            );
            j.int("size", size as i128)
                .int("count", i128::from(count))
                .int("received", i128::from(got))
                .int("bytes", i128::from(bytes))
                .num("elapsed_s", dt)
                .num("msgs_per_s", count as f64 / dt)
                .num("mb_per_s", count as f64 * size as f64 / dt / 1e6)
                .error(&err);
            self.print(&j);
        }
        Ok(())
    }

    fn latency(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let warmup = self.cfg.counts.latency_warmup;
        for (size, rounds) in self.cfg.counts.latency.clone() {
            let mut m = vec![0x5au8; size.max(4)];
            m[..4].copy_from_slice(&op::ECHO.to_le_bytes());
            let mut err = String::new();
            let mut ns: Vec<u64> = Vec::with_capacity(rounds);
            for i in 0..warmup + rounds {
                let t0 = Instant::now();
                let _ = self.write(pipe, &m, Vec::new());
                if self.read_expect(pipe, op::ECHO, &mut err)?.is_none() {
                    break;
                }
                let dt = t0.elapsed().as_nanos() as u64;
                if i >= warmup {
                    ns.push(dt);
                }
            }
            ns.sort_unstable();
            let pct = |q: f64| -> f64 {
                if ns.is_empty() {
                    return 0.0;
                }
                let idx = ((q * ns.len() as f64) as usize).min(ns.len() - 1);
                ns[idx] as f64 / 1e3
            };
            let sum: f64 = ns.iter().map(|&v| v as f64).sum();
            let len = ns.len() as f64;
            let mut j = self.line(&format!("latency_{size}"), ns.len() == rounds);
            j.int("size", size as i128)
                .int("rounds", ns.len() as i128)
                .num("p50_us", pct(0.5))
                .num("p90_us", pct(0.9))
                .num("p99_us", pct(0.99))
                .num("p999_us", pct(0.999))
                .num("max_us", ns.last().map_or(0.0, |&v| v as f64 / 1e3))
                .num("mean_us", if ns.is_empty() { 0.0 } else { sum / len / 1e3 })
                .num(
                    "round_trips_per_s",
                    if ns.is_empty() { 0.0 } else { 1e9 * len / sum },
                )
                .error(&err);
            self.print(&j);
        }
        Ok(())
    }
}

/// A memfd holding `content` and an OS pipe: (memfd, read end, write end).
fn make_memfd_and_pipe(
    name: &str,
    content: &[u8],
) -> Result<(OwnedFd, OwnedFd, OwnedFd), nix::errno::Errno> {
    let memfd = memfd_create(name, MFdFlags::MFD_CLOEXEC)?;
    let mut at = 0usize;
    while at < content.len() {
        at += pwrite(memfd.as_fd(), &content[at..], at as i64)?;
    }
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    Ok((memfd, r, w))
}

fn is_regular_file(fd: &OwnedFd) -> bool {
    fstat(fd.as_fd())
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG)
}

fn is_fifo(fd: &OwnedFd) -> bool {
    fstat(fd.as_fd())
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFIFO)
}

fn kind_name(k: HandleKind) -> &'static str {
    match k {
        HandleKind::MessagePipe => "message pipe",
        HandleKind::SharedBuffer => "shared buffer",
        HandleKind::PlatformHandle => "platform handle",
        HandleKind::DataPipeProducer => "data pipe producer",
        HandleKind::DataPipeConsumer => "data pipe consumer",
    }
}

/// Section 2.1 scenarios and the data pipe ones.
impl<S: MojoSystem> Host<'_, S> {
    fn subpipe_c2h(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.handle_timeout;
        let (queued, echoes) = (self.cfg.counts.c2h_queued, self.cfg.counts.c2h_echoes);
        let mut err = String::new();
        let _ = self.send(pipe, &Payload::SubPipeC2H { count: queued }, Vec::new());
        let mut handles_in_msg: i128 = -1;
        let (mut queued_ok, mut echoed, mut mismatches, mut client_count) =
            (0u32, 0u32, 0u32, 0u64);
        let (mut got_pipe, mut done) = (false, false);
        if let Some(mut ready) = self.read_expect_deadline(
            pipe,
            op::SUB_PIPE_C2H_READY,
            &mut err,
            deadline,
            "kSubPipeC2HReady",
        )? {
            handles_in_msg = ready.handles.len() as i128;
            let b = match <[Handle; 1]>::try_from(std::mem::take(&mut ready.handles)) {
                Ok([h]) => match h.into_message_pipe() {
                    Ok(b) => Some(b),
                    Err(other) => {
                        err = format!("ready message carries a {}", kind_name(other.kind()));
                        None
                    }
                },
                Err(hs) => {
                    err = format!("ready message has {} handles", hs.len());
                    None
                }
            };
            if let Some(b) = b {
                got_pipe = true;
                self.decode(&ready, &mut err);
                if protocol::get_u32(&ready.bytes, 4) != queued {
                    add_err(&mut err, "ready count mismatch");
                }
                let mut seed: u64 = 77;
                let mut sent = Vec::with_capacity(echoes as usize);
                for i in 0..echoes as usize {
                    let m = protocol::random_payload(op::ECHO, 8 + i * 53, &mut seed);
                    let _ = self.write(&b, &m, Vec::new());
                    sent.push(m);
                }
                // The client's queued messages come first, then the echoes.
                for i in 0..queued {
                    if !err.is_empty() {
                        break;
                    }
                    let what = format!("queued message {i}");
                    let Some(got) =
                        self.read_expect_deadline(&b, op::ECHO, &mut err, deadline, &what)?
                    else {
                        break;
                    };
                    if got.bytes == protocol::c2h_msg(i) {
                        queued_ok += 1;
                    } else {
                        mismatches += 1;
                    }
                }
                for (i, m) in sent.iter().enumerate() {
                    if !err.is_empty() {
                        break;
                    }
                    let what = format!("echo {i}");
                    let Some(got) =
                        self.read_expect_deadline(&b, op::ECHO, &mut err, deadline, &what)?
                    else {
                        break;
                    };
                    echoed += 1;
                    if got.bytes != *m {
                        mismatches += 1;
                    }
                }
                drop(b); // the client's echo loop ends and it reports its count
            }
            // Also without a usable `b` (spec §2.1 "Deadlines", where the
            // reference reads nothing): the client still reports, and its
            // report must not be left for the next scenario.
            let mut e2 = String::new();
            let d2 = if err.is_empty() {
                deadline
            } else {
                Instant::now() + C2H_REPORT_GRACE
            };
            if let Some(d) = self.read_expect_deadline(
                pipe,
                op::SUB_PIPE_C2H_DONE,
                &mut e2,
                d2,
                "kSubPipeC2HDone",
            )? {
                done = true;
                client_count = protocol::get_u64(&d.bytes, 4);
                self.decode(&d, &mut e2);
            }
            add_err(&mut err, &e2);
        }
        let pass = got_pipe
            && done
            && err.is_empty()
            && queued_ok == queued
            && echoed == echoes
            && mismatches == 0
            && client_count == u64::from(echoes);
        let mut j = self.line("subpipe_c2h", pass);
        j.int("handles_in_msg", handles_in_msg)
            .int("queued", i128::from(queued))
            .int("queued_ok", i128::from(queued_ok))
            .int("echoes", i128::from(echoes))
            .int("echoed", i128::from(echoed))
            .int("mismatches", i128::from(mismatches))
            .int("client_count", i128::from(client_count))
            .num("elapsed_ms", ms(t0.elapsed()))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    fn shmem_c2h(&mut self, pipe: &MessagePipe, ro: bool) -> Result<(), TimedOut> {
        let name = if ro {
            "shmem_c2h_readonly"
        } else {
            "shmem_c2h"
        };
        let size = self.cfg.counts.shmem_c2h_size;
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.handle_timeout;
        let mut err = String::new();
        let expect = protocol::fnv_of_pattern(size, protocol::shmem_c2h_byte);
        let _ = self.send(
            pipe,
            &Payload::ShmemC2H {
                size,
                read_only: u32::from(ro),
            },
            Vec::new(),
        );
        let mut handles_in_msg: i128 = -1;
        let (mut got_msg, mut mapped, mut wrote, mut result) = (false, false, false, false);
        let (mut client_fnv, mut host_fnv, mut info_size, mut bad1, mut bad2) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let (mut info_r, mut map_r, mut dup_r, mut unwrap_r) = (-1i128, -1i128, -1i128, -1i128);
        let (mut mprotect_errno, mut mmap_write_errno, mut fd_accmode) = (-1i128, -1i128, -1i128);
        let (mut unwrap_mode, mut unwrap_nfds) = (-1i128, -1i128);
        if let Some(mut bm) = self.read_expect_deadline(
            pipe,
            op::SHMEM_C2H_BUFFER,
            &mut err,
            deadline,
            "kShmemC2HBuffer",
        )? {
            got_msg = true;
            handles_in_msg = bm.handles.len() as i128;
            client_fnv = protocol::get_u64(&bm.bytes, 12);
            self.decode(&bm, &mut err);
            if protocol::get_u64(&bm.bytes, 4) != size
                || protocol::get_u32(&bm.bytes, 20) != u32::from(ro)
            {
                add_err(&mut err, "buffer message size/ro mismatch");
            }
            match <[Handle; 1]>::try_from(std::mem::take(&mut bm.handles)) {
                Err(hs) => add_err(
                    &mut err,
                    &format!("buffer message has {} handles", hs.len()),
                ),
                Ok([h]) => match h.into_shared_buffer() {
                    Err(other) => {
                        // Mojo would refuse every buffer call on it.
                        let bad = i128::from(MojoError::InvalidArgument.code());
                        (info_r, map_r) = (bad, bad);
                        if ro {
                            (dup_r, unwrap_r) = (bad, bad);
                        }
                        add_err(
                            &mut err,
                            &format!("buffer message carries a {}", kind_name(other.kind())),
                        );
                    }
                    Ok(buf) => {
                        let info = self.sys.buffer_size(&buf);
                        info_r = i128::from(result_code(&info));
                        info_size = info.unwrap_or(0);
                        match self.sys.map_buffer(&buf, 0, size) {
                            Err(e) => {
                                map_r = i128::from(e.code());
                                add_err(&mut err, &format!("MojoMapBuffer failed {}", e.code()));
                            }
                            Ok(mut map) => {
                                map_r = 0;
                                mapped = true;
                                host_fnv = fnv_of_mapping(&map, size);
                                if !ro {
                                    let second: Vec<u8> = (size / 2..size)
                                        .map(protocol::shmem_c2h_host_byte)
                                        .collect();
                                    wrote = map.write((size / 2) as usize, &second).is_ok();
                                } else {
                                    // Must fail (EACCES) for a shared mapping of a read-only fd.
                                    mprotect_errno = match map.try_make_writable() {
                                        Ok(()) => 0,
                                        Err(e) => e as i32 as i128,
                                    };
                                }
                            }
                        }
                        if ro {
                            // A writable duplicate of a read-only buffer must be refused.
                            dup_r =
                                i128::from(result_code(&self.sys.duplicate_buffer(&buf, false)));
                            match self.sys.unwrap_shared_buffer(buf) {
                                Err(e) => unwrap_r = i128::from(e.code()),
                                Ok(region) => {
                                    unwrap_r = 0;
                                    unwrap_mode = i128::from(region.access_mode.code());
                                    unwrap_nfds = region.fds.len() as i128;
                                    if let Some(fd) = region.fds.first() {
                                        fd_accmode = i128::from(crate::os::fd_access_mode(fd));
                                        mmap_write_errno =
                                            match crate::os::probe_writable_mmap(fd, size as usize)
                                            {
                                                Ok(()) => 0,
                                                Err(e) => e as i32 as i128,
                                            };
                                    }
                                }
                            }
                        }
                    }
                },
            }
            // Always ack, so the client never waits for an ack that does not come.
            let _ = self.send(
                pipe,
                &Payload::ShmemC2HAck {
                    wrote: u32::from(wrote),
                },
                Vec::new(),
            );
            let mut e2 = String::new();
            if let Some(res) = self.read_expect_deadline(
                pipe,
                op::SHMEM_C2H_RESULT,
                &mut e2,
                deadline,
                "kShmemC2HResult",
            )? {
                result = true;
                bad1 = protocol::get_u64(&res.bytes, 4);
                bad2 = protocol::get_u64(&res.bytes, 12);
                self.decode(&res, &mut e2);
            }
            add_err(&mut err, &e2);
        }
        let base_ok = got_msg
            && handles_in_msg == 1
            && mapped
            && result
            && host_fnv == expect
            && client_fnv == expect
            && bad1 == 0
            && bad2 == 0;
        let pass = if ro {
            base_ok
                && err.is_empty()
                && dup_r != 0
                && mprotect_errno > 0
                && unwrap_r == 0
                && unwrap_mode == 0
                && mmap_write_errno > 0
        } else {
            base_ok && wrote && err.is_empty()
        };
        let mut j = self.line(name, pass);
        j.int("size", i128::from(size))
            .bool("read_only", ro)
            .int("handles_in_msg", handles_in_msg)
            .int("buffer_info_result", info_r)
            .int("buffer_info_size", i128::from(info_size))
            .int("map_result", map_r)
            .bool("host_checksum_match", mapped && host_fnv == expect)
            .bool("client_checksum_match", client_fnv == expect);
        if !ro {
            j.bool("host_wrote_second_half", wrote)
                .int("client_first_half_mismatches", i128::from(bad1))
                .int("client_second_half_mismatches", i128::from(bad2));
        } else {
            j.int("writable_dup_result", dup_r)
                .int("mprotect_write_errno", mprotect_errno)
                .int("unwrap_result", unwrap_r)
                .int("unwrap_access_mode", unwrap_mode)
                .int("unwrap_num_fds", unwrap_nfds)
                .int("fd_accmode", fd_accmode)
                .int("mmap_write_errno", mmap_write_errno)
                .int("client_unchanged_mismatches", i128::from(bad1 + bad2));
        }
        j.num("elapsed_ms", ms(t0.elapsed())).error(&err);
        self.print(&j);
        Ok(())
    }

    fn platform_handle_c2h(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let size = self.cfg.counts.plat_c2h_size;
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.handle_timeout;
        let mut err = String::new();
        let expect = protocol::fnv_of_pattern(size, protocol::memfd_c2h_byte);
        let _ = self.send(pipe, &Payload::PlatHandleC2H { size }, Vec::new());
        let mut handles_in_msg: i128 = -1;
        let (mut fds_ok, mut memfd_reg, mut pipe_fifo, mut result) = (false, false, false, false);
        let (mut host_fnv, mut client_fnv) = (0u64, 0u64);
        let (mut mark_ok, mut pipe_ok, mut pipe_bytes, mut pipe_eof) = (0u64, 0u64, 0u64, 0u64);
        let mut nread: i128 = -1;
        if let Some(mut fm) = self.read_expect_deadline(
            pipe,
            op::PLAT_HANDLE_C2H_FDS,
            &mut err,
            deadline,
            "kPlatHandleC2HFds",
        )? {
            handles_in_msg = fm.handles.len() as i128;
            client_fnv = protocol::get_u64(&fm.bytes, 12);
            self.decode(&fm, &mut err);
            match <[Handle; 2]>::try_from(std::mem::take(&mut fm.handles)) {
                Err(hs) => add_err(&mut err, &format!("fds message has {} handles", hs.len())),
                Ok([h0, h1]) => {
                    let unwrap = |h: Handle| {
                        h.into_platform_handle()
                            .ok()
                            .and_then(|p| self.sys.unwrap_platform_handle(p).ok())
                    };
                    match (unwrap(h0), unwrap(h1)) {
                        (Some(memfd), Some(wpipe)) => {
                            fds_ok = true;
                            memfd_reg = is_regular_file(&memfd);
                            pipe_fifo = is_fifo(&wpipe);
                            let (fnv, n) = crate::os::hash_fd_prefix(&memfd, size);
                            host_fnv = fnv;
                            nread = n.map_or(-1, i128::from);
                            let _ = pwrite(memfd.as_fd(), HOST_MARK, size as i64);
                            let _ = nix::unistd::write(&wpipe, HOST_PIPE_MSG);
                            // Both fds close here: the client must then see EOF.
                        }
                        _ => add_err(&mut err, "unwrapped handles are not valid fds"),
                    }
                }
            }
            let _ = self.send(pipe, &Payload::PlatHandleC2HAck { host_fnv }, Vec::new());
            let mut e2 = String::new();
            if let Some(res) = self.read_expect_deadline(
                pipe,
                op::PLAT_HANDLE_C2H_RESULT,
                &mut e2,
                deadline,
                "kPlatHandleC2HResult",
            )? {
                result = true;
                mark_ok = protocol::get_u64(&res.bytes, 4);
                pipe_ok = protocol::get_u64(&res.bytes, 12);
                pipe_bytes = protocol::get_u64(&res.bytes, 20);
                pipe_eof = protocol::get_u64(&res.bytes, 28);
                self.decode(&res, &mut e2);
            }
            add_err(&mut err, &e2);
        }
        let pass = err.is_empty()
            && fds_ok
            && result
            && host_fnv == expect
            && client_fnv == expect
            && mark_ok != 0
            && pipe_ok != 0
            && pipe_eof != 0;
        let mut j = self.line("platform_handle_c2h", pass);
        j.int("handles_in_msg", handles_in_msg)
            .bool("fds_valid", fds_ok)
            .bool("memfd_is_regular_file", memfd_reg)
            .bool("pipe_is_fifo", pipe_fifo)
            .int("memfd_bytes_read", nread)
            .bool("memfd_checksum_ok", fds_ok && host_fnv == expect)
            .bool("client_checksum_match", client_fnv == expect)
            .bool("client_saw_host_mark", mark_ok != 0)
            .bool("client_pipe_ok", pipe_ok != 0)
            .int("client_pipe_bytes", i128::from(pipe_bytes))
            .bool("client_pipe_eof", pipe_eof != 0)
            .num("elapsed_ms", ms(t0.elapsed()))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    fn pipe_roundtrip(
        &mut self,
        pipe: &MessagePipe,
        bounces: u32,
        name: &str,
    ) -> Result<(), TimedOut> {
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.handle_timeout;
        let (queued_n, msgs) = (
            self.cfg.counts.roundtrip_queued,
            self.cfg.counts.roundtrip_messages,
        );
        let mut err = String::new();
        let mut seed: u64 = 0xabcdef + u64::from(bounces);
        let (mut hops_done, mut queued_ok, mut fwd_ok, mut back_ok, mut mismatches) =
            (0u32, 0, 0, 0, 0);
        let mut peer_closed_ok = false;
        let mut close_ms = -1.0;
        let mut hop_ms = String::from("[");
        match self.sys.create_message_pipe() {
            Err(e) => err = format!("create pipe failed {}", e.code()),
            Ok((p0, p1)) => {
                let mut queued = Vec::with_capacity(queued_n);
                for i in 0..queued_n {
                    let m = protocol::random_payload(op::ECHO, 12 + i * 41, &mut seed);
                    let _ = self.write(&p0, &m, Vec::new());
                    queued.push(m);
                }
                let mut h: Option<Handle> = Some(p1.into());
                for hop in 0..bounces {
                    let th = Instant::now();
                    let handle = h.take().map_or_else(Vec::new, |x| vec![x]);
                    if let Err(e) = self.send(pipe, &Payload::PipeBounce { hop }, handle) {
                        err = format!("send bounce {hop} failed {}", e.code());
                        break;
                    }
                    let what = format!("kPipeBounceBack {hop}");
                    let Some(mut back) = self.read_expect_deadline(
                        pipe,
                        op::PIPE_BOUNCE_BACK,
                        &mut err,
                        deadline,
                        &what,
                    )?
                    else {
                        break;
                    };
                    let back_hop = protocol::get_u32(&back.bytes, 4);
                    let hs = std::mem::take(&mut back.handles);
                    if back_hop != hop || hs.len() != 1 {
                        err = format!("bounce {hop}: hop {back_hop}, {} handles", hs.len());
                        break;
                    }
                    self.decode(&back, &mut err);
                    h = hs.into_iter().next();
                    hops_done += 1;
                    hop_ms.push_str(&format!(
                        "{}{:.3}",
                        if hop > 0 { "," } else { "" },
                        ms(th.elapsed())
                    ));
                }
                let p1 = match h.map(Handle::into_message_pipe) {
                    Some(Ok(p)) if err.is_empty() => Some(p),
                    Some(Err(other)) if err.is_empty() => {
                        err = format!("bounced back a {}", kind_name(other.kind()));
                        None
                    }
                    _ => None,
                };
                if let Some(p1) = p1 {
                    for (i, q) in queued.iter().enumerate() {
                        if !err.is_empty() {
                            break;
                        }
                        let what = format!("queued {i}");
                        let Some(got) =
                            self.read_expect_deadline(&p1, op::ECHO, &mut err, deadline, &what)?
                        else {
                            break;
                        };
                        if got.bytes == *q {
                            queued_ok += 1;
                        } else {
                            mismatches += 1;
                        }
                    }
                    let mut fwd = Vec::new();
                    for i in 0..msgs {
                        if !err.is_empty() {
                            break;
                        }
                        let m = protocol::random_payload(op::ECHO, 4 + i * 97, &mut seed);
                        let _ = self.write(&p0, &m, Vec::new());
                        fwd.push(m);
                    }
                    for (i, m) in fwd.iter().enumerate() {
                        if !err.is_empty() {
                            break;
                        }
                        let what = format!("forward {i}");
                        let Some(got) =
                            self.read_expect_deadline(&p1, op::ECHO, &mut err, deadline, &what)?
                        else {
                            break;
                        };
                        if got.bytes == *m {
                            fwd_ok += 1;
                        } else {
                            mismatches += 1;
                        }
                    }
                    let mut bwd = Vec::new();
                    for i in 0..msgs {
                        if !err.is_empty() {
                            break;
                        }
                        let m = protocol::random_payload(op::ECHO, 4 + i * 89, &mut seed);
                        let _ = self.write(&p1, &m, Vec::new());
                        bwd.push(m);
                    }
                    for (i, m) in bwd.iter().enumerate() {
                        if !err.is_empty() {
                            break;
                        }
                        let what = format!("backward {i}");
                        let Some(got) =
                            self.read_expect_deadline(&p0, op::ECHO, &mut err, deadline, &what)?
                        else {
                            break;
                        };
                        if got.bytes == *m {
                            back_ok += 1;
                        } else {
                            mismatches += 1;
                        }
                    }
                    let tc = Instant::now();
                    drop(p1);
                    let pr = self.wait(p0.raw(), Signals::PEER_CLOSED, Some(deadline))?;
                    peer_closed_ok = pr.is_ok();
                    if peer_closed_ok {
                        close_ms = ms(tc.elapsed());
                    } else {
                        add_err(
                            &mut err,
                            &format!("peer-closed wait result {}", result_code(&pr)),
                        );
                    }
                }
            }
        }
        hop_ms.push(']');
        let pass = err.is_empty()
            && hops_done == bounces
            && queued_ok == queued_n
            && fwd_ok == msgs
            && back_ok == msgs
            && mismatches == 0
            && peer_closed_ok;
        let crossings = if self.cfg.direct { 0 } else { 2 * hops_done };
        let mut j = self.line(name, pass);
        j.int("bounces", i128::from(bounces))
            .int("bounces_done", i128::from(hops_done))
            .int("handle_transfers", i128::from(2 * hops_done))
            .int("proxy_crossings", i128::from(crossings))
            .raw("bounce_ms", &hop_ms)
            .int("queued", queued_n as i128)
            .int("queued_ok", queued_ok as i128)
            .int("messages_each_way", msgs as i128)
            .int("forward_ok", fwd_ok as i128)
            .int("backward_ok", back_ok as i128)
            .int("mismatches", mismatches as i128)
            .bool("peer_closed", peer_closed_ok)
            .num("peer_closed_ms", close_ms)
            .num("elapsed_ms", ms(t0.elapsed()))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    fn many_pipes(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let n = self.cfg.counts.many_pipes;
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.handle_timeout;
        let mut err = String::new();
        let mut ends = Vec::with_capacity(n as usize);
        let mut sent = Vec::with_capacity(n as usize);
        let mut send_failures = 0u32;
        for i in 0..n {
            let mut e = Vec::with_capacity(12 + 61);
            for w in [op::ECHO, i, n] {
                e.extend_from_slice(&w.to_le_bytes());
            }
            e.extend((0..i % 61).map(|j| (i.wrapping_mul(13).wrapping_add(j)) as u8));
            match self.sys.create_message_pipe() {
                Err(_) => send_failures += 1,
                Ok((p0, p1)) => {
                    let _ = self.write(&p0, &e, Vec::new());
                    if self
                        .send(
                            pipe,
                            &Payload::ManyPipe { index: i, total: n },
                            vec![p1.into()],
                        )
                        .is_err()
                    {
                        send_failures += 1;
                    }
                    ends.push(Some(p0));
                }
            }
            sent.push(e);
        }
        let t_sent = Instant::now();
        let (mut echoed, mut mismatches, mut closed) = (0u32, 0u32, 0u32);
        for (i, end) in ends.iter().enumerate() {
            if !err.is_empty() {
                break;
            }
            let Some(p0) = end else { continue };
            let what = format!("echo on pipe {i}");
            let Some(got) = self.read_expect_deadline(p0, op::ECHO, &mut err, deadline, &what)?
            else {
                break;
            };
            echoed += 1;
            if got.bytes != sent[i] {
                mismatches += 1;
            }
            let pr = self.wait(p0.raw(), Signals::PEER_CLOSED, Some(deadline))?;
            if pr.is_ok() {
                closed += 1;
            } else {
                add_err(
                    &mut err,
                    &format!("pipe {i} peer-closed wait {}", result_code(&pr)),
                );
            }
        }
        let t_echoed = Instant::now();
        drop(ends);
        let (mut handled, mut errors, mut done) = (0u64, 0u64, false);
        let mut e2 = String::new();
        let d2 = if err.is_empty() {
            deadline
        } else {
            Instant::now() + C2H_REPORT_GRACE
        };
        if let Some(d) =
            self.read_expect_deadline(pipe, op::MANY_PIPES_DONE, &mut e2, d2, "kManyPipesDone")?
        {
            done = true;
            handled = protocol::get_u64(&d.bytes, 4);
            errors = protocol::get_u64(&d.bytes, 12);
            self.decode(&d, &mut e2);
        }
        add_err(&mut err, &e2);
        let pass = err.is_empty()
            && send_failures == 0
            && echoed == n
            && mismatches == 0
            && closed == n
            && done
            && handled == u64::from(n)
            && errors == 0;
        let mut j = self.line("many_pipes", pass);
        j.int("pipes", i128::from(n))
            .int("send_failures", i128::from(send_failures))
            .int("echoed", i128::from(echoed))
            .int("mismatches", i128::from(mismatches))
            .int("peer_closed", i128::from(closed))
            .int("client_handled", i128::from(handled))
            .int("client_errors", i128::from(errors))
            .num("send_ms", ms(t_sent - t0))
            .num("echo_ms", ms(t_echoed - t0))
            .num("elapsed_ms", ms(t0.elapsed()))
            .error(&err);
        self.print(&j);
        Ok(())
    }

    fn datapipe_h2c(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.datapipe_timeout;
        let (total, capacity) = (
            self.cfg.counts.datapipe_total,
            self.cfg.counts.datapipe_capacity,
        );
        let expect = protocol::fnv_of_pattern(total, |i| {
            protocol::pattern_byte(i, Direction::HostToClient)
        });
        let mut err = String::new();
        let (mut written, mut client_bytes, mut client_fnv, mut acked) = (0u64, 0u64, 0u64, false);
        match self.sys.create_data_pipe(1, capacity) {
            Err(e) => err = format!("create failed {}", e.code()),
            Ok((producer, consumer)) => {
                if let Err(e) = self.send(pipe, &Payload::DataPipe { total }, vec![consumer.into()])
                {
                    err = format!("send consumer failed {}", e.code());
                }
                let mut chunk = vec![0u8; 16 * 1024];
                while err.is_empty() && written < total {
                    let num = (chunk.len() as u64).min(total - written) as usize;
                    for (i, b) in chunk[..num].iter_mut().enumerate() {
                        *b = protocol::pattern_byte(written + i as u64, Direction::HostToClient);
                    }
                    match self.sys.write_data(&producer, &chunk[..num]) {
                        Ok(n) => written += n as u64,
                        Err(MojoError::ShouldWait) => {
                            match self.wait(producer.raw(), Signals::WRITABLE, Some(deadline))? {
                                Ok(()) => {}
                                Err(MojoError::DeadlineExceeded) => err = "timeout writing".into(),
                                Err(e) => {
                                    err = format!(
                                        "producer wait failed {} (consumer closed)",
                                        e.code()
                                    )
                                }
                            }
                        }
                        Err(e) => {
                            err = format!("write failed {}", e.code());
                            break;
                        }
                    }
                }
                drop(producer);
                if err.is_empty() {
                    match self.read(pipe, Some(deadline))? {
                        Err(MojoError::DeadlineExceeded) => err = "timeout waiting for ack".into(),
                        Err(e) => err = format!("read ack failed r={}", e.code()),
                        Ok(m) if protocol::opcode_of(&m.bytes) != op::DATA_PIPE_ACK => {
                            err = format!("unexpected op {}", protocol::opcode_of(&m.bytes));
                        }
                        Ok(m) => {
                            acked = true;
                            client_bytes = protocol::get_u64(&m.bytes, 4);
                            client_fnv = protocol::get_u64(&m.bytes, 12);
                            self.decode(&m, &mut err);
                        }
                    }
                }
            }
        }
        let dt = t0.elapsed();
        self.settle(SETTLE_AFTER_DATAPIPE);
        let pass = acked && client_bytes == total && client_fnv == expect && err.is_empty();
        let mut j = self.line("datapipe_h2c", pass);
        j.int("total", i128::from(total))
            .int("capacity", i128::from(capacity))
            .int("written", i128::from(written))
            .int("client_bytes", i128::from(client_bytes))
            .bool("checksum_match", acked && client_fnv == expect)
            .num("elapsed_ms", ms(dt))
            .num(
                "mb_per_s",
                if acked {
                    total as f64 / dt.as_secs_f64() / 1e6
                } else {
                    0.0
                },
            )
            .bool("host_pipe_peer_closed", peer_closed(self.sys, pipe.raw()));
        self.add_proc_state(&mut j, "proxy", ChildRole::Proxy, t0);
        self.add_proc_state(&mut j, "client", ChildRole::Client, t0);
        j.error(&err);
        self.print(&j);
        Ok(())
    }

    fn datapipe_c2h(&mut self, pipe: &MessagePipe) -> Result<(), TimedOut> {
        let t0 = Instant::now();
        let deadline = t0 + self.cfg.datapipe_timeout;
        let (total, capacity) = (
            self.cfg.counts.datapipe_total,
            self.cfg.counts.datapipe_capacity,
        );
        let expect = protocol::fnv_of_pattern(total, |i| {
            protocol::pattern_byte(i, Direction::ClientToHost)
        });
        let mut err = String::new();
        let _ = self.send(
            pipe,
            &Payload::DataPipeReverse {
                total,
                capacity: u64::from(capacity),
            },
            Vec::new(),
        );
        let (mut got_consumer, mut done) = (false, false);
        let mut handles_in_msg: i128 = -1;
        let (mut bytes, mut h, mut client_written, mut client_last) =
            (0u64, Fnv::new(), 0u64, 0u64);
        let mut consumer_probe = String::new();
        match self.read(pipe, Some(deadline))? {
            Err(MojoError::DeadlineExceeded) => err = "timeout waiting for consumer msg".into(),
            Err(e) => err = format!("read failed r={}", e.code()),
            Ok(m) if protocol::opcode_of(&m.bytes) != op::DATA_PIPE_CONSUMER => {
                err = format!("unexpected op {}", protocol::opcode_of(&m.bytes));
            }
            Ok(mut msg) => {
                handles_in_msg = msg.handles.len() as i128;
                self.decode(&msg, &mut err);
                // Without exactly one handle the reference reads no report;
                // we do (as after every other failure), to stay in step.
                match <[Handle; 1]>::try_from(std::mem::take(&mut msg.handles)) {
                    Err(hs) => err = format!("consumer message has {} handles", hs.len()),
                    Ok([handle]) => {
                        got_consumer = true;
                        match handle.into_data_pipe_consumer() {
                            Ok(cons) => {
                                let mut buf = vec![0u8; 64 * 1024];
                                while bytes < total {
                                    match self.sys.read_data(&cons, &mut buf) {
                                        Ok(n) => {
                                            h.update(&buf[..n]);
                                            bytes += n as u64;
                                        }
                                        Err(MojoError::ShouldWait) => {
                                            match self.wait(
                                                cons.raw(),
                                                Signals::READABLE,
                                                Some(deadline),
                                            )? {
                                                Ok(()) => {}
                                                Err(MojoError::DeadlineExceeded) => {
                                                    err = "timeout reading data".into();
                                                    break;
                                                }
                                                Err(e) => {
                                                    err = format!(
                                                        "consumer wait failed {} (producer closed)",
                                                        e.code()
                                                    );
                                                    break;
                                                }
                                            }
                                        }
                                        Err(e) => {
                                            err = format!("read data failed {}", e.code());
                                            break;
                                        }
                                    }
                                }
                            }
                            Err(other) => {
                                // MojoReadData on another kind of handle is
                                // INVALID_ARGUMENT; probe what it is (a proxy
                                // may turn a consumer into a message pipe).
                                err = format!(
                                    "read data failed {}",
                                    MojoError::InvalidArgument.code()
                                );
                                consumer_probe = self.probe_handle(other)?;
                            }
                        }
                    }
                }
                // The client's report, also after a failure (short deadline).
                let d2 = if err.is_empty() {
                    deadline
                } else {
                    Instant::now() + DATAPIPE_REPORT_GRACE
                };
                let mut e2 = String::new();
                match self.read(pipe, Some(d2))? {
                    Err(MojoError::DeadlineExceeded) => e2 = "timeout waiting for done".into(),
                    Err(e) => e2 = format!("read done failed r={}", e.code()),
                    Ok(d) if protocol::opcode_of(&d.bytes) != op::DATA_PIPE_REVERSE_DONE => {
                        e2 = format!("unexpected op {}", protocol::opcode_of(&d.bytes));
                    }
                    Ok(d) => {
                        done = true;
                        client_written = protocol::get_u64(&d.bytes, 4);
                        client_last = protocol::get_u64(&d.bytes, 12);
                        self.decode(&d, &mut e2);
                    }
                }
                add_err(&mut err, &e2);
            }
        }
        let dt = t0.elapsed();
        self.settle(SETTLE_AFTER_DATAPIPE);
        let fnv = h.value();
        let pass = got_consumer && done && bytes == total && fnv == expect && err.is_empty();
        let mut j = self.line("datapipe_c2h", pass);
        j.int("total", i128::from(total))
            .int("capacity", i128::from(capacity))
            .bool("got_consumer", got_consumer)
            .int("handles_in_msg", handles_in_msg)
            .int("bytes_read", i128::from(bytes))
            .bool("checksum_match", bytes != 0 && fnv == expect)
            .int("client_written", i128::from(client_written))
            .int("client_last_result", i128::from(client_last))
            .num("elapsed_ms", ms(dt))
            .num(
                "mb_per_s",
                if done && bytes == total {
                    total as f64 / dt.as_secs_f64() / 1e6
                } else {
                    0.0
                },
            )
            .bool("host_pipe_peer_closed", peer_closed(self.sys, pipe.raw()));
        self.add_proc_state(&mut j, "proxy", ChildRole::Proxy, t0);
        self.add_proc_state(&mut j, "client", ChildRole::Client, t0);
        if !consumer_probe.is_empty() {
            j.str("consumer_probe", &consumer_probe);
        }
        j.error(&err);
        self.print(&j);
        Ok(())
    }

    /// The reference's consumer probe: signals, a message read and a
    /// peer-closed wait on a handle that should have been a consumer.
    fn probe_handle(&self, handle: Handle) -> Result<String, TimedOut> {
        let st = self.sys.query_signals(handle.raw()).unwrap_or_default();
        let read_message = match &handle {
            Handle::MessagePipe(p) => result_code(&self.sys.read_message(p)),
            _ => MojoError::InvalidArgument.code(),
        };
        let tp = Instant::now();
        let pc = self.wait(
            handle.raw(),
            Signals::PEER_CLOSED,
            Some(tp + CONSUMER_PROBE_WAIT),
        )?;
        Ok(format!(
            "satisfied=0x{:x} satisfiable=0x{:x} read_message={read_message} peer_closed_wait={} after {:.1} ms",
            st.satisfied.bits(),
            st.satisfiable.bits(),
            result_code(&pc),
            ms(tp.elapsed())
        ))
    }
}

fn fnv_of_mapping<M: BufferMapping>(map: &M, size: u64) -> u64 {
    let mut h = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    while at < size {
        let n = ((size - at) as usize).min(buf.len());
        if map.read(at as usize, &mut buf[..n]).is_err() {
            break;
        }
        h.update(&buf[..n]);
        at += n as u64;
    }
    h.value()
}
