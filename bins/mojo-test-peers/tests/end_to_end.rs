//! Host and client on two threads sharing one in-process fake system: every
//! scenario end to end, and broken clients that the host must catch.

use std::collections::BTreeSet;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mojo_test_peers::client;
use mojo_test_peers::fake::FakeSystem;
use mojo_test_peers::host::{
    self, ChildRole, ChildStatus, Children, ConfigLine, Connection, Counts, HostConfig, HostOutcome,
};
use mojo_test_peers::protocol::{self, op};
use mojo_test_peers::system::{
    DataPipeConsumer, DataPipeProducer, Handle, Message, MessagePipe, MojoHandle, MojoResult,
    MojoSystem, PlatformHandle, SharedBuffer, Signals, SignalsState, UnwrappedRegion, WaitError,
    WriteMessageError,
};
use serde_json::Value;

/// The client thread as the host's only child.
struct ThreadChildren {
    client: Arc<Mutex<Option<(i32, Instant)>>>,
    killed: bool,
}

impl Children for ThreadChildren {
    fn status(&mut self, role: ChildRole) -> ChildStatus {
        match role {
            ChildRole::Proxy => ChildStatus::NotLaunched,
            ChildRole::Client => match *self.client.lock().unwrap() {
                Some((code, at)) => ChildStatus::Exited { code, at },
                None => ChildStatus::Running,
            },
        }
    }
    fn kill_all(&mut self) {
        self.killed = true;
    }
}

fn small_counts() -> Counts {
    let mut c = Counts::new(true, true);
    c.echo_large_sizes = vec![1 << 20, 2 << 20];
    c.throughput = vec![(64, 50), (4096, 20), (65536, 4)];
    c.latency = vec![(64, 20), (4096, 10)];
    c.latency_warmup = 5;
    c.datapipe_total = 200_000;
    c.datapipe_capacity = 4096;
    c.shmem_c2h_size = 64 * 1024;
    c
}

fn config(scenarios: &[&str], counts: Counts, num_attachments: u64) -> HostConfig {
    HostConfig {
        label: "fake".into(),
        scenarios: scenarios
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        timeout: Some(Duration::from_secs(60)),
        handle_timeout: Duration::from_secs(20),
        datapipe_timeout: Duration::from_secs(10),
        shutdown_wait: Duration::from_secs(15),
        direct: true,
        counts,
        config_line: ConfigLine {
            profile: "cros".into(),
            host_ipcz: true,
            proxy: String::new(),
            client: "in-process".into(),
            direct: "ipcz".into(),
            num_attachments,
            inherit_broker: false,
        },
    }
}

struct Run {
    outcome: HostOutcome,
    lines: Vec<Value>,
    text: Vec<String>,
    killed: bool,
}

