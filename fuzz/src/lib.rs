//! The bodies of the cargo-fuzz targets, one function per target, named as
//! the target: each `fuzz_targets/<name>.rs` is the one line that hands
//! libFuzzer's input to its function here. Keeping them in a library lets
//! `cargo test --lib` (run by `cargo xtask ci`) replay every target's
//! checked-in seeds and past crash inputs through the very code libFuzzer
//! runs, on a stable toolchain, without libFuzzer.

#![forbid(unsafe_code)]

use std::os::fd::OwnedFd;

/// The fd the oracles pass where a frame carries fds: `/dev/null`.
fn dev_null() -> OwnedFd {
    std::fs::File::open("/dev/null")
        .expect("/dev/null opens")
        .into()
}

/// `ipcz_deframer`: the decoding contract of `ipcz_wire::fuzzing::deframer` on arbitrary bytes.
pub fn ipcz_deframer(data: &[u8]) {
    ipcz_wire::fuzzing::deframer(data);
}

/// `ipcz_driver_object`: the decoding contract of `ipcz_wire::fuzzing::driver_object` on arbitrary bytes.
pub fn ipcz_driver_object(data: &[u8]) {
    ipcz_wire::fuzzing::driver_object(data);
}

/// `ipcz_fragment`: the decoding contract of `ipcz_wire::fuzzing::fragment` on arbitrary bytes.
pub fn ipcz_fragment(data: &[u8]) {
    ipcz_wire::fuzzing::fragment(data);
}

/// `ipcz_frame`: the decoding contract of `ipcz_wire::fuzzing::frame` on arbitrary bytes.
pub fn ipcz_frame(data: &[u8]) {
    ipcz_wire::fuzzing::frame(data);
}

/// `ipcz_invitation`: every ipcz connector role driven by arbitrary frames and hang-ups (`mojo_invitation::ipcz::fuzzing`).
pub fn ipcz_invitation(data: &[u8]) {
    let _ = mojo_invitation::ipcz::fuzzing::drive(data, &mut dev_null);
}

/// `ipcz_message`: the decoding contract of `ipcz_wire::fuzzing::message` on arbitrary bytes.
pub fn ipcz_message(data: &[u8]) {
    ipcz_wire::fuzzing::message(data);
}

/// `ipcz_node_frames`: an ipcz node driven by arbitrary frames and shared-memory writes over a two-node link (`ipcz_node::fuzzing`).
pub fn ipcz_node_frames(data: &[u8]) {
    let _ = ipcz_node::fuzzing::node_frames(data, &mut dev_null);
}

/// `ipcz_router_descriptor`: the decoding contract of `ipcz_wire::fuzzing::router_descriptor` on arbitrary bytes.
pub fn ipcz_router_descriptor(data: &[u8]) {
    ipcz_wire::fuzzing::router_descriptor(data);
}

/// `ipcz_session_streams`: Drives an ipcz non-broker or broker Session with an arbitrary stream (see `ipcz_node::session::fuzzing`).
pub fn ipcz_session_streams(data: &[u8]) {
    ipcz_node::session::fuzzing::session_streams(data, &mut dev_null);
}

/// `legacy_broker_message`: the decoding contract of `mojo_legacy_wire::fuzzing::broker_message` on arbitrary bytes.
pub fn legacy_broker_message(data: &[u8]) {
    mojo_legacy_wire::fuzzing::broker_message(data);
}

/// `legacy_channel_frame`: the decoding contract of `mojo_legacy_wire::fuzzing::channel_frame` on arbitrary bytes.
pub fn legacy_channel_frame(data: &[u8]) {
    mojo_legacy_wire::fuzzing::channel_frame(data);
}

/// `legacy_deframer`: the decoding contract of `mojo_legacy_wire::fuzzing::deframer` on arbitrary bytes.
pub fn legacy_deframer(data: &[u8]) {
    mojo_legacy_wire::fuzzing::deframer(data);
}

/// `legacy_invitation_broker`: the legacy broker connector and broker host driven by arbitrary frames (`mojo_invitation::legacy::fuzzing::drive_broker`).
pub fn legacy_invitation_broker(data: &[u8]) {
    let _ = mojo_invitation::legacy::fuzzing::drive_broker(data, &mut dev_null);
}

/// `legacy_invitation_client`: the legacy client connector and sync broker client driven by arbitrary frames (`mojo_invitation::legacy::fuzzing::drive_client`).
pub fn legacy_invitation_client(data: &[u8]) {
    let _ = mojo_invitation::legacy::fuzzing::drive_client(data, &mut dev_null);
}

