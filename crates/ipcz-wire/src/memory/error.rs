//! [`LayoutError`]: why a shared-memory layout cannot be used.

use core::fmt;

use crate::types::FragmentDescriptor;

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

/// Fails with [`LayoutError::TooShort`] unless `b` holds `needed` bytes.
pub(crate) fn need(what: &'static str, b: &[u8], needed: usize) -> Result<(), LayoutError> {
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
