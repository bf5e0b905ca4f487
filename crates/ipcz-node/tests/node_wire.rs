//! What a node puts on the wire and the rarer inputs it takes: the frames
//! of spec §9.9 byte for byte (inline parcel, new portal in the recommended
//! form of §6.5.2 with its RouterLinkState, boxed fd), subparcels (§6.4),
//! parcels held until their buffer is mapped, asymmetric initial portals
//! (§4.4), and the memory-delegate messages.

mod node_support;

use ipcz_node::node::{
    DriverBox, NodeConfig, NodeError, NodeEvent, NodeHandle, ParcelDataPlacement, SubparcelError,
};
use ipcz_node::router::{Handle, NodeLinkId};
use ipcz_wire::driver_object::{DriverObject, WrappedPlatformHandle, WrapperType};
use ipcz_wire::frame::FrameHeader;
use ipcz_wire::message::Message;
use ipcz_wire::messages::{AcceptParcel, Body, ProvideMemory, RequestMemory};
use ipcz_wire::types::{DriverObjectIndex, HandleType};
use mojo_wire_kit::SharedMemory;
use node_support::{Net, fd};

/// Bytes of a §9.9 hex dump: the 16 byte columns of each line.
fn dump(text: &str) -> Vec<u8> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .flat_map(|(_, rest)| {
            rest.split_whitespace()
                .take_while(|w| w.len() == 2 && u8::from_str_radix(w, 16).is_ok())
                .map(|w| u8::from_str_radix(w, 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The frame with its timestamp and link sequence number zeroed (the
/// `tt` and `nn` bytes of the spec's dumps).
fn masked(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes[8..16].fill(0);
    bytes[24..32].fill(0);
    bytes
}

fn proxy_side() -> (
    Net,
    NodeLinkId,
    Vec<ipcz_node::router::RouterId>,
    Vec<ipcz_node::router::RouterId>,
) {
    let mut net = Net::with_nodes(2);
    let (_, lb, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    (net, lb, pa, pb)
}

fn finish(mut net: Net, pa: &[ipcz_node::router::RouterId], pb: &[ipcz_node::router::RouterId]) {
    for p in pa {
        net.nodes[0].close(*p).unwrap();
    }
    for p in pb {
        net.nodes[1].close(*p).unwrap();
    }
    net.assert_idle_and_clean();
}

const HELLO: &str = "
0000: 10 00 00 00 80 00 00 00  00 00 00 00 00 00 00 00
0010: 18 00 14 00 00 00 00 00  00 00 00 00 00 00 00 00
0020: 00 00 00 00 00 00 00 00  48 00 00 00 00 00 00 00
0030: 01 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
0040: 00 00 00 00 01 00 00 00  ff ff ff ff ff ff ff ff
0050: 00 00 00 00 00 00 00 00  60 00 00 00 00 00 00 00
0060: 00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
0070: 10 00 00 00 05 00 00 00  68 65 6c 6c 6f 00 00 00
";

#[test]
fn inline_parcel_is_byte_exact() {
    let (mut net, lb, pa, pb) = proxy_side();
    net.nodes[1]
        .put(pb[1], b"hello".to_vec(), Vec::new())
        .unwrap();
    let frame = net.take_frame(1, lb).unwrap();
    assert!(frame.fds.is_empty());
    assert_eq!(masked(frame.bytes.clone()), dump(HELLO));
    net.inject(1, lb, &frame.bytes, Vec::new()).unwrap();
    finish(net, &pa, &pb);
}

// §9.9.2 with the first free sublinks and block of a fresh link: sublinks
// 12 and 13, the RouterLinkState at offset 1088.
const HELLO_WITH_PORTAL: &str = "
0000: 10 00 00 00 f8 00 00 00  00 00 00 00 00 00 00 00
0010: 18 00 14 00 00 00 00 00  00 00 00 00 00 00 00 00
0020: 00 00 00 00 00 00 00 00  48 00 00 00 00 00 00 00
0030: 01 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
0040: 00 00 00 00 01 00 00 00  ff ff ff ff ff ff ff ff
0050: 00 00 00 00 00 00 00 00  60 00 00 00 70 00 00 00
0060: 80 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
0070: 10 00 00 00 05 00 00 00  68 65 6c 6c 6f 00 00 00
0080: 10 00 00 00 01 00 00 00  00 00 00 00 00 00 00 00
0090: 68 00 00 00 01 00 00 00  00 00 00 00 00 00 00 00
00a0: 0c 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
00b0: 40 04 00 00 40 00 00 00  0d 00 00 00 00 00 00 00
00c0: 00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
00d0: 00 00 00 00 00 00 00 00  02 00 00 00 00 00 00 00
00e0: 00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
00f0: 00 00 00 00 00 00 00 00
";

#[test]
fn new_portal_goes_out_already_bypassed_with_its_link_state() {
    let (mut net, lb, pa, pb) = proxy_side();
    let (keep, send) = net.nodes[1].create_portal_pair();
    net.nodes[1]
        .put(pb[1], b"hello".to_vec(), vec![Handle::Portal(send)])
        .unwrap();
    let frame = net.take_frame(1, lb).unwrap();
    assert_eq!(masked(frame.bytes.clone()), dump(HELLO_WITH_PORTAL));
    // The counter moved by two; the state has two references, side A stable.
    let memory = net.nodes[1].link(lb).unwrap().memory();
    let primary = memory.primary();
    assert_eq!(
        primary
            .load_u64(8, std::sync::atomic::Ordering::Relaxed)
            .unwrap(),
        14
    );
    let mut state = [0u8; 8];
    primary.read(1088, &mut state).unwrap();
    assert_eq!(state, [2, 0, 0, 0, 1, 0, 0, 0]);
    // Delivered, the host's side is stable too and the route works.
    net.inject(1, lb, &frame.bytes, Vec::new()).unwrap();
    net.run();
    let mut state = [0u8; 8];
    net.nodes[1]
        .link(lb)
        .unwrap()
        .memory()
        .primary()
        .read(1088, &mut state)
        .unwrap();
    assert_eq!(state[4], 3);
    let Some(NodeHandle::Portal(at_a)) = net.take_all(0, pa[1]).pop().unwrap().handles.pop() else {
        panic!("portal expected")
    };
    net.nodes[0]
        .put(at_a, b"reply".to_vec(), Vec::new())
        .unwrap();
    net.run();
    assert_eq!(net.nodes[1].get(keep).unwrap().unwrap().data, b"reply");
    net.nodes[0].close(at_a).unwrap();
    net.nodes[1].close(keep).unwrap();
    finish(net, &pa, &pb);
}

const HELLO_WITH_FD: &str = "
0000: 10 00 01 00 b8 00 00 00  00 00 00 00 00 00 00 00
0010: 18 00 14 00 00 00 00 00  00 00 00 00 00 00 00 00
0020: 80 00 00 00 00 00 00 00  48 00 00 00 00 00 00 00
0030: 01 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
0040: 00 00 00 00 01 00 00 00  ff ff ff ff ff ff ff ff
0050: 00 00 00 00 00 00 00 00  60 00 00 00 70 00 00 00
0060: 00 00 00 00 00 00 00 00  00 00 00 00 01 00 00 00
0070: 10 00 00 00 05 00 00 00  68 65 6c 6c 6f 00 00 00
0080: 10 00 00 00 01 00 00 00  01 00 00 00 00 00 00 00
0090: 10 00 00 00 01 00 00 00  90 00 00 00 00 00 01 00
00a0: 18 00 00 00 10 00 00 00  08 00 00 00 04 00 00 00
00b0: 08 00 00 00 00 00 00 00
";

#[test]
fn boxed_fd_is_byte_exact_and_arrives_with_its_fd() {
    let (mut net, lb, pa, pb) = proxy_side();
    let wrapped = DriverObject::WrappedPlatformHandle(WrappedPlatformHandle {
        wrapper_type: WrapperType::TRANSMISSIBLE,
    });
    let b = DriverBox::new(wrapped, vec![fd()]).unwrap();
    net.nodes[1]
        .put(pb[1], b"hello".to_vec(), vec![Handle::Object(b)])
        .unwrap();
    let frame = net.take_frame(1, lb).unwrap();
    assert_eq!(frame.fds.len(), 1);
    assert_eq!(masked(frame.bytes.clone()), dump(HELLO_WITH_FD));
    net.inject(1, lb, &frame.bytes, frame.fds).unwrap();
    let mut got = net.take_all(0, pa[1]);
    let Some(NodeHandle::Object(b)) = got.pop().unwrap().handles.pop() else {
        panic!("box expected")
    };
    assert_eq!(*b.object(), wrapped);
    assert_eq!(b.fds().len(), 1);
    assert_eq!(net.nodes[0].received_fds_alive(), 1);
    let (_, fds) = b.into_parts();
    assert_eq!(net.nodes[0].received_fds_alive(), 0);
    drop(fds);
    assert!(matches!(
        DriverBox::new(wrapped, Vec::new()),
        Err(NodeError::BoxFds {
            expected: 1,
            got: 0
        })
    ));
    finish(net, &pa, &pb);
}

/// An AcceptParcel frame for sublink 1.
fn parcel_frame(
    seq: u64,
    index: u32,
    count: u32,
    data: &[u8],
    handles: Vec<HandleType>,
) -> Vec<u8> {
    let mut p = AcceptParcel::inline(1, seq, data, handles, Vec::new());
    p.subparcel_index = index;
    p.num_subparcels = count;
    let m = Message::new(0, Body::AcceptParcel(p));
    let mut out = Vec::new();
    FrameHeader::new(0, 0)
        .encode_frame(&[], &m, &mut out)
        .unwrap();
    out
}

#[test]
fn lazily_serialized_message_is_unwrapped_from_its_subparcel() {
    let (mut net, _, pa, pb) = proxy_side();
    let la = net.end(0, 1).unwrap().link;
    // §9.9.4: the subparcel first, then the main parcel with one placeholder.
    let sub = parcel_frame(0, 1, 2, b"serialized mojo message", Vec::new());
    let main = parcel_frame(0, 0, 2, b"", vec![HandleType::BOXED_SUBPARCEL]);
    net.inject(0, la, &sub, Vec::new()).unwrap();
    assert_eq!(net.nodes[1].held_parcel_count(), 1);
    net.inject(0, la, &main, Vec::new()).unwrap();
    assert_eq!(net.nodes[1].held_parcel_count(), 0);
    let got = net.take_all(1, pb[1]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"serialized mojo message");
    finish(net, &pa, &pb);
}

#[test]
fn bad_subparcel_sets_drop_the_link() {
    let cases: [(Vec<Vec<u8>>, SubparcelError); 3] = [
        (
            vec![
                parcel_frame(0, 1, 2, b"a", Vec::new()),
                parcel_frame(0, 1, 2, b"a", Vec::new()),
            ],
            SubparcelError::Duplicate,
        ),
        (
            vec![
                parcel_frame(0, 1, 2, b"a", Vec::new()),
                parcel_frame(0, 0, 3, b"", vec![HandleType::BOXED_SUBPARCEL]),
            ],
            SubparcelError::CountMismatch,
        ),
        (
            vec![
                parcel_frame(0, 1, 2, b"a", Vec::new()),
                parcel_frame(0, 0, 2, b"", Vec::new()),
            ],
            SubparcelError::PlaceholderCount,
        ),
    ];
    for (frames, reason) in cases {
        let (mut net, _, pa, pb) = proxy_side();
        let la = net.end(0, 1).unwrap().link;
        let mut last = Ok(());
        for f in &frames {
            last = net.inject(0, la, f, Vec::new());
        }
        assert!(
            matches!(last, Err(NodeError::Subparcel { reason: r, .. }) if r == reason),
            "{last:?}"
        );
        net.run();
        assert_eq!(net.nodes[1].link_count(), 0);
        finish(net, &pa, &pb);
    }
}

#[test]
fn parcels_wait_for_the_buffer_their_data_is_in() {
    let growing = NodeConfig {
        parcel_data: ParcelDataPlacement::SharedMemory,
        ..NodeConfig::default()
    };
    let mut net = Net::new(&[growing, growing]);
    let (la, lb, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    // RouterLinkStates always grow on demand: move portals until A adds a
    // buffer of 64-byte blocks, with B slow to map it.
    net.deferred_maps = Some(Vec::new());
    let mut kept = Vec::new();
    while net.buffers_added.is_empty() {
        let (keep, send) = net.nodes[0].create_portal_pair();
        let (k2, s2) = net.nodes[0].create_portal_pair();
        net.nodes[0]
            .put(keep, Vec::new(), vec![Handle::Portal(s2)])
            .unwrap();
        net.nodes[0]
            .put(pa[1], Vec::new(), vec![Handle::Portal(send)])
            .unwrap();
        kept.extend([keep, k2]);
        net.collect();
        assert!(kept.len() < 4000);
    }
    // A small parcel now lands in the new buffer's 64-byte blocks.
    net.nodes[0]
        .put(pa[1], b"in buffer 1".to_vec(), Vec::new())
        .unwrap();
    net.run();
    assert!(net.nodes[1].held_parcel_count() >= 1, "held until mapped");
    net.answer_deferred_maps();
    net.run();
    assert_eq!(net.nodes[1].held_parcel_count(), 0);
    let got = net.take_all(1, pb[1]);
    assert_eq!(got.last().unwrap().data, b"in buffer 1");
    for p in got.into_iter().flat_map(|p| p.handles) {
        if let Handle::Portal(q) = p {
            net.nodes[1].close(q).unwrap();
        }
    }
    for p in kept {
        net.nodes[0].close(p).unwrap();
    }
    net.run();
    net.assert_all_blocks_free(0, la);
    net.assert_all_blocks_free(1, lb);
    finish(net, &pa, &pb);
}

#[test]
fn excess_initial_portals_start_peer_closed() {
    let mut net = Net::with_nodes(2);
    let (la, lb) = net.connect(0, 1);
    let pa = net.nodes[0].open_initial_portals(la, 3, 2).unwrap();
    let pb = net.nodes[1].open_initial_portals(lb, 2, 3).unwrap();
    net.run();
    assert_eq!(pa.len(), 3);
    let s = net.nodes[0].status(pa[2]).unwrap();
    assert!(s.peer_closed && s.dead);
    assert!(net.nodes[0].status(pa[1]).unwrap().readable_parcels == 0);
    finish(net, &pa, &pb);
}

#[test]
fn memory_requests_are_reported_and_unrequested_memory_is_an_error() {
    let (mut net, lb, pa, pb) = proxy_side();
    let request = Message::new(
        0,
        Body::RequestMemory(RequestMemory {
            size: 4096,
            padding: 0,
        }),
    );
    let mut bytes = Vec::new();
    FrameHeader::new(0, 0)
        .encode_frame(&[], &request, &mut bytes)
        .unwrap();
    let la = net.end(0, 1).unwrap().link;
    net.nodes[0].handle_frame(la, &bytes, Vec::new()).unwrap();
    let mut requested = None;
    while let Some(e) = net.nodes[0].poll_event() {
        if let NodeEvent::MemoryRequested { link, size } = e {
            requested = Some((link, size));
        }
    }
    assert_eq!(requested, Some((la, 4096)));
    // B never asked: ProvideMemory to B is a protocol error.
    let provide = {
        let mut m = Message::new(
            0,
            Body::ProvideMemory(ProvideMemory {
                size: 4096,
                buffer: DriverObjectIndex(0),
            }),
        );
        m.push_object(DriverObject::SharedBuffer(
            ipcz_wire::driver_object::SharedBuffer {
                buffer_size: 4096,
                mode: mojo_wire_kit::RegionMode::Unsafe,
                guid: mojo_wire_kit::Guid { high: 1, low: 1 },
            },
        ));
        let mut out = Vec::new();
        FrameHeader::new(1, 0)
            .encode_frame(&[], &m, &mut out)
            .unwrap();
        out
    };
    let e = net.nodes[1]
        .handle_frame(lb, &provide, vec![fd()])
        .unwrap_err();
    assert_eq!(e, NodeError::UnrequestedMemory { size: 4096 });
    net.run();
    finish(net, &pa, &pb);
}

#[test]
fn a_parcel_never_carries_more_fds_than_one_sendmsg() {
    let (mut net, _, pa, pb) = proxy_side();
    let boxes = |n: usize| -> Vec<NodeHandle> {
        (0..n)
            .map(|_| Handle::Object(node_support::fd_box()))
            .collect()
    };
    assert_eq!(
        net.nodes[1].put(pb[1], Vec::new(), boxes(129)),
        Err(ipcz_node::router::PortalError::TooManyFds)
    );
    net.nodes[1].put(pb[1], Vec::new(), boxes(128)).unwrap();
    net.run();
    let got = net.take_all(0, pa[1]);
    assert_eq!(got[0].handles.len(), 128);
    assert_eq!(net.nodes[0].received_fds_alive(), 128);
    drop(got);
    finish(net, &pa, &pb);
}

#[test]
fn held_parcels_and_their_fds_go_when_the_link_is_lost() {
    let (mut net, lb, pa, pb) = proxy_side();
    let la = net.end(0, 1).unwrap().link;
    // A parcel whose data is in buffer 9, which never arrives, with an fd.
    let mut p = AcceptParcel::inline(1, 0, b"", vec![HandleType::BOXED_DRIVER_OBJECT], Vec::new());
    p.parcel_fragment = ipcz_wire::types::FragmentDescriptor::new(9, 64, 64);
    let mut m = Message::new(0, Body::AcceptParcel(p));
    m.push_object(DriverObject::TransmissiblePlatformHandle);
    let mut bytes = Vec::new();
    FrameHeader::new(1, 0)
        .encode_frame(&[], &m, &mut bytes)
        .unwrap();
    net.inject(0, la, &bytes, vec![fd()]).unwrap();
    assert_eq!(net.nodes[1].held_parcel_count(), 1);
    assert_eq!(net.nodes[1].received_fds_alive(), 1);
    net.close_transport(1, lb);
    assert_eq!(net.nodes[1].held_parcel_count(), 0);
    assert_eq!(net.nodes[1].received_fds_alive(), 0);
    finish(net, &pa, &pb);
}

#[test]
fn a_stream_cut_anywhere_gives_the_same_parcels() {
    for chunk in [1usize, 3, 7, 16, 100, 4096] {
        let (mut net, lb, pa, pb) = proxy_side();
        for i in 0..5u8 {
            let handles = if i % 2 == 0 {
                vec![Handle::Object(node_support::fd_box())]
            } else {
                Vec::new()
            };
            net.nodes[0]
                .put(pa[1], vec![i; 40 * usize::from(i)], handles)
                .unwrap();
        }
        // The socket: all frames as one byte stream, fds queued in order.
        let mut stream = Vec::new();
        let mut fds = std::collections::VecDeque::new();
        while let Some(t) = net.nodes[0].poll_transmit() {
            stream.extend_from_slice(&t.bytes);
            fds.extend(t.fds);
        }
        let mut buffer = Vec::new();
        for piece in stream.chunks(chunk) {
            buffer.extend_from_slice(piece);
            let used = net.nodes[1].handle_stream(lb, &buffer, &mut fds).unwrap();
            buffer.drain(..used);
        }
        assert!(buffer.is_empty() && fds.is_empty());
        let got = net.take_all(1, pb[1]);
        assert_eq!(got.len(), 5, "chunk {chunk}");
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p.data, vec![i as u8; 40 * i]);
            assert_eq!(p.handles.len(), usize::from(i % 2 == 0));
        }
        drop(got);
        finish(net, &pa, &pb);
    }
}

#[test]
fn a_stream_announcing_a_huge_frame_drops_the_link() {
    let (mut net, lb, pa, pb) = proxy_side();
    let mut header = vec![16, 0, 0, 0];
    header.extend_from_slice(&u32::MAX.to_le_bytes());
    let e = net.nodes[1]
        .handle_stream(lb, &header, &mut Default::default())
        .unwrap_err();
    assert!(matches!(e, NodeError::Frame(_)), "{e:?}");
    net.run();
    assert_eq!(net.nodes[1].link_count(), 0);
    finish(net, &pa, &pb);
}

fn frame_of(m: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHeader::new(m.num_fds() as u16, 0)
        .encode_frame(&[], m, &mut out)
        .unwrap();
    out
}

fn accept_introduction_frame(other: ipcz_wire::types::NodeName, guid: u64) -> Vec<u8> {
    use ipcz_wire::messages::AcceptIntroduction;
    use ipcz_wire::types::{LinkSide, NodeType};
    let mut m = Message::new(
        0,
        Body::AcceptIntroduction(AcceptIntroduction {
            name: other,
            link_side: LinkSide::B,
            remote_node_type: NodeType::NORMAL,
            padding: 0,
            remote_protocol_version: 0,
            transport: DriverObjectIndex(0),
            memory: DriverObjectIndex(1),
            remote_features: None,
        }),
    );
    m.push_object(DriverObject::Transport(Default::default()));
    m.push_object(DriverObject::SharedBuffer(
        ipcz_wire::driver_object::SharedBuffer {
            buffer_size: ipcz_wire::memory::primary::SIZE as u32,
            mode: mojo_wire_kit::RegionMode::Unsafe,
            guid: mojo_wire_kit::Guid { high: 2, low: guid },
        },
    ));
    frame_of(&m)
}

#[test]
fn introductions_are_offered_from_a_broker_only_and_requests_refused_by_non_brokers() {
    use ipcz_node::node::NodeRole;
    use ipcz_wire::messages::RequestIntroduction;
    use ipcz_wire::types::{LinkSide, NodeName};
    let broker = NodeConfig {
        role: NodeRole::Broker,
        ..NodeConfig::default()
    };
    let mut net = Net::new(&[broker, NodeConfig::default()]);
    let (la, lb, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    assert_eq!(net.nodes[1].broker_link(), Some(lb));
    assert_eq!(net.nodes[0].broker_link(), None);
    let other = NodeName { high: 0x77, low: 1 };
    net.nodes[1]
        .handle_frame(lb, &accept_introduction_frame(other, 2), vec![fd(), fd()])
        .unwrap();
    // A second offer of the same node while the first is mapped is dropped.
    net.nodes[1]
        .handle_frame(lb, &accept_introduction_frame(other, 3), vec![fd(), fd()])
        .unwrap();
    let mut offered = Vec::new();
    while let Some(e) = net.nodes[1].poll_event() {
        if let NodeEvent::IntroductionOffered {
            name,
            side,
            transport,
            memory,
            ..
        } = e
        {
            offered.push((name, side, transport, memory));
        }
    }
    assert_eq!(offered.len(), 1);
    let (name, side, transport, memory) = offered.pop().unwrap();
    assert_eq!((name, side), (other, LinkSide::B));
    assert_eq!((transport.fds().len(), memory.fds().len()), (1, 1));
    assert_eq!(net.nodes[1].received_fds_alive(), 2);
    drop((transport, memory));
    assert_eq!(net.nodes[1].received_fds_alive(), 0);
    assert_eq!(net.nodes[1].pending_introduction_count(), 1);
    // The caller could not map it: the broker's message failed validation.
    net.nodes[1].introduction_unusable(other);
    assert_eq!(net.nodes[1].link_count(), 0);
    assert_eq!(net.nodes[1].pending_introduction_count(), 0);
    net.run();
    assert!(matches!(
        net.dropped.as_slice(),
        [(1, _, NodeError::UnusableIntroduction(n))] if *n == other
    ));
    assert!(net.nodes[0].link(la).is_none());
    for p in pa {
        net.nodes[0].close(p).unwrap();
    }
    for p in pb {
        net.nodes[1].close(p).unwrap();
    }
    net.assert_nothing_left();

    // Between two non-brokers: offers, rejections and requests all fail.
    let mut net = Net::with_nodes(2);
    let (la2, lb2, pa2, pb2) = net.connect_with_portals(0, 1, 2);
    net.run();
    let e = net.nodes[1]
        .handle_frame(lb2, &accept_introduction_frame(other, 4), vec![fd(), fd()])
        .unwrap_err();
    assert!(matches!(e, NodeError::UnexpectedMessage(_)));
    let request = Message::new(
        0,
        Body::RequestIntroduction(RequestIntroduction { name: other }),
    );
    let e = net.nodes[0]
        .handle_frame(la2, &frame_of(&request), Vec::new())
        .unwrap_err();
    assert!(matches!(e, NodeError::UnexpectedMessage(_)));
    net.run();
    assert_eq!(net.nodes[1].received_fds_alive(), 0);
    for p in pa2 {
        net.nodes[0].close(p).unwrap();
    }
    for p in pb2 {
        net.nodes[1].close(p).unwrap();
    }
    net.assert_nothing_left();
}

#[test]
fn a_rejection_nobody_asked_for_changes_nothing() {
    use ipcz_node::node::NodeRole;
    use ipcz_wire::messages::RejectIntroduction;
    let broker = NodeConfig {
        role: NodeRole::Broker,
        ..NodeConfig::default()
    };
    let mut net = Net::new(&[broker, NodeConfig::default()]);
    let (_, lb, pa, pb) = net.connect_with_portals(0, 1, 2);
    net.run();
    let reject = Message::new(
        0,
        Body::RejectIntroduction(RejectIntroduction {
            name: node_support::name(5),
        }),
    );
    net.nodes[1]
        .handle_frame(lb, &frame_of(&reject), Vec::new())
        .unwrap();
    net.nodes[0]
        .put(pa[1], b"still".to_vec(), Vec::new())
        .unwrap();
    net.run();
    assert_eq!(net.take_all(1, pb[1]).len(), 1);
    finish(net, &pa, &pb);
}

#[test]
fn data_pipe_and_shared_buffer_boxes_travel_with_all_their_fds() {
    use ipcz_wire::driver_object::{DataPipe, DataPipeEndpointType, SharedBuffer};
    let (mut net, lb, pa, pb) = proxy_side();
    let writable = SharedBuffer {
        buffer_size: 65536,
        mode: mojo_wire_kit::RegionMode::Writable,
        guid: mojo_wire_kit::Guid { high: 3, low: 4 },
    };
    let pipe = DriverObject::DataPipe(DataPipe {
        endpoint_type: DataPipeEndpointType::CONSUMER,
        element_size: 1,
        ring_offset: 0,
        ring_size: 65536,
        buffer: writable,
    });
    let buffer = DriverObject::SharedBuffer(writable);
    let boxes = vec![
        Handle::Object(DriverBox::new(pipe, vec![fd(), fd()]).unwrap()),
        Handle::Object(DriverBox::new(buffer, vec![fd(), fd()]).unwrap()),
    ];
    net.nodes[1].put(pb[1], b"objects".to_vec(), boxes).unwrap();
    let frame = net.take_frame(1, lb).unwrap();
    assert_eq!(frame.fds.len(), 4);
    net.inject(1, lb, &frame.bytes, frame.fds).unwrap();
    let mut got = net.take_all(0, pa[1]);
    let handles = got.pop().unwrap().handles;
    let objects: Vec<(DriverObject, usize)> = handles
        .iter()
        .map(|h| match h {
            Handle::Object(b) => (*b.object(), b.fds().len()),
            Handle::Portal(_) => panic!("box expected"),
        })
        .collect();
    assert_eq!(objects, vec![(pipe, 2), (buffer, 2)]);
    assert_eq!(net.nodes[0].received_fds_alive(), 4);
    drop(handles);
    assert_eq!(net.nodes[0].received_fds_alive(), 0);
    finish(net, &pa, &pb);
}

#[test]
fn one_link_per_remote_node() {
    let (mut net, _, pa, pb) = proxy_side();
    let again = ipcz_node::link::LinkParams::new(
        node_support::name(0),
        node_support::name(1),
        ipcz_wire::types::LinkSide::A,
        ipcz_node::sim::SharedHeap::new(ipcz_wire::memory::primary::SIZE),
    )
    .initializing_primary_buffer();
    assert_eq!(
        net.nodes[0].add_link(again).unwrap_err(),
        NodeError::DuplicateLink(node_support::name(1))
    );
    assert_eq!(net.nodes[0].link_count(), 1);
    let la = net.nodes[0].link_to(node_support::name(1)).unwrap();
    assert_eq!(
        net.nodes[0].link(la).unwrap().remote_name(),
        node_support::name(1)
    );
    assert_eq!(
        net.nodes[0].open_initial_portals(NodeLinkId(99), 1, 1),
        Err(NodeError::UnknownLink(NodeLinkId(99)))
    );
    finish(net, &pa, &pb);
}
