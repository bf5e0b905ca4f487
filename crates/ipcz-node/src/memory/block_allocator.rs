//! The lock-free BlockAllocator of spec §5.4 over shared memory: a free list
//! threaded through the free blocks' first words, rooted at block 0, with an
//! ABA version counter in block 0's header.
//!
//! Every index read from shared memory is range-checked before it is used,
//! and every retry loop is bounded by [`MAX_CAS_ATTEMPTS`], so a peer that
//! scribbles on the allocator gets a [`MemoryError`], never a wild access or
//! an endless loop.

use std::sync::atomic::Ordering;

use ipcz_wire::limits::MAX_BLOCKS_PER_ALLOCATOR;
use ipcz_wire::memory::BlockRegion;
use ipcz_wire::memory::block::{
    BlockHeader, absolute_from_relative, initial_last_header, relative_from_absolute,
};
use ipcz_wire::types::BufferId;
use mojo_wire_kit::SharedMemory;

use super::{MAX_CAS_ATTEMPTS, MemoryError};

/// Bytes written at a time when zeroing a region, so initializing a large
/// region needs no large temporary buffer.
const ZERO_CHUNK: usize = 64 * 1024;

/// Block 0: never handed out; its header is the head of the free list.
const FRONT: i16 = 0;

/// One BlockAllocator: a [`BlockRegion`] of one buffer. It holds no memory
/// itself; every operation is given the buffer's [`SharedMemory`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockAllocator {
    buffer: BufferId,
    region: BlockRegion,
}

impl BlockAllocator {
    /// An allocator over `region` of buffer `buffer`, which has
    /// `buffer_size` bytes. The block size must be a non-zero multiple of 8,
    /// the region 8-aligned, hold 1 to 32767 blocks and lie in the buffer.
    pub fn new(
        buffer: BufferId,
        region: BlockRegion,
        buffer_size: usize,
    ) -> Result<Self, MemoryError> {
        let bad = MemoryError::BadRegion {
            buffer,
            offset: region.offset,
            block_size: region.block_size,
            len: region.block_size as usize * region.num_blocks,
        };
        let fits = region
            .offset
            .checked_add(region.block_size as usize * region.num_blocks)
            .is_some_and(|end| end <= buffer_size);
        if region.block_size == 0
            || region.block_size % 8 != 0
            || region.offset % 8 != 0
            || region.num_blocks == 0
            || region.num_blocks > MAX_BLOCKS_PER_ALLOCATOR
            || !fits
        {
            return Err(bad);
        }
        Ok(Self { buffer, region })
    }

    /// The buffer this allocator lives in.
    pub fn buffer(&self) -> BufferId {
        self.buffer
    }

    /// Its region.
    pub fn region(&self) -> BlockRegion {
        self.region
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.region.block_size
    }

    /// Bytes it can hand out: every block but block 0.
    pub fn capacity_bytes(&self) -> usize {
        (self.region.num_blocks - 1) * self.region.block_size as usize
    }

    /// Buffer offset of block `index` (which must be in range).
    pub fn block_offset(&self, index: usize) -> Option<usize> {
        self.region.block_offset(index)
    }

    /// The block starting at buffer offset `offset`, if it is block 1 or later.
    pub fn block_at(&self, offset: usize) -> Option<usize> {
        self.region.block_index(offset)
    }

    fn access(&self, error: mojo_wire_kit::ShmAccessError) -> MemoryError {
        MemoryError::Access {
            buffer: self.buffer,
            error,
        }
    }

    fn corrupt(&self, block: i16, next: i16) -> MemoryError {
        MemoryError::CorruptFreeList {
            buffer: self.buffer,
            block_size: self.region.block_size,
            block: block.into(),
            next: next.into(),
        }
    }

    fn is_valid(&self, index: i16) -> bool {
        index >= 0 && (index as usize) < self.region.num_blocks
    }

    fn header_offset(&self, index: i16) -> usize {
        // Only called with validated (non-negative, in range) indices.
        self.region.offset + index as usize * self.region.block_size as usize
    }

    fn load(
        &self,
        mem: &impl SharedMemory,
        index: i16,
        order: Ordering,
    ) -> Result<BlockHeader, MemoryError> {
        mem.load_u32(self.header_offset(index), order)
            .map(BlockHeader::from_word)
            .map_err(|e| self.access(e))
    }

