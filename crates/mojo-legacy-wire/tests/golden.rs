//! Golden tests: every worked example of spec section 7 (`shared/spec/legacy-core.md`)
//! decodes to the annotated values and encodes back to the same bytes, and the
//! same values built from scratch encode to those bytes (smoltcp style).
//!
//! All examples except E, F1 and F2 were copied by the spec from real
//! recordings (the tests in `vectors.rs` confirm each is present byte-for-byte
//! in `shared/vectors`). E, F1 and F2 are constructed; their layouts agree with
//! the source and (F1/F2) with the BUFFER_REQUEST/BUFFER_RESPONSE frames that
//! the `*_c2h` recordings do contain.

use mojo_legacy_wire::broker::{BrokerFrame, BrokerMessage};
use mojo_legacy_wire::channel::{ChannelHeader, ControlMessage, Frame, MessageType};
use mojo_legacy_wire::event::{
    AttachedPort, Event, EventData, MergePort, ObserveProxy, PortDescriptor, SenderInfo,
    UserMessageEvent,
};
use mojo_legacy_wire::node::{
    AcceptBrokerClient, AcceptInvitation, AcceptInvitee, BrokerClientCapabilities,
    NodeCapabilities, NodeChannelContent, NodeFrame, NodeMessage, RequestPortMerge,
};
use mojo_legacy_wire::user_message::{
    Dispatcher, MessagePipeState, SharedBufferState, UserMessage, encode_user_message_frame,
};
use mojo_legacy_wire::verify::{ChannelRole, Content, check_frame};
use mojo_legacy_wire::{EventHeaderForm, NodeName, PortName, Profile};
use mojo_transcript::testing::unhex as hex;
use mojo_wire_kit::{Guid, RegionMode};

/// A name of whichever type the symbol stands for at its use.
fn name<N: From<[u8; 16]>>(s: &str) -> N {
    let b: [u8; 16] = hex(s).try_into().unwrap();
    N::from(b)
}

// Symbols of spec 7 (libchrome-profile run).
fn bn<N: From<[u8; 16]>>() -> N {
    name("399bb754f612af838fe0bab4080a0f94")
}
fn tk<N: From<[u8; 16]>>() -> N {
    name("d56d735c1fabfa0354629e918d8c4f77")
}
fn cn<N: From<[u8; 16]>>() -> N {
    name("6aaa517cbaccdca042c0691f1df64710")
}
fn p1<N: From<[u8; 16]>>() -> N {
    name("8fd0fe76a4ca014896650632908481d4")
}
fn x<N: From<[u8; 16]>>() -> N {
    name("cdfdc5de04718ce93c8d781b05eaa120")
}
fn a<N: From<[u8; 16]>>() -> N {
    name("12a3a5154bd0f0d3019a281f52cc0152")
}
fn b<N: From<[u8; 16]>>() -> N {
    name("78ce0c4f7041597ce904140cdd07689f")
}
fn p0<N: From<[u8; 16]>>() -> N {
    name("bdcc87db1bc286e2e84a05652f94c7e6")
}
fn e_prime<N: From<[u8; 16]>>() -> N {
    name("ff75210ca6a61e938a332080fe19ef81")
}
fn f<N: From<[u8; 16]>>() -> N {
    name("5abadfb9b5eab35510a1cbff36fb9043")
}
fn e<N: From<[u8; 16]>>() -> N {
    name("659d12fb530d290f58a18d001333efdd")
}
// Desktop-profile run.
mod desk {
    use super::*;
    pub(crate) fn bn<N: From<[u8; 16]>>() -> N {
        name("59291e8439cacc0776878df5d076a1ba")
    }
    pub(crate) fn cn<N: From<[u8; 16]>>() -> N {
        name("f1ab4d6302cb240b4d7dbe63b6610157")
    }
    pub(crate) fn p1<N: From<[u8; 16]>>() -> N {
        name("bd0e3faee05420a4e19c96e631f48169")
    }
    pub(crate) fn x<N: From<[u8; 16]>>() -> N {
        name("ee8132884b93be2e77cf38106dfd2182")
    }
    pub(crate) fn a<N: From<[u8; 16]>>() -> N {
        name("c777667cea2a423c5d1a774e0cdc5b53")
    }
    pub(crate) fn b<N: From<[u8; 16]>>() -> N {
        name("38a71e1510b070fa1b82c9c3d4430c69")
    }
}

