//! Property tests: round trips for every message (all versions, with
//! arrays, driver objects and newer-version params), every driver object,
//! both RouterDescriptor forms, frames, the deframer (split invariance), and
//! the shared-memory layouts.

use ipcz_wire::driver_object::DriverObject;
use ipcz_wire::driver_object::{
    DataPipe, DataPipeEndpointType, SharedBuffer, Transport, TransportEndpointType,
    WrappedPlatformHandle,
};
use ipcz_wire::frame::{Deframer, Frame, FrameHeader};
use ipcz_wire::memory::{LinkStatus, block, fragment};
use ipcz_wire::message::{FieldKind, Message};
use ipcz_wire::messages::{AcceptParcel, Body, MessageId};
use ipcz_wire::router_descriptor::LegacyRouterDescriptor;
use ipcz_wire::router_descriptor::RouterDescriptor;
use ipcz_wire::types::*;
use mojo_wire_kit::{Guid, RegionMode, WireLayout};
use proptest::prelude::*;

fn node_name() -> impl Strategy<Value = NodeName> {
    (any::<u64>(), any::<u64>()).prop_map(|(high, low)| NodeName { high, low })
}

fn fragment_descriptor() -> impl Strategy<Value = FragmentDescriptor> {
    prop_oneof![
        Just(FragmentDescriptor::NULL),
        (any::<u64>(), any::<u32>(), any::<u32>())
            .prop_map(|(b, o, s)| FragmentDescriptor::new(b, o, s)),
    ]
}

fn router_descriptor() -> impl Strategy<Value = RouterDescriptor> {
    (
        (
            any::<u64>(),
            any::<u64>(),
            fragment_descriptor(),
            any::<u64>(),
        ),
        (any::<u64>(), any::<u64>(), any::<u64>()),
        (any::<bool>(), any::<bool>(), node_name(), any::<u64>()),
    )
        .prop_map(
            |((c, s, f, d), (o, i, di), (pc, pb, n, ps))| RouterDescriptor {
                closed_peer_sequence_length: SequenceNumber(c),
                new_sublink: SublinkId(s),
                new_link_state_fragment: f,
                new_decaying_sublink: SublinkId(d),
                next_outgoing_sequence_number: SequenceNumber(o),
                next_incoming_sequence_number: SequenceNumber(i),
                decaying_incoming_sequence_length: SequenceNumber(di),
                peer_closed: pc,
                proxy_already_bypassed: pb,
                proxy_peer_node_name: n,
                proxy_peer_sublink: SublinkId(ps),
            },
        )
}

fn shared_buffer() -> impl Strategy<Value = SharedBuffer> {
    (1u32..=i32::MAX as u32, 0u32..3, any::<u64>(), 1u64..).prop_map(|(size, mode, low, high)| {
        SharedBuffer {
            buffer_size: size,
            mode: RegionMode::from_wire(mode).expect("0..3 are the modes"),
            guid: Guid { low, high },
        }
    })
}

fn driver_object() -> impl Strategy<Value = DriverObject> {
    prop_oneof![
        (any::<u32>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(d, a, b, c)| {
            DriverObject::Transport(Transport {
                destination_type: TransportEndpointType(d),
                is_same_remote_process: a,
                is_peer_trusted: b,
                is_trusted_by_peer: c,
            })
        }),
        shared_buffer().prop_map(DriverObject::SharedBuffer),
        Just(DriverObject::TransmissiblePlatformHandle),
        Just(DriverObject::WrappedPlatformHandle(
            WrappedPlatformHandle::default()
        )),
        (
            shared_buffer(),
            0u32..2,
            0u32..4,
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(mut buffer, endpoint, shift, offset, size)| {
                // A valid ring: element size a power of two dividing the size.
                let element_size = 1u32 << shift;
                buffer.buffer_size = (buffer.buffer_size / element_size).max(1) * element_size;
                let capacity = buffer.buffer_size;
                DriverObject::DataPipe(DataPipe {
                    endpoint_type: DataPipeEndpointType(endpoint),
                    element_size,
                    ring_offset: offset % capacity,
                    ring_size: (size % (capacity / element_size + 1)) * element_size,
                    buffer,
                })
            }),
    ]
}

