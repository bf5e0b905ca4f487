//! Oracles for the fuzz target `fuzz/fuzz_targets/ipcz_invitation.rs` (and
//! for the unit tests that run them under stable): drive one ipcz connector
//! with arbitrary input and check that nothing panics, that every frame it
//! emits is canonical for `ipcz-wire` and carries exactly its fds, that a
//! failed handshake stays failed, and that an established link keeps the
//! promises of [`EstablishedLink`].
//!
//! Input: one byte choosing the role (`% 6`: non-broker, broker, referred,
//! referrer, broker serving a referral, broker greeting a broker), then records `[op, num_fds,
//! len_lo, len_hi, bytes…]`; `op & 1` picks "frame" or "socket closed".
//! Fds come from the caller (`make_fd`), since making one is a system call.

use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::Transport;
use ipcz_wire::frame::Frame;
use ipcz_wire::message::Message;
use ipcz_wire::types::{NodeName, ReferralId};
use mojo_wire_kit::{Guid, HeapMemory, RegionMode, SeededRandom};

use super::{
    BrokerConnector, BrokerReferralConnector, BrokerToBrokerConnector, EstablishedLink,
    HandshakeError, MAX_INITIAL_PORTALS, MAX_PRIMARY_BUFFER_SIZE, NonBrokerConnector,
    PrimaryBuffer, Referral, ReferralResources, ReferredConnector, ReferrerConnector, ReferrerInfo,
    Transmit,
};

/// The broker's name in fuzzing runs.
pub const BROKER_NAME: NodeName = NodeName {
    high: 0xb0b0,
    low: 1,
};
/// The referrer's name in fuzzing runs.
pub const REFERRER_NAME: NodeName = NodeName {
    high: 0x4e4e,
    low: 2,
};
/// The referral id the referrer waits for.
pub const REFERRAL_ID: ReferralId = ReferralId(0);

const GUID: Guid = Guid { high: 1, low: 2 };

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

enum Connector {
    NonBroker(NonBrokerConnector),
    Broker(BrokerConnector),
    Referred(ReferredConnector),
    Referrer(ReferrerConnector),
    BrokerReferral(BrokerReferralConnector),
    BrokerToBroker(BrokerToBrokerConnector),
}

impl Connector {
    fn new(role: u8, make_fd: &mut dyn FnMut() -> OwnedFd) -> Result<Self, HandshakeError> {
        let mut rng = SeededRandom::new(1);
        let mut primary = || PrimaryBuffer::new(131072, GUID, make_fd());
        Ok(match role % 6 {
            0 => Self::NonBroker(NonBrokerConnector::new(2)?),
            1 => Self::Broker(BrokerConnector::new(
                BROKER_NAME,
                2,
                primary(),
                &HeapMemory::new(131072),
                &mut rng,
            )?),
            2 => Self::Referred(ReferredConnector::new(2)?),
            3 => Self::Referrer(ReferrerConnector::new(
                REFERRER_NAME,
                REFERRAL_ID,
                2,
                primary().fd,
                0,
            )?),
            5 => Self::BrokerToBroker(BrokerToBrokerConnector::new(
                BROKER_NAME,
                2,
                primary(),
                &HeapMemory::new(131072),
            )?),
            _ => {
                let (broker_link_buffer, referrer_link_buffer) = (primary(), primary());
                let extra = [primary().fd, primary().fd, primary().fd];
                let [for_referrer, referred_socket, referrer_socket] = extra;
                let mappings = [HeapMemory::new(131072), HeapMemory::new(131072)];
                Self::BrokerReferral(BrokerReferralConnector::new(
                    BROKER_NAME,
                    ReferrerInfo {
                        name: REFERRER_NAME,
                        protocol_version: 0,
                        features: 0,
                        sequence_number: 0,
                    },
                    Referral {
                        referral_id: REFERRAL_ID,
                        num_initial_portals: 2,
                        transport: Transport::default(),
                    },
                    ReferralResources {
                        broker_link_buffer,
                        broker_link_mapping: &mappings[0],
                        referrer_link_buffer,
                        referrer_link_buffer_for_referrer: for_referrer,
                        referrer_link_mapping: &mappings[1],
                        referred_socket,
                        referrer_socket,
                    },
                    &mut rng,
                )?)
            }
        })
    }

