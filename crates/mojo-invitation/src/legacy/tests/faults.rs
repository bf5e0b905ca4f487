//! Fault injection: truncated, mistyped, misnamed and fd-miscounted frames
//! and early hang-ups end in the typed error naming them, close every fd
//! handed in, and stay failed.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use mojo_legacy_wire::NodeName;
use mojo_legacy_wire::Profile;
use mojo_legacy_wire::Token;
use mojo_legacy_wire::broker::BrokerMessage;
use mojo_legacy_wire::channel::{ChannelHeader, ControlMessage, Frame, MessageType, UpgradeOffer};
use mojo_legacy_wire::node::{
    AcceptBrokerClient, AcceptInvitation, AcceptInvitee, NodeMessage, NodeMessageType,
};
use mojo_wire_kit::{Guid, SeededRandom};

use super::super::{
    BrokerConfig, BrokerConnector, BrokerHost, BufferError, ClientConfig, ClientConnector,
    FrameKind, HandshakeError, Link, MAX_BUFFER_REQUEST_SIZE, MAX_PENDING_BUFFER_REQUESTS,
    RegionFds, SyncBrokerClient,
};
use super::{BROKER_NAME, CLIENT_NAME, dev_null, dev_null_rw, probe};

/// An fd whose closing the test can observe: the other end reads EOF.
fn watched() -> (OwnedFd, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    b.set_nonblocking(true).expect("nonblocking");
    (a.into(), b)
}

fn closed(peer: &mut UnixStream) -> bool {
    matches!(peer.read(&mut [0u8; 1]), Ok(0))
}

fn node(profile: Profile, m: NodeMessage<'_>, num_handles: u16) -> Vec<u8> {
    let mut out = Vec::new();
    m.encode_frame(profile, num_handles, &mut out)
        .expect("encode");
    out
}

fn invitation(token: Token, invitee_name: NodeName) -> Vec<u8> {
    node(
        Profile::Libchrome,
        NodeMessage::AcceptInvitation(AcceptInvitation {
            token,
            invitee_name,
            capabilities: Some(Default::default()),
            trailing: &[],
        }),
        0,
    )
}

fn invitee(inviter_name: NodeName) -> Vec<u8> {
    node(
        Profile::Libchrome,
        NodeMessage::AcceptInvitee(AcceptInvitee {
            inviter_name,
            token: Token::new(9, 9),
            capabilities: Some(Default::default()),
            trailing: &[],
        }),
        0,
    )
}

fn broker_client(broker_name: NodeName, num_handles: u16) -> Vec<u8> {
    node(
        Profile::Libchrome,
        NodeMessage::AcceptBrokerClient(AcceptBrokerClient {
            broker_name,
            capabilities: Some(Default::default()),
            trailing: &[],
        }),
        num_handles,
    )
}

fn broker() -> BrokerConnector {
    let mut b = BrokerConnector::new(
        BrokerConfig {
            profile: Profile::Libchrome,
            local_name: BROKER_NAME,
            attachments: vec![],
        },
        dev_null(),
        &mut SeededRandom::new(3),
    )
    .expect("broker");
    while b.poll_transmit().is_some() {}
    b
}

fn client_after_init() -> ClientConnector {
    let mut c = ClientConnector::new(ClientConfig {
        profile: Profile::Libchrome,
        local_name: CLIENT_NAME,
        attachments: vec![],
    })
    .expect("client");
    let mut init = Vec::new();
    BrokerMessage::Init { trailing: &[] }
        .encode_frame(Profile::Libchrome, &mut init)
        .unwrap();
    c.handle_bootstrap_read(&init, vec![dev_null()])
        .expect("INIT");
    c
}

fn client_awaiting_broker_client() -> ClientConnector {
    let mut c = client_after_init();
    c.handle_node_frame(&invitee(BROKER_NAME), vec![]).unwrap();
    while c.poll_transmit().is_some() {}
    c
}

