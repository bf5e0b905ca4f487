//! The ring buffer both ends of a legacy data pipe map: byte copies that
//! wrap at the capacity, reached only through [`SharedMemory`].

use mojo_wire_kit::SharedMemory;

use super::DataPipeError;

/// A shared ring of `capacity` bytes at the start of `mem`.
///
/// Offsets passed in are the owner's own state (validated when the end was
/// built), never bytes read from the ring, so the ring holds only data.
#[derive(Debug)]
pub(super) struct Ring<M> {
    mem: M,
    capacity: u32,
}

impl<M: SharedMemory> Ring<M> {
    /// Checks that `mem` holds at least `capacity` bytes.
    pub(super) fn new(mem: M, capacity: u32) -> Result<Self, DataPipeError> {
        let ring_size = mem.size();
        if ring_size < capacity as usize {
            return Err(DataPipeError::RingTooSmall {
                ring_size,
                capacity,
            });
        }
        Ok(Self { mem, capacity })
    }

    pub(super) fn capacity(&self) -> u32 {
        self.capacity
    }

    pub(super) fn memory(&self) -> &M {
        &self.mem
    }

    pub(super) fn into_memory(self) -> M {
        self.mem
    }

    /// The split of `len` bytes starting at `offset`: bytes before the end
    /// of the ring, then bytes from its start.
    fn split(&self, offset: u32, len: usize) -> Result<(usize, usize), DataPipeError> {
        if offset >= self.capacity || len > self.capacity as usize {
            return Err(DataPipeError::OffsetOutOfRange {
                offset,
                capacity: self.capacity,
            });
        }
        let tail = (self.capacity - offset) as usize;
        let first = len.min(tail);
        Ok((first, len - first))
    }

    /// Copies `dst.len()` bytes out, starting at `offset` and wrapping.
    pub(super) fn copy_out(&self, offset: u32, dst: &mut [u8]) -> Result<(), DataPipeError> {
        let (first, _) = self.split(offset, dst.len())?;
        let (a, b) = dst.split_at_mut(first);
        self.mem.read(offset as usize, a)?;
        self.mem.read(0, b)?;
        Ok(())
    }

    /// Copies `src` in, starting at `offset` and wrapping.
    pub(super) fn copy_in(&self, offset: u32, src: &[u8]) -> Result<(), DataPipeError> {
        let (first, _) = self.split(offset, src.len())?;
        let (a, b) = src.split_at(first);
        self.mem.write(offset as usize, a)?;
        self.mem.write(0, b)?;
        Ok(())
    }
}

/// `(offset + n) % capacity` without overflow, for `offset < capacity` and
/// `n <= capacity`.
pub(super) fn advance(offset: u32, n: u32, capacity: u32) -> u32 {
    let sum = u64::from(offset) + u64::from(n);
    (sum % u64::from(capacity.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use mojo_wire_kit::HeapMemory;

    #[test]
    fn copies_wrap_at_capacity() {
        let ring = Ring::new(HeapMemory::new(8), 6).unwrap();
        ring.copy_in(4, &[1, 2, 3, 4]).unwrap();
        let mut out = [0; 4];
        ring.copy_out(4, &mut out).unwrap();
        assert_eq!(out, [1, 2, 3, 4]);
        // Bytes 6 and 7 of the region are beyond the ring and untouched.
        let mut all = [9; 8];
        ring.copy_out(0, &mut all[..6]).unwrap();
        assert_eq!(all, [3, 4, 0, 0, 1, 2, 9, 9]);
    }

    #[test]
    fn offsets_outside_the_ring_are_errors() {
        let ring = Ring::new(HeapMemory::new(8), 8).unwrap();
        let mut out = [0; 9];
        assert!(ring.copy_out(8, &mut out[..1]).is_err());
        assert!(ring.copy_out(0, &mut out).is_err());
        assert!(ring.copy_in(u32::MAX, &[1]).is_err());
        assert!(matches!(
            Ring::new(HeapMemory::new(4), 8),
            Err(DataPipeError::RingTooSmall { .. })
        ));
    }

    #[test]
    fn advance_wraps_without_overflow() {
        assert_eq!(advance(5, 3, 8), 0);
        assert_eq!(advance(u32::MAX - 1, u32::MAX - 1, u32::MAX), u32::MAX - 2);
    }
}
