//! Legacy-specific pieces on top of the shared toolkit (crate-internal):
//! the channel-message form of the canonical check, and the checked length
//! conversion every encoder uses.

pub(crate) use mojo_wire_kit::{Reader, Writer};
use mojo_wire_kit::{first_difference, require_canonical};

use crate::error::{Error, Result};

/// [`first_difference`] for two channel messages. Their leading `num_bytes`
/// field only follows the length, so a difference there is reported at the
/// first later difference (the field that changed the length) if there is one.
pub(crate) fn first_frame_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    let d = first_difference(a, b)?;
    if d < 4 && a.len() != b.len() {
        let rest = |x: &'_ [u8]| -> Vec<u8> { x.get(4..).unwrap_or(&[]).to_vec() };
        if let Some(later) = first_difference(&rest(a), &rest(b)) {
            return Some(later + 4);
        }
    }
    Some(d)
}

/// The check behind every `decode_exact`, with this crate's error type.
pub(crate) fn require_exact(
    input: &[u8],
    reencoded: &[u8],
    field_at: impl FnOnce(usize) -> &'static str,
) -> Result<()> {
    Ok(require_canonical(input, reencoded, field_at)?)
}

/// The common body of the frame-level `decode_exact`s (broker and
/// NodeChannel frames): `decoded` is what the lenient `decode` returned for
/// `bytes` (the frame and the number of bytes it consumed). Re-encodes the
/// frame with `encode` and requires the consumed bytes to equal that
/// encoding (see [`first_frame_difference`]), naming the first differing
/// field with `field_at`; on success returns `decoded` unchanged.
pub(crate) fn require_exact_frame<T>(
    bytes: &[u8],
    decoded: (T, usize),
    encode: impl FnOnce(&T, &mut Vec<u8>) -> Result<usize>,
    field_at: impl FnOnce(&T, usize) -> &'static str,
) -> Result<(T, usize)> {
    let (frame, used) = decoded;
    let mut out = Vec::with_capacity(used);
    encode(&frame, &mut out)?;
    let input = bytes.get(..used).unwrap_or(&[]);
    match first_frame_difference(input, &out) {
        None => Ok((frame, used)),
        Some(offset) => Err(Error::NotCanonical {
            offset,
            field: field_at(&frame, offset),
        }),
    }
}

/// A length or count as the `u32` of its wire field, or
/// [`Error::Codec`] naming the field (never saturated).
pub(crate) fn len_u32(field: &'static str, len: usize) -> Result<u32> {
    Ok(mojo_wire_kit::checked_len(field, len)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_difference_names_the_cause_of_a_length_change() {
        // A length change shows in num_bytes first; the cause is named.
        let a = [9, 0, 0, 0, 1, 2, 3, 4, 5];
        let b = [8, 0, 0, 0, 1, 2, 3, 5];
        assert_eq!(first_frame_difference(&a, &b), Some(7));
        assert_eq!(first_frame_difference(&a[..8], &b), Some(0));
        assert_eq!(first_frame_difference(&a, &a), None);
        assert_eq!(require_exact(b"ab", b"ab", |_| "x"), Ok(()));
        assert_eq!(
            require_exact(b"ab", b"aB", |o| if o == 1 { "second" } else { "?" }),
            Err(Error::NotCanonical {
                offset: 1,
                field: "second"
            })
        );
    }

    #[test]
    fn lengths_are_checked() {
        assert_eq!(len_u32("n", 5), Ok(5));
        #[cfg(target_pointer_width = "64")]
        assert_eq!(len_u32("n", 1 << 32).unwrap_err().field(), "n");
    }

    #[test]
    fn reader_errors_keep_the_truncated_shape() {
        let e: Error = Reader::new(&[1]).u32("b").unwrap_err().into();
        assert_eq!(
            e,
            Error::Truncated {
                what: "b",
                needed: 4,
                available: 1
            }
        );
    }
}
