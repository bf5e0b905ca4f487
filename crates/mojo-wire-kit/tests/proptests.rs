//! Property tests of the codec toolkit: the reader never panics and reads
//! what the writer wrote, layouts round-trip and name the field a
//! truncation cuts, and the canonical check agrees with byte equality.

use mojo_wire_kit::le::{U16, U32, U64};
use mojo_wire_kit::{
    CodecError, Guid, Reader, WireLayout, Writer, append_or_rollback, checked_len,
    first_difference, require_canonical, wire_layout,
};
use proptest::prelude::*;

wire_layout! {
    /// A 16-byte header like the legacy channel's.
    pub struct Header: size 16, names "hdr" {
        /// Total length.
        pub num_bytes: U32,
        /// Header length.
        pub num_header_bytes: U16,
        /// Type.
        pub kind: U16,
        /// Count.
        pub count: U16,
        /// Ignored.
        pub padding: [u8; 6],
    }
}

wire_layout! {
    /// A layout holding another and a 64-bit field.
    pub struct Record: size 28, names "record" {
        /// The header.
        pub header: Header,
        /// A 64-bit id.
        pub id: U64,
        /// A flag byte and padding.
        pub flags: [u8; 4],
    }
}

#[derive(Debug, Clone)]
enum Op {
    U8(u8),
    U16(u16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    Bool(bool),
    Bytes(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u8>().prop_map(Op::U8),
        any::<u16>().prop_map(Op::U16),
        any::<u32>().prop_map(Op::U32),
        any::<i32>().prop_map(Op::I32),
        any::<u64>().prop_map(Op::U64),
        any::<i64>().prop_map(Op::I64),
        any::<bool>().prop_map(Op::Bool),
        proptest::collection::vec(any::<u8>(), 0..9).prop_map(Op::Bytes),
    ]
}

proptest! {
    #[test]
    fn reader_reads_what_the_writer_wrote(ops in proptest::collection::vec(op(), 0..24), prefix in proptest::collection::vec(any::<u8>(), 0..4)) {
        let mut out = prefix.clone();
        let mut w = Writer::new(&mut out);
        for op in &ops {
            match op {
                Op::U8(v) => w.u8(*v),
                Op::U16(v) => w.u16(*v),
                Op::U32(v) => w.u32(*v),
                Op::I32(v) => w.i32(*v),
                Op::U64(v) => w.u64(*v),
                Op::I64(v) => w.i64(*v),
                Op::Bool(v) => w.bool(*v),
                Op::Bytes(v) => w.bytes(v),
            }
        }
        let mut r = Reader::new(&out);
        r.padding(prefix.len(), "prefix").unwrap();
        for op in &ops {
            match op {
                Op::U8(v) => prop_assert_eq!(r.u8("f")?, *v),
                Op::U16(v) => prop_assert_eq!(r.u16("f")?, *v),
                Op::U32(v) => prop_assert_eq!(r.u32("f")?, *v),
                Op::I32(v) => prop_assert_eq!(r.i32("f")?, *v),
                Op::U64(v) => prop_assert_eq!(r.u64("f")?, *v),
                Op::I64(v) => prop_assert_eq!(r.i64("f")?, *v),
                Op::Bool(v) => prop_assert_eq!(r.bool("f")?, *v),
                Op::Bytes(v) => prop_assert_eq!(r.take(v.len(), "f")?, &v[..]),
            }
        }
        prop_assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn reader_never_panics_and_never_overreads(bytes in proptest::collection::vec(any::<u8>(), 0..40), ops in proptest::collection::vec((0u8..9, 0usize..50), 0..30)) {
        let mut r = Reader::new(&bytes);
        for (kind, n) in ops {
            let before = r.remaining();
            let ok = match kind {
                0 => r.u8("f").is_ok(),
                1 => r.u16("f").is_ok(),
                2 => r.u32("f").is_ok(),
                3 => r.u64("f").is_ok(),
                4 => r.take(n, "f").is_ok(),
                5 => r.padding(n, "f").is_ok(),
                6 => r.layout::<Record>().is_ok(),
                7 => r.slice_of::<Header>(n, "f").is_ok(),
                _ => { r = r.at(n); true }
            };
            if !ok {
                // A failed read consumes nothing.
                prop_assert_eq!(r.remaining(), before);
            }
            prop_assert!(r.position() <= bytes.len() || r.remaining() == 0);
        }
    }

    #[test]
    fn layouts_round_trip_and_truncation_names_the_cut_field(bytes in proptest::collection::vec(any::<u8>(), 28..40), cut in 0usize..28) {
        let rec = Record::decode_prefix(&bytes).unwrap();
        let mut out = Vec::new();
        Writer::new(&mut out).layout(&rec);
        prop_assert_eq!(&out[..], &bytes[..28]);
        prop_assert_eq!(rec.header.num_bytes.get(), u32::from_le_bytes(bytes[..4].try_into().unwrap()));
        // Reading the same bytes field by field fails at the same field.
        let e = Record::decode_prefix(&bytes[..cut]).unwrap_err();
        let field = Record::field_at(cut).unwrap();
        let span = Record::span_of(field).unwrap();
        prop_assert_eq!(e, CodecError::Truncated { field, needed: span.len(), available: cut - span.start });
        let zx = Record::from_zero_extended(&bytes[..cut]);
        prop_assert_eq!(&zx.wire_bytes()[..cut], &bytes[..cut]);
        prop_assert!(zx.wire_bytes()[cut..].iter().all(|&b| b == 0));
    }

    #[test]
    fn canonical_check_agrees_with_equality(a in proptest::collection::vec(any::<u8>(), 0..20), b in proptest::collection::vec(any::<u8>(), 0..20)) {
        let d = first_difference(&a, &b);
        prop_assert_eq!(d.is_none(), a == b);
        if let Some(d) = d {
            prop_assert_eq!(&a[..d], &b[..d]);
            prop_assert!(d == a.len().min(b.len()) || a[d] != b[d]);
        }
        let r = require_canonical(&a, &b, |o| if o < 4 { "head" } else { "tail" });
        prop_assert_eq!(r.is_ok(), a == b);
        if let Err(e) = r {
            prop_assert_eq!(Some(e.offset), d);
        }
    }

    #[test]
    fn patches_in_range_succeed_and_others_change_nothing(len in 0usize..16, at in 0usize..20, v: u32) {
        let mut out = vec![0xaa];
        let mut w = Writer::new(&mut out);
        w.zeros(len);
        let before = w.written().to_vec();
        let r = w.put_u32_at(at, v, "f");
        prop_assert_eq!(r.is_ok(), at + 4 <= len);
        if r.is_err() {
            prop_assert_eq!(w.written(), &before[..]);
        } else {
            prop_assert_eq!(Reader::new(w.written()).at(at).u32("f")?, v);
        }
        prop_assert_eq!(out[0], 0xaa);
    }

    #[test]
    fn checked_len_is_exact(len in 0usize..200_000) {
        prop_assert_eq!(checked_len::<u16>("f", len).is_ok(), len <= usize::from(u16::MAX));
        let r: Result<(), CodecError> = append_or_rollback(&mut Vec::new(), |w| {
            w.u32(1);
            checked_len::<u16>("f", len).map(drop)
        });
        prop_assert_eq!(r.is_ok(), len <= 65535);
    }

    #[test]
    fn guid_byte_orders_round_trip(high: u64, low: u64) {
        let g = Guid::new(high, low);
        prop_assert_eq!(Guid::from_high_first(g.to_high_first()), g);
        prop_assert_eq!(Guid::from_low_first(g.to_low_first()), g);
        prop_assert_eq!(g.to_string().len(), 32);
        prop_assert_eq!(format!("{g:x}"), g.to_string().to_lowercase());
    }
}
