//! Every frame of every legacy transcript under `shared/vectors` parses
//! through every layer and re-encodes byte-identically (via
//! [`mojo_legacy_wire::verify::check_frame`], which rebuilds each frame from
//! its decoded values), i.e. real Chromium traffic is canonical: the exact
//! variants accept it, and the lenient decode gives the same values. Fails if
//! the directory exists and any frame does not.

use std::collections::BTreeMap;

use mojo_legacy_wire::broker::BrokerFrame;
use mojo_legacy_wire::channel::HeaderForm;
use mojo_legacy_wire::event::EventData;
use mojo_legacy_wire::fuzzing::deframe_pieces;
use mojo_legacy_wire::node::NodeFrame;
use mojo_legacy_wire::verify::{ChannelRole, Content, check_frame, decode_frame};
use mojo_legacy_wire::{Deframer, EventHeaderForm};
use mojo_transcript::testing::{vector_files_of, vectors};
use mojo_transcript::{LinkProtocol, Transcript, VectorProfile};

/// (offset, bytes, claimed fds) of each frame.
type Frames = Vec<(usize, Vec<u8>, usize)>;

/// Deframes a whole stream, pushing it in pieces of `piece` bytes.
fn deframe(bytes: &[u8], piece: usize) -> Result<Frames, String> {
    let deframed = deframe_pieces(Deframer::new(), bytes.chunks(piece.max(1)));
    match deframed.end {
        Err(e) => Err(e.to_string()),
        Ok(0) => Ok(deframed
            .frames
            .into_iter()
            .map(|f| (f.offset as usize, f.bytes, usize::from(f.num_handles)))
            .collect()),
        Ok(partial) => Err(format!("{partial} bytes of a partial frame at the end")),
    }
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn every_legacy_frame_round_trips() {
    let files = vector_files_of(LinkProtocol::Legacy);
    assert!(
        files.len() >= 20,
        "expected the legacy transcripts, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut kinds: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut total = 0;
    for file in &files {
        let (form, header_form, profile) = match file.profile {
            VectorProfile::Libchrome => (EventHeaderForm::Compact, HeaderForm::Legacy, "cros"),
            VectorProfile::Desktop => (EventHeaderForm::Extended, HeaderForm::Full, "desktop"),
        };
        let name = file
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let transcript = Transcript::from_path(&file.path).unwrap();
        for (key, stream) in transcript.streams() {
            let role = if key.channel == 0 {
                ChannelRole::Broker
            } else {
                ChannelRole::Node
            };
            let frames = match deframe(&stream.bytes, stream.bytes.len()) {
                Ok(f) => f,
                Err(e) => {
                    failures.push(format!("{name} {key}: deframing: {e}"));
                    continue;
                }
            };
            for piece in [1, 7, 64, 4096] {
                let again = deframe(&stream.bytes, piece);
                assert_eq!(
                    again.as_ref().ok(),
                    Some(&frames),
                    "{name} {key} split {piece}"
                );
            }
            let starts: Vec<usize> = frames.iter().map(|(offset, _, _)| *offset).collect();
            let arrived = stream.fds_per_frame(&starts).counts;
            for (index, ((offset, bytes, claimed), arrived)) in
                frames.iter().zip(arrived).enumerate()
            {
                total += 1;
                let where_ = format!("{name} {key} frame {index} @{offset}");
                if *claimed != arrived {
                    failures.push(format!("{where_}: claims {claimed} fds, {arrived} arrived"));
                }
                let checked = match check_frame(bytes, role, form) {
                    Ok(c) => c,
                    Err(e) => {
                        failures.push(format!("{where_}: {e}"));
                        continue;
                    }
                };
                if decode_frame(bytes, role, form).as_ref() != Ok(&checked) {
                    failures.push(format!("{where_}: lenient decode differs from check_frame"));
                }
                let layer_exact = match role {
                    ChannelRole::Broker => BrokerFrame::decode_exact(bytes).map(|(_, n)| n),
                    ChannelRole::Node => NodeFrame::decode_exact(bytes).map(|(_, n)| n),
                };
                if layer_exact != Ok(bytes.len()) {
                    failures.push(format!("{where_}: parse_exact: {layer_exact:?}"));
                }
                // The recordings only ever use their profile's header form.
                if checked.header.form() != header_form {
                    failures.push(format!("{where_}: header form {:?}", checked.header.form()));
                }
                let kind = match &checked.content {
                    Content::Broker(m) => format!("broker {}", m.message_type()),
                    Content::Control(c) => format!("control {}", c.message_type()),
                    Content::Node(m) => format!("node {}", m.message_type()),
                    Content::Event {
                        event,
                        user_message,
                    } => match (&event.data, user_message) {
                        (EventData::UserMessage(_), Some(m)) => {
                            // Chromium sent these handles, so its receiver
                            // deserializes them.
                            if let Err(e) = m.check_dispatchers() {
                                failures.push(format!("{where_}: check_dispatchers: {e}"));
                            }
                            let mut d: Vec<String> = m
                                .dispatchers
                                .iter()
                                .map(|d| d.dispatcher_type().to_string())
                                .collect();
                            d.dedup();
                            format!("event UserMessage [{}]", d.join(","))
                        }
                        _ => format!("event {}", event.event_type()),
                    },
                    Content::Broadcast { .. } => "broadcast".to_string(),
                };
                *kinds.entry((profile.to_string(), kind)).or_default() += 1;
            }
        }
    }
    for ((profile, kind), n) in &kinds {
        eprintln!("{profile:8} {kind:50} {n}");
    }
    eprintln!("{total} legacy frames checked");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Both profiles, every layer present.
    for profile in ["cros", "desktop"] {
        for kind in [
            "broker INIT",
            "broker BUFFER_REQUEST",
            "broker BUFFER_RESPONSE",
            "node ACCEPT_INVITEE",
            "node ACCEPT_INVITATION",
            "node ACCEPT_BROKER_CLIENT",
            "node REQUEST_PORT_MERGE",
            "event PortAccepted",
            "event ObserveProxy",
            "event ObserveProxyAck",
            "event ObserveClosure",
            "event MergePort",
            "event UserMessage []",
            "event UserMessage [MESSAGE_PIPE]",
            "event UserMessage [SHARED_BUFFER]",
            "event UserMessage [PLATFORM_HANDLE]",
        ] {
            assert!(
                kinds.contains_key(&(profile.to_string(), kind.to_string())),
                "{profile}: no {kind} frame"
            );
        }
    }
    assert!(kinds.contains_key(&("desktop".into(), "event UpdatePreviousPeer".into())));
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn profiles_are_not_interchangeable() {
    // A compact PortAccepted read with the extended header is too short, and
    // vice versa the sizes differ: the header size must be configured.
    let path = vectors().join("cros/connect_only-proxy_client.jsonl");
    let t = Transcript::from_path(&path).unwrap();
    let mut misparsed = 0;
    for (key, stream) in t.streams() {
        if key.channel == 0 {
            continue;
        }
        for (_, bytes, _) in deframe(&stream.bytes, 4096).unwrap() {
            if check_frame(&bytes, ChannelRole::Node, EventHeaderForm::Extended).is_err() {
                misparsed += 1;
            }
        }
    }
    assert!(misparsed > 0);
}
