//! Sans-IO parser and encoder for the ipcz wire protocol exactly as Chromium's
//! Mojo+ipcz (`mojo/core/ipcz_driver` on top of `third_party/ipcz`) puts it on
//! a Unix socket, plus the layouts ipcz keeps in shared memory.
//!
//! The crate never touches sockets, fds or mappings: it turns bytes into typed
//! values and typed values back into the very bytes Chrome produces. Layers:
//!
//! | module | what | spec |
//! |---|---|---|
//! | [`frame`] | the 16-byte (or older 8-byte) channel frame header, [`frame::Deframer`] | §1.2-1.4 |
//! | [`driver_object`] | Transport, SharedBuffer, platform handles, DataPipe and their fd counts | §1.5-1.6 |
//! | [`message`] | [`message::Message`]: message header, versioned params, arrays, driver object table, every receiver check | §2 |
//! | [`messages`] | one struct per node message (IDs 0-7, 10-14, 20-23, 30-36, 64-67) | §3 |
//! | [`router_descriptor`] | the 96-byte RouterDescriptor and the 112-byte pre-M117 form | §6.5, §10.2 |
//! | [`memory`] | primary buffer, RouterLinkState, BlockAllocator, fragments (views and pure helpers) | §5 |
//! | [`types`] | NodeName, SublinkId, FragmentDescriptor and the other field types | §2.4 |
//! | [`limits`] | every size and limit as a named constant | §11.1 |
//!
//! Decoding follows Chrome's receiver exactly ([`Message::decode`](message::Message::decode) accepts what
//! Chrome accepts and rejects what it rejects, with an error naming the field);
//! encoding follows Chrome's sender exactly ([`Message::encode`](message::Message::encode), recipe of
//! §2.8). [`Message::decode_exact`](message::Message::decode_exact) additionally demands that the input is in
//! Chrome's canonical layout, so that any `Ok` re-encodes to the same bytes.
//!
//! ```
//! use ipcz_wire::{frame::Frame, message::Message, messages::Body};
//! // ConnectFromNonBrokerToBroker as Chrome's mojo_proxy sends it (spec §9.1).
//! let bytes = [
//!     0x10, 0, 0, 0, 0x50, 0, 0, 0, 0xbe, 0xa5, 0x67, 0x5f, 0, 0, 0, 0,
//!     0x18, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
//!     0, 0, 0, 0, 0, 0, 0, 0, 0x18, 0, 0, 0, 0, 0, 0, 0,
//!     0, 0, 0, 0, 2, 0, 0, 0, 0x30, 0, 0, 0, 0, 0, 0, 0,
//!     0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
//! ];
//! let (frame, used) = Frame::decode(&bytes).unwrap();
//! assert_eq!(used, bytes.len());
//! let msg = Message::decode(frame.payload, frame.header.num_handles.into()).unwrap();
//! let Body::ConnectFromNonBrokerToBroker(hello) = &msg.body else { panic!() };
//! assert_eq!(hello.num_initial_portals, 2);
//! assert_eq!(hello.features.as_deref(), Some(&[0u64][..]));
//! let mut out = Vec::new();
//! frame.header.encode_frame(frame.header_extension, &msg, &mut out).unwrap();
//! assert_eq!(out, bytes);
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
#![warn(missing_docs)]

// Every type has one path: its module's. The crate root re-exports nothing.
mod describe;
pub mod driver_object;
pub mod error;
pub mod frame;
mod layout_ref;
pub mod limits;
pub mod memory;
pub mod message;
pub mod messages;
pub mod router_descriptor;
pub mod types;

#[doc(hidden)]
pub mod fuzzing;
