//! cargo-fuzz target `legacy_node_message`: the decoding contract of `mojo_legacy_wire::fuzzing::node_message` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::legacy_node_message(data));
