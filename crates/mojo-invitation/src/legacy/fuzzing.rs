//! Oracles for the fuzz targets `fuzz/fuzz_targets/legacy_invitation_*.rs`
//! (and for the unit tests that run them under stable): drive one role with
//! arbitrary input and check that nothing panics, that every frame it emits
//! is canonical for the wire crate, and that a failed handshake stays failed.
//!
//! Input is a sequence of records `[op, num_fds, len_lo, len_hi, bytes…]`;
//! `op & 3` picks node-channel frame, bootstrap frame, node-channel close or
//! bootstrap close. Fds come from the caller (`make_fd`), since making one
//! is a system call; access modes are faked (even calls read-write, odd
//! calls read-only), so well-formed region answers pass.

use std::cell::Cell;
use std::os::fd::{BorrowedFd, OwnedFd};

use mojo_legacy_wire::NodeName;
use mojo_legacy_wire::Profile;
use mojo_legacy_wire::broker::{BrokerFrame, BrokerMessage};
use mojo_legacy_wire::node::{
    AcceptBrokerClient, AcceptInvitation, AcceptInvitee, NodeFrame, NodeMessage,
};
use mojo_wire_kit::{Guid, SeededRandom};

use super::{
    BrokerConfig, BrokerConnector, ClientConfig, ClientConnector, FdAccess, HandshakeError, Link,
    RegionFds, Transmit,
};

/// The broker's name in fuzzing runs (and its seed, so the token is fixed
/// and a corpus can hold a valid `ACCEPT_INVITATION`).
pub const BROKER_NAME: NodeName = NodeName::new(0xb0b0, 1);
/// The seed of the broker's token.
pub const BROKER_SEED: u64 = 1;
/// The client's name in fuzzing runs.
pub const CLIENT_NAME: NodeName = NodeName::new(0xc1c1, 2);

struct Record<'a> {
    op: u8,
    num_fds: usize,
    bytes: &'a [u8],
}

fn records(mut data: &[u8]) -> impl Iterator<Item = Record<'_>> {
    std::iter::from_fn(move || {
        let [op, num_fds, lo, hi, rest @ ..] = data else {
            return None;
        };
        let len = usize::from(u16::from_le_bytes([*lo, *hi])).min(rest.len());
        let (bytes, tail) = rest.split_at(len);
        data = tail;
        Some(Record {
            op: *op,
            // At most 4 fds per record: enough for every rule, cheap to make.
            num_fds: usize::from(*num_fds % 5),
            bytes,
        })
    })
}

fn check_canonical(t: &Transmit) {
    let used = match t.link {
        Link::Bootstrap => {
            BrokerFrame::decode_exact(&t.bytes).map(|(f, n)| (f.header.num_handles(), n))
        }
        Link::NodeChannel => {
            NodeFrame::decode_exact(&t.bytes).map(|(f, n)| (f.header.num_handles(), n))
        }
    };
    match used {
        Ok((num_handles, n)) => {
            assert_eq!(n, t.bytes.len(), "an emitted frame is exactly one frame");
            assert_eq!(
                usize::from(num_handles),
                t.fds.len(),
                "fds match the header"
            );
        }
        Err(e) => panic!("emitted a non-canonical frame: {e}"),
    }
}

fn alternating_probe() -> impl Fn(BorrowedFd<'_>) -> Option<FdAccess> {
    let calls = Cell::new(0u32);
    move |_| {
        let n = calls.get();
        calls.set(n.wrapping_add(1));
        Some(if n % 2 == 0 {
            FdAccess::ReadWrite
        } else {
            FdAccess::ReadOnly
        })
    }
}

fn profile_of(data: &[u8]) -> Profile {
    if data.first().is_some_and(|b| b & 0x80 != 0) {
        Profile::Desktop
    } else {
        Profile::Libchrome
    }
}

