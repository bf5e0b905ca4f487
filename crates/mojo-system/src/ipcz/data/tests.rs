//! Unit tests of [`DataPipes`] over one real ipcz node (no links: both
//! ends, and every message pipe an end travels through, are local) and real
//! memfd rings.

use super::*;
use crate::{DEFAULT_DATA_PIPE_CAPACITY, Signals};
use ipcz_node::node::NodeConfig;
use ipcz_wire::types::NodeName;

fn node() -> Node<Mapping> {
    Node::new(NodeName { high: 7, low: 7 }, NodeConfig::default())
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(11).wrapping_add(7) % 256) as u8
}

fn has(s: Signals, bit: Signals) -> bool {
    s.intersects(bit)
}

/// Moves end `id` through a local message pipe the way `IpczProtocol`
/// writes and reads a message with it: box plus trailing control portal
/// out, §8.3 split and adoption in. Returns the new id.
fn send_through_pipe(pipes: &mut DataPipes, node: &mut Node<Mapping>, id: u64) -> (u64, EndKind) {
    let (a, b) = node.create_portal_pair();
    let (boxed, control) = pipes.take_for_sending(node, id).unwrap();
    node.put(a, b"x".to_vec(), vec![boxed, Handle::Portal(control)])
        .unwrap();
    let parcel = node.get(b).unwrap().expect("the message");
    let (mut handles, controls) = split_control_portals(parcel.handles).unwrap();
    assert_eq!((handles.len(), controls.len()), (1, 1));
    let Some(Handle::Object(b)) = handles.pop() else {
        panic!("not a box");
    };
    let (object, fds) = b.into_parts();
    let DriverObject::DataPipe(dp) = object else {
        panic!("not a data pipe");
    };
    assert_eq!(fds.len(), 1, "an unsafe ring travels with one fd");
    pipes.adopt(node, &dp, fds, controls[0]).unwrap()
}

/// Writes `total` pattern bytes through `p` and reads them from `c`, a
/// chunk at a time, alternating; returns what was read.
fn pump_through(
    pipes: &mut DataPipes,
    node: &mut Node<Mapping>,
    p: u64,
    c: u64,
    total: usize,
) -> Vec<u8> {
    let (mut sent, mut got) = (0usize, Vec::with_capacity(total));
    let mut buf = vec![0; 3000];
    let mut steps = 0;
    while got.len() < total {
        steps += 1;
        assert!(steps < 100_000, "stuck at {sent} sent, {} read", got.len());
        if sent < total {
            let chunk: Vec<u8> = (sent..(sent + 5000).min(total)).map(pattern).collect();
            match pipes.write(node, p, &chunk) {
                Ok(n) => sent += n,
                Err(MojoError::ShouldWait) => {
                    assert!(!has(pipes.signals(node, p).satisfied, Signals::WRITABLE));
                }
                Err(e) => panic!("write: {e:?}"),
            }
        }
        match pipes.read(node, c, &mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(MojoError::ShouldWait) => {}
            Err(e) => panic!("read: {e:?}"),
        }
    }
    got
}

