//! Library side of the `mojo_proxy` binary: its command line (and, once the
//! bridge lands, the `mio` driver), kept in a library so tests can reach them.

#![forbid(unsafe_code)]

pub mod cli;
