//! The rig of the proxy stress tests: our Mojo+ipcz host (broker) in this
//! process, the real `mojo_proxy` binary spawned on two socket pairs, and a
//! legacy client either in this process (for tests that steer it) or as a
//! real `mojo-test-client` process (for tests that stop or kill it); the
//! host may reach the proxy through a pausable [`Relay`]. The
//! proxy's `info` log is read for its pairing count; its `/proc` entries
//! give its memory and fds.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mojo_platform_channel::{Endpoint, ReadOutcome};
use mojo_test_peers::cli::{ClientArgs, CommandLine, HostArgs, HostCommand};
use mojo_test_peers::protocol::Payload;
use mojo_test_peers::real::RealSystem;
use mojo_test_peers::real::ipcz::{IpczHostConnector, IpczProtocol};
use mojo_test_peers::real::legacy::{LegacyClientConnector, LegacyProtocol};
use mojo_test_peers::run::{ClientConnector, HostConnector};
use mojo_test_peers::system::{MessagePipe, MojoSystem, read_one};
use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The host's system.
pub(crate) type Host = RealSystem<IpczProtocol>;
/// The in-process client's system.
pub(crate) type Client = RealSystem<LegacyProtocol>;

/// Far beyond what any step takes; only a hang reaches it.
pub(crate) const WATCHDOG: Duration = Duration::from_secs(60);

/// Pairings a proxy with one attachment starts with.
pub(crate) const INITIAL_PAIRINGS: usize = 1;

const HOST_BIN: &str = env!("CARGO_BIN_EXE_mojo-test-host");
const CLIENT_BIN: &str = env!("CARGO_BIN_EXE_mojo-test-client");

/// One rig at a time: a spawn clears close-on-exec on its fds, which a
/// concurrent spawn would inherit, and the runs compete for two cores.
static RUN_LOCK: Mutex<()> = Mutex::new(());

/// Holds the run lock for a test's duration.
pub(crate) fn serialized() -> MutexGuard<'static, ()> {
    RUN_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The `mojo_proxy` binary next to the test peers.
