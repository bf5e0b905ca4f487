//! NodeLinkMemory's shared-memory protocols raced by two real processes
//! over real mappings of sealed memfds (issue 9): the parent (side A) and a
//! re-executed child of this test binary (side B) run the same operations
//! at the same time, in tight loops, on one primary buffer.
//!
//! - the block allocators of the primary buffer, every block tagged by its
//!   holder and claimed in an owner word, so a block handed out twice or
//!   lost is caught;
//! - RouterLinkStates: lock, bypass lock, unlock, side-stable, waiting bits
//!   and the reference count that frees exactly once;
//! - parcel data in fragments sent to the other side, which reads and frees
//!   them.
//!
//! Each side publishes its progress in a control region of the test (never
//! touched by the code under test) and counts how often it saw the other
//! side move between two of its own iterations: the tests assert that the
//! two processes really interleaved. See `process_support` for the process
//! and socket plumbing, deadlines included.

#![allow(missing_docs)]

mod process_support;

use std::collections::BTreeSet;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use ipcz_node::memory::{
    BlockAllocator, MemoryOptions, NodeLinkMemory, ReleaseOutcome, Resolved, RouterLinkState,
};
use ipcz_wire::memory::block::BlockHeader;
use ipcz_wire::memory::{LinkStatus, primary};
use ipcz_wire::types::{BufferId, FragmentDescriptor, LinkSide, NodeName};
use mojo_platform_channel::SharedMemory;
use process_support::{
    CONTROL_SIZE, Control, Counted, Lockstep, NO_WAITING, Peer, Rng, assert_no_fd_leak,
    create_region, run_child, spawn_child,
};

/// Owner ids written to owner words (0 = nobody).
const PARENT: u32 = 1;
const CHILD: u32 = 2;

/// Messages of these tests.
const MSG_HELD: u64 = 10;
const MSG_RELEASE: u64 = 11;
const MSG_RELEASED: u64 = 12;
const MSG_STATES: u64 = 13;
const MSG_STATS: u64 = 14;
const MSG_PARCEL: u64 = 15;
const MSG_INLINE: u64 = 16;
const MSG_DONE: u64 = 17;
const MSG_BYPASS: u64 = 18;
const MSG_BYPASS_CHECKED: u64 = 19;
const MSG_UNLOCKED: u64 = 20;

/// Control region words shared by every test here.
const BARRIER_0: usize = 0;
const BARRIER_1: usize = 4;
const BARRIER_2: usize = 8;
const BARRIER_3: usize = 12;
const BARRIER_4: usize = 16;
const PROGRESS: [usize; 2] = [64, 72];
/// Progress words of the release race (after the lock race's).
const RELEASE_PROGRESS: [usize; 2] = [96, 104];
/// The other side's count of parcels received (fragment race).
const RECEIVED: [usize; 2] = [80, 88];

/// Iterations one side may be ahead of the other in the lockstep races.
const LOCKSTEP_WINDOW: u64 = 8;

fn lockstep(side: u32, words: [usize; 2], window: u64) -> Lockstep {
    let (ours, theirs) = if side == PARENT { (0, 1) } else { (1, 0) };
    Lockstep::new(words[ours], words[theirs], window)
}

fn link_side(side: u32) -> LinkSide {
    if side == PARENT {
        LinkSide::A
    } else {
        LinkSide::B
    }
}

#[test]
fn child_main() {
    run_child(|role, peer| {
        let regions = peer.recv_regions();
        let primary = Counted::new(regions[0].map().unwrap());
        let control = Control::new(regions[1].map().unwrap());
        match role {
            "allocator_race" => child_allocator_race(peer, &primary, &control),
            "link_state_race" => child_link_state_race(peer, primary, &control),
            "fragment_race" => child_fragment_race(peer, primary, &control),
            other => panic!("unknown role {other}"),
        }
    });
}

/// The parent's half of every test: a fresh, initialized primary buffer and
/// a zeroed control region, both sent to a new child in `role`; `body` runs
/// with the child; afterwards the child must exit successfully and no fd of
/// ours may be left open.
fn with_child(role: &str, body: impl FnOnce(&mut Peer, Counted, &Control)) {
    assert_no_fd_leak(|| {
        let started = Instant::now();
        let primary_region = create_region(primary::SIZE);
        let control_region = create_region(CONTROL_SIZE);
        let primary = Counted::new(primary_region.map().unwrap());
        NodeLinkMemory::initialize_primary_buffer(&primary).unwrap();
        let control = Control::new(control_region.map().unwrap());
        let (child, mut peer) = spawn_child(role);
        peer.send_regions(&[&primary_region, &control_region]);
        body(&mut peer, primary, &control);
        drop(peer);
        child.wait_success();
        println!("{role}: {:?} in all", started.elapsed());
    });
}

