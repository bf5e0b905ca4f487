//! Property tests: decode(encode(x)) == x for every message type (with both
//! the lenient `parse` and `parse_exact`); padding, reserved bytes, bools and
//! `header_size` slack are ignored by `parse` as Chromium ignores them and
//! reported by `parse_exact` as `NotCanonical` naming the field; arbitrary and
//! mutated bytes satisfy the `fuzzing` oracles (no panic, canonical
//! idempotence, `parse_exact` Ok iff the re-encoding equals the input); and
//! the deframer yields the same frames under every split of the stream.
//!
//! Strategies leak their byte buffers (`Vec::leak`) so that they can produce
//! borrowed `'static` values directly; this is test-only.

use mojo_legacy_wire::broker::{BrokerFrame, BrokerMessage, BrokerMessageType};
use mojo_legacy_wire::channel::HeaderForm;
use mojo_legacy_wire::channel::{ChannelHeader, ControlMessage, Frame, MessageType, UpgradeOffer};
use mojo_legacy_wire::event::{
    AttachedPort, Event, EventData, EventType, MergePort, ObserveProxy, PortDescriptor, SenderInfo,
    UserMessageEvent,
};
use mojo_legacy_wire::fuzzing::{self, deframe_pieces};
use mojo_legacy_wire::node::{
    AcceptBrokerClient, AcceptInvitation, AcceptInvitee, AcceptPeer, AddBrokerClient,
    BindBrokerHost, BrokerClientAdded, BrokerClientCapabilities, Introduction, NodeCapabilities,
    NodeChannelContent, NodeFrame, NodeMessage, NodeMessageType, RequestPortMerge,
};
use mojo_legacy_wire::user_message::{
    DataPipeCommand, DataPipeControlMessage, DataPipeOptions, DataPipeState, Dispatcher,
    DispatcherType, MessagePipeState, SharedBufferState, UserMessage,
};
use mojo_legacy_wire::{Deframer, Error};
use mojo_legacy_wire::{EventHeaderForm, Profile};
use mojo_transcript::testing::pieces_at;
use mojo_wire_kit::{Guid, RegionMode};
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = &'static [u8]> {
    prop::collection::vec(any::<u8>(), 0..=max).prop_map(|v| &*v.leak())
}

fn bytes_range(min: usize, max: usize) -> impl Strategy<Value = &'static [u8]> {
    prop::collection::vec(any::<u8>(), min..=max).prop_map(|v| &*v.leak())
}

/// A name of whichever type the strategy is used for.
fn name<N: From<[u8; 16]> + std::fmt::Debug>() -> impl Strategy<Value = N> {
    prop_oneof![
        Just([0u8; 16]).prop_map(N::from),
        (any::<u64>(), any::<u64>()).prop_map(|(a, b)| {
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&a.to_le_bytes());
            bytes[8..].copy_from_slice(&b.to_le_bytes());
            N::from(bytes)
        })
    ]
}

fn guid() -> impl Strategy<Value = Guid> {
    (any::<u64>(), any::<u64>()).prop_map(|(high, low)| Guid { high, low })
}

fn caps() -> impl Strategy<Value = NodeCapabilities> {
    any::<u64>().prop_map(NodeCapabilities::from_bits_retain)
}

fn header() -> impl Strategy<Value = ChannelHeader<'static>> {
    prop_oneof![
        (0u16..=253).prop_map(|num_handles| ChannelHeader::Legacy { num_handles }),
        (1u16.., 0u16..=253, bytes(24)).prop_map(|(t, num_handles, extra_header)| {
            ChannelHeader::Full {
                message_type: MessageType(t),
                num_handles,
                extra_header,
            }
        }),
    ]
}

fn normal_header() -> impl Strategy<Value = ChannelHeader<'static>> {
    header().prop_map(|h| match h {
        ChannelHeader::Full {
            num_handles,
            extra_header,
            ..
        } => ChannelHeader::Full {
            message_type: MessageType::NORMAL,
            num_handles,
            extra_header,
        },
        legacy => legacy,
    })
}

