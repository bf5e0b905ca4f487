//! Past crash inputs of the ipcz node's fuzz targets (`fuzz/regressions/`),
//! replayed through their oracles under `cargo test`: each once failed an
//! oracle check, so each must now run through cleanly.

use std::os::fd::OwnedFd;

use mojo_transcript::testing::fuzz_regressions;

fn dev_null() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

/// `local-route-broken-by-link-error`: the target's final deliveries
/// dropped the link after teardown had already closed the oracle's local
/// portal pair, and the oracle asked a closed portal whether the error had
/// broken it. The oracle now checks the local route only while it is open
/// (teardown checks it once more before closing it).
#[test]
fn every_past_node_frames_crash_runs_through_the_oracle() {
    let inputs = fuzz_regressions("ipcz_node_frames");
    assert!(!inputs.is_empty(), "the checked-in crash inputs");
    for (path, data) in inputs {
        let outcome = std::panic::catch_unwind(|| {
            ipcz_node::fuzzing::node_frames(&data, &mut dev_null);
        });
        assert!(outcome.is_ok(), "{} fails the oracle", path.display());
    }
}
