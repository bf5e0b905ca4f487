//! NodeLinkMemory layouts (spec §5) as offsets, bit meanings, read-only views
//! over byte slices and pure helpers. The atomic operations themselves belong
//! to whoever maps the memory: they load a word, compute the new value with a
//! function from here, and compare-and-swap.
//!
//! ```text
//! primary buffer (BufferId 0, 131072 bytes)
//!   0     u64 next_buffer_id      8  u64 next_sublink_id     16..256 reserved
//!   256   12 x RouterLinkState (64 bytes each)
//!   1024  BlockAllocator regions: 64 B x 1484, 256 x 9, 512 x 8, 1K x 4, 2K x 4, 4K x 4
//! RouterLinkState (64): i32 ref_count, u32 status, NodeName allowed_bypass_request_source, u32[10]
//! free block header (u32): u16 version | i16 next << 16, next relative to the following block
//! parcel fragment: u32 size, u32 reserved, data
//! ```

use core::fmt;
use core::ops::Range;

use crate::codec;
use crate::limits::{
    BLOCK_ALLOCATOR_PAGE_SIZE, FIRST_ALLOCATABLE_BUFFER_ID, FIRST_ALLOCATABLE_SUBLINK_ID,
    FRAGMENT_HEADER_SIZE, MAX_BLOCKS_PER_ALLOCATOR, MAX_FRAGMENT_SIZE_FOR_BLOCK_ALLOCATION,
    MAX_INITIAL_PORTALS, MIN_BLOCK_SIZE, MIN_BLOCKS_PER_ADDED_BUFFER, PRIMARY_BUFFER_SIZE,
    ROUTER_LINK_STATE_SIZE,
};
use crate::types::{FragmentDescriptor, LinkSide, NodeName};

/// Why a layout cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The slice is shorter than the layout.
    TooShort {
        /// Layout name.
        what: &'static str,
        /// Slice length.
        len: usize,
        /// Bytes required.
        needed: usize,
    },
    /// A fragment reaches beyond its buffer.
    OutOfBounds {
        /// The fragment.
        fragment: FragmentDescriptor,
        /// Buffer length.
        buffer_len: usize,
    },
    /// The null descriptor where a fragment is required.
    NullFragment,
    /// A parcel data fragment that is not larger than its header or not 8-aligned.
    BadDataFragment(FragmentDescriptor),
    /// The FragmentHeader claims more data than the fragment holds.
    DataSize {
        /// `FragmentHeader.size`.
        size: u32,
        /// Bytes available after the header.
        max: usize,
    },
    /// A block size or block count a BlockAllocator cannot have.
    BlockGeometry {
        /// Block size.
        block_size: u32,
        /// Region length.
        region_len: usize,
    },
    /// A block index outside the allocator (or block 0).
    BlockIndex {
        /// The index.
        index: i32,
        /// Blocks in the allocator.
        num_blocks: usize,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { what, len, needed } => {
                write!(f, "{what}: {len} bytes, need {needed}")
            }
            Self::OutOfBounds {
                fragment,
                buffer_len,
            } => write!(
                f,
                "fragment {fragment} exceeds its {buffer_len}-byte buffer"
            ),
            Self::NullFragment => f.write_str("fragment is null"),
            Self::BadDataFragment(d) => {
                write!(
                    f,
                    "fragment {d}: size must exceed 8 and offset be 8-aligned"
                )
            }
            Self::DataSize { size, max } => {
                write!(
                    f,
                    "FragmentHeader.size: {size} exceeds the {max} bytes of the fragment"
                )
            }
            Self::BlockGeometry {
                block_size,
                region_len,
            } => write!(
                f,
                "block size {block_size} over {region_len} bytes is not a valid BlockAllocator"
            ),
            Self::BlockIndex { index, num_blocks } => {
                write!(f, "block index {index} not in [1, {num_blocks})")
            }
        }
    }
}

impl std::error::Error for LayoutError {}

fn need(what: &'static str, b: &[u8], needed: usize) -> Result<(), LayoutError> {
    if b.len() < needed {
        Err(LayoutError::TooShort {
            what,
            len: b.len(),
            needed,
        })
    } else {
        Ok(())
    }
}

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

