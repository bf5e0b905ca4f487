//! The fuzz targets' logic under `cargo test` (stable, no libFuzzer): runs the
//! six `fuzzing` oracles on the seed corpus in `fuzz/corpus/legacy_*/`, on
//! every single-byte mutation of each seed, and on pseudo-random inputs.
//!
//! `cargo xtask corpus` regenerates that corpus (and the ipcz one) from the
//! vectors plus a few constructed messages the recordings lack.

use std::path::PathBuf;

use mojo_legacy_wire::EventHeaderForm;
use mojo_legacy_wire::event::Event;
use mojo_legacy_wire::fuzzing;
use mojo_legacy_wire::user_message::UserMessage;
use mojo_transcript::testing::fuzz_corpus;

type Oracle = fn(&[u8]);

const TARGETS: [(&str, Oracle); 6] = [
    ("channel_frame", fuzzing::channel_frame),
    ("deframer", fuzzing::deframer),
    ("broker_message", fuzzing::broker_message),
    ("node_message", fuzzing::node_message),
    ("ports_event", fuzzing::ports_event),
    ("user_message", fuzzing::user_message),
];

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    fuzz_corpus(&format!("legacy_{target}"))
}

#[test]
fn oracles_accept_the_seed_corpus_and_its_mutations() {
    for (target, oracle) in TARGETS {
        let seeds = seeds(target);
        assert!(
            seeds.len() >= 8,
            "legacy_{target}: only {} seeds",
            seeds.len()
        );
        for (_, bytes) in &seeds {
            oracle(bytes);
            let mut m = bytes.clone();
            for i in 0..m.len() {
                for x in [0x01, 0x80, 0xff] {
                    m[i] ^= x;
                    oracle(&m);
                    m[i] ^= x;
                }
                oracle(&m[..i]);
            }
        }
    }
}

#[test]
fn seeds_parse_at_their_own_layer() {
    // The seeds are meaningful inputs, not noise: each decodes, and (being
    // real or freshly encoded traffic) in canonical form.
    for (path, b) in seeds("channel_frame") {
        assert!(
            mojo_legacy_wire::channel::Frame::decode_exact(&b).is_ok(),
            "{}",
            path.display()
        );
    }
    for (path, b) in seeds("broker_message") {
        assert!(
            mojo_legacy_wire::broker::BrokerFrame::decode_exact(&b).is_ok(),
            "{}",
            path.display()
        );
    }
    for (path, b) in seeds("node_message") {
        assert!(
            mojo_legacy_wire::node::NodeFrame::decode_exact(&b).is_ok(),
            "{}",
            path.display()
        );
    }
    for (path, b) in seeds("ports_event") {
        let form = if b[0] & 1 == 0 {
            EventHeaderForm::Compact
        } else {
            EventHeaderForm::Extended
        };
        assert!(
            Event::decode_exact(&b[1..], form).is_ok(),
            "{}",
            path.display()
        );
    }
    for (path, b) in seeds("user_message") {
        assert!(UserMessage::decode_exact(&b).is_ok(), "{}", path.display());
    }
}

#[test]
fn oracles_survive_random_input() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let len = (next() % 200) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Make plausible headers common: a small num_bytes and type 0 or 1.
        if data.len() >= 8 && next() % 2 == 0 {
            let n = (next() % (data.len() as u64 + 1)) as u32;
            data[..4].copy_from_slice(&n.to_le_bytes());
            data[6] = (next() % 3) as u8;
            data[7] = 0;
        }
        for (_, oracle) in TARGETS {
            oracle(&data);
        }
    }
}
