//! Tests of the node layer.
mod convert;
mod sim;
mod sims;