impl Run {
    fn line(&self, scenario: &str) -> &Value {
        self.lines
            .iter()
            .find(|l| l["scenario"] == scenario)
            .unwrap_or_else(|| panic!("no {scenario} line in {:#?}", self.lines))
    }
    fn names(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|l| l["scenario"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Runs the host against the client, the client using `client_system`
/// (the fake itself, or a broken wrapper around it).
fn run_with<C: MojoSystem + 'static>(
    sys: Arc<FakeSystem>,
    client_system: C,
    cfg: HostConfig,
    pipes: usize,
) -> Run {
    let mut host_ends = Vec::new();
    let mut client_ends = Vec::new();
    for _ in 0..pipes {
        let (h, c) = sys.create_message_pipe().unwrap();
        host_ends.push(h);
        client_ends.push(c);
    }
    let exit = Arc::new(Mutex::new(None));
    let exit2 = exit.clone();
    let spawned_at = Instant::now();
    let client = std::thread::spawn(move || {
        client::serve_all(&client_system, client_ends, false);
        *exit2.lock().unwrap() = Some((0, Instant::now()));
    });
    let mut children = ThreadChildren {
        client: exit,
        killed: false,
    };
    let mut out = Vec::new();
    let conn = Connection {
        pipes: host_ends,
        spawned_at,
        invitation_sent_at: Instant::now(),
    };
    let outcome = host::run(&*sys, conn, &cfg, &mut children, &mut out);
    client.join().unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}")))
        .collect();
    let text = text.lines().map(str::to_string).collect();
    Run {
        outcome,
        lines,
        text,
        killed: children.killed,
    }
}

fn run(cfg: HostConfig, pipes: usize) -> Run {
    let sys = Arc::new(FakeSystem::new());
    let client_sys = Shared(sys.clone());
    run_with(sys, client_sys, cfg, pipes)
}

/// Runs the host on one pipe against a client whose system has `fault`.
fn run_faulty(fault: Fault, cfg: HostConfig) -> Run {
    let sys = Arc::new(FakeSystem::new());
    let client_sys = Broken {
        inner: Shared(sys.clone()),
        fault,
    };
    run_with(sys, client_sys, cfg, 1)
}

fn all_pass(r: &Run) {
    for l in &r.lines {
        assert_eq!(l["pass"], true, "failed: {l}");
        assert_eq!(l["label"], "fake");
    }
    assert_eq!(r.outcome, HostOutcome::Completed);
}

#[test]
fn default_scenarios_all_pass_in_order() {
    let scen: Vec<&str> = host::DEFAULT_SCENARIOS.to_vec();
    let r = run(config(&scen, small_counts(), 0), 1);
    all_pass(&r);
    // config + the spec's 21 result lines, in the reference's order.
    assert_eq!(
        r.names(),
        [
            "config",
            "connect",
            "echo_small",
            "echo_large",
            "subpipe",
            "shmem",
            "platform_handle",
            "close_host_to_client",
            "close_client_to_host",
            "throughput_64",
            "throughput_4096",
            "throughput_65536",
            "latency_64",
            "latency_4096",
            "subpipe_c2h",
            "shmem_c2h",
            "shmem_c2h_readonly",
            "platform_handle_c2h",
            "pipe_roundtrip",
            "pipe_roundtrip_5hop",
            "many_pipes",
            "shutdown",
        ]
    );
    let ro = r.line("shmem_c2h_readonly");
    assert_eq!(ro["mprotect_write_errno"], 13);
    assert_eq!(ro["writable_dup_result"], 9);
    assert_eq!(ro["unwrap_access_mode"], 0);
    assert_eq!(ro["unwrap_num_fds"], 1);
    assert_eq!(ro["fd_accmode"], 0);
    assert_eq!(ro["mmap_write_errno"], 13);
    let p = r.line("platform_handle_c2h");
    assert_eq!(p["memfd_is_regular_file"], true);
    assert_eq!(p["pipe_is_fifo"], true);
    assert_eq!(p["client_pipe_eof"], true);
    assert_eq!(r.line("pipe_roundtrip_5hop")["handle_transfers"], 10);
    assert_eq!(r.line("pipe_roundtrip")["proxy_crossings"], 0);
    assert_eq!(r.line("shutdown")["client_exit"], 0);
    assert!(r.line("shutdown").get("proxy_exit").is_none());
    // Field order of a line is the reference's.
    let many = r
        .text
        .iter()
        .find(|l| l.contains("\"many_pipes\""))
        .unwrap();
    assert!(many.starts_with(
        r#"{"scenario":"many_pipes","label":"fake","pass":true,"pipes":5,"send_failures":0,"echoed":5,"#
    ));
    assert!(
        r.text[0]
            .starts_with(r#"{"scenario":"config","label":"fake","pass":true,"profile":"cros","#)
    );
    assert!(!r.killed);
}

#[test]
fn spec_counts_quick_run() {
    // The spec's own counts with --quick (echo_large at full size too).
    let scen: Vec<&str> = host::DEFAULT_SCENARIOS.to_vec();
    let r = run(config(&scen, Counts::new(true, false), 0), 1);
    all_pass(&r);
    assert_eq!(r.line("echo_small")["messages"], 320);
    assert_eq!(r.line("subpipe")["client_count"], 50);
    assert_eq!(r.line("subpipe_c2h")["echoed"], 50);
    assert_eq!(r.line("many_pipes")["pipes"], 200);
    assert_eq!(r.line("throughput_65536")["received"], 400);
    assert_eq!(r.line("latency_4096")["rounds"], 500);
    assert_eq!(r.line("shmem_c2h")["size"], 1 << 20);
}

#[test]
fn datapipe_both_ways_and_multi_attach() {
    let r = run(config(&["datapipe", "subpipe"], small_counts(), 3), 3);
    all_pass(&r);
    assert_eq!(
        r.names(),
        [
            "config",
            "connect",
            "multi_attach",
            "subpipe",
            "datapipe_h2c",
            "datapipe_c2h",
            "shutdown"
        ]
    );
    assert_eq!(r.line("multi_attach")["ok"], 3);
    assert_eq!(r.line("datapipe_c2h")["client_last_result"], 0);
    assert_eq!(r.line("datapipe_h2c")["client_state"], "running");
}

#[test]
fn leak_runs_its_warm_up_and_measured_round_trips_only_when_named() {
    let mut counts = small_counts();
    counts.leak_iters = 25;
    let r = run(config(&["leak", "many_pipes"], counts.clone(), 0), 1);
    all_pass(&r);
    // After many_pipes, before shutdown: the reference's order.
    assert_eq!(
        r.names(),
        ["config", "connect", "many_pipes", "leak", "shutdown"]
    );
    let leak = r.line("leak");
    assert_eq!(leak["iterations"], 25);
    assert_eq!(leak["round_trips_ok"], 25 + host::LEAK_WARMUP);
    // No proxy here, and the client is a thread: no fd or RSS figures.
    assert_eq!(leak["proxy_fds_start"], -1);
    assert_eq!(leak["client_rss_kb_end"], -1);
    assert!(leak["host_fds_end"].as_i64().unwrap() > 0, "{leak}");
    assert!(!host::DEFAULT_SCENARIOS.contains(&"leak"));
    // A negative count runs no measured round trip and fails, as in the
    // reference (done != warm-up + count).
    counts.leak_iters = -3;
    let r = run(config(&["leak"], counts, 0), 1);
    assert_eq!(r.line("leak")["pass"], false);
    assert_eq!(r.line("leak")["round_trips_ok"], host::LEAK_WARMUP);
}

/// `throughput_extra` with small counts: one 1 MiB run, and 20 messages
/// of each handle run.
fn extra_counts() -> Counts {
    let mut c = small_counts();
    c.throughput_extra = vec![(1 << 20, 3)];
    c.handle_sink = 20;
    c
}

#[test]
fn throughput_extra_runs_large_messages_and_one_handle_per_message() {
    let r = run(config(&["throughput_extra"], extra_counts(), 0), 1);
    all_pass(&r);
    assert_eq!(
        r.names(),
        [
            "config",
            "connect",
            "throughput_1048576",
            "throughput_fd",
            "throughput_shm",
            "throughput_pipe",
            "shutdown"
        ]
    );
    assert_eq!(r.line("throughput_1048576")["received"], 3);
    assert_eq!(r.line("throughput_1048576")["bytes"], 3 << 20);
    for (name, _) in host::HANDLE_RUNS {
        let l = r.line(name);
        assert_eq!(l["count"], 20, "{l}");
        assert_eq!(l["received"], 20, "{l}");
        assert_eq!(l["handles"], 20, "{l}");
        assert_eq!(l["bad"], 0, "{l}");
        assert_eq!(l["bytes"], 20 * host::HANDLE_SINK_SIZE, "{l}");
        assert!(l["msgs_per_s"].as_f64().unwrap() > 0.0, "{l}");
    }
    // Ours: never run unless named.
    assert!(!host::DEFAULT_SCENARIOS.contains(&"throughput_extra"));
    let r = run(config(&["throughput", "latency"], small_counts(), 0), 1);
    assert!(!r.names().iter().any(|n| n == "throughput_fd"));
}

#[test]
fn handle_runs_fail_when_the_handles_do_not_arrive() {
    let r = run_faulty(
        Fault::LoseReceivedHandles,
        config(&["throughput_extra"], extra_counts(), 0),
    );
    for (name, _) in host::HANDLE_RUNS {
        let l = r.line(name);
        assert_eq!(l["pass"], false, "{l}");
        assert_eq!(l["received"], 20, "{l}");
        assert_eq!(l["handles"], 0, "{l}");
        assert_eq!(l["bad"], 20, "{l}");
    }
    // Messages without handles are not affected.
    assert_eq!(r.line("throughput_1048576")["pass"], true);
    assert_eq!(r.line("shutdown")["pass"], true);
}

#[test]
fn the_handle_sink_counts_only_one_handle_of_the_named_kind() {
    let sys = FakeSystem::new();
    let (h, c) = sys.create_message_pipe().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| client::serve_all(&sys, vec![c], false));
        let start = protocol::Payload::HandleSink {
            count: 4,
            size: 8,
            kind: protocol::sink_kind::FD,
        };
        sys.write_message(&h, &start.encode(), Vec::new()).unwrap();
        let data = [3, 0, 0, 0, 0xab, 0xab, 0xab, 0xab];
        let fd = |sys: &FakeSystem| {
            let memfd = nix::sys::memfd::memfd_create("t", nix::sys::memfd::MFdFlags::empty());
            Handle::from(sys.wrap_platform_handle(memfd.unwrap()).unwrap())
        };
        // An fd: counted. A pipe end: not an fd. None. Two fds. A short one.
        sys.write_message(&h, &data, vec![fd(&sys)]).unwrap();
        let (_keep, other) = sys.create_message_pipe().unwrap();
        sys.write_message(&h, &data, vec![other.into()]).unwrap();
        sys.write_message(&h, &data, Vec::new()).unwrap();
        sys.write_message(&h, &data, vec![fd(&sys), fd(&sys)])
            .unwrap();
        let ack = mojo_test_peers::system::read_one(&sys, &h, None).unwrap();
        assert_eq!(
            protocol::Payload::decode(&ack.bytes),
            Ok(protocol::Payload::HandleSinkAck {
                received: 4,
                bytes: 32,
                bad: 3,
                handles: 1
            })
        );
        // A well-formed fd message of the wrong size is bad too.
        let start = protocol::Payload::HandleSink {
            count: 1,
            size: 64,
            kind: protocol::sink_kind::FD,
        };
        sys.write_message(&h, &start.encode(), Vec::new()).unwrap();
        sys.write_message(&h, &data, vec![fd(&sys)]).unwrap();
        let ack = mojo_test_peers::system::read_one(&sys, &h, None).unwrap();
        assert_eq!(
            protocol::Payload::decode(&ack.bytes),
            Ok(protocol::Payload::HandleSinkAck {
                received: 1,
                bytes: 8,
                bad: 1,
                handles: 1
            })
        );
        drop(h);
    });
}