pub(crate) fn proxy_bin() -> PathBuf {
    let path = Path::new(HOST_BIN).with_file_name("mojo_proxy");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p mojo_proxy` (or test the whole workspace)",
        path.display()
    );
    path
}

/// The `mojo-test-client` binary.
pub(crate) fn client_bin() -> &'static str {
    CLIENT_BIN
}

fn host_args() -> HostArgs {
    match HostCommand::parse(&CommandLine::parse(["mojo-test-host"])).unwrap() {
        HostCommand::Host(h) => *h,
        HostCommand::Broker(_) => unreachable!(),
    }
}

fn client_args() -> ClientArgs {
    ClientArgs::parse(&CommandLine::parse(["mojo-test-client", "--fd=3"])).unwrap()
}

/// What the proxy's log said so far.
#[derive(Debug, Default)]
pub(crate) struct LogState {
    /// `pairing N opened` lines.
    pub(crate) opened: usize,
    /// `pairing N closed` lines.
    pub(crate) closed: usize,
    /// Lines at warn level or above.
    pub(crate) warnings: Vec<String>,
    /// Whether stderr reached its end (the proxy exited).
    pub(crate) ended: bool,
    /// Every line, in order (the live-state tests read its records).
    pub(crate) lines: Vec<String>,
}

/// Spawns `program` with `keep` inherited (close-on-exec cleared only for
/// the spawn; the caller holds the run lock).
pub(crate) fn spawn_with(command: &mut Command, keep: &[&OwnedFd]) -> Child {
    for fd in keep {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    }
    let child = command.spawn();
    for fd in keep {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
    }
    child.unwrap()
}

/// The spawned proxy.
pub(crate) struct Proxy {
    /// The process.
    pub(crate) child: Child,
    /// What its log said.
    pub(crate) log: Arc<Mutex<LogState>>,
}

impl Proxy {
    fn spawn(host_end: &OwnedFd, client_end: &OwnedFd) -> Self {
        let mut command = Command::new(proxy_bin());
        command
            .arg(format!("--legacy-client-fd={}", client_end.as_raw_fd()))
            .arg(format!("--host-ipcz-transport-fd={}", host_end.as_raw_fd()))
            .arg("--attachment-name=pipe!")
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped());
        let mut child = spawn_with(&mut command, &[host_end, client_end]);
        let log = Arc::new(Mutex::new(LogState::default()));
        let stderr = child.stderr.take().unwrap();
        let state = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut s = state.lock().unwrap();
                s.lines.push(line.clone());
                if line.contains("] pairing ") && line.ends_with(" opened") {
                    s.opened += 1;
                } else if line.contains("] pairing ") && line.ends_with(" closed") {
                    s.closed += 1;
                } else if line.contains(" WARN ") || line.contains(" ERROR ") {
                    eprintln!("proxy: {line}");
                    s.warnings.push(line);
                }
            }
            state.lock().unwrap().ended = true;
        });
        Self { child, log }
    }

    /// The proxy's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Pairings alive by the log (opened minus closed).
    pub(crate) fn pairings(&self) -> usize {
        let s = self.log.lock().unwrap();
        s.opened - s.closed
    }

    /// Waits (bounded by the watchdog) until the log shows `n` pairings.
    pub(crate) fn wait_pairings(&self, n: usize) {
        let end = Instant::now() + WATCHDOG;
        while self.pairings() != n {
            assert!(
                Instant::now() < end,
                "the proxy still has {} pairings, not {n}",
                self.pairings()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits at most `limit` for the exit; kills the proxy and fails past it.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        wait_child(&mut self.child, limit, "the proxy")
    }

    /// The proxy's open fd count.
    pub(crate) fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// The proxy's fd count once it has settled: an fd that is only in
    /// flight (a new block buffer's memfd until the frame carrying it is
    /// written) goes within `limit`; a leaked one stays. Returns the last
    /// count seen when it never came down to `expected`, with the fds'
    /// targets for the failure message.
    pub(crate) fn settled_fd_count(&self, expected: usize, limit: Duration) -> (usize, String) {
        let end = Instant::now() + limit;
        loop {
            let n = self.fd_count();
            if n <= expected || Instant::now() >= end {
                let targets: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
                    .map(|d| {
                        d.flatten()
                            .filter_map(|e| std::fs::read_link(e.path()).ok())
                            .map(|t| t.display().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                return (n, targets.join(", "));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
    pub(crate) fn status_bytes(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in the proxy's status"));
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb * 1024
    }

    /// Processes whose parent is the proxy.
    pub(crate) fn children(&self) -> Vec<u32> {
        let me = self.pid().to_string();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid ...`; comm may hold spaces.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            if after.split_whitespace().nth(1) == Some(me.as_str()) {
                found.push(pid);
            }
        }
        found
    }

    /// `/dev/shm` files the proxy has open or mapped.
    pub(crate) fn dev_shm_files(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{}/maps", self.pid())) {
            found.extend(
                maps.lines()
                    .filter(|l| l.contains("/dev/shm/"))
                    .map(str::to_string),
            );
        }
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{}/fd", self.pid())) {
            for fd in dir.flatten() {
                if let Ok(target) = std::fs::read_link(fd.path()) {
                    if target.starts_with("/dev/shm") {
                        found.push(target.display().to_string());
                    }
                }
            }
        }
        found
    }

    /// Fails if the proxy logged a warning or error.
    pub(crate) fn assert_no_warnings(&self) {
        let s = self.log.lock().unwrap();
        assert!(s.warnings.is_empty(), "proxy warnings: {:?}", s.warnings);
    }
}

