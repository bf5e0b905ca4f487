//! Checks that a [`MojoSystem`] keeps Mojo's trap and watcher semantics,
//! written once and run against every implementation (the node-backed
//! systems over real links in this crate's tests, the test peers' fake in
//! theirs). Each check panics at the first difference, naming it: they are
//! for tests only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ArmingPolicy, Trap, TrapEvent, TriggerCondition, Watcher};
use crate::conformance::SETTLE;
use crate::{MessagePipe, MojoError, MojoResult, MojoSystem, Signals, read_one, wait};

const SAT: TriggerCondition = TriggerCondition::SignalsSatisfied;

fn deadline() -> Option<Instant> {
    Some(Instant::now() + SETTLE)
}

/// A deadline a moment away, to see that nothing comes.
fn shortly() -> Option<Instant> {
    Some(Instant::now() + Duration::from_millis(50))
}

/// Waits until `pipe` is readable (a message written has crossed).
fn arrived<S: MojoSystem + ?Sized>(sys: &S, pipe: &MessagePipe) {
    wait(sys, pipe.raw(), Signals::READABLE, deadline()).expect("the message arrives");
}

fn event(trap: &Trap, what: &str) -> TrapEvent {
    trap.wait_event(deadline())
        .unwrap_or_else(|e| panic!("{what}: no event ({e})"))
}

/// Trap calls on a fresh pipe of `sys`: argument checks, arming with and
/// without blocking events, one event per arming, removal, closure of the
/// watched handle, of its peer, of the trap, and a handle sent away.
pub fn trap_rules<S: MojoSystem + ?Sized>(sys: &S) {
    let trap = sys.create_trap().expect("create_trap");
    let (a, b) = sys.create_message_pipe().expect("pipe");
    let buf = sys.create_shared_buffer(64).expect("buffer");
    assert_eq!(
        sys.add_trigger(&trap, buf.raw(), Signals::READABLE, SAT, 1),
        Err(MojoError::InvalidArgument),
        "a buffer cannot be watched"
    );
    assert_eq!(
        sys.add_trigger(&trap, trap.raw(), Signals::READABLE, SAT, 1),
        Err(MojoError::InvalidArgument),
        "a trap cannot be watched"
    );
    assert_eq!(
        sys.arm_trap(&trap, 1).unwrap_err().error,
        MojoError::NotFound,
        "arming without triggers"
    );
    sys.add_trigger(&trap, b.raw(), Signals::READABLE, SAT, 7)
        .expect("add_trigger");
    assert_eq!(
        sys.add_trigger(&trap, a.raw(), Signals::READABLE, SAT, 7),
        Err(MojoError::AlreadyExists),
        "a context twice"
    );
    assert_eq!(
        sys.add_trigger(&trap, b.raw(), Signals::PEER_CLOSED, SAT, 8),
        Err(MojoError::AlreadyExists),
        "a handle twice"
    );
    assert_eq!(sys.remove_trigger(&trap, 9), Err(MojoError::NotFound));
    assert_eq!(sys.arm_trap(&trap, 1), Ok(()));
    assert_eq!(trap.next_event(), None, "nothing happened yet");
    sys.write_message(&a, b"one", vec![]).expect("write");
    let e = event(&trap, "readable");
    assert_eq!((e.context, e.result), (7, Ok(())));
    assert!(e.signals_state.satisfied.intersects(Signals::READABLE));
    sys.write_message(&a, b"two", vec![]).expect("write");
    assert_eq!(
        trap.wait_event(shortly()),
        Err(MojoError::DeadlineExceeded),
        "fired: disarmed"
    );
    arrived(sys, &b);
    let err = sys.arm_trap(&trap, 4).unwrap_err();
    assert_eq!(err.error, MojoError::FailedPrecondition, "readable already");
    assert_eq!(err.blocking_events.len(), 1);
    assert_eq!(err.blocking_events[0].context, 7);
    assert_eq!(sys.arm_trap(&trap, 0).unwrap_err().blocking_events, vec![]);
    for _ in 0..2 {
        read_one(sys, &b, deadline()).expect("read");
    }
    assert_eq!(sys.arm_trap(&trap, 1), Ok(()));
    // The peer closes: READABLE can never come.
    drop(a);
    let e = event(&trap, "peer closed");
    assert_eq!(e.result, Err(MojoError::FailedPrecondition));
    assert!(e.signals_state.satisfied.intersects(Signals::PEER_CLOSED));
    // Removal cancels, once, armed or not.
    sys.remove_trigger(&trap, 7).expect("remove");
    assert_eq!(event(&trap, "removed").result, Err(MojoError::Cancelled));
    assert_eq!(sys.remove_trigger(&trap, 7), Err(MojoError::NotFound));
    // Closing the watched handle cancels.
    sys.add_trigger(&trap, b.raw(), Signals::PEER_CLOSED, SAT, 8)
        .expect("add again");
    drop(b);
    let e = event(&trap, "closed");
    assert_eq!((e.context, e.result), (8, Err(MojoError::Cancelled)));
    assert_eq!(trap.next_event(), None, "cancelled once");
    // Sending the watched handle away cancels too.
    let (c, d) = sys.create_message_pipe().expect("pipe");
    let (e1, _e2) = sys.create_message_pipe().expect("pipe");
    sys.add_trigger(&trap, e1.raw(), Signals::READABLE, SAT, 9)
        .expect("add");
    sys.write_message(&c, b"carry", vec![e1.into()])
        .expect("send");
    let e = event(&trap, "sent away");
    assert_eq!((e.context, e.result), (9, Err(MojoError::Cancelled)));
    drop((c, d, trap, buf));
}

