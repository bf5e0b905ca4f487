//! Runs the six `fuzzing` oracles (the bodies of the cargo-fuzz targets)
//! under `cargo test`: on every seed corpus file, on random bytes, and on
//! random mutations of the seeds, so the logic is exercised without nightly.

use ipcz_wire::fuzzing;
use mojo_transcript::testing::fuzz_corpus;
use proptest::prelude::*;

type Oracle = fn(&[u8]);

const TARGETS: [(&str, Oracle); 6] = [
    ("frame", fuzzing::frame),
    ("deframer", fuzzing::deframer),
    ("message", fuzzing::message),
    ("driver_object", fuzzing::driver_object),
    ("router_descriptor", fuzzing::router_descriptor),
    ("fragment", fuzzing::fragment),
];

fn seeds(target: &str) -> Vec<Vec<u8>> {
    fuzz_corpus(&format!("ipcz_{target}"))
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

#[test]
fn oracles_accept_every_seed() {
    for (target, oracle) in TARGETS {
        let seeds = seeds(target);
        assert!(seeds.len() >= 15, "{target}: only {} seeds", seeds.len());
        for seed in &seeds {
            oracle(seed);
        }
    }
}

#[test]
fn seeds_of_real_frames_decode_exactly() {
    // The frame and message seeds come from real traffic: they must not
    // only be accepted but decode exactly.
    for seed in seeds("frame") {
        let (frame, used) = ipcz_wire::frame::Frame::decode(&seed).expect("frame seed parses");
        assert_eq!(used, seed.len());
        ipcz_wire::message::Message::decode_exact(frame.payload, frame.header.num_handles.into())
            .expect("frame seed decodes exactly");
    }
    for seed in seeds("message") {
        ipcz_wire::message::Message::decode_exact(&seed[1..], seed[0].into())
            .expect("message seed decodes exactly");
    }
}

/// A seed of `target` with a few bytes changed, inserted or removed.
fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    (
        0..seeds.len(),
        prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..4), 1..6),
    )
        .prop_map(move |(i, edits)| {
            let mut b = seeds[i].clone();
            for (at, v, op) in edits {
                if b.is_empty() {
                    b.push(v);
                    continue;
                }
                let at = at % b.len();
                match op {
                    0 => b[at] = v,
                    1 => b[at] ^= 1 << (v % 8),
                    2 => b.insert(at, v),
                    _ => {
                        b.truncate(at.max(1));
                    }
                }
            }
            b
        })
}

proptest! {
    #[test]
    fn oracles_survive_random_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        for (_, oracle) in TARGETS {
            oracle(&data);
        }
    }

    #[test]
    fn frame_oracle_survives_mutations(data in mutated("frame")) {
        fuzzing::frame(&data);
    }

    #[test]
    fn deframer_oracle_survives_mutations(data in mutated("deframer")) {
        fuzzing::deframer(&data);
    }

    #[test]
    fn message_oracle_survives_mutations(data in mutated("message")) {
        fuzzing::message(&data);
    }

    #[test]
    fn driver_object_oracle_survives_mutations(data in mutated("driver_object")) {
        fuzzing::driver_object(&data);
    }

    #[test]
    fn router_descriptor_oracle_survives_mutations(data in mutated("router_descriptor")) {
        fuzzing::router_descriptor(&data);
    }

    #[test]
    fn fragment_oracle_survives_mutations(data in mutated("fragment")) {
        fuzzing::fragment(&data);
    }
}

/// `fuzz/artifacts/ipcz_message/crash-88f2af4d...`, kept as the seed
/// `unknown-id-doda-table-in-header-reserved0` (written by `cargo xtask
/// corpus`, which documents it): fd count 0, then a message with unknown id
/// 0x4a whose `driver_object_data_array` is 5, so the table's ArrayHeader is
/// read from `reserved0` and the sequence number. The encoder used to zero
/// `reserved0`; an unknown message's header is now written back verbatim.
fn unknown_id_table_in_header() -> Vec<u8> {
    fuzz_corpus("ipcz_message")
        .into_iter()
        .find(|(path, _)| path.ends_with("unknown-id-doda-table-in-header-reserved0"))
        .map(|(_, bytes)| bytes)
        .expect("the regression seed is in fuzz/corpus/ipcz_message")
}

#[test]
fn regression_unknown_message_table_inside_header() {
    let data = unknown_id_table_in_header();
    fuzzing::message(&data);
    let bytes = &data[1..];
    let m = ipcz_wire::message::Message::decode_exact(bytes, 0).expect("accepted like Chrome");
    let ipcz_wire::messages::Body::Unknown(u) = m.body else {
        panic!("id 0x4a is not a known message");
    };
    assert_eq!(u.driver_object_data_array, 5);
    assert_eq!(u.reserved0, [0, 0, 0x20, 0, 0]);
    assert!(m.driver_objects.is_empty());
    let mut out = Vec::new();
    m.encode(&mut out).unwrap();
    assert_eq!(out, bytes, "unknown message re-encodes byte for byte");
}
