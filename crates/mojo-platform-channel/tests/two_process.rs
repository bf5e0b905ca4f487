//! Fd passing and shared memory between two real processes.
//!
//! The parent test re-executes this test binary (`current_exe`) with
//! `MOJO_PC_CHILD=<scenario>` and the filter `child_main --exact`, so the child
//! runs only [`child_main`], which dispatches on the scenario. The child's
//! socket end is handed over as its stdin (`Stdio::from(OwnedFd)`): std
//! `dup2`s it to fd 0 in the child, so no `pre_exec` (unsafe) and no
//! inheritable (non-close-on-exec) fd in the parent are needed, and a child
//! spawned concurrently by another test cannot inherit it. The child then
//! adopts fd 0 with `from_inherited_fd(0)`, exercising the command-line path.
//!
//! The shared-memory scenarios include a hostile peer: the parent shrinks a
//! region the child has mapped or imported, and the child must survive.
//!
//! Every parent test checks that `/proc/self/fd` holds no extra fd afterwards;
//! children check their own count before exiting.

#![allow(missing_docs)]

mod common;

use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;

use common::*;
use mojo_platform_channel::{
    ChannelError, Endpoint, ReadOutcome, RegionMode, SharedMemory, SharedMemoryRegion, ShmBackend,
    ShmError, WriteOutcome, from_inherited_fd, socketpair_fds,
};
use mojo_wire_kit::SeededRandom;

const CHILD_ENV: &str = "MOJO_PC_CHILD";

