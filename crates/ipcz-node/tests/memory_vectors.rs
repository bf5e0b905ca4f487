//! Golden tests against real Chrome memory: the `shared/vectors/shm/`
//! recordings snapshot every NodeLinkMemory buffer as Chrome's host and
//! Chromium's proxy (or client) wrote it. Replaying each file, the node's
//! NodeLinkMemory is built over the snapshotted regions exactly as a proxy
//! would (primary buffers from the handshake and introductions, added
//! buffers from AddBlockBuffer) and must:
//!
//! - find the primary buffer initialized as spec §5.1 says, its counters
//!   only moving forward from (1, 12);
//! - walk every block allocator's free list (§5.4) without error at every
//!   frame, and find every fragment a message names allocated, on a block
//!   boundary of the class §5.7 picks for its data size;
//! - read every parcel-data fragment (§5.7) with its FragmentHeader intact,
//!   and get the bytes the test-peer scenario sent (echoes equal their
//!   requests; `echo_small` sizes cycle as test-peers.md §3 says);
//! - decode every RouterLinkState (§5.3) named by a descriptor or bypass
//!   message, and the 12 initial ones, to the meanings the spec gives
//!   (two references when shared; initial ones unmanaged, down to -2; lock
//!   bits only once stable; a bypass source that is a node of the
//!   recording and that `CanNodeRequestBypass` accepts from the other side);
//! - and, on private copies of Chrome's memory, free what it received and
//!   release shared states the way a proxy does, into Chrome's own lists.

mod memory_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::Ordering;

use ipcz_node::memory::{MemoryOptions, NodeLinkMemory, ReleaseOutcome, Resolved};
use ipcz_wire::frame::Deframer;
use ipcz_wire::limits::ROUTER_LINK_STATE_SIZE;
use ipcz_wire::memory::block::initial_last_header;
use ipcz_wire::memory::fragment::primary_class_for_data;
use ipcz_wire::memory::{LinkStatus, primary};
use ipcz_wire::message::Message;
use ipcz_wire::messages::Body;
use ipcz_wire::types::{
    BufferId, DriverObjectIndex, FragmentDescriptor, LinkSide, NodeName, SublinkId,
};
use memory_support::Shared;
use memory_support::shm_vectors::ipcz_recordings;
use mojo_transcript::Direction;
use mojo_transcript::shm::{Line, parse, scenario};
use mojo_wire_kit::{HeapMemory, SharedMemory};

/// Known test-peer opcodes (test-peers.md §2, §2.1).
fn is_known_opcode(op: u32) -> bool {
    matches!(op, 1..=35 | 99)
}

/// `echo_small` message sizes (test-peers.md §3).
const ECHO_SIZES: [usize; 12] = [4, 5, 7, 8, 16, 31, 64, 100, 255, 256, 1000, 4096];

#[derive(Debug)]
struct Parcel {
    chan: u32,
    dir: Direction,
    sublink: SublinkId,
    sequence_number: u64,
    data: Vec<u8>,
    fragment: Option<FragmentDescriptor>,
}

#[derive(Default, Debug)]
struct Stats {
    fragments: usize,
    inline: usize,
    link_states: usize,
    link_states_with_two_refs: usize,
    locked_seen: usize,
    waiting_seen: usize,
    free_list_walks: usize,
    added_buffers: usize,
    new_sublinks: usize,
    lowest_initial_ref_count: i32,
    bypass_sources_seen: usize,
}

struct Stream {
    deframer: Deframer,
    /// (stream offset, length, line index) of every chunk that carried fds.
    fd_chunks: Vec<(u64, u64, usize)>,
    len: u64,
}