/// A data pipe consumer's trap fires when the producer writes; a trigger
/// added to an armed trap whose condition holds fires at once.
pub fn data_pipe_trap<S: MojoSystem + ?Sized>(sys: &S) {
    let (p, c) = sys.create_data_pipe(1, 64).expect("data pipe");
    let trap = sys.create_trap().expect("trap");
    sys.add_trigger(&trap, c.raw(), Signals::READABLE, SAT, 1)
        .expect("add");
    sys.arm_trap(&trap, 1).expect("arm");
    assert_eq!(sys.write_data(&p, b"abc"), Ok(3));
    let e = event(&trap, "data readable");
    assert_eq!((e.context, e.result), (1, Ok(())));
    // Drain it; arm again; add the (writable) producer: it fires at once.
    let mut out = [0; 3];
    assert_eq!(sys.read_data(&c, &mut out), Ok(3));
    sys.arm_trap(&trap, 1).expect("arm");
    sys.add_trigger(&trap, p.raw(), Signals::WRITABLE, SAT, 2)
        .expect("add");
    let e = event(&trap, "writable at once");
    assert_eq!((e.context, e.result), (2, Ok(())));
}

/// A trigger on `NEW_DATA_READABLE` fires at each arrival, not while old
/// bytes stay unread (where a `READABLE` trigger could not even be armed),
/// and a `SignalsUnsatisfied` one fires when a read lowers the signal.
pub fn new_data_trap<S: MojoSystem + ?Sized>(sys: &S) {
    let new = Signals::NEW_DATA_READABLE;
    let (p, c) = sys.create_data_pipe(1, 64).expect("data pipe");
    let trap = sys.create_trap().expect("trap");
    sys.add_trigger(&trap, c.raw(), new, SAT, 1).expect("add");
    sys.arm_trap(&trap, 1).expect("arm: nothing new yet");
    assert_eq!(sys.write_data(&p, b"abcd"), Ok(4));
    let e = event(&trap, "new data");
    assert_eq!((e.context, e.result), (1, Ok(())));
    assert!(e.signals_state.satisfied.intersects(new));
    let err = sys.arm_trap(&trap, 1).expect_err("still new");
    assert_eq!(err.error, MojoError::FailedPrecondition);
    let mut two = [0u8; 2];
    assert_eq!(sys.read_data(&c, &mut two), Ok(2));
    // Two old bytes are left: readable, but nothing new.
    sys.arm_trap(&trap, 1).expect("arm with old bytes left");
    assert!(
        trap.wait_event(shortly()).is_err(),
        "no event for old bytes"
    );
    assert_eq!(sys.write_data(&p, b"e"), Ok(1));
    let e = event(&trap, "new data again");
    assert_eq!((e.context, e.result), (1, Ok(())));

    let lowered = sys.create_trap().expect("trap");
    let unsat = TriggerCondition::SignalsUnsatisfied;
    sys.add_trigger(&lowered, c.raw(), new, unsat, 2)
        .expect("add");
    sys.arm_trap(&lowered, 1).expect("arm while new");
    assert_eq!(sys.query_data(&c), Ok(3));
    let e = event(&lowered, "a read call lowers it");
    assert_eq!((e.context, e.result), (2, Ok(())));
    assert!(!e.signals_state.satisfied.intersects(new));

    // Once the producer is gone and the bytes are read, it never comes.
    sys.arm_trap(&trap, 1).expect("arm");
    drop(p);
    let mut rest = [0u8; 8];
    let until = Instant::now() + SETTLE;
    while !matches!(
        sys.read_data(&c, &mut rest),
        Err(MojoError::FailedPrecondition)
    ) {
        assert!(Instant::now() < until, "the producer closure never came");
        let _ = wait(sys, c.raw(), Signals::PEER_CLOSED, shortly());
    }
    let e = event(&trap, "unsatisfiable");
    assert_eq!(
        (e.context, e.result),
        (1, Err(MojoError::FailedPrecondition))
    );
}

