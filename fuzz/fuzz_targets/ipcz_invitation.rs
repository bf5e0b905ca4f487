//! cargo-fuzz target `ipcz_invitation`: every ipcz connector role driven by arbitrary frames and hang-ups (`mojo_invitation::ipcz::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::ipcz_invitation(data));
