//! Parcel data held in fragments (spec §5.5, §5.7).

use core::ops::Range;

use mojo_wire_kit::le::U32;
use mojo_wire_kit::{WireLayout, wire_layout};

use super::error::need;
use super::{BlockRegion, LayoutError, primary};
use crate::limits::{FRAGMENT_HEADER_SIZE, MAX_FRAGMENT_SIZE_FOR_BLOCK_ALLOCATION, MIN_BLOCK_SIZE};
use crate::types::FragmentDescriptor;

wire_layout! {
    /// The header at the start of a parcel data fragment (offsets and sizes
    /// for the atomic words; decodes a copied snapshot).
    pub struct FragmentHeaderWire: size 8, names "FragmentHeader" {
        /// Data bytes (atomic u32, stored with Release after the data).
        pub size: U32,
        /// Zero (atomic u32).
        pub reserved: U32,
    }
}

const _: () = assert!(FragmentHeaderWire::SIZE == FRAGMENT_HEADER_SIZE);

/// Resolves `fragment` against a buffer of `buffer_len` bytes (the buffer
/// must be the one named by `fragment.buffer_id` on the receiving link).
/// Chrome computes `offset + size` saturating.
pub fn range(fragment: FragmentDescriptor, buffer_len: usize) -> Result<Range<usize>, LayoutError> {
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
    let size = FragmentHeaderWire::from_zero_extended(bytes).size.get();
    let max = fragment.size as usize - FRAGMENT_HEADER_SIZE;
    if size as usize > max {
        return Err(LayoutError::DataSize { size, max });
    }
    let data = bytes.get(FRAGMENT_HEADER_SIZE..FRAGMENT_HEADER_SIZE + size as usize);
    data.ok_or(LayoutError::DataSize { size, max })
}

/// Writes parcel data into a fragment's bytes as a producer does (data,
/// then `reserved = 0`, then `size`); bytes after the data are untouched.
pub fn write_parcel_data(bytes: &mut [u8], data: &[u8]) -> Result<(), LayoutError> {
    need("parcel fragment", bytes, FRAGMENT_HEADER_SIZE + data.len())?;
    let size = u32::try_from(data.len()).map_err(|_| LayoutError::DataSize {
        size: u32::MAX,
        max: bytes.len() - FRAGMENT_HEADER_SIZE,
    })?;
    let (header, rest) = bytes.split_at_mut(FRAGMENT_HEADER_SIZE);
    if let Some(dst) = rest.get_mut(..data.len()) {
        dst.copy_from_slice(data);
    }
    let header_value = FragmentHeaderWire {
        size: U32::new(size),
        reserved: U32::new(0),
    };
    header.copy_from_slice(header_value.wire_bytes());
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
