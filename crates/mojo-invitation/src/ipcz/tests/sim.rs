//! Connectors of every role wired to each other in memory and stepped
//! until idle: names, portal counts, buffers and sockets must agree, every
//! frame must be canonical, and nothing may be left queued.

use std::sync::atomic::Ordering;

use ipcz_node::memory::{MemoryOptions, NodeLinkMemory};
use ipcz_wire::driver_object::TransportEndpointType;
use ipcz_wire::messages::{Body, MessageId};
use ipcz_wire::types::{FragmentDescriptor, LinkSide, NodeType, ReferralId, SublinkId};
use mojo_wire_kit::{HeapMemory, SeededRandom, SharedMemory};

use super::super::{
    BrokerConnector, BrokerReferralConnector, HandshakeError, InitialPortal, Link, LinkTransport,
    NonBrokerConnector, PrimaryBuffer, Referral, ReferralResources, ReferredConnector,
    ReferrerConnector, ReferrerInfo,
};
use super::*;

/// Steps a broker and a non-broker until neither has anything to send.
fn run_direct(broker: &mut BrokerConnector, non_broker: &mut NonBrokerConnector) {
    loop {
        let mut moved = false;
        while let Some(t) = broker.poll_transmit() {
            assert_eq!(t.link, Link::Handshake);
            assert_eq!(check_canonical(&t).id(), MessageId(0));
            non_broker
                .handle_frame(&t.bytes, t.fds)
                .expect("non-broker accepts");
            moved = true;
        }
        while let Some(t) = non_broker.poll_transmit() {
            assert_eq!(t.link, Link::Handshake);
            assert_eq!(check_canonical(&t).id(), MessageId(1));
            broker
                .handle_frame(&t.bytes, t.fds)
                .expect("broker accepts");
            moved = true;
        }
        if !moved {
            break;
        }
    }
}

#[test]
fn broker_and_non_broker_agree_on_names_portals_and_buffer() {
    let (buffer_fd, mut buffer_peer) = watched_fd();
    let (primary, mapping) = primary_buffer(buffer_fd);
    let mut broker =
        BrokerConnector::new(BROKER_NAME, 2, primary, &mapping, &mut SeededRandom::new(7))
            .expect("broker");
    let mut non_broker = NonBrokerConnector::new(3).expect("non-broker");
    run_direct(&mut broker, &mut non_broker);

    let at_broker = broker.finish().expect("broker established");
    let at_non_broker = non_broker.finish().expect("non-broker established");
    assert_eq!(at_broker.local_name, BROKER_NAME);
    assert_eq!(at_non_broker.remote_name, BROKER_NAME);
    assert_eq!(at_broker.remote_name, at_non_broker.local_name);
    assert!(at_non_broker.local_name.is_valid());
    assert_eq!(
        (at_broker.side, at_non_broker.side),
        (LinkSide::A, LinkSide::B)
    );
    assert_eq!(at_broker.remote_type, NodeType::NORMAL);
    assert_eq!(at_non_broker.remote_type, NodeType::BROKER);
    assert_eq!(
        (
            at_broker.portal_counts.local,
            at_broker.portal_counts.remote
        ),
        (2, 3)
    );
    assert_eq!(
        (
            at_non_broker.portal_counts.local,
            at_non_broker.portal_counts.remote
        ),
        (3, 2)
    );
    assert_eq!(at_broker.portal_counts.established(), 2);
    assert_eq!(at_non_broker.portal_counts.established(), 2);
    assert_eq!(at_broker.surplus_portals(), 2..2);
    assert_eq!(at_non_broker.surplus_portals(), 2..3);
    assert_eq!(at_broker.remote_protocol_version, 0);
    assert_eq!(at_non_broker.remote_features, 0);

    // The same initial portals on both sides, each with its own link side.
    let broker_portals: Vec<InitialPortal> = at_broker.initial_portals().collect();
    let non_broker_portals: Vec<InitialPortal> = at_non_broker.initial_portals().collect();
    assert_eq!(broker_portals.len(), 2);
    for (i, (a, b)) in broker_portals.iter().zip(&non_broker_portals).enumerate() {
        assert_eq!(a.index, i as u32);
        assert_eq!(a.sublink, SublinkId(i as u64));
        assert_eq!(
            a.link_state,
            FragmentDescriptor::new(0, 256 + 64 * i as u32, 64)
        );
        assert_eq!((a.sublink, a.link_state), (b.sublink, b.link_state));
        assert_eq!((a.side, b.side), (LinkSide::A, LinkSide::B));
    }

    // The buffer the non-broker got is the one the broker was given...
    assert_eq!(at_non_broker.primary_buffer, at_broker.primary_buffer);
    assert!(at_broker.primary_buffer_fd.is_none());
    let fd = at_non_broker.primary_buffer_fd.as_ref().expect("buffer fd");
    assert_same_socket(fd, &mut buffer_peer);
    // ...and the broker initialized it (§5.1) through the mapping.
    assert_eq!(mapping.load_u64(0, Ordering::Relaxed), Ok(1));
    assert_eq!(mapping.load_u64(8, Ordering::Relaxed), Ok(12));
    let mut memory = NodeLinkMemory::new(mapping, MemoryOptions::default()).expect("memory");
    assert_eq!(memory.allocate_sublink_ids(2).map(|s| s.0), Ok(12));
    assert_eq!(
        memory.allocate_router_link_state().expect("allocate"),
        Some(FragmentDescriptor::new(0, 1088, 64))
    );

    // Nothing left: no frame queued, and the fd closes with the link.
    assert!(broker.poll_transmit().is_none() && non_broker.poll_transmit().is_none());
    drop(at_non_broker);
    assert!(buffer_peer.is_closed());
}

