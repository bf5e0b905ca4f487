//! Every receiver check of spec §2.7 (Chrome's `message.cc`), and the
//! stateless handler checks, each producing its typed error; plus the cases
//! Chrome accepts (absent V1, newer params, unknown ids, unaligned arrays).

use ipcz_wire::driver_object::DriverObject;
use ipcz_wire::driver_object::{SharedBuffer, Transport};
use ipcz_wire::error::{ArrayError, FieldError, MessageError, ObjectError};
use ipcz_wire::message::Message;
use ipcz_wire::messages::*;
use ipcz_wire::router_descriptor::RouterDescriptor;
use ipcz_wire::types::*;
use mojo_wire_kit::{Guid, RegionMode};

fn encode(m: &Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode(&mut out).unwrap();
    out
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn hello() -> Vec<u8> {
    encode(&Message::new(
        0,
        ConnectFromNonBrokerToBroker {
            protocol_version: 0,
            num_initial_portals: 2,
            features: Some(vec![0]),
        }
        .into(),
    ))
}

fn buffer(size: u32) -> DriverObject {
    DriverObject::SharedBuffer(SharedBuffer {
        buffer_size: size,
        mode: RegionMode::Unsafe,
        guid: Guid { low: 1, high: 2 },
    })
}

/// ConnectFromBrokerToNonBroker with one buffer object (DODA at 104, object
/// bytes array at 120).
fn greeting() -> Vec<u8> {
    let mut m = Message::new(0, Body::from(ConnectFromBrokerToNonBroker::default()));
    let buffer = m.push_object(buffer(131072));
    m.body = ConnectFromBrokerToNonBroker {
        num_initial_portals: 2,
        buffer,
        features: Some(vec![0]),
        ..Default::default()
    }
    .into();
    encode(&m)
}

#[test]
fn header_checks_1_to_3() {
    assert_eq!(
        Message::decode(&[24; 23], 0),
        Err(MessageError::TooShort { len: 23 })
    );
    let mut b = hello();
    b[0] = 32;
    assert_eq!(
        Message::decode(&b, 0),
        Err(MessageError::HeaderSize {
            version: 0,
            size: 32
        })
    );
    b[1] = 1;
    b[0] = 16;
    assert_eq!(
        Message::decode(&b, 0),
        Err(MessageError::HeaderSize {
            version: 1,
            size: 16
        })
    );
    b[0] = 28;
    assert!(matches!(
        Message::decode(&b, 0),
        Err(MessageError::HeaderSizeBounds { size: 28, .. })
    ));
    b[0] = 248;
    assert!(matches!(
        Message::decode(&b, 0),
        Err(MessageError::HeaderSizeBounds { size: 248, .. })
    ));
}

#[test]
fn newer_header_versions_are_accepted_and_kept() {
    // Version 1 with a 32-byte header: params move to offset 32.
    let old = hello();
    let mut b = old[..24].to_vec();
    b[0] = 32;
    b[1] = 1;
    b.extend([0xee; 8]);
    b.extend(&old[24..]);
    // The features array offset is absolute: shift it by 8.
    put32(&mut b, 48, 56);
    let m = Message::decode_exact(&b, 0).unwrap();
    assert_eq!(m.header_extension, &[0xee; 8]);
    let Body::ConnectFromNonBrokerToBroker(c) = &m.body else {
        panic!()
    };
    assert_eq!(c.features, Some(vec![0]));
}

#[test]
fn driver_object_table_checks() {
    let good = greeting();
    assert!(Message::decode_exact(&good, 1).is_ok());
    // The table itself.
    let mut b = good.clone();
    put32(&mut b, 16, 5000);
    assert!(matches!(
        Message::decode(&b, 1),
        Err(MessageError::DriverObjectTable(
            ArrayError::OffsetOutOfBounds { offset: 5000, .. }
        ))
    ));
    let mut b = good.clone();
    put32(&mut b, 104 + 4, 3);
    assert!(matches!(
        Message::decode(&b, 1),
        Err(MessageError::DriverObjectTable(
            ArrayError::TooManyElements {
                num_elements: 3,
                max: 1
            }
        ))
    ));
    let mut b = good.clone();
    put32(&mut b, 104, 4);
    assert!(matches!(
        Message::decode(&b, 1),
        Err(MessageError::DriverObjectTable(ArrayError::NumBytes {
            num_bytes: 4,
            ..
        }))
    ));
    // A record's byte array.
    let mut b = good.clone();
    put32(&mut b, 112, good.len() as u32 - 4);
    assert!(matches!(
        Message::decode(&b, 1),
        Err(MessageError::DriverObjectBytes {
            index: 0,
            error: ArrayError::HeaderTruncated { .. }
        })
    ));
    // A record's fds.
    assert_eq!(
        Message::decode(&good, 0),
        Err(MessageError::DriverObjectFds {
            index: 0,
            first: 0,
            count: 1,
            total: 0
        })
    );
    let mut b = good.clone();
    b[116] = 1;
    assert!(matches!(
        Message::decode(&b, 1),
        Err(MessageError::DriverObjectFds { first: 1, .. })
    ));
    // The object itself (ObjectHeader type 7: Invitation, not serializable).
    let mut b = good.clone();
    put32(&mut b, 132, 7);
    assert!(matches!(
        Message::decode(&b, 1),
        Err(MessageError::DriverObject {
            index: 0,
            error: ObjectError::UnsupportedType(_)
        })
    ));
    // Extra fds beyond the records are fine (closed by the receiver).
    assert!(Message::decode(&good, 3).is_ok());
}

#[test]
fn params_checks_4_to_6() {
    let b = hello();
    assert_eq!(
        Message::decode(&b[..28], 0),
        Err(MessageError::ParamsTooShort {
            len: 28,
            needed: 32
        })
    );
    let mut bad = b.clone();
    put32(&mut bad, 24, 200);
    assert!(matches!(
        Message::decode(&bad, 0),
        Err(MessageError::ParamsSize { size: 200, .. })
    ));
    put32(&mut bad, 24, 20);
    assert!(matches!(
        Message::decode(&bad, 0),
        Err(MessageError::ParamsSize { size: 20, .. })
    ));
    put32(&mut bad, 24, 8);
    assert_eq!(
        Message::decode(&bad, 0),
        Err(MessageError::MissingV0 {
            message: "ConnectFromNonBrokerToBroker",
            size: 8,
            needed: 16
        })
    );
    // V1 left out (older sender): accepted, features absent.
    let mut old = b[..40].to_vec();
    put32(&mut old, 24, 16);
    let m = Message::decode_exact(&old, 0).unwrap();
    let Body::ConnectFromNonBrokerToBroker(c) = &m.body else {
        panic!()
    };
    assert_eq!(c.features, None);
    assert_eq!(m.body.version(), 0);
}

#[test]
fn newer_params_are_kept() {
    // A newer sender appends 8 bytes of params after V1.
    let m = Message::new(
        3,
        RouteClosed {
            sublink: SublinkId(5),
            sequence_length: SequenceNumber(2),
        }
        .into(),
    );
    let b = encode(&m);
    let mut newer = b[..48].to_vec();
    newer.extend([1, 2, 3, 4, 5, 6, 7, 8]);
    put32(&mut newer, 24, 32);
    let d = Message::decode_exact(&newer, 0).unwrap();
    assert_eq!(d.params_extension, &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(d.body, m.body);
    assert!(d.to_string().contains("newer_params=8B"));
}

#[test]
fn field_checks_7() {
    // An array field.
    let mut b = hello();
    put32(&mut b, 40, 4000);
    assert!(matches!(
        Message::decode(&b, 0),
        Err(MessageError::Field {
            message: "ConnectFromNonBrokerToBroker",
            field: "features",
            error: FieldError::Array(ArrayError::OffsetOutOfBounds { offset: 4000, .. })
        })
    ));
    let mut b = hello();
    put32(&mut b, 52, 2);
    assert!(matches!(
        Message::decode(&b, 0),
        Err(MessageError::Field {
            field: "features",
            error: FieldError::Array(ArrayError::TooManyElements {
                num_elements: 2,
                max: 1
            }),
            ..
        })
    ));
    // A driver object field naming a missing object.
    let mut b = greeting();
    put32(&mut b, 72, 1);
    assert!(matches!(
        Message::decode(&b, 1),
        Err(MessageError::Field {
            field: "buffer",
            error: FieldError::ObjectIndex { index: 1, count: 1 },
            ..
        })
    ));
    // An object claimed twice.
    let mut m = Message::new(0, Body::from(ConnectToReferredNonBroker::default()));
    let a = m.push_object(buffer(131072));
    let t = m.push_object(DriverObject::Transport(Transport::default()));
    m.body = ConnectToReferredNonBroker {
        broker_link_buffer: a,
        referrer_link_transport: t,
        referrer_link_buffer: a,
        ..Default::default()
    }
    .into();
    let b = encode(&m);
    assert!(matches!(
        Message::decode(&b, 2),
        Err(MessageError::Field {
            field: "referrer_link_buffer",
            error: FieldError::ObjectClaimedTwice { index: 0 },
            ..
        })
    ));
    // A driver object array reaching past the objects.
    let mut parcel = AcceptParcel::inline(1, 0, &[], vec![], vec![]);
    parcel.driver_objects = DriverObjectArray::new(1, 1);
    let mut m = Message::new(0, parcel.into());
    m.push_object(buffer(64));
    assert!(matches!(
        Message::decode(&encode(&m), 1),
        Err(MessageError::Field {
            field: "driver_objects",
            error: FieldError::ObjectArray {
                first: 1,
                count: 1,
                total: 1
            },
            ..
        })
    ));
    // Unclaimed objects are allowed (Chrome closes them).
    let mut m = Message::new(0, AcceptParcel::inline(1, 0, &[], vec![], vec![]).into());
    m.push_object(buffer(64));
    assert!(Message::decode_exact(&encode(&m), 1).is_ok());
}

#[test]
fn unknown_ids_are_validated_then_kept_8() {
    let mut b = greeting();
    b[2] = 99;
    let m = Message::decode_exact(&b, 1).unwrap();
    assert!(matches!(
        m.body,
        Body::Unknown(UnknownMessage {
            id: MessageId(99),
            ..
        })
    ));
    assert_eq!(m.driver_objects.len(), 1);
    assert_eq!(m.num_fds(), 1);
    // Header and driver objects are still validated.
    assert!(matches!(
        Message::decode(&b, 0),
        Err(MessageError::DriverObjectFds { .. })
    ));
}

#[test]
fn chrome_accepts_non_canonical_layouts_but_decode_exact_names_them() {
    // Move the features array 8 bytes later (leaving a gap): valid for
    // Chrome (no alignment or overlap checks), not Chrome's own layout.
    let b = hello();
    let mut moved = b[..48].to_vec();
    moved.extend([0; 8]);
    moved.extend(&b[48..]);
    put32(&mut moved, 40, 56);
    assert!(Message::decode(&moved, 0).is_ok());
    let e = Message::decode_exact(&moved, 0).unwrap_err();
    assert_eq!(
        e,
        MessageError::NotCanonical {
            offset: 40,
            field: "ConnectFromNonBrokerToBroker.features"
        }
    );
    // A present zero-length array is accepted too.
    let mut empty = b.clone();
    put32(&mut empty, 52, 0);
    assert!(Message::decode(&empty, 0).is_ok());
    assert!(Message::decode_exact(&empty, 0).is_err());
}

#[test]
fn semantic_checks_10() {
    let check = |m: &Message<'_>| {
        let b = encode(m);
        let d = Message::decode(&b, m.num_fds()).unwrap();
        d.check_semantics()
    };
    let semantic = |r: Result<(), MessageError>, field: &str| match r {
        Err(MessageError::Semantic { field: f, .. }) => assert_eq!(f, field),
        other => panic!("expected a semantic failure of {field}, got {other:?}"),
    };
    // AcceptParcel.
    let mut p = AcceptParcel::inline(1, 0, &[], vec![], vec![]);
    p.num_subparcels = 0;
    semantic(check(&Message::new(0, p.clone().into())), "num_subparcels");
    p.num_subparcels = 1025;
    semantic(check(&Message::new(0, p.into())), "num_subparcels");
    let p = AcceptParcel::inline(1, 0, &[], vec![HandleType::PORTAL], vec![]);
    semantic(check(&Message::new(0, p.into())), "new_routers");
    let p = AcceptParcel::inline(1, 0, &[], vec![], vec![RouterDescriptor::default()]);
    semantic(check(&Message::new(0, p.into())), "new_routers");
    let d = RouterDescriptor {
        new_sublink: SublinkId(1),
        ..Default::default()
    };
    let p = AcceptParcel::inline(1, 0, &[], vec![HandleType::PORTAL], vec![d]);
    semantic(check(&Message::new(0, p.into())), "new_routers");
    let p = AcceptParcel::inline(1, 0, &[], vec![HandleType(9)], vec![]);
    semantic(check(&Message::new(0, p.into())), "handle_types");
    let mut p = AcceptParcel::inline(1, 0, &[], vec![HandleType::BOXED_DRIVER_OBJECT], vec![]);
    p.driver_objects = DriverObjectArray::default();
    semantic(check(&Message::new(0, p.into())), "driver_objects");
    let mut m = Message::new(0, AcceptParcel::inline(1, 0, &[], vec![], vec![]).into());
    m.push_object(buffer(64));
    semantic(check(&m), "driver_objects");
    let d = RouterDescriptor {
        new_sublink: SublinkId(2),
        ..Default::default()
    };
    let p = AcceptParcel::inline(
        1,
        0,
        b"x",
        vec![HandleType::PORTAL, HandleType::BOXED_SUBPARCEL],
        vec![d],
    );
    assert_eq!(check(&Message::new(0, p.into())), Ok(()));

    // AddBlockBuffer.
    let add = |id: u64, block_size: u32, size: u32| {
        let mut m = Message::new(0, Body::from(AddBlockBuffer::default()));
        let buffer = m.push_object(buffer(size));
        m.body = AddBlockBuffer {
            id: BufferId(id),
            block_size,
            buffer,
        }
        .into();
        check(&m)
    };
    assert_eq!(add(1, 64, 65536), Ok(()));
    semantic(add(u64::MAX, 64, 65536), "id");
    semantic(add(1, 48, 65536), "block_size");
    semantic(add(1, 96, 65536), "block_size");
    semantic(add(1, 16384, 65536), "block_size");
    assert_eq!(add(1, 8192, 65536), Ok(()));
    semantic(add(1, 64, 64 * 40000), "block_size");

    // Others.
    semantic(
        check(&Message::new(
            0,
            RequestMemory {
                size: 0,
                padding: 0,
            }
            .into(),
        )),
        "size",
    );
    semantic(
        check(&Message::new(
            0,
            BypassPeerWithLink {
                new_link_state_fragment: FragmentDescriptor::NULL,
                ..Default::default()
            }
            .into(),
        )),
        "new_link_state_fragment",
    );
    semantic(
        check(&Message::new(
            0,
            AcceptBypassLink {
                new_link_state_fragment: FragmentDescriptor::new(0, 1092, 64),
                ..Default::default()
            }
            .into(),
        )),
        "new_link_state_fragment",
    );
    let mut m = Message::new(0, Body::from(ConnectFromBrokerToNonBroker::default()));
    let small = m.push_object(buffer(4096));
    m.body = ConnectFromBrokerToNonBroker {
        buffer: small,
        ..Default::default()
    }
    .into();
    semantic(check(&m), "buffer");
    let mut m = Message::new(0, Body::from(AcceptIntroduction::default()));
    let memory = m.push_object(buffer(131072));
    let transport = m.push_object(buffer(131072));
    m.body = AcceptIntroduction {
        transport,
        memory,
        ..Default::default()
    }
    .into();
    semantic(check(&m), "transport");
}

#[test]
fn layouts_match_the_spec_summary_table() {
    // (id, P) from spec §3.1.
    let table = [
        (0, 64),
        (1, 24),
        (2, 24),
        (3, 24),
        (4, 88),
        (5, 56),
        (6, 16),
        (7, 48),
        (10, 24),
        (11, 48),
        (12, 24),
        (13, 40),
        (14, 24),
        (20, 72),
        (21, 32),
        (22, 24),
        (23, 16),
        (30, 48),
        (31, 64),
        (32, 32),
        (33, 24),
        (34, 48),
        (35, 24),
        (36, 16),
        (64, 16),
        (65, 16),
        (66, 40),
        (67, 40),
    ];
    assert_eq!(MessageId::ALL.len(), table.len());
    for (id, p) in table {
        let layout = MessageId(id).layout().unwrap();
        assert_eq!(layout.params_size, p, "{}", layout.name);
        assert_eq!(layout.versions[0].0, 32);
        assert_eq!(layout.versions.last().unwrap().1, 24 + p, "{}", layout.name);
        // Fields tile their version blocks without overlap, naturally aligned.
        let mut end = 32;
        for (v, &(start, stop)) in layout.versions.iter().enumerate() {
            assert_eq!(start, end.max(start));
            assert_eq!(start % 8, 0);
            end = start;
            for f in layout.fields.iter().filter(|f| usize::from(f.version) == v) {
                assert_eq!(f.offset, end, "{}.{}", layout.name, f.name);
                assert_eq!(f.offset % f.width.min(8), 0, "{}.{}", layout.name, f.name);
                end += f.width;
            }
            assert!(end <= stop && stop - end < 8, "{} v{v}", layout.name);
            end = stop;
        }
    }
}

/// §3.3: the inner message of a relay carries no object table of its own;
/// its object fields index the objects the outer message relays.
#[test]
fn relayed_inner_message_uses_the_objects_beside_it() {
    use ipcz_wire::driver_object::{AttachedObject, FdRange};
    use ipcz_wire::message::DecodeOptions;
    let inner = encode(&Message::new(
        0,
        AddBlockBuffer {
            id: BufferId(3),
            block_size: 4096,
            buffer: DriverObjectIndex(0),
        }
        .into(),
    ));
    // Without objects beside it, the buffer field names nothing.
    assert!(Message::decode_relayed(&inner, Vec::new(), DecodeOptions::default()).is_err());
    // The outer frame's second fd is the buffer's.
    let objects = vec![AttachedObject {
        object: buffer(65536),
        fds: FdRange { first: 1, count: 1 },
    }];
    let m = Message::decode_relayed(&inner, objects.clone(), DecodeOptions::default()).unwrap();
    assert_eq!(
        m.body,
        Body::AddBlockBuffer(AddBlockBuffer {
            id: BufferId(3),
            block_size: 4096,
            buffer: DriverObjectIndex(0),
        })
    );
    assert_eq!(m.driver_objects, objects);
    assert_eq!(m.num_fds(), 2);
    // A cut inner message is a typed error, as for any message.
    assert!(matches!(
        Message::decode_relayed(&inner[..20], objects, DecodeOptions::default()),
        Err(MessageError::TooShort { len: 20 })
    ));
}
