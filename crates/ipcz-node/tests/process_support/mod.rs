//! Support for the `memory_processes*` tests: NodeLinkMemory over real
//! shared mappings in two real processes.
//!
//! The parent test re-executes its own test binary with [`CHILD_ENV`] naming
//! the child's role and the filter `child_main --exact`, so the child runs
//! only the `child_main` test, which dispatches on the role. The child's
//! socket end becomes its stdin (std `dup2`s it to fd 0, so no `pre_exec` and
//! no inheritable fd in the parent); the child adopts a duplicate of fd 0 as
//! an [`Endpoint`]. No `unsafe` anywhere.
//!
//! Messages are test frames of u64 words (`u32 word count, u32 fd count,
//! words`), word 0 naming the kind. Regions travel as their one `O_RDWR` fd
//! ([`RegionMode::Unsafe`], as AddBlockBuffer sends them) with size and guid.
//!
//! Nothing here blocks without a deadline: socket waits poll with short
//! sleeps until [`DEADLINE`], spin barriers yield until it, and
//! [`ChildProcess`] kills a child that is still running when it is dropped
//! (a failed parent never leaves an orphan spinning).

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::cell::Cell;
use std::collections::BTreeSet;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mojo_platform_channel::{
    Endpoint, Mapping, OsRandom, ReadOutcome, RegionMode, SharedMemory, SharedMemoryRegion,
    ShmAccessError, WriteOutcome, socketpair_fds,
};
use mojo_wire_kit::{RandomSource, SeededRandom};

/// Names the child's role; unset in a normal test run.
pub const CHILD_ENV: &str = "IPCZ_NODE_MEMORY_CHILD";

/// Longest any one test may run, in either process: a wait that reaches it
/// fails the test (a hang would otherwise block CI forever).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Checks of a shared word a waiting side spins through before it yields
/// its core: while the other process runs on the other core, staying on
/// ours keeps the two running at the same time.
const SPINS_BEFORE_YIELD: u32 = 100;

/// Waits on a shared word: spins a while, then yields.
fn pause(spins: &mut u32) {
    if *spins < SPINS_BEFORE_YIELD {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// Sleep between polls of a socket that had nothing to read.
const POLL_INTERVAL: Duration = Duration::from_micros(100);

/// Size of the test's own control region (barriers, progress counters,
/// owner words): never touched by NodeLinkMemory nor by a hostile child.
pub const CONTROL_SIZE: usize = 64 * 1024;

/// Message kind carrying regions: `[REGIONS, n, (size, guid high, guid low) * n]`.
pub const MSG_REGIONS: u64 = 0x100;

/// Serializes the tests of one binary: each counts `/proc/self/fd`, and each
/// races two processes that should have both cores to themselves.
static PROCESS_LOCK: Mutex<()> = Mutex::new(());

pub fn process_lock() -> MutexGuard<'static, ()> {
    PROCESS_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Number of open fds of this process.
pub fn open_fd_count() -> usize {
    open_fds().len()
}

/// The open fds of this process, without the one reading the directory:
/// its number is the lowest free one at that moment, so it differs between
/// two listings whenever another thread held a low fd during one of them.
pub fn open_fds() -> BTreeSet<i32> {
    let own = std::fs::canonicalize("/proc/self/fd").unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            if std::fs::read_link(e.path()).is_ok_and(|t| t == own) {
                return None;
            }
            e.file_name().to_str()?.parse().ok()
        })
        .collect()
}

/// Checks of the fd table after a test, 5 ms apart, before an fd it did not
/// close counts as leaked: the test harness's own threads may hold a file
/// open for a moment (not ours to count), never for a second. A real leak
/// stays, so waiting costs a passing test nothing.
const FD_LEAK_CHECKS: usize = 200;

