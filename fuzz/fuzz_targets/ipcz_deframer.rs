//! cargo-fuzz target `ipcz_deframer`: the decoding contract of `ipcz_wire::fuzzing::deframer` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::ipcz_deframer(data));
