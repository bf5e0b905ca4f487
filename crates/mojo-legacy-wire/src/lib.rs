//! Sans-IO decoder and encoder for the legacy (pre-ipcz) Mojo Core wire
//! protocol as spoken by Chromium's libchrome on Linux / Chrome OS.
//!
//! The crate holds no sockets, fds or clocks: it turns bytes into borrowed,
//! typed values and values back into bytes, byte for byte. Layers, outermost
//! first (spec `shared/spec/legacy-core.md`):
//!
//! | layer | module | entry points |
//! |---|---|---|
//! | channel framing (8- or 16-byte header, control messages) | [`channel`] | [`channel::Frame::decode`], [`channel::Frame::decode_prefix`], [`Deframer`], [`channel::ControlMessage`] |
//! | broker protocol on the bootstrap socket | [`broker`] | [`broker::BrokerFrame`], [`broker::BrokerMessage`] |
//! | NodeChannel messages | [`node`] | [`node::NodeFrame`], [`node::NodeMessage`] |
//! | ports events (compact or extended header) | [`event`] | [`event::Event::decode`] |
//! | user messages, dispatchers, data pipe control | [`user_message`] | [`user_message::UserMessage::decode`] |
//! | whole-frame decode plus re-encode check | [`verify`] | [`verify::decode_frame`], [`verify::check_frame`] |
//!
//! Every fixed layout (channel headers, NodeChannel and broker bodies, event
//! headers and data, port descriptors, dispatcher headers and states) is
//! declared once with `mojo_wire_kit::wire_layout!`; decoders, encoders and
//! the field names in errors and `decode_exact` reports all come from that
//! declaration. The cursor, writer, enum macro and canonical check are the
//! shared toolkit of `mojo-wire-kit`, which `ipcz-wire` uses too.
//!
//! Decoding follows Chrome's receiver exactly: every `decode` accepts what
//! Chromium's legacy Mojo Core accepts and rejects what it rejects (sizes,
//! `num_header_bytes`, `num_handles`, `header_size`, dispatcher counts and
//! states, ...), with an [`Error`] naming the field. Bytes Chromium never
//! looks at are ignored as it ignores them: the padding of the channel
//! header, the broker and NodeChannel headers, events, port descriptors and
//! dispatcher states, `BIND_BROKER_HOST`'s reserved body, and the slack
//! between the last dispatcher state and `header_size`; a bool is true for
//! any non-zero byte. Everything else a receiver tolerates (V0 bodies,
//! trailing bytes, extra header bytes, unknown type values) is kept in the
//! decoded value.
//!
//! `decode` models what the *channel* accepts. Some messages pass it yet
//! Chromium still rejects their attached handles when it deserializes them
//! (a zero-sized or zero-guid shared buffer, a data pipe whose offsets do not
//! fit its capacity, an unknown dispatcher type, ...): the message is then
//! dropped or its handles are invalid, but the channel stays up.
//! [`user_message::UserMessage::check_dispatchers`] (per dispatcher:
//! [`user_message::Dispatcher::check_state`]) applies exactly those rules, with an
//! [`Error`] naming the field. Likewise an `UPGRADE_OFFER` with a payload
//! shorter than 8 bytes, which Chromium ignores, decodes to
//! [`channel::ControlMessage::ShortUpgradeOffer`] rather than failing.
//!
//! Encoding follows Chrome's sender exactly: padding and reserved bytes are
//! written as zero, bools as 0/1, sizes and counts are recomputed (a count
//! that does not fit its field is an error, never saturated). Encoders
//! append to a `Vec<u8>` and leave it unchanged when they fail. Fresh
//! encodes follow a [`Profile`] ([`Profile::Libchrome`] by default).
//!
//! Each `decode` has a `decode_exact` ([`channel::Frame::decode_exact`],
//! [`broker::BrokerFrame::decode_exact`], [`node::NodeFrame::decode_exact`],
//! [`event::Event::decode_exact`], [`user_message::UserMessage::decode_exact`], ...) that
//! additionally demands that the input is in Chrome's canonical layout, so
//! that any `Ok` re-encodes to the same bytes; otherwise it fails with
//! [`Error::NotCanonical`] naming the first differing field. It is `decode`
//! plus re-encode plus compare, so the two can never disagree about what a
//! value is. [`verify::check_frame`] is the exact variant for a whole frame
//! down to the deepest layer (what `mojo-dump --verify` and the vector tests
//! run).
//!
//! Node names, port names and tokens are distinct types ([`NodeName`],
//! [`PortName`], [`Token`]); shared-memory ids are `mojo_wire_kit::Guid`
//! and access modes `mojo_wire_kit::RegionMode`.
//!
//! ```
//! use mojo_legacy_wire::event::{Event, EventData};
//! use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame, NodeMessage};
//! use mojo_legacy_wire::{EventHeaderForm, PortName, Profile};
//!
//! let mut out = Vec::new();
//! let event = Event::new(PortName::new(1, 2), EventData::PortAccepted);
//! event.encode_frame(Profile::Libchrome, 0, &mut out).unwrap();
//! assert_eq!(out.len(), 40);
//!
//! let (frame, used) = NodeFrame::decode(&out).unwrap();
//! assert_eq!(used, 40);
//! let NodeChannelContent::Message(NodeMessage::EventMessage(body)) = frame.content else {
//!     unreachable!()
//! };
//! assert_eq!(Event::decode(body, EventHeaderForm::Compact).unwrap(), event);
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

pub mod broker;
pub mod channel;
mod codec;
mod deframer;
mod error;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
mod layouts;
pub mod limits;
mod name;
pub mod node;
mod profile;
pub mod user_message;
pub mod verify;

// Each public type has one path: the protocol layers are public modules;
// the few cross-cutting types below live at the crate root only.
pub use deframer::{Deframed, Deframer};
pub use error::{Error, Result};
pub use name::{NodeName, PortName, Token};
pub use profile::{EventHeaderForm, Profile};
