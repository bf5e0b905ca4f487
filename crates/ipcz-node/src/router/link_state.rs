//! The RouterLinkState operations routers need (§5.3), as a trait the node
//! answers over its NodeLinkMemory, with the status-word logic as a plain
//! value and an in-memory implementation for tests.

use std::collections::HashMap;

use ipcz_wire::types::{FragmentDescriptor, NodeName, SublinkId};

use super::{LinkSide, NodeLinkId};

/// Size of a RouterLinkState (§5.3).
pub const LINK_STATE_SIZE: u32 = 64;

/// What routers ask of the shared memory of a node link. `state` is always
/// a fragment on `link`'s NodeLinkMemory.
///
/// A state adopted while its buffer is still pending (§5.5) must behave as
/// if the link were not ready: locks and `reset_waiting_bit` answer `false`,
/// `can_node_request_bypass` answers `false`, and `set_side_stable` and
/// `unlock` are remembered and applied once the buffer is mapped. The node
/// then calls [`super::Routers::flush_node_link`] so waiting routers retry.
pub trait LinkState {
    /// Takes over the reference a peer handed us with `state` (§5.3), if
    /// the fragment can be a RouterLinkState on `link`: non-null, at least
    /// 64 bytes, 8-aligned, resolvable or pending. `false` = invalid.
    fn adopt(&mut self, link: NodeLinkId, state: FragmentDescriptor) -> bool;
    /// A fresh RouterLinkState on `link` with two references (ours and the
    /// peer's); `None` when no block is free (capacity must be added).
    fn allocate(&mut self, link: NodeLinkId) -> Option<FragmentDescriptor>;
    /// `count` consecutive fresh sublink ids from `link`'s shared counter.
    fn allocate_sublinks(&mut self, link: NodeLinkId, count: u64) -> SublinkId;
    /// SetSideStable(side).
    fn set_side_stable(&mut self, link: NodeLinkId, state: FragmentDescriptor, side: LinkSide);
    /// TryLock(side); on failure may set `side`'s waiting bit.
    fn try_lock(&mut self, link: NodeLinkId, state: FragmentDescriptor, side: LinkSide) -> bool;
    /// TryLock(side), then record `source` as the node allowed to request
    /// the bypass.
    fn try_lock_for_bypass(
        &mut self,
        link: NodeLinkId,
        state: FragmentDescriptor,
        side: LinkSide,
        source: NodeName,
    ) -> bool;
    /// Unlock(side).
    fn unlock(&mut self, link: NodeLinkId, state: FragmentDescriptor, side: LinkSide);
    /// ResetWaitingBit(side): clears `side`'s waiting bit if both sides are
    /// stable and nobody holds the lock; whether it did.
    fn reset_waiting_bit(
        &mut self,
        link: NodeLinkId,
        state: FragmentDescriptor,
        side: LinkSide,
    ) -> bool;
    /// CanNodeRequestBypass: the side opposite `our_side` holds the lock
    /// and recorded `requester` as the allowed source.
    fn can_node_request_bypass(
        &mut self,
        link: NodeLinkId,
        state: FragmentDescriptor,
        our_side: LinkSide,
        requester: NodeName,
    ) -> bool;
    /// Drops one reference (the second one frees the block; unmanaged
    /// initial-portal slots are never freed).
    fn release(&mut self, link: NodeLinkId, state: FragmentDescriptor);
}

/// The status word and bypass source of one RouterLinkState, with the
/// operations of §5.3 on plain values (used for in-process links and by
/// [`InMemoryLinkState`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// The `status` bits.
    pub bits: u32,
    /// `allowed_bypass_request_source`.
    pub allowed_bypass_request_source: NodeName,
}

impl LinkStatus {
    const SIDE_A_STABLE: u32 = 0x01;
    const SIDE_B_STABLE: u32 = 0x02;
    const STABLE: u32 = 0x03;
    const SIDE_A_WAITING: u32 = 0x04;
    const SIDE_B_WAITING: u32 = 0x08;
    const LOCKED_BY_A: u32 = 0x10;
    const LOCKED_BY_B: u32 = 0x20;
    const LOCKED: u32 = 0x30;

    fn stable_bit(side: LinkSide) -> u32 {
        match side {
            LinkSide::A => Self::SIDE_A_STABLE,
            LinkSide::B => Self::SIDE_B_STABLE,
        }
    }

    fn waiting_bit(side: LinkSide) -> u32 {
        match side {
            LinkSide::A => Self::SIDE_A_WAITING,
            LinkSide::B => Self::SIDE_B_WAITING,
        }
    }

    fn lock_bit(side: LinkSide) -> u32 {
        match side {
            LinkSide::A => Self::LOCKED_BY_A,
            LinkSide::B => Self::LOCKED_BY_B,
        }
    }

    /// Both sides marked stable (for a fresh local pair).
    pub fn stable() -> Self {
        Self {
            bits: Self::STABLE,
            ..Self::default()
        }
    }

    /// SetSideStable.
    pub fn set_side_stable(&mut self, side: LinkSide) {
        self.bits |= Self::stable_bit(side);
    }