/// The primary buffer (BufferId 0).
pub mod primary {
    use super::*;

    /// Byte ranges of the primary buffer's fixed parts.
    pub mod field {
        use core::ops::Range;
        /// `next_buffer_id` (atomic u64, v1 id scheme).
        pub const NEXT_BUFFER_ID: Range<usize> = 0..8;
        /// `next_sublink_id` (atomic u64, v1 id scheme).
        pub const NEXT_SUBLINK_ID: Range<usize> = 8..16;
        /// Reserved, zero.
        pub const RESERVED: Range<usize> = 16..256;
        /// The 12 initial RouterLinkStates.
        pub const INITIAL_LINK_STATES: Range<usize> = 256..1024;
    }

    /// Size of the primary buffer.
    pub const SIZE: usize = PRIMARY_BUFFER_SIZE;
    /// `next_buffer_id` after initialization.
    pub const INITIAL_NEXT_BUFFER_ID: u64 = FIRST_ALLOCATABLE_BUFFER_ID;
    /// `next_sublink_id` after initialization.
    pub const INITIAL_NEXT_SUBLINK_ID: u64 = FIRST_ALLOCATABLE_SUBLINK_ID;

    /// The six BlockAllocator regions, smallest block size first.
    pub const REGIONS: [BlockRegion; 6] = [
        BlockRegion {
            offset: 1024,
            block_size: 64,
            num_blocks: 1484,
        },
        BlockRegion {
            offset: 96000,
            block_size: 256,
            num_blocks: 9,
        },
        BlockRegion {
            offset: 98304,
            block_size: 512,
            num_blocks: 8,
        },
        BlockRegion {
            offset: 102400,
            block_size: 1024,
            num_blocks: 4,
        },
        BlockRegion {
            offset: 106496,
            block_size: 2048,
            num_blocks: 4,
        },
        BlockRegion {
            offset: 114688,
            block_size: 4096,
            num_blocks: 4,
        },
    ];

    /// Byte range of initial RouterLinkState slot `i` (for sublink `i`).
    pub fn initial_link_state(i: usize) -> Option<Range<usize>> {
        (i < MAX_INITIAL_PORTALS).then(|| {
            let start = field::INITIAL_LINK_STATES.start + i * ROUTER_LINK_STATE_SIZE;
            start..start + ROUTER_LINK_STATE_SIZE
        })
    }

    /// The region holding blocks of `block_size`.
    pub fn region_for_block_size(block_size: u32) -> Option<BlockRegion> {
        REGIONS.iter().copied().find(|r| r.block_size == block_size)
    }

    /// Initializes a freshly allocated, zero-filled primary buffer the way the
    /// broker does: counters 1 and 12, every region's free list. Only for a
    /// buffer nobody else has mapped yet.
    pub fn initialize(buf: &mut [u8]) -> Result<(), LayoutError> {
        need("primary buffer", buf, SIZE)?;
        buf[..SIZE].fill(0);
        codec::put_u64(buf, field::NEXT_BUFFER_ID.start, INITIAL_NEXT_BUFFER_ID);
        codec::put_u64(buf, field::NEXT_SUBLINK_ID.start, INITIAL_NEXT_SUBLINK_ID);
        for r in REGIONS {
            block::initialize_region(&mut buf[r.range()], r.block_size)?;
        }
        Ok(())
    }

    /// A read-only view of a primary buffer (plain loads; for inspection and tests).
    #[derive(Clone, Copy, Debug)]
    pub struct PrimaryBuffer<T: AsRef<[u8]>>(T);

    impl<T: AsRef<[u8]>> PrimaryBuffer<T> {
        /// Wraps `buf`, which must hold at least 131072 bytes.
        pub fn new_checked(buf: T) -> Result<Self, LayoutError> {
            need("primary buffer", buf.as_ref(), SIZE)?;
            Ok(Self(buf))
        }

        /// `next_buffer_id`.
        pub fn next_buffer_id(&self) -> u64 {
            codec::u64_at(self.0.as_ref(), field::NEXT_BUFFER_ID.start).unwrap_or(0)
        }