fn broker_message() -> impl Strategy<Value = BrokerMessage<'static>> {
    prop_oneof![
        bytes(8).prop_map(|trailing| BrokerMessage::Init { trailing }),
        (any::<u32>(), bytes(8))
            .prop_map(|(size, trailing)| BrokerMessage::BufferRequest { size, trailing }),
        (guid(), bytes(8))
            .prop_map(|(guid, trailing)| BrokerMessage::BufferResponse { guid, trailing }),
        (3u32.., bytes(16)).prop_map(|(t, body)| BrokerMessage::Unknown {
            message_type: BrokerMessageType(t),
            body
        }),
    ]
}

/// (capabilities, trailing) such that a V0 body stays V0: without the V1
/// field, fewer trailing bytes than the field's size.
fn versioned<T: std::fmt::Debug + Clone>(
    v1: impl Strategy<Value = T>,
    v1_len: usize,
) -> impl Strategy<Value = (Option<T>, &'static [u8])> {
    prop_oneof![
        (v1, bytes(12)).prop_map(|(c, t)| (Some(c), t)),
        bytes(v1_len - 1).prop_map(|t| (None, t)),
    ]
}

fn node_message() -> impl Strategy<Value = NodeMessage<'static>> {
    prop_oneof![
        (name(), name(), versioned(caps(), 8)).prop_map(|(inviter_name, token, (c, t))| {
            NodeMessage::AcceptInvitee(AcceptInvitee {
                inviter_name,
                token,
                capabilities: c,
                trailing: t,
            })
        }),
        (name(), name(), versioned(caps(), 8)).prop_map(|(token, invitee_name, (c, t))| {
            NodeMessage::AcceptInvitation(AcceptInvitation {
                token,
                invitee_name,
                capabilities: c,
                trailing: t,
            })
        }),
        (name(), any::<u32>(), bytes(8)).prop_map(|(client_name, process_handle, trailing)| {
            NodeMessage::AddBrokerClient(AddBrokerClient {
                client_name,
                process_handle,
                trailing,
            })
        }),
        (name(), bytes(8)).prop_map(|(client_name, trailing)| {
            NodeMessage::BrokerClientAdded(BrokerClientAdded {
                client_name,
                trailing,
            })
        }),
        (
            name(),
            versioned(
                (caps(), caps()).prop_map(|(a, b)| BrokerClientCapabilities {
                    capabilities: a,
                    broker_capabilities: b
                }),
                16
            )
        )
            .prop_map(|(broker_name, (c, t))| {
                NodeMessage::AcceptBrokerClient(AcceptBrokerClient {
                    broker_name,
                    capabilities: c,
                    trailing: t,
                })
            }),
        bytes_range(1, 64).prop_map(NodeMessage::EventMessage),
        (name(), bytes_range(1, 40)).prop_map(|(connector_port_name, token)| {
            NodeMessage::RequestPortMerge(RequestPortMerge {
                connector_port_name,
                token,
            })
        }),
        (any::<bool>(), name(), versioned(caps(), 8)).prop_map(|(intro, name, (c, t))| {
            let i = Introduction {
                name,
                capabilities: c,
                trailing: t,
            };
            if intro {
                NodeMessage::Introduce(i)
            } else {
                NodeMessage::RequestIntroduction(i)
            }
        }),
        bytes_range(1, 64).prop_map(NodeMessage::BroadcastEvent),
        (name(), name(), name(), bytes(8)).prop_map(|(token, peer_name, port_name, trailing)| {
            NodeMessage::AcceptPeer(AcceptPeer {
                token,
                peer_name,
                port_name,
                trailing,
            })
        }),
        bytes(8).prop_map(|trailing| NodeMessage::BindBrokerHost(BindBrokerHost { trailing })),
        (12u32.., bytes_range(1, 32)).prop_map(|(t, body)| NodeMessage::Unknown {
            message_type: NodeMessageType(t),
            body
        }),
    ]
}

