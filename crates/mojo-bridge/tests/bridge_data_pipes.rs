//! Data pipe translation through the bridge, in memory: a producer or a
//! consumer sent by either side arrives as the matching end of a fresh
//! pipe on the other side; 1 MiB crosses 64 KiB rings each way with flow
//! control, closure of either end follows the bytes already written, the
//! limits refuse a pipe without crashing, random chunking keeps every byte,
//! and every ring fd is closed at the end.

mod support;

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use ipcz_node::data_pipe as ipcz_dp;
use ipcz_node::node::DriverBox;
use ipcz_node::router::{Handle as IpczHandle, RouterId};
use ipcz_node::sim::SharedHeap;
use ipcz_wire::driver_object::{DataPipeEndpointType, DriverObject, SharedBuffer};
use mojo_bridge::{
    Attachments, MAX_DATA_PIPE_CAPACITY, NewRing, RingMemory, RingMemoryError, Side, Untranslatable,
};
use mojo_legacy_node::data_pipe as legacy_dp;
use mojo_legacy_node::node::{DataPipeEnd, Handle, PortRef};
use mojo_legacy_wire::user_message::DataPipeOptions;
use mojo_wire_kit::{Guid, RegionMode};
use proptest::prelude::*;
use support::{World, probe_closed, probed_fd};

const RING: u32 = 64 << 10;
const MIB: usize = 1 << 20;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(7).wrapping_add(3).wrapping_add(i >> 11) % 251) as u8
}

/// Every ring region of the world by GUID, and a probe per ring fd.
#[derive(Clone, Default)]
struct Registry(Rc<RefCell<RegistryInner>>);

#[derive(Default)]
struct RegistryInner {
    regions: HashMap<Guid, SharedHeap>,
    probes: Vec<UnixStream>,
    next: u64,
}

impl Registry {
    fn region(&self, size: usize) -> (SharedHeap, Guid, OwnedFd) {
        let mut r = self.0.borrow_mut();
        r.next += 1;
        let guid = Guid::new(0xd47a, r.next);
        let heap = SharedHeap::new(size);
        r.regions.insert(guid, heap.clone());
        let (fd, probe) = probed_fd();
        r.probes.push(probe);
        (heap, guid, fd)
    }

    fn get(&self, guid: Guid) -> SharedHeap {
        self.0.borrow().regions[&guid].clone()
    }

    fn all_fds_closed(&self) -> bool {
        self.0.borrow().probes.iter().all(probe_closed)
    }
}

/// The bridge's ring memory in the sim.
struct TestRings(Registry);

impl RingMemory<SharedHeap> for TestRings {
    fn create(&mut self, size: usize) -> Result<NewRing<SharedHeap>, RingMemoryError> {
        let (memory, guid, fd) = self.0.region(size);
        Ok(NewRing {
            memory,
            guid,
            fds: vec![fd],
        })
    }

    fn map(
        &mut self,
        size: usize,
        guid: Guid,
        _fds: Vec<OwnedFd>,
    ) -> Result<SharedHeap, RingMemoryError> {
        let r = self.0.0.borrow();
        r.regions
            .get(&guid)
            .filter(|h| mojo_wire_kit::SharedMemory::size(*h) >= size)
            .cloned()
            .ok_or(RingMemoryError::Map {
                size,
                reason: format!("no region {guid:?}"),
            })
    }
}

fn world(reg: &Registry) -> World {
    let mut w = World::new(Attachments::Numbered(1), 2);
    w.bridge.set_ring_memory(Box::new(TestRings(reg.clone())));
    w
}

/// An end held outside the bridge, on the host or the client.
enum Outer {
    HostProducer(ipcz_dp::DataPipeProducer<SharedHeap>, RouterId),
    HostConsumer(ipcz_dp::DataPipeConsumer<SharedHeap>, RouterId),
    ClientProducer(legacy_dp::DataPipeProducer<SharedHeap>, PortRef),
    ClientConsumer(legacy_dp::DataPipeConsumer<SharedHeap>, PortRef),
}

impl Outer {
    /// Control messages in and out, the world runs, and again (to take
    /// in what the bridge answered). The far end may be gone already, so a
    /// control message may find nobody.
    fn sync(&mut self, w: &mut World) {
        self.sync_once(w);
        self.sync_once(w);
    }

