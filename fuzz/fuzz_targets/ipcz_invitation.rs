//! cargo-fuzz target `ipcz_invitation`: every ipcz connector role driven by arbitrary frames and hang-ups (`mojo_invitation::ipcz::fuzzing`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mojo_invitation::ipcz::fuzzing::drive(data, &mut || {
        std::fs::File::open("/dev/null").expect("/dev/null").into()
    });
});
