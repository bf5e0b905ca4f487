//! Property tests of NodeLinkMemory's shared-memory protocols with two
//! simulated sides over one heap region (spec §5.3, §5.4, §5.9).
//!
//! `HeapMemory` is single-threaded, so the sides cannot run at the same
//! time; instead the other side's operation is injected in the middle of
//! ours, right before our next write or compare-and-swap (after our loads),
//! which is exactly where a real concurrent peer makes a CAS fail. A race
//! of two real processes needs the platform crate's mappings and is tested
//! there.

mod memory_support;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use ipcz_node::memory::{
    BlockAllocator, MAX_CAS_ATTEMPTS, MemoryError, MemoryOptions, NodeLinkMemory, ReleaseOutcome,
    Resolved, RouterLinkState,
};
use ipcz_wire::memory::block::BlockHeader;
use ipcz_wire::memory::{LinkStatus, primary};
use ipcz_wire::types::{BufferId, FragmentDescriptor, LinkSide, NodeName};
use memory_support::{HookNext, Shared};
use mojo_wire_kit::{HeapMemory, SharedMemory};
use proptest::prelude::*;

fn primary_region() -> Shared {
    let heap = HeapMemory::new(primary::SIZE);
    NodeLinkMemory::initialize_primary_buffer(&heap).unwrap();
    Shared::new(heap)
}

#[derive(Clone, Copy, Debug)]
enum BlockOp {
    Allocate,
    Free(u8),
}

fn block_op() -> impl Strategy<Value = BlockOp> {
    prop_oneof![Just(BlockOp::Allocate), any::<u8>().prop_map(BlockOp::Free)]
}

type Owned = Rc<RefCell<[BTreeSet<usize>; 2]>>;

/// Runs `op` for `side` on `mem`, updating the model; returns whether it
/// changed block 0 (a successful allocate or free).
fn run_block_op(
    alloc: &BlockAllocator,
    mem: &impl SharedMemory,
    owned: &Owned,
    side: usize,
    op: BlockOp,
) -> bool {
    match op {
        BlockOp::Allocate => match alloc.allocate(mem).expect("allocate") {
            Some(block) => {
                let mut o = owned.borrow_mut();
                assert!(
                    !o[0].contains(&block) && !o[1].contains(&block),
                    "block {block} handed out twice"
                );
                o[side].insert(block);
                true
            }
            None => false,
        },
        BlockOp::Free(pick) => {
            let block = {
                let o = owned.borrow();
                if o[side].is_empty() {
                    return false;
                }
                *o[side].iter().nth(pick as usize % o[side].len()).unwrap()
            };
            owned.borrow_mut()[side].remove(&block);
            alloc.free(mem, block).expect("free");
            true
        }
    }
}

fn link_op() -> impl Strategy<Value = (bool, u8)> {
    (any::<bool>(), 0u8..4)
}

/// The pure model of one link-state operation (ipcz-wire's transitions).
fn model_link_op(status: LinkStatus, side: LinkSide, op: u8) -> (LinkStatus, Option<bool>) {
    match op {
        0 => (status.set_side_stable(side), None),
        1 => {
            let t = status.try_lock(side);
            (t.status, Some(t.ok))
        }
        2 => (status.unlock(side), None),
        _ => {
            let t = status.reset_waiting_bit(side);
            (t.status, Some(t.ok))
        }
    }
}

fn run_link_op(
    state: &RouterLinkState<'_, impl SharedMemory>,
    side: LinkSide,
    op: u8,
) -> Option<bool> {
    match op {
        0 => state.set_side_stable(side).map(|()| None),
        1 => state.try_lock(side).map(Some),
        2 => state.unlock(side).map(|()| None),
        _ => state.reset_waiting_bit(side).map(Some),
    }
    .expect("link state op")
}

fn side(b: bool) -> LinkSide {
    if b { LinkSide::B } else { LinkSide::A }
}

fn is_access_error(e: &MemoryError) -> bool {
    matches!(e, MemoryError::Access { .. })
}

#[derive(Clone, Debug)]
enum HostileOp {
    Scribble { word: usize, value: u32 },
    ScribbleDuringNext { word: usize, value: u32, times: u8 },
    AllocateLinkState,
    ReleaseLinkState(u8),
    AllocateParcel(u16),
    TakeParcel(u8),
    CorruptParcelHeader { pick: u8, size: u32 },
    FreeAnything { buffer: u8, offset: u32, size: u32 },
    LinkStateAt { offset: u32, op: u8, side: bool },
    Ids,
    FreeListWalk,
}