        /// `next_sublink_id`.
        pub fn next_sublink_id(&self) -> u64 {
            codec::u64_at(self.0.as_ref(), field::NEXT_SUBLINK_ID.start).unwrap_or(0)
        }

        /// Initial RouterLinkState `i`.
        pub fn initial_link_state(&self, i: usize) -> Option<RouterLinkState<&[u8]>> {
            let r = initial_link_state(i)?;
            RouterLinkState::new_checked(self.0.as_ref().get(r)?).ok()
        }

        /// The bytes of BlockAllocator region `i`.
        pub fn region(&self, i: usize) -> Option<&[u8]> {
            self.0.as_ref().get(REGIONS.get(i)?.range())
        }
    }
}

bitflags::bitflags! {
    /// `RouterLinkState::status` bits. Unknown bits are kept.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct LinkStatus: u32 {
        /// Side A has no decaying links.
        const SIDE_A_STABLE = 0x01;
        /// Side B has no decaying links.
        const SIDE_B_STABLE = 0x02;
        /// Side A tried to lock while B was unstable.
        const SIDE_A_WAITING = 0x04;
        /// Side B tried to lock while A was unstable.
        const SIDE_B_WAITING = 0x08;
        /// Side A holds the lock.
        const LOCKED_BY_SIDE_A = 0x10;
        /// Side B holds the lock.
        const LOCKED_BY_SIDE_B = 0x20;
        /// Both sides stable (`kStable`).
        const STABLE = 0x03;
        /// Either lock bit.
        const LOCKED = 0x30;
        const _ = !0;
    }
}

/// What one side's bits are called.
fn bits(side: LinkSide) -> (LinkStatus, LinkStatus, LinkStatus, LinkStatus) {
    // (this side stable, other side stable, this side waiting, this side lock)
    if side == LinkSide::A {
        (
            LinkStatus::SIDE_A_STABLE,
            LinkStatus::SIDE_B_STABLE,
            LinkStatus::SIDE_A_WAITING,
            LinkStatus::LOCKED_BY_SIDE_A,
        )
    } else {
        (
            LinkStatus::SIDE_B_STABLE,
            LinkStatus::SIDE_A_STABLE,
            LinkStatus::SIDE_B_WAITING,
            LinkStatus::LOCKED_BY_SIDE_B,
        )
    }
}

/// Result of a pure status transition: the value to store (equal to the
/// input if nothing changes) and the operation's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// New status.
    pub status: LinkStatus,
    /// The operation's boolean result.
    pub ok: bool,
}

impl LinkStatus {
    /// Reads a raw status word, keeping unknown bits.
    pub fn from_word(word: u32) -> Self {
        Self::from_bits_retain(word)
    }

    /// `SetSideStable(side)`.
    pub fn set_side_stable(self, side: LinkSide) -> Self {
        self | bits(side).0
    }

    /// `TryLock(side)` applied to a status snapshot: locks if both sides are
    /// stable and nobody holds the lock; sets our waiting bit (and fails) if
    /// only the other side is unstable; otherwise fails without change.
    pub fn try_lock(self, side: LinkSide) -> Transition {
        let (ours, other, waiting, lock) = bits(side);
        if self.intersects(Self::LOCKED) || !self.contains(ours) {
            return Transition {
                status: self,
                ok: false,
            };
        }
        if !self.contains(other) {
            return Transition {
                status: self | waiting,
                ok: false,
            };
        }
        Transition {
            status: self | lock,
            ok: true,
        }
    }

    /// `Unlock(side)`.
    pub fn unlock(self, side: LinkSide) -> Self {
        self - bits(side).3
    }

    /// `ResetWaitingBit(side)`: clears `side`'s waiting bit if both sides are
    /// stable, the bit is set and nobody holds the lock.
    pub fn reset_waiting_bit(self, side: LinkSide) -> Transition {
        let waiting = bits(side).2;
        if self.contains(Self::STABLE) && self.contains(waiting) && !self.intersects(Self::LOCKED) {
            Transition {
                status: self - waiting,
                ok: true,
            }
        } else {
            Transition {
                status: self,
                ok: false,
            }
        }
    }

