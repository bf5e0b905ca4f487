//! cargo-fuzz target `legacy_deframer`: the decoding contract of `mojo_legacy_wire::fuzzing::deframer` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::legacy_deframer(data));
