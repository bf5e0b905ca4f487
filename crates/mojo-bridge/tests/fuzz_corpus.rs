//! The `proxy_streams` fuzz target's checked-in corpus (seeded from recorded
//! sessions) replayed through its oracle under `cargo test`.

use std::os::fd::OwnedFd;

use mojo_transcript::testing::fuzz_corpus;

fn dev_null() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

#[test]
fn every_proxy_streams_seed_runs_through_the_oracle() {
    let corpus = fuzz_corpus("proxy_streams");
    assert!(corpus.len() >= 4, "the recorded sessions' seeds");
    for (path, data) in corpus {
        // The recorded peers used tokens and memory our proxy did not make
        // (the legacy invitation token differs, the primary buffer is not the
        // host's), so today each seed is refused a few frames in: they seed
        // the early paths, and mutation goes on from there. Never a panic.
        let refused = mojo_bridge::fuzzing::proxy_streams(&data, &mut dev_null);
        eprintln!("{}: refused={refused}", path.display());
    }
}
