//! Sans-IO invitation bootstrap: how a node gets its first link and its
//! initial pipes, for both protocols.
//!
//! - [`legacy`]: legacy Mojo Core connectors (spec `legacy-core.md` §2–§3):
//!   the broker side that sends an invitation and the client side that
//!   accepts one.
//! - [`ipcz`]: ipcz connectors (spec `ipcz.md` §4): non-broker to broker,
//!   broker accepting a non-broker, and inheriting the broker.
//!
//! Connectors take frames and fds in and return frames to send and a final
//! "established" value out; they never touch a socket.
//!
//! The legacy connectors take each socket's frames one at a time (the raw
//! bytes of one channel message and the fds its header claims), and take
//! the node-channel socket pair and shared-memory regions from the caller.
//! A broker and a client wired to each other directly, as a driver would
//! after writing and deframing each frame:
//!
//! ```
//! use mojo_invitation::legacy::{
//!     AttachmentName, BrokerConfig, BrokerConnector, ClientConfig, ClientConnector, Link,
//! };
//! use mojo_legacy_wire::{NodeName, Profile};
//! use mojo_wire_kit::SeededRandom;
//!
//! // In real use: the client's end of a fresh O_NONBLOCK socket pair.
//! let node_channel_client_end = std::fs::File::open("/dev/null")?.into();
//! let mut broker = BrokerConnector::new(
//!     BrokerConfig {
//!         profile: Profile::Libchrome,
//!         local_name: NodeName::new(1, 1),
//!         attachments: AttachmentName::numeric_range(2),
//!     },
//!     node_channel_client_end,
//!     &mut SeededRandom::new(1),
//! )?;
//! let mut client = ClientConnector::new(ClientConfig {
//!     profile: Profile::Libchrome,
//!     local_name: NodeName::new(2, 2),
//!     attachments: vec![],
//! })?;
//!
//! while client.established().is_none() {
//!     while let Some(t) = broker.poll_transmit() {
//!         match t.link {
//!             // INIT: 16 bytes and one fd, read with one exact-size read.
//!             Link::Bootstrap => drop(client.handle_bootstrap_read(&t.bytes, t.fds)?),
//!             Link::NodeChannel => client.handle_node_frame(&t.bytes, t.fds)?,
//!         }
//!     }
//!     while let Some(t) = client.poll_transmit() {
//!         broker.handle_node_frame(&t.bytes, t.fds)?;
//!     }
//! }
//! let (at_broker, _host) = broker.finish().map_err(|_| "broker not finished")?;
//! assert_eq!(at_broker.peer_name, NodeName::new(2, 2));
//! assert_eq!(at_broker.attachments[1].as_bytes(), 1u64.to_le_bytes());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

pub mod ipcz;
pub mod legacy;