    /// TryLock: succeeds iff both sides are stable and nobody holds the
    /// lock; if only the other side is unstable, sets our waiting bit.
    pub fn try_lock(&mut self, side: LinkSide) -> bool {
        let s = self.bits;
        if s & Self::LOCKED != 0 || s & Self::stable_bit(side) == 0 {
            return false;
        }
        if s & Self::stable_bit(side.opposite()) == 0 {
            self.bits |= Self::waiting_bit(side);
            return false;
        }
        self.bits |= Self::lock_bit(side);
        true
    }

    /// TryLockForBypass.
    pub fn try_lock_for_bypass(&mut self, side: LinkSide, source: NodeName) -> bool {
        if !self.try_lock(side) {
            return false;
        }
        self.allowed_bypass_request_source = source;
        true
    }

    /// Unlock.
    pub fn unlock(&mut self, side: LinkSide) {
        self.bits &= !Self::lock_bit(side);
    }

    /// ResetWaitingBit for `side`.
    pub fn reset_waiting_bit(&mut self, side: LinkSide) -> bool {
        let s = self.bits;
        if s & Self::STABLE != Self::STABLE
            || s & Self::waiting_bit(side) == 0
            || s & Self::LOCKED != 0
        {
            return false;
        }
        self.bits &= !Self::waiting_bit(side);
        true
    }

    /// CanNodeRequestBypass.
    pub fn can_node_request_bypass(&self, our_side: LinkSide, requester: NodeName) -> bool {
        self.bits & Self::lock_bit(our_side.opposite()) != 0
            && self.allowed_bypass_request_source == requester
    }
}

#[derive(Debug)]
struct Slot {
    status: LinkStatus,
    refs: u32,
    managed: bool,
}

/// [`LinkState`] over plain maps, for tests: one "memory" per node link,
/// shared by its two ends once [`InMemoryLinkState::bind`] joins them.
#[derive(Debug, Default)]
pub struct InMemoryLinkState {
    memory_of: HashMap<NodeLinkId, u64>,
    slots: HashMap<(u64, FragmentDescriptor), Slot>,
    next_offset: HashMap<u64, u32>,
    next_sublink: HashMap<u64, u64>,
    capacity: HashMap<u64, usize>,
}

/// First sublink id [`InMemoryLinkState`] hands out on a memory (room for
/// initial portals below it).
pub const IN_MEMORY_FIRST_SUBLINK: u64 = 16;

impl InMemoryLinkState {
    /// Makes the two ends `a` and `b` of one node link share one memory.
    pub fn bind(&mut self, a: NodeLinkId, b: NodeLinkId) {
        let id = a.0;
        self.memory_of.insert(a, id);
        self.memory_of.insert(b, id);
    }

    fn memory(&self, link: NodeLinkId) -> u64 {
        self.memory_of.get(&link).copied().unwrap_or(link.0)
    }

    /// Adds an unmanaged state (an initial portal's fixed slot) at `state`.
    pub fn add_unmanaged(&mut self, link: NodeLinkId, state: FragmentDescriptor) {
        let m = self.memory(link);
        self.slots.insert(
            (m, state),
            Slot {
                status: LinkStatus::default(),
                refs: 0,
                managed: false,
            },
        );
    }

    /// Adds a managed state at `state` as its allocator would hand it over
    /// (two references), e.g. one a simulated peer allocated.
    pub fn add_allocated(&mut self, link: NodeLinkId, state: FragmentDescriptor) {
        let m = self.memory(link);
        self.slots.insert(
            (m, state),
            Slot {
                status: LinkStatus::default(),
                refs: 2,
                managed: true,
            },
        );
    }

    /// References held on a managed state (`None` once freed or unknown).
    pub fn refs(&self, link: NodeLinkId, state: FragmentDescriptor) -> Option<u32> {
        self.slots.get(&(self.memory(link), state)).map(|s| s.refs)
    }

    /// The node link is gone and its memory with it (every state in it;
    /// references handed over in lost messages can never be released).
    pub fn forget(&mut self, link: NodeLinkId) {
        let m = self.memory(link);
        self.slots.retain(|(mem, _), _| *mem != m);
    }

    /// Limits how many more states `link`'s memory can allocate.
    pub fn set_capacity(&mut self, link: NodeLinkId, states: usize) {
        let m = self.memory(link);
        self.capacity.insert(m, states);
    }

    /// Number of managed states still referenced (0 once every route is gone).
    pub fn live_states(&self) -> usize {
        self.slots.values().filter(|s| s.managed).count()
    }

    /// The status of a state, if it exists.
    pub fn status(&self, link: NodeLinkId, state: FragmentDescriptor) -> Option<LinkStatus> {
        self.slots
            .get(&(self.memory(link), state))
            .map(|s| s.status)
    }

    fn slot(&mut self, link: NodeLinkId, state: FragmentDescriptor) -> Option<&mut Slot> {
        let m = self.memory(link);
        self.slots.get_mut(&(m, state))
    }
}