/// Parses a node-channel frame, checks it re-encodes, and returns its message.
fn node_message(bytes: &[u8]) -> (ChannelHeader<'_>, NodeMessage<'_>) {
    let (frame, used) = NodeFrame::decode(bytes).unwrap();
    assert_eq!(used, bytes.len());
    let mut out = Vec::new();
    frame.encode(&mut out).unwrap();
    assert_eq!(out, bytes);
    match frame.content {
        NodeChannelContent::Message(m) => (frame.header, m),
        other => panic!("{other:?}"),
    }
}

/// Parses an EVENT_MESSAGE frame and returns the event.
fn event(bytes: &[u8], form: EventHeaderForm) -> Event<'_> {
    let (_, m) = node_message(bytes);
    let NodeMessage::EventMessage(body) = m else {
        panic!("{m:?}")
    };
    let ev = Event::decode(body, form).unwrap();
    let mut out = Vec::new();
    ev.encode(&mut out).unwrap();
    assert_eq!(out, body);
    let role = ChannelRole::Node;
    check_frame(bytes, role, form).unwrap();
    ev
}

/// Encodes a fresh event frame in `profile` and compares with `bytes`.
fn assert_fresh_event(ev: &Event<'_>, profile: Profile, num_handles: u16, bytes: &[u8]) {
    let mut out = Vec::new();
    ev.encode_frame(profile, num_handles, &mut out).unwrap();
    assert_eq!(out, bytes);
}

fn descriptor(peer: (NodeName, PortName), referring: (NodeName, PortName)) -> PortDescriptor {
    PortDescriptor {
        peer_node_name: peer.0,
        peer_port_name: peer.1,
        referring_node_name: referring.0,
        referring_port_name: referring.1,
        next_sequence_num_to_send: 1,
        next_sequence_num_to_receive: 1,
        last_sequence_num_to_receive: 0,
        peer_closed: false,
    }
}
/// A1: INIT, broker -> client on the bootstrap socket; SCM_RIGHTS carries 1 fd (the client end of
const A1: &str = "10000000010000000000000000000000";
/// A2: ACCEPT_INVITEE, broker -> client, first frame on the node channel  (56 bytes total)
const A2: &str = "38000000000000000000000000000000399bb754f612af838fe0bab4080a0f94d56d735c1fabfa0354629e918d8c4f770000000000000000";
/// A3: ACCEPT_INVITATION, client -> broker, first frame the client sends  (56 bytes total)
const A3: &str = "38000000000000000100000000000000d56d735c1fabfa0354629e918d8c4f776aaa517cbaccdca042c0691f1df647100000000000000000";
/// A4: ACCEPT_BROKER_CLIENT, broker -> client, no fd  (48 bytes total)
const A4: &str = "30000000000000000400000000000000399bb754f612af838fe0bab4080a0f9400000000000000000000000000000000";
/// A5: REQUEST_PORT_MERGE, client -> broker, attachment name "pipe!"  (37 bytes total)
const A5: &str = "250000000000000006000000000000008fd0fe76a4ca014896650632908481d47069706521";
/// A5b: REQUEST_PORT_MERGE for numeric attachment name 0 (8 raw LE bytes of uint64 0), from a thre
const A5B: &str =
    "280000000000000006000000000000004da1ba679ea5b118943cbf8dcd6da7aa0000000000000000";
