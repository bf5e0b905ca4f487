//! cargo-fuzz target `legacy_ports_event`: the decoding contract of `mojo_legacy_wire::fuzzing::ports_event` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::legacy_ports_event(data));
