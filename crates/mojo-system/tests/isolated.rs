//! Isolated connections between real systems in this process, each with
//! its own I/O thread, over real socket pairs. Legacy (spec §3.7): two
//! standalone brokers, and the brokers and the clients of two networks.
//! Mojo+ipcz (brokers only, as MojoIpcz): the brokers of two networks.
//! Each time a message each way, then a pipe end, a shared buffer and a
//! platform handle across, and closure.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use mojo_legacy_wire::Profile;
use mojo_system::{
    BufferMapping, Handle, MessagePipe, MojoSystem, Signals, ipcz, legacy, read_one, wait,
};

fn deadline() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(20))
}

/// The two ends of a fresh socket pair, as fds.
fn socket_pair() -> (OwnedFd, OwnedFd) {
    let (a, b) = mojo_platform_channel::socketpair().unwrap();
    (a.into_fd(false).unwrap(), b.into_fd(false).unwrap())
}

/// Messages and handles both ways over `a`'s `pa` and `b`'s `pb`, the two
/// ends of one isolated pipe; `a` closes its end at the end.
fn exchange<A: MojoSystem, B: MojoSystem>(a: &A, pa: MessagePipe, b: &B, pb: &MessagePipe) {
    a.write_message(&pa, b"to b", vec![]).unwrap();
    b.write_message(pb, b"to a", vec![]).unwrap();
    assert_eq!(read_one(b, pb, deadline()).unwrap().bytes, b"to b");
    assert_eq!(read_one(a, &pa, deadline()).unwrap().bytes, b"to a");

    let (mine, theirs) = a.create_message_pipe().unwrap();
    let buffer = a.create_shared_buffer(64).unwrap();
    a.map_buffer(&buffer, 0, 64)
        .unwrap()
        .write(0, b"shared")
        .unwrap();
    let (here, there) = UnixStream::pair().unwrap();
    let platform = a.wrap_platform_handle(there.into()).unwrap();
    let handles = vec![
        Handle::MessagePipe(theirs),
        Handle::SharedBuffer(buffer),
        Handle::PlatformHandle(platform),
    ];
    a.write_message(&pa, b"handles", handles).unwrap();
    let mut message = read_one(b, pb, deadline()).unwrap();
    assert_eq!(message.bytes, b"handles");
    let Some(Handle::PlatformHandle(platform)) = message.handles.pop() else {
        panic!("no platform handle")
    };
    let Some(Handle::SharedBuffer(buffer)) = message.handles.pop() else {
        panic!("no buffer")
    };
    let Some(Handle::MessagePipe(got)) = message.handles.pop() else {
        panic!("no pipe")
    };
    let mut seen = [0u8; 6];
    b.map_buffer(&buffer, 0, 64)
        .unwrap()
        .read(0, &mut seen)
        .unwrap();
    assert_eq!(&seen, b"shared");
    let mut far = UnixStream::from(b.unwrap_platform_handle(platform).unwrap());
    far.write_all(b"!").unwrap();
    let mut byte = [0u8; 1];
    (&here).read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"!");

    b.write_message(&got, b"over it", vec![]).unwrap();
    a.write_message(&mine, b"and back", vec![]).unwrap();
    assert_eq!(read_one(a, &mine, deadline()).unwrap().bytes, b"over it");
    assert_eq!(read_one(b, &got, deadline()).unwrap().bytes, b"and back");

    drop(pa);
    wait(b, pb.raw(), Signals::PEER_CLOSED, deadline()).expect("peer closed");
}

#[test]
fn two_standalone_systems_share_one_pipe() {
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let (sa, sb) = socket_pair();
        let a = legacy::standalone(profile).unwrap();
        let b = legacy::standalone(profile).unwrap();
        let pa = legacy::connect_isolated(&a, sa).unwrap();
        let pb = legacy::connect_isolated(&b, sb).unwrap();
        exchange(&a, pa, &b, &pb);
    }
}

/// A broker and its client over a socket pair, with one attached pipe.
fn network(
    profile: Profile,
) -> (
    mojo_system::runtime::RealSystem<legacy::LegacyProtocol>,
    MessagePipe,
    mojo_system::runtime::RealSystem<legacy::LegacyProtocol>,
    MessagePipe,
) {
    let (broker_end, client_end) = mojo_platform_channel::socketpair().unwrap();
    let names = vec![b"net".to_vec()];
    let (broker, mut bp) =
        legacy::send_invitation(broker_end.into_fd(false).unwrap(), profile, &names).unwrap();
    let accepting =
        std::thread::spawn(move || legacy::accept_invitation(client_end, profile, &names).unwrap());
    let (client, mut cp) = accepting.join().unwrap();
    (broker, bp.remove(0), client, cp.remove(0))
}

