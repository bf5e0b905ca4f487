//! RouterLinkState operations (spec §5.3) as Chrome performs them: CAS loops
//! on the `status` word with Relaxed ordering, the bypass source name stored
//! high-Relaxed then low-Release and loaded high-Acquire then low-Relaxed,
//! the reference count decremented AcqRel.
//!
//! A [`RouterLinkState`] is a validated (memory, offset) pair: the offset is
//! checked once, and every later access still goes through the bounds- and
//! alignment-checked [`SharedMemory`] seam.

use core::mem::offset_of;
use std::sync::atomic::{Ordering, fence};

use ipcz_wire::limits::ROUTER_LINK_STATE_SIZE;
use ipcz_wire::memory::{LinkStatus, RouterLinkStateWire};
use ipcz_wire::types::NodeNameWire;
use ipcz_wire::types::{BufferId, LinkSide, NodeName};
use mojo_wire_kit::SharedMemory;

use super::{MAX_CAS_ATTEMPTS, MemoryError};

/// Offset of `allowed_bypass_request_source.high` in a RouterLinkState.
const ALLOWED_BYPASS_SOURCE_HIGH: usize =
    offset_of!(RouterLinkStateWire, allowed_bypass_request_source) + offset_of!(NodeNameWire, high);
/// Offset of `allowed_bypass_request_source.low` in a RouterLinkState.
const ALLOWED_BYPASS_SOURCE_LOW: usize =
    offset_of!(RouterLinkStateWire, allowed_bypass_request_source) + offset_of!(NodeNameWire, low);

const STABLE: u32 = LinkStatus::STABLE.bits();
const LOCKED_BY_EITHER: u32 = LinkStatus::LOCKED.bits();

/// One side's bits: (this side stable, other side stable, this side
/// waiting, locked by this side).
fn bits(side: LinkSide) -> (u32, u32, u32, u32) {
    if side == LinkSide::A {
        (
            LinkStatus::SIDE_A_STABLE.bits(),
            LinkStatus::SIDE_B_STABLE.bits(),
            LinkStatus::SIDE_A_WAITING.bits(),
            LinkStatus::LOCKED_BY_SIDE_A.bits(),
        )
    } else {
        (
            LinkStatus::SIDE_B_STABLE.bits(),
            LinkStatus::SIDE_A_STABLE.bits(),
            LinkStatus::SIDE_B_WAITING.bits(),
            LinkStatus::LOCKED_BY_SIDE_B.bits(),
        )
    }
}

/// The 64-byte RouterLinkState at `offset` of one buffer.
#[derive(Debug)]
pub struct RouterLinkState<'a, M: SharedMemory + ?Sized> {
    mem: &'a M,
    buffer: BufferId,
    offset: usize,
}

impl<M: SharedMemory + ?Sized> Clone for RouterLinkState<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M: SharedMemory + ?Sized> Copy for RouterLinkState<'_, M> {}

impl<'a, M: SharedMemory + ?Sized> RouterLinkState<'a, M> {
    /// The state at `offset` of `mem` (buffer `buffer`): the offset must be
    /// 8-aligned and all 64 bytes inside the buffer.
    pub fn new(mem: &'a M, buffer: BufferId, offset: usize) -> Result<Self, MemoryError> {
        let fits = offset
            .checked_add(ROUTER_LINK_STATE_SIZE)
            .is_some_and(|end| end <= mem.size());
        if offset % 8 != 0 || !fits {
            return Err(MemoryError::BadLinkStateOffset { buffer, offset });
        }
        Ok(Self {
            mem,
            buffer,
            offset,
        })
    }

    /// The buffer it lives in.
    pub fn buffer(&self) -> BufferId {
        self.buffer
    }

    /// Its offset in that buffer.
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn at(&self, field_offset: usize) -> usize {
        self.offset + field_offset
    }

    fn access(&self, error: mojo_wire_kit::ShmAccessError) -> MemoryError {
        MemoryError::Access {
            buffer: self.buffer,
            error,
        }
    }

    fn contention(&self) -> MemoryError {
        MemoryError::Contention {
            buffer: self.buffer,
            offset: self.at(RouterLinkStateWire::STATUS_OFFSET),
        }
    }

