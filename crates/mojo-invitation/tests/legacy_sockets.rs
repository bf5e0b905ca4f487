//! The legacy connectors over real sockets: a bootstrap socket pair, a
//! node-channel pair the caller makes, `INIT` carrying the client's end by
//! `SCM_RIGHTS`, the handshake on that socket, and a `BUFFER_REQUEST`
//! answered with a sealed memfd. Single-threaded and non-blocking: each
//! step writes, then the peer reads what the kernel already holds.

mod legacy_support;

use std::os::fd::OwnedFd;

use mojo_invitation::legacy::{
    AttachmentName, BrokerConfig, BrokerConnector, ClientConfig, ClientConnector, Link, RegionFds,
    Transmit,
};
use mojo_legacy_wire::channel::Frame;
use mojo_legacy_wire::{NodeName, Profile};
use mojo_platform_channel::{Endpoint, RegionMode, SharedMemoryRegion, socketpair, socketpair_fds};
use mojo_wire_kit::SeededRandom;

use legacy_support::{probe, writable_region};

fn send(endpoint: &mut Endpoint, t: Transmit) {
    endpoint.queue(t.bytes, t.fds).expect("queue");
    endpoint.flush().expect("flush");
}

/// Reads what has arrived and splits it into whole frames with their fds,
/// as a driver does with `Frame::decode_prefix`.
fn frames(endpoint: &mut Endpoint) -> Vec<(Vec<u8>, Vec<OwnedFd>)> {
    endpoint.read_available().expect("read");
    let mut out = Vec::new();
    while let Some((frame, used)) = Frame::decode_prefix(endpoint.buffered()).expect("frame") {
        let fds = endpoint
            .take_fds(usize::from(frame.header.num_handles()))
            .expect("fds arrive with their frame");
        out.push((endpoint.buffered()[..used].to_vec(), fds));
        endpoint.consume(used).expect("consume");
    }
    out
}

fn handshake_over_sockets(profile: Profile) {
    let (mut boot_broker, mut boot_client) = socketpair().expect("bootstrap pair");
    let (node_broker_fd, node_client_fd) = socketpair_fds(true, true).expect("node pair");
    let mut node_broker = Endpoint::from_owned_fd(node_broker_fd).expect("node endpoint");

    let broker_name = NodeName::new(0xb, 1);
    let client_name = NodeName::new(0xc, 2);
    let mut broker = BrokerConnector::new(
        BrokerConfig {
            profile,
            local_name: broker_name,
            attachments: AttachmentName::numeric_range(3),
        },
        node_client_fd,
        &mut SeededRandom::new(21),
    )
    .expect("broker");
    let mut client = ClientConnector::new(ClientConfig {
        profile,
        local_name: client_name,
        attachments: vec![],
    })
    .expect("client");
    let mut node_client: Option<Endpoint> = None;

    for _ in 0..10 {
        while let Some(t) = broker.poll_transmit() {
            match t.link {
                Link::Bootstrap => send(&mut boot_broker, t),
                Link::NodeChannel => send(&mut node_broker, t),
            }
        }
        if node_client.is_none() {
            // The client's blocking exact-size read of INIT.
            boot_client.read_available().expect("read INIT");
            let len = client.bootstrap_read_len();
            assert_eq!(boot_client.buffered().len(), len, "INIT arrives alone");
            let bytes = boot_client.buffered().to_vec();
            let fds = boot_client
                .take_fds(boot_client.queued_fds())
                .unwrap_or_default();
            boot_client.consume(len).expect("consume");
            let socket = client.handle_bootstrap_read(&bytes, fds).expect("INIT");
            node_client = Some(Endpoint::from_owned_fd(socket).expect("adopt node channel"));
        }
        let Some(node_client) = node_client.as_mut() else {
            unreachable!()
        };
        for (bytes, fds) in frames(node_client) {
            client.handle_node_frame(&bytes, fds).expect("client frame");
        }
        while let Some(t) = client.poll_transmit() {
            match t.link {
                Link::Bootstrap => send(&mut boot_client, t),
                Link::NodeChannel => send(node_client, t),
            }
        }
        for (bytes, fds) in frames(&mut node_broker) {
            broker.handle_node_frame(&bytes, fds).expect("broker frame");
        }
        if broker.established().is_some() && client.established().is_some() {
            break;
        }
    }
    // The last ACCEPT_BROKER_CLIENT went out in the loop's final round.
    while let Some(t) = broker.poll_transmit() {
        send(&mut node_broker, t);
    }
    let b = broker.established().expect("broker established").clone();
    let c = client.established().expect("client established").clone();
    assert_eq!((b.peer_name, c.peer_name), (client_name, broker_name));
    assert_eq!(b.token, c.token);
    assert_eq!(b.attachments.len(), 3);

    // Shared memory over the bootstrap socket.
    let sync = client.sync_broker().expect("sync broker");
    sync.request_buffer(8192).expect("request");
    let request = sync.poll_transmit().expect("BUFFER_REQUEST");
    send(&mut boot_client, request);
    for (bytes, fds) in frames(&mut boot_broker) {
        broker
            .handle_bootstrap_frame(&bytes, fds)
            .expect("BUFFER_REQUEST");
    }
    let asked = broker.host().poll_region_request().expect("region request");
    let (guid, read_write, read_only) = writable_region(asked.size as usize, 3);
    broker
        .host()
        .answer_buffer_request(
            asked.id,
            RegionFds {
                guid,
                read_write,
                read_only,
            },
            &probe,
        )
        .expect("answer");
    while let Some(t) = broker.poll_transmit() {
        assert_eq!(t.link, Link::Bootstrap);
        send(&mut boot_broker, t);
    }
    boot_client.read_available().expect("read response");
    let sync = client.sync_broker().expect("sync broker");
    let len = sync.response_read_len();
    assert_eq!(boot_client.buffered().len(), len);
    let bytes = boot_client.buffered().to_vec();
    let fds = boot_client
        .take_fds(boot_client.queued_fds())
        .unwrap_or_default();
    boot_client.consume(len).expect("consume");
    let grant = sync
        .handle_response_read(&bytes, fds, &probe)
        .expect("grant");
    assert_eq!(grant.guid, guid);
    let g = u128::from(guid.high) << 64 | u128::from(guid.low);
    let region = SharedMemoryRegion::from_fds(
        RegionMode::Writable,
        8192,
        g,
        vec![grant.read_write, grant.read_only],
    )
    .expect("Chromium would take it");
    assert!(region.is_sealed());

    // Nothing left anywhere: no bytes, no fds, no pending work.
    let mut node_client = node_client.expect("node channel");
    assert!(frames(&mut node_client).is_empty());
    assert!(frames(&mut node_broker).is_empty());
    for e in [&boot_broker, &boot_client, &node_broker, &node_client] {
        assert!(e.buffered().is_empty() && e.queued_fds() == 0 && !e.has_pending_output());
    }
    let (_, host) = broker.finish().expect("finish broker");
    assert!(host.is_idle());
    let (_, sync) = client.finish().expect("finish client");
    assert!(sync.is_idle());
}

#[test]
fn handshake_and_buffer_request_over_real_sockets() {
    handshake_over_sockets(Profile::Libchrome);
    handshake_over_sockets(Profile::Desktop);
}
