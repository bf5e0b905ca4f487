//! Two-node simulations: attachments, echo, pipes moving each way and back,
//! handles with fds, closure, peer loss and reordering. Each ends with
//! `assert_clean` and, where fds travelled, every probe closed.

use mojo_legacy_wire::Profile;
use mojo_legacy_wire::user_message::{DataPipeOptions, DataPipeState};
use mojo_wire_kit::{Guid, RegionMode};

use mojo_wire_kit::SeededRandom;

use super::sim::{BROKER, CLIENT, Pair, node_name_of, numeric, probed_fd};
use crate::node::{
    ApiError, DataPipeEnd, Handle, LegacyNode, NodeEvent, PeerRole, PortRef, SharedBuffer,
};
use crate::ports::OpError;

const PROFILES: [Profile; 2] = [Profile::Libchrome, Profile::Desktop];

/// Connects attachment `name`: broker end, client end.
fn attach(pair: &mut Pair, name: &[u8]) -> (PortRef, PortRef) {
    let a = pair.nodes[BROKER].reserve_attachment(name).unwrap();
    let broker = pair.name(BROKER);
    let p = pair.nodes[CLIENT].request_port_merge(broker, name).unwrap();
    pair.run_clean();
    (a, p)
}

fn close_both(pair: &mut Pair, a: PortRef, b: PortRef) {
    pair.nodes[BROKER].close_port(a).unwrap();
    pair.nodes[CLIENT].close_port(b).unwrap();
    pair.run_clean();
}

fn echo(pair: &mut Pair, a: PortRef, p: PortRef, text: &[u8]) {
    pair.nodes[BROKER].write_message(a, text, vec![]).unwrap();
    pair.run_clean();
    let got = pair.read(CLIENT, p);
    assert_eq!(got, text);
    pair.nodes[CLIENT].write_message(p, &got, vec![]).unwrap();
    pair.run_clean();
    assert_eq!(pair.read(BROKER, a), text);
}

#[test]
fn attachments_merge_by_string_and_numeric_names() {
    for profile in PROFILES {
        let mut pair = Pair::new(profile);
        let broker = pair.name(BROKER);
        let greeting = pair.nodes[BROKER].reserve_attachment(b"greeting").unwrap();
        // Written before the merge: waits in the broker, then arrives.
        pair.nodes[BROKER]
            .write_message(greeting, b"early", vec![])
            .unwrap();
        let numbered: Vec<PortRef> = (0..3)
            .map(|n| pair.nodes[BROKER].reserve_attachment(&numeric(n)).unwrap())
            .collect();
        assert_eq!(
            pair.nodes[BROKER].reserve_attachment(b"greeting"),
            Err(ApiError::AttachmentNameInUse)
        );
        let g = pair.nodes[CLIENT]
            .request_port_merge(broker, b"greeting")
            .unwrap();
        let client_numbered: Vec<PortRef> = (0..3)
            .map(|n| {
                pair.nodes[CLIENT]
                    .request_port_merge(broker, &numeric(n))
                    .unwrap()
            })
            .collect();
        pair.run_clean();
        assert_eq!(pair.nodes[BROKER].reserved_attachment_count(), 0);
        assert_eq!(pair.read(CLIENT, g), b"early");
        echo(&mut pair, greeting, g, b"hello");
        for (a, p) in numbered.iter().zip(&client_numbered) {
            echo(&mut pair, *a, *p, &a.name().to_bytes());
        }
        // No proxy is left once the merges have converged.
        assert_eq!(pair.nodes[BROKER].proxy_count(), 0);
        assert_eq!(pair.nodes[CLIENT].proxy_count(), 0);
        close_both(&mut pair, greeting, g);
        for (a, p) in numbered.into_iter().zip(client_numbered) {
            close_both(&mut pair, a, p);
        }
        pair.assert_clean();
    }
}

