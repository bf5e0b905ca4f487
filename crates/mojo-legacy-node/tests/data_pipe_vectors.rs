//! Golden replay of real legacy data pipes: `shm/*/shm_datapipe_direct_legacy-
//! host_client.jsonl` records 1 MiB each way through a 64 KiB legacy data
//! pipe between a real Chromium host (broker) and client, with the ring
//! buffer snapshotted (`shared/vectors/shm/README.md`).
//!
//! For every data pipe consumer that travels in the recording, the replay
//! builds a [`DataPipeConsumer`] from the dispatcher state exactly as it was
//! received, over the snapshotted ring, and plays the real consumer's part:
//! the producer's `DATA_WAS_WRITTEN` messages go to `handle_control`, and at
//! each `DATA_WAS_READ` the real consumer sent, ours reads that many bytes
//! and must get the bytes the scenario wrote (`datapipe_h2c`:
//! `PatternByte(i, 1)`, `datapipe_c2h`: `PatternByte(i, 2)`, test-peers.md)
//! and emit the same control payload, byte for byte.
//!
//! A [`DataPipeProducer`] plays the other side over a private ring: at each
//! `DATA_WAS_WRITTEN` the real producer sent, ours writes that many pattern
//! bytes, which must fit, must be announced with the same payload and must
//! land at the ring offsets where the real bytes are; each real
//! `DATA_WAS_READ` gives the room back.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use mojo_legacy_node::data_pipe::{DataPipeConsumer, DataPipeProducer, new_pipe_states};
use mojo_legacy_wire::event::{Event, EventData};
use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame, NodeMessage};
use mojo_legacy_wire::user_message::{
    DataPipeCommand, DataPipeControlMessage, DataPipeState, Dispatcher, UserMessage,
};
use mojo_legacy_wire::{Deframer, EventHeaderForm, PortName};
use mojo_transcript::Direction;
use mojo_transcript::shm::{Changes, Line, parse};
use mojo_wire_kit::{HeapMemory, SharedMemory};
use support::Shared;
use support::shm_vectors::legacy_data_pipe_recordings;

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

fn opposite(d: Direction) -> Direction {
    match d {
        Direction::AToB => Direction::BToA,
        Direction::BToA => Direction::AToB,
    }
}

/// One data pipe whose consumer end travelled in the recording.
struct Pipe {
    /// Direction the consumer travelled, and so its control messages come.
    dir: Direction,
    /// The consumer's control port on its new node.
    consumer_port: PortName,
    /// The producer's control port (the transferred port's peer).
    producer_port: PortName,
    state: DataPipeState,
    /// Chunk fd the ring arrived as, until its `map` line is seen.
    ring_fd: Option<(u32, Direction, usize)>,
    consumer: Option<DataPipeConsumer<Shared>>,
    /// Our producer, playing the real producer's part over a private ring.
    producer: Option<DataPipeProducer<HeapMemory>>,
    /// Control messages by sequence number, delivered in order.
    reorder: BTreeMap<u64, Vec<u8>>,
    next_seq: u64,
    closed_after: Option<u64>,
    written: u64,
    read: usize,
    acks: usize,
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
        let consumer = self.consumer.as_mut().expect("ring mapped before control");
        let producer = self.producer.as_mut().expect("ring mapped before control");
        let pattern = if self.dir == Direction::AToB {
            pattern_1
        } else {
            pattern_2
        };
        while let Some(payload) = self.reorder.remove(&self.next_seq) {
            // Our producer writes what the real one announces here: the
            // room must be there, the announcement must be the real one,
            // and the bytes must land where the real ones did.
            let recorded = DataPipeControlMessage::decode(&payload).unwrap();
            let at = producer.write_offset();
            let data: Vec<u8> = (0..recorded.num_bytes as usize)
                .map(|k| pattern(self.written as usize + k))
                .collect();
            assert_eq!(producer.write(&data).unwrap(), data.len());
            assert_eq!(producer.poll_control_payload(), Some(payload.clone()));
            assert_eq!(
                ring_bytes(producer.ring(), at, data.len()),
                ring_bytes(consumer.ring(), at, data.len())
            );
            let n = consumer
                .handle_control(&payload)
                .expect("the real producer's control message");
            self.written += u64::from(n);
            self.next_seq += 1;
        }
        if self.closed_after.is_some_and(|last| self.next_seq > last) {
            consumer.handle_peer_closed();
        }
    }

    /// The real consumer sent `payload`: read what it read, compare.
    fn replay_ack(&mut self, payload: &[u8]) {
        let recorded = DataPipeControlMessage::decode(payload).unwrap();
        assert_eq!(recorded.command, DataPipeCommand::DATA_WAS_READ);
        let pattern = self.pattern();
        let consumer = self.consumer.as_mut().expect("consumer built");
        let n = recorded.num_bytes as usize;
        let mut buf = vec![0; n];
        assert_eq!(consumer.read(&mut buf).unwrap(), n, "ack {}", self.acks);
        for (k, b) in buf.iter().enumerate() {
            assert_eq!(*b, pattern(self.read + k), "byte {}", self.read + k);
        }
        self.read += n;
        self.acks += 1;
        assert_eq!(consumer.poll_control_payload().as_deref(), Some(payload));
        let producer = self.producer.as_mut().expect("producer built");
        assert_eq!(producer.handle_control(payload), Ok(n as u32));
        assert_eq!(consumer.poll_control(), None);
    }
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

