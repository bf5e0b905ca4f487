//! 128-bit names (nodes, ports, invitation tokens) and shared-memory guids.

use std::fmt;

/// A 128-bit name: two little-endian `u64`s, `v1` at offset 0 and `v2` at
/// offset 8 (16 bytes on the wire). The all-zero name is the invalid name.
///
/// Names order as the pair `(v1, v2)`, which is the order Chromium uses to pick
/// the merging side of an isolated connection.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    /// First word (offset 0).
    pub v1: u64,
    /// Second word (offset 8).
    pub v2: u64,
}

/// A node name (`NodeName` in Chromium).
pub type NodeName = Name;
/// A port name (`PortName` in Chromium).
pub type PortName = Name;

impl Name {
    /// Size on the wire.
    pub const LEN: usize = 16;
    /// The invalid (all-zero) name, `kInvalidNodeName` / `kInvalidPortName`.
    pub const INVALID: Self = Self { v1: 0, v2: 0 };

    /// Builds a name from its two words.
    pub const fn new(v1: u64, v2: u64) -> Self {
        Self { v1, v2 }
    }

    /// Builds a name from its 16 wire bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&bytes[..8]);
        b.copy_from_slice(&bytes[8..]);
        Self {
            v1: u64::from_le_bytes(a),
            v2: u64::from_le_bytes(b),
        }
    }

    /// The 16 wire bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.v1.to_le_bytes());
        out[8..].copy_from_slice(&self.v2.to_le_bytes());
        out
    }

    /// True for every name but the all-zero one.
    pub fn is_valid(self) -> bool {
        self != Self::INVALID
    }
}

/// Chromium's log form: upper-case hex of `v1`, then `.` and the hex of `v2`
/// if `v2` is not zero.
impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", self.v1)?;
        if self.v2 != 0 {
            write!(f, ".{:X}", self.v2)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// A 128-bit shared-memory region id (`base::UnguessableToken`): `high` then
/// `low`, each a little-endian `u64`. All zero means "no region".
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid {
    /// High word (written first).
    pub high: u64,
    /// Low word.
    pub low: u64,
}

impl Guid {
    /// Size on the wire.
    pub const LEN: usize = 16;

    /// True unless both words are zero.
    pub fn is_valid(self) -> bool {
        self.high != 0 || self.low != 0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}{:016X}", self.high, self.low)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_text_form() {
        // BN of the libchrome-profile run in spec section 7.
        let bytes = [
            0x39, 0x9b, 0xb7, 0x54, 0xf6, 0x12, 0xaf, 0x83, 0x8f, 0xe0, 0xba, 0xb4, 0x08, 0x0a,
            0x0f, 0x94,
        ];
        let n = Name::from_bytes(bytes);
        assert_eq!(n.v1, 0x83af_12f6_54b7_9b39);
        assert_eq!(n.v2, 0x940f_0a08_b4ba_e08f);
        assert_eq!(n.to_bytes(), bytes);
        assert_eq!(n.to_string(), "83AF12F654B79B39.940F0A08B4BAE08F");
        assert_eq!(Name::new(0xab, 0).to_string(), "AB");
        assert!(!Name::INVALID.is_valid());
        assert!(Name::new(1, 0) < Name::new(0, 5).max(Name::new(1, 1)));
    }
}
