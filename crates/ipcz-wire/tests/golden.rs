//! Golden tests from the annotated frames of spec section 9: the real frames
//! (9.1-9.8) must decode to the annotated values, re-encode byte for byte,
//! and come out identical when built from scratch through the API; the
//! constructed examples (9.9) must equal what the encoder produces, except
//! where the spec disagrees with Chromium's source (noted inline).

mod spec_examples;

use ipcz_wire::driver_object::{AttachedObject, DriverObject, FdRange};
use ipcz_wire::driver_object::{
    SharedBuffer, Transport, TransportEndpointType, WrappedPlatformHandle, WrapperType,
};
use ipcz_wire::frame::{Frame, FrameHeader};
use ipcz_wire::memory;
use ipcz_wire::message::Message;
use ipcz_wire::messages::*;
use ipcz_wire::router_descriptor::RouterDescriptor;
use ipcz_wire::types::*;
use mojo_wire_kit::{Guid, RegionMode};
use spec_examples::*;

use mojo_transcript::testing::unhex as hex;

/// Bytes of a spec hex dump; each placeholder token takes the next byte of
/// its substitute.
fn fill(s: &str, subs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut used = vec![0usize; subs.len()];
    s.split_whitespace()
        .map(|t| match subs.iter().position(|(p, _)| *p == t) {
            Some(i) => {
                let b = subs[i].1[used[i]];
                used[i] += 1;
                b
            }
            None => u8::from_str_radix(t, 16).unwrap_or_else(|_| panic!("token {t}")),
        })
        .collect()
}

/// Decodes a whole frame exactly, checks the handler rules, and checks that
/// re-encoding the decoded values gives the same bytes.
fn decode(bytes: &[u8]) -> (Frame<'_>, Message<'_>) {
    let (frame, used) = Frame::decode(bytes).expect("frame");
    assert_eq!(used, bytes.len());
    let msg = Message::decode_exact(frame.payload, frame.header.num_handles.into())
        .unwrap_or_else(|e| panic!("{e}"));
    msg.check_semantics().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(msg.num_fds(), usize::from(frame.header.num_handles));
    let mut out = Vec::new();
    frame
        .header
        .encode_frame(frame.header_extension, &msg, &mut out)
        .unwrap();
    assert_eq!(out, bytes, "re-encoding of {}", msg.body.name());
    (frame, msg)
}

/// Encodes a new frame the way Chrome does.
fn frame_of(message: &Message<'_>, timestamp_us: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let fds = u16::try_from(message.num_fds()).unwrap();
    FrameHeader::new(fds, timestamp_us)
        .encode_frame(&[], message, &mut out)
        .unwrap();
    out
}

fn timestamp(bytes: &[u8]) -> i64 {
    i64::from_le_bytes(bytes[8..16].try_into().unwrap())
}

fn name_at(bytes: &[u8], at: usize) -> NodeName {
    NodeName {
        high: u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()),
        low: u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()),
    }
}

fn primary_buffer(low: u64, high: u64) -> DriverObject {
    DriverObject::SharedBuffer(SharedBuffer {
        buffer_size: 131072,
        mode: RegionMode::Unsafe,
        guid: Guid { low, high },
    })
}

