//! 128-bit names: node names, port names and invitation tokens, as distinct
//! types so that one can never silently stand in for another.
//!
//! On the wire each is two little-endian `u64`s: `high` (Chromium's `v1`) at
//! offset 0, then `low` (`v2`) at offset 8. Shared-memory region ids are
//! [`mojo_wire_kit::Guid`], also `high` first in this protocol.

use std::fmt;

use mojo_wire_kit::le::U64;
use mojo_wire_kit::{Guid, WireLayout};

mojo_wire_kit::wire_layout! {
    /// The 16 wire bytes of a name or a guid (crate-internal).
    pub(crate) struct WireName: size 16, names "name" {
        /// First word (Chromium's `v1`, or a guid's high half).
        pub(crate) high: U64,
        /// Second word (`v2`, or a guid's low half).
        pub(crate) low: U64,
    }
}

impl WireName {
    pub(crate) fn new(high: u64, low: u64) -> Self {
        Self {
            high: U64::new(high),
            low: U64::new(low),
        }
    }
}

impl From<WireName> for Guid {
    fn from(w: WireName) -> Self {
        Self::new(w.high.get(), w.low.get())
    }
}

impl From<Guid> for WireName {
    fn from(g: Guid) -> Self {
        Self::new(g.high, g.low)
    }
}

/// A typed value held in a layout field, and the field's wire type
/// (crate-internal): what lets one catalog line map a typed struct field to
/// its layout field.
pub(crate) trait WireValue: Sized {
    /// The layout field type.
    type Wire: Copy;
    /// The typed value of a wire field.
    fn from_wire(w: Self::Wire) -> Self;
    /// The wire field of a typed value.
    fn to_wire(&self) -> Self::Wire;
}

macro_rules! int_wire_value {
    ($($ty:ty => $wire:ident),*) => {
        $(
            impl WireValue for $ty {
                type Wire = mojo_wire_kit::le::$wire;
                fn from_wire(w: Self::Wire) -> Self {
                    w.get()
                }
                fn to_wire(&self) -> Self::Wire {
                    Self::Wire::new(*self)
                }
            }
        )*
    };
}

int_wire_value!(u32 => U32, u64 => U64);

impl WireValue for Guid {
    type Wire = WireName;
    fn from_wire(w: WireName) -> Self {
        w.into()
    }
    fn to_wire(&self) -> WireName {
        (*self).into()
    }
}

macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident, $invalid_doc:literal) => {
        $(#[$meta])*
        ///
        /// Names order as the pair `(high, low)`, which is the order Chromium
        /// uses to pick the merging side of an isolated connection.
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name {
            /// First word (offset 0; Chromium's `v1`).
            pub high: u64,
            /// Second word (offset 8; Chromium's `v2`).
            pub low: u64,
        }

        impl $name {
            /// Size on the wire.
            pub const LEN: usize = 16;
            #[doc = $invalid_doc]
            pub const INVALID: Self = Self { high: 0, low: 0 };

            /// Builds a name from its two words.
            pub const fn new(high: u64, low: u64) -> Self {
                Self { high, low }
            }

            /// Builds a name from its 16 wire bytes.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                let w = WireName::from_zero_extended(&bytes);
                Self::new(w.high.get(), w.low.get())
            }

            /// The 16 wire bytes.
            pub fn to_bytes(self) -> [u8; 16] {
                let mut out = [0u8; 16];
                for (slot, byte) in out.iter_mut().zip(WireName::from(self).wire_bytes()) {
                    *slot = *byte;
                }
                out
            }

            /// True for every name but the all-zero one.
            pub fn is_valid(self) -> bool {
                self != Self::INVALID
            }
        }

        impl WireValue for $name {
            type Wire = WireName;
            fn from_wire(w: WireName) -> Self {
                w.into()
            }
            fn to_wire(&self) -> WireName {
                (*self).into()
            }
        }

        impl From<[u8; 16]> for $name {
            fn from(bytes: [u8; 16]) -> Self {
                Self::from_bytes(bytes)
            }
        }

        impl From<WireName> for $name {
            fn from(w: WireName) -> Self {
                Self::new(w.high.get(), w.low.get())
            }
        }

        impl From<$name> for WireName {
            fn from(n: $name) -> Self {
                Self::new(n.high, n.low)
            }
        }

        /// Chromium's log form: upper-case hex of `high`, then `.` and the hex
        /// of `low` if `low` is not zero.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:X}", self.high)?;
                if self.low != 0 {
                    write!(f, ".{:X}", self.low)?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}

name_type!(
    /// A node name (`ports::NodeName`). The all-zero name is invalid.
    NodeName,
    "The invalid (all-zero) name, `kInvalidNodeName`."
);
name_type!(
    /// A port name (`ports::PortName`). The all-zero name is invalid.
    PortName,
    "The invalid (all-zero) name, `kInvalidPortName`."
);
name_type!(
    /// A 128-bit token: the invitation token of `ACCEPT_INVITEE` /
    /// `ACCEPT_INVITATION` (also the invitee's temporary node name) and the
    /// per-side token of `ACCEPT_PEER`.
    Token,
    "The all-zero token."
);

impl Token {
    /// The node name a token stands for while the invitee has no name of
    /// its own (Chromium uses the invitation token as the temporary name).
    pub fn as_node_name(self) -> NodeName {
        NodeName::new(self.high, self.low)
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
        let n = NodeName::from_bytes(bytes);
        assert_eq!(n.high, 0x83af_12f6_54b7_9b39);
        assert_eq!(n.low, 0x940f_0a08_b4ba_e08f);
        assert_eq!(n.to_bytes(), bytes);
        assert_eq!(n.to_string(), "83AF12F654B79B39.940F0A08B4BAE08F");
        assert_eq!(PortName::new(0xab, 0).to_string(), "AB");
        assert_eq!(format!("{:?}", PortName::new(0xab, 0)), "PortName(AB)");
        assert!(!NodeName::INVALID.is_valid());
        assert!(PortName::new(1, 0) < PortName::new(0, 5).max(PortName::new(1, 1)));
        assert_eq!(Token::new(1, 2).as_node_name(), NodeName::new(1, 2));
        let g = Guid::from(WireName::new(3, 4));
        assert_eq!((g.high, g.low), (3, 4));
    }
}
