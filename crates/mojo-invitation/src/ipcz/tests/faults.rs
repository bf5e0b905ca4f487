//! Fault injection: truncated, mistyped and malformed greetings, missing
//! and surplus fds and driver objects, early hang-ups. Each must end in a
//! typed error (or, for surplus fds, success with the surplus closed), and
//! every fd handed in must be closed unless the result keeps it.

use ipcz_wire::driver_object::{DriverObject, SharedBuffer, Transport};
use ipcz_wire::error::{FrameError, MessageError};
use ipcz_wire::message::Message;
use ipcz_wire::messages::{
    Body, ConnectFromBrokerToNonBroker, ConnectToReferredNonBroker, FlushRouter, MessageId,
    UnknownMessage,
};
use ipcz_wire::types::{DriverObjectIndex, NodeName, SublinkId};
use mojo_wire_kit::{RegionMode, SeededRandom};

use super::super::{BrokerConnector, HandshakeError, Link, NonBrokerConnector, ReferredConnector};
use super::*;

const RECEIVER_NAME: NodeName = NodeName {
    high: 0xc1c1,
    low: 0x3333,
};

fn buffer(buffer_size: u32, mode: RegionMode) -> SharedBuffer {
    SharedBuffer {
        buffer_size,
        mode,
        guid: BUFFER_GUID,
    }
}

fn broker_greeting() -> ConnectFromBrokerToNonBroker {
    ConnectFromBrokerToNonBroker {
        broker_name: BROKER_NAME,
        receiver_name: RECEIVER_NAME,
        protocol_version: 0,
        num_initial_portals: 2,
        buffer: DriverObjectIndex(0),
        padding: 0,
        features: Some(vec![0]),
    }
}

/// A ConnectFromBrokerToNonBroker message with `objects` attached.
fn greeting_message(
    body: ConnectFromBrokerToNonBroker,
    objects: &[DriverObject],
) -> Message<'static> {
    let mut message = Message::new(0, Body::ConnectFromBrokerToNonBroker(body));
    for object in objects {
        message.push_object(*object);
    }
    message
}

/// The broker greeting as bytes with its one buffer fd count.
fn good_greeting() -> Vec<u8> {
    let message = greeting_message(
        broker_greeting(),
        &[DriverObject::SharedBuffer(buffer(
            131072,
            RegionMode::Unsafe,
        ))],
    );
    frame_of(&message, 1)
}

fn fresh_non_broker() -> NonBrokerConnector {
    let mut c = NonBrokerConnector::new(2).expect("connector");
    assert!(c.poll_transmit().is_some());
    c
}

#[test]
fn the_good_greeting_establishes() {
    let mut c = fresh_non_broker();
    c.handle_frame(&good_greeting(), dummies(1))
        .expect("accepted");
    let link = c.finish().expect("established");
    assert_eq!(link.local_name, RECEIVER_NAME);
    assert_eq!(link.remote_name, BROKER_NAME);
}

#[test]
fn every_truncation_of_the_greeting_is_a_typed_error_and_closes_the_fd() {
    let bytes = good_greeting();
    for len in 0..bytes.len() {
        let mut c = fresh_non_broker();
        let (fd, mut probe) = watched_fd();
        let error = c
            .handle_frame(&bytes[..len], vec![fd])
            .expect_err("truncated");
        assert!(
            matches!(
                error,
                HandshakeError::Frame {
                    link: Link::Handshake,
                    ..
                }
            ),
            "{len}: {error:?}"
        );
        assert!(probe.is_closed(), "{len}: fd closed");
        // Sticky.
        assert_eq!(c.handle_frame(&bytes, dummies(1)), Err(error));
    }
}