struct Replay<'a> {
    name: String,
    lines: &'a [Line],
    regions: BTreeMap<usize, Shared>,
    /// For each chunk line with fds: fd index -> region id, from the map
    /// lines that follow it.
    maps_after: BTreeMap<usize, BTreeMap<usize, usize>>,
    links: BTreeMap<u32, NodeLinkMemory<Shared>>,
    primary_of: BTreeMap<u32, usize>,
    primaries_to_check: BTreeSet<usize>,
    last_counters: BTreeMap<u32, (u64, u64)>,
    streams: BTreeMap<(u32, Direction), Stream>,
    parcels: Vec<Parcel>,
    /// Node names from the handshakes and introductions.
    node_names: BTreeSet<NodeName>,
    /// Every RouterLinkState a message named, by link.
    link_states: Vec<(u32, FragmentDescriptor)>,
    stats: Stats,
}

impl<'a> Replay<'a> {
    fn new(name: String, lines: &'a [Line]) -> Self {
        let mut regions = BTreeMap::new();
        let mut maps_after: BTreeMap<usize, BTreeMap<usize, usize>> = BTreeMap::new();
        let mut last_fd_chunk = BTreeMap::new();
        for (i, line) in lines.iter().enumerate() {
            match line {
                Line::Chunk {
                    chan, dir, nfds, ..
                } if *nfds > 0 => {
                    last_fd_chunk.insert((*chan, *dir), i);
                }
                Line::Map {
                    shm,
                    chan,
                    dir,
                    fd_index,
                    size,
                    ..
                } => {
                    regions.insert(*shm, Shared::new(HeapMemory::new(*size)));
                    let chunk = last_fd_chunk[&(*chan, *dir)];
                    maps_after.entry(chunk).or_default().insert(*fd_index, *shm);
                }
                _ => {}
            }
        }
        Self {
            name,
            lines,
            regions,
            maps_after,
            links: BTreeMap::new(),
            primary_of: BTreeMap::new(),
            primaries_to_check: BTreeSet::new(),
            last_counters: BTreeMap::new(),
            streams: BTreeMap::new(),
            parcels: Vec::new(),
            node_names: BTreeSet::new(),
            link_states: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn apply(&self, shm: usize, changes: &[(usize, Vec<u8>)]) {
        let region = &self.regions[&shm];
        for (offset, bytes) in changes {
            region
                .heap
                .write(*offset, bytes)
                .expect("change inside its region");
        }
    }

    fn run(&mut self) {
        for i in 0..self.lines.len() {
            match &self.lines[i] {
                Line::Map { shm, changes, .. } => {
                    self.apply(*shm, changes);
                    if self.primaries_to_check.remove(shm) {
                        self.check_fresh_primary(*shm);
                    }
                }
                Line::Diff { shm, changes } => self.apply(*shm, changes),
                Line::Chunk {
                    chan,
                    dir,
                    bytes,
                    nfds,
                    fd_kinds,
                } => {
                    self.check_memory_at_chunk();
                    let stream = self.streams.entry((*chan, *dir)).or_insert_with(|| Stream {
                        deframer: Deframer::new(),
                        fd_chunks: Vec::new(),
                        len: 0,
                    });
                    if *nfds > 0 {
                        stream.fd_chunks.push((stream.len, bytes.len() as u64, i));
                    }
                    stream.len += bytes.len() as u64;
                    stream.deframer.push(bytes).expect("feed");
                    let mut frames = Vec::new();
                    while let Some((offset, frame)) = stream.deframer.next_frame().expect("deframe")
                    {
                        let fd_line = stream
                            .fd_chunks
                            .iter()
                            .find(|(start, len, _)| (*start..start + len).contains(&offset))
                            .map(|c| c.2);
                        frames.push((
                            frame.payload.to_vec(),
                            usize::from(frame.header.num_handles),
                            fd_line,
                        ));
                    }
                    for (payload, num_fds, fd_line) in frames {
                        let message = Message::decode(&payload, num_fds).expect("decode");
                        self.on_message(*chan, *dir, &message, fd_line, fd_kinds);
                    }
                }
            }
        }
    }

    /// The region carried by driver object `index` of a message whose fds
    /// came with chunk line `fd_line`.
    fn region_of(
        &self,
        message: &Message<'_>,
        index: DriverObjectIndex,
        fd_line: Option<usize>,
    ) -> usize {
        let object = &message.driver_objects[index.get().expect("object index")];
        let fd = usize::from(object.fds.first);
        self.maps_after[&fd_line.expect("fds")][&fd]
    }

    fn channel_of_transport(
        message: &Message<'_>,
        index: DriverObjectIndex,
        fd_kinds: &[String],
    ) -> u32 {
        let object = &message.driver_objects[index.get().expect("object index")];
        let kind = &fd_kinds[usize::from(object.fds.first)];
        kind.strip_prefix("socket->chan")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("transport fd is {kind}"))
    }

    fn add_link(&mut self, chan: u32, shm: usize) {
        let memory = NodeLinkMemory::new(self.regions[&shm].clone(), MemoryOptions::default())
            .expect("primary buffer of 131072 bytes");
        assert!(
            self.links.insert(chan, memory).is_none(),
            "{}: two primary buffers for chan {chan}",
            self.name
        );
        self.primary_of.insert(chan, shm);
        self.primaries_to_check.insert(shm);
    }

    fn on_message(
        &mut self,
        chan: u32,
        dir: Direction,
        message: &Message<'_>,
        fd_line: Option<usize>,
        fd_kinds: &[String],
    ) {
        match &message.body {
            Body::ConnectFromBrokerToNonBroker(m) => {
                self.node_names.extend([m.broker_name, m.receiver_name]);
                let shm = self.region_of(message, m.buffer, fd_line);
                self.add_link(chan, shm);
            }
            Body::ConnectToReferredNonBroker(m) => {
                self.node_names
                    .extend([m.name, m.broker_name, m.referrer_name]);
                let broker = self.region_of(message, m.broker_link_buffer, fd_line);
                self.add_link(chan, broker);
                let referrer_chan =
                    Self::channel_of_transport(message, m.referrer_link_transport, fd_kinds);
                let referrer = self.region_of(message, m.referrer_link_buffer, fd_line);
                self.add_link(referrer_chan, referrer);
            }
            Body::AcceptIntroduction(m) => {
                self.node_names.insert(m.name);
                let link_chan = Self::channel_of_transport(message, m.transport, fd_kinds);
                let shm = self.region_of(message, m.memory, fd_line);
                self.add_link(link_chan, shm);
            }
            Body::AddBlockBuffer(m) => {
                let shm = self.region_of(message, m.buffer, fd_line);
                let region = self.regions[&shm].clone();
                self.links
                    .get_mut(&chan)
                    .expect("link memory")
                    .add_block_buffer(m.id, m.block_size, region)
                    .expect("AddBlockBuffer accepted");
                self.stats.added_buffers += 1;
            }
            Body::AcceptParcel(m) => {
                let data = if m.parcel_fragment.is_null() {
                    self.stats.inline += 1;
                    m.parcel_data.to_vec()
                } else {
                    self.stats.fragments += 1;
                    self.check_data_fragment(chan, m.parcel_fragment)
                };
                for descriptor in &m.new_routers {
                    self.check_new_sublink(chan, descriptor.new_sublink);
                    if descriptor.new_decaying_sublink.0 != 0 {
                        self.check_new_sublink(chan, descriptor.new_decaying_sublink);
                    }
                    if !descriptor.new_link_state_fragment.is_null() {
                        self.check_link_state(chan, descriptor.new_link_state_fragment);
                    }
                }
                self.parcels.push(Parcel {
                    chan,
                    dir,
                    sublink: m.sublink,
                    sequence_number: m.sequence_number.0,
                    data,
                    fragment: (!m.parcel_fragment.is_null()).then_some(m.parcel_fragment),
                });
            }
            Body::BypassPeerWithLink(m) => {
                self.check_new_sublink(chan, m.new_sublink);
                self.check_link_state(chan, m.new_link_state_fragment);
            }
            Body::AcceptBypassLink(m) => self.check_link_state(chan, m.new_link_state_fragment),
            _ => {}
        }
    }

    fn memory(&self, chan: u32) -> &NodeLinkMemory<Shared> {
        self.links
            .get(&chan)
            .unwrap_or_else(|| panic!("{}: no link memory on chan {chan}", self.name))
    }

    /// A sublink a message introduces was allocated from the link's shared
    /// counter (spec §5.2): at least 12 and below `next_sublink_id`.
    fn check_new_sublink(&mut self, chan: u32, sublink: SublinkId) {
        let next = self
            .memory(chan)
            .primary()
            .load_u64(8, Ordering::Relaxed)
            .unwrap();
        assert!(
            (12..next).contains(&sublink.0),
            "{}: new sublink {sublink} not from the counter ({next})",
            self.name
        );
        self.stats.new_sublinks += 1;
    }

    /// The fragment is a block that is not on its allocator's free list.
    fn check_allocated(&self, chan: u32, fragment: FragmentDescriptor) {
        let memory = self.memory(chan);
        let allocator = memory
            .block_allocators()
            .find(|a| a.buffer() == fragment.buffer_id && a.block_size() == fragment.size)
            .unwrap_or_else(|| panic!("{}: fragment {fragment} has no allocator", self.name));
        let block = allocator
            .block_at(fragment.offset as usize)
            .unwrap_or_else(|| panic!("{}: fragment {fragment} is not a block", self.name));
        let region = memory.buffer(fragment.buffer_id).expect("buffer");
        let free = allocator.free_list(region).expect("free list");
        assert!(
            !free.contains(&block),
            "{}: fragment {fragment} is on the free list",
            self.name
        );
    }

    fn check_data_fragment(&mut self, chan: u32, fragment: FragmentDescriptor) -> Vec<u8> {
        let memory = self.memory(chan);
        let data = match memory.read_parcel_data(fragment) {
            Ok(Resolved::Ready(data)) => data,
            other => panic!("{}: fragment {fragment}: {other:?}", self.name),
        };
        let region = memory.buffer(fragment.buffer_id).expect("buffer");
        assert_eq!(
            region.load_u32(fragment.offset as usize + 4, Ordering::Relaxed),
            Ok(0),
            "{}: FragmentHeader.reserved",
            self.name
        );
        if fragment.buffer_id == BufferId::PRIMARY {
            let class = primary_class_for_data(data.len()).expect("a block class");
            assert_eq!(
                fragment.size,
                class.block_size,
                "{}: block size for {} bytes",
                self.name,
                data.len()
            );
        }
        self.check_allocated(chan, fragment);
        if fragment.buffer_id == BufferId::PRIMARY {
            self.consume_on_a_copy(chan, fragment, &data);
        }
        data
    }

    /// What the proxy does with a received fragment, on a private copy of
    /// the buffer as Chrome left it: copy the data out and free the block
    /// (it becomes the head of Chrome's free list, which stays valid); the
    /// next allocation of that size gets it back.
    fn consume_on_a_copy(&self, chan: u32, fragment: FragmentDescriptor, data: &[u8]) {
        let shm = self.primary_of[&chan];
        let copy = HeapMemory::from_bytes(&self.regions[&shm].heap.snapshot());
        let mut memory = NodeLinkMemory::new(copy, MemoryOptions::default()).unwrap();
        let allocator = *memory
            .block_allocators()
            .find(|a| a.buffer() == BufferId::PRIMARY && a.block_size() == fragment.size)
            .unwrap();
        let before = allocator.free_list(memory.primary()).unwrap();
        assert_eq!(
            memory.take_parcel_data(fragment),
            Ok(Resolved::Ready(data.to_vec()))
        );
        let after = allocator.free_list(memory.primary()).unwrap();
        let block = allocator.block_at(fragment.offset as usize).unwrap();
        assert_eq!(after[0], block, "{}: freed block heads the list", self.name);
        assert_eq!(
            after[1..],
            before[..],
            "{}: rest of the list unchanged",
            self.name
        );
        assert_eq!(
            memory.allocate_fragment(fragment.size as usize),
            Ok(Some(fragment))
        );
    }

    fn check_link_state(&mut self, chan: u32, fragment: FragmentDescriptor) {
        let memory = self.memory(chan);
        let state = match memory.router_link_state(fragment) {
            Ok(Resolved::Ready(state)) => state,
            other => panic!("{}: link state {fragment}: {other:?}", self.name),
        };
        let refs = state.ref_count().unwrap();
        let status = state.status().unwrap();
        // Handed over with one reference per side (spec §5.3).
        assert_eq!(refs, 2, "{}: {fragment} ref_count", self.name);
        assert_eq!(
            status.bits() & !0x3f,
            0,
            "{}: {fragment} status {status}",
            self.name
        );
        let region = memory.buffer(fragment.buffer_id).expect("buffer");
        let mut tail = [0u8; ROUTER_LINK_STATE_SIZE - 24];
        region
            .read(fragment.offset as usize + 24, &mut tail)
            .unwrap();
        assert_eq!(tail, [0; 40], "{}: {fragment} reserved bytes", self.name);
        self.stats.link_states += 1;
        self.stats.link_states_with_two_refs += usize::from(refs == 2);
        if !self.link_states.contains(&(chan, fragment)) {
            self.link_states.push((chan, fragment));
        }
        if fragment.buffer_id != BufferId::PRIMARY || fragment.offset >= 1024 {
            self.check_allocated(chan, fragment);
            // Both sides letting go, on a private copy: the second frees it.
            let shm = self.primary_of[&chan];
            if fragment.buffer_id == BufferId::PRIMARY {
                let copy = HeapMemory::from_bytes(&self.regions[&shm].heap.snapshot());
                let mut memory = NodeLinkMemory::new(copy, MemoryOptions::default()).unwrap();
                assert_eq!(
                    memory.release_router_link_state(fragment),
                    Ok(ReleaseOutcome::Kept)
                );
                assert_eq!(
                    memory.release_router_link_state(fragment),
                    Ok(ReleaseOutcome::Freed)
                );
                assert_eq!(memory.allocate_router_link_state(), Ok(Some(fragment)));
            }
        }
    }

    /// Right after the relay mapped a primary buffer: exactly as its creator
    /// initialized it (counters at or past 1 and 12, each region's last
    /// header pointing to block 0, block 0 pointing to block 1 unless some
    /// block is already allocated).
    fn check_fresh_primary(&self, shm: usize) {
        let mem = &self.regions[&shm].heap;
        let buffer_id = mem.load_u64(0, Ordering::Relaxed).unwrap();
        let sublink_id = mem.load_u64(8, Ordering::Relaxed).unwrap();
        assert!(
            buffer_id >= 1 && sublink_id >= 12,
            "{}: counters {buffer_id} {sublink_id}",
            self.name
        );
        let mut reserved = [0u8; 240];
        mem.read(16, &mut reserved).unwrap();
        assert_eq!(reserved, [0; 240], "{}: reserved header", self.name);
        for region in primary::REGIONS {
            let last = region.offset + (region.num_blocks - 1) * region.block_size as usize;
            assert_eq!(
                mem.load_u32(last, Ordering::Relaxed),
                Ok(initial_last_header(region.num_blocks).to_word()),
                "{}: last header of the {}-byte region",
                self.name,
                region.block_size
            );
        }
    }

    /// A link locked for bypass names, as the allowed requester, a node of
    /// this recording, and `CanNodeRequestBypass` agrees from the other side.
    fn check_bypass_source(&mut self, chan: u32, fragment: FragmentDescriptor) {
        let memory = self.memory(chan);
        let Ok(Resolved::Ready(state)) = memory.router_link_state(fragment) else {
            return;
        };
        let status = state.status().unwrap();
        let managed = fragment.buffer_id != BufferId::PRIMARY || fragment.offset >= 1024;
        if managed && !(1..=2).contains(&state.ref_count().unwrap()) {
            return; // freed since (and maybe reused for parcel data)
        }
        let source = state.allowed_bypass_request_source().unwrap();
        if !source.is_valid() || !status.intersects(LinkStatus::LOCKED) {
            return;
        }
        assert!(
            self.node_names.contains(&source),
            "{}: {fragment} allows bypass by unknown node {source}",
            self.name
        );
        let locker = if status.is_locked_by(LinkSide::A) {
            LinkSide::A
        } else {
            LinkSide::B
        };
        assert_eq!(
            state.can_node_request_bypass(locker.opposite(), source),
            Ok(true)
        );
        assert_eq!(state.can_node_request_bypass(locker, source), Ok(false));
        self.stats.bypass_sources_seen += 1;
    }

    fn check_memory_at_chunk(&mut self) {
        let states = self.link_states.clone();
        for (chan, fragment) in states {
            self.check_bypass_source(chan, fragment);
        }
        for i in 0..12 {
            let chans: Vec<u32> = self.links.keys().copied().collect();
            for chan in chans {
                let d = NodeLinkMemory::<Shared>::initial_router_link_state_fragment(i).unwrap();
                self.check_bypass_source(chan, d);
            }
        }
        for (&chan, memory) in &self.links {
            let shm = self.primary_of[&chan];
            let mem = &self.regions[&shm].heap;
            if mem.load_u64(8, Ordering::Relaxed).unwrap() == 0 {
                continue; // not mapped by the relay yet
            }
            let counters = (
                mem.load_u64(0, Ordering::Relaxed).unwrap(),
                mem.load_u64(8, Ordering::Relaxed).unwrap(),
            );
            let last = self.last_counters.insert(chan, counters).unwrap_or((1, 12));
            assert!(
                counters.0 >= last.0 && counters.1 >= last.1,
                "{}: counters went back",
                self.name
            );
            for allocator in memory.block_allocators() {
                let region = memory.buffer(allocator.buffer()).expect("buffer");
                if let Err(e) = allocator.free_list(region) {
                    panic!("{}: {e}", self.name);
                }
                self.stats.free_list_walks += 1;
            }
            for i in 0..12 {
                let state = memory.initial_router_link_state(i).unwrap();
                let refs = state.ref_count().unwrap();
                let status = state.status().unwrap();
                // Unmanaged: each side's release decrements, nobody frees.
                assert!(
                    (-2..=0).contains(&refs),
                    "{}: initial state {i} ref_count {refs}",
                    self.name
                );
                self.stats.lowest_initial_ref_count = self.stats.lowest_initial_ref_count.min(refs);
                assert_eq!(status.bits() & !0x3f, 0, "{}: initial state {i}", self.name);
                let mut tail = [0u8; 40];
                mem.read(256 + 64 * i + 24, &mut tail).unwrap();
                assert_eq!(tail, [0; 40], "{}: initial state {i} reserved", self.name);
                if status.intersects(LinkStatus::LOCKED) {
                    assert!(
                        status.contains(LinkStatus::STABLE),
                        "{}: locked before stable",
                        self.name
                    );
                    self.stats.locked_seen += 1;
                }
                if status.intersects(LinkStatus::SIDE_A_WAITING | LinkStatus::SIDE_B_WAITING) {
                    self.stats.waiting_seen += 1;
                }
            }
        }
    }

    /// Scenario checks on the parcel bytes.
    fn check_parcels(&self, scenario: &str) {
        let opcode = |p: &Parcel| {
            p.data
                .get(..4)
                .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
        };
        // A MojoIpcz data pipe's control portal carries byte counts, not
        // test-peer messages.
        let app_only = !scenario.contains("datapipe");
        for p in self.parcels.iter().filter(|_| app_only) {
            if let Some(op) = opcode(p) {
                assert!(
                    is_known_opcode(op),
                    "{}: parcel with opcode {op} ({} bytes)",
                    self.name,
                    p.data.len()
                );
            }
        }
        // Echo and Hello requests come back byte for byte.
        let echoes = |dir| {
            let mut v: Vec<&[u8]> = self
                .parcels
                .iter()
                .filter(|p| p.dir == dir && matches!(opcode(p), Some(1 | 15)))
                .map(|p| &p.data[..])
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            echoes(Direction::AToB),
            echoes(Direction::BToA),
            "{}: echoes differ",
            self.name
        );
        if scenario == "shm_echo_small" {
            // The echo pipe: the sublink carrying the 4-byte Echo.
            let sublink = self
                .parcels
                .iter()
                .find(|p| p.dir == Direction::AToB && opcode(p) == Some(1))
                .map(|p| (p.chan, p.sublink))
                .expect("echo parcels");
            // In sequence-number order: parcels may cross the socket out of
            // order (the receiver's queue restores it).
            let mut echoes: Vec<&Parcel> = self
                .parcels
                .iter()
                .filter(|p| {
                    p.dir == Direction::AToB
                        && (p.chan, p.sublink) == sublink
                        && opcode(p) == Some(1)
                })
                .collect();
            echoes.sort_by_key(|p| p.sequence_number);
            let sizes: Vec<usize> = echoes.iter().map(|p| p.data.len()).collect();
            assert!(sizes.len() >= 12, "{}: {} echoes", self.name, sizes.len());
            // The lock-step phase sends the sizes in order; every further
            // round of 12 (the pipelined phase, in its own order) uses each
            // size once.
            assert_eq!(
                sizes[..12],
                ECHO_SIZES,
                "{}: lock-step echo sizes",
                self.name
            );
            for round in sizes.chunks(12) {
                let mut sorted = round.to_vec();
                sorted.sort();
                let mut all = ECHO_SIZES.to_vec();
                all.truncate(round.len().max(12));
                if round.len() == 12 {
                    assert_eq!(sorted, all, "{}: echo sizes {round:?}", self.name);
                } else {
                    assert!(
                        round.iter().all(|s| ECHO_SIZES.contains(s)),
                        "{}: {round:?}",
                        self.name
                    );
                }
            }
            let via_fragments = self
                .parcels
                .iter()
                .filter(|p| p.fragment.is_some() && opcode(p) == Some(1))
                .count();
            assert!(
                via_fragments > 0,
                "{}: no echo came through a fragment",
                self.name
            );
        }
    }
}

fn replay(path: &Path) -> Stats {
    let text = std::fs::read_to_string(path).expect("read recording");
    let lines = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.display().to_string();
    let mut replay = Replay::new(name.clone(), &lines);
    replay.run();
    assert!(!replay.links.is_empty(), "{name}: no link memory");
    replay.check_parcels(&scenario(path));
    eprintln!("{name}: {:?}", replay.stats);
    replay.stats
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn every_shm_recording_reads_back_as_the_spec_says() {
    let files = ipcz_recordings();
    assert!(!files.is_empty(), "no shm recordings in the vectors");
    let mut total = Stats::default();
    for path in &files {
        let stats = replay(path);
        if scenario(path) == "shm_close" {
            // Closure locks the initial links (spec §6.6); both sides then
            // release them, unmanaged, down to -2.
            assert!(
                stats.locked_seen > 0,
                "{}: no lock bit seen",
                path.display()
            );
            assert_eq!(stats.lowest_initial_ref_count, -2, "{}", path.display());
        }
        total.locked_seen += stats.locked_seen;
        total.waiting_seen += stats.waiting_seen;
        total.new_sublinks += stats.new_sublinks;
        total.bypass_sources_seen += stats.bypass_sources_seen;
        total.lowest_initial_ref_count = total
            .lowest_initial_ref_count
            .min(stats.lowest_initial_ref_count);
        total.fragments += stats.fragments;
        total.inline += stats.inline;
        total.link_states += stats.link_states;
        total.link_states_with_two_refs += stats.link_states_with_two_refs;
        total.free_list_walks += stats.free_list_walks;
    }
    eprintln!("total: {total:?}");
    assert!(total.fragments > 500, "only {} fragments", total.fragments);
    assert!(total.link_states > 20);
    assert!(total.waiting_seen > 0, "no waiting bit seen");
    assert!(total.new_sublinks > 20);
    assert!(
        total.bypass_sources_seen > 0,
        "no link locked for bypass seen"
    );
}