// ---------------------------------------------------------------------------
// 1. block allocators

/// Iterations of each side. Each does at most one successful operation, so
/// fewer than 65536 keeps the 16-bit ABA version of block 0 from wrapping
/// while the other side sits between the loads and the CAS of one operation
/// (the protocol's own limit, as in Chrome).
const ALLOCATOR_RACE_ITERATIONS: u64 = 20_000;

/// Blocks each side holds at most per allocator: 3 + 3 of the 3-block
/// allocators (1024, 2048, 4096 bytes) makes them run dry all the time.
const MAX_HELD_PER_ALLOCATOR: usize = 3;

/// Control region: one owner word per block of each primary allocator.
const OWNERS: usize = 1024;

fn owner_word(region: usize, block: usize) -> usize {
    let before: usize = primary::REGIONS[..region]
        .iter()
        .map(|r| r.num_blocks)
        .sum();
    OWNERS + 4 * (before + block)
}

fn primary_allocators(primary: &Counted) -> Vec<BlockAllocator> {
    primary::REGIONS
        .iter()
        .map(|r| BlockAllocator::new(BufferId::PRIMARY, *r, primary.size()).unwrap())
        .collect()
}

/// The words a holder writes into its block: the first two (the free-list
/// header included: an allocated block is wholly its holder's) and the last.
fn tag_offsets(a: &BlockAllocator, block: usize) -> [usize; 3] {
    let start = a.block_offset(block).unwrap();
    [start, start + 8, start + a.block_size() as usize - 8]
}

#[derive(Default)]
struct AllocatorSide {
    /// Per allocator: (block, tag) held now.
    held: Vec<Vec<(usize, u64)>>,
    /// Per allocator: successful allocate and free calls.
    successes: Vec<u64>,
    /// Allocations that found the list empty.
    dry: u64,
    interleaved: u64,
    /// Compare-and-swaps on block 0 that lost a race with the other side.
    failed_cas: u64,
}

fn allocate_tagged(
    a: &BlockAllocator,
    region: usize,
    mem: &Counted,
    control: &Control,
    side: u32,
    tag: u64,
) -> Option<usize> {
    let block = a.allocate(mem).expect("allocate")?;
    if let Err(other) = control.cas(owner_word(region, block), 0, side) {
        panic!(
            "block {block} of the {}-byte allocator handed to side {side} while side {other} holds it",
            a.block_size()
        );
    }
    for at in tag_offsets(a, block) {
        mem.store_u64(at, tag, Ordering::Relaxed).unwrap();
    }
    Some(block)
}

fn free_tagged(
    a: &BlockAllocator,
    region: usize,
    mem: &Counted,
    control: &Control,
    side: u32,
    (block, tag): (usize, u64),
) {
    for at in tag_offsets(a, block) {
        let found = mem.load_u64(at, Ordering::Relaxed).unwrap();
        assert_eq!(
            found,
            tag,
            "block {block} of the {}-byte allocator written by someone else while side {side} held it",
            a.block_size()
        );
    }
    if let Err(other) = control.cas(owner_word(region, block), side, 0) {
        panic!("owner word of block {block} changed to {other} while side {side} held it");
    }
    a.free(mem, block).expect("free");
}

fn allocator_race(side: u32, mem: &Counted, control: &Control) -> AllocatorSide {
    let allocators = primary_allocators(mem);
    let mut rng = Rng::new(0xA110C + u64::from(side));
    let mut me = AllocatorSide {
        held: vec![Vec::new(); allocators.len()],
        successes: vec![0; allocators.len()],
        ..AllocatorSide::default()
    };
    let mut overlap = lockstep(side, PROGRESS, LOCKSTEP_WINDOW);
    control.barrier(BARRIER_0);
    for i in 0..ALLOCATOR_RACE_ITERATIONS {
        let r = rng.below(allocators.len());
        let a = &allocators[r];
        let held = &mut me.held[r];
        if held.is_empty() || (held.len() < MAX_HELD_PER_ALLOCATOR && rng.one_in(2)) {
            let tag = (u64::from(side) << 56) | (i << 16) | r as u64;
            match allocate_tagged(a, r, mem, control, side, tag) {
                Some(block) => {
                    held.push((block, tag));
                    me.successes[r] += 1;
                }
                None => me.dry += 1,
            }
        } else {
            let pick = rng.below(held.len());
            let entry = held.swap_remove(pick);
            free_tagged(a, r, mem, control, side, entry);
            me.successes[r] += 1;
        }
        overlap.step(control, i);
    }
    overlap.finish(control);
    me.interleaved = overlap.interleaved;
    me.failed_cas = mem.failed_cas();
    control.barrier(BARRIER_1);
    me
}