fn spawn_child(scenario: &str) -> (Child, Endpoint) {
    let (parent, child) = socketpair_fds(true, true).unwrap();
    let exe = std::env::current_exe().unwrap();
    let proc = Command::new(exe)
        .args(["child_main", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, scenario)
        .stdin(Stdio::from(child))
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let ep = Endpoint::from_owned_fd(parent).unwrap();
    (proc, ep)
}

fn wait_ok(mut child: Child) {
    let status = child.wait().unwrap();
    assert!(status.success(), "child failed: {status}");
}

fn run_parent(scenario: &str, body: impl FnOnce(&mut Endpoint, &mut Driver)) {
    assert_no_fd_leak(|| {
        let (child, mut ep) = spawn_child(scenario);
        let mut d = Driver::new(&mut ep);
        body(&mut ep, &mut d);
        drop(d);
        drop(ep);
        wait_ok(child);
    });
}

/// Entry point of the child process; a no-op in a normal test run.
#[test]
#[allow(unsafe_code)]
fn child_main() {
    let Ok(scenario) = std::env::var(CHILD_ENV) else {
        return;
    };
    let before = open_fd_count();
    {
        // SAFETY: the parent handed our socket end over as stdin, and nothing
        // in this child process owns fd 0 (the test harness never reads
        // stdin), so the endpoint becomes its only owner.
        let mut ep = unsafe { from_inherited_fd(0) }.expect("stdin is our socket");
        let mut d = Driver::new(&mut ep);
        match scenario.as_str() {
            "echo_fds" => child_echo_fds(&mut ep, &mut d),
            "many_fds" => child_many_fds(&mut ep, &mut d),
            "large" => child_large(&mut ep, &mut d),
            "close_mid_message" => child_close_mid_message(&mut ep, &mut d),
            "shm" => child_shm(&mut ep, &mut d),
            "ctrunc" => child_ctrunc(&mut ep, &mut d),
            "write_after_close" => child_write_after_close(&mut ep, &mut d),
            "shrink_sealed" => child_shrink_sealed(&mut ep, &mut d),
            "shrink_unsealed" => child_shrink_unsealed(&mut ep, &mut d),
            other => panic!("unknown scenario {other}"),
        }
    }
    // fd 0 (our socket) was adopted and closed; everything else is back.
    assert_eq!(open_fd_count(), before - 1, "child leaked fds");
    std::process::exit(0);
}

// ---------------------------------------------------------------------------
// bytes + fds in both directions

fn child_echo_fds(ep: &mut Endpoint, d: &mut Driver) {
    let (payload, fds) = d.recv_frame(ep).unwrap();
    assert_eq!(payload, b"to child");
    let contents: Vec<Vec<u8>> = fds.into_iter().map(read_all).collect();
    assert_eq!(contents, vec![b"pipe-0".to_vec(), b"pipe-1".to_vec()]);
    // Reply with our own fds: two memfds.
    let reply_fds = vec![memfd_with(b"child-a"), memfd_with(b"child-b")];
    ep.queue(frame(b"to parent", 2), reply_fds).unwrap();
    d.flush_all(ep).unwrap();
}

#[test]
fn bytes_and_fds_both_directions() {
    run_parent("echo_fds", |ep, d| {
        let fds = vec![pipe_with(b"pipe-0"), pipe_with(b"pipe-1")];
        ep.queue(frame(b"to child", 2), fds).unwrap();
        // The parent's copies are closed once sent.
        d.flush_all(ep).unwrap();
        assert_eq!(ep.pending_output_fds(), 0);
        let (payload, fds) = d.recv_frame(ep).unwrap();
        assert_eq!(payload, b"to parent");
        let contents: Vec<Vec<u8>> = fds.into_iter().map(read_all).collect();
        assert_eq!(contents, vec![b"child-a".to_vec(), b"child-b".to_vec()]);
    });
}

// ---------------------------------------------------------------------------
// more than 128 fds in one message, both directions

const MANY: usize = 200;

fn check_numbered(fds: Vec<OwnedFd>, prefix: &str) {
    assert_eq!(fds.len(), MANY);
    for (i, fd) in fds.into_iter().enumerate() {
        assert_eq!(
            read_all(fd),
            format!("{prefix}{i}").into_bytes(),
            "fd {i} out of order or wrong"
        );
    }
}

fn numbered(prefix: &str) -> Vec<OwnedFd> {
    (0..MANY)
        .map(|i| memfd_with(format!("{prefix}{i}").as_bytes()))
        .collect()
}

fn child_many_fds(ep: &mut Endpoint, d: &mut Driver) {
    let (payload, fds) = d.recv_frame(ep).unwrap();
    assert_eq!(payload, vec![0xab; 32]);
    check_numbered(fds, "p");
    // A short message (8-byte header, 3 payload bytes): still enough bytes
    // for the two fd-carrying sendmsg calls.
    ep.queue(frame(b"abc", MANY), numbered("c")).unwrap();
    d.flush_all(ep).unwrap();
}

#[test]
fn many_fds_split_across_sendmsg_calls() {
    run_parent("many_fds", |ep, d| {
        ep.queue(frame(&[0xab; 32], MANY), numbered("p")).unwrap();
        d.flush_all(ep).unwrap();
        let (payload, fds) = d.recv_frame(ep).unwrap();
        assert_eq!(payload, b"abc");
        check_numbered(fds, "c");
    });
}

// ---------------------------------------------------------------------------
// several MiB, forcing partial writes and EAGAIN

const LARGE: usize = 6 * 1024 * 1024;

fn child_large(ep: &mut Endpoint, d: &mut Driver) {
    ep.set_send_buffer_size(16 * 1024).unwrap();
    let (payload, fds) = d.recv_frame(ep).unwrap();
    assert_eq!(payload.len(), LARGE);
    assert!(payload == pattern(LARGE, 1), "payload corrupted");
    assert_eq!(read_all(fds.into_iter().next().unwrap()), b"large-fd");
    // Echo a different pattern back while also sending fds.
    ep.queue(frame(&pattern(LARGE, 2), 1), vec![memfd_with(b"back")])
        .unwrap();
    d.flush_all(ep).unwrap();
    assert!(d.would_block_writes > 0, "child never hit EAGAIN");
}

#[test]
fn large_payload_partial_writes() {
    run_parent("large", |ep, d| {
        ep.set_send_buffer_size(16 * 1024).unwrap();
        ep.queue(frame(&pattern(LARGE, 1), 1), vec![pipe_with(b"large-fd")])
            .unwrap();
        // Send and receive in the same loop (the child only starts echoing
        // after it got everything).
        let (payload, fds) = d
            .run(ep, |ep, eof| {
                let f = take_frame(ep);
                assert!(f.is_some() || !eof);
                f
            })
            .unwrap();
        assert!(d.would_block_writes > 0, "parent never hit EAGAIN");
        assert_eq!(payload.len(), LARGE);
        assert!(payload == pattern(LARGE, 2), "payload corrupted");
        assert_eq!(read_all(fds.into_iter().next().unwrap()), b"back");
    });
}

// ---------------------------------------------------------------------------
// peer closes in the middle of a message

fn child_close_mid_message(ep: &mut Endpoint, d: &mut Driver) {
    // Header announces 1000 bytes; only 100 follow, with one fd.
    let mut partial = frame(&[7u8; 1000], 1);
    partial.truncate(HEADER + 100);
    ep.queue(partial, vec![memfd_with(b"orphan")]).unwrap();
    d.flush_all(ep).unwrap();
    // Returning drops the endpoint: the socket closes mid-message.
}

#[test]
fn peer_closes_mid_message() {
    run_parent("close_mid_message", |ep, d| {
        let (left, fds) = d
            .run(ep, |ep, eof| {
                assert!(take_frame(ep).is_none());
                eof.then(|| (ep.buffered().len(), ep.queued_fds()))
            })
            .unwrap();
        assert_eq!(left, HEADER + 100, "partial data stays buffered");
        assert_eq!(fds, 1, "its fd stays queued");
        // EOF is sticky and reported as a value.
        assert_eq!(ep.read_available().unwrap(), ReadOutcome::Eof);
        // Writing to the closed peer is a typed error (that it is not
        // SIGPIPE either is checked by `write_to_closed_peer_is_not_sigpipe`:
        // this process ignores SIGPIPE, as every Rust program does).
        ep.queue(frame(b"late", 0), vec![]).unwrap();
        let err = ep.flush().unwrap_err();
        assert!(err.is_disconnect(), "{err}");
        assert!(matches!(err, ChannelError::Io { .. }));
    });
}

// ---------------------------------------------------------------------------
// EPIPE without SIGPIPE. The Rust runtime sets SIGPIPE to "ignore" before
// `main`, which would hide a missing MSG_NOSIGNAL; the child puts back the
// default action (terminate), so a send without MSG_NOSIGNAL kills it.

#[allow(unsafe_code)]
fn restore_default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_DFL installs no handler code, so no async-signal-safety
    // question arises; the child process runs only this scenario.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.expect("signal(SIGPIPE, SIG_DFL)");
}

