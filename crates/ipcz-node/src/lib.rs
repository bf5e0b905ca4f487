//! The sans-IO ipcz node: the half of `mojo_proxy` that faces a Mojo+ipcz host.
//!
//! It is built in layers, each a state machine that takes events in and
//! returns actions out, with no sockets, clocks or threads:
//!
//! - [`memory`]: NodeLinkMemory, the shared-memory half of a node link
//!   (block allocation, fragments, RouterLinkState), reached only through
//!   the [`mojo_wire_kit::SharedMemory`] seam, so tests use heap memory and
//!   the proxy a real mapping;
//! - [`router`]: routers and parcels, in-order delivery, closure and route
//!   reduction (proxy bypass), over abstract links;
//! - [`link`]: NodeLinks, one per remote node, each with its memory, built
//!   from plain parameters whatever handshake produced them;
//! - [`node`]: the [`Node`](node::Node): several links, the router table
//!   and the conversion between frames and router operations, behind a
//!   portal API (open, put, get, close, status) and `handle_frame` /
//!   `poll_transmit` / `poll_event`;
//! - [`sim`]: helpers for in-memory simulations.
//!
//! - [`data_pipe`]: the producer and consumer ends of MojoIpcz data pipes
//!   over their shared ring, with the control-portal counts as values.
//!
//! - [`session`]: a connector of `mojo-invitation` (the handshakes of §4)
//!   composed with a node, so one value runs a socket from its first
//!   greeting on.
//!
//! Two nodes, one link, one parcel (with a boxed fd it would be the same
//! call, the fds riding in [`node::Transmit::fds`]):
//!
//! ```
//! use ipcz_node::link::LinkParams;
//! use ipcz_node::node::{Node, NodeConfig, NodeEvent};
//! use ipcz_node::sim::SharedHeap;
//! use ipcz_wire::types::{LinkSide, NodeName};
//!
//! let broker = NodeName { high: 1, low: 1 };
//! let client = NodeName { high: 2, low: 2 };
//! let primary = SharedHeap::new(ipcz_wire::memory::primary::SIZE);
//! let mut a = Node::new(broker, NodeConfig::default());
//! let mut b = Node::new(client, NodeConfig::default());
//! let la = a.add_link(
//!     LinkParams::new(broker, client, LinkSide::A, primary.clone()).initializing_primary_buffer(),
//! )?;
//! let lb = b.add_link(LinkParams::new(client, broker, LinkSide::B, primary))?;
//! let pa = a.open_initial_portals(la, 2, 2)?;
//! let pb = b.open_initial_portals(lb, 2, 2)?;
//!
//! a.put(pa[1], b"hello".to_vec(), Vec::new()).unwrap();
//! a.close(pa[1]).unwrap();
//! while let Some(t) = a.poll_transmit() {
//!     b.handle_frame(lb, &t.bytes, t.fds)?; // the caller's socket in between
//!     a.recycle(t.bytes);
//! }
//! assert!(matches!(b.poll_event(), Some(NodeEvent::Readable { .. })));
//! assert_eq!(b.get(pb[1]).unwrap().unwrap().data, b"hello");
//! assert!(b.status(pb[1]).unwrap().dead, "peer closed, all read");
//! # Ok::<(), ipcz_node::node::NodeError>(())
//! ```

#![forbid(unsafe_code)]

mod account;
pub mod data_pipe;
#[doc(hidden)]
pub mod fuzzing;
pub mod link;
pub mod memory;
pub mod node;
pub mod router;
pub mod session;
pub mod sim;