fn hostile_op() -> impl Strategy<Value = HostileOp> {
    // Mostly the words that matter: counters, initial states, block headers.
    let word = prop_oneof![
        0usize..64,
        64usize..256,
        (0usize..1484).prop_map(|b| (1024 + 64 * b) / 4),
        (0usize..6).prop_map(|r| primary::REGIONS[r].offset / 4),
        0usize..primary::SIZE / 4,
    ];
    prop_oneof![
        (word.clone(), any::<u32>()).prop_map(|(word, value)| HostileOp::Scribble { word, value }),
        (word, any::<u32>(), 1u8..8)
            .prop_map(|(word, value, times)| HostileOp::ScribbleDuringNext { word, value, times }),
        Just(HostileOp::AllocateLinkState),
        any::<u8>().prop_map(HostileOp::ReleaseLinkState),
        (1u16..5000).prop_map(HostileOp::AllocateParcel),
        any::<u8>().prop_map(HostileOp::TakeParcel),
        (any::<u8>(), prop_oneof![0u32..5000, any::<u32>()])
            .prop_map(|(pick, size)| HostileOp::CorruptParcelHeader { pick, size }),
        (
            0u8..3,
            any::<u32>(),
            prop_oneof![Just(64u32), Just(256), Just(4096), any::<u32>()]
        )
            .prop_map(|(buffer, offset, size)| HostileOp::FreeAnything {
                buffer,
                offset,
                size
            }),
        (any::<u32>(), 0u8..6, any::<bool>())
            .prop_map(|(offset, op, side)| HostileOp::LinkStateAt { offset, op, side }),
        Just(HostileOp::Ids),
        Just(HostileOp::FreeListWalk),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Allocations and frees from two sides, each possibly landing in the
    /// middle of the other's: no block is ever handed out twice, and the
    /// free list plus both sides' blocks are always exactly the allocator's
    /// blocks 1..n; block 0's version counts every successful operation.
    #[test]
    fn two_sides_interleaved_keep_the_allocator_consistent(
        region in 0usize..6,
        ops in prop::collection::vec((any::<bool>(), block_op(), prop::option::of(block_op())), 1..300),
    ) {
        let mem = primary_region();
        let alloc = BlockAllocator::new(BufferId(0), primary::REGIONS[region], mem.size()).unwrap();
        let n = primary::REGIONS[region].num_blocks;
        let owned: Owned = Rc::default();
        let successes = Rc::new(RefCell::new(0u32));
        for (b, op, interrupt) in ops {
            let (us, them) = if b { (1, 0) } else { (0, 1) };
            if let Some(iop) = interrupt {
                let (owned, successes) = (owned.clone(), successes.clone());
                mem.set_hook(Box::new(move |heap: &HeapMemory| {
                    if run_block_op(&alloc, heap, &owned, them, iop) {
                        *successes.borrow_mut() += 1;
                    }
                    HookNext::Remove
                }));
            }
            if run_block_op(&alloc, &mem, &owned, us, op) {
                *successes.borrow_mut() += 1;
            }
            mem.clear_hook();
            let free: Vec<usize> = alloc.free_list(&*mem.heap).expect("free list");
            let free_set: BTreeSet<usize> = free.iter().copied().collect();
            prop_assert_eq!(free_set.len(), free.len(), "free list repeats a block");
            let o = owned.borrow();
            prop_assert!(free_set.is_disjoint(&o[0]) && free_set.is_disjoint(&o[1]));
            prop_assert_eq!(free.len() + o[0].len() + o[1].len(), n - 1);
            let front = BlockHeader::from_word(mem.heap.load_u32(primary::REGIONS[region].offset, Ordering::Relaxed).unwrap());
            prop_assert_eq!(u32::from(front.version), *successes.borrow() % 65536);
        }
    }

    /// Link-state operations from both sides, each possibly interrupted by
    /// the other side's, give exactly the results of the pure transitions
    /// applied in the order they took effect; the lock bits never both set.
    #[test]
    fn link_state_ops_from_two_sides_follow_the_model(
        ops in prop::collection::vec((link_op(), prop::option::of(link_op())), 1..200),
    ) {
        let mem = primary_region();
        let state = RouterLinkState::new(&mem, BufferId(0), 1088).unwrap();
        state.initialize().unwrap();
        let mut model = LinkStatus::empty();
        for ((b, op), interrupt) in ops {
            let expected_interrupt = interrupt.map(|(ib, iop)| {
                let (status, result) = model_link_op(model, side(ib), iop);
                model = status;
                result
            });
            let seen_interrupt = Rc::new(RefCell::new(None));
            if let Some((ib, iop)) = interrupt {
                let seen = seen_interrupt.clone();
                mem.set_hook(Box::new(move |heap: &HeapMemory| {
                    let other = RouterLinkState::new(heap, BufferId(0), 1088).unwrap();
                    *seen.borrow_mut() = Some(run_link_op(&other, side(ib), iop));
                    HookNext::Remove
                }));
            }
            let result = run_link_op(&state, side(b), op);
            // Every op writes (a CAS) before deciding, so the hook ran.
            if interrupt.is_some() {
                prop_assert_eq!(*seen_interrupt.borrow(), expected_interrupt);
            }
            mem.clear_hook();
            let (status, expected) = model_link_op(model, side(b), op);
            model = status;
            prop_assert_eq!(result, expected);
            let now = state.status().unwrap();
            prop_assert_eq!(now, model);
            prop_assert!(!now.contains(LinkStatus::LOCKED));
        }
    }

    /// A RouterLinkState allocated by one side and shared with the other is
    /// freed by exactly the one that drops the last reference, in any order.
    #[test]
    fn shared_link_states_are_freed_once(
        releases in prop::collection::vec(any::<bool>(), 1..60),
    ) {
        let mem = primary_region();
        let mut a = NodeLinkMemory::new(mem.clone(), MemoryOptions::default()).unwrap();
        let mut b = NodeLinkMemory::new(mem.clone(), MemoryOptions::default()).unwrap();
        let states: Vec<FragmentDescriptor> = (0..releases.len())
            .map(|i| if i % 2 == 0 { a.allocate_router_link_state() } else { b.allocate_router_link_state() }.unwrap().unwrap())
            .collect();
        let alloc = a.block_allocators().next().copied().unwrap();
        let before = alloc.free_list(&*mem.heap).unwrap().len();
        let mut freed = 0;
        for (d, b_first) in states.iter().zip(&releases) {
            let (first, second) = if *b_first { (&mut b, &mut a) } else { (&mut a, &mut b) };
            prop_assert_eq!(first.release_router_link_state(*d), Ok(ReleaseOutcome::Kept));
            prop_assert_eq!(second.release_router_link_state(*d), Ok(ReleaseOutcome::Freed));
            freed += 1;
        }
        prop_assert_eq!(alloc.free_list(&*mem.heap).unwrap().len(), before + freed);
    }

    /// Both sides allocating sublink and buffer ids from the shared
    /// counters, in any order and amounts, never get overlapping ids.
    #[test]
    fn ids_from_both_sides_never_overlap(
        requests in prop::collection::vec((any::<bool>(), 1u64..5, any::<bool>()), 1..100),
    ) {
        let mem = primary_region();
        let sides = [
            NodeLinkMemory::new(mem.clone(), MemoryOptions::default()).unwrap(),
            NodeLinkMemory::new(mem.clone(), MemoryOptions::default()).unwrap(),
        ];
        let mut sublinks = BTreeSet::new();
        let mut buffers = BTreeSet::new();
        for (b, count, buffer) in requests {
            let side = &sides[usize::from(b)];
            if buffer {
                let id = side.allocate_new_buffer_id().unwrap();
                prop_assert!(id.0 >= 1 && buffers.insert(id));
            } else {
                let first = side.allocate_sublink_ids(count).unwrap().0;
                prop_assert!(first >= 12);
                for id in first..first + count {
                    prop_assert!(sublinks.insert(id), "sublink {} twice", id);
                }
            }
        }
    }

    /// A peer that writes random words into the primary buffer between and
    /// during operations gets typed errors at worst: no panic, no access
    /// outside the checks (an `Access` error would mean an unvalidated
    /// offset was used), no endless loop.
    #[test]
    fn a_hostile_writer_yields_only_typed_errors(
        ops in prop::collection::vec(hostile_op(), 1..120),
    ) {
        let mem = primary_region();
        let mut m = NodeLinkMemory::new(mem.clone(), MemoryOptions::default()).unwrap();
        let mut states = Vec::new();
        let mut parcels = Vec::new();
        let mut errors = Vec::new();
        for op in ops {
            let result: Result<(), MemoryError> = match op {
                HostileOp::Scribble { word, value } => {
                    mem.heap.store_u32(word * 4, value, Ordering::Relaxed).unwrap();
                    Ok(())
                }
                HostileOp::ScribbleDuringNext { word, value, times } => {
                    let mut left = times;
                    mem.set_hook(Box::new(move |heap: &HeapMemory| {
                        heap.store_u32(word * 4, value.rotate_left(u32::from(left)), Ordering::Relaxed).unwrap();
                        left -= 1;
                        if left == 0 { HookNext::Remove } else { HookNext::Keep }
                    }));
                    Ok(())
                }
                HostileOp::AllocateLinkState => m.allocate_router_link_state().map(|d| states.extend(d)),
                HostileOp::ReleaseLinkState(pick) if !states.is_empty() => {
                    let d = states.swap_remove(pick as usize % states.len());
                    m.release_router_link_state(d).map(drop)
                }
                HostileOp::AllocateParcel(len) => {
                    let data = vec![0x5a; usize::from(len)];
                    m.allocate_parcel_data(&data).map(|d| parcels.extend(d))
                }
                HostileOp::TakeParcel(pick) if !parcels.is_empty() => {
                    let d = parcels.swap_remove(pick as usize % parcels.len());
                    m.take_parcel_data(d).map(|r| {
                        if let Resolved::Ready(data) = r {
                            // Never more than the fragment holds.
                            assert!(data.len() <= d.size as usize - 8);
                        }
                    })
                }
                HostileOp::CorruptParcelHeader { pick, size } if !parcels.is_empty() => {
                    let d: FragmentDescriptor = parcels[pick as usize % parcels.len()];
                    mem.heap.store_u32(d.offset as usize, size, Ordering::Relaxed).unwrap();
                    Ok(())
                }
                HostileOp::FreeAnything { buffer, offset, size } => {
                    m.free_fragment(FragmentDescriptor::new(u64::from(buffer), offset, size)).map(drop)
                }
                HostileOp::LinkStateAt { offset, op, side: s } => {
                    let d = FragmentDescriptor::new(0, offset % (primary::SIZE as u32 + 64), 64);
                    match m.router_link_state(d) {
                        Ok(Resolved::Ready(state)) => match op {
                            4 => state.try_lock_for_bypass(side(s), NodeName { high: 1, low: 2 }).map(drop),
                            5 => state.can_node_request_bypass(side(s), NodeName { high: 1, low: 2 }).map(drop),
                            _ => {
                                run_link_op_checked(&state, side(s), op)
                            }
                        },
                        Ok(Resolved::Pending(_)) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
                HostileOp::Ids => m.allocate_sublink_ids(2).and_then(|_| m.allocate_new_buffer_id()).map(drop),
                HostileOp::FreeListWalk => {
                    let allocators: Vec<BlockAllocator> = m.block_allocators().copied().collect();
                    allocators.iter().try_for_each(|a| a.free_list(&*mem.heap).map(drop))
                }
                _ => Ok(()),
            };
            if let Err(e) = result {
                prop_assert!(!is_access_error(&e), "unchecked access: {}", e);
                errors.push(e);
            }
        }
        mem.clear_hook();
    }
}

fn run_link_op_checked(
    state: &RouterLinkState<'_, impl SharedMemory>,
    side: LinkSide,
    op: u8,
) -> Result<(), MemoryError> {
    match op {
        0 => state.set_side_stable(side),
        1 => state.try_lock(side).map(drop),
        2 => state.unlock(side),
        _ => state.reset_waiting_bit(side).map(drop),
    }
}

/// A peer that changes block 0 before every one of our compare-and-swaps
/// makes the loop give up with `Contention` after the named limit.
#[test]
fn endless_interference_ends_in_contention() {
    let mem = primary_region();
    let region = primary::REGIONS[1];
    let alloc = BlockAllocator::new(BufferId(0), region, mem.size()).unwrap();
    let calls = Rc::new(RefCell::new(0usize));
    let c = calls.clone();
    mem.set_hook(Box::new(move |heap: &HeapMemory| {
        *c.borrow_mut() += 1;
        // Bump block 0's version (without touching `next`): every CAS of
        // ours sees a value it has not seen.
        let word = heap.load_u32(region.offset, Ordering::Relaxed).unwrap();
        let bumped = (word & 0xFFFF_0000) | (word.wrapping_add(1) & 0xFFFF);
        heap.store_u32(region.offset, bumped, Ordering::Relaxed)
            .unwrap();
        HookNext::Keep
    }));
    assert_eq!(
        alloc.allocate(&mem),
        Err(MemoryError::Contention {
            buffer: BufferId(0),
            offset: region.offset
        })
    );
    assert_eq!(*calls.borrow(), MAX_CAS_ATTEMPTS);
    assert!(matches!(
        alloc.free(&mem, 3),
        Err(MemoryError::Contention { .. })
    ));

    let state = RouterLinkState::new(&mem, BufferId(0), 1088).unwrap();
    mem.set_hook(Box::new(|heap: &HeapMemory| {
        let word = heap.load_u32(1092, Ordering::Relaxed).unwrap();
        heap.store_u32(1092, word ^ 0x40, Ordering::Relaxed)
            .unwrap();
        HookNext::Keep
    }));
    assert!(matches!(
        state.set_side_stable(LinkSide::A),
        Err(MemoryError::Contention { .. })
    ));
    mem.heap.store_u32(1092, 0x03, Ordering::Relaxed).unwrap();
    assert!(matches!(
        state.try_lock(LinkSide::A),
        Err(MemoryError::Contention { .. })
    ));
    mem.clear_hook();
}