/// Several triggers at once: blocking events go round the ready ones, two
/// traps watch one handle apart, and `SignalsUnsatisfied` fires when a
/// signal goes.
pub fn many_triggers<S: MojoSystem + ?Sized>(sys: &S) {
    let trap = sys.create_trap().expect("trap");
    let pipes: Vec<_> = (0..3)
        .map(|_| sys.create_message_pipe().expect("pipe"))
        .collect();
    for (ctx, (a, b)) in (1..).zip(&pipes) {
        sys.add_trigger(&trap, b.raw(), Signals::READABLE, SAT, ctx)
            .expect("add");
        sys.write_message(a, b"x", vec![]).expect("write");
    }
    let ready = |max| {
        let until = Instant::now() + SETTLE;
        loop {
            let err = sys.arm_trap(&trap, max).expect_err("all are readable");
            if err.blocking_events.len() == max.min(3) || Instant::now() > until {
                break err.blocking_events;
            }
        }
    };
    let firsts: Vec<u64> = (0..4).map(|_| ready(1)[0].context).collect();
    assert_eq!(firsts, vec![1, 2, 3, 1], "blocking events go round");
    assert_eq!(ready(10).len(), 3);
    // Two traps on one handle; each fires for its own signal.
    let (a, b) = sys.create_message_pipe().expect("pipe");
    let other = sys.create_trap().expect("trap");
    sys.add_trigger(&trap, b.raw(), Signals::PEER_CLOSED, SAT, 9)
        .expect("add");
    let unsat = TriggerCondition::SignalsUnsatisfied;
    sys.add_trigger(&other, b.raw(), Signals::WRITABLE, unsat, 1)
        .expect("the same handle on another trap");
    assert_eq!(sys.arm_trap(&other, 1), Ok(()), "writable now");
    for (_, b) in &pipes {
        sys.read_message(b).expect("read");
    }
    assert_eq!(sys.arm_trap(&trap, 1), Ok(()), "nothing readable now");
    drop(a);
    let e = event(&other, "not writable any more");
    assert_eq!((e.context, e.result), (1, Ok(())));
    let e = event(&trap, "peer closed");
    assert_eq!((e.context, e.result), (9, Ok(())));
}

/// [`ArmingPolicy::Automatic`]: re-armed after each notification handed
/// out (a notification again while messages are left), one
/// `FAILED_PRECONDITION` when the peer is gone, then nothing.
pub fn automatic_watcher<S: MojoSystem + ?Sized>(sys: &S) {
    let (a, b) = sys.create_message_pipe().expect("pipe");
    let mut w = Watcher::new(sys, ArmingPolicy::Automatic).expect("watcher");
    w.watch(b.raw(), Signals::READABLE, SAT).expect("watch");
    assert_eq!(
        w.watch(a.raw(), Signals::READABLE, SAT),
        Err(MojoError::AlreadyExists)
    );
    assert_eq!(w.next_event(), None, "nothing yet");
    for m in [b"1", b"2"] {
        sys.write_message(&a, m, vec![]).expect("write");
    }
    let (result, state) = w.wait_event(deadline()).expect("notified");
    assert_eq!(result, Ok(()));
    assert!(state.satisfied.intersects(Signals::READABLE));
    sys.read_message(&b).expect("read one");
    arrived(sys, &b);
    // One is left: re-arming finds it ready and notifies again.
    assert_eq!(w.next_event().map(|n| n.0), Some(Ok(())), "still readable");
    sys.read_message(&b).expect("read two");
    assert_eq!(w.next_event(), None, "drained: re-armed, quiet");
    sys.write_message(&a, b"3", vec![]).expect("write");
    assert_eq!(w.wait_event(deadline()).map(|n| n.0), Ok(Ok(())));
    sys.read_message(&b).expect("read three");
    drop(a);
    assert_eq!(
        w.wait_event(deadline()).map(|n| n.0),
        Ok(Err(MojoError::FailedPrecondition))
    );
    assert_eq!(
        w.wait_event(shortly()),
        Err(MojoError::DeadlineExceeded),
        "once only"
    );
    // Closing the watched handle ends the watch with CANCELLED.
    drop(b);
    assert_eq!(
        w.wait_event(deadline()).map(|n| n.0),
        Ok(Err(MojoError::Cancelled))
    );
    assert!(!w.is_watching());
    assert_eq!(w.wait_event(shortly()), Err(MojoError::FailedPrecondition));
}

