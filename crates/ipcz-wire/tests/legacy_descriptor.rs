//! Golden tests for the pre-M117 112-byte RouterDescriptor (spec §10.2).
//!
//! The bytes below are assembled by hand from the §10.2 table, not produced
//! by our encoder. The table was checked against Chromium's
//! `third_party/ipcz/src/ipcz/router_descriptor.h` as it was just before
//! commit position #1163108 ("ipcz: Further reduce Router size", M117) in
//! the libchrome mirror's upstream-main history: the same fields in the same
//! order, with the 7 bytes after the flag byte named `reserved0`.

use ipcz_wire::error::MessageError;
use ipcz_wire::memory::{LinkStatus, RouterLinkState};
use ipcz_wire::message::{DecodeOptions, Message};
use ipcz_wire::messages::{AcceptParcel, Body};
use ipcz_wire::router_descriptor::{DescriptorFormat, RouterDescriptor};
use ipcz_wire::router_descriptor::{LegacyRouterDescriptor, LegacyRouterDescriptorWire};
use ipcz_wire::types::*;
use mojo_wire_kit::WireLayout;
use proptest::prelude::*;

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// A 112-byte descriptor with every field a distinct value, at the §10.2
/// offsets.
fn legacy_bytes() -> [u8; 112] {
    let mut b = [0u8; 112];
    put(&mut b, 0, &0x0101_0101_0000_0011u64.to_le_bytes()); // closed_peer_sequence_length
    put(&mut b, 8, &0x22u64.to_le_bytes()); // new_sublink
    put(&mut b, 16, &0x33u64.to_le_bytes()); // new_link_state_fragment.buffer_id
    put(&mut b, 24, &0x0440u32.to_le_bytes()); // .offset
    put(&mut b, 28, &0x40u32.to_le_bytes()); // .size
    put(&mut b, 32, &0x55u64.to_le_bytes()); // new_decaying_sublink
    put(&mut b, 40, &0x66u64.to_le_bytes()); // next_outgoing_sequence_number
    put(&mut b, 48, &0x7777u64.to_le_bytes()); // num_bytes_produced
    put(&mut b, 56, &0x88u64.to_le_bytes()); // next_incoming_sequence_number
    put(&mut b, 64, &0x99u64.to_le_bytes()); // decaying_incoming_sequence_length
    put(&mut b, 72, &0xaaaau64.to_le_bytes()); // num_bytes_consumed
    b[80] = 0x03; // flags: peer_closed | proxy_already_bypassed
    // 81..88 reserved: zero.
    put(&mut b, 88, &0xbbbb_bbbb_bbbb_bbbbu64.to_le_bytes()); // proxy_peer_node_name.high
    put(&mut b, 96, &0xcccc_cccc_cccc_ccccu64.to_le_bytes()); // proxy_peer_node_name.low
    put(&mut b, 104, &0xddu64.to_le_bytes()); // proxy_peer_sublink
    b
}

fn legacy_value() -> LegacyRouterDescriptor {
    LegacyRouterDescriptor {
        descriptor: RouterDescriptor {
            closed_peer_sequence_length: SequenceNumber(0x0101_0101_0000_0011),
            new_sublink: SublinkId(0x22),
            new_link_state_fragment: FragmentDescriptor::new(0x33, 0x0440, 0x40),
            new_decaying_sublink: SublinkId(0x55),
            next_outgoing_sequence_number: SequenceNumber(0x66),
            next_incoming_sequence_number: SequenceNumber(0x88),
            decaying_incoming_sequence_length: SequenceNumber(0x99),
            peer_closed: true,
            proxy_already_bypassed: true,
            proxy_peer_node_name: NodeName {
                high: 0xbbbb_bbbb_bbbb_bbbb,
                low: 0xcccc_cccc_cccc_cccc,
            },
            proxy_peer_sublink: SublinkId(0xdd),
        },
        num_bytes_produced: 0x7777,
        num_bytes_consumed: 0xaaaa,
    }
}