#[test]
fn unknown_attachment_name_reports_peer_closed() {
    let mut pair = Pair::new(Profile::Libchrome);
    let broker = pair.name(BROKER);
    let p = pair.nodes[CLIENT]
        .request_port_merge(broker, b"nobody reserved this")
        .unwrap();
    pair.run_clean();
    assert_eq!(
        pair.nodes[CLIENT].read_message(p).unwrap_err(),
        ApiError::Ports(OpError::PeerClosed { port: p.name() })
    );
    pair.nodes[CLIENT].close_port(p).unwrap();
    pair.assert_clean();
}

#[test]
fn echo_both_ways_many_messages() {
    for profile in PROFILES {
        let mut pair = Pair::new(profile);
        let (a, p) = attach(&mut pair, b"echo");
        for i in 0..50u32 {
            echo(&mut pair, a, p, &i.to_le_bytes());
        }
        close_both(&mut pair, a, p);
        pair.assert_clean();
    }
}

#[test]
fn owned_payloads_arrive_unchanged_and_their_buffers_come_back() {
    for profile in PROFILES {
        let mut pair = Pair::new(profile);
        let (a, p) = attach(&mut pair, b"owned");
        for i in 0..20u32 {
            let payload = vec![i as u8; 100 + i as usize];
            pair.nodes[BROKER]
                .write_message_owned(a, payload.clone(), vec![])
                .unwrap();
            pair.run();
            let (got, handles) = pair.nodes[CLIENT].read_message(p).unwrap().unwrap();
            assert_eq!(got, payload);
            assert!(handles.is_empty());
        }
        // Each body was encoded into its frame and its buffer kept as a spare.
        assert!(pair.nodes[BROKER].take_spare().is_some());
        close_both(&mut pair, a, p);
        pair.assert_clean();
    }
}

/// Sends a fresh pipe end from `from` to `to` over (s, r); returns the
/// sender's kept end and the receiver's new end.
fn send_pipe(pair: &mut Pair, from: usize, s: PortRef, r: PortRef) -> (PortRef, PortRef) {
    let (keep, give) = pair.nodes[from].create_pipe().unwrap();
    pair.nodes[from]
        .write_message(s, b"take this", vec![Handle::MessagePipe(give)])
        .unwrap();
    pair.run_clean();
    let (bytes, mut handles) = pair.nodes[1 - from].read_message(r).unwrap().unwrap();
    assert_eq!(bytes, b"take this");
    let Some(Handle::MessagePipe(got)) = handles.pop() else {
        panic!("no pipe")
    };
    assert!(handles.is_empty());
    (keep, got)
}

#[test]
fn pipes_sent_each_way_are_usable() {
    for profile in PROFILES {
        let mut pair = Pair::new(profile);
        let (a, p) = attach(&mut pair, b"main");
        // Broker -> client.
        let (x, y) = send_pipe(&mut pair, BROKER, a, p);
        echo(&mut pair, x, y, b"over the sent pipe");
        // Client -> broker.
        let (u, v) = send_pipe(&mut pair, CLIENT, p, a);
        pair.nodes[CLIENT].write_message(u, b"up", vec![]).unwrap();
        pair.run_clean();
        assert_eq!(pair.read(BROKER, v), b"up");
        pair.nodes[BROKER]
            .write_message(v, b"down", vec![])
            .unwrap();
        pair.run_clean();
        assert_eq!(pair.read(CLIENT, u), b"down");
        assert_eq!(pair.nodes[BROKER].proxy_count(), 0);
        assert_eq!(pair.nodes[CLIENT].proxy_count(), 0);
        close_both(&mut pair, x, y);
        pair.nodes[CLIENT].close_port(u).unwrap();
        pair.nodes[BROKER].close_port(v).unwrap();
        close_both(&mut pair, a, p);
        pair.assert_clean();
    }
}

