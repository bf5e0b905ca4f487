//! The sans-IO legacy Mojo Core node (spec `legacy-core.md` §4).
//!
//! This crate will hold everything a legacy node does between the wire crate
//! (`mojo-legacy-wire`) and the driver's sockets. Its first part is the
//! [`ports`] state machine: message pipes whose ends live on different nodes,
//! ports carried inside messages, proxies that form and collapse, in-order
//! delivery, closure and peer loss, all as values in and values out. There
//! are no sockets, clocks or threads; names come from an injected
//! [`RandomSource`](mojo_wire_kit::RandomSource).
//!
//! The [`data_pipe`] module holds the producer and consumer ends of legacy
//! data pipes (§5.2) over their shared ring, with the control messages as
//! values.
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

#![forbid(unsafe_code)]

pub mod data_pipe;
pub mod ports;