#[test]
fn legacy_descriptor_fields_at_spec_offsets() {
    let bytes = legacy_bytes();
    let l = LegacyRouterDescriptor::decode(&bytes).expect("112 bytes decode");
    let d = l.descriptor;
    assert_eq!(
        d.closed_peer_sequence_length,
        SequenceNumber(0x0101_0101_0000_0011)
    );
    assert_eq!(d.new_sublink, SublinkId(0x22));
    assert_eq!(
        d.new_link_state_fragment,
        FragmentDescriptor::new(0x33, 0x0440, 0x40)
    );
    assert_eq!(d.new_decaying_sublink, SublinkId(0x55));
    assert_eq!(d.next_outgoing_sequence_number, SequenceNumber(0x66));
    assert_eq!(l.num_bytes_produced, 0x7777);
    assert_eq!(d.next_incoming_sequence_number, SequenceNumber(0x88));
    assert_eq!(d.decaying_incoming_sequence_length, SequenceNumber(0x99));
    assert_eq!(l.num_bytes_consumed, 0xaaaa);
    assert!(d.peer_closed);
    assert!(d.proxy_already_bypassed);
    assert_eq!(
        d.proxy_peer_node_name,
        NodeName {
            high: 0xbbbb_bbbb_bbbb_bbbb,
            low: 0xcccc_cccc_cccc_cccc
        }
    );
    assert_eq!(d.proxy_peer_sublink, SublinkId(0xdd));
    assert_eq!(l, legacy_value());
    assert_eq!(l.to_wire().wire_bytes(), bytes);
    assert_eq!(legacy_value().to_wire().wire_bytes(), bytes);

    // The field table (from the layout declaration) agrees with §10.2.
    let span = |name: &str| {
        LegacyRouterDescriptorWire::span_of(&format!("RouterDescriptor.{name}"))
            .unwrap_or_else(|| panic!("no field {name}"))
    };
    let field_at = |at: usize| {
        LegacyRouterDescriptorWire::field_at(at).map_or("trailing bytes", |n| {
            n.strip_prefix("RouterDescriptor.").unwrap_or(n)
        })
    };
    assert_eq!(span("num_bytes_produced"), 48..56);
    assert_eq!(span("num_bytes_consumed"), 72..80);
    assert_eq!(span("flags"), 80..81);
    assert_eq!(span("proxy_peer_node_name"), 88..104);
    assert_eq!(span("proxy_peer_sublink"), 104..112);
    for (at, name) in [
        (0, "closed_peer_sequence_length"),
        (47, "next_outgoing_sequence_number"),
        (48, "num_bytes_produced"),
        (56, "next_incoming_sequence_number"),
        (72, "num_bytes_consumed"),
        (80, "flags"),
        (81, "reserved"),
        (111, "proxy_peer_sublink"),
        (112, "trailing bytes"),
    ] {
        assert_eq!(field_at(at), name);
    }

    // Too short: no value.
    assert!(LegacyRouterDescriptor::decode(&bytes[..111]).is_err());
    // Reserved bytes and unknown flag bits are ignored and re-encoded as zero.
    let mut noisy = bytes;
    noisy[80] = 0xff;
    noisy[81..88].fill(0xee);
    assert_eq!(LegacyRouterDescriptor::decode(&noisy), Ok(legacy_value()));
}

#[test]
fn conversion_between_forms() {
    let l = legacy_value();
    let current: RouterDescriptor = l.into();
    assert_eq!(current, l.descriptor);
    // The 96-byte encoding of the same values, assembled from the §6.5 table.
    let old = legacy_bytes();
    let mut expected = [0u8; 96];
    expected[..48].copy_from_slice(&old[..48]);
    expected[48..64].copy_from_slice(&old[56..72]);
    expected[64..96].copy_from_slice(&old[80..112]);
    assert_eq!(current.to_wire().wire_bytes(), expected);
    // Back to the old form: the two unused counters become 0.
    let back = LegacyRouterDescriptor::from(current);
    assert_eq!(back.descriptor, current);
    assert_eq!((back.num_bytes_produced, back.num_bytes_consumed), (0, 0));
    let mut zeroed = old;
    zeroed[48..56].fill(0);
    zeroed[72..80].fill(0);
    assert_eq!(back.to_wire().wire_bytes(), zeroed);
    let mut out = Vec::new();
    current.encode_format(DescriptorFormat::PreM117, &mut out);
    assert_eq!(out, zeroed);
    assert_eq!(
        RouterDescriptor::decode_format(&old, DescriptorFormat::PreM117),
        Ok(current)
    );
    assert_eq!(DescriptorFormat::PreM117.size(), 112);
    assert_eq!(DescriptorFormat::Current.size(), 96);
}