#[test]
fn pipe_sent_back_across_collapses_its_proxies() {
    let mut pair = Pair::new(Profile::Libchrome);
    let (a, p) = attach(&mut pair, b"main");
    let (x, y) = send_pipe(&mut pair, BROKER, a, p);
    // Messages written on x while y travels back must not be lost.
    pair.nodes[BROKER].write_message(x, b"1", vec![]).unwrap();
    pair.nodes[CLIENT]
        .write_message(p, b"back", vec![Handle::MessagePipe(y)])
        .unwrap();
    // y stays behind as a proxy until the ring collapses.
    assert_eq!(pair.nodes[CLIENT].proxy_count(), 1);
    pair.nodes[BROKER].write_message(x, b"2", vec![]).unwrap();
    pair.run_clean();
    let (_, mut handles) = pair.nodes[BROKER].read_message(a).unwrap().unwrap();
    let Some(Handle::MessagePipe(y2)) = handles.pop() else {
        panic!("no pipe")
    };
    assert_eq!(pair.read(BROKER, y2), b"1");
    assert_eq!(pair.read(BROKER, y2), b"2");
    // Both ends live on the broker again and every proxy is gone.
    assert_eq!(pair.nodes[BROKER].proxy_count(), 0);
    assert_eq!(pair.nodes[CLIENT].proxy_count(), 0);
    assert_eq!(pair.nodes[CLIENT].port_count(), 1);
    pair.nodes[BROKER].write_message(y2, b"3", vec![]).unwrap();
    pair.run_clean();
    assert_eq!(pair.read(BROKER, x), b"3");
    pair.nodes[BROKER].close_port(x).unwrap();
    pair.nodes[BROKER].close_port(y2).unwrap();
    close_both(&mut pair, a, p);
    pair.assert_clean();
}

/// The client sends `y` back over (p, a); the broker reads it as soon as
/// it arrives, before the ring has collapsed.
fn bounce_back(pair: &mut Pair, a: PortRef, p: PortRef, y: PortRef) -> PortRef {
    pair.nodes[CLIENT]
        .write_message(p, b"back", vec![Handle::MessagePipe(y)])
        .unwrap();
    while !pair.nodes[BROKER].port_status(a).unwrap().has_messages {
        assert!(pair.step(), "the pipe never came back");
    }
    let (_, mut handles) = pair.nodes[BROKER].read_message(a).unwrap().unwrap();
    let Some(Handle::MessagePipe(y2)) = handles.pop() else {
        panic!("no pipe")
    };
    y2
}

#[test]
fn a_pipe_end_that_came_back_with_nothing_in_flight_is_settled_with_its_peer() {
    for profile in PROFILES {
        let mut pair = Pair::new(profile);
        let (a, p) = attach(&mut pair, b"main");
        let (x, y) = send_pipe(&mut pair, BROKER, a, p);
        assert_eq!(
            pair.nodes[BROKER].settled_local_peer(x),
            None,
            "peer remote"
        );
        let y2 = bounce_back(&mut pair, a, p, y);
        assert_eq!(pair.nodes[BROKER].settled_local_peer(y2), Some(x));
        // Closing both at once, while the client still proxies, leaves
        // nothing behind on either node.
        pair.nodes[BROKER].close_port(y2).unwrap();
        pair.nodes[BROKER].close_port(x).unwrap();
        pair.run_clean();
        assert!(pair.take_events(BROKER).iter().all(|e| !matches!(
            e,
            NodeEvent::EventDropped { .. } | NodeEvent::PeerLost { .. }
        )));
        close_both(&mut pair, a, p);
        pair.assert_clean();
    }
}

#[test]
fn a_pipe_end_that_came_back_is_not_settled_while_a_message_is_unread() {
    let mut pair = Pair::new(Profile::Libchrome);
    let (a, p) = attach(&mut pair, b"main");
    // A message towards the travelling end, unread by the client.
    let (x, y) = send_pipe(&mut pair, BROKER, a, p);
    pair.nodes[BROKER]
        .write_message(x, b"to y", vec![])
        .unwrap();
    let y2 = bounce_back(&mut pair, a, p, y);
    assert_eq!(pair.nodes[BROKER].settled_local_peer(y2), None);
    pair.run_clean();
    assert_eq!(pair.read(BROKER, y2), b"to y");
    assert_eq!(pair.nodes[BROKER].settled_local_peer(y2), Some(x));
    // A message the client wrote on the end before sending it back, not
    // yet read at the kept end.
    let (x2, y) = send_pipe(&mut pair, BROKER, a, p);
    pair.nodes[CLIENT]
        .write_message(y, b"to x", vec![])
        .unwrap();
    let y3 = bounce_back(&mut pair, a, p, y);
    pair.run_clean();
    assert_eq!(pair.nodes[BROKER].settled_local_peer(y3), None);
    assert_eq!(pair.read(BROKER, x2), b"to x");
    assert_eq!(pair.nodes[BROKER].settled_local_peer(y3), Some(x2));
    for port in [x, y2, x2, y3] {
        pair.nodes[BROKER].close_port(port).unwrap();
    }
    close_both(&mut pair, a, p);
    pair.assert_clean();
}