/// Runs the host on `pipe` with no client thread behind it: the outcome,
/// whether it killed its children, and what it printed.
fn run_alone(sys: &FakeSystem, pipe: MessagePipe, cfg: &HostConfig) -> (HostOutcome, bool, String) {
    let mut children = ThreadChildren {
        client: Arc::new(Mutex::new(None)),
        killed: false,
    };
    let mut out = Vec::new();
    let now = Instant::now();
    let conn = Connection {
        pipes: vec![pipe],
        spawned_at: now,
        invitation_sent_at: now,
    };
    let outcome = host::run(sys, conn, cfg, &mut children, &mut out);
    (outcome, children.killed, String::from_utf8(out).unwrap())
}

#[test]
fn connect_failure_exits_1_and_kills() {
    let sys = Arc::new(FakeSystem::new());
    let (h, c) = sys.create_message_pipe().unwrap();
    drop(c);
    let cfg = config(&["echo_small"], small_counts(), 0);
    let (outcome, killed, text) = run_alone(&sys, h, &cfg);
    assert_eq!(outcome, HostOutcome::ConnectFailed);
    assert_eq!(outcome.exit_code(), 1);
    assert!(killed);
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["scenario"], "connect");
    assert_eq!(last["pass"], false);
    assert_eq!(last["error"], "read failed r=9");
}

