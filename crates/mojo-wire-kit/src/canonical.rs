//! Canonical-encoding checks: every `decode_exact` is `decode`, re-encode,
//! then [`require_canonical`] on the two byte strings.

use std::fmt;

/// Offset of the first byte where `a` and `b` differ (the shorter length if
/// one is a prefix of the other); `None` if they are equal.
///
/// ```
/// use mojo_wire_kit::first_difference;
///
/// assert_eq!(first_difference(b"abc", b"abd"), Some(2));
/// assert_eq!(first_difference(b"ab", b"abc"), Some(2));
/// assert_eq!(first_difference(b"ab", b"ab"), None);
/// ```
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

/// The input of a `decode_exact` was accepted by the lenient decoder but is
/// not the canonical encoding of what it decodes to (non-zero padding, a
/// bool other than 0/1, slack a receiver skips, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotCanonical {
    /// First byte offset (within the input) where input and re-encoding differ.
    pub offset: usize,
    /// The field at that offset, e.g. `"event.padding"`.
    pub field: &'static str,
}

impl fmt::Display for NotCanonical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: not the canonical encoding (first difference at byte {})",
            self.field, self.offset
        )
    }
}

impl std::error::Error for NotCanonical {}

/// Requires `input` (the bytes a lenient decode consumed) to equal
/// `reencoded` (the encoding of the decoded value). Otherwise the error
/// carries the first differing offset and the field `field_at` names for it
/// (for a fixed layout, [`crate::WireLayout::field_at`]).
///
/// ```
/// use mojo_wire_kit::{NotCanonical, require_canonical};
///
/// let name = |o: usize| if o < 4 { "hdr.size" } else { "hdr.padding" };
/// assert_eq!(require_canonical(&[8, 0, 0, 0, 0], &[8, 0, 0, 0, 0], name), Ok(()));
/// assert_eq!(
///     require_canonical(&[8, 0, 0, 0, 1], &[8, 0, 0, 0, 0], name),
///     Err(NotCanonical { offset: 4, field: "hdr.padding" })
/// );
/// ```
pub fn require_canonical(
    input: &[u8],
    reencoded: &[u8],
    field_at: impl FnOnce(usize) -> &'static str,
) -> Result<(), NotCanonical> {
    match first_difference(input, reencoded) {
        None => Ok(()),
        Some(offset) => Err(NotCanonical {
            offset,
            field: field_at(offset),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_cases() {
        assert_eq!(first_difference(b"", b""), None);
        assert_eq!(first_difference(b"", b"a"), Some(0));
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"abc", b"ab"), Some(2));
        assert_eq!(first_difference(b"xbc", b"abd"), Some(0));
    }

    #[test]
    fn require_canonical_names_the_field() {
        assert_eq!(require_canonical(b"ab", b"ab", |_| "x"), Ok(()));
        let e = require_canonical(b"ab", b"aB", |o| if o == 1 { "second" } else { "?" });
        assert_eq!(
            e,
            Err(NotCanonical {
                offset: 1,
                field: "second"
            })
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "second: not the canonical encoding (first difference at byte 1)"
        );
    }
}
