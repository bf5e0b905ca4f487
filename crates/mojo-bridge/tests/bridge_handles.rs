//! Handle translation through the bridge, in memory: message pipes each
//! way and bounced back and forth, shared buffers of every mode each way,
//! fds each way, and untranslatable objects (the message's handles closed,
//! the pipe still working); each ends with nothing left anywhere.

mod support;

use std::os::fd::OwnedFd;

use ipcz_node::data_pipe::new_pipe_objects;
use ipcz_node::node::{DriverBox, NodeHandle};
use ipcz_node::router::{Handle as IpczHandle, RouterId};
use ipcz_wire::driver_object::{
    DriverObject, ObjectType, SharedBuffer as IpczBuffer, Transport, WrapperType,
};
use mojo_bridge::{Attachments, Side, Untranslatable};
use mojo_legacy_node::data_pipe::new_pipe_states;
use mojo_legacy_node::node::{DataPipeEnd, Handle, PortRef, SharedBuffer};
use mojo_legacy_wire::user_message::DataPipeOptions;
use mojo_wire_kit::{Guid, RegionMode};
use support::{World, probe_closed, probed_fd, same_socket};

fn null_fd() -> OwnedFd {
    OwnedFd::from(std::fs::File::open("/dev/null").unwrap())
}

fn world() -> World {
    World::new(Attachments::Numbered(2), 3)
}

/// The single message pipe end of the client's only message on `port`.
fn client_pipe(w: &mut World, port: PortRef, bytes: &[u8]) -> PortRef {
    let mut got = w.client_take(port);
    assert_eq!(got.len(), 1);
    let (b, mut handles) = got.pop().unwrap();
    assert_eq!(b, bytes);
    assert_eq!(handles.len(), 1);
    match handles.pop() {
        Some(Handle::MessagePipe(p)) => p,
        other => panic!("expected a pipe, got {other:?}"),
    }
}

/// The single portal of the host's only parcel on `portal`.
fn host_portal(w: &mut World, portal: RouterId, bytes: &[u8]) -> RouterId {
    let mut got = w.host_take(portal);
    assert_eq!(got.len(), 1);
    let p = got.pop().unwrap();
    assert_eq!(p.data, bytes);
    assert_eq!(p.handles.len(), 1);
    match p.handles.into_iter().next() {
        Some(IpczHandle::Portal(r)) => r,
        other => panic!("expected a portal, got {other:?}"),
    }
}

/// Checks a message each way between host portal `r` and client port `p`.
fn talk(w: &mut World, r: RouterId, p: PortRef) {
    w.host.put(r, b"to client".to_vec(), Vec::new()).unwrap();
    w.client.write_message(p, b"to host", Vec::new()).unwrap();
    w.run();
    let got = w.client_take(p);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, b"to client");
    let got = w.host_take(r);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"to host");
}