#[test]
fn watchdog_prints_timeout_and_exits_3() {
    // A client that never answers: the watchdog ends `connect`.
    let sys = Arc::new(FakeSystem::new());
    let (h, _c) = sys.create_message_pipe().unwrap();
    let mut cfg = config(&["echo_small"], small_counts(), 0);
    cfg.timeout = Some(Duration::from_millis(300));
    let (outcome, killed, text) = run_alone(&sys, h, &cfg);
    assert_eq!(outcome, HostOutcome::TimedOut);
    assert_eq!(outcome.exit_code(), 3);
    assert!(killed);
    assert_eq!(
        text.lines().last().unwrap(),
        r#"{"scenario":"connect","label":"fake","pass":false,"error":"timeout"}"#
    );
}

#[test]
fn handle_timeout_fails_one_scenario_and_the_run_goes_on() {
    // The client swallows kSubPipeC2HDone: the host's handle deadline ends that
    // scenario (not the watchdog) and the next scenario still passes.
    let mut cfg = config(&["subpipe_c2h", "many_pipes"], small_counts(), 0);
    cfg.handle_timeout = Duration::from_millis(300);
    let r = run_faulty(Fault::SwallowOp(op::SUB_PIPE_C2H_DONE), cfg);
    assert_eq!(r.outcome, HostOutcome::Completed);
    let l = r.line("subpipe_c2h");
    assert_eq!(l["pass"], false);
    assert_eq!(l["error"], "timeout waiting for kSubPipeC2HDone");
    assert_eq!(l["echoed"], 3, "the echoes themselves arrived");
    assert_eq!(r.line("many_pipes")["pass"], true);
}

