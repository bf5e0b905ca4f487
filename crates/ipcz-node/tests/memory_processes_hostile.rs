//! A hostile peer in a real second process (issue 9): it writes garbage
//! into the shared buffers of a link, or tries to shrink them, while this
//! process (the parent) keeps using them through NodeLinkMemory. The parent
//! must see only typed [`MemoryError`]s: never a panic, never an `Access`
//! error (which would mean an offset read from shared memory reached the
//! mapping unvalidated), never a hang, never a fault.
//!
//! See `process_support` for the process and socket plumbing.

#![allow(missing_docs)]

mod process_support;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipcz_node::memory::{
    BlockAllocator, MemoryError, MemoryOptions, NodeLinkMemory, Resolved, RouterLinkState,
};
use ipcz_wire::memory::block::{BlockHeader, added_buffer_size};
use ipcz_wire::memory::primary;
use ipcz_wire::types::{BufferId, FragmentDescriptor, LinkSide, NodeName};
use mojo_platform_channel::{Mapping, SharedMemory, SharedMemoryRegion};
use process_support::{
    CONTROL_SIZE, Control, Peer, Rng, assert_no_fd_leak, create_region, run_child, spawn_child,
    within,
};

/// Block sizes of the buffers the parent adds to the link (one for
/// RouterLinkStates, one for large parcels).
const ADDED_BLOCK_SIZES: [u32; 2] = [64, 4096];

/// Operations the parent runs while the child scribbles.
const HOSTILE_ITERATIONS: u64 = 20_000;

/// Longest the parent's operations may take, all together: more means one
/// of them hangs.
const HOSTILE_TIME_LIMIT: Duration = Duration::from_secs(20);

/// Operations between two re-initializations of every allocator by the
/// parent (as if the link were new), so that each epoch starts from working
/// free lists and exercises the normal paths under fresh corruption, not
/// only the errors of a list corrupted long ago.
const OPERATIONS_PER_EPOCH: u64 = 2000;

/// Most RouterLinkStates and parcels the parent holds at once.
const MAX_HELD: usize = 64;

/// Scribbles of the child between two attempts to resize every buffer.
const SCRIBBLES_PER_RESIZE: u64 = 4096;

/// Scribbles between two publications of the child's count.
const SCRIBBLES_PER_REPORT: u64 = 64;

/// `errno` of a resize the seals refuse.
const EPERM: i32 = 1;

const MSG_SCRIBBLED: u64 = 20;
const MSG_RESIZED: u64 = 21;

/// Control region words.
const BARRIER_START: usize = 0;
const STOP: usize = 4;
/// The child's count of garbage writes so far.
const SCRIBBLED: usize = 8;

#[test]
fn child_main() {
    run_child(|role, peer| {
        let regions = peer.recv_regions();
        let (control, buffers) = regions.split_last().unwrap();
        let control = Control::new(control.map().unwrap());
        match role {
            "scribbler" => child_scribbler(peer, buffers, &control),
            "resizer" => child_resizer(peer, buffers),
            other => panic!("unknown role {other}"),
        }
    });
}

/// The link as the parent sets it up: an initialized primary buffer and one
/// added buffer per [`ADDED_BLOCK_SIZES`], registered with
/// `provide_block_buffer` (which initializes its allocator), plus the
/// regions to send to the peer (the control region last).
fn link() -> (NodeLinkMemory<Mapping>, Vec<SharedMemoryRegion>) {
    let primary_region = create_region(primary::SIZE);
    let primary = primary_region.map().unwrap();
    NodeLinkMemory::initialize_primary_buffer(&primary).unwrap();
    let mut memory = NodeLinkMemory::new(primary, MemoryOptions::default()).unwrap();
    let mut regions = vec![primary_region];
    for (i, block_size) in ADDED_BLOCK_SIZES.into_iter().enumerate() {
        let region = create_region(added_buffer_size(block_size));
        let added = memory
            .provide_block_buffer(block_size, region.map().unwrap())
            .unwrap();
        assert_eq!(added.id, BufferId(i as u64 + 1));
        regions.push(region);
    }
    regions.push(create_region(CONTROL_SIZE));
    (memory, regions)
}

// ---------------------------------------------------------------------------
// the child's attacks