    fn cas_status(&self, current: u32, new: u32) -> Result<Result<u32, u32>, MemoryError> {
        self.mem
            .compare_exchange_u32(
                self.at(RouterLinkStateWire::STATUS_OFFSET),
                current,
                new,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .map_err(|e| self.access(e))
    }

    /// Writes a fresh state, as the allocating side does before anyone else
    /// can see it: `ref_count` 1, everything else zero, then a release fence.
    pub fn initialize(&self) -> Result<(), MemoryError> {
        self.mem
            .write(self.offset, &[0u8; ROUTER_LINK_STATE_SIZE])
            .map_err(|e| self.access(e))?;
        self.mem
            .store_u32(
                self.at(RouterLinkStateWire::REF_COUNT_OFFSET),
                1,
                Ordering::Relaxed,
            )
            .map_err(|e| self.access(e))?;
        fence(Ordering::Release);
        Ok(())
    }

    /// `ref_count` (a Relaxed load; for inspection).
    pub fn ref_count(&self) -> Result<i32, MemoryError> {
        self.mem
            .load_u32(
                self.at(RouterLinkStateWire::REF_COUNT_OFFSET),
                Ordering::Relaxed,
            )
            .map(|v| v as i32)
            .map_err(|e| self.access(e))
    }

    /// Takes one more reference (Relaxed); returns the previous count.
    pub fn add_ref(&self) -> Result<i32, MemoryError> {
        self.mem
            .fetch_add_u32(
                self.at(RouterLinkStateWire::REF_COUNT_OFFSET),
                1,
                Ordering::Relaxed,
            )
            .map(|v| v as i32)
            .map_err(|e| self.access(e))
    }

    /// Drops one reference (AcqRel); returns the previous count. The side
    /// that sees 1 frees a managed state's block. Chrome decrements the
    /// unmanaged initial states too (their count goes 0, -1, -2) and never
    /// frees them.
    pub fn release_ref(&self) -> Result<i32, MemoryError> {
        self.mem
            .fetch_sub_u32(
                self.at(RouterLinkStateWire::REF_COUNT_OFFSET),
                1,
                Ordering::AcqRel,
            )
            .map(|v| v as i32)
            .map_err(|e| self.access(e))
    }

    /// `status` with a Relaxed load, as Chrome's `is_locked_by` reads it.
    pub fn status(&self) -> Result<LinkStatus, MemoryError> {
        self.mem
            .load_u32(
                self.at(RouterLinkStateWire::STATUS_OFFSET),
                Ordering::Relaxed,
            )
            .map(LinkStatus::from_word)
            .map_err(|e| self.access(e))
    }

    /// Whether `side` holds the lock.
    pub fn is_locked_by(&self, side: LinkSide) -> Result<bool, MemoryError> {
        Ok(self.status()?.is_locked_by(side))
    }

    /// SetSideStable: sets `side`'s stable bit (already set: no change).
    pub fn set_side_stable(&self, side: LinkSide) -> Result<(), MemoryError> {
        let (this_stable, ..) = bits(side);
        let mut expected = 0;
        for _ in 0..MAX_CAS_ATTEMPTS {
            match self.cas_status(expected, expected | this_stable)? {
                Ok(_) => return Ok(()),
                Err(actual) if actual & this_stable != 0 => return Ok(()),
                Err(actual) => expected = actual,
            }
        }
        Err(self.contention())
    }

    /// TryLock (for closure, or for bypass without a source): true iff both
    /// sides are stable and nobody held the lock, which `side` now holds.
    /// If only the other side is unstable, sets `side`'s waiting bit (the
    /// other side then sends FlushRouter once stable) and returns false.
    pub fn try_lock(&self, side: LinkSide) -> Result<bool, MemoryError> {
        let (this_stable, other_stable, this_waiting, this_lock) = bits(side);
        let mut expected = STABLE;
        let mut desired = this_lock;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Err(actual) = self.cas_status(expected, expected | desired)? else {
                return Ok(desired == this_lock);
            };
            expected = actual;
            if actual & LOCKED_BY_EITHER != 0 || actual & this_stable == 0 {
                return Ok(false);
            }
            if desired == this_lock && actual & other_stable == 0 {
                desired = this_waiting;
            } else if desired == this_waiting && actual & STABLE == STABLE {
                desired = this_lock;
            }
        }
        Err(self.contention())
    }