#[test]
fn wrong_echo_is_reported() {
    let cfg = config(
        &["echo_small", "subpipe", "subpipe_c2h", "many_pipes"],
        small_counts(),
        0,
    );
    let r = run_faulty(Fault::CorruptEcho, cfg);
    assert_eq!(r.line("connect")["pass"], true, "Hello is not an Echo");
    for s in ["echo_small", "subpipe", "subpipe_c2h", "many_pipes"] {
        assert_eq!(r.line(s)["pass"], false, "{s} must fail");
    }
    assert!(r.line("echo_small")["mismatches"].as_u64().unwrap() > 0);
    assert_eq!(r.line("shutdown")["pass"], true);
}

#[test]
fn missing_handle_is_reported() {
    let cfg = config(
        &[
            "subpipe_c2h",
            "shmem_c2h",
            "platform_handle_c2h",
            "pipe_roundtrip",
            "datapipe_c2h",
            "echo_small",
        ],
        small_counts(),
        0,
    );
    let r = run_faulty(Fault::DropHandles, cfg);
    assert_eq!(r.line("subpipe_c2h")["handles_in_msg"], 0);
    assert_eq!(r.line("shmem_c2h")["handles_in_msg"], 0);
    assert_eq!(r.line("platform_handle_c2h")["handles_in_msg"], 0);
    assert_eq!(r.line("pipe_roundtrip")["bounces_done"], 0);
    assert_eq!(r.line("datapipe_c2h")["handles_in_msg"], 0);
    for s in [
        "subpipe_c2h",
        "shmem_c2h",
        "shmem_c2h_readonly",
        "platform_handle_c2h",
        "pipe_roundtrip",
        "pipe_roundtrip_5hop",
        "datapipe_c2h",
    ] {
        assert_eq!(r.line(s)["pass"], false, "{s} must fail");
    }
    // The host stayed in step: a later plain scenario passes.
    assert_eq!(r.line("echo_small")["pass"], true);
    assert_eq!(r.line("shutdown")["pass"], true);
}

#[test]
fn client_answers_unknown_and_malformed_requests_with_errors() {
    let sys = FakeSystem::new();
    let (h, c) = sys.create_message_pipe().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| client::serve(&sys, c, 0, false));
        let expect = |req: Vec<u8>, want: Vec<u64>| {
            sys.write_message(&h, &req, Vec::new()).unwrap();
            let m = mojo_test_peers::system::read_one(&sys, &h, None).unwrap();
            assert_eq!(
                protocol::Payload::decode(&m.bytes),
                Ok(protocol::Payload::Error {
                    code: want[0],
                    detail: want[1..].to_vec()
                })
            );
        };
        expect(50u32.to_le_bytes().to_vec(), vec![100, 50]);
        expect(op::SINK_ACK.to_le_bytes().to_vec(), vec![100, 4]);
        expect(vec![1, 2], vec![100, 0]);
        expect(op::SHMEM_C2H.to_le_bytes().to_vec(), vec![101, 24, 4]);
        expect(op::SUB_PIPE.to_le_bytes().to_vec(), vec![1]);
        expect(
            protocol::Payload::PlatHandle { size: 1 }.encode(),
            vec![4, 0],
        );
        expect(
            protocol::Payload::PipeBounce { hop: 3 }.encode(),
            vec![32, 0],
        );
        expect(
            protocol::Payload::DataPipe { total: 1 }.encode(),
            vec![7, 0],
        );
        drop(h);
    });
    assert_eq!(sys.open_handles(), 0);
}

// ---- a MojoSystem sharing one fake, and a broken one around it.

struct Shared(Arc<FakeSystem>);

#[derive(Clone, Copy)]
enum Fault {
    /// Flip the last byte of every Echo payload written.
    CorruptEcho,
    /// Write every message without its handles.
    DropHandles,
    /// Never write messages with this opcode.
    SwallowOp(u32),
    /// Read every message without its handles (they are closed).
    LoseReceivedHandles,
}

