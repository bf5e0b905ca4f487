//! Simulated multi-node tests of the ports state machine. Each ends with
//! `assert_clean`: no port, proxy, queued message or error anywhere.

use mojo_legacy_wire::PortName;
use mojo_wire_kit::SeededRandom;

use super::sim::{Sim, node_name_of};
use super::*;

type S = Sim<String>;

/// Joins a fresh pipe end on node `a` with one on node `b` the way an
/// invitation attachment is joined (merge, §3.5 / §4.8.1).
fn connect(sim: &mut S, a: usize, b: usize) -> (PortName, PortName) {
    let (x, reserved) = sim.nodes[a].create_pipe().unwrap();
    let (p0, p1) = sim.nodes[b].create_merge_pipe().unwrap();
    let b_name = sim.name(b);
    sim.nodes[a]
        .merge_with_remote(reserved, b_name, p1)
        .unwrap();
    sim.run();
    (x, p0)
}

fn send(sim: &mut S, node: usize, port: PortName, text: &str, attached: Vec<PortName>) {
    sim.nodes[node]
        .send_message(port, text.to_string(), attached)
        .unwrap();
}

fn recv(sim: &mut S, node: usize, port: PortName) -> Option<(String, Vec<PortName>)> {
    sim.nodes[node]
        .get_message(port)
        .unwrap()
        .map(|m| (m.payload, m.ports))
}

/// Reads until nothing is left; says whether the peer was closed.
fn drain(sim: &mut S, node: usize, port: PortName) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    loop {
        match sim.nodes[node].get_message(port) {
            Ok(Some(m)) => out.push(m.payload),
            Ok(None) => return (out, false),
            Err(OpError::PeerClosed { .. }) => return (out, true),
            Err(e) => panic!("get_message: {e}"),
        }
    }
}

fn texts(n: usize, tag: &str) -> Vec<String> {
    (0..n).map(|i| format!("{tag}{i}")).collect()
}

fn close_all(sim: &mut S, ports: &[(usize, PortName)]) {
    for &(node, port) in ports {
        sim.nodes[node].close_port(port).unwrap();
    }
    sim.run();
}

#[test]
fn echo_both_ways() {
    let mut sim = S::new(2);
    let (a, p0) = connect(&mut sim, 0, 1);
    assert_eq!(sim.nodes[0].peer_of(a), Some((sim.name(1), p0)));
    assert_eq!(sim.nodes[1].peer_of(p0), Some((sim.name(0), a)));
    for round in 0..3 {
        send(&mut sim, 0, a, &format!("ping{round}"), vec![]);
        sim.run();
        let (text, _) = recv(&mut sim, 1, p0).unwrap();
        assert_eq!(text, format!("ping{round}"));
        send(&mut sim, 1, p0, &text.replace("ping", "pong"), vec![]);
        sim.run();
        assert_eq!(recv(&mut sim, 0, a).unwrap().0, format!("pong{round}"));
    }
    assert!(
        sim.take_notifications(1)
            .contains(&Notification::MessageAvailable { port: p0 })
    );
    close_all(&mut sim, &[(0, a), (1, p0)]);
    sim.assert_clean();
}

#[test]
fn merge_matches_the_recorded_event_sequence() {
    // §4.8.1: the broker sends MergePort, two ObserveProxy and two acks
    // (the first a retry); the client PortAccepted and ObserveProxy events.
    let mut sim = S::new(2);
    let (a, reserved) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a, "early", vec![]);
    let (p0, p1) = sim.nodes[1].create_merge_pipe().unwrap();
    send(&mut sim, 1, p0, "early too", vec![]);
    let client = sim.name(1);
    sim.nodes[0]
        .merge_with_remote(reserved, client, p1)
        .unwrap();
    sim.run();
    let broker_to_client: Vec<EventKind> = sim
        .log
        .iter()
        .filter(|s| s.from == 0)
        .map(|s| s.kind)
        .collect();
    use EventKind::*;
    assert_eq!(
        broker_to_client,
        [
            MergePort,
            UserMessage,
            ObserveProxy,
            ObserveProxy,
            ObserveProxyAck,
            ObserveProxyAck
        ]
    );
    let acks: Vec<u64> = sim
        .log
        .iter()
        .filter(|s| s.from == 0 && s.kind == ObserveProxyAck)
        .map(|s| s.number)
        .collect();
    assert_eq!(acks, [INVALID_SEQUENCE_NUM, 1]);
    assert_eq!(sim.nodes[0].peer_of(a), Some((client, p0)));
    assert_eq!(recv(&mut sim, 1, p0).unwrap().0, "early");
    assert_eq!(recv(&mut sim, 0, a).unwrap().0, "early too");
    close_all(&mut sim, &[(0, a), (1, p0)]);
    sim.assert_clean();
}

#[test]
fn a_port_sent_each_way_is_usable() {
    let mut sim = S::new(2);
    let (a, p0) = connect(&mut sim, 0, 1);
    // Node 0 sends one end of a fresh pipe (§4.8.2).
    let (f, e) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, f, "queued in E before it moves", vec![]);
    send(&mut sim, 0, a, "here is E", vec![e]);
    sim.run();
    let (_, ports) = recv(&mut sim, 1, p0).unwrap();
    let e1 = ports[0];
    assert_eq!(
        recv(&mut sim, 1, e1).unwrap().0,
        "queued in E before it moves"
    );
    send(&mut sim, 1, e1, "from the moved end", vec![]);
    sim.run();
    assert_eq!(recv(&mut sim, 0, f).unwrap().0, "from the moved end");
    assert_eq!(sim.nodes[0].peer_of(f), Some((sim.name(1), e1)));
    assert_eq!(sim.nodes[0].proxy_count(), 0);
    // Node 1 sends one end of its own pipe (§4.8.3).
    let (q, r) = sim.nodes[1].create_pipe().unwrap();
    send(&mut sim, 1, p0, "here is R", vec![r]);
    send(&mut sim, 1, q, "for R", vec![]);
    sim.run();
    let (_, ports) = recv(&mut sim, 0, a).unwrap();
    let r1 = ports[0];
    assert_eq!(recv(&mut sim, 0, r1).unwrap().0, "for R");
    send(&mut sim, 0, r1, "back to Q", vec![]);
    sim.run();
    assert_eq!(recv(&mut sim, 1, q).unwrap().0, "back to Q");
    assert_eq!(sim.nodes[1].proxy_count(), 0);
    close_all(
        &mut sim,
        &[(0, a), (1, p0), (0, f), (1, e1), (1, q), (0, r1)],
    );
    sim.assert_clean();
}

