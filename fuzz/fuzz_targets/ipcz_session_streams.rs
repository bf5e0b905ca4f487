//! Drives an ipcz non-broker or broker Session with an arbitrary stream (see `ipcz_node::session::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::ipcz_session_streams(data));