#[test]
fn handshake_with_a_broker_host_9_1() {
    let hello = hex(HELLO_FROM_PROXY_9_1);
    let (frame, msg) = decode(&hello);
    assert_eq!(frame.header.timestamp_us, Some(0x5f67_a5be));
    assert_eq!(msg.sequence_number, SequenceNumber(0));
    let Body::ConnectFromNonBrokerToBroker(c) = &msg.body else {
        panic!("{:?}", msg.body)
    };
    assert_eq!((c.protocol_version, c.num_initial_portals), (0, 2));
    assert_eq!(c.features, Some(vec![0]));
    let built = Message::new(
        0,
        ConnectFromNonBrokerToBroker {
            protocol_version: 0,
            num_initial_portals: 2,
            features: Some(vec![0]),
        }
        .into(),
    );
    assert_eq!(frame_of(&built, timestamp(&hello)), hello);

    let greeting = hex(BROKER_GREETING_9_1);
    let (frame, msg) = decode(&greeting);
    assert_eq!(frame.header.num_handles, 1);
    let Body::ConnectFromBrokerToNonBroker(c) = &msg.body else {
        panic!()
    };
    assert_eq!(c.broker_name.high, 0x6e64_b65e_bbe2_f1b3);
    assert_eq!(c.num_initial_portals, 2);
    assert_eq!(c.buffer, DriverObjectIndex(0));
    assert_eq!(c.features, Some(vec![0]));
    assert_eq!(msg.driver_objects[0].fds, FdRange { first: 0, count: 1 });
    let Some(DriverObject::SharedBuffer(b)) = msg.object(c.buffer) else {
        panic!()
    };
    assert_eq!((b.buffer_size, b.mode), (131072, RegionMode::Unsafe));
    assert_eq!(b.guid.low, 0x953c_2a32_4a12_95b3);

    let mut built = Message::new(
        0,
        Body::Unknown(UnknownMessage {
            id: MessageId(0),
            reserved0: [0; 5],
            driver_object_data_array: 0,
            reserved1: [0; 4],
            body: &[],
            num_fds: 0,
        }),
    );
    let buffer = built.push_object(primary_buffer(b.guid.low, b.guid.high));
    built.body = ConnectFromBrokerToNonBroker {
        broker_name: name_at(&greeting, 0x30),
        receiver_name: name_at(&greeting, 0x40),
        protocol_version: 0,
        num_initial_portals: 2,
        buffer,
        padding: 0,
        features: Some(vec![0]),
    }
    .into();
    assert_eq!(frame_of(&built, timestamp(&greeting)), greeting);
    assert_eq!(
        msg.to_string(),
        format!(
            "ConnectFromBrokerToNonBroker v1 broker_name={} receiver_name={} protocol_version=0 \
             num_initial_portals=2 buffer=obj0 features=[0] \
             driver_objects=[SharedBuffer(unsafe, 131072 B, 1 fd)]",
            c.broker_name, c.receiver_name
        )
    );
}

#[test]
fn handshake_in_inherit_mode_9_2() {
    let hello = hex(REFERRED_BROKER_9_2);
    let (_, msg) = decode(&hello);
    assert_eq!(msg.id(), MessageId::ConnectToReferredBroker);
    // Byte for byte ConnectFromNonBrokerToBroker with id 3.
    let mut as_id1 = hello.clone();
    as_id1[18] = 1;
    assert!(matches!(
        decode(&as_id1).1.body,
        Body::ConnectFromNonBrokerToBroker(_)
    ));

    let reply = hex(REFERRED_NON_BROKER_9_2);
    let (frame, msg) = decode(&reply);
    assert_eq!(frame.header.num_handles, 3);
    let Body::ConnectToReferredNonBroker(c) = &msg.body else {
        panic!()
    };
    assert_eq!(c.num_initial_portals, 2);
    assert_eq!(
        (
            c.broker_link_buffer,
            c.referrer_link_transport,
            c.referrer_link_buffer
        ),
        (
            DriverObjectIndex(0),
            DriverObjectIndex(1),
            DriverObjectIndex(2)
        )
    );
    assert_eq!(c.broker_features, Some(vec![0]));
    assert_eq!(c.referrer_features, Some(vec![0]));
    let transport = Transport {
        destination_type: TransportEndpointType::NON_BROKER,
        is_same_remote_process: false,
        is_peer_trusted: false,
        is_trusted_by_peer: true,
    };
    assert_eq!(
        msg.object(c.referrer_link_transport),
        Some(&DriverObject::Transport(transport))
    );
    let fds: Vec<_> = msg.driver_objects.iter().map(|o| o.fds.range()).collect();
    assert_eq!(fds, [0..1, 1..2, 2..3]);

    let guid = |at: usize| Guid {
        low: u64::from_le_bytes(reply[at..at + 8].try_into().unwrap()),
        high: u64::from_le_bytes(reply[at + 8..at + 16].try_into().unwrap()),
    };
    let (g0, g2) = (guid(0xe0), guid(0x128));
    let mut built = Message::new(0, Body::from(ConnectToReferredNonBroker::default()));
    let broker_link_buffer = built.push_object(primary_buffer(g0.low, g0.high));
    let referrer_link_transport = built.push_object(DriverObject::Transport(transport));
    let referrer_link_buffer = built.push_object(primary_buffer(g2.low, g2.high));
    built.body = ConnectToReferredNonBroker {
        name: name_at(&reply, 0x30),
        broker_name: name_at(&reply, 0x40),
        referrer_name: name_at(&reply, 0x50),
        broker_protocol_version: 0,
        referrer_protocol_version: 0,
        num_initial_portals: 2,
        broker_link_buffer,
        referrer_link_transport,
        referrer_link_buffer,
        broker_features: Some(vec![0]),
        referrer_features: Some(vec![0]),
    }
    .into();
    assert_eq!(frame_of(&built, timestamp(&reply)), reply);
}

