//! Where the golden vectors are, and the one rule for when they are not
//! there: shared by the library ([`crate::vectors_dir`]), the test support
//! ([`crate::testing`]) and the build scripts of crates whose tests read
//! them ([`crate::build_script`]). Std only, so that this crate's own build
//! script can compile it too.

use std::path::{Path, PathBuf};

/// The environment variable that names the vectors directory. CI sets it,
/// and then missing vectors are an error, not a skip.
pub const VECTORS_ENV: &str = "MOJO_VECTORS_DIR";

/// Where the vectors were looked for, and what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VectorsLocation {
    /// The directory exists.
    Found(PathBuf),
    /// [`VECTORS_ENV`] is not set and `shared/vectors` is not beside the
    /// checkout (`<workspace>/../shared/vectors`): tests that need the
    /// vectors are skipped, and say so.
    Missing(PathBuf),
    /// [`VECTORS_ENV`] names something that is not a directory: an error.
    EnvNotADirectory(PathBuf),
}

/// The workspace root, from this crate's manifest directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Looks for the vectors: [`VECTORS_ENV`] if set, else `shared/vectors`
/// beside the checkout.
pub fn locate_vectors() -> VectorsLocation {
    if let Some(dir) = std::env::var_os(VECTORS_ENV) {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            VectorsLocation::Found(dir)
        } else {
            VectorsLocation::EnvNotADirectory(dir)
        };
    }
    let dir = workspace_root().join("../shared/vectors");
    if dir.is_dir() {
        VectorsLocation::Found(dir)
    } else {
        VectorsLocation::Missing(dir)
    }
}
