//! Library side of the `mojo_proxy` binary, kept in a library so tests can
//! reach it: the command line ([`cli`]), the driver core that answers the
//! sans-IO [`mojo_bridge::proxy::Proxy`] with the OS ([`core`]), one run
//! of the `mio` loop ([`run`]), and the optional recording of both links
//! (`--capture-dir`, [`capture`]), and the live state logged on `SIGUSR1`
//! and the totals at exit ([`state`]).
//!
//! The command line is parsed as Chromium's `base::CommandLine` parses it,
//! so the proxy is a drop-in for Chromium's `mojo_proxy`:
//!
//! ```
//! use mojo_proxy::cli::{self, Attachments};
//!
//! let config = cli::parse([
//!     "--legacy-client-fd=3",
//!     "--host-ipcz-transport-fd=4",
//!     "--num-attachments=2",
//!     "--unknown-switch", // ignored, as Chromium ignores it
//! ])
//! .expect("a valid command line");
//! assert_eq!(config.legacy_client_fd, 3);
//! assert_eq!(config.attachments, Attachments::Numeric(vec![0, 1]));
//! // Numeric attachment names travel as 8 little-endian bytes.
//! assert_eq!(config.attachments.names()[1], 1u64.to_le_bytes());
//! ```

#![forbid(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod core;
pub mod run;
pub mod state;
