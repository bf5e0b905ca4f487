//! NodeLinkMemory (spec §5): the primary buffer and the added buffers of one
//! node link, the shared id counters, fragments and RouterLinkStates, and
//! the requests for more capacity.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use ipcz_wire::limits::{
    FIRST_ALLOCATABLE_BUFFER_ID, FIRST_ALLOCATABLE_SUBLINK_ID,
    MAX_BLOCK_CAPACITY_PER_FRAGMENT_SIZE, MAX_FRAGMENT_SIZE_FOR_BLOCK_ALLOCATION, MIN_BLOCK_SIZE,
    ROUTER_LINK_STATE_SIZE,
};
use ipcz_wire::memory::block::{added_buffer_size, check_added_buffer};
use ipcz_wire::memory::{BlockRegion, is_valid_link_state_fragment, primary};
use ipcz_wire::types::{BufferId, FragmentDescriptor, SublinkId};
use mojo_wire_kit::SharedMemory;

use super::buffer_pool::BufferPool;
use super::fragment::{read_parcel_data_into, write_parcel_data};
use super::{
    BlockAllocator, MAX_ADDED_BUFFER_BYTES_PER_LINK, MAX_BLOCK_BUFFERS_PER_LINK,
    MAX_DEFERRED_FREES, MemoryError, Resolved, RouterLinkState,
};

/// Smallest block size a best-effort allocation falls back to
/// (`kMinBestEffortFallbackBlockSize`).
const MIN_BEST_EFFORT_BLOCK_SIZE: usize = 4096;

/// How a NodeLinkMemory may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryOptions {
    /// `IPCZ_MEMORY_FIXED_PARCEL_CAPACITY`: never ask for more capacity
    /// because a parcel-data allocation failed (RouterLinkState allocations
    /// still do). MojoIpcz always sets it.
    pub fixed_parcel_capacity: bool,
}

impl Default for MemoryOptions {
    /// As MojoIpcz configures its nodes: fixed parcel capacity.
    fn default() -> Self {
        Self {
            fixed_parcel_capacity: true,
        }
    }
}

/// Something the node core must do for its NodeLinkMemory: the core never
/// creates memory itself, it asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryAction {
    /// Create a zero-filled shared region of `buffer_size` bytes (a memfd,
    /// read-write), map it and give the mapping to
    /// [`NodeLinkMemory::provide_block_buffer`] (or report failure with
    /// [`NodeLinkMemory::block_buffer_failed`]). At most one request per
    /// block size is outstanding.
    CreateBlockBuffer {
        /// Block size of the allocator the buffer will hold.
        block_size: u32,
        /// Size of the region: at least 8 blocks, in 64 KiB pages.
        buffer_size: usize,
    },
}

/// A buffer this side added, to be announced to the peer with
/// `AddBlockBuffer{id, block_size, buffer}` (SharedBuffer mode unsafe)
/// before any later message on the link, so the peer knows the buffer before
/// anything references it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddedBlockBuffer {
    /// The id allocated for it from the shared counter.
    pub id: BufferId,
    /// Its block size.
    pub block_size: u32,
}

/// What freeing a fragment did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeOutcome {
    /// The block is back on its free list.
    Freed,
    /// Its buffer is not registered yet: the block is freed when
    /// AddBlockBuffer for it arrives.
    Deferred,
}

/// What dropping a reference to a RouterLinkState did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Another reference remains (or the state is an unmanaged initial one).
    Kept,
    /// This was the last reference: the block was freed.
    Freed,
}

/// The shared memory of one node link, generic over the [`SharedMemory`]
/// seam: [`mojo_wire_kit::HeapMemory`] in tests, the platform crate's
/// mappings in the proxy.
#[derive(Debug)]
pub struct NodeLinkMemory<M> {
    pool: BufferPool<M>,
    options: MemoryOptions,
    /// Block sizes with an outstanding [`MemoryAction::CreateBlockBuffer`].
    capacity_requests: BTreeSet<u32>,
    actions: Vec<MemoryAction>,
    /// Fragments freed while their buffer was unknown.
    deferred_frees: Vec<FragmentDescriptor>,
    /// Bytes of all added buffers.
    added_bytes: usize,
}

impl<M: SharedMemory> NodeLinkMemory<M> {
    /// Initializes a fresh, zero-filled primary buffer as its creator (the
    /// broker, or the broker introducing two nodes) does, before sharing it:
    /// `next_buffer_id = 1`, `next_sublink_id = 12` (Relaxed), then every
    /// block region (each ending with a Release store).
    pub fn initialize_primary_buffer(memory: &M) -> Result<(), MemoryError> {
        if memory.size() < primary::SIZE {
            return Err(MemoryError::PrimaryBufferTooSmall {
                size: memory.size(),
            });
        }
        let access = |error| MemoryError::Access {
            buffer: BufferId::PRIMARY,
            error,
        };
        memory
            .store_u64(
                primary::NEXT_BUFFER_ID_OFFSET,
                primary::INITIAL_NEXT_BUFFER_ID,
                Ordering::Relaxed,
            )
            .map_err(access)?;
        memory
            .store_u64(
                primary::NEXT_SUBLINK_ID_OFFSET,
                primary::INITIAL_NEXT_SUBLINK_ID,
                Ordering::Relaxed,
            )
            .map_err(access)?;
        for region in primary::REGIONS {
            BlockAllocator::new(BufferId::PRIMARY, region, memory.size())?.initialize(memory)?;
        }
        Ok(())
    }

