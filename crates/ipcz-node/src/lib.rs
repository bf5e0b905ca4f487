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
//!   reduction (proxy bypass), over abstract links.
//! - [`link`]: NodeLinks, one per remote node, each with its memory.
//!
//! Connectors and the wire conversion join them in later steps.

#![forbid(unsafe_code)]

pub mod link;
pub mod memory;
pub mod node;
pub mod router;
pub mod sim;
