//! Unit and property tests of the application protocol: checksums,
//! patterns, the spec's payload sizes, typed decode errors, round trips.

use super::*;
use proptest::prelude::*;

#[test]
fn fnv_known_values() {
    assert_eq!(fnv1a(b""), FNV_OFFSET_BASIS);
    // With the reference peers' basis (FNV-1a 64's prime and steps).
    assert_eq!(fnv1a(b"a"), 0x44bd_8ad4_73cd_9906);
    assert_eq!(fnv1a(b"foobar"), 0x88fa_d7c0_a8ff_07f2);
    // The ShmemAck the reference client sent in the recorded
    // `cros/shmem-proxy_client.jsonl`: the first half of the 1 MiB buffer.
    assert_eq!(
        fnv_of_pattern(1 << 19, shmem_host_byte),
        0x7f7d_36e2_99d5_0383
    );
    assert_eq!(
        fnv_of_pattern(6, |i| b"foobar"[i as usize]),
        fnv1a(b"foobar")
    );
}

#[test]
fn patterns() {
    assert_eq!(pattern_byte(0, Direction::HostToClient), 7);
    assert_eq!(
        pattern_byte(30, Direction::HostToClient),
        (30 * 11 + 7) as u8
    );
    assert_eq!(
        pattern_byte(4096, Direction::ClientToHost),
        (4096u64 * 5 + 1 + 1) as u8
    );
    assert_eq!(shmem_c2h_byte(1), 40);
    assert_eq!(shmem_c2h_host_byte(1), 0x5d);
    assert_eq!(memfd_c2h_byte(2), 43);
    assert_eq!(HOST_MARK.len(), 13);
    assert_eq!(HOST_PIPE_MSG.len(), 15);
}

#[test]
fn c2h_msg_layout() {
    let m = c2h_msg(2);
    assert_eq!(m.len(), 8 + 8 + 32);
    assert_eq!(get_u32(&m, 0), op::ECHO);
    assert_eq!(get_u32(&m, 4), 2);
    assert_eq!(m[8], 2 * 7 + 3);
    assert_eq!(m[9], (2 * 7 + 31 + 3) as u8);
    assert_eq!(c2h_msg(0).len(), 16);
}

#[test]
fn random_payload_matches_reference_shape() {
    let mut seed = 42;
    let a = random_payload(op::ECHO, 3, &mut seed);
    assert_eq!(a, op::ECHO.to_le_bytes());
    assert_eq!(seed, 42, "no byte drawn, seed unchanged");
    let b = random_payload(op::ECHO, 6, &mut seed);
    let mut x: u64 = 42;
    let mut expect = op::ECHO.to_le_bytes().to_vec();
    for _ in 0..2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        expect.push(x as u8);
    }
    assert_eq!(b, expect);
    assert_eq!(seed, x);
}

#[test]
fn spec_sizes() {
    // test-peers.md §2.1 "Sizes".
    let table = [
        (21, 8),
        (22, 8),
        (23, 12),
        (24, 16),
        (25, 24),
        (26, 8),
        (27, 20),
        (28, 12),
        (29, 20),
        (30, 12),
        (31, 36),
        (32, 8),
        (33, 8),
        (34, 12),
        (35, 20),
    ];
    for (opcode, size) in table {
        assert_eq!(fixed_size(opcode), Some(size), "opcode {opcode}");
    }
    assert_eq!(
        Payload::SinkAck {
            received: 1,
            bytes: 2,
            bad: 3
        }
        .encode()
        .len(),
        28
    );
    assert_eq!(Payload::CloseWatchReady.encode(), 12u32.to_le_bytes());
    // Ours (the `scale` scenario), outside the spec's opcode range.
    for (opcode, size) in [
        (200, 12),
        (201, 12),
        (202, 12),
        (203, 20),
        (204, 4),
        (205, 12),
        (206, 24),
        (207, 36),
    ] {
        assert_eq!(fixed_size(opcode), Some(size), "opcode {opcode}");
    }
    assert_eq!(
        Payload::ScaleOpen { first: 3, count: 2 }.encode(),
        [200, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0]
    );
}

#[test]
fn typed_errors() {
    assert_eq!(
        Payload::decode(&[1, 0]),
        Err(DecodeError::NoOpcode { len: 2 })
    );
    assert_eq!(
        Payload::decode(&50u32.to_le_bytes()),
        Err(DecodeError::UnknownOpcode(50))
    );
    let mut short = Payload::ShmemC2H {
        size: 1,
        read_only: 0,
    }
    .encode();
    short.pop();
    assert_eq!(
        Payload::decode(&short),
        Err(DecodeError::WrongLength {
            name: "kShmemC2H",
            expected: 16,
            found: 15
        })
    );
    assert_eq!(
        Payload::decode(&op::ERROR.to_le_bytes()),
        Err(DecodeError::BadErrorLength { found: 4 })
    );
    assert!(DecodeError::UnknownOpcode(7).to_string().contains('7'));
}

