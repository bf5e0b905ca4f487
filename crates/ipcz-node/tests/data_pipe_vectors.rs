//! Golden replay of real MojoIpcz data pipes: `shm/*/shm_datapipe_direct_ipcz-
//! host_client.jsonl` records 1 MiB each way through a 64 KiB data pipe
//! between a real Chromium host (broker) and a Mojo+ipcz client, with the
//! NodeLinkMemory and the rings snapshotted (`shared/vectors/shm/README.md`).
//!
//! For every DataPipe consumer object that travels in a parcel, the replay
//! finds its control portal (the trailing portal of spec §8.3) and that
//! portal's sublink, builds a [`DataPipeConsumer`] from the object exactly
//! as received, over the snapshotted ring, and plays the real consumer's
//! part: the producer's 4-byte parcels (inline or in link-memory fragments)
//! go to `handle_control` in sequence order, RouteClosed becomes peer
//! closure once its sequence length is reached, and at each parcel the real
//! consumer put, ours reads that many bytes, must get the bytes the scenario
//! wrote (`datapipe_h2c`: `PatternByte(i, 1)`, `datapipe_c2h`:
//! `PatternByte(i, 2)`, test-peers.md) and must put the same 4 bytes.
//!
//! A [`DataPipeProducer`] plays the other side over a private ring: at each
//! parcel the real producer put, ours writes that many pattern bytes, which
//! must fit, must be announced with the same 4 bytes and must land at the
//! ring offsets where the real bytes are; each real consumed count gives
//! the room back.

mod memory_support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use ipcz_node::data_pipe::{DataPipeConsumer, DataPipeProducer};
use ipcz_node::memory::{MemoryOptions, NodeLinkMemory, Resolved};
use ipcz_wire::driver_object::{DataPipe, DataPipeEndpointType, DriverObject};
use ipcz_wire::frame::Deframer;
use ipcz_wire::message::Message;
use ipcz_wire::messages::Body;
use ipcz_wire::types::{DriverObjectIndex, HandleType, SublinkId};
use memory_support::Shared;
use mojo_transcript::Direction;
use mojo_transcript::shm::{Line, parse};
use mojo_wire_kit::{HeapMemory, SharedMemory};

/// Bytes each way in the `datapipe` scenario (test-peers.md).
const TOTAL: usize = 1 << 20;

/// `PatternByte(i, 1)`: what the host writes in `datapipe_h2c`.
fn pattern_1(i: usize) -> u8 {
    (i.wrapping_mul(11).wrapping_add(7) % 256) as u8
}

/// `PatternByte(i, 2)`: what the client writes in `datapipe_c2h`.
fn pattern_2(i: usize) -> u8 {
    (i.wrapping_mul(5).wrapping_add(1).wrapping_add(i >> 12) % 256) as u8
}

