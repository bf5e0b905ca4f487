#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ipcz_wire::fuzzing::fragment(data));