    /// InitializeRegion: zero the whole region, then store (Release) the
    /// last block's header pointing back to block 0. Only the side that
    /// created the buffer does this, before anyone else maps it.
    pub fn initialize(&self, mem: &impl SharedMemory) -> Result<(), MemoryError> {
        let zeros = vec![0u8; ZERO_CHUNK.min(self.region.len())];
        let mut at = self.region.offset;
        let end = self.region.offset + self.region.len();
        while at < end {
            let n = (end - at).min(zeros.len());
            mem.write(at, &zeros[..n]).map_err(|e| self.access(e))?;
            at += n;
        }
        let last = self.region.num_blocks - 1;
        let header = initial_last_header(self.region.num_blocks);
        mem.store_u32(
            self.region.offset + last * self.region.block_size as usize,
            header.to_word(),
            Ordering::Release,
        )
        .map_err(|e| self.access(e))
    }

    /// Allocate: takes the first free block off the list and returns its
    /// index (`Ok(None)` if the list is empty). The whole block, header
    /// included, then belongs to the caller.
    ///
    /// Chrome gives up when the candidate's successor is out of range; here
    /// that is a lost race if block 0 changed meanwhile (retry) and
    /// corruption if it did not.
    pub fn allocate(&self, mem: &impl SharedMemory) -> Result<Option<usize>, MemoryError> {
        let mut front = self.load(mem, FRONT, Ordering::Relaxed)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let first = front.next_absolute(FRONT);
            if first == FRONT {
                return Ok(None);
            }
            if !self.is_valid(first) {
                return Err(self.corrupt(FRONT, first));
            }
            let candidate = self.load(mem, first, Ordering::Acquire)?;
            let next_free = absolute_from_relative(first, candidate.next);
            if !self.is_valid(next_free) || next_free == first {
                let now = self.load(mem, FRONT, Ordering::Relaxed)?;
                if now != front {
                    front = now;
                    continue;
                }
                return Err(self.corrupt(first, next_free));
            }
            let new_front = BlockHeader {
                version: front.version.wrapping_add(1),
                next: relative_from_absolute(FRONT, next_free),
            };
            match mem
                .compare_exchange_u32(
                    self.header_offset(FRONT),
                    front.to_word(),
                    new_front.to_word(),
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .map_err(|e| self.access(e))?
            {
                Ok(_) => return Ok(Some(first as usize)),
                Err(actual) => front = BlockHeader::from_word(actual),
            }
        }
        Err(MemoryError::Contention {
            buffer: self.buffer,
            offset: self.header_offset(FRONT),
        })
    }

    /// Free: puts block `index` back at the head of the free list.
    pub fn free(&self, mem: &impl SharedMemory, index: usize) -> Result<(), MemoryError> {
        let not_a_block = || {
            MemoryError::NotABlock(ipcz_wire::types::FragmentDescriptor::new(
                self.buffer.0,
                u32::try_from(
                    self.region
                        .offset
                        .saturating_add(index.saturating_mul(self.region.block_size as usize)),
                )
                .unwrap_or(u32::MAX),
                self.region.block_size,
            ))
        };
        let Ok(freed) = i16::try_from(index) else {
            return Err(not_a_block());
        };
        if freed == FRONT || !self.is_valid(freed) {
            return Err(not_a_block());
        }
        let mut front = self.load(mem, FRONT, Ordering::Relaxed)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let first = front.next_absolute(FRONT);
            // A head naming the freed block itself would make it point to
            // itself: a double free, or the peer put it there.
            if !self.is_valid(first) || first == freed {
                return Err(self.corrupt(FRONT, first));
            }
            let header = BlockHeader {
                version: 0,
                next: relative_from_absolute(freed, first),
            };
            mem.store_u32(
                self.header_offset(freed),
                header.to_word(),
                Ordering::Release,
            )
            .map_err(|e| self.access(e))?;
            let new_front = BlockHeader {
                version: front.version.wrapping_add(1),
                next: relative_from_absolute(FRONT, freed),
            };
            match mem
                .compare_exchange_u32(
                    self.header_offset(FRONT),
                    front.to_word(),
                    new_front.to_word(),
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .map_err(|e| self.access(e))?
            {
                Ok(_) => return Ok(()),
                Err(actual) => front = BlockHeader::from_word(actual),
            }
        }
        Err(MemoryError::Contention {
            buffer: self.buffer,
            offset: self.header_offset(FRONT),
        })
    }