    fn handle_frame(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<(), HandshakeError> {
        match self {
            Self::NonBroker(c) => c.handle_frame(bytes, fds),
            Self::Broker(c) => c.handle_frame(bytes, fds),
            Self::Referred(c) => c.handle_frame(bytes, fds),
            Self::Referrer(c) => c.handle_frame(bytes, fds),
            Self::BrokerReferral(c) => c.handle_frame(bytes, fds),
            Self::BrokerToBroker(c) => c.handle_frame(bytes, fds),
        }
    }

    fn handle_closed(&mut self) -> Result<(), HandshakeError> {
        match self {
            Self::NonBroker(c) => c.handle_closed(),
            Self::Broker(c) => c.handle_closed(),
            Self::Referred(c) => c.handle_closed(),
            Self::Referrer(c) => c.handle_closed(),
            Self::BrokerReferral(c) => c.handle_closed(),
            Self::BrokerToBroker(c) => c.handle_closed(),
        }
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            Self::NonBroker(c) => c.poll_transmit(),
            Self::Broker(c) => c.poll_transmit(),
            Self::Referred(c) => c.poll_transmit(),
            Self::Referrer(c) => c.poll_transmit(),
            Self::BrokerReferral(c) => c.poll_transmit(),
            Self::BrokerToBroker(c) => c.poll_transmit(),
        }
    }

    fn links(&self) -> Vec<&EstablishedLink> {
        match self {
            Self::NonBroker(c) => c.established().into_iter().collect(),
            Self::Broker(c) => c.established().into_iter().collect(),
            Self::Referred(c) => c
                .established()
                .map(|i| vec![&i.broker, &i.referrer])
                .unwrap_or_default(),
            Self::Referrer(c) => c.established().into_iter().collect(),
            Self::BrokerReferral(c) => c.established().into_iter().collect(),
            Self::BrokerToBroker(c) => c.established().into_iter().collect(),
        }
    }
}

fn check_transmit(t: &Transmit) {
    let (frame, used) = Frame::decode(&t.bytes).expect("an emitted frame decodes");
    assert_eq!(used, t.bytes.len(), "one frame per transmit");
    assert_eq!(usize::from(frame.header.num_handles), t.fds.len());
    let message = Message::decode_exact(frame.payload, t.fds.len()).expect("canonical message");
    assert_eq!(message.num_fds(), t.fds.len());
}

fn check_link(link: &EstablishedLink) {
    assert!(link.local_name.is_valid() && link.remote_name.is_valid());
    assert_ne!(link.local_name, link.remote_name);
    let b = link.primary_buffer;
    assert_eq!(b.mode, RegionMode::Unsafe);
    assert!((131072..=MAX_PRIMARY_BUFFER_SIZE).contains(&b.buffer_size));
    assert!(link.portal_counts.local <= MAX_INITIAL_PORTALS);
    assert!(link.initial_portals().count() <= MAX_INITIAL_PORTALS as usize);
}

/// Drives one connector (see the module docs) and checks its promises;
/// returns the handshake's final error, if it failed.
pub fn drive(data: &[u8], make_fd: &mut dyn FnMut() -> OwnedFd) -> Result<(), HandshakeError> {
    let Some((&role, data)) = data.split_first() else {
        return Ok(());
    };
    let mut connector = Connector::new(role, make_fd).expect("fixed arguments are valid");
    let mut failed: Option<HandshakeError> = None;
    for record in records(data) {
        while let Some(t) = connector.poll_transmit() {
            check_transmit(&t);
        }
        let result = if record.op & 1 == 0 {
            let fds = (0..record.num_fds).map(|_| make_fd()).collect();
            connector.handle_frame(record.bytes, fds)
        } else {
            connector.handle_closed()
        };
        if let Some(e) = &failed {
            assert_eq!(result.as_ref().err(), Some(e), "failures are sticky");
        }
        match result {
            // A frame after the handshake is refused but fails nothing.
            Err(HandshakeError::AlreadyEstablished { .. }) => {}
            Err(e) => {
                failed.get_or_insert(e);
            }
            Ok(()) => {}
        }
        for link in connector.links() {
            check_link(link);
        }
    }
    while let Some(t) = connector.poll_transmit() {
        check_transmit(&t);
    }
    failed.map_or(Ok(()), Err)
}