/// Tries to shrink and to grow the file behind `region`; returns how many
/// of the attempts the kernel refused with `EPERM` (all of them must be).
fn try_resize(region: &SharedMemoryRegion) -> (u64, u64) {
    let file = std::fs::File::from(region.fd().try_clone_to_owned().unwrap());
    let size = region.size() as u64;
    let mut refused = 0;
    let sizes = [0, size / 2, size - 8, size + 4096];
    for to in sizes {
        match file.set_len(to) {
            Err(e) if e.raw_os_error() == Some(EPERM) => refused += 1,
            other => panic!("resizing a sealed buffer to {to}: {other:?}"),
        }
    }
    (sizes.len() as u64, refused)
}

/// One garbage write somewhere in `mem`, aimed mostly at the words that
/// matter: counters, link states, block-0 headers, block headers with
/// plausible small links, FragmentHeader sizes; sometimes a burst of bytes.
fn scribble(rng: &mut Rng, mem: &Mapping, block_size: u32, is_primary: bool) {
    let size = mem.size();
    let value = rng.next_u64() as u32;
    let (region_offset, region_blocks, region_block_size) = if is_primary {
        let r = primary::REGIONS[rng.below(primary::REGIONS.len())];
        (r.offset, r.num_blocks, r.block_size as usize)
    } else {
        (0, size / block_size as usize, block_size as usize)
    };
    let block = region_offset + region_block_size * rng.below(region_blocks.min(32));
    match rng.below(8) {
        0 => {
            let word = rng.below(size / 4) * 4;
            mem.store_u32(word, value, Ordering::Relaxed).unwrap();
        }
        1 if is_primary => {
            // The id counters, sometimes to values near the edges.
            let at = 8 * rng.below(2);
            let v = if rng.one_in(2) {
                rng.next_u64()
            } else {
                rng.next_u64() % 16
            };
            mem.store_u64(at, v, Ordering::Relaxed).unwrap();
        }
        1 | 2 => {
            // Block 0 or a block's header, linking to a near block.
            let header = BlockHeader {
                version: value as u16,
                next: (rng.below(9) as i16) - 4,
            };
            let at = if rng.one_in(2) { region_offset } else { block };
            mem.store_u32(at, header.to_word(), Ordering::Relaxed)
                .unwrap();
        }
        3 => {
            // A FragmentHeader size, or a RouterLinkState's status and count.
            let v = if rng.one_in(2) {
                value % (2 * region_block_size as u32)
            } else {
                value
            };
            mem.store_u32(block + 4 * rng.below(2), v, Ordering::Relaxed)
                .unwrap();
        }
        4 if is_primary => {
            // An initial RouterLinkState.
            let at = 256 + 4 * rng.below(192);
            mem.store_u32(at, value & 0x3f, Ordering::Relaxed).unwrap();
        }
        5 => {
            let mut burst = [0u8; 64];
            rng.fill(&mut burst);
            let at = 8 * rng.below((size - burst.len()) / 8);
            mem.write(at, &burst).unwrap();
        }
        _ => {
            // The status word of a block used as a RouterLinkState.
            mem.store_u32(block + 4, value & 0x7f, Ordering::Relaxed)
                .unwrap();
        }
    }
}

fn child_scribbler(peer: &mut Peer, buffers: &[SharedMemoryRegion], control: &Control) {
    let maps: Vec<Mapping> = buffers.iter().map(|r| r.map().unwrap()).collect();
    let mut rng = Rng::new(0x5C41BB1E);
    let (mut writes, mut resizes, mut refused) = (0u64, 0, 0);
    let deadline = Instant::now() + HOSTILE_TIME_LIMIT;
    control.barrier(BARRIER_START);
    while control.load(STOP) == 0 {
        assert!(Instant::now() < deadline, "the parent never said stop");
        // Mostly the primary buffer, where most of the protocol lives.
        let i = if rng.below(10) < 7 {
            0
        } else {
            1 + rng.below(ADDED_BLOCK_SIZES.len())
        };
        let block_size = if i == 0 { 64 } else { ADDED_BLOCK_SIZES[i - 1] };
        scribble(&mut rng, &maps[i], block_size, i == 0);
        writes += 1;
        if writes % SCRIBBLES_PER_RESIZE == 0 {
            let (n, r) = try_resize(&buffers[rng.below(buffers.len())]);
            resizes += n;
            refused += r;
        }
        if writes % SCRIBBLES_PER_REPORT == 0 {
            control.store(SCRIBBLED, writes as u32);
        }
    }
    peer.send(&[MSG_SCRIBBLED, writes, resizes, refused], vec![]);
}

