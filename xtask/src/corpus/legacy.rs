//! The legacy seed corpora (`fuzz/corpus/legacy_*/`): every kind of frame
//! of the legacy vectors at each layer (`mojo_legacy_wire::fuzzing`'s input
//! conventions), plus constructed messages the recordings lack.

use mojo_legacy_wire::broker::BrokerMessage;
use mojo_legacy_wire::channel::{ControlMessage, UpgradeOffer};
use mojo_legacy_wire::event::{Event, EventData};
use mojo_legacy_wire::fuzzing::deframe_pieces;
use mojo_legacy_wire::node::{
    AcceptBrokerClient, AcceptInvitee, AddBrokerClient, BindBrokerHost, BrokerClientAdded,
    Introduction, NodeMessage,
};
use mojo_legacy_wire::user_message::{
    DataPipeOptions, DataPipeState, Dispatcher, DispatcherType, UserMessage,
};
use mojo_legacy_wire::verify::{ChannelRole, Content, check_frame};
use mojo_legacy_wire::{Deframer, EventHeaderForm, PortName, Profile};
use mojo_transcript::testing::vector_files_of;
use mojo_transcript::{LinkProtocol, Transcript, VectorProfile};
use mojo_wire_kit::Guid;

use super::Seeds;

/// Adds the legacy seeds to `seeds`.
pub(crate) fn add_seeds(seeds: &mut Seeds) {
    let mut c = Corpus { seeds };
    for file in vector_files_of(LinkProtocol::Legacy) {
        let profile = match file.profile {
            VectorProfile::Libchrome => "cros",
            VectorProfile::Desktop => "desktop",
        };
        let scenario = file
            .path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let t = Transcript::from_path(&file.path).unwrap();
        for (key, stream) in t.streams() {
            let role = if key.channel == 0 {
                ChannelRole::Broker
            } else {
                ChannelRole::Node
            };
            let deframed = deframe_pieces(Deframer::new(), [&stream.bytes[..]]);
            deframed.end.expect("a recorded stream deframes");
            let mut ends = Vec::new();
            for f in &deframed.frames {
                add_frame(&mut c, profile, role, &f.bytes);
                ends.push(f.offset as usize + f.bytes.len());
            }
            // Deframer seeds: the first few frames of streams, cut at a frame
            // boundary near 600 bytes, plus a partial tail.
            if key.channel == 1
                && (scenario.starts_with("connect_only") || scenario.starts_with("subpipe-"))
            {
                let cut = ends
                    .iter()
                    .copied()
                    .filter(|&e| e <= 600)
                    .max()
                    .unwrap_or(0);
                let name = format!("{profile}-{scenario}-{key}").replace(' ', "-");
                c.add("deframer", &name, stream.bytes[..cut].to_vec(), 1);
                let partial = (cut + 30).min(stream.bytes.len());
                c.add(
                    "deframer",
                    &format!("{name}-partial"),
                    stream.bytes[..partial].to_vec(),
                    1,
                );
            }
            if key.channel == 0 && scenario.starts_with("shmem_c2h") {
                let name = format!("{profile}-{scenario}-{key}").replace(' ', "-");
                c.add("deframer", &name, stream.bytes.clone(), 1);
            }
        }
    }
    constructed(&mut c);
    c.add("deframer", "bad-num_bytes", vec![4, 0, 0, 0, 0, 0, 0, 0], 1);
    c.add(
        "deframer",
        "bad-num_header_bytes",
        vec![16, 0, 0, 0, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        1,
    );
}

/// The legacy selection rule: at most `max_per_name` seeds per kind name,
/// each file named `<name>-<n>`, no two alike.
struct Corpus<'s> {
    seeds: &'s mut Seeds,
}

impl Corpus<'_> {
    fn add(&mut self, target: &str, name: &str, bytes: Vec<u8>, max_per_name: usize) {
        let files = self.seeds.target(&format!("legacy_{target}"));
        let count = files.keys().filter(|k| k.starts_with(name)).count();
        if count < max_per_name && !files.values().any(|v| *v == bytes) {
            files.insert(format!("{name}-{count}"), bytes);
        }
    }
}

