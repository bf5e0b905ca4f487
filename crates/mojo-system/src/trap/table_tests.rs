//! Tests of the sans-IO trap core: Mojo's rules one by one, then a
//! proptest against a plain model (a list of triggers per trap, evaluated
//! in full at every step).

use std::collections::BTreeMap;

use super::*;

const T1: MojoHandle = h(1);
const T2: MojoHandle = h(2);
const P: MojoHandle = h(10);
const Q: MojoHandle = h(11);

const fn h(v: u32) -> MojoHandle {
    match MojoHandle::new(v) {
        Some(h) => h,
        None => panic!("zero"),
    }
}

const SAT: TriggerCondition = TriggerCondition::SignalsSatisfied;

/// An open, idle message pipe end: writable, may become readable.
fn idle() -> SignalsState {
    SignalsState {
        satisfied: Signals::WRITABLE,
        satisfiable: Signals::READABLE | Signals::WRITABLE | Signals::PEER_CLOSED,
    }
}

fn readable() -> SignalsState {
    SignalsState {
        satisfied: Signals::READABLE | Signals::WRITABLE,
        ..idle()
    }
}

/// Peer closed, nothing left to read.
fn dead() -> SignalsState {
    SignalsState {
        satisfied: Signals::PEER_CLOSED,
        satisfiable: Signals::PEER_CLOSED,
    }
}

fn events(t: &mut Traps) -> Vec<(MojoHandle, u64, MojoResult<()>)> {
    std::iter::from_fn(|| t.poll_event())
        .map(|(trap, e)| (trap, e.context, e.result))
        .collect()
}

fn one_trap() -> Traps {
    let mut t = Traps::new();
    t.create(T1).unwrap();
    t
}

#[test]
fn add_trigger_checks_trap_context_and_handle() {
    let mut t = one_trap();
    let add = |t: &mut Traps, trap, handle, ctx| {
        t.add_trigger(trap, handle, Signals::READABLE, SAT, ctx, idle())
    };
    assert_eq!(add(&mut t, T2, P, 1), Err(MojoError::InvalidArgument));
    assert_eq!(add(&mut t, T1, P, 1), Ok(()));
    assert_eq!(add(&mut t, T1, Q, 1), Err(MojoError::AlreadyExists));
    assert_eq!(add(&mut t, T1, P, 2), Err(MojoError::AlreadyExists));
    assert_eq!(add(&mut t, T1, Q, 2), Ok(()));
    // Another trap may watch the same handle with the same context.
    t.create(T2).unwrap();
    assert_eq!(add(&mut t, T2, P, 1), Ok(()));
    assert_eq!(t.create(T2), Err(MojoError::AlreadyExists));
    assert!(
        events(&mut t).is_empty(),
        "adding to a disarmed trap fires nothing"
    );
}

#[test]
fn arming_needs_triggers_and_a_known_trap() {
    let mut t = one_trap();
    assert_eq!(
        t.arm(T1, 1, |_| idle()).unwrap_err().error,
        MojoError::NotFound
    );
    assert_eq!(
        t.arm(T2, 1, |_| idle()).unwrap_err().error,
        MojoError::InvalidArgument
    );
    t.add_trigger(T1, P, Signals::READABLE, SAT, 5, idle())
        .unwrap();
    assert_eq!(t.arm(T1, 1, |_| idle()), Ok(()));
    assert_eq!(t.arm(T1, 1, |_| readable()), Ok(()), "armed already");
    assert!(t.has_armed());
    assert_eq!(t.armed_handles().collect::<Vec<_>>(), vec![P]);
}

#[test]
fn a_fired_trap_is_disarmed_and_fires_once() {
    let mut t = one_trap();
    t.add_trigger(T1, P, Signals::READABLE, SAT, 5, idle())
        .unwrap();
    t.arm(T1, 1, |_| idle()).unwrap();
    t.update(P, idle());
    assert!(events(&mut t).is_empty(), "no condition, no event");
    t.update(P, readable());
    assert_eq!(events(&mut t), vec![(T1, 5, Ok(()))]);
    assert!(!t.has_armed());
    t.update(P, idle());
    t.update(P, readable());
    assert!(events(&mut t).is_empty(), "disarmed");
    // Arming now fails with the blocking event and its state.
    let err = t.arm(T1, 4, |_| readable()).unwrap_err();
    assert_eq!(err.error, MojoError::FailedPrecondition);
    assert_eq!(
        err.blocking_events,
        vec![TrapEvent {
            context: 5,
            result: Ok(()),
            signals_state: readable()
        }]
    );
    assert!(!t.has_armed(), "a failed arm leaves the trap disarmed");
    // No room for events: still FAILED_PRECONDITION.
    let err = t.arm(T1, 0, |_| readable()).unwrap_err();
    assert_eq!(err.error, MojoError::FailedPrecondition);
    assert!(err.blocking_events.is_empty());
}