fn descriptor() -> impl Strategy<Value = PortDescriptor> {
    (
        (name(), name(), name(), name()),
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>()),
    )
        .prop_map(|((a, b, c, d), (s, r, l, closed))| PortDescriptor {
            peer_node_name: a,
            peer_port_name: b,
            referring_node_name: c,
            referring_port_name: d,
            next_sequence_num_to_send: s,
            next_sequence_num_to_receive: r,
            last_sequence_num_to_receive: l,
            peer_closed: closed,
        })
}

fn event_data() -> impl Strategy<Value = EventData<'static>> {
    prop_oneof![
        (
            any::<u64>(),
            prop::collection::vec(
                (descriptor(), name())
                    .prop_map(|(descriptor, name)| AttachedPort { descriptor, name }),
                0..3
            ),
            bytes(48)
        )
            .prop_map(|(sequence_num, ports, message)| {
                EventData::UserMessage(UserMessageEvent {
                    sequence_num,
                    ports,
                    message,
                })
            }),
        Just(EventData::PortAccepted),
        (name(), name(), name(), name()).prop_map(|(a, b, c, d)| EventData::ObserveProxy(
            ObserveProxy {
                proxy_node_name: a,
                proxy_port_name: b,
                proxy_target_node_name: c,
                proxy_target_port_name: d,
            }
        )),
        any::<u64>().prop_map(|n| EventData::ObserveProxyAck {
            last_sequence_num: n
        }),
        any::<u64>().prop_map(|n| EventData::ObserveClosure {
            last_sequence_num: n
        }),
        (name(), descriptor()).prop_map(|(n, d)| EventData::MergePort(MergePort {
            new_port_name: n,
            new_port_descriptor: d
        })),
        any::<u64>().prop_map(|n| EventData::UserMessageReadAckRequest {
            sequence_num_to_acknowledge: n
        }),
        any::<u64>().prop_map(|n| EventData::UserMessageReadAck {
            sequence_num_acknowledged: n
        }),
        (name(), name()).prop_map(|(a, b)| EventData::UpdatePreviousPeer {
            new_node_name: a,
            new_port_name: b
        }),
        (9u32.., bytes(32)).prop_map(|(t, data)| EventData::Unknown {
            event_type: EventType(t),
            data
        }),
    ]
}

fn event() -> impl Strategy<Value = Event<'static>> {
    (
        name(),
        prop::option::of(
            (name(), any::<u64>()).prop_map(|(from_port, n)| SenderInfo {
                from_port,
                control_sequence_num: n,
            }),
        ),
        event_data(),
        bytes(16),
    )
        .prop_map(|(port_name, sender, data, trailing)| {
            let trailing = if data.is_open_ended() {
                &[][..]
            } else {
                trailing
            };
            Event {
                port_name,
                sender,
                data,
                trailing,
            }
        })
}

fn data_pipe() -> impl Strategy<Value = DataPipeState> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        (
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            guid(),
        ),
    )
        .prop_map(
            |((a, b, c, d), (pipe_id, offset, available, flags, g))| DataPipeState {
                options: DataPipeOptions {
                    struct_size: a,
                    flags: b,
                    element_num_bytes: c,
                    capacity_num_bytes: d,
                },
                pipe_id,
                offset,
                available,
                flags,
                buffer_guid: g,
            },
        )
}

