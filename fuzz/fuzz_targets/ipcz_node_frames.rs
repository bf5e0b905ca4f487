//! cargo-fuzz target `ipcz_node_frames`: an ipcz node driven by arbitrary frames and shared-memory writes over a two-node link (`ipcz_node::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::ipcz_node_frames(data));
