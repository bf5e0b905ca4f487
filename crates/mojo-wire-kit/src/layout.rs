//! Fixed little-endian layouts declared once: [`wire_layout!`](crate::wire_layout!) generates a
//! zerocopy struct plus its size assertion and its field table
//! ([`WireLayout::FIELDS`]), from which decoders, encoders, error messages
//! and `--verify` field names all come.
//!
//! The structs are for bytes the caller owns (a received message, a copied
//! snapshot of shared memory). They are never laid over a live mapping:
//! for shared memory use their offsets and sizes with
//! [`crate::SharedMemory`].

use std::ops::Range;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::CodecError;

/// Little-endian integer field types for [`wire_layout!`](crate::wire_layout!) declarations
/// (zerocopy's, unaligned, so a layout has no implicit padding).
pub mod le {
    pub use zerocopy::little_endian::{I16, I32, I64, U16, U32, U64};
}

/// One field of a fixed layout: its dotted name and its byte range.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LayoutField {
    /// Name for errors and diagnostics, e.g. `"channel.num_handles"`.
    pub name: &'static str,
    /// Bytes the field occupies, relative to the start of the layout.
    pub range: Range<usize>,
}

/// The name of the field of `fields` that holds byte `offset`, if any.
pub fn field_name_at(fields: &[LayoutField], offset: usize) -> Option<&'static str> {
    fields
        .iter()
        .find(|f| f.range.contains(&offset))
        .map(|f| f.name)
}

/// Whether `fields` cover `0..size` in order, without gaps or overlaps
/// (checked at compile time for every [`wire_layout!`](crate::wire_layout!)).
pub const fn fields_tile(fields: &[LayoutField], size: usize) -> bool {
    let mut at = 0;
    let mut rest = fields;
    while let [first, tail @ ..] = rest {
        if first.range.start != at || first.range.end < at {
            return false;
        }
        at = first.range.end;
        rest = tail;
    }
    at == size
}

/// A fixed little-endian layout declared with [`wire_layout!`](crate::wire_layout!).
pub trait WireLayout:
    FromBytes + IntoBytes + KnownLayout + Immutable + Unaligned + Copy + 'static
{
    /// Size on the wire.
    const SIZE: usize;
    /// Prefix of the field names (the structure's name in diagnostics).
    const NAME: &'static str;
    /// The fields, in wire order, tiling `0..SIZE`.
    const FIELDS: &'static [LayoutField];

    /// The name of the field holding byte `offset`, or `None` past the end.
    fn field_at(offset: usize) -> Option<&'static str> {
        field_name_at(Self::FIELDS, offset)
    }

    /// The byte range of the field named `name`.
    fn span_of(name: &str) -> Option<Range<usize>> {
        Self::FIELDS
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.range.clone())
    }

    /// Copies the layout from the start of `bytes`; missing trailing bytes
    /// read as zero (how a receiver sees fields an older, shorter version
    /// of a versioned structure does not have). Extra bytes are ignored.
    fn from_zero_extended(bytes: &[u8]) -> Self {
        let mut value = Self::new_zeroed();
        for (dst, src) in value.as_mut_bytes().iter_mut().zip(bytes) {
            *dst = *src;
        }
        value
    }

    /// The error for an input of `available` bytes that is shorter than the
    /// layout: the first field that does not fit, with the bytes it needs
    /// and the bytes left at its start (as a field-by-field read reports).
    fn truncation(available: usize) -> CodecError {
        let cut = Self::FIELDS.iter().find(|f| f.range.end > available);
        match cut {
            Some(f) => CodecError::Truncated {
                field: f.name,
                needed: f.range.len(),
                available: available.saturating_sub(f.range.start),
            },
            None => CodecError::Truncated {
                field: Self::NAME,
                needed: Self::SIZE,
                available,
            },
        }
    }

    /// The layout at the start of `bytes` (which may hold more), borrowed
    /// without a copy; `None` if `bytes` is shorter. [`wire_layout!`](crate::wire_layout!)
    /// overrides this with a single length check (the generic zerocopy path
    /// computes the layout at run time).
    #[inline]
    fn prefix_ref(bytes: &[u8]) -> Option<&Self> {
        <Self as FromBytes>::ref_from_prefix(bytes)
            .ok()
            .map(|(value, _)| value)
    }

    /// Decodes the layout from the start of `bytes` (which may hold more).
    fn decode_prefix(bytes: &[u8]) -> Result<Self, CodecError> {
        crate::Reader::new(bytes).layout()
    }

    /// The wire bytes.
    fn wire_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Declares a fixed little-endian layout ONCE: the `#[repr(C)]` zerocopy