#[test]
fn rule8_a_port_sent_back_forms_and_collapses_a_proxy() {
    let mut sim = S::new(2);
    let (a, p0) = connect(&mut sim, 0, 1);
    let (f, e) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a, "E goes out", vec![e]);
    sim.run();
    let (_, ports) = recv(&mut sim, 1, p0).unwrap();
    let e1 = ports[0];
    let before_acks = sim.count(EventKind::ObserveProxyAck);
    let before_proxy = sim.count(EventKind::ObserveProxy);
    // F writes while E comes home: some messages travel through the proxy.
    send(&mut sim, 0, f, "f1", vec![]);
    send(&mut sim, 1, p0, "E comes back", vec![e1]);
    send(&mut sim, 0, f, "f2", vec![]);
    sim.run_some(2);
    assert!(sim.nodes[1].proxy_count() >= 1, "E' became a proxy");
    send(&mut sim, 0, f, "f3", vec![]);
    sim.run();
    let (_, ports) = recv(&mut sim, 0, a).unwrap();
    let e2 = ports[0];
    assert!(sim.count(EventKind::ObserveProxy) > before_proxy);
    assert!(sim.count(EventKind::ObserveProxyAck) > before_acks);
    assert!(
        sim.take_notifications(1)
            .contains(&Notification::PortRemoved { port: e1 })
    );
    assert_eq!(sim.nodes[1].proxy_count(), 0);
    assert_eq!(sim.nodes[0].proxy_count(), 0);
    // The ring is back to two local ends.
    assert_eq!(sim.nodes[0].peer_of(f), Some((sim.name(0), e2)));
    assert_eq!(sim.nodes[0].peer_of(e2), Some((sim.name(0), f)));
    let (got, closed) = drain(&mut sim, 0, e2);
    assert_eq!(got, ["f1", "f2", "f3"]);
    assert!(!closed);
    close_all(&mut sim, &[(0, a), (1, p0), (0, f), (0, e2)]);
    sim.assert_clean();
}

#[test]
fn a_port_sent_onward_to_a_third_node() {
    let mut sim = S::new(3);
    let (a1, b0) = connect(&mut sim, 0, 1);
    let (a2, c0) = connect(&mut sim, 0, 2);
    // A pipe between nodes 1 and 2, made by node 0 sending both ends.
    let (m, n) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a1, "m", vec![m]);
    send(&mut sim, 0, a2, "n", vec![n]);
    sim.run();
    let m1 = recv(&mut sim, 1, b0).unwrap().1[0];
    let n2 = recv(&mut sim, 2, c0).unwrap().1[0];
    assert_eq!(sim.nodes[1].peer_of(m1), Some((sim.name(2), n2)));
    // Node 0's pipe end Y goes to node 1, which passes it on to node 2.
    let (x, y) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, x, "x1", vec![]);
    send(&mut sim, 0, a1, "y", vec![y]);
    sim.run();
    let y1 = recv(&mut sim, 1, b0).unwrap().1[0];
    send(&mut sim, 0, x, "x2", vec![]);
    send(&mut sim, 1, m1, "y onward", vec![y1]);
    send(&mut sim, 0, x, "x3", vec![]);
    sim.run();
    let y2 = recv(&mut sim, 2, n2).unwrap().1[0];
    let (got, _) = drain(&mut sim, 2, y2);
    assert_eq!(got, ["x1", "x2", "x3"]);
    send(&mut sim, 2, y2, "hello x", vec![]);
    sim.run();
    assert_eq!(recv(&mut sim, 0, x).unwrap().0, "hello x");
    assert_eq!(sim.nodes[0].peer_of(x), Some((sim.name(2), y2)));
    for node in &sim.nodes {
        assert_eq!(node.proxy_count(), 0);
    }
    close_all(
        &mut sim,
        &[
            (0, a1),
            (1, b0),
            (0, a2),
            (2, c0),
            (1, m1),
            (2, n2),
            (0, x),
            (2, y2),
        ],
    );
    sim.assert_clean();
}

#[test]
fn rule6_closure_from_either_side_delivers_messages_in_flight_first() {
    for closer in [0, 1] {
        let mut sim = S::new(2);
        let (a, p0) = connect(&mut sim, 0, 1);
        let (closing, other) = if closer == 0 {
            ((0, a), (1, p0))
        } else {
            ((1, p0), (0, a))
        };
        for t in texts(5, "m") {
            send(&mut sim, closing.0, closing.1, &t, vec![]);
        }
        sim.nodes[closing.0].close_port(closing.1).unwrap();
        sim.run();
        assert!(
            sim.take_notifications(other.0)
                .contains(&Notification::PeerClosed { port: other.1 })
        );
        let (got, closed) = drain(&mut sim, other.0, other.1);
        assert_eq!(got, texts(5, "m"));
        assert!(closed);
        assert_eq!(
            sim.nodes[other.0].send_message(other.1, "late".into(), vec![]),
            Err(OpError::PeerClosed { port: other.1 })
        );
        let closures: Vec<u64> = sim
            .log
            .iter()
            .filter(|s| s.kind == EventKind::ObserveClosure)
            .map(|s| s.number)
            .collect();
        assert_eq!(closures[0], 5, "closure carries the closer's last number");
        sim.nodes[other.0].close_port(other.1).unwrap();
        sim.assert_clean();
    }
}

#[test]
fn closure_with_messages_still_inside_a_proxy() {
    let mut sim = S::reordering(2, 9);
    let (a, p0) = connect(&mut sim, 0, 1);
    let (f, e) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a, "E", vec![e]);
    for t in texts(4, "f") {
        send(&mut sim, 0, f, &t, vec![]);
    }
    sim.nodes[0].close_port(f).unwrap();
    sim.run_some(1);
    // The carrying message has arrived, PortAccepted has not come back.
    let e1 = recv(&mut sim, 1, p0).unwrap().1[0];
    sim.run();
    let (got, closed) = drain(&mut sim, 1, e1);
    assert_eq!(got, texts(4, "f"));
    assert!(closed);
    close_all(&mut sim, &[(0, a), (1, p0), (1, e1)]);
    sim.assert_clean();
}

#[test]
fn closing_a_port_closes_ports_in_its_unread_messages() {
    let mut sim = S::new(2);
    let (a, p0) = connect(&mut sim, 0, 1);
    let (f, e) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a, "E", vec![e]);
    sim.run();
    sim.nodes[1].close_port(p0).unwrap();
    sim.run();
    let (got, closed) = drain(&mut sim, 0, f);
    assert!(got.is_empty() && closed, "F sees its peer closed");
    let (_, closed) = drain(&mut sim, 0, a);
    assert!(closed);
    close_all(&mut sim, &[(0, a), (0, f)]);
    sim.assert_clean();
}

#[test]
fn node_loss_mid_transfer() {
    let mut sim = S::new(2);
    let (a, p0) = connect(&mut sim, 0, 1);
    let (f, e) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 1, p0, "before the loss", vec![]);
    sim.run();
    send(&mut sim, 0, f, "stuck in E", vec![]);
    send(&mut sim, 0, a, "E", vec![e]);
    sim.run_some(1);
    // E is Buffering towards node 1 when node 1 vanishes.
    assert_eq!(sim.nodes[0].port_state(e), Some(PortState::Buffering));
    sim.kill(1);
    let notes = sim.take_notifications(0);
    assert!(notes.contains(&Notification::PeerClosed { port: f }));
    assert!(notes.contains(&Notification::PeerClosed { port: a }));
    assert!(notes.contains(&Notification::PortRemoved { port: e }));
    let (got, closed) = drain(&mut sim, 0, a);
    assert_eq!(got, ["before the loss"], "received messages stay readable");
    assert!(closed);
    let (got, closed) = drain(&mut sim, 0, f);
    assert!(got.is_empty() && closed);
    close_all(&mut sim, &[(0, a), (0, f)]);
    sim.assert_clean();
}