fn release_all(side: u32, mem: &Counted, control: &Control, me: &mut AllocatorSide) {
    let allocators = primary_allocators(mem);
    for (r, held) in me.held.iter_mut().enumerate() {
        for entry in held.drain(..) {
            free_tagged(&allocators[r], r, mem, control, side, entry);
        }
    }
}

fn child_allocator_race(peer: &mut Peer, mem: &Counted, control: &Control) {
    let mut me = allocator_race(CHILD, mem, control);
    let mut report = vec![MSG_HELD, me.dry, me.interleaved, me.failed_cas];
    for (r, held) in me.held.iter().enumerate() {
        report.push(me.successes[r]);
        report.push(held.len() as u64);
        report.extend(held.iter().map(|&(b, _)| b as u64));
    }
    peer.send(&report, vec![]);
    peer.flush_all();
    peer.expect(MSG_RELEASE);
    release_all(CHILD, mem, control, &mut me);
    peer.send(&[MSG_RELEASED], vec![]);
}

fn front_version(a: &BlockAllocator, mem: &Counted) -> u16 {
    let word = mem.load_u32(a.region().offset, Ordering::Acquire).unwrap();
    BlockHeader::from_word(word).version
}

/// Both processes allocate and free blocks of all six primary allocators,
/// 20000 iterations each, at the same time. No block is ever held by both
/// (owner words claimed by compare-exchange), nobody writes into a block
/// another holds (tags checked before each free), and when both stop the
/// free list plus the blocks each holds is exactly every block, once; block
/// 0's version counts exactly the successful operations of both sides.
#[test]
fn block_allocators_raced_by_two_processes_stay_consistent() {
    with_child("allocator_race", |peer, mem, control| {
        let started = Instant::now();
        let mut me = allocator_race(PARENT, &mem, control);
        let raced = started.elapsed();
        let report = peer.expect(MSG_HELD);
        let (child_dry, child_interleaved, child_cas) = (report[0], report[1], report[2]);
        let mut rest = &report[3..];
        let allocators = primary_allocators(&mem);
        let mut total_ops = 0;
        let mut child_held_total = vec![0u64; allocators.len()];
        for (r, a) in allocators.iter().enumerate() {
            let child_successes = rest[0];
            let n = rest[1] as usize;
            let child_held: Vec<usize> = rest[2..2 + n].iter().map(|&b| b as usize).collect();
            rest = &rest[2 + n..];
            child_held_total[r] = n as u64;
            let ours: Vec<usize> = me.held[r].iter().map(|&(b, _)| b).collect();
            let free = a.free_list(&mem).unwrap();
            let mut all: Vec<usize> = free
                .iter()
                .chain(&ours)
                .chain(&child_held)
                .copied()
                .collect();
            all.sort_unstable();
            let expected: Vec<usize> = (1..a.region().num_blocks).collect();
            assert_eq!(
                all,
                expected,
                "{}-byte allocator: free {free:?}, parent {ours:?}, child {child_held:?}",
                a.block_size()
            );
            for (blocks, owner) in [(&free, 0), (&ours, PARENT), (&child_held, CHILD)] {
                for &b in blocks {
                    assert_eq!(control.load(owner_word(r, b)), owner, "owner of block {b}");
                }
            }
            let successes = me.successes[r] + child_successes;
            total_ops += successes;
            assert_eq!(
                u64::from(front_version(a, &mem)),
                successes % 65536,
                "{}-byte allocator: version vs successful operations",
                a.block_size()
            );
            me.successes[r] = successes;
        }
        assert!(
            me.failed_cas + child_cas > 0,
            "no operation of one side ever raced one of the other"
        );
        assert!(
            me.interleaved > 1 && child_interleaved > 1,
            "the processes never interleaved ({} / {child_interleaved})",
            me.interleaved
        );
        peer.send(&[MSG_RELEASE], vec![]);
        let held: Vec<u64> = me.held.iter().map(|h| h.len() as u64).collect();
        release_all(PARENT, &mem, control, &mut me);
        peer.expect(MSG_RELEASED);
        for (r, a) in allocators.iter().enumerate() {
            assert_eq!(a.free_list(&mem).unwrap().len(), a.region().num_blocks - 1);
            let ops = me.successes[r] + held[r] + child_held_total[r];
            assert_eq!(u64::from(front_version(a, &mem)), ops % 65536);
            for b in 1..a.region().num_blocks {
                assert_eq!(control.load(owner_word(r, b)), 0);
            }
        }
        println!(
            "allocator race: {ALLOCATOR_RACE_ITERATIONS} iterations per side in {raced:?}, \
             {total_ops} successful operations, {} + {child_dry} dry, \
             interleaved {} / {child_interleaved}, lost CAS races {} / {child_cas}",
            me.dry, me.interleaved, me.failed_cas
        );
    });
}