    /// The free list as it is now, head first: for inspection and tests
    /// (not atomic as a whole). A link out of range, or a list longer than
    /// the allocator has blocks (a cycle), is [`MemoryError::CorruptFreeList`].
    pub fn free_list(&self, mem: &impl SharedMemory) -> Result<Vec<usize>, MemoryError> {
        let mut out = Vec::new();
        let mut at = FRONT;
        loop {
            let next = self.load(mem, at, Ordering::Acquire)?.next_absolute(at);
            if next == FRONT {
                return Ok(out);
            }
            if !self.is_valid(next) || out.len() + 1 >= self.region.num_blocks {
                return Err(self.corrupt(at, next));
            }
            out.push(next as usize);
            at = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipcz_wire::memory::primary;
    use mojo_wire_kit::HeapMemory;

    fn small(num_blocks: usize) -> (HeapMemory, BlockAllocator) {
        let region = BlockRegion {
            offset: 64,
            block_size: 64,
            num_blocks,
        };
        let mem = HeapMemory::new(64 + 64 * num_blocks);
        let a = BlockAllocator::new(BufferId(3), region, mem.size()).unwrap();
        a.initialize(&mem).unwrap();
        (mem, a)
    }

    #[test]
    fn initialized_region_hands_out_blocks_in_order_then_runs_dry() {
        let (mem, a) = small(5);
        assert_eq!(a.free_list(&mem).unwrap(), vec![1, 2, 3, 4]);
        for i in 1..5 {
            assert_eq!(a.allocate(&mem), Ok(Some(i)));
        }
        assert_eq!(a.allocate(&mem), Ok(None));
        a.free(&mem, 3).unwrap();
        a.free(&mem, 1).unwrap();
        assert_eq!(a.free_list(&mem).unwrap(), vec![1, 3]);
        assert_eq!(a.allocate(&mem), Ok(Some(1)));
        assert_eq!(a.allocate(&mem), Ok(Some(3)));
        // Block 0's version counts every successful operation.
        let front = BlockHeader::from_word(mem.load_u32(64, Ordering::Relaxed).unwrap());
        assert_eq!(front.version, 8);
    }

    #[test]
    fn primary_64_byte_region_matches_the_spec_example() {
        let mem = HeapMemory::new(primary::SIZE);
        let a = BlockAllocator::new(BufferId(0), primary::REGIONS[0], mem.size()).unwrap();
        a.initialize(&mem).unwrap();
        assert_eq!(
            mem.load_u32(1024 + 1483 * 64, Ordering::Relaxed),
            Ok(0xFA34_0000)
        );
        assert_eq!(a.allocate(&mem), Ok(Some(1)));
        assert_eq!(a.block_offset(1), Some(1088));
        assert_eq!(a.capacity_bytes(), 1483 * 64);
    }

    #[test]
    fn bad_frees_and_bad_regions_are_errors() {
        let (mem, a) = small(4);
        assert!(matches!(a.free(&mem, 0), Err(MemoryError::NotABlock(_))));
        assert!(matches!(a.free(&mem, 4), Err(MemoryError::NotABlock(_))));
        assert!(matches!(
            a.free(&mem, usize::MAX),
            Err(MemoryError::NotABlock(_))
        ));
        // Block 1 is free: freeing it again would make it point to itself.
        assert!(matches!(
            a.free(&mem, 1),
            Err(MemoryError::CorruptFreeList { .. })
        ));
        let r = |offset, block_size, num_blocks| BlockRegion {
            offset,
            block_size,
            num_blocks,
        };
        for region in [
            r(0, 0, 4),
            r(0, 12, 4),
            r(4, 64, 4),
            r(0, 64, 0),
            r(0, 64, 32768),
            r(0, 64, 6),
        ] {
            assert!(
                BlockAllocator::new(BufferId(0), region, 320).is_err(),
                "{region:?}"
            );
        }
    }

    #[test]
    fn corrupt_links_are_typed_errors() {
        let (mem, a) = small(4);
        // Block 0 names block 9.
        mem.store_u32(
            64,
            BlockHeader {
                version: 0,
                next: 8,
            }
            .to_word(),
            Ordering::Relaxed,
        )
        .unwrap();
        assert!(matches!(
            a.allocate(&mem),
            Err(MemoryError::CorruptFreeList {
                block: 0,
                next: 9,
                ..
            })
        ));
        assert!(a.free(&mem, 2).is_err());
        assert!(a.free_list(&mem).is_err());
        // Block 1's successor is out of range.
        let (mem, a) = small(4);
        mem.store_u32(
            128,
            BlockHeader {
                version: 0,
                next: 100,
            }
            .to_word(),
            Ordering::Relaxed,
        )
        .unwrap();
        assert!(matches!(
            a.allocate(&mem),
            Err(MemoryError::CorruptFreeList { block: 1, .. })
        ));
        // A cycle 1 -> 2 -> 1 never loops forever.
        let (mem, a) = small(4);
        mem.store_u32(
            192,
            BlockHeader {
                version: 0,
                next: relative_from_absolute(2, 1),
            }
            .to_word(),
            Ordering::Relaxed,
        )
        .unwrap();
        assert!(a.free_list(&mem).is_err());
        assert_eq!(a.allocate(&mem), Ok(Some(1)));
        assert_eq!(a.allocate(&mem), Ok(Some(2)));
        // The list now loops back to block 1, which is allocated: still no hang.
        assert_eq!(a.allocate(&mem), Ok(Some(1)));
    }
}