fn any_payload() -> impl Strategy<Value = Payload> {
    let u = any::<u64>;
    let w = any::<u32>;
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Payload::Echo),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Payload::SinkData),
        (u(), u()).prop_map(|(count, size)| Payload::SinkStart { count, size }),
        (u(), u(), u()).prop_map(|(received, bytes, bad)| Payload::SinkAck {
            received,
            bytes,
            bad
        }),
        Just(Payload::SubPipe),
        u().prop_map(|echoed| Payload::SubPipeDone { echoed }),
        u().prop_map(|size| Payload::Shmem { size }),
        u().prop_map(|fnv| Payload::ShmemAck { fnv }),
        u().prop_map(|size| Payload::PlatHandle { size }),
        (u(), u()).prop_map(|(fnv, bytes_read)| Payload::PlatHandleAck { fnv, bytes_read }),
        Just(Payload::CloseWatch),
        Just(Payload::CloseWatchReady),
        u().prop_map(|result| Payload::CloseSeen { result }),
        Just(Payload::CloseSelf),
        w().prop_map(|index| Payload::Hello { index }),
        u().prop_map(|total| Payload::DataPipe { total }),
        (u(), u()).prop_map(|(bytes, fnv)| Payload::DataPipeAck { bytes, fnv }),
        (u(), u()).prop_map(|(total, capacity)| Payload::DataPipeReverse { total, capacity }),
        u().prop_map(|total| Payload::DataPipeConsumer { total }),
        (u(), u()).prop_map(|(written, last_result)| Payload::DataPipeReverseDone {
            written,
            last_result
        }),
        w().prop_map(|count| Payload::SubPipeC2H { count }),
        w().prop_map(|count| Payload::SubPipeC2HReady { count }),
        u().prop_map(|echoed| Payload::SubPipeC2HDone { echoed }),
        (u(), w()).prop_map(|(size, read_only)| Payload::ShmemC2H { size, read_only }),
        (u(), u(), w()).prop_map(|(size, fnv, read_only)| Payload::ShmemC2HBuffer {
            size,
            fnv,
            read_only
        }),
        w().prop_map(|wrote| Payload::ShmemC2HAck { wrote }),
        (u(), u()).prop_map(|(bad_first, bad_second)| Payload::ShmemC2HResult {
            bad_first,
            bad_second
        }),
        u().prop_map(|size| Payload::PlatHandleC2H { size }),
        (u(), u()).prop_map(|(size, fnv)| Payload::PlatHandleC2HFds { size, fnv }),
        u().prop_map(|host_fnv| Payload::PlatHandleC2HAck { host_fnv }),
        (u(), u(), u(), u()).prop_map(|(mark_ok, pipe_ok, pipe_bytes, pipe_eof)| {
            Payload::PlatHandleC2HResult {
                mark_ok,
                pipe_ok,
                pipe_bytes,
                pipe_eof,
            }
        }),
        w().prop_map(|hop| Payload::PipeBounce { hop }),
        w().prop_map(|hop| Payload::PipeBounceBack { hop }),
        (w(), w()).prop_map(|(index, total)| Payload::ManyPipe { index, total }),
        (u(), u()).prop_map(|(handled, errors)| Payload::ManyPipesDone { handled, errors }),
        (w(), w()).prop_map(|(first, count)| Payload::ScaleOpen { first, count }),
        u().prop_map(|count| Payload::ScaleEcho { count }),
        u().prop_map(|echoed| Payload::ScaleEchoDone { echoed }),
        (u(), u()).prop_map(|(count, size)| Payload::ScaleSink { count, size }),
        Just(Payload::ScaleClose),
        u().prop_map(|closed| Payload::ScaleClosed { closed }),
        (u(), u(), w()).prop_map(|(count, size, kind)| Payload::HandleSink { count, size, kind }),
        (u(), u(), u(), u()).prop_map(|(received, bytes, bad, handles)| Payload::HandleSinkAck {
            received,
            bytes,
            bad,
            handles
        }),
        (
            u(),
            proptest::collection::vec(u(), 0..=MAX_ERROR_DETAIL_WORDS)
        )
            .prop_map(|(code, detail)| Payload::Error { code, detail }),
    ]
}

proptest! {
    #[test]
    fn round_trip(p in any_payload()) {
        let bytes = p.encode();
        prop_assert_eq!(opcode_of(&bytes), p.opcode());
        if let Some(size) = fixed_size(p.opcode()) {
            prop_assert_eq!(bytes.len(), size);
        }
        prop_assert_eq!(Payload::decode(&bytes), Ok(p));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        if let Ok(p) = Payload::decode(&bytes) {
            // Whatever decodes re-encodes to the same bytes.
            prop_assert_eq!(p.encode(), bytes);
        }
    }

    #[test]
    fn known_opcode_any_length(opcode in 0u32..110, len in 0usize..48) {
        let mut bytes = opcode.to_le_bytes().to_vec();
        bytes.resize(4 + len, 0xa5);
        let r = Payload::decode(&bytes);
        if let Some(size) = fixed_size(opcode) {
            prop_assert_eq!(r.is_ok(), bytes.len() == size);
        }
    }
}
