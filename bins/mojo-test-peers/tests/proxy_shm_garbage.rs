//! A peer that writes garbage into the shared memory it shares with
//! `mojo_proxy`, over real processes: our ipcz host and legacy client in
//! this process, the real proxy binary between. Once traffic has set up
//! the host link's memory (primary buffer, block buffers), the test
//! overwrites every memfd mapping of the proxy through `/proc/PID/mem`
//! (which a parent may write for its child) with seeded random bytes, all
//! ones or all zeros, as a hostile host could at any moment. Then the
//! client sends pipes and echoes, so that the proxy, sending the new routes
//! on to the host, reads that memory first (RouterLinkStates and sublinks
//! come from the shared counters and blocks).
//!
//! The host link's memory is the host's word: once it is garbage nothing
//! on that link can be trusted, so the proxy must end the run, within a
//! second, with exit status 1 and one ERROR line naming the host's shared
//! memory; both peers see their pipes closed; nothing panics and no
//! `/dev/shm` file is left. (Before this test the proxy logged the failed
//! forwards as warnings and carried on with a link its node had dropped.)
//!
//! Run `cargo build -p mojo_proxy` first: the proxy is another package's
//! binary, found next to the test peers.

#[allow(dead_code)]
mod proxy_support;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use mojo_test_peers::protocol::Payload;
use mojo_test_peers::system::{Handle, MojoError, MojoSystem, read_one};
use mojo_wire_kit::{RandomSource, SeededRandom};

use proxy_support::{Rig, WATCHDOG, deadline, our_dev_shm_files, serialized};

/// How long the proxy may take to exit after the fault (the bound).
const EXIT_AFTER_FAULT: Duration = Duration::from_secs(1);

/// Pipes and echoes the client sends after the garbage.
const TRAFFIC_AFTER: usize = 8;

/// What to write over the proxy's shared memory.
#[derive(Clone, Copy, Debug)]
enum Garbage {
    /// Bytes from a seeded generator.
    Random(u64),
    /// Every byte 0xff: counters at their maximum, every index out of range.
    Ones,
    /// Every byte 0: allocators and states wiped.
    Zeros,
}

/// The memfd mappings of `pid`: name, start address and length, from
/// `/proc/PID/maps` (the proxy closes a region's fd once it is mapped).
fn memfd_mappings(pid: u32) -> Vec<(String, u64, usize)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut found = Vec::new();
    for line in maps.lines().filter(|l| l.contains("/memfd:")) {
        let range = line.split_whitespace().next().unwrap();
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let name = line[line.find("/memfd:").unwrap()..].to_string();
        found.push((name, start, (end - start) as usize));
    }
    found
}

/// Overwrites `len` bytes at `start` in `pid`'s memory with `garbage`,
/// through `/proc/PID/mem` (allowed for a parent over its child). The
/// mapping is shared, so this is what a peer writing into the region does.
fn scribble(pid: u32, start: u64, len: usize, garbage: Garbage) {
    let mut bytes = vec![0u8; len];
    match garbage {
        Garbage::Random(seed) => SeededRandom::new(seed).fill(&mut bytes),
        Garbage::Ones => bytes.fill(0xff),
        Garbage::Zeros => {}
    }
    let mem = OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .unwrap();
    mem.write_all_at(&bytes, start).unwrap();
}