#[test]
fn losing_the_middle_node_of_a_three_node_ring() {
    let mut sim = S::new(3);
    let (a1, b0) = connect(&mut sim, 0, 1);
    let (a2, c0) = connect(&mut sim, 0, 2);
    let (m, n) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a1, "m", vec![m]);
    send(&mut sim, 0, a2, "n", vec![n]);
    sim.run();
    let m1 = recv(&mut sim, 1, b0).unwrap().1[0];
    let n2 = recv(&mut sim, 2, c0).unwrap().1[0];
    // Y travels 0 -> 1 -> 2; node 1 dies while its proxy still exists.
    let (x, y) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a1, "y", vec![y]);
    sim.run();
    let y1 = recv(&mut sim, 1, b0).unwrap().1[0];
    send(&mut sim, 1, m1, "y onward", vec![y1]);
    sim.run_some(2);
    sim.kill(1);
    sim.run();
    // Whatever the timing, every end still open learns it has no peer, or
    // stays connected to a live peer; nothing leaks once all are closed.
    let mut open = vec![(0, a1), (0, a2), (2, c0), (2, n2), (0, x)];
    if let Ok(Some(msg)) = sim.nodes[2].get_message(n2) {
        open.extend(msg.ports.iter().map(|p| (2, *p)));
    }
    sim.run();
    close_all(&mut sim, &open);
    sim.errors.clear();
    sim.assert_clean();
}

#[test]
fn rule4_out_of_order_arrival_is_delivered_in_order() {
    // Direct: numbers 3, 1, 2 arrive; 1, 2, 3 come out.
    let mut sim = S::new(2);
    let (a, p0) = connect(&mut sim, 0, 1);
    let from = sim.name(0);
    for seq in [3, 1, 2] {
        sim.nodes[1]
            .handle_event(
                from,
                Event::UserMessage {
                    port_name: p0,
                    message: UserMessage {
                        sequence_num: seq,
                        ports: vec![],
                        descriptors: vec![],
                        payload: format!("m{seq}"),
                    },
                },
            )
            .unwrap();
        if seq == 3 {
            assert_eq!(recv(&mut sim, 1, p0), None, "3 waits for 1 and 2");
        }
    }
    let (got, _) = drain(&mut sim, 1, p0);
    assert_eq!(got, ["m1", "m2", "m3"]);
    // Our own next send still starts at 1 (the injected ones were not ours).
    close_all(&mut sim, &[(1, p0)]);
    let _ = a;
    let (_, closed) = drain(&mut sim, 0, a);
    assert!(closed);
    close_all(&mut sim, &[(0, a)]);
    sim.assert_clean();
}

#[test]
fn reordered_network_keeps_every_pipe_in_order() {
    for seed in 0..20 {
        let mut sim = S::reordering(3, seed);
        let (a1, b0) = connect(&mut sim, 0, 1);
        let (a2, c0) = connect(&mut sim, 0, 2);
        let (x, y) = sim.nodes[0].create_pipe().unwrap();
        send(&mut sim, 0, a1, "y", vec![y]);
        for t in texts(3, "x") {
            send(&mut sim, 0, x, &t, vec![]);
        }
        sim.run_some(3);
        let mut y_at = None;
        for _ in 0..50 {
            if let Some((_, ports)) = recv(&mut sim, 1, b0) {
                y_at = Some(ports[0]);
                break;
            }
            sim.run_some(1);
        }
        let y1 = y_at.expect("y arrives");
        for t in texts(3, "more") {
            send(&mut sim, 0, x, &t, vec![]);
        }
        // Straight back while messages are still travelling.
        send(&mut sim, 1, b0, "y back", vec![y1]);
        sim.run();
        let y2 = recv(&mut sim, 0, a1).unwrap().1[0];
        let (got, _) = drain(&mut sim, 0, y2);
        let mut want = texts(3, "x");
        want.extend(texts(3, "more"));
        assert_eq!(got, want, "seed {seed}");
        close_all(
            &mut sim,
            &[(0, a1), (1, b0), (0, a2), (2, c0), (0, x), (0, y2)],
        );
        sim.assert_clean();
    }
}

// ----- §4.10, one test per rule ------------------------------------------
//
// Where each rule of spec §4.10 and step of the §10 checklist is named by a
// test (here unless another file is given; node/ = src/node/tests/,
// invitation = mojo-invitation's src/legacy/tests/ and tests/):
// §4.10 mandatory
//  1 rule1_merge_request_is_answered_with_one_merge_port
//  2 rule2_port_accepted_exactly_once_even_if_the_target_is_gone
//  3 rule3_observe_proxy_is_forwarded_answered_or_deferred
//  4 rule4_out_of_order_arrival_is_delivered_in_order; node/reorder.rs
//    one_ports_frames_in_every_order_are_delivered_in_sequence
//  5 rule5_outgoing_numbers_have_no_gaps_even_after_a_move
//  6 rule6_observe_closure_marks_delivers_and_forwards_with_own_last
//  7 rule7_closing_sends_the_number_of_messages_sent; node/channel.rs
//    shutdown_closes_every_port_with_its_last_sequence_number;
//    node_loss_mid_transfer (received messages stay readable)
//  8 rule8_a_port_sent_back_forms_and_collapses_a_proxy
//  9 rule9_read_ack_requests_are_answered
// §4.10 never (each also checked, sender side, on every event both
// simulators carry: sim.rs check_against_receiver)
//  - PortAccepted to a port not Buffering, or twice:
//    never_port_accepted_twice_or_to_a_port_not_buffering
//  - ObserveProxyAck to a non-proxy: node/faults.rs
//    never_observe_proxy_ack_to_a_non_proxy_even_with_duplicated_observe_proxies
//  - a descriptor whose new name exists on the receiver, or a zero or
//    foreign referring node:
//    never_a_descriptor_whose_new_port_name_exists_on_the_receiver,
//    never_a_descriptor_with_a_foreign_or_zero_referring_node
//  - MergePort except on request: never_merge_port_except_on_request
//  - reuse or skip a sequence number: never_reuse_or_skip_a_sequence_number
//  - the direct hand-off: direct_handoff_* (below), node/sims.rs
//    direct_handoff_broker_connects_and_moves_pipes_without_proxies
// §10 checklist
//  1, 5 invitation section10_step1_token_is_random_nonzero_and_not_the_broker_name,
//       broker_replays_every_recorded_handshake (ACCEPT_INVITEE byte for byte)
//  2    socket pair flags: not these crates (sans-IO; made by mojo-driver)
//  3    invitation broker_replays_every_recorded_handshake (INIT, its fd)
//  4    node/sims.rs attachments_merge_by_string_and_numeric_names
//  6    invitation host_sends_answers_in_request_order_and_checks_modes,
//       buffer_request_round_trip_with_real_regions
//  7    invitation broker_rejects_wrong_types_tokens_and_names,
//       broker_replays_every_recorded_handshake (ACCEPT_BROKER_CLIENT)
//  8    rule1_...; node/sims.rs unknown_attachment_name_reports_peer_closed
//  9    the §4.10 tests above
//  10   node/sims.rs fds_and_shared_buffers_travel_each_way_with_mode_kept,
//       data_pipe_ends_travel_with_state_control_port_and_ring
//  11   node/channel.rs upgrade_offer_is_rejected_and_its_fds_closed,
//       introduction_requests_are_answered_unknown,
//       unknown_node_message_types_are_ignored_and_their_fds_closed,
//       unknown_event_types_are_ignored
//  12   node/channel.rs shutdown_closes_every_port_with_its_last_sequence_number,
//       node/sims.rs peer_lost_mid_transfer_closes_everything