/// struct (`FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned`), a
/// compile-time check of its size, and its [`WireLayout`] impl whose
/// [`WireLayout::FIELDS`] table gives each field's name and byte range
/// (computed with `offset_of!`, so it cannot drift from the struct).
///
/// Field names are `"<names>.<field>"` unless a field ends in
/// `=> "explicit.name"`. Field types are `u8`, byte arrays, the
/// [`le`] integers, or other layouts.
///
/// ```
/// use mojo_wire_kit::le::{U16, U32};
/// use mojo_wire_kit::{WireLayout, wire_layout};
///
/// wire_layout! {
///     /// An 8-byte example header.
///     pub struct ExampleHeader: size 8, names "example" {
///         /// Total length.
///         pub num_bytes: U32,
///         /// Message type.
///         pub kind: U16,
///         /// Always zero.
///         pub padding: [u8; 2] => "example.reserved",
///     }
/// }
///
/// let h = ExampleHeader::decode_prefix(&[8, 0, 0, 0, 3, 0, 0, 0]).unwrap();
/// assert_eq!((h.num_bytes.get(), h.kind.get()), (8, 3));
/// assert_eq!(ExampleHeader::field_at(4), Some("example.kind"));
/// assert_eq!(ExampleHeader::field_at(7), Some("example.reserved"));
/// assert_eq!(ExampleHeader::span_of("example.kind"), Some(4..6));
/// let e = ExampleHeader::decode_prefix(&[8, 0, 0, 0, 3]).unwrap_err();
/// assert_eq!(e.field(), "example.kind");
/// ```
#[macro_export]
macro_rules! wire_layout {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident : size $size:tt, names $prefix:literal {
            $(
                $(#[$fmeta:meta])*
                $fvis:vis $field:ident : $fty:ty $(=> $label:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            $crate::__private::zerocopy::FromBytes,
            $crate::__private::zerocopy::IntoBytes,
            $crate::__private::zerocopy::KnownLayout,
            $crate::__private::zerocopy::Immutable,
            $crate::__private::zerocopy::Unaligned,
            Clone, Copy, PartialEq, Eq, Hash, Debug,
        )]
        #[zerocopy(crate = "mojo_wire_kit::__private::zerocopy")]
        #[repr(C)]
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $fty, )*
        }

        impl $crate::WireLayout for $name {
            const SIZE: usize = $size;
            const NAME: &'static str = $prefix;
            const FIELDS: &'static [$crate::LayoutField] = &[
                $(
                    $crate::LayoutField {
                        name: $crate::__layout_label!($prefix, $field $(, $label)?),
                        range: ::core::mem::offset_of!($name, $field)
                            ..::core::mem::offset_of!($name, $field)
                                + ::core::mem::size_of::<$fty>(),
                    },
                )*
            ];

            #[inline]
            fn prefix_ref(bytes: &[u8]) -> ::core::option::Option<&Self> {
                bytes.first_chunk::<$size>().map(|array| -> &Self {
                    $crate::__private::zerocopy::transmute_ref!(array)
                })
            }
        }

        const _: () = {
            assert!(
                ::core::mem::size_of::<$name>() == $size,
                concat!(stringify!($name), ": the fields do not add up to the declared size")
            );
            assert!(
                $crate::fields_tile(<$name as $crate::WireLayout>::FIELDS, $size),
                concat!(stringify!($name), ": the field table does not tile the layout")
            );
        };
    };
}

/// The name of one [`wire_layout!`](crate::wire_layout!) field (implementation detail).
#[doc(hidden)]
#[macro_export]
macro_rules! __layout_label {
    ($prefix:literal, $field:ident) => {
        concat!($prefix, ".", stringify!($field))
    };
    ($prefix:literal, $field:ident, $label:literal) => {
        $label
    };
}

#[cfg(test)]
mod tests {
    use super::le::{I32, U16, U32, U64};
    use super::*;
    use crate::{Reader, Writer};

    crate::wire_layout! {
        /// A test layout mixing widths, a nested array and a renamed field.
        pub(crate) struct Sample: size 24, names "sample" {
            /// u32.
            pub(crate) a: U32,
            /// u16.
            pub(crate) b: U16,
            /// u8.
            pub(crate) c: u8,
            /// padding.
            pub(crate) pad: [u8; 1] => "sample.padding",
            /// i32.
            pub(crate) d: I32,
            /// u64 pair.
            pub(crate) e: [U64; 1],
            /// trailing u32.
            pub(crate) f: U32,
        }
    }

