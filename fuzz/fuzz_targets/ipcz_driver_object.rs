//! cargo-fuzz target `ipcz_driver_object`: the decoding contract of `ipcz_wire::fuzzing::driver_object` on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::ipcz_driver_object(data));
