//! Two NodeLinkMemory instances (the two nodes of one link) over the same
//! simulated shared regions, stepped by hand: a pool runs dry, one side is
//! asked for a buffer and announces it, the other registers it before or
//! after the messages that use it; parcels and RouterLinkStates cross in
//! both directions; at the end no block is left allocated anywhere.

mod memory_support;

use ipcz_node::memory::{
    AddedBlockBuffer, FreeOutcome, MemoryAction, MemoryOptions, NodeLinkMemory, ReleaseOutcome,
    Resolved,
};
use ipcz_wire::memory::primary;
use ipcz_wire::types::{BufferId, FragmentDescriptor, LinkSide};
use memory_support::Shared;
use mojo_wire_kit::HeapMemory;

fn link() -> (NodeLinkMemory<Shared>, NodeLinkMemory<Shared>) {
    let heap = HeapMemory::new(primary::SIZE);
    NodeLinkMemory::initialize_primary_buffer(&heap).unwrap();
    let region = Shared::new(heap);
    (
        NodeLinkMemory::new(region.clone(), MemoryOptions::default()).unwrap(),
        NodeLinkMemory::new(region, MemoryOptions::default()).unwrap(),
    )
}

/// What the caller of a NodeLinkMemory does with its actions: create each
/// region asked for and hand it back; returns the AddBlockBuffer messages to
/// send with the regions they carry.
fn serve_actions(memory: &mut NodeLinkMemory<Shared>) -> Vec<(AddedBlockBuffer, Shared)> {
    memory
        .take_actions()
        .into_iter()
        .map(|action| {
            let MemoryAction::CreateBlockBuffer {
                block_size,
                buffer_size,
            } = action;
            let region = Shared::new(HeapMemory::new(buffer_size));
            let added = memory
                .provide_block_buffer(block_size, region.clone())
                .unwrap();
            (added, region)
        })
        .collect()
}

/// Every block of every allocator is free again.
fn assert_all_free(memory: &NodeLinkMemory<Shared>) {
    for allocator in memory.block_allocators() {
        let region = memory.buffer(allocator.buffer()).unwrap();
        let free = allocator.free_list(region).unwrap();
        assert_eq!(
            free.len(),
            allocator.region().num_blocks - 1,
            "buffer {} {}-byte blocks",
            allocator.buffer(),
            allocator.block_size()
        );
    }
}

#[test]
fn exhaustion_forces_add_block_buffer_and_the_peer_follows() {
    let (mut a, mut b) = link();

    // A creates central links until the 64-byte pool is dry.
    let mut states = Vec::new();
    while let Some(state) = a.allocate_router_link_state().unwrap() {
        states.push(state);
    }
    assert_eq!(states.len(), 1483);
    let sent = serve_actions(&mut a);
    assert_eq!(sent.len(), 1, "one request per block size");
    let (added, region) = sent.into_iter().next().unwrap();
    assert_eq!(
        added,
        AddedBlockBuffer {
            id: BufferId(1),
            block_size: 64
        }
    );

    // A's next state lives in the new buffer; a descriptor naming it could
    // reach B before AddBlockBuffer only if A broke the send order, but B
    // copes either way: pending, then resolved.
    let in_new_buffer = a.allocate_router_link_state().unwrap().unwrap();
    assert_eq!(in_new_buffer.buffer_id, BufferId(1));
    assert!(matches!(
        b.router_link_state(in_new_buffer),
        Ok(Resolved::Pending(BufferId(1)))
    ));
    b.add_block_buffer(added.id, added.block_size, region)
        .unwrap();
    let theirs = b.router_link_state(in_new_buffer).unwrap().ready().unwrap();
    theirs.set_side_stable(LinkSide::B).unwrap();
    a.router_link_state(in_new_buffer)
        .unwrap()
        .ready()
        .unwrap()
        .set_side_stable(LinkSide::A)
        .unwrap();
    let ours = a.router_link_state(in_new_buffer).unwrap().ready().unwrap();
    assert!(ours.try_lock(LinkSide::A).unwrap());
    assert!(!theirs.try_lock(LinkSide::B).unwrap());
    ours.unlock(LinkSide::A).unwrap();
    states.push(in_new_buffer);

    // B allocates from the buffer A added too (the pools are shared).
    let b_state = b.allocate_router_link_state().unwrap().unwrap();
    assert_eq!(b_state.buffer_id, BufferId(1));
    states.push(b_state);

    // Every state is released by both sides; the last one frees it.
    for (i, state) in states.iter().enumerate() {
        let (first, second) = if i % 3 == 0 {
            (&mut b, &mut a)
        } else {
            (&mut a, &mut b)
        };
        assert_eq!(
            first.release_router_link_state(*state),
            Ok(ReleaseOutcome::Kept)
        );
        assert_eq!(
            second.release_router_link_state(*state),
            Ok(ReleaseOutcome::Freed)
        );
    }
    assert_all_free(&a);
    assert_all_free(&b);
}