/// A6: EVENT_MESSAGE carrying MergePort, broker -> client (C++ broker: reserved port B becomes a
const A6: &str = "9800000000000000050000000000000005000000000000008fd0fe76a4ca014896650632908481d4cdfdc5de04718ce93c8d781b05eaa120399bb754f612af838fe0bab4080a0f9412a3a5154bd0f0d3019a281f52cc0152399bb754f612af838fe0bab4080a0f9478ce0c4f7041597ce904140cdd07689f0100000000000000010000000000000000000000000000000000000000000000";
/// A7: PortAccepted, client -> broker (target: the referring port B of A6)  (40 bytes total)
const A7: &str = "28000000000000000500000000000000010000000000000078ce0c4f7041597ce904140cdd07689f";
/// A8: ObserveProxy, client -> broker: P1 asks to be bypassed (4.8.1 step 5)  (104 bytes total)
const A8: &str = "68000000000000000500000000000000020000000000000012a3a5154bd0f0d3019a281f52cc01526aaa517cbaccdca042c0691f1df647108fd0fe76a4ca014896650632908481d4399bb754f612af838fe0bab4080a0f9412a3a5154bd0f0d3019a281f52cc0152";
/// A9: ObserveProxyAck "retry", broker -> client: stashed by proxy B, sent when B is removed (4.8
const A9: &str = "300000000000000005000000000000000300000000000000cdfdc5de04718ce93c8d781b05eaa120ffffffffffffffff";
/// A10: final ObserveProxyAck, broker -> client: A had sent 1 message when it acknowledged X (4.8.
const A10: &str = "300000000000000005000000000000000300000000000000cdfdc5de04718ce93c8d781b05eaa1200100000000000000";
/// B1: UserMessage Hello (op 15, index 0), broker port A -> client; sequence number 1, addressed
const B1: &str = "480000000000000005000000000000000000000000000000cdfdc5de04718ce93c8d781b05eaa1200100000000000000000000000000000000000000080000000f00000000000000";
/// B2: UserMessage Echo with a 5-byte payload, A -> P0 (odd total length, no padding)  (69 bytes
const B2: &str = "450000000000000005000000000000000000000000000000bdcc87db1bc286e2e84a05652f94c7e6030000000000000000000000000000000000000008000000010000002d";
/// C: UserMessage SubPipe (op 5) + one message pipe end (E, peer F), A -> P0, 26th message on A
const C: &str = "d40000000000000005000000000000000000000000000000bdcc87db1bc286e2e84a05652f94c7e61a000000000000000100000000000000399bb754f612af838fe0bab4080a0f945abadfb9b5eab35510a1cbff36fb9043399bb754f612af838fe0bab4080a0f94659d12fb530d290f58a18d001333efdd0100000000000000010000000000000000000000000000000000000000000000ff75210ca6a61e938a332080fe19ef810100000028000000010000001000000001000000000000000000000000000000010000000000000005000000";
/// C1: PortAccepted, client -> broker (target: referring port E)  (40 bytes total)
const C1: &str = "280000000000000005000000000000000100000000000000659d12fb530d290f58a18d001333efdd";
/// C2: ObserveProxy, broker -> client (E is now a proxy towards E')  (104 bytes total)
const C2: &str = "680000000000000005000000000000000200000000000000ff75210ca6a61e938a332080fe19ef81399bb754f612af838fe0bab4080a0f94659d12fb530d290f58a18d001333efdd6aaa517cbaccdca042c0691f1df64710ff75210ca6a61e938a332080fe19ef81";
/// C3: ObserveProxy as forwarded back by the client (E'.peer is F@BN, not E)  (104 bytes total)
const C3: &str = "6800000000000000050000000000000002000000000000005abadfb9b5eab35510a1cbff36fb9043399bb754f612af838fe0bab4080a0f94659d12fb530d290f58a18d001333efdd6aaa517cbaccdca042c0691f1df64710ff75210ca6a61e938a332080fe19ef81";
/// D: ObserveClosure, broker -> client (A closed after sending 30 messages)  (48 bytes total)
const D: &str = "300000000000000005000000000000000400000000000000bdcc87db1bc286e2e84a05652f94c7e61e00000000000000";
/// D2: UserMessage Shmem (op 7) + one writable SHARED_BUFFER, A -> P0; SCM_RIGHTS carries 2 fds,
const D2: &str = "7c0000000200000005000000000000000000000000000000bdcc87db1bc286e2e84a05652f94c7e61b000000000000000000000000000000010000003800000004000000200000000000000002000000000010000000000001000000f7e381d77ae6b8d6295f8f8b6ecacff700000000070000000000100000000000";
/// D3: UserMessage PlatHandle (op 9) + two PLATFORM_HANDLEs, A -> P0; SCM_RIGHTS carries 2 fds (a
const D3: &str = "6c0000000200000005000000000000000000000000000000bdcc87db1bc286e2e84a05652f94c7e61c0000000000000000000000000000000200000028000000ffffffff000000000000000001000000ffffffff000000000000000001000000090000000000010000000000";
/// E: UPGRADE_REJECT (full 16-byte Header form; no payload, no fds)  (16 bytes total)
const E: &str = "10000000100004000000000000000000";
/// F1: BUFFER_REQUEST, client -> broker on the bootstrap socket, 4096 bytes  (20 bytes total)
const F1: &str = "1400000000000000010000000000000000100000";
/// F2: BUFFER_RESPONSE, broker -> client; SCM_RIGHTS carries [rw_fd, ro_fd]  (32 bytes total)
const F2: &str = "20000000020000000200000000000000efcdab89674523011032547698badcfe";
/// G1: INIT in the desktop profile (16-byte Header)  (24 bytes total)
const G1: &str = "180000001000010001000000000000000000000000000000";
/// G2: PortAccepted in the desktop profile (extended event header)  (72 bytes total)
const G2: &str = "480000001000010000000000000000000500000000000000010000000000000038a71e1510b070fa1b82c9c3d4430c6900000000000000000000000000000000ffffffffffffffff";
/// G3: UpdatePreviousPeer, client -> broker, right after the merge: X tells A that P1 now sends t
const G3: &str = "6800000010000100000000000000000005000000000000000800000000000000c777667cea2a423c5d1a774e0cdc5b53ee8132884b93be2e77cf38106dfd21820100000000000000f1ab4d6302cb240b4d7dbe63b6610157bd0e3faee05420a4e19c96e631f48169";
/// G4: UserMessage Hello (sequence number 1 from A) as forwarded by proxy B: from_port and counte
const G4: &str = "6800000010000100000000000000000005000000000000000000000000000000ee8132884b93be2e77cf38106dfd218238a71e1510b070fa1b82c9c3d4430c6901000000000000000100000000000000000000000000000000000000080000000f00000000000000";
/// G5: UpdatePreviousPeer, broker -> client, when proxy B is removed (counter 5, sent first)  (10
const G5: &str = "6800000010000100000000000000000005000000000000000800000000000000ee8132884b93be2e77cf38106dfd218238a71e1510b070fa1b82c9c3d4430c69050000000000000059291e8439cacc0776878df5d076a1bac777667cea2a423c5d1a774e0cdc5b53";
/// G6: ObserveProxyAck "retry" stashed by B (counter 4, sent after G5)  (80 bytes total)
const G6: &str = "5000000010000100000000000000000005000000000000000300000000000000ee8132884b93be2e77cf38106dfd218238a71e1510b070fa1b82c9c3d4430c690400000000000000ffffffffffffffff";