#[test]
fn fds_and_shared_buffers_travel_each_way_with_mode_kept() {
    for profile in PROFILES {
        let mut pair = Pair::new(profile);
        let (a, p) = attach(&mut pair, b"fds");
        for (from, s, r) in [(BROKER, a, p), (CLIENT, p, a)] {
            let mut probes = Vec::new();
            let (fd, probe) = probed_fd();
            probes.push(probe);
            let mut handles = vec![Handle::PlatformHandle(fd)];
            for (i, mode) in [
                RegionMode::Writable,
                RegionMode::ReadOnly,
                RegionMode::Unsafe,
            ]
            .into_iter()
            .enumerate()
            {
                let fds = (0..mode.num_fds())
                    .map(|_| {
                        let (fd, probe) = probed_fd();
                        probes.push(probe);
                        fd
                    })
                    .collect();
                let buffer =
                    SharedBuffer::new(4096 << i, Guid::new(7, i as u64 + 1), mode, fds).unwrap();
                handles.push(Handle::SharedBuffer(buffer));
            }
            pair.nodes[from].write_message(s, b"fds", handles).unwrap();
            pair.run_clean();
            assert!(probes.iter().all(|p| !p.is_closed()));
            // The receiver holds them, counted against the sender.
            assert_eq!(pair.nodes[1 - from].held_fd_count(pair.name(from)), 5);
            let (bytes, handles) = pair.nodes[1 - from].read_message(r).unwrap().unwrap();
            assert_eq!(pair.nodes[1 - from].held_fd_count(pair.name(from)), 0);
            assert_eq!(bytes, b"fds");
            assert_eq!(handles.len(), 4);
            assert!(matches!(handles[0], Handle::PlatformHandle(_)));
            for (i, mode) in [
                RegionMode::Writable,
                RegionMode::ReadOnly,
                RegionMode::Unsafe,
            ]
            .into_iter()
            .enumerate()
            {
                let Handle::SharedBuffer(b) = &handles[i + 1] else {
                    panic!("not a buffer")
                };
                assert_eq!(b.mode(), mode);
                assert_eq!(b.size(), 4096 << i);
                assert_eq!(b.guid(), Guid::new(7, i as u64 + 1));
                assert_eq!(b.fds().len(), mode.num_fds());
            }
            assert!(probes.iter().all(|p| !p.is_closed()));
            drop(handles);
            assert!(probes.iter().all(|p| p.is_closed()));
        }
        close_both(&mut pair, a, p);
        pair.assert_clean();
    }
}

#[test]
fn unread_fds_are_counted_and_closed_with_their_port() {
    let mut pair = Pair::new(Profile::Libchrome);
    let (a, p) = attach(&mut pair, b"fds");
    let (fd, probe) = probed_fd();
    pair.nodes[BROKER]
        .write_message(a, b"", vec![Handle::PlatformHandle(fd)])
        .unwrap();
    pair.run_clean();
    assert_eq!(pair.nodes[CLIENT].held_fd_count(pair.name(BROKER)), 1);
    assert!(!probe.is_closed());
    close_both(&mut pair, a, p);
    assert!(probe.is_closed());
    pair.assert_clean();
}

fn data_pipe_state(flags: u8) -> DataPipeState {
    DataPipeState {
        options: DataPipeOptions {
            struct_size: 16,
            flags: 0,
            element_num_bytes: 1,
            capacity_num_bytes: 65536,
        },
        pipe_id: 9,
        offset: 100,
        available: 200,
        flags,
        buffer_guid: Guid::new(3, 4),
    }
}