/// A valid variant-A (bypassed) descriptor in the 112-byte form, counters 0.
fn parcel_descriptor_bytes(num_bytes_produced: u64) -> [u8; 112] {
    let mut b = [0u8; 112];
    put(&mut b, 8, &13u64.to_le_bytes()); // new_sublink
    put(&mut b, 16, &0u64.to_le_bytes()); // fragment buffer 0
    put(&mut b, 24, &1216u32.to_le_bytes()); // offset
    put(&mut b, 28, &64u32.to_le_bytes()); // size
    put(&mut b, 32, &14u64.to_le_bytes()); // new_decaying_sublink
    put(&mut b, 40, &5u64.to_le_bytes()); // next_outgoing
    put(&mut b, 48, &num_bytes_produced.to_le_bytes());
    put(&mut b, 56, &6u64.to_le_bytes()); // next_incoming
    put(&mut b, 64, &7u64.to_le_bytes()); // decaying_incoming
    b[80] = 0x02; // proxy_already_bypassed
    b
}

/// AcceptParcel (§3.4) on sublink 12, seq 1, no data, one portal, with a
/// 112-byte-stride `new_routers` array; assembled by hand like §9.5.
fn legacy_parcel(num_bytes_produced: u64) -> Vec<u8> {
    let mut m = vec![0u8; 232];
    m[0] = 24; // header.size
    m[2] = 20; // AcceptParcel
    put(&mut m, 8, &2u64.to_le_bytes()); // header.sequence_number
    put(&mut m, 24, &72u32.to_le_bytes()); // StructHeader.size
    put(&mut m, 32, &12u64.to_le_bytes()); // sublink
    put(&mut m, 40, &1u64.to_le_bytes()); // sequence_number
    put(&mut m, 52, &1u32.to_le_bytes()); // num_subparcels
    put(&mut m, 56, &u64::MAX.to_le_bytes()); // parcel_fragment: null
    put(&mut m, 76, &96u32.to_le_bytes()); // handle_types
    put(&mut m, 80, &112u32.to_le_bytes()); // new_routers
    // handle_types: {16, 1}, [kPortal], pad.
    put(&mut m, 96, &16u32.to_le_bytes());
    put(&mut m, 100, &1u32.to_le_bytes());
    // new_routers: {8 + 112, 1}, one descriptor.
    put(&mut m, 112, &120u32.to_le_bytes());
    put(&mut m, 116, &1u32.to_le_bytes());
    put(&mut m, 120, &parcel_descriptor_bytes(num_bytes_produced));
    m
}

fn expected_descriptor() -> RouterDescriptor {
    RouterDescriptor {
        new_sublink: SublinkId(13),
        new_link_state_fragment: FragmentDescriptor::new(0, 1216, 64),
        new_decaying_sublink: SublinkId(14),
        next_outgoing_sequence_number: SequenceNumber(5),
        next_incoming_sequence_number: SequenceNumber(6),
        decaying_incoming_sequence_length: SequenceNumber(7),
        proxy_already_bypassed: true,
        ..Default::default()
    }
}

const DETECT: DecodeOptions = DecodeOptions {
    descriptor_format: DescriptorFormat::Current,
    detect_descriptor_format: true,
};

const PRE_M117: DecodeOptions = DecodeOptions {
    descriptor_format: DescriptorFormat::PreM117,
    detect_descriptor_format: false,
};

#[test]
fn accept_parcel_with_112_byte_descriptor_round_trips() {
    let bytes = legacy_parcel(0);
    for options in [DETECT, PRE_M117] {
        let msg = Message::decode_exact_with(&bytes, 0, options).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(msg.descriptor_format, DescriptorFormat::PreM117);
        msg.check_semantics().unwrap_or_else(|e| panic!("{e}"));
        let Body::AcceptParcel(p) = &msg.body else {
            panic!("{:?}", msg.body)
        };
        assert_eq!(p.handle_types, [HandleType::PORTAL]);
        assert_eq!(p.new_routers, [expected_descriptor()]);
        let mut out = Vec::new();
        assert_eq!(msg.encode(&mut out), Ok(()));
        assert_eq!(msg.num_fds(), 0);
        assert_eq!(out, bytes);

        // Built from scratch in the old format, the same bytes come out.
        let parcel = AcceptParcel::inline(
            12,
            1,
            &[],
            vec![HandleType::PORTAL],
            vec![expected_descriptor()],
        );
        let mut built = Message::new(2, parcel.into());
        built.descriptor_format = DescriptorFormat::PreM117;
        let mut out = Vec::new();
        built.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
    }
}