    /// `is_locked_by(side)`.
    pub fn is_locked_by(self, side: LinkSide) -> bool {
        self.contains(bits(side).3)
    }

    /// Whether `side` is stable.
    pub fn is_stable(self, side: LinkSide) -> bool {
        self.contains(bits(side).0)
    }
}

impl fmt::Display for LinkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        bitflags::parser::to_writer(self, f)
    }
}

/// Byte ranges of a RouterLinkState.
pub mod link_state_field {
    use core::ops::Range;
    /// `ref_count` (atomic i32).
    pub const REF_COUNT: Range<usize> = 0..4;
    /// `status` (atomic u32, [`super::LinkStatus`]).
    pub const STATUS: Range<usize> = 4..8;
    /// `allowed_bypass_request_source.high` (u64).
    pub const ALLOWED_BYPASS_SOURCE_HIGH: Range<usize> = 8..16;
    /// `allowed_bypass_request_source.low` (u64).
    pub const ALLOWED_BYPASS_SOURCE_LOW: Range<usize> = 16..24;
    /// `reserved1[10]`.
    pub const RESERVED: Range<usize> = 24..64;
}

/// A view of one 64-byte RouterLinkState (plain loads).
#[derive(Clone, Copy, Debug)]
pub struct RouterLinkState<T: AsRef<[u8]>>(T);

impl<T: AsRef<[u8]>> RouterLinkState<T> {
    /// Wraps at least 64 bytes.
    pub fn new_checked(buf: T) -> Result<Self, LayoutError> {
        need("RouterLinkState", buf.as_ref(), ROUTER_LINK_STATE_SIZE)?;
        Ok(Self(buf))
    }

    /// `ref_count`.
    pub fn ref_count(&self) -> i32 {
        codec::array(self.0.as_ref(), 0).map_or(0, i32::from_le_bytes)
    }

    /// `status`.
    pub fn status(&self) -> LinkStatus {
        LinkStatus::from_word(codec::u32_at(self.0.as_ref(), 4).unwrap_or(0))
    }

    /// `allowed_bypass_request_source`.
    pub fn allowed_bypass_request_source(&self) -> NodeName {
        NodeName {
            high: codec::u64_at(self.0.as_ref(), 8).unwrap_or(0),
            low: codec::u64_at(self.0.as_ref(), 16).unwrap_or(0),
        }
    }

    /// `CanNodeRequestBypass`: the other side holds the lock and allowed
    /// `requester` to bypass.
    pub fn can_node_request_bypass(&self, our_side: LinkSide, requester: NodeName) -> bool {
        self.status().is_locked_by(our_side.opposite())
            && self.allowed_bypass_request_source() == requester
    }
}

impl RouterLinkState<&mut [u8]> {
    /// Writes a fresh state (`ref_count`, status 0, name and reserved zero),
    /// as the allocating side does before handing it out.
    pub fn initialize(buf: &mut [u8], ref_count: i32) -> Result<(), LayoutError> {
        need("RouterLinkState", buf, ROUTER_LINK_STATE_SIZE)?;
        buf[..ROUTER_LINK_STATE_SIZE].fill(0);
        codec::put(buf, 0, &ref_count.to_le_bytes());
        Ok(())
    }
}

/// Whether `fragment` can hold a RouterLinkState as Chrome requires before
/// adopting one: non-null, at least 64 bytes, 8-aligned offset.
pub fn is_valid_link_state_fragment(fragment: FragmentDescriptor) -> bool {
    !fragment.is_null()
        && fragment.size as usize >= ROUTER_LINK_STATE_SIZE
        && fragment.offset % 8 == 0
}

/// BlockAllocator free lists.
pub mod block {
    use super::*;

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
        codec::put_u32(region, last, initial_last_header(n).to_word());
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
                codec::u32_at(self.region, index * self.block_size as usize).unwrap_or(0),
            )
        }

        fn set_header(&mut self, index: usize, h: BlockHeader) {
            codec::put_u32(self.region, index * self.block_size as usize, h.to_word());
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
}

/// Parcel data held in fragments (spec §5.5, §5.7).
pub mod fragment {
    use super::*;

