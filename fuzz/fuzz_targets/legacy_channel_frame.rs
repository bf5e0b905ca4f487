//! cargo-fuzz target `legacy_channel_frame`: the decoding contract of `mojo_legacy_wire::fuzzing::channel_frame` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::legacy_channel_frame(data));
