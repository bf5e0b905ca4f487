//! `mojo_proxy`'s live state over real processes: our ipcz host in this
//! process, the real proxy binary, our legacy client in this process. With
//! six pipes open and echo traffic in flight, `SIGUSR1` makes the proxy log
//! one block whose pairings, pipes and totals must agree with what the host
//! sent and got back, the proxy carries on, and its exit totals count every
//! message exactly. A client process that stops reading while the host
//! floods it shows as the client link's queued output and the host link's
//! paused reading.
//!
//! Run `cargo build -p mojo_proxy` first: the proxy is another package's
//! binary, found next to the test peers.

#[allow(dead_code)]
mod proxy_support;

use std::time::{Duration, Instant};

use mojo_test_peers::protocol::{Payload, op};
use mojo_test_peers::system::{Handle, MessagePipe, MojoError, MojoSystem, read_one};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use proxy_support::{INITIAL_PAIRINGS, Rig, WATCHDOG, deadline, serialized};

/// Sub-pipes the host opens besides its attachment.
const PIPES: usize = 5;
/// Echo rounds over every sub-pipe.
const ROUNDS: usize = 20;
/// The round after which the signal lands (its requests are in flight).
const SIGNAL_AFTER: usize = 10;
/// Size of each echo message.
const MESSAGE: usize = 64;
/// The message that carries each sub-pipe to the client.
const HELLO: &[u8] = b"sub-pipe";

/// The totals line the proxy logged at exit (`mojo_proxy::state` at
/// `info`); fails if there is none.
fn exit_totals(proxy: &proxy_support::Proxy) -> String {
    let log = proxy.log.lock().unwrap();
    log.lines
        .iter()
        .find(|l| l.contains("mojo_proxy::state] at exit after "))
        .cloned()
        .unwrap_or_else(|| panic!("no exit totals: {:?}", log.lines))
}

/// The numbers `n1 messages n2 bytes n3 handles` after `key` in `line`.
fn direction(line: &str, key: &str) -> [u64; 3] {
    let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
    let words: Vec<&str> = rest.split_whitespace().take(6).collect();
    assert_eq!(
        [words[1], words[3], words[5].trim_end_matches(';')],
        ["messages", "bytes", "handles"],
        "{line}"
    );
    [0, 2, 4].map(|i| words[i].parse().unwrap())
}