#[test]
fn broker_rejects_a_truncated_accept_invitation() {
    let mut b = broker();
    let mut bytes = invitation(b.token(), CLIENT_NAME);
    // Cut the body to 31 bytes (V0 is 32) and fix num_bytes to match.
    bytes.truncate(8 + 8 + 31);
    bytes[0] = 47;
    let e = b.handle_node_frame(&bytes, vec![]).unwrap_err();
    let HandshakeError::Malformed { link, error } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(*link, Link::NodeChannel);
    assert_eq!(error.field(), "ACCEPT_INVITATION body");
    // Sticky: even the right message is refused now.
    let good = invitation(b.token(), CLIENT_NAME);
    assert_eq!(b.handle_node_frame(&good, vec![]), Err(e.clone()));
    assert_eq!(b.error(), Some(&e));
    assert!(b.established().is_none());
}

#[test]
fn broker_rejects_partial_and_joined_frames() {
    let mut b = broker();
    let good = invitation(b.token(), CLIENT_NAME);
    let e = b
        .handle_node_frame(&good[..good.len() - 1], vec![])
        .unwrap_err();
    assert!(matches!(e, HandshakeError::Malformed { .. }), "{e:?}");

    let mut b = broker();
    let mut two = invitation(b.token(), CLIENT_NAME);
    two.extend_from_slice(&two.clone());
    let e = b.handle_node_frame(&two, vec![]).unwrap_err();
    assert_eq!(
        e,
        HandshakeError::NotOneFrame {
            link: Link::NodeChannel,
            frame_len: 56,
            given: 112
        }
    );
}

#[test]
fn broker_rejects_wrong_types_tokens_and_names() {
    let mut b = broker();
    let e = b
        .handle_node_frame(&invitee(CLIENT_NAME), vec![])
        .unwrap_err();
    assert_eq!(
        e,
        HandshakeError::UnexpectedMessage {
            link: Link::NodeChannel,
            expected: "ACCEPT_INVITATION",
            found: FrameKind::Node(NodeMessageType::ACCEPT_INVITEE),
        }
    );

    let mut b = broker();
    let wrong = Token::new(1, 1);
    let e = b
        .handle_node_frame(&invitation(wrong, CLIENT_NAME), vec![])
        .unwrap_err();
    assert_eq!(
        e,
        HandshakeError::TokenMismatch {
            expected: b.token(),
            found: wrong
        }
    );

    for name in [NodeName::INVALID, BROKER_NAME] {
        let mut b = broker();
        let e = b
            .handle_node_frame(&invitation(b.token(), name), vec![])
            .unwrap_err();
        assert_eq!(
            e,
            HandshakeError::InvalidName {
                field: "accept_invitation.invitee_name",
                name
            }
        );
    }
}

