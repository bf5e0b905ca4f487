//! One NodeLink: names, side, version, memory, message counter, and the
//! RouterLinkState operations waiting for a buffer that has not arrived.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ipcz_wire::types::{BufferId, FragmentDescriptor, LinkSide, NodeName, NodeType};
use mojo_wire_kit::SharedMemory;

use super::{
    MAX_FDS_PER_LINK, MAX_HELD_PARCELS_PER_LINK, MAX_PENDING_STATE_OPS_PER_LINK,
    MAX_QUEUED_PARCELS_PER_LINK, MAX_SUBLINKS_PER_LINK,
};
use crate::memory::{MemoryError, MemoryOptions, NodeLinkMemory, Resolved};
use crate::router::NodeLinkId;

/// What a handshake (or an introduction) established: everything needed to
/// build a [`NodeLink`].
#[derive(Debug)]
pub struct LinkParams<M> {
    /// This node's name.
    pub local_name: NodeName,
    /// The remote node's name.
    pub remote_name: NodeName,
    /// This node's side of the link (A for the broker, §4.2).
    pub side: LinkSide,
    /// The remote node's protocol version (0 from Chrome).
    pub remote_protocol_version: u32,
    /// What the remote node is: the link to a broker is where a
    /// non-broker asks for introductions (§7.2), and only a broker may
    /// introduce (§7.3).
    pub remote_node_type: NodeType,
    /// The link's primary buffer (BufferId 0), already mapped.
    pub primary_buffer: M,
    /// This side created the primary buffer and initializes it before use
    /// (the broker, or whoever introduced the nodes, does it in Chrome).
    pub initialize_primary_buffer: bool,
    /// How the link's memory may grow.
    pub memory_options: MemoryOptions,
}

impl<M> LinkParams<M> {
    /// Parameters with version 0, default memory options, and a primary
    /// buffer the other side (or someone else) already initialized.
    pub fn new(local_name: NodeName, remote_name: NodeName, side: LinkSide, primary: M) -> Self {
        Self {
            local_name,
            remote_name,
            side,
            remote_protocol_version: 0,
            remote_node_type: NodeType::NORMAL,
            primary_buffer: primary,
            initialize_primary_buffer: false,
            memory_options: MemoryOptions::default(),
        }
    }

    /// The same, with the remote node a broker (this side's broker link).
    pub fn toward_broker(mut self) -> Self {
        self.remote_node_type = NodeType::BROKER;
        self
    }

    /// The same, with this side initializing the primary buffer.
    pub fn initializing_primary_buffer(mut self) -> Self {
        self.initialize_primary_buffer = true;
        self
    }
}

/// The limits a node enforces per link; exceeding one is a typed error
/// that drops the link. Defaults are the named constants of [`super`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkLimits {
    /// See [`MAX_QUEUED_PARCELS_PER_LINK`].
    pub max_queued_parcels: usize,
    /// See [`MAX_FDS_PER_LINK`].
    pub max_fds: usize,
    /// See [`MAX_SUBLINKS_PER_LINK`].
    pub max_sublinks: usize,
    /// See [`MAX_HELD_PARCELS_PER_LINK`].
    pub max_held_parcels: usize,
}

impl Default for LinkLimits {
    fn default() -> Self {
        Self {
            max_queued_parcels: MAX_QUEUED_PARCELS_PER_LINK,
            max_fds: MAX_FDS_PER_LINK,
            max_sublinks: MAX_SUBLINKS_PER_LINK,
            max_held_parcels: MAX_HELD_PARCELS_PER_LINK,
        }
    }
}

/// A RouterLinkState operation on a state whose buffer is still unknown,
/// applied once AddBlockBuffer for it arrives (§5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StateOp {
    SetSideStable(LinkSide),
    Unlock(LinkSide),
    Release,
}

