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

    /// Reads a one-byte bool that must be 0 or 1.
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(Error::InvalidValue {
                field: what,
                value: u64::from(other),
                reason: "a bool must be 0 or 1",
            }),
        }
    }

    /// Reads `n` padding bytes, which must all be zero.
    pub(crate) fn padding(&mut self, n: usize, what: &'static str) -> Result<()> {
        let bytes = self.take(n, what)?;
        if bytes.iter().all(|&b| b == 0) {
            Ok(())
        } else {
            Err(Error::NonZeroPadding { field: what })
        }
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
    fn reader_checks_bounds_and_padding() {
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
        assert_eq!(
            r.padding(1, "pad"),
            Err(Error::NonZeroPadding { field: "pad" })
        );
        assert_eq!(r.remaining(), 0);
        assert!(r.rest().is_empty());
    }

    #[test]
    fn bool_is_strict() {
        assert_eq!(Reader::new(&[1]).bool("b"), Ok(true));
        assert!(Reader::new(&[2]).bool("b").is_err());
    }
}