#[test]
fn rule1_merge_request_is_answered_with_one_merge_port() {
    let mut node: Node<()> = Node::new(node_name_of(0), SeededRandom::new(1));
    let (_a, b) = node.create_pipe().unwrap();
    let connector = names::port_name(7, 7);
    node.merge_with_remote(b, node_name_of(1), connector)
        .unwrap();
    let (to, event) = node.poll_transmit().unwrap();
    assert_eq!(to, node_name_of(1));
    let Event::MergePort {
        port_name,
        new_port_descriptor: d,
        ..
    } = event
    else {
        panic!("expected MergePort");
    };
    assert_eq!(port_name, connector);
    assert_eq!(d.referring_node_name, node.name());
    assert_eq!(d.referring_port_name, b);
    assert_eq!(
        d.next_sequence_num_to_send, 1,
        "the client refuses anything else"
    );
    assert!(node.poll_transmit().is_none());
    assert_eq!(node.port_state(b), Some(PortState::Buffering));
    assert_eq!(
        node.merge_with_remote(b, node_name_of(1), connector),
        Err(OpError::UnknownPort { port: b }),
        "the reserved port merges once"
    );
}

fn descriptor(peer: (usize, PortName), referring: (usize, PortName)) -> PortDescriptor {
    PortDescriptor {
        peer_node_name: node_name_of(peer.0),
        peer_port_name: peer.1,
        referring_node_name: node_name_of(referring.0),
        referring_port_name: referring.1,
        next_sequence_num_to_send: 1,
        next_sequence_num_to_receive: 1,
        last_sequence_num_to_receive: 0,
        peer_closed: false,
    }
}

fn drain_transmits<M>(node: &mut Node<M>) -> Vec<(mojo_legacy_wire::NodeName, Event<M>)> {
    std::iter::from_fn(|| node.poll_transmit()).collect()
}

#[test]
fn rule2_port_accepted_exactly_once_even_if_the_target_is_gone() {
    let mut node: Node<()> = Node::new(node_name_of(0), SeededRandom::new(1));
    let (r1, r2) = (names::port_name(1, 1), names::port_name(1, 2));
    let (n1, n2) = (names::port_name(2, 1), names::port_name(2, 2));
    let event = Event::UserMessage {
        port_name: names::port_name(9, 9), // no such port
        message: UserMessage {
            sequence_num: 1,
            ports: vec![n1, n2],
            descriptors: vec![
                descriptor((1, names::port_name(3, 1)), (1, r1)),
                descriptor((1, names::port_name(3, 2)), (1, r2)),
            ],
            payload: (),
        },
    };
    node.handle_event(node_name_of(1), event).unwrap();
    let out = drain_transmits(&mut node);
    let accepted: Vec<PortName> = out
        .iter()
        .filter_map(|(_, e)| match e {
            Event::PortAccepted { port_name } => Some(*port_name),
            _ => None,
        })
        .collect();
    assert_eq!(accepted, [r1, r2]);
    let closures = out
        .iter()
        .filter(|(_, e)| e.kind() == EventKind::ObserveClosure)
        .count();
    assert_eq!(closures, 2, "the orphaned ports are closed");
    assert_eq!(node.port_count(), 0);
}

#[test]
fn rule3_observe_proxy_is_forwarded_answered_or_deferred() {
    let me = node_name_of(0);
    let peer = node_name_of(1);
    let mut node: Node<()> = Node::new(me, SeededRandom::new(1));
    let mut sim_ports = S::new(2);
    let (a, p0) = connect(&mut sim_ports, 0, 1);
    let _ = (a, p0);
    // A port whose peer is remote port Z.
    let z = names::port_name(5, 5);
    let (l, r) = node.create_pipe().unwrap();
    node.send_message(l, (), vec![]).unwrap();
    node.merge_with_remote(r, peer, names::port_name(6, 6))
        .unwrap();
    drain_transmits(&mut node);
    // r is Buffering with peer (peer, X); accept it so it proxies.
    let x = node.peer_of(r).unwrap().1;
    node.handle_event(peer, Event::PortAccepted { port_name: r })
        .unwrap();
    let out = drain_transmits(&mut node);
    assert!(
        out.iter()
            .any(|(to, e)| *to == peer && e.kind() == EventKind::ObserveProxy),
        "a new proxy asks to be bypassed"
    );
    // (a) l's peer is r, not the named proxy: forwarded (locally to r, then
    // on to r's peer X).
    node.handle_event(
        peer,
        Event::ObserveProxy {
            port_name: l,
            proxy_node_name: peer,
            proxy_port_name: z,
            proxy_target_node_name: peer,
            proxy_target_port_name: names::port_name(8, 8),
        },
    )
    .unwrap();
    let out = drain_transmits(&mut node);
    assert_eq!(out.len(), 1);
    assert!(
        matches!(out[0], (to, Event::ObserveProxy { port_name, .. }) if to == peer && port_name == x)
    );
    // (b) r is a proxy whose peer is the named proxy X: a retry-ack is
    // stashed, nothing sent now.
    node.handle_event(
        peer,
        Event::ObserveProxy {
            port_name: r,
            proxy_node_name: peer,
            proxy_port_name: x,
            proxy_target_node_name: peer,
            proxy_target_port_name: z,
        },
    )
    .unwrap();
    assert!(drain_transmits(&mut node).is_empty());
    // (c) l is Receiving and its peer is r: answered with the last number
    // l sent; r then goes away and sends the stashed retry to X.
    node.handle_event(
        peer,
        Event::ObserveProxy {
            port_name: l,
            proxy_node_name: me,
            proxy_port_name: r,
            proxy_target_node_name: peer,
            proxy_target_port_name: x,
        },
    )
    .unwrap();
    let out = drain_transmits(&mut node);
    assert_eq!(node.peer_of(l), Some((peer, x)));
    assert_eq!(node.port_state(r), None, "proxy removed");
    assert_eq!(out.len(), 1);
    assert!(matches!(
        out[0],
        (to, Event::ObserveProxyAck { port_name, last_sequence_num: INVALID_SEQUENCE_NUM }) if to == peer && port_name == x
    ));
}

#[test]
fn rule5_outgoing_numbers_have_no_gaps_even_after_a_move() {
    let mut sim = S::new(2);
    let (a, p0) = connect(&mut sim, 0, 1);
    let (f, e) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, e, "e1", vec![]);
    send(&mut sim, 0, e, "e2", vec![]);
    send(&mut sim, 0, a, "E", vec![e]);
    sim.run();
    let e1 = recv(&mut sim, 1, p0).unwrap().1[0];
    send(&mut sim, 1, e1, "e3", vec![]);
    sim.run();
    let numbers: Vec<u64> = sim
        .log
        .iter()
        .filter(|s| s.kind == EventKind::UserMessage && s.port == f)
        .map(|s| s.number)
        .collect();
    assert_eq!(numbers, [3], "the moved end continues at 3");
    let (got, _) = drain(&mut sim, 0, f);
    assert_eq!(got, ["e1", "e2", "e3"]);
    close_all(&mut sim, &[(0, a), (1, p0), (0, f), (1, e1)]);
    sim.assert_clean();
}