    fn sync_once(&mut self, w: &mut World) {
        match self {
            Self::HostProducer(p, portal) => {
                let (msgs, closed) = host_in(w, *portal);
                for (d, n) in msgs {
                    let _ = p.handle_control(&d, n);
                }
                if closed {
                    p.handle_peer_closed();
                }
                if let Some(c) = p.poll_control_parcel() {
                    let _ = w.host.put(*portal, c.to_vec(), Vec::new());
                }
            }
            Self::HostConsumer(c, portal) => {
                let (msgs, closed) = host_in(w, *portal);
                for (d, n) in msgs {
                    let _ = c.handle_control(&d, n);
                }
                if closed {
                    c.handle_peer_closed();
                }
                if let Some(m) = c.poll_control_parcel() {
                    let _ = w.host.put(*portal, m.to_vec(), Vec::new());
                }
            }
            Self::ClientProducer(p, port) => {
                let (msgs, closed) = client_in(w, *port);
                for d in msgs {
                    let _ = p.handle_control(&d);
                }
                if closed {
                    p.handle_peer_closed();
                }
                if let Some(m) = p.poll_control_payload() {
                    let _ = w.client.write_message(*port, &m, Vec::new());
                }
            }
            Self::ClientConsumer(c, port) => {
                let (msgs, closed) = client_in(w, *port);
                for d in msgs {
                    let _ = c.handle_control(&d);
                }
                if closed {
                    c.handle_peer_closed();
                }
                if let Some(m) = c.poll_control_payload() {
                    let _ = w.client.write_message(*port, &m, Vec::new());
                }
            }
        }
        w.run();
    }