    /// The link's memory from its primary buffer (BufferId 0), which must
    /// have at least 131072 bytes and is not initialized here.
    pub fn new(primary: M, options: MemoryOptions) -> Result<Self, MemoryError> {
        if primary.size() < primary::SIZE {
            return Err(MemoryError::PrimaryBufferTooSmall {
                size: primary.size(),
            });
        }
        let pool = BufferPool::new(primary, &primary::REGIONS)?;
        Ok(Self {
            pool,
            options,
            capacity_requests: BTreeSet::new(),
            actions: Vec::new(),
            deferred_frees: Vec::new(),
            added_bytes: 0,
        })
    }

    /// The primary buffer.
    pub fn primary(&self) -> &M {
        self.pool.primary()
    }

    /// Buffer `id`, if registered.
    pub fn buffer(&self, id: BufferId) -> Option<&M> {
        self.pool.get(id)
    }

    /// Number of registered buffers, the primary one included.
    pub fn num_buffers(&self) -> usize {
        self.pool.len()
    }

    /// Every BlockAllocator, smallest block size first (for inspection).
    pub fn block_allocators(&self) -> impl Iterator<Item = &BlockAllocator> {
        self.pool.allocators()
    }

    /// Bytes the allocators of exactly `block_size` can hand out.
    pub fn block_capacity(&self, block_size: u32) -> usize {
        self.pool.capacity(block_size)
    }

    /// Fragments waiting for their buffer to be freed.
    pub fn num_deferred_frees(&self) -> usize {
        self.deferred_frees.len()
    }

    /// Takes the actions accumulated since the last call, oldest first.
    pub fn take_actions(&mut self) -> Vec<MemoryAction> {
        std::mem::take(&mut self.actions)
    }

    fn primary_access(error: mojo_wire_kit::ShmAccessError) -> MemoryError {
        MemoryError::Access {
            buffer: BufferId::PRIMARY,
            error,
        }
    }

    /// AllocateNewBufferId (v1 scheme): `fetch_add(next_buffer_id, 1,
    /// Relaxed)`. An id the peer's writes made unusable (0, the invalid id,
    /// one registered already) is an error.
    pub fn allocate_new_buffer_id(&self) -> Result<BufferId, MemoryError> {
        let id = self
            .primary()
            .fetch_add_u64(primary::NEXT_BUFFER_ID_OFFSET, 1, Ordering::Relaxed)
            .map_err(Self::primary_access)?;
        if id < FIRST_ALLOCATABLE_BUFFER_ID
            || id == BufferId::INVALID.0
            || self.pool.get(BufferId(id)).is_some()
        {
            return Err(MemoryError::BadCounter {
                counter: "next_buffer_id",
                value: id,
            });
        }
        Ok(BufferId(id))
    }

    /// AllocateSublinkIds (v1 scheme): `fetch_add(next_sublink_id, count,
    /// Relaxed)`; the caller owns `id .. id + count`. Either side may
    /// allocate at any time. Ids below 12 (the initial portals') or a range
    /// that wraps are errors.
    pub fn allocate_sublink_ids(&self, count: u64) -> Result<SublinkId, MemoryError> {
        let id = self
            .primary()
            .fetch_add_u64(primary::NEXT_SUBLINK_ID_OFFSET, count, Ordering::Relaxed)
            .map_err(Self::primary_access)?;
        if id < FIRST_ALLOCATABLE_SUBLINK_ID || id.checked_add(count).is_none() {
            return Err(MemoryError::BadCounter {
                counter: "next_sublink_id",
                value: id,
            });
        }
        Ok(SublinkId(id))
    }

    /// The fragment of initial RouterLinkState `i` (for initial portal /
    /// sublink `i`): buffer 0, offset `256 + 64 * i`, 64 bytes.
    pub fn initial_router_link_state_fragment(i: usize) -> Result<FragmentDescriptor, MemoryError> {
        let range = primary::initial_link_state(i).ok_or(MemoryError::NoInitialLinkState(i))?;
        // 1024 at most: always fits.
        Ok(FragmentDescriptor::new(
            0,
            range.start as u32,
            ROUTER_LINK_STATE_SIZE as u32,
        ))
    }