#[test]
fn rule6_observe_closure_marks_delivers_and_forwards_with_own_last() {
    let mut sim = S::new(2);
    let (a, p0) = connect(&mut sim, 0, 1);
    send(&mut sim, 1, p0, "one", vec![]);
    send(&mut sim, 1, p0, "two", vec![]);
    send(&mut sim, 0, a, "from a", vec![]);
    sim.run();
    sim.nodes[1].close_port(p0).unwrap();
    sim.run();
    let last_forwarded = sim
        .log
        .iter()
        .rfind(|s| s.kind == EventKind::ObserveClosure && s.from == 0)
        .map(|s| s.number);
    assert_eq!(last_forwarded, Some(1), "A forwards with its own last (1)");
    let (got, closed) = drain(&mut sim, 0, a);
    assert_eq!(got, ["one", "two"]);
    assert!(closed);
    close_all(&mut sim, &[(0, a)]);
    sim.assert_clean();
}

#[test]
fn rule7_closing_sends_the_number_of_messages_sent() {
    let mut node: Node<()> = Node::new(node_name_of(0), SeededRandom::new(1));
    let (a, b) = node.create_pipe().unwrap();
    let client = node_name_of(1);
    node.merge_with_remote(b, client, names::port_name(4, 4))
        .unwrap();
    node.send_message(a, (), vec![]).unwrap();
    node.send_message(a, (), vec![]).unwrap();
    drain_transmits(&mut node);
    node.close_port(a).unwrap();
    // A's peer is B (a local proxy still Buffering): the closure waits in
    // B's control queue and leaves with B's messages once accepted.
    node.handle_event(client, Event::PortAccepted { port_name: b })
        .unwrap();
    let out = drain_transmits(&mut node);
    let kinds: Vec<EventKind> = out.iter().map(|(_, e)| e.kind()).collect();
    assert!(kinds.contains(&EventKind::ObserveClosure));
    let last = out.iter().find_map(|(_, e)| match e {
        Event::ObserveClosure {
            last_sequence_num, ..
        } => Some(*last_sequence_num),
        _ => None,
    });
    assert_eq!(last, Some(2));
    assert_eq!(
        out.iter()
            .filter(|(_, e)| e.kind() == EventKind::UserMessage)
            .count(),
        2
    );
}

#[test]
fn rule9_read_ack_requests_are_answered() {
    let mut sim = S::new(2);
    let (a, p0) = connect(&mut sim, 0, 1);
    sim.nodes[0].set_acknowledge_request_interval(a, 2).unwrap();
    for t in texts(4, "m") {
        send(&mut sim, 0, a, &t, vec![]);
    }
    sim.run();
    assert_eq!(
        sim.nodes[0].status(a).unwrap().unacknowledged_message_count,
        4
    );
    recv(&mut sim, 1, p0).unwrap();
    recv(&mut sim, 1, p0).unwrap();
    sim.run();
    assert!(sim.count(EventKind::UserMessageReadAck) >= 1);
    assert_eq!(
        sim.nodes[0].status(a).unwrap().unacknowledged_message_count,
        2
    );
    drain(&mut sim, 1, p0);
    sim.run();
    assert_eq!(
        sim.nodes[0].status(a).unwrap().unacknowledged_message_count,
        0
    );
    close_all(&mut sim, &[(0, a), (1, p0)]);
    sim.assert_clean();
}

#[test]
fn never_port_accepted_twice_or_to_a_port_not_buffering() {
    let me = node_name_of(0);
    let peer = node_name_of(1);
    let mut node: Node<()> = Node::new(me, SeededRandom::new(1));
    let (a, b) = node.create_pipe().unwrap();
    // The same new name twice in one message: refused before anything is
    // created, so no PortAccepted at all.
    let n = names::port_name(2, 1);
    let d = descriptor((1, names::port_name(3, 1)), (1, names::port_name(1, 1)));
    let dup = Event::UserMessage {
        port_name: a,
        message: UserMessage {
            sequence_num: 1,
            ports: vec![n, n],
            descriptors: vec![d, d],
            payload: (),
        },
    };
    assert_eq!(
        node.handle_event(peer, dup),
        Err(Error::DuplicateNewPort { port: n })
    );
    assert!(drain_transmits(&mut node).is_empty());
    // A name that exists here already.
    let clash = Event::UserMessage {
        port_name: a,
        message: UserMessage {
            sequence_num: 1,
            ports: vec![b],
            descriptors: vec![d],
            payload: (),
        },
    };
    assert_eq!(
        node.handle_event(peer, clash),
        Err(Error::PortExists { port: b })
    );
    // PortAccepted to a Receiving port is the peer's error; nothing changes.
    assert_eq!(
        node.handle_event(peer, Event::PortAccepted { port_name: a }),
        Err(Error::UnexpectedPortAccepted {
            port: a,
            state: PortState::Receiving
        })
    );
    assert_eq!(node.port_state(a), Some(PortState::Receiving));
    assert_eq!(
        node.handle_event(
            peer,
            Event::ObserveProxyAck {
                port_name: a,
                last_sequence_num: 0
            }
        ),
        Err(Error::UnexpectedObserveProxyAck {
            port: a,
            state: PortState::Receiving
        })
    );
}

#[test]
fn never_a_descriptor_with_a_foreign_or_zero_referring_node() {
    // The simulator checks every outgoing descriptor; here the receiving
    // side refuses one that does not name its sender.
    let mut node: Node<()> = Node::new(node_name_of(0), SeededRandom::new(1));
    let (a, _b) = node.create_pipe().unwrap();
    for referring in [names::INVALID_NODE, node_name_of(2)] {
        let mut d = descriptor((1, names::port_name(3, 1)), (1, names::port_name(1, 1)));
        d.referring_node_name = referring;
        let event = Event::UserMessage {
            port_name: a,
            message: UserMessage {
                sequence_num: 1,
                ports: vec![names::port_name(2, 1)],
                descriptors: vec![d],
                payload: (),
            },
        };
        assert_eq!(
            node.handle_event(node_name_of(1), event),
            Err(Error::InvalidDescriptor {
                index: 0,
                field: "referring_node_name"
            })
        );
    }
    assert_eq!(node.port_count(), 2);
}

#[test]
fn never_merge_port_except_on_request() {
    // Only merge_with_remote emits MergePort: a whole session of transfers
    // carries exactly the merges that were asked for.
    let mut sim = S::new(3);
    let (a1, b0) = connect(&mut sim, 0, 1);
    let (a2, c0) = connect(&mut sim, 0, 2);
    let (m, n) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a1, "m", vec![m]);
    send(&mut sim, 0, a2, "n", vec![n]);
    sim.run();
    assert_eq!(sim.count(EventKind::MergePort), 2);
    // A MergePort for a port that is not a merge connector is refused, and
    // the port it brought is accepted and closed.
    let peer = sim.name(1);
    let d = PortDescriptor {
        referring_node_name: peer,
        ..descriptor((1, names::port_name(3, 3)), (1, names::port_name(3, 4)))
    };
    assert_eq!(
        sim.nodes[0].handle_event(
            peer,
            Event::MergePort {
                port_name: a1,
                new_port_name: names::port_name(3, 5),
                new_port_descriptor: d,
            }
        ),
        Err(Error::UnexpectedMergePort { port: a1 })
    );
    assert_eq!(sim.nodes[0].port_state(names::port_name(3, 5)), None);
    sim.collect();
    sim.in_flight.clear();
    let m1 = recv(&mut sim, 1, b0).unwrap().1[0];
    let n2 = recv(&mut sim, 2, c0).unwrap().1[0];
    close_all(
        &mut sim,
        &[(0, a1), (1, b0), (0, a2), (2, c0), (1, m1), (2, n2)],
    );
    sim.assert_clean();
}

