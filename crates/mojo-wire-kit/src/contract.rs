//! The decoding contract that every fuzz oracle of both wire crates checks
//! (`mojo_legacy_wire::fuzzing`, `ipcz_wire::fuzzing`, run by the cargo-fuzz
//! targets and by `cargo test`), written once as [`contract!`](crate::contract).

use std::fmt;

use crate::NotCanonical;

/// An error a `decode_exact` returns: says whether it is the verdict "valid,
/// but not the canonical encoding", and where the bytes first differ.
pub trait ExactDecodeError: fmt::Debug + fmt::Display + PartialEq {
    /// The first differing offset, when the bytes decode leniently but are
    /// not the canonical encoding; `None` for every other error.
    fn not_canonical_offset(&self) -> Option<usize>;
}

impl ExactDecodeError for NotCanonical {
    fn not_canonical_offset(&self) -> Option<usize> {
        Some(self.offset)
    }
}

/// Checks the decoding contract of one layer on arbitrary input, panicking
/// (the fuzzer's finding) where it does not hold:
///
/// * if the lenient decode fails, the exact one fails with the same error;
/// * if it succeeds, the re-encoding of its value is canonical: it decodes
///   exactly, whole, to the same value;
/// * the exact decode succeeds exactly when that re-encoding equals the
///   bytes consumed, and then yields the same value; otherwise its error is
///   the not-canonical verdict ([`ExactDecodeError`]) at the first differing
///   offset (as `$diff`, by default [`first_difference`](crate::first_difference),
///   computes it).
///
/// `$decode` and `$exact` map a byte slice to `Result<(value, consumed), E>`;
/// `$encode` appends a value's encoding to a `Vec<u8>`. Evaluates to
/// `Some((value, consumed))` when the lenient decode succeeded. (A macro
/// rather than a function so that values borrowed from the input and from
/// the re-encoding compare without naming their lifetimes.)
///
/// ```
/// use mojo_wire_kit::{NotCanonical, contract, require_canonical};
///
/// // A one-byte bool: any non-zero byte reads as true, only 0 and 1 are canonical.
/// fn decode(b: &[u8]) -> Result<(bool, usize), NotCanonical> {
///     let first = b.first().ok_or(NotCanonical { offset: 0, field: "flag" })?;
///     Ok((*first != 0, 1))
/// }
/// fn decode_exact(b: &[u8]) -> Result<(bool, usize), NotCanonical> {
///     let (value, used) = decode(b)?;
///     require_canonical(&b[..used], &[u8::from(value)], |_| "flag")?;
///     Ok((value, used))
/// }
/// let encode = |v: &bool, out: &mut Vec<u8>| out.push(u8::from(*v));
/// for input in [&[][..], &[0], &[1, 9], &[7]] {
///     contract!("flag", input, decode, decode_exact, encode);
/// }
/// assert_eq!(contract!("flag", &[7], decode, decode_exact, encode), Some((true, 1)));
/// ```
#[macro_export]
macro_rules! contract {
    ($what:expr, $data:expr, $decode:expr, $exact:expr, $encode:expr) => {
        $crate::contract!(
            $what,
            $data,
            $decode,
            $exact,
            $encode,
            $crate::first_difference
        )
    };
    ($what:expr, $data:expr, $decode:expr, $exact:expr, $encode:expr, $diff:expr) => {{
        let what: &str = $what;
        let data: &[u8] = $data;
        match $decode(data) {
            Err(e) => {
                assert_eq!(
                    $exact(data).map(|_| ()),
                    Err(e),
                    "{what}: decode_exact disagrees with decode on an error"
                );
                None
            }
            Ok((value, used)) => {
                let used: usize = used;
                let consumed = data
                    .get(..used)
                    .expect("a decoder consumes at most its input");
                let mut out = Vec::new();
                $encode(&value, &mut out);
                match $exact(data) {
                    Ok((v, n)) => {
                        assert_eq!(
                            out, consumed,
                            "{what}: decode_exact accepted non-canonical bytes"
                        );
                        assert_eq!(
                            (&v, n),
                            (&value, used),
                            "{what}: decode_exact differs from decode"
                        );
                    }
                    Err(e) => match $crate::ExactDecodeError::not_canonical_offset(&e) {
                        Some(offset) => {
                            assert_ne!(
                                out, consumed,
                                "{what}: decode_exact rejected canonical bytes"
                            );
                            assert_eq!(
                                Some(offset),
                                $diff(consumed, &out),
                                "{what}: NotCanonical offset"
                            );
                        }
                        None => panic!("{what}: decode_exact failed where decode did not: {e}"),
                    },
                }
                // The re-encoding is canonical and decodes to the same value.
                match $exact(&out[..]) {
                    Ok((again, n)) => {
                        assert_eq!(n, out.len(), "{what}: re-encoding length");
                        assert_eq!(
                            again, value,
                            "{what}: decode(encode(decode(x))) != decode(x)"
                        );
                    }
                    Err(e) => panic!("{what}: re-encoding is not canonical: {e}"),
                }
                Some((value, used))
            }
        }
    }};
}
