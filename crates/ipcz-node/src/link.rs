//! NodeLinks (spec §4, §5): one transport to one remote node, with its
//! names, link side, protocol version and NodeLinkMemory, and the
//! [`LinkState`](crate::router::LinkState) answers the router table gets
//! from those memories.
//!
//! A [`NodeLink`] is built from plain [`LinkParams`], whatever handshake
//! produced them (the connectors live elsewhere): both ends of a link in a
//! test can be made over one shared primary buffer.
//!
//! ```
//! use ipcz_node::link::{LinkParams, NodeLink};
//! use ipcz_node::router::NodeLinkId;
//! use ipcz_wire::types::{LinkSide, NodeName};
//! use mojo_wire_kit::HeapMemory;
//!
//! let broker = NodeName { high: 1, low: 1 };
//! let client = NodeName { high: 2, low: 2 };
//! let params = LinkParams::new(broker, client, LinkSide::A, HeapMemory::new(131072))
//!     .initializing_primary_buffer();
//! let link = NodeLink::new(NodeLinkId(1), params)?;
//! assert_eq!(link.remote_name(), client);
//! assert_eq!(link.memory().allocate_sublink_ids(1)?.0, 12);
//! # Ok::<(), ipcz_node::memory::MemoryError>(())
//! ```

mod node_link;
mod states;

pub use node_link::{LinkLimits, LinkParams, NodeLink};
pub use states::Links;

/// Most parcels that arrived on one link and are still queued in this node
/// (not yet taken by the application, forwarded or dropped) before the link
/// is dropped. Counted as parcels come and go, so the check costs the same
/// with one pipe or ten thousand.
pub const MAX_QUEUED_PARCELS_PER_LINK: usize = 65_536;

/// Most fds one link's messages may leave alive in this node at a time
/// (boxed driver objects in queued parcels, buffers being mapped).
pub const MAX_FDS_PER_LINK: usize = 4096;

/// Most sublinks (router links) registered on one link.
pub const MAX_SUBLINKS_PER_LINK: usize = 16_384;

/// Most parcels held back per link: waiting for the buffer their data is
/// in, or for the rest of their subparcels.
pub const MAX_HELD_PARCELS_PER_LINK: usize = 1024;

/// Most RouterLinkState operations remembered for states whose buffer has
/// not arrived yet.
pub const MAX_PENDING_STATE_OPS_PER_LINK: usize = 4096;