#[test]
fn never_reuse_or_skip_a_sequence_number() {
    // Refused on input: stale and duplicate numbers never block the queue.
    let mut sim = S::new(2);
    let (a, p0) = connect(&mut sim, 0, 1);
    let from = sim.name(0);
    let msg = |seq: u64| Event::UserMessage {
        port_name: p0,
        message: UserMessage {
            sequence_num: seq,
            ports: vec![],
            descriptors: vec![],
            payload: format!("m{seq}"),
        },
    };
    sim.nodes[1].handle_event(from, msg(1)).unwrap();
    sim.nodes[1].handle_event(from, msg(3)).unwrap();
    assert_eq!(
        sim.nodes[1].handle_event(from, msg(3)),
        Err(Error::DuplicateSequenceNum {
            port: p0,
            sequence_num: 3
        })
    );
    recv(&mut sim, 1, p0).unwrap();
    assert_eq!(
        sim.nodes[1].handle_event(from, msg(1)),
        Err(Error::StaleSequenceNum {
            port: p0,
            sequence_num: 1,
            next_expected: 2
        })
    );
    assert!(matches!(
        sim.nodes[1].handle_event(from, msg(0)),
        Err(Error::InvalidSequenceNum { .. })
    ));
    sim.nodes[1].handle_event(from, msg(2)).unwrap();
    let (got, _) = drain(&mut sim, 1, p0);
    assert_eq!(got, ["m2", "m3"]);
    close_all(&mut sim, &[(0, a), (1, p0)]);
    sim.assert_clean();
}

/// Runs `sim` to idle, checking that every new port name a node puts in a
/// descriptor or a MergePort is fresh: never a port the receiver has or
/// ever had, never a name given out before (the simulator also checks each
/// event against the receiver's current ports as it leaves).
fn run_checking_new_names(sim: &mut S, used: &mut std::collections::BTreeSet<PortName>) {
    let mut ever: Vec<std::collections::BTreeSet<PortName>> =
        vec![Default::default(); sim.nodes.len()];
    let mut checked = 0;
    loop {
        sim.collect();
        for (i, node) in sim.nodes.iter().enumerate() {
            ever[i].extend(node.ports().map(|(p, _)| p));
        }
        for d in sim.in_flight.iter().skip(checked) {
            let new_names: Vec<PortName> = match &d.event {
                Event::UserMessage { message, .. } => message.ports.clone(),
                Event::MergePort { new_port_name, .. } => vec![*new_port_name],
                _ => vec![],
            };
            for n in new_names {
                assert!(
                    !ever[d.to].contains(&n),
                    "{n} exists or existed on the receiver"
                );
                assert!(used.insert(n), "{n} given out twice");
            }
        }
        checked = sim.in_flight.len();
        if !sim.step() {
            return;
        }
        checked -= 1;
    }
}

#[test]
fn never_a_descriptor_whose_new_port_name_exists_on_the_receiver() {
    let mut sim = S::new(2);
    let mut used = std::collections::BTreeSet::new();
    let (a, p0) = connect(&mut sim, 0, 1);
    run_checking_new_names(&mut sim, &mut used);
    // Pipe ends each way, and the same ends sent back and forth again.
    let (f, e) = sim.nodes[0].create_pipe().unwrap();
    let (g, h) = sim.nodes[1].create_pipe().unwrap();
    send(&mut sim, 0, a, "e", vec![e]);
    send(&mut sim, 1, p0, "h", vec![h]);
    run_checking_new_names(&mut sim, &mut used);
    let mut e_at_1 = recv(&mut sim, 1, p0).unwrap().1[0];
    let mut h_at_0 = recv(&mut sim, 0, a).unwrap().1[0];
    for round in 0..3 {
        send(&mut sim, 1, p0, &format!("e back {round}"), vec![e_at_1]);
        send(&mut sim, 0, a, &format!("h back {round}"), vec![h_at_0]);
        run_checking_new_names(&mut sim, &mut used);
        let e_at_0 = recv(&mut sim, 0, a).unwrap().1[0];
        let h_at_1 = recv(&mut sim, 1, p0).unwrap().1[0];
        send(&mut sim, 0, a, &format!("e again {round}"), vec![e_at_0]);
        send(&mut sim, 1, p0, &format!("h again {round}"), vec![h_at_1]);
        run_checking_new_names(&mut sim, &mut used);
        e_at_1 = recv(&mut sim, 1, p0).unwrap().1[0];
        h_at_0 = recv(&mut sim, 0, a).unwrap().1[0];
    }
    assert!(used.len() >= 14, "{} names given out", used.len());
    send(&mut sim, 0, f, "to e", vec![]);
    send(&mut sim, 1, g, "to h", vec![]);
    sim.run();
    assert_eq!(recv(&mut sim, 1, e_at_1).unwrap().0, "to e");
    assert_eq!(recv(&mut sim, 0, h_at_0).unwrap().0, "to h");
    close_all(
        &mut sim,
        &[(0, a), (1, p0), (0, f), (1, e_at_1), (1, g), (0, h_at_0)],
    );
    sim.assert_clean();
}

// ----- limits and forged input -------------------------------------------

#[test]
fn reorder_window_and_queue_limits_are_typed_errors() {
    let limits = Limits {
        max_reorder_window: 4,
        max_queued_messages: 6,
        ..Limits::default()
    };
    let mut sim = S::build(2, None, limits);
    let (a, p0) = connect(&mut sim, 0, 1);
    let from = sim.name(0);
    let msg = |seq: u64| Event::UserMessage {
        port_name: p0,
        message: UserMessage {
            sequence_num: seq,
            ports: vec![],
            descriptors: vec![],
            payload: String::new(),
        },
    };
    assert_eq!(
        sim.nodes[1].handle_event(from, msg(6)),
        Err(Error::ReorderWindowExceeded {
            port: p0,
            sequence_num: 6,
            limit: 4
        })
    );
    for seq in 1..=6 {
        sim.nodes[1].handle_event(from, msg(seq)).unwrap();
    }
    assert_eq!(
        sim.nodes[1].handle_event(from, msg(7)),
        Err(Error::TooManyQueuedMessages { limit: 6 })
    );
    assert_eq!(sim.nodes[1].queued_message_count(), 6);
    drain(&mut sim, 1, p0);
    close_all(&mut sim, &[(0, a), (1, p0)]);
    sim.assert_clean();
}

#[test]
fn forged_events_on_a_local_ring_end_as_routing_loops() {
    let me = node_name_of(0);
    let peer = node_name_of(1);
    let mut node: Node<()> = Node::new(me, SeededRandom::new(1));
    let (a, b) = node.create_pipe().unwrap();
    let bogus = Event::ObserveProxy {
        port_name: a,
        proxy_node_name: peer,
        proxy_port_name: names::port_name(0xBAD, 1),
        proxy_target_node_name: peer,
        proxy_target_port_name: names::port_name(0xBAD, 2),
    };
    assert_eq!(
        node.handle_event(peer, bogus),
        Err(Error::RoutingLoop {
            event: EventKind::ObserveProxy
        })
    );
    // A forged closure circles too; both ends end up peer-closed.
    assert_eq!(
        node.handle_event(
            peer,
            Event::ObserveClosure {
                port_name: a,
                last_sequence_num: 0
            }
        ),
        Err(Error::RoutingLoop {
            event: EventKind::ObserveClosure
        })
    );
    assert!(node.status(a).unwrap().peer_closed && node.status(b).unwrap().peer_closed);
    node.close_port(a).unwrap();
    node.close_port(b).unwrap();
    assert_eq!(node.port_count(), 0);
    assert!(drain_transmits(&mut node).is_empty());
}

