//! The error type shared by every parser and encoder of this crate.

use std::fmt;

use mojo_wire_kit::{CodecError, ExactDecodeError, NotCanonical};

/// What was wrong with some input bytes (or with a value handed to an encoder).
///
/// Every variant names the structure or field concerned with a dotted path such
/// as `"channel.num_header_bytes"` or `"event.padding"`, so that a log line
/// tells exactly where a peer broke the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before a structure was complete.
    Truncated {
        /// The structure that did not fit, e.g. `"ACCEPT_INVITEE body"`.
        what: &'static str,
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes that were available.
        available: usize,
    },
    /// The input is valid (a Chromium receiver accepts it) but is not the
    /// canonical encoding of what it decodes to: a padding or reserved byte is
    /// not zero, a bool is not 0/1, a size leaves slack Chromium skips, and
    /// so on. Only the `decode_exact` functions return this; re-encoding the
    /// leniently parsed value gives the canonical bytes.
    NotCanonical {
        /// First byte offset (within the bytes given to `decode_exact`) where
        /// the input and the canonical re-encoding differ.
        offset: usize,
        /// The field at that offset, e.g. `"event.padding"`.
        field: &'static str,
    },
    /// A field holds a value the protocol does not allow.
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The value found (sign-extended or zero-extended to 64 bits).
        value: u64,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A size or count exceeds one of the limits in [`crate::limits`].
    LimitExceeded {
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// A length or count does not fit the integer type of its wire field, or
    /// an encoder patched a field outside what it wrote (see
    /// [`CodecError`]); never a silent truncation.
    Codec(CodecError),
    /// A count or size disagrees with what another field or the context implies.
    Mismatch {
        /// The field.
        field: &'static str,
        /// The value implied by the rest of the message.
        expected: u64,
        /// The value found.
        actual: u64,
    },
}

impl Error {
    /// The field or structure the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Truncated { what, .. } => what,
            Self::NotCanonical { field, .. }
            | Self::InvalidValue { field, .. }
            | Self::LimitExceeded { field, .. }
            | Self::Mismatch { field, .. } => field,
            Self::Codec(e) => e.field(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "too short for {what}: need {needed} bytes, have {available}"
            ),
            Self::NotCanonical { offset, field } => write!(
                f,
                "{field}: not the canonical encoding (first difference at byte {offset})"
            ),
            Self::InvalidValue {
                field,
                value,
                reason,
            } => write!(f, "{field}: invalid value {value} ({reason})"),
            Self::LimitExceeded {
                field,
                value,
                limit,
            } => write!(f, "{field}: {value} exceeds the limit {limit}"),
            Self::Mismatch {
                field,
                expected,
                actual,
            } => write!(f, "{field}: expected {expected}, found {actual}"),
            Self::Codec(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

/// A short read keeps the crate's `Truncated` shape; other codec errors are
/// wrapped.
impl From<CodecError> for Error {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Truncated {
                field,
                needed,
                available,
            } => Self::Truncated {
                what: field,
                needed,
                available,
            },
            other => Self::Codec(other),
        }
    }
}

impl From<NotCanonical> for Error {
    fn from(e: NotCanonical) -> Self {
        Self::NotCanonical {
            offset: e.offset,
            field: e.field,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl ExactDecodeError for Error {
    fn not_canonical_offset(&self) -> Option<usize> {
        match self {
            Self::NotCanonical { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_field() {
        let e = Error::Truncated {
            what: "ACCEPT_INVITEE body",
            needed: 32,
            available: 20,
        };
        assert_eq!(
            e.to_string(),
            "too short for ACCEPT_INVITEE body: need 32 bytes, have 20"
        );
        assert_eq!(e.field(), "ACCEPT_INVITEE body");
        let e = Error::NotCanonical {
            offset: 4,
            field: "event.padding",
        };
        assert_eq!(e.field(), "event.padding");
        assert_eq!(
            e.to_string(),
            "event.padding: not the canonical encoding (first difference at byte 4)"
        );
    }
}