#[test]
fn pipe_from_host_is_used_both_ways() {
    let mut w = world();
    let (keep, send) = w.host.create_portal_pair();
    w.host
        .put(
            w.host_portal(0),
            b"pipe".to_vec(),
            vec![IpczHandle::Portal(send)],
        )
        .unwrap();
    w.run();
    let end = w.client_ends[0];
    let p = client_pipe(&mut w, end, b"pipe");
    assert_eq!(w.bridge.pairing_count(), 3);
    talk(&mut w, keep, p);
    w.host.close(keep).unwrap();
    w.run();
    assert!(w.client.port_status(p).unwrap().peer_closed);
    w.client.close_port(p).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn pipe_from_client_is_used_both_ways() {
    let mut w = world();
    let (keep, send) = w.client.create_pipe().unwrap();
    w.client
        .write_message(w.client_ends[1], b"pipe", vec![Handle::MessagePipe(send)])
        .unwrap();
    w.run();
    let attachment = w.host_portal(1);
    let r = host_portal(&mut w, attachment, b"pipe");
    talk(&mut w, r, keep);
    w.client.close_port(keep).unwrap();
    w.run();
    assert!(w.host.status(r).unwrap().dead);
    w.host.close(r).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn several_pipes_in_one_message_keep_their_order() {
    let mut w = world();
    let mut kept = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..4 {
        let (k, s) = w.host.create_portal_pair();
        kept.push(k);
        sent.push(IpczHandle::Portal(s));
    }
    w.host
        .put(w.host_portal(0), b"four".to_vec(), sent)
        .unwrap();
    w.run();
    let (_, handles) = w.client_take(w.client_ends[0]).pop().unwrap();
    let ports: Vec<PortRef> = handles
        .into_iter()
        .map(|h| match h {
            Handle::MessagePipe(p) => p,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ports.len(), 4);
    for (i, k) in kept.iter().enumerate() {
        w.host.put(*k, vec![i as u8], Vec::new()).unwrap();
    }
    w.run();
    for (i, p) in ports.iter().enumerate() {
        assert_eq!(w.client_take(*p)[0].0, vec![i as u8], "handle {i} in place");
        w.client.close_port(*p).unwrap();
    }
    for k in kept {
        w.host.close(k).unwrap();
    }
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn pipe_bounced_back_and_forth_five_times_keeps_working() {
    let mut w = world();
    let (mine, theirs) = w.client.create_pipe().unwrap();
    let mut at_client = theirs;
    for round in 0..5u8 {
        // Messages written on the far end while its peer travels stay in order.
        w.client.write_message(mine, &[round], Vec::new()).unwrap();
        w.client
            .write_message(
                w.client_ends[0],
                b"out",
                vec![Handle::MessagePipe(at_client)],
            )
            .unwrap();
        w.run();
        let attachment = w.host_portal(0);
        let r = host_portal(&mut w, attachment, b"out");
        w.host
            .put(
                w.host_portal(0),
                b"back".to_vec(),
                vec![IpczHandle::Portal(r)],
            )
            .unwrap();
        w.run();
        let end = w.client_ends[0];
        at_client = client_pipe(&mut w, end, b"back");
        let got: Vec<Vec<u8>> = w.client_take(at_client).into_iter().map(|m| m.0).collect();
        assert_eq!(got, vec![vec![round]], "round {round}");
    }
    w.client
        .write_message(at_client, b"to mine", Vec::new())
        .unwrap();
    w.client
        .write_message(mine, b"to theirs", Vec::new())
        .unwrap();
    w.run();
    assert_eq!(w.client_take(mine)[0].0, b"to mine".to_vec());
    assert_eq!(w.client_take(at_client)[0].0, b"to theirs".to_vec());
    w.client.close_port(mine).unwrap();
    w.run();
    assert!(w.client.port_status(at_client).unwrap().peer_closed);
    w.client.close_port(at_client).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
}

/// The host sends `at_host` to the client on attachment 0 and the client
/// sends it straight back; returns the host's new end.
fn bounce_through_client(w: &mut World, at_host: RouterId) -> RouterId {
    let attachment = w.host_portal(0);
    w.host
        .put(
            attachment,
            b"out".to_vec(),
            vec![IpczHandle::Portal(at_host)],
        )
        .unwrap();
    w.run();
    let end = w.client_ends[0];
    let p = client_pipe(w, end, b"out");
    w.client
        .write_message(end, b"back", vec![Handle::MessagePipe(p)])
        .unwrap();
    w.run();
    host_portal(w, attachment, b"back")
}

#[test]
fn a_host_pipe_bounced_through_the_client_leaves_no_pairing_behind() {
    let mut w = world();
    let initial = w.bridge.pairing_count();
    let (keep, mut at_host) = w.host.create_portal_pair();
    for round in 0..5u8 {
        at_host = bounce_through_client(&mut w, at_host);
        assert_eq!(w.bridge.pairing_count(), initial, "round {round}");
        w.host.put(keep, vec![round], Vec::new()).unwrap();
        w.host.put(at_host, vec![round + 10], Vec::new()).unwrap();
        w.run();
        assert_eq!(w.host_take(at_host)[0].data, vec![round]);
        assert_eq!(w.host_take(keep)[0].data, vec![round + 10]);
    }
    // A message the client left unread on the end: it comes back paired
    // (the message waits in its legacy port) and nothing is lost.
    let attachment = w.host_portal(0);
    w.host
        .put(
            attachment,
            b"out".to_vec(),
            vec![IpczHandle::Portal(at_host)],
        )
        .unwrap();
    w.run();
    let end = w.client_ends[0];
    let p = client_pipe(&mut w, end, b"out");
    w.host.put(keep, b"unread".to_vec(), Vec::new()).unwrap();
    w.run();
    w.client
        .write_message(end, b"back", vec![Handle::MessagePipe(p)])
        .unwrap();
    w.run();
    at_host = host_portal(&mut w, attachment, b"back");
    assert_eq!(w.bridge.pairing_count(), initial + 2);
    assert_eq!(w.host_take(at_host)[0].data, b"unread");
    w.host.close(keep).unwrap();
    w.run();
    assert_eq!(w.bridge.pairing_count(), initial);
    w.host.close(at_host).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
}

fn legacy_buffer(mode: RegionMode, n: u64) -> SharedBuffer {
    let fds = (0..mode.num_fds()).map(|_| null_fd()).collect();
    SharedBuffer::new(4096 * n, Guid::new(0xb0f, n), mode, fds).unwrap()
}

const MODES: [RegionMode; 3] = [
    RegionMode::ReadOnly,
    RegionMode::Writable,
    RegionMode::Unsafe,
];

#[test]
fn shared_buffers_cross_from_the_client_with_their_mode() {
    let mut w = world();
    let handles = MODES
        .iter()
        .enumerate()
        .map(|(i, m)| Handle::SharedBuffer(legacy_buffer(*m, i as u64 + 1)))
        .collect();
    w.client
        .write_message(w.client_ends[0], b"buffers", handles)
        .unwrap();
    w.run();
    let parcel = w.host_take(w.host_portal(0)).pop().unwrap();
    assert_eq!(parcel.data, b"buffers");
    assert_eq!(parcel.handles.len(), 3);
    for (i, h) in parcel.handles.iter().enumerate() {
        let IpczHandle::Object(b) = h else {
            panic!("handle {i}: {h:?}")
        };
        let want = IpczBuffer {
            buffer_size: 4096 * (i as u32 + 1),
            mode: MODES[i],
            guid: Guid::new(0xb0f, i as u64 + 1),
        };
        assert_eq!(b.object(), &DriverObject::SharedBuffer(want));
        assert_eq!(b.fds().len(), MODES[i].num_fds());
    }
    drop(parcel);
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn shared_buffers_cross_from_the_host_with_their_mode() {
    let mut w = world();
    let handles: Vec<NodeHandle> = MODES
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let object = DriverObject::SharedBuffer(IpczBuffer {
                buffer_size: 8192 * (i as u32 + 1),
                mode: *m,
                guid: Guid::new(0xcafe, i as u64 + 1),
            });
            let fds = (0..m.num_fds()).map(|_| null_fd()).collect();
            IpczHandle::Object(DriverBox::new(object, fds).unwrap())
        })
        .collect();
    w.host
        .put(w.host_portal(1), b"regions".to_vec(), handles)
        .unwrap();
    w.run();
    let (bytes, handles) = w.client_take(w.client_ends[1]).pop().unwrap();
    assert_eq!(bytes, b"regions");
    assert_eq!(handles.len(), 3);
    for (i, h) in handles.iter().enumerate() {
        let Handle::SharedBuffer(b) = h else {
            panic!("handle {i}: {h:?}")
        };
        assert_eq!(b.size(), 8192 * (i as u64 + 1));
        assert_eq!(b.mode(), MODES[i], "read-only stays read-only");
        assert_eq!(b.guid(), Guid::new(0xcafe, i as u64 + 1));
        assert_eq!(b.fds().len(), MODES[i].num_fds());
    }
    drop(handles);
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn fds_cross_both_ways_and_are_the_same_sockets() {
    let mut w = world();
    let (up_fd, up_probe) = probed_fd();
    let (down_fd, down_probe) = probed_fd();
    w.client
        .write_message(w.client_ends[0], b"fd", vec![Handle::PlatformHandle(up_fd)])
        .unwrap();
    let object =
        DriverObject::WrappedPlatformHandle(ipcz_wire::driver_object::WrappedPlatformHandle {
            wrapper_type: WrapperType::TRANSMISSIBLE,
        });
    let boxed = DriverBox::new(object, vec![down_fd]).unwrap();
    w.host
        .put(
            w.host_portal(0),
            b"fd".to_vec(),
            vec![IpczHandle::Object(boxed)],
        )
        .unwrap();
    w.run();
    let parcel = w.host_take(w.host_portal(0)).pop().unwrap();
    let Some(IpczHandle::Object(b)) = parcel.handles.into_iter().next() else {
        panic!("no box")
    };
    assert!(matches!(b.object(), DriverObject::WrappedPlatformHandle(_)));
    let (_, mut fds) = b.into_parts();
    let fd = fds.pop().unwrap();
    assert!(same_socket(&fd, &up_probe));
    drop(fd);
    assert!(probe_closed(&up_probe));

    let (_, mut handles) = w.client_take(w.client_ends[0]).pop().unwrap();
    let Some(Handle::PlatformHandle(fd)) = handles.pop() else {
        panic!("no platform handle")
    };
    assert!(same_socket(&fd, &down_probe));
    drop(fd);
    assert!(probe_closed(&down_probe));
    w.close_attachments();
    w.assert_nothing_left();
}

fn legacy_data_pipe(w: &mut World) -> (Handle, PortRef) {
    let options = DataPipeOptions {
        struct_size: 16,
        flags: 0,
        element_num_bytes: 1,
        capacity_num_bytes: 4096,
    };
    let (producer, _consumer) = new_pipe_states(options, 7, Guid::new(0xd, 1)).unwrap();
    let (control, other) = w.client.create_pipe().unwrap();
    let end = DataPipeEnd {
        state: producer,
        control_port: control,
        ring: null_fd(),
    };
    (Handle::DataPipeProducer(end), other)
}

#[test]
fn a_legacy_data_pipe_closes_that_messages_handles_and_the_pipe_goes_on() {
    let mut w = world();
    let (data_pipe, control_peer) = legacy_data_pipe(&mut w);
    let (keep, send) = w.client.create_pipe().unwrap();
    let (fd, probe) = probed_fd();
    w.client
        .write_message(
            w.client_ends[0],
            b"mixed",
            vec![
                Handle::MessagePipe(send),
                data_pipe,
                Handle::PlatformHandle(fd),
            ],
        )
        .unwrap();
    w.run();
    let parcel = w.host_take(w.host_portal(0)).pop().unwrap();
    assert_eq!(parcel.data, b"mixed", "bytes forwarded");
    assert!(parcel.handles.is_empty(), "every handle closed");
    assert_eq!(
        w.untranslatable(),
        vec![(
            Side::Legacy,
            Untranslatable::LegacyDataPipe { producer: true }
        )]
    );
    assert!(probe_closed(&probe));
    assert!(w.client.port_status(keep).unwrap().peer_closed);
    assert!(w.client.port_status(control_peer).unwrap().peer_closed);
    w.client.close_port(keep).unwrap();
    w.client.close_port(control_peer).unwrap();
    let (attachment, end) = (w.host_portal(0), w.client_ends[0]);
    talk(&mut w, attachment, end);
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn ipcz_objects_without_a_legacy_counterpart_close_that_messages_handles() {
    let mut w = world();
    let portal = w.host_portal(1);
    // A transport next to a portal.
    let (keep, send) = w.host.create_portal_pair();
    let transport = DriverBox::new(
        DriverObject::Transport(Transport::default()),
        vec![null_fd()],
    )
    .unwrap();
    w.host
        .put(
            portal,
            b"transport".to_vec(),
            vec![IpczHandle::Portal(send), IpczHandle::Object(transport)],
        )
        .unwrap();
    // A data pipe end with its control portal (§8.3), then one without.
    let buffer = IpczBuffer {
        buffer_size: 4096,
        mode: RegionMode::Unsafe,
        guid: Guid::new(0xd, 2),
    };
    let (producer, consumer) = new_pipe_objects(1, buffer).unwrap();
    let (control_keep, control_send) = w.host.create_portal_pair();
    let boxed = DriverBox::new(DriverObject::DataPipe(producer), vec![null_fd()]).unwrap();
    w.host
        .put(
            portal,
            b"data pipe".to_vec(),
            vec![IpczHandle::Object(boxed), IpczHandle::Portal(control_send)],
        )
        .unwrap();
    let boxed = DriverBox::new(DriverObject::DataPipe(consumer), vec![null_fd()]).unwrap();
    w.host
        .put(
            portal,
            b"no control".to_vec(),
            vec![IpczHandle::Object(boxed)],
        )
        .unwrap();
    w.run();
    let got = w.client_take(w.client_ends[1]);
    let bytes: Vec<&[u8]> = got.iter().map(|m| m.0.as_slice()).collect();
    assert_eq!(bytes, vec![&b"transport"[..], b"data pipe", b"no control"]);
    assert!(got.iter().all(|m| m.1.is_empty()));
    assert_eq!(
        w.untranslatable(),
        vec![
            (
                Side::Ipcz,
                Untranslatable::IpczObject {
                    object_type: ObjectType::TRANSPORT
                }
            ),
            (
                Side::Ipcz,
                Untranslatable::IpczObject {
                    object_type: ObjectType::DATA_PIPE
                }
            ),
            (
                Side::Ipcz,
                Untranslatable::MissingDataPipePortals {
                    data_pipes: 1,
                    handles: 1
                }
            ),
        ]
    );
    assert!(w.host.status(keep).unwrap().dead);
    assert!(w.host.status(control_keep).unwrap().dead);
    w.host.close(keep).unwrap();
    w.host.close(control_keep).unwrap();
    let end = w.client_ends[1];
    talk(&mut w, portal, end);
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn handles_sent_towards_a_closing_client_end_are_all_closed() {
    let mut w = world();
    let (portal, port) = (w.host_portal(0), w.client_ends[0]);
    let (keep, send) = w.host.create_portal_pair();
    let (fd, probe) = probed_fd();
    let object =
        DriverObject::WrappedPlatformHandle(ipcz_wire::driver_object::WrappedPlatformHandle {
            wrapper_type: WrapperType::TRANSMISSIBLE,
        });
    let boxed = DriverBox::new(object, vec![fd]).unwrap();
    w.host
        .put(
            portal,
            b"late".to_vec(),
            vec![IpczHandle::Portal(send), IpczHandle::Object(boxed)],
        )
        .unwrap();
    // The client closes before anything arrives.
    w.client.close_port(port).unwrap();
    w.run();
    assert!(probe_closed(&probe), "the fd died with the message");
    assert!(
        w.host.status(keep).unwrap().dead,
        "the pipe's far end sees closure"
    );
    assert!(w.host.status(portal).unwrap().dead);
    w.host.close(keep).unwrap();
    w.host.close(portal).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
}

#[test]
fn handles_sent_towards_a_closing_host_portal_are_all_closed() {
    let mut w = world();
    let (portal, port) = (w.host_portal(1), w.client_ends[1]);
    let (keep, send) = w.client.create_pipe().unwrap();
    let (fd, probe) = probed_fd();
    w.client
        .write_message(
            port,
            b"late",
            vec![Handle::MessagePipe(send), Handle::PlatformHandle(fd)],
        )
        .unwrap();
    w.host.close(portal).unwrap();
    w.run();
    assert!(probe_closed(&probe), "the fd died with the message");
    assert!(w.client.port_status(keep).unwrap().peer_closed);
    assert!(w.client.port_status(port).unwrap().peer_closed);
    w.client.close_port(keep).unwrap();
    w.client.close_port(port).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
}