#[test]
fn bad_descriptors_and_names_are_refused_without_side_effects() {
    let me = node_name_of(0);
    let peer = node_name_of(1);
    let mut node: Node<()> = Node::new(me, SeededRandom::new(1));
    let (a, _b) = node.create_pipe().unwrap();
    let good = descriptor((1, names::port_name(3, 1)), (1, names::port_name(1, 1)));
    let cases: [(&str, PortDescriptor); 4] = [
        (
            "peer_node_name",
            PortDescriptor {
                peer_node_name: names::INVALID_NODE,
                ..good
            },
        ),
        (
            "peer_port_name",
            PortDescriptor {
                peer_port_name: names::INVALID_PORT,
                ..good
            },
        ),
        (
            "referring_port_name",
            PortDescriptor {
                referring_port_name: names::INVALID_PORT,
                ..good
            },
        ),
        (
            "next_sequence_num_to_send",
            PortDescriptor {
                next_sequence_num_to_send: 0,
                ..good
            },
        ),
    ];
    for (field, d) in cases {
        let event = Event::UserMessage {
            port_name: a,
            message: UserMessage {
                sequence_num: 1,
                ports: vec![names::port_name(2, 1)],
                descriptors: vec![d],
                payload: (),
            },
        };
        assert_eq!(
            node.handle_event(peer, event),
            Err(Error::InvalidDescriptor { index: 0, field })
        );
    }
    let mismatch = Event::UserMessage {
        port_name: a,
        message: UserMessage {
            sequence_num: 1,
            ports: vec![names::port_name(2, 1)],
            descriptors: vec![],
            payload: (),
        },
    };
    assert_eq!(
        node.handle_event(peer, mismatch),
        Err(Error::PortCountMismatch {
            ports: 1,
            descriptors: 0
        })
    );
    let n = names::port_name(2, 1);
    let own_destination = Event::UserMessage {
        port_name: n,
        message: UserMessage {
            sequence_num: 1,
            ports: vec![n],
            descriptors: vec![good],
            payload: (),
        },
    };
    assert_eq!(
        node.handle_event(peer, own_destination),
        Err(Error::MessageCarriesItsDestination { port: n })
    );
    assert_eq!(
        node.handle_event(me, Event::PortAccepted { port_name: a }),
        Err(Error::EventFromSelf)
    );
    assert_eq!(
        node.handle_event(
            peer,
            Event::ObserveClosure {
                port_name: a,
                last_sequence_num: 0
            }
        )
        .ok(),
        None,
        "a forged closure on a local pipe loops and is dropped"
    );
    assert_eq!(node.port_count(), 2);
    assert!(drain_transmits(&mut node).is_empty());
}

#[test]
fn local_operation_errors() {
    let mut node: Node<()> = Node::new(node_name_of(0), SeededRandom::new(1));
    let (a, b) = node.create_pipe().unwrap();
    let (c, d) = node.create_pipe().unwrap();
    assert_eq!(
        node.send_message(a, (), vec![a]),
        Err(OpError::CannotSendSelf { port: a })
    );
    assert_eq!(
        node.send_message(a, (), vec![b]),
        Err(OpError::CannotSendPeer { port: b })
    );
    // As in Chromium, a refused message's attached ports are closed.
    assert_eq!(node.port_state(b), None);
    assert_eq!(
        node.send_message(a, (), vec![]),
        Err(OpError::PeerClosed { port: a })
    );
    node.send_message(c, (), vec![a]).unwrap();
    assert_eq!(
        node.close_port(a),
        Err(OpError::UnknownPort { port: a }),
        "a port in an unread message is not the user's"
    );
    let m = node.get_message(d).unwrap().unwrap();
    assert_eq!(m.ports, [a]);
    node.close_port(a).unwrap();
    node.close_port(c).unwrap();
    assert_eq!(node.get_message(d), Err(OpError::PeerClosed { port: d }));
    node.close_port(d).unwrap();
    assert_eq!(node.port_count(), 0);
    let tiny = Limits {
        max_ports: 1,
        ..Limits::default()
    };
    let mut small: Node<()> = Node::with_limits(node_name_of(0), SeededRandom::new(1), tiny);
    assert_eq!(small.create_pipe(), Err(OpError::TooManyPorts));
}

/// A random source that always says the same thing.
struct Stuck;
impl mojo_wire_kit::RandomSource for Stuck {
    fn fill(&mut self, buf: &mut [u8]) {
        buf.fill(1);
    }
}

#[test]
fn a_broken_random_source_cannot_hang_or_alias_ports() {
    let mut node: Node<()> = Node::new(node_name_of(0), Stuck);
    assert_eq!(node.create_pipe(), Err(OpError::NameGenerationFailed));
    assert_eq!(node.port_count(), 0);
}

#[test]
fn a_descriptor_of_a_lost_port_means_nothing_more_will_come() {
    // Chromium leaves last_sequence_num_to_receive at 0 when the peer is
    // lost, then sends the port on with peer_closed set.
    let peer = node_name_of(1);
    let mut node: Node<()> = Node::new(node_name_of(0), SeededRandom::new(1));
    let (a, b) = node.create_pipe().unwrap();
    let n = names::port_name(2, 1);
    let d = PortDescriptor {
        next_sequence_num_to_receive: 5,
        last_sequence_num_to_receive: 0,
        peer_closed: true,
        ..descriptor((1, names::port_name(3, 1)), (1, names::port_name(1, 1)))
    };
    let event = Event::UserMessage {
        port_name: b,
        message: UserMessage {
            sequence_num: 1,
            ports: vec![n],
            descriptors: vec![d],
            payload: (),
        },
    };
    node.handle_event(peer, event).unwrap();
    let m = node.get_message(b).unwrap().unwrap();
    assert_eq!(m.ports, [n]);
    assert_eq!(node.get_message(n), Err(OpError::PeerClosed { port: n }));
    for p in [a, b, n] {
        node.close_port(p).unwrap();
    }
    assert_eq!(node.port_count(), 0);
}

#[test]
fn a_port_whose_peer_was_lost_keeps_its_messages_when_sent_on() {
    let mut sim = S::new(3);
    let (a1, b0) = connect(&mut sim, 0, 1);
    let (a2, c0) = connect(&mut sim, 0, 2);
    // Q on node 0 with peer R on node 2; R sends two messages, node 2 dies.
    let (q, r) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a2, "R", vec![r]);
    sim.run();
    let r2 = recv(&mut sim, 2, c0).unwrap().1[0];
    send(&mut sim, 2, r2, "r1", vec![]);
    send(&mut sim, 2, r2, "r2", vec![]);
    sim.run();
    sim.kill(2);
    // Q, peer lost, moves to node 1 with both messages still unread.
    send(&mut sim, 0, a1, "Q", vec![q]);
    sim.run();
    let q1 = recv(&mut sim, 1, b0).unwrap().1[0];
    let (got, closed) = drain(&mut sim, 1, q1);
    assert_eq!(got, ["r1", "r2"]);
    assert!(closed);
    close_all(&mut sim, &[(0, a1), (1, b0), (0, a2), (1, q1)]);
    sim.assert_clean();
}