#[test]
fn a1_init() {
    let bytes = hex(A1);
    let (frame, used) = BrokerFrame::decode(&bytes).unwrap();
    assert_eq!(used, 16);
    assert_eq!(frame.header, ChannelHeader::Legacy { num_handles: 1 });
    assert_eq!(frame.message, BrokerMessage::Init { trailing: &[] });
    let mut out = Vec::new();
    frame.encode(&mut out).unwrap();
    assert_eq!(out, bytes);
    out.clear();
    BrokerMessage::Init { trailing: &[] }
        .encode_frame(Profile::Libchrome, &mut out)
        .unwrap();
    assert_eq!(out, bytes);
    check_frame(&bytes, ChannelRole::Broker, EventHeaderForm::Compact).unwrap();
}

#[test]
fn a2_accept_invitee() {
    let bytes = hex(A2);
    let (h, m) = node_message(&bytes);
    assert_eq!(h, ChannelHeader::Legacy { num_handles: 0 });
    let want = NodeMessage::AcceptInvitee(AcceptInvitee {
        inviter_name: bn(),
        token: tk(),
        capabilities: Some(NodeCapabilities::NONE),
        trailing: &[],
    });
    assert_eq!(m, want);
    let mut out = Vec::new();
    want.encode_frame(Profile::Libchrome, 0, &mut out).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn a3_accept_invitation() {
    let bytes = hex(A3);
    let (_, m) = node_message(&bytes);
    let want = NodeMessage::AcceptInvitation(AcceptInvitation {
        token: tk(),
        invitee_name: cn(),
        capabilities: Some(NodeCapabilities::NONE),
        trailing: &[],
    });
    assert_eq!(m, want);
    let mut out = Vec::new();
    want.encode_frame(Profile::Libchrome, 0, &mut out).unwrap();
    assert_eq!(out, bytes);
    // The 48-byte V0 form older clients send parses as V0 and stays V0.
    let mut v0 = bytes[..48].to_vec();
    v0[0] = 48;
    let (_, m) = node_message(&v0);
    let NodeMessage::AcceptInvitation(ai) = m else {
        panic!()
    };
    assert_eq!(ai.capabilities, None);
}

#[test]
fn a4_accept_broker_client() {
    let bytes = hex(A4);
    let (_, m) = node_message(&bytes);
    let want = NodeMessage::AcceptBrokerClient(AcceptBrokerClient {
        broker_name: bn(),
        capabilities: Some(BrokerClientCapabilities::default()),
        trailing: &[],
    });
    assert_eq!(m, want);
    let mut out = Vec::new();
    want.encode_frame(Profile::Libchrome, 0, &mut out).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn a5_request_port_merge_odd_length() {
    let bytes = hex(A5);
    assert_eq!(bytes.len(), 37);
    let (_, m) = node_message(&bytes);
    let want = NodeMessage::RequestPortMerge(RequestPortMerge {
        connector_port_name: p1(),
        token: b"pipe!",
    });
    assert_eq!(m, want);
    let mut out = Vec::new();
    want.encode_frame(Profile::Libchrome, 0, &mut out).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn a5b_request_port_merge_numeric_name() {
    let bytes = hex(A5B);
    let (_, m) = node_message(&bytes);
    let NodeMessage::RequestPortMerge(r) = m else {
        panic!("{m:?}")
    };
    assert_eq!(r.token, 0u64.to_le_bytes());
    assert_eq!(
        r.connector_port_name,
        name("4da1ba679ea5b118943cbf8dcd6da7aa")
    );
}

#[test]
fn a6_merge_port() {
    let bytes = hex(A6);
    let ev = event(&bytes, EventHeaderForm::Compact);
    let want = Event::new(
        p1(),
        EventData::MergePort(MergePort {
            new_port_name: x(),
            new_port_descriptor: descriptor((bn(), a()), (bn(), b())),
        }),
    );
    assert_eq!(ev, want);
    assert_fresh_event(&want, Profile::Libchrome, 0, &bytes);
}

#[test]
fn a7_port_accepted() {
    let bytes = hex(A7);
    let ev = event(&bytes, EventHeaderForm::Compact);
    let want = Event::new(b(), EventData::PortAccepted);
    assert_eq!(ev, want);
    assert_fresh_event(&want, Profile::Libchrome, 0, &bytes);
    // The sanity check of spec 0.3: a compact PortAccepted body is 32 bytes.
    assert_eq!(bytes.len() - 8, 32);
}

#[test]
fn a8_observe_proxy() {
    let bytes = hex(A8);
    let ev = event(&bytes, EventHeaderForm::Compact);
    let want = Event::new(
        a(),
        EventData::ObserveProxy(ObserveProxy {
            proxy_node_name: cn(),
            proxy_port_name: p1(),
            proxy_target_node_name: bn(),
            proxy_target_port_name: a(),
        }),
    );
    assert_eq!(ev, want);
    assert_fresh_event(&want, Profile::Libchrome, 0, &bytes);
}

#[test]
fn a9_a10_observe_proxy_ack() {
    for (h, last) in [(A9, u64::MAX), (A10, 1)] {
        let bytes = hex(h);
        let ev = event(&bytes, EventHeaderForm::Compact);
        let want = Event::new(
            x(),
            EventData::ObserveProxyAck {
                last_sequence_num: last,
            },
        );
        assert_eq!(ev, want);
        assert_fresh_event(&want, Profile::Libchrome, 0, &bytes);
    }
}

fn user_message_event<'a>(ev: &'a Event<'a>) -> (&'a UserMessageEvent<'a>, UserMessage<'a>) {
    let EventData::UserMessage(u) = &ev.data else {
        panic!("{ev:?}")
    };
    let m = UserMessage::decode(u.message).unwrap();
    let mut out = Vec::new();
    m.encode(&mut out).unwrap();
    assert_eq!(out, u.message);
    (u, m)
}

#[test]
fn b1_b2_plain_user_messages() {
    let cases: [(&str, PortName, u64, &[u8]); 2] = [
        (B1, x(), 1, &[15, 0, 0, 0, 0, 0, 0, 0]),
        (B2, p0(), 3, &[1, 0, 0, 0, 0x2d]),
    ];
    for (h, port, seq, payload) in cases {
        let bytes = hex(h);
        let ev = event(&bytes, EventHeaderForm::Compact);
        assert_eq!(ev.port_name, port);
        let (u, m) = user_message_event(&ev);
        assert_eq!(u.sequence_num, seq);
        assert!(u.ports.is_empty());
        assert_eq!(m, UserMessage::plain(payload));
        // Payload starts at offset 0x40.
        assert_eq!(&bytes[0x40..], payload);
        let mut out = Vec::new();
        encode_user_message_frame(&mut out, Profile::Libchrome, port, None, seq, &[], &m).unwrap();
        assert_eq!(out, bytes);
    }
    assert_eq!(hex(B2).len(), 69);
}

#[test]
fn c_user_message_with_message_pipe() {
    let bytes = hex(C);
    let ev = event(&bytes, EventHeaderForm::Compact);
    assert_eq!(ev.port_name, p0());
    let (u, m) = user_message_event(&ev);
    assert_eq!(u.sequence_num, 26);
    let port = AttachedPort {
        descriptor: descriptor((bn(), f()), (bn(), e())),
        name: e_prime(),
    };
    assert_eq!(u.ports, [port]);
    let want = UserMessage {
        dispatchers: vec![Dispatcher::MessagePipe(MessagePipeState {
            pipe_id: 0,
            endpoint: 1,
        })],
        payload: &[5, 0, 0, 0],
    };
    assert_eq!(m, want);
    assert_eq!(m.header_size(), 40);
    assert_eq!(ev.message_offset(), Some(0xa8 - 16));
    let mut out = Vec::new();
    encode_user_message_frame(&mut out, Profile::Libchrome, p0(), None, 26, &[port], &want)
        .unwrap();
    assert_eq!(out, bytes);
    let (h, _) = node_message(&bytes);
    assert_eq!(h.num_handles(), 0);
}

#[test]
fn c1_c2_c3_transfer_follow_up() {
    let bytes = hex(C1);
    assert_eq!(
        event(&bytes, EventHeaderForm::Compact),
        Event::new(e(), EventData::PortAccepted)
    );
    let observe = ObserveProxy {
        proxy_node_name: bn(),
        proxy_port_name: e(),
        proxy_target_node_name: cn(),
        proxy_target_port_name: e_prime(),
    };
    for (h, port) in [(C2, e_prime()), (C3, f())] {
        let bytes = hex(h);
        let want = Event::new(port, EventData::ObserveProxy(observe));
        assert_eq!(event(&bytes, EventHeaderForm::Compact), want);
        assert_fresh_event(&want, Profile::Libchrome, 0, &bytes);
    }
}

#[test]
fn d_observe_closure() {
    let bytes = hex(D);
    let want = Event::new(
        p0(),
        EventData::ObserveClosure {
            last_sequence_num: 30,
        },
    );
    assert_eq!(event(&bytes, EventHeaderForm::Compact), want);
    assert_fresh_event(&want, Profile::Libchrome, 0, &bytes);
}

#[test]
fn d2_shared_buffer() {
    let bytes = hex(D2);
    let ev = event(&bytes, EventHeaderForm::Compact);
    let (u, m) = user_message_event(&ev);
    assert_eq!(u.sequence_num, 27);
    let want = UserMessage {
        dispatchers: vec![Dispatcher::SharedBuffer(SharedBufferState {
            num_bytes: 1_048_576,
            access_mode: RegionMode::Writable,
            guid: Guid {
                high: u64::from_le_bytes(hex("f7e381d77ae6b8d6").try_into().unwrap()),
                low: u64::from_le_bytes(hex("295f8f8b6ecacff7").try_into().unwrap()),
            },
        })],
        payload: &hex("070000000000100000000000"),
    };
    assert_eq!(m, want);
    assert_eq!(m.header_size(), 56);
    assert_eq!(m.num_platform_handles(), 2);
    let (h, _) = node_message(&bytes);
    assert_eq!(h.num_handles(), 2);
    let mut out = Vec::new();
    encode_user_message_frame(&mut out, Profile::Libchrome, p0(), None, 27, &[], &want).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn d3_platform_handles() {
    let bytes = hex(D3);
    let ev = event(&bytes, EventHeaderForm::Compact);
    let (u, m) = user_message_event(&ev);
    assert_eq!(u.sequence_num, 28);
    let want = UserMessage {
        dispatchers: vec![Dispatcher::PlatformHandle, Dispatcher::PlatformHandle],
        payload: &hex("090000000000010000000000"),
    };
    assert_eq!(m, want);
    assert_eq!(m.header_size(), 40);
    let mut out = Vec::new();
    encode_user_message_frame(&mut out, Profile::Libchrome, p0(), None, 28, &[], &want).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn e_upgrade_reject_constructed() {
    let bytes = hex(E);
    let frame = Frame::decode_whole(&bytes).unwrap();
    assert_eq!(
        frame.header,
        ChannelHeader::Full {
            message_type: MessageType::UPGRADE_REJECT,
            num_handles: 0,
            extra_header: &[]
        }
    );
    let (nf, _) = NodeFrame::decode(&bytes).unwrap();
    let want = ControlMessage::UpgradeReject { payload: &[] };
    assert_eq!(nf.content, NodeChannelContent::Control(want));
    let mut out = Vec::new();
    want.encode_frame(0, &mut out).unwrap();
    assert_eq!(out, bytes);
    assert!(matches!(
        check_frame(&bytes, ChannelRole::Node, EventHeaderForm::Compact)
            .unwrap()
            .content,
        Content::Control(_)
    ));
}

#[test]
fn f1_f2_buffer_request_response_constructed() {
    let bytes = hex(F1);
    let (frame, _) = BrokerFrame::decode(&bytes).unwrap();
    let want = BrokerMessage::BufferRequest {
        size: 4096,
        trailing: &[],
    };
    assert_eq!(frame.message, want);
    let mut out = Vec::new();
    want.encode_frame(Profile::Libchrome, &mut out).unwrap();
    assert_eq!(out, bytes);

    let bytes = hex(F2);
    let (frame, _) = BrokerFrame::decode(&bytes).unwrap();
    let want = BrokerMessage::BufferResponse {
        guid: Guid {
            high: 0x0123_4567_89ab_cdef,
            low: 0xfedc_ba98_7654_3210,
        },
        trailing: &[],
    };
    assert_eq!(frame.message, want);
    assert_eq!(frame.header.num_handles(), 2);
    let mut out = Vec::new();
    want.encode_frame(Profile::Libchrome, &mut out).unwrap();
    assert_eq!(out, bytes);
    check_frame(&bytes, ChannelRole::Broker, EventHeaderForm::Compact).unwrap();
}

#[test]
fn g1_desktop_init() {
    let bytes = hex(G1);
    let (frame, _) = BrokerFrame::decode(&bytes).unwrap();
    assert_eq!(
        frame.header,
        ChannelHeader::Full {
            message_type: MessageType::NORMAL,
            num_handles: 1,
            extra_header: &[]
        }
    );
    let mut out = Vec::new();
    BrokerMessage::Init { trailing: &[] }
        .encode_frame(Profile::Desktop, &mut out)
        .unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn g2_desktop_port_accepted() {
    let bytes = hex(G2);
    let ev = event(&bytes, EventHeaderForm::Extended);
    let want = Event {
        port_name: desk::b(),
        sender: Some(SenderInfo {
            from_port: PortName::INVALID,
            control_sequence_num: u64::MAX,
        }),
        data: EventData::PortAccepted,
        trailing: &[],
    };
    assert_eq!(ev, want);
    assert_fresh_event(&want, Profile::Desktop, 0, &bytes);
    // 56 bytes of NodeChannel payload in extended mode (spec 0.3).
    assert_eq!(bytes.len() - 16, 56);
}

#[test]
fn g3_to_g6_sender_verification() {
    let sender = |from: PortName, n: u64| {
        Some(SenderInfo {
            from_port: from,
            control_sequence_num: n,
        })
    };
    let g3 = Event {
        port_name: desk::a(),
        sender: sender(desk::x(), 1),
        data: EventData::UpdatePreviousPeer {
            new_node_name: desk::cn(),
            new_port_name: desk::p1(),
        },
        trailing: &[],
    };
    let g5 = Event {
        port_name: desk::x(),
        sender: sender(desk::b(), 5),
        data: EventData::UpdatePreviousPeer {
            new_node_name: desk::bn(),
            new_port_name: desk::a(),
        },
        trailing: &[],
    };
    let g6 = Event {
        port_name: desk::x(),
        sender: sender(desk::b(), 4),
        data: EventData::ObserveProxyAck {
            last_sequence_num: u64::MAX,
        },
        trailing: &[],
    };
    for (h, want) in [(G3, g3), (G5, g5), (G6, g6)] {
        let bytes = hex(h);
        assert_eq!(event(&bytes, EventHeaderForm::Extended), want);
        assert_fresh_event(&want, Profile::Desktop, 0, &bytes);
    }
    let bytes = hex(G4);
    let ev = event(&bytes, EventHeaderForm::Extended);
    assert_eq!(ev.port_name, desk::x());
    assert_eq!(ev.sender, sender(desk::b(), 1));
    let (u, m) = user_message_event(&ev);
    assert_eq!(u.sequence_num, 1);
    assert_eq!(m, UserMessage::plain(&[15, 0, 0, 0, 0, 0, 0, 0]));
    let mut out = Vec::new();
    encode_user_message_frame(
        &mut out,
        Profile::Desktop,
        desk::x(),
        sender(desk::b(), 1),
        1,
        &[],
        &m,
    )
    .unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn conversion_rule_of_section_7() {
    // "To convert a libchrome example to full-Header framing, replace the
    // first 8 bytes by num_bytes+8, 16, 1, num_handles, 6 zero bytes; to the
    // extended header, insert from_port and control_sequence_num." A7 -> G2
    // shape: the frame decodes in both forms and re-encodes identically.
    let a7 = hex(A7);
    let frame = Frame::decode_whole(&a7).unwrap();
    let full = Frame {
        header: ChannelHeader::normal(mojo_legacy_wire::channel::HeaderForm::Full, 0),
        payload: frame.payload,
    };
    let mut out = Vec::new();
    full.encode(&mut out).unwrap();
    assert_eq!(out.len(), a7.len() + 8);
    assert_eq!(&out[..16], &hex("30000000100001000000000000000000")[..]);
    assert_eq!(&out[16..], &a7[8..]);
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn real_examples_are_in_the_recordings() {
    let dir = mojo_transcript::testing::vectors();
    let mut streams = Vec::new();
    for file in mojo_transcript::vector_files(&dir).unwrap() {
        let t = mojo_transcript::Transcript::from_path(&file.path).unwrap();
        streams.extend(t.streams().into_values().map(|s| s.bytes));
    }
    let real = [
        ("A1", A1),
        ("A2", A2),
        ("A3", A3),
        ("A4", A4),
        ("A5", A5),
        ("A5b", A5B),
        ("A6", A6),
        ("A7", A7),
        ("A8", A8),
        ("A9", A9),
        ("A10", A10),
        ("B1", B1),
        ("B2", B2),
        ("C", C),
        ("C1", C1),
        ("C2", C2),
        ("C3", C3),
        ("D", D),
        ("D2", D2),
        ("D3", D3),
        ("G1", G1),
        ("G2", G2),
        ("G3", G3),
        ("G4", G4),
        ("G5", G5),
        ("G6", G6),
    ];
    for (label, h) in real {
        let bytes = hex(h);
        assert!(
            streams
                .iter()
                .any(|s| s.windows(bytes.len()).any(|w| w == bytes)),
            "example {label} not found in any recording"
        );
    }
}