/// Random contents for one message, independent of the crate's encoder.
#[derive(Debug, Clone)]
struct Plan {
    id: MessageId,
    /// Number of version blocks present (1 = V0 only).
    versions: usize,
    sequence_number: u64,
    /// Raw bytes for the scalar fields (cut to size per field).
    scalars: Vec<[u8; 16]>,
    /// Array contents (element count, raw element bytes), per array field.
    arrays: Vec<(usize, Vec<u8>)>,
    /// Whether each object field refers to an object.
    object_used: Vec<bool>,
    /// Objects per object-array field.
    array_objects: Vec<usize>,
    objects: Vec<DriverObject>,
    extension: Vec<u8>,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        prop::sample::select(MessageId::ALL.to_vec()),
        any::<bool>(),
        any::<u64>(),
        prop::collection::vec(any::<[u8; 16]>(), 16),
        prop::collection::vec((0usize..5, prop::collection::vec(any::<u8>(), 5 * 96)), 4),
        prop::collection::vec(any::<bool>(), 4),
        prop::collection::vec(0usize..3, 2),
        prop::collection::vec(driver_object(), 12),
        prop::collection::vec(any::<u8>(), 0..3)
            .prop_map(|v| v.iter().flat_map(|b| [*b; 8]).collect::<Vec<u8>>()),
    )
        .prop_map(
            |(id, all, seq, scalars, arrays, object_used, array_objects, objects, extension)| {
                let layout = id.layout().unwrap();
                let versions = if all { layout.versions.len() } else { 1 };
                let extension = if versions == layout.versions.len() {
                    extension
                } else {
                    Vec::new()
                };
                Plan {
                    id,
                    versions,
                    sequence_number: seq,
                    scalars,
                    arrays,
                    object_used,
                    array_objects,
                    objects,
                    extension,
                }
            },
        )
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// Builds the canonical bytes of a plan by hand, following spec §2.8.
fn build(p: &Plan) -> (Vec<u8>, Vec<DriverObject>) {
    let layout = p.id.layout().unwrap();
    let end = layout.versions[p.versions - 1].1;
    let params = end - 24 + p.extension.len();
    let mut m = vec![0u8; 24 + params];
    m[0] = 24;
    m[2] = p.id.0;
    put(&mut m, 8, &p.sequence_number.to_le_bytes());
    put(&mut m, 24, &(params as u32).to_le_bytes());
    put(&mut m, end, &p.extension);
    let mut objects = Vec::new();
    let (mut scalar, mut array, mut object, mut objarr) = (0, 0, 0, 0);
    let mut pending_arrays = Vec::new();
    for f in layout.fields.iter().filter(|f| f.offset < end) {
        match f.kind {
            FieldKind::Scalar => {
                put(&mut m, f.offset, &p.scalars[scalar % 16][..f.width]);
                scalar += 1;
            }
            FieldKind::Array { element_size } => {
                pending_arrays.push((f.offset, element_size, p.arrays[array % 4].clone()));
                array += 1;
            }
            FieldKind::DriverObject => {
                let index = if p.object_used[object % 4] {
                    objects.push(p.objects[objects.len()]);
                    (objects.len() - 1) as u32
                } else {
                    u32::MAX
                };
                put(&mut m, f.offset, &index.to_le_bytes());
                object += 1;
            }
            FieldKind::DriverObjectArray => {
                let n = p.array_objects[objarr % 2];
                let first = objects.len() as u32;
                for _ in 0..n {
                    objects.push(p.objects[objects.len()]);
                }
                let first = if n == 0 { 0 } else { first };
                put(&mut m, f.offset, &first.to_le_bytes());
                put(&mut m, f.offset + 4, &(n as u32).to_le_bytes());
                objarr += 1;
            }
        }
    }
    let append = |m: &mut Vec<u8>, element_size: usize, n: usize, elements: &[u8]| -> u32 {
        if n == 0 {
            return 0;
        }
        let offset = m.len();
        let num_bytes = (8 + element_size * n).div_ceil(8) * 8;
        m.extend(&(num_bytes as u32).to_le_bytes());
        m.extend(&(n as u32).to_le_bytes());
        m.extend(&elements[..element_size * n]);
        m.resize(offset + num_bytes, 0);
        offset as u32
    };
    for (at, element_size, (n, mut elements)) in pending_arrays {
        if element_size == 96 {
            // RouterDescriptors: unused flag bits and reserved bytes are zero.
            for d in elements.chunks_mut(96) {
                d[64] &= 3;
                d[65..72].fill(0);
            }
        }
        let offset = append(&mut m, element_size, n, &elements);
        put(&mut m, at, &offset.to_le_bytes());
    }
    if !objects.is_empty() {
        let table = append(&mut m, 8, objects.len(), &vec![0; 8 * objects.len()]);
        put(&mut m, 16, &table.to_le_bytes());
        let mut fd = 0u16;
        for (i, o) in objects.iter().enumerate() {
            let mut bytes = Vec::new();
            o.encode(&mut bytes).unwrap();
            let at = append(&mut m, 1, bytes.len(), &bytes);
            let record = table as usize + 8 + 8 * i;
            put(&mut m, record, &at.to_le_bytes());
            put(&mut m, record + 4, &fd.to_le_bytes());
            let n = o.fd_count() as u16;
            put(&mut m, record + 6, &n.to_le_bytes());
            fd += n;
        }
    }
    (m, objects)
}

