//! Round trips of the wire ⇄ ports event conversion: every ports event,
//! encoded in both header forms and decoded again, is the same event.

use mojo_legacy_wire::event::Event as WireEvent;
use mojo_legacy_wire::{EventHeaderForm, NodeName, PortName};
use proptest::prelude::*;

use crate::node::convert::{event_from_wire, event_to_wire};
use crate::ports::{Event, PortDescriptor, UserMessage};

fn node() -> impl Strategy<Value = NodeName> {
    (any::<u64>(), any::<u64>()).prop_map(|(h, l)| NodeName::new(h, l))
}

fn port() -> impl Strategy<Value = PortName> {
    (any::<u64>(), any::<u64>()).prop_map(|(h, l)| PortName::new(h, l))
}

fn descriptor() -> impl Strategy<Value = PortDescriptor> {
    (
        node(),
        port(),
        node(),
        port(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(pn, pp, rn, rp, s, r, l, c)| PortDescriptor {
            peer_node_name: pn,
            peer_port_name: pp,
            referring_node_name: rn,
            referring_port_name: rp,
            next_sequence_num_to_send: s,
            next_sequence_num_to_receive: r,
            last_sequence_num_to_receive: l,
            peer_closed: c,
        })
}

fn event() -> impl Strategy<Value = Event<Vec<u8>>> {
    prop_oneof![
        (
            port(),
            any::<u64>(),
            prop::collection::vec((port(), descriptor()), 0..4),
            prop::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(port_name, sequence_num, attached, payload)| {
                Event::UserMessage {
                    port_name,
                    message: UserMessage {
                        sequence_num,
                        ports: attached.iter().map(|a| a.0).collect(),
                        descriptors: attached.iter().map(|a| a.1).collect(),
                        payload,
                    },
                }
            }),
        port().prop_map(|port_name| Event::PortAccepted { port_name }),
        (port(), node(), port(), node(), port()).prop_map(|(port_name, a, b, c, d)| {
            Event::ObserveProxy {
                port_name,
                proxy_node_name: a,
                proxy_port_name: b,
                proxy_target_node_name: c,
                proxy_target_port_name: d,
            }
        }),
        (port(), any::<u64>()).prop_map(|(port_name, n)| Event::ObserveProxyAck {
            port_name,
            last_sequence_num: n,
        }),
        (port(), any::<u64>()).prop_map(|(port_name, n)| Event::ObserveClosure {
            port_name,
            last_sequence_num: n,
        }),
        (port(), port(), descriptor()).prop_map(|(port_name, new_port_name, d)| {
            Event::MergePort {
                port_name,
                new_port_name,
                new_port_descriptor: d,
            }
        }),
        (port(), any::<u64>()).prop_map(|(port_name, n)| Event::UserMessageReadAckRequest {
            port_name,
            sequence_num_to_acknowledge: n,
        }),
        (port(), any::<u64>()).prop_map(|(port_name, n)| Event::UserMessageReadAck {
            port_name,
            sequence_num_acknowledged: n,
        }),
        (port(), node(), port()).prop_map(|(port_name, n, p)| Event::UpdatePreviousPeer {
            port_name,
            new_node_name: n,
            new_port_name: p,
        }),
    ]
}

fn round_trip(event: &Event<Vec<u8>>, form: EventHeaderForm) -> Event<Vec<u8>> {
    let payload = match event {
        Event::UserMessage { message, .. } => message.payload.clone(),
        _ => Vec::new(),
    };
    let mut bytes = Vec::new();
    event_to_wire(event, &payload, form)
        .encode(&mut bytes)
        .unwrap();
    let decoded = WireEvent::decode(&bytes, form).unwrap();
    assert_eq!(decoded.form(), form);
    let back: Result<_, ()> = event_from_wire(&decoded, |m, n| {
        assert_eq!(
            Some(n),
            match event {
                Event::UserMessage { message, .. } => Some(message.ports.len()),
                _ => None,
            }
        );
        Ok(m.to_vec())
    });
    back.unwrap().unwrap()
}

proptest! {
    #[test]
    fn wire_ports_round_trip(event in event()) {
        prop_assert_eq!(&round_trip(&event, EventHeaderForm::Compact), &event);
        prop_assert_eq!(&round_trip(&event, EventHeaderForm::Extended), &event);
    }
}

#[test]
fn unknown_event_type_converts_to_nothing() {
    let mut bytes = vec![0u8; 24];
    bytes[0] = 42;
    let decoded = WireEvent::decode(&bytes, EventHeaderForm::Compact).unwrap();
    let converted: Result<Option<Event<Vec<u8>>>, ()> =
        event_from_wire(&decoded, |m, _| Ok(m.to_vec()));
    assert_eq!(converted, Ok(None));
}

#[test]
fn payload_error_is_passed_through() {
    let event: Event<Vec<u8>> = Event::UserMessage {
        port_name: PortName::new(1, 2),
        message: UserMessage {
            sequence_num: 1,
            ports: vec![],
            descriptors: vec![],
            payload: vec![1, 2, 3],
        },
    };
    let mut bytes = Vec::new();
    event_to_wire(&event, &[1, 2, 3], EventHeaderForm::Compact)
        .encode(&mut bytes)
        .unwrap();
    let decoded = WireEvent::decode(&bytes, EventHeaderForm::Compact).unwrap();
    let converted: Result<Option<Event<Vec<u8>>>, &str> =
        event_from_wire(&decoded, |_, _| Err("refused"));
    assert_eq!(converted, Err("refused"));
}
