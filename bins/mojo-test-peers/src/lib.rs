//! The project's test peers, `mojo-test-host` and `mojo-test-client`
//! (`shared/spec/test-peers.md`), interchangeable with the reference pair
//! `rm_host.cc` / `rm_legacy_client.cc`.
//!
//! Everything above the Mojo system layer lives here, written against the
//! [`system::MojoSystem`] trait: the application protocol ([`protocol`]), the
//! client's serve loops ([`client`]), the host's scenarios and result lines
//! ([`host`], [`json`]), the command lines ([`cli`]) and the host's process
//! launching ([`process`]). [`fake`] is an in-process system for tests, so
//! both peers run end to end in `cargo test`; [`real`] connects the
//! binaries to the node-backed systems of `mojo-system` (legacy Mojo Core,
//! and Mojo+ipcz through [`ipcz_core`], which runs an ipcz session on a real
//! socket under `mojo-driver`).

#![forbid(unsafe_code)]

pub mod cli;
pub mod client;
pub mod fake;
#[doc(hidden)]
pub mod harness;
pub mod host;
pub mod json;
pub mod os;
pub mod process;
pub mod protocol;
pub mod real;
pub mod run;
/// The Mojo System API core, now the `mojo-system` crate.
pub use mojo_system as system;
/// The ipcz session core, now `mojo_system::ipcz::session_core`.
pub use mojo_system::ipcz::session_core as ipcz_core;