proptest! {
    /// Bytes built by hand for any message, version set, array contents,
    /// driver objects and newer-version params decode exactly and re-encode
    /// to the same bytes.
    #[test]
    fn every_message_round_trips(p in plan()) {
        let (bytes, objects) = build(&p);
        let fds: usize = objects.iter().map(|o| o.fd_count()).sum();
        let m = Message::decode_exact(&bytes, fds).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(m.id(), p.id);
        prop_assert_eq!(m.body.version() as usize, p.versions - 1);
        prop_assert_eq!(m.params_extension, &p.extension[..]);
        let decoded: Vec<_> = m.driver_objects.iter().map(|o| o.object).collect();
        prop_assert_eq!(decoded, objects);
        prop_assert_eq!(m.num_fds(), fds);
        let mut out = Vec::new();
        prop_assert_eq!(m.encode(&mut out), Ok(()));
        prop_assert_eq!(&out, &bytes);
        let _ = m.check_semantics();
        let _ = m.to_string();
    }

    /// Unknown ids are kept raw and re-encode exactly.
    #[test]
    fn unknown_messages_round_trip(
        id in any::<u8>().prop_filter("unknown", |id| !MessageId(*id).is_known()),
        seq in any::<u64>(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = vec![24, 0, id, 0, 0, 0, 0, 0];
        bytes.extend(seq.to_le_bytes());
        bytes.extend([0; 8]);
        bytes.extend(&body);
        let m = Message::decode_exact(&bytes, 0).unwrap();
        prop_assert!(matches!(m.body, Body::Unknown(_)));
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        prop_assert_eq!(out, bytes);
    }

    /// Typed AcceptParcel values survive encode/decode.
    #[test]
    fn accept_parcel_values_round_trip(
        (sublink, seq, index, num) in (any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>()),
        fragment in fragment_descriptor(),
        data in prop::collection::vec(any::<u8>(), 0..300),
        handles in prop::collection::vec(any::<u32>().prop_map(HandleType), 0..6),
        routers in prop::collection::vec(router_descriptor(), 0..3),
        objects in prop::collection::vec(driver_object(), 0..4),
        link_seq in any::<u64>(),
    ) {
        let mut parcel = AcceptParcel::inline(sublink, seq, &data, handles, routers);
        parcel.subparcel_index = index;
        parcel.num_subparcels = num;
        parcel.parcel_fragment = fragment;
        parcel.driver_objects = DriverObjectArray::new(0, objects.len() as u32);
        let mut m = Message::new(link_seq, parcel.into());
        for o in &objects {
            m.push_object(*o);
        }
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        let fds = m.num_fds();
        prop_assert_eq!(out.len() % 8, 0);
        let back = Message::decode_exact(&out, fds).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(back, m);
    }

    #[test]
    fn driver_objects_round_trip(o in driver_object()) {
        let mut out = Vec::new();
        o.encode(&mut out).unwrap();
        prop_assert_eq!(out.len(), o.encoded_len());
        prop_assert_eq!(DriverObject::decode_exact(&out, o.fd_count()), Ok(o));
        // Fewer fds than needed is always rejected.
        prop_assert!(DriverObject::decode(&out, o.fd_count() - 1).is_err());
    }

    #[test]
    fn router_descriptors_round_trip(d in router_descriptor()) {
        prop_assert_eq!(RouterDescriptor::decode(d.to_wire().wire_bytes()), Ok(d));
        let legacy = LegacyRouterDescriptor::from(d);
        prop_assert_eq!(
            LegacyRouterDescriptor::decode(legacy.to_wire().wire_bytes()),
            Ok(legacy)
        );
        let _ = d.validate(d.new_sublink);
    }

    #[test]
    fn frames_round_trip(
        num_handles in any::<u16>(),
        timestamp in proptest::option::of(any::<i64>()),
        extension in prop::collection::vec(any::<u8>(), 0..16),
        payload in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        let frame = Frame {
            header: FrameHeader { num_handles, timestamp_us: timestamp },
            header_extension: if timestamp.is_some() { &extension } else { &[] },
            payload: &payload,
        };
        let mut out = Vec::new();
        frame.encode(&mut out).unwrap();
        prop_assert_eq!(Frame::decode(&out), Ok((frame, out.len())));
    }

    /// Any split of a stream of frames yields the same frames, and fd
    /// tracking holds each frame back until its fds arrived.
    #[test]
    fn deframer_is_split_invariant(
        payloads in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..80), 0u16..3, any::<bool>()), 0..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (payload, fds, old) in &payloads {
            let header = FrameHeader { num_handles: *fds, timestamp_us: (!old).then_some(7) };
            let start = stream.len();
            Frame { header, header_extension: &[], payload }.encode(&mut stream).unwrap();
            expected.push((start as u64, stream[start..].to_vec()));
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        points.push(0);
        points.push(stream.len());
        points.sort();
        let mut d = Deframer::new();
        d.track_fds();
        let mut got = Vec::new();
        for w in points.windows(2) {
            d.push(&stream[w[0]..w[1]]).unwrap();
            d.fds_arrived(2);
            while let Some((offset, f)) = d.next_frame().unwrap() {
                let mut out = Vec::new();
                f.encode(&mut out).unwrap();
                got.push((offset, out));
            }
        }
        d.fds_arrived(usize::from(u16::MAX));
        while let Some((offset, f)) = d.next_frame().unwrap() {
            let mut out = Vec::new();
            f.encode(&mut out).unwrap();
            got.push((offset, out));
        }
        prop_assert_eq!(got, expected);
        prop_assert_eq!(d.buffered(), 0);
    }

    /// The single-threaded allocator built from the pure steps behaves like
    /// a LIFO free list over blocks 1..n.
    #[test]
    fn block_allocator_matches_a_model(
        blocks in 2usize..40,
        ops in prop::collection::vec(any::<Option<prop::sample::Index>>(), 0..100),
    ) {
        let mut region = vec![0xa5u8; blocks * 64];
        block::initialize_region(&mut region, 64).unwrap();
        let mut a = block::BlockAllocator::new(&mut region, 64).unwrap();
        let mut free: Vec<usize> = (1..blocks).rev().collect();
        let mut used = Vec::new();
        for op in ops {
            match op {
                None => {
                    let got = a.allocate();
                    prop_assert_eq!(got, free.pop());
                    used.extend(got);
                }
                Some(i) if !used.is_empty() => {
                    let block = used.swap_remove(i.index(used.len()));
                    a.free(block).unwrap();
                    free.push(block);
                }
                Some(_) => {}
            }
        }
    }

    #[test]
    fn block_headers_round_trip(word in any::<u32>(), base in any::<i16>(), abs in any::<i16>()) {
        let h = block::BlockHeader::from_word(word);
        prop_assert_eq!(h.to_word(), word);
        let rel = block::relative_from_absolute(base, abs);
        prop_assert_eq!(block::absolute_from_relative(base, rel), abs);
    }

    #[test]
    fn link_status_transitions_are_consistent(word in any::<u32>(), a in any::<bool>()) {
        let side = if a { LinkSide::A } else { LinkSide::B };
        let s = LinkStatus::from_word(word);
        prop_assert_eq!(s.bits(), word);
        let t = s.try_lock(side);
        prop_assert_eq!(t.ok, s.contains(LinkStatus::STABLE) && !s.intersects(LinkStatus::LOCKED));
        if t.ok {
            prop_assert!(t.status.is_locked_by(side));
            prop_assert!(!t.status.try_lock(side.opposite()).ok);
        }
        let r = s.reset_waiting_bit(side);
        if r.ok {
            prop_assert!(!r.status.try_lock(side.opposite()).status.is_locked_by(side));
        }
    }

    #[test]
    fn parcel_fragments_round_trip(
        data in prop::collection::vec(any::<u8>(), 0..200),
        slack in 0usize..64,
        block in 0u32..1000,
    ) {
        let size = (8 + data.len() + slack) as u32;
        let d = FragmentDescriptor::new(0, block * 8, size);
        let mut bytes = vec![0x77u8; size as usize];
        fragment::write_parcel_data(&mut bytes, &data).unwrap();
        if size > 8 {
            prop_assert_eq!(fragment::parcel_data(d, &bytes), Ok(&data[..]));
        }
        let r = fragment::range(d, 1 << 20);
        prop_assert_eq!(r.is_ok(), (block * 8 + size) as usize <= 1 << 20);
    }
}
