//! The ports layer of legacy Mojo Core (spec `legacy-core.md` §4.4–§4.8):
//! message pipes as rings of ports, per-port sequence numbers, ports that
//! move between nodes inside user messages (Buffering, Proxying, proxy
//! removal through ObserveProxy / ObserveProxyAck), closure with last
//! sequence numbers, read acknowledgements, merges and peer loss.
//!
//! [`Node`] is the state machine of one node. It speaks the owned [`Event`]
//! model; the node-channel layer converts to and from the wire crate's
//! borrowed events in one place.
//!
//! Compact-header mode only (libchrome): no sender verification, so
//! `UpdatePreviousPeer` is ignored and closed ports are deleted at once.
//!
//! Where the behaviour deliberately differs from Chromium's `node.cc`
//! (nothing here changes what a correct peer sees on the wire):
//! - events for this node's own ports go through a FIFO drained before each
//!   call returns, not through recursion; an event that travels further
//!   round local ports than there are ports (only a forged one can) is
//!   dropped as [`Error::RoutingLoop`];
//! - a stale or duplicate sequence number is refused with a typed error
//!   instead of blocking the queue, and the reorder queue is bounded
//!   ([`Limits`]);
//! - a port whose peer was lost states the last number it will still
//!   forward (in its descriptor and in a merge's closure), and an incoming
//!   descriptor or closure with a last number below what already arrived
//!   (Chromium's form after a loss) means "nothing more comes";
//! - a user message that would create its own destination port (which would
//!   then sit in its own queue forever) is refused;
//! - proxies that only feed a deleted local port are deleted with it, a merge
//!   never keeps a proxy into a closed port, and a peer-lost port announces
//!   its death (a dead-proxy broadcast) when it closes, so proxies that
//!   Chromium strands after a node loss are freed. One case remains, as in
//!   Chromium: with three or more nodes, a proxy whose way round the ring ran
//!   through the lost node, feeding a port elsewhere, cannot be reached.
//!   The driver must call [`Node::lost_node`] again for every event it cannot
//!   deliver (see [`Node::poll_transmit`]);
//! - the broker's direct hand-off shortcut (§4.10) is available but off by
//!   default ([`Node::set_direct_handoff`]); it is only valid for a broker
//!   with a single client.

mod error;
mod event;
mod limits;
pub mod names;
mod node;
mod port;
mod queue;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use error::{Error, OpError};
pub use event::{
    Event, EventKind, INITIAL_SEQUENCE_NUM, INVALID_SEQUENCE_NUM, PortDescriptor, UserMessage,
};
pub use limits::{
    DEFAULT_MAX_CONTROL_QUEUE, DEFAULT_MAX_PORTS, DEFAULT_MAX_PORTS_PER_MESSAGE,
    DEFAULT_MAX_QUEUED_MESSAGES, DEFAULT_MAX_REORDER_WINDOW, Limits,
};
pub use node::{Node, Notification, PortStatus, ReceivedMessage};
pub use port::PortState;
