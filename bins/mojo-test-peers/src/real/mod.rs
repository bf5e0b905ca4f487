//! The test peers' connectors onto the node-backed systems of
//! [`mojo_system`]: how `mojo-test-host` and `mojo-test-client` turn their
//! command lines into a `send_invitation` or `accept_invitation` call of
//! [`mojo_system::legacy`] or [`mojo_system::ipcz`].
//!
//! The systems themselves ([`RealSystem`] and its protocols) live in
//! `mojo-system`; [`legacy`] and [`ipcz`] re-export their modules, so
//! `real::legacy::LegacyProtocol` and the like keep their paths.

pub mod ipcz;
pub mod legacy;

pub use mojo_system::runtime::{
    ConnectError, Protocol, RealSystem, RegionObject, RegionSource, WireHandle, WireMessage,
};
