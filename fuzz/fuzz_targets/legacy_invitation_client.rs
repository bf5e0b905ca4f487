//! cargo-fuzz target `legacy_invitation_client`: the legacy client connector and sync broker client driven by arbitrary frames (`mojo_invitation::legacy::fuzzing::drive_client`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mojo_invitation::legacy::fuzzing::drive_client(data, &mut || {
        std::fs::File::open("/dev/null").expect("/dev/null").into()
    });
});
