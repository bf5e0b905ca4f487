//! Sender verification (§4.9, the desktop profile): the sender fields each
//! port writes, and the receiver taking events only from a port's expected
//! sender, in that sender's order.

use mojo_legacy_wire::{NodeName, PortName};
use mojo_wire_kit::SeededRandom;

use super::sim::node_name_of;
use super::*;

type Wire = Vec<(NodeName, Event<String>, Sender)>;

fn verifying(i: usize) -> Node<String> {
    let mut n = Node::new(node_name_of(i), SeededRandom::new(i as u64 + 10));
    n.set_sender_verification(true);
    n
}

fn take(node: &mut Node<String>) -> Wire {
    std::iter::from_fn(|| node.poll_transmit_with_sender()).collect()
}

/// Delivers everything both ways until idle; returns what crossed, in order.
fn run(a: &mut Node<String>, b: &mut Node<String>) -> Wire {
    let mut crossed = Vec::new();
    loop {
        let (from_a, from_b) = (take(a), take(b));
        if from_a.is_empty() && from_b.is_empty() {
            return crossed;
        }
        for (_, e, s) in from_a.iter().cloned() {
            b.handle_event_from(a.name(), e, s).unwrap();
        }
        for (_, e, s) in from_b.iter().cloned() {
            a.handle_event_from(b.name(), e, s).unwrap();
        }
        crossed.extend(from_a);
        crossed.extend(from_b);
    }
}

/// An attachment joined by a merge, as §4.8.1: (broker end, client end).
fn connect(a: &mut Node<String>, b: &mut Node<String>) -> (PortName, PortName, Wire) {
    let (x, reserved) = a.create_pipe().unwrap();
    let (p0, p1) = b.create_merge_pipe().unwrap();
    a.merge_with_remote(reserved, b.name(), p1).unwrap();
    let crossed = run(a, b);
    (x, p0, crossed)
}

fn kinds(wire: &Wire) -> Vec<EventKind> {
    wire.iter().map(|(_, e, _)| e.kind()).collect()
}

/// PortAccepted and MergePort name no sender; every other event names its
/// sending port with that port's next number, and a merge and each proxy
/// removal announce the new sender with `UpdatePreviousPeer` (G3, G5).
#[test]
fn merges_announce_new_senders_and_number_every_event() {
    let (mut a, mut b) = (verifying(0), verifying(1));
    let (x, p0, crossed) = connect(&mut a, &mut b);
    for (_, e, s) in &crossed {
        match e.kind() {
            EventKind::PortAccepted | EventKind::MergePort => assert_eq!(*s, Sender::NONE),
            _ => {
                assert!(names::port_is_valid(s.from_port), "{e:?}");
                assert!((1..u64::MAX).contains(&s.control_sequence_num), "{e:?}");
            }
        }
    }
    let updates = kinds(&crossed)
        .iter()
        .filter(|k| **k == EventKind::UpdatePreviousPeer)
        .count();
    // The client's merge (to A), the broker's proxy removal (to X) and the
    // client's proxy removal (to A), as recorded (§4.9).
    assert_eq!(updates, 3, "{:?}", kinds(&crossed));
    // The pipe works both ways, its messages numbered by their senders.
    a.send_message(x, "to client".into(), vec![]).unwrap();
    b.send_message(p0, "to broker".into(), vec![]).unwrap();
    let crossed = run(&mut a, &mut b);
    let senders: Vec<PortName> = crossed.iter().map(|(_, _, s)| s.from_port).collect();
    assert_eq!(senders, vec![x, p0]);
    assert_eq!(b.get_message(p0).unwrap().unwrap().payload, "to client");
    assert_eq!(a.get_message(x).unwrap().unwrap().payload, "to broker");
    a.close_port(x).unwrap();
    b.close_port(p0).unwrap();
    run(&mut a, &mut b);
    assert_eq!(a.port_count() + b.port_count(), 0);
}

/// Events from a port's expected sender wait for their turn: delivered in
/// reverse, a closure (numbered after the messages) is applied only after
/// them.
#[test]
fn events_wait_for_their_senders_order() {
    let (mut a, mut b) = (verifying(0), verifying(1));
    let (x, p0, _) = connect(&mut a, &mut b);
    for t in ["one", "two", "three"] {
        a.send_message(x, t.into(), vec![]).unwrap();
    }
    a.close_port(x).unwrap();
    let mut wire = take(&mut a);
    assert_eq!(wire.len(), 4);
    wire.reverse();
    let (closure, messages) = wire.split_first().unwrap();
    b.handle_event_from(a.name(), closure.1.clone(), closure.2)
        .unwrap();
    // Held: the closure is not applied before the messages it counts.
    assert!(!b.status(p0).unwrap().peer_closed);
    for (_, e, s) in messages.iter().cloned() {
        b.handle_event_from(a.name(), e, s).unwrap();
    }
    assert!(b.status(p0).unwrap().peer_closed);
    for t in ["one", "two", "three"] {
        assert_eq!(b.get_message(p0).unwrap().unwrap().payload, t);
    }
    b.close_port(p0).unwrap();
    run(&mut a, &mut b);
    assert_eq!(a.port_count() + b.port_count(), 0);
}

/// An event naming another sender than the port expects is never applied
/// (it waits for a turn that does not come); a repeated number is refused;
/// what waits is bounded.
#[test]
fn events_from_unexpected_senders_are_held_and_bounded() {
    let (mut a, mut b) = (verifying(0), verifying(1));
    let (x, p0, _) = connect(&mut a, &mut b);
    let forged = |n: u64| {
        (
            Event::<String>::ObserveClosure {
                port_name: p0,
                last_sequence_num: 0,
            },
            Sender {
                from_port: PortName::new(7, 7),
                control_sequence_num: n,
            },
        )
    };
    let (e, s) = forged(1);
    b.handle_event_from(a.name(), e, s).unwrap();
    assert!(!b.status(p0).unwrap().peer_closed);
    let (e, s) = forged(1);
    assert!(matches!(
        b.handle_event_from(a.name(), e, s),
        Err(Error::DuplicateControlSequenceNum { .. })
    ));
    let limit = b.limits().max_control_queue;
    let mut refused = false;
    for n in 2..(limit as u64 + 3) {
        let (e, s) = forged(n);
        if let Err(e) = b.handle_event_from(a.name(), e, s) {
            assert!(matches!(e, Error::ControlQueueFull { .. }), "{e:?}");
            refused = true;
            break;
        }
    }
    assert!(refused);
    // The real sender still gets through.
    a.send_message(x, "real".into(), vec![]).unwrap();
    run(&mut a, &mut b);
    assert_eq!(b.get_message(p0).unwrap().unwrap().payload, "real");
    a.close_port(x).unwrap();
    run(&mut a, &mut b);
    b.close_port(p0).unwrap();
    run(&mut a, &mut b);
    assert_eq!(a.port_count() + b.port_count(), 0);
}
