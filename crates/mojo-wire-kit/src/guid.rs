//! [`Guid`]: Chromium's `base::UnguessableToken`, shared by both protocols.

use std::fmt;

/// A 128-bit shared-memory region id (`base::UnguessableToken`). All zero
/// means "no region".
///
/// Chromium serializes the halves in a different order per protocol: the
/// legacy core writes `high` first ([`Guid::to_high_first`]), ipcz writes
/// `low` first ([`Guid::to_low_first`]). Each codec picks its order; the
/// value and its text form are the same.
///
/// ```
/// use mojo_wire_kit::Guid;
///
/// let g = Guid::new(0x0102, 0x0304);
/// assert_eq!(Guid::from_high_first(g.to_high_first()), g);
/// assert_eq!(Guid::from_low_first(g.to_low_first()), g);
/// assert_eq!(g.to_high_first()[0], 0x02);
/// assert_eq!(g.to_low_first()[0], 0x04);
/// assert_eq!(g.to_string(), "00000000000001020000000000000304");
/// assert_eq!(format!("{g:x}"), "00000000000001020000000000000304");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid {
    /// High 64 bits.
    pub high: u64,
    /// Low 64 bits.
    pub low: u64,
}

/// A GUID from one 128-bit number, `high` as its upper half (the platform
/// crate's form of a region id).
impl From<u128> for Guid {
    #[inline]
    fn from(value: u128) -> Self {
        Self {
            high: (value >> 64) as u64,
            low: value as u64,
        }
    }
}

/// The GUID as one 128-bit number, `high` as its upper half.
impl From<Guid> for u128 {
    #[inline]
    fn from(guid: Guid) -> Self {
        (Self::from(guid.high) << 64) | Self::from(guid.low)
    }
}

impl Guid {
    /// Size on the wire.
    pub const LEN: usize = 16;
    /// The all-zero (invalid) token.
    pub const NONE: Self = Self { high: 0, low: 0 };

    /// A token from its halves.
    #[inline]
    pub const fn new(high: u64, low: u64) -> Self {
        Self { high, low }
    }

    /// True unless both halves are zero.
    #[inline]
    pub const fn is_valid(self) -> bool {
        self.high != 0 || self.low != 0
    }

    /// From 16 wire bytes, `high` first (legacy Mojo Core), each half
    /// little-endian.
    #[inline]
    pub fn from_high_first(bytes: [u8; 16]) -> Self {
        let (a, b) = split(bytes);
        Self { high: a, low: b }
    }

    /// From 16 wire bytes, `low` first (ipcz), each half little-endian.
    #[inline]
    pub fn from_low_first(bytes: [u8; 16]) -> Self {
        let (a, b) = split(bytes);
        Self { high: b, low: a }
    }

    /// 16 wire bytes, `high` first (legacy Mojo Core).
    #[inline]
    pub fn to_high_first(self) -> [u8; 16] {
        join(self.high, self.low)
    }

    /// 16 wire bytes, `low` first (ipcz).
    #[inline]
    pub fn to_low_first(self) -> [u8; 16] {
        join(self.low, self.high)
    }
}

#[inline]
fn split(bytes: [u8; 16]) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    for (i, byte) in bytes.into_iter().enumerate() {
        if let Some(slot) = if i < 8 {
            a.get_mut(i)
        } else {
            b.get_mut(i - 8)
        } {
            *slot = byte;
        }
    }
    (u64::from_le_bytes(a), u64::from_le_bytes(b))
}

#[inline]
fn join(first: u64, second: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (slot, byte) in out
        .iter_mut()
        .zip(first.to_le_bytes().into_iter().chain(second.to_le_bytes()))
    {
        *slot = byte;
    }
    out
}

/// Upper-case hex, `high` then `low` (Chromium's `ToString` form).
impl fmt::Display for Guid {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::UpperHex::fmt(self, f)
    }
}

/// `Guid(<upper-case hex>)`.
impl fmt::Debug for Guid {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// 32 upper-case hex digits, `high` then `low`.
impl fmt::UpperHex for Guid {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}{:016X}", self.high, self.low)
    }
}

/// 32 lower-case hex digits, `high` then `low`.
impl fmt::LowerHex for Guid {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.high, self.low)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_round_trip_through_one_u128() {
        let value = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128;
        let guid = Guid::from(value);
        assert_eq!(guid.high, 0x0123_4567_89ab_cdef);
        assert_eq!(guid.low, 0xfedc_ba98_7654_3210);
        assert_eq!(u128::from(guid), value);
    }

    #[test]
    fn byte_orders_and_text() {
        let bytes: [u8; 16] = core::array::from_fn(|i| i as u8 + 1);
        let g = Guid::from_high_first(bytes);
        assert_eq!(g.high, 0x0807_0605_0403_0201);
        assert_eq!(g.low, 0x100f_0e0d_0c0b_0a09);
        assert_eq!(g.to_high_first(), bytes);
        let h = Guid::from_low_first(bytes);
        assert_eq!(h.low, g.high);
        assert_eq!(h.to_low_first(), bytes);
        assert_eq!(format!("{g:?}"), "Guid(0807060504030201100F0E0D0C0B0A09)");
        assert!(!Guid::NONE.is_valid());
        assert!(Guid::new(0, 1).is_valid());
    }
}