// ---------------------------------------------------------------------------
// 2. RouterLinkStates

/// Iterations of each side on the shared lock states.
const LINK_RACE_ITERATIONS: u64 = 10_000;

/// RouterLinkStates both sides lock and unlock (allocated by the parent).
const LOCK_STATES: usize = 4;

/// RouterLinkStates each side allocates, shares and releases: 2 * 600 + 4
/// of the 1483 blocks of 64 bytes, so the pool never runs dry.
const REFCOUNT_STATES_PER_SIDE: usize = 600;

/// Control region: who is inside the critical section of lock state `i`.
const HOLDER: usize = 256;
/// Control region: how often state `k` of the shared list was freed.
const FREED: usize = 1024;

fn descriptor_word(d: FragmentDescriptor) -> u64 {
    assert_eq!(d.buffer_id, BufferId::PRIMARY);
    (u64::from(d.offset) << 32) | u64::from(d.size)
}

fn descriptor_of(word: u64) -> FragmentDescriptor {
    FragmentDescriptor::new(0, (word >> 32) as u32, word as u32)
}

fn state<'a>(
    memory: &'a NodeLinkMemory<Counted>,
    d: FragmentDescriptor,
) -> RouterLinkState<'a, Counted> {
    match memory.router_link_state(d).unwrap() {
        Resolved::Ready(s) => s,
        Resolved::Pending(id) => panic!("buffer {id} unknown"),
    }
}

/// The invariants of a status word as either side may see it at any time.
fn check_status(
    status: LinkStatus,
    ours_stable: bool,
    theirs_seen_stable: &mut bool,
    side: LinkSide,
) {
    let bits = status.bits();
    assert_eq!(bits & !0x3f, 0, "undefined status bits {bits:#x}");
    assert!(
        !status.contains(LinkStatus::LOCKED),
        "locked by both sides: {bits:#x}"
    );
    if status.intersects(LinkStatus::LOCKED) {
        assert!(
            status.contains(LinkStatus::STABLE),
            "locked while unstable: {bits:#x}"
        );
    }
    for (waiting, stable) in [
        (LinkStatus::SIDE_A_WAITING, LinkStatus::SIDE_A_STABLE),
        (LinkStatus::SIDE_B_WAITING, LinkStatus::SIDE_B_STABLE),
    ] {
        if status.contains(waiting) {
            assert!(status.contains(stable), "waiting while unstable: {bits:#x}");
        }
    }
    if ours_stable {
        assert!(status.is_stable(side), "our stable bit vanished: {bits:#x}");
    }
    let theirs = status.is_stable(side.opposite());
    assert!(
        theirs || !*theirs_seen_stable,
        "their stable bit vanished: {bits:#x}"
    );
    *theirs_seen_stable |= theirs;
}

#[derive(Default, Debug)]
struct LinkStats {
    locks: u64,
    bypass_locks: u64,
    refused: u64,
    flushes: u64,
    resets: u64,
    bypass_seen: u64,
    interleaved: u64,
    freed: u64,
    /// Lock attempts refused because the other side was inside its
    /// critical section right then: the two really ran at the same time.
    contended: u64,
}

