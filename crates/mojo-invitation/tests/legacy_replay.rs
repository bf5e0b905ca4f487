//! Replay against the recorded legacy transcripts (`shared/vectors`): the
//! Rust broker, fed the real client's side of each recorded handshake
//! (its token substituted), emits the same frames as the real broker, byte
//! for byte once names and tokens are substituted; the Rust client, fed the
//! real broker's side, emits the same frames as the real client. Recorded
//! `BUFFER_REQUEST`s are answered with the recorded sizes and fd counts.

mod legacy_support;

use std::fs::File;
use std::os::fd::OwnedFd;

use mojo_invitation::legacy::{
    AttachmentName, BrokerConfig, BrokerConnector, ClientConfig, ClientConnector, HandshakeError,
    Link, Transmit,
};
use mojo_legacy_wire::broker::{BrokerFrame, BrokerMessage, BrokerMessageType};
use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame, NodeMessage, NodeMessageType};
use mojo_legacy_wire::{Profile, Token};
use mojo_transcript::testing::vectors;
use mojo_transcript::{
    Direction, LinkProtocol, Stream, StreamKey, Transcript, VectorProfile, vector_files,
};
use mojo_wire_kit::{Guid, SeededRandom};

use legacy_support::{probe, region_fds};

/// One recorded frame: its bytes and how many fds arrived with it.
struct Recorded {
    bytes: Vec<u8>,
    fds: usize,
}

fn frames(stream: Option<&Stream>) -> Vec<Recorded> {
    let Some(stream) = stream else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((_, used)) = Frame::decode_prefix(&stream.bytes[at..]).expect("recorded frame") {
        out.push(Recorded {
            bytes: stream.bytes[at..at + used].to_vec(),
            fds: stream.fds_in(at..at + used),
        });
        at += used;
    }
    out
}

fn fake_fds(n: usize) -> Vec<OwnedFd> {
    (0..n)
        .map(|_| File::open("/dev/null").expect("/dev/null").into())
        .collect()
}

fn node_message(bytes: &[u8]) -> NodeMessage<'_> {
    match NodeFrame::decode_exact(bytes)
        .expect("node frame")
        .0
        .content
    {
        NodeChannelContent::Message(m) => m,
        NodeChannelContent::Control(c) => panic!("control message {c:?}"),
    }
}

fn node_type(bytes: &[u8]) -> NodeMessageType {
    node_message(bytes).message_type()
}

fn broker_message(bytes: &[u8]) -> BrokerMessage<'_> {
    BrokerFrame::decode_exact(bytes)
        .expect("broker frame")
        .0
        .message
}

/// The frame with the invitation token replaced (`ACCEPT_INVITEE`,
/// `ACCEPT_INVITATION`), re-encoded with its own header.
fn with_token(bytes: &[u8], token: Token) -> Vec<u8> {
    let (mut frame, _) = NodeFrame::decode_exact(bytes).expect("node frame");
    match &mut frame.content {
        NodeChannelContent::Message(NodeMessage::AcceptInvitee(m)) => m.token = token,
        NodeChannelContent::Message(NodeMessage::AcceptInvitation(m)) => m.token = token,
        other => panic!("no token in {other:?}"),
    }
    let mut out = Vec::new();
    frame.encode(&mut out).expect("encode");
    out
}

/// Every emitted frame is canonical for the wire crate.
fn check_exact(t: &Transmit) {
    let used = match t.link {
        Link::Bootstrap => BrokerFrame::decode_exact(&t.bytes).expect("exact").1,
        Link::NodeChannel => NodeFrame::decode_exact(&t.bytes).expect("exact").1,
    };
    assert_eq!(used, t.bytes.len());
}

struct Vector {
    name: String,
    profile: Profile,
    boot_from_broker: Vec<Recorded>,
    boot_from_client: Vec<Recorded>,
    node_from_broker: Vec<Recorded>,
    node_from_client: Vec<Recorded>,
}

fn legacy_vectors() -> Vec<Vector> {
    let dir = vectors();
    let mut out = Vec::new();
    for file in vector_files(&dir).expect("list vectors") {
        if file.protocol != LinkProtocol::Legacy {
            continue;
        }
        let streams = Transcript::from_path(&file.path).expect("read").streams();
        let get = |channel, direction| streams.get(&StreamKey { channel, direction });
        out.push(Vector {
            name: file.path.display().to_string(),
            profile: match file.profile {
                VectorProfile::Libchrome => Profile::Libchrome,
                VectorProfile::Desktop => Profile::Desktop,
            },
            boot_from_broker: frames(get(0, Direction::AToB)),
            boot_from_client: frames(get(0, Direction::BToA)),
            node_from_broker: frames(get(1, Direction::AToB)),
            node_from_client: frames(get(1, Direction::BToA)),
        });
    }
    assert!(
        out.iter().any(|v| v.profile == Profile::Libchrome)
            && out.iter().any(|v| v.profile == Profile::Desktop),
        "legacy vectors of both profiles"
    );
    // cros/ and desktop/: twelve `*-proxy_client` and two `direct_legacy*`
    // each; none may be skipped silently.
    assert_eq!(out.len(), 28, "every legacy-side recording");
    out
}