struct Broken {
    inner: Shared,
    fault: Fault,
}

macro_rules! delegate {
    ($t:ty, $inner:expr) => {
        impl MojoSystem for $t {
            type Mapping = <FakeSystem as MojoSystem>::Mapping;
            fn create_message_pipe(&self) -> MojoResult<(MessagePipe, MessagePipe)> {
                $inner(self).create_message_pipe()
            }
            fn try_write_message(
                &self,
                p: &MessagePipe,
                b: &[u8],
                h: Vec<Handle>,
            ) -> Result<(), WriteMessageError> {
                self.write_hook(p, b, h)
            }
            fn read_message(&self, p: &MessagePipe) -> MojoResult<Message> {
                self.read_hook(p)
            }
            fn query_signals(&self, h: MojoHandle) -> MojoResult<SignalsState> {
                $inner(self).query_signals(h)
            }
            fn wait_any(
                &self,
                h: &[(MojoHandle, Signals)],
                d: Option<Instant>,
            ) -> Result<usize, WaitError> {
                $inner(self).wait_any(h, d)
            }
            fn create_shared_buffer(&self, size: u64) -> MojoResult<SharedBuffer> {
                $inner(self).create_shared_buffer(size)
            }
            fn duplicate_buffer(&self, b: &SharedBuffer, ro: bool) -> MojoResult<SharedBuffer> {
                $inner(self).duplicate_buffer(b, ro)
            }
            fn buffer_size(&self, b: &SharedBuffer) -> MojoResult<u64> {
                $inner(self).buffer_size(b)
            }
            fn map_buffer(&self, b: &SharedBuffer, o: u64, l: u64) -> MojoResult<Self::Mapping> {
                $inner(self).map_buffer(b, o, l)
            }
            fn unwrap_shared_buffer(&self, b: SharedBuffer) -> MojoResult<UnwrappedRegion> {
                $inner(self).unwrap_shared_buffer(b)
            }
            fn wrap_shared_buffer(
                &self,
                r: UnwrappedRegion,
            ) -> Result<SharedBuffer, mojo_test_peers::system::WrapRegionError> {
                $inner(self).wrap_shared_buffer(r)
            }
            fn wrap_platform_handle(&self, fd: OwnedFd) -> MojoResult<PlatformHandle> {
                $inner(self).wrap_platform_handle(fd)
            }
            fn unwrap_platform_handle(&self, h: PlatformHandle) -> MojoResult<OwnedFd> {
                $inner(self).unwrap_platform_handle(h)
            }
            fn create_data_pipe(
                &self,
                e: u32,
                c: u32,
            ) -> MojoResult<(DataPipeProducer, DataPipeConsumer)> {
                $inner(self).create_data_pipe(e, c)
            }
            fn write_data(&self, p: &DataPipeProducer, d: &[u8]) -> MojoResult<usize> {
                $inner(self).write_data(p, d)
            }
            fn read_data(&self, c: &DataPipeConsumer, b: &mut [u8]) -> MojoResult<usize> {
                $inner(self).read_data(c, b)
            }
            fn begin_write_data(&self, p: &DataPipeProducer) -> MojoResult<Vec<u8>> {
                $inner(self).begin_write_data(p)
            }
            fn end_write_data(&self, p: &DataPipeProducer, w: &[u8]) -> MojoResult<()> {
                $inner(self).end_write_data(p, w)
            }
            fn begin_read_data(&self, c: &DataPipeConsumer) -> MojoResult<Vec<u8>> {
                $inner(self).begin_read_data(c)
            }
            fn end_read_data(&self, c: &DataPipeConsumer, n: usize) -> MojoResult<()> {
                $inner(self).end_read_data(c, n)
            }
            fn discard_data(&self, c: &DataPipeConsumer, n: usize) -> MojoResult<usize> {
                $inner(self).discard_data(c, n)
            }
            fn query_data(&self, c: &DataPipeConsumer) -> MojoResult<usize> {
                $inner(self).query_data(c)
            }
            fn create_trap(&self) -> MojoResult<mojo_test_peers::system::Trap> {
                $inner(self).create_trap()
            }
            fn add_trigger(
                &self,
                t: &mojo_test_peers::system::Trap,
                h: MojoHandle,
                s: Signals,
                c: mojo_test_peers::system::TriggerCondition,
                x: u64,
            ) -> MojoResult<()> {
                $inner(self).add_trigger(t, h, s, c, x)
            }
            fn remove_trigger(&self, t: &mojo_test_peers::system::Trap, x: u64) -> MojoResult<()> {
                $inner(self).remove_trigger(t, x)
            }
            fn arm_trap(
                &self,
                t: &mojo_test_peers::system::Trap,
                n: usize,
            ) -> Result<(), mojo_test_peers::system::ArmTrapError> {
                $inner(self).arm_trap(t, n)
            }
        }
    };
}