/// One side's critical section on lock state `k`, entered after a
/// successful (bypass) lock: nobody else may be in it, the lock stays ours
/// until we unlock, and a bypass source we named reads back exactly.
fn critical_section(
    s: &RouterLinkState<'_, Counted>,
    k: usize,
    control: &Control,
    side: u32,
    name: Option<NodeName>,
    rng: &mut Rng,
) {
    // The lock word is changed with Relaxed operations (as Chrome does):
    // this fence and the one before unlocking order the holder word with it.
    fence(Ordering::Acquire);
    let me = link_side(side);
    if let Err(other) = control.cas(HOLDER + 4 * k, 0, side) {
        panic!("state {k}: side {side} got the lock while side {other} holds it");
    }
    for _ in 0..=rng.below(3) {
        assert!(s.is_locked_by(me).unwrap() && !s.is_locked_by(me.opposite()).unwrap());
        if let Some(name) = name {
            assert_eq!(s.allowed_bypass_request_source().unwrap(), name);
            // From our side: only a lock of the other side allows a bypass.
            assert!(!s.can_node_request_bypass(me, name).unwrap());
        }
        std::hint::spin_loop();
    }
    if let Err(other) = control.cas(HOLDER + 4 * k, side, 0) {
        panic!("state {k}: holder word changed to {other} during side {side}'s lock");
    }
    fence(Ordering::Release);
    s.unlock(me).unwrap();
}

fn lock_race(
    side: u32,
    memory: &NodeLinkMemory<Counted>,
    states: &[FragmentDescriptor],
    control: &Control,
) -> LinkStats {
    let me = link_side(side);
    let mut rng = Rng::new(0x5747E + u64::from(side));
    // Each side becomes stable on each state at its own moment, so for a
    // while only one is: its lock attempts set its waiting bit.
    let stable_at: Vec<u64> = (0..states.len())
        .map(|_| rng.below(LINK_RACE_ITERATIONS as usize / 4) as u64)
        .collect();
    let mut stable = vec![false; states.len()];
    let mut theirs_stable = vec![false; states.len()];
    let mut stats = LinkStats::default();
    let mut overlap = lockstep(side, PROGRESS, LOCKSTEP_WINDOW);
    let mut session = 0;
    control.barrier(BARRIER_0);
    for i in 0..LINK_RACE_ITERATIONS {
        let k = rng.below(states.len());
        let s = state(memory, states[k]);
        if i >= stable_at[k] && !stable[k] {
            s.set_side_stable(me).unwrap();
            stable[k] = true;
        }
        match rng.below(6) {
            op @ (0 | 1) => {
                session += 1;
                let name = (op == 0).then_some(NodeName {
                    high: u64::from(side),
                    low: session,
                });
                let locked = match name {
                    Some(name) => s.try_lock_for_bypass(me, name),
                    None => s.try_lock(me),
                }
                .unwrap();
                if locked {
                    critical_section(&s, k, control, side, name, &mut rng);
                    if name.is_some() {
                        stats.bypass_locks += 1;
                    } else {
                        stats.locks += 1;
                    }
                } else {
                    stats.refused += 1;
                    stats.contended += u64::from(s.is_locked_by(me.opposite()).unwrap());
                }
            }
            2 => stats.flushes += u64::from(s.flush_other_side_if_waiting(me).unwrap()),
            3 => stats.resets += u64::from(s.reset_waiting_bit(me).unwrap()),
            // Not ours to unlock: must leave the other side's lock alone
            // (its critical section checks it still holds it).
            4 => s.unlock(me).unwrap(),
            _ => {
                let allowed = s.allowed_bypass_request_source().unwrap();
                if s.can_node_request_bypass(me, allowed).unwrap() {
                    // Named by either side (a plain lock keeps the last name).
                    assert!(allowed.high <= 2, "a name nobody used: {allowed:?}");
                    stats.bypass_seen += 1;
                }
            }
        }
        check_status(s.status().unwrap(), stable[k], &mut theirs_stable[k], me);
        overlap.step(control, i);
    }
    overlap.finish(control);
    stats.interleaved = overlap.interleaved;
    stats
}

/// Bypass handshakes, each side in turn the proxy.
const BYPASS_ROUNDS: u64 = 200;