#[test]
fn losing_a_peer_with_many_proxies_is_not_quadratic() {
    // 20 000 ports sent to a peer that never accepts them: all Buffering.
    // Peer loss must find them through the peer index; a scan per deleted
    // proxy would take minutes here.
    let peer = node_name_of(1);
    let mut node: Node<()> = Node::new(node_name_of(0), SeededRandom::new(1));
    let (carrier, reserved) = node.create_pipe().unwrap();
    node.merge_with_remote(reserved, peer, names::port_name(9, 9))
        .unwrap();
    node.handle_event(
        peer,
        Event::PortAccepted {
            port_name: reserved,
        },
    )
    .unwrap();
    let mut kept = Vec::new();
    for _ in 0..10_000 {
        let (q, r) = node.create_pipe().unwrap();
        node.send_message(carrier, (), vec![r]).unwrap();
        kept.push(q);
    }
    drain_transmits(&mut node);
    node.lost_node(peer);
    assert_eq!(node.proxy_count(), 0);
    for q in kept {
        assert_eq!(node.get_message(q), Err(OpError::PeerClosed { port: q }));
        node.close_port(q).unwrap();
    }
    node.close_port(carrier).unwrap();
    assert_eq!(node.port_count(), 0);
}

// ----- the §4.10 direct hand-off ------------------------------------------

#[test]
fn direct_handoff_moves_a_port_without_a_proxy() {
    let mut sim = S::new(2);
    sim.nodes[0].set_direct_handoff(true);
    let (a, p0) = connect(&mut sim, 0, 1);
    let (f, e) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, f, "queued in E 1", vec![]);
    send(&mut sim, 0, f, "queued in E 2", vec![]);
    let before = sim.log.len();
    send(&mut sim, 0, a, "E", vec![e]);
    // At once: E is gone, F points at the new port, no proxy.
    assert_eq!(sim.nodes[0].port_state(e), None);
    assert_eq!(sim.nodes[0].proxy_count(), 0);
    assert_eq!(sim.nodes[0].peer_of(f).unwrap().0, sim.name(1));
    send(&mut sim, 0, f, "after the move", vec![]);
    sim.run();
    let e1 = recv(&mut sim, 1, p0).unwrap().1[0];
    assert_eq!(sim.nodes[0].peer_of(f), Some((sim.name(1), e1)));
    let (got, _) = drain(&mut sim, 1, e1);
    assert_eq!(got, ["queued in E 1", "queued in E 2", "after the move"]);
    send(&mut sim, 1, e1, "back", vec![]);
    sim.run();
    assert_eq!(recv(&mut sim, 0, f).unwrap().0, "back");
    // Node 0 never asked to be bypassed; the late PortAccepted{E} was
    // ignored without error.
    assert!(
        sim.log[before..]
            .iter()
            .all(|s| !(s.from == 0 && s.kind == EventKind::ObserveProxy))
    );
    assert!(
        sim.log[before..]
            .iter()
            .any(|s| s.kind == EventKind::PortAccepted && s.port == e)
    );
    close_all(&mut sim, &[(0, a), (1, p0), (0, f), (1, e1)]);
    sim.assert_clean();
}

#[test]
fn direct_handoff_merge_as_section_4_10_describes() {
    let mut sim = S::new(2);
    sim.nodes[0].set_direct_handoff(true);
    let (a, reserved) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a, "before the merge", vec![]);
    let (p0, p1) = sim.nodes[1].create_merge_pipe().unwrap();
    let client = sim.name(1);
    sim.nodes[0]
        .merge_with_remote(reserved, client, p1)
        .unwrap();
    assert_eq!(sim.nodes[0].port_count(), 1, "only A is left");
    sim.run();
    use EventKind::*;
    let broker_to_client: Vec<EventKind> = sim
        .log
        .iter()
        .filter(|s| s.from == 0)
        .map(|s| s.kind)
        .collect();
    // MergePort, A's message, then the forwarded ObserveProxy for P1 and
    // the ack for X; no ObserveProxy of a broker proxy, no retry.
    assert_eq!(
        broker_to_client,
        [MergePort, UserMessage, ObserveProxy, ObserveProxyAck]
    );
    assert_eq!(sim.nodes[0].peer_of(a), Some((client, p0)));
    assert_eq!(recv(&mut sim, 1, p0).unwrap().0, "before the merge");
    close_all(&mut sim, &[(0, a), (1, p0)]);
    sim.assert_clean();
}

#[test]
fn direct_handoff_falls_back_to_a_proxy_until_the_pair_is_settled() {
    let mut sim = S::new(2);
    sim.nodes[0].set_direct_handoff(true);
    let (a, p0) = connect(&mut sim, 0, 1);
    let (f, e) = sim.nodes[0].create_pipe().unwrap();
    send(&mut sim, 0, a, "E out", vec![e]);
    sim.run();
    let e1 = recv(&mut sim, 1, p0).unwrap().1[0];
    send(&mut sim, 0, f, "f1", vec![]);
    send(&mut sim, 1, p0, "E back", vec![e1]);
    // Deliver until the carrying message is here: E is home again but F
    // still points at the proxy on node 1, which may still forward f1.
    let e2 = loop {
        if let Some((_, ports)) = recv(&mut sim, 0, a) {
            break ports[0];
        }
        assert!(sim.step(), "E never came back");
    };
    assert_ne!(sim.nodes[0].peer_of(f), Some((sim.name(0), e2)));
    send(&mut sim, 0, a, "E out again", vec![e2]);
    assert_eq!(
        sim.nodes[0].port_state(e2),
        Some(PortState::Buffering),
        "not settled: moved by proxy"
    );
    send(&mut sim, 0, f, "f2", vec![]);
    sim.run();
    let e3 = recv(&mut sim, 1, p0).unwrap().1[0];
    let (got, _) = drain(&mut sim, 1, e3);
    assert_eq!(got, ["f1", "f2"]);
    close_all(&mut sim, &[(0, a), (1, p0), (0, f), (1, e3)]);
    sim.assert_clean();
}

#[test]
fn ports_towards_counts_each_nodes_senders_as_ports_come_and_go() {
    let mut sim = S::new(2);
    let (n0, n1) = (sim.name(0), sim.name(1));
    let (a, p0) = connect(&mut sim, 0, 1);
    assert_eq!(sim.nodes[0].ports_towards(n1), 1);
    assert_eq!(sim.nodes[1].ports_towards(n0), 1);
    // A local pipe: two ports sending to their own node.
    let (x, y) = sim.nodes[0].create_pipe().unwrap();
    assert_eq!(sim.nodes[0].ports_towards(n0), 2);
    // `y` moves to node 1: once the proxy is gone, `x` sends there.
    send(&mut sim, 0, a, "carry", vec![y]);
    sim.run();
    let (_, got) = recv(&mut sim, 1, p0).unwrap();
    let [y1] = got[..] else {
        panic!("one port, got {got:?}")
    };
    assert_eq!(sim.nodes[0].ports_towards(n1), 2, "a and x");
    assert_eq!(sim.nodes[0].ports_towards(n0), 0);
    assert_eq!(sim.nodes[1].ports_towards(n0), 2, "p0 and y1");
    sim.nodes[0].check_peer_index();
    sim.nodes[1].check_peer_index();
    close_all(&mut sim, &[(0, a), (1, p0), (0, x), (1, y1)]);
    assert_eq!(sim.nodes[0].ports_towards(n1), 0);
    assert_eq!(sim.nodes[1].ports_towards(n0), 0);
    sim.assert_clean();
}