fn kind_name(c: &Content<'_>) -> String {
    match c {
        Content::Broker(m) => format!("broker-{}", m.message_type()).to_lowercase(),
        Content::Control(m) => format!("control-{}", m.message_type()).to_lowercase(),
        Content::Node(m) => format!("node-{}", m.message_type()).to_lowercase(),
        Content::Event {
            event,
            user_message,
        } => match user_message {
            Some(m) if !m.dispatchers.is_empty() => {
                format!("event-user_message-{}", m.dispatchers[0].dispatcher_type()).to_lowercase()
            }
            _ => format!("event-{}", event.event_type()).to_lowercase(),
        },
        Content::Broadcast { .. } => "broadcast".into(),
    }
}

fn add_frame(c: &mut Corpus<'_>, profile: &str, role: ChannelRole, bytes: &[u8]) {
    let form = if profile == "desktop" {
        EventHeaderForm::Extended
    } else {
        EventHeaderForm::Compact
    };
    let checked = check_frame(bytes, role, form).unwrap();
    let kind = format!("{profile}-{}", kind_name(&checked.content));
    let small = bytes.len() <= 400;
    if small {
        c.add("channel_frame", &kind, bytes.to_vec(), 1);
    }
    match &checked.content {
        Content::Broker(_) => c.add("broker_message", &kind, bytes.to_vec(), 2),
        Content::Event {
            event,
            user_message,
        } => {
            if small {
                c.add("node_message", &kind, bytes.to_vec(), 1);
            }
            let mut body = vec![u8::from(form == EventHeaderForm::Extended)];
            event.encode(&mut body).unwrap();
            if body.len() <= 400 {
                c.add("ports_event", &kind, body, 2);
            }
            if let (EventData::UserMessage(u), Some(_)) = (&event.data, user_message) {
                if u.message.len() <= 300 {
                    c.add("user_message", &kind, u.message.to_vec(), 2);
                }
            }
        }
        _ => c.add("node_message", &kind, bytes.to_vec(), 2),
    }
}

fn frame(c: &mut Corpus<'_>, target: &str, name: &str, f: &dyn Fn(&mut Vec<u8>)) {
    let mut out = Vec::new();
    f(&mut out);
    c.add(target, name, out, 1);
}