#[test]
fn unsatisfiable_signals_fire_failed_precondition() {
    let mut t = one_trap();
    t.add_trigger(T1, P, Signals::READABLE, SAT, 5, idle())
        .unwrap();
    t.arm(T1, 1, |_| idle()).unwrap();
    t.update(P, dead());
    assert_eq!(
        events(&mut t),
        vec![(T1, 5, Err(MojoError::FailedPrecondition))]
    );
    let err = t.arm(T1, 1, |_| dead()).unwrap_err();
    assert_eq!(
        err.blocking_events[0].result,
        Err(MojoError::FailedPrecondition)
    );
}

#[test]
fn unsatisfied_condition_fires_when_not_all_signals_hold() {
    let mut t = one_trap();
    let both = Signals::READABLE | Signals::WRITABLE;
    let cond = TriggerCondition::SignalsUnsatisfied;
    t.add_trigger(T1, P, both, cond, 5, readable()).unwrap();
    assert_eq!(t.arm(T1, 1, |_| readable()), Ok(()));
    t.update(P, readable());
    assert!(events(&mut t).is_empty());
    t.update(P, idle());
    assert_eq!(events(&mut t), vec![(T1, 5, Ok(()))]);
    // Never FAILED_PRECONDITION for this condition.
    let err = t.arm(T1, 1, |_| dead()).unwrap_err();
    assert_eq!(err.blocking_events[0].result, Ok(()));
}

#[test]
fn cancelled_once_when_removed_or_closed_armed_or_not() {
    let mut t = one_trap();
    t.add_trigger(T1, P, Signals::READABLE, SAT, 5, idle())
        .unwrap();
    t.add_trigger(T1, Q, Signals::READABLE, SAT, 3, idle())
        .unwrap();
    t.add_trigger(T1, h(12), Signals::READABLE, SAT, 9, idle())
        .unwrap();
    assert_eq!(t.remove_trigger(T1, 4), Err(MojoError::NotFound));
    assert_eq!(t.remove_trigger(T2, 5), Err(MojoError::InvalidArgument));
    t.remove_trigger(T1, 5).unwrap();
    assert_eq!(events(&mut t), vec![(T1, 5, Err(MojoError::Cancelled))]);
    assert_eq!(t.remove_trigger(T1, 5), Err(MojoError::NotFound));
    t.handle_closed(P);
    assert!(events(&mut t).is_empty(), "P's trigger is gone already");
    t.arm(T1, 1, |_| idle()).unwrap();
    t.handle_closed(Q);
    assert_eq!(events(&mut t), vec![(T1, 3, Err(MojoError::Cancelled))]);
    assert!(t.has_armed(), "closing a watched handle does not disarm");
    t.add_trigger(T1, Q, Signals::READABLE, SAT, 1, idle())
        .unwrap();
    t.close(T1);
    assert_eq!(
        events(&mut t),
        vec![
            (T1, 1, Err(MojoError::Cancelled)),
            (T1, 9, Err(MojoError::Cancelled))
        ]
    );
    assert!(!t.has_armed() && t.is_empty());
    t.handle_closed(Q);
    assert!(events(&mut t).is_empty());
}

#[test]
fn adding_a_ready_trigger_to_an_armed_trap_fires_it() {
    let mut t = one_trap();
    t.add_trigger(T1, P, Signals::READABLE, SAT, 5, idle())
        .unwrap();
    t.arm(T1, 1, |_| idle()).unwrap();
    t.add_trigger(T1, Q, Signals::READABLE, SAT, 6, readable())
        .unwrap();
    assert_eq!(events(&mut t), vec![(T1, 6, Ok(()))]);
    assert!(!t.has_armed());
}

