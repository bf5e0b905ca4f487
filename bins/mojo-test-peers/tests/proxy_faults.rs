//! Hostile input on each of `mojo_proxy`'s links, over real processes: our
//! ipcz host and legacy client in this process, the real proxy binary
//! between, and a [`proxy_support::Relay`] on one link that sends the proxy
//! one crafted frame in the peer's name once the link is idle. Each fault:
//! a frame cut short by a hang-up (exit 0), an oversized length field and
//! a frame claiming fds it does not carry (exit 1 with one ERROR line), and
//! an unknown message type (ignored where the spec says so, traffic goes
//! on). Every test checks the exit status and how soon it came, that
//! nothing panicked, that the proxy held no `/dev/shm` file and left none,
//! and that the peer on the other link sees its pipe closed. Then either
//! peer lost mid-traffic at kill points picked from fixed seeds: the
//! client SIGKILLed, the host's link cut both ways (exit 0 within 1 s).
//!
//! Run `cargo build -p mojo_proxy` first: the proxy is another package's
//! binary, found next to the test peers.

#[allow(dead_code)]
mod proxy_support;

use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mojo_test_peers::protocol::Payload;
use mojo_test_peers::system::{MessagePipe, MojoError, MojoSystem, read_one};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use proxy_support::{
    Injection, RelaySwitches, Rig, WATCHDOG, deadline, our_dev_shm_files, serialized, wait_child,
};

/// The seeds of the kill tests: each picks one kill point.
const KILL_SEEDS: [u64; 4] = [0x5eed_0001, 0x5eed_0002, 0x5eed_0003, 0x5eed_0004];
/// Echo requests the host keeps in flight in a kill test.
const KILL_TRAFFIC: usize = 1500;
/// Size of each echo request.
const KILL_MESSAGE: usize = 1024;

/// How long the proxy may take to exit after a fault (the bound).
const EXIT_AFTER_FAULT: Duration = Duration::from_secs(1);

/// Which link the relay sits on.
#[derive(Clone, Copy, Debug)]
enum Side {
    /// The ipcz link: frames from the host.
    Host,
    /// The legacy link: frames from the client.
    Client,
}

/// What the proxy must do about a fault.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Exit 0 without an error (a peer that hung up).
    HangUp,
    /// Exit 1 with exactly one ERROR line.
    Violation,
    /// Ignore the frame: traffic goes on and the run ends normally.
    Ignored,
}

/// An ipcz transport frame (16-byte header) around `message`, claiming
/// `num_handles` fds and `num_bytes` bytes in all.
fn ipcz_frame(num_handles: u16, num_bytes: u32, message: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&16u16.to_le_bytes());
    f.extend_from_slice(&num_handles.to_le_bytes());
    f.extend_from_slice(&num_bytes.to_le_bytes());
    f.extend_from_slice(&0u64.to_le_bytes());
    f.extend_from_slice(message);
    f
}