/// The proxy-bypass handshake of spec §6.8 across the two processes, the
/// sides taking turns as the proxy: the proxy locks a (stable) link state
/// for bypass naming a node, and tells the other side over the socket (as
/// the named node's BypassPeer would arrive); that side must then see the
/// lock and exactly that name (stored high-Relaxed then low-Release by the
/// other process), fail to lock, and after the proxy unlocked and said so,
/// no longer allow the bypass.
fn bypass_handshakes(
    side: u32,
    peer: &mut Peer,
    memory: &NodeLinkMemory<Counted>,
    states: &[FragmentDescriptor],
) {
    let me = link_side(side);
    for round in 0..BYPASS_ROUNDS {
        let s = state(memory, states[round as usize % states.len()]);
        let proxy = if round % 2 == 0 { PARENT } else { CHILD };
        if side == proxy {
            let name = NodeName {
                high: 0xB1_0000 | u64::from(side),
                low: round,
            };
            assert!(
                s.try_lock_for_bypass(me, name).unwrap(),
                "round {round}: status {:?}",
                s.status()
            );
            peer.send(&[MSG_BYPASS, round, name.high, name.low], vec![]);
            assert_eq!(peer.expect(MSG_BYPASS_CHECKED), [round]);
            s.unlock(me).unwrap();
            peer.send(&[MSG_UNLOCKED, round], vec![]);
        } else {
            let msg = peer.expect(MSG_BYPASS);
            assert_eq!(msg[0], round);
            let name = NodeName {
                high: msg[1],
                low: msg[2],
            };
            assert!(
                s.can_node_request_bypass(me, name).unwrap(),
                "round {round}"
            );
            let other = NodeName {
                low: name.low + 1,
                ..name
            };
            assert!(!s.can_node_request_bypass(me, other).unwrap());
            assert!(!s.try_lock(me).unwrap());
            peer.send(&[MSG_BYPASS_CHECKED, round], vec![]);
            assert_eq!(peer.expect(MSG_UNLOCKED), [round]);
            assert!(!s.can_node_request_bypass(me, name).unwrap());
        }
    }
}

/// Both sides release every state of `list` in the same order at the same
/// time (in lockstep, so both often drop their reference at once) (each first touches it with side-stable and a lock attempt); the one
/// that drops the last reference frees it, and records that in `FREED`.
fn release_race(
    side: u32,
    memory: &mut NodeLinkMemory<Counted>,
    list: &[FragmentDescriptor],
    control: &Control,
) -> u64 {
    let me = link_side(side);
    let mut freed = 0;
    let mut together = lockstep(side, RELEASE_PROGRESS, LOCKSTEP_WINDOW);
    control.barrier(BARRIER_2);
    for (k, &d) in list.iter().enumerate() {
        let s = state(memory, d);
        s.set_side_stable(me).unwrap();
        if s.try_lock(me).unwrap() {
            s.unlock(me).unwrap();
        }
        match memory.release_router_link_state(d).unwrap() {
            ReleaseOutcome::Kept => {}
            ReleaseOutcome::Freed => {
                let before = control.fetch_add(FREED + 4 * k, 1);
                assert_eq!(before, 0, "state {k} ({d}) freed twice");
                freed += 1;
            }
        }
        together.step(control, k as u64);
    }
    together.finish(control);
    control.barrier(BARRIER_3);
    freed
}

fn allocate_states(memory: &mut NodeLinkMemory<Counted>, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| {
            descriptor_word(
                memory
                    .allocate_router_link_state()
                    .unwrap()
                    .expect("a free block"),
            )
        })
        .collect()
}

fn child_link_state_race(peer: &mut Peer, primary: Counted, control: &Control) {
    let mut memory = NodeLinkMemory::new(primary, MemoryOptions::default()).unwrap();
    let lock_states: Vec<FragmentDescriptor> = peer
        .expect(MSG_STATES)
        .into_iter()
        .map(descriptor_of)
        .collect();
    let mut stats = lock_race(CHILD, &memory, &lock_states, control);
    control.barrier(BARRIER_1);
    bypass_handshakes(CHILD, peer, &memory, &lock_states);
    control.barrier(BARRIER_4);
    let ours = allocate_states(&mut memory, REFCOUNT_STATES_PER_SIDE);
    let mut msg = vec![MSG_STATES];
    msg.extend(&ours);
    peer.send(&msg, vec![]);
    peer.flush_all();
    let list: Vec<FragmentDescriptor> = peer
        .expect(MSG_STATES)
        .into_iter()
        .map(descriptor_of)
        .collect();
    stats.freed = release_race(CHILD, &mut memory, &list, control);
    peer.send(
        &[
            MSG_STATS,
            stats.locks,
            stats.bypass_locks,
            stats.refused,
            stats.flushes,
            stats.resets,
            stats.bypass_seen,
            stats.interleaved,
            stats.freed,
            stats.contended,
        ],
        vec![],
    );
}

