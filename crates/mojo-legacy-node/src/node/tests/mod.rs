//! Tests of the node layer.
mod channel;
mod convert;
mod faults;
mod isolated;
mod proptests;
mod reorder;
mod sim;
mod sims;
