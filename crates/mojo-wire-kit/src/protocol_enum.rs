//! [`protocol_enum!`]: one definition of the "open enum" both protocols use
//! for type fields, so that unknown wire values survive a round trip.

/// Defines `pub struct $name(pub $repr)` with one associated constant per
/// known value (each keeping its doc comment), and:
///
/// - `name()`: the protocol's name of a known value, `None` otherwise;
///   `is_known()`; `KNOWN`, every known value in declaration order;
/// - `Display`: the name, or the `unknown` format string applied to the raw
///   value (e.g. `"BROKER_TYPE_{}"` or `"unknown({})"`);
/// - `Debug`: with `debug wrapped`, `$name(<Display>)`; with `debug bare`,
///   the name, or `$name(<raw>)` for an unknown value;
/// - `From` conversions to and from the wire integer.
///
/// Unknown values are ordinary values: they decode, compare and re-encode.
///
/// ```
/// mojo_wire_kit::protocol_enum! {
///     /// A message type.
///     pub struct Kind(pub u16), unknown "KIND_{}", debug wrapped {
///         /// The first kind.
///         FIRST = 0 => "FIRST",
///         /// A negative-free second kind.
///         SECOND = 7 => "SECOND",
///     }
/// }
///
/// assert_eq!(Kind::SECOND.name(), Some("SECOND"));
/// assert_eq!(Kind(9).to_string(), "KIND_9");
/// assert_eq!(format!("{:?}", Kind::FIRST), "Kind(FIRST)");
/// assert_eq!(Kind::KNOWN, &[Kind::FIRST, Kind::SECOND]);
/// assert_eq!(u16::from(Kind::from(9)), 9);
/// ```
#[macro_export]
macro_rules! protocol_enum {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident(pub $repr:ty), unknown $unknown:literal, debug $debug:ident {
            $( $(#[$cmeta:meta])* $cname:ident = $val:literal => $label:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        $vis struct $name(pub $repr);

        impl $name {
            $( $(#[$cmeta])* pub const $cname: Self = Self($val); )*

            /// Every known value, in declaration order.
            pub const KNOWN: &'static [Self] = &[$(Self::$cname),*];

            /// The protocol's name of a known value, `None` for others.
            pub fn name(self) -> ::core::option::Option<&'static str> {
                match self.0 {
                    $( $val => ::core::option::Option::Some($label), )*
                    _ => ::core::option::Option::None,
                }
            }

            /// Whether the value is one of the known constants.
            pub fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    ::core::option::Option::Some(n) => f.write_str(n),
                    ::core::option::Option::None => write!(f, $unknown, self.0),
                }
            }
        }

        $crate::__protocol_enum_debug!($debug, $name);

        impl ::core::convert::From<$repr> for $name {
            fn from(v: $repr) -> Self {
                Self(v)
            }
        }

        impl ::core::convert::From<$name> for $repr {
            fn from(v: $name) -> $repr {
                v.0
            }
        }
    };
}

/// The `Debug` impl of a [`protocol_enum!`] type (implementation detail).
#[doc(hidden)]
#[macro_export]
macro_rules! __protocol_enum_debug {
    (wrapped, $name:ident) => {
        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
    (bare, $name:ident) => {
        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self.name() {
                    ::core::option::Option::Some(n) => f.write_str(n),
                    ::core::option::Option::None => {
                        write!(f, concat!(stringify!($name), "({})"), self.0)
                    }
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::protocol_enum! {
        /// Signed, wrapped Debug.
        pub struct Signed(pub i32), unknown "SIGNED_{}", debug wrapped {
            /// Minus one.
            MINUS = -1 => "MINUS",
            /// One.
            ONE = 1 => "ONE",
        }
    }

    crate::protocol_enum! {
        /// Bare Debug.
        pub struct Bare(pub u8), unknown "unknown({})", debug bare {
            /// A.
            A = 0 => "A",
        }
    }

    #[test]
    fn names_display_and_debug() {
        assert_eq!(Signed::MINUS.name(), Some("MINUS"));
        assert_eq!(Signed(5).name(), None);
        assert!(!Signed(5).is_known());
        assert_eq!(Signed(-7).to_string(), "SIGNED_-7");
        assert_eq!(format!("{:?}", Signed(-7)), "Signed(SIGNED_-7)");
        assert_eq!(format!("{:?}", Signed::ONE), "Signed(ONE)");
        assert_eq!(format!("{:?}", Bare::A), "A");
        assert_eq!(format!("{:?}", Bare(3)), "Bare(3)");
        assert_eq!(Bare(3).to_string(), "unknown(3)");
        assert_eq!(Bare::default(), Bare::A);
        assert_eq!(Signed::KNOWN.len(), 2);
        assert_eq!(i32::from(Signed::MINUS), -1);
    }
}
