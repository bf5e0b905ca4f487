//! Drives a `LegacyNode` with arbitrary incoming frames and fds (see `mojo_legacy_node::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut dev_null = || std::os::fd::OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    mojo_legacy_node::fuzzing::node_frames(data, &mut dev_null);
});
