//! Tests of the node layer.
mod channel;
mod convert;
mod faults;
mod sim;
mod sims;