#[test]
fn data_pipe_ends_travel_with_state_control_port_and_ring() {
    let mut pair = Pair::new(Profile::Libchrome);
    let (a, p) = attach(&mut pair, b"data");
    let (producer_port, consumer_port) = pair.nodes[BROKER].create_pipe().unwrap();
    let (ring1, probe1) = probed_fd();
    let (ring2, probe2) = probed_fd();
    let handles = vec![
        Handle::DataPipeProducer(DataPipeEnd {
            state: data_pipe_state(0),
            control_port: producer_port,
            ring: ring1,
        }),
        Handle::DataPipeConsumer(DataPipeEnd {
            state: data_pipe_state(1),
            control_port: consumer_port,
            ring: ring2,
        }),
    ];
    pair.nodes[BROKER].write_message(a, b"dp", handles).unwrap();
    pair.run_clean();
    let (_, handles) = pair.nodes[CLIENT].read_message(p).unwrap().unwrap();
    let [
        Handle::DataPipeProducer(prod),
        Handle::DataPipeConsumer(cons),
    ] = &handles[..]
    else {
        panic!("{handles:?}")
    };
    assert_eq!(prod.state, data_pipe_state(0));
    assert_eq!(cons.state, data_pipe_state(1));
    // The control ports are entangled on the client now.
    pair.nodes[CLIENT]
        .write_message(prod.control_port, b"written", vec![])
        .unwrap();
    pair.run_clean();
    assert_eq!(pair.read(CLIENT, cons.control_port), b"written");
    // Send the consumer back to the broker.
    let (prod_port, cons_port) = (prod.control_port, cons.control_port);
    let mut handles = handles;
    let cons = handles.pop().unwrap();
    pair.nodes[CLIENT]
        .write_message(p, b"back", vec![cons])
        .unwrap();
    pair.run_clean();
    let (_, mut back) = pair.nodes[BROKER].read_message(a).unwrap().unwrap();
    let Some(Handle::DataPipeConsumer(cons)) = back.pop() else {
        panic!("no consumer")
    };
    assert_ne!(cons.control_port, cons_port);
    pair.nodes[CLIENT]
        .write_message(prod_port, b"again", vec![])
        .unwrap();
    pair.run_clean();
    assert_eq!(pair.read(BROKER, cons.control_port), b"again");
    pair.nodes[BROKER].close_port(cons.control_port).unwrap();
    pair.nodes[CLIENT].close_port(prod_port).unwrap();
    drop((cons, handles));
    assert!(probe1.is_closed() && probe2.is_closed());
    close_both(&mut pair, a, p);
    pair.assert_clean();
}

#[test]
fn closure_from_either_side_with_messages_in_flight() {
    for closer in [BROKER, CLIENT] {
        let mut pair = Pair::new(Profile::Libchrome);
        let (a, p) = attach(&mut pair, b"close");
        let (mine, theirs) = if closer == BROKER { (a, p) } else { (p, a) };
        for i in 0..3u8 {
            pair.nodes[closer]
                .write_message(mine, &[i], vec![])
                .unwrap();
        }
        pair.nodes[closer].close_port(mine).unwrap();
        pair.run_clean();
        for i in 0..3u8 {
            assert_eq!(pair.read(1 - closer, theirs), [i]);
        }
        assert_eq!(
            pair.nodes[1 - closer].read_message(theirs).unwrap_err(),
            ApiError::Ports(OpError::PeerClosed {
                port: theirs.name()
            })
        );
        let events = pair.take_events(1 - closer);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, NodeEvent::PeerClosed { port } if *port == theirs))
        );
        pair.nodes[1 - closer].close_port(theirs).unwrap();
        pair.assert_clean();
    }
}

