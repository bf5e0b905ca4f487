//! Little-endian reads that never panic, and writes into buffers this crate
//! sized itself.

/// `N` bytes at `at`, or `None` if they are not all inside `b`.
pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    let end = at.checked_add(N)?;
    b.get(at..end)?.try_into().ok()
}

pub(crate) fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    array(b, at).map(u16::from_le_bytes)
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    array(b, at).map(u32::from_le_bytes)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    array(b, at).map(u64::from_le_bytes)
}

pub(crate) fn i64_at(b: &[u8], at: usize) -> Option<i64> {
    array(b, at).map(i64::from_le_bytes)
}

/// Bytes `[at, at + len)` of `b`, if all present.
pub(crate) fn slice(b: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    b.get(at..at.checked_add(len)?)
}

/// Writes `bytes` at `at`. Only used on buffers this crate allocated with the
/// right size; an out-of-range write is silently dropped rather than panicking.
pub(crate) fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(end) = at.checked_add(bytes.len()) {
        if let Some(dst) = b.get_mut(at..end) {
            dst.copy_from_slice(bytes);
        }
    }
}

pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    put(b, at, &v.to_le_bytes());
}

pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    put(b, at, &v.to_le_bytes());
}

/// `(x + 7) & !7`, saturating instead of overflowing.
pub(crate) const fn align8(x: usize) -> usize {
    match x.checked_add(7) {
        Some(v) => v & !7,
        None => usize::MAX & !7,
    }
}

/// Appends zero bytes until `out.len() - base` is a multiple of 8.
pub(crate) fn pad8(out: &mut Vec<u8>, base: usize) {
    let len = out.len().saturating_sub(base);
    out.resize(base + align8(len), 0);
}