fn child_write_after_close(ep: &mut Endpoint, d: &mut Driver) {
    restore_default_sigpipe();
    // Wait until the parent has closed its end.
    d.run(ep, |_, eof| eof.then_some(())).unwrap();
    // Without fds (`send`).
    ep.queue(frame(b"late", 0), vec![]).unwrap();
    let err = ep.flush().unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    // With fds (`sendmsg`), on a pair of our own whose other end is closed.
    let (mut x, y) = mojo_platform_channel::socketpair().unwrap();
    drop(y);
    x.queue(frame(b"late", 1), vec![memfd_with(b"fd")]).unwrap();
    let err = x.flush().unwrap_err();
    assert!(err.is_disconnect(), "{err}");
}

#[test]
fn write_to_closed_peer_is_not_sigpipe() {
    assert_no_fd_leak(|| {
        let (child, ep) = spawn_child("write_after_close");
        drop(ep);
        // A child killed by SIGPIPE fails here.
        wait_ok(child);
    });
}

// ---------------------------------------------------------------------------
// shared memory across processes

const SHM_SIZE: usize = 64 * 1024;

fn region_header(r: &SharedMemoryRegion) -> Vec<u8> {
    let mut v = vec![];
    v.extend_from_slice(&r.mode().to_wire().to_le_bytes());
    v.extend_from_slice(&(r.size() as u64).to_le_bytes());
    v.extend_from_slice(&r.guid().to_le_bytes());
    v
}

fn parse_region(payload: &[u8], fds: Vec<OwnedFd>) -> Result<SharedMemoryRegion, ShmError> {
    let mode =
        RegionMode::from_wire(u32::from_le_bytes(payload[0..4].try_into().unwrap())).unwrap();
    let size = u64::from_le_bytes(payload[4..12].try_into().unwrap()) as usize;
    let guid = u128::from_le_bytes(payload[12..28].try_into().unwrap());
    SharedMemoryRegion::from_fds(mode, size, guid, fds)
}