#[test]
fn a_dirty_buffer_is_cleaned_before_initialization() {
    let (primary, _) = primary_buffer(dev_null());
    let mapping = HeapMemory::from_bytes(&[0xa5; 131072]);
    BrokerConnector::new(BROKER_NAME, 1, primary, &mapping, &mut SeededRandom::new(1))
        .expect("broker");
    let bytes = mapping.snapshot();
    assert!(
        bytes[16..1024].iter().all(|&b| b == 0),
        "header and initial link states zeroed"
    );
}

#[test]
fn greetings_cross_in_either_order() {
    for broker_first in [true, false] {
        let (primary, mapping) = primary_buffer(dev_null());
        let mut broker =
            BrokerConnector::new(BROKER_NAME, 8, primary, &mapping, &mut SeededRandom::new(3))
                .expect("broker");
        let mut non_broker = NonBrokerConnector::new(2).expect("non-broker");
        let to_broker = non_broker.poll_transmit().expect("greeting");
        let to_non_broker = broker.poll_transmit().expect("greeting");
        if broker_first {
            broker
                .handle_frame(&to_broker.bytes, to_broker.fds)
                .expect("broker");
            non_broker
                .handle_frame(&to_non_broker.bytes, to_non_broker.fds)
                .expect("non-broker");
        } else {
            non_broker
                .handle_frame(&to_non_broker.bytes, to_non_broker.fds)
                .expect("non-broker");
            broker
                .handle_frame(&to_broker.bytes, to_broker.fds)
                .expect("broker");
        }
        assert!(broker.is_established() && non_broker.is_established());
        assert_eq!(
            broker.established().map(|l| l.portal_counts.established()),
            Some(2)
        );
        assert_eq!(
            broker.established().map(|l| l.surplus_portals()),
            Some(2..8)
        );
    }
}

#[test]
fn zero_portals_on_one_side_establish_none() {
    let (primary, mapping) = primary_buffer(dev_null());
    let mut broker =
        BrokerConnector::new(BROKER_NAME, 0, primary, &mapping, &mut SeededRandom::new(4))
            .expect("broker");
    let mut non_broker = NonBrokerConnector::new(4).expect("non-broker");
    run_direct(&mut broker, &mut non_broker);
    let link = non_broker.finish().expect("established");
    assert_eq!(link.initial_portals().count(), 0);
    assert_eq!(link.surplus_portals(), 0..4);
}

/// The three parties of an inherited-broker handshake, with the fds that
/// let the test check where each socket and buffer ends up.
struct Inherit {
    referrer: ReferrerConnector,
    broker: BrokerReferralConnector,
    referred: ReferredConnector,
    /// The far end of the original host↔proxy socket (the host's end travels
    /// to the broker).
    original_socket_peer: FdProbe,
    /// The far ends of the two new-link buffers' dummy fds.
    broker_buffer_peer: FdProbe,
    referrer_buffer_peer: FdProbe,
    /// The far end of the socket the referred node gets (its peer is the
    /// socket the referrer gets).
    referrer_link_peer: FdProbe,
    broker_mapping: HeapMemory,
    referrer_mapping: HeapMemory,
}

