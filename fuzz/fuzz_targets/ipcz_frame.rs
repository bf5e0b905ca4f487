//! cargo-fuzz target `ipcz_frame`: the decoding contract of `ipcz_wire::fuzzing::frame` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::ipcz_frame(data));