    /// Byte ranges of the header at the start of a parcel data fragment.
    pub mod field {
        use core::ops::Range;
        /// `size` (atomic u32): data bytes; stored with Release after the data.
        pub const SIZE: Range<usize> = 0..4;
        /// `reserved` (atomic u32): 0.
        pub const RESERVED: Range<usize> = 4..8;
    }

    /// Resolves `fragment` against a buffer of `buffer_len` bytes (the buffer
    /// must be the one named by `fragment.buffer_id` on the receiving link).
    /// Chrome computes `offset + size` saturating.
    pub fn range(
        fragment: FragmentDescriptor,
        buffer_len: usize,
    ) -> Result<Range<usize>, LayoutError> {
        if fragment.is_null() {
            return Err(LayoutError::NullFragment);
        }
        let end = fragment.offset.saturating_add(fragment.size) as usize;
        if end > buffer_len {
            return Err(LayoutError::OutOfBounds {
                fragment,
                buffer_len,
            });
        }
        Ok(fragment.offset as usize..end)
    }

    /// `Parcel::AdoptDataFragment`: the parcel data inside a fragment's bytes.
    /// `bytes` are the fragment's own `fragment.size` bytes (a snapshot: copy
    /// them out of shared memory first). Rejects fragments not larger than
    /// the header, unaligned offsets and a `size` beyond the fragment.
    pub fn parcel_data(fragment: FragmentDescriptor, bytes: &[u8]) -> Result<&[u8], LayoutError> {
        if fragment.size as usize <= FRAGMENT_HEADER_SIZE || fragment.offset % 8 != 0 {
            return Err(LayoutError::BadDataFragment(fragment));
        }
        need("parcel fragment", bytes, fragment.size as usize)?;
        let size = codec::u32_at(bytes, 0).unwrap_or(0);
        let max = fragment.size as usize - FRAGMENT_HEADER_SIZE;
        if size as usize > max {
            return Err(LayoutError::DataSize { size, max });
        }
        Ok(&bytes[FRAGMENT_HEADER_SIZE..FRAGMENT_HEADER_SIZE + size as usize])
    }

    /// Writes parcel data into a fragment's bytes as a producer does (data,
    /// then `reserved = 0`, then `size`); bytes after the data are untouched.
    pub fn write_parcel_data(bytes: &mut [u8], data: &[u8]) -> Result<(), LayoutError> {
        need("parcel fragment", bytes, FRAGMENT_HEADER_SIZE + data.len())?;
        let size = u32::try_from(data.len()).map_err(|_| LayoutError::DataSize {
            size: u32::MAX,
            max: bytes.len() - FRAGMENT_HEADER_SIZE,
        })?;
        bytes[FRAGMENT_HEADER_SIZE..FRAGMENT_HEADER_SIZE + data.len()].copy_from_slice(data);
        codec::put_u32(bytes, 4, 0);
        codec::put_u32(bytes, 0, size);
        Ok(())
    }

    /// Block size Chrome wants for `data_len` bytes of parcel data
    /// (`max(64, bit_ceil(data_len + 8))`); `None` if the data never goes into
    /// a fragment (empty, or above the 1 MiB block allocation limit).
    pub fn block_size_for_data(data_len: usize) -> Option<u32> {
        if data_len == 0 {
            return None;
        }
        let wanted = data_len.checked_add(FRAGMENT_HEADER_SIZE)?;
        if wanted > MAX_FRAGMENT_SIZE_FOR_BLOCK_ALLOCATION {
            return None;
        }
        let size = wanted
            .checked_next_power_of_two()?
            .max(MIN_BLOCK_SIZE as usize);
        u32::try_from(size).ok()
    }

