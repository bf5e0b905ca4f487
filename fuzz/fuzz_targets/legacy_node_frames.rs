//! Drives a `LegacyNode` with arbitrary incoming frames and fds (see `mojo_legacy_node::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::legacy_node_frames(data));
