//! The message pipe model (`conformance::pipes`) on the node-backed
//! systems: random call sequences on local pipes of a legacy system (both
//! profiles) and of an ipcz system, and on pipes whose two ends live in the
//! two systems of a joined pair (one end sent across the pair's pipe).

use mojo_legacy_wire::Profile;
use mojo_system::conformance::pipes::{PipeOp, pipe_model};
use mojo_system::conformance::{self, Joined};
use mojo_system::runtime::Protocol;
use mojo_system::{MojoSystem, read_one};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Cases per run: each builds fresh pipes on one reused pair.
const CASES: u32 = 32;
/// The longest call sequence.
const MAX_OPS: usize = 30;

fn pipe_op() -> impl Strategy<Value = PipeOp> {
    prop_oneof![
        (
            0usize..2,
            proptest::collection::vec(any::<u8>(), 0..8),
            any::<bool>()
        )
            .prop_map(|(end, bytes, attach)| PipeOp::Write { end, bytes, attach }),
        (0usize..2).prop_map(PipeOp::Read),
        (0usize..2).prop_map(PipeOp::Close),
    ]
}

fn ops() -> impl Strategy<Value = Vec<PipeOp>> {
    proptest::collection::vec(pipe_op(), 0..MAX_OPS)
}

/// Runs the model on local pipes of each system of the pair, and on pipes
/// split across it in both directions.
fn check_pair<P: Protocol>((a, mut pipes_a): Joined<P>, (b, mut pipes_b): Joined<P>) {
    let (pa, pb) = (pipes_a.remove(0), pipes_b.remove(0));
    let mut runner = TestRunner::new(Config::with_cases(CASES));
    runner
        .run(&ops(), |ops| {
            for sys in [&a, &b] {
                let (x, y) = sys.create_message_pipe().expect("pipe");
                pipe_model(sys, x, sys, y, &ops);
            }
            for (from, to, via, at) in [(&a, &b, &pa, &pb), (&b, &a, &pb, &pa)] {
                let (x, y) = from.create_message_pipe().expect("pipe");
                from.write_message(via, b"end", vec![y.into()])
                    .expect("send an end across");
                let y = read_one(to, at, conformance::deadline())
                    .expect("the end arrives")
                    .handles
                    .pop()
                    .and_then(|h| h.into_message_pipe().ok())
                    .expect("a pipe end");
                pipe_model(from, x, to, y, &ops);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn legacy_libchrome_pipes_match_the_model() {
    let (a, b) = conformance::legacy_pair(Profile::Libchrome);
    check_pair(a, b);
}

#[test]
fn legacy_desktop_pipes_match_the_model() {
    let (a, b) = conformance::legacy_pair(Profile::Desktop);
    check_pair(a, b);
}

#[test]
fn ipcz_pipes_match_the_model() {
    let (a, b) = conformance::ipcz_pair();
    check_pair(a, b);
}