#[test]
fn systems_of_two_networks_join_by_isolated_pipes_and_keep_their_networks() {
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let (b1, b1_net, c1, c1_net) = network(profile);
        let (b2, b2_net, c2, c2_net) = network(profile);
        // The two clients, and the two brokers.
        let (s1, s2) = socket_pair();
        let c1_iso = legacy::connect_isolated(&c1, s1).unwrap();
        let c2_iso = legacy::connect_isolated(&c2, s2).unwrap();
        let (s1, s2) = socket_pair();
        let b1_iso = legacy::connect_isolated(&b1, s1).unwrap();
        let b2_iso = legacy::connect_isolated(&b2, s2).unwrap();

        exchange(&c1, c1_iso, &c2, &c2_iso);
        exchange(&b2, b2_iso, &b1, &b1_iso);

        // The networks' own pipes still work (and the clients' regions
        // still come from their brokers).
        for (b, bp, c, cp) in [(&b1, &b1_net, &c1, &c1_net), (&b2, &b2_net, &c2, &c2_net)] {
            b.write_message(bp, b"net", vec![]).unwrap();
            assert_eq!(read_one(c, cp, deadline()).unwrap().bytes, b"net");
            let buffer = c.create_shared_buffer(16).unwrap();
            c.write_message(cp, b"buf", vec![Handle::SharedBuffer(buffer)])
                .unwrap();
            assert_eq!(read_one(b, bp, deadline()).unwrap().handles.len(), 1);
        }
    }
}

#[test]
fn an_isolated_pipe_breaks_if_the_other_side_never_speaks_mojo() {
    let a = legacy::standalone(Profile::Libchrome).unwrap();
    // The other end hangs up at once.
    let (sa, sb) = socket_pair();
    let pa = legacy::connect_isolated(&a, sa).unwrap();
    a.write_message(&pa, b"lost", vec![]).unwrap();
    drop(sb);
    wait(&a, pa.raw(), Signals::PEER_CLOSED, deadline()).expect("peer closed");
    // The other end answers with a frame that is not ACCEPT_PEER.
    let (sa, sb) = socket_pair();
    let pa = legacy::connect_isolated(&a, sa).unwrap();
    let mut other = UnixStream::from(sb);
    let mut frame = Vec::new();
    mojo_legacy_wire::node::NodeMessage::Unknown {
        message_type: mojo_legacy_wire::node::NodeMessageType(77),
        body: &[1],
    }
    .encode_frame(Profile::Libchrome, 0, &mut frame)
    .unwrap();
    other.write_all(&frame).unwrap();
    wait(&a, pa.raw(), Signals::PEER_CLOSED, deadline()).expect("peer closed");
    // And the system hung up on it.
    let mut rest = Vec::new();
    other.read_to_end(&mut rest).unwrap();
    assert!(!rest.is_empty(), "our ACCEPT_PEER came first");
}

#[test]
fn ipcz_brokers_of_two_networks_join_by_an_isolated_pipe() {
    let names = vec![b"net".to_vec()];
    let network = || {
        let (broker_end, client_end) = mojo_platform_channel::socketpair().unwrap();
        let wanted = names.clone();
        let accepting =
            std::thread::spawn(move || ipcz::accept_invitation(client_end, &wanted).unwrap());
        let fd = broker_end.into_fd(false).unwrap();
        let (broker, mut bp) = ipcz::send_broker_invitation(fd, &names).unwrap();
        let (client, mut cp) = accepting.join().unwrap();
        (broker, bp.remove(0), client, cp.remove(0))
    };
    let (b1, b1_net, c1, c1_net) = network();
    let (b2, b2_net, c2, c2_net) = network();

    // A client is no broker: MojoIpcz refuses it too.
    let (s1, _s2) = socket_pair();
    assert!(ipcz::connect_isolated(&c1, s1).is_err());

    let (s1, s2) = socket_pair();
    let (p1, p2) = std::thread::scope(|scope| {
        let one = scope.spawn(|| ipcz::connect_isolated(&b1, s1).unwrap());
        let two = ipcz::connect_isolated(&b2, s2).unwrap();
        (one.join().unwrap(), two)
    });
    exchange(&b1, p1, &b2, &p2);

    for (b, bp, c, cp) in [(&b1, &b1_net, &c1, &c1_net), (&b2, &b2_net, &c2, &c2_net)] {
        b.write_message(bp, b"net", vec![]).unwrap();
        assert_eq!(read_one(c, cp, deadline()).unwrap().bytes, b"net");
    }
}
