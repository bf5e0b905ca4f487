//! [`Writer`]: appends little-endian values to a `Vec<u8>`; every write at a
//! fixed offset is in range or an error, and every length field goes through
//! a checked conversion ([`checked_len`]).

use crate::error::CodecError;
use crate::layout::WireLayout;

/// Zero runs up to this long (padding to 8-byte alignment) take
/// [`Writer::zeros`]' single-store path.
const ALIGNMENT_PAD_MAX: usize = 8;

/// Appends an encoding to the end of a `Vec<u8>`.
///
/// Appending cannot fail. What can: patching a field at a fixed offset
/// ([`Writer::put_at`]) outside the bytes written so far, and a length that
/// does not fit its wire field ([`checked_len`]); both return a
/// [`CodecError`] rather than dropping the write or saturating. Offsets are
/// relative to where the writer started, so an encoder can append a message
/// to a buffer that already holds others.
///
/// ```
/// use mojo_wire_kit::{Writer, checked_len};
///
/// let mut out = vec![0xaa];
/// let mut w = Writer::new(&mut out);
/// let len_at = w.reserve::<4>();
/// w.u16(7);
/// w.bytes(b"hi");
/// let len = checked_len::<u32>("msg.num_bytes", w.len()).unwrap();
/// w.put_u32_at(len_at, len, "msg.num_bytes").unwrap();
/// assert!(w.put_u32_at(6, 0, "msg.tail").is_err()); // past the end
/// assert_eq!(out, [0xaa, 8, 0, 0, 0, 7, 0, b'h', b'i']);
/// ```
#[derive(Debug)]
pub struct Writer<'o> {
    out: &'o mut Vec<u8>,
    start: usize,
}

