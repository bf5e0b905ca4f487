//! The `shared/vectors/shm/` recordings these tests replay; the reader of
//! their `map` and `diff` lines is [`mojo_transcript::shm`].

use std::path::PathBuf;

/// The ipcz recordings with shared memory (`shm/{cros,desktop}/*.jsonl`
/// except the legacy data pipe one), sorted (panics without the vectors:
/// `mojo_transcript::testing::vectors`).
pub fn ipcz_recordings() -> Vec<PathBuf> {
    let dir = mojo_transcript::testing::vectors();
    mojo_transcript::shm::recordings(&dir, |name| !name.contains("legacy"))
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}