fn constructed(c: &mut Corpus<'_>) {
    /// A name (of whichever type the field has) derived from `v`.
    fn n<N: From<[u8; 16]>>(v: u64) -> N {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&v.to_le_bytes());
        bytes[8..].copy_from_slice(&v.wrapping_mul(0x9e37_79b9).to_le_bytes());
        N::from(bytes)
    }
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let p = if profile == Profile::Libchrome {
            "cros"
        } else {
            "desktop"
        };
        frame(
            c,
            "broker_message",
            &format!("{p}-constructed-buffer_response_failure"),
            &|o| {
                BrokerMessage::BufferResponse {
                    guid: Guid::default(),
                    trailing: &[],
                }
                .encode_frame(profile, o)
                .unwrap();
            },
        );
        let node_msgs: Vec<(&str, NodeMessage<'_>, u16)> = vec![
            (
                "accept_invitee_v0",
                NodeMessage::AcceptInvitee(AcceptInvitee {
                    inviter_name: n(1),
                    token: n(2),
                    capabilities: None,
                    trailing: &[],
                }),
                0,
            ),
            (
                "add_broker_client",
                NodeMessage::AddBrokerClient(AddBrokerClient {
                    client_name: n(3),
                    process_handle: 0,
                    trailing: &[],
                }),
                0,
            ),
            (
                "broker_client_added",
                NodeMessage::BrokerClientAdded(BrokerClientAdded {
                    client_name: n(3),
                    trailing: &[],
                }),
                1,
            ),
            (
                "accept_broker_client_v0",
                NodeMessage::AcceptBrokerClient(AcceptBrokerClient {
                    broker_name: n(1),
                    capabilities: None,
                    trailing: &[],
                }),
                0,
            ),
            (
                "request_introduction",
                NodeMessage::RequestIntroduction(Introduction {
                    name: n(4),
                    capabilities: Some(Default::default()),
                    trailing: &[],
                }),
                0,
            ),
            (
                "introduce",
                NodeMessage::Introduce(Introduction {
                    name: n(4),
                    capabilities: None,
                    trailing: &[],
                }),
                1,
            ),
            (
                "bind_broker_host",
                NodeMessage::BindBrokerHost(BindBrokerHost { trailing: &[] }),
                1,
            ),
        ];
        for (name, m, nh) in node_msgs {
            frame(
                c,
                "node_message",
                &format!("{p}-constructed-{name}"),
                &|o| {
                    m.encode_frame(profile, nh, o).unwrap();
                },
            );
        }
        // A broadcast ObserveProxy with an invalid port name.
        let mut inner = Vec::new();
        Event::new(
            PortName::INVALID,
            EventData::ObserveProxy(mojo_legacy_wire::event::ObserveProxy {
                proxy_node_name: n(5),
                proxy_port_name: n(6),
                ..Default::default()
            }),
        )
        .encode_frame(profile, 0, &mut inner)
        .unwrap();
        frame(
            c,
            "node_message",
            &format!("{p}-constructed-broadcast_event"),
            &|o| {
                NodeMessage::BroadcastEvent(&inner)
                    .encode_frame(profile, 0, o)
                    .unwrap();
            },
        );
        let acks = [
            EventData::UserMessageReadAckRequest {
                sequence_num_to_acknowledge: 4,
            },
            EventData::UserMessageReadAck {
                sequence_num_acknowledged: 4,
            },
            EventData::UpdatePreviousPeer {
                new_node_name: n(1),
                new_port_name: n(2),
            },
        ];
        for data in acks {
            let name = format!("{p}-constructed-{}", data.event_type()).to_lowercase();
            let mut e = Event::new(n(7), data);
            if profile == Profile::Desktop {
                e.sender = Some(mojo_legacy_wire::event::SenderInfo {
                    from_port: n(8),
                    control_sequence_num: 3,
                });
            }
            let mut body = vec![u8::from(profile == Profile::Desktop)];
            e.encode(&mut body).unwrap();
            c.add("ports_event", &name, body, 1);
        }
    }
    frame(c, "node_message", "constructed-upgrade_offer", &|o| {
        ControlMessage::UpgradeOffer(UpgradeOffer {
            version: 2,
            num_pages: 4,
            trailing: &[],
        })
        .encode_frame(2, o)
        .unwrap();
    });
    frame(c, "node_message", "constructed-upgrade_reject", &|o| {
        ControlMessage::UpgradeReject { payload: &[] }
            .encode_frame(0, o)
            .unwrap();
    });
    let pipe = DataPipeState {
        options: DataPipeOptions {
            struct_size: 16,
            flags: 0,
            element_num_bytes: 1,
            capacity_num_bytes: 65536,
        },
        pipe_id: 0,
        offset: 0,
        available: 65536,
        flags: 0,
        buffer_guid: Guid { high: 1, low: 2 },
    };
    let messages = [
        ("data_pipe_producer", Dispatcher::DataPipeProducer(pipe)),
        ("data_pipe_consumer", Dispatcher::DataPipeConsumer(pipe)),
        (
            "unknown_dispatcher",
            Dispatcher::Unknown {
                dispatcher_type: DispatcherType::WATCHER,
                num_ports: 0,
                num_platform_handles: 0,
                state: &[1, 2, 3, 4],
            },
        ),
    ];
    for (name, d) in messages {
        let m = UserMessage {
            dispatchers: vec![d],
            payload: &[0, 0, 0, 0, 1, 0, 0, 0],
        };
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        c.add("user_message", &format!("constructed-{name}"), out, 1);
    }
}
