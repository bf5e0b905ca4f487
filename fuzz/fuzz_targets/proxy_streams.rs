//! Drives the whole sans-IO proxy with arbitrary streams on its three links (see `mojo_bridge::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut dev_null = || std::os::fd::OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    mojo_bridge::fuzzing::proxy_streams(data, &mut dev_null);
});
