//! Tests of the node layer.
mod channel;
mod convert;
mod faults;
mod proptests;
mod sim;
mod sims;
