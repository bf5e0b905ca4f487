//! The fuzz targets' logic under `cargo test` (stable, no libFuzzer): runs the
//! six `fuzzing` oracles on the seed corpus in `fuzz/corpus/legacy_*/`, on
//! every single-byte mutation of each seed, and on pseudo-random inputs.
//!
//! `write_seed_corpus` (ignored by default) regenerates that corpus from the
//! vectors plus a few constructed messages the recordings lack:
//! `cargo test -p mojo-legacy-wire --test fuzz_corpus -- --ignored write_seed_corpus`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mojo_legacy_wire::broker::BrokerMessage;
use mojo_legacy_wire::channel::{ControlMessage, UpgradeOffer};
use mojo_legacy_wire::event::{Event, EventData};
use mojo_legacy_wire::fuzzing;
use mojo_legacy_wire::node::{
    AcceptBrokerClient, AcceptInvitee, AddBrokerClient, BindBrokerHost, BrokerClientAdded,
    Introduction, NodeMessage,
};
use mojo_legacy_wire::user_message::{
    DataPipeOptions, DataPipeState, Dispatcher, DispatcherType, UserMessage,
};
use mojo_legacy_wire::verify::{ChannelRole, Content, check_frame};
use mojo_legacy_wire::{Deframer, EventHeaderForm, PortName, Profile};
use mojo_transcript::{LinkProtocol, Transcript, VectorProfile, vector_files, vectors_dir};
use mojo_wire_kit::Guid;

type Oracle = fn(&[u8]);

const TARGETS: [(&str, Oracle); 6] = [
    ("channel_frame", fuzzing::channel_frame),
    ("deframer", fuzzing::deframer),
    ("broker_message", fuzzing::broker_message),
    ("node_message", fuzzing::node_message),
    ("ports_event", fuzzing::ports_event),
    ("user_message", fuzzing::user_message),
];

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_root().join(format!("legacy_{target}"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn oracles_accept_the_seed_corpus_and_its_mutations() {
    if !corpus_root().is_dir() {
        eprintln!("fuzz/corpus not found; skipping");
        return;
    }
    for (target, oracle) in TARGETS {
        let seeds = seeds(target);
        assert!(
            seeds.len() >= 8,
            "legacy_{target}: only {} seeds",
            seeds.len()
        );
        for (_, bytes) in &seeds {
            oracle(bytes);
            let mut m = bytes.clone();
            for i in 0..m.len() {
                for x in [0x01, 0x80, 0xff] {
                    m[i] ^= x;
                    oracle(&m);
                    m[i] ^= x;
                }
                oracle(&m[..i]);
            }
        }
    }
}

#[test]
fn seeds_parse_at_their_own_layer() {
    // The seeds are meaningful inputs, not noise: each decodes, and (being
    // real or freshly encoded traffic) in canonical form.
    for (path, b) in seeds("channel_frame") {
        assert!(
            mojo_legacy_wire::channel::Frame::decode_exact(&b).is_ok(),
            "{}",
            path.display()
        );
    }
    for (path, b) in seeds("broker_message") {
        assert!(
            mojo_legacy_wire::broker::BrokerFrame::decode_exact(&b).is_ok(),
            "{}",
            path.display()
        );
    }
    for (path, b) in seeds("node_message") {
        assert!(
            mojo_legacy_wire::node::NodeFrame::decode_exact(&b).is_ok(),
            "{}",
            path.display()
        );
    }
    for (path, b) in seeds("ports_event") {
        let form = if b[0] & 1 == 0 {
            EventHeaderForm::Compact
        } else {
            EventHeaderForm::Extended
        };
        assert!(
            Event::decode_exact(&b[1..], form).is_ok(),
            "{}",
            path.display()
        );
    }
    for (path, b) in seeds("user_message") {
        assert!(UserMessage::decode_exact(&b).is_ok(), "{}", path.display());
    }
}

#[test]
fn oracles_survive_random_input() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let len = (next() % 200) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Make plausible headers common: a small num_bytes and type 0 or 1.
        if data.len() >= 8 && next() % 2 == 0 {
            let n = (next() % (data.len() as u64 + 1)) as u32;
            data[..4].copy_from_slice(&n.to_le_bytes());
            data[6] = (next() % 3) as u8;
            data[7] = 0;
        }
        for (_, oracle) in TARGETS {
            oracle(&data);
        }
    }
}

// ---------------------------------------------------------------------------
// Corpus generation.

struct Corpus {
    files: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

impl Corpus {
    fn add(&mut self, target: &str, name: &str, bytes: Vec<u8>, max_per_name: usize) {
        let files = self.files.entry(target.to_string()).or_default();
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

fn add_frame(c: &mut Corpus, profile: &str, role: ChannelRole, bytes: &[u8]) {
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

fn frame(c: &mut Corpus, target: &str, name: &str, f: &dyn Fn(&mut Vec<u8>)) {
    let mut out = Vec::new();
    f(&mut out);
    c.add(target, name, out, 1);
}

fn constructed(c: &mut Corpus) {
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

#[test]
#[ignore = "writes fuzz/corpus; run explicitly to regenerate"]
fn write_seed_corpus() {
    let dir = vectors_dir().expect("shared/vectors");
    let mut c = Corpus {
        files: BTreeMap::new(),
    };
    for file in vector_files(&dir).unwrap() {
        if file.protocol != LinkProtocol::Legacy {
            continue;
        }
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
            let mut d = Deframer::new();
            d.push(&stream.bytes).unwrap();
            let mut ends = Vec::new();
            while let Some(f) = d.next_frame().unwrap() {
                add_frame(&mut c, profile, role, f.bytes);
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
    let root = corpus_root();
    let mut total = 0;
    for (target, files) in &c.files {
        let dir = root.join(format!("legacy_{target}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            total += bytes.len();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        eprintln!("legacy_{target}: {} files", files.len());
    }
    eprintln!("{total} bytes in total");
    assert!(total < 300 * 1024);
}
