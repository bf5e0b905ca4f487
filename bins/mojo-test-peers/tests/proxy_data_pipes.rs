//! Data pipes through `mojo_proxy` over real processes and sockets, beyond
//! the test peers' `datapipe` scenario (which `mojo_proxy`'s end_to_end
//! tests run in every mode): eight data pipes each way at once, the bytes
//! of each checked, every bridged ring released afterwards (the proxy's fd
//! count back where it started, exit 0, no fd report); and a client killed
//! while a data pipe is mid-transfer (the proxy exits 0 within 1 s, the
//! host's producer sees its consumer gone, no `/dev/shm` file is left).
//!
//! Run `cargo build -p mojo_proxy` first: the proxy is another package's
//! binary, found next to the test peers.

// Shared with proxy_stress.rs, which uses the parts this file does not.
#[allow(dead_code)]
mod proxy_support;

use std::time::{Duration, Instant};

use mojo_test_peers::protocol::Payload;
use mojo_test_peers::system::{
    DataPipeConsumer, DataPipeProducer, Handle, MojoError, MojoSystem, Signals, read_one, wait,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use proxy_support::{Rig, WATCHDOG, deadline, our_dev_shm_files, serialized};

/// Data pipes open at once in each direction.
const PIPES_EACH_WAY: usize = 8;
/// Bytes through each of them.
const BYTES_PER_PIPE: usize = 256 * 1024;
/// Ring capacity of each (small, so flow control works hard).
const CAPACITY: u32 = 16 * 1024;
/// How long a proxy may take to exit once a peer is gone (the bound).
const EXIT_AFTER_PEER_LOSS: Duration = Duration::from_secs(1);

fn byte(pipe: usize, i: usize) -> u8 {
    (i.wrapping_mul(13)
        .wrapping_add(pipe * 7)
        .wrapping_add(i >> 9)
        % 251) as u8
}

/// Writes `total` bytes of `pipe`'s pattern through `producer`, waiting as
/// the ring fills.
fn write_all<S: MojoSystem>(
    system: &S,
    producer: &DataPipeProducer,
    pipe: usize,
    total: usize,
) -> Result<usize, MojoError> {
    let mut written = 0;
    let mut chunk = Vec::with_capacity(4096);
    while written < total {
        chunk.clear();
        chunk.extend((written..total.min(written + 4096)).map(|i| byte(pipe, i)));
        match system.write_data(producer, &chunk) {
            Ok(n) => written += n,
            Err(MojoError::ShouldWait) => {
                wait(system, producer.raw(), Signals::WRITABLE, deadline())?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// Reads `consumer` until its producer is closed; checks every byte.
fn read_all<S: MojoSystem>(system: &S, consumer: &DataPipeConsumer, pipe: usize) -> usize {
    let mut got = 0;
    let mut buf = vec![0u8; 8192];
    loop {
        match system.read_data(consumer, &mut buf) {
            Ok(n) => {
                for (k, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, byte(pipe, got + k), "pipe {pipe}, byte {}", got + k);
                }
                got += n;
            }
            Err(MojoError::ShouldWait) => {
                match wait(system, consumer.raw(), Signals::READABLE, deadline()) {
                    Ok(()) | Err(MojoError::FailedPrecondition) => {}
                    Err(e) => panic!("pipe {pipe}: waiting to read: {e}"),
                }
            }
            Err(MojoError::FailedPrecondition) => return got,
            Err(e) => panic!("pipe {pipe}: read: {e}"),
        }
    }
}

fn consumer_of(mut m: mojo_test_peers::system::Message) -> DataPipeConsumer {
    assert_eq!(m.handles.len(), 1, "one handle");
    match m.handles.pop() {
        Some(Handle::DataPipeConsumer(c)) => c,
        other => panic!("expected a data pipe consumer, got {other:?}"),
    }
}

#[test]
fn eight_data_pipes_each_way_at_once_carry_every_byte_and_release_their_rings() {
    let _g = serialized();
    let rig = Rig::in_process();
    let initial_fds = rig.proxy.fd_count();
    let (client, client_pipe) = rig.client();
    let host = &rig.host;
    let host_pipe = &rig.host_pipe;
    let mut host_producers = Vec::new();
    let mut client_producers = Vec::new();
    for i in 0..PIPES_EACH_WAY {
        let (p, c) = host.create_data_pipe(1, CAPACITY).unwrap();
        host.write_message(host_pipe, &[i as u8], vec![c.into()])
            .unwrap();
        host_producers.push(p);
        let (p, c) = client.create_data_pipe(1, CAPACITY).unwrap();
        client
            .write_message(client_pipe, &[i as u8], vec![c.into()])
            .unwrap();
        client_producers.push(p);
    }
    let mut at_client = Vec::new();
    let mut at_host = Vec::new();
    for i in 0..PIPES_EACH_WAY {
        let m = read_one(client, client_pipe, deadline()).unwrap();
        assert_eq!(m.bytes, [i as u8], "the client's messages in order");
        at_client.push(consumer_of(m));
        let m = read_one(host, host_pipe, deadline()).unwrap();
        assert_eq!(m.bytes, [i as u8], "the host's messages in order");
        at_host.push(consumer_of(m));
    }
    std::thread::scope(|s| {
        for (i, p) in host_producers.into_iter().enumerate() {
            s.spawn(move || {
                assert_eq!(write_all(host, &p, i, BYTES_PER_PIPE), Ok(BYTES_PER_PIPE));
            });
        }
        for (i, p) in client_producers.into_iter().enumerate() {
            s.spawn(move || {
                let pipe = PIPES_EACH_WAY + i;
                assert_eq!(
                    write_all(client, &p, pipe, BYTES_PER_PIPE),
                    Ok(BYTES_PER_PIPE)
                );
            });
        }
        for (i, c) in at_client.into_iter().enumerate() {
            s.spawn(move || assert_eq!(read_all(client, &c, i), BYTES_PER_PIPE));
        }
        for (i, c) in at_host.into_iter().enumerate() {
            let pipe = PIPES_EACH_WAY + i;
            s.spawn(move || assert_eq!(read_all(host, &c, pipe), BYTES_PER_PIPE));
        }
    });
    // Every pipe closed at both ends: the proxy let go of every ring and
    // control pipe it held for them.
    let end = Instant::now() + WATCHDOG;
    while rig.proxy.fd_count() > initial_fds {
        assert!(
            Instant::now() < end,
            "the proxy still holds {} fds, {initial_fds} at the start",
            rig.proxy.fd_count()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (proxy, status) = rig.finish();
    assert_eq!(status.code(), Some(0), "the proxy's exit status");
    proxy.assert_no_warnings();
}

#[test]
fn a_client_killed_mid_data_pipe_ends_the_proxy_within_1s_leaving_nothing() {
    let _g = serialized();
    let shm_before = our_dev_shm_files();
    let mut rig = Rig::with_client_process();
    let client_pid = Pid::from_raw(rig.client_process().id() as i32);
    // The client reads a data pipe of this many bytes, far more than are
    // written before the kill.
    let total = 1u64 << 40;
    let (producer, consumer) = rig.host.create_data_pipe(1, CAPACITY).unwrap();
    rig.host
        .write_message(
            &rig.host_pipe,
            &Payload::DataPipe { total }.encode(),
            vec![consumer.into()],
        )
        .unwrap();
    // A few rings' worth crossed: the client is reading through the proxy.
    let before_kill = 8 * CAPACITY as usize;
    assert_eq!(
        write_all(&rig.host, &producer, 0, before_kill),
        Ok(before_kill)
    );
    assert_eq!(rig.proxy.dev_shm_files(), Vec::<String>::new());
    let killed_at = Instant::now();
    kill(client_pid, Signal::SIGKILL).unwrap();
    let status = rig.proxy.wait_exit(WATCHDOG);
    let took = killed_at.elapsed();
    assert_eq!(status.code(), Some(0), "the proxy's exit status");
    assert!(
        took < EXIT_AFTER_PEER_LOSS,
        "the proxy took {took:?} to exit after the client was killed"
    );
    // The host's producer learns its consumer is gone.
    match write_all(&rig.host, &producer, 0, usize::MAX) {
        Err(MojoError::FailedPrecondition) => {}
        other => panic!("the host's producer after the kill: {other:?}"),
    }
    match read_one(&rig.host, &rig.host_pipe, deadline()) {
        Err(MojoError::FailedPrecondition) => {}
        other => panic!("the host's attachment after the kill: {other:?}"),
    }
    let _ = rig.client_process().wait();
    rig.proxy.assert_no_warnings();
    assert!(
        our_dev_shm_files().is_subset(&shm_before),
        "/dev/shm files left"
    );
}