#[test]
fn peer_lost_mid_transfer_closes_everything() {
    let mut pair = Pair::new(Profile::Libchrome);
    let (a, p) = attach(&mut pair, b"lost");
    // One message was read, so the client's end is connected; the next
    // carries a pipe and an fd and is cut off on the way.
    echo(&mut pair, a, p, b"before");
    let (x, y) = pair.nodes[BROKER].create_pipe().unwrap();
    let (fd, probe) = probed_fd();
    pair.nodes[BROKER]
        .write_message(
            a,
            b"lost",
            vec![Handle::MessagePipe(y), Handle::PlatformHandle(fd)],
        )
        .unwrap();
    pair.collect();
    assert_eq!(pair.in_flight.len(), 1);
    pair.cut();
    assert!(probe.is_closed());
    for (i, port) in [(BROKER, a), (BROKER, x), (CLIENT, p)] {
        assert_eq!(
            pair.nodes[i].read_message(port).unwrap_err(),
            ApiError::Ports(OpError::PeerClosed { port: port.name() })
        );
        pair.nodes[i].close_port(port).unwrap();
    }
    for i in [BROKER, CLIENT] {
        let lost = pair.take_events(i);
        assert!(
            lost.iter()
                .any(|e| matches!(e, NodeEvent::PeerLost { error: None, .. }))
        );
        assert!(!pair.nodes[i].has_peer(pair.name(1 - i)));
    }
    pair.assert_clean();
}

#[test]
fn out_of_order_delivery_keeps_each_pipe_in_order() {
    for seed in 0..8 {
        let mut pair = Pair::reordering(Profile::Libchrome, seed);
        let pipes: Vec<(PortRef, PortRef)> =
            (0..4).map(|n| attach(&mut pair, &numeric(n))).collect();
        // Pipes that move while messages flow on them and on others.
        let (a0, p0) = pipes[0];
        let (x, y) = send_pipe(&mut pair, BROKER, a0, p0);
        for i in 0..20u8 {
            for (a, _) in &pipes {
                pair.nodes[BROKER].write_message(*a, &[i], vec![]).unwrap();
            }
            pair.nodes[BROKER].write_message(x, &[i], vec![]).unwrap();
            if i == 5 {
                pair.nodes[CLIENT]
                    .write_message(p0, b"back", vec![Handle::MessagePipe(y)])
                    .unwrap();
            }
            pair.step();
            pair.step();
        }
        pair.run_clean();
        for (_, p) in &pipes {
            for i in 0..20u8 {
                assert_eq!(pair.read(CLIENT, *p), [i], "seed {seed}");
            }
        }
        let (_, mut h) = pair.nodes[BROKER].read_message(a0).unwrap().unwrap();
        let Some(Handle::MessagePipe(y2)) = h.pop() else {
            panic!("no pipe")
        };
        for i in 0..20u8 {
            assert_eq!(pair.read(BROKER, y2), [i], "seed {seed}");
        }
        pair.nodes[BROKER].close_port(x).unwrap();
        pair.nodes[BROKER].close_port(y2).unwrap();
        for (a, p) in pipes {
            close_both(&mut pair, a, p);
        }
        pair.assert_clean();
    }
}

#[test]
fn cancelled_attachments_report_peer_closed() {
    let mut pair = Pair::new(Profile::Libchrome);
    let a = pair.nodes[BROKER].reserve_attachment(b"never").unwrap();
    let b = pair.nodes[BROKER].reserve_attachment(&numeric(1)).unwrap();
    assert!(pair.nodes[BROKER].cancel_attachment(b"never"));
    assert!(!pair.nodes[BROKER].cancel_attachment(b"never"));
    pair.nodes[BROKER].cancel_attachments();
    for port in [a, b] {
        assert_eq!(
            pair.nodes[BROKER].read_message(port).unwrap_err(),
            ApiError::Ports(OpError::PeerClosed { port: port.name() })
        );
        pair.nodes[BROKER].close_port(port).unwrap();
    }
    pair.assert_clean();
}

#[test]
fn unanswered_merge_reports_peer_closed_when_the_broker_is_lost() {
    let mut pair = Pair::new(Profile::Libchrome);
    let broker = pair.name(BROKER);
    let p = pair.nodes[CLIENT]
        .request_port_merge(broker, b"late")
        .unwrap();
    pair.nodes[CLIENT]
        .write_message(p, b"queued", vec![])
        .unwrap();
    // The broker never sees the request.
    pair.cut();
    assert_eq!(
        pair.nodes[CLIENT].read_message(p).unwrap_err(),
        ApiError::Ports(OpError::PeerClosed { port: p.name() })
    );
    pair.nodes[CLIENT].close_port(p).unwrap();
    pair.assert_clean();
}

