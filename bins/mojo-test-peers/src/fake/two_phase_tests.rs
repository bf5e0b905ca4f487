//! The fake system's two-phase data pipes: the shared conformance checks
//! (and those of wrapped shared buffers),
//! and a model of the ring and both ends' phases that any sequence of data
//! calls must match (results and signals after each call).

use std::collections::VecDeque;

use proptest::prelude::*;

use super::FakeSystem;
use crate::system::{MojoError, MojoResult, MojoSystem, Signals, conformance};

#[test]
fn the_conformance_checks_pass() {
    let sys = FakeSystem::new();
    conformance::two_phase_write(&sys);
    conformance::two_phase_read(&sys);
    conformance::peer_closed_mid_two_phase(&sys);
    conformance::failed_writes_hand_handles_back(&sys);
    let (a, b) = sys.create_message_pipe().unwrap();
    conformance::two_phase_across(&sys, &a, &sys, &b);
    conformance::regions::wrap_round_trip(&sys);
    conformance::regions::wrap_refusals(&sys);
    conformance::regions::wrapped_region_across(&sys, &a, &sys, &b);
    conformance::new_data::new_data_readable(&sys);
    conformance::new_data::new_data_across(&sys, &a, &sys, &b);
    conformance::peer_remote(&sys, &a, &sys, &b, false);
    drop((a, b));
    assert_eq!(sys.open_handles(), 0);
}

#[derive(Debug, Clone)]
enum Op {
    Write(usize),
    Read(usize),
    BeginWrite,
    EndWrite(usize),
    BeginRead,
    EndRead(usize),
    Discard(usize),
    Query,
    CloseProducer,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..12).prop_map(Op::Write),
        (0usize..12).prop_map(Op::Read),
        Just(Op::BeginWrite),
        (0usize..12).prop_map(Op::EndWrite),
        Just(Op::BeginRead),
        (0usize..12).prop_map(Op::EndRead),
        (0usize..12).prop_map(Op::Discard),
        Just(Op::Query),
        Just(Op::CloseProducer),
    ]
}

/// What Mojo answers, computed from the model: the ring's bytes, the
/// phases (bytes begun), the producer's state.
struct Model {
    ring: VecDeque<u8>,
    write_phase: Option<usize>,
    read_phase: Option<usize>,
    producer_open: bool,
    next: u8,
}

const CAPACITY: usize = 8;
const ELEMENT: usize = 2;

fn whole(n: usize) -> bool {
    n % ELEMENT == 0
}

