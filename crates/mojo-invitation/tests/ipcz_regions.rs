//! The ipcz direct handshake over a real shared memory region: the broker
//! makes a sealed memfd with the platform crate, the connector initializes
//! it through the broker's mapping, the non-broker imports the fd it
//! received and maps it, and both NodeLinkMemory views then see each
//! other's writes.

use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use ipcz_node::memory::{MemoryOptions, NodeLinkMemory};
use ipcz_wire::types::{LinkSide, NodeName};
use mojo_invitation::ipcz::{BrokerConnector, NonBrokerConnector, PrimaryBuffer};
use mojo_platform_channel::{RegionMode, SharedMemory, SharedMemoryRegion};
use mojo_wire_kit::{Guid, SeededRandom};

#[test]
fn both_sides_share_the_primary_buffer_the_broker_created() {
    let mut rng = SeededRandom::new(42);
    let region = SharedMemoryRegion::create(RegionMode::Unsafe, 131072, &mut rng).expect("memfd");
    let broker_mapping = region.map().expect("map");
    let g = region.guid();
    let guid = Guid::new((g >> 64) as u64, g as u64);
    let fd = region.fd().try_clone_to_owned().expect("dup");
    drop(region);

    let mut broker = BrokerConnector::new(
        NodeName { high: 7, low: 7 },
        2,
        PrimaryBuffer::new(131072, guid, fd),
        &broker_mapping,
        &mut rng,
    )
    .expect("broker");
    let mut non_broker = NonBrokerConnector::new(2).expect("non-broker");
    let to_non_broker = broker.poll_transmit().expect("greeting");
    let to_broker = non_broker.poll_transmit().expect("greeting");
    non_broker
        .handle_frame(&to_non_broker.bytes, to_non_broker.fds)
        .expect("non-broker accepts");
    broker
        .handle_frame(&to_broker.bytes, to_broker.fds)
        .expect("broker accepts");
    let at_broker = broker.finish().expect("broker");
    let mut link = non_broker.finish().expect("non-broker");

    // The non-broker imports what it got, as production code would.
    let b = link.primary_buffer;
    let fd = link.primary_buffer_fd.take().expect("fd");
    assert!(fd.as_fd().try_clone_to_owned().is_ok());
    let imported = SharedMemoryRegion::from_fds(
        b.mode,
        b.buffer_size as usize,
        (u128::from(b.guid.high) << 64) | u128::from(b.guid.low),
        vec![fd],
    )
    .expect("import");
    assert!(imported.is_sealed());
    let non_broker_mapping = imported.map().expect("map");

    // Initialized by the broker, visible to the non-broker.
    assert_eq!(non_broker_mapping.load_u64(8, Ordering::Acquire), Ok(12));
    let non_broker_memory =
        NodeLinkMemory::new(non_broker_mapping, MemoryOptions::default()).expect("memory");
    let broker_memory =
        NodeLinkMemory::new(broker_mapping, MemoryOptions::default()).expect("memory");

    // Shared counters: ids one side allocates are gone for the other.
    assert_eq!(
        non_broker_memory.allocate_sublink_ids(2).map(|s| s.0),
        Ok(12)
    );
    assert_eq!(broker_memory.allocate_sublink_ids(2).map(|s| s.0), Ok(14));

    // Initial portal 1's RouterLinkState, marked stable from both sides
    // (§4.4 step 1), is stable in both views.
    for (memory, l) in [(&non_broker_memory, &link), (&broker_memory, &at_broker)] {
        let portal = l.initial_portals().nth(1).expect("portal 1");
        assert_eq!(portal.link_state.offset, 320);
        memory
            .initial_router_link_state(portal.index as usize)
            .expect("slot")
            .set_side_stable(portal.side)
            .expect("stable");
    }
    for memory in [&non_broker_memory, &broker_memory] {
        let state = memory.initial_router_link_state(1).expect("slot");
        assert!(
            state.try_lock(LinkSide::B).expect("lock"),
            "both sides stable"
        );
        state.unlock(LinkSide::B).expect("unlock");
    }
}