#[test]
fn local_messages_with_fds_are_counted_until_read() {
    let mut pair = Pair::new(Profile::Libchrome);
    let (x, y) = pair.nodes[BROKER].create_pipe().unwrap();
    let (fd, probe) = probed_fd();
    pair.nodes[BROKER]
        .write_message(x, b"", vec![Handle::PlatformHandle(fd)])
        .unwrap();
    assert_eq!(pair.nodes[BROKER].queued_fd_count(), 1);
    let (_, handles) = pair.nodes[BROKER].read_message(y).unwrap().unwrap();
    assert_eq!(pair.nodes[BROKER].queued_fd_count(), 0);
    assert!(!probe.is_closed());
    drop(handles);
    assert!(probe.is_closed());
    pair.nodes[BROKER].close_port(x).unwrap();
    pair.nodes[BROKER].close_port(y).unwrap();
    pair.assert_clean();
}

#[test]
fn merges_requested_before_the_link_go_out_when_it_is_added() {
    let mut broker = LegacyNode::new(node_name_of(BROKER), SeededRandom::new(1));
    let mut client = LegacyNode::new(node_name_of(CLIENT), SeededRandom::new(2));
    let a0 = broker.reserve_attachment(&numeric(0)).unwrap();
    let a1 = broker.reserve_attachment(&numeric(1)).unwrap();
    let p0 = client
        .request_port_merge(broker.name(), &numeric(0))
        .unwrap();
    let p1 = client
        .request_port_merge(broker.name(), &numeric(1))
        .unwrap();
    client.write_message(p1, b"early", vec![]).unwrap();
    assert!(client.poll_transmit().is_none());
    broker
        .add_peer(client.name(), Profile::Libchrome, PeerRole::Client)
        .unwrap();
    client
        .add_peer(broker.name(), Profile::Libchrome, PeerRole::Broker)
        .unwrap();
    let mut pair = Pair::from_nodes(broker, client);
    pair.run_clean();
    assert_eq!(pair.read(BROKER, a1), b"early");
    echo(&mut pair, a0, p0, b"zero");
    close_both(&mut pair, a0, p0);
    close_both(&mut pair, a1, p1);
    pair.assert_clean();
}

#[test]
fn merges_for_a_peer_that_never_links_end_in_peer_closed() {
    let mut client = LegacyNode::new(node_name_of(CLIENT), SeededRandom::new(2));
    let broker = node_name_of(BROKER);
    let p = client.request_port_merge(broker, b"x").unwrap();
    client.peer_lost(broker);
    assert_eq!(
        client.read_message(p).unwrap_err(),
        ApiError::Ports(OpError::PeerClosed { port: p.name() })
    );
    client.close_port(p).unwrap();
    assert_eq!(client.port_count(), 0);
    assert!(client.poll_transmit().is_none());
}

#[test]
fn direct_handoff_broker_connects_and_moves_pipes_without_proxies() {
    let mut pair = Pair::new(Profile::Libchrome);
    pair.nodes[BROKER].set_direct_handoff(true);
    let a = pair.nodes[BROKER].reserve_attachment(b"main").unwrap();
    pair.nodes[BROKER]
        .write_message(a, b"early", vec![])
        .unwrap();
    let broker = pair.name(BROKER);
    let p = pair.nodes[CLIENT]
        .request_port_merge(broker, b"main")
        .unwrap();
    pair.run_clean();
    assert_eq!(pair.read(CLIENT, p), b"early");
    let (x, y) = send_pipe(&mut pair, BROKER, a, p);
    echo(&mut pair, x, y, b"handed off");
    let (u, v) = send_pipe(&mut pair, CLIENT, p, a);
    echo(&mut pair, v, u, b"and back");
    assert_eq!(pair.nodes[BROKER].proxy_count(), 0);
    assert_eq!(pair.nodes[CLIENT].proxy_count(), 0);
    close_both(&mut pair, x, y);
    close_both(&mut pair, v, u);
    close_both(&mut pair, a, p);
    pair.assert_clean();
}
