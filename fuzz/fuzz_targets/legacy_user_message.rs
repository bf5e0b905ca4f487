//! cargo-fuzz target `legacy_user_message`: the decoding contract of `mojo_legacy_wire::fuzzing::user_message` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::legacy_user_message(data));
