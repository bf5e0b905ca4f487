//! Replay against the recorded ipcz transcripts (`shared/vectors`): every
//! recorded handshake, from both sides.
//!
//! - Direct sessions (a broker host with Chromium's `mojo_proxy` or a
//!   Mojo+ipcz client): our [`NonBrokerConnector`], configured with the
//!   recorded non-broker's portal count, sends the recorded greeting byte
//!   for byte (the timestamp aside) and, fed the host's greeting, yields
//!   the recorded names and counts; our [`BrokerConnector`], configured
//!   with the recorded broker's name, count and buffer, sends the host's
//!   greeting byte for byte once the random receiver name is substituted.
//! - Inherit sessions: our [`ReferredConnector`] likewise against the
//!   broker's ConnectToReferredNonBroker, and our
//!   [`BrokerReferralConnector`] sends that very frame once the random
//!   name is substituted.

use std::fs::File;
use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::DriverObject;
use ipcz_wire::frame::{Frame, FrameHeader};
use ipcz_wire::message::Message;
use ipcz_wire::messages::Body;
use ipcz_wire::types::{LinkSide, NodeType, ReferralId};
use mojo_invitation::ipcz::{
    BrokerConnector, BrokerReferralConnector, LinkTransport, NonBrokerConnector, PrimaryBuffer,
    Referral, ReferralResources, ReferredConnector, ReferrerInfo, Transmit,
};
use mojo_transcript::testing::vectors;
use mojo_transcript::{Direction, LinkProtocol, Stream, StreamKey, Transcript, vector_files};
use mojo_wire_kit::{HeapMemory, SeededRandom};

/// One recorded frame: its bytes and how many fds came with it.
struct Recorded {
    bytes: Vec<u8>,
    fds: usize,
}

impl Recorded {
    fn message(&self) -> Message<'_> {
        let (frame, _) = Frame::decode(&self.bytes).expect("recorded frame");
        Message::decode_exact(frame.payload, self.fds).expect("recorded message")
    }

    fn timestamp(&self) -> i64 {
        Frame::decode(&self.bytes)
            .expect("recorded frame")
            .0
            .header
            .timestamp_us
            .unwrap_or(0)
    }
}