    crate::wire_layout! {
        /// A layout containing another.
        pub(crate) struct Outer: size 28, names "outer" {
            /// The nested layout.
            pub(crate) inner: Sample,
            /// After it.
            pub(crate) tail: U32,
        }
    }

    #[test]
    fn field_table_comes_from_the_declaration() {
        assert_eq!(Sample::SIZE, 24);
        let names: Vec<_> = Sample::FIELDS.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "sample.a",
                "sample.b",
                "sample.c",
                "sample.padding",
                "sample.d",
                "sample.e",
                "sample.f"
            ]
        );
        assert_eq!(Sample::span_of("sample.d"), Some(8..12));
        assert_eq!(Sample::field_at(7), Some("sample.padding"));
        assert_eq!(Sample::field_at(23), Some("sample.f"));
        assert_eq!(Sample::field_at(24), None);
        assert_eq!(Outer::field_at(25), Some("outer.tail"));
        assert_eq!(Outer::field_at(3), Some("outer.inner"));
        assert!(fields_tile(Sample::FIELDS, 24));
        assert!(!fields_tile(Sample::FIELDS, 25));
        assert!(!fields_tile(&Sample::FIELDS[1..], 24));
    }

    #[test]
    fn decode_encode_and_truncation() {
        let bytes: Vec<u8> = (1..=24).collect();
        let s = Sample::decode_prefix(&bytes).unwrap();
        assert_eq!(s.a.get(), 0x0403_0201);
        assert_eq!(s.c, 7);
        assert_eq!(s.wire_bytes(), &bytes[..]);
        let mut out = Vec::new();
        Writer::new(&mut out).layout(&s);
        assert_eq!(out, bytes);
        // Cut inside `d` (bytes 8..12): the error names `d`, as reading
        // field by field would.
        assert_eq!(
            Sample::decode_prefix(&bytes[..10]),
            Err(CodecError::Truncated {
                field: "sample.d",
                needed: 4,
                available: 2
            })
        );
        assert_eq!(
            Reader::new(&bytes[..3]).layout_as::<Sample>("sample header"),
            Err(CodecError::Truncated {
                field: "sample header",
                needed: 24,
                available: 3
            })
        );
        let short = Sample::from_zero_extended(&bytes[..5]);
        assert_eq!(short.a.get(), 0x0403_0201);
        assert_eq!(short.b.get(), 5);
        assert_eq!(short.f.get(), 0);
    }

    #[test]
    fn borrowed_prefixes_match_the_generic_zerocopy_path() {
        let bytes: Vec<u8> = (0..30).collect();
        // Every length and odd start: the declared single-length-check
        // override agrees with zerocopy's run-time layout check.
        for start in 0..3 {
            for end in start..=bytes.len() {
                let input = &bytes[start..end];
                let generic = <Sample as FromBytes>::ref_from_prefix(input)
                    .ok()
                    .map(|(value, _)| value);
                assert_eq!(Sample::prefix_ref(input), generic, "{start}..{end}");
                assert_eq!(Sample::prefix_ref(input).is_some(), input.len() >= 24);
            }
        }
        let mut r = Reader::new(&bytes[1..]);
        let borrowed = r.layout_ref::<Sample>("sample").unwrap();
        assert_eq!(borrowed.a.get(), u32::from_le_bytes([1, 2, 3, 4]));
        assert_eq!(r.remaining(), 5);
        assert_eq!(
            r.layout_ref::<Sample>("second sample"),
            Err(CodecError::Truncated {
                field: "second sample",
                needed: 24,
                available: 5
            })
        );
        assert_eq!(r.remaining(), 5, "a failed read does not move");
    }

    #[test]
    fn slices_borrow_unaligned_input() {
        let bytes: Vec<u8> = (0..49).collect();
        let mut r = Reader::new(&bytes);
        r.padding(1, "odd").unwrap();
        let items = r.slice_of::<Sample>(2, "samples").unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].a.get(), u32::from_le_bytes([25, 26, 27, 28]));
        assert_eq!(r.remaining(), 0);
        assert!(Reader::new(&bytes).slice_of::<Sample>(3, "s").is_err());
        assert!(
            Reader::new(&bytes)
                .slice_of::<Sample>(usize::MAX, "s")
                .is_err()
        );
    }
}
