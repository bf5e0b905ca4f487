#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_legacy_wire::fuzzing::deframer(data));
