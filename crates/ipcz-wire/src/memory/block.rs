//! BlockAllocator free lists (spec §5.4): pure steps over block headers,
//! and a single-threaded allocator over a plain byte slice built from them.

use mojo_wire_kit::Reader;

use super::{BlockRegion, LayoutError};

/// Size of a block header (one atomic u32 at the start of every free block).
pub const BLOCK_HEADER_SIZE: usize = 4;
use crate::limits::{
    BLOCK_ALLOCATOR_PAGE_SIZE, MAX_BLOCKS_PER_ALLOCATOR, MIN_BLOCK_SIZE,
    MIN_BLOCKS_PER_ADDED_BUFFER,
};

/// A free block's 4-byte header: `version` (ABA counter, only meaningful in
/// block 0) and `next`, relative to the block after this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BlockHeader {
    /// ABA counter.
    pub version: u16,
    /// Relative index of the next free block.
    pub next: i16,
}

impl BlockHeader {
    /// From the atomic u32 (`version | next << 16`).
    pub fn from_word(word: u32) -> Self {
        Self {
            version: (word & 0xFFFF) as u16,
            next: (word >> 16) as u16 as i16,
        }
    }

    /// To the atomic u32.
    pub fn to_word(self) -> u32 {
        u32::from(self.version) | (u32::from(self.next as u16) << 16)
    }

    /// The absolute index this header (stored in block `base`) points to.
    pub fn next_absolute(self, base: i16) -> i16 {
        absolute_from_relative(base, self.next)
    }
}

/// `base + relative + 1` with i16 wrapping, as Chrome computes it.
pub fn absolute_from_relative(base: i16, relative: i16) -> i16 {
    base.wrapping_add(relative).wrapping_add(1)
}

/// `absolute - base - 1` with i16 wrapping.
pub fn relative_from_absolute(base: i16, absolute: i16) -> i16 {
    absolute.wrapping_sub(base).wrapping_sub(1)
}

/// The last block's header after InitializeRegion: `next` back to block 0.
pub fn initial_last_header(num_blocks: usize) -> BlockHeader {
    let last = i16::try_from(num_blocks.saturating_sub(1)).unwrap_or(i16::MAX);
    BlockHeader {
        version: 0,
        next: relative_from_absolute(last, 0),
    }
}

fn geometry(region_len: usize, block_size: u32) -> Result<usize, LayoutError> {
    BlockRegion::whole_buffer(block_size, region_len).map(|r| r.num_blocks)
}

/// InitializeRegion: zero the region, then point the last block back to
/// block 0 (so the free list is 1, 2, ..., n-1).
pub fn initialize_region(region: &mut [u8], block_size: u32) -> Result<(), LayoutError> {
    let n = geometry(region.len(), block_size)?;
    region.fill(0);
    let last = (n - 1) * block_size as usize;
    if let Some(word) = region.get_mut(last..last + BLOCK_HEADER_SIZE) {
        word.copy_from_slice(&initial_last_header(n).to_word().to_le_bytes());
    }
    Ok(())
}

/// The first step of Allocate: from block 0's header, the candidate block
/// (`None` if the list is empty or corrupt).
pub fn allocation_candidate(front: BlockHeader, num_blocks: usize) -> Option<i16> {
    let first = front.next_absolute(0);
    (first != 0 && first > 0 && (first as usize) < num_blocks).then_some(first)
}

/// The second step of Allocate: block 0's new header once the candidate
/// `first` (whose header is `first_header`) is taken; `None` if corrupt.
pub fn front_after_allocate(
    front: BlockHeader,
    first: i16,
    first_header: BlockHeader,
    num_blocks: usize,
) -> Option<BlockHeader> {
    let next_free = first_header.next_absolute(first);
    if next_free < 0 || next_free as usize >= num_blocks {
        return None;
    }
    Some(BlockHeader {
        version: front.version.wrapping_add(1),
        next: relative_from_absolute(0, next_free),
    })
}

