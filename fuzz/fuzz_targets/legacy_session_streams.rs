//! Drives a legacy ClientSession or BrokerSession with arbitrary streams on its two links (see `mojo_legacy_node::session::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut dev_null = || std::os::fd::OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    mojo_legacy_node::session::fuzzing::session_streams(data, &mut dev_null);
});