fn dispatcher() -> impl Strategy<Value = Dispatcher<'static>> {
    prop_oneof![
        (any::<u64>(), any::<i8>()).prop_map(|(pipe_id, endpoint)| Dispatcher::MessagePipe(
            MessagePipeState { pipe_id, endpoint }
        )),
        data_pipe().prop_map(Dispatcher::DataPipeProducer),
        data_pipe().prop_map(Dispatcher::DataPipeConsumer),
        (
            any::<u64>(),
            prop_oneof![
                Just(RegionMode::ReadOnly),
                Just(RegionMode::Writable),
                Just(RegionMode::Unsafe)
            ],
            guid()
        )
            .prop_map(|(num_bytes, access_mode, guid)| Dispatcher::SharedBuffer(
                SharedBufferState {
                    num_bytes,
                    access_mode,
                    guid
                }
            )),
        Just(Dispatcher::PlatformHandle),
        (
            any::<i32>().prop_filter("known type", |t| !matches!(t, -1 | 1..=4)),
            0u32..4,
            0u32..4,
            bytes(24)
        )
            .prop_map(|(t, p, h, state)| Dispatcher::Unknown {
                dispatcher_type: DispatcherType(t),
                num_ports: p,
                num_platform_handles: h,
                state
            }),
    ]
}

fn user_message() -> impl Strategy<Value = UserMessage<'static>> {
    (prop::collection::vec(dispatcher(), 0..5), bytes(40)).prop_map(|(dispatchers, payload)| {
        UserMessage {
            dispatchers,
            payload,
        }
    })
}

fn control() -> impl Strategy<Value = ControlMessage<'static>> {
    prop_oneof![
        (any::<i32>(), any::<i32>(), bytes(8)).prop_map(|(version, num_pages, trailing)| {
            ControlMessage::UpgradeOffer(UpgradeOffer {
                version,
                num_pages,
                trailing,
            })
        }),
        bytes(7).prop_map(|payload| ControlMessage::ShortUpgradeOffer { payload }),
        bytes(8).prop_map(|payload| ControlMessage::UpgradeAccept { payload }),
        bytes(8).prop_map(|payload| ControlMessage::UpgradeReject { payload }),
        (5u16.., bytes(8)).prop_map(|(t, payload)| ControlMessage::Unknown {
            message_type: MessageType(t),
            payload
        }),
    ]
}

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![Just(Profile::Libchrome), Just(Profile::Desktop)]
}