fn child_shm(ep: &mut Endpoint, d: &mut Driver) {
    // 1. A writable region (2 fds) from the parent.
    let (payload, fds) = d.recv_frame(ep).unwrap();
    assert_eq!(fds.len(), 2);
    let region = parse_region(&payload, fds).unwrap();
    assert_eq!(region.mode(), RegionMode::Writable);
    assert!(region.is_sealed());
    let m = region.map().unwrap();
    m.write(100, b"written by child").unwrap();
    m.fetch_add_u32(0, 41, Ordering::AcqRel).unwrap();
    m.store_u64(8, 0x1122_3344_5566_7788, Ordering::Release)
        .unwrap();
    // Its read-only duplicate cannot be made writable.
    let ro = region.duplicate_read_only().unwrap();
    ro.verify_read_only_enforced().unwrap();
    drop(ro);
    drop(region);
    // 2. A region of our own, sent read-only (1 fd).
    let mine =
        SharedMemoryRegion::create(RegionMode::Writable, SHM_SIZE, &mut SeededRandom::new(2))
            .unwrap();
    let mm = mine.map().unwrap();
    mm.write(0, b"child region").unwrap();
    let ro = mine.convert_to_read_only().unwrap();
    let header = region_header(&ro);
    ep.queue(frame(&header, 1), ro.into_fds()).unwrap();
    ep.queue(frame(b"done", 0), vec![]).unwrap();
    d.flush_all(ep).unwrap();
    // Wait for the parent's go-ahead before unmapping (it reads our writes).
    let (payload, _) = d.recv_frame(ep).unwrap();
    assert_eq!(payload, b"bye");
}

#[test]
fn shared_memory_across_processes() {
    run_parent("shm", |ep, d| {
        let region =
            SharedMemoryRegion::create(RegionMode::Writable, SHM_SIZE, &mut SeededRandom::new(1))
                .unwrap();
        let m = region.map().unwrap();
        m.store_u32(0, 1, Ordering::Release).unwrap();
        // Send duplicates of both fds so that we keep the region.
        let fds: Vec<OwnedFd> = [region.fd(), region.readonly_fd().unwrap()]
            .iter()
            .map(|f| f.try_clone_to_owned().unwrap())
            .collect();
        ep.queue(frame(&region_header(&region), 2), fds).unwrap();
        d.flush_all(ep).unwrap();

        let (payload, fds) = d.recv_frame(ep).unwrap();
        let theirs = parse_region(&payload, fds).unwrap();
        let (done, _) = d.recv_frame(ep).unwrap();
        assert_eq!(done, b"done");

        // The child's writes are visible through our mapping.
        let mut buf = [0u8; 16];
        m.read(100, &mut buf).unwrap();
        assert_eq!(&buf, b"written by child");
        assert_eq!(m.load_u32(0, Ordering::Acquire), Ok(42));
        assert_eq!(m.load_u64(8, Ordering::Acquire), Ok(0x1122_3344_5566_7788));

        // The child's region arrived read-only with one O_RDONLY fd.
        assert_eq!(theirs.mode(), RegionMode::ReadOnly);
        let tm = theirs.map().unwrap();
        assert!(!tm.is_writable());
        let mut buf = [0u8; 12];
        tm.read(0, &mut buf).unwrap();
        assert_eq!(&buf, b"child region");
        theirs.verify_read_only_enforced().unwrap();
        check_not_writable_directly(theirs.fd(), SHM_SIZE);
        // Importing the read-only fd as writable/unsafe is refused.
        let dup = theirs.fd().try_clone_to_owned().unwrap();
        assert!(matches!(
            SharedMemoryRegion::from_fds(RegionMode::Unsafe, SHM_SIZE, theirs.guid(), vec![dup]),
            Err(ShmError::WrongAccessMode { .. })
        ));

        ep.queue(frame(b"bye", 0), vec![]).unwrap();
        d.flush_all(ep).unwrap();
    });
}

