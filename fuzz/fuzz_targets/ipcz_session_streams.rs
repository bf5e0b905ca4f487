//! Drives an ipcz non-broker or broker Session with an arbitrary stream (see `ipcz_node::session::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut dev_null = || std::os::fd::OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    ipcz_node::session::fuzzing::session_streams(data, &mut dev_null);
});