/// [`ArmingPolicy::Manual`]: nothing until armed; arming a ready handle
/// reports it; no re-arming after a notification; `cancel` is silent.
pub fn manual_watcher<S: MojoSystem + ?Sized>(sys: &S) {
    let (a, b) = sys.create_message_pipe().expect("pipe");
    let mut w = Watcher::new(sys, ArmingPolicy::Manual).expect("watcher");
    assert_eq!(
        w.arm().unwrap_err().error,
        MojoError::NotFound,
        "not watching"
    );
    let buf = sys.create_shared_buffer(64).expect("buffer");
    assert_eq!(
        w.watch(buf.raw(), Signals::READABLE, SAT),
        Err(MojoError::InvalidArgument)
    );
    assert!(!w.is_watching());
    w.watch(b.raw(), Signals::READABLE, SAT).expect("watch");
    sys.write_message(&a, b"1", vec![]).expect("write");
    assert_eq!(
        w.wait_event(shortly()),
        Err(MojoError::DeadlineExceeded),
        "not armed"
    );
    arrived(sys, &b);
    let err = w.arm().unwrap_err();
    assert_eq!(err.error, MojoError::FailedPrecondition, "ready already");
    assert_eq!(err.blocking_events[0].result, Ok(()));
    sys.read_message(&b).expect("read");
    w.arm().expect("arm");
    sys.write_message(&a, b"2", vec![]).expect("write");
    assert_eq!(w.wait_event(deadline()).map(|n| n.0), Ok(Ok(())));
    sys.read_message(&b).expect("read");
    sys.write_message(&a, b"3", vec![]).expect("write");
    assert_eq!(
        w.wait_event(shortly()),
        Err(MojoError::DeadlineExceeded),
        "no re-arm"
    );
    // arm_or_notify on a ready handle queues the notification.
    arrived(sys, &b);
    w.arm_or_notify();
    assert_eq!(w.next_event().map(|n| n.0), Some(Ok(())));
    w.cancel();
    assert!(!w.is_watching());
    drop(b);
    assert_eq!(w.next_event(), None, "cancel is silent");
    drop(a);
}

/// A `mio` poll wakes for a trap when `a` (of `sys_a`) writes to `pipe_a`
/// from another thread and the message reaches `pipe_b` (of `sys_b`; the
/// same system or the far side of a real link); then for a watcher when
/// the far end of a pipe sent across closes.
pub fn mio_wakes<A, B>(sys_a: Arc<A>, pipe_a: Arc<MessagePipe>, sys_b: &B, pipe_b: &MessagePipe)
where
    A: MojoSystem + 'static,
    B: MojoSystem + ?Sized,
{
    use mio::{Events, Interest, Poll, Token};
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(4);
    let mut trap = sys_b.create_trap().expect("trap");
    poll.registry()
        .register(&mut trap, Token(1), Interest::READABLE)
        .expect("register");
    sys_b
        .add_trigger(&trap, pipe_b.raw(), Signals::READABLE, SAT, 3)
        .expect("add");
    sys_b.arm_trap(&trap, 1).expect("arm");
    poll.poll(&mut events, Some(Duration::from_millis(20)))
        .expect("poll");
    assert!(events.is_empty(), "readable before any message");
    let writer = {
        let (sys_a, pipe_a) = (sys_a.clone(), pipe_a.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            sys_a
                .write_message(&pipe_a, b"wake", vec![])
                .expect("write");
        })
    };
    poll.poll(&mut events, Some(SETTLE)).expect("poll");
    assert!(
        events.iter().any(|e| e.token() == Token(1)),
        "the poll woke"
    );
    let got: Vec<MojoResult<()>> = trap.drain().map(|e| e.result).collect();
    assert_eq!(got, vec![Ok(())]);
    writer.join().expect("writer");
    assert_eq!(
        read_one(sys_b, pipe_b, deadline()).expect("read").bytes,
        b"wake"
    );

    // A pipe end sent across; its peer closes on a's side.
    let (near, far) = sys_a.create_message_pipe().expect("pipe");
    sys_a
        .write_message(&pipe_a, b"end", vec![far.into()])
        .expect("send");
    let far = read_one(sys_b, pipe_b, deadline())
        .expect("the end arrives")
        .handles
        .pop()
        .and_then(|h| h.into_message_pipe().ok())
        .expect("a pipe");
    let mut w = Watcher::new(sys_b, ArmingPolicy::Automatic).expect("watcher");
    w.watch(far.raw(), Signals::PEER_CLOSED, SAT)
        .expect("watch");
    poll.registry()
        .register(&mut w, Token(2), Interest::READABLE)
        .expect("register");
    drop(near);
    let until = Instant::now() + SETTLE;
    loop {
        poll.poll(&mut events, Some(SETTLE)).expect("poll");
        if events.iter().any(|e| e.token() == Token(2)) {
            break;
        }
        assert!(Instant::now() < until, "the watcher never woke");
    }
    let (result, state) = w.next_event().expect("a notification");
    assert_eq!(result, Ok(()));
    assert!(state.satisfied.intersects(Signals::PEER_CLOSED));
    poll.registry().deregister(&mut w).expect("deregister");
    poll.registry().deregister(&mut trap).expect("deregister");
}