/// Waits at most `limit` for `child`; kills it and fails past that.
pub(crate) fn wait_child(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            panic!("{what} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The client side of a rig.
pub(crate) enum ClientSide {
    /// Our legacy client in this process, with its attachment.
    InProcess(Client, MessagePipe),
    /// A real `mojo-test-client` serving the test-peers protocol.
    Process(Child),
}

/// Host, proxy and client, connected.
pub(crate) struct Rig {
    /// The host's system.
    pub(crate) host: Host,
    /// The host's attachment.
    pub(crate) host_pipe: MessagePipe,
    /// The proxy.
    pub(crate) proxy: Proxy,
    /// The client.
    pub(crate) client: ClientSide,
}

impl Rig {
    /// One echo round trip from the host through the proxy and the client,
    /// so everything is set up before a test's baseline; returns the
    /// message that went each way.
    pub(crate) fn warm_up(&self) -> Vec<u8> {
        let echo = Payload::Echo(b"warm".to_vec()).encode();
        self.host
            .write_message(&self.host_pipe, &echo, Vec::new())
            .unwrap();
        assert_eq!(
            read_one(&self.host, &self.host_pipe, deadline())
                .unwrap()
                .bytes,
            echo
        );
        echo
    }

    /// A rig whose client runs in this process.
    pub(crate) fn in_process() -> Self {
        let (host_ours, host_theirs) = mojo_test_peers::process::socket_pair().unwrap();
        Self::in_process_over(host_ours, host_theirs)
    }

    /// A rig whose client runs in this process and whose host reads the
    /// proxy through a [`Relay`]; returns the relay's switches.
    pub(crate) fn in_process_relayed() -> (Self, Arc<RelaySwitches>) {
        let (host_ours, host_theirs, switches) = relayed_host_sockets();
        (Self::in_process_over(host_ours, host_theirs), switches)
    }

    /// A rig whose client runs in this process and reaches the proxy
    /// through a [`Relay`] (the relay's "proxy" end is the proxy's client
    /// link); returns the relay's switches.
    pub(crate) fn in_process_client_relayed() -> (Self, Arc<RelaySwitches>) {
        let (host_ours, host_theirs) = mojo_test_peers::process::socket_pair().unwrap();
        let (client_ours, relay_client) = mojo_platform_channel::socketpair().unwrap();
        let (relay_proxy, client_theirs) = mojo_platform_channel::socketpair().unwrap();
        // The legacy client's node channel is a socket the proxy sends over
        // the bootstrap link: the relay that matters sits on that one.
        let switches = Arc::new(RelaySwitches::default());
        Relay::start_with(relay_client, relay_proxy, Some(switches.clone()));
        let client_theirs = client_theirs.into_fd(false).unwrap();
        let rig = Self::in_process_with(host_ours, host_theirs, client_ours, client_theirs);
        (rig, switches)
    }

    fn in_process_over(host_ours: OwnedFd, host_theirs: OwnedFd) -> Self {
        let (client_ours, client_theirs) = mojo_platform_channel::socketpair().unwrap();
        let client_theirs = client_theirs.into_fd(false).unwrap();
        Self::in_process_with(host_ours, host_theirs, client_ours, client_theirs)
    }

    fn in_process_with(
        host_ours: OwnedFd,
        host_theirs: OwnedFd,
        client_ours: Endpoint,
        client_theirs: OwnedFd,
    ) -> Self {
        let proxy = Proxy::spawn(&host_theirs, &client_theirs);
        drop((host_theirs, client_theirs));
        let accepting = std::thread::spawn(move || {
            LegacyClientConnector::new(client_ours)
                .accept(&client_args())
                .unwrap()
        });
        let (host, mut host_pipes) = IpczHostConnector
            .connect(&host_args(), host_ours, None)
            .unwrap();
        let (client, mut client_pipes) = accepting.join().unwrap();
        Self {
            host,
            host_pipe: host_pipes.remove(0),
            proxy,
            client: ClientSide::InProcess(client, client_pipes.remove(0)),
        }
    }

    /// A rig whose client is a real `mojo-test-client` process.
    pub(crate) fn with_client_process() -> Self {
        let (host_ours, host_theirs) = mojo_test_peers::process::socket_pair().unwrap();
        Self::with_client_process_over(host_ours, host_theirs)
    }

    /// A rig whose client is a real process and whose host reaches the
    /// proxy through a [`Relay`]; returns the relay's switches.
    pub(crate) fn with_client_process_relayed() -> (Self, Arc<RelaySwitches>) {
        let (host_ours, host_theirs, switches) = relayed_host_sockets();
        (
            Self::with_client_process_over(host_ours, host_theirs),
            switches,
        )
    }

    fn with_client_process_over(host_ours: OwnedFd, host_theirs: OwnedFd) -> Self {
        let (client_ours, client_theirs) = mojo_test_peers::process::socket_pair().unwrap();
        let proxy = Proxy::spawn(&host_theirs, &client_theirs);
        let mut command = Command::new(CLIENT_BIN);
        command.arg(format!("--fd={}", client_ours.as_raw_fd()));
        let client = spawn_with(&mut command, &[&client_ours]);
        drop((host_theirs, client_theirs, client_ours));
        let (host, mut host_pipes) = IpczHostConnector
            .connect(&host_args(), host_ours, None)
            .unwrap();
        Self {
            host,
            host_pipe: host_pipes.remove(0),
            proxy,
            client: ClientSide::Process(client),
        }
    }

    /// Closes the host's attachment (the last pairing), then waits for the
    /// proxy's exit and, for a client process, the client's; returns the
    /// proxy and its status.
    pub(crate) fn finish(self) -> (Proxy, ExitStatus) {
        let Self {
            host,
            host_pipe,
            mut proxy,
            client,
        } = self;
        drop(host_pipe);
        let status = proxy.wait_exit(WATCHDOG);
        if let ClientSide::Process(mut child) = client {
            let code = wait_child(&mut child, WATCHDOG, "the client").code();
            assert_eq!(code, Some(0), "the client's exit status");
        }
        drop(host);
        (proxy, status)
    }

    /// The in-process client and its attachment.
    pub(crate) fn client(&self) -> (&Client, &MessagePipe) {
        match &self.client {
            ClientSide::InProcess(c, p) => (c, p),
            ClientSide::Process(_) => panic!("the client is a process"),
        }
    }

    /// The client process.
    pub(crate) fn client_process(&mut self) -> &mut Child {
        match &mut self.client {
            ClientSide::Process(c) => c,
            ClientSide::InProcess(..) => panic!("the client is in this process"),
        }
    }
}

/// Files in `/dev/shm` named as the platform crate names its own (it
/// unlinks them at once, so none should ever be seen for long).
pub(crate) fn our_dev_shm_files() -> std::collections::BTreeSet<String> {
    std::fs::read_dir(mojo_platform_channel::SHM_DIR)
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(mojo_platform_channel::SHM_NAME_PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

/// A deadline a watchdog away.
pub(crate) fn deadline() -> Option<Instant> {
    Some(Instant::now() + WATCHDOG)
}

/// The host's end and the proxy's end of a relayed host link.
fn relayed_host_sockets() -> (OwnedFd, OwnedFd, Arc<RelaySwitches>) {
    let (host_ours, relay_host) = mojo_platform_channel::socketpair().unwrap();
    let (relay_proxy, host_theirs) = mojo_platform_channel::socketpair().unwrap();
    let switches = Relay::start(relay_host, relay_proxy);
    let host_ours = host_ours.into_fd(false).unwrap();
    let host_theirs = host_theirs.into_fd(false).unwrap();
    (host_ours, host_theirs, switches)
}

/// Whether `fd` is a socket.
fn is_socket(fd: &OwnedFd) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFSOCK)
}

/// What a test can do to a [`Relay`].
#[derive(Default)]
pub(crate) struct RelaySwitches {
    /// Stop reading what the proxy sends (a host that stops reading).
    pub(crate) paused: AtomicBool,
    /// Close both sockets at once (to the proxy, a host that died).
    pub(crate) cut: AtomicBool,
    /// Bytes (and fds) to send the proxy as if from the peer, between two
    /// of the peer's writes; the relay takes it once.
    pub(crate) inject: Mutex<Option<Injection>>,
}

/// A crafted write a [`Relay`] sends the proxy in the peer's name.
pub(crate) struct Injection {
    /// The bytes.
    pub(crate) bytes: Vec<u8>,
    /// The fds sent with them.
    pub(crate) fds: Vec<OwnedFd>,
    /// Whether the relay then hangs up both ways (a peer that died
    /// mid-frame).
    pub(crate) then_cut: bool,
}

/// Moves bytes and fds both ways between the host and the proxy, as the
/// socket would, obeying its [`RelaySwitches`].
pub(crate) struct Relay;

impl Relay {
    /// Relays between `host` and `proxy` on a thread until either end
    /// hangs up or the link is cut; returns the switches.
    fn start(host: Endpoint, proxy: Endpoint) -> Arc<RelaySwitches> {
        Self::start_with(host, proxy, None)
    }

    /// As [`Relay::start`]; with `nested`, the first socket the proxy
    /// sends the peer is replaced by one relayed (obeying `nested`) to it.
    fn start_with(
        host: Endpoint,
        proxy: Endpoint,
        nested: Option<Arc<RelaySwitches>>,
    ) -> Arc<RelaySwitches> {
        let switches = Arc::new(RelaySwitches::default());
        Self::run(host, proxy, switches.clone(), nested);
        switches
    }

    /// The relay's thread.
    fn run(
        mut host: Endpoint,
        mut proxy: Endpoint,
        switch: Arc<RelaySwitches>,
        mut nested: Option<Arc<RelaySwitches>>,
    ) {
        std::thread::spawn(move || {
            loop {
                if switch.cut.load(Ordering::Acquire) {
                    return;
                }
                let injection = switch.inject.lock().unwrap().take();
                if let Some(i) = injection {
                    if proxy.queue(i.bytes, i.fds).is_err() {
                        return;
                    }
                    if i.then_cut {
                        // Everything queued reaches the proxy before the hang-up.
                        while proxy.has_pending_output() && proxy.flush().is_ok() {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        return;
                    }
                }
                let reading_proxy = !switch.paused.load(Ordering::Acquire);
                let interest = |reading: bool, e: &Endpoint| {
                    let mut f = PollFlags::empty();
                    f.set(PollFlags::POLLIN, reading);
                    f.set(PollFlags::POLLOUT, e.has_pending_output());
                    f
                };
                {
                    let mut fds = [
                        PollFd::new(host.as_fd(), interest(true, &host)),
                        PollFd::new(proxy.as_fd(), interest(reading_proxy, &proxy)),
                    ];
                    let _ = poll(&mut fds, PollTimeout::from(5u8));
                }
                let open = Self::pump(&mut host, &mut proxy, &mut None)
                    && (!reading_proxy || Self::pump(&mut proxy, &mut host, &mut nested));
                if !open || host.flush().is_err() || proxy.flush().is_err() {
                    return;
                }
            }
        });
    }

    /// Moves what `from` has to `to`; false once `from` hung up.
    fn pump(
        from: &mut Endpoint,
        to: &mut Endpoint,
        nested: &mut Option<Arc<RelaySwitches>>,
    ) -> bool {
        loop {
            match from.read_available() {
                Ok(ReadOutcome::Data { .. }) => {
                    let bytes = from.buffered().to_vec();
                    let mut fds = from.take_fds(from.queued_fds()).unwrap_or_default();
                    if let Some(i) = fds.iter().position(is_socket) {
                        if let Some(switches) = nested.take() {
                            let (peer_end, relay_peer) =
                                mojo_platform_channel::socketpair().unwrap();
                            let peer_end = peer_end.into_fd(true).unwrap();
                            let theirs = std::mem::replace(&mut fds[i], peer_end);
                            let proxy_side = Endpoint::from_owned_fd(theirs).unwrap();
                            Self::run(relay_peer, proxy_side, switches, None);
                        }
                    }
                    from.consume(bytes.len()).unwrap();
                    if to.queue(bytes, fds).is_err() {
                        return false;
                    }
                }
                Ok(ReadOutcome::WouldBlock) => return true,
                Ok(_) | Err(_) => return false,
            }
        }
    }
}
