//! The seam between protocol cores and shared memory: word-level atomic
//! access and byte copies, each bounds- and alignment-checked.
//!
//! Another process can change any byte of a shared region at any moment, so
//! the trait never hands out a reference into the memory: every access is a
//! method call that copies a value in or out. A core that reads an index or
//! offset from shared memory must validate it before using it, because the
//! next load may return something else.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::Ordering;

/// Why a shared-memory access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShmAccessError {
    /// `offset..offset + len` does not lie inside the region.
    OutOfBounds {
        /// First byte of the access.
        offset: usize,
        /// Length of the access.
        len: usize,
        /// Size of the region.
        size: usize,
    },
    /// An atomic access at an offset that is not a multiple of its size.
    Misaligned {
        /// Offset of the access.
        offset: usize,
        /// Required alignment.
        align: usize,
    },
    /// The region may not be written (it is mapped read-only).
    ReadOnly,
}

impl fmt::Display for ShmAccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OutOfBounds { offset, len, size } => write!(
                f,
                "shared-memory access of {len} bytes at offset {offset} is outside the {size}-byte region"
            ),
            Self::Misaligned { offset, align } => write!(
                f,
                "atomic shared-memory access at offset {offset} is not {align}-byte aligned"
            ),
            Self::ReadOnly => f.write_str("shared-memory region is read-only"),
        }
    }
}

impl std::error::Error for ShmAccessError {}

/// Checks that `offset..offset + len` lies in a region of `size` bytes and,
/// if `align > 1`, that `offset` is a multiple of `align`. Implementations
/// of [`SharedMemory`] call it before every access.
pub fn check_access(
    offset: usize,
    len: usize,
    align: usize,
    size: usize,
) -> Result<(), ShmAccessError> {
    let in_bounds = offset.checked_add(len).is_some_and(|end| end <= size);
    if !in_bounds {
        return Err(ShmAccessError::OutOfBounds { offset, len, size });
    }
    if align > 1 && offset % align != 0 {
        return Err(ShmAccessError::Misaligned { offset, align });
    }
    Ok(())
}

/// `bytes[offset..offset + len]`, or the [`ShmAccessError::OutOfBounds`] that
/// [`check_access`] names for it.
fn in_bounds(bytes: &[u8], offset: usize, len: usize) -> Result<&[u8], ShmAccessError> {
    let size = bytes.len();
    offset
        .checked_add(len)
        .and_then(|end| bytes.get(offset..end))
        .ok_or(ShmAccessError::OutOfBounds { offset, len, size })
}

/// The mutable counterpart of [`in_bounds`].
fn in_bounds_mut(bytes: &mut [u8], offset: usize, len: usize) -> Result<&mut [u8], ShmAccessError> {
    let size = bytes.len();
    offset
        .checked_add(len)
        .and_then(|end| bytes.get_mut(offset..end))
        .ok_or(ShmAccessError::OutOfBounds { offset, len, size })
}

/// Word-level access to a shared-memory region that another process may
/// write concurrently.
///
/// Offsets are byte offsets from the start of the region. Atomic accesses
/// must be naturally aligned; every method checks bounds and alignment and
/// returns [`ShmAccessError`] instead of panicking. Orderings have the
/// meaning of `std::sync::atomic`; the peer is assumed to use the C++
/// orderings the protocol specifies.
///
/// Implementations take `&self` for writes because the memory is shared by
/// construction; they decide themselves whether they may be sent to or
/// shared with other threads.
pub trait SharedMemory {
    /// Size of the region in bytes.
    fn size(&self) -> usize;

