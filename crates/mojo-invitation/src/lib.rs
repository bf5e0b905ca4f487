//! Sans-IO invitation bootstrap: how a node gets its first link and its
//! initial pipes, for both protocols.
//!
//! - [`legacy`]: legacy Mojo Core connectors (spec `legacy-core.md` §2–§3):
//!   the broker side that sends an invitation and the client side that
//!   accepts one.
//! - [`ipcz`]: ipcz connectors (spec `ipcz.md` §4): non-broker to broker,
//!   broker accepting a non-broker, and inheriting the broker.
//!
//! Connectors take decoded frames and fds in and return frames to send and
//! a final "established" value out; they never touch a socket.

#![forbid(unsafe_code)]

pub mod ipcz;
pub mod legacy;
