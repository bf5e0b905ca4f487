//! NodeLinkMemory: the shared-memory half of a node link (spec ipcz.md §5).
//!
//! Both nodes of a link map the same buffers and change them concurrently,
//! so everything here goes through the [`mojo_wire_kit::SharedMemory`] seam
//! (bounds- and alignment-checked atomics and copies) and treats every word
//! it loads as peer input: indices and sizes are validated before use, retry
//! loops are bounded by [`MAX_CAS_ATTEMPTS`], and a corrupt structure is a
//! [`MemoryError`], never a panic, a wild access or a hang.
//!
//! - [`NodeLinkMemory`]: the primary buffer (BufferId 0) and added buffers,
//!   the shared BufferId and SublinkId counters (§5.2), fragments (§5.5),
//!   parcel data in fragments (§5.7) and AddBlockBuffer both ways (§5.6).
//!   It never creates memory: when a pool runs dry it emits
//!   [`MemoryAction::CreateBlockBuffer`] and the caller hands a mapping back.
//! - [`BlockAllocator`]: the lock-free free list of §5.4 with the orderings
//!   of §5.9.
//! - [`RouterLinkState`]: every operation Chrome performs on a link's
//!   shared state (§5.3).
//!
//! Layouts (offsets, sizes, bit values) come from [`ipcz_wire::memory`].
//! Only the v1 id scheme exists here (the proxy never advertises mem_v2).
//!
//! ```
//! use ipcz_node::memory::{MemoryOptions, NodeLinkMemory, Resolved};
//! use ipcz_wire::types::{FragmentDescriptor, LinkSide};
//! use mojo_wire_kit::HeapMemory;
//!
//! // The broker creates and initializes the primary buffer...
//! let region = HeapMemory::new(131072);
//! NodeLinkMemory::initialize_primary_buffer(&region)?;
//! let mut memory = NodeLinkMemory::new(region, MemoryOptions::default())?;
//!
//! // ...either side allocates sublinks and RouterLinkStates for new links...
//! assert_eq!(memory.allocate_sublink_ids(2)?.0, 12);
//! let state = memory.allocate_router_link_state()?.expect("a free block");
//! assert_eq!(state, FragmentDescriptor::new(0, 1088, 64));
//! if let Resolved::Ready(s) = memory.router_link_state(state)? {
//!     s.set_side_stable(LinkSide::A)?;
//! }
//!
//! // ...and parcel data travels in fragments the receiver copies out and frees.
//! let fragment = memory.allocate_parcel_data(b"hello")?.expect("a free block");
//! assert_eq!(memory.take_parcel_data(fragment)?, Resolved::Ready(b"hello".to_vec()));
//! # Ok::<(), ipcz_node::memory::MemoryError>(())
//! ```

mod block_allocator;
mod buffer_pool;
mod error;
mod fragment;
mod link_state;
mod node_link_memory;

pub use block_allocator::BlockAllocator;
pub use error::MemoryError;
pub use fragment::{
    Resolved, fragment_range, read_parcel_data, read_parcel_data_into, write_parcel_data,
};
pub use link_state::RouterLinkState;
pub use node_link_memory::{
    AddedBlockBuffer, FreeOutcome, MemoryAction, MemoryOptions, NodeLinkMemory, ReleaseOutcome,
};

/// Most attempts of one compare-and-swap loop on a shared word. Each failed
/// attempt means the other side changed the word, i.e. made progress of its
/// own, so a real peer never gets near this; a hostile one that rewrites the
/// word forever gets [`MemoryError::Contention`] instead of a hang.
pub const MAX_CAS_ATTEMPTS: usize = 1 << 16;

/// Most buffers (the primary one included) one link's memory registers,
/// whoever adds them. Chrome adds at most 2 MiB per block size for parcel
/// data, plus 64 KiB buffers for RouterLinkStates on demand.
pub const MAX_BLOCK_BUFFERS_PER_LINK: usize = 1024;

/// Most bytes of added buffers (both sides' together) one link's memory
/// maps. Chrome's own buffers are at most 8 MiB (eight 1 MiB blocks) and
/// its automatic growth stops at 2 MiB per block size.
pub const MAX_ADDED_BUFFER_BYTES_PER_LINK: usize = 256 * 1024 * 1024;

/// Most fragments kept waiting to be freed until their buffer arrives.
pub const MAX_DEFERRED_FREES: usize = 4096;
