//! The `legacy_session_streams` fuzz target's checked-in corpus (seeded from
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
    let corpus = fuzz_corpus("legacy_session_streams");
    assert!(corpus.len() >= 8, "the recorded sessions' seeds");
    for (path, data) in corpus {
        let refused = mojo_legacy_node::session::fuzzing::session_streams(&data, &mut dev_null);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // A client session takes a real Chromium broker's whole stream (the
        // broker's names and token are whatever it says); a broker session
        // refuses the recorded client, whose token was for another broker.
        assert_eq!(refused, name.ends_with("-broker"), "{name}");
    }
}
