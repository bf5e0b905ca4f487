//! The `shared/vectors/shm/` recordings these tests replay; the reader of
//! their `map` and `diff` lines is [`mojo_transcript::shm`].

use std::path::PathBuf;

/// The legacy data pipe recordings (`shm/{cros,desktop}/*datapipe*legacy*`),
/// sorted, each with whether it is the desktop profile (panics without
/// the vectors: `mojo_transcript::testing::vectors`).
pub fn legacy_data_pipe_recordings() -> Vec<(PathBuf, bool)> {
    let dir = mojo_transcript::testing::vectors();
    mojo_transcript::shm::recordings(&dir, |name| {
        name.contains("datapipe") && name.contains("legacy")
    })
}
