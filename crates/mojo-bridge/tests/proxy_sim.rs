//! The whole sans-IO proxy in memory, from the first byte: an ipcz broker
//! host (`ipcz_node::session::Session::broker`), the [`Proxy`] and a legacy
//! client (`mojo_legacy_node::session::ClientSession`), their streams moved
//! as bytes (fds as real `OwnedFd`s) until nothing moves, the harness
//! playing the platform for memory. Deterministic: every name and token
//! comes from seeded sources.

mod proxy_world;

use mojo_bridge::Attachments;
use mojo_bridge::proxy::ProxyLink;
use mojo_legacy_node::node::Handle;
use mojo_legacy_wire::Profile;
use proxy_world::*;

#[test]
fn messages_cross_both_ways_on_every_attachment_in_both_profiles() {
    for profile in [Profile::Libchrome, Profile::Desktop] {
        for attachments in [
            Attachments::Named(b"pipe!".to_vec()),
            Attachments::Numbered(1),
            Attachments::Numbered(7),
        ] {
            let count = match attachments {
                Attachments::Numbered(n) => n,
                _ => 1,
            };
            let mut w = World::new(attachments, profile);
            assert_eq!(w.pairings_opened, count);
            for i in 0..count {
                let portal = w.host_portal(i);
                w.host_node()
                    .put(portal, format!("to client {i}").into_bytes(), Vec::new())
                    .unwrap();
                let end = w.client_end(i);
                w.client
                    .node()
                    .write_message(end, format!("to host {i}").as_bytes(), Vec::new())
                    .unwrap();
                // An empty message too.
                w.host_node().put(portal, Vec::new(), Vec::new()).unwrap();
            }
            w.run();
            for i in 0..count {
                let end = w.client_end(i);
                let got = read_all_client(&mut w, end);
                let bytes: Vec<&[u8]> = got.iter().map(|(b, _)| b.as_slice()).collect();
                assert_eq!(
                    bytes,
                    [format!("to client {i}").as_bytes(), b""],
                    "{profile:?}"
                );
                let portal = w.host_portal(i);
                let parcel = w.host_node().get(portal).unwrap().unwrap();
                assert_eq!(parcel.data, format!("to host {i}").into_bytes());
            }
        }
    }
}

#[test]
fn messages_written_before_the_host_link_is_up_are_forwarded() {
    // The client accepts and writes while the host's frames are held back:
    // the proxy has no bridge yet, the message waits in its legacy node.
    let mut w = World::unconnected(Attachments::Numbered(2), Profile::Libchrome);
    w.hold_host = true;
    w.run();
    assert!(w.client.is_established(), "the client accepted");
    assert!(w.proxy.bridge().is_none(), "the host's link is not up");
    let end = w.client_end(1);
    w.client
        .node()
        .write_message(end, b"early", Vec::new())
        .unwrap();
    w.run();
    assert!(w.proxy.bridge().is_none());
    w.hold_host = false;
    w.run();
    assert!(w.proxy.bridge().is_some());
    let portal = w.host_portal(1);
    assert_eq!(w.host_node().get(portal).unwrap().unwrap().data, b"early");
}

#[test]
fn messages_from_the_host_wait_for_the_client() {
    // The other way round: the host's link is up and the host writes before
    // the client has even read INIT.
    let mut w = World::unconnected(Attachments::Named(b"pipe!".to_vec()), Profile::Desktop);
    w.hold_client = true;
    w.run();
    assert!(w.host.is_established() && !w.client.is_established());
    let portal = w.host_portal(0);
    w.host_node()
        .put(portal, b"waiting".to_vec(), Vec::new())
        .unwrap();
    w.run();
    w.hold_client = false;
    w.run();
    let end = w.client_end(0);
    assert_eq!(
        w.client.node().read_message(end).unwrap().unwrap().0,
        b"waiting"
    );
}