#[test]
fn blocking_events_go_round_the_triggers() {
    let mut t = one_trap();
    for (ctx, handle) in [(1, P), (2, Q), (3, h(12))] {
        t.add_trigger(T1, handle, Signals::READABLE, SAT, ctx, idle())
            .unwrap();
    }
    let first =
        |t: &mut Traps| t.arm(T1, 1, |_| readable()).unwrap_err().blocking_events[0].context;
    let order: Vec<u64> = (0..4).map(|_| first(&mut t)).collect();
    assert_eq!(order, vec![1, 2, 3, 1]);
    let two = t.arm(T1, 2, |_| readable()).unwrap_err().blocking_events;
    assert_eq!(
        two.iter().map(|e| e.context).collect::<Vec<_>>(),
        vec![2, 3]
    );
    // Only Q ready: it is found whatever the starting point.
    let err = t.arm(T1, 5, |x| if x == Q { readable() } else { idle() });
    assert_eq!(err.unwrap_err().blocking_events.len(), 1);
}

#[test]
fn traps_on_one_handle_fire_independently() {
    let mut t = one_trap();
    t.create(T2).unwrap();
    t.add_trigger(T1, P, Signals::READABLE, SAT, 1, idle())
        .unwrap();
    t.add_trigger(T2, P, Signals::PEER_CLOSED, SAT, 1, idle())
        .unwrap();
    t.arm(T1, 1, |_| idle()).unwrap();
    t.arm(T2, 1, |_| idle()).unwrap();
    t.update(P, readable());
    assert_eq!(events(&mut t), vec![(T1, 1, Ok(()))]);
    assert_eq!(
        t.armed_handles().collect::<Vec<_>>(),
        vec![P],
        "T2 still armed"
    );
    t.update(P, dead());
    assert_eq!(events(&mut t), vec![(T2, 1, Ok(()))]);
    assert!(!t.has_armed());
}

// --- The model ---------------------------------------------------------

use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Add(usize, usize, u32, bool, u64),
    Remove(usize, u64),
    Arm(usize, usize),
    Set(usize, u32, u32),
    CloseHandle(usize),
    CloseTrap(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2usize, 0..3usize, 1..8u32, any::<bool>(), 0..4u64)
            .prop_map(|(t, h, s, c, x)| Op::Add(t, h, s, c, x)),
        (0..2usize, 0..4u64).prop_map(|(t, x)| Op::Remove(t, x)),
        (0..2usize, 0..3usize).prop_map(|(t, m)| Op::Arm(t, m)),
        (0..3usize, 0..8u32, 0..8u32).prop_map(|(h, a, b)| Op::Set(h, a, b)),
        (0..3usize).prop_map(Op::CloseHandle),
        (0..2usize).prop_map(Op::CloseTrap),
    ]
}

fn signals(bits: u32) -> Signals {
    [Signals::READABLE, Signals::WRITABLE, Signals::PEER_CLOSED]
        .into_iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .fold(Signals::NONE, |acc, (_, s)| acc | s)
}

#[derive(Default)]
struct ModelTrap {
    triggers: BTreeMap<u64, (usize, Trigger)>,
    armed: bool,
}

type Ev = (MojoHandle, TrapEvent);

fn cancel(trap: MojoHandle, context: u64) -> Ev {
    let signals_state = SignalsState::default();
    let result = Err(MojoError::Cancelled);
    (
        trap,
        TrapEvent {
            context,
            result,
            signals_state,
        },
    )
}

fn sorted(mut v: Vec<Ev>) -> Vec<Ev> {
    v.sort_by_key(|(t, e)| (*t, e.context));
    v
}

