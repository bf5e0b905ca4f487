//! Drives a legacy ClientSession or BrokerSession with arbitrary streams on its two links (see `mojo_legacy_node::session::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::legacy_session_streams(data));
