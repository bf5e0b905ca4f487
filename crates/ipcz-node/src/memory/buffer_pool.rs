//! The buffer pool of spec §5.5: the link's buffers by id, and per block
//! size the list of BlockAllocators (buffer 0's six regions, then one per
//! added buffer).

use std::collections::BTreeMap;

use ipcz_wire::memory::BlockRegion;
use ipcz_wire::types::{BufferId, FragmentDescriptor};
use mojo_wire_kit::SharedMemory;

use super::{BlockAllocator, MemoryError};

/// The allocators of one block size, in the order their buffers were added.
#[derive(Debug, Default)]
struct BlockClass {
    allocators: Vec<BlockAllocator>,
    /// The allocator that last succeeded: tried first, as in Chrome's
    /// `BlockAllocatorPool`. (Chrome then walks only towards newer
    /// allocators; this pool wraps around and tries every one.)
    active: usize,
}

/// Buffers and their allocators.
#[derive(Debug)]
pub(super) struct BufferPool<M> {
    primary: M,
    /// Added buffers (never the primary one).
    buffers: BTreeMap<BufferId, M>,
    classes: BTreeMap<u32, BlockClass>,
}

impl<M: SharedMemory> BufferPool<M> {
    /// A pool holding the primary buffer with allocators over `regions`.
    pub(super) fn new(primary: M, regions: &[BlockRegion]) -> Result<Self, MemoryError> {
        let allocators = Self::allocators_for(BufferId::PRIMARY, &primary, regions)?;
        let mut pool = Self {
            primary,
            buffers: BTreeMap::new(),
            classes: BTreeMap::new(),
        };
        pool.insert_allocators(allocators);
        Ok(pool)
    }

    /// Registered buffers, the primary one included.
    pub(super) fn len(&self) -> usize {
        self.buffers.len() + 1
    }

    pub(super) fn primary(&self) -> &M {
        &self.primary
    }

    pub(super) fn get(&self, id: BufferId) -> Option<&M> {
        if id == BufferId::PRIMARY {
            Some(&self.primary)
        } else {
            self.buffers.get(&id)
        }
    }

    fn allocators_for(
        id: BufferId,
        mem: &M,
        regions: &[BlockRegion],
    ) -> Result<Vec<BlockAllocator>, MemoryError> {
        let mut allocators: Vec<BlockAllocator> = Vec::with_capacity(regions.len());
        for region in regions {
            let allocator = BlockAllocator::new(id, *region, mem.size())?;
            if !region.block_size.is_power_of_two()
                || allocators
                    .iter()
                    .any(|a| a.block_size() == region.block_size)
            {
                return Err(MemoryError::BadRegion {
                    buffer: id,
                    offset: region.offset,
                    block_size: region.block_size,
                    len: region.len(),
                });
            }
            allocators.push(allocator);
        }
        Ok(allocators)
    }

    fn insert_allocators(&mut self, allocators: Vec<BlockAllocator>) {
        for allocator in allocators {
            self.classes
                .entry(allocator.block_size())
                .or_default()
                .allocators
                .push(allocator);
        }
    }

    /// Registers buffer `id` with allocators over `regions` (each a distinct
    /// block size). Nothing changes if any check fails.
    pub(super) fn add(
        &mut self,
        id: BufferId,
        mem: M,
        regions: &[BlockRegion],
    ) -> Result<(), MemoryError> {
        if self.get(id).is_some() {
            return Err(MemoryError::DuplicateBuffer(id));
        }
        let allocators = Self::allocators_for(id, &mem, regions)?;
        self.buffers.insert(id, mem);
        self.insert_allocators(allocators);
        Ok(())
    }

    /// Bytes the allocators of exactly `block_size` can hand out.
    pub(super) fn capacity(&self, block_size: u32) -> usize {
        self.classes.get(&block_size).map_or(0, |c| {
            c.allocators
                .iter()
                .map(BlockAllocator::capacity_bytes)
                .sum()
        })
    }

    /// Every allocator, smallest block size first.
    pub(super) fn allocators(&self) -> impl Iterator<Item = &BlockAllocator> {
        self.classes.values().flat_map(|c| c.allocators.iter())
    }

    /// A block from the smallest block size `>= block_size` that has
    /// allocators (only that size is tried, as Chrome's `lower_bound`);
    /// `Ok(None)` when all of them are full.
    pub(super) fn allocate(
        &mut self,
        block_size: u32,
    ) -> Result<Option<FragmentDescriptor>, MemoryError> {
        let (primary, buffers) = (&self.primary, &self.buffers);
        let Some((_, class)) = self.classes.range_mut(block_size..).next() else {
            return Ok(None);
        };
        let n = class.allocators.len();
        for step in 0..n {
            let i = (class.active + step) % n;
            let allocator = class.allocators[i];
            let mem = if allocator.buffer() == BufferId::PRIMARY {
                primary
            } else if let Some(mem) = buffers.get(&allocator.buffer()) {
                mem
            } else {
                continue;
            };
            if let Some(index) = allocator.allocate(mem)? {
                class.active = i;
                // The allocator only returns indices of its own region.
                let offset = allocator.block_offset(index).unwrap_or(usize::MAX);
                let offset = u32::try_from(offset).map_err(|_| MemoryError::BadRegion {
                    buffer: allocator.buffer(),
                    offset,
                    block_size: allocator.block_size(),
                    len: allocator.region().len(),
                })?;
                return Ok(Some(FragmentDescriptor {
                    buffer_id: allocator.buffer(),
                    offset,
                    size: allocator.block_size(),
                }));
            }
        }
        Ok(None)
    }

    /// Frees the block `fragment` names: the allocator is chosen by its size
    /// and buffer, and the fragment must start a block (1 or later) of it.
    /// The buffer must be registered.
    pub(super) fn free(&self, fragment: FragmentDescriptor) -> Result<(), MemoryError> {
        let allocator = self
            .classes
            .get(&fragment.size)
            .and_then(|c| {
                c.allocators
                    .iter()
                    .find(|a| a.buffer() == fragment.buffer_id)
            })
            .ok_or(MemoryError::NotABlock(fragment))?;
        let mem = self
            .get(fragment.buffer_id)
            .ok_or(MemoryError::NotABlock(fragment))?;
        let index = allocator
            .block_at(fragment.offset as usize)
            .ok_or(MemoryError::NotABlock(fragment))?;
        allocator.free(mem, index)
    }
}
