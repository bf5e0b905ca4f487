//! The `ipcz_session_streams` fuzz target's checked-in corpus (seeded from
//! recorded sessions) replayed through its oracle under `cargo test`.

use std::os::fd::OwnedFd;

use mojo_transcript::testing::fuzz_corpus;

fn dev_null() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn every_session_streams_seed_runs_through_the_oracle() {
    let corpus = fuzz_corpus("ipcz_session_streams");
    assert!(corpus.len() >= 8, "the recorded sessions' seeds");
    for (path, data) in corpus {
        let refused = ipcz_node::session::fuzzing::session_streams(&data, &mut dev_null);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // A non-broker session takes a real host's handshake and its first
        // frames; later frames of some sessions read parcels from shared
        // memory the oracle does not have (it maps zeroes), and a broker
        // session's names differ from the recording's, so only these two
        // are known to go through whole.
        if name == "connect_only-non-broker" || name == "shmem-non-broker" {
            assert!(!refused, "{name}");
        }
    }
}