/// A record for [`drive`] (for seed corpora and tests): `op` 0 a frame,
/// 1 the socket closing.
#[doc(hidden)]
pub fn record(op: u8, num_fds: u8, bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    let mut out = vec![op, num_fds];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes.get(..usize::from(len)).unwrap_or(bytes));
    out
}

/// A seed for [`drive`]'s broker-to-broker role (5): the greeting of
/// another broker whose name is greater than [`BROKER_NAME`] (so its buffer
/// is the link's). No recording has one: MojoIpcz makes these links only
/// for isolated invitations.
#[doc(hidden)]
pub fn broker_to_broker_seed() -> Vec<u8> {
    let null = || -> OwnedFd {
        std::fs::File::open("/dev/null")
            .expect("/dev/null opens")
            .into()
    };
    let other_name = NodeName {
        high: BROKER_NAME.high + 1,
        low: 0,
    };
    let mut other = BrokerToBrokerConnector::new(
        other_name,
        2,
        PrimaryBuffer::new(131072, GUID, null()),
        &HeapMemory::new(131072),
    )
    .expect("fixed arguments are valid");
    let greeting = other.poll_transmit().expect("a greeting is queued");
    seed(5, &greeting.bytes, 1, false)
}

/// A seed for [`drive`]: `role`, then one recorded frame with its fd
/// count, then the socket closing if `hang_up` (`cargo xtask corpus` takes
/// the frames from the vectors).
#[doc(hidden)]
pub fn seed(role: u8, frame: &[u8], num_fds: u8, hang_up: bool) -> Vec<u8> {
    let mut out = vec![role];
    out.extend(record(0, num_fds, frame));
    if hang_up {
        out.extend(record(1, 0, &[]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev_null() -> OwnedFd {
        std::fs::File::open("/dev/null").expect("/dev/null").into()
    }

    #[test]
    fn a_valid_exchange_establishes_and_garbage_fails_without_panicking() {
        // The broker role's greeting, fed to the non-broker role.
        let mut broker = BrokerConnector::new(
            BROKER_NAME,
            2,
            PrimaryBuffer::new(131072, GUID, dev_null()),
            &HeapMemory::new(131072),
            &mut SeededRandom::new(1),
        )
        .expect("broker");
        let greeting = broker.poll_transmit().expect("greeting");
        let mut input = vec![0];
        input.extend(record(0, 1, &greeting.bytes));
        assert_eq!(drive(&input, &mut dev_null), Ok(()));
        // Frames and a hang-up after the handshake change nothing.
        input.extend(record(0, 1, &greeting.bytes));
        input.extend(record(1, 0, &[]));
        assert_eq!(drive(&input, &mut dev_null), Ok(()));

        for role in 0..6 {
            let mut input = vec![role];
            input.extend(record(0, 2, &[0x10, 0, 0, 0, 0xff, 0xff, 0, 0]));
            input.extend(record(1, 0, &[]));
            assert!(drive(&input, &mut dev_null).is_err(), "role {role}");
        }
        assert_eq!(drive(&[], &mut dev_null), Ok(()));
    }

    #[test]
    fn a_broker_greeting_a_broker_establishes() {
        assert_eq!(drive(&broker_to_broker_seed(), &mut dev_null), Ok(()));
        // Its own name back is refused, typed.
        let mut same = BrokerToBrokerConnector::new(
            BROKER_NAME,
            2,
            PrimaryBuffer::new(131072, GUID, dev_null()),
            &HeapMemory::new(131072),
        )
        .expect("same-named broker");
        let echo = same.poll_transmit().expect("greeting");
        let mut input = vec![5];
        input.extend(record(0, 1, &echo.bytes));
        assert!(drive(&input, &mut dev_null).is_err());
    }

    #[test]
    fn every_seed_of_the_corpus_is_a_handshake_that_establishes() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus/ipcz_invitation");
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus") {
            let path = entry.expect("entry").path();
            let data = std::fs::read(&path).expect("seed");
            assert_eq!(drive(&data, &mut dev_null), Ok(()), "{}", path.display());
            seeds += 1;
        }
        // Four recorded handshakes and the broker-to-broker greeting.
        assert_eq!(seeds, 5);
    }
}
