//! cargo-fuzz target `ipcz_router_descriptor`: the decoding contract of `ipcz_wire::fuzzing::router_descriptor` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::ipcz_router_descriptor(data));
