//! The node's links by id and by remote name, answering the router table's
//! RouterLinkState operations ([`LinkState`]) from each link's memory.
//!
//! The trait's operations cannot fail; a [`MemoryError`] (the peer corrupted
//! the shared state) is recorded against its link, and the node drops that
//! link once the router call returns.

use std::collections::BTreeMap;

use ipcz_wire::types::{self, FragmentDescriptor, NodeName, SublinkId};
use mojo_wire_kit::SharedMemory;

use super::NodeLink;
use super::node_link::StateOp;
use crate::memory::{MemoryError, Resolved, RouterLinkState};
use crate::router::{LinkSide, LinkState, NodeLinkId};

/// Every link of one node.
#[derive(Debug)]
pub struct Links<M> {
    links: BTreeMap<NodeLinkId, NodeLink<M>>,
    by_name: BTreeMap<NodeName, NodeLinkId>,
    failures: Vec<(NodeLinkId, MemoryError)>,
}

impl<M> Default for Links<M> {
    fn default() -> Self {
        Self {
            links: BTreeMap::new(),
            by_name: BTreeMap::new(),
            failures: Vec::new(),
        }
    }
}

pub(crate) fn wire_side(side: LinkSide) -> types::LinkSide {
    match side {
        LinkSide::A => types::LinkSide::A,
        LinkSide::B => types::LinkSide::B,
    }
}

impl<M: SharedMemory> Links<M> {
    /// Adds `link`; `false` (and nothing changes) if its id or its remote
    /// node already has one.
    pub fn insert(&mut self, link: NodeLink<M>) -> bool {
        if self.links.contains_key(&link.id()) || self.by_name.contains_key(&link.remote_name()) {
            return false;
        }
        self.by_name.insert(link.remote_name(), link.id());
        self.links.insert(link.id(), link);
        true
    }

    /// Removes link `id`.
    pub fn remove(&mut self, id: NodeLinkId) -> Option<NodeLink<M>> {
        let link = self.links.remove(&id)?;
        self.by_name.remove(&link.remote_name());
        self.failures.retain(|(l, _)| *l != id);
        Some(link)
    }

    /// Link `id`.
    pub fn get(&self, id: NodeLinkId) -> Option<&NodeLink<M>> {
        self.links.get(&id)
    }

    /// Link `id`, mutably.
    pub fn get_mut(&mut self, id: NodeLinkId) -> Option<&mut NodeLink<M>> {
        self.links.get_mut(&id)
    }

    /// The link to node `name`.
    pub fn by_name(&self, name: NodeName) -> Option<NodeLinkId> {
        self.by_name.get(&name).copied()
    }

    /// Every link id.
    pub fn ids(&self) -> impl Iterator<Item = NodeLinkId> + '_ {
        self.links.keys().copied()
    }

    /// Every link, in id order, for changing.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (NodeLinkId, &mut NodeLink<M>)> + '_ {
        self.links.iter_mut().map(|(id, l)| (*id, l))
    }

    /// Number of links.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether there is no link.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Records that `link` must be dropped for `error`.
    pub(crate) fn fail(&mut self, link: NodeLinkId, error: MemoryError) {
        if self.links.contains_key(&link) && !self.failures.iter().any(|(l, _)| *l == link) {
            self.failures.push((link, error));
        }
    }

    /// The failures recorded since the last call.
    pub(crate) fn take_failures(&mut self) -> Vec<(NodeLinkId, MemoryError)> {
        std::mem::take(&mut self.failures)
    }

    /// Runs `f` on the RouterLinkState `state` of `link` if its buffer is
    /// mapped; `pending` if it is not; records errors.
    fn with_state<T>(
        &mut self,
        link: NodeLinkId,
        state: FragmentDescriptor,
        pending: impl FnOnce(&mut NodeLink<M>) -> Result<T, MemoryError>,
        f: impl FnOnce(RouterLinkState<'_, M>) -> Result<T, MemoryError>,
        fallback: T,
    ) -> T {
        let Some(l) = self.links.get_mut(&link) else {
            return fallback;
        };
        let result = match l.memory().router_link_state(state) {
            Ok(Resolved::Ready(s)) => f(s),
            Ok(Resolved::Pending(_)) => pending(l),
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => v,
            Err(e) => {
                self.fail(link, e);
                fallback
            }
        }
    }
}

impl<M: SharedMemory> LinkState for Links<M> {
    fn adopt(&mut self, link: NodeLinkId, state: FragmentDescriptor) -> bool {
        self.links
            .get(&link)
            .is_some_and(|l| l.memory().router_link_state(state).is_ok())
    }

    fn allocate(&mut self, link: NodeLinkId) -> Option<FragmentDescriptor> {
        let l = self.links.get_mut(&link)?;
        match l.memory_mut().allocate_router_link_state() {
            Ok(state) => state,
            Err(e) => {
                self.fail(link, e);
                None
            }
        }
    }

    fn allocate_sublinks(&mut self, link: NodeLinkId, count: u64) -> SublinkId {
        let Some(l) = self.links.get(&link) else {
            return SublinkId(u64::MAX);
        };
        match l.memory().allocate_sublink_ids(count) {
            Ok(id) => id,
            Err(e) => {
                self.fail(link, e);
                // The link is dropped right after this call; the id is never used.
                SublinkId(u64::MAX)
            }
        }
    }

    fn set_side_stable(&mut self, link: NodeLinkId, state: FragmentDescriptor, side: LinkSide) {
        let side = wire_side(side);
        self.with_state(
            link,
            state,
            |l| l.defer_state_op(state, StateOp::SetSideStable(side)),
            |s| s.set_side_stable(side),
            (),
        );
    }