#[test]
fn a_frame_whose_length_field_is_cut_short_names_the_message_check() {
    // Shorten num_bytes so the message itself is truncated (a valid frame
    // around an invalid message).
    let mut bytes = good_greeting();
    let len = 16 + 24 + 8;
    bytes.truncate(len);
    bytes[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    let mut c = fresh_non_broker();
    assert!(matches!(
        c.handle_frame(&bytes, dummies(1)),
        Err(HandshakeError::Message {
            link: Link::Handshake,
            ..
        })
    ));
}

#[test]
fn trailing_bytes_are_the_callers_error() {
    let mut bytes = good_greeting();
    bytes.extend_from_slice(&[0; 8]);
    let mut c = fresh_non_broker();
    assert!(matches!(
        c.handle_frame(&bytes, dummies(1)),
        Err(HandshakeError::TrailingBytes { given, .. }) if given == bytes.len()
    ));
}

#[test]
fn a_missing_buffer_fd_is_a_typed_error() {
    // The header claims the fd, but none arrived with the frame.
    let mut c = fresh_non_broker();
    assert_eq!(
        c.handle_frame(&good_greeting(), Vec::new()),
        Err(HandshakeError::FdCount {
            link: Link::Handshake,
            claimed: 1,
            given: 0
        })
    );
    // The header claims no fd at all: the driver object's fd is missing.
    let mut bytes = good_greeting();
    bytes[2..4].copy_from_slice(&0u16.to_le_bytes());
    let mut c = fresh_non_broker();
    assert!(matches!(
        c.handle_frame(&bytes, Vec::new()),
        Err(HandshakeError::Message {
            error: MessageError::DriverObjectFds { .. },
            ..
        })
    ));
}

#[test]
fn a_missing_or_mistyped_buffer_object_is_a_typed_error() {
    let message = greeting_message(
        ConnectFromBrokerToNonBroker {
            buffer: DriverObjectIndex::NONE,
            ..broker_greeting()
        },
        &[],
    );
    let mut c = fresh_non_broker();
    assert_eq!(
        c.handle_frame(&frame_of(&message, 0), Vec::new()),
        Err(HandshakeError::MissingDriverObject {
            message: "ConnectFromBrokerToNonBroker",
            field: "buffer"
        })
    );

    let message = greeting_message(
        broker_greeting(),
        &[DriverObject::Transport(Transport::default())],
    );
    let (fd, mut probe) = watched_fd();
    let mut c = fresh_non_broker();
    assert!(matches!(
        c.handle_frame(&frame_of(&message, 1), vec![fd]),
        Err(HandshakeError::WrongDriverObject {
            field: "buffer",
            ..
        })
    ));
    assert!(probe.is_closed());
}

#[test]
fn a_buffer_of_the_wrong_mode_or_size_is_a_typed_error() {
    for (object, fds, expected) in [
        (
            buffer(131072, RegionMode::ReadOnly),
            1,
            HandshakeError::PrimaryBufferMode {
                message: "ConnectFromBrokerToNonBroker",
                field: "buffer",
                mode: RegionMode::ReadOnly,
            },
        ),
        (
            buffer(131072, RegionMode::Writable),
            2,
            HandshakeError::PrimaryBufferMode {
                message: "ConnectFromBrokerToNonBroker",
                field: "buffer",
                mode: RegionMode::Writable,
            },
        ),
        (
            buffer(4096, RegionMode::Unsafe),
            1,
            HandshakeError::PrimaryBufferSize {
                message: "ConnectFromBrokerToNonBroker",
                field: "buffer",
                size: 4096,
            },
        ),
        (
            buffer(16 << 20, RegionMode::Unsafe),
            1,
            HandshakeError::PrimaryBufferSize {
                message: "ConnectFromBrokerToNonBroker",
                field: "buffer",
                size: 16 << 20,
            },
        ),
    ] {
        let message = greeting_message(broker_greeting(), &[DriverObject::SharedBuffer(object)]);
        let mut c = fresh_non_broker();
        assert_eq!(
            c.handle_frame(&frame_of(&message, fds), dummies(fds.into())),
            Err(expected)
        );
    }
}

#[test]
fn zero_and_colliding_names_are_typed_errors() {
    for (body, field, zero) in [
        (
            ConnectFromBrokerToNonBroker {
                broker_name: NodeName::NONE,
                ..broker_greeting()
            },
            "broker_name",
            true,
        ),
        (
            ConnectFromBrokerToNonBroker {
                receiver_name: NodeName::NONE,
                ..broker_greeting()
            },
            "receiver_name",
            true,
        ),
        (
            ConnectFromBrokerToNonBroker {
                receiver_name: BROKER_NAME,
                ..broker_greeting()
            },
            "receiver_name",
            false,
        ),
    ] {
        let message = greeting_message(
            body,
            &[DriverObject::SharedBuffer(buffer(
                131072,
                RegionMode::Unsafe,
            ))],
        );
        let mut c = fresh_non_broker();
        let message_name = "ConnectFromBrokerToNonBroker";
        let expected = if zero {
            HandshakeError::ZeroName {
                message: message_name,
                field,
            }
        } else {
            HandshakeError::NameCollision {
                message: message_name,
                field,
            }
        };
        assert_eq!(
            c.handle_frame(&frame_of(&message, 1), dummies(1)),
            Err(expected)
        );
    }
}

#[test]
fn the_wrong_known_message_fails_and_an_unknown_one_is_ignored() {
    // A broker's own greeting sent to the broker side.
    let mut non_broker = NonBrokerConnector::new(2).expect("connector");
    let own = non_broker.poll_transmit().expect("greeting");
    let mut c = fresh_non_broker();
    assert_eq!(
        c.handle_frame(&own.bytes, own.fds),
        Err(HandshakeError::UnexpectedMessage {
            link: Link::Handshake,
            expected: "ConnectFromBrokerToNonBroker",
            found: MessageId(1),
        })
    );
    // Route traffic before the greeting.
    let flush = Message::new(
        0,
        Body::FlushRouter(FlushRouter {
            sublink: SublinkId(0),
        }),
    );
    let mut c = fresh_non_broker();
    assert!(matches!(
        c.handle_frame(&frame_of(&flush, 0), Vec::new()),
        Err(HandshakeError::UnexpectedMessage {
            found: MessageId(36),
            ..
        })
    ));

    // An unknown id is skipped (its fd closed) and the handshake goes on.
    let mut unknown = Message::new(
        0,
        Body::Unknown(UnknownMessage {
            id: MessageId(200),
            reserved0: [0; 5],
            driver_object_data_array: 0,
            reserved1: [0; 4],
            body: &[0; 8],
            num_fds: 1,
        }),
    );
    unknown.header_version = 0;
    let (fd, mut probe) = watched_fd();
    let mut c = fresh_non_broker();
    c.handle_frame(&frame_of(&unknown, 1), vec![fd])
        .expect("ignored");
    assert!(probe.is_closed());
    assert!(!c.is_established());
    c.handle_frame(&good_greeting(), dummies(1))
        .expect("then accepted");
    assert!(c.is_established());
}

#[test]
fn surplus_fds_are_closed_and_the_buffer_fd_kept() {
    // The object claims 2 fds (Chrome sends 1), and the frame carries a
    // third fd no object claims.
    let mut message = greeting_message(
        broker_greeting(),
        &[DriverObject::SharedBuffer(buffer(
            131072,
            RegionMode::Unsafe,
        ))],
    );
    message.driver_objects[0].fds.count = 2;
    let (kept, mut kept_probe) = watched_fd();
    let (surplus, mut surplus_probe) = watched_fd();
    let (unclaimed, mut unclaimed_probe) = watched_fd();
    let mut c = fresh_non_broker();
    c.handle_frame(&frame_of(&message, 3), vec![kept, surplus, unclaimed])
        .expect("accepted");
    assert!(surplus_probe.is_closed() && unclaimed_probe.is_closed());
    let link = c.finish().expect("established");
    assert!(!kept_probe.is_closed());
    assert_same_socket(
        link.primary_buffer_fd.as_ref().expect("fd"),
        &mut kept_probe,
    );
}

#[test]
fn two_objects_sharing_one_fd_are_a_typed_error() {
    let body = ConnectToReferredNonBroker {
        name: RECEIVER_NAME,
        broker_name: BROKER_NAME,
        referrer_name: REFERRER_NAME,
        broker_protocol_version: 0,
        referrer_protocol_version: 0,
        num_initial_portals: 2,
        broker_link_buffer: DriverObjectIndex(0),
        referrer_link_transport: DriverObjectIndex(1),
        referrer_link_buffer: DriverObjectIndex(2),
        broker_features: Some(vec![0]),
        referrer_features: Some(vec![0]),
    };
    let mut message = Message::new(0, Body::ConnectToReferredNonBroker(body));
    message.push_object(DriverObject::SharedBuffer(buffer(
        131072,
        RegionMode::Unsafe,
    )));
    message.push_object(DriverObject::Transport(Transport::default()));
    message.push_object(DriverObject::SharedBuffer(buffer(
        131072,
        RegionMode::Unsafe,
    )));
    // The referrer link buffer claims the broker link buffer's fd.
    message.driver_objects[2].fds.first = 0;
    let mut c = ReferredConnector::new(2).expect("connector");
    assert_eq!(
        c.handle_frame(&frame_of(&message, 2), dummies(2)),
        Err(HandshakeError::FdClaimedTwice {
            message: "ConnectToReferredNonBroker",
            field: "referrer_link_buffer"
        })
    );
}

#[test]
fn a_hang_up_before_the_greeting_is_a_typed_error_after_it_is_not() {
    let mut c = fresh_non_broker();
    assert_eq!(
        c.handle_closed(),
        Err(HandshakeError::PeerClosed {
            link: Link::Handshake,
            waiting_for: "ConnectFromBrokerToNonBroker"
        })
    );
    assert!(c.finish().is_err());

    let mut c = fresh_non_broker();
    c.handle_frame(&good_greeting(), dummies(1))
        .expect("accepted");
    assert_eq!(c.handle_closed(), Ok(()));
    assert_eq!(
        c.handle_frame(&good_greeting(), dummies(1)),
        Err(HandshakeError::AlreadyEstablished {
            link: Link::Handshake
        })
    );
    assert!(c.finish().is_ok());
    assert!(matches!(c.finish(), Err(HandshakeError::Incomplete { .. })));
}

#[test]
fn finishing_early_is_a_typed_error_and_changes_nothing() {
    let mut c = fresh_non_broker();
    assert_eq!(
        c.finish().map(|_| ()),
        Err(HandshakeError::Incomplete {
            waiting_for: "ConnectFromBrokerToNonBroker"
        })
    );
    c.handle_frame(&good_greeting(), dummies(1))
        .expect("still accepts");
}

#[test]
fn bad_constructor_arguments_are_typed_errors() {
    assert!(matches!(
        NonBrokerConnector::new(13),
        Err(HandshakeError::InvalidConfig { .. })
    ));
    assert!(matches!(
        ReferredConnector::new(13),
        Err(HandshakeError::InvalidConfig { .. })
    ));
    for (name, size) in [(NodeName::NONE, 131072), (BROKER_NAME, 4096)] {
        let (primary, mapping) = primary_buffer(dev_null());
        let primary = PrimaryBuffer {
            buffer: SharedBuffer {
                buffer_size: size,
                ..primary.buffer
            },
            ..primary
        };
        assert!(matches!(
            BrokerConnector::new(name, 2, primary, &mapping, &mut SeededRandom::new(1)),
            Err(HandshakeError::InvalidConfig { .. })
        ));
    }
    // A mapping too small to hold the primary buffer.
    let (primary, _) = primary_buffer(dev_null());
    assert!(matches!(
        BrokerConnector::new(
            BROKER_NAME,
            2,
            primary,
            &HeapMemory::new(4096),
            &mut SeededRandom::new(1)
        ),
        Err(HandshakeError::PrimaryBufferTooSmall { size: 4096 })
    ));
}

#[test]
fn a_broken_header_is_a_frame_error() {
    let mut bytes = good_greeting();
    bytes[0..2].copy_from_slice(&4u16.to_le_bytes());
    let mut c = fresh_non_broker();
    assert!(matches!(
        c.handle_frame(&bytes, dummies(1)),
        Err(HandshakeError::Frame {
            error: FrameError::HeaderSize { size: 4 },
            ..
        })
    ));
}

#[test]
fn a_greeting_without_its_v1_block_has_no_features() {
    let message = greeting_message(
        ConnectFromBrokerToNonBroker {
            features: None,
            ..broker_greeting()
        },
        &[DriverObject::SharedBuffer(buffer(
            131072,
            RegionMode::Unsafe,
        ))],
    );
    let bytes = frame_of(&message, 1);
    assert_eq!(bytes.len(), 184 - 24, "no V1 block, no features array");
    let mut c = fresh_non_broker();
    c.handle_frame(&bytes, dummies(1)).expect("accepted");
    assert_eq!(c.finish().map(|l| l.remote_features), Ok(0));
}

#[test]
fn the_referrer_refuses_answers_for_other_referrals_and_other_messages() {
    use ipcz_wire::messages::NonBrokerReferralRejected;
    use ipcz_wire::types::ReferralId;

    use super::super::ReferrerConnector;

    let fresh = || {
        let mut c = ReferrerConnector::new(REFERRER_NAME, ReferralId(4), 2, dev_null(), 0)
            .expect("referrer");
        assert_eq!(c.poll_transmit().map(|t| t.link), Some(Link::Broker));
        c
    };
    let rejected = |id| {
        frame_of(
            &Message::new(
                0,
                Body::NonBrokerReferralRejected(NonBrokerReferralRejected { referral_id: id }),
            ),
            0,
        )
    };
    let mut c = fresh();
    assert_eq!(
        c.handle_frame(&rejected(ReferralId(5)), Vec::new()),
        Err(HandshakeError::ReferralMismatch {
            expected: ReferralId(4),
            found: ReferralId(5)
        })
    );
    let mut c = fresh();
    let flush = Message::new(
        0,
        Body::FlushRouter(FlushRouter {
            sublink: SublinkId(0),
        }),
    );
    assert!(matches!(
        c.handle_frame(&frame_of(&flush, 0), Vec::new()),
        Err(HandshakeError::UnexpectedMessage {
            link: Link::Broker,
            ..
        })
    ));
    let mut c = fresh();
    assert_eq!(
        c.handle_closed(),
        Err(HandshakeError::PeerClosed {
            link: Link::Broker,
            waiting_for: "NonBrokerReferralAccepted or NonBrokerReferralRejected"
        })
    );
}