/// Free: the header to store into block `index` and block 0's new header;
/// `None` if `index` is 0, out of range, or the list head is corrupt.
pub fn free_headers(
    front: BlockHeader,
    index: i16,
    num_blocks: usize,
) -> Option<(BlockHeader, BlockHeader)> {
    if index <= 0 || index as usize >= num_blocks {
        return None;
    }
    let first = front.next_absolute(0);
    if first < 0 || first as usize >= num_blocks {
        return None;
    }
    Some((
        BlockHeader {
            version: 0,
            next: relative_from_absolute(index, first),
        },
        BlockHeader {
            version: front.version.wrapping_add(1),
            next: relative_from_absolute(0, index),
        },
    ))
}

/// A single-threaded BlockAllocator over a plain byte slice, built from
/// the pure steps above (for tests and for inspecting a snapshot).
#[derive(Debug)]
pub struct BlockAllocator<'a> {
    region: &'a mut [u8],
    block_size: u32,
    num_blocks: usize,
}

impl<'a> BlockAllocator<'a> {
    /// Wraps an (already initialized) region.
    pub fn new(region: &'a mut [u8], block_size: u32) -> Result<Self, LayoutError> {
        let num_blocks = geometry(region.len(), block_size)?;
        Ok(Self {
            region,
            block_size,
            num_blocks,
        })
    }

    /// Number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Header stored in block `index`.
    pub fn header(&self, index: usize) -> BlockHeader {
        BlockHeader::from_word(
            Reader::new(self.region)
                .at(index * self.block_size as usize)
                .u32("block header")
                .unwrap_or_default(),
        )
    }

    fn set_header(&mut self, index: usize, h: BlockHeader) {
        let at = index * self.block_size as usize;
        if let Some(word) = self.region.get_mut(at..at + BLOCK_HEADER_SIZE) {
            word.copy_from_slice(&h.to_word().to_le_bytes());
        }
    }

    /// Allocate: a block index, or `None` if none is free.
    pub fn allocate(&mut self) -> Option<usize> {
        let front = self.header(0);
        let first = allocation_candidate(front, self.num_blocks)?;
        let first_header = self.header(first as usize);
        let new_front = front_after_allocate(front, first, first_header, self.num_blocks)?;
        self.set_header(0, new_front);
        Some(first as usize)
    }

    /// Free block `index`.
    pub fn free(&mut self, index: usize) -> Result<(), LayoutError> {
        let err = LayoutError::BlockIndex {
            index: i32::try_from(index).unwrap_or(i32::MAX),
            num_blocks: self.num_blocks,
        };
        let i = i16::try_from(index).map_err(|_| err.clone())?;
        let (block, front) = free_headers(self.header(0), i, self.num_blocks).ok_or(err)?;
        self.set_header(index, block);
        self.set_header(0, front);
        Ok(())
    }
}

/// Size of a buffer Chrome adds for `block_size` blocks: at least 8 blocks,
/// rounded up to 64 KiB pages.
pub fn added_buffer_size(block_size: u32) -> usize {
    let min = block_size as usize * MIN_BLOCKS_PER_ADDED_BUFFER;
    min.div_ceil(BLOCK_ALLOCATOR_PAGE_SIZE) * BLOCK_ALLOCATOR_PAGE_SIZE
}

/// The AddBlockBuffer receiver's checks on `block_size` against the
/// buffer size: `>= 64`, multiple of 8, power of two, at least 8 and at
/// most 32767 blocks.
pub fn check_added_buffer(block_size: u32, buffer_size: u32) -> Result<(), LayoutError> {
    let blocks = buffer_size.checked_div(block_size).unwrap_or(0) as usize;
    if block_size < MIN_BLOCK_SIZE
        || block_size % 8 != 0
        || !block_size.is_power_of_two()
        || !(MIN_BLOCKS_PER_ADDED_BUFFER..=MAX_BLOCKS_PER_ALLOCATOR).contains(&blocks)
    {
        return Err(LayoutError::BlockGeometry {
            block_size,
            region_len: buffer_size as usize,
        });
    }
    Ok(())
}