// ---------------------------------------------------------------------------
// the parent under attack

/// What the parent's operations came to.
#[derive(Debug, Default)]
struct Outcomes {
    ok: u64,
    errors: BTreeMap<String, u64>,
    parcels_read: u64,
}

impl Outcomes {
    /// Records an operation's result; an `Access` error fails the test.
    fn record<T>(&mut self, what: &str, result: Result<T, MemoryError>) -> Option<T> {
        match result {
            Ok(v) => {
                self.ok += 1;
                Some(v)
            }
            Err(e) => {
                assert!(
                    !matches!(e, MemoryError::Access { .. }),
                    "{what}: unchecked access: {e}"
                );
                let debug = format!("{e:?}");
                let variant = debug
                    .split(|c: char| !c.is_alphanumeric())
                    .next()
                    .unwrap_or_default();
                *self.errors.entry(variant.to_string()).or_default() += 1;
                None
            }
        }
    }
}

/// A descriptor anywhere in (or past) the link's buffers, of a plausible or
/// any size.
fn garbage_descriptor(rng: &mut Rng) -> FragmentDescriptor {
    let buffer = rng.below(4) as u64;
    let offset = if rng.one_in(2) {
        (rng.below(primary::SIZE / 64) * 64) as u32
    } else {
        rng.next_u64() as u32
    };
    let size = match rng.below(4) {
        0 => 64,
        1 => 4096,
        2 => 1 << rng.below(13),
        _ => rng.next_u64() as u32,
    };
    FragmentDescriptor::new(buffer, offset, size)
}

fn link_state_op(rng: &mut Rng, s: &RouterLinkState<'_, Mapping>) -> Result<(), MemoryError> {
    let side = if rng.one_in(2) {
        LinkSide::A
    } else {
        LinkSide::B
    };
    let name = NodeName { high: 1, low: 2 };
    match rng.below(9) {
        0 => s.set_side_stable(side),
        1 => s.try_lock(side).map(drop),
        2 => s.unlock(side),
        3 => s.reset_waiting_bit(side).map(drop),
        4 => s.flush_other_side_if_waiting(side).map(drop),
        5 => s.try_lock_for_bypass(side, name).map(drop),
        6 => s.can_node_request_bypass(side, name).map(drop),
        7 => s.status().map(drop),
        _ => s.ref_count().map(drop),
    }
}