#[test]
fn a_pipe_sent_by_the_host_reaches_the_client_and_works() {
    let mut w = World::new(Attachments::Named(b"pipe!".to_vec()), Profile::Libchrome);
    let (ours, theirs) = w.host_node().create_portal_pair();
    let portal = w.host_portal(0);
    w.host_node()
        .put(
            portal,
            b"take this".to_vec(),
            vec![ipcz_node::router::Handle::Portal(theirs)],
        )
        .unwrap();
    w.run();
    let end = w.client_end(0);
    let mut got = read_all_client(&mut w, end);
    assert_eq!(got.len(), 1);
    let (bytes, handles) = got.remove(0);
    assert_eq!(bytes, b"take this");
    let Some(Handle::MessagePipe(sub)) = handles.into_iter().next() else {
        panic!("a pipe end");
    };
    w.client
        .node()
        .write_message(sub, b"on the sub", Vec::new())
        .unwrap();
    w.run();
    assert_eq!(
        w.host_node().get(ours).unwrap().unwrap().data,
        b"on the sub"
    );
    assert_eq!(w.pairings_opened, 2);
}

#[test]
fn closing_every_host_portal_finishes_the_proxy_after_forwarding() {
    let mut w = World::new(Attachments::Numbered(3), Profile::Desktop);
    for i in 0..3 {
        let portal = w.host_portal(i);
        w.host_node()
            .put(portal, b"last words".to_vec(), Vec::new())
            .unwrap();
        w.host_node().close(portal).unwrap();
    }
    w.run();
    assert!(w.finished, "the proxy reports Finished");
    assert!(w.proxy.is_finished());
    assert_eq!(w.pairings_closed, 3);
    for i in 0..3 {
        let end = w.client_end(i);
        let got = read_all_client(&mut w, end);
        assert_eq!(got.len(), 1, "forwarded before closing");
        assert!(
            w.client.node().read_message(end).is_err(),
            "then peer closed"
        );
    }
}

#[test]
fn the_client_going_away_finishes_the_proxy_and_closes_the_host_portals() {
    let mut w = World::new(Attachments::Numbered(2), Profile::Libchrome);
    let end = w.client_end(0);
    w.client
        .node()
        .write_message(end, b"bye", Vec::new())
        .unwrap();
    w.run();
    w.proxy
        .handle_link_closed(ProxyLink::ClientNodeChannel)
        .unwrap();
    w.run();
    assert!(w.finished);
    let portal = w.host_portal(0);
    assert_eq!(w.host_node().get(portal).unwrap().unwrap().data, b"bye");
    for i in 0..2 {
        let portal = w.host_portal(i);
        let status = w.host_node().status(portal).unwrap();
        assert!(status.peer_closed, "attachment {i}: {status:?}");
    }
}

#[test]
fn the_snapshot_counts_links_waiting_messages_and_pipes() {
    // Before the host's link is up, the client's message waits in the
    // legacy node and the snapshot says so.
    let mut w = World::unconnected(Attachments::Numbered(2), Profile::Libchrome);
    w.hold_host = true;
    w.run();
    let end = w.client_end(0);
    w.client
        .node()
        .write_message(end, b"early", Vec::new())
        .unwrap();
    w.run();
    let snap = w.proxy.snapshot();
    assert!(snap.bridge.is_none());
    assert_eq!(snap.waiting_for_host, 1);
    // INIT carried the node channel's client end.
    assert_eq!(snap.totals.client_bootstrap.fds_out, 1);
    assert!(snap.totals.client_node_channel.bytes_in > 0);
    w.hold_host = false;
    w.run();
    let portal = w.host_portal(1);
    w.host_node().put(portal, vec![1; 100], Vec::new()).unwrap();
    w.run();
    let snap = w.proxy.snapshot();
    assert_eq!(snap.waiting_for_host, 0);
    let bridge = snap.bridge.expect("the bridge is up");
    assert_eq!(bridge.pipes.len(), 2);
    let t = snap.totals;
    assert_eq!((t.bridge.to_ipcz.messages, t.bridge.to_ipcz.bytes), (1, 5));
    assert_eq!(
        (t.bridge.to_legacy.messages, t.bridge.to_legacy.bytes),
        (1, 100)
    );
    assert_eq!(t, w.proxy.totals());
    // The wire totals: the host's greeting brought the primary buffer's fd;
    // both links carried more than the payloads.
    assert_eq!(t.host.fds_in, 1);
    assert!(t.host.bytes_in > 5 && t.host.bytes_out > 0);
    assert!(t.client_node_channel.bytes_out > 100);
    assert_eq!(t.referrer, mojo_bridge::LinkTotals::default());
}