    /// Initial RouterLinkState `i`. It is unmanaged: never freed.
    pub fn initial_router_link_state(
        &self,
        i: usize,
    ) -> Result<RouterLinkState<'_, M>, MemoryError> {
        let d = Self::initial_router_link_state_fragment(i)?;
        RouterLinkState::new(self.primary(), BufferId::PRIMARY, d.offset as usize)
    }

    fn is_initial_link_state(fragment: FragmentDescriptor) -> bool {
        fragment.buffer_id == BufferId::PRIMARY
            && primary::INITIAL_LINK_STATES.contains(&(fragment.offset as usize))
    }

    /// The RouterLinkState a descriptor names (a RouterDescriptor's or
    /// BypassPeerWithLink's `new_link_state_fragment`), validated as Chrome
    /// does before adopting one: non-null, at least 64 bytes, 8-aligned, in
    /// bounds. Pending if its buffer is not registered yet.
    pub fn router_link_state(
        &self,
        fragment: FragmentDescriptor,
    ) -> Result<Resolved<RouterLinkState<'_, M>>, MemoryError> {
        if !is_valid_link_state_fragment(fragment) {
            return Err(MemoryError::BadLinkStateFragment(fragment));
        }
        let Some(mem) = self.pool.get(fragment.buffer_id) else {
            return Ok(Resolved::Pending(fragment.buffer_id));
        };
        super::fragment::fragment_range(fragment, mem.size())?;
        RouterLinkState::new(mem, fragment.buffer_id, fragment.offset as usize).map(Resolved::Ready)
    }

    /// AllocateRouterLinkState for a new central link: a 64-byte block,
    /// initialized (`ref_count` 1, all else zero, release fence), then a
    /// second reference taken for the peer, so it is handed over with
    /// `ref_count` 2. `Ok(None)` if no block is free; then a buffer of
    /// 64-byte blocks is requested (always, unlike parcel data) and the
    /// caller retries once it is provided. A state that is never handed
    /// over is given back by releasing both references.
    pub fn allocate_router_link_state(
        &mut self,
    ) -> Result<Option<FragmentDescriptor>, MemoryError> {
        let block_size = ROUTER_LINK_STATE_SIZE as u32;
        let Some(fragment) = self.pool.allocate(block_size)? else {
            self.request_capacity(block_size);
            return Ok(None);
        };
        let state = match self.router_link_state(fragment)? {
            Resolved::Ready(state) => state,
            // Allocated from a registered buffer: cannot be pending.
            Resolved::Pending(id) => return Err(MemoryError::InvalidBufferId(id)),
        };
        state.initialize()?;
        state.add_ref()?;
        Ok(Some(fragment))
    }

    /// Drops this side's reference to the RouterLinkState `fragment` names
    /// (`fetch_sub` AcqRel); the side that drops the last reference frees
    /// the block. Initial states are decremented too but never freed.
    pub fn release_router_link_state(
        &mut self,
        fragment: FragmentDescriptor,
    ) -> Result<ReleaseOutcome, MemoryError> {
        let state = match self.router_link_state(fragment)? {
            Resolved::Ready(state) => state,
            // Never adopted, so no reference of ours to drop.
            Resolved::Pending(_) => return Ok(ReleaseOutcome::Kept),
        };
        let previous = state.release_ref()?;
        if previous != 1 || Self::is_initial_link_state(fragment) {
            return Ok(ReleaseOutcome::Kept);
        }
        self.pool.free(fragment)?;
        Ok(ReleaseOutcome::Freed)
    }

    fn request_capacity(&mut self, block_size: u32) {
        if self.capacity_requests.insert(block_size) {
            self.actions.push(MemoryAction::CreateBlockBuffer {
                block_size,
                buffer_size: added_buffer_size(block_size),
            });
        }
    }

    /// AllocateFragment: a block for `size` bytes from the block size
    /// `max(64, next_power_of_two(size))` (or the next larger one that
    /// exists). `Ok(None)` for 0 or more than 1 MiB, or when that size is
    /// full; then, unless parcel capacity is fixed, a buffer of that block
    /// size is requested while the size has less than 2 MiB.
    pub fn allocate_fragment(
        &mut self,
        size: usize,
    ) -> Result<Option<FragmentDescriptor>, MemoryError> {
        if size == 0 || size > MAX_FRAGMENT_SIZE_FOR_BLOCK_ALLOCATION {
            return Ok(None);
        }
        // At most 1 MiB here, so the power of two fits a u32.
        let block_size = (size.next_power_of_two() as u32).max(MIN_BLOCK_SIZE);
        let fragment = self.pool.allocate(block_size)?;
        if fragment.is_none()
            && !self.options.fixed_parcel_capacity
            && self.pool.capacity(block_size) < MAX_BLOCK_CAPACITY_PER_FRAGMENT_SIZE
        {
            self.request_capacity(block_size);
        }
        Ok(fragment)
    }

    /// AllocateFragmentBestEffort (for a parcel whose data may be cut
    /// short): block sizes from `min(ideal, 1 MiB)` down to 4096, halving,
    /// each tried as [`allocate_fragment`](Self::allocate_fragment);
    /// `Ok(None)` if none has a free block.
    pub fn allocate_fragment_best_effort(
        &mut self,
        size: usize,
    ) -> Result<Option<FragmentDescriptor>, MemoryError> {
        let ideal = size
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .max(MIN_BLOCK_SIZE as usize);
        let mut block_size = ideal.min(MAX_FRAGMENT_SIZE_FOR_BLOCK_ALLOCATION);
        while block_size >= MIN_BEST_EFFORT_BLOCK_SIZE {
            if let Some(fragment) = self.allocate_fragment(block_size)? {
                return Ok(Some(fragment));
            }
            block_size /= 2;
        }
        Ok(None)
    }

    /// Puts parcel data into a new fragment (FragmentHeader, then the data;
    /// `size` stored Release last), as `Router::Put` does when the router
    /// has a remote link: `Ok(None)` means send it inline.
    pub fn allocate_parcel_data(
        &mut self,
        data: &[u8],
    ) -> Result<Option<FragmentDescriptor>, MemoryError> {
        // Empty data never uses a fragment.
        if data.is_empty() {
            return Ok(None);
        }
        let Some(size) = data
            .len()
            .checked_add(ipcz_wire::limits::FRAGMENT_HEADER_SIZE)
        else {
            return Ok(None);
        };
        let Some(fragment) = self.allocate_fragment(size)? else {
            return Ok(None);
        };
        let written = match self.pool.get(fragment.buffer_id) {
            Some(mem) => write_parcel_data(mem, fragment, data),
            None => Err(MemoryError::NotABlock(fragment)),
        };
        if let Err(e) = written {
            // Give the block back; the write error is the one to report.
            let _ = self.pool.free(fragment);
            return Err(e);
        }
        Ok(Some(fragment))
    }

    /// Copies the parcel data out of a received fragment (validated as
    /// `Parcel::AdoptDataFragment` does). Pending if its buffer is unknown.
    /// Does not free it: see [`take_parcel_data`](Self::take_parcel_data).
    pub fn read_parcel_data(
        &self,
        fragment: FragmentDescriptor,
    ) -> Result<Resolved<Vec<u8>>, MemoryError> {
        self.read_parcel_data_into(fragment, Vec::new())
    }

    /// [`read_parcel_data`](Self::read_parcel_data) into `buffer` (a spare
    /// one, so nothing is allocated); `buffer` is dropped if pending.
    pub fn read_parcel_data_into(
        &self,
        fragment: FragmentDescriptor,
        buffer: Vec<u8>,
    ) -> Result<Resolved<Vec<u8>>, MemoryError> {
        if fragment.is_null() {
            return Err(MemoryError::NullFragment);
        }
        match self.pool.get(fragment.buffer_id) {
            None => Ok(Resolved::Pending(fragment.buffer_id)),
            Some(mem) => read_parcel_data_into(mem, fragment, buffer).map(Resolved::Ready),
        }
    }

    /// Copies the parcel data out of a received fragment and frees the
    /// fragment at once (the receiver owns it; the copy keeps the peer from
    /// changing the data afterwards). Pending (and not freed) if its buffer
    /// is unknown. A fragment that fails validation is not freed: the
    /// message is invalid and the link is dropped.
    pub fn take_parcel_data(
        &mut self,
        fragment: FragmentDescriptor,
    ) -> Result<Resolved<Vec<u8>>, MemoryError> {
        self.take_parcel_data_into(fragment, Vec::new())
    }

    /// [`take_parcel_data`](Self::take_parcel_data) into `buffer` (a spare
    /// one, so nothing is allocated); `buffer` is dropped if pending.
    pub fn take_parcel_data_into(
        &mut self,
        fragment: FragmentDescriptor,
        buffer: Vec<u8>,
    ) -> Result<Resolved<Vec<u8>>, MemoryError> {
        let data = self.read_parcel_data_into(fragment, buffer)?;
        if let Resolved::Ready(_) = data {
            self.pool.free(fragment)?;
        }
        Ok(data)
    }

    /// Frees a fragment this side owns: one received in a parcel that is
    /// dropped or consumed, or one it allocated and did not send. If its
    /// buffer is not registered yet, it is freed when the buffer arrives
    /// (bounded by [`MAX_DEFERRED_FREES`]).
    pub fn free_fragment(
        &mut self,
        fragment: FragmentDescriptor,
    ) -> Result<FreeOutcome, MemoryError> {
        if fragment.is_null() {
            return Err(MemoryError::NullFragment);
        }
        if self.pool.get(fragment.buffer_id).is_some() {
            self.pool.free(fragment)?;
            return Ok(FreeOutcome::Freed);
        }
        if self.deferred_frees.len() >= MAX_DEFERRED_FREES {
            return Err(MemoryError::TooManyDeferredFrees {
                limit: MAX_DEFERRED_FREES,
            });
        }
        self.deferred_frees.push(fragment);
        Ok(FreeOutcome::Deferred)
    }

    /// The receiver's checks of AddBlockBuffer (spec §3.3) that need no
    /// mapping: id not invalid, 0 or registered; block size a power of two
    /// `>= 64`; 8 to 32767 blocks; buffer count and bytes within
    /// [`MAX_BLOCK_BUFFERS_PER_LINK`] and [`MAX_ADDED_BUFFER_BYTES_PER_LINK`].
    /// Run it before mapping the region.
    pub fn check_block_buffer(
        &self,
        id: BufferId,
        block_size: u32,
        buffer_size: usize,
    ) -> Result<(), MemoryError> {
        if id == BufferId::INVALID || id == BufferId::PRIMARY {
            return Err(MemoryError::InvalidBufferId(id));
        }
        if self.pool.get(id).is_some() {
            return Err(MemoryError::DuplicateBuffer(id));
        }
        let size32 = u32::try_from(buffer_size).unwrap_or(u32::MAX);
        if check_added_buffer(block_size, size32).is_err() {
            return Err(MemoryError::BadBlockBuffer {
                id,
                block_size,
                size: buffer_size,
            });
        }
        self.check_room(buffer_size)
    }

    fn check_room(&self, buffer_size: usize) -> Result<(), MemoryError> {
        if self.pool.len() >= MAX_BLOCK_BUFFERS_PER_LINK {
            return Err(MemoryError::TooManyBuffers {
                limit: MAX_BLOCK_BUFFERS_PER_LINK,
            });
        }
        let total = self.added_bytes.saturating_add(buffer_size);
        if total > MAX_ADDED_BUFFER_BYTES_PER_LINK {
            return Err(MemoryError::TooMuchMemory {
                limit: MAX_ADDED_BUFFER_BYTES_PER_LINK,
            });
        }
        Ok(())
    }

    /// Receiving AddBlockBuffer: checks as
    /// [`check_block_buffer`](Self::check_block_buffer), registers the
    /// mapping with one allocator of `block_size` over all of it (not
    /// initialized: the sender did), then frees the fragments that were
    /// waiting for it. Whatever was pending on `id` (parcels, link states)
    /// can be resolved after this returns.
    pub fn add_block_buffer(
        &mut self,
        id: BufferId,
        block_size: u32,
        memory: M,
    ) -> Result<(), MemoryError> {
        self.check_block_buffer(id, block_size, memory.size())?;
        let region = BlockRegion::whole_buffer(block_size, memory.size()).map_err(|_| {
            MemoryError::BadBlockBuffer {
                id,
                block_size,
                size: memory.size(),
            }
        })?;
        let size = memory.size();
        self.pool.add(id, memory, &[region])?;
        self.added_bytes += size;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred_frees)
            .into_iter()
            .partition(|f| f.buffer_id == id);
        self.deferred_frees = waiting;
        let mut first_error = None;
        for fragment in ready {
            if let Err(e) = self.pool.free(fragment) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Sending side of AddBlockBuffer, once the caller created the region
    /// asked for by [`MemoryAction::CreateBlockBuffer`] (or on its own
    /// initiative): initializes the allocator over the whole mapping,
    /// allocates a BufferId from the shared counter and registers the
    /// buffer. The caller must queue `AddBlockBuffer{id, block_size,
    /// buffer}` before any later message on the link.
    pub fn provide_block_buffer(
        &mut self,
        block_size: u32,
        memory: M,
    ) -> Result<AddedBlockBuffer, MemoryError> {
        let size = memory.size();
        let bad = MemoryError::BadBlockBuffer {
            id: BufferId::INVALID,
            block_size,
            size,
        };
        let size32 = u32::try_from(size).map_err(|_| bad.clone())?;
        check_added_buffer(block_size, size32).map_err(|_| bad.clone())?;
        let region = BlockRegion::whole_buffer(block_size, size).map_err(|_| bad)?;
        self.check_room(size)?;
        BlockAllocator::new(BufferId::INVALID, region, size)?.initialize(&memory)?;
        let id = self.allocate_new_buffer_id()?;
        self.pool.add(id, memory, &[region])?;
        self.added_bytes += size;
        self.capacity_requests.remove(&block_size);
        Ok(AddedBlockBuffer { id, block_size })
    }

    /// The caller could not create the buffer asked for: a later failed
    /// allocation of that block size may ask again.
    pub fn block_buffer_failed(&mut self, block_size: u32) {
        self.capacity_requests.remove(&block_size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipcz_wire::types::LinkSide;
    use mojo_wire_kit::HeapMemory;

    fn fresh(options: MemoryOptions) -> NodeLinkMemory<HeapMemory> {
        let mem = HeapMemory::new(primary::SIZE);
        NodeLinkMemory::initialize_primary_buffer(&mem).unwrap();
        NodeLinkMemory::new(mem, options).unwrap()
    }

    fn added_buffer(block_size: u32) -> HeapMemory {
        HeapMemory::new(added_buffer_size(block_size))
    }

    #[test]
    fn primary_buffer_is_initialized_exactly_as_the_layout_says() {
        let mem = HeapMemory::from_bytes(&vec![0u8; primary::SIZE]);
        NodeLinkMemory::initialize_primary_buffer(&mem).unwrap();
        let mut expected = vec![0u8; primary::SIZE];
        primary::initialize(&mut expected).unwrap();
        assert_eq!(mem.snapshot(), expected);
        assert_eq!(
            NodeLinkMemory::new(HeapMemory::new(primary::SIZE - 1), MemoryOptions::default())
                .unwrap_err(),
            MemoryError::PrimaryBufferTooSmall {
                size: primary::SIZE - 1
            }
        );
    }

    #[test]
    fn ids_come_from_the_shared_counters() {
        let m = fresh(MemoryOptions::default());
        assert_eq!(m.allocate_new_buffer_id(), Ok(BufferId(1)));
        assert_eq!(m.allocate_new_buffer_id(), Ok(BufferId(2)));
        assert_eq!(m.allocate_sublink_ids(2), Ok(SublinkId(12)));
        assert_eq!(m.allocate_sublink_ids(1), Ok(SublinkId(14)));
        assert_eq!(m.primary().load_u64(8, Ordering::Relaxed), Ok(15));
        // A peer that resets the counters gets errors, not reused ids.
        m.primary().store_u64(8, 3, Ordering::Relaxed).unwrap();
        assert!(matches!(
            m.allocate_sublink_ids(1),
            Err(MemoryError::BadCounter { value: 3, .. })
        ));
        m.primary()
            .store_u64(8, u64::MAX - 1, Ordering::Relaxed)
            .unwrap();
        assert!(m.allocate_sublink_ids(2).is_err());
        m.primary().store_u64(0, 0, Ordering::Relaxed).unwrap();
        assert!(m.allocate_new_buffer_id().is_err());
        m.primary()
            .store_u64(0, u64::MAX, Ordering::Relaxed)
            .unwrap();
        assert!(m.allocate_new_buffer_id().is_err());
    }

    #[test]
    fn router_link_states_are_shared_with_two_references_and_freed_by_the_last() {
        let mut m = fresh(MemoryOptions::default());
        let d = m.allocate_router_link_state().unwrap().unwrap();
        assert_eq!(d, FragmentDescriptor::new(0, 1088, 64));
        let state = m.router_link_state(d).unwrap().ready().unwrap();
        assert_eq!(state.ref_count(), Ok(2));
        assert_eq!(state.status().unwrap().bits(), 0);
        assert_eq!(m.release_router_link_state(d), Ok(ReleaseOutcome::Kept));
        assert_eq!(m.release_router_link_state(d), Ok(ReleaseOutcome::Freed));
        assert_eq!(m.allocate_router_link_state().unwrap(), Some(d));

        // Initial states: decremented like Chrome does, never freed.
        let initial = NodeLinkMemory::<HeapMemory>::initial_router_link_state_fragment(2).unwrap();
        assert_eq!(initial, FragmentDescriptor::new(0, 384, 64));
        assert_eq!(
            m.release_router_link_state(initial),
            Ok(ReleaseOutcome::Kept)
        );
        assert_eq!(
            m.release_router_link_state(initial),
            Ok(ReleaseOutcome::Kept)
        );
        assert_eq!(m.initial_router_link_state(2).unwrap().ref_count(), Ok(-2));
        assert!(m.initial_router_link_state(12).is_err());
        let s = m.initial_router_link_state(0).unwrap();
        s.set_side_stable(LinkSide::B).unwrap();
        assert_eq!(m.primary().load_u32(260, Ordering::Relaxed), Ok(2));

        for bad in [
            FragmentDescriptor::NULL,
            FragmentDescriptor::new(0, 1088, 32),
            FragmentDescriptor::new(0, 1092, 64),
        ] {
            assert_eq!(
                m.router_link_state(bad).unwrap_err(),
                MemoryError::BadLinkStateFragment(bad)
            );
        }
        assert!(
            m.router_link_state(FragmentDescriptor::new(0, 131040, 64))
                .is_err()
        );
        assert_eq!(
            m.router_link_state(FragmentDescriptor::new(7, 64, 64))
                .unwrap()
                .ready()
                .map(|s| s.offset()),
            None
        );
    }

    #[test]
    fn parcel_data_goes_into_the_right_block_size_and_reads_back() {
        let mut m = fresh(MemoryOptions::default());
        for (len, block_size) in [
            (1, 64),
            (56, 64),
            (57, 256),
            (100, 256),
            (255, 512),
            (1000, 1024),
            (2040, 2048),
            (4088, 4096),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let d = m.allocate_parcel_data(&data).unwrap().unwrap();
            assert_eq!(d.size, block_size, "{len}");
            let region = primary::region_for_block_size(block_size).unwrap();
            assert_eq!(region.block_index(d.offset as usize), Some(1), "{len}");
            assert_eq!(m.take_parcel_data(d), Ok(Resolved::Ready(data)));
            // Freed: the same block comes back.
            assert_eq!(m.allocate_fragment(len + 8).unwrap(), Some(d));
            assert_eq!(m.free_fragment(d), Ok(FreeOutcome::Freed));
        }
        assert_eq!(m.allocate_parcel_data(&[0; 4089]).unwrap(), None);
        assert_eq!(m.allocate_parcel_data(&[]).unwrap(), None);
        assert!(
            m.take_actions().is_empty(),
            "fixed parcel capacity never asks"
        );
        // Freeing a fragment twice, or something that is no block, fails.
        let d = m.allocate_parcel_data(b"x").unwrap().unwrap();
        m.free_fragment(d).unwrap();
        assert!(m.free_fragment(d).is_err());
        for bad in [
            FragmentDescriptor::new(0, 1088, 256),
            FragmentDescriptor::new(0, 1096, 64),
            FragmentDescriptor::new(0, 1024, 64),
            FragmentDescriptor::new(0, 256, 64),
        ] {
            assert_eq!(m.free_fragment(bad), Err(MemoryError::NotABlock(bad)));
        }
    }

    #[test]
    fn a_dry_pool_asks_for_a_buffer_once_and_uses_the_one_provided() {
        let mut m = fresh(MemoryOptions::default());
        let mut states = Vec::new();
        while let Some(d) = m.allocate_router_link_state().unwrap() {
            states.push(d);
        }
        assert_eq!(states.len(), 1483);
        assert_eq!(m.allocate_router_link_state().unwrap(), None);
        assert_eq!(
            m.take_actions(),
            vec![MemoryAction::CreateBlockBuffer {
                block_size: 64,
                buffer_size: 65536
            }]
        );
        let added = m.provide_block_buffer(64, added_buffer(64)).unwrap();
        assert_eq!(
            added,
            AddedBlockBuffer {
                id: BufferId(1),
                block_size: 64
            }
        );
        assert_eq!(
            m.allocate_router_link_state().unwrap(),
            Some(FragmentDescriptor::new(1, 64, 64))
        );
        assert_eq!(m.block_capacity(64), 1483 * 64 + 1023 * 64);
        // Once provided, a new shortage asks again.
        let mut n = 1;
        while m.allocate_router_link_state().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 1023);
        assert_eq!(m.take_actions().len(), 1);
        m.block_buffer_failed(64);
        assert_eq!(m.allocate_router_link_state().unwrap(), None);
        assert_eq!(m.take_actions().len(), 1);
        // Releasing states frees blocks in both buffers.
        for d in states.iter().take(3) {
            m.release_router_link_state(*d).unwrap();
            assert_eq!(m.release_router_link_state(*d), Ok(ReleaseOutcome::Freed));
        }
        assert!(m.allocate_router_link_state().unwrap().is_some());
    }

    #[test]
    fn parcel_capacity_grows_only_when_not_fixed() {
        let mut m = fresh(MemoryOptions {
            fixed_parcel_capacity: false,
        });
        for _ in 0..3 {
            assert!(m.allocate_parcel_data(&[1; 3000]).unwrap().is_some());
        }
        assert_eq!(m.allocate_parcel_data(&[1; 3000]).unwrap(), None);
        assert_eq!(m.allocate_parcel_data(&[1; 3000]).unwrap(), None);
        assert_eq!(
            m.take_actions(),
            vec![MemoryAction::CreateBlockBuffer {
                block_size: 4096,
                buffer_size: 65536
            }]
        );
        let added = m.provide_block_buffer(4096, added_buffer(4096)).unwrap();
        let d = m.allocate_parcel_data(&[1; 3000]).unwrap().unwrap();
        assert_eq!(d, FragmentDescriptor::new(added.id.0, 4096, 4096));
    }

    #[test]
    fn fragments_in_unknown_buffers_are_pending_then_resolved() {
        let mut m = fresh(MemoryOptions::default());
        // The peer's buffer 5 of 256-byte blocks, with data in block 2.
        let theirs = added_buffer(256);
        let region = BlockRegion::whole_buffer(256, theirs.size()).unwrap();
        let alloc = BlockAllocator::new(BufferId(5), region, theirs.size()).unwrap();
        alloc.initialize(&theirs).unwrap();
        assert_eq!(alloc.allocate(&theirs), Ok(Some(1)));
        assert_eq!(alloc.allocate(&theirs), Ok(Some(2)));
        let d = FragmentDescriptor::new(5, 512, 256);
        let d1 = FragmentDescriptor::new(5, 256, 256);
        write_parcel_data(&theirs, d, b"later").unwrap();

        assert_eq!(m.read_parcel_data(d), Ok(Resolved::Pending(BufferId(5))));
        assert_eq!(m.take_parcel_data(d), Ok(Resolved::Pending(BufferId(5))));
        assert_eq!(m.free_fragment(d1), Ok(FreeOutcome::Deferred));
        assert_eq!(m.num_deferred_frees(), 1);
        m.add_block_buffer(BufferId(5), 256, theirs).unwrap();
        assert_eq!(m.num_deferred_frees(), 0);
        assert_eq!(
            m.take_parcel_data(d),
            Ok(Resolved::Ready(b"later".to_vec()))
        );
        let mem = m.buffer(BufferId(5)).unwrap();
        assert_eq!(alloc.free_list(mem).unwrap()[..2], [2, 1]);
    }

    #[test]
    fn add_block_buffer_enforces_the_receiver_rules() {
        let mut m = fresh(MemoryOptions::default());
        let cases = [
            (BufferId::INVALID, 64, 65536),
            (BufferId(0), 64, 65536),
            (BufferId(3), 32, 65536),
            (BufferId(3), 96, 65536),
            (BufferId(3), 65536, 65536 * 7),
            (BufferId(3), 64, 64 * 32768),
        ];
        for (id, block_size, size) in cases {
            assert!(
                m.add_block_buffer(id, block_size, HeapMemory::new(size))
                    .is_err(),
                "{id} {block_size} {size}"
            );
        }
        m.add_block_buffer(BufferId(3), 64, HeapMemory::new(65536))
            .unwrap();
        assert_eq!(
            m.add_block_buffer(BufferId(3), 64, HeapMemory::new(65536)),
            Err(MemoryError::DuplicateBuffer(BufferId(3)))
        );
        assert_eq!(m.num_buffers(), 2);
        // A bounded number of deferred frees.
        for i in 0..MAX_DEFERRED_FREES {
            m.free_fragment(FragmentDescriptor::new(9, 64 * (i as u32 + 1), 64))
                .unwrap();
        }
        assert!(matches!(
            m.free_fragment(FragmentDescriptor::new(9, 64, 64)),
            Err(MemoryError::TooManyDeferredFrees { .. })
        ));
    }

    #[test]
    fn best_effort_falls_back_to_smaller_blocks_down_to_4096() {
        let mut m = fresh(MemoryOptions::default());
        // No 8 KiB class: 4096-byte blocks, then none.
        for _ in 0..3 {
            assert_eq!(
                m.allocate_fragment_best_effort(8000)
                    .unwrap()
                    .map(|d| d.size),
                Some(4096)
            );
        }
        assert_eq!(m.allocate_fragment_best_effort(8000).unwrap(), None);
        // Small requests never fall below 4096 either.
        assert_eq!(m.allocate_fragment_best_effort(100).unwrap(), None);
        assert_eq!(m.allocate_fragment_best_effort(usize::MAX).unwrap(), None);
    }

    #[test]
    fn link_states_in_a_buffer_that_arrives_later_resolve_then() {
        let mut m = fresh(MemoryOptions::default());
        let theirs = added_buffer(64);
        let region = BlockRegion::whole_buffer(64, theirs.size()).unwrap();
        let alloc = BlockAllocator::new(BufferId(2), region, theirs.size()).unwrap();
        alloc.initialize(&theirs).unwrap();
        let block = alloc.allocate(&theirs).unwrap().unwrap();
        let d = FragmentDescriptor::new(2, 64 * block as u32, 64);
        let state = RouterLinkState::new(&theirs, BufferId(2), d.offset as usize).unwrap();
        state.initialize().unwrap();
        state.add_ref().unwrap();
        assert_eq!(
            m.router_link_state(d).unwrap().ready().map(|s| s.offset()),
            None
        );
        assert_eq!(m.release_router_link_state(d), Ok(ReleaseOutcome::Kept));
        m.add_block_buffer(BufferId(2), 64, theirs).unwrap();
        let state = m.router_link_state(d).unwrap().ready().unwrap();
        assert_eq!(state.ref_count(), Ok(2));
        state.set_side_stable(LinkSide::B).unwrap();
        assert_eq!(m.release_router_link_state(d), Ok(ReleaseOutcome::Kept));
        assert_eq!(m.release_router_link_state(d), Ok(ReleaseOutcome::Freed));
    }

    #[test]
    fn added_buffers_are_bounded() {
        let mut m = fresh(MemoryOptions::default());
        assert_eq!(
            m.check_block_buffer(BufferId(1), 4096, 32767 * 4096),
            Ok(())
        );
        m.add_block_buffer(BufferId(1), 64, added_buffer(64))
            .unwrap();
        assert_eq!(m.added_bytes, 65536);
        // As if the link had already mapped all it may.
        m.added_bytes = MAX_ADDED_BUFFER_BYTES_PER_LINK - 65535;
        assert_eq!(
            m.check_block_buffer(BufferId(2), 64, 65536),
            Err(MemoryError::TooMuchMemory {
                limit: MAX_ADDED_BUFFER_BYTES_PER_LINK
            })
        );
        assert!(m.provide_block_buffer(64, added_buffer(64)).is_err());
    }
}