/// A stream of valid frames (node messages and events) with their bytes.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            (node_message(), profile(), 0u16..4).prop_map(|(m, p, nh)| {
                let mut out = Vec::new();
                m.encode_frame(p, nh, &mut out).unwrap();
                out
            }),
            (event(), profile()).prop_map(|(e, p)| {
                let mut out = Vec::new();
                e.encode_frame(p, 0, &mut out).unwrap();
                out
            }),
            control().prop_map(|c| {
                let mut out = Vec::new();
                c.encode_frame(0, &mut out).unwrap();
                out
            }),
        ],
        0..8,
    )
    .prop_map(|frames| frames.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn frame_round_trips(h in header(), payload in bytes(64)) {
        let f = Frame { header: h, payload };
        let mut out = Vec::new();
        let n = f.encode(&mut out).unwrap();
        prop_assert_eq!(n, out.len());
        prop_assert_eq!(Frame::decode_exact(&out).unwrap(), (f, out.len()));
        prop_assert_eq!(Frame::decode_whole(&out).unwrap(), f);
    }

    #[test]
    fn broker_message_round_trips(h in normal_header(), m in broker_message()) {
        let f = BrokerFrame { header: h, message: m };
        let mut out = Vec::new();
        f.encode(&mut out).unwrap();
        let (g, used) = BrokerFrame::decode(&out).unwrap();
        prop_assert_eq!(used, out.len());
        prop_assert_eq!(g, f);
        prop_assert_eq!(BrokerFrame::decode_exact(&out).unwrap(), (f, out.len()));
        prop_assert_eq!(BrokerMessage::decode(g_payload(&out)).unwrap(), m);
        prop_assert_eq!(BrokerMessage::decode_exact(g_payload(&out)).unwrap(), m);
    }

    #[test]
    fn node_message_round_trips(h in normal_header(), m in node_message()) {
        let f = NodeFrame { header: h, content: NodeChannelContent::Message(m) };
        let mut out = Vec::new();
        f.encode(&mut out).unwrap();
        prop_assert_eq!(NodeFrame::decode(&out).unwrap(), (f, out.len()));
        prop_assert_eq!(NodeFrame::decode_exact(&out).unwrap(), (f, out.len()));
        let mut body = Vec::new();
        m.encode(&mut body).unwrap();
        prop_assert_eq!(NodeMessage::decode(&body).unwrap(), m);
        prop_assert_eq!(NodeMessage::decode_exact(&body).unwrap(), m);
    }

    #[test]
    fn control_message_round_trips(c in control(), nh in 0u16..4) {
        let mut out = Vec::new();
        c.encode_frame(nh, &mut out).unwrap();
        let (f, _) = NodeFrame::decode(&out).unwrap();
        prop_assert_eq!(f.content, NodeChannelContent::Control(c));
        prop_assert_eq!(f.header.form(), HeaderForm::Full);
    }

    #[test]
    fn event_round_trips(e in event()) {
        let mut out = Vec::new();
        e.encode(&mut out).unwrap();
        prop_assert_eq!(&Event::decode(&out, e.form()).unwrap(), &e);
        prop_assert_eq!(&Event::decode_exact(&out, e.form()).unwrap(), &e);
        // Through a fresh frame, too.
        let mut frame = Vec::new();
        let profile = match e.form() {
            EventHeaderForm::Compact => Profile::Libchrome,
            EventHeaderForm::Extended => Profile::Desktop,
        };
        e.encode_frame(profile, 0, &mut frame).unwrap();
        let (f, _) = NodeFrame::decode(&frame).unwrap();
        let NodeChannelContent::Message(NodeMessage::EventMessage(body)) = f.content else {
            panic!("not an event message")
        };
        prop_assert_eq!(Event::decode(body, e.form()).unwrap(), e);
    }

    #[test]
    fn user_message_round_trips(m in user_message()) {
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        prop_assert_eq!(out.len(), m.encoded_len());
        let back = UserMessage::decode(&out).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(&UserMessage::decode_exact(&out).unwrap(), &m);
        let ports = m.num_ports() as usize;
        let fds = m.num_platform_handles() as usize;
        prop_assert!(UserMessage::decode_checked(&out, ports, fds).is_ok());
        if fds > 0 {
            prop_assert!(UserMessage::decode_checked(&out, ports, fds - 1).is_err());
        }
    }

    #[test]
    fn check_dispatchers_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(m) = UserMessage::decode(&bytes) {
            let first_bad = m.dispatchers.iter().map(Dispatcher::check_state).find(Result::is_err);
            prop_assert_eq!(m.check_dispatchers().err(), first_bad.and_then(Result::err));
        }
    }

    #[test]
    fn check_dispatchers_never_panics_on_values(m in user_message()) {
        let r = m.check_dispatchers();
        prop_assert_eq!(r.is_ok(), m.dispatchers.iter().all(|d| d.check_state().is_ok()));
    }

    #[test]
    fn data_pipe_control_round_trips(c in any::<u32>(), n in any::<u32>()) {
        let m = DataPipeControlMessage { command: DataPipeCommand(c), num_bytes: n };
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        prop_assert_eq!(DataPipeControlMessage::decode(&out).unwrap(), m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        fuzzing::channel_frame(&data);
        fuzzing::deframer(&data);
        fuzzing::broker_message(&data);
        fuzzing::node_message(&data);
        fuzzing::ports_event(&data);
        fuzzing::user_message(&data);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        s in stream(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut data = s.clone();
        if !data.is_empty() {
            for (i, v) in flips {
                let i = i.index(data.len());
                data[i] ^= v;
            }
        }
        fuzzing::deframer(&data);
        fuzzing::node_message(&data);
        fuzzing::channel_frame(&data);
        for skip in [8, 16] {
            if data.len() > skip {
                fuzzing::ports_event(&data[skip - 1..]);
                fuzzing::user_message(&data[skip..]);
            }
        }
    }

    /// Chromium never reads padding or reserved bytes and reads bools as
    /// "non-zero": the lenient parse ignores them, `parse_exact` names them.
    #[test]
    fn ignored_bytes_are_lenient_but_not_exact(
        e in event(),
        h in normal_header(),
        n in node_message(),
        b in broker_message(),
        m in user_message(),
        pick in any::<prop::sample::Index>(),
        v in any::<u8>(),
    ) {
        // Event.
        let mut out = Vec::new();
        e.encode(&mut out).unwrap();
        let offs = ignored_offsets(&out, |o| e.field_at(o));
        prop_assert!(!offs.is_empty());
        let o = offs[pick.index(offs.len())];
        spoil(&mut out, o, v);
        prop_assert_eq!(&Event::decode(&out, e.form()).unwrap(), &e);
        let err = Event::decode_exact(&out, e.form()).unwrap_err();
        prop_assert_eq!(err, Error::NotCanonical { offset: o, field: e.field_at(o) });

        // Node frame (channel header padding and NodeChannel padding).
        let f = NodeFrame { header: h, content: NodeChannelContent::Message(n) };
        let mut out = Vec::new();
        f.encode(&mut out).unwrap();
        let offs = ignored_offsets(&out, |o| f.field_at(o));
        prop_assert!(!offs.is_empty());
        let o = offs[pick.index(offs.len())];
        spoil(&mut out, o, v);
        prop_assert_eq!(NodeFrame::decode(&out).unwrap(), (f, out.len()));
        let err = NodeFrame::decode_exact(&out).unwrap_err();
        prop_assert_eq!(err, Error::NotCanonical { offset: o, field: f.field_at(o) });

        // Broker message.
        let mut out = Vec::new();
        b.encode(&mut out).unwrap();
        let offs = ignored_offsets(&out, |o| b.field_at(o));
        let o = offs[pick.index(offs.len())];
        spoil(&mut out, o, v);
        prop_assert_eq!(BrokerMessage::decode(&out).unwrap(), b);
        prop_assert_eq!(
            BrokerMessage::decode_exact(&out).unwrap_err(),
            Error::NotCanonical { offset: o, field: b.field_at(o) }
        );

        // User message (dispatcher state padding), when it has any.
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        let offs = ignored_offsets(&out, |o| m.field_at(o));
        if !offs.is_empty() {
            let o = offs[pick.index(offs.len())];
            spoil(&mut out, o, v);
            prop_assert_eq!(&UserMessage::decode(&out).unwrap(), &m);
            prop_assert_eq!(
                UserMessage::decode_exact(&out).unwrap_err(),
                Error::NotCanonical { offset: o, field: m.field_at(o) }
            );
        }
    }

    /// Bytes between the last dispatcher state and `header_size` are skipped
    /// by Chromium; the canonical form has none.
    #[test]
    fn header_size_slack_is_lenient_but_not_exact(m in user_message(), slack in 1usize..24) {
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        let hs = m.header_size();
        let mut spoilt = out[..hs].to_vec();
        spoilt[4..8].copy_from_slice(&((hs + slack) as u32).to_le_bytes());
        spoilt.extend(std::iter::repeat_n(0xa5, slack));
        spoilt.extend_from_slice(&out[hs..]);
        if m.dispatchers.is_empty() && hs + slack > spoilt.len() {
            return Ok(());
        }
        prop_assert_eq!(&UserMessage::decode(&spoilt).unwrap(), &m);
        prop_assert_eq!(
            UserMessage::decode_exact(&spoilt).unwrap_err(),
            Error::NotCanonical { offset: 4, field: "message_header.header_size" }
        );
    }

    #[test]
    fn deframer_is_split_invariant(
        s in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let whole = deframe(&s, &[]);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(s.len() + 1)).collect();
        points.sort_unstable();
        prop_assert_eq!(deframe(&s, &points), whole.clone());
        let bytewise: Vec<usize> = (0..=s.len()).collect();
        prop_assert_eq!(deframe(&s, &bytewise), whole.clone());
        // The stream consists of valid frames only: all of it is consumed.
        prop_assert_eq!(whole.iter().map(|(_, b, _)| b.len()).sum::<usize>(), s.len());
    }
}

