//! `BUFFER_REQUEST` round trips with real shared memory: the broker host
//! asks for a region, the caller makes a sealed memfd with the platform
//! crate, the client receives fds whose access modes Chromium would accept,
//! and both ends see the same bytes. Wrong modes are refused on both sides.

mod legacy_support;

use std::os::fd::AsFd;

use mojo_invitation::legacy::{
    BrokerHost, BufferError, FdAccess, Link, RegionFds, SyncBrokerClient,
};
use mojo_legacy_wire::Profile;
use mojo_legacy_wire::channel::Frame;
use mojo_platform_channel::{FdAccessMode, RegionMode, SharedMemoryRegion, fd_access_mode};

use legacy_support::{probe, writable_region};

/// Moves the client's request to the host, fulfils it with a real region,
/// and hands the response to the client, as two drivers would.
fn round_trip(profile: Profile, size: u32) {
    let mut host = BrokerHost::new(profile);
    let mut client = SyncBrokerClient::new(profile);
    client.request_buffer(size).unwrap();
    let request = client.poll_transmit().unwrap();
    assert_eq!(request.link, Link::Bootstrap);
    assert_eq!(request.bytes.len(), profile.channel_header_len() + 12);
    // The host reads its socket with the stream parser.
    let (_, used) = Frame::decode_prefix(&request.bytes).unwrap().unwrap();
    host.handle_frame(&request.bytes[..used], request.fds)
        .unwrap();

    let asked = host.poll_region_request().expect("region request");
    assert_eq!(asked.size, size);
    let (guid, read_write, read_only) = writable_region(size as usize, 5);
    host.answer_buffer_request(
        asked.id,
        RegionFds {
            guid,
            read_write,
            read_only,
        },
        &probe,
    )
    .unwrap();
    let response = host.poll_transmit().expect("BUFFER_RESPONSE");
    assert_eq!(response.bytes.len(), client.response_read_len());
    assert_eq!(response.fds.len(), 2);
    assert!(host.is_idle());

    let grant = client
        .handle_response_read(&response.bytes, response.fds, &probe)
        .expect("grant");
    assert_eq!((grant.guid, grant.size), (guid, size));
    assert_eq!(
        fd_access_mode(grant.read_write.as_fd()).unwrap(),
        FdAccessMode::ReadWrite
    );
    assert_eq!(
        fd_access_mode(grant.read_only.as_fd()).unwrap(),
        FdAccessMode::ReadOnly
    );

    // Chromium's Take() checks pass, and the two fds are one file.
    let g = u128::from(grant.guid.high) << 64 | u128::from(grant.guid.low);
    let region = SharedMemoryRegion::from_fds(
        RegionMode::Writable,
        size as usize,
        g,
        vec![grant.read_write, grant.read_only],
    )
    .expect("a region Chromium accepts");
    region.write_at(0, b"written by the client").unwrap();
    let read_only = region.duplicate_read_only().unwrap();
    let mut back = [0u8; 21];
    read_only.read_at(0, &mut back).unwrap();
    assert_eq!(&back, b"written by the client");
    assert!(client.is_idle());
}

#[test]
fn buffer_request_round_trip_with_real_regions() {
    for profile in [Profile::Libchrome, Profile::Desktop] {
        round_trip(profile, 4096);
        round_trip(profile, 65536);
    }
}

#[test]
fn swapped_region_fds_are_refused_by_host_and_client() {
    let mut host = BrokerHost::new(Profile::Libchrome);
    let mut client = SyncBrokerClient::new(Profile::Libchrome);
    client.request_buffer(4096).unwrap();
    let request = client.poll_transmit().unwrap();
    host.handle_frame(&request.bytes, vec![]).unwrap();
    let asked = host.poll_region_request().unwrap();
    let (guid, rw, ro) = writable_region(4096, 9);
    let e = host
        .answer_buffer_request(
            asked.id,
            RegionFds {
                guid,
                read_write: ro,
                read_only: rw,
            },
            &probe,
        )
        .unwrap_err();
    assert_eq!(
        e,
        BufferError::WrongFdMode {
            index: 0,
            expected: FdAccess::ReadWrite,
            found: Some(FdAccess::ReadOnly)
        }
    );
    assert_eq!(
        host.pending_requests(),
        1,
        "still waiting for a good region"
    );
    assert!(host.poll_transmit().is_none());

    // A broker that sent them swapped anyway: the client refuses.
    let mut bytes = Vec::new();
    mojo_legacy_wire::broker::BrokerMessage::BufferResponse {
        guid,
        trailing: &[],
    }
    .encode_frame(Profile::Libchrome, &mut bytes)
    .unwrap();
    let (_, rw, ro) = writable_region(4096, 10);
    let e = client
        .handle_response_read(&bytes, vec![ro, rw], &probe)
        .unwrap_err();
    assert!(
        matches!(e, BufferError::WrongFdMode { index: 0, .. }),
        "{e:?}"
    );

    host.fail_buffer_request(asked.id).unwrap();
    assert_eq!(host.poll_transmit().unwrap().fds.len(), 0);
    assert!(host.is_idle());
}
