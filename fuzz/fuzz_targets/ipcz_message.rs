//! cargo-fuzz target `ipcz_message`: the decoding contract of `ipcz_wire::fuzzing::message` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::ipcz_message(data));