proptest! {
    /// Splitting frames in place from a caller-owned buffer
    /// (`Frame::decode_prefix`) yields exactly the Deframer's frames, and
    /// `Ok(None)` on every strict prefix of a frame.
    #[test]
    fn in_place_split_matches_the_deframer(s in stream(), cut in any::<prop::sample::Index>()) {
        let mut rest = &s[..];
        let mut at = 0u64;
        let mut frames = Vec::new();
        while let Some((frame, used)) = Frame::decode_prefix(rest).unwrap() {
            frames.push((at, rest[..used].to_vec(), frame.header.num_handles()));
            at += used as u64;
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
        prop_assert_eq!(frames, deframe(&s, &[]));
        if let Some((_, first, _)) = deframe(&s, &[]).first() {
            let short = cut.index(first.len());
            prop_assert_eq!(Frame::decode_prefix(&first[..short]), Ok(None));
        }
    }

    /// Garbage gives the same verdict in place as through the Deframer: the
    /// same frames, then the same error (or a wait for more bytes).
    #[test]
    fn in_place_split_agrees_with_the_deframer_on_any_bytes(
        s in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut d = Deframer::new();
        d.push(&s).unwrap();
        let mut rest = &s[..];
        loop {
            let expected = d.next_frame().map(|f| f.map(|f| f.bytes.to_vec()));
            let got = Frame::decode_prefix(rest).map(|f| f.map(|(_, used)| rest[..used].to_vec()));
            prop_assert_eq!(&got, &expected);
            match got {
                Ok(Some(bytes)) => rest = &rest[bytes.len()..],
                _ => break,
            }
        }
    }

    /// A refused push is sticky: the stream has lost bytes.
    #[test]
    fn buffer_limit_errors_are_sticky(limit in 8u32..64, extra in 1usize..64) {
        let mut d = Deframer::with_limit(limit);
        let first = vec![0u8; d.max_buffered()];
        d.push(&first).unwrap();
        let e = d.push(&vec![0u8; extra]).unwrap_err();
        prop_assert_eq!(d.push(&[]).unwrap_err(), e.clone());
        prop_assert_eq!(d.next_frame().unwrap_err(), e);
    }
}

fn g_payload(frame: &[u8]) -> &[u8] {
    Frame::decode_whole(frame).unwrap().payload
}

/// Offsets of `bytes` whose field (per `field_at`) is padding or reserved,
/// or a bool that is true: bytes whose exact value a lenient parse must
/// ignore.
fn ignored_offsets(bytes: &[u8], field_at: impl Fn(usize) -> &'static str) -> Vec<usize> {
    (0..bytes.len())
        .filter(|&o| {
            let f = field_at(o);
            f.ends_with("padding")
                || f.ends_with("reserved")
                || (f.ends_with("peer_closed") && bytes[o] == 1)
        })
        .collect()
}

/// Sets byte `o` of `bytes` to a non-canonical value `v` (non-zero; for a
/// bool that is currently 1, a value other than 1 that keeps it true).
fn spoil(bytes: &mut [u8], o: usize, v: u8) {
    let cur = bytes[o];
    bytes[o] = match (cur, v) {
        (1, 0 | 1) => 2,
        (1, v) => v,
        (_, 0) => 0x80,
        (_, v) => v,
    };
}

/// Deframes `s` cut at `points`; returns (offset, bytes, num_handles).
fn deframe(s: &[u8], points: &[usize]) -> Vec<(u64, Vec<u8>, u16)> {
    let deframed = deframe_pieces(Deframer::new(), pieces_at(s, points));
    deframed.end.unwrap();
    deframed
        .frames
        .into_iter()
        .map(|f| (f.offset, f.bytes, f.num_handles))
        .collect()
}