fn start_inherit(referrer_portals: u32, referred_portals: u32) -> Inherit {
    let (host_end, original_socket_peer) = watched_fd();
    let mut referrer =
        ReferrerConnector::new(REFERRER_NAME, ReferralId(3), referrer_portals, host_end, 5)
            .expect("referrer");
    let refer = referrer.poll_transmit().expect("ReferNonBroker");
    assert_eq!(refer.link, Link::Broker);
    let message = check_canonical(&refer);
    assert_eq!(message.sequence_number.0, 5);
    let (referral, socket) = Referral::from_frame(&refer.bytes, refer.fds).expect("referral");
    assert_eq!(referral.referral_id, ReferralId(3));
    assert_eq!(referral.num_initial_portals, referrer_portals);
    assert_eq!(
        referral.transport.destination_type,
        TransportEndpointType::NON_BROKER
    );
    // The broker now owns the host's end of the original socket.
    drop(socket);

    let (broker_buffer_fd, broker_buffer_peer) = watched_fd();
    let (referrer_buffer_fd, referrer_buffer_peer) = watched_fd();
    let (referred_socket, referrer_link_peer) = watched_fd();
    let referrer_socket: OwnedFd = referrer_link_peer.0.try_clone().expect("dup").into();
    let broker_mapping = HeapMemory::new(131072);
    let referrer_mapping = HeapMemory::new(131072);
    let broker = BrokerReferralConnector::new(
        BROKER_NAME,
        ReferrerInfo {
            name: REFERRER_NAME,
            protocol_version: 0,
            features: 0,
            sequence_number: 9,
        },
        referral,
        ReferralResources {
            broker_link_buffer: PrimaryBuffer::new(131072, BUFFER_GUID, broker_buffer_fd),
            broker_link_mapping: &broker_mapping,
            referrer_link_buffer: PrimaryBuffer::new(
                131072,
                Guid {
                    high: 0x99,
                    low: 0x98,
                },
                referrer_buffer_fd.try_clone().expect("dup"),
            ),
            referrer_link_buffer_for_referrer: referrer_buffer_fd,
            referrer_link_mapping: &referrer_mapping,
            referred_socket,
            referrer_socket,
        },
        &mut SeededRandom::new(11),
    )
    .expect("broker referral");
    let referred = ReferredConnector::new(referred_portals).expect("referred");
    Inherit {
        referrer,
        broker,
        referred,
        original_socket_peer,
        broker_buffer_peer,
        referrer_buffer_peer,
        referrer_link_peer,
        broker_mapping,
        referrer_mapping,
    }
}