    fn write(&mut self, data: &[u8]) -> usize {
        match self {
            Self::HostProducer(p, _) => p.write(data).unwrap_or(0),
            Self::ClientProducer(p, _) => p.write(data).unwrap_or(0),
            _ => panic!("not a producer"),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> usize {
        match self {
            Self::HostConsumer(c, _) => c.read(buf).unwrap(),
            Self::ClientConsumer(c, _) => c.read(buf).unwrap(),
            _ => panic!("not a consumer"),
        }
    }

    fn drained(&self) -> bool {
        match self {
            Self::HostConsumer(c, _) => c.is_drained(),
            Self::ClientConsumer(c, _) => c.is_drained(),
            _ => panic!("not a consumer"),
        }
    }

    fn peer_closed(&self) -> bool {
        match self {
            Self::HostProducer(p, _) => p.is_peer_closed(),
            Self::ClientProducer(p, _) => p.is_peer_closed(),
            _ => panic!("not a producer"),
        }
    }

    /// Closes the end and its control pipe.
    fn close(self, w: &mut World) {
        match self {
            Self::HostProducer(_, r) | Self::HostConsumer(_, r) => w.host.close(r).unwrap(),
            Self::ClientProducer(_, p) | Self::ClientConsumer(_, p) => {
                w.client.close_port(p).unwrap()
            }
        }
        w.run();
    }
}

/// The control parcels waiting on the host's `portal`, and whether its
/// peer is closed.
fn host_in(w: &mut World, portal: RouterId) -> (Vec<(Vec<u8>, usize)>, bool) {
    let mut out = Vec::new();
    while let Some(p) = w.host.get(portal).unwrap() {
        out.push((p.data, p.handles.len()));
    }
    (out, w.host.status(portal).unwrap().peer_closed)
}

/// The control messages waiting on the client's `port`, and whether its
/// peer is closed.
fn client_in(w: &mut World, port: PortRef) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    loop {
        match w.client.read_message(port) {
            Ok(Some((bytes, _))) => out.push(bytes),
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}

fn options(capacity: u32) -> DataPipeOptions {
    DataPipeOptions {
        struct_size: 16,
        flags: 0,
        element_num_bytes: 1,
        capacity_num_bytes: capacity,
    }
}

/// Which end is sent, from which side.
#[derive(Clone, Copy, Debug)]
enum Sent {
    ClientConsumer,
    ClientProducer,
    HostConsumer,
    HostProducer,
}

/// Sends a pipe end over attachment 0 with a ring of `capacity` bytes;
/// returns (writer, reader) of the bridged pipe.
fn open(w: &mut World, reg: &Registry, sent: Sent, capacity: u32) -> (Outer, Outer) {
    let port = w.client_ends[0];
    let portal = w.host_portal(0);
    match sent {
        Sent::ClientConsumer | Sent::ClientProducer => {
            let (ring, guid, fd) = reg.region(capacity as usize);
            let (p, c) = legacy_dp::new_pipe_states(options(capacity), 7, guid).unwrap();
            let (ours, theirs) = w.client.create_pipe().unwrap();
            let producer = matches!(sent, Sent::ClientProducer);
            let end = DataPipeEnd {
                state: if producer { p } else { c },
                control_port: theirs,
                ring: fd,
            };
            let h = if producer {
                Handle::DataPipeProducer(end)
            } else {
                Handle::DataPipeConsumer(end)
            };
            let kept = if producer {
                Outer::ClientConsumer(legacy_dp::DataPipeConsumer::new(&c, ring).unwrap(), ours)
            } else {
                Outer::ClientProducer(legacy_dp::DataPipeProducer::new(&p, ring).unwrap(), ours)
            };
            w.client.write_message(port, b"pipe", vec![h]).unwrap();
            w.run();
            let mut got = w.host_take(portal);
            assert_eq!(got.len(), 1);
            let parcel = got.pop().unwrap();
            assert_eq!(parcel.data, b"pipe");
            let mut handles = parcel.handles.into_iter();
            let (object, control) = match (handles.next(), handles.next(), handles.next()) {
                (Some(IpczHandle::Object(b)), Some(IpczHandle::Portal(r)), None) => {
                    match b.object() {
                        DriverObject::DataPipe(d) => (*d, r),
                        other => panic!("expected a data pipe, got {other:?}"),
                    }
                }
                other => panic!("expected a box and a portal, got {other:?}"),
            };
            assert_eq!(object.buffer.buffer_size, capacity);
            let ring = reg.get(object.buffer.guid);
            let arrived = if producer {
                assert_eq!(object.endpoint_type, DataPipeEndpointType::PRODUCER);
                Outer::HostProducer(
                    ipcz_dp::DataPipeProducer::new(&object, ring).unwrap(),
                    control,
                )
            } else {
                assert_eq!(object.endpoint_type, DataPipeEndpointType::CONSUMER);
                Outer::HostConsumer(
                    ipcz_dp::DataPipeConsumer::new(&object, ring).unwrap(),
                    control,
                )
            };
            if producer {
                (arrived, kept)
            } else {
                (kept, arrived)
            }
        }
        Sent::HostConsumer | Sent::HostProducer => {
            let (ring, guid, fd) = reg.region(capacity as usize);
            let buffer = SharedBuffer {
                buffer_size: capacity,
                mode: RegionMode::Unsafe,
                guid,
            };
            let (p, c) = ipcz_dp::new_pipe_objects(1, buffer).unwrap();
            let (ours, theirs) = w.host.create_portal_pair();
            let producer = matches!(sent, Sent::HostProducer);
            let object = if producer { p } else { c };
            let b = DriverBox::new(DriverObject::DataPipe(object), vec![fd]).unwrap();
            let kept = if producer {
                Outer::HostConsumer(ipcz_dp::DataPipeConsumer::new(&c, ring).unwrap(), ours)
            } else {
                Outer::HostProducer(ipcz_dp::DataPipeProducer::new(&p, ring).unwrap(), ours)
            };
            w.host
                .put(
                    portal,
                    b"pipe".to_vec(),
                    vec![IpczHandle::Object(b), IpczHandle::Portal(theirs)],
                )
                .unwrap();
            w.run();
            let mut got = w.client_take(port);
            assert_eq!(got.len(), 1);
            let (bytes, mut handles) = got.pop().unwrap();
            assert_eq!(bytes, b"pipe");
            assert_eq!(handles.len(), 1);
            let arrived = match (handles.pop().unwrap(), producer) {
                (Handle::DataPipeProducer(end), true) => {
                    assert_eq!(end.state.options.capacity_num_bytes, capacity);
                    let ring = reg.get(end.state.buffer_guid);
                    Outer::ClientProducer(
                        legacy_dp::DataPipeProducer::new(&end.state, ring).unwrap(),
                        end.control_port,
                    )
                }
                (Handle::DataPipeConsumer(end), false) => {
                    let ring = reg.get(end.state.buffer_guid);
                    Outer::ClientConsumer(
                        legacy_dp::DataPipeConsumer::new(&end.state, ring).unwrap(),
                        end.control_port,
                    )
                }
                (other, _) => panic!("expected the matching end, got {other:?}"),
            };
            if producer {
                (arrived, kept)
            } else {
                (kept, arrived)
            }
        }
    }
}

/// Writes `total` pattern bytes in `writes`-sized chunks and reads them in
/// `reads`-sized ones; returns what was read.
fn transfer(
    w: &mut World,
    writer: &mut Outer,
    reader: &mut Outer,
    total: usize,
    writes: &[usize],
    reads: &[usize],
) -> Vec<u8> {
    let (mut sent, mut got) = (0, Vec::with_capacity(total));
    let mut buf = vec![0; 1 << 17];
    let mut steps = 0;
    while got.len() < total {
        steps += 1;
        assert!(steps < 1_000_000, "stuck at {} of {total}", got.len());
        let n = writes[steps % writes.len()].min(total - sent);
        let data: Vec<u8> = (sent..sent + n).map(pattern).collect();
        sent += writer.write(&data);
        writer.sync(w);
        reader.sync(w);
        let r = reads[steps % reads.len()].min(buf.len());
        let k = reader.read(&mut buf[..r]);
        got.extend_from_slice(&buf[..k]);
        reader.sync(w);
        writer.sync(w);
    }
    got
}

fn check(got: &[u8], total: usize) {
    assert_eq!(got.len(), total);
    assert!(got.iter().enumerate().all(|(i, b)| *b == pattern(i)));
}

/// 1 MiB through 64 KiB rings, the writer closing with data pending; the
/// reader sees every byte then closure; nothing and no fd is left.
fn mib_then_writer_closes(sent: Sent) {
    let reg = Registry::default();
    let mut w = world(&reg);
    let (mut writer, mut reader) = open(&mut w, &reg, sent, RING);
    assert_eq!(w.bridge.data_pipe_count(), 1);
    // The reader takes less per step than the writer offers, so the rings
    // fill and the writer is held back; it closes with data pending.
    let (mut sent_n, mut got) = (0, Vec::with_capacity(MIB));
    let mut buf = vec![0; 1 << 17];
    while sent_n < MIB {
        let n = (sent_n + 5000).min(MIB);
        let chunk: Vec<u8> = (sent_n..n).map(pattern).collect();
        sent_n += writer.write(&chunk);
        writer.sync(&mut w);
        reader.sync(&mut w);
        let k = reader.read(&mut buf[..4000]);
        got.extend_from_slice(&buf[..k]);
        reader.sync(&mut w);
    }
    assert!(got.len() < MIB, "data still pending at closure");
    writer.close(&mut w);
    for _ in 0..10_000 {
        reader.sync(&mut w);
        let k = reader.read(&mut buf);
        got.extend_from_slice(&buf[..k]);
        if k == 0 && reader.drained() {
            break;
        }
    }
    assert!(reader.drained());
    check(&got, MIB);
    assert_eq!(w.bridge.data_pipe_count(), 0, "the bridge closed its ends");
    assert_eq!(w.bridge.data_pipe_ring_bytes(), 0);
    reader.close(&mut w);
    w.close_attachments();
    w.assert_nothing_left();
    assert!(reg.all_fds_closed(), "ring fds closed");
    assert!(w.untranslatable().is_empty());
}

#[test]
fn client_consumer_carries_a_mib_client_to_host_then_closes() {
    mib_then_writer_closes(Sent::ClientConsumer);
}

#[test]
fn client_producer_carries_a_mib_host_to_client_then_closes() {
    mib_then_writer_closes(Sent::ClientProducer);
}

#[test]
fn host_consumer_carries_a_mib_host_to_client_then_closes() {
    mib_then_writer_closes(Sent::HostConsumer);
}

#[test]
fn host_producer_carries_a_mib_client_to_host_then_closes() {
    mib_then_writer_closes(Sent::HostProducer);
}

/// The reader closes while the writer still has bytes in flight: the
/// writer sees its peer closed, the bridge lets go of the pipe.
fn reader_closes_with_data_pending(sent: Sent) {
    let reg = Registry::default();
    let mut w = world(&reg);
    let (mut writer, reader) = open(&mut w, &reg, sent, 4096);
    let data: Vec<u8> = (0..4096).map(pattern).collect();
    assert_eq!(writer.write(&data), 4096);
    writer.sync(&mut w);
    assert_eq!(
        writer.write(&data),
        4096,
        "the bridge emptied the first ring"
    );
    writer.sync(&mut w);
    reader.close(&mut w);
    writer.sync(&mut w);
    assert!(writer.peer_closed());
    assert_eq!(writer.write(b"more"), 0);
    assert_eq!(w.bridge.data_pipe_count(), 0);
    writer.close(&mut w);
    w.close_attachments();
    w.assert_nothing_left();
    assert!(reg.all_fds_closed());
}

#[test]
fn reader_closure_reaches_every_kind_of_writer() {
    for sent in [
        Sent::ClientConsumer,
        Sent::ClientProducer,
        Sent::HostConsumer,
        Sent::HostProducer,
    ] {
        reader_closes_with_data_pending(sent);
    }
}

#[test]
fn a_pipe_over_the_limits_is_untranslatable_and_the_pipe_still_works() {
    let reg = Registry::default();
    let mut w = world(&reg);
    let (_, guid, fd) = reg.region(16);
    let big = MAX_DATA_PIPE_CAPACITY + 1;
    let (_, c) = legacy_dp::new_pipe_states(options(big), 1, guid).unwrap();
    let (ours, theirs) = w.client.create_pipe().unwrap();
    let end = DataPipeEnd {
        state: c,
        control_port: theirs,
        ring: fd,
    };
    let port = w.client_ends[0];
    w.client
        .write_message(port, b"big", vec![Handle::DataPipeConsumer(end)])
        .unwrap();
    w.run();
    let got = w.host_take(w.host_portal(0));
    assert_eq!(got.len(), 1);
    assert!(got[0].handles.is_empty());
    assert_eq!(
        w.untranslatable(),
        vec![(
            Side::Legacy,
            Untranslatable::DataPipeMemory {
                capacity: u64::from(big),
                in_use: 0
            }
        )]
    );
    // The client's end of the control pipe sees its peer gone.
    assert!(w.client.read_message(ours).is_err());
    w.client.close_port(ours).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
    assert!(reg.all_fds_closed());
}

#[test]
fn without_ring_memory_data_pipes_stay_untranslatable() {
    let reg = Registry::default();
    let mut w = World::new(Attachments::Numbered(1), 2);
    assert!(!w.bridge.translates_data_pipes());
    let (_, guid, fd) = reg.region(64);
    let (p, _) = legacy_dp::new_pipe_states(options(64), 1, guid).unwrap();
    let (ours, theirs) = w.client.create_pipe().unwrap();
    let end = DataPipeEnd {
        state: p,
        control_port: theirs,
        ring: fd,
    };
    let port = w.client_ends[0];
    w.client
        .write_message(port, b"p", vec![Handle::DataPipeProducer(end)])
        .unwrap();
    w.run();
    assert_eq!(
        w.untranslatable(),
        vec![(
            Side::Legacy,
            Untranslatable::LegacyDataPipe { producer: true }
        )]
    );
    w.client.close_port(ours).unwrap();
    w.close_attachments();
    w.assert_nothing_left();
    assert!(reg.all_fds_closed());
}

fn sent_kind() -> impl Strategy<Value = Sent> {
    prop_oneof![
        Just(Sent::ClientConsumer),
        Just(Sent::ClientProducer),
        Just(Sent::HostConsumer),
        Just(Sent::HostProducer),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random ring sizes and chunkings deliver every byte in order, then
    /// closure, for every end kind.
    #[test]
    fn random_chunks_deliver_every_byte(
        sent in sent_kind(),
        capacity in 1u32..3000,
        total in 0usize..20_000,
        writes in proptest::collection::vec(1usize..5000, 1..8),
        reads in proptest::collection::vec(1usize..5000, 1..8),
    ) {
        let reg = Registry::default();
        let mut w = world(&reg);
        let (mut writer, mut reader) = open(&mut w, &reg, sent, capacity);
        let got = transfer(&mut w, &mut writer, &mut reader, total, &writes, &reads);
        writer.close(&mut w);
        reader.sync(&mut w);
        let mut buf = [0; 64];
        prop_assert_eq!(reader.read(&mut buf), 0);
        check(&got, total);
        prop_assert!(reader.drained());
        prop_assert_eq!(w.bridge.data_pipe_count(), 0);
        reader.close(&mut w);
        w.close_attachments();
        w.assert_nothing_left();
        prop_assert!(reg.all_fds_closed());
    }
}
