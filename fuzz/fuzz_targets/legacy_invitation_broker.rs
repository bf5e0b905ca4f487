//! cargo-fuzz target `legacy_invitation_broker`: the legacy broker connector and broker host driven by arbitrary frames (`mojo_invitation::legacy::fuzzing::drive_broker`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = mojo_invitation::legacy::fuzzing::drive_broker(data, &mut || {
        std::fs::File::open("/dev/null").expect("/dev/null").into()
    });
});
