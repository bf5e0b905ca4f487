//! cargo-fuzz target `legacy_invitation_client`: the legacy client connector and sync broker client driven by arbitrary frames (`mojo_invitation::legacy::fuzzing::drive_client`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| mojo_proxy_fuzz::legacy_invitation_client(data));
