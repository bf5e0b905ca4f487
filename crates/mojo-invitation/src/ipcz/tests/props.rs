//! Property tests: no input makes a connector panic, an error always
//! closes every fd handed in with the frame, errors are sticky, and
//! whatever a connector accepts satisfies the checks it promises.

use ipcz_wire::driver_object::{DriverObject, SharedBuffer, Transport};
use ipcz_wire::message::Message;
use ipcz_wire::messages::{
    Body, ConnectFromBrokerToBroker, ConnectFromBrokerToNonBroker, ConnectFromNonBrokerToBroker,
    ConnectToReferredBroker, ConnectToReferredNonBroker, NonBrokerReferralAccepted,
};
use ipcz_wire::types::{DriverObjectIndex, NodeName, ReferralId};
use mojo_wire_kit::{HeapMemory, RegionMode, SeededRandom};
use proptest::prelude::*;

use super::super::{
    BrokerConnector, BrokerReferralConnector, BrokerToBrokerConnector, EstablishedLink,
    HandshakeError, MAX_PRIMARY_BUFFER_SIZE, NonBrokerConnector, PrimaryBuffer, Referral,
    ReferralResources, ReferredConnector, ReferrerConnector, ReferrerInfo,
};
use super::*;
use std::os::fd::OwnedFd;

const OTHER_NAME: NodeName = NodeName {
    high: 0xc1c1,
    low: 0x3333,
};

fn unsafe_buffer() -> DriverObject {
    DriverObject::SharedBuffer(SharedBuffer {
        buffer_size: 131072,
        mode: RegionMode::Unsafe,
        guid: BUFFER_GUID,
    })
}

fn with_objects(body: Body<'static>, objects: &[DriverObject]) -> Vec<u8> {
    let mut message = Message::new(0, body);
    for o in objects {
        message.push_object(*o);
    }
    let fds = u16::try_from(message.num_fds()).unwrap_or(0);
    frame_of(&message, fds)
}

/// Which connector a case drives.
#[derive(Clone, Copy, Debug)]
enum Role {
    NonBroker,
    Broker,
    Referred,
    Referrer,
    BrokerReferral,
    BrokerToBroker,
}

const ROLES: [Role; 6] = [
    Role::NonBroker,
    Role::Broker,
    Role::Referred,
    Role::Referrer,
    Role::BrokerReferral,
    Role::BrokerToBroker,
];

/// A valid frame the role accepts.
fn valid_frame(role: Role) -> Vec<u8> {
    let features = Some(vec![0]);
    match role {
        Role::NonBroker => with_objects(
            Body::ConnectFromBrokerToNonBroker(ConnectFromBrokerToNonBroker {
                broker_name: BROKER_NAME,
                receiver_name: OTHER_NAME,
                num_initial_portals: 2,
                buffer: DriverObjectIndex(0),
                features,
                ..Default::default()
            }),
            &[unsafe_buffer()],
        ),
        Role::Broker => with_objects(
            Body::ConnectFromNonBrokerToBroker(ConnectFromNonBrokerToBroker {
                protocol_version: 0,
                num_initial_portals: 2,
                features,
            }),
            &[],
        ),
        Role::Referred => with_objects(
            Body::ConnectToReferredNonBroker(ConnectToReferredNonBroker {
                name: OTHER_NAME,
                broker_name: BROKER_NAME,
                referrer_name: REFERRER_NAME,
                num_initial_portals: 2,
                broker_link_buffer: DriverObjectIndex(0),
                referrer_link_transport: DriverObjectIndex(1),
                referrer_link_buffer: DriverObjectIndex(2),
                broker_features: features.clone(),
                referrer_features: features,
                ..Default::default()
            }),
            &[
                unsafe_buffer(),
                DriverObject::Transport(Transport::default()),
                unsafe_buffer(),
            ],
        ),
        Role::Referrer => with_objects(
            Body::NonBrokerReferralAccepted(NonBrokerReferralAccepted {
                referral_id: ReferralId(0),
                protocol_version: 0,
                num_initial_portals: 2,
                name: OTHER_NAME,
                transport: DriverObjectIndex(0),
                buffer: DriverObjectIndex(1),
                features,
            }),
            &[
                DriverObject::Transport(Transport::default()),
                unsafe_buffer(),
            ],
        ),
        Role::BrokerReferral => with_objects(
            Body::ConnectToReferredBroker(ConnectToReferredBroker {
                protocol_version: 0,
                num_initial_portals: 2,
                features,
            }),
            &[],
        ),
        Role::BrokerToBroker => with_objects(
            Body::ConnectFromBrokerToBroker(ConnectFromBrokerToBroker {
                name: OTHER_NAME,
                protocol_version: 0,
                num_initial_portals: 2,
                buffer: DriverObjectIndex(0),
                padding: 0,
                features,
            }),
            &[unsafe_buffer()],
        ),
    }
}

/// Any connector behind one interface.
enum Any {
    NonBroker(NonBrokerConnector),
    Broker(BrokerConnector),
    Referred(ReferredConnector),
    Referrer(ReferrerConnector),
    BrokerReferral(BrokerReferralConnector),
    BrokerToBroker(BrokerToBrokerConnector),
}