#[test]
fn opening_route_messages_9_3() {
    let first = hex(FIRST_PARCEL_INLINE_9_3);
    let (_, msg) = decode(&first);
    let Body::AcceptParcel(p) = &msg.body else {
        panic!()
    };
    assert_eq!(
        (p.sublink, p.sequence_number),
        (SublinkId(1), SequenceNumber(0))
    );
    assert!(p.parcel_fragment.is_null());
    assert_eq!(p.parcel_data, &[0x0f, 0, 0, 0, 0, 0, 0, 0]);
    let built = Message::new(
        0,
        AcceptParcel::inline(1, 0, p.parcel_data, vec![], vec![]).into(),
    );
    assert_eq!(frame_of(&built, timestamp(&first)), first);
    assert_eq!(msg.to_string(), "AcceptParcel v0 sublink=1 seq=0 data=8B");

    let cases: [(&str, u64, Body<'_>); 7] = [
        (
            ROUTE_CLOSED_PORTAL0_9_3,
            0,
            RouteClosed {
                sublink: SublinkId(0),
                sequence_length: SequenceNumber(0),
            }
            .into(),
        ),
        (
            FLUSH_ROUTER_1_9_3,
            1,
            FlushRouter {
                sublink: SublinkId(1),
            }
            .into(),
        ),
        (
            BYPASS_PEER_WITH_LINK_9_3,
            1,
            BypassPeerWithLink {
                sublink: SublinkId(1),
                new_sublink: SublinkId(12),
                new_link_state_fragment: FragmentDescriptor::new(0, 1088, 64),
                inbound_sequence_length: SequenceNumber(1),
            }
            .into(),
        ),
        (
            STOP_PROXYING_TO_LOCAL_PEER_9_3,
            2,
            StopProxyingToLocalPeer {
                sublink: SublinkId(1),
                outbound_sequence_length: SequenceNumber(0),
            }
            .into(),
        ),
        (
            FLUSH_ROUTER_0_9_3,
            0,
            FlushRouter {
                sublink: SublinkId(0),
            }
            .into(),
        ),
        (
            BYPASS_PEER_WITH_LINK_SECOND_9_3,
            3,
            BypassPeerWithLink {
                sublink: SublinkId(2),
                new_sublink: SublinkId(13),
                new_link_state_fragment: FragmentDescriptor::new(0, 1152, 64),
                inbound_sequence_length: SequenceNumber(0),
            }
            .into(),
        ),
        (
            ROUTE_CLOSED_12_9_3,
            2,
            RouteClosed {
                sublink: SublinkId(12),
                sequence_length: SequenceNumber(1),
            }
            .into(),
        ),
    ];
    for (spec, seq, body) in cases {
        let bytes = hex(spec);
        let (_, msg) = decode(&bytes);
        assert_eq!(msg.body, body);
        assert_eq!(msg.sequence_number, SequenceNumber(seq));
        let built = Message::new(seq, body);
        assert_eq!(frame_of(&built, timestamp(&bytes)), bytes);
    }
}

#[test]
fn parcels_in_shared_memory_and_large_inline_9_4() {
    let bytes = hex(PARCEL_IN_FRAGMENT_9_4);
    let (_, msg) = decode(&bytes);
    let Body::AcceptParcel(p) = &msg.body else {
        panic!()
    };
    assert_eq!(p.parcel_fragment, FragmentDescriptor::new(0, 1152, 64));
    assert!(p.parcel_data.is_empty());
    let mut parcel = AcceptParcel::inline(12, 0, &[], vec![], vec![]);
    parcel.parcel_fragment = FragmentDescriptor::new(0, 1152, 64);
    assert_eq!(
        frame_of(&Message::new(3, parcel.into()), timestamp(&bytes)),
        bytes
    );

    // The spec shows only the first 128 of 4216 bytes: build the frame with
    // the shown data prefix and compare that much.
    let prefix = hex(LARGE_INLINE_PARCEL_PREFIX_9_4);
    let mut data = prefix[0x78..].to_vec();
    data.resize(4096, 0x5a);
    let built = Message::new(
        19,
        AcceptParcel::inline(12, 13, &data, vec![], vec![]).into(),
    );
    let frame = frame_of(&built, timestamp(&prefix));
    assert_eq!(frame.len(), 4216);
    assert_eq!(&frame[..128], &prefix[..]);
    decode(&frame);
}

#[test]
fn parcels_carrying_portals_9_5() {
    let descriptor = RouterDescriptor {
        new_sublink: SublinkId(13),
        new_link_state_fragment: FragmentDescriptor::new(0, 1216, 64),
        new_decaying_sublink: SublinkId(14),
        proxy_already_bypassed: true,
        ..Default::default()
    };
    for (spec, decaying, seq) in [
        (PARCEL_WITH_PORTAL_9_5, 0, 2),
        (PARCEL_WITH_PORTAL_QUEUED_9_5, 3, 2),
    ] {
        let bytes = hex(spec);
        let (_, msg) = decode(&bytes);
        let Body::AcceptParcel(p) = &msg.body else {
            panic!()
        };
        let d = RouterDescriptor {
            decaying_incoming_sequence_length: SequenceNumber(decaying),
            ..descriptor
        };
        assert_eq!(p.handle_types, [HandleType::PORTAL]);
        assert_eq!(p.new_routers, [d]);
        assert_eq!(d.validate(p.sublink), Ok(()));
        let mut parcel = AcceptParcel::inline(12, 1, &[], vec![HandleType::PORTAL], vec![d]);
        parcel.parcel_fragment = FragmentDescriptor::new(0, 1152, 64);
        assert_eq!(
            frame_of(&Message::new(seq, parcel.into()), timestamp(&bytes)),
            bytes
        );
    }

    let closed = hex(ROUTE_CLOSED_13_9_5);
    let (_, msg) = decode(&closed);
    assert_eq!(
        msg.body,
        Body::from(RouteClosed {
            sublink: SublinkId(13),
            sequence_length: SequenceNumber(0)
        })
    );

    let queued = hex(PARCEL_ON_DECAYING_SUBLINK_9_5);
    let (_, msg) = decode(&queued);
    let Body::AcceptParcel(p) = &msg.body else {
        panic!()
    };
    assert_eq!(
        (p.sublink, p.sequence_number),
        (SublinkId(14), SequenceNumber(0))
    );
    assert_eq!(p.parcel_data.len(), 16);
    assert_eq!(p.parcel_data[0], 1);

    let big = hex(PARCEL_512_CLASS_9_5);
    let (_, msg) = decode(&big);
    let Body::AcceptParcel(p) = &msg.body else {
        panic!()
    };
    assert_eq!(p.parcel_fragment, FragmentDescriptor::new(0, 98816, 512));
    assert_eq!(
        memory::primary::REGIONS[2].block_index(p.parcel_fragment.offset as usize),
        Some(1)
    );
}

#[test]
fn parcel_with_two_fds_9_6() {
    let bytes = hex(PARCEL_TWO_FDS_9_6);
    let (frame, msg) = decode(&bytes);
    assert_eq!(frame.header.num_handles, 2);
    let Body::AcceptParcel(p) = &msg.body else {
        panic!()
    };
    assert_eq!(p.handle_types, [HandleType::BOXED_DRIVER_OBJECT; 2]);
    assert_eq!(p.driver_objects, DriverObjectArray::new(0, 2));
    let wrapped = DriverObject::WrappedPlatformHandle(WrappedPlatformHandle {
        wrapper_type: WrapperType::TRANSMISSIBLE,
    });
    assert_eq!(
        msg.driver_objects,
        [
            AttachedObject {
                object: wrapped,
                fds: FdRange { first: 0, count: 1 }
            },
            AttachedObject {
                object: wrapped,
                fds: FdRange { first: 1, count: 1 }
            },
        ]
    );
    let mut parcel =
        AcceptParcel::inline(12, 1, &[], vec![HandleType::BOXED_DRIVER_OBJECT; 2], vec![]);
    parcel.parcel_fragment = FragmentDescriptor::new(0, 1152, 64);
    let mut built = Message::new(2, parcel.into());
    built.push_object(wrapped);
    built.push_object(wrapped);
    assert_eq!(frame_of(&built, timestamp(&bytes)), bytes);
}

#[test]
fn parcel_with_a_writable_shared_buffer_9_7() {
    let bytes = hex(PARCEL_WRITABLE_BUFFER_9_7);
    let (frame, msg) = decode(&bytes);
    assert_eq!(frame.header.num_handles, 2);
    let [attached] = &msg.driver_objects[..] else {
        panic!()
    };
    let DriverObject::SharedBuffer(b) = attached.object else {
        panic!()
    };
    assert_eq!((b.buffer_size, b.mode), (1 << 20, RegionMode::Writable));
    assert_eq!(attached.fds, FdRange { first: 0, count: 2 });
    assert!(
        msg.to_string()
            .ends_with("handles=[box] driver_objects=[SharedBuffer(writable, 1048576 B, 2 fds)]")
    );
    let mut parcel =
        AcceptParcel::inline(12, 1, &[], vec![HandleType::BOXED_DRIVER_OBJECT], vec![]);
    parcel.parcel_fragment = FragmentDescriptor::new(0, 1152, 64);
    let mut built = Message::new(3, parcel.into());
    built.push_object(attached.object);
    assert_eq!(frame_of(&built, timestamp(&bytes)), bytes);
}

#[test]
fn portal0_transport_box_9_8() {
    let bytes = hex(PORTAL0_TRANSPORT_BOX_9_8);
    let (_, msg) = decode(&bytes);
    let transport = DriverObject::Transport(Transport {
        destination_type: TransportEndpointType::NON_BROKER,
        ..Default::default()
    });
    assert_eq!(msg.object(DriverObjectIndex(0)), Some(&transport));
    let mut built = Message::new(
        0,
        AcceptParcel::inline(0, 0, &[], vec![HandleType::BOXED_DRIVER_OBJECT], vec![]).into(),
    );
    built.push_object(transport);
    assert_eq!(frame_of(&built, timestamp(&bytes)), bytes);
}

const TT: [u8; 8] = 0x0102_0304_0506_0708_i64.to_le_bytes();

#[test]
fn constructed_hello_inline_9_9_1() {
    let msg = Message::new(
        5,
        AcceptParcel::inline(1, 0, b"hello", vec![], vec![]).into(),
    );
    let expected = fill(
        CONSTRUCTED_HELLO_9_9_1,
        &[("tt", &TT), ("nn", &5u64.to_le_bytes())],
    );
    assert_eq!(frame_of(&msg, i64::from_le_bytes(TT)), expected);
    decode(&expected);
}

#[test]
fn constructed_hello_with_a_new_portal_9_9_2() {
    let d = RouterDescriptor {
        new_sublink: SublinkId(13),
        new_link_state_fragment: FragmentDescriptor::new(0, 1152, 64),
        new_decaying_sublink: SublinkId(14),
        proxy_already_bypassed: true,
        ..Default::default()
    };
    let msg = Message::new(
        7,
        AcceptParcel::inline(1, 0, b"hello", vec![HandleType::PORTAL], vec![d]).into(),
    );
    let expected = fill(
        CONSTRUCTED_HELLO_PORTAL_9_9_2,
        &[("tt", &TT), ("nn", &7u64.to_le_bytes())],
    );
    assert_eq!(frame_of(&msg, i64::from_le_bytes(TT)), expected);
    decode(&expected);
}

#[test]
fn constructed_hello_with_an_fd_9_9_3() {
    let mut msg = Message::new(
        1,
        AcceptParcel::inline(
            1,
            0,
            b"hello",
            vec![HandleType::BOXED_DRIVER_OBJECT],
            vec![],
        )
        .into(),
    );
    msg.push_object(DriverObject::WrappedPlatformHandle(
        WrappedPlatformHandle::default(),
    ));
    let expected = fill(
        CONSTRUCTED_HELLO_FD_9_9_3,
        &[("tt", &TT), ("nn", &1u64.to_le_bytes())],
    );
    assert_eq!(frame_of(&msg, i64::from_le_bytes(TT)), expected);
    decode(&expected);
}

#[test]
fn constructed_subparcel_9_9_4() {
    // The spec shows message bytes 0x30..0x60 of the subparcel and
    // 0x30..0x80 of the main parcel (frame offsets).
    let shown = hex(CONSTRUCTED_SUBPARCEL_PARAMS_9_9_4);
    let mut sub = AcceptParcel::inline(1, 0, &[], vec![], vec![]);
    sub.subparcel_index = 1;
    sub.num_subparcels = 2;
    sub.parcel_fragment = FragmentDescriptor::new(0, 1088, 64);
    let sub_frame = frame_of(&Message::new(0, sub.into()), 0);
    assert_eq!(&sub_frame[0x30..0x60], &shown[..48]);
    decode(&sub_frame);

    let mut main = AcceptParcel::inline(1, 0, &[], vec![HandleType::BOXED_SUBPARCEL], vec![]);
    main.num_subparcels = 2;
    let main_frame = frame_of(&Message::new(1, main.into()), 0);
    assert_eq!(&main_frame[0x30..0x80], &shown[48..]);
    decode(&main_frame);
}

#[test]
fn constructed_introduction_and_bypass_link_9_9_5() {
    let nn_name = NodeName {
        high: 0x1111_2222_3333_4444,
        low: 0x5555_6666_7777_8888,
    };
    let mut name_bytes = nn_name.high.to_le_bytes().to_vec();
    name_bytes.extend(nn_name.low.to_le_bytes());
    let guid = Guid {
        low: 0xaaaa_bbbb_cccc_dddd,
        high: 0x1234_5678_9abc_def0,
    };
    let mut guid_bytes = guid.low.to_le_bytes().to_vec();
    guid_bytes.extend(guid.high.to_le_bytes());

    let request = Message::new(4, RequestIntroduction { name: nn_name }.into());
    let request_frame = frame_of(&request, 0);
    assert_eq!(request_frame.len(), 64);
    assert_eq!(
        (request_frame[18], &request_frame[48..64]),
        (0x0a, &name_bytes[..])
    );

    // Chromium's CreateTransports gives the transport for node A the
    // `is_trusted_by_peer` flag of the broker's own transport to A, and
    // Invitation::Send always sets that flag: a Chrome host introducing the
    // proxy sends {1, 0, 0, 1} (as in the real referral transport of 9.2),
    // not the {1, 0, 0, 0} the spec shows at frame byte 0x96.
    let mut spec = fill(
        CONSTRUCTED_ACCEPT_INTRODUCTION_9_9_5,
        &[
            ("tt", &TT),
            ("nn", &9u64.to_le_bytes()),
            ("NN", &name_bytes),
            ("GG", &guid_bytes),
        ],
    );
    assert_eq!(spec[0x96], 0, "the spec's trust flag");
    spec[0x96] = 1;
    let mut intro = Message::new(9, Body::from(AcceptIntroduction::default()));
    let transport = intro.push_object(DriverObject::Transport(Transport {
        destination_type: TransportEndpointType::NON_BROKER,
        is_trusted_by_peer: true,
        ..Default::default()
    }));
    let memory = intro.push_object(primary_buffer(guid.low, guid.high));
    intro.body = AcceptIntroduction {
        name: nn_name,
        link_side: LinkSide::A,
        remote_node_type: NodeType::NORMAL,
        padding: 0,
        remote_protocol_version: 0,
        transport,
        memory,
        remote_features: Some(vec![0]),
    }
    .into();
    assert_eq!(frame_of(&intro, i64::from_le_bytes(TT)), spec);
    decode(&spec);

    let hh = NodeName {
        high: 0x0101_0101_0202_0202,
        low: 0x0303_0303_0404_0404,
    };
    let mut hh_bytes = hh.high.to_le_bytes().to_vec();
    hh_bytes.extend(hh.low.to_le_bytes());
    let expected = fill(
        CONSTRUCTED_ACCEPT_BYPASS_LINK_9_9_5,
        &[("tt", &TT), ("HH", &hh_bytes)],
    );
    let bypass = Message::new(
        0,
        AcceptBypassLink {
            current_peer_node: hh,
            current_peer_sublink: SublinkId(12),
            inbound_sequence_length_from_bypassed_link: SequenceNumber(0),
            new_sublink: SublinkId(12),
            new_link_state_fragment: FragmentDescriptor::new(0, 1088, 64),
        }
        .into(),
    );
    assert_eq!(frame_of(&bypass, i64::from_le_bytes(TT)), expected);
    decode(&expected);
}