fn garbage_in_shared_memory(garbage: Garbage) {
    let _g = serialized();
    let shm_before = our_dev_shm_files();
    let rig = Rig::in_process();
    let (client, cpipe) = rig.client();
    rig.host
        .write_message(&rig.host_pipe, b"to the client", Vec::new())
        .unwrap();
    assert_eq!(
        read_one(client, cpipe, deadline()).unwrap().bytes,
        b"to the client"
    );
    client
        .write_message(cpipe, b"to the host", Vec::new())
        .unwrap();
    assert_eq!(
        read_one(&rig.host, &rig.host_pipe, deadline())
            .unwrap()
            .bytes,
        b"to the host"
    );
    // A pipe first, so a route beyond the attachment lives in the memory
    // that is about to be overwritten.
    let (kept_by_host, sent) = rig.host.create_message_pipe().unwrap();
    rig.host
        .write_message(&rig.host_pipe, b"a pipe", vec![Handle::MessagePipe(sent)])
        .unwrap();
    let _received = read_one(client, cpipe, deadline()).unwrap();

    let pid = rig.proxy.pid();
    let mappings = memfd_mappings(pid);
    assert!(!mappings.is_empty(), "the proxy maps no memfd");
    for (name, start, len) in mappings {
        eprintln!("{garbage:?}: overwriting {len} bytes of {name}");
        scribble(pid, start, len, garbage);
    }

    // Pipes sent from the client: the proxy sends their routes on to the
    // host, allocating sublinks and RouterLinkStates from the overwritten
    // memory, so it is the first to read it. Any call may fail now, but
    // none may block past its deadline.
    let echo = Payload::Echo(b"after the garbage".to_vec()).encode();
    let mut kept = vec![kept_by_host];
    let fault_at = Instant::now();
    for _ in 0..TRAFFIC_AFTER {
        if let Ok((ours, theirs)) = client.create_message_pipe() {
            let _ = client.write_message(cpipe, b"a pipe back", vec![Handle::MessagePipe(theirs)]);
            kept.push(ours);
        }
        let _ = client.write_message(cpipe, &echo, Vec::new());
    }
    let Rig {
        host,
        host_pipe,
        mut proxy,
        client,
    } = rig;
    let status = proxy.wait_exit(EXIT_AFTER_FAULT);
    let took = fault_at.elapsed();
    eprintln!("{garbage:?}: the proxy exited {status} {took:?} after the fault");
    // The host sees its pipe closed; so does the client.
    let proxy_support::ClientSide::InProcess(client, cpipe) = client else {
        unreachable!("an in-process client")
    };
    let peer_closed = |what: &str, r: Result<_, MojoError>| match r {
        Err(MojoError::FailedPrecondition) => {}
        other => panic!("{garbage:?}: {what}: {other:?} instead of peer closure"),
    };
    loop {
        match read_one(&host, &host_pipe, deadline()) {
            Ok(_) => continue,
            r => break peer_closed("the host's attachment", r),
        }
    }
    loop {
        match read_one(&client, &cpipe, deadline()) {
            Ok(_) => continue,
            r => break peer_closed("the client's attachment", r),
        }
    }
    drop((kept, host_pipe, host, cpipe, client));

    let end = Instant::now() + WATCHDOG;
    while !proxy.log.lock().unwrap().ended {
        assert!(Instant::now() < end, "the proxy's stderr never ended");
        std::thread::sleep(Duration::from_millis(1));
    }
    let log = proxy.log.lock().unwrap();
    let text = log.lines.join("\n");
    assert!(!text.contains("panicked"), "{garbage:?}: a panic: {text}");
    let errors: Vec<&String> = log.lines.iter().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(status.code(), Some(1), "{garbage:?}: exit status: {text}");
    assert_eq!(errors.len(), 1, "{garbage:?}: one ERROR line: {text}");
    assert!(
        errors[0].contains("host") && errors[0].contains("shared memory"),
        "{garbage:?}: the ERROR names the host's shared memory: {text}"
    );
    assert!(
        took < EXIT_AFTER_FAULT,
        "{garbage:?}: the proxy took {took:?} to exit after the fault"
    );
    drop(log);
    proxy.child.wait().unwrap();
    assert!(
        our_dev_shm_files().is_subset(&shm_before),
        "{garbage:?}: /dev/shm files left"
    );
}

#[test]
fn random_bytes_over_the_shared_memory() {
    for seed in [0x5eed_0101, 0x5eed_0102, 0x5eed_0103] {
        garbage_in_shared_memory(Garbage::Random(seed));
    }
}

#[test]
fn all_ones_over_the_shared_memory() {
    garbage_in_shared_memory(Garbage::Ones);
}

#[test]
fn all_zeros_over_the_shared_memory() {
    garbage_in_shared_memory(Garbage::Zeros);
}
