//! cargo-fuzz target `ipcz_fragment`: the decoding contract of `ipcz_wire::fuzzing::fragment` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::ipcz_fragment(data));