    /// Unlock: clears `side`'s lock bit if set.
    pub fn unlock(&self, side: LinkSide) -> Result<(), MemoryError> {
        let (.., this_lock) = bits(side);
        let mut expected = STABLE | this_lock;
        let mut desired = STABLE;
        for _ in 0..MAX_CAS_ATTEMPTS {
            match self.cas_status(expected, desired)? {
                Ok(_) => return Ok(()),
                Err(actual) if actual & this_lock == 0 => return Ok(()),
                Err(actual) => {
                    expected = actual;
                    desired = actual & !this_lock;
                }
            }
        }
        Err(self.contention())
    }

    /// ResetWaitingBit(`side`): if the link is stable, unlocked and `side`
    /// is waiting, clears `side`'s waiting bit and returns true.
    pub fn reset_waiting_bit(&self, side: LinkSide) -> Result<bool, MemoryError> {
        let (.., this_waiting, _) = bits(side);
        let mut expected = STABLE | this_waiting;
        let mut desired = STABLE;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Err(actual) = self.cas_status(expected, desired)? else {
                return Ok(true);
            };
            if actual & STABLE != STABLE
                || actual & this_waiting == 0
                || actual & LOCKED_BY_EITHER != 0
            {
                return Ok(false);
            }
            expected = actual;
            desired = actual & !this_waiting;
        }
        Err(self.contention())
    }

    /// FlushOtherSideIfWaiting, seen from `our_side`: true if the other
    /// side's waiting bit was reset, in which case the caller sends
    /// FlushRouter on this link's sublink.
    pub fn flush_other_side_if_waiting(&self, our_side: LinkSide) -> Result<bool, MemoryError> {
        self.reset_waiting_bit(our_side.opposite())
    }

    /// `allowed_bypass_request_source`: high loaded with Acquire, then low
    /// Relaxed.
    pub fn allowed_bypass_request_source(&self) -> Result<NodeName, MemoryError> {
        let high = self
            .mem
            .load_u64(self.at(ALLOWED_BYPASS_SOURCE_HIGH), Ordering::Acquire)
            .map_err(|e| self.access(e))?;
        let low = self
            .mem
            .load_u64(self.at(ALLOWED_BYPASS_SOURCE_LOW), Ordering::Relaxed)
            .map_err(|e| self.access(e))?;
        Ok(NodeName { high, low })
    }

    /// Stores `allowed_bypass_request_source`: high Relaxed, then low Release.
    pub fn set_allowed_bypass_request_source(&self, name: NodeName) -> Result<(), MemoryError> {
        self.mem
            .store_u64(
                self.at(ALLOWED_BYPASS_SOURCE_HIGH),
                name.high,
                Ordering::Relaxed,
            )
            .map_err(|e| self.access(e))?;
        self.mem
            .store_u64(
                self.at(ALLOWED_BYPASS_SOURCE_LOW),
                name.low,
                Ordering::Release,
            )
            .map_err(|e| self.access(e))
    }

    /// TryLockForBypass: [`try_lock`](Self::try_lock), and on success
    /// record `source` as the node allowed to request the bypass.
    pub fn try_lock_for_bypass(
        &self,
        side: LinkSide,
        source: NodeName,
    ) -> Result<bool, MemoryError> {
        if !self.try_lock(side)? {
            return Ok(false);
        }
        self.set_allowed_bypass_request_source(source)?;
        Ok(true)
    }

    /// CanNodeRequestBypass, seen from `our_side`: the other side holds the
    /// lock and named `requester` as the allowed source. The name is loaded
    /// first (Acquire), then the status (Relaxed), as Chrome does.
    pub fn can_node_request_bypass(
        &self,
        our_side: LinkSide,
        requester: NodeName,
    ) -> Result<bool, MemoryError> {
        let allowed = self.allowed_bypass_request_source()?;
        Ok(self.is_locked_by(our_side.opposite())? && allowed == requester)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mojo_wire_kit::HeapMemory;

    const A: LinkSide = LinkSide::A;
    const B: LinkSide = LinkSide::B;

    fn state(mem: &HeapMemory) -> RouterLinkState<'_, HeapMemory> {
        RouterLinkState::new(mem, BufferId(0), 64).unwrap()
    }

    #[test]
    fn offsets_are_validated() {
        let mem = HeapMemory::new(128);
        assert!(RouterLinkState::new(&mem, BufferId(0), 64).is_ok());
        for offset in [4, 68, 72, usize::MAX - 7] {
            assert_eq!(
                RouterLinkState::new(&mem, BufferId(0), offset).unwrap_err(),
                MemoryError::BadLinkStateOffset {
                    buffer: BufferId(0),
                    offset
                }
            );
        }
    }

    #[test]
    fn initialize_and_reference_counting() {
        let mem = HeapMemory::from_bytes(&[0xAB; 128]);
        let s = state(&mem);
        s.initialize().unwrap();
        assert_eq!(&mem.snapshot()[68..128], &[0u8; 60][..]);
        assert_eq!(s.ref_count(), Ok(1));
        assert_eq!(s.add_ref(), Ok(1));
        assert_eq!(s.release_ref(), Ok(2));
        assert_eq!(s.release_ref(), Ok(1));
        assert_eq!(s.release_ref(), Ok(0));
        assert_eq!(s.ref_count(), Ok(-1));
    }

    #[test]
    fn lock_protocol_as_chrome() {
        let mem = HeapMemory::new(128);
        let s = state(&mem);
        // Nobody stable: locking fails without change.
        assert_eq!(s.try_lock(A), Ok(false));
        assert_eq!(s.status().unwrap().bits(), 0);
        // B stable, A not: B's attempt sets B's waiting bit.
        s.set_side_stable(B).unwrap();
        assert_eq!(s.try_lock(B), Ok(false));
        assert_eq!(s.status().unwrap().bits(), 0x0a);
        // A cannot reset B's waiting bit before A is stable.
        assert_eq!(s.flush_other_side_if_waiting(A), Ok(false));
        s.set_side_stable(A).unwrap();
        s.set_side_stable(A).unwrap();
        assert_eq!(s.status().unwrap().bits(), 0x0b);
        assert_eq!(s.flush_other_side_if_waiting(A), Ok(true));
        assert_eq!(s.status().unwrap().bits(), 0x03);
        assert_eq!(s.flush_other_side_if_waiting(A), Ok(false));
        // Now B locks; A cannot; B unlocks.
        assert_eq!(s.try_lock(B), Ok(true));
        assert_eq!(s.status().unwrap().bits(), 0x23);
        assert!(s.is_locked_by(B).unwrap() && !s.is_locked_by(A).unwrap());
        assert_eq!(s.try_lock(A), Ok(false));
        s.unlock(A).unwrap();
        assert_eq!(s.status().unwrap().bits(), 0x23);
        s.unlock(B).unwrap();
        assert_eq!(s.status().unwrap().bits(), 0x03);
        // Waiting bits do not prevent locking.
        mem.store_u32(68, 0x07, Ordering::Relaxed).unwrap();
        assert_eq!(s.try_lock(A), Ok(true));
        assert_eq!(s.status().unwrap().bits(), 0x17);
        // Reset is refused while locked.
        assert_eq!(s.reset_waiting_bit(A), Ok(false));
        s.unlock(A).unwrap();
        assert_eq!(s.status().unwrap().bits(), 0x07);
    }

    #[test]
    fn bypass_source() {
        let mem = HeapMemory::new(128);
        let s = state(&mem);
        let c = NodeName { high: 7, low: 9 };
        assert_eq!(s.try_lock_for_bypass(A, c), Ok(false));
        assert_eq!(s.allowed_bypass_request_source(), Ok(NodeName::NONE));
        s.set_side_stable(A).unwrap();
        s.set_side_stable(B).unwrap();
        assert_eq!(s.try_lock_for_bypass(A, c), Ok(true));
        assert_eq!(s.allowed_bypass_request_source(), Ok(c));
        assert_eq!(&mem.snapshot()[72..80], &7u64.to_le_bytes());
        assert_eq!(s.can_node_request_bypass(B, c), Ok(true));
        assert_eq!(s.can_node_request_bypass(A, c), Ok(false));
        assert_eq!(
            s.can_node_request_bypass(B, NodeName { high: 7, low: 8 }),
            Ok(false)
        );
    }
}
