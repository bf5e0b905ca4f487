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