/// The ipcz data pipe recordings, sorted (panics without the vectors:
/// `mojo_transcript::testing::vectors`).
fn recordings() -> Vec<PathBuf> {
    let dir = mojo_transcript::testing::vectors();
    let mut files = Vec::new();
    for profile in ["cros", "desktop"] {
        let Ok(entries) = std::fs::read_dir(dir.join("shm").join(profile)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".jsonl") && name.contains("datapipe") && name.contains("ipcz") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `len` ring bytes from `offset`, wrapping at the ring's end.
fn ring_bytes(ring: &impl SharedMemory, offset: u32, len: usize) -> Vec<u8> {
    let size = ring.size();
    (0..len)
        .map(|k| {
            let mut b = [0];
            ring.read((offset as usize + k) % size, &mut b).unwrap();
            b[0]
        })
        .collect()
}

/// One data pipe whose consumer end travelled in the recording.
struct Pipe {
    chan: u32,
    /// Direction the consumer travelled, and so its producer's parcels come.
    dir: Direction,
    /// The control portal's sublink on that link.
    sublink: SublinkId,
    consumer: DataPipeConsumer<Shared>,
    /// Our producer, playing the real producer's part over a private ring.
    producer: DataPipeProducer<HeapMemory>,
    reorder: BTreeMap<u64, (Vec<u8>, usize)>,
    next_seq: u64,
    closed_at: Option<u64>,
    written: usize,
    read: usize,
    acks: usize,
    next_ack_seq: u64,
}

impl Pipe {
    fn pattern(&self) -> fn(usize) -> u8 {
        // h2c consumers travel host (A) to client (B).
        if self.dir == Direction::AToB {
            pattern_1
        } else {
            pattern_2
        }
    }

    fn deliver_in_order(&mut self) {
        let pattern = self.pattern();
        while let Some((parcel, num_handles)) = self.reorder.remove(&self.next_seq) {
            // Our producer writes what the real one announces here: the
            // room must be there, the parcel must be the real one, and the
            // bytes must land where the real ones did.
            let bytes: [u8; 4] = parcel.as_slice().try_into().expect("4-byte parcel");
            let at =
                (self.producer.offset() + self.producer.unconsumed()) % self.producer.capacity();
            let data: Vec<u8> = (0..u32::from_le_bytes(bytes) as usize)
                .map(|k| pattern(self.written + k))
                .collect();
            assert_eq!(self.producer.write(&data).unwrap(), data.len());
            assert_eq!(self.producer.poll_control_parcel(), Some(bytes));
            assert_eq!(
                ring_bytes(self.producer.ring(), at, data.len()),
                ring_bytes(self.consumer.ring(), at, data.len())
            );
            let n = self
                .consumer
                .handle_control(&parcel, num_handles)
                .expect("the real producer's parcel");
            assert_ne!(n, 0, "zero counts are never sent");
            self.written += n as usize;
            self.next_seq += 1;
        }
        if self.closed_at.is_some_and(|len| self.next_seq >= len) {
            self.consumer.handle_peer_closed();
        }
    }

    /// The real consumer put `parcel`: read what it read, compare.
    fn replay_ack(&mut self, sequence_number: u64, parcel: &[u8]) {
        assert_eq!(sequence_number, self.next_ack_seq, "acks in order");
        self.next_ack_seq += 1;
        let bytes: [u8; 4] = parcel.try_into().expect("4-byte parcel");
        let n = u32::from_le_bytes(bytes) as usize;
        let mut buf = vec![0; n];
        assert_eq!(
            self.consumer.read(&mut buf).unwrap(),
            n,
            "ack {}",
            self.acks
        );
        let pattern = self.pattern();
        for (k, b) in buf.iter().enumerate() {
            assert_eq!(*b, pattern(self.read + k), "byte {}", self.read + k);
        }
        self.read += n;
        self.acks += 1;
        assert_eq!(self.consumer.poll_control_parcel(), Some(bytes));
        assert_eq!(self.producer.handle_control(&bytes, 0), Ok(n as u32));
        assert_eq!(self.consumer.poll_control(), None);
    }
}

struct Stream {
    deframer: Deframer,
    /// (stream offset, length, line) of each chunk that brought fds.
    fd_chunks: Vec<(u64, u64, usize)>,
    len: u64,
}

struct Replay<'a> {
    lines: &'a [Line],
    regions: BTreeMap<usize, Shared>,
    /// For a chunk line with fds: fd index → region mapped from it.
    maps_after: BTreeMap<usize, BTreeMap<usize, usize>>,
    links: BTreeMap<u32, NodeLinkMemory<Shared>>,
    streams: BTreeMap<(u32, Direction), Stream>,
    pipes: Vec<Pipe>,
}

impl<'a> Replay<'a> {
    fn new(lines: &'a [Line]) -> Self {
        let mut regions = BTreeMap::new();
        let mut maps_after: BTreeMap<usize, BTreeMap<usize, usize>> = BTreeMap::new();
        let mut last_fd_chunk = BTreeMap::new();
        for (i, line) in lines.iter().enumerate() {
            match line {
                Line::Chunk {
                    chan, dir, nfds, ..
                } if *nfds > 0 => {
                    last_fd_chunk.insert((*chan, *dir), i);
                }
                Line::Map {
                    shm,
                    chan,
                    dir,
                    fd_index,
                    size,
                    ..
                } => {
                    regions.insert(*shm, Shared::new(HeapMemory::new(*size)));
                    let chunk = last_fd_chunk[&(*chan, *dir)];
                    maps_after.entry(chunk).or_default().insert(*fd_index, *shm);
                }
                _ => {}
            }
        }
        Self {
            lines,
            regions,
            maps_after,
            links: BTreeMap::new(),
            streams: BTreeMap::new(),
            pipes: Vec::new(),
        }
    }

    fn run(&mut self) {
        for i in 0..self.lines.len() {
            match &self.lines[i] {
                Line::Map { shm, changes, .. } | Line::Diff { shm, changes } => {
                    for (offset, bytes) in changes {
                        self.regions[shm].heap.write(*offset, bytes).unwrap();
                    }
                }
                Line::Chunk {
                    chan,
                    dir,
                    bytes,
                    nfds,
                    ..
                } => {
                    let stream = self.streams.entry((*chan, *dir)).or_insert_with(|| Stream {
                        deframer: Deframer::new(),
                        fd_chunks: Vec::new(),
                        len: 0,
                    });
                    if *nfds > 0 {
                        stream.fd_chunks.push((stream.len, bytes.len() as u64, i));
                    }
                    stream.len += bytes.len() as u64;
                    stream.deframer.push(bytes).unwrap();
                    let mut frames = Vec::new();
                    while let Some((offset, frame)) = stream.deframer.next_frame().unwrap() {
                        let fd_line = stream
                            .fd_chunks
                            .iter()
                            .find(|(start, len, _)| (*start..start + len).contains(&offset))
                            .map(|c| c.2);
                        frames.push((
                            frame.payload.to_vec(),
                            usize::from(frame.header.num_handles),
                            fd_line,
                        ));
                    }
                    for (payload, num_fds, fd_line) in frames {
                        let message = Message::decode(&payload, num_fds).unwrap();
                        self.on_message(*chan, *dir, &message, fd_line);
                    }
                }
            }
        }
    }

    fn region_of(&self, message: &Message<'_>, index: usize, fd_line: Option<usize>) -> usize {
        let object = &message.driver_objects[index];
        self.maps_after[&fd_line.expect("fds")][&usize::from(object.fds.first)]
    }

    fn add_link(
        &mut self,
        chan: u32,
        message: &Message<'_>,
        buffer: DriverObjectIndex,
        fd_line: Option<usize>,
    ) {
        let shm = self.region_of(message, buffer.get().unwrap(), fd_line);
        let memory = NodeLinkMemory::new(self.regions[&shm].clone(), MemoryOptions::default())
            .expect("primary buffer");
        self.links.insert(chan, memory);
    }

    fn on_message(
        &mut self,
        chan: u32,
        dir: Direction,
        message: &Message<'_>,
        fd_line: Option<usize>,
    ) {
        match &message.body {
            Body::ConnectFromBrokerToNonBroker(m) => {
                self.add_link(chan, message, m.buffer, fd_line)
            }
            Body::AddBlockBuffer(m) => {
                let shm = self.region_of(message, m.buffer.get().unwrap(), fd_line);
                let region = self.regions[&shm].clone();
                self.links
                    .get_mut(&chan)
                    .expect("link memory")
                    .add_block_buffer(m.id, m.block_size, region)
                    .unwrap();
            }
            Body::AcceptParcel(p) => {
                let data = if p.parcel_fragment.is_null() {
                    p.parcel_data.to_vec()
                } else {
                    match self.links[&chan].read_parcel_data(p.parcel_fragment) {
                        Ok(Resolved::Ready(data)) => data,
                        other => panic!("fragment {}: {other:?}", p.parcel_fragment),
                    }
                };
                self.new_pipes(
                    chan,
                    dir,
                    message,
                    p.handle_types.as_slice(),
                    &p.new_routers,
                    fd_line,
                );
                for pipe in &mut self.pipes {
                    if pipe.chan != chan || pipe.sublink != p.sublink {
                        continue;
                    }
                    if pipe.dir == dir {
                        pipe.reorder
                            .insert(p.sequence_number.0, (data.clone(), p.handle_types.len()));
                        pipe.deliver_in_order();
                    } else {
                        assert!(p.handle_types.is_empty());
                        pipe.replay_ack(p.sequence_number.0, &data);
                    }
                }
            }
            Body::RouteClosed(m) => {
                for pipe in &mut self.pipes {
                    if pipe.chan == chan && pipe.sublink == m.sublink && pipe.dir == dir {
                        pipe.closed_at = Some(m.sequence_length.0);
                        pipe.deliver_in_order();
                    }
                }
            }
            _ => {}
        }
    }

    /// Spec §8.3: the k DataPipe boxes of a parcel take the last k portals,
    /// in order, as their control portals.
    fn new_pipes(
        &mut self,
        chan: u32,
        dir: Direction,
        message: &Message<'_>,
        handle_types: &[HandleType],
        routers: &[ipcz_wire::router_descriptor::RouterDescriptor],
        fd_line: Option<usize>,
    ) {
        let pipes: Vec<usize> = (0..message.driver_objects.len())
            .filter(|&i| matches!(message.driver_objects[i].object, DriverObject::DataPipe(_)))
            .collect();
        if pipes.is_empty() {
            return;
        }
        let portals = handle_types
            .iter()
            .filter(|h| **h == HandleType::PORTAL)
            .count();
        assert_eq!(portals, routers.len());
        assert!(portals >= pipes.len());
        for (k, &object_index) in pipes.iter().enumerate() {
            let DriverObject::DataPipe(object) = message.driver_objects[object_index].object else {
                unreachable!()
            };
            assert_eq!(
                object.endpoint_type,
                DataPipeEndpointType::CONSUMER,
                "the scenario sends consumers"
            );
            let router = &routers[routers.len() - pipes.len() + k];
            let shm = self.region_of(message, object_index, fd_line);
            let consumer = DataPipeConsumer::new(&object, self.regions[&shm].clone())
                .expect("the real DataPipe object");
            // Sent on again at once, it would travel as it came.
            assert_eq!(consumer.serialize(), Ok(object));
            // The producer's range is the consumer's: written, not consumed.
            let producer_object = DataPipe {
                endpoint_type: DataPipeEndpointType::PRODUCER,
                ..object
            };
            let producer = DataPipeProducer::new(
                &producer_object,
                HeapMemory::new(object.buffer.buffer_size as usize),
            )
            .unwrap();
            self.pipes.push(Pipe {
                chan,
                dir,
                sublink: router.new_sublink,
                consumer,
                producer,
                reorder: BTreeMap::new(),
                next_seq: router.next_incoming_sequence_number.0,
                closed_at: None,
                written: object.ring_size as usize,
                read: 0,
                acks: 0,
                next_ack_seq: router.next_outgoing_sequence_number.0,
            });
        }
    }
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn both_ends_replay_real_ipcz_data_pipes() {
    let files = recordings();
    assert!(
        !files.is_empty(),
        "no ipcz data pipe recordings in the vectors"
    );
    for path in files {
        let name = path.display();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = parse(&text).unwrap();
        let mut replay = Replay::new(&lines);
        replay.run();
        assert_eq!(replay.pipes.len(), 2, "{name}: one pipe each way");
        for pipe in &mut replay.pipes {
            assert_eq!(pipe.consumer.capacity(), 64 * 1024, "{name}");
            assert_eq!(pipe.written, TOTAL, "{name}: {:?} written", pipe.dir);
            assert!(pipe.reorder.is_empty(), "{name}: parcels left");
            assert!(
                pipe.consumer.is_peer_closed(),
                "{name}: the producer closed"
            );
            assert!(pipe.acks > 16, "{name}: the ring wrapped");
            // Counts the consumer consumed after the producer closed may not
            // have been put (the portal's peer is gone): read the rest here.
            let acknowledged = pipe.read;
            let pattern = pipe.pattern();
            let mut rest = vec![0; pipe.consumer.bytes_available() as usize];
            assert_eq!(pipe.consumer.read(&mut rest).unwrap(), rest.len());
            for (k, b) in rest.iter().enumerate() {
                assert_eq!(
                    *b,
                    pattern(acknowledged + k),
                    "{name}: byte {}",
                    acknowledged + k
                );
            }
            assert_eq!(
                acknowledged + rest.len(),
                TOTAL,
                "{name}: {:?} read",
                pipe.dir
            );
            assert!(pipe.consumer.is_drained());
            eprintln!(
                "{name}: {:?} consumer read {TOTAL} bytes, {acknowledged} of them in {} \
                 parcels matching the real ones",
                pipe.dir, pipe.acks
            );
        }
    }
}