/// Drives a [`BrokerConnector`] (libchrome profile unless the first byte's
/// top bit is set) with `data`. Returns whether it ended established.
pub fn drive_broker(data: &[u8], make_fd: &mut dyn FnMut() -> OwnedFd) -> bool {
    let config = BrokerConfig {
        profile: profile_of(data),
        local_name: BROKER_NAME,
        attachments: super::AttachmentName::numeric_range(2),
    };
    let Ok(mut broker) =
        BrokerConnector::new(config, make_fd(), &mut SeededRandom::new(BROKER_SEED))
    else {
        panic!("a valid config is accepted")
    };
    let probe = alternating_probe();
    let mut failed: Option<HandshakeError> = None;
    for record in records(data) {
        let fds: Vec<OwnedFd> = (0..record.num_fds).map(|_| make_fd()).collect();
        match record.op & 3 {
            0 => {
                let r = broker.handle_node_frame(record.bytes, fds);
                match (&failed, r) {
                    (Some(before), r) => assert_eq!(r.as_ref().err(), Some(before), "sticky"),
                    (None, Err(e)) if e != HandshakeError::AlreadyEstablished => failed = Some(e),
                    (None, _) => {}
                }
            }
            1 => {
                let _ = broker.handle_bootstrap_frame(record.bytes, fds);
            }
            2 => {
                let _ = broker.handle_node_closed();
            }
            _ => broker.handle_bootstrap_closed(),
        }
        while let Some(request) = broker.host().poll_region_request() {
            let region = RegionFds {
                guid: Guid::new(1, u64::from(request.size)),
                read_write: make_fd(),
                read_only: make_fd(),
            };
            let _ = broker
                .host()
                .answer_buffer_request(request.id, region, &probe);
        }
        while let Some(t) = broker.poll_transmit() {
            check_canonical(&t);
        }
        assert!(
            broker.host().pending_requests() <= super::MAX_PENDING_BUFFER_REQUESTS,
            "bounded"
        );
    }
    if failed.is_some() {
        assert!(
            broker.established().is_none(),
            "a failed handshake is not established"
        );
    }
    broker.established().is_some()
}

/// Drives a [`ClientConnector`] with `data`: bootstrap records are the
/// `INIT` read first, then `BUFFER_RESPONSE` reads (a request is made
/// before each). Returns whether it ended established.
pub fn drive_client(data: &[u8], make_fd: &mut dyn FnMut() -> OwnedFd) -> bool {
    let config = ClientConfig {
        profile: profile_of(data),
        local_name: CLIENT_NAME,
        attachments: vec![],
    };
    let Ok(mut client) = ClientConnector::new(config) else {
        panic!("a valid config is accepted")
    };
    let probe = alternating_probe();
    for record in records(data) {
        let fds: Vec<OwnedFd> = (0..record.num_fds).map(|_| make_fd()).collect();
        match record.op & 3 {
            0 => {
                let _ = client.handle_node_frame(record.bytes, fds);
            }
            1 => match client.sync_broker() {
                None => {
                    let _ = client.handle_bootstrap_read(record.bytes, fds);
                }
                Some(sync) => {
                    let _ = sync.request_buffer(4096);
                    let _ = sync.handle_response_read(record.bytes, fds, &probe);
                    assert!(!sync.is_outstanding(), "a response read ends the request");
                }
            },
            2 => {
                let _ = client.handle_node_closed();
            }
            _ => {
                let _ = client.handle_bootstrap_closed();
            }
        }
        while let Some(t) = client.poll_transmit() {
            check_canonical(&t);
        }
    }
    client.established().is_some()
}

/// A record for [`drive_broker`] / [`drive_client`] (for seed corpora and
/// tests).
pub fn record(op: u8, num_fds: u8, bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut out = vec![op, num_fds];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
    out
}

