//! The newtype "protocol enum" shared by every message/event/dispatcher type
//! (crate-internal).

/// Defines `pub struct $name(pub $repr)` with one associated constant per
/// known value (keeping each constant's doc comment), `name()` returning the
/// Chromium name of a known value, `Display` printing that name or
/// `$unknown` followed by the raw value, and `Debug` printing
/// `$name(<Display>)`. Unknown values are ordinary values, so they round-trip.
///
/// ```text
/// protocol_enum! {
///     /// Doc of the type.
///     pub struct BrokerMessageType(pub u32), unknown "BROKER_TYPE_" {
///         /// Doc of the constant.
///         INIT = 0 => "INIT",
///     }
/// }
/// ```
macro_rules! protocol_enum {
    (
        $(#[$meta:meta])*
        pub struct $name:ident(pub $repr:ty), unknown $unknown:literal {
            $( $(#[$cmeta:meta])* $cname:ident = $val:literal => $label:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $repr);

        impl $name {
            $( $(#[$cmeta])* pub const $cname: Self = Self($val); )*

            /// The Chromium name of a known type.
            pub fn name(self) -> Option<&'static str> {
                Some(match self.0 {
                    $( $val => $label, )*
                    _ => return None,
                })
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, concat!($unknown, "{}"), self.0),
                }
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }
    };
}
pub(crate) use protocol_enum;
