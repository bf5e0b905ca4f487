//! [`Reader`]: a bounds-checked cursor over untrusted little-endian bytes
//! whose every read names the field it reads.

use crate::error::CodecError;
use crate::layout::WireLayout;

/// A cursor over untrusted bytes. Every read is bounds-checked and names the
/// field it reads, so a truncated input fails with the name of the first
/// field that did not fit. Nothing here panics.
///
/// ```
/// use mojo_wire_kit::{CodecError, Reader};
///
/// let mut r = Reader::new(&[7, 0, 0, 0, 1]);
/// assert_eq!(r.u32("header.size"), Ok(7));
/// assert_eq!(
///     r.u16("header.flags"),
///     Err(CodecError::Truncated { field: "header.flags", needed: 2, available: 1 })
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

macro_rules! int_reads {
    ($($(#[$meta:meta])* $name:ident -> $ty:ty;)*) => {
        $(
            $(#[$meta])*
            #[inline]
            pub fn $name(&mut self, field: &'static str) -> Result<$ty, CodecError> {
                self.array(field).map(<$ty>::from_le_bytes)
            }
        )*
    };
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `buf`.
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A cursor over the same bytes at position `pos` (which may be past the
    /// end: every read then fails as truncated). For positional reads such as
    /// fields at fixed offsets and arrays found through offset fields.
    #[inline]
    pub fn at(&self, pos: usize) -> Self {
        Self { buf: self.buf, pos }
    }

    /// All the bytes, read or not.
    #[inline]
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Bytes read so far (the offset of the next read).
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Fails, naming `field`, unless at least `n` bytes remain.
    #[inline]
    pub fn need(&self, n: usize, field: &'static str) -> Result<(), CodecError> {
        if self.remaining() < n {
            Err(self.truncated(n, field))
        } else {
            Ok(())
        }
    }

    /// The error for `field` needing `n` bytes where fewer remain.
    #[inline]
    fn truncated(&self, n: usize, field: &'static str) -> CodecError {
        CodecError::Truncated {
            field,
            needed: n,
            available: self.remaining(),
        }
    }

    /// The bytes not yet read (empty when the position is past the end).
    #[inline]
    fn unread(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// The next `n` bytes, borrowed from the input.
    #[inline]
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CodecError> {
        match self.unread().get(..n) {
            Some(out) => {
                // `pos + n` is at most `buf.len()`: no overflow.
                self.pos += n;
                Ok(out)
            }
            None => Err(self.truncated(n, field)),
        }
    }

    /// The next `N` bytes, copied.
    #[inline]
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CodecError> {
        match self.unread().first_chunk::<N>() {
            Some(out) => {
                self.pos += N;
                Ok(*out)
            }
            None => Err(self.truncated(N, field)),
        }
    }

    /// Everything not yet read (empty at the end).
    #[inline]
    pub fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        out
    }

    /// Skips `n` padding or reserved bytes (bounds-checked). Their content is
    /// not looked at: receivers ignore it, and canonical-encoding checks
    /// ([`crate::require_canonical`]) are where non-zero padding shows.
    #[inline]
    pub fn padding(&mut self, n: usize, field: &'static str) -> Result<(), CodecError> {
        self.take(n, field).map(|_| ())
    }

    /// Reads a one-byte C++ `bool`: any non-zero byte is true, as a C++
    /// receiver that copies the byte sees it (the canonical encoding is 1).
    #[inline]
    pub fn bool(&mut self, field: &'static str) -> Result<bool, CodecError> {
        Ok(self.u8(field)? != 0)
    }

    int_reads! {
        /// A `u8`.
        u8 -> u8;
        /// A little-endian `u16`.
        u16 -> u16;
        /// A little-endian `u32`.
        u32 -> u32;
        /// A little-endian `i32`.
        i32 -> i32;
        /// A little-endian `u64`.
        u64 -> u64;
        /// A little-endian `i64`.
        i64 -> i64;
    }

    /// A fixed layout declared with [`crate::wire_layout!`], copied out of
    /// the input. If the input is short, the error names the first field of
    /// the layout that does not fit, exactly as reading the fields one by
    /// one would.
    #[inline]
    pub fn layout<T: WireLayout>(&mut self) -> Result<T, CodecError> {
        match T::prefix_ref(self.unread()) {
            Some(value) => {
                self.pos += T::SIZE;
                Ok(*value)
            }
            None => Err(T::truncation(self.remaining())),
        }
    }

    /// A fixed layout borrowed from the input (no copy; the layout is
    /// unaligned, so any offset works). A short input is reported as
    /// `field` needing the whole layout.
    #[inline]
    pub fn layout_ref<T: WireLayout>(&mut self, field: &'static str) -> Result<&'a T, CodecError> {
        match T::prefix_ref(self.unread()) {
            Some(value) => {
                self.pos += T::SIZE;
                Ok(value)
            }
            None => Err(self.truncated(T::SIZE, field)),
        }
    }

    /// [`Reader::layout`], but a short input is reported as `field` needing
    /// the whole layout (for structures checked as a whole).
    #[inline]
    pub fn layout_as<T: WireLayout>(&mut self, field: &'static str) -> Result<T, CodecError> {
        self.layout_ref::<T>(field).copied()
    }

    /// `count` consecutive layouts, borrowed from the input (no copy). The
    /// element type is unaligned, so any input offset works.
    #[inline]
    pub fn slice_of<T: WireLayout>(
        &mut self,
        count: usize,
        field: &'static str,
    ) -> Result<&'a [T], CodecError> {
        let len = count
            .checked_mul(T::SIZE)
            .ok_or(CodecError::TooLong { field, len: count })?;
        let bytes = self.take(len, field)?;
        <[T] as zerocopy::FromBytes>::ref_from_bytes_with_elems(bytes, count).map_err(|_| {
            CodecError::Truncated {
                field,
                needed: len,
                available: bytes.len(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_check_bounds_and_name_the_field() {
        let mut r = Reader::new(&[1, 0, 0, 0, 9]);
        assert_eq!(r.u32("a"), Ok(1));
        assert_eq!(r.position(), 4);
        assert_eq!(
            r.u32("b"),
            Err(CodecError::Truncated {
                field: "b",
                needed: 4,
                available: 1
            })
        );
        assert_eq!(r.padding(1, "pad"), Ok(()));
        assert_eq!(r.remaining(), 0);
        assert!(r.padding(1, "pad").is_err());
        assert!(r.rest().is_empty());
    }

    #[test]
    fn every_integer_width_is_little_endian() {
        let bytes: Vec<u8> = (1..=8).collect();
        let r = Reader::new(&bytes);
        assert_eq!(r.at(0).u8("x"), Ok(1));
        assert_eq!(r.at(0).u16("x"), Ok(0x0201));
        assert_eq!(r.at(0).u32("x"), Ok(0x0403_0201));
        assert_eq!(r.at(0).i32("x"), Ok(0x0403_0201));
        assert_eq!(r.at(0).u64("x"), Ok(0x0807_0605_0403_0201));
        assert_eq!(r.at(0).i64("x"), Ok(0x0807_0605_0403_0201));
        assert_eq!(Reader::new(&[0xff; 4]).i32("x"), Ok(-1));
        assert_eq!(r.at(6).u16("x"), Ok(0x0807));
        assert!(r.at(7).u16("x").is_err());
        assert!(r.at(usize::MAX).u8("x").is_err());
        assert_eq!(r.at(usize::MAX).remaining(), 0);
        assert_eq!(r.bytes(), &bytes[..]);
    }

    #[test]
    fn bool_is_any_non_zero_byte() {
        assert_eq!(Reader::new(&[0]).bool("b"), Ok(false));
        assert_eq!(Reader::new(&[1]).bool("b"), Ok(true));
        assert_eq!(Reader::new(&[2]).bool("b"), Ok(true));
        assert!(Reader::new(&[]).bool("b").is_err());
    }

    #[test]
    fn take_and_rest_borrow() {
        let data = [1, 2, 3, 4, 5];
        let mut r = Reader::new(&data);
        assert_eq!(r.take(2, "x"), Ok(&data[..2]));
        assert_eq!(r.array::<1>("y"), Ok([3]));
        assert_eq!(r.need(3, "z").unwrap_err().field(), "z");
        assert_eq!(r.rest(), &data[3..]);
        assert_eq!(r.rest(), &[] as &[u8]);
    }
}