/// Independent of the crate's own check: mmap(PROT_WRITE, MAP_SHARED) and
/// mprotect(PROT_WRITE) on the received read-only fd both fail with EACCES.
#[allow(unsafe_code)]
fn check_not_writable_directly(fd: std::os::fd::BorrowedFd<'_>, len: usize) {
    use std::num::NonZeroUsize;

    use nix::sys::mman::{MapFlags, ProtFlags, mmap, mprotect, munmap};
    let len = NonZeroUsize::new(len).unwrap();
    // SAFETY: a fresh mapping chosen by the kernel (no address hint); it is
    // expected to fail, and if it does not it is unmapped right away without
    // being accessed.
    let rw = unsafe {
        mmap(
            None,
            len,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
            fd.as_fd(),
            0,
        )
    };
    assert_eq!(rw.err(), Some(nix::errno::Errno::EACCES));
    // SAFETY: as above, a fresh read-only mapping that is never dereferenced.
    let ro = unsafe { mmap(None, len, ProtFlags::PROT_READ, MapFlags::MAP_SHARED, fd, 0) }.unwrap();
    // SAFETY: `ro` is the mapping of `len` bytes just created and owned here.
    let res = unsafe { mprotect(ro, len.get(), ProtFlags::PROT_READ | ProtFlags::PROT_WRITE) };
    assert_eq!(res.err(), Some(nix::errno::Errno::EACCES));
    // SAFETY: unmapping the mapping created above, which nothing references.
    unsafe { munmap(ro, len.get()) }.unwrap();
}

// ---------------------------------------------------------------------------
// A hostile peer shrinks shared memory (issue 14, defect 2). Before the fix a
// region we created was an unsealed /dev/shm file: the parent's ftruncate
// succeeded and the child's next access died of SIGBUS.

/// Runs a scenario whose child must survive a peer that truncates a region:
/// after `body`, the child must send `survived` and exit successfully; if it
/// does not, the failure says how it ended (signal 7 is SIGBUS).
fn run_hostile_peer(scenario: &str, body: impl FnOnce(&mut Endpoint, &mut Driver)) {
    use std::os::unix::process::ExitStatusExt;
    assert_no_fd_leak(|| {
        let (mut child, mut ep) = spawn_child(scenario);
        let mut d = Driver::new(&mut ep);
        body(&mut ep, &mut d);
        let last = d
            .run(&mut ep, |ep, eof| match take_frame(ep) {
                Some((payload, _)) => Some(Some(payload)),
                None => eof.then_some(None),
            })
            .unwrap();
        drop(d);
        drop(ep);
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "child did not survive the shrink: {status} (signal {:?})",
            status.signal()
        );
        assert_eq!(last.as_deref(), Some(&b"survived"[..]));
    });
}

fn child_shrink_sealed(ep: &mut Endpoint, d: &mut Driver) {
    // A region of our own, mapped, whose O_RDWR fd the peer gets.
    let r = SharedMemoryRegion::create(RegionMode::Unsafe, SHM_SIZE, &mut SeededRandom::new(3))
        .unwrap();
    let m = r.map().unwrap();
    m.write(SHM_SIZE - 4, b"tail").unwrap();
    ep.queue(
        frame(b"region", 1),
        vec![r.duplicate().unwrap().into_fds().remove(0)],
    )
    .unwrap();
    d.flush_all(ep).unwrap();
    let (p, _) = d.recv_frame(ep).unwrap();
    // Every page is still there (an unsealed file would SIGBUS here).
    let mut b = [0u8; 4];
    m.read(SHM_SIZE - 4, &mut b).unwrap();
    assert_eq!(&b, b"tail");
    m.fetch_add_u32(SHM_SIZE - 8, 1, Ordering::AcqRel).unwrap();
    assert_eq!(p, b"shrink refused: EPERM");
    ep.queue(frame(b"survived", 0), vec![]).unwrap();
    d.flush_all(ep).unwrap();
}

#[test]
fn peer_cannot_shrink_a_region_we_created() {
    run_hostile_peer("shrink_sealed", |ep, d| {
        let (_, mut fds) = d.recv_frame(ep).unwrap();
        let fd = fds.pop().unwrap();
        let res = match nix::unistd::ftruncate(&fd, 0) {
            Err(nix::errno::Errno::EPERM) => "shrink refused: EPERM".to_string(),
            other => format!("shrink: {other:?}"),
        };
        drop(fd);
        ep.queue(frame(res.as_bytes(), 0), vec![]).unwrap();
        d.flush_all(ep).unwrap();
    });
}

