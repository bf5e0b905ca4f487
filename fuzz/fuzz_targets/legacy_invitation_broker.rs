//! cargo-fuzz target `legacy_invitation_broker`: the legacy broker connector and broker host driven by arbitrary frames (`mojo_invitation::legacy::fuzzing::drive_broker`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::legacy_invitation_broker(data));