/// The parent's side: every NodeLinkMemory operation, at random, on
/// memory the child keeps corrupting. Returns the memory for teardown.
fn operate(
    mut memory: NodeLinkMemory<Mapping>,
    control: &Control,
) -> (NodeLinkMemory<Mapping>, Outcomes) {
    let mut rng = Rng::new(0x0BE7);
    let mut out = Outcomes::default();
    let mut states: Vec<FragmentDescriptor> = Vec::new();
    let mut parcels: Vec<FragmentDescriptor> = Vec::new();
    let allocators: Vec<BlockAllocator> = memory.block_allocators().copied().collect();
    for i in 0..HOSTILE_ITERATIONS {
        if i % OPERATIONS_PER_EPOCH == 0 {
            // What we held is gone with the old free lists.
            states.clear();
            parcels.clear();
            for a in &allocators {
                let mem = memory.buffer(a.buffer()).unwrap();
                a.initialize(mem).unwrap();
            }
        }
        // About one garbage write per operation: if the child is behind
        // (it may share our core), let it run.
        if u64::from(control.load(SCRIBBLED)) < i {
            std::thread::yield_now();
        }
        match rng.below(12) {
            0 if states.len() < MAX_HELD => {
                let r = memory.allocate_router_link_state();
                if let Some(Some(d)) = out.record("allocate link state", r) {
                    states.push(d);
                }
            }
            0 | 1 if !states.is_empty() => {
                let d = states.swap_remove(rng.below(states.len()));
                let r = memory.release_router_link_state(d);
                out.record("release link state", r);
            }
            2 => {
                let state = if !states.is_empty() && rng.one_in(2) {
                    memory.router_link_state(states[rng.below(states.len())])
                } else {
                    memory
                        .initial_router_link_state(rng.below(12))
                        .map(Resolved::Ready)
                };
                if let Some(Resolved::Ready(s)) = out.record("link state", state) {
                    let r = link_state_op(&mut rng, &s);
                    out.record("link state op", r);
                }
            }
            3 if parcels.len() < MAX_HELD => {
                let mut data = vec![0u8; 1 + rng.below(4088)];
                rng.fill(&mut data);
                let r = memory.allocate_parcel_data(&data);
                if let Some(Some(d)) = out.record("allocate parcel", r) {
                    parcels.push(d);
                }
            }
            3 | 4 if !parcels.is_empty() => {
                let d = parcels.swap_remove(rng.below(parcels.len()));
                let r = memory.take_parcel_data(d);
                match out.record("take parcel", r) {
                    Some(Resolved::Ready(data)) => {
                        assert!(data.len() <= d.size as usize - 8, "read beyond {d}");
                        out.parcels_read += 1;
                    }
                    Some(Resolved::Pending(id)) => panic!("our own buffer {id} unknown"),
                    None => {}
                }
            }
            5 if !parcels.is_empty() => {
                let d = parcels.swap_remove(rng.below(parcels.len()));
                let r = memory.free_fragment(d);
                out.record("free parcel", r);
            }
            6 => {
                let d = garbage_descriptor(&mut rng);
                if let Some(Resolved::Ready(data)) =
                    out.record("read garbage", memory.read_parcel_data(d))
                {
                    assert!(data.len() <= d.size as usize - 8, "read beyond {d}");
                }
            }
            7 => {
                let d = garbage_descriptor(&mut rng);
                if let Some(Resolved::Ready(s)) =
                    out.record("garbage link state", memory.router_link_state(d))
                {
                    let r = link_state_op(&mut rng, &s);
                    out.record("garbage link state op", r);
                }
            }
            8 => {
                let r = memory.allocate_sublink_ids(1 + rng.below(4) as u64);
                out.record("sublink ids", r);
                let r = memory.allocate_new_buffer_id();
                out.record("buffer id", r);
            }
            9 => {
                let a = allocators[rng.below(allocators.len())];
                if let Some(mem) = memory.buffer(a.buffer()) {
                    out.record("free list", a.free_list(mem));
                }
            }
            10 => {
                let r = memory.allocate_fragment_best_effort(rng.below(1 << 14));
                if let Some(Some(d)) = out.record("best effort", r) {
                    let r = memory.free_fragment(d);
                    out.record("free best effort", r);
                }
            }
            _ => {
                // A peer's reference to free: any block of any buffer.
                let d = garbage_descriptor(&mut rng);
                let r = memory.free_fragment(d);
                out.record("free garbage", r);
            }
        }
    }
    (memory, out)
}

/// The child writes seeded garbage all over the primary buffer and both
/// added buffers (counters, block headers with plausible links, link
/// states, fragment headers, random bursts), and every 4096 writes tries to
/// shrink or grow one of them, while the parent runs 20000 random
/// NodeLinkMemory operations on them: allocating, sharing and releasing
/// RouterLinkStates and every operation on them, parcels in and out of
/// fragments, frees of peer references, id counters, free-list walks. The
/// parent gets only typed errors, within the time limit; then the child
/// stops, exits successfully, and the parent tears down without a leak.
/// (Every 2000 operations the parent re-initializes the allocators, so each
/// epoch starts from working free lists.)
#[test]
fn garbage_from_a_peer_process_yields_only_typed_errors() {
    assert_no_fd_leak(|| {
        let started = Instant::now();
        let (memory, regions) = link();
        let control = Control::new(regions.last().unwrap().map().unwrap());
        // The operations' own view of it (a mapping is not shared by threads).
        let their_control = Control::new(regions.last().unwrap().map().unwrap());
        let (child, mut peer) = spawn_child("scribbler");
        peer.send_regions(&regions.iter().collect::<Vec<_>>());
        control.barrier(BARRIER_START);
        let (memory, out) = within(HOSTILE_TIME_LIMIT, "the parent's operations", move || {
            operate(memory, &their_control)
        });
        let operated = started.elapsed();
        control.store(STOP, 1);
        let child_stats = peer.expect(MSG_SCRIBBLED);
        drop(peer);
        child.wait_success();
        let errors: u64 = out.errors.values().sum();
        assert!(
            child_stats[0] > 1000 && errors > 0,
            "the child hardly scribbled"
        );
        assert_eq!(child_stats[1], child_stats[2], "a resize went through");
        drop(memory);
        drop(regions);
        println!(
            "hostile peer: {HOSTILE_ITERATIONS} operations in {operated:?} against {} garbage \
             writes and {} refused resizes: {} ok, {} parcels read, errors {:?}; {:?} in all",
            child_stats[0],
            child_stats[2],
            out.ok,
            out.parcels_read,
            out.errors,
            started.elapsed()
        );
    });
}

