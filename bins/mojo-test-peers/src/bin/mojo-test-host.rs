//! `mojo-test-host` (placeholder until the host module lands).
fn main() {}