proptest! {
    /// The core fires, refuses and cancels exactly as a full evaluation of
    /// every trigger at every step says.
    #[test]
    fn traps_match_a_model(ops in proptest::collection::vec(op(), 0..60)) {
        let trap_ids = [T1, T2];
        let handle_ids = [P, Q, h(12)];
        let mut core = Traps::new();
        let mut model: [Option<ModelTrap>; 2] = [Some(ModelTrap::default()), Some(ModelTrap::default())];
        core.create(T1).unwrap();
        core.create(T2).unwrap();
        let mut state = [idle(); 3];
        let mut open = [true; 3];
        for op in ops {
            let mut want: Vec<Ev> = Vec::new();
            match op {
                Op::Add(ti, hi, bits, sat, ctx) => {
                    if !open[hi] { continue; }
                    let condition = if sat { SAT } else { TriggerCondition::SignalsUnsatisfied };
                    let trigger = Trigger { handle: handle_ids[hi], signals: signals(bits), condition };
                    let got = core.add_trigger(trap_ids[ti], handle_ids[hi], trigger.signals, condition, ctx, state[hi]);
                    let expected = match &mut model[ti] {
                        None => Err(MojoError::InvalidArgument),
                        Some(m) if m.triggers.contains_key(&ctx)
                            || m.triggers.values().any(|(x, _)| *x == hi) => Err(MojoError::AlreadyExists),
                        Some(m) => {
                            m.triggers.insert(ctx, (hi, trigger));
                            let fires = trigger.result(state[hi]).filter(|_| m.armed);
                            if let Some(result) = fires {
                                m.armed = false;
                                want.push((trap_ids[ti], TrapEvent { context: ctx, result, signals_state: state[hi] }));
                            }
                            Ok(())
                        }
                    };
                    prop_assert_eq!(got, expected);
                }
                Op::Remove(ti, ctx) => {
                    let got = core.remove_trigger(trap_ids[ti], ctx);
                    let expected = match &mut model[ti] {
                        None => Err(MojoError::InvalidArgument),
                        Some(m) => match m.triggers.remove(&ctx) {
                            None => Err(MojoError::NotFound),
                            Some(_) => {
                                want.push(cancel(trap_ids[ti], ctx));
                                Ok(())
                            }
                        },
                    };
                    prop_assert_eq!(got, expected);
                }
                Op::Arm(ti, max) => {
                    let got = core.arm(trap_ids[ti], max, |x| {
                        state[handle_ids.iter().position(|y| *y == x).unwrap()]
                    });
                    match &mut model[ti] {
                        None => prop_assert_eq!(got.unwrap_err().error, MojoError::InvalidArgument),
                        Some(m) if m.armed => prop_assert_eq!(got, Ok(())),
                        Some(m) if m.triggers.is_empty() => {
                            prop_assert_eq!(got.unwrap_err().error, MojoError::NotFound);
                        }
                        Some(m) => {
                            let ready: Vec<TrapEvent> = m.triggers.iter().filter_map(|(&context, (hi, tr))| {
                                tr.result(state[*hi]).map(|result| TrapEvent { context, result, signals_state: state[*hi] })
                            }).collect();
                            if ready.is_empty() {
                                prop_assert_eq!(got, Ok(()));
                                m.armed = true;
                            } else {
                                let err = got.unwrap_err();
                                prop_assert_eq!(err.error, MojoError::FailedPrecondition);
                                prop_assert_eq!(err.blocking_events.len(), max.min(ready.len()));
                                for e in &err.blocking_events {
                                    prop_assert!(ready.contains(e), "{:?} is not ready", e);
                                }
                            }
                        }
                    }
                }
                Op::Set(hi, a, b) => {
                    if !open[hi] { continue; }
                    let satisfiable = signals(a | b);
                    state[hi] = SignalsState { satisfied: signals(a), satisfiable };
                    core.update(handle_ids[hi], state[hi]);
                    for (ti, m) in model.iter_mut().enumerate() {
                        let Some(m) = m.as_mut().filter(|m| m.armed) else { continue };
                        let Some((&context, (_, tr))) = m.triggers.iter().find(|(_, (x, _))| *x == hi) else { continue };
                        if let Some(result) = tr.result(state[hi]) {
                            m.armed = false;
                            want.push((trap_ids[ti], TrapEvent { context, result, signals_state: state[hi] }));
                        }
                    }
                }
                Op::CloseHandle(hi) => {
                    if !open[hi] { continue; }
                    open[hi] = false;
                    core.handle_closed(handle_ids[hi]);
                    for (ti, m) in model.iter_mut().enumerate() {
                        let Some(m) = m.as_mut() else { continue };
                        let gone: Vec<u64> = m.triggers.iter().filter(|(_, (x, _))| *x == hi).map(|(c, _)| *c).collect();
                        for c in gone {
                            m.triggers.remove(&c);
                            want.push(cancel(trap_ids[ti], c));
                        }
                    }
                }
                Op::CloseTrap(ti) => {
                    core.close(trap_ids[ti]);
                    if let Some(m) = model[ti].take() {
                        want.extend(m.triggers.keys().map(|&c| cancel(trap_ids[ti], c)));
                    }
                }
            }
            let got: Vec<Ev> = std::iter::from_fn(|| core.poll_event()).collect();
            prop_assert_eq!(sorted(got), sorted(want));
            let mut armed: Vec<MojoHandle> = core.armed_handles().collect();
            armed.sort();
            let mut expected: Vec<MojoHandle> = model.iter().flatten().filter(|m| m.armed)
                .flat_map(|m| m.triggers.values().map(|(hi, _)| handle_ids[*hi])).collect();
            expected.sort();
            expected.dedup();
            prop_assert_eq!(armed, expected);
        }
    }
}