// ---------------------------------------------------------------------------
// a peer that tries to shrink the buffers

fn child_resizer(peer: &mut Peer, buffers: &[SharedMemoryRegion]) {
    let (mut attempts, mut refused) = (0, 0);
    for region in buffers {
        let (n, r) = try_resize(region);
        attempts += n;
        refused += r;
    }
    peer.send(&[MSG_RESIZED, attempts, refused], vec![]);
}

/// Parcels the resize test allocates at least, whenever the child reports:
/// enough that the held ones overflow into an added buffer.
const MIN_ROUNDS_WITH_THE_CHILD: u64 = 64;

/// Every page of `mem` is still there: read all of it, write a word of
/// each page (an access to a page a shrink took away would be SIGBUS).
fn touch_every_page(mem: &Mapping) {
    const PAGE: usize = 4096;
    let mut page = vec![0u8; PAGE];
    for at in (0..mem.size()).step_by(PAGE) {
        let len = PAGE.min(mem.size() - at);
        mem.read(at, &mut page[..len]).unwrap();
        let word = at + len - 8;
        let v = mem.load_u64(word, Ordering::Relaxed).unwrap();
        mem.store_u64(word, v, Ordering::Relaxed).unwrap();
    }
}

/// The child tries to shrink (to 0, to half, by 8 bytes) and to grow each
/// buffer of the link, through the `O_RDWR` fd it was sent, while the
/// parent allocates and frees parcels in them: the seals of our memfds make
/// the kernel refuse every attempt with EPERM, and the parent, which then
/// reads and writes every page of every buffer, never faults.
#[test]
fn a_peer_process_cannot_shrink_or_grow_the_buffers() {
    assert_no_fd_leak(|| {
        let started = Instant::now();
        let (mut memory, regions) = link();
        let (child, mut peer) = spawn_child("resizer");
        peer.send_regions(&regions.iter().collect::<Vec<_>>());
        let mut rounds = 0u64;
        let mut held = std::collections::VecDeque::new();
        let mut report = None;
        let report = loop {
            // 4096-byte blocks, more than the primary buffer has: some of
            // them in the added buffer.
            let data = vec![rounds as u8; 2041 + (rounds as usize * 97) % 2048];
            let d = memory.allocate_parcel_data(&data).unwrap().unwrap();
            held.push_back((d, data));
            if held.len() > 8 {
                let (d, data) = held.pop_front().unwrap();
                assert_eq!(memory.take_parcel_data(d).unwrap(), Resolved::Ready(data));
            }
            rounds += 1;
            if report.is_none() {
                report = peer.try_recv().map(|(words, _)| words);
            }
            // A fast child may report before the parent has used the added
            // buffer at all; keep allocating until more parcels are held
            // than the primary buffer's blocks of this size can take.
            if rounds >= MIN_ROUNDS_WITH_THE_CHILD {
                if let Some(words) = report.take() {
                    break words;
                }
            }
            assert!(Instant::now() < peer.deadline(), "no report from the child");
        };
        assert_eq!(report[0], MSG_RESIZED);
        assert_eq!(report[1], report[2], "a resize went through");
        assert_eq!(report[1], 4 * (regions.len() as u64 - 1));
        assert!(held.iter().any(|(d, _)| d.buffer_id != BufferId::PRIMARY));
        for (d, data) in held {
            assert_eq!(memory.take_parcel_data(d).unwrap(), Resolved::Ready(data));
        }
        for id in 0..=ADDED_BLOCK_SIZES.len() as u64 {
            touch_every_page(memory.buffer(BufferId(id)).unwrap());
        }
        for a in memory.block_allocators() {
            let free = a.free_list(memory.buffer(a.buffer()).unwrap()).unwrap();
            assert_eq!(free.len(), a.region().num_blocks - 1);
        }
        drop(peer);
        child.wait_success();
        drop(memory);
        drop(regions);
        println!(
            "resizing peer: {} refused resizes, {rounds} parcels meanwhile; {:?} in all",
            report[2],
            started.elapsed()
        );
    });
}