impl Any {
    fn new(role: Role) -> Self {
        match role {
            Role::NonBroker => Self::NonBroker(NonBrokerConnector::new(2).expect("connector")),
            Role::Broker => {
                let (primary, mapping) = primary_buffer(dev_null());
                let c = BrokerConnector::new(
                    BROKER_NAME,
                    2,
                    primary,
                    &mapping,
                    &mut SeededRandom::new(5),
                )
                .expect("connector");
                Self::Broker(c)
            }
            Role::Referred => Self::Referred(ReferredConnector::new(2).expect("connector")),
            Role::Referrer => Self::Referrer(
                ReferrerConnector::new(REFERRER_NAME, ReferralId(0), 2, dev_null(), 0)
                    .expect("connector"),
            ),
            Role::BrokerReferral => {
                let mappings = [HeapMemory::new(131072), HeapMemory::new(131072)];
                let c = BrokerReferralConnector::new(
                    BROKER_NAME,
                    ReferrerInfo {
                        name: REFERRER_NAME,
                        protocol_version: 0,
                        features: 0,
                        sequence_number: 0,
                    },
                    Referral {
                        referral_id: ReferralId(0),
                        num_initial_portals: 2,
                        transport: Transport::default(),
                    },
                    ReferralResources {
                        broker_link_buffer: PrimaryBuffer::new(131072, BUFFER_GUID, dev_null()),
                        broker_link_mapping: &mappings[0],
                        referrer_link_buffer: PrimaryBuffer::new(131072, BUFFER_GUID, dev_null()),
                        referrer_link_buffer_for_referrer: dev_null(),
                        referrer_link_mapping: &mappings[1],
                        referred_socket: dev_null(),
                        referrer_socket: dev_null(),
                    },
                    &mut SeededRandom::new(6),
                )
                .expect("connector");
                Self::BrokerReferral(c)
            }
            Role::BrokerToBroker => {
                let (primary, mapping) = primary_buffer(dev_null());
                let c = BrokerToBrokerConnector::new(BROKER_NAME, 2, primary, &mapping)
                    .expect("connector");
                Self::BrokerToBroker(c)
            }
        }
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

    /// Every link the connector established (checked for its promises).
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

/// What every accepted link must satisfy.
fn check_link(link: &EstablishedLink) {
    assert!(link.local_name.is_valid() && link.remote_name.is_valid());
    assert_ne!(link.local_name, link.remote_name);
    assert!(link.primary_buffer.buffer_size >= 131072);
    assert!(link.primary_buffer.buffer_size <= MAX_PRIMARY_BUFFER_SIZE);
    assert_eq!(link.primary_buffer.mode, RegionMode::Unsafe);
    assert!(link.portal_counts.established() <= super::super::MAX_INITIAL_PORTALS);
    for p in link.initial_portals() {
        assert!(p.link_state.offset >= 256 && p.link_state.offset < 1024);
    }
}

/// Feeds one frame with `num_fds` watched fds; checks the fd and error
/// promises. Returns whether the frame was accepted.
fn feed(connector: &mut Any, bytes: &[u8], num_fds: usize) -> bool {
    let (fds, mut probes): (Vec<_>, Vec<_>) = (0..num_fds).map(|_| watched_fd()).unzip();
    match connector.handle_frame(bytes, fds) {
        Ok(()) => {
            for link in connector.links() {
                check_link(link);
            }
            true
        }
        Err(e) => {
            assert!(
                probes.iter_mut().all(FdProbe::is_closed),
                "fds closed on {e:?}"
            );
            assert_eq!(connector.handle_frame(bytes, Vec::new()), Err(e), "sticky");
            false
        }
    }
}

fn role() -> impl Strategy<Value = Role> {
    (0..ROLES.len()).prop_map(|i| ROLES[i])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(role in role(), bytes in proptest::collection::vec(any::<u8>(), 0..400), fds in 0usize..4) {
        let mut c = Any::new(role);
        feed(&mut c, &bytes, fds);
    }

    #[test]
    fn corrupted_valid_frames_never_panic(
        role in role(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        fd_delta in -1i32..2,
    ) {
        let mut bytes = valid_frame(role);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        let claimed = bytes.get(2..4).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]) as i32);
        let fds = (claimed + fd_delta).clamp(0, 8) as usize;
        let mut c = Any::new(role);
        feed(&mut c, &bytes, fds);
    }

    #[test]
    fn arbitrary_frame_sequences_never_panic(
        role in role(),
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..5),
    ) {
        let mut c = Any::new(role);
        for f in &frames {
            feed(&mut c, f, 0);
        }
        feed(&mut c, &valid_frame(role), 0);
    }

    #[test]
    fn referral_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), fds in 0usize..3) {
        let _ = Referral::from_frame(&bytes, dummies(fds));
    }
}

#[test]
fn every_valid_frame_is_accepted() {
    for role in ROLES {
        let mut c = Any::new(role);
        let bytes = valid_frame(role);
        let fds = usize::from(u16::from_le_bytes([bytes[2], bytes[3]]));
        assert!(feed(&mut c, &bytes, fds), "{role:?}");
        assert_eq!(
            c.links().len(),
            if matches!(role, Role::Referred) { 2 } else { 1 }
        );
    }
}