/// One transport to one remote node (spec §4): names, side, protocol
/// version, the link-level message counter and the link's memory.
/// Sublinks are registered in the node's router table.
#[derive(Debug)]
pub struct NodeLink<M> {
    id: NodeLinkId,
    local_name: NodeName,
    remote_name: NodeName,
    side: LinkSide,
    remote_protocol_version: u32,
    remote_node_type: NodeType,
    memory: NodeLinkMemory<M>,
    next_message_sequence: u64,
    /// fds of driver objects that arrived on this link and are still alive.
    fds_alive: Arc<AtomicUsize>,
    /// Parcels that arrived on this link and are still queued in this node.
    queued_parcels: Arc<AtomicUsize>,
    pending_state_ops: Vec<(FragmentDescriptor, StateOp)>,
}

impl<M: SharedMemory> NodeLink<M> {
    /// A link named `id` in its node, from `params` (initializing the
    /// primary buffer first if asked to).
    pub fn new(id: NodeLinkId, params: LinkParams<M>) -> Result<Self, MemoryError> {
        if params.initialize_primary_buffer {
            NodeLinkMemory::initialize_primary_buffer(&params.primary_buffer)?;
        }
        Ok(Self {
            id,
            local_name: params.local_name,
            remote_name: params.remote_name,
            side: params.side,
            remote_protocol_version: params.remote_protocol_version,
            remote_node_type: params.remote_node_type,
            memory: NodeLinkMemory::new(params.primary_buffer, params.memory_options)?,
            next_message_sequence: 0,
            fds_alive: Arc::new(AtomicUsize::new(0)),
            queued_parcels: Arc::new(AtomicUsize::new(0)),
            pending_state_ops: Vec::new(),
        })
    }

    /// The link's id in its node.
    pub fn id(&self) -> NodeLinkId {
        self.id
    }

    /// This node's name.
    pub fn local_name(&self) -> NodeName {
        self.local_name
    }

    /// The remote node's name.
    pub fn remote_name(&self) -> NodeName {
        self.remote_name
    }

    /// This node's side of the link.
    pub fn side(&self) -> LinkSide {
        self.side
    }

    /// The remote node's protocol version.
    pub fn remote_protocol_version(&self) -> u32 {
        self.remote_protocol_version
    }

    /// What the remote node is.
    pub fn remote_node_type(&self) -> NodeType {
        self.remote_node_type
    }

    /// Whether the remote node is a broker.
    pub fn remote_is_broker(&self) -> bool {
        self.remote_node_type == NodeType::BROKER
    }

    /// The link's shared memory.
    pub fn memory(&self) -> &NodeLinkMemory<M> {
        &self.memory
    }

    /// The link's shared memory, for allocations.
    pub fn memory_mut(&mut self) -> &mut NodeLinkMemory<M> {
        &mut self.memory
    }

    /// The header sequence number for the next message sent (§2.8).
    pub fn take_message_sequence(&mut self) -> u64 {
        let n = self.next_message_sequence;
        self.next_message_sequence = n.wrapping_add(1);
        n
    }

    /// fds from this link's messages still alive in the node.
    pub fn fds_alive(&self) -> usize {
        self.fds_alive.load(Ordering::Relaxed)
    }

    /// The shared counter behind [`Self::fds_alive`].
    pub(crate) fn fd_counter(&self) -> &Arc<AtomicUsize> {
        &self.fds_alive
    }

    /// Parcels from this link's messages still queued in the node (not yet
    /// sent on, taken by the application, or dropped).
    pub fn queued_parcels(&self) -> usize {
        self.queued_parcels.load(Ordering::Relaxed)
    }

    /// The shared counter behind [`Self::queued_parcels`].
    pub(crate) fn queued_parcel_counter(&self) -> &Arc<AtomicUsize> {
        &self.queued_parcels
    }

    /// RouterLinkState operations waiting for their buffer.
    pub fn pending_state_ops(&self) -> usize {
        self.pending_state_ops.len()
    }