/// The seed inputs of `legacy_invitation_broker`, by file name: a whole
/// handshake and a buffer request in each profile (`cargo xtask corpus`).
#[doc(hidden)]
pub fn broker_seeds(make_fd: &mut dyn FnMut() -> OwnedFd) -> Vec<(String, Vec<u8>)> {
    [Profile::Desktop, Profile::Libchrome]
        .into_iter()
        .map(|profile| {
            let name = format!("handshake-and-buffer-request-{}", profile_name(profile));
            (name, broker_seed(profile, make_fd))
        })
        .collect()
}

/// The seed inputs of `legacy_invitation_client`, by file name: `INIT`,
/// the invitee and broker-client acceptances, and a buffer response in
/// each profile (`cargo xtask corpus`).
#[doc(hidden)]
pub fn client_seeds() -> Vec<(String, Vec<u8>)> {
    [Profile::Desktop, Profile::Libchrome]
        .into_iter()
        .map(|profile| {
            let name = format!("handshake-and-buffer-response-{}", profile_name(profile));
            (name, client_seed(profile))
        })
        .collect()
}

fn profile_name(profile: Profile) -> &'static str {
    if profile == Profile::Desktop {
        "desktop"
    } else {
        "libchrome"
    }
}

/// The first record's op flag that selects the desktop profile.
fn profile_flag(profile: Profile) -> u8 {
    if profile == Profile::Desktop { 0x80 } else { 0 }
}

/// A whole valid handshake for [`drive_broker`], as records.
#[doc(hidden)]
pub fn broker_seed(profile: Profile, make_fd: &mut dyn FnMut() -> OwnedFd) -> Vec<u8> {
    let Ok(broker) = BrokerConnector::new(
        BrokerConfig {
            profile,
            local_name: BROKER_NAME,
            attachments: vec![],
        },
        make_fd(),
        &mut SeededRandom::new(BROKER_SEED),
    ) else {
        panic!("a valid config is accepted")
    };
    let mut invitation = Vec::new();
    let accept = NodeMessage::AcceptInvitation(AcceptInvitation {
        token: broker.token(),
        invitee_name: CLIENT_NAME,
        capabilities: Some(Default::default()),
        trailing: &[],
    });
    let mut request = Vec::new();
    let buffer_request = BrokerMessage::BufferRequest {
        size: 4096,
        trailing: &[],
    };
    if accept.encode_frame(profile, 0, &mut invitation).is_err()
        || buffer_request.encode_frame(profile, &mut request).is_err()
    {
        panic!("handshake messages encode");
    }
    let mut data = record(profile_flag(profile), 0, &invitation);
    data.extend(record(1, 0, &request));
    data.extend(record(0, 0, &invitation));
    data
}

/// A whole valid handshake for [`drive_client`], as records.
#[doc(hidden)]
pub fn client_seed(profile: Profile) -> Vec<u8> {
    let inviter = NodeName::new(0x1111, 0x2222);
    let mut init = Vec::new();
    let mut invitee = Vec::new();
    let mut broker_client = Vec::new();
    let mut response = Vec::new();
    let ok = BrokerMessage::Init { trailing: &[] }
        .encode_frame(profile, &mut init)
        .is_ok()
        && NodeMessage::AcceptInvitee(AcceptInvitee {
            inviter_name: inviter,
            token: mojo_legacy_wire::Token::new(0x3333, 0x4444),
            capabilities: Some(Default::default()),
            trailing: &[],
        })
        .encode_frame(profile, 0, &mut invitee)
        .is_ok()
        && NodeMessage::AcceptBrokerClient(AcceptBrokerClient {
            broker_name: inviter,
            capabilities: Some(Default::default()),
            trailing: &[],
        })
        .encode_frame(profile, 0, &mut broker_client)
        .is_ok()
        && BrokerMessage::BufferResponse {
            guid: Guid::new(5, 6),
            trailing: &[],
        }
        .encode_frame(profile, &mut response)
        .is_ok();
    assert!(ok, "handshake messages encode");
    let mut data = record(profile_flag(profile) | 1, 1, &init);
    data.extend(record(0, 0, &invitee));
    data.extend(record(0, 0, &broker_client));
    data.extend(record(1, 2, &response));
    data
}
