//! The bridge's counters and snapshot, in memory: messages, bytes and
//! handles per direction, per pipe and in total; pairings opened, closed
//! and collapsed; untranslatable messages counted as errors.

mod support;

use std::os::fd::OwnedFd;

use ipcz_node::node::DriverBox;
use ipcz_node::router::Handle as IpczHandle;
use ipcz_wire::driver_object::{DriverObject, Transport};
use mojo_bridge::{Attachments, DirectionTotals};
use mojo_legacy_node::node::Handle;
use support::World;

fn totals(messages: u64, bytes: u64, handles: u64) -> DirectionTotals {
    DirectionTotals {
        messages,
        bytes,
        handles,
    }
}

#[test]
fn counters_follow_every_message_pipe_and_failure() {
    let mut w = World::new(Attachments::Numbered(2), 3);
    let (p0, p1) = (w.host_portal(0), w.host_portal(1));
    let (e0, e1) = (w.client_ends[0], w.client_ends[1]);
    let start = w.bridge.totals();
    assert_eq!((start.pairings_opened, start.pairings_closed), (2, 0));
    assert_eq!(start.to_legacy, DirectionTotals::default());
    for len in [10, 20, 0] {
        w.host.put(p0, vec![7; len], Vec::new()).unwrap();
    }
    w.client.write_message(e1, &[3; 5], Vec::new()).unwrap();
    let (keep, send) = w.host.create_portal_pair();
    w.host
        .put(p1, b"pipe".to_vec(), vec![IpczHandle::Portal(send)])
        .unwrap();
    w.run();
    let t = w.bridge.totals();
    assert_eq!(t.to_legacy, totals(4, 34, 1));
    assert_eq!(t.to_ipcz, totals(1, 5, 0));
    assert_eq!(
        (t.pairings_opened, t.pairings_closed, t.errors()),
        (3, 0, 0)
    );
    let snap = w.bridge.snapshot();
    assert_eq!(snap.totals, t);
    assert_eq!(snap.pipes.len(), 3);
    assert_eq!(snap.pipes[0].to_legacy, totals(3, 30, 0));
    assert_eq!(snap.pipes[0].to_ipcz, DirectionTotals::default());
    assert_eq!(snap.pipes[1].to_legacy, totals(1, 4, 1));
    assert_eq!(snap.pipes[1].to_ipcz, totals(1, 5, 0));
    for pipe in &snap.pipes {
        assert_eq!(pipe.portal_readable, Some(0), "{pipe:?}");
        assert_eq!(pipe.port_queued, Some(0), "{pipe:?}");
        assert!(!pipe.host_closed && !pipe.client_closed, "{pipe:?}");
    }
    assert_eq!(snap.legacy_queued_messages, 0);
    assert_eq!(snap.ipcz_queued_parcels, 0);

    // The client uses the new pipe, the host closes it: one pairing closed.
    let got = w.client_take(e1);
    let Some(Handle::MessagePipe(sub)) =
        got.into_iter().next().and_then(|m| m.1.into_iter().next())
    else {
        panic!("a pipe end");
    };
    w.client.write_message(sub, b"on sub", Vec::new()).unwrap();
    w.run();
    assert_eq!(w.host_take(keep)[0].data, b"on sub");
    w.host.close(keep).unwrap();
    w.run();
    let t = w.bridge.totals();
    assert_eq!(t.to_ipcz, totals(2, 11, 0));
    assert_eq!((t.pairings_opened, t.pairings_closed), (3, 1));
    assert_eq!(w.bridge.snapshot().pipes.len(), 2);
    w.client.close_port(sub).unwrap();

    // An ipcz transport has no legacy counterpart: an error, the bytes go on.
    let transport = DriverBox::new(
        DriverObject::Transport(Transport::default()),
        vec![OwnedFd::from(std::fs::File::open("/dev/null").unwrap())],
    )
    .unwrap();
    w.host
        .put(p0, b"t".to_vec(), vec![IpczHandle::Object(transport)])
        .unwrap();
    w.run();
    let t = w.bridge.totals();
    assert_eq!((t.untranslatable, t.errors()), (1, 1));
    assert_eq!(t.to_legacy, totals(5, 35, 1));

    // A host pipe bounced through the client collapses its pairing.
    let (keep, at_host) = w.host.create_portal_pair();
    w.host
        .put(p0, b"out".to_vec(), vec![IpczHandle::Portal(at_host)])
        .unwrap();
    w.run();
    let mut got = w.client_take(e0);
    let Some(Handle::MessagePipe(p)) = got.pop().and_then(|m| m.1.into_iter().next()) else {
        panic!("a pipe end");
    };
    w.client
        .write_message(e0, b"back", vec![Handle::MessagePipe(p)])
        .unwrap();
    w.run();
    let t = w.bridge.totals();
    assert_eq!(
        (t.pairings_opened, t.pairings_closed, t.pairings_collapsed),
        (4, 2, 1)
    );
    let back = w.host_take(p0).pop().unwrap();
    for h in back.handles {
        if let IpczHandle::Portal(r) = h {
            w.host.close(r).unwrap();
        }
    }
    w.host.close(keep).unwrap();
    w.close_attachments();
    let t = w.bridge.totals();
    assert_eq!(t.pairings_closed, t.pairings_opened, "every pairing closed");
    w.assert_nothing_left();
}
