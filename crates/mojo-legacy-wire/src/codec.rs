//! Bounds-checked little-endian reading and writing helpers (crate-internal).

use crate::error::{Error, Result};
use crate::name::{Guid, Name};

/// A cursor over untrusted bytes. Every read is bounds-checked and names the
/// field it reads, so errors say what was missing.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Fails unless at least `n` bytes remain.
    pub(crate) fn need(&self, n: usize, what: &'static str) -> Result<()> {
        if self.remaining() < n {
            Err(Error::Truncated {
                what,
                needed: n,
                available: self.remaining(),
            })
        } else {
            Ok(())
        }
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        self.need(n, what)?;
        let end = self.pos + n;
        let out = self.buf.get(self.pos..end).ok_or(Error::Truncated {
            what,
            needed: n,
            available: 0,
        })?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Everything not yet read.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        out
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn i32(&mut self, what: &'static str) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    pub(crate) fn name(&mut self, what: &'static str) -> Result<Name> {
        let v1 = self.u64(what)?;
        let v2 = self.u64(what)?;
        Ok(Name { v1, v2 })
    }

    pub(crate) fn guid(&mut self, what: &'static str) -> Result<Guid> {
        let high = self.u64(what)?;
        let low = self.u64(what)?;
        Ok(Guid { high, low })
    }

    /// Reads a one-byte C++ `bool`. Chromium copies the byte without
    /// validating it, so any non-zero value reads as true (the canonical
    /// encoding is 1, which `parse_exact` demands).
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool> {
        Ok(self.u8(what)? != 0)
    }

    /// Skips `n` padding or reserved bytes (bounds-checked). Chromium never
    /// reads them, so their content is ignored here too; encoders write
    /// zeros and `parse_exact` demands zeros.
    pub(crate) fn padding(&mut self, n: usize, what: &'static str) -> Result<()> {
        self.take(n, what).map(|_| ())
    }
}

/// Offset of the first byte where `a` and `b` differ (the shorter length if
/// one is a prefix of the other); `None` if they are equal.
pub(crate) fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
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

/// [`first_difference`] for two channel messages. Their leading `num_bytes`
/// field only follows the length, so a difference there is reported at the
/// first later difference (the field that changed the length) if there is one.
pub(crate) fn first_frame_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    let d = first_difference(a, b)?;
    if d < 4 {
        let rest = |x: &[u8]| x.get(4..).unwrap_or(&[]).to_vec();
        if let Some(later) = first_difference(&rest(a), &rest(b)) {
            if a.len() != b.len() {
                return Some(later + 4);
            }
        }
    }
    Some(d)
}

/// [`require_canonical`] for a whole channel message (see
/// [`first_frame_difference`]).
pub(crate) fn require_canonical_frame(
    input: &[u8],
    canonical: &[u8],
    field_at: impl FnOnce(usize) -> &'static str,
) -> Result<()> {
    match first_frame_difference(input, canonical) {
        None => Ok(()),
        Some(offset) => Err(Error::NotCanonical {
            offset,
            field: field_at(offset),
        }),
    }
}

/// The common body of the frame-level `parse_exact`s (broker and NodeChannel
/// frames): `parsed` is what the lenient `parse` returned for `bytes` (the
/// frame and the number of bytes it consumed). Re-encodes the frame with
/// `encode` and requires the consumed bytes to equal that encoding (see
/// [`require_canonical_frame`]), naming the first differing field with
/// `field_at`; on success returns `parsed` unchanged.
pub(crate) fn require_canonical_frame_encoding<T>(
    bytes: &[u8],
    parsed: (T, usize),
    encode: impl FnOnce(&T, &mut Vec<u8>) -> Result<usize>,
    field_at: impl FnOnce(&T, usize) -> &'static str,
) -> Result<(T, usize)> {
    let (frame, used) = parsed;
    let mut out = Vec::with_capacity(used);
    encode(&frame, &mut out)?;
    require_canonical_frame(bytes.get(..used).unwrap_or(&[]), &out, |o| {
        field_at(&frame, o)
    })?;
    Ok((frame, used))
}

/// The check behind every `parse_exact`: `input` (the bytes a lenient parse
/// consumed) must equal `canonical` (the re-encoding of the parsed value).
/// Otherwise the error names the field `field_at` reports for the first
/// differing offset.
pub(crate) fn require_canonical(
    input: &[u8],
    canonical: &[u8],
    field_at: impl FnOnce(usize) -> &'static str,
) -> Result<()> {
    match first_difference(input, canonical) {
        None => Ok(()),
        Some(offset) => Err(Error::NotCanonical {
            offset,
            field: field_at(offset),
        }),
    }
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_name(out: &mut Vec<u8>, n: Name) {
    put_u64(out, n.v1);
    put_u64(out, n.v2);
}

pub(crate) fn put_guid(out: &mut Vec<u8>, g: Guid) {
    put_u64(out, g.high);
    put_u64(out, g.low);
}

pub(crate) fn put_zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

/// Converts a length to `u32`, saturating (a frame that large is rejected by
/// the frame encoder anyway).
pub(crate) fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_checks_bounds_and_skips_padding() {
        let mut r = Reader::new(&[1, 0, 0, 0, 9]);
        assert_eq!(r.u32("a").unwrap(), 1);
        assert!(matches!(
            r.u32("b"),
            Err(Error::Truncated {
                what: "b",
                needed: 4,
                available: 1
            })
        ));
        assert_eq!(r.padding(1, "pad"), Ok(()));
        assert_eq!(r.remaining(), 0);
        assert!(r.padding(1, "pad").is_err());
        assert!(r.rest().is_empty());
    }

    #[test]
    fn bool_is_any_non_zero_byte() {
        assert_eq!(Reader::new(&[0]).bool("b"), Ok(false));
        assert_eq!(Reader::new(&[1]).bool("b"), Ok(true));
        assert_eq!(Reader::new(&[2]).bool("b"), Ok(true));
        assert!(Reader::new(&[]).bool("b").is_err());
    }

    #[test]
    fn canonical_check_names_the_first_difference() {
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"ab", b"abc"), Some(2));
        assert_eq!(require_canonical(b"ab", b"ab", |_| "x"), Ok(()));
        // A length change shows in num_bytes first; the cause is named.
        let a = [9, 0, 0, 0, 1, 2, 3, 4, 5];
        let b = [8, 0, 0, 0, 1, 2, 3, 5];
        assert_eq!(first_frame_difference(&a, &b), Some(7));
        assert_eq!(first_frame_difference(&a[..8], &b), Some(0));
        assert_eq!(first_frame_difference(&a, &a), None);
        assert_eq!(
            require_canonical(b"ab", b"aB", |o| if o == 1 { "second" } else { "?" }),
            Err(Error::NotCanonical {
                offset: 1,
                field: "second"
            })
        );
    }
}