    /// The primary-buffer block class a parcel of `data_len` bytes uses when
    /// only the primary buffer exists (`None`: inline).
    pub fn primary_class_for_data(data_len: usize) -> Option<BlockRegion> {
        let wanted = block_size_for_data(data_len)?;
        primary::REGIONS
            .iter()
            .copied()
            .find(|r| r.block_size >= wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::block::*;
    use super::*;

    #[test]
    fn primary_layout_adds_up() {
        let mut end = primary::field::INITIAL_LINK_STATES.end;
        for r in primary::REGIONS {
            assert_eq!(r.offset, end);
            end = r.range().end;
        }
        assert_eq!(end, primary::SIZE);
        assert_eq!(primary::initial_link_state(11), Some(960..1024));
        assert_eq!(primary::initial_link_state(12), None);
        assert_eq!(primary::REGIONS[0].block_offset(1), Some(1088));
        assert_eq!(primary::REGIONS[0].block_index(1216), Some(3));
        assert_eq!(primary::REGIONS[2].block_index(98816), Some(1));
        assert_eq!(initial_last_header(1484).to_word(), 0xFA34_0000);
    }

    #[test]
    fn initialized_primary_buffer_allocates_like_chrome() {
        let mut buf = vec![0xffu8; primary::SIZE];
        primary::initialize(&mut buf).unwrap();
        let view = primary::PrimaryBuffer::new_checked(&buf[..]).unwrap();
        assert_eq!(view.next_buffer_id(), 1);
        assert_eq!(view.next_sublink_id(), 12);
        assert_eq!(
            view.initial_link_state(3).unwrap().status(),
            LinkStatus::empty()
        );
        let r = primary::REGIONS[0];
        let mut a = BlockAllocator::new(&mut buf[r.range()], r.block_size).unwrap();
        assert_eq!(a.allocate(), Some(1));
        assert_eq!(a.allocate(), Some(2));
        a.free(1).unwrap();
        assert_eq!(a.allocate(), Some(1));
        assert_eq!(a.allocate(), Some(3));
        assert!(a.free(0).is_err());
        let mut count = 3;
        while a.allocate().is_some() {
            count += 1;
        }
        assert_eq!(count, 1483);
    }

    #[test]
    fn link_status_transitions() {
        let s = LinkStatus::empty();
        let t = s.set_side_stable(LinkSide::B).try_lock(LinkSide::B);
        assert_eq!(
            t,
            Transition {
                status: LinkStatus::SIDE_B_STABLE | LinkStatus::SIDE_B_WAITING,
                ok: false
            }
        );
        let s = t.status.set_side_stable(LinkSide::A);
        let r = s.reset_waiting_bit(LinkSide::B);
        assert!(r.ok);
        assert_eq!(r.status, LinkStatus::STABLE);
        let l = r.status.try_lock(LinkSide::A);
        assert!(l.ok && l.status.is_locked_by(LinkSide::A));
        assert!(!l.status.try_lock(LinkSide::B).ok);
        assert_eq!(l.status.unlock(LinkSide::A), LinkStatus::STABLE);
        assert_eq!(LinkStatus::from_word(0x103).bits(), 0x103);
    }

    #[test]
    fn parcel_fragments() {
        let d = FragmentDescriptor::new(0, 1152, 64);
        let mut bytes = vec![0u8; 64];
        fragment::write_parcel_data(&mut bytes, b"hello").unwrap();
        assert_eq!(fragment::parcel_data(d, &bytes), Ok(&b"hello"[..]));
        bytes[0] = 57;
        assert!(matches!(
            fragment::parcel_data(d, &bytes),
            Err(LayoutError::DataSize { size: 57, max: 56 })
        ));
        assert_eq!(fragment::range(d, primary::SIZE), Ok(1152..1216));
        assert!(fragment::range(FragmentDescriptor::new(0, u32::MAX, 64), 100).is_err());
        for (len, class) in [
            (4, 64),
            (56, 64),
            (57, 256),
            (100, 256),
            (255, 512),
            (256, 512),
            (1000, 1024),
            (4088, 4096),
        ] {
            assert_eq!(
                fragment::primary_class_for_data(len).map(|r| r.block_size),
                Some(class),
                "{len}"
            );
        }
        assert_eq!(fragment::primary_class_for_data(4089), None);
        assert_eq!(fragment::primary_class_for_data(0), None);
        assert_eq!(added_buffer_size(64), 65536);
        assert!(check_added_buffer(64, 65536).is_ok());
        assert!(check_added_buffer(96, 65536).is_err());
    }
}