fn apply(region: &Shared, changes: &Changes) {
    for (offset, bytes) in changes {
        region.write(*offset, bytes).unwrap();
    }
}

#[derive(Default)]
struct Replay {
    pipes: Vec<Pipe>,
    regions: HashMap<usize, Shared>,
    deframers: HashMap<(u32, Direction), Deframer>,
    form: EventHeaderForm,
}

impl Replay {
    fn chunk(&mut self, chan: u32, dir: Direction, bytes: &[u8]) {
        // Channel 0 is the broker bootstrap socket, not a node channel.
        if chan == 0 {
            return;
        }
        let mut deframer = self.deframers.remove(&(chan, dir)).unwrap_or_default();
        deframer.push(bytes).unwrap();
        while let Some(d) = deframer.next_frame().unwrap() {
            let node = NodeFrame::from_frame(&d.frame).unwrap();
            let NodeChannelContent::Message(NodeMessage::EventMessage(body)) = node.content else {
                continue;
            };
            let event = Event::decode(body, self.form).unwrap();
            self.event(chan, dir, &event);
        }
        self.deframers.insert((chan, dir), deframer);
    }

    fn event(&mut self, chan: u32, dir: Direction, event: &Event<'_>) {
        match &event.data {
            EventData::UserMessage(m) => {
                let user = UserMessage::decode(m.message).unwrap();
                let (mut port, mut fd) = (0usize, 0usize);
                for dispatcher in &user.dispatchers {
                    if let Dispatcher::DataPipeConsumer(state) = dispatcher {
                        let attached = m.ports[port];
                        self.pipes.push(Pipe {
                            dir,
                            consumer_port: attached.name,
                            producer_port: attached.descriptor.peer_port_name,
                            state: *state,
                            ring_fd: Some((chan, dir, fd)),
                            consumer: None,
                            producer: None,
                            reorder: BTreeMap::new(),
                            next_seq: attached.descriptor.next_sequence_num_to_receive,
                            closed_after: None,
                            written: u64::from(state.available),
                            read: 0,
                            acks: 0,
                        });
                    }
                    port += dispatcher.num_ports() as usize;
                    fd += dispatcher.num_platform_handles() as usize;
                }
                for pipe in &mut self.pipes {
                    if pipe.dir == dir && event.port_name == pipe.consumer_port {
                        pipe.reorder.insert(m.sequence_num, user.payload.to_vec());
                        pipe.deliver_in_order();
                    } else if pipe.dir == opposite(dir) && event.port_name == pipe.producer_port {
                        pipe.replay_ack(user.payload);
                    }
                }
            }
            EventData::ObserveClosure { last_sequence_num } => {
                for pipe in &mut self.pipes {
                    if pipe.dir == dir && event.port_name == pipe.consumer_port {
                        pipe.closed_after = Some(*last_sequence_num);
                        pipe.deliver_in_order();
                    }
                }
            }
            _ => {}
        }
    }