    /// Remembers `op` on a state whose buffer is unknown.
    pub(crate) fn defer_state_op(
        &mut self,
        state: FragmentDescriptor,
        op: StateOp,
    ) -> Result<(), MemoryError> {
        if self.pending_state_ops.len() >= MAX_PENDING_STATE_OPS_PER_LINK {
            return Err(MemoryError::TooManyPendingStateOps {
                limit: MAX_PENDING_STATE_OPS_PER_LINK,
            });
        }
        self.pending_state_ops.push((state, op));
        Ok(())
    }

    /// Applies the operations that waited for buffer `id` (just registered).
    pub(crate) fn apply_pending_state_ops(&mut self, id: BufferId) -> Result<(), MemoryError> {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_state_ops)
            .into_iter()
            .partition(|(state, _)| state.buffer_id == id);
        self.pending_state_ops = waiting;
        for (state, op) in ready {
            match op {
                StateOp::Release => {
                    self.memory.release_router_link_state(state)?;
                }
                StateOp::SetSideStable(side) => {
                    if let Resolved::Ready(s) = self.memory.router_link_state(state)? {
                        s.set_side_stable(side)?;
                    }
                }
                StateOp::Unlock(side) => {
                    if let Resolved::Ready(s) = self.memory.router_link_state(state)? {
                        s.unlock(side)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SharedHeap;
    use ipcz_wire::memory::primary;

    const A: NodeName = NodeName { high: 1, low: 2 };
    const B: NodeName = NodeName { high: 3, low: 4 };

    fn link(initialize: bool) -> Result<NodeLink<SharedHeap>, MemoryError> {
        let mut params = LinkParams::new(A, B, LinkSide::A, SharedHeap::new(primary::SIZE));
        params.initialize_primary_buffer = initialize;
        NodeLink::new(NodeLinkId(7), params)
    }

    #[test]
    fn parameters_are_kept_and_the_primary_buffer_initialized_on_request() {
        let mut l = link(true).unwrap();
        assert_eq!(
            (l.id(), l.local_name(), l.remote_name(), l.side()),
            (NodeLinkId(7), A, B, LinkSide::A)
        );
        assert_eq!(l.remote_protocol_version(), 0);
        assert_eq!(
            l.memory().allocate_sublink_ids(2).unwrap(),
            ipcz_wire::types::SublinkId(12)
        );
        assert_eq!(l.take_message_sequence(), 0);
        assert_eq!(l.take_message_sequence(), 1);
        // Not initialized: the counters are zero, which no id may be.
        assert!(
            link(false)
                .unwrap()
                .memory()
                .allocate_sublink_ids(1)
                .is_err()
        );
        let small = LinkParams::new(A, B, LinkSide::B, SharedHeap::new(4096));
        assert!(NodeLink::new(NodeLinkId(1), small).is_err());
    }

    #[test]
    fn state_ops_wait_for_their_buffer_and_are_bounded() {
        let mut l = link(true).unwrap();
        let pending = FragmentDescriptor::new(5, 64, 64);
        l.defer_state_op(pending, StateOp::SetSideStable(LinkSide::A))
            .unwrap();
        l.defer_state_op(FragmentDescriptor::new(6, 64, 64), StateOp::Release)
            .unwrap();
        assert_eq!(l.pending_state_ops(), 2);
        // Buffer 5 never arrives in this test: applying buffer 6's ops on
        // an unknown buffer fails softly (still pending) and leaves 5's.
        l.apply_pending_state_ops(BufferId(6)).unwrap();
        assert_eq!(l.pending_state_ops(), 1);
        for _ in 1..MAX_PENDING_STATE_OPS_PER_LINK {
            l.defer_state_op(pending, StateOp::Release).unwrap();
        }
        assert!(l.defer_state_op(pending, StateOp::Release).is_err());
    }

    #[test]
    fn fd_counter_starts_at_zero() {
        let l = link(true).unwrap();
        assert_eq!(l.fds_alive(), 0);
        l.fd_counter().fetch_add(3, Ordering::Relaxed);
        assert_eq!(l.fds_alive(), 3);
    }
}