/// Both processes run every RouterLinkState operation on four shared states
/// at once (10000 iterations each): set-side-stable at different moments,
/// lock and bypass lock with a critical section that only one side may be
/// in, unlock (also of a lock that is not ours), the waiting bits, and
/// can-node-request-bypass. Every status word either side loads is legal.
/// Then 200 bypass handshakes, each side in turn the proxy, with the
/// named node checked by the other process after a message.
/// Then each side allocates 600 states while the other does, they swap
/// them, and both release all 1204 in the same order at once: each state is
/// freed exactly once, and every block is back on its free list.
#[test]
fn router_link_states_raced_by_two_processes_stay_consistent() {
    with_child("link_state_race", |peer, primary, control| {
        let started = Instant::now();
        let mut memory = NodeLinkMemory::new(primary, MemoryOptions::default()).unwrap();
        let lock_states = allocate_states(&mut memory, LOCK_STATES);
        let mut msg = vec![MSG_STATES];
        msg.extend(&lock_states);
        peer.send(&msg, vec![]);
        peer.flush_all();
        let lock_states: Vec<FragmentDescriptor> =
            lock_states.into_iter().map(descriptor_of).collect();
        let mut stats = lock_race(PARENT, &memory, &lock_states, control);
        let locked = started.elapsed();
        control.barrier(BARRIER_1);
        bypass_handshakes(PARENT, peer, &memory, &lock_states);
        control.barrier(BARRIER_4);
        let ours = allocate_states(&mut memory, REFCOUNT_STATES_PER_SIDE);
        let theirs = peer.expect(MSG_STATES);
        // The shared list: the lock states, the parent's, the child's.
        let list: Vec<u64> = lock_states
            .iter()
            .map(|&d| descriptor_word(d))
            .chain(ours)
            .chain(theirs)
            .collect();
        let unique: BTreeSet<u64> = list.iter().copied().collect();
        assert_eq!(unique.len(), list.len(), "a block allocated twice");
        let mut msg = vec![MSG_STATES];
        msg.extend(&list);
        peer.send(&msg, vec![]);
        peer.flush_all();
        let list: Vec<FragmentDescriptor> = list.into_iter().map(descriptor_of).collect();
        stats.freed = release_race(PARENT, &mut memory, &list, control);
        let child = peer.expect(MSG_STATS);
        assert_eq!(stats.freed + child[7], list.len() as u64);
        for k in 0..list.len() {
            assert_eq!(control.load(FREED + 4 * k), 1, "state {k}");
        }
        for a in memory.block_allocators() {
            let free = a.free_list(memory.primary()).unwrap();
            assert_eq!(
                free.len(),
                a.region().num_blocks - 1,
                "{}-byte blocks",
                a.block_size()
            );
        }
        for k in 0..LOCK_STATES {
            assert_eq!(control.load(HOLDER + 4 * k), 0);
        }
        assert!(
            stats.interleaved > 1 && child[6] > 1,
            "the processes never interleaved ({} / {})",
            stats.interleaved,
            child[6]
        );
        assert!(
            stats.contended + child[8] > 0,
            "no lock attempt ever met the other side's critical section"
        );
        assert!(stats.locks + stats.bypass_locks > 0 && child[0] + child[1] > 0);
        println!(
            "link state race: {LINK_RACE_ITERATIONS} iterations per side in {locked:?}; \
             parent {stats:?}; child locks {} bypass locks {} refused {} flushes {} \
             resets {} bypass seen {} interleaved {} freed {} contended {}; {:?} with the refcount race",
            child[0],
            child[1],
            child[2],
            child[3],
            child[4],
            child[5],
            child[6],
            child[7],
            child[8],
            started.elapsed()
        );
    });
}

// ---------------------------------------------------------------------------
// 3. parcel data in fragments

/// Parcels each side sends.
const PARCELS_PER_SIDE: u64 = 3000;

/// Parcels a side may have sent that the other has not taken yet.
const MAX_PARCELS_IN_FLIGHT: u64 = 64;

/// Most data bytes per block size class of the primary buffer.
const PARCEL_CLASSES: [usize; 6] = [56, 248, 504, 1016, 2040, 4088];

fn parcel_data(side: u32, k: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    Rng::new((u64::from(side) << 32) | k).fill(&mut data);
    data
}

#[derive(Debug, Default)]
struct ParcelStats {
    in_fragments: u64,
    inline: u64,
    received: u64,
    dropped_unread: u64,
    interleaved: u64,
    /// Compare-and-swaps that lost a race with the other side.
    failed_cas: u64,
}