/// The recorded handshake and its names, checked to be what spec §3.5 says.
struct RecordedHandshake {
    broker_name: mojo_legacy_wire::NodeName,
    client_name: mojo_legacy_wire::NodeName,
    token: Token,
}

fn recorded_handshake(v: &Vector) -> RecordedHandshake {
    assert_eq!(
        broker_message(&v.boot_from_broker[0].bytes).message_type(),
        BrokerMessageType::INIT,
        "{}",
        v.name
    );
    assert_eq!(v.boot_from_broker[0].fds, 1);
    let NodeMessage::AcceptInvitee(invitee) = node_message(&v.node_from_broker[0].bytes) else {
        panic!("{}: the broker's first node frame", v.name)
    };
    let NodeMessage::AcceptInvitation(invitation) = node_message(&v.node_from_client[0].bytes)
    else {
        panic!("{}: the client's first node frame", v.name)
    };
    assert_eq!(
        node_type(&v.node_from_broker[1].bytes),
        NodeMessageType::ACCEPT_BROKER_CLIENT
    );
    assert_eq!(invitation.token, invitee.token);
    RecordedHandshake {
        broker_name: invitee.inviter_name,
        client_name: invitation.invitee_name,
        token: invitee.token,
    }
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn broker_replays_every_recorded_handshake() {
    let vectors = legacy_vectors();
    for v in &vectors {
        let rec = recorded_handshake(v);
        let mut broker = BrokerConnector::new(
            BrokerConfig {
                profile: v.profile,
                local_name: rec.broker_name,
                attachments: AttachmentName::numeric_range(1),
            },
            fake_fds(1).remove(0),
            &mut SeededRandom::new(11),
        )
        .expect("broker");
        assert_ne!(broker.token(), rec.token);

        // INIT, then ACCEPT_INVITEE: the recorded frames, token substituted.
        let init = broker.poll_transmit().expect("INIT");
        check_exact(&init);
        assert_eq!(init.link, Link::Bootstrap);
        assert_eq!(init.bytes, v.boot_from_broker[0].bytes, "{}: INIT", v.name);
        assert_eq!(init.fds.len(), v.boot_from_broker[0].fds);
        let invitee = broker.poll_transmit().expect("ACCEPT_INVITEE");
        check_exact(&invitee);
        assert_eq!(invitee.link, Link::NodeChannel);
        assert_eq!(
            with_token(&invitee.bytes, rec.token),
            v.node_from_broker[0].bytes,
            "{}: ACCEPT_INVITEE",
            v.name
        );
        assert!(
            broker.poll_transmit().is_none(),
            "nothing before ACCEPT_INVITATION"
        );

        // The client's ACCEPT_INVITATION, echoing our token.
        let invitation = with_token(&v.node_from_client[0].bytes, broker.token());
        broker
            .handle_node_frame(&invitation, fake_fds(v.node_from_client[0].fds))
            .expect("ACCEPT_INVITATION");
        let accept = broker.poll_transmit().expect("ACCEPT_BROKER_CLIENT");
        check_exact(&accept);
        assert_eq!(
            accept.bytes, v.node_from_broker[1].bytes,
            "{}: ACCEPT_BROKER_CLIENT",
            v.name
        );
        assert!(accept.fds.is_empty());
        assert!(broker.poll_transmit().is_none());
        let established = broker.established().expect("established").clone();
        assert_eq!(established.peer_name, rec.client_name);
        assert_eq!(established.local_name, rec.broker_name);

        // What follows belongs to the node layer, as in the recording
        // (REQUEST_PORT_MERGE from the client, events from the broker).
        if let Some(next) = v.node_from_client.get(1) {
            assert_eq!(node_type(&next.bytes), NodeMessageType::REQUEST_PORT_MERGE);
            assert_eq!(
                broker.handle_node_frame(&next.bytes, fake_fds(next.fds)),
                Err(HandshakeError::AlreadyEstablished)
            );
        }
        if let Some(next) = v.node_from_broker.get(2) {
            assert_eq!(node_type(&next.bytes), NodeMessageType::EVENT_MESSAGE);
        }

        // The bootstrap socket: each recorded BUFFER_REQUEST gets a
        // BUFFER_RESPONSE like the recorded one (same guid passed in).
        for (i, request) in v.boot_from_client.iter().enumerate() {
            let BrokerMessage::BufferRequest { size, .. } = broker_message(&request.bytes) else {
                panic!("{}: client bootstrap frame {i}", v.name)
            };
            broker
                .handle_bootstrap_frame(&request.bytes, fake_fds(request.fds))
                .expect("BUFFER_REQUEST");
            let asked = broker.host().poll_region_request().expect("region request");
            assert_eq!(asked.size, size);
            let recorded = &v.boot_from_broker[i + 1];
            let BrokerMessage::BufferResponse { guid, .. } = broker_message(&recorded.bytes) else {
                panic!("{}: broker bootstrap frame {}", v.name, i + 1)
            };
            let region = region_fds(guid, size as usize, i as u64);
            broker
                .host()
                .answer_buffer_request(asked.id, region, &probe)
                .expect("answer");
            let response = broker.poll_transmit().expect("BUFFER_RESPONSE");
            check_exact(&response);
            assert_eq!(response.link, Link::Bootstrap);
            assert_eq!(
                response.bytes, recorded.bytes,
                "{}: BUFFER_RESPONSE",
                v.name
            );
            assert_eq!(response.fds.len(), recorded.fds);
        }
        assert_eq!(v.boot_from_broker.len(), v.boot_from_client.len() + 1);
        let (_, host) = broker.finish().expect("finish");
        assert!(host.is_idle());
    }
    eprintln!(
        "replayed {} legacy transcripts (broker side)",
        vectors.len()
    );
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn client_replays_every_recorded_handshake() {
    let vectors = legacy_vectors();
    for v in &vectors {
        let rec = recorded_handshake(v);
        let mut client = ClientConnector::new(ClientConfig {
            profile: v.profile,
            local_name: rec.client_name,
            attachments: vec![],
        })
        .expect("client");
        let init = &v.boot_from_broker[0];
        assert_eq!(client.bootstrap_read_len(), init.bytes.len());
        client
            .handle_bootstrap_read(&init.bytes, fake_fds(init.fds))
            .expect("INIT");

        client
            .handle_node_frame(&v.node_from_broker[0].bytes, vec![])
            .expect("ACCEPT_INVITEE");
        let invitation = client.poll_transmit().expect("ACCEPT_INVITATION");
        check_exact(&invitation);
        assert_eq!(invitation.link, Link::NodeChannel);
        // The token comes from the recorded broker, so no substitution.
        assert_eq!(
            invitation.bytes, v.node_from_client[0].bytes,
            "{}: ACCEPT_INVITATION",
            v.name
        );
        assert!(client.established().is_none());
        client
            .handle_node_frame(&v.node_from_broker[1].bytes, vec![])
            .expect("ACCEPT_BROKER_CLIENT");
        assert!(client.poll_transmit().is_none());
        let established = client.established().expect("established").clone();
        assert_eq!(established.peer_name, rec.broker_name);
        assert_eq!(established.token, rec.token);
        if let Some(next) = v.node_from_broker.get(2) {
            assert_eq!(
                client.handle_node_frame(&next.bytes, fake_fds(next.fds)),
                Err(HandshakeError::AlreadyEstablished)
            );
        }

        // The recorded BUFFER_REQUESTs, byte for byte, and the responses
        // taken with real region fds.
        let sync = client.sync_broker().expect("INIT read");
        for (i, request) in v.boot_from_client.iter().enumerate() {
            let BrokerMessage::BufferRequest { size, .. } = broker_message(&request.bytes) else {
                panic!("{}: client bootstrap frame {i}", v.name)
            };
            sync.request_buffer(size).expect("request");
            let sent = sync.poll_transmit().expect("BUFFER_REQUEST");
            check_exact(&sent);
            assert_eq!(sent.bytes, request.bytes, "{}: BUFFER_REQUEST", v.name);
            let recorded = &v.boot_from_broker[i + 1];
            assert_eq!(sync.response_read_len(), recorded.bytes.len());
            let BrokerMessage::BufferResponse { guid, .. } = broker_message(&recorded.bytes) else {
                panic!("{}: broker bootstrap frame {}", v.name, i + 1)
            };
            assert_eq!(recorded.fds, 2);
            let region = region_fds(Guid::NONE, size as usize, i as u64);
            let grant = sync
                .handle_response_read(
                    &recorded.bytes,
                    vec![region.read_write, region.read_only],
                    &probe,
                )
                .expect("grant");
            assert_eq!((grant.guid, grant.size), (guid, size));
        }
        assert!(sync.is_idle());
        assert!(client.finish().is_ok());
    }
    eprintln!(
        "replayed {} legacy transcripts (client side)",
        vectors.len()
    );
}