impl LinkState for InMemoryLinkState {
    fn adopt(&mut self, link: NodeLinkId, state: FragmentDescriptor) -> bool {
        !state.is_null()
            && state.size >= LINK_STATE_SIZE
            && state.offset % 8 == 0
            && self
                .slot(link, state)
                .is_some_and(|s| !s.managed || s.refs > 0)
    }

    fn allocate(&mut self, link: NodeLinkId) -> Option<FragmentDescriptor> {
        let m = self.memory(link);
        if let Some(left) = self.capacity.get_mut(&m) {
            *left = left.checked_sub(1)?;
        }
        let offset = self.next_offset.entry(m).or_insert(4096);
        let state = FragmentDescriptor::new(1, *offset, LINK_STATE_SIZE);
        *offset += LINK_STATE_SIZE;
        self.slots.insert(
            (m, state),
            Slot {
                status: LinkStatus::default(),
                refs: 2,
                managed: true,
            },
        );
        Some(state)
    }

    fn allocate_sublinks(&mut self, link: NodeLinkId, count: u64) -> SublinkId {
        let m = self.memory(link);
        let next = self
            .next_sublink
            .entry(m)
            .or_insert(IN_MEMORY_FIRST_SUBLINK);
        let first = *next;
        *next += count;
        SublinkId(first)
    }

    fn set_side_stable(&mut self, link: NodeLinkId, state: FragmentDescriptor, side: LinkSide) {
        if let Some(s) = self.slot(link, state) {
            s.status.set_side_stable(side);
        }
    }

    fn try_lock(&mut self, link: NodeLinkId, state: FragmentDescriptor, side: LinkSide) -> bool {
        self.slot(link, state)
            .is_some_and(|s| s.status.try_lock(side))
    }

    fn try_lock_for_bypass(
        &mut self,
        link: NodeLinkId,
        state: FragmentDescriptor,
        side: LinkSide,
        source: NodeName,
    ) -> bool {
        self.slot(link, state)
            .is_some_and(|s| s.status.try_lock_for_bypass(side, source))
    }

    fn unlock(&mut self, link: NodeLinkId, state: FragmentDescriptor, side: LinkSide) {
        if let Some(s) = self.slot(link, state) {
            s.status.unlock(side);
        }
    }

    fn reset_waiting_bit(
        &mut self,
        link: NodeLinkId,
        state: FragmentDescriptor,
        side: LinkSide,
    ) -> bool {
        self.slot(link, state)
            .is_some_and(|s| s.status.reset_waiting_bit(side))
    }

    fn can_node_request_bypass(
        &mut self,
        link: NodeLinkId,
        state: FragmentDescriptor,
        our_side: LinkSide,
        requester: NodeName,
    ) -> bool {
        self.slot(link, state)
            .is_some_and(|s| s.status.can_node_request_bypass(our_side, requester))
    }

    fn release(&mut self, link: NodeLinkId, state: FragmentDescriptor) {
        let m = self.memory(link);
        if let Some(s) = self.slots.get_mut(&(m, state))
            && s.managed
        {
            s.refs = s.refs.saturating_sub(1);
            if s.refs == 0 {
                self.slots.remove(&(m, state));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: NodeName = NodeName { high: 7, low: 9 };

    #[test]
    fn try_lock_needs_both_sides_stable() {
        let mut s = LinkStatus::default();
        assert!(!s.try_lock(LinkSide::A));
        s.set_side_stable(LinkSide::A);
        assert!(!s.try_lock(LinkSide::A));
        assert_eq!(s.bits, 0x01 | 0x04, "waiting bit set instead");
        s.set_side_stable(LinkSide::B);
        assert!(s.reset_waiting_bit(LinkSide::A));
        assert!(!s.reset_waiting_bit(LinkSide::A));
        assert!(s.try_lock_for_bypass(LinkSide::A, N));
        assert!(!s.try_lock(LinkSide::B));
        assert!(s.can_node_request_bypass(LinkSide::B, N));
        assert!(!s.can_node_request_bypass(LinkSide::A, N));
        s.unlock(LinkSide::A);
        assert!(!s.can_node_request_bypass(LinkSide::B, N));
    }

    #[test]
    fn in_memory_refcounts_and_capacity() {
        let mut m = InMemoryLinkState::default();
        let (a, b) = (NodeLinkId(1), NodeLinkId(2));
        m.bind(a, b);
        m.set_capacity(a, 1);
        let st = m.allocate(a).unwrap();
        assert!(m.allocate(b).is_none());
        assert!(m.adopt(b, st));
        assert!(!m.adopt(b, FragmentDescriptor::NULL));
        assert_eq!(
            m.allocate_sublinks(a, 2),
            SublinkId(IN_MEMORY_FIRST_SUBLINK)
        );
        assert_eq!(
            m.allocate_sublinks(b, 1),
            SublinkId(IN_MEMORY_FIRST_SUBLINK + 2)
        );
        m.release(a, st);
        assert_eq!(m.live_states(), 1);
        m.release(b, st);
        assert_eq!(m.live_states(), 0);
    }
}
