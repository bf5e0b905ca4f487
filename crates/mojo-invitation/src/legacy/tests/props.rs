//! Property tests: whatever arrives, in whatever order, the connectors and
//! the broker host return `Ok` or a typed error, never panic, and stay
//! failed once failed.

use mojo_legacy_wire::Profile;
use mojo_legacy_wire::broker::BrokerMessage;
use mojo_legacy_wire::node::{AcceptBrokerClient, AcceptInvitation, AcceptInvitee, NodeMessage};
use mojo_wire_kit::{Guid, SeededRandom};
use proptest::prelude::*;

use super::super::{
    BrokerConfig, BrokerConnector, BrokerHost, ClientConfig, ClientConnector, SyncBrokerClient,
};
use super::{BROKER_NAME, CLIENT_NAME, dev_null, dev_null_rw, probe};

/// Frames near the valid ones: every handshake message in both profiles,
/// to be mutated.
fn seeds(token: mojo_legacy_wire::Token) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let messages = [
            NodeMessage::AcceptInvitee(AcceptInvitee {
                inviter_name: BROKER_NAME,
                token,
                capabilities: Some(Default::default()),
                trailing: &[],
            }),
            NodeMessage::AcceptInvitation(AcceptInvitation {
                token,
                invitee_name: CLIENT_NAME,
                capabilities: None,
                trailing: &[],
            }),
            NodeMessage::AcceptBrokerClient(AcceptBrokerClient {
                broker_name: BROKER_NAME,
                capabilities: None,
                trailing: &[],
            }),
        ];
        for m in messages {
            let mut bytes = Vec::new();
            m.encode_frame(profile, 0, &mut bytes).unwrap();
            out.push(bytes);
        }
        for m in [
            BrokerMessage::Init { trailing: &[] },
            BrokerMessage::BufferRequest {
                size: 4096,
                trailing: &[],
            },
            BrokerMessage::BufferResponse {
                guid: Guid::new(1, 2),
                trailing: &[],
            },
        ] {
            let mut bytes = Vec::new();
            m.encode_frame(profile, &mut bytes).unwrap();
            out.push(bytes);
        }
    }
    out
}

#[derive(Clone, Debug)]
enum Input {
    /// A seed frame with some bytes replaced and maybe cut short.
    Mutated {
        seed: usize,
        edits: Vec<(usize, u8)>,
        cut: Option<usize>,
    },
    Random(Vec<u8>),
}

fn input() -> impl Strategy<Value = (Input, usize)> {
    let mutated = (
        any::<usize>(),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        prop::option::of(any::<usize>()),
    )
        .prop_map(|(seed, edits, cut)| Input::Mutated { seed, edits, cut });
    let random = prop::collection::vec(any::<u8>(), 0..80).prop_map(Input::Random);
    (prop_oneof![mutated, random], 0usize..3)
}