    /// Atomically loads the u32 at `offset`.
    fn load_u32(&self, offset: usize, order: Ordering) -> Result<u32, ShmAccessError>;
    /// Atomically loads the u64 at `offset`.
    fn load_u64(&self, offset: usize, order: Ordering) -> Result<u64, ShmAccessError>;
    /// Atomically stores `value` at `offset`.
    fn store_u32(&self, offset: usize, value: u32, order: Ordering) -> Result<(), ShmAccessError>;
    /// Atomically stores `value` at `offset`.
    fn store_u64(&self, offset: usize, value: u64, order: Ordering) -> Result<(), ShmAccessError>;
    /// Atomically adds `value` (wrapping), returning the previous value.
    fn fetch_add_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError>;
    /// Atomically subtracts `value` (wrapping), returning the previous value.
    fn fetch_sub_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError>;
    /// Atomically ORs `value` in, returning the previous value.
    fn fetch_or_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError>;
    /// Atomically ANDs `value` in, returning the previous value.
    fn fetch_and_u32(
        &self,
        offset: usize,
        value: u32,
        order: Ordering,
    ) -> Result<u32, ShmAccessError>;
    /// Atomically adds `value` (wrapping), returning the previous value.
    fn fetch_add_u64(
        &self,
        offset: usize,
        value: u64,
        order: Ordering,
    ) -> Result<u64, ShmAccessError>;
    /// Atomically subtracts `value` (wrapping), returning the previous value.
    fn fetch_sub_u64(
        &self,
        offset: usize,
        value: u64,
        order: Ordering,
    ) -> Result<u64, ShmAccessError>;
    /// Strong compare-and-exchange: `Ok(Ok(previous))` if the value was
    /// `current` and is now `new`, `Ok(Err(actual))` if it was `actual`.
    fn compare_exchange_u32(
        &self,
        offset: usize,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Result<u32, u32>, ShmAccessError>;
    /// Strong compare-and-exchange of a u64, as
    /// [`compare_exchange_u32`](Self::compare_exchange_u32).
    fn compare_exchange_u64(
        &self,
        offset: usize,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<Result<u64, u64>, ShmAccessError>;
    /// Copies `dst.len()` bytes starting at `offset` out of the region. The
    /// bytes may be changing while they are copied: the copy is a snapshot
    /// whose content must be validated like any other peer input.
    fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), ShmAccessError>;
    /// Copies `src` into the region at `offset`.
    fn write(&self, offset: usize, src: &[u8]) -> Result<(), ShmAccessError>;
}

/// A [`SharedMemory`] in ordinary heap memory, for tests, simulations and
/// fuzzing: several simulated nodes can share one through an `Rc`, and a
/// test can play a hostile peer by writing any byte at any time.
///
/// It is single-threaded (not `Sync`), so "atomic" operations are plain
/// read-modify-writes; orderings are accepted and ignored.
#[derive(Clone, Default)]
pub struct HeapMemory {
    bytes: RefCell<Vec<u8>>,
    read_only: bool,
}

impl fmt::Debug for HeapMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeapMemory")
            .field("size", &self.bytes.borrow().len())
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl HeapMemory {
    /// A zero-filled writable region of `size` bytes.
    pub fn new(size: usize) -> Self {
        Self {
            bytes: RefCell::new(vec![0; size]),
            read_only: false,
        }
    }

    /// A writable region holding a copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            bytes: RefCell::new(bytes.to_vec()),
            read_only: false,
        }
    }

    /// A read-only region holding a copy of `bytes`: every write fails
    /// with [`ShmAccessError::ReadOnly`].
    pub fn read_only_from_bytes(bytes: &[u8]) -> Self {
        Self {
            bytes: RefCell::new(bytes.to_vec()),
            read_only: true,
        }
    }

    /// A copy of the whole region.
    pub fn snapshot(&self) -> Vec<u8> {
        self.bytes.borrow().clone()
    }

    fn load<const N: usize>(&self, offset: usize) -> Result<[u8; N], ShmAccessError> {
        let bytes = self.bytes.borrow();
        check_access(offset, N, N, bytes.len())?;
        let mut out = [0u8; N];
        out.copy_from_slice(in_bounds(&bytes, offset, N)?);
        Ok(out)
    }

    fn store<const N: usize>(&self, offset: usize, value: [u8; N]) -> Result<(), ShmAccessError> {
        let mut bytes = self.bytes.borrow_mut();
        check_access(offset, N, N, bytes.len())?;
        if self.read_only {
            return Err(ShmAccessError::ReadOnly);
        }
        in_bounds_mut(&mut bytes, offset, N)?.copy_from_slice(&value);
        Ok(())
    }

    fn update_u32(&self, offset: usize, f: impl FnOnce(u32) -> u32) -> Result<u32, ShmAccessError> {
        let old = u32::from_le_bytes(self.load(offset)?);
        self.store(offset, f(old).to_le_bytes())?;
        Ok(old)
    }

    fn update_u64(&self, offset: usize, f: impl FnOnce(u64) -> u64) -> Result<u64, ShmAccessError> {
        let old = u64::from_le_bytes(self.load(offset)?);
        self.store(offset, f(old).to_le_bytes())?;
        Ok(old)
    }
}

