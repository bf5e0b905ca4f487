//! Drives the whole sans-IO proxy with arbitrary streams on its three links (see `mojo_bridge::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::proxy_streams(data));
