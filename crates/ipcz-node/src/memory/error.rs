//! The one error type of NodeLinkMemory: every way shared memory or a peer's
//! reference into it can be wrong, each naming what was wrong.

use std::fmt;

use ipcz_wire::types::{BufferId, FragmentDescriptor};
use mojo_wire_kit::ShmAccessError;

/// Why a NodeLinkMemory operation failed. Every variant is the peer's fault
/// (it wrote shared memory or sent a reference that cannot be right) or the
/// caller's (a region of the wrong size); none is ever a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemoryError {
    /// The shared-memory seam refused an access (out of bounds, misaligned,
    /// read-only mapping).
    Access {
        /// The buffer accessed.
        buffer: BufferId,
        /// What the seam reported.
        error: ShmAccessError,
    },
    /// A primary buffer smaller than the 131072 bytes of spec §5.1.
    PrimaryBufferTooSmall {
        /// Its size.
        size: usize,
    },
    /// A BlockAllocator region that cannot exist: block size not a non-zero
    /// multiple of 8, no blocks or more than 32767, unaligned, or reaching
    /// beyond its buffer.
    BadRegion {
        /// The buffer.
        buffer: BufferId,
        /// Region start.
        offset: usize,
        /// Block size.
        block_size: u32,
        /// Region length in bytes.
        len: usize,
    },
    /// A free-list link read from shared memory names no block of the
    /// allocator (or a block pointing to itself): the peer corrupted it.
    CorruptFreeList {
        /// The buffer.
        buffer: BufferId,
        /// The allocator's block size.
        block_size: u32,
        /// The block whose header holds the bad link.
        block: i32,
        /// The absolute index it named.
        next: i32,
    },
    /// A compare-and-swap loop on a shared word failed
    /// [`MAX_CAS_ATTEMPTS`](super::MAX_CAS_ATTEMPTS) times: the peer keeps
    /// changing it (a real peer cannot, since each failure is a success of
    /// its own).
    Contention {
        /// The buffer.
        buffer: BufferId,
        /// Offset of the contended word.
        offset: usize,
    },
    /// A fragment to free that is not a whole block (block 1 or later) of an
    /// allocator of its size in its buffer.
    NotABlock(FragmentDescriptor),
    /// A buffer id that may not be registered: the invalid id, or 0 for an
    /// added buffer.
    InvalidBufferId(BufferId),
    /// AddBlockBuffer for an id already registered on this link.
    DuplicateBuffer(BufferId),
    /// An added buffer whose block size and size break the rules of spec
    /// §3.3 (block size a power of two >= 64; 8 to 32767 blocks).
    BadBlockBuffer {
        /// The buffer's id.
        id: BufferId,
        /// Its block size.
        block_size: u32,
        /// Its size in bytes.
        size: usize,
    },
    /// More buffers than [`MAX_BLOCK_BUFFERS_PER_LINK`](super::MAX_BLOCK_BUFFERS_PER_LINK).
    TooManyBuffers {
        /// The limit.
        limit: usize,
    },
    /// Added buffers totalling more than
    /// [`MAX_ADDED_BUFFER_BYTES_PER_LINK`](super::MAX_ADDED_BUFFER_BYTES_PER_LINK).
    TooMuchMemory {
        /// The limit in bytes.
        limit: usize,
    },
    /// More fragments waiting to be freed in buffers not yet known than
    /// [`MAX_DEFERRED_FREES`](super::MAX_DEFERRED_FREES).
    TooManyDeferredFrees {
        /// The limit.
        limit: usize,
    },
    /// More RouterLinkState operations waiting for buffers not yet known
    /// than [`MAX_PENDING_STATE_OPS_PER_LINK`](crate::link::MAX_PENDING_STATE_OPS_PER_LINK).
    TooManyPendingStateOps {
        /// The limit.
        limit: usize,
    },
    /// The null fragment where one is required.
    NullFragment,
    /// A fragment reaching beyond its buffer (`offset + size`, saturating).
    FragmentOutOfBounds {
        /// The fragment.
        fragment: FragmentDescriptor,
        /// Its buffer's size.
        buffer_size: usize,
    },
    /// A parcel-data fragment not larger than its 8-byte header, or at an
    /// offset that is not 8-aligned.
    BadDataFragment(FragmentDescriptor),
    /// A FragmentHeader `size` larger than the fragment holds.
    DataSize {
        /// The fragment.
        fragment: FragmentDescriptor,
        /// `FragmentHeader.size` as loaded.
        size: u32,
        /// Bytes after the header.
        max: u32,
    },
    /// A RouterLinkState fragment that is null, smaller than 64 bytes or
    /// not 8-aligned.
    BadLinkStateFragment(FragmentDescriptor),
    /// A RouterLinkState offset that is not 8-aligned or whose 64 bytes do
    /// not fit the buffer.
    BadLinkStateOffset {
        /// The buffer.
        buffer: BufferId,
        /// The offset.
        offset: usize,
    },
    /// An initial RouterLinkState index of 12 or more.
    NoInitialLinkState(usize),
    /// A shared id counter handed out an id that cannot be right: below its
    /// first allocatable value, the invalid id, one already in use, or a
    /// range that wraps.
    BadCounter {
        /// `next_buffer_id` or `next_sublink_id`.
        counter: &'static str,
        /// The value it returned.
        value: u64,
    },
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Access { buffer, error } => write!(f, "buffer {buffer}: {error}"),
            Self::PrimaryBufferTooSmall { size } => write!(
                f,
                "primary buffer of {size} bytes is smaller than {}",
                ipcz_wire::limits::PRIMARY_BUFFER_SIZE
            ),
            Self::BadRegion {
                buffer,
                offset,
                block_size,
                len,
            } => write!(
                f,
                "buffer {buffer}: no BlockAllocator of {block_size}-byte blocks over {len} bytes at {offset}"
            ),
            Self::CorruptFreeList {
                buffer,
                block_size,
                block,
                next,
            } => write!(
                f,
                "buffer {buffer}, {block_size}-byte blocks: free-list link in block {block} names block {next}"
            ),
            Self::Contention { buffer, offset } => write!(
                f,
                "buffer {buffer}: shared word at {offset} kept changing for {} attempts",
                super::MAX_CAS_ATTEMPTS
            ),
            Self::NotABlock(d) => write!(f, "fragment {d} is not an allocated block"),
            Self::InvalidBufferId(id) => write!(f, "buffer id {id} cannot be registered"),
            Self::DuplicateBuffer(id) => write!(f, "buffer {id} is already registered"),
            Self::BadBlockBuffer {
                id,
                block_size,
                size,
            } => write!(
                f,
                "buffer {id}: {size} bytes of {block_size}-byte blocks is not a valid block buffer"
            ),
            Self::TooManyBuffers { limit } => write!(f, "more than {limit} buffers on one link"),
            Self::TooMuchMemory { limit } => {
                write!(f, "added buffers beyond {limit} bytes on one link")
            }
            Self::TooManyDeferredFrees { limit } => {
                write!(f, "more than {limit} fragments waiting for their buffer")
            }
            Self::TooManyPendingStateOps { limit } => {
                write!(
                    f,
                    "more than {limit} link state operations waiting for their buffer"
                )
            }
            Self::NullFragment => f.write_str("fragment is null"),
            Self::FragmentOutOfBounds {
                fragment,
                buffer_size,
            } => write!(
                f,
                "fragment {fragment} exceeds its {buffer_size}-byte buffer"
            ),
            Self::BadDataFragment(d) => write!(
                f,
                "parcel data fragment {d}: size must exceed 8 and offset be 8-aligned"
            ),
            Self::DataSize {
                fragment,
                size,
                max,
            } => write!(
                f,
                "fragment {fragment}: FragmentHeader.size {size} exceeds its {max} data bytes"
            ),
            Self::BadLinkStateFragment(d) => write!(
                f,
                "RouterLinkState fragment {d}: must be non-null, >= 64 bytes, 8-aligned"
            ),
            Self::BadLinkStateOffset { buffer, offset } => write!(
                f,
                "buffer {buffer}: no RouterLinkState fits at offset {offset}"
            ),
            Self::NoInitialLinkState(i) => write!(f, "no initial RouterLinkState {i}"),
            Self::BadCounter { counter, value } => {
                write!(f, "shared counter {counter} returned unusable id {value}")
            }
        }
    }
}

impl std::error::Error for MemoryError {}