fn materialize(input: &Input, seeds: &[Vec<u8>]) -> Vec<u8> {
    match input {
        Input::Random(bytes) => bytes.clone(),
        Input::Mutated { seed, edits, cut } => {
            let mut bytes = seeds[seed % seeds.len()].clone();
            for (at, value) in edits {
                let n = bytes.len();
                bytes[at % n] = *value;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            bytes
        }
    }
}

fn fds(n: usize) -> Vec<std::os::fd::OwnedFd> {
    (0..n)
        .map(|i| if i == 0 { dev_null_rw() } else { dev_null() })
        .collect()
}

#[test]
fn fuzz_oracles_run_on_valid_input() {
    for profile in [Profile::Libchrome, Profile::Desktop] {
        let data = super::super::fuzzing::broker_seed(profile, &mut dev_null);
        assert!(super::super::fuzzing::drive_broker(&data, &mut dev_null));
        assert!(!super::super::fuzzing::drive_client(&data, &mut dev_null));
    }
}

/// The checked-in seed corpora reach the established state (so fuzzing
/// starts from deep inputs) and hold the oracles.
#[test]
fn fuzz_seed_corpora_reach_established() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (target, drive) in [
        (
            "legacy_invitation_broker",
            super::super::fuzzing::drive_broker
                as fn(&[u8], &mut dyn FnMut() -> std::os::fd::OwnedFd) -> bool,
        ),
        (
            "legacy_invitation_client",
            super::super::fuzzing::drive_client,
        ),
    ] {
        let mut seen = 0;
        for entry in std::fs::read_dir(root.join(target)).expect("seed corpus") {
            let data = std::fs::read(entry.expect("entry").path()).expect("read seed");
            assert!(
                drive(&data, &mut dev_null),
                "{target} seed reaches established"
            );
            seen += 1;
        }
        assert_eq!(seen, 2, "{target}: one seed per profile");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fuzz_oracles_hold_on_random_input(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = super::super::fuzzing::drive_broker(&data, &mut dev_null);
        let _ = super::super::fuzzing::drive_client(&data, &mut dev_null);
    }

    #[test]
    fn broker_never_panics(inputs in prop::collection::vec(input(), 0..8), seed in any::<u64>()) {
        let mut broker = BrokerConnector::new(
            BrokerConfig { profile: Profile::Libchrome, local_name: BROKER_NAME, attachments: vec![] },
            dev_null(),
            &mut SeededRandom::new(seed),
        ).unwrap();
        let seeds = seeds(broker.token());
        let mut failed: Option<super::super::HandshakeError> = None;
        for (i, (input, n)) in inputs.iter().enumerate() {
            let bytes = materialize(input, &seeds);
            if i % 3 == 2 {
                let _ = broker.handle_bootstrap_frame(&bytes, fds(*n));
            } else {
                let r = broker.handle_node_frame(&bytes, fds(*n));
                match (&failed, r) {
                    // Once failed, every later frame gets the same error.
                    (Some(before), r) => prop_assert_eq!(r, Err(before.clone())),
                    (None, Err(e)) if e != super::super::HandshakeError::AlreadyEstablished => {
                        failed = Some(e);
                    }
                    (None, _) => {}
                }
            }
            while let Some(request) = broker.host().poll_region_request() {
                let _ = broker.host().fail_buffer_request(request.id);
            }
            while broker.poll_transmit().is_some() {}
        }
        prop_assert!(broker.host().pending_requests() <= super::super::MAX_PENDING_BUFFER_REQUESTS);
    }

    #[test]
    fn client_never_panics(inputs in prop::collection::vec(input(), 0..8), init_first in any::<bool>()) {
        let mut client = ClientConnector::new(
            ClientConfig { profile: Profile::Desktop, local_name: CLIENT_NAME, attachments: vec![] },
        ).unwrap();
        let seeds = seeds(mojo_legacy_wire::Token::new(9, 9));
        if init_first {
            let mut init = Vec::new();
            BrokerMessage::Init { trailing: &[] }.encode_frame(Profile::Desktop, &mut init).unwrap();
            client.handle_bootstrap_read(&init, vec![dev_null()]).unwrap();
        }
        for (i, (input, n)) in inputs.iter().enumerate() {
            let bytes = materialize(input, &seeds);
            if i == 0 && !init_first {
                let _ = client.handle_bootstrap_read(&bytes, fds(*n));
            } else if i % 4 == 3 {
                if let Some(sb) = client.sync_broker() {
                    let _ = sb.request_buffer(4096);
                    let _ = sb.handle_response_read(&bytes, fds(*n), &probe);
                }
            } else {
                let _ = client.handle_node_frame(&bytes, fds(*n));
            }
            while client.poll_transmit().is_some() {}
        }
    }

    #[test]
    fn host_and_sync_client_never_panic(inputs in prop::collection::vec(input(), 0..12)) {
        let seeds = seeds(mojo_legacy_wire::Token::new(9, 9));
        let mut host = BrokerHost::new(Profile::Libchrome);
        let mut sync = SyncBrokerClient::new(Profile::Libchrome);
        for (input, n) in &inputs {
            let bytes = materialize(input, &seeds);
            let _ = host.handle_frame(&bytes, fds(*n));
            let _ = sync.request_buffer(1);
            let _ = sync.handle_response_read(&bytes, fds(*n), &probe);
            prop_assert!(!sync.is_outstanding());
        }
        prop_assert!(host.pending_requests() <= super::super::MAX_PENDING_BUFFER_REQUESTS);
    }
}