    fn map(&mut self, shm: usize, at: (u32, Direction, usize), size: usize, changes: &Changes) {
        let region = Shared(Rc::new(HeapMemory::new(size)));
        apply(&region, changes);
        for pipe in &mut self.pipes {
            if pipe.ring_fd == Some(at) {
                pipe.ring_fd = None;
                let consumer = DataPipeConsumer::new(&pipe.state, region.clone())
                    .expect("the real dispatcher state");
                // Sent on again at once, it would travel as it came.
                assert_eq!(consumer.serialize(), Ok(pipe.state));
                pipe.consumer = Some(consumer);
                // The producer's state follows from the consumer's: it wrote
                // what the consumer may read, right after it.
                let capacity = pipe.state.options.capacity_num_bytes;
                let (producer_state, _) = new_pipe_states(
                    pipe.state.options,
                    pipe.state.pipe_id,
                    pipe.state.buffer_guid,
                )
                .unwrap();
                let producer_state = DataPipeState {
                    offset: ((u64::from(pipe.state.offset) + u64::from(pipe.state.available))
                        % u64::from(capacity)) as u32,
                    available: capacity - pipe.state.available,
                    ..producer_state
                };
                pipe.producer = Some(
                    DataPipeProducer::new(&producer_state, HeapMemory::new(capacity as usize))
                        .unwrap(),
                );
            }
        }
        self.regions.insert(shm, region);
    }
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn both_ends_replay_real_legacy_data_pipes() {
    let files = legacy_data_pipe_recordings();
    assert!(
        !files.is_empty(),
        "no legacy data pipe recordings in the vectors"
    );
    for (path, desktop) in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = parse(&text).unwrap();
        let mut replay = Replay {
            form: if desktop {
                EventHeaderForm::Extended
            } else {
                EventHeaderForm::Compact
            },
            ..Replay::default()
        };
        for line in &lines {
            match line {
                Line::Chunk {
                    chan, dir, bytes, ..
                } => replay.chunk(*chan, *dir, bytes),
                Line::Map {
                    shm,
                    chan,
                    dir,
                    fd_index,
                    size,
                    changes,
                } => replay.map(*shm, (*chan, *dir, *fd_index), *size, changes),
                Line::Diff { shm, changes } => apply(&replay.regions[shm], changes),
            }
        }
        let name = path.display();
        assert_eq!(replay.pipes.len(), 2, "{name}: one pipe each way");
        for pipe in &mut replay.pipes {
            assert_eq!(pipe.state.options.capacity_num_bytes, 64 * 1024, "{name}");
            assert_eq!(pipe.written, TOTAL as u64, "{name}: {:?} written", pipe.dir);
            assert!(pipe.reorder.is_empty(), "{name}: control messages left");
            assert!(pipe.acks > 16, "{name}: the ring wrapped");
            // A consumer's last DATA_WAS_READ after the producer closed is
            // not sent (the ports layer drops messages to a closed peer), so
            // the recording ends with bytes read but not acknowledged: read
            // them here.
            let acknowledged = pipe.read;
            let pattern = pipe.pattern();
            let consumer = pipe.consumer.as_mut().expect("ring mapped");
            let mut rest = vec![0; consumer.bytes_available() as usize];
            assert_eq!(consumer.read(&mut rest).unwrap(), rest.len());
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
            eprintln!(
                "{name}: {:?} consumer read {TOTAL} bytes, {acknowledged} of them in {} acks \
                 matching the real ones; producer closed: {}",
                pipe.dir,
                pipe.acks,
                consumer.is_peer_closed()
            );
        }
    }
}
