//! The primary buffer (BufferId 0) of every NodeLinkMemory (spec §5.2).

use core::mem::offset_of;
use core::ops::Range;

use mojo_wire_kit::le::U64;
use mojo_wire_kit::{WireLayout, wire_layout};

use super::error::need;
use super::{BlockRegion, LayoutError, RouterLinkState, block};
use crate::limits::{
    FIRST_ALLOCATABLE_BUFFER_ID, FIRST_ALLOCATABLE_SUBLINK_ID, MAX_INITIAL_PORTALS,
    PRIMARY_BUFFER_RESERVED_HEADER_SIZE, PRIMARY_BUFFER_SIZE, ROUTER_LINK_STATE_SIZE,
};

wire_layout! {
    /// The reserved header at the start of the primary buffer (offsets and
    /// sizes only: read the live words through [`mojo_wire_kit::SharedMemory`]
    /// at these offsets, or decode a copied snapshot).
    pub struct PrimaryHeaderWire: size 256, names "primary" {
        /// `next_buffer_id` (atomic u64, v1 id scheme).
        pub next_buffer_id: U64,
        /// `next_sublink_id` (atomic u64, v1 id scheme).
        pub next_sublink_id: U64,
        /// Reserved, zero.
        pub reserved: [u8; 240],
    }
}

/// Offset of `next_buffer_id`.
pub const NEXT_BUFFER_ID_OFFSET: usize = offset_of!(PrimaryHeaderWire, next_buffer_id);
/// Offset of `next_sublink_id`.
pub const NEXT_SUBLINK_ID_OFFSET: usize = offset_of!(PrimaryHeaderWire, next_sublink_id);
/// The 12 initial RouterLinkStates, right after the header.
pub const INITIAL_LINK_STATES: Range<usize> = PRIMARY_BUFFER_RESERVED_HEADER_SIZE
    ..PRIMARY_BUFFER_RESERVED_HEADER_SIZE + MAX_INITIAL_PORTALS * ROUTER_LINK_STATE_SIZE;

const _: () = assert!(PrimaryHeaderWire::SIZE == PRIMARY_BUFFER_RESERVED_HEADER_SIZE);

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
        let start = INITIAL_LINK_STATES.start + i * ROUTER_LINK_STATE_SIZE;
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
    buf.iter_mut().take(SIZE).for_each(|b| *b = 0);
    let header = PrimaryHeaderWire {
        next_buffer_id: U64::new(INITIAL_NEXT_BUFFER_ID),
        next_sublink_id: U64::new(INITIAL_NEXT_SUBLINK_ID),
        reserved: [0; 240],
    };
    if let Some(head) = buf.get_mut(..PrimaryHeaderWire::SIZE) {
        head.copy_from_slice(header.wire_bytes());
    }
    for r in REGIONS {
        let too_short = LayoutError::TooShort {
            what: "primary buffer",
            len: SIZE,
            needed: r.range().end,
        };
        let region = buf.get_mut(r.range()).ok_or(too_short)?;
        block::initialize_region(region, r.block_size)?;
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

    /// The header (`new_checked` made sure all of it is there).
    fn header(&self) -> PrimaryHeaderWire {
        PrimaryHeaderWire::from_zero_extended(self.0.as_ref())
    }

    /// `next_buffer_id`.
    pub fn next_buffer_id(&self) -> u64 {
        self.header().next_buffer_id.get()
    }

    /// `next_sublink_id`.
    pub fn next_sublink_id(&self) -> u64 {
        self.header().next_sublink_id.get()
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
