//! The real system in one process: a legacy broker (`LegacyHostConnector`)
//! and a legacy client (`LegacyClientConnector`) over a real socket pair,
//! each with its own I/O thread. Messages, a pipe moved each way, a shared
//! buffer the client gets from the broker (`BUFFER_REQUEST`), a platform
//! handle and a data pipe; closure seen on both sides; once both systems
//! are dropped, no fd of the process is left open.

use std::time::{Duration, Instant};

use mojo_test_peers::cli::{ClientArgs, CommandLine, HostArgs, HostCommand};
use mojo_test_peers::real::legacy::{LegacyClientConnector, LegacyHostConnector};
use mojo_test_peers::run::{ClientConnector, HostConnector};
use mojo_test_peers::system::{
    BufferMapping, Handle, MojoError, MojoSystem, RegionAccessMode, Signals, read_one, wait,
};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn deadline() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(20))
}

fn host_args(profile: &str) -> HostArgs {
    let argv = [
        "mojo-test-host".to_string(),
        "--direct=legacy".into(),
        format!("--legacy-profile={profile}"),
    ];
    match HostCommand::parse(&CommandLine::parse(argv)).unwrap() {
        HostCommand::Host(h) => *h,
        HostCommand::Broker(_) => unreachable!(),
    }
}

fn client_args(profile: &str) -> ClientArgs {
    let argv = [
        "mojo-test-client".to_string(),
        "--fd=3".into(),
        format!("--legacy-profile={profile}"),
    ];
    ClientArgs::parse(&CommandLine::parse(argv)).unwrap()
}

fn run(profile: &str) {
    let (host_end, client_end) = mojo_platform_channel::socketpair().unwrap();
    let host_fd = host_end.into_fd(false).unwrap();
    let (host, mut host_pipes) = LegacyHostConnector
        .connect(&host_args(profile), host_fd, None)
        .unwrap();
    let client_args = client_args(profile);
    let accepting = std::thread::spawn(move || {
        LegacyClientConnector::new(client_end)
            .accept(&client_args)
            .unwrap()
    });
    let (client, mut client_pipes) = accepting.join().unwrap();
    let (h, c) = (host_pipes.remove(0), client_pipes.remove(0));

    // A message each way.
    host.write_message(&h, b"hello", vec![]).unwrap();
    assert_eq!(read_one(&client, &c, deadline()).unwrap().bytes, b"hello");
    client.write_message(&c, b"back", vec![]).unwrap();
    assert_eq!(read_one(&host, &h, deadline()).unwrap().bytes, b"back");

    // A client pipe end moves to the host and is used there.
    let (mine, theirs) = client.create_message_pipe().unwrap();
    client
        .write_message(&c, b"pipe", vec![theirs.into()])
        .unwrap();
    let mut m = read_one(&host, &h, deadline()).unwrap();
    let Some(Handle::MessagePipe(got)) = m.handles.pop() else {
        panic!("a pipe")
    };
    host.write_message(&got, b"over it", vec![]).unwrap();
    assert_eq!(
        read_one(&client, &mine, deadline()).unwrap().bytes,
        b"over it"
    );
    drop(got);
    wait(&client, mine.raw(), Signals::PEER_CLOSED, deadline()).unwrap();
    drop(mine);

    // The client's buffer comes from the broker; the host sees its bytes.
    let buf = client.create_shared_buffer(8192).unwrap();
    client
        .map_buffer(&buf, 0, 8192)
        .unwrap()
        .write(100, b"shared")
        .unwrap();
    client.write_message(&c, b"buf", vec![buf.into()]).unwrap();
    let mut m = read_one(&host, &h, deadline()).unwrap();
    let Some(Handle::SharedBuffer(buf)) = m.handles.pop() else {
        panic!("a buffer")
    };
    let mut got = [0u8; 6];
    host.map_buffer(&buf, 0, 8192)
        .unwrap()
        .read(100, &mut got)
        .unwrap();
    assert_eq!(&got, b"shared");
    let region = host.unwrap_shared_buffer(buf).unwrap();
    assert_eq!(
        (region.access_mode, region.fds.len(), region.size),
        (RegionAccessMode::Writable, 2, 8192)
    );
    drop(region);

    // A platform handle.
    let (r, w) = nix::unistd::pipe().unwrap();
    let w = host.wrap_platform_handle(w).unwrap();
    host.write_message(&h, b"fd", vec![w.into()]).unwrap();
    let mut m = read_one(&client, &c, deadline()).unwrap();
    let Some(Handle::PlatformHandle(w)) = m.handles.pop() else {
        panic!("an fd")
    };
    let w = client.unwrap_platform_handle(w).unwrap();
    nix::unistd::write(&w, b"x").unwrap();
    drop(w);
    let mut byte = [0u8; 2];
    assert_eq!(nix::unistd::read(&r, &mut byte).unwrap(), 1);
    assert_eq!(nix::unistd::read(&r, &mut byte).unwrap(), 0, "no copy left");
    drop(r);

    // A data pipe: the consumer moves to the host, 200 KiB through a
    // 16 KiB ring, then the producer closes.
    let (producer, consumer) = client.create_data_pipe(1, 16 * 1024).unwrap();
    client
        .write_message(&c, b"dp", vec![consumer.into()])
        .unwrap();
    let mut m = read_one(&host, &h, deadline()).unwrap();
    let Some(Handle::DataPipeConsumer(consumer)) = m.handles.pop() else {
        panic!("a consumer")
    };
    let total = 200 * 1024;
    let data: Vec<u8> = (0..total).map(|i| (i * 7 + 1) as u8).collect();
    let writer = {
        let client = &client;
        let data = &data;
        move || {
            let mut sent = 0;
            while sent < data.len() {
                match client.write_data(&producer, &data[sent..]) {
                    Ok(n) => sent += n,
                    Err(MojoError::ShouldWait) => {
                        wait(client, producer.raw(), Signals::WRITABLE, deadline()).unwrap()
                    }
                    Err(e) => panic!("write_data: {e}"),
                }
            }
        }
    };
    let mut received = Vec::new();
    std::thread::scope(|s| {
        s.spawn(writer);
        let mut chunk = vec![0u8; 5000];
        loop {
            match host.read_data(&consumer, &mut chunk) {
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(MojoError::ShouldWait) => {
                    let _ = wait(
                        &host,
                        consumer.raw(),
                        Signals::READABLE | Signals::PEER_CLOSED,
                        deadline(),
                    );
                }
                Err(MojoError::FailedPrecondition) => break,
                Err(e) => panic!("read_data: {e}"),
            }
        }
    });
    assert_eq!(received, data);
    drop(consumer);

    // Closure reaches the other side.
    drop(h);
    wait(&client, c.raw(), Signals::PEER_CLOSED, deadline()).unwrap();
    assert_eq!(
        client.read_message(&c).unwrap_err(),
        MojoError::FailedPrecondition
    );
    drop(c);
    drop(client);
    drop(host);
}

#[test]
fn both_profiles_over_a_socket_pair_and_nothing_left() {
    let before = open_fds();
    run("libchrome");
    run("desktop");
    assert_eq!(open_fds(), before, "fds left open");
}
