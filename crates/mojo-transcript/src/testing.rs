//! Test support shared by every crate whose tests or tools read the vectors
//! or the fuzz seed corpus: one way to find the vectors (and to fail when CI
//! lacks them), to list them, to decode hex written in tests, to cut a
//! stream into pieces, and to load `fuzz/corpus/<target>/`.
//!
//! These helpers panic with a message naming what is missing: they are for
//! tests and tools, not for code that handles peer input.
//!
//! ```
//! use mojo_transcript::testing::{pieces_at, unhex};
//!
//! assert_eq!(unhex("0a0b 0c\n0d"), [0x0a, 0x0b, 0x0c, 0x0d]);
//! let stream = [1, 2, 3, 4, 5];
//! assert_eq!(pieces_at(&stream, &[2, 2, 4]), [&[1, 2][..], &[], &[3, 4], &[5]]);
//! ```

use std::path::PathBuf;

use crate::locate::{VECTORS_ENV, VectorsLocation, locate_vectors, workspace_root};
use crate::{LinkProtocol, VectorFile, decode_hex, vector_files};

/// The vectors directory, for a test that needs it.
///
/// Tests that call this carry
/// `#[cfg_attr(mojo_vectors_missing, ignore = "...")]` (see
/// [`crate::build_script`]), so without the vectors they are reported as
/// ignored; run anyway (`--ignored`), or with `MOJO_VECTORS_DIR` naming no
/// directory, this fails.
///
/// # Panics
///
/// When the vectors are not found.
pub fn vectors() -> PathBuf {
    match locate_vectors() {
        VectorsLocation::Found(dir) => dir,
        VectorsLocation::Missing(dir) => panic!(
            "golden vectors not found at {} (put shared/ beside the checkout or set {VECTORS_ENV})",
            dir.display()
        ),
        VectorsLocation::EnvNotADirectory(dir) => {
            panic!("{VECTORS_ENV}={} is not a directory", dir.display())
        }
    }
}

/// Every transcript of `protocol` in the vectors, sorted by path.
///
/// # Panics
///
/// As [`vectors`], or when the directory cannot be listed.
pub fn vector_files_of(protocol: LinkProtocol) -> Vec<VectorFile> {
    let dir = vectors();
    vector_files(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .into_iter()
        .filter(|f| f.protocol == protocol)
        .collect()
}

/// Decodes hex written in a test: whitespace (line breaks, spaces between
/// bytes) is ignored.
///
/// # Panics
///
/// On an odd number of digits or a character that is not a hex digit.
pub fn unhex(text: &str) -> Vec<u8> {
    let digits: String = text.split_whitespace().collect();
    decode_hex(&digits).unwrap_or_else(|e| panic!("{e}: {text:?}"))
}

/// `bytes` cut at each of `points` (sorted offsets; each is clamped to the
/// previous one and to the length), so the pieces concatenate to `bytes`.
pub fn pieces_at<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut last = 0;
    for &point in points {
        let point = point.clamp(last, bytes.len());
        pieces.push(&bytes[last..point]);
        last = point;
    }
    pieces.push(&bytes[last..]);
    pieces
}

/// The seed corpus folder of a cargo-fuzz target: `fuzz/corpus/<target>/`.
pub fn corpus_dir(target: &str) -> PathBuf {
    workspace_root().join("fuzz/corpus").join(target)
}

/// Every seed of a cargo-fuzz target, sorted by file name.
///
/// # Panics
///
/// When the folder or a seed cannot be read: the corpus is checked in, so
/// a missing one is an error.
pub fn fuzz_corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    files_in(&corpus_dir(target))
}

/// Every file of `dir` with its bytes, sorted by path.
fn files_in(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhex_ignores_whitespace_and_rejects_bad_digits() {
        assert_eq!(unhex(" 00 ff\n\tAb "), [0, 0xff, 0xab]);
        assert!(std::panic::catch_unwind(|| unhex("0")).is_err());
        assert!(std::panic::catch_unwind(|| unhex("zz")).is_err());
    }

    #[test]
    fn pieces_concatenate_to_the_input() {
        let bytes: Vec<u8> = (0..10).collect();
        for points in [&[][..], &[0], &[10], &[3, 3, 7], &[5, 2, 20]] {
            let pieces = pieces_at(&bytes, points);
            assert_eq!(pieces.len(), points.len() + 1);
            assert_eq!(pieces.concat(), bytes);
        }
        assert_eq!(pieces_at(&bytes, &[5, 2])[1], &[] as &[u8]);
    }

    #[test]
    fn the_corpus_of_every_target_loads() {
        for target in ["legacy_channel_frame", "ipcz_frame"] {
            assert!(!fuzz_corpus(target).is_empty(), "{target}");
        }
    }
}