macro_rules! int_writes {
    ($($(#[$meta:meta])* $name:ident($ty:ty);)*) => {
        $(
            $(#[$meta])*
            #[inline]
            pub fn $name(&mut self, v: $ty) {
                self.out.extend_from_slice(&v.to_le_bytes());
            }
        )*
    };
}

impl<'o> Writer<'o> {
    /// A writer appending to `out`; offsets count from `out.len()` now.
    #[inline]
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        let start = out.len();
        Self { out, start }
    }

    /// Where in the underlying vector this writer started.
    #[inline]
    pub fn start(&self) -> usize {
        self.start
    }

    /// Bytes written through this writer.
    #[inline]
    pub fn len(&self) -> usize {
        self.out.len().saturating_sub(self.start)
    }

    /// Whether nothing has been written yet.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes written through this writer.
    #[inline]
    pub fn written(&self) -> &[u8] {
        self.out.get(self.start..).unwrap_or(&[])
    }

    /// Appends raw bytes.
    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Appends `n` zero bytes (padding and reserved fields).
    #[inline]
    pub fn zeros(&mut self, n: usize) {
        let len = self.out.len();
        if n <= ALIGNMENT_PAD_MAX {
            // Alignment padding: a constant-size append is one store, where
            // `resize` runs a byte loop and a short slice a `memcpy` call.
            self.out.extend_from_slice(&[0; ALIGNMENT_PAD_MAX]);
            self.out.truncate(len + n);
        } else {
            self.out.resize(len.saturating_add(n), 0);
        }
    }

    /// Appends a C++ `bool` as 0 or 1.
    #[inline]
    pub fn bool(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }

    int_writes! {
        /// Appends a `u8`.
        u8(u8);
        /// Appends a little-endian `u16`.
        u16(u16);
        /// Appends a little-endian `u32`.
        u32(u32);
        /// Appends a little-endian `i32`.
        i32(i32);
        /// Appends a little-endian `u64`.
        u64(u64);
        /// Appends a little-endian `i64`.
        i64(i64);
    }

    /// Appends a fixed layout declared with [`crate::wire_layout!`].
    #[inline]
    pub fn layout<T: WireLayout>(&mut self, value: &T) {
        self.bytes(zerocopy::IntoBytes::as_bytes(value));
    }

    /// Appends `N` zero bytes to be patched later; returns their offset.
    #[inline]
    pub fn reserve<const N: usize>(&mut self) -> usize {
        let at = self.len();
        self.zeros(N);
        at
    }

    /// Appends zeros until [`Writer::len`] is a multiple of `align` (no-op
    /// for `align` 0 or 1).
    #[inline]
    pub fn pad_to(&mut self, align: usize) {
        if align > 1 {
            let rem = self.len() % align;
            if rem != 0 {
                self.zeros(align - rem);
            }
        }
    }

    /// Overwrites `bytes.len()` bytes at `offset`, which must lie inside what
    /// was already written; otherwise nothing is written and the error names
    /// `field`.
    #[inline]
    pub fn put_at(
        &mut self,
        offset: usize,
        bytes: &[u8],
        field: &'static str,
    ) -> Result<(), CodecError> {
        let written = self.len();
        let out_of_range = CodecError::OutOfRange {
            field,
            offset,
            len: bytes.len(),
            written,
        };
        let begin = self.start.checked_add(offset).ok_or(out_of_range)?;
        let end = begin.checked_add(bytes.len()).ok_or(out_of_range)?;
        let slot = self.out.get_mut(begin..end).ok_or(out_of_range)?;
        slot.copy_from_slice(bytes);
        Ok(())
    }

    /// [`Writer::put_at`] for a little-endian `u16`.
    #[inline]
    pub fn put_u16_at(&mut self, at: usize, v: u16, field: &'static str) -> Result<(), CodecError> {
        self.put_at(at, &v.to_le_bytes(), field)
    }

    /// [`Writer::put_at`] for a little-endian `u32`.
    #[inline]
    pub fn put_u32_at(&mut self, at: usize, v: u32, field: &'static str) -> Result<(), CodecError> {
        self.put_at(at, &v.to_le_bytes(), field)
    }

    /// [`Writer::put_at`] for a little-endian `u64`.
    #[inline]
    pub fn put_u64_at(&mut self, at: usize, v: u64, field: &'static str) -> Result<(), CodecError> {
        self.put_at(at, &v.to_le_bytes(), field)
    }

    /// [`Writer::put_at`] for a fixed layout (a header written after the
    /// body it describes).
    #[inline]
    pub fn put_layout_at<T: WireLayout>(
        &mut self,
        at: usize,
        value: &T,
        field: &'static str,
    ) -> Result<(), CodecError> {
        self.put_at(at, zerocopy::IntoBytes::as_bytes(value), field)
    }

    /// Removes everything this writer wrote.
    #[inline]
    pub fn rollback(self) {
        self.out.truncate(self.start);
    }
}

/// Converts a length or count to the integer type of its wire field, or
/// fails with [`CodecError::TooLong`] naming the field (never saturates).
#[inline]
pub fn checked_len<T: TryFrom<usize>>(field: &'static str, len: usize) -> Result<T, CodecError> {
    T::try_from(len).map_err(|_| CodecError::TooLong { field, len })
}

/// Runs `encode` on a [`Writer`] appending to `out`; if it fails, `out` is
/// left exactly as it was (no partial message).
#[inline]
pub fn append_or_rollback<R, E>(
    out: &mut Vec<u8>,
    encode: impl FnOnce(&mut Writer<'_>) -> Result<R, E>,
) -> Result<R, E> {
    let start = out.len();
    let result = encode(&mut Writer::new(out));
    if result.is_err() {
        out.truncate(start);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_little_endian() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.u8(1);
        w.u16(0x0302);
        w.u32(0x0706_0504);
        w.i32(-1);
        w.u64(9);
        w.i64(-2);
        w.bool(true);
        w.bool(false);
        w.zeros(2);
        assert_eq!(w.len(), 1 + 2 + 4 + 4 + 8 + 8 + 2 + 2);
        assert_eq!(&out[..11], &[1, 2, 3, 4, 5, 6, 7, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(&out[out.len() - 4..], &[1, 0, 0, 0]);
    }

    #[test]
    fn writes_at_offsets_stay_inside_what_was_written() {
        let mut out = vec![9, 9];
        let mut w = Writer::new(&mut out);
        assert_eq!(w.start(), 2);
        assert!(w.is_empty());
        let at = w.reserve::<4>();
        assert_eq!(at, 0);
        assert_eq!(w.put_u32_at(at, 5, "len"), Ok(()));
        assert_eq!(w.put_u16_at(2, 1, "len"), Ok(()));
        assert_eq!(
            w.put_u32_at(1, 5, "len"),
            Err(CodecError::OutOfRange {
                field: "len",
                offset: 1,
                len: 4,
                written: 4
            })
        );
        assert!(w.put_u64_at(usize::MAX, 5, "len").is_err());
        assert_eq!(w.written(), &[5, 0, 1, 0]);
        assert_eq!(out, [9, 9, 5, 0, 1, 0]);
    }

    #[test]
    fn zero_runs_of_every_length_append_exactly_that_many_zeros() {
        // Both paths: the single-store one (up to 8) and `resize` beyond.
        for n in 0..=3 * ALIGNMENT_PAD_MAX {
            let mut out = vec![0xee; 3];
            let mut w = Writer::new(&mut out);
            w.zeros(n);
            assert_eq!(w.len(), n);
            w.u8(0x77);
            assert_eq!(out.len(), 3 + n + 1, "n = {n}");
            assert!(out[..3].iter().all(|b| *b == 0xee));
            assert!(out[3..3 + n].iter().all(|b| *b == 0));
            assert_eq!(out[3 + n], 0x77);
        }
    }

    #[test]
    fn padding_aligns_relative_to_the_start() {
        let mut out = vec![0xee];
        let mut w = Writer::new(&mut out);
        w.u8(1);
        w.pad_to(8);
        assert_eq!(w.len(), 8);
        w.pad_to(8);
        assert_eq!(w.len(), 8);
        w.pad_to(0);
        assert_eq!(out.len(), 9);
    }

    #[test]
    fn lengths_are_checked_not_saturated() {
        assert_eq!(checked_len::<u16>("f", 65535), Ok(65535));
        assert_eq!(
            checked_len::<u16>("f", 65536),
            Err(CodecError::TooLong {
                field: "f",
                len: 65536
            })
        );
        assert_eq!(checked_len::<u8>("g", 300).unwrap_err().field(), "g");
    }

    #[test]
    fn failed_encodes_leave_the_buffer_unchanged() {
        let mut out = vec![1];
        let r: Result<(), CodecError> = append_or_rollback(&mut out, |w| {
            w.u64(7);
            checked_len::<u8>("count", 1000).map(|_| ())
        });
        assert!(r.is_err());
        assert_eq!(out, [1]);
        let r: Result<usize, CodecError> = append_or_rollback(&mut out, |w| {
            w.u8(2);
            Ok(w.len())
        });
        assert_eq!(r, Ok(1));
        assert_eq!(out, [1, 2]);
        let mut w = Writer::new(&mut out);
        w.u32(3);
        w.rollback();
        assert_eq!(out, [1, 2]);
    }
}