#[test]
fn parcels_both_ways_and_a_buffer_that_arrives_after_its_fragments() {
    let (mut a, mut b) = link();
    let grow = MemoryOptions {
        fixed_parcel_capacity: false,
    };
    let heap = HeapMemory::new(primary::SIZE);
    NodeLinkMemory::initialize_primary_buffer(&heap).unwrap();
    let region = Shared::new(heap);
    let mut a2 = NodeLinkMemory::new(region.clone(), grow).unwrap();
    let mut b2 = NodeLinkMemory::new(region, grow).unwrap();

    // Parcels in the primary buffer, both directions, every class.
    for len in [1usize, 56, 57, 300, 600, 1500, 3000, 4088] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        let to_b = a.allocate_parcel_data(&data).unwrap().unwrap();
        let to_a = b.allocate_parcel_data(&data).unwrap().unwrap();
        assert_ne!(to_a, to_b);
        assert_eq!(b.take_parcel_data(to_b), Ok(Resolved::Ready(data.clone())));
        assert_eq!(a.take_parcel_data(to_a), Ok(Resolved::Ready(data)));
    }
    assert_all_free(&a);

    // With growable parcel capacity, a full 4096-byte class asks for more.
    let mut held = Vec::new();
    while let Some(d) = a2.allocate_parcel_data(&[7; 4000]).unwrap() {
        held.push(d);
    }
    let sent = serve_actions(&mut a2);
    let (added, region) = sent.into_iter().next().expect("a buffer request");
    assert_eq!(added.block_size, 4096);
    let in_new = a2.allocate_parcel_data(&[9; 4000]).unwrap().unwrap();
    assert_eq!(in_new.buffer_id, added.id);
    // B gets the parcel first (pending), drops another one unread (freed
    // later), then the buffer.
    let dropped = a2.allocate_parcel_data(&[8; 4000]).unwrap().unwrap();
    assert_eq!(b2.read_parcel_data(in_new), Ok(Resolved::Pending(added.id)));
    assert_eq!(b2.free_fragment(dropped), Ok(FreeOutcome::Deferred));
    b2.add_block_buffer(added.id, added.block_size, region)
        .unwrap();
    assert_eq!(b2.num_deferred_frees(), 0);
    assert_eq!(
        b2.take_parcel_data(in_new),
        Ok(Resolved::Ready(vec![9; 4000]))
    );
    for d in held {
        assert_eq!(b2.take_parcel_data(d), Ok(Resolved::Ready(vec![7; 4000])));
    }
    assert_all_free(&a2);
    assert_all_free(&b2);
}

#[test]
fn a_fragment_in_no_registered_buffer_is_never_read_from_elsewhere() {
    let (_, mut b) = link();
    let nowhere = FragmentDescriptor::new(42, 64, 64);
    assert_eq!(
        b.take_parcel_data(nowhere),
        Ok(Resolved::Pending(BufferId(42)))
    );
    assert!(
        b.add_block_buffer(BufferId(42), 64, Shared::new(HeapMemory::new(100)))
            .is_err()
    );
    assert_eq!(
        b.read_parcel_data(nowhere),
        Ok(Resolved::Pending(BufferId(42)))
    );
}
