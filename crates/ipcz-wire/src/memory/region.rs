//! [`BlockRegion`]: where one BlockAllocator's blocks lie in a buffer.

use core::ops::Range;

use super::LayoutError;
use crate::limits::MAX_BLOCKS_PER_ALLOCATOR;

/// One BlockAllocator region: `num_blocks` blocks of `block_size` bytes at
/// `offset` within its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRegion {
    /// Region start within the buffer.
    pub offset: usize,
    /// Block size.
    pub block_size: u32,
    /// Number of blocks (block 0 is the free-list head, never handed out).
    pub num_blocks: usize,
}

impl BlockRegion {
    /// Bytes the region covers.
    pub const fn len(&self) -> usize {
        self.block_size as usize * self.num_blocks
    }

    /// Whether the region has no blocks.
    pub const fn is_empty(&self) -> bool {
        self.num_blocks == 0
    }

    /// Byte range of the region.
    pub const fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.len()
    }

    /// Buffer offset of block `index`.
    pub fn block_offset(&self, index: usize) -> Option<usize> {
        (index < self.num_blocks).then(|| self.offset + index * self.block_size as usize)
    }

    /// The block index a fragment at `offset` names, if it starts a block of
    /// this region other than block 0.
    pub fn block_index(&self, offset: usize) -> Option<usize> {
        let rel = offset.checked_sub(self.offset)?;
        let bs = self.block_size as usize;
        let index = rel / bs;
        (rel % bs == 0 && index > 0 && index < self.num_blocks).then_some(index)
    }

    /// A region covering a whole added buffer of `buffer_len` bytes.
    pub fn whole_buffer(block_size: u32, buffer_len: usize) -> Result<Self, LayoutError> {
        let geometry = LayoutError::BlockGeometry {
            block_size,
            region_len: buffer_len,
        };
        if block_size == 0 || block_size % 8 != 0 {
            return Err(geometry);
        }
        let num_blocks = buffer_len / block_size as usize;
        if num_blocks == 0 || num_blocks > MAX_BLOCKS_PER_ALLOCATOR {
            return Err(geometry);
        }
        Ok(Self {
            offset: 0,
            block_size,
            num_blocks,
        })
    }
}