#[test]
fn a_megabyte_crosses_a_small_ring_then_closure_is_seen_after_the_last_byte() {
    let mut node = node();
    let mut pipes = DataPipes::default();
    let (p, c) = pipes.create(&mut node, 1, 4096).unwrap();
    let got = pump_through(&mut pipes, &mut node, p, c, 1 << 20);
    assert!(got.iter().enumerate().all(|(i, b)| *b == pattern(i)));
    // Bytes written before the producer closes stay readable.
    assert_eq!(pipes.write(&mut node, p, b"tail").unwrap(), 4);
    pipes.close(&mut node, p);
    let s = pipes.signals(&mut node, c);
    assert!(has(s.satisfied, Signals::READABLE | Signals::PEER_CLOSED));
    let mut buf = [0; 16];
    assert_eq!(pipes.read(&mut node, c, &mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"tail");
    assert_eq!(
        pipes.read(&mut node, c, &mut buf),
        Err(MojoError::FailedPrecondition)
    );
    let s = pipes.signals(&mut node, c);
    assert!(!has(s.satisfiable, Signals::READABLE));
    pipes.close(&mut node, c);
    assert!(pipes.is_empty());
}

#[test]
fn a_full_ring_waits_until_the_consumer_reads() {
    let mut node = node();
    let mut pipes = DataPipes::default();
    let (p, c) = pipes.create(&mut node, 1, 8).unwrap();
    assert!(has(
        pipes.signals(&mut node, p).satisfied,
        Signals::WRITABLE
    ));
    assert!(!has(
        pipes.signals(&mut node, c).satisfied,
        Signals::READABLE
    ));
    assert_eq!(pipes.write(&mut node, p, b"0123456789").unwrap(), 8);
    assert_eq!(pipes.write(&mut node, p, b"89"), Err(MojoError::ShouldWait));
    let s = pipes.signals(&mut node, p);
    assert!(!has(s.satisfied, Signals::WRITABLE) && has(s.satisfiable, Signals::WRITABLE));
    let mut buf = [0; 3];
    assert_eq!(pipes.read(&mut node, c, &mut buf).unwrap(), 3);
    // The consumed count reaches the producer through the control portal.
    assert!(has(
        pipes.signals(&mut node, p).satisfied,
        Signals::WRITABLE
    ));
    assert_eq!(pipes.write(&mut node, p, b"89abc").unwrap(), 3);
    let mut rest = [0; 16];
    assert_eq!(pipes.read(&mut node, c, &mut rest).unwrap(), 8);
    assert_eq!(&rest[..8], b"3456789a");
}

#[test]
fn a_closed_consumer_fails_the_producer() {
    let mut node = node();
    let mut pipes = DataPipes::default();
    let (p, c) = pipes.create(&mut node, 1, 64).unwrap();
    assert_eq!(pipes.write(&mut node, p, b"lost").unwrap(), 4);
    pipes.close(&mut node, c);
    assert_eq!(
        pipes.write(&mut node, p, b"more"),
        Err(MojoError::FailedPrecondition)
    );
    let s = pipes.signals(&mut node, p);
    assert!(has(s.satisfied, Signals::PEER_CLOSED));
    assert!(!has(s.satisfiable, Signals::WRITABLE));
}

#[test]
fn ends_keep_working_after_travelling_with_bytes_in_flight() {
    let mut node = node();
    let mut pipes = DataPipes::default();
    let (p, c) = pipes.create(&mut node, 2, 64).unwrap();
    // Written before the consumer moves: the count rides in its portal.
    assert_eq!(pipes.write(&mut node, p, b"abcdef").unwrap(), 6);
    let mut one = [0; 2];
    assert_eq!(pipes.read(&mut node, c, &mut one).unwrap(), 2);
    let (c, kind) = send_through_pipe(&mut pipes, &mut node, c);
    assert_eq!(kind, EndKind::Consumer);
    assert_eq!(pipes.write(&mut node, p, b"gh").unwrap(), 2);
    let (p, kind) = send_through_pipe(&mut pipes, &mut node, p);
    assert_eq!(kind, EndKind::Producer);
    let mut buf = [0; 32];
    assert_eq!(pipes.read(&mut node, c, &mut buf).unwrap(), 6);
    assert_eq!(&buf[..6], b"cdefgh");
    let got = pump_through(&mut pipes, &mut node, p, c, 100_000);
    // The producer moved with 4 bytes of room given back to it in flight.
    assert!(got.iter().enumerate().all(|(i, b)| *b == pattern(i)));
    assert_eq!(pipes.len(), 2);
}

#[test]
fn bad_arguments_are_refused() {
    let mut node = node();
    let mut pipes = DataPipes::default();
    assert_eq!(
        pipes.create(&mut node, 0, 64),
        Err(MojoError::InvalidArgument)
    );
    assert_eq!(
        pipes.create(&mut node, 3, 64),
        Err(MojoError::InvalidArgument)
    );
    let (p, c) = pipes.create(&mut node, 4, 0).unwrap();
    assert_eq!(
        pipes.write(&mut node, p, b"abc"),
        Err(MojoError::InvalidArgument)
    );
    // Ids of the other kind, and unknown ids.
    assert_eq!(
        pipes.write(&mut node, c, b"abcd"),
        Err(MojoError::InvalidArgument)
    );
    assert_eq!(
        pipes.read(&mut node, p, &mut [0; 4]),
        Err(MojoError::InvalidArgument)
    );
    assert_eq!(pipes.signals(&mut node, 99), SignalsState::default());
    // The default capacity: 64 KiB of 4-byte elements fit, no more.
    let big = vec![1; DEFAULT_DATA_PIPE_CAPACITY as usize + 4];
    assert_eq!(
        pipes.write(&mut node, p, &big).unwrap(),
        DEFAULT_DATA_PIPE_CAPACITY as usize
    );
}

#[test]
fn a_data_pipe_box_without_its_trailing_portal_discards_the_message_handles() {
    let mut node = node();
    let mut pipes = DataPipes::default();
    let (p, _c) = pipes.create(&mut node, 1, 64).unwrap();
    let (boxed, control) = pipes.take_for_sending(&mut node, p).unwrap();
    let (x, _y) = node.create_portal_pair();
    // [box, control]: well formed.
    let (h, portals) = split_control_portals(vec![boxed, Handle::Portal(control)]).unwrap();
    assert_eq!(portals, vec![control]);
    // [box] alone: too few handles.
    let all = split_control_portals(h).unwrap_err();
    assert_eq!(all.len(), 1);
    // [portal, box]: the trailing handle is not a portal.
    let mut v = vec![Handle::Portal(x)];
    v.extend(all);
    let all = split_control_portals(v).unwrap_err();
    assert_eq!(all.len(), 2);
    assert!(matches!(all[0], Handle::Portal(_)));
    // No data pipe: nothing is split off.
    let (h, portals) = split_control_portals(vec![Handle::Portal(x)]).unwrap();
    assert_eq!((h.len(), portals.len()), (1, 0));
}

#[test]
fn an_unusable_object_closes_its_control_portal() {
    let mut node = node();
    let mut pipes = DataPipes::default();
    let (p, c) = pipes.create(&mut node, 1, 64).unwrap();
    let (boxed, control) = pipes.take_for_sending(&mut node, c).unwrap();
    let Handle::Object(b) = boxed else {
        panic!("not a box")
    };
    let (object, fds) = b.into_parts();
    let DriverObject::DataPipe(mut dp) = object else {
        panic!("not a data pipe")
    };
    // A ring that does not fit its fd.
    dp.buffer.buffer_size = 1 << 20;
    assert_eq!(pipes.adopt(&mut node, &dp, fds, control), None);
    // The producer sees its consumer gone.
    assert_eq!(
        pipes.write(&mut node, p, b"x"),
        Err(MojoError::FailedPrecondition)
    );
    assert_eq!(pipes.len(), 1);
}

/// A real Chromium peer's ring is an unsealed `/dev/shm` file; it must be
/// adopted whatever the node's trust in its peer's other memory (a broker
/// host trusts none), as the platform crate's one ring policy says. A
/// `--direct=ipcz` host used to drop such a consumer (`datapipe_c2h`:
/// "consumer message has 0 handles").
#[test]
fn an_unsealed_dev_shm_ring_from_a_real_peer_is_adopted() {
    use mojo_platform_channel::ShmBackend;
    use mojo_wire_kit::SeededRandom;
    let mut node = node();
    let mut pipes = DataPipes::default();
    let ring = SharedMemoryRegion::create_with(
        RegionMode::Unsafe,
        64,
        ShmBackend::DevShm,
        &mut SeededRandom::new(9),
    )
    .unwrap();
    assert!(!ring.is_sealed());
    let buffer = SharedBuffer {
        buffer_size: 64,
        mode: RegionMode::Unsafe,
        guid: Guid::from(ring.guid()),
    };
    let (_producer, consumer) = new_pipe_objects(1, buffer).unwrap();
    let fd = ring.fd().try_clone_to_owned().unwrap();
    let (control, _peer) = node.create_portal_pair();
    let (id, kind) = pipes
        .adopt(&mut node, &consumer, vec![fd], control)
        .expect("the unsealed ring is adopted");
    assert_eq!(kind, EndKind::Consumer);
    // Nothing written yet: the consumer waits.
    let mut buf = [0u8; 8];
    assert_eq!(
        pipes.read(&mut node, id, &mut buf),
        Err(MojoError::ShouldWait)
    );
}