/// Runs `f` holding the process lock and asserts that every fd open
/// afterwards was open before.
pub fn assert_no_fd_leak<T>(f: impl FnOnce() -> T) -> T {
    let _guard = process_lock();
    let before = open_fds();
    let out = f();
    for check in 1..=FD_LEAK_CHECKS {
        let new: Vec<(i32, String)> = open_fds()
            .difference(&before)
            .map(|fd| {
                let target = std::fs::read_link(format!("/proc/self/fd/{fd}"));
                (*fd, format!("{target:?}"))
            })
            .collect();
        if new.is_empty() {
            break;
        }
        assert!(
            check < FD_LEAK_CHECKS,
            "fds leaked: {new:?} (open before: {before:?})"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    out
}

/// A seeded source with a helper for bounded picks.
pub struct Rng(SeededRandom);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(SeededRandom::new(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.0.next_u64() % n as u64) as usize
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        self.0.fill(buf);
    }
}

// ---------------------------------------------------------------------------
// the socket

/// One end of the test socket, with a deadline for every wait.
pub struct Peer {
    ep: Endpoint,
    deadline: Instant,
    eof: bool,
}

fn encode(words: &[u64], fds: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(8 + 8 * words.len());
    v.extend_from_slice(&(words.len() as u32).to_le_bytes());
    v.extend_from_slice(&(fds as u32).to_le_bytes());
    for w in words {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v
}

impl Peer {
    fn new(ep: Endpoint) -> Self {
        Self {
            ep,
            deadline: Instant::now() + DEADLINE,
            eof: false,
        }
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    fn check_deadline(&self, what: &str) {
        assert!(Instant::now() < self.deadline, "deadline reached: {what}");
    }

    /// Queues a message and tries to send it (see [`pump`](Self::pump)).
    pub fn send(&mut self, words: &[u64], fds: Vec<OwnedFd>) {
        let n = fds.len();
        self.ep.queue(encode(words, n), fds).unwrap();
        self.pump();
    }

    /// Flushes what it can and reads what has arrived, without waiting;
    /// true if anything moved.
    pub fn pump(&mut self) -> bool {
        let mut moved = false;
        if self.ep.has_pending_output() {
            let before = self.ep.pending_output_bytes();
            let _ = self.ep.flush().unwrap();
            moved |= self.ep.pending_output_bytes() != before;
        }
        while !self.eof {
            match self.ep.read_available().unwrap() {
                ReadOutcome::Data { .. } => moved = true,
                ReadOutcome::WouldBlock => break,
                ReadOutcome::Eof => self.eof = true,
            }
        }
        moved
    }

    /// Sends everything queued, waiting as needed.
    pub fn flush_all(&mut self) {
        while self.ep.has_pending_output() {
            if self.ep.flush().unwrap() == WriteOutcome::WouldBlock {
                self.check_deadline("flushing");
                // Keep reading meanwhile: the other side may be blocked on us.
                self.pump();
                std::thread::sleep(POLL_INTERVAL);
            }
        }
    }

    /// A complete message, if one has arrived (no waiting beyond a pump).
    pub fn try_recv(&mut self) -> Option<(Vec<u64>, Vec<OwnedFd>)> {
        if let Some(m) = self.take_message() {
            return Some(m);
        }
        self.pump();
        self.take_message()
    }

    fn take_message(&mut self) -> Option<(Vec<u64>, Vec<OwnedFd>)> {
        let buf = self.ep.buffered();
        let words = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
        let nfds = u32::from_le_bytes(buf.get(4..8)?.try_into().ok()?) as usize;
        let len = 8 + 8 * words;
        if buf.len() < len {
            return None;
        }
        assert!(
            self.ep.queued_fds() >= nfds,
            "message complete, fds missing"
        );
        let words: Vec<u64> = buf[8..len]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        self.ep.consume(len).unwrap();
        let fds = self.ep.take_fds(nfds).unwrap();
        Some((words, fds))
    }

    /// Waits for the next message; fails at EOF or the deadline.
    pub fn recv(&mut self) -> (Vec<u64>, Vec<OwnedFd>) {
        loop {
            if let Some(m) = self.try_recv() {
                return m;
            }
            assert!(!self.eof, "peer closed the socket");
            self.check_deadline("waiting for a message");
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Waits for a message of `kind` and returns its words after the kind.
    pub fn expect(&mut self, kind: u64) -> Vec<u64> {
        let (words, fds) = self.recv();
        assert!(fds.is_empty(), "unexpected fds");
        assert_eq!(words.first(), Some(&kind), "unexpected message {words:?}");
        words[1..].to_vec()
    }

    /// True once the other end closed.
    pub fn at_eof(&mut self) -> bool {
        self.pump();
        self.eof
    }

    /// Sends `regions` (duplicates of their fds: the caller keeps them).
    pub fn send_regions(&mut self, regions: &[&SharedMemoryRegion]) {
        let mut words = vec![MSG_REGIONS, regions.len() as u64];
        let mut fds = Vec::new();
        for r in regions {
            assert_eq!(r.mode(), RegionMode::Unsafe);
            words.extend([r.size() as u64, (r.guid() >> 64) as u64, r.guid() as u64]);
            fds.push(r.fd().try_clone_to_owned().unwrap());
        }
        self.send(&words, fds);
        self.flush_all();
    }

    /// Receives regions sent with [`send_regions`](Self::send_regions),
    /// imported with every check of `SharedMemoryRegion::from_fds`.
    pub fn recv_regions(&mut self) -> Vec<SharedMemoryRegion> {
        let (words, fds) = self.recv();
        assert_eq!(words[0], MSG_REGIONS);
        let n = words[1] as usize;
        assert_eq!(fds.len(), n);
        fds.into_iter()
            .enumerate()
            .map(|(i, fd)| {
                let w = &words[2 + 3 * i..5 + 3 * i];
                let guid = (u128::from(w[1]) << 64) | u128::from(w[2]);
                let region =
                    SharedMemoryRegion::from_fds(RegionMode::Unsafe, w[0] as usize, guid, vec![fd])
                        .unwrap();
                assert!(region.is_sealed(), "our regions are sealed memfds");
                region
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// processes

/// A child process that is killed (and reaped) if still running on drop.
pub struct ChildProcess {
    child: Option<Child>,
}

impl ChildProcess {
    /// Waits (until the deadline) and asserts a successful exit.
    pub fn wait_success(mut self) {
        use std::os::unix::process::ExitStatusExt;
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child did not exit before the deadline");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert!(
            status.success(),
            "child failed: {status} (signal {:?})",
            status.signal()
        );
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts this test binary again as the child in `role`, its stdin our
/// socket's other end.
pub fn spawn_child(role: &str) -> (ChildProcess, Peer) {
    // Blocking and close-on-exec: std dup2s it onto the child's stdin (which
    // clears close-on-exec there only); the child makes its copy non-blocking.
    let (ours, theirs) = socketpair_fds(false, true).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["child_main", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, role)
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let ep = Endpoint::from_owned_fd(ours).unwrap();
    (ChildProcess { child: Some(child) }, Peer::new(ep))
}

/// In the child: its role, if this process is one.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// In the child: the socket to the parent (a duplicate of stdin; fd 0
/// itself stays open and unused).
pub fn parent_peer() -> Peer {
    let fd = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
    Peer::new(Endpoint::from_owned_fd(fd).expect("stdin is our socket"))
}

/// Runs the child's role with the fd check of the parent's tests, then
/// exits the process (the test harness never reports on it).
pub fn run_child(role: impl FnOnce(&str, &mut Peer)) {
    let Some(name) = child_role() else {
        return;
    };
    let before = open_fd_count();
    {
        let mut peer = parent_peer();
        role(&name, &mut peer);
        peer.flush_all();
    }
    assert_eq!(open_fd_count(), before, "child leaked fds");
    std::process::exit(0);
}

// ---------------------------------------------------------------------------
// regions

/// A sealed memfd region (`Unsafe`: one `O_RDWR` fd) with an OS-random guid,
/// as the proxy creates them.
pub fn create_region(size: usize) -> SharedMemoryRegion {
    SharedMemoryRegion::create(RegionMode::Unsafe, size, &mut OsRandom::new().unwrap()).unwrap()
}

/// The control region of one test: named words at fixed offsets, shared by
/// both processes, outside everything the code under test touches.
pub struct Control {
    pub map: Mapping,
}

impl Control {
    pub fn new(map: Mapping) -> Self {
        assert!(map.len() >= CONTROL_SIZE);
        Self { map }
    }

    /// Both processes meet at the barrier word `offset` (one word per
    /// barrier, used once): each adds one and waits for two.
    pub fn barrier(&self, offset: usize) {
        self.map.fetch_add_u32(offset, 1, Ordering::AcqRel).unwrap();
        let deadline = Instant::now() + DEADLINE;
        let mut spins = 0;
        while self.map.load_u32(offset, Ordering::Acquire).unwrap() < 2 {
            assert!(Instant::now() < deadline, "barrier {offset} timed out");
            pause(&mut spins);
        }
    }

    pub fn load(&self, offset: usize) -> u32 {
        self.map.load_u32(offset, Ordering::Acquire).unwrap()
    }

    pub fn store(&self, offset: usize, value: u32) {
        self.map
            .store_u32(offset, value, Ordering::Release)
            .unwrap();
    }

    pub fn load64(&self, offset: usize) -> u64 {
        self.map.load_u64(offset, Ordering::Acquire).unwrap()
    }

    pub fn store64(&self, offset: usize, value: u64) {
        self.map
            .store_u64(offset, value, Ordering::Release)
            .unwrap();
    }

    /// Compare-and-swap of a u32 (AcqRel): Ok(previous) or Err(actual).
    pub fn cas(&self, offset: usize, current: u32, new: u32) -> Result<u32, u32> {
        self.map
            .compare_exchange_u32(offset, current, new, Ordering::AcqRel, Ordering::Acquire)
            .unwrap()
    }

    pub fn fetch_add(&self, offset: usize, value: u32) -> u32 {
        self.map
            .fetch_add_u32(offset, value, Ordering::AcqRel)
            .unwrap()
    }
}

/// Keeps two sides' loops within `window` iterations of each other, so that
/// whenever both processes run they run the same phase of the race (and not
/// one after the other when the machine is busy), and counts how many of
/// our iterations saw the other side move.
pub struct Lockstep {
    ours: usize,
    theirs: usize,
    window: u64,
    last_seen: u64,
    /// Our iterations after which the other side had moved.
    pub interleaved: u64,
}

/// A window that never waits: [`Lockstep`] then only counts.
pub const NO_WAITING: u64 = u64::MAX;

impl Lockstep {
    /// `ours`/`theirs`: offsets of the two sides' u64 progress words (zero
    /// at the start, used by this race only).
    pub fn new(ours: usize, theirs: usize, window: u64) -> Self {
        Self {
            ours,
            theirs,
            window,
            last_seen: 0,
            interleaved: 0,
        }
    }

    /// After our iteration `i` (from 0): publish it, then wait until the
    /// other side is at most `window` iterations behind (or finished).
    pub fn step(&mut self, control: &Control, i: u64) {
        let done = i + 1;
        control.store64(self.ours, done);
        let deadline = Instant::now() + DEADLINE;
        let mut spins = 0;
        loop {
            let seen = control.load64(self.theirs);
            if seen != self.last_seen {
                self.interleaved += 1;
                self.last_seen = seen;
            }
            if seen.saturating_add(self.window) >= done {
                return;
            }
            assert!(Instant::now() < deadline, "the other side stopped moving");
            pause(&mut spins);
        }
    }

    /// We are done: the other side never waits for us again.
    pub fn finish(&self, control: &Control) {
        control.store64(self.ours, u64::MAX);
    }
}

/// Every how many compare-and-swaps [`Counted`] yields its core first.
pub const YIELD_BEFORE_CAS_EVERY: u64 = 8;

/// A mapping that counts the compare-and-swaps that failed, and before one
/// in [`YIELD_BEFORE_CAS_EVERY`] yields the core, after the operation's
/// loads: on a busy machine where the two processes share one core, the
/// other one then runs right inside our operation, as a peer on another
/// core would. Each failed CAS of the block allocator means the other
/// process changed the word between our load and our CAS: a race inside
/// one operation, which is what these tests are about.
pub struct Counted {
    map: Mapping,
    failed_cas: Cell<u64>,
    cas_calls: Cell<u64>,
}

impl Counted {
    pub fn new(map: Mapping) -> Self {
        Self {
            map,
            failed_cas: Cell::new(0),
            cas_calls: Cell::new(0),
        }
    }

    fn before_cas(&self) {
        let n = self.cas_calls.get() + 1;
        self.cas_calls.set(n);
        if n % YIELD_BEFORE_CAS_EVERY == 0 {
            std::thread::yield_now();
        }
    }

    /// Compare-and-swaps that found another value than expected.
    pub fn failed_cas(&self) -> u64 {
        self.failed_cas.get()
    }

    fn count<T>(
        &self,
        r: Result<Result<T, T>, ShmAccessError>,
    ) -> Result<Result<T, T>, ShmAccessError> {
        if let Ok(Err(_)) = r {
            self.failed_cas.set(self.failed_cas.get() + 1);
        }
        r
    }
}

impl SharedMemory for Counted {
    fn size(&self) -> usize {
        self.map.size()
    }
    fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, ShmAccessError> {
        self.map.load_u32(offset, order)
    }
    fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64, ShmAccessError> {
        self.map.load_u64(offset, order)
    }
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), ShmAccessError> {
        self.map.store_u32(offset, value, order)
    }
    fn store_u64(&self, offset: usize, value: u64, order: Ordering) -> Result<(), ShmAccessError> {
        self.map.store_u64(offset, value, order)
    }
    fn fetch_add_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError> {
        self.map.fetch_add_u32(offset, value, order)
    }
    fn fetch_sub_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError> {
        self.map.fetch_sub_u32(offset, value, order)
    }
    fn fetch_or_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError> {
        self.map.fetch_or_u32(offset, value, order)
    }
    fn fetch_and_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError> {
        self.map.fetch_and_u32(offset, value, order)
    }
    fn fetch_add_u64(
        &self,
        offset: usize,
        value: u64,
        order: Ordering,
    ) -> Result<u64, ShmAccessError> {
        self.map.fetch_add_u64(offset, value, order)
    }
    fn fetch_sub_u64(
        &self,
        offset: usize,
        value: u64,
        order: Ordering,
    ) -> Result<u64, ShmAccessError> {
        self.map.fetch_sub_u64(offset, value, order)
    }
    fn compare_exchange_u32(
        &self,
        offset: usize,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Result<u32, u32>, ShmAccessError> {
        self.before_cas();
        self.count(
            self.map
                .compare_exchange_u32(offset, current, new, success, failure),
        )
    }
    fn compare_exchange_u64(
        &self,
        offset: usize,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Result<u64, u64>, ShmAccessError> {
        self.before_cas();
        self.count(
            self.map
                .compare_exchange_u64(offset, current, new, success, failure),
        )
    }
    fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), ShmAccessError> {
        self.map.read(offset, dst)
    }
    fn write(&self, offset: usize, src: &[u8]) -> Result<(), ShmAccessError> {
        self.map.write(offset, src)
    }
}

/// Runs `f` on a thread of its own and waits at most `limit` for it, so a
/// hang fails the test instead of blocking CI (a stuck thread is left
/// behind; the test process ends anyway). A panic in `f` is re-raised.
pub fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    use std::sync::mpsc::{RecvTimeoutError, channel};
    let (tx, rx) = channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            handle.join().unwrap();
            v
        }
        Err(RecvTimeoutError::Timeout) => panic!("{what} did not finish within {limit:?}"),
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the thread sends before it ends"),
        },
    }
}
