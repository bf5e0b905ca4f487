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
//! Both header modes. In the compact one (libchrome) there is no sender
//! verification: `UpdatePreviousPeer` is neither sent nor obeyed. With
//! [`Node::set_sender_verification`] (the desktop profile, §4.9) every event
//! a port sends carries its name and its per-port control sequence number
//! ([`Sender`], from [`Node::poll_transmit_with_sender`]; restarting at 1
//! whenever the port's peer changes), `UpdatePreviousPeer` is sent when a
//! port becomes a proxy, is merged or is removed, and events reach a port
//! only from its expected sender and in that sender's order (the others
//! wait, bounded). In both modes closed ports are deleted at once (Chromium
//! keeps a closed port whose peer died until an acknowledgement; an event
//! that then finds no port is ignored instead).
//!
//! Where the behaviour deliberately differs from Chromium's `node.cc`
//! (nothing here changes what a correct peer sees on the wire):
//! - events for this node's own ports go through a FIFO drained before each
//!   call returns, not through recursion; an event that travels further
//!   round local ports than there are ports (only a forged one can) is
//!   dropped as [`Error::RoutingLoop`];
//! - a stale or duplicate sequence number is refused with a typed error
//!   instead of blocking the queue (before the message's ports are looked
//!   at: a replayed message with ports is a duplicate, not a name clash),
//!   and the reorder queue is bounded ([`Limits`]);
//! - an ObserveProxy that reaches a port whose peer is already the proxy's
//!   target (a replayed copy) is refused ([`Error::StaleObserveProxy`])
//!   instead of being forwarded round the ring forever;
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
//!
//! Two nodes joined by a merge (as an invitation attachment is, §3.5), then
//! a message each way; the loop in `pump` is what a driver does with real
//! channels:
//!
//! ```
//! use mojo_legacy_node::ports::{names, Node};
//! use mojo_wire_kit::SeededRandom;
//!
//! fn pump(a: &mut Node<&'static str>, b: &mut Node<&'static str>) {
//!     loop {
//!         let mut moved = false;
//!         while let Some((_to, event)) = a.poll_transmit() {
//!             b.handle_event(a.name(), event).unwrap();
//!             moved = true;
//!         }
//!         while let Some((_to, event)) = b.poll_transmit() {
//!             a.handle_event(b.name(), event).unwrap();
//!             moved = true;
//!         }
//!         if !moved {
//!             return;
//!         }
//!     }
//! }
//!
//! let mut broker = Node::new(names::node_name(1, 1), SeededRandom::new(1));
//! let mut client = Node::new(names::node_name(2, 2), SeededRandom::new(2));
//!
//! // Broker: the handle A and the reserved port B. Client: P0 and the
//! // connector P1 it names in REQUEST_PORT_MERGE.
//! let (a, b) = broker.create_pipe().unwrap();
//! let (p0, p1) = client.create_merge_pipe().unwrap();
//! broker.send_message(a, "written before the merge", vec![]).unwrap();
//! broker.merge_with_remote(b, client.name(), p1).unwrap();
//! pump(&mut broker, &mut client);
//!
//! // The proxies are gone: A and P0 are direct peers.
//! assert_eq!(broker.peer_of(a), Some((client.name(), p0)));
//! assert_eq!(client.port_count(), 1);
//!
//! let m = client.get_message(p0).unwrap().unwrap();
//! assert_eq!(m.payload, "written before the merge");
//! client.send_message(p0, "hello", vec![]).unwrap();
//! pump(&mut broker, &mut client);
//! assert_eq!(broker.get_message(a).unwrap().unwrap().payload, "hello");
//!
//! broker.close_port(a).unwrap();
//! pump(&mut broker, &mut client);
//! assert!(client.get_message(p0).is_err()); // peer closed
//! client.close_port(p0).unwrap();
//! pump(&mut broker, &mut client);
//! assert_eq!(broker.port_count() + client.port_count(), 0);
//! ```

mod error;
mod event;
mod limits;
pub mod names;
mod node;
mod port;
mod queue;
#[cfg(test)]
mod sender_tests;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use error::{Error, OpError};
pub use event::{
    Event, EventKind, INITIAL_SEQUENCE_NUM, INVALID_SEQUENCE_NUM, PortDescriptor, Sender,
    UserMessage,
};
pub use limits::{
    DEFAULT_MAX_CONTROL_QUEUE, DEFAULT_MAX_PORTS, DEFAULT_MAX_PORTS_PER_MESSAGE,
    DEFAULT_MAX_QUEUED_MESSAGES, DEFAULT_MAX_REORDER_WINDOW, Limits,
};
pub use node::{Node, Notification, PortStatus, ReceivedMessage};
pub use port::PortState;
