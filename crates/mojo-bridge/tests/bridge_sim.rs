//! In-memory host ⇄ bridge ⇄ client simulations: echo on every
//! attachment, empty messages, closure from either end with messages in
//! flight, transport loss; each ends with nothing left anywhere.

mod support;

use mojo_bridge::{Attachments, BridgeEvent};
use support::World;

/// Sends `count` numbered messages each way on attachment `i` and checks
/// they arrive verbatim and in order.
fn echo(w: &mut World, i: usize, count: usize) {
    let portal = w.host_portal(i);
    let port = w.client_ends[i];
    for n in 0..count {
        let down = format!("host {i} #{n}").into_bytes();
        let up = format!("client {i} #{n}").into_bytes();
        w.host.put(portal, down, Vec::new()).unwrap();
        w.client.write_message(port, &up, Vec::new()).unwrap();
    }
    w.run();
    let got: Vec<Vec<u8>> = w.client_take(port).into_iter().map(|m| m.0).collect();
    let want: Vec<Vec<u8>> = (0..count)
        .map(|n| format!("host {i} #{n}").into_bytes())
        .collect();
    assert_eq!(got, want, "host -> client on attachment {i}");
    let got: Vec<Vec<u8>> = w.host_take(portal).into_iter().map(|p| p.data).collect();
    let want: Vec<Vec<u8>> = (0..count)
        .map(|n| format!("client {i} #{n}").into_bytes())
        .collect();
    assert_eq!(got, want, "client -> host on attachment {i}");
}

