//! Runs the six `fuzzing` oracles (the bodies of the cargo-fuzz targets)
//! under `cargo test`: on every seed corpus file, on random bytes, and on
//! random mutations of the seeds, so the logic is exercised without nightly.

use std::path::PathBuf;

use ipcz_wire::fuzzing;
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

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../fuzz/corpus/ipcz_{target}"))
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("read seed"))
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
        let (frame, used) = ipcz_wire::Frame::parse(&seed).expect("frame seed parses");
        assert_eq!(used, seed.len());
        ipcz_wire::Message::decode_exact(frame.payload, frame.header.num_handles.into())
            .expect("frame seed decodes exactly");
    }
    for seed in seeds("message") {
        ipcz_wire::Message::decode_exact(&seed[1..], seed[0].into())
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
