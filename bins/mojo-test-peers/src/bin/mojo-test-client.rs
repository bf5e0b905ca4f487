//! `mojo-test-client` (placeholder until the client module lands).
fn main() {}