impl SharedMemory for HeapMemory {
    fn size(&self) -> usize {
        self.bytes.borrow().len()
    }

    fn load_u32(&self, offset: usize, _: Ordering) -> Result<u32, ShmAccessError> {
        self.load(offset).map(u32::from_le_bytes)
    }

    fn load_u64(&self, offset: usize, _: Ordering) -> Result<u64, ShmAccessError> {
        self.load(offset).map(u64::from_le_bytes)
    }

    fn store_u32(&self, offset: usize, value: u32, _: Ordering) -> Result<(), ShmAccessError> {
        self.store(offset, value.to_le_bytes())
    }

    fn store_u64(&self, offset: usize, value: u64, _: Ordering) -> Result<(), ShmAccessError> {
        self.store(offset, value.to_le_bytes())
    }

    fn fetch_add_u32(&self, offset: usize, value: u32, _: Ordering) -> Result<u32, ShmAccessError> {
        self.update_u32(offset, |v| v.wrapping_add(value))
    }

    fn fetch_sub_u32(&self, offset: usize, value: u32, _: Ordering) -> Result<u32, ShmAccessError> {
        self.update_u32(offset, |v| v.wrapping_sub(value))
    }

    fn fetch_or_u32(&self, offset: usize, value: u32, _: Ordering) -> Result<u32, ShmAccessError> {
        self.update_u32(offset, |v| v | value)
    }

    fn fetch_and_u32(&self, offset: usize, value: u32, _: Ordering) -> Result<u32, ShmAccessError> {
        self.update_u32(offset, |v| v & value)
    }

    fn fetch_add_u64(&self, offset: usize, value: u64, _: Ordering) -> Result<u64, ShmAccessError> {
        self.update_u64(offset, |v| v.wrapping_add(value))
    }

    fn fetch_sub_u64(&self, offset: usize, value: u64, _: Ordering) -> Result<u64, ShmAccessError> {
        self.update_u64(offset, |v| v.wrapping_sub(value))
    }

    fn compare_exchange_u32(
        &self,
        offset: usize,
        current: u32,
        new: u32,
        _: Ordering,
        _: Ordering,
    ) -> Result<Result<u32, u32>, ShmAccessError> {
        let old = u32::from_le_bytes(self.load(offset)?);
        if old != current {
            return Ok(Err(old));
        }
        self.store(offset, new.to_le_bytes())?;
        Ok(Ok(old))
    }

    fn compare_exchange_u64(
        &self,
        offset: usize,
        current: u64,
        new: u64,
        _: Ordering,
        _: Ordering,
    ) -> Result<Result<u64, u64>, ShmAccessError> {
        let old = u64::from_le_bytes(self.load(offset)?);
        if old != current {
            return Ok(Err(old));
        }
        self.store(offset, new.to_le_bytes())?;
        Ok(Ok(old))
    }

    fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), ShmAccessError> {
        let bytes = self.bytes.borrow();
        check_access(offset, dst.len(), 1, bytes.len())?;
        dst.copy_from_slice(in_bounds(&bytes, offset, dst.len())?);
        Ok(())
    }

    fn write(&self, offset: usize, src: &[u8]) -> Result<(), ShmAccessError> {
        let mut bytes = self.bytes.borrow_mut();
        check_access(offset, src.len(), 1, bytes.len())?;
        if self.read_only {
            return Err(ShmAccessError::ReadOnly);
        }
        in_bounds_mut(&mut bytes, offset, src.len())?.copy_from_slice(src);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ORD: Ordering = Ordering::SeqCst;

    #[test]
    fn atomics_read_modify_write_and_report_previous_values() {
        let m = HeapMemory::new(32);
        assert_eq!(m.fetch_add_u32(0, 5, ORD), Ok(0));
        assert_eq!(m.fetch_sub_u32(0, 2, ORD), Ok(5));
        assert_eq!(m.fetch_or_u32(0, 0x10, ORD), Ok(3));
        assert_eq!(m.fetch_and_u32(0, 0x11, ORD), Ok(0x13));
        assert_eq!(m.load_u32(0, ORD), Ok(0x11));
        assert_eq!(m.compare_exchange_u32(0, 1, 2, ORD, ORD), Ok(Err(0x11)));
        assert_eq!(m.compare_exchange_u32(0, 0x11, 2, ORD, ORD), Ok(Ok(0x11)));
        assert_eq!(m.fetch_sub_u64(8, 1, ORD), Ok(0));
        assert_eq!(m.load_u64(8, ORD), Ok(u64::MAX));
        assert_eq!(
            m.compare_exchange_u64(8, u64::MAX, 9, ORD, ORD),
            Ok(Ok(u64::MAX))
        );
        assert_eq!(m.fetch_add_u64(8, 1, ORD), Ok(9));
        // Little-endian, like the real memory.
        let mut b = [0u8; 4];
        m.read(0, &mut b).unwrap();
        assert_eq!(b, 2u32.to_le_bytes());
    }

    #[test]
    fn out_of_bounds_misaligned_and_read_only_accesses_are_errors() {
        let m = HeapMemory::new(16);
        assert_eq!(
            m.load_u64(12, ORD),
            Err(ShmAccessError::OutOfBounds {
                offset: 12,
                len: 8,
                size: 16
            })
        );
        assert_eq!(
            m.load_u32(2, ORD),
            Err(ShmAccessError::Misaligned {
                offset: 2,
                align: 4
            })
        );
        assert!(m.read(usize::MAX, &mut [0u8; 2]).is_err());
        assert!(m.write(15, &[1, 2]).is_err());
        let ro = HeapMemory::read_only_from_bytes(&[1; 8]);
        assert_eq!(ro.store_u32(0, 1, ORD), Err(ShmAccessError::ReadOnly));
        assert_eq!(ro.write(0, &[0]), Err(ShmAccessError::ReadOnly));
        assert_eq!(ro.load_u32(4, ORD), Ok(0x0101_0101));
    }

    proptest! {
        #[test]
        fn check_access_accepts_exactly_the_in_bounds_aligned_ranges(
            offset in any::<usize>(), len in 0usize..64, align in prop::sample::select(vec![1usize, 4, 8]), size in 0usize..256,
        ) {
            let ok = check_access(offset, len, align, size).is_ok();
            let expected = offset.checked_add(len).is_some_and(|e| e <= size) && offset % align == 0;
            prop_assert_eq!(ok, expected);
        }

        #[test]
        fn writes_then_reads_return_the_bytes_written(
            size in 1usize..128, offset in 0usize..128, data in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let m = HeapMemory::new(size);
            let fits = offset + data.len() <= size;
            prop_assert_eq!(m.write(offset, &data).is_ok(), fits);
            if fits {
                let mut back = vec![0u8; data.len()];
                m.read(offset, &mut back).unwrap();
                prop_assert_eq!(back, data);
            }
        }
    }
}
