//! For the build scripts of crates whose tests read the vectors: one call
//! makes a missing vectors directory visible in every test summary.
//!
//! [`emit_vectors_cfg`] sets `cfg(mojo_vectors_missing)` when the vectors
//! are not found, and each vector test carries
//!
//! ```text
//! #[cfg_attr(mojo_vectors_missing, ignore = "needs shared/vectors or MOJO_VECTORS_DIR")]
//! ```
//!
//! so `cargo test` reports it as ignored, with that reason, instead of a
//! pass that checked nothing. When `MOJO_VECTORS_DIR` is set (CI sets it)
//! but names no directory, the build fails.

use crate::locate::{VECTORS_ENV, VectorsLocation, locate_vectors};

/// The cfg set when the vectors are missing.
pub const MISSING_CFG: &str = "mojo_vectors_missing";

/// Prints the `cargo::` lines for a build script: the cfg (when the vectors
/// are missing), its check-cfg declaration, and when to run again.
///
/// # Panics
///
/// When `MOJO_VECTORS_DIR` is set but is not a directory: the build fails,
/// as CI must when its vectors are missing.
pub fn emit_vectors_cfg() {
    println!("cargo::rustc-check-cfg=cfg({MISSING_CFG})");
    println!("cargo::rerun-if-env-changed={VECTORS_ENV}");
    match locate_vectors() {
        VectorsLocation::Found(dir) => println!("cargo::rerun-if-changed={}", dir.display()),
        VectorsLocation::Missing(dir) => {
            println!("cargo::rustc-cfg={MISSING_CFG}");
            // Watch the nearest folder that exists, so that the vectors
            // appearing there re-runs this script (a path that does not
            // exist would re-run it on every build).
            if let Some(existing) = dir.ancestors().skip(1).find(|d| d.is_dir()) {
                println!("cargo::rerun-if-changed={}", existing.display());
            }
            println!(
                "cargo::warning=golden vectors not found at {}: vector tests are ignored (set {VECTORS_ENV})",
                dir.display()
            );
        }
        VectorsLocation::EnvNotADirectory(dir) => {
            panic!("{VECTORS_ENV}={} is not a directory", dir.display())
        }
    }
}