#[test]
fn numeric_attachments_echo_both_ways() {
    let mut w = World::new(Attachments::Numbered(3), 4);
    assert_eq!(w.bridge.pairing_count(), 3);
    for i in 0..3 {
        echo(&mut w, i, 20);
    }
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn seven_numeric_attachments_with_a_host_announcing_eight_portals() {
    let mut w = World::new(Attachments::Numbered(7), 8);
    for i in (0..7).rev() {
        echo(&mut w, i, 3);
    }
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn desktop_profile_echoes_with_a_pipe() {
    let mut w = World::with_profile(
        Attachments::Numbered(2),
        3,
        mojo_legacy_wire::Profile::Desktop,
    );
    echo(&mut w, 1, 5);
    let (keep, send) = w.host.create_portal_pair();
    w.host
        .put(
            w.host_portal(0),
            Vec::new(),
            vec![ipcz_node::router::Handle::Portal(send)],
        )
        .unwrap();
    w.run();
    let (_, mut handles) = w.client_take(w.client_ends[0]).pop().unwrap();
    let Some(mojo_legacy_node::node::Handle::MessagePipe(p)) = handles.pop() else {
        panic!("no pipe")
    };
    w.client.write_message(p, b"desktop", Vec::new()).unwrap();
    w.run();
    assert_eq!(w.host_take(keep)[0].data, b"desktop");
    w.host.close(keep).unwrap();
    w.client.close_port(p).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn string_attachment_echoes_on_portal_one() {
    let mut w = World::new(Attachments::Named(b"pipe!".to_vec()), 2);
    echo(&mut w, 0, 10);
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn empty_messages_cross_both_ways() {
    let mut w = World::new(Attachments::Numbered(1), 2);
    let (portal, port) = (w.host_portal(0), w.client_ends[0]);
    for _ in 0..3 {
        w.host.put(portal, Vec::new(), Vec::new()).unwrap();
        w.client.write_message(port, &[], Vec::new()).unwrap();
    }
    w.host.put(portal, vec![0], Vec::new()).unwrap();
    w.run();
    let got: Vec<Vec<u8>> = w.client_take(port).into_iter().map(|m| m.0).collect();
    assert_eq!(got, vec![vec![], vec![], vec![], vec![0]]);
    let got: Vec<_> = w.host_take(portal);
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|p| p.data.is_empty() && p.handles.is_empty())
    );
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn host_closes_with_messages_in_flight() {
    let mut w = World::new(Attachments::Numbered(2), 3);
    let (portal, port) = (w.host_portal(0), w.client_ends[0]);
    for n in 0..50u32 {
        w.host
            .put(portal, n.to_le_bytes().to_vec(), Vec::new())
            .unwrap();
    }
    w.host.close(portal).unwrap();
    w.run();
    let got = w.client_take(port);
    assert_eq!(got.len(), 50, "every message before the closure");
    for (n, m) in got.iter().enumerate() {
        assert_eq!(m.0, (n as u32).to_le_bytes());
    }
    assert!(w.client.port_status(port).unwrap().peer_closed);
    assert_eq!(w.bridge.pairing_count(), 1, "attachment 1 still paired");
    echo(&mut w, 1, 2);
    w.client.close_port(port).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn client_closes_with_messages_in_flight() {
    let mut w = World::new(Attachments::Numbered(2), 3);
    let (portal, port) = (w.host_portal(1), w.client_ends[1]);
    for n in 0..50u32 {
        w.client
            .write_message(port, &n.to_le_bytes(), Vec::new())
            .unwrap();
    }
    w.client.close_port(port).unwrap();
    w.run();
    let got = w.host_take(portal);
    assert_eq!(got.len(), 50);
    for (n, p) in got.iter().enumerate() {
        assert_eq!(p.data, (n as u32).to_le_bytes());
    }
    assert!(w.host.status(portal).unwrap().dead);
    let closed = w
        .bridge_events
        .iter()
        .filter(|e| matches!(e, BridgeEvent::PairingClosed { .. }))
        .count();
    assert_eq!(closed, 1);
    echo(&mut w, 0, 2);
    w.host.close(portal).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn both_ends_close_at_once() {
    let mut w = World::new(Attachments::Numbered(1), 2);
    let (portal, port) = (w.host_portal(0), w.client_ends[0]);
    w.host.put(portal, b"down".to_vec(), Vec::new()).unwrap();
    w.client.write_message(port, b"up", Vec::new()).unwrap();
    w.host.close(portal).unwrap();
    w.client.close_port(port).unwrap();
    w.assert_nothing_left();
}

#[test]
fn host_link_lost_closes_every_pairing_after_forwarding() {
    let mut w = World::new(Attachments::Numbered(2), 3);
    let port = w.client_ends[0];
    w.host
        .put(w.host_portal(0), b"last".to_vec(), Vec::new())
        .unwrap();
    w.run();
    let bridge_link = w.bridge_link;
    w.bridge.ipcz_link_lost(bridge_link);
    w.run();
    assert_eq!(w.bridge.pairing_count(), 0);
    assert_eq!(w.client_take(port).len(), 1);
    for p in w.client_ends.clone() {
        assert!(w.client.port_status(p).unwrap().peer_closed);
        w.client.close_port(p).unwrap();
    }
    let host_link = w.host_link;
    w.host.link_lost(host_link);
    for i in 0..2 {
        w.host.close(w.host_portal(i)).unwrap();
    }
    w.run();
    assert_eq!(w.bridge.ipcz().router_count(), 0);
    assert_eq!(w.bridge.legacy().port_count(), 0);
    assert_eq!(w.client.port_count(), 0);
    assert_eq!(w.host.router_count(), 0);
}

#[test]
fn client_lost_closes_every_pairing_after_forwarding() {
    let mut w = World::new(Attachments::Numbered(2), 3);
    w.client
        .write_message(w.client_ends[1], b"last", Vec::new())
        .unwrap();
    w.run();
    let client = w.client.name();
    w.bridge.legacy_peer_lost(client);
    w.run();
    assert_eq!(w.bridge.pairing_count(), 0);
    assert_eq!(w.host_take(w.host_portal(1)).len(), 1);
    for i in 0..2 {
        assert!(w.host.status(w.host_portal(i)).unwrap().dead);
        w.host.close(w.host_portal(i)).unwrap();
    }
    let proxy = w.bridge.legacy().name();
    w.client.peer_lost(proxy);
    for p in w.client_ends.clone() {
        w.client.close_port(p).unwrap();
    }
    w.run();
    assert_eq!(w.bridge.ipcz().router_count(), 0);
    assert_eq!(w.bridge.legacy().port_count(), 0);
    assert_eq!(w.host.router_count(), 0);
    assert_eq!(w.client.port_count(), 0);
}

#[test]
fn a_garbage_legacy_frame_drops_the_client_and_closes_its_pairings() {
    let mut w = World::new(Attachments::Numbered(2), 3);
    let client = w.client.name();
    let result = w
        .bridge
        .handle_legacy_frame(client, &[0xff; 40], Vec::new());
    assert!(matches!(result, Err(mojo_bridge::BridgeError::Legacy(_))));
    w.run();
    assert_eq!(w.bridge.pairing_count(), 0);
    assert!(w.bridge_events.iter().any(|e| matches!(
        e,
        BridgeEvent::Legacy(mojo_legacy_node::node::NodeEvent::PeerLost { error: Some(_), .. })
    )));
    for i in 0..2 {
        assert!(w.host.status(w.host_portal(i)).unwrap().dead);
        w.host.close(w.host_portal(i)).unwrap();
    }
    let proxy = w.bridge.legacy().name();
    w.client.peer_lost(proxy);
    for p in w.client_ends.clone() {
        w.client.close_port(p).unwrap();
    }
    w.run();
    assert_eq!(w.bridge.ipcz().router_count(), 0);
    assert_eq!(w.bridge.legacy().port_count(), 0);
    assert_eq!(w.host.router_count(), 0);
}

#[test]
fn a_garbage_ipcz_frame_drops_the_host_link_and_closes_its_pairings() {
    let mut w = World::new(Attachments::Numbered(2), 3);
    let link = w.bridge_link;
    let result = w.bridge.handle_ipcz_frame(link, &[0xee; 64], Vec::new());
    assert!(matches!(result, Err(mojo_bridge::BridgeError::Ipcz(_))));
    w.run();
    assert_eq!(w.bridge.pairing_count(), 0);
    assert!(w.bridge_events.iter().any(|e| matches!(
        e,
        BridgeEvent::Ipcz(ipcz_node::node::NodeEvent::LinkDropped { .. })
    )));
    for p in w.client_ends.clone() {
        assert!(w.client.port_status(p).unwrap().peer_closed);
        w.client.close_port(p).unwrap();
    }
    let host_link = w.host_link;
    w.host.link_lost(host_link);
    for i in 0..2 {
        w.host.close(w.host_portal(i)).unwrap();
    }
    w.run();
    assert_eq!(w.bridge.ipcz().router_count(), 0);
    assert_eq!(w.bridge.legacy().port_count(), 0);
    assert_eq!(w.client.port_count(), 0);
    assert_eq!(w.host.router_count(), 0);
}

#[test]
fn attachments_beyond_the_hosts_portals_close_at_once() {
    // The host announces 2 initial portals: only attachment 0 has one.
    let mut w = World::new(Attachments::Numbered(3), 2);
    assert_eq!(w.bridge.pairing_count(), 1);
    for i in 1..3 {
        let end = w.client_ends[i];
        assert!(
            w.client.port_status(end).unwrap().peer_closed,
            "attachment {i}"
        );
        w.client.close_port(end).unwrap();
    }
    let (portal, port) = (w.host_portal(0), w.client_ends[0]);
    w.host.put(portal, b"only".to_vec(), Vec::new()).unwrap();
    w.run();
    assert_eq!(w.client_take(port)[0].0, b"only");
    w.host.close(portal).unwrap();
    w.client.close_port(port).unwrap();
    w.assert_nothing_left();
}

#[test]
fn a_one_mebibyte_message_crosses_each_way_verbatim() {
    let mut w = World::new(Attachments::Numbered(1), 2);
    let (portal, port) = (w.host_portal(0), w.client_ends[0]);
    let big: Vec<u8> = (0..1usize << 20)
        .map(|i| (i * 7 + (i >> 11)) as u8)
        .collect();
    w.host.put(portal, big.clone(), Vec::new()).unwrap();
    w.client.write_message(port, &big, Vec::new()).unwrap();
    w.run();
    assert_eq!(w.client_take(port)[0].0, big);
    assert_eq!(w.host_take(portal)[0].data, big);
    w.close_attachments();
    w.assert_nothing_left();
}