impl Shared {
    fn write_hook(
        &self,
        p: &MessagePipe,
        b: &[u8],
        h: Vec<Handle>,
    ) -> Result<(), WriteMessageError> {
        self.0.try_write_message(p, b, h)
    }
    fn read_hook(&self, p: &MessagePipe) -> MojoResult<Message> {
        self.0.read_message(p)
    }
}

impl Broken {
    fn read_hook(&self, p: &MessagePipe) -> MojoResult<Message> {
        let mut m = self.inner.0.read_message(p)?;
        if matches!(self.fault, Fault::LoseReceivedHandles) {
            m.handles.clear();
        }
        Ok(m)
    }
    fn write_hook(
        &self,
        p: &MessagePipe,
        b: &[u8],
        h: Vec<Handle>,
    ) -> Result<(), WriteMessageError> {
        let opcode = protocol::opcode_of(b);
        match self.fault {
            Fault::CorruptEcho if opcode == op::ECHO && b.len() > 4 => {
                let mut v = b.to_vec();
                *v.last_mut().unwrap() ^= 0xff;
                self.inner.0.try_write_message(p, &v, h)
            }
            Fault::DropHandles => self.inner.0.try_write_message(p, b, Vec::new()),
            Fault::SwallowOp(o) if o == opcode => Ok(()),
            _ => self.inner.0.try_write_message(p, b, h),
        }
    }
}

fn shared_fake(s: &Shared) -> &FakeSystem {
    &s.0
}
fn broken_fake(s: &Broken) -> &FakeSystem {
    &s.inner.0
}
delegate!(Shared, shared_fake);
delegate!(Broken, broken_fake);

#[test]
fn pipes_are_served_concurrently() {
    // Pipe 0 is busy echoing on a sub-pipe (SubPipe); pipe 1 still answers.
    let sys = FakeSystem::new();
    let (h0, c0) = sys.create_message_pipe().unwrap();
    let (h1, c1) = sys.create_message_pipe().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| client::serve_all(&sys, vec![c0, c1], false));
        let (sub, sub_peer) = sys.create_message_pipe().unwrap();
        let req = protocol::Payload::SubPipe.encode();
        sys.write_message(&h0, &req, vec![sub_peer.into()]).unwrap();
        let hello = protocol::Payload::Hello { index: 1 }.encode();
        sys.write_message(&h1, &hello, Vec::new()).unwrap();
        let got = mojo_test_peers::system::read_one(&sys, &h1, None).unwrap();
        assert_eq!(got.bytes, hello);
        // Pipe 0's request is still open: nothing on it yet.
        assert_eq!(
            sys.read_message(&h0).unwrap_err(),
            mojo_test_peers::system::MojoError::ShouldWait
        );
        sys.write_message(&sub, &[1, 0, 0, 0, 9], Vec::new())
            .unwrap();
        let echo = mojo_test_peers::system::read_one(&sys, &sub, None).unwrap();
        assert_eq!(echo.bytes, [1, 0, 0, 0, 9]);
        drop(sub);
        let done = mojo_test_peers::system::read_one(&sys, &h0, None).unwrap();
        assert_eq!(
            protocol::Payload::decode(&done.bytes),
            Ok(protocol::Payload::SubPipeDone { echoed: 1 })
        );
        drop((h0, h1)); // serve_all returns once both pipes are closed
    });
    assert_eq!(sys.open_handles(), 0);
}

#[test]
#[ignore = "prints a run for eyeballing: cargo test -- --ignored --nocapture"]
fn print_a_run() {
    let mut scen: Vec<&str> = host::DEFAULT_SCENARIOS.to_vec();
    scen.push("datapipe");
    let r = run(config(&scen, small_counts(), 0), 1);
    for l in &r.text {
        println!("{l}");
    }
}