fn fragment_race(
    side: u32,
    peer: &mut Peer,
    memory: &mut NodeLinkMemory<Counted>,
    control: &Control,
) -> ParcelStats {
    let other = 3 - side;
    let (ours, theirs) = if side == PARENT { (0, 1) } else { (1, 0) };
    let mut rng = Rng::new(0xF4A6 + u64::from(side));
    let mut stats = ParcelStats::default();
    let mut sent = 0;
    let mut overlap = lockstep(side, PROGRESS, NO_WAITING);
    let mut i = 0;
    control.barrier(BARRIER_0);
    while sent < PARCELS_PER_SIDE || stats.received < PARCELS_PER_SIDE {
        let mut moved = false;
        if sent < PARCELS_PER_SIDE
            && sent - control.load64(RECEIVED[theirs]) < MAX_PARCELS_IN_FLIGHT
        {
            let max = PARCEL_CLASSES[rng.below(PARCEL_CLASSES.len())];
            let len = 1 + rng.below(max);
            let data = parcel_data(side, sent, len);
            match memory.allocate_parcel_data(&data).unwrap() {
                Some(d) => {
                    assert_eq!(d.buffer_id, BufferId::PRIMARY);
                    peer.send(&[MSG_PARCEL, sent, len as u64, descriptor_word(d)], vec![]);
                    stats.in_fragments += 1;
                }
                // The node would send the data inline: the receiver knows it.
                None => {
                    peer.send(&[MSG_INLINE, sent, len as u64], vec![]);
                    stats.inline += 1;
                }
            }
            sent += 1;
            moved = true;
        }
        // Only parcels: what follows the last one is for the caller.
        while stats.received < PARCELS_PER_SIDE {
            let Some((words, _)) = peer.try_recv() else {
                break;
            };
            let (k, len) = (words[1], words[2] as usize);
            assert_eq!(k, stats.received, "parcels arrive in order");
            match words[0] {
                MSG_PARCEL => {
                    let d = descriptor_of(words[3]);
                    if rng.one_in(16) {
                        memory.free_fragment(d).unwrap();
                        stats.dropped_unread += 1;
                    } else {
                        let data = memory.take_parcel_data(d).unwrap();
                        assert_eq!(
                            data,
                            Resolved::Ready(parcel_data(other, k, len)),
                            "parcel {k}"
                        );
                    }
                }
                MSG_INLINE => {}
                m => panic!("unexpected message {m}"),
            }
            stats.received += 1;
            control.store64(RECEIVED[ours], stats.received);
            moved = true;
        }
        moved |= peer.pump();
        overlap.step(control, i);
        i += 1;
        if !moved {
            assert!(Instant::now() < peer.deadline(), "fragment race timed out");
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    peer.flush_all();
    stats.interleaved = overlap.interleaved;
    stats.failed_cas = memory.primary().failed_cas();
    stats
}

fn child_fragment_race(peer: &mut Peer, primary: Counted, control: &Control) {
    let mut memory = NodeLinkMemory::new(primary, MemoryOptions::default()).unwrap();
    let stats = fragment_race(CHILD, peer, &mut memory, control);
    assert_eq!(memory.num_deferred_frees(), 0);
    peer.send(
        &[
            MSG_DONE,
            stats.in_fragments,
            stats.inline,
            stats.dropped_unread,
            stats.interleaved,
            stats.failed_cas,
        ],
        vec![],
    );
}

/// Both processes send 3000 parcels each of 1 to 4088 bytes to the other,
/// at once: the data goes into a fragment both sides' allocations compete
/// for (inline when the class is full), the descriptor over the socket; the
/// receiver copies the data out and frees the fragment (one in 16 is freed
/// unread, as a dropped parcel is). Every parcel read is exactly what was
/// written, and at the end every block of the primary buffer is free.
#[test]
fn fragments_raced_by_two_processes_carry_every_parcel_intact() {
    with_child("fragment_race", |peer, primary, control| {
        let started = Instant::now();
        let mut memory = NodeLinkMemory::new(primary, MemoryOptions::default()).unwrap();
        let stats = fragment_race(PARENT, peer, &mut memory, control);
        let child = peer.expect(MSG_DONE);
        let raced = started.elapsed();
        for a in memory.block_allocators() {
            let free = a.free_list(memory.primary()).unwrap();
            assert_eq!(
                free.len(),
                a.region().num_blocks - 1,
                "{}-byte blocks",
                a.block_size()
            );
        }
        assert_eq!(memory.num_deferred_frees(), 0);
        assert_eq!(memory.num_buffers(), 1);
        assert!(
            stats.failed_cas + child[4] > 0,
            "no allocation or free of one side ever raced one of the other"
        );
        assert!(stats.in_fragments > PARCELS_PER_SIDE / 4 && child[0] > PARCELS_PER_SIDE / 4);
        println!(
            "fragment race: {PARCELS_PER_SIDE} parcels per side in {raced:?}; parent {stats:?}; \
             child in fragments {} inline {} dropped unread {} interleaved {} lost CAS races {}",
            child[0], child[1], child[2], child[3], child[4]
        );
    });
}
