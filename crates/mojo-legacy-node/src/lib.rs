//! The sans-IO legacy Mojo Core node (spec `legacy-core.md` §3–§6).
//!
//! Everything a legacy node does between the wire crate
//! (`mojo-legacy-wire`) and the driver's sockets, as values in and values
//! out: no sockets, clocks or threads; names come from an injected
//! [`RandomSource`](mojo_wire_kit::RandomSource).
//!
//! - [`node`]: [`LegacyNode`], the NodeChannel layer. It owns a ports node
//!   and one link per peer (added once an invitation connector finished the
//!   handshake), takes complete channel frames with their fds
//!   ([`LegacyNode::handle_frame`]) and gives frames to write
//!   ([`LegacyNode::poll_transmit`]) and application events
//!   ([`LegacyNode::poll_event`]). User messages carry [`Handle`]s: message
//!   pipe ends, shared buffers (mode kept), platform handles and data pipe
//!   ends. Bad input is a typed [`NodeError`] and drops the peer; what one
//!   peer may make the node hold is bounded by [`NodeLimits`]. Isolated
//!   connections (§3.7: one pipe to a node of another network) are links
//!   the node sets up itself ([`node::isolated`]).
//! - [`ports`]: the ports state machine underneath: message pipes whose
//!   ends live on different nodes, ports carried inside messages, proxies
//!   that form and collapse, in-order delivery, closure and peer loss.
//! - [`data_pipe`]: the producer and consumer ends of legacy data pipes
//!   (§5.2) over their shared ring, with the control messages as values.
//! - [`session`]: the node composed with the `mojo-invitation` connectors
//!   ([`session::BrokerSession`], [`session::ClientSession`]): stream bytes
//!   and fds per link in, transmits per link out, the node exposed; what a
//!   driver runs with no protocol knowledge.
//!
//! A broker and a client joined by an invitation attachment, a message
//! each way; `pump` is what a driver does with real sockets:
//!
//! ```
//! use mojo_legacy_node::node::{Handle, LegacyNode, PeerRole};
//! use mojo_legacy_node::ports::names;
//! use mojo_legacy_wire::Profile;
//! use mojo_wire_kit::SeededRandom;
//!
//! /// Delivers everything `from` wants to send; true if there was any.
//! fn deliver(from: &mut LegacyNode, to: &mut LegacyNode) -> bool {
//!     let mut moved = false;
//!     while let Some(t) = from.poll_transmit() {
//!         to.handle_frame(from.name(), &t.bytes, t.fds).unwrap();
//!         from.recycle(t.bytes);
//!         moved = true;
//!     }
//!     moved
//! }
//!
//! fn pump(a: &mut LegacyNode, b: &mut LegacyNode) {
//!     while deliver(a, b) | deliver(b, a) {}
//! }
//!
//! let mut broker = LegacyNode::new(names::node_name(1, 1), SeededRandom::new(1));
//! let mut client = LegacyNode::new(names::node_name(2, 2), SeededRandom::new(2));
//! // What the invitation connectors do once the handshake is over:
//! broker.add_peer(client.name(), Profile::Libchrome, PeerRole::Client).unwrap();
//! client.add_peer(broker.name(), Profile::Libchrome, PeerRole::Broker).unwrap();
//!
//! // Attachment 0 (8 little-endian bytes), connected by REQUEST_PORT_MERGE.
//! let a = broker.reserve_attachment(&0u64.to_le_bytes()).unwrap();
//! let p = client.request_port_merge(broker.name(), &0u64.to_le_bytes()).unwrap();
//! broker.write_message(a, b"hello", vec![]).unwrap();
//! pump(&mut broker, &mut client);
//! assert_eq!(client.read_message(p).unwrap().unwrap().0, b"hello");
//!
//! // A fresh pipe end travels to the broker and is used there.
//! let (mine, theirs) = client.create_pipe().unwrap();
//! client.write_message(p, b"a pipe", vec![Handle::MessagePipe(theirs)]).unwrap();
//! pump(&mut broker, &mut client);
//! let (bytes, mut handles) = broker.read_message(a).unwrap().unwrap();
//! assert_eq!(bytes, b"a pipe");
//! let Some(Handle::MessagePipe(got)) = handles.pop() else { panic!() };
//! broker.write_message(got, b"over it", vec![]).unwrap();
//! pump(&mut broker, &mut client);
//! assert_eq!(client.read_message(mine).unwrap().unwrap().0, b"over it");
//!
//! for port in [a, got] {
//!     broker.close_port(port).unwrap();
//! }
//! for port in [p, mine] {
//!     client.close_port(port).unwrap();
//! }
//! pump(&mut broker, &mut client);
//! assert_eq!(broker.port_count() + client.port_count(), 0);
//! ```
//!
//! The [`ports`] module's own page shows that layer alone.

#![forbid(unsafe_code)]

pub mod data_pipe;
#[doc(hidden)]
pub mod fuzzing;
pub mod node;
pub mod ports;
pub mod session;

pub use node::{Handle, LegacyNode, NodeError, NodeLimits};
