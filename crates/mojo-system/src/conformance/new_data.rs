//! Conformance checks of `MOJO_HANDLE_SIGNAL_NEW_DATA_READABLE` on data
//! pipe consumers (the rules are in [`crate::new_data`]): raised by
//! arrivals, lowered by every read call, masked during a two-phase read,
//! satisfiable while raised or while the producer is open; locally and
//! across a link.

use std::time::{Duration, Instant};

use crate::{
    DataPipeConsumer, MessagePipe, MojoError, MojoSystem, Signals, SignalsState, read_one, wait,
};

use super::deadline;

const NEW: Signals = Signals::NEW_DATA_READABLE;

fn state<S: MojoSystem + ?Sized>(sys: &S, c: &DataPipeConsumer) -> SignalsState {
    sys.query_signals(c.raw()).expect("query")
}

fn is_new<S: MojoSystem + ?Sized>(sys: &S, c: &DataPipeConsumer) -> bool {
    state(sys, c).satisfied.intersects(NEW)
}

/// Waits (on `NEW_DATA_READABLE` itself) until `c` has new data.
fn wait_new<S: MojoSystem + ?Sized>(sys: &S, c: &DataPipeConsumer, what: &str) {
    wait(sys, c.raw(), NEW, deadline()).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(is_new(sys, c), "{what}: new data after the wait");
}

/// Asserts that no new data shows on `c` (a short wait times out).
fn no_new<S: MojoSystem + ?Sized>(sys: &S, c: &DataPipeConsumer, what: &str) {
    assert!(!is_new(sys, c), "{what}");
    let soon = Some(Instant::now() + Duration::from_millis(20));
    assert_eq!(
        wait(sys, c.raw(), NEW, soon),
        Err(MojoError::DeadlineExceeded),
        "{what}: a wait finds nothing new"
    );
}

/// The rules on a fresh local data pipe of `sys`.
pub fn new_data_readable<S: MojoSystem + ?Sized>(sys: &S) {
    let (p, c) = sys.create_data_pipe(1, 64).expect("create");
    let s = state(sys, &c);
    assert!(!s.satisfied.intersects(NEW), "nothing written yet");
    assert!(
        s.satisfiable.intersects(NEW),
        "satisfiable while the producer is open"
    );

    assert_eq!(sys.write_data(&p, b"abc"), Ok(3));
    wait_new(sys, &c, "a write");
    let mut one = [0u8; 1];
    assert_eq!(sys.read_data(&c, &mut one), Ok(1));
    let s = state(sys, &c);
    assert!(s.satisfied.intersects(Signals::READABLE), "two bytes left");
    no_new(sys, &c, "a read lowers it, bytes left or not");

    assert_eq!(sys.write_data(&p, b"d"), Ok(1));
    wait_new(sys, &c, "a write after the read");
    assert_eq!(sys.discard_data(&c, 1), Ok(1));
    no_new(sys, &c, "a discard lowers it");
    assert_eq!(sys.write_data(&p, b"e"), Ok(1));
    wait_new(sys, &c, "a write after the discard");
    assert_eq!(sys.query_data(&c), Ok(3));
    no_new(sys, &c, "a query lowers it (as in Mojo)");
    assert_eq!(sys.write_data(&p, b"f"), Ok(1));
    wait_new(sys, &c, "a write after the query");
    // A read call that finds nothing to do lowers it too.
    assert_eq!(sys.discard_data(&c, 0), Err(MojoError::ShouldWait));
    no_new(sys, &c, "a discard of nothing");

    assert_eq!(sys.write_data(&p, b"g"), Ok(1));
    wait_new(sys, &c, "before the two-phase read");
    let seen = sys.begin_read_data(&c).expect("begin");
    assert_eq!(seen, b"cdefg");
    let s = state(sys, &c);
    assert!(
        !s.satisfied.intersects(NEW),
        "masked during a two-phase read"
    );
    assert!(s.satisfiable.intersects(NEW));
    sys.end_read_data(&c, 2).expect("end");
    no_new(sys, &c, "a two-phase read lowers it");
    let _ = sys.begin_read_data(&c).expect("begin");
    assert_eq!(sys.write_data(&p, b"h"), Ok(1));
    sys.end_read_data(&c, 1).expect("end");
    wait_new(
        sys,
        &c,
        "bytes written during a two-phase read are new after it",
    );

    // The producer closes: new data stays satisfied until read; then the
    // signal can never come again.
    drop(p);
    wait(sys, c.raw(), Signals::PEER_CLOSED, deadline()).expect("peer closed");
    let s = state(sys, &c);
    assert!(s.satisfied.intersects(NEW) && s.satisfiable.intersects(NEW));
    let mut rest = [0u8; 16];
    assert_eq!(sys.read_data(&c, &mut rest), Ok(3));
    let s = state(sys, &c);
    assert!(!s.satisfiable.intersects(NEW), "never again once drained");
    let e = sys.wait_any(&[(c.raw(), NEW)], deadline()).unwrap_err();
    assert_eq!((e.error, e.index), (MojoError::FailedPrecondition, Some(0)));
}

/// A consumer sent from `a` (over `pipe_a`) to `b` (at `pipe_b`) with bytes
/// in it arrives with new data; bytes `a` writes afterwards cross the link
/// and raise it again after each of `b`'s reads.
pub fn new_data_across<A: MojoSystem + ?Sized, B: MojoSystem + ?Sized>(
    a: &A,
    pipe_a: &MessagePipe,
    b: &B,
    pipe_b: &MessagePipe,
) {
    let (p, c) = a.create_data_pipe(1, 64).expect("create");
    assert_eq!(a.write_data(&p, b"early"), Ok(5));
    a.write_message(pipe_a, b"consumer", vec![c.into()])
        .expect("send the consumer");
    let mut m = read_one(b, pipe_b, deadline()).expect("the consumer arrives");
    let c = m
        .handles
        .pop()
        .and_then(|h| h.into_data_pipe_consumer().ok())
        .expect("a consumer");
    wait_new(b, &c, "bytes in an arriving consumer");
    let mut buf = [0u8; 16];
    let until = Instant::now() + super::SETTLE;
    let mut got = 0;
    while got < 5 {
        assert!(Instant::now() < until, "the early bytes never came");
        match b.read_data(&c, &mut buf) {
            Ok(n) => got += n,
            Err(MojoError::ShouldWait) => {
                let _ = wait(b, c.raw(), Signals::READABLE, deadline());
            }
            Err(e) => panic!("read: {e}"),
        }
    }
    no_new(b, &c, "read all");
    for _ in 0..3 {
        assert_eq!(a.write_data(&p, b"more"), Ok(4));
        wait_new(b, &c, "bytes written across the link");
        let mut got = 0;
        while got < 4 {
            match b.read_data(&c, &mut buf) {
                Ok(n) => got += n,
                Err(MojoError::ShouldWait) => {
                    let _ = wait(b, c.raw(), Signals::READABLE, deadline());
                }
                Err(e) => panic!("read: {e}"),
            }
        }
        no_new(b, &c, "read all again");
    }
    drop(p);
    wait(b, c.raw(), Signals::PEER_CLOSED, deadline()).expect("producer closure crosses");
    assert!(
        !state(b, &c).satisfiable.intersects(NEW),
        "drained and closed"
    );
}
