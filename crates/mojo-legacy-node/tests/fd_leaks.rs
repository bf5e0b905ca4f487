//! Counts this process's open fds (`/proc/self/fd`) around whole runs of
//! two `LegacyNode`s that pass real fds both ways, finish, or lose each
//! other mid-transfer: afterwards exactly as many fds are open as before.
//! The only test of its binary, so nothing else opens fds meanwhile.

use std::fs::File;
use std::os::fd::OwnedFd;

use mojo_legacy_node::node::{Handle, LegacyNode, PeerRole, SharedBuffer};
use mojo_legacy_node::ports::names;
use mojo_legacy_wire::Profile;
use mojo_wire_kit::{Guid, RegionMode, SeededRandom};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn fd() -> OwnedFd {
    OwnedFd::from(File::open("/dev/null").unwrap())
}

fn deliver(from: &mut LegacyNode, to: &mut LegacyNode, limit: usize) -> usize {
    let mut n = 0;
    while n < limit {
        let Some(t) = from.poll_transmit() else {
            break;
        };
        to.handle_frame(from.name(), &t.bytes, t.fds).unwrap();
        n += 1;
    }
    n
}

fn pump(a: &mut LegacyNode, b: &mut LegacyNode) {
    while deliver(a, b, usize::MAX) + deliver(b, a, usize::MAX) > 0 {}
}

fn handles() -> Vec<Handle> {
    let buffer = |mode: RegionMode| {
        let fds = (0..mode.num_fds()).map(|_| fd()).collect();
        Handle::SharedBuffer(SharedBuffer::new(4096, Guid::new(1, 2), mode, fds).unwrap())
    };
    vec![
        Handle::PlatformHandle(fd()),
        buffer(RegionMode::Writable),
        buffer(RegionMode::ReadOnly),
        buffer(RegionMode::Unsafe),
    ]
}

/// One run; `cut_after` frames into the transfer the link goes down.
fn run(cut_after: Option<usize>) {
    let mut broker = LegacyNode::new(names::node_name(1, 1), SeededRandom::new(1));
    let mut client = LegacyNode::new(names::node_name(2, 2), SeededRandom::new(2));
    broker
        .add_peer(client.name(), Profile::Libchrome, PeerRole::Client)
        .unwrap();
    client
        .add_peer(broker.name(), Profile::Libchrome, PeerRole::Broker)
        .unwrap();
    let a = broker.reserve_attachment(b"fds").unwrap();
    let p = client.request_port_merge(broker.name(), b"fds").unwrap();
    pump(&mut broker, &mut client);
    for _ in 0..3 {
        broker.write_message(a, b"to client", handles()).unwrap();
        client.write_message(p, b"to broker", handles()).unwrap();
        let (x, y) = broker.create_pipe().unwrap();
        broker
            .write_message(a, b"pipe", vec![Handle::MessagePipe(y)])
            .unwrap();
        broker
            .write_message(x, b"fd on the pipe", vec![Handle::PlatformHandle(fd())])
            .unwrap();
        broker.close_port(x).unwrap();
    }
    match cut_after {
        None => pump(&mut broker, &mut client),
        Some(n) => {
            deliver(&mut broker, &mut client, n);
            deliver(&mut client, &mut broker, n);
            broker.peer_lost(client.name());
            client.peer_lost(broker.name());
        }
    }
    // Read what arrived (dropping its handles), then close.
    for (node, port) in [(&mut broker, a), (&mut client, p)] {
        while let Ok(Some((_, handles))) = node.read_message(port) {
            for h in handles {
                if let Handle::MessagePipe(q) = h {
                    while let Ok(Some(_)) = node.read_message(q) {}
                    node.close_port(q).unwrap();
                }
            }
        }
        node.close_port(port).unwrap();
    }
    pump(&mut broker, &mut client);
    assert_eq!(broker.port_count() + client.port_count(), 0);
    assert_eq!(broker.queued_fd_count() + client.queued_fd_count(), 0);
}

#[test]
fn no_fd_outlives_a_run() {
    // Warm up whatever the runtime opens once.
    run(None);
    let before = open_fds();
    run(None);
    for cut in 0..8 {
        run(Some(cut));
    }
    assert_eq!(open_fds(), before);
}
