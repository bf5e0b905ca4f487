//! The errors of the toolkit's reader and writer, which each wire crate's
//! own error type wraps (`impl From<CodecError> for Error`).

use std::fmt;

/// What went wrong reading or writing bytes, naming the field concerned.
///
/// Field names are dotted paths such as `"channel.num_bytes"`; they come from
/// the caller (or from a [`crate::WireLayout`] declaration), never from a
/// formatted string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ended before `field` was complete.
    Truncated {
        /// The field (or structure) that did not fit.
        field: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes that were available.
        available: usize,
    },
    /// A length or count does not fit the integer type of its wire field
    /// (for example a payload over 4 GiB behind a `u32` length).
    TooLong {
        /// The length or count field.
        field: &'static str,
        /// The length that does not fit.
        len: usize,
    },
    /// A write at a fixed offset (patching a length or an offset field) fell
    /// outside the bytes written so far.
    OutOfRange {
        /// The field being written.
        field: &'static str,
        /// Offset of the write, relative to the writer's start.
        offset: usize,
        /// Number of bytes of the write.
        len: usize,
        /// Bytes the writer holds.
        written: usize,
    },
}

impl CodecError {
    /// The field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Truncated { field, .. }
            | Self::TooLong { field, .. }
            | Self::OutOfRange { field, .. } => field,
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated {
                field,
                needed,
                available,
            } => write!(
                f,
                "too short for {field}: need {needed} bytes, have {available}"
            ),
            Self::TooLong { field, len } => {
                write!(f, "{field}: length {len} does not fit its wire field")
            }
            Self::OutOfRange {
                field,
                offset,
                len,
                written,
            } => write!(
                f,
                "{field}: write of {len} bytes at {offset} is outside the {written} bytes written"
            ),
        }
    }
}

impl std::error::Error for CodecError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_field() {
        let e = CodecError::Truncated {
            field: "event header",
            needed: 24,
            available: 3,
        };
        assert_eq!(e.field(), "event header");
        assert_eq!(
            e.to_string(),
            "too short for event header: need 24 bytes, have 3"
        );
        let e = CodecError::TooLong {
            field: "frame.num_bytes",
            len: 1 << 33,
        };
        assert_eq!(e.field(), "frame.num_bytes");
        assert!(e.to_string().contains("8589934592"));
    }
}