proptest! {
    #[test]
    fn data_calls_match_the_model(ops in proptest::collection::vec(op(), 0..60)) {
        let sys = FakeSystem::new();
        let (p, c) = sys.create_data_pipe(ELEMENT as u32, CAPACITY as u32).unwrap();
        let mut p = Some(p);
        let mut m = Model {
            ring: VecDeque::new(),
            write_phase: None,
            read_phase: None,
            producer_open: true,
            next: 0,
        };
        for op in ops {
            let room = CAPACITY - m.ring.len();
            match op {
                Op::Write(n) => {
                    // (Mojo's 0-byte write is a no-op `OK`; not modelled.)
                    let Some(p) = p.as_ref().filter(|_| n > 0) else { continue };
                    let data: Vec<u8> = (0..n).map(|k| m.next.wrapping_add(k as u8)).collect();
                    let k = room.min(n) / ELEMENT * ELEMENT;
                    let want = if m.write_phase.is_some() {
                        Err(MojoError::Busy)
                    } else if !whole(n) {
                        Err(MojoError::InvalidArgument)
                    } else if k == 0 {
                        Err(MojoError::ShouldWait)
                    } else {
                        Ok(k)
                    };
                    let got = sys.write_data(p, &data);
                    prop_assert_eq!(got, want);
                    if let Ok(k) = got {
                        m.ring.extend(&data[..k]);
                        m.next = m.next.wrapping_add(k as u8);
                    }
                }
                Op::Read(n) => {
                    let mut buf = vec![0; n];
                    let k = (n / ELEMENT * ELEMENT).min(m.ring.len());
                    let want: MojoResult<usize> = if m.read_phase.is_some() {
                        Err(MojoError::Busy)
                    } else if m.ring.is_empty() {
                        Err(if m.producer_open { MojoError::ShouldWait } else { MojoError::FailedPrecondition })
                    } else {
                        Ok(k)
                    };
                    let got = sys.read_data(&c, &mut buf);
                    prop_assert_eq!(got, want);
                    if let Ok(k) = got {
                        let expect: Vec<u8> = m.ring.drain(..k).collect();
                        prop_assert_eq!(&buf[..k], &expect[..]);
                    }
                }
                Op::BeginWrite => {
                    let Some(p) = &p else { continue };
                    let want = if m.write_phase.is_some() {
                        Err(MojoError::Busy)
                    } else if room == 0 {
                        Err(MojoError::ShouldWait)
                    } else {
                        Ok(room)
                    };
                    let got = sys.begin_write_data(p).map(|b| b.len());
                    prop_assert_eq!(got, want);
                    if let Ok(n) = got {
                        m.write_phase = Some(n);
                    }
                }
                Op::EndWrite(n) => {
                    let Some(p) = &p else { continue };
                    let data: Vec<u8> = (0..n).map(|k| m.next.wrapping_add(k as u8)).collect();
                    let want = match m.write_phase.take() {
                        None => Err(MojoError::FailedPrecondition),
                        Some(b) if n <= b && whole(n) => Ok(()),
                        Some(_) => Err(MojoError::InvalidArgument),
                    };
                    let got = sys.end_write_data(p, &data);
                    prop_assert_eq!(got, want);
                    if got.is_ok() {
                        m.ring.extend(&data);
                        m.next = m.next.wrapping_add(n as u8);
                    }
                }
                Op::BeginRead => {
                    let want = if m.read_phase.is_some() {
                        Err(MojoError::Busy)
                    } else if m.ring.is_empty() {
                        Err(if m.producer_open { MojoError::ShouldWait } else { MojoError::FailedPrecondition })
                    } else {
                        Ok(m.ring.iter().copied().collect::<Vec<u8>>())
                    };
                    let got = sys.begin_read_data(&c);
                    prop_assert_eq!(&got, &want);
                    if let Ok(seen) = got {
                        m.read_phase = Some(seen.len());
                    }
                }
                Op::EndRead(n) => {
                    let want = match m.read_phase.take() {
                        None => Err(MojoError::FailedPrecondition),
                        Some(b) if n <= b && whole(n) => Ok(()),
                        Some(_) => Err(MojoError::InvalidArgument),
                    };
                    let got = sys.end_read_data(&c, n);
                    prop_assert_eq!(got, want);
                    if got.is_ok() {
                        m.ring.drain(..n);
                    }
                }
                Op::Discard(n) => {
                    let k = n.min(m.ring.len()) / ELEMENT * ELEMENT;
                    let want = if m.read_phase.is_some() {
                        Err(MojoError::Busy)
                    } else if !whole(n) {
                        Err(MojoError::InvalidArgument)
                    } else if k == 0 {
                        Err(if m.producer_open { MojoError::ShouldWait } else { MojoError::FailedPrecondition })
                    } else {
                        Ok(k)
                    };
                    let got = sys.discard_data(&c, n);
                    prop_assert_eq!(got, want);
                    if let Ok(k) = got {
                        m.ring.drain(..k);
                    }
                }
                Op::Query => {
                    let want = if m.read_phase.is_some() {
                        Err(MojoError::Busy)
                    } else {
                        Ok(m.ring.len())
                    };
                    prop_assert_eq!(sys.query_data(&c), want);
                }
                Op::CloseProducer => {
                    p = None;
                    m.producer_open = false;
                    m.write_phase = None;
                }
            }
            // Signals after every call.
            let cs = sys.query_signals(c.raw()).unwrap();
            prop_assert_eq!(
                cs.satisfied.intersects(Signals::READABLE),
                !m.ring.is_empty() && m.read_phase.is_none()
            );
            prop_assert_eq!(cs.satisfied.intersects(Signals::PEER_CLOSED), !m.producer_open);
            prop_assert_eq!(
                cs.satisfiable.intersects(Signals::READABLE),
                !m.ring.is_empty() || m.producer_open
            );
            if let Some(p) = &p {
                let ps = sys.query_signals(p.raw()).unwrap();
                prop_assert_eq!(
                    ps.satisfied.intersects(Signals::WRITABLE),
                    m.ring.len() < CAPACITY && m.write_phase.is_none()
                );
            }
        }
    }
}