/// The number after `key` in `line`.
fn number(line: &str, key: &str) -> u64 {
    let rest = &line[line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number after {key} in {line}"))
}

/// Waits for the first record whose first line holds `marker`; returns its
/// lines (the first and the indented ones after it: the logger indents a
/// record's further lines).
fn wait_record(rig: &Rig, marker: &str) -> Vec<String> {
    wait_nth_record(rig, marker, 0)
}

/// As [`wait_record`], for the record after `n` earlier ones.
fn wait_nth_record(rig: &Rig, marker: &str, n: usize) -> Vec<String> {
    let end = Instant::now() + WATCHDOG;
    loop {
        {
            let log = rig.proxy.log.lock().unwrap();
            let mut starts = log
                .lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.contains(marker));
            if let Some((i, _)) = starts.nth(n) {
                let mut record = vec![log.lines[i].clone()];
                record.extend(
                    log.lines[i + 1..]
                        .iter()
                        .take_while(|l| l.starts_with(' '))
                        .cloned(),
                );
                // The block is written at once; its totals line ends it.
                if record.iter().any(|l| l.contains("totals: ")) {
                    return record;
                }
            }
            assert!(!log.ended, "the proxy exited without logging {marker}");
        }
        assert!(Instant::now() < end, "no {marker} record from the proxy");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn pipe_of(mut m: mojo_test_peers::system::Message) -> MessagePipe {
    match m.handles.pop() {
        Some(Handle::MessagePipe(p)) => p,
        other => panic!("expected a pipe, got {other:?}"),
    }
}

#[test]
fn sigusr1_mid_traffic_logs_what_the_host_has_in_flight_and_exit_totals_match() {
    let _g = serialized();
    let rig = Rig::in_process();
    let pid = Pid::from_raw(rig.proxy.pid() as i32);
    std::thread::scope(|s| {
        let (client, cpipe) = rig.client();
        s.spawn(move || {
            let subs: Vec<MessagePipe> = (0..PIPES)
                .map(|_| pipe_of(read_one(client, cpipe, deadline()).unwrap()))
                .collect();
            for _ in 0..ROUNDS {
                for sub in &subs {
                    let m = read_one(client, sub, deadline()).unwrap();
                    client.write_message(sub, &m.bytes, Vec::new()).unwrap();
                }
            }
            for sub in &subs {
                match read_one(client, sub, deadline()) {
                    Err(MojoError::FailedPrecondition) => {}
                    other => panic!("peer closure expected, got {other:?}"),
                }
            }
        });
        let host = &rig.host;
        let mut ours = Vec::new();
        for _ in 0..PIPES {
            let (a, b) = host.create_message_pipe().unwrap();
            host.write_message(&rig.host_pipe, HELLO, vec![b.into()])
                .unwrap();
            ours.push(a);
        }
        let (mut sent, mut received) = (0u64, 0u64);
        for round in 0..ROUNDS {
            for a in &ours {
                host.write_message(a, &[round as u8; MESSAGE], Vec::new())
                    .unwrap();
                sent += 1;
            }
            if round == SIGNAL_AFTER {
                // This round's requests are in flight: ask for the state,
                // and send nothing more until it is logged.
                kill(pid, Signal::SIGUSR1).unwrap();
                let block = wait_record(&rig, "live state (SIGUSR1)");
                let text = block.join("\n");
                let pairings = INITIAL_PAIRINGS + PIPES;
                assert!(
                    text.contains(&format!("pairings open: {pairings}\n")),
                    "{text}"
                );
                let pipe_lines = block
                    .iter()
                    .filter(|l| l.trim_start().starts_with("pipe "))
                    .count();
                assert_eq!(pipe_lines, pairings, "{text}");
                let totals = block.iter().find(|l| l.contains("totals: ")).unwrap();
                let [h2c, h2c_bytes, h2c_handles] = direction(totals, "host->client ");
                let [c2h, c2h_bytes, c2h_handles] = direction(totals, "client->host ");
                let hellos = PIPES as u64;
                // Every reply the host has came through the proxy, and so
                // did its request; the proxy cannot have carried more than
                // the host sent or the client had to echo.
                assert!(c2h >= received, "{text}");
                assert!(h2c >= hellos + received && h2c <= hellos + sent, "{text}");
                assert!(c2h <= h2c - hellos, "{text}");
                assert_eq!(
                    h2c_bytes,
                    hellos * HELLO.len() as u64 + (h2c - hellos) * MESSAGE as u64,
                    "{text}"
                );
                assert_eq!(c2h_bytes, c2h * MESSAGE as u64, "{text}");
                assert_eq!((h2c_handles, c2h_handles), (hellos, 0), "{text}");
                assert_eq!(number(totals, "pipes opened "), pairings as u64, "{text}");
                assert_eq!(number(totals, " closed "), 0, "{text}");
                assert_eq!(number(totals, "errors "), 0, "{text}");
                assert!(number(totals, "; host link in ") > h2c_bytes, "{text}");
                // At least the three sockets; the host's primary buffer.
                assert!(number(&text, "fds held: ") >= 3, "{text}");
                let sockets = text
                    .split(" sockets")
                    .next()
                    .and_then(|head| head.rsplit('(').next())
                    .and_then(|n| n.parse::<u64>().ok());
                assert!(sockets >= Some(3), "{text}");
                assert!(number(&text, "shared buffers mapped: ") >= 1, "{text}");
            }
            for a in &ours {
                let m = read_one(host, a, deadline()).unwrap();
                assert_eq!(m.bytes, [round as u8; MESSAGE]);
                received += 1;
            }
        }
        drop(ours);
    });
    rig.proxy.wait_pairings(INITIAL_PAIRINGS);
    let (proxy, status) = rig.finish();
    assert_eq!(status.code(), Some(0), "the proxy's exit status");
    proxy.assert_no_warnings();
    let exit = &exit_totals(&proxy);
    let (pipes, rounds) = (PIPES as u64, ROUNDS as u64);
    assert_eq!(
        direction(exit, "host->client "),
        [
            pipes + pipes * rounds,
            pipes * HELLO.len() as u64 + pipes * rounds * MESSAGE as u64,
            pipes
        ],
        "{exit}"
    );
    assert_eq!(
        direction(exit, "client->host "),
        [pipes * rounds, pipes * rounds * MESSAGE as u64, 0],
        "{exit}"
    );
    let opened = (INITIAL_PAIRINGS + PIPES) as u64;
    assert_eq!(number(exit, "pipes opened "), opened, "{exit}");
    assert_eq!(number(exit, " closed "), opened, "{exit}");
    assert_eq!(number(exit, "errors "), 0, "{exit}");
}

/// What the host floods at a stopped client: twice the driver's output
/// high-water mark, so the proxy must queue and pause.
const FLOOD_MESSAGES: u64 = 256;
/// Size of each flood message.
const FLOOD_MESSAGE: u64 = 64 * 1024;

#[test]
fn a_client_that_stops_reading_shows_as_queued_output_and_paused_reading() {
    let _g = serialized();
    let mut rig = Rig::with_client_process();
    let client_pid = Pid::from_raw(rig.client_process().id() as i32);
    let pid = Pid::from_raw(rig.proxy.pid() as i32);
    let host = &rig.host;
    let echo = rig.warm_up();
    kill(client_pid, Signal::SIGSTOP).unwrap();
    let start = Payload::SinkStart {
        count: FLOOD_MESSAGES,
        size: FLOOD_MESSAGE,
    }
    .encode();
    host.write_message(&rig.host_pipe, &start, Vec::new())
        .unwrap();
    let mut data = vec![0x5a; FLOOD_MESSAGE as usize];
    data[..4].copy_from_slice(&op::SINK_DATA.to_le_bytes());
    for _ in 0..FLOOD_MESSAGES {
        host.write_message(&rig.host_pipe, &data, Vec::new())
            .unwrap();
    }
    let flood_bytes = start.len() as u64 + FLOOD_MESSAGES * FLOOD_MESSAGE;
    // Ask until the backlog shows (the proxy reads the flood at its pace).
    let end = Instant::now() + WATCHDOG;
    let mut asked = 0;
    let block = loop {
        std::thread::sleep(Duration::from_millis(100));
        kill(pid, Signal::SIGUSR1).unwrap();
        let block = wait_nth_record(&rig, "live state (SIGUSR1)", asked).join("\n");
        asked += 1;
        if block.contains("reading paused") {
            break block;
        }
        assert!(Instant::now() < end, "no backlog shown: {block}");
    };
    let queued = number(&block, "client node channel: out ");
    let totals = block.lines().find(|l| l.contains("totals: ")).unwrap();
    let [h2c, h2c_bytes, _] = direction(totals, "host->client ");
    assert!(queued > 0, "{block}");
    // What waits in the proxy's socket queue was forwarded and framed, not
    // more than the host sent.
    assert!(h2c_bytes <= echo.len() as u64 + flood_bytes, "{block}");
    assert!(h2c <= 2 + FLOOD_MESSAGES, "{block}");
    assert!(
        block
            .lines()
            .any(|l| l.trim_start().starts_with("host link:") && l.contains("reading paused")),
        "the host link is the one paused: {block}"
    );
    kill(client_pid, Signal::SIGCONT).unwrap();
    let ack = read_one(host, &rig.host_pipe, deadline()).unwrap();
    assert_eq!(
        Payload::decode(&ack.bytes).unwrap(),
        Payload::SinkAck {
            received: FLOOD_MESSAGES,
            bytes: FLOOD_MESSAGES * FLOOD_MESSAGE,
            bad: 0
        }
    );
    let (proxy, status) = rig.finish();
    assert_eq!(status.code(), Some(0), "the proxy's exit status");
    let exit = &exit_totals(&proxy);
    assert_eq!(
        direction(exit, "host->client ")[..2],
        [2 + FLOOD_MESSAGES, flood_bytes + echo.len() as u64],
        "{exit}"
    );
    assert_eq!(direction(exit, "client->host ")[0], 2, "{exit}");
}