    fn try_lock(&mut self, link: NodeLinkId, state: FragmentDescriptor, side: LinkSide) -> bool {
        let side = wire_side(side);
        self.with_state(link, state, |_| Ok(false), |s| s.try_lock(side), false)
    }

    fn try_lock_for_bypass(
        &mut self,
        link: NodeLinkId,
        state: FragmentDescriptor,
        side: LinkSide,
        source: NodeName,
    ) -> bool {
        let side = wire_side(side);
        self.with_state(
            link,
            state,
            |_| Ok(false),
            |s| s.try_lock_for_bypass(side, source),
            false,
        )
    }

    fn unlock(&mut self, link: NodeLinkId, state: FragmentDescriptor, side: LinkSide) {
        let side = wire_side(side);
        self.with_state(
            link,
            state,
            |l| l.defer_state_op(state, StateOp::Unlock(side)),
            |s| s.unlock(side),
            (),
        );
    }

    fn reset_waiting_bit(
        &mut self,
        link: NodeLinkId,
        state: FragmentDescriptor,
        side: LinkSide,
    ) -> bool {
        let side = wire_side(side);
        self.with_state(
            link,
            state,
            |_| Ok(false),
            |s| s.reset_waiting_bit(side),
            false,
        )
    }

    fn can_node_request_bypass(
        &mut self,
        link: NodeLinkId,
        state: FragmentDescriptor,
        our_side: LinkSide,
        requester: NodeName,
    ) -> bool {
        let side = wire_side(our_side);
        self.with_state(
            link,
            state,
            |_| Ok(false),
            |s| s.can_node_request_bypass(side, requester),
            false,
        )
    }

    fn release(&mut self, link: NodeLinkId, state: FragmentDescriptor) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        let result = match l.memory().router_link_state(state) {
            Ok(Resolved::Pending(_)) => l.defer_state_op(state, StateOp::Release),
            Ok(Resolved::Ready(_)) => l.memory_mut().release_router_link_state(state).map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.fail(link, e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::LinkParams;
    use crate::sim::SharedHeap;
    use ipcz_wire::memory::primary;

    fn name(n: u64) -> NodeName {
        NodeName { high: 9, low: n }
    }

    fn links() -> Links<SharedHeap> {
        let mut links = Links::default();
        for i in 1..=2 {
            let params = LinkParams::new(
                name(0),
                name(i),
                types::LinkSide::A,
                SharedHeap::new(primary::SIZE),
            )
            .initializing_primary_buffer();
            assert!(links.insert(NodeLink::new(NodeLinkId(i), params).unwrap()));
        }
        links
    }

    #[test]
    fn links_are_keyed_by_id_and_remote_name() {
        let mut l = links();
        assert_eq!(l.len(), 2);
        assert_eq!(l.by_name(name(2)), Some(NodeLinkId(2)));
        let dup = LinkParams::new(
            name(0),
            name(2),
            types::LinkSide::A,
            SharedHeap::new(primary::SIZE),
        )
        .initializing_primary_buffer();
        assert!(!l.insert(NodeLink::new(NodeLinkId(3), dup).unwrap()));
        assert!(l.remove(NodeLinkId(2)).is_some());
        assert_eq!(l.by_name(name(2)), None);
        assert_eq!(l.ids().collect::<Vec<_>>(), vec![NodeLinkId(1)]);
        assert!(!l.is_empty());
    }

    #[test]
    fn link_state_calls_reach_the_links_memory() {
        let mut l = links();
        let link = NodeLinkId(1);
        let state = l.allocate(link).unwrap();
        assert!(l.adopt(link, state));
        assert!(!l.adopt(link, FragmentDescriptor::NULL));
        l.set_side_stable(link, state, LinkSide::A);
        assert!(!l.try_lock(link, state, LinkSide::A), "B is not stable yet");
        l.set_side_stable(link, state, LinkSide::B);
        assert!(l.reset_waiting_bit(link, state, LinkSide::A));
        assert!(l.try_lock_for_bypass(link, state, LinkSide::A, name(5)));
        assert!(l.can_node_request_bypass(link, state, LinkSide::B, name(5)));
        l.unlock(link, state, LinkSide::A);
        assert!(!l.can_node_request_bypass(link, state, LinkSide::B, name(5)));
        assert_eq!(l.allocate_sublinks(link, 2), SublinkId(12));
        l.release(link, state);
        l.release(link, state);
        // Unknown links answer without effect.
        assert!(!l.try_lock(NodeLinkId(9), state, LinkSide::A));
        assert!(l.allocate(NodeLinkId(9)).is_none());
        assert!(l.take_failures().is_empty());
    }

    #[test]
    fn corrupt_shared_state_is_recorded_against_its_link() {
        let mut l = links();
        let link = NodeLinkId(2);
        let state = l.allocate(link).unwrap();
        // The peer zeroes the shared sublink counter: no valid id is left.
        l.get(link)
            .unwrap()
            .memory()
            .primary()
            .heap()
            .store_u64(8, 0, std::sync::atomic::Ordering::Relaxed)
            .unwrap();
        assert_eq!(l.allocate_sublinks(link, 1), SublinkId(u64::MAX));
        let failures = l.take_failures();
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, link);
        l.release(link, state);
    }

    #[test]
    fn sides_convert_to_the_wire() {
        assert_eq!(wire_side(LinkSide::A), types::LinkSide::A);
        assert_eq!(wire_side(LinkSide::B), types::LinkSide::B);
    }
}