#[test]
fn accept_parcel_with_112_byte_descriptor_under_96_byte_expectation() {
    let bytes = legacy_parcel(0);
    // Like Chrome M117+, the default decoder accepts the array (120 bytes
    // hold one 96-byte element) and reads the first 96 bytes of the old
    // descriptor as a new one: no error, shifted fields.
    let msg = Message::decode(&bytes, 0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(msg.descriptor_format, DescriptorFormat::Current);
    let Body::AcceptParcel(p) = &msg.body else {
        panic!("{:?}", msg.body)
    };
    let misread = RouterDescriptor::decode(&parcel_descriptor_bytes(0)[..96]).unwrap();
    assert_eq!(p.new_routers, [misread]);
    assert_ne!(misread, expected_descriptor());
    // next_incoming is read from num_bytes_produced, decaying_incoming from
    // next_incoming, and the flag byte from decaying_incoming's low byte.
    assert_eq!(misread.next_incoming_sequence_number, SequenceNumber(0));
    assert_eq!(misread.decaying_incoming_sequence_length, SequenceNumber(6));
    assert!(misread.peer_closed && misread.proxy_already_bypassed);
    // The misread descriptor still passes the stateless checks, as in Chrome.
    msg.check_semantics().unwrap_or_else(|e| panic!("{e}"));
    // The exact decoder names the array whose stride is not 96.
    let err = Message::decode_exact(&bytes, 0).unwrap_err();
    let MessageError::NotCanonical { offset, field } = &err else {
        panic!("{err}")
    };
    assert_eq!(*offset, 112, "{err}");
    assert!(field.contains("new_routers"), "{err}");

    // With a non-zero num_bytes_produced (which pre-M117 Chrome filled in
    // with the bytes its portal had produced), the misread next_incoming
    // exceeds the misread closed length and Router::Deserialize fails.
    let bytes = legacy_parcel(4096);
    let msg = Message::decode(&bytes, 0).unwrap_or_else(|e| panic!("{e}"));
    let err = msg.check_semantics().unwrap_err();
    let MessageError::Semantic { field, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*field, "new_routers", "{err}");
}

#[test]
fn legacy_counters_are_dropped_by_message_decoding() {
    // Our message-level decoder keeps only the current fields, so a
    // non-zero num_bytes_produced does not survive decode_exact.
    let bytes = legacy_parcel(4096);
    let msg = Message::decode_with(&bytes, 0, DETECT).unwrap_or_else(|e| panic!("{e}"));
    let Body::AcceptParcel(p) = &msg.body else {
        panic!()
    };
    assert_eq!(p.new_routers, [expected_descriptor()]);
    let err = Message::decode_exact_with(&bytes, 0, DETECT).unwrap_err();
    let MessageError::NotCanonical { offset, field } = &err else {
        panic!("{err}")
    };
    // 4096 = 0x1000: the first differing byte is the second one.
    assert_eq!(*offset, 120 + 48 + 1, "{err}");
    assert!(field.contains("num_bytes_produced"), "{err}");
}

proptest! {
    /// RouterLinkState bytes assembled at the §5.3 offsets read back as the
    /// same values; `initialize` resets everything but `ref_count`.
    #[test]
    fn router_link_state_values_round_trip(
        ref_count in any::<i32>(),
        status in any::<u32>(),
        high in any::<u64>(),
        low in any::<u64>(),
        reserved in proptest::collection::vec(any::<u8>(), 40),
        extra in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut b = vec![0u8; 64];
        put(&mut b, 0, &ref_count.to_le_bytes());
        put(&mut b, 4, &status.to_le_bytes());
        put(&mut b, 8, &high.to_le_bytes());
        put(&mut b, 16, &low.to_le_bytes());
        put(&mut b, 24, &reserved);
        b.extend_from_slice(&extra);
        let view = RouterLinkState::new_checked(&b[..]).unwrap();
        prop_assert_eq!(view.ref_count(), ref_count);
        prop_assert_eq!(view.status(), LinkStatus::from_word(status));
        prop_assert_eq!(view.status().bits(), status);
        prop_assert_eq!(view.allowed_bypass_request_source(), NodeName { high, low });
        prop_assert!(RouterLinkState::new_checked(&b[..63]).is_err());

        RouterLinkState::initialize(&mut b, ref_count).unwrap();
        prop_assert_eq!(&b[4..64], &[0u8; 60][..]);
        prop_assert_eq!(&b[64..], &extra[..]);
        let view = RouterLinkState::new_checked(&b[..]).unwrap();
        prop_assert_eq!(view.ref_count(), ref_count);
        prop_assert_eq!(view.status(), LinkStatus::empty());
    }
}