fn frames(stream: Option<&Stream>) -> Vec<Recorded> {
    let Some(stream) = stream else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((frame, used)) = Frame::decode_prefix(&stream.bytes[at..]).expect("frame") {
        let fds = usize::from(frame.header.num_handles);
        out.push(Recorded {
            bytes: stream.bytes[at..at + used].to_vec(),
            fds,
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

/// Our frame, stamped with the recorded frame's timestamp.
fn stamped(mut ours: Transmit, like: &Recorded) -> Transmit {
    ours.set_timestamp(like.timestamp());
    ours
}

/// Re-encodes `message` as a frame like `like` (same timestamp).
fn reencode(message: &Message<'_>, like: &Recorded) -> Vec<u8> {
    let mut out = Vec::new();
    let num_fds = u16::try_from(message.num_fds()).expect("fds");
    FrameHeader::new(num_fds, like.timestamp())
        .encode_frame(&[], message, &mut out)
        .expect("encode");
    out
}

/// The recorded broker's primary buffer, described, with a dummy fd.
fn primary_like(object: Option<&DriverObject>) -> PrimaryBuffer {
    let Some(DriverObject::SharedBuffer(b)) = object else {
        panic!("a SharedBuffer");
    };
    PrimaryBuffer::new(b.buffer_size, b.guid, fake_fds(1).remove(0))
}

fn replay_direct(name: &str, from_host: &Recorded, from_peer: &Recorded) {
    let Body::ConnectFromBrokerToNonBroker(host) = from_host.message().body else {
        unreachable!()
    };
    let Body::ConnectFromNonBrokerToBroker(peer) = from_peer.message().body else {
        panic!("{name}: the non-broker's first frame is not ConnectFromNonBrokerToBroker");
    };

    // Our non-broker, in the recorded proxy's (or client's) place.
    let mut ours = NonBrokerConnector::new(peer.num_initial_portals).expect("connector");
    let greeting = stamped(ours.poll_transmit().expect("greeting"), from_peer);
    assert_eq!(greeting.bytes, from_peer.bytes, "{name}: our greeting");
    assert!(greeting.fds.is_empty());
    assert!(ours.poll_transmit().is_none());
    ours.handle_frame(&from_host.bytes, fake_fds(from_host.fds))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let link = ours.finish().expect("established");
    assert_eq!(link.local_name, host.receiver_name, "{name}");
    assert_eq!(link.remote_name, host.broker_name, "{name}");
    assert_eq!(
        (link.side, link.remote_type),
        (LinkSide::B, NodeType::BROKER)
    );
    assert_eq!(link.portal_counts.local, peer.num_initial_portals);
    assert_eq!(link.portal_counts.remote, host.num_initial_portals);
    assert_eq!(link.primary_buffer.buffer_size, 131072);
    assert!(link.primary_buffer_fd.is_some());
    assert_eq!(
        link.initial_portals().count() as u32,
        host.num_initial_portals.min(peer.num_initial_portals)
    );

    // Our broker, in the host's place.
    let host_message = from_host.message();
    let primary = primary_like(host_message.object(host.buffer));
    let mapping = HeapMemory::new(primary.buffer.buffer_size as usize);
    let mut broker = BrokerConnector::new(
        host.broker_name,
        host.num_initial_portals,
        primary,
        &mapping,
        &mut SeededRandom::new(1),
    )
    .expect("broker");
    let greeting = stamped(broker.poll_transmit().expect("greeting"), from_host);
    let mut expected = host_message.clone();
    if let Body::ConnectFromBrokerToNonBroker(c) = &mut expected.body {
        c.receiver_name = broker.remote_name();
    }
    assert_eq!(
        greeting.bytes,
        reencode(&expected, from_host),
        "{name}: broker greeting"
    );
    assert_eq!(greeting.fds.len(), from_host.fds);
    broker
        .handle_frame(&from_peer.bytes, Vec::new())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let link = broker.finish().expect("established");
    assert_eq!(link.portal_counts.remote, peer.num_initial_portals);
    assert!(broker.poll_transmit().is_none());
}

fn replay_inherit(name: &str, from_broker: &Recorded, from_referred: &Recorded) {
    let broker_message = from_broker.message();
    let Body::ConnectToReferredNonBroker(reply) = &broker_message.body else {
        unreachable!()
    };
    let Body::ConnectToReferredBroker(greeting) = from_referred.message().body else {
        panic!("{name}: the proxy's first frame is not ConnectToReferredBroker");
    };

    // Our referred node, in the recorded proxy's place.
    let mut ours = ReferredConnector::new(greeting.num_initial_portals).expect("connector");
    let sent = stamped(ours.poll_transmit().expect("greeting"), from_referred);
    assert_eq!(sent.bytes, from_referred.bytes, "{name}: our greeting");
    ours.handle_frame(&from_broker.bytes, fake_fds(from_broker.fds))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let inherited = ours.finish().expect("established");
    assert_eq!(inherited.broker.local_name, reply.name);
    assert_eq!(inherited.broker.remote_name, reply.broker_name);
    assert_eq!(inherited.broker.initial_portals().count(), 0);
    assert_eq!(inherited.referrer.local_name, reply.name);
    assert_eq!(inherited.referrer.remote_name, reply.referrer_name);
    assert_eq!(
        inherited.referrer.portal_counts.remote,
        reply.num_initial_portals
    );
    assert_eq!(
        inherited.referrer.portal_counts.local,
        greeting.num_initial_portals
    );
    assert_eq!(inherited.referrer.side, LinkSide::B);
    assert!(matches!(
        inherited.referrer.transport,
        LinkTransport::Socket { .. }
    ));

    // Our broker serving the referral, in the recorded broker's place.
    let Some(DriverObject::Transport(transport)) =
        broker_message.object(reply.referrer_link_transport)
    else {
        panic!("{name}: a Transport");
    };
    let mappings = [HeapMemory::new(131072), HeapMemory::new(131072)];
    let referrer_buffer = primary_like(broker_message.object(reply.referrer_link_buffer));
    let mut broker = BrokerReferralConnector::new(
        reply.broker_name,
        ReferrerInfo {
            name: reply.referrer_name,
            protocol_version: reply.referrer_protocol_version,
            features: reply
                .referrer_features
                .as_ref()
                .and_then(|f| f.first().copied())
                .unwrap_or(0),
            sequence_number: 0,
        },
        Referral {
            referral_id: ReferralId(0),
            num_initial_portals: reply.num_initial_portals,
            transport: *transport,
        },
        ReferralResources {
            broker_link_buffer: primary_like(broker_message.object(reply.broker_link_buffer)),
            broker_link_mapping: &mappings[0],
            referrer_link_buffer: referrer_buffer,
            referrer_link_buffer_for_referrer: fake_fds(1).remove(0),
            referrer_link_mapping: &mappings[1],
            referred_socket: fake_fds(1).remove(0),
            referrer_socket: fake_fds(1).remove(0),
        },
        &mut SeededRandom::new(2),
    )
    .expect("broker referral");
    broker
        .handle_frame(&from_referred.bytes, Vec::new())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let sent = stamped(broker.poll_transmit().expect("reply"), from_broker);
    let mut expected = broker_message.clone();
    if let Body::ConnectToReferredNonBroker(c) = &mut expected.body {
        c.name = broker.referred_name();
    }
    assert_eq!(
        sent.bytes,
        reencode(&expected, from_broker),
        "{name}: broker reply"
    );
    assert_eq!(sent.fds.len(), from_broker.fds);
    assert!(
        broker.poll_transmit().is_some(),
        "{name}: the referrer's answer"
    );
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn every_recorded_ipcz_handshake_replays_on_both_sides() {
    let dir = vectors();
    let files = vector_files(&dir).expect("vectors");
    let (mut direct, mut inherit) = (0, 0);
    for file in files.iter().filter(|f| f.protocol == LinkProtocol::Ipcz) {
        let name = file.path.display().to_string();
        let transcript = Transcript::from_path(&file.path).expect("transcript");
        let streams = transcript.streams();
        let key = |direction| StreamKey {
            channel: 0,
            direction,
        };
        let from_host = frames(streams.get(&key(Direction::AToB)));
        let from_peer = frames(streams.get(&key(Direction::BToA)));
        let (Some(host_first), Some(peer_first)) = (from_host.first(), from_peer.first()) else {
            panic!("{name}: no handshake on channel 0");
        };
        // fds of the greeting arrive with its first byte (README).
        let stream = &streams[&key(Direction::AToB)];
        assert_eq!(
            stream.fds_in(0..host_first.bytes.len()),
            host_first.fds,
            "{name}"
        );
        match host_first.message().body {
            Body::ConnectFromBrokerToNonBroker(_) => {
                replay_direct(&name, host_first, peer_first);
                direct += 1;
            }
            Body::ConnectToReferredNonBroker(_) => {
                replay_inherit(&name, host_first, peer_first);
                inherit += 1;
            }
            ref other => panic!("{name}: unexpected first frame {}", other.name()),
        }
    }
    // 2 profiles × (11 broker-host sessions with mojo_proxy + 2 with a
    // Mojo+ipcz client), and 2 × 1 inherit session.
    assert_eq!((direct, inherit), (26, 2));
}