#[test]
fn fd_count_mismatches_fail_and_close_the_fds() {
    // Header claims one fd, none handed in.
    let mut b = broker();
    let claims_one = node(
        Profile::Libchrome,
        NodeMessage::AcceptInvitation(AcceptInvitation {
            token: b.token(),
            invitee_name: CLIENT_NAME,
            capabilities: None,
            trailing: &[],
        }),
        1,
    );
    let e = b.handle_node_frame(&claims_one, vec![]).unwrap_err();
    assert_eq!(
        e,
        HandshakeError::FdCount {
            link: Link::NodeChannel,
            what: "channel.num_handles",
            expected: 1,
            actual: 0
        }
    );
    // Header claims none, one handed in: refused and closed.
    let mut b = broker();
    let (fd, mut peer) = watched();
    let e = b
        .handle_node_frame(&invitation(b.token(), CLIENT_NAME), vec![fd])
        .unwrap_err();
    assert!(
        matches!(
            e,
            HandshakeError::FdCount {
                expected: 0,
                actual: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(closed(&mut peer));
}

#[test]
fn an_ignored_message_closes_its_fds() {
    let mut b = broker();
    let unknown = node(
        Profile::Libchrome,
        NodeMessage::Unknown {
            message_type: NodeMessageType(77),
            body: &[1, 2, 3],
        },
        1,
    );
    let (fd, mut peer) = watched();
    b.handle_node_frame(&unknown, vec![fd])
        .expect("unknown types are ignored");
    assert!(closed(&mut peer));
    assert!(b.poll_transmit().is_none());
    b.handle_node_frame(&invitation(b.token(), CLIENT_NAME), vec![])
        .expect("still accepting");
    assert!(b.established().is_some());
}

#[test]
fn upgrade_offers_are_rejected_and_other_control_messages_fail() {
    let mut b = broker();
    let mut offer = Vec::new();
    ControlMessage::UpgradeOffer(UpgradeOffer {
        version: 2,
        num_pages: 4,
        trailing: &[],
    })
    .encode_frame(2, &mut offer)
    .unwrap();
    let (memfd, mut memfd_peer) = watched();
    let (eventfd, mut eventfd_peer) = watched();
    b.handle_node_frame(&offer, vec![memfd, eventfd]).unwrap();
    assert!(closed(&mut memfd_peer) && closed(&mut eventfd_peer));
    let reject = b.poll_transmit().expect("UPGRADE_REJECT");
    assert_eq!(reject.link, Link::NodeChannel);
    assert_eq!(
        reject.bytes,
        [16, 0, 0, 0, 16, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        "spec §1.6: a 16-byte full header, type 4, nothing else"
    );

    // A short offer is ignored, as Chromium ignores it.
    let mut short = Vec::new();
    ControlMessage::ShortUpgradeOffer { payload: &[1] }
        .encode_frame(0, &mut short)
        .unwrap();
    b.handle_node_frame(&short, vec![]).unwrap();
    assert!(b.poll_transmit().is_none());

    for t in [MessageType::UPGRADE_ACCEPT, MessageType(9)] {
        let mut b = broker();
        let mut bytes = Vec::new();
        Frame {
            header: ChannelHeader::control(t, 0),
            payload: &[],
        }
        .encode(&mut bytes)
        .unwrap();
        let e = b.handle_node_frame(&bytes, vec![]).unwrap_err();
        assert_eq!(
            e,
            HandshakeError::UnexpectedMessage {
                link: Link::NodeChannel,
                expected: "ACCEPT_INVITATION",
                found: FrameKind::Control(t)
            }
        );
    }
}

#[test]
fn early_hang_ups_are_typed() {
    let mut b = broker();
    assert_eq!(
        b.handle_node_closed(),
        Err(HandshakeError::PeerClosed {
            link: Link::NodeChannel,
            waiting_for: "ACCEPT_INVITATION"
        })
    );
    let mut c = ClientConnector::new(ClientConfig {
        profile: Profile::Libchrome,
        local_name: CLIENT_NAME,
        attachments: vec![],
    })
    .unwrap();
    assert_eq!(
        c.handle_bootstrap_closed(),
        Err(HandshakeError::PeerClosed {
            link: Link::Bootstrap,
            waiting_for: "INIT"
        })
    );
    let mut c = client_awaiting_broker_client();
    assert_eq!(
        c.handle_node_closed(),
        Err(HandshakeError::PeerClosed {
            link: Link::NodeChannel,
            waiting_for: "ACCEPT_BROKER_CLIENT"
        })
    );
    // After INIT the bootstrap socket closing only fails later allocations.
    let mut c = client_awaiting_broker_client();
    c.handle_bootstrap_closed().unwrap();
    let sb = c.sync_broker().unwrap();
    assert_eq!(sb.request_buffer(4096), Err(BufferError::Closed));
}

#[test]
fn client_rejects_bad_init_reads_and_closes_the_fds() {
    let config = ClientConfig {
        profile: Profile::Libchrome,
        local_name: CLIENT_NAME,
        attachments: vec![],
    };
    let mut desktop_init = Vec::new();
    BrokerMessage::Init { trailing: &[] }
        .encode_frame(Profile::Desktop, &mut desktop_init)
        .unwrap();
    let mut init = Vec::new();
    BrokerMessage::Init { trailing: &[] }
        .encode_frame(Profile::Libchrome, &mut init)
        .unwrap();
    let mut response = Vec::new();
    BrokerMessage::BufferResponse {
        guid: Guid::NONE,
        trailing: &[],
    }
    .encode_frame(Profile::Libchrome, &mut response)
    .unwrap();
    let not_init = &response[..16];
    let cases: [(&[u8], usize, &str); 4] = [
        (&desktop_init, 1, "broker read size"),
        (&init, 0, "broker read fds"),
        (&init, 2, "broker read fds"),
        (not_init, 1, "broker.type"),
    ];
    for (bytes, num_fds, field) in cases {
        let mut c = ClientConnector::new(config.clone()).unwrap();
        let mut peers = Vec::new();
        let fds = (0..num_fds)
            .map(|_| {
                let (fd, peer) = watched();
                peers.push(peer);
                fd
            })
            .collect();
        let e = c.handle_bootstrap_read(bytes, fds).unwrap_err();
        let HandshakeError::BadBootstrapRead(w) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(w.field(), field);
        assert!(peers.iter_mut().all(closed));
        assert!(c.sync_broker().is_none());
        assert_eq!(
            c.handle_bootstrap_read(&init, vec![dev_null()]).err(),
            Some(e)
        );
    }
}

#[test]
fn client_rejects_out_of_order_and_misnamed_messages() {
    let mut c = client_after_init();
    let e = c
        .handle_node_frame(&broker_client(BROKER_NAME, 0), vec![])
        .unwrap_err();
    assert_eq!(
        e,
        HandshakeError::UnexpectedMessage {
            link: Link::NodeChannel,
            expected: "ACCEPT_INVITEE",
            found: FrameKind::Node(NodeMessageType::ACCEPT_BROKER_CLIENT)
        }
    );
    let mut c = client_awaiting_broker_client();
    let e = c
        .handle_node_frame(&invitee(BROKER_NAME), vec![])
        .unwrap_err();
    assert!(
        matches!(
            e,
            HandshakeError::UnexpectedMessage {
                expected: "ACCEPT_BROKER_CLIENT",
                ..
            }
        ),
        "a second ACCEPT_INVITEE: {e:?}"
    );
    for name in [NodeName::INVALID, CLIENT_NAME] {
        let mut c = client_after_init();
        let e = c.handle_node_frame(&invitee(name), vec![]).unwrap_err();
        assert!(
            matches!(e, HandshakeError::InvalidName { name: n, .. } if n == name),
            "{e:?}"
        );
    }
    let mut c = client_awaiting_broker_client();
    let e = c
        .handle_node_frame(&broker_client(NodeName::INVALID, 0), vec![])
        .unwrap_err();
    assert!(matches!(e, HandshakeError::InvalidName { .. }), "{e:?}");
    let mut c = client_awaiting_broker_client();
    let other = NodeName::new(5, 5);
    let e = c
        .handle_node_frame(&broker_client(other, 0), vec![])
        .unwrap_err();
    assert_eq!(
        e,
        HandshakeError::BrokerIsNotInviter {
            inviter: BROKER_NAME,
            broker: other
        }
    );
    // More than one fd on ACCEPT_BROKER_CLIENT is malformed (spec §6.1).
    let mut c = client_awaiting_broker_client();
    let e = c
        .handle_node_frame(&broker_client(BROKER_NAME, 2), vec![dev_null(), dev_null()])
        .unwrap_err();
    assert!(matches!(e, HandshakeError::Malformed { .. }), "{e:?}");
    // One fd from the broker-as-inviter is not needed: closed, accepted.
    let mut c = client_awaiting_broker_client();
    let (fd, mut peer) = watched();
    c.handle_node_frame(&broker_client(BROKER_NAME, 1), vec![fd])
        .unwrap();
    assert!(closed(&mut peer));
    assert!(c.established().is_some());
}

#[test]
fn invalid_configs_are_refused() {
    let e = BrokerConnector::new(
        BrokerConfig {
            profile: Profile::Libchrome,
            local_name: NodeName::INVALID,
            attachments: vec![],
        },
        dev_null(),
        &mut SeededRandom::new(1),
    )
    .unwrap_err();
    assert!(matches!(e, HandshakeError::InvalidConfig { .. }));
    let dup = super::super::AttachmentName::numeric_range(2)
        .into_iter()
        .chain(super::super::AttachmentName::numeric_range(1))
        .collect();
    let e = BrokerConnector::new(
        BrokerConfig {
            profile: Profile::Libchrome,
            local_name: BROKER_NAME,
            attachments: dup,
        },
        dev_null(),
        &mut SeededRandom::new(1),
    )
    .unwrap_err();
    assert_eq!(
        e,
        HandshakeError::InvalidConfig {
            field: "attachments (duplicate name)"
        }
    );
    assert!(super::super::AttachmentName::from_str_name("").is_none());
}

fn request(profile: Profile, size: u32) -> Vec<u8> {
    let mut out = Vec::new();
    BrokerMessage::BufferRequest {
        size,
        trailing: &[],
    }
    .encode_frame(profile, &mut out)
    .unwrap();
    out
}

fn response_kind(t: &super::super::Transmit) -> (usize, Guid, usize) {
    let (f, _) = mojo_legacy_wire::broker::BrokerFrame::decode_exact(&t.bytes).unwrap();
    let BrokerMessage::BufferResponse { guid, .. } = f.message else {
        panic!("{f:?}")
    };
    (t.bytes.len(), guid, t.fds.len())
}

#[test]
fn host_answers_unusable_requests_with_the_failure_response() {
    let mut host = BrokerHost::new(Profile::Libchrome);
    let too_big = u32::try_from(MAX_BUFFER_REQUEST_SIZE + 1).unwrap();
    for size in [0, too_big] {
        host.handle_frame(&request(Profile::Libchrome, size), vec![])
            .unwrap();
        assert!(host.poll_region_request().is_none());
        let t = host.poll_transmit().expect("failure response");
        assert_eq!(response_kind(&t), (32, Guid::NONE, 0));
    }
    // A request too short to hold its size: answered, not left hanging.
    let mut short = request(Profile::Libchrome, 1);
    short.truncate(18);
    short[0] = 18;
    host.handle_frame(&short, vec![]).unwrap();
    assert_eq!(
        response_kind(&host.poll_transmit().unwrap()),
        (32, Guid::NONE, 0)
    );
    // Other broker types are ignored, as Chromium's host ignores them.
    let mut init = Vec::new();
    BrokerMessage::Init { trailing: &[] }
        .encode_frame(Profile::Libchrome, &mut init)
        .unwrap();
    init[4] = 0; // num_handles 0: the client cannot send fds here
    host.handle_frame(&init, vec![]).unwrap();
    assert!(host.poll_transmit().is_none());
    assert!(host.is_idle());
}

#[test]
fn host_refuses_fds_and_floods() {
    let mut host = BrokerHost::new(Profile::Libchrome);
    let mut with_fd = request(Profile::Libchrome, 4096);
    with_fd[4] = 1;
    let (fd, mut peer) = watched();
    assert_eq!(
        host.handle_frame(&with_fd, vec![fd]),
        Err(BufferError::UnexpectedFds { count: 1 })
    );
    assert!(closed(&mut peer));
    // Sticky.
    assert_eq!(
        host.handle_frame(&request(Profile::Libchrome, 1), vec![]),
        Err(BufferError::UnexpectedFds { count: 1 })
    );

    let mut host = BrokerHost::new(Profile::Libchrome);
    for _ in 0..MAX_PENDING_BUFFER_REQUESTS {
        host.handle_frame(&request(Profile::Libchrome, 64), vec![])
            .unwrap();
    }
    assert_eq!(
        host.handle_frame(&request(Profile::Libchrome, 64), vec![]),
        Err(BufferError::TooManyPendingRequests {
            limit: MAX_PENDING_BUFFER_REQUESTS
        })
    );
}

#[test]
fn host_sends_answers_in_request_order_and_checks_modes() {
    let mut host = BrokerHost::new(Profile::Desktop);
    host.handle_frame(&request(Profile::Desktop, 100), vec![])
        .unwrap();
    host.handle_frame(&request(Profile::Desktop, 200), vec![])
        .unwrap();
    let first = host.poll_region_request().unwrap();
    let second = host.poll_region_request().unwrap();
    assert_eq!((first.size, second.size), (100, 200));

    // Wrong modes (swapped fds): refused, closed, still pending.
    let (rw_watch, mut rw_peer) = watched();
    let swapped = RegionFds {
        guid: Guid::new(1, 1),
        read_write: dev_null(),
        read_only: rw_watch,
    };
    let e = host
        .answer_buffer_request(second.id, swapped, &probe)
        .unwrap_err();
    assert_eq!(
        e,
        BufferError::WrongFdMode {
            index: 0,
            expected: super::super::FdAccess::ReadWrite,
            found: Some(super::super::FdAccess::ReadOnly)
        }
    );
    assert!(closed(&mut rw_peer));
    let zero = RegionFds {
        guid: Guid::NONE,
        read_write: dev_null_rw(),
        read_only: dev_null(),
    };
    assert_eq!(
        host.answer_buffer_request(second.id, zero, &probe),
        Err(BufferError::ZeroGuid)
    );

    let good = |n| RegionFds {
        guid: Guid::new(7, n),
        read_write: dev_null_rw(),
        read_only: dev_null(),
    };
    host.answer_buffer_request(second.id, good(2), &probe)
        .unwrap();
    assert!(
        host.poll_transmit().is_none(),
        "the first request is still open"
    );
    host.fail_buffer_request(first.id).unwrap();
    assert_eq!(
        response_kind(&host.poll_transmit().unwrap()),
        (40, Guid::NONE, 0)
    );
    assert_eq!(
        response_kind(&host.poll_transmit().unwrap()),
        (40, Guid::new(7, 2), 2)
    );
    assert_eq!(
        host.answer_buffer_request(first.id, good(3), &probe),
        Err(BufferError::UnknownRequest { id: first.id.0 })
    );
    assert!(host.is_idle());

    host.handle_frame(&request(Profile::Desktop, 300), vec![])
        .unwrap();
    host.handle_closed();
    assert!(host.is_idle() && host.is_closed());
    assert_eq!(
        host.handle_frame(&request(Profile::Desktop, 1), vec![]),
        Err(BufferError::Closed)
    );
}

fn response(profile: Profile, guid: Guid) -> Vec<u8> {
    let mut out = Vec::new();
    BrokerMessage::BufferResponse {
        guid,
        trailing: &[],
    }
    .encode_frame(profile, &mut out)
    .unwrap();
    out
}

#[test]
fn sync_client_rejects_bad_responses_and_closes_the_fds() {
    let guid = Guid::new(3, 4);
    let mut sb = SyncBrokerClient::new(Profile::Libchrome);
    assert_eq!(
        sb.handle_response_read(&response(Profile::Libchrome, guid), vec![], &probe)
            .unwrap_err(),
        BufferError::NoRequestOutstanding
    );
    let ask = |sb: &mut SyncBrokerClient| {
        sb.request_buffer(4096).unwrap();
        let t = sb.poll_transmit().unwrap();
        assert_eq!(t.bytes, request(Profile::Libchrome, 4096));
    };

    ask(&mut sb);
    let e = sb
        .handle_response_read(&response(Profile::Libchrome, Guid::NONE), vec![], &probe)
        .unwrap_err();
    assert_eq!(e, BufferError::AllocationFailed);

    // A desktop-sized response for a libchrome client.
    ask(&mut sb);
    let e = sb
        .handle_response_read(
            &response(Profile::Desktop, guid),
            vec![dev_null_rw(), dev_null()],
            &probe,
        )
        .unwrap_err();
    assert!(
        matches!(e, BufferError::BadResponse(ref w) if w.field() == "broker read size"),
        "{e:?}"
    );

    // One fd, three fds: wrong counts, every fd closed.
    for n in [1, 3] {
        ask(&mut sb);
        let mut peers = Vec::new();
        let fds = (0..n)
            .map(|_| {
                let (fd, peer) = watched();
                peers.push(peer);
                fd
            })
            .collect();
        let e = sb
            .handle_response_read(&response(Profile::Libchrome, guid), fds, &probe)
            .unwrap_err();
        assert!(
            matches!(e, BufferError::BadResponse(ref w) if w.field() == "broker read fds"),
            "{e:?}"
        );
        assert!(peers.iter_mut().all(closed));
    }

    // Zero guid with fds.
    ask(&mut sb);
    let e = sb
        .handle_response_read(
            &response(Profile::Libchrome, Guid::NONE),
            vec![dev_null_rw(), dev_null()],
            &probe,
        )
        .unwrap_err();
    assert_eq!(e, BufferError::ZeroGuid);

    // Swapped modes.
    ask(&mut sb);
    let e = sb
        .handle_response_read(
            &response(Profile::Libchrome, guid),
            vec![dev_null(), dev_null_rw()],
            &probe,
        )
        .unwrap_err();
    assert!(
        matches!(e, BufferError::WrongFdMode { index: 0, .. }),
        "{e:?}"
    );

    ask(&mut sb);
    let grant = sb
        .handle_response_read(
            &response(Profile::Libchrome, guid),
            vec![dev_null_rw(), dev_null()],
            &probe,
        )
        .unwrap();
    assert_eq!((grant.guid, grant.size), (guid, 4096));
    assert!(sb.is_idle());
}

/// Hands out the scripted u64s, in order, then ones.
struct Scripted(std::collections::VecDeque<u64>);

impl mojo_wire_kit::RandomSource for Scripted {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.0.pop_front().unwrap_or(1).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// §10 step 1 (and step 5): the invitation token comes from the injected
/// random source, is never zero and never the broker's own name (the C++
/// broker uses it as the invitee's temporary name); `ACCEPT_INVITEE`
/// carries `{BN, T, 0}`.
#[test]
fn section10_step1_token_is_random_nonzero_and_not_the_broker_name() {
    let mut rng = Scripted([0, 0, 0xb0b0, 0x1111, 0x7, 0x9].into_iter().collect());
    assert_eq!(BROKER_NAME, NodeName::new(0xb0b0, 0x1111));
    let mut broker = BrokerConnector::new(
        BrokerConfig {
            profile: Profile::Libchrome,
            local_name: BROKER_NAME,
            attachments: vec![],
        },
        dev_null(),
        &mut rng,
    )
    .unwrap();
    assert_eq!(broker.token(), Token::new(0x7, 0x9));
    let sent: Vec<_> = std::iter::from_fn(|| broker.poll_transmit()).collect();
    let invitee = sent
        .iter()
        .find_map(|t| {
            let (f, _) = mojo_legacy_wire::node::NodeFrame::decode(&t.bytes).ok()?;
            match f.content {
                mojo_legacy_wire::node::NodeChannelContent::Message(
                    NodeMessage::AcceptInvitee(i),
                ) => Some((i.inviter_name, i.token, i.capabilities)),
                _ => None,
            }
        })
        .expect("ACCEPT_INVITEE");
    assert_eq!(invitee.0, BROKER_NAME);
    assert_eq!(invitee.1, Token::new(0x7, 0x9));
    assert_eq!(
        invitee.2,
        Some(mojo_legacy_wire::node::NodeCapabilities::empty()),
        "advertised capabilities 0"
    );
}
