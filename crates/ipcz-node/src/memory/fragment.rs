//! Fragments (spec §5.5) and parcel data in them (§5.7): resolving a
//! descriptor against its buffer, and the 8-byte FragmentHeader Chrome puts
//! before parcel data (`size` u32, stored Release after the data and loaded
//! Acquire before it; `reserved` u32, 0).

use std::ops::Range;
use std::sync::atomic::Ordering;

use core::mem::offset_of;
use ipcz_wire::limits::FRAGMENT_HEADER_SIZE;
use ipcz_wire::memory::LayoutError;

use ipcz_wire::memory::fragment::FragmentHeaderWire;
use ipcz_wire::types::{BufferId, FragmentDescriptor};
use mojo_wire_kit::SharedMemory;

use super::MemoryError;

/// The outcome of resolving something in shared memory: ready, or waiting
/// for a buffer this link has not registered yet (AddBlockBuffer for it may
/// still arrive; Chrome queues the dependent operation until then).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved<T> {
    /// Resolved.
    Ready(T),
    /// The fragment names a buffer not (yet) registered on this link.
    Pending(BufferId),
}

impl<T> Resolved<T> {
    /// The value, if ready.
    pub fn ready(self) -> Option<T> {
        match self {
            Self::Ready(v) => Some(v),
            Self::Pending(_) => None,
        }
    }
}

/// The byte range `fragment` covers in a buffer of `buffer_size` bytes
/// (`offset + size` saturating, as Chrome computes it).
pub fn fragment_range(
    fragment: FragmentDescriptor,
    buffer_size: usize,
) -> Result<Range<usize>, MemoryError> {
    ipcz_wire::memory::fragment::range(fragment, buffer_size).map_err(|e| match e {
        LayoutError::NullFragment => MemoryError::NullFragment,
        _ => MemoryError::FragmentOutOfBounds {
            fragment,
            buffer_size,
        },
    })
}

fn access(buffer: BufferId) -> impl Fn(mojo_wire_kit::ShmAccessError) -> MemoryError {
    move |error| MemoryError::Access { buffer, error }
}

/// `Parcel::AdoptDataFragment` and a copy out: checks that `fragment` lies
/// in `mem`, is larger than its header and 8-aligned, loads `size` with
/// Acquire, checks it against the fragment and copies that many bytes out.
/// The copy is a snapshot: the peer may write the memory meanwhile.
pub fn read_parcel_data<M: SharedMemory + ?Sized>(
    mem: &M,
    fragment: FragmentDescriptor,
) -> Result<Vec<u8>, MemoryError> {
    read_parcel_data_into(mem, fragment, Vec::new())
}

/// [`read_parcel_data`] into `buffer` (emptied first), so a caller with a
/// spare buffer of the right size allocates nothing.
pub fn read_parcel_data_into<M: SharedMemory + ?Sized>(
    mem: &M,
    fragment: FragmentDescriptor,
    mut buffer: Vec<u8>,
) -> Result<Vec<u8>, MemoryError> {
    let range = fragment_range(fragment, mem.size())?;
    if fragment.size as usize <= FRAGMENT_HEADER_SIZE || fragment.offset % 8 != 0 {
        return Err(MemoryError::BadDataFragment(fragment));
    }
    let size = mem
        .load_u32(
            range.start + offset_of!(FragmentHeaderWire, size),
            Ordering::Acquire,
        )
        .map_err(access(fragment.buffer_id))?;
    let max = fragment.size - FRAGMENT_HEADER_SIZE as u32;
    if size > max {
        return Err(MemoryError::DataSize {
            fragment,
            size,
            max,
        });
    }
    buffer.clear();
    buffer.resize(size as usize, 0);
    mem.read(range.start + FRAGMENT_HEADER_SIZE, &mut buffer)
        .map_err(access(fragment.buffer_id))?;
    Ok(buffer)
}

/// `Parcel::CommitData` into a fragment the caller owns: the data after the
/// header, then `reserved = 0` (Relaxed), then `size` (Release). Data that
/// does not fit is refused as [`MemoryError::DataSize`].
pub fn write_parcel_data<M: SharedMemory + ?Sized>(
    mem: &M,
    fragment: FragmentDescriptor,
    data: &[u8],
) -> Result<(), MemoryError> {
    let range = fragment_range(fragment, mem.size())?;
    if fragment.size as usize <= FRAGMENT_HEADER_SIZE || fragment.offset % 8 != 0 {
        return Err(MemoryError::BadDataFragment(fragment));
    }
    let max = fragment.size - FRAGMENT_HEADER_SIZE as u32;
    let size = u32::try_from(data.len()).unwrap_or(u32::MAX);
    if size > max {
        return Err(MemoryError::DataSize {
            fragment,
            size,
            max,
        });
    }
    let err = access(fragment.buffer_id);
    mem.write(range.start + FRAGMENT_HEADER_SIZE, data)
        .map_err(&err)?;
    mem.store_u32(
        range.start + offset_of!(FragmentHeaderWire, reserved),
        0,
        Ordering::Relaxed,
    )
    .map_err(&err)?;
    mem.store_u32(
        range.start + offset_of!(FragmentHeaderWire, size),
        size,
        Ordering::Release,
    )
    .map_err(&err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mojo_wire_kit::HeapMemory;

    #[test]
    fn write_then_read_back() {
        let mem = HeapMemory::from_bytes(&[0xEE; 256]);
        let d = FragmentDescriptor::new(0, 64, 64);
        write_parcel_data(&mem, d, b"hello").unwrap();
        assert_eq!(read_parcel_data(&mem, d).unwrap(), b"hello");
        let b = mem.snapshot();
        assert_eq!(&b[64..72], &[5, 0, 0, 0, 0, 0, 0, 0]);
        // Bytes after the data are untouched.
        assert_eq!(b[77], 0xEE);
        write_parcel_data(&mem, d, &[1; 56]).unwrap();
        assert!(matches!(
            write_parcel_data(&mem, d, &[1; 57]),
            Err(MemoryError::DataSize {
                size: 57,
                max: 56,
                ..
            })
        ));
    }

    #[test]
    fn descriptors_and_headers_are_validated() {
        let mem = HeapMemory::new(256);
        let read = |d| read_parcel_data(&mem, d);
        assert_eq!(
            read(FragmentDescriptor::NULL),
            Err(MemoryError::NullFragment)
        );
        assert!(matches!(
            read(FragmentDescriptor::new(0, 200, 64)),
            Err(MemoryError::FragmentOutOfBounds { .. })
        ));
        assert!(matches!(
            read(FragmentDescriptor::new(0, u32::MAX, u32::MAX)),
            Err(MemoryError::FragmentOutOfBounds { .. })
        ));
        for bad in [
            FragmentDescriptor::new(0, 64, 8),
            FragmentDescriptor::new(0, 68, 64),
        ] {
            assert_eq!(read(bad), Err(MemoryError::BadDataFragment(bad)));
        }
        mem.store_u32(64, 57, Ordering::Relaxed).unwrap();
        assert!(matches!(
            read(FragmentDescriptor::new(0, 64, 64)),
            Err(MemoryError::DataSize {
                size: 57,
                max: 56,
                ..
            })
        ));
        mem.store_u32(64, 0, Ordering::Relaxed).unwrap();
        assert_eq!(read(FragmentDescriptor::new(0, 64, 9)), Ok(vec![]));
    }
}
