//! Sans-IO invitation bootstrap: how a node gets its first link and its
//! initial pipes, for both protocols.
//!
//! - [`legacy`]: legacy Mojo Core connectors (spec `legacy-core.md` §2–§3):
//!   the broker side that sends an invitation and the client side that
//!   accepts one.
//! - [`ipcz`]: ipcz connectors (spec `ipcz.md` §4): non-broker to broker,
//!   broker accepting a non-broker, broker to broker, and the three parties
//!   of inheriting the broker.
//!
//! The ipcz connectors, one per role of spec `ipcz.md` §4 (the table is in
//! [`ipcz`]), cover the non-broker connecting to a broker host
//! (`mojo_proxy`'s normal mode), the broker accepting it, and the three
//! parties of inheriting the broker from a non-broker host
//! (`--inherit-ipcz-broker`), plus two brokers connecting to each other
//! (MojoIpcz's isolated invitations). Each takes whole frames with their fds,
//! returns frames with fds, and ends in an [`ipcz::EstablishedLink`] per
//! NodeLink: names, link side, the primary buffer's fd to map, and the
//! initial portals with their sublinks and RouterLinkState slots. Shared
//! memory the connector's side creates comes from the caller and is
//! initialized through `mojo_wire_kit::SharedMemory`.
//!
//! ```
//! use ipcz_wire::types::NodeName;
//! use mojo_invitation::ipcz::{
//!     BrokerConnector, NonBrokerConnector, PrimaryBuffer, attachment_portal,
//! };
//! use mojo_wire_kit::{Guid, HeapMemory, SeededRandom};
//!
//! // The broker's primary buffer: in real use a 128 KiB memfd made and
//! // mapped with the platform crate; here a dummy fd and heap memory.
//! let fd = std::fs::File::open("/dev/null")?.into();
//! let buffer = PrimaryBuffer::new(131072, Guid { high: 1, low: 2 }, fd);
//! let mapping = HeapMemory::new(131072);
//! let broker_name = NodeName { high: 1, low: 1 };
//! let mut broker =
//!     BrokerConnector::new(broker_name, 2, buffer, &mapping, &mut SeededRandom::new(1))?;
//! // Portal 0 plus one attachment, as `mojo_proxy` opens them.
//! let mut proxy = NonBrokerConnector::new(2)?;
//!
//! // Both greet at once; a driver writes and deframes each frame.
//! let to_proxy = broker.poll_transmit().expect("greeting");
//! let to_broker = proxy.poll_transmit().expect("greeting");
//! proxy.handle_frame(&to_proxy.bytes, to_proxy.fds)?;
//! broker.handle_frame(&to_broker.bytes, to_broker.fds)?;
//!
//! let link = proxy.finish()?;
//! assert_eq!((link.local_name, link.remote_name), (broker.remote_name(), broker_name));
//! assert!(link.primary_buffer_fd.is_some()); // to map for the NodeLinkMemory
//! let slots: Vec<u32> = link.initial_portals().map(|p| p.link_state.offset).collect();
//! assert_eq!(slots, [256, 320]);
//! // Attachment 0 (a u64 name) rides on portal 1; portal 0 is Mojo's own.
//! assert_eq!(attachment_portal(&0u64.to_le_bytes()), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
