//! Tests of the node layer.
mod convert;