/// `legacy_node_frames`: Drives a `LegacyNode` with arbitrary incoming frames and fds (see `mojo_legacy_node::fuzzing`).
pub fn legacy_node_frames(data: &[u8]) {
    mojo_legacy_node::fuzzing::node_frames(data, &mut dev_null);
}

/// `legacy_node_message`: the decoding contract of `mojo_legacy_wire::fuzzing::node_message` on arbitrary bytes.
pub fn legacy_node_message(data: &[u8]) {
    mojo_legacy_wire::fuzzing::node_message(data);
}

/// `legacy_ports_event`: the decoding contract of `mojo_legacy_wire::fuzzing::ports_event` on arbitrary bytes.
pub fn legacy_ports_event(data: &[u8]) {
    mojo_legacy_wire::fuzzing::ports_event(data);
}

/// `legacy_session_streams`: Drives a legacy ClientSession or BrokerSession with arbitrary streams on its two links (see `mojo_legacy_node::session::fuzzing`).
pub fn legacy_session_streams(data: &[u8]) {
    mojo_legacy_node::session::fuzzing::session_streams(data, &mut dev_null);
}

/// `legacy_user_message`: the decoding contract of `mojo_legacy_wire::fuzzing::user_message` on arbitrary bytes.
pub fn legacy_user_message(data: &[u8]) {
    mojo_legacy_wire::fuzzing::user_message(data);
}

/// `proxy_streams`: Drives the whole sans-IO proxy with arbitrary streams on its three links (see `mojo_bridge::fuzzing`).
pub fn proxy_streams(data: &[u8]) {
    mojo_bridge::fuzzing::proxy_streams(data, &mut dev_null);
}

/// Every target: its name (the file stem under `fuzz_targets/`) and body.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("ipcz_deframer", ipcz_deframer),
    ("ipcz_driver_object", ipcz_driver_object),
    ("ipcz_fragment", ipcz_fragment),
    ("ipcz_frame", ipcz_frame),
    ("ipcz_invitation", ipcz_invitation),
    ("ipcz_message", ipcz_message),
    ("ipcz_node_frames", ipcz_node_frames),
    ("ipcz_router_descriptor", ipcz_router_descriptor),
    ("ipcz_session_streams", ipcz_session_streams),
    ("legacy_broker_message", legacy_broker_message),
    ("legacy_channel_frame", legacy_channel_frame),
    ("legacy_deframer", legacy_deframer),
    ("legacy_invitation_broker", legacy_invitation_broker),
    ("legacy_invitation_client", legacy_invitation_client),
    ("legacy_node_frames", legacy_node_frames),
    ("legacy_node_message", legacy_node_message),
    ("legacy_ports_event", legacy_ports_event),
    ("legacy_session_streams", legacy_session_streams),
    ("legacy_user_message", legacy_user_message),
    ("proxy_streams", proxy_streams),
];

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::TARGETS;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
    }

    /// The files of `dir`, sorted; none if it does not exist.
    fn inputs(dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.expect("a directory entry").path())
            .collect();
        paths.sort();
        paths
    }

    #[test]
    fn every_target_file_is_a_one_line_call_of_its_body() {
        let mut names: Vec<String> = inputs(&root().join("fuzz_targets"))
            .iter()
            .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
            .collect();
        names.sort();
        let listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names, listed,
            "fuzz_targets/ and TARGETS list the same targets"
        );
        for name in names {
            let source = std::fs::read_to_string(root().join(format!("fuzz_targets/{name}.rs")))
                .expect("a target's source");
            let call = format!("mojo_proxy_fuzz::{name}(data)");
            assert!(
                source.contains(&call),
                "fuzz_targets/{name}.rs calls {call}"
            );
        }
    }

    /// The checked-in seeds and every past crash input
    /// (`regressions/<target>/`) of every target run through the target's
    /// body: a seed or an old crash that fails an oracle again fails here.
    #[test]
    fn every_seed_and_past_crash_runs_through_its_target() {
        let mut ran = 0;
        for (name, body) in TARGETS {
            let seeds = inputs(&root().join("corpus").join(name));
            assert!(!seeds.is_empty(), "{name} has seeds");
            for path in seeds
                .iter()
                .chain(&inputs(&root().join("regressions").join(name)))
            {
                let data = std::fs::read(path).expect("an input");
                let outcome = std::panic::catch_unwind(|| body(&data));
                assert!(outcome.is_ok(), "{} fails {name}", path.display());
                ran += 1;
            }
        }
        assert!(ran >= TARGETS.len());
    }
}