#[test]
fn inherit_mode_gives_the_referred_node_a_broker_link_and_a_referrer_link() {
    let mut s = start_inherit(2, 3);
    // Nothing is sent before the referred node greets.
    assert!(s.broker.poll_transmit().is_none());
    let greeting = s.referred.poll_transmit().expect("ConnectToReferredBroker");
    assert_eq!(check_canonical(&greeting).id(), MessageId(3));
    s.broker
        .handle_frame(&greeting.bytes, greeting.fds)
        .expect("broker accepts");

    // The referred node's answer comes first, then the referrer's.
    let to_referred = s
        .broker
        .poll_transmit()
        .expect("ConnectToReferredNonBroker");
    assert_eq!(to_referred.link, Link::Handshake);
    let message = check_canonical(&to_referred);
    assert_eq!((message.id(), message.sequence_number.0), (MessageId(4), 0));
    assert_eq!(to_referred.fds.len(), 3);
    assert_eq!(
        to_referred.bytes.len(),
        312,
        "the recorded size (spec §9.2)"
    );
    let to_referrer = s.broker.poll_transmit().expect("NonBrokerReferralAccepted");
    assert_eq!(to_referrer.link, Link::Referrer);
    let message = check_canonical(&to_referrer);
    assert_eq!((message.id(), message.sequence_number.0), (MessageId(5), 9));
    assert!(s.broker.poll_transmit().is_none());

    s.referred
        .handle_frame(&to_referred.bytes, to_referred.fds)
        .expect("referred accepts");
    s.referrer
        .handle_frame(&to_referrer.bytes, to_referrer.fds)
        .expect("referrer accepts");

    let at_broker = s.broker.finish().expect("broker established");
    let inherited = s.referred.finish().expect("referred established");
    let at_referrer = s.referrer.finish().expect("referrer established");
    let referred_name = at_broker.remote_name;

    // Broker link: B (side A) ↔ P (side B), no initial portals.
    assert_eq!(at_broker.side, LinkSide::A);
    assert_eq!(inherited.broker.side, LinkSide::B);
    assert_eq!(inherited.broker.local_name, referred_name);
    assert_eq!(inherited.broker.remote_name, BROKER_NAME);
    assert_eq!(inherited.broker.remote_type, NodeType::BROKER);
    assert_eq!(inherited.broker.initial_portals().count(), 0);
    assert_eq!(at_broker.initial_portals().count(), 0);
    assert!(matches!(
        inherited.broker.transport,
        LinkTransport::Handshake
    ));
    assert_eq!(inherited.broker.primary_buffer, at_broker.primary_buffer);
    assert_same_socket(
        inherited.broker.primary_buffer_fd.as_ref().expect("fd"),
        &mut s.broker_buffer_peer,
    );

    // Referrer link: H (side A) ↔ P (side B), n = min(2, 3) on both sides.
    assert_eq!(
        (at_referrer.side, inherited.referrer.side),
        (LinkSide::A, LinkSide::B)
    );
    assert_eq!(at_referrer.local_name, REFERRER_NAME);
    assert_eq!(at_referrer.remote_name, referred_name);
    assert_eq!(inherited.referrer.remote_name, REFERRER_NAME);
    assert_eq!(inherited.referrer.local_name, referred_name);
    assert_eq!(at_referrer.remote_type, NodeType::NORMAL);
    assert_eq!(inherited.referrer.remote_type, NodeType::NORMAL);
    assert_eq!(
        (
            at_referrer.portal_counts.local,
            at_referrer.portal_counts.remote
        ),
        (2, 3)
    );
    assert_eq!(
        (
            inherited.referrer.portal_counts.local,
            inherited.referrer.portal_counts.remote
        ),
        (3, 2)
    );
    assert_eq!(inherited.referrer.surplus_portals(), 2..3);
    assert_eq!(at_referrer.initial_portals().count(), 2);
    assert_eq!(
        at_referrer.primary_buffer,
        inherited.referrer.primary_buffer
    );
    assert_eq!(at_referrer.primary_buffer.guid.high, 0x99);
    let (
        LinkTransport::Socket {
            fd: p_socket,
            transport,
        },
        LinkTransport::Socket { fd: h_socket, .. },
    ) = (&inherited.referrer.transport, &at_referrer.transport)
    else {
        panic!("both referrer-link ends come as sockets");
    };
    assert!(transport.is_trusted_by_peer);
    // P's socket and H's socket are the two ends of the pair.
    assert_same_socket(p_socket, &mut s.referrer_link_peer);
    let mut h_stream = UnixStream::from(h_socket.try_clone().expect("dup"));
    Write::write_all(&mut h_stream, b"y").expect("write");
    let mut buf = [0u8; 1];
    Read::read_exact(
        &mut UnixStream::from(p_socket.try_clone().expect("dup")),
        &mut buf,
    )
    .expect("read");
    assert_eq!(&buf, b"y");
    drop(h_stream);
    assert_same_socket(
        at_referrer.primary_buffer_fd.as_ref().expect("fd"),
        &mut s.referrer_buffer_peer,
    );

    // Both new buffers were initialized by the broker.
    for mapping in [&s.broker_mapping, &s.referrer_mapping] {
        assert_eq!(mapping.load_u64(8, Ordering::Relaxed), Ok(12));
    }

    // Nothing left: once the links are dropped, every fd is closed.
    drop((at_broker, inherited, at_referrer));
    assert!(s.original_socket_peer.is_closed());
    assert!(s.broker_buffer_peer.is_closed());
    assert!(s.referrer_buffer_peer.is_closed());
}

#[test]
fn a_referral_whose_node_never_greets_is_rejected_to_the_referrer() {
    let mut s = start_inherit(2, 2);
    assert_eq!(
        s.broker.handle_closed(),
        Err(HandshakeError::PeerClosed {
            link: Link::Handshake,
            waiting_for: "ConnectToReferredBroker",
        })
    );
    let rejected = s.broker.poll_transmit().expect("NonBrokerReferralRejected");
    assert_eq!(rejected.link, Link::Referrer);
    let message = check_canonical(&rejected);
    assert!(matches!(message.body, Body::NonBrokerReferralRejected(_)));
    assert_eq!(message.sequence_number.0, 9);
    assert!(s.broker.poll_transmit().is_none(), "rejected once");
    // The held fds are closed at once.
    assert!(s.broker_buffer_peer.is_closed());
    assert!(s.referrer_buffer_peer.is_closed());
    assert_eq!(
        s.referrer.handle_frame(&rejected.bytes, rejected.fds),
        Err(HandshakeError::ReferralRejected {
            referral_id: ReferralId(3)
        })
    );
    assert!(s.referred.handle_closed().is_err());
}

#[test]
fn a_bad_greeting_to_the_referral_broker_is_rejected_too() {
    let mut s = start_inherit(2, 2);
    let mut non_broker = NonBrokerConnector::new(2).expect("non-broker");
    let wrong = non_broker.poll_transmit().expect("greeting");
    assert!(matches!(
        s.broker.handle_frame(&wrong.bytes, wrong.fds),
        Err(HandshakeError::UnexpectedMessage {
            found: MessageId(1),
            ..
        })
    ));
    let rejected = s.broker.poll_transmit().expect("rejected");
    assert_eq!(rejected.link, Link::Referrer);
    assert!(s.broker.poll_transmit().is_none());
}