fn child_shrink_unsealed(ep: &mut Endpoint, d: &mut Driver) {
    // An unsealed region from an untrusted peer: not mapped, read by pread.
    let (payload, fds) = d.recv_frame(ep).unwrap();
    let r = parse_region(&payload, fds).unwrap();
    assert!(!r.is_sealed());
    assert_eq!(r.map().unwrap_err(), ShmError::Unsealed);
    assert_eq!(r.map_read_only().unwrap_err(), ShmError::Unsealed);
    let mut b = [0u8; 6];
    r.read_at(SHM_SIZE - 6, &mut b).unwrap();
    assert_eq!(&b, b"parent");
    ep.queue(frame(b"read", 0), vec![]).unwrap();
    d.flush_all(ep).unwrap();
    let (p, _) = d.recv_frame(ep).unwrap();
    assert_eq!(p, b"shrunk");
    let err = r.read_at(SHM_SIZE - 6, &mut b).unwrap_err();
    assert!(
        matches!(err, ShmError::Truncated { copied: 0, .. }),
        "{err}"
    );
    assert!(matches!(
        r.write_at(SHM_SIZE - 6, b"child!"),
        Err(ShmError::Truncated { .. })
    ));
    drop(r);
    ep.queue(frame(b"survived", 0), vec![]).unwrap();
    d.flush_all(ep).unwrap();
}

#[test]
fn peer_shrinking_an_unsealed_region_cannot_crash_the_importer() {
    run_hostile_peer("shrink_unsealed", |ep, d| {
        let r = SharedMemoryRegion::create_with(
            RegionMode::Unsafe,
            SHM_SIZE,
            ShmBackend::DevShm,
            &mut SeededRandom::new(4),
        )
        .unwrap();
        r.write_at(SHM_SIZE - 6, b"parent").unwrap();
        let keep = r.duplicate().unwrap();
        ep.queue(frame(&region_header(&r), 1), r.into_fds())
            .unwrap();
        d.flush_all(ep).unwrap();
        let (p, _) = d.recv_frame(ep).unwrap();
        assert_eq!(p, b"read");
        nix::unistd::ftruncate(keep.fd(), 0).unwrap();
        drop(keep);
        ep.queue(frame(b"shrunk", 0), vec![]).unwrap();
        d.flush_all(ep).unwrap();
    });
}

// ---------------------------------------------------------------------------
// MSG_CTRUNC: the receiver's fd table is full, so the kernel truncates the
// control data. The receiver must report a typed error and close the fds
// that did arrive.

const CTRUNC_FDS: usize = 20;

fn child_ctrunc(ep: &mut Endpoint, d: &mut Driver) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let before = open_fd_count();
    // Room for a few more fds only (fd numbers below the limit are free
    // from `before - 1` on, as the lowest numbers are taken).
    setrlimit(Resource::RLIMIT_NOFILE, (before + 4) as u64, hard).unwrap();
    let err = d.run(ep, |_, _| None::<()>).unwrap_err();
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    let ChannelError::ControlTruncated { fds_received } = err.clone() else {
        panic!("expected ControlTruncated, got {err}");
    };
    assert!(fds_received < CTRUNC_FDS);
    assert_eq!(open_fd_count(), before, "truncated fds were not closed");
    // The error is sticky: reading again gives it again.
    assert_eq!(ep.read_available().unwrap_err(), err);
    // Writing still works. (Not through `d.flush_all`, which also reads.) The
    // report is tiny and this socket's send buffer is empty, so one flush
    // sends it.
    ep.queue(
        frame(format!("truncated:{fds_received}").as_bytes(), 0),
        vec![],
    )
    .unwrap();
    assert_eq!(ep.flush().unwrap(), WriteOutcome::Flushed);
}

#[test]
fn truncated_control_data_is_a_typed_error() {
    run_parent("ctrunc", |ep, d| {
        let m = memfd_with(b"x");
        let fds = (0..CTRUNC_FDS).map(|_| m.try_clone().unwrap()).collect();
        ep.queue(frame(b"too many for you", CTRUNC_FDS), fds)
            .unwrap();
        d.flush_all(ep).unwrap();
        let (payload, _) = d.recv_frame(ep).unwrap();
        let text = String::from_utf8(payload).unwrap();
        let n: usize = text.strip_prefix("truncated:").unwrap().parse().unwrap();
        assert!(n < CTRUNC_FDS, "{text}");
    });
}