/// An ipcz message with id `id`: a 24-byte header and an empty params
/// struct (8-byte struct header).
fn ipcz_message(id: u8) -> Vec<u8> {
    let mut m = vec![24, 0, id, 0, 0, 0, 0, 0];
    m.extend_from_slice(&[0; 16]);
    m.extend_from_slice(&8u32.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m
}

/// A legacy channel frame (8-byte legacy header) around `payload`.
fn legacy_frame(num_handles: u16, num_bytes: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&num_bytes.to_le_bytes());
    f.extend_from_slice(&num_handles.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// A NodeChannel message of type `kind` with an 8-byte body.
fn node_channel_message(kind: u32) -> Vec<u8> {
    let mut m = kind.to_le_bytes().to_vec();
    m.extend_from_slice(&[0; 12]);
    m
}

/// One message each way between the host and the client.
fn round_trip(rig: &Rig) {
    let (client, cpipe) = rig.client();
    let host = &rig.host;
    host.write_message(&rig.host_pipe, b"to the client", Vec::new())
        .unwrap();
    let m = read_one(client, cpipe, deadline()).unwrap();
    assert_eq!(m.bytes, b"to the client");
    client
        .write_message(cpipe, b"to the host", Vec::new())
        .unwrap();
    let m = read_one(host, &rig.host_pipe, deadline()).unwrap();
    assert_eq!(m.bytes, b"to the host");
}

/// Reads until the peer is closed; fails on a timeout or a message.
fn expect_peer_closed<S: MojoSystem>(system: &S, pipe: &MessagePipe, what: &str) {
    match read_one(system, pipe, deadline()) {
        Err(MojoError::FailedPrecondition) => {}
        other => panic!("{what}: {other:?} instead of peer closure"),
    }
}

/// Builds a rig with the relay on `side`, sends `bytes` through it once
/// the link is idle, and checks what the proxy does against `expect`.
fn fault(side: Side, bytes: Vec<u8>, then_cut: bool, expect: Expect) {
    let _g = serialized();
    let shm_before = our_dev_shm_files();
    let (rig, switches): (Rig, Arc<RelaySwitches>) = match side {
        Side::Host => Rig::in_process_relayed(),
        Side::Client => Rig::in_process_client_relayed(),
    };
    round_trip(&rig);
    assert_eq!(rig.proxy.dev_shm_files(), Vec::<String>::new());
    let injected_at = Instant::now();
    *switches.inject.lock().unwrap() = Some(Injection {
        bytes,
        fds: Vec::new(),
        then_cut,
    });
    let mut ended_at = injected_at;
    if expect == Expect::Ignored {
        // Traffic goes on after the frame; then the host ends the run.
        std::thread::sleep(Duration::from_millis(50));
        assert!(switches.inject.lock().unwrap().is_none(), "not sent yet");
        round_trip(&rig);
    }
    let Rig {
        host,
        host_pipe,
        mut proxy,
        client,
    } = rig;
    let proxy_support::ClientSide::InProcess(client, cpipe) = client else {
        unreachable!("an in-process client")
    };
    if expect == Expect::Ignored {
        ended_at = Instant::now();
        drop(host_pipe);
        let status = proxy.wait_exit(WATCHDOG);
        let took = ended_at.elapsed();
        expect_peer_closed(&client, &cpipe, "the client's attachment");
        return check(side, &expect, proxy, status, took, &shm_before);
    }
    let status = proxy.wait_exit(WATCHDOG);
    let took = ended_at.elapsed();
    // The peer on the other link (after a hang-up, both) sees closure.
    match side {
        Side::Host => expect_peer_closed(&client, &cpipe, "the client's attachment"),
        Side::Client => expect_peer_closed(&host, &host_pipe, "the host's attachment"),
    }
    check(side, &expect, proxy, status, took, &shm_before);
}

/// The checks every fault test ends with.
fn check(
    side: Side,
    expect: &Expect,
    mut proxy: proxy_support::Proxy,
    status: std::process::ExitStatus,
    took: Duration,
    shm_before: &std::collections::BTreeSet<String>,
) {
    eprintln!("{side:?} fault: the proxy exited {status} after {took:?}");
    // The log's reader sees the end of stderr soon after the exit.
    let end = Instant::now() + WATCHDOG;
    while !proxy.log.lock().unwrap().ended {
        assert!(Instant::now() < end, "the proxy's stderr never ended");
        std::thread::sleep(Duration::from_millis(1));
    }
    let log = proxy.log.lock().unwrap();
    let text = log.lines.join("\n");
    assert!(!text.contains("panicked"), "a panic: {text}");
    let errors: Vec<&String> = log.lines.iter().filter(|l| l.contains(" ERROR ")).collect();
    match expect {
        Expect::Violation => {
            assert_eq!(status.code(), Some(1), "the proxy's exit status: {text}");
            assert_eq!(errors.len(), 1, "one ERROR line: {text}");
            let name = match side {
                Side::Host => "host",
                Side::Client => "client",
            };
            assert!(errors[0].contains(name), "names the {name}: {text}");
        }
        Expect::HangUp | Expect::Ignored => {
            assert_eq!(status.code(), Some(0), "the proxy's exit status: {text}");
            assert!(errors.is_empty(), "no ERROR: {text}");
        }
    }
    assert!(
        took < EXIT_AFTER_FAULT,
        "the proxy took {took:?} to exit after the fault"
    );
    drop(log);
    proxy.child.wait().unwrap();
    assert!(
        our_dev_shm_files().is_subset(shm_before),
        "/dev/shm files left"
    );
}

#[test]
fn host_frame_cut_short_by_a_hang_up_is_exit_0() {
    let frame = ipcz_frame(0, 48, &ipcz_message(250));
    fault(Side::Host, frame[..21].to_vec(), true, Expect::HangUp);
}

#[test]
fn host_frame_with_an_oversized_length_is_exit_1() {
    let frame = ipcz_frame(0, 0x2000_0000, &ipcz_message(250));
    fault(Side::Host, frame, false, Expect::Violation);
}

#[test]
fn host_frame_claiming_fds_it_does_not_carry_is_exit_1() {
    let frame = ipcz_frame(2, 48, &ipcz_message(250));
    fault(Side::Host, frame, false, Expect::Violation);
}

#[test]
fn host_message_of_an_unknown_id_is_ignored() {
    // ipcz.md 2.7 rule 8: a well-formed message with an unknown id is ignored.
    let frame = ipcz_frame(0, 48, &ipcz_message(250));
    fault(Side::Host, frame, false, Expect::Ignored);
}

#[test]
fn client_frame_cut_short_by_a_hang_up_is_exit_0() {
    let frame = legacy_frame(0, 24, &node_channel_message(200));
    fault(Side::Client, frame[..13].to_vec(), true, Expect::HangUp);
}

#[test]
fn client_frame_with_an_oversized_length_is_exit_1() {
    // legacy-core.md 1.3: `num_bytes` above the configured limit is fatal.
    let frame = legacy_frame(0, 0x2000_0000, &node_channel_message(200));
    fault(Side::Client, frame, false, Expect::Violation);
}

#[test]
fn client_frame_claiming_fds_it_does_not_carry_is_exit_1() {
    let frame = legacy_frame(2, 24, &node_channel_message(200));
    fault(Side::Client, frame, false, Expect::Violation);
}

#[test]
fn client_node_channel_message_of_an_unknown_type_is_ignored() {
    // legacy-core.md 3.2 / section 9: unknown NodeChannel types are ignored.
    let frame = legacy_frame(0, 24, &node_channel_message(200));
    fault(Side::Client, frame, false, Expect::Ignored);
}

#[test]
fn client_channel_message_of_an_unknown_control_type_is_exit_1() {
    // legacy-core.md 1.2: an unknown channel message type is fatal.
    let mut frame = vec![0u8; 16];
    frame[..4].copy_from_slice(&24u32.to_le_bytes());
    frame[4..6].copy_from_slice(&16u16.to_le_bytes());
    frame[6..8].copy_from_slice(&9u16.to_le_bytes());
    frame.extend_from_slice(&[0; 8]);
    fault(Side::Client, frame, false, Expect::Violation);
}

/// A kill point in `1..=KILL_TRAFFIC / 2` from `seed` (splitmix64): the
/// number of echo replies the host sees before the peer dies.
fn kill_point(seed: u64) -> usize {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    1 + (z % (KILL_TRAFFIC as u64 / 2)) as usize
}

/// Which peer a kill test loses.
#[derive(Clone, Copy, Debug)]
enum Victim {
    /// The `mojo-test-client` process, SIGKILLed.
    Client,
    /// The host: its link is cut at once both ways, which is what the
    /// kernel does to the proxy's socket when a host is SIGKILLed.
    Host,
}

/// Floods echo requests through the proxy at a client process and loses
/// `victim` once the host has seen `kill_point(seed)` replies; checks the
/// proxy exits 0 within 1 s, leaving no child and no `/dev/shm` file, and
/// that the surviving peer sees the end.
fn killed_mid_traffic(victim: Victim, seed: u64) {
    let _g = serialized();
    let at = kill_point(seed);
    let shm_before = our_dev_shm_files();
    let (mut rig, switches) = Rig::with_client_process_relayed();
    let client_pid = Pid::from_raw(rig.client_process().id() as i32);
    let initial_fds = rig.proxy.fd_count();
    let echo = Payload::Echo(vec![7; KILL_MESSAGE]).encode();
    for _ in 0..KILL_TRAFFIC {
        rig.host
            .write_message(&rig.host_pipe, &echo, Vec::new())
            .unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let Rig {
        host,
        host_pipe,
        proxy,
        ..
    } = &mut rig;
    let took = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut got = 0;
            loop {
                match read_one(&*host, &*host_pipe, deadline()) {
                    Ok(m) => {
                        assert_eq!(m.bytes, echo);
                        got += 1;
                        if got == at {
                            tx.send(()).unwrap();
                        }
                    }
                    Err(MojoError::FailedPrecondition) => return got,
                    Err(e) => panic!("the host's attachment: {e} instead of peer closure"),
                }
            }
        });
        rx.recv_timeout(WATCHDOG).expect("echo replies");
        let mid = proxy.fd_count();
        assert!(mid <= initial_fds, "the proxy's fds: {mid} > {initial_fds}");
        assert_eq!(proxy.dev_shm_files(), Vec::<String>::new());
        let killed_at = Instant::now();
        match victim {
            Victim::Client => kill(client_pid, Signal::SIGKILL).unwrap(),
            Victim::Host => switches.cut.store(true, Ordering::Release),
        }
        let status = proxy.wait_exit(WATCHDOG);
        let took = killed_at.elapsed();
        assert_eq!(status.code(), Some(0), "the proxy's exit status");
        if let Victim::Client = victim {
            let got = reader.join().unwrap();
            assert!(got >= at, "{got} replies before closure");
        }
        took
    });
    eprintln!("{victim:?} lost after {at} replies: the proxy exited {took:?} later");
    assert!(
        took < EXIT_AFTER_FAULT,
        "the proxy took {took:?} to exit after the {victim:?} was lost"
    );
    let client = wait_child(rig.client_process(), WATCHDOG, "the client");
    match victim {
        // The client's pipes closed with the proxy: it exits 0 on its own.
        Victim::Host => assert_eq!(client.code(), Some(0), "the client's exit status"),
        Victim::Client => assert_eq!(client.signal(), Some(9), "the client was killed"),
    }
    rig.proxy.assert_no_warnings();
    assert!(
        !rig.proxy
            .log
            .lock()
            .unwrap()
            .lines
            .iter()
            .any(|l| l.contains("panicked"))
    );
    assert!(
        our_dev_shm_files().is_subset(&shm_before),
        "/dev/shm files left"
    );
}

#[test]
fn a_client_sigkilled_at_seeded_points_ends_the_proxy_within_1s_with_0() {
    for seed in KILL_SEEDS {
        killed_mid_traffic(Victim::Client, seed);
    }
}

#[test]
fn a_host_lost_at_seeded_points_ends_the_proxy_within_1s_with_0() {
    for seed in KILL_SEEDS {
        killed_mid_traffic(Victim::Host, seed);
    }
}
