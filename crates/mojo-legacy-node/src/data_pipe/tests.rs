//! Producer ⇄ consumer pairs over one heap ring: streams with wraparound,
//! transfer, closure with data in flight, hostile states and control
//! messages, and properties over random chunk sizes.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use mojo_legacy_wire::user_message::{
    DataPipeCommand, DataPipeControlMessage, DataPipeOptions, DataPipeState,
};
use mojo_wire_kit::{Guid, HeapMemory, SharedMemory, ShmAccessError};
use proptest::prelude::*;

use super::*;

/// One heap region seen by both ends, as two processes see one mapping.
#[derive(Clone, Debug)]
struct Shared(Rc<HeapMemory>);

impl Shared {
    fn new(size: usize) -> Self {
        Self(Rc::new(HeapMemory::new(size)))
    }
}

impl SharedMemory for Shared {
    fn size(&self) -> usize {
        self.0.size()
    }
    fn load_u32(&self, o: usize, m: Ordering) -> Result<u32, ShmAccessError> {
        self.0.load_u32(o, m)
    }
    fn load_u64(&self, o: usize, m: Ordering) -> Result<u64, ShmAccessError> {
        self.0.load_u64(o, m)
    }
    fn store_u32(&self, o: usize, v: u32, m: Ordering) -> Result<(), ShmAccessError> {
        self.0.store_u32(o, v, m)
    }
    fn store_u64(&self, o: usize, v: u64, m: Ordering) -> Result<(), ShmAccessError> {
        self.0.store_u64(o, v, m)
    }
    fn fetch_add_u32(&self, o: usize, v: u32, m: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_add_u32(o, v, m)
    }
    fn fetch_sub_u32(&self, o: usize, v: u32, m: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_sub_u32(o, v, m)
    }
    fn fetch_or_u32(&self, o: usize, v: u32, m: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_or_u32(o, v, m)
    }
    fn fetch_and_u32(&self, o: usize, v: u32, m: Ordering) -> Result<u32, ShmAccessError> {
        self.0.fetch_and_u32(o, v, m)
    }
    fn fetch_add_u64(&self, o: usize, v: u64, m: Ordering) -> Result<u64, ShmAccessError> {
        self.0.fetch_add_u64(o, v, m)
    }
    fn fetch_sub_u64(&self, o: usize, v: u64, m: Ordering) -> Result<u64, ShmAccessError> {
        self.0.fetch_sub_u64(o, v, m)
    }
    fn compare_exchange_u32(
        &self,
        o: usize,
        c: u32,
        n: u32,
        s: Ordering,
        f: Ordering,
    ) -> Result<Result<u32, u32>, ShmAccessError> {
        self.0.compare_exchange_u32(o, c, n, s, f)
    }
    fn compare_exchange_u64(
        &self,
        o: usize,
        c: u64,
        n: u64,
        s: Ordering,
        f: Ordering,
    ) -> Result<Result<u64, u64>, ShmAccessError> {
        self.0.compare_exchange_u64(o, c, n, s, f)
    }
    fn read(&self, o: usize, dst: &mut [u8]) -> Result<(), ShmAccessError> {
        self.0.read(o, dst)
    }
    fn write(&self, o: usize, src: &[u8]) -> Result<(), ShmAccessError> {
        self.0.write(o, src)
    }
}

fn options(element_num_bytes: u32, capacity_num_bytes: u32) -> DataPipeOptions {
    DataPipeOptions {
        struct_size: 16,
        flags: 0,
        element_num_bytes,
        capacity_num_bytes,
    }
}

const GUID: Guid = Guid::new(0x1234, 0x5678);

fn pair(
    element: u32,
    capacity: u32,
) -> (DataPipeProducer<Shared>, DataPipeConsumer<Shared>, Shared) {
    let (p, c) = new_pipe_states(options(element, capacity), 7, GUID).unwrap();
    let ring = Shared::new(capacity as usize);
    (
        DataPipeProducer::new(&p, ring.clone()).unwrap(),
        DataPipeConsumer::new(&c, ring.clone()).unwrap(),
        ring,
    )
}

/// `PatternByte(i, 1)` of test-peers.md.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(11).wrapping_add(7) % 256) as u8
}

/// Delivers every pending control message both ways; returns how many moved.
fn pump(producer: &mut DataPipeProducer<Shared>, consumer: &mut DataPipeConsumer<Shared>) -> usize {
    let mut moved = 0;
    loop {
        let mut any = false;
        if let Some(m) = producer.poll_control_payload() {
            consumer.handle_control(&m).unwrap();
            any = true;
        }
        if let Some(m) = consumer.poll_control_payload() {
            producer.handle_control(&m).unwrap();
            any = true;
        }
        if !any {
            return moved;
        }
        moved += 1;
    }
}

/// Moves `total` pattern bytes through a pair with the given write and read
/// chunk sizes, checking every byte; asserts nothing is left over.
fn stream(
    producer: &mut DataPipeProducer<Shared>,
    consumer: &mut DataPipeConsumer<Shared>,
    total: usize,
    write_chunk: usize,
    read_chunk: usize,
) {
    let source: Vec<u8> = (0..total).map(pattern).collect();
    let (mut sent, mut received) = (0, 0);
    let mut buf = vec![0; read_chunk];
    while received < total {
        let end = (sent + write_chunk).min(total);
        sent += producer.write(&source[sent..end]).unwrap();
        pump(producer, consumer);
        let n = consumer.read(&mut buf).unwrap();
        assert_eq!(buf[..n], source[received..received + n]);
        received += n;
        pump(producer, consumer);
    }
    assert_eq!((sent, received), (total, total));
    assert_eq!(consumer.bytes_available(), 0);
    assert_eq!(producer.available_capacity(), producer.capacity());
    assert_eq!(producer.poll_control(), None);
    assert_eq!(consumer.poll_control(), None);
}

#[test]
fn one_mebibyte_through_a_small_ring_with_wraparound() {
    let (mut producer, mut consumer, _ring) = pair(1, 4096);
    // Chunk sizes that do not divide the capacity, so copies straddle the end.
    stream(&mut producer, &mut consumer, 1 << 20, 1000, 777);
    assert_eq!(producer.write_offset(), consumer.read_offset());
    assert_eq!(producer.write_offset(), ((1u32 << 20) % 4096));
}

#[test]
fn one_mebibyte_each_way_on_two_pipes_at_once() {
    // A→B and B→A, interleaved step by step.
    let (mut p_ab, mut c_ab, _r1) = pair(1, 3000);
    let (mut p_ba, mut c_ba, _r2) = pair(4, 4096);
    let total = 1 << 20;
    let source: Vec<u8> = (0..total).map(pattern).collect();
    let (mut sent, mut got) = ([0usize; 2], [0usize; 2]);
    let mut buf = vec![0; 1500];
    while got != [total, total] {
        for (k, (p, c)) in [(&mut p_ab, &mut c_ab), (&mut p_ba, &mut c_ba)]
            .into_iter()
            .enumerate()
        {
            let end = (sent[k] + 2049).min(total);
            sent[k] += p.write(&source[sent[k]..end]).unwrap();
            pump(p, c);
            let n = c.read(&mut buf).unwrap();
            assert_eq!(buf[..n], source[got[k]..got[k] + n]);
            got[k] += n;
            pump(p, c);
        }
    }
    assert_eq!(sent, [total, total]);
}

#[test]
fn element_size_rounds_writes_and_reads_down() {
    let (mut producer, mut consumer, _ring) = pair(4, 16);
    assert_eq!(producer.write(&[1, 2, 3, 4, 5, 6]).unwrap(), 4);
    assert_eq!(producer.write(&[9; 3]).unwrap(), 0);
    pump(&mut producer, &mut consumer);
    let mut buf = [0; 3];
    assert_eq!(consumer.read(&mut buf).unwrap(), 0);
    let mut buf = [0; 7];
    assert_eq!(consumer.read(&mut buf).unwrap(), 4);
    assert_eq!(buf[..4], [1, 2, 3, 4]);
}

#[test]
fn writes_wait_for_the_consumers_acknowledgement() {
    let (mut producer, mut consumer, _ring) = pair(1, 8);
    assert_eq!(producer.write(&[1; 20]).unwrap(), 8);
    assert_eq!(producer.write(&[1; 20]).unwrap(), 0);
    pump(&mut producer, &mut consumer);
    let mut buf = [0; 3];
    consumer.read(&mut buf).unwrap();
    // Read, but not yet acknowledged: still no room.
    assert_eq!(producer.write(&[2; 20]).unwrap(), 0);
    pump(&mut producer, &mut consumer);
    assert_eq!(producer.write(&[2; 20]).unwrap(), 3);
}

#[test]
fn writes_since_the_last_poll_are_announced_once() {
    let (mut producer, _consumer, _ring) = pair(1, 64);
    producer.write(&[1; 5]).unwrap();
    producer.write(&[1; 6]).unwrap();
    assert_eq!(
        producer.poll_control(),
        Some(DataPipeControlMessage {
            command: DataPipeCommand::DATA_WAS_WRITTEN,
            num_bytes: 11,
        })
    );
    assert_eq!(producer.poll_control(), None);
}

#[test]
fn consumer_reads_what_was_written_before_the_producer_closed() {
    let (mut producer, mut consumer, ring) = pair(1, 64);
    let data: Vec<u8> = (0..50).map(pattern).collect();
    assert_eq!(producer.write(&data).unwrap(), 50);
    let announced = producer.poll_control_payload().unwrap();
    drop(producer.into_ring()); // the producer closes
    consumer.handle_control(&announced).unwrap();
    consumer.handle_peer_closed();
    assert!(consumer.is_peer_closed());
    assert!(!consumer.is_drained());
    let mut buf = [0; 30];
    assert_eq!(consumer.read(&mut buf).unwrap(), 30);
    assert_eq!(buf[..], data[..30]);
    assert_eq!(consumer.read(&mut buf).unwrap(), 20);
    assert_eq!(buf[..20], data[30..]);
    assert_eq!(consumer.read(&mut buf).unwrap(), 0);
    assert!(consumer.is_drained());
    drop(consumer.into_ring());
    // Nothing holds the ring any more.
    assert_eq!(Rc::strong_count(&ring.0), 1);
}

#[test]
fn producer_stops_writing_when_the_consumer_closes() {
    let (mut producer, mut consumer, _ring) = pair(1, 64);
    producer.write(&[1; 10]).unwrap();
    pump(&mut producer, &mut consumer);
    producer.handle_peer_closed();
    assert_eq!(producer.write(&[1]), Err(DataPipeError::PeerClosed));
    assert!(producer.is_peer_closed());
}

#[test]
fn ends_move_mid_stream_through_their_serialized_state() {
    let (mut producer, mut consumer, ring) = pair(1, 100);
    let source: Vec<u8> = (0..1000).map(pattern).collect();
    let (mut sent, mut got) = (0, 0);
    let mut buf = [0; 33];
    for round in 0..200 {
        if sent < source.len() {
            let end = (sent + 71).min(source.len());
            sent += producer.write(&source[sent..end]).unwrap();
        }
        pump(&mut producer, &mut consumer);
        let n = consumer.read(&mut buf).unwrap();
        assert_eq!(buf[..n], source[got..got + n]);
        got += n;
        // Unsent acknowledgements pin the end to this node.
        if n > 0 {
            assert_eq!(
                consumer.serialize(),
                Err(DataPipeError::UnsentControl {
                    num_bytes: n as u32
                })
            );
        }
        pump(&mut producer, &mut consumer);
        if round % 3 == 0 {
            // Move both ends: serialize, then rebuild from the state alone.
            let ps = producer.serialize().unwrap();
            let cs = consumer.serialize().unwrap();
            assert_eq!(
                (ps.pipe_id, ps.buffer_guid, cs.options),
                (7, GUID, options(1, 100))
            );
            drop(producer.into_ring());
            drop(consumer.into_ring());
            producer = DataPipeProducer::new(&ps, ring.clone()).unwrap();
            consumer = DataPipeConsumer::new(&cs, ring.clone()).unwrap();
        }
    }
    assert_eq!((sent, got), (1000, 1000));
}

#[test]
fn serialized_state_carries_peer_closure() {
    let (_producer, mut consumer, ring) = pair(1, 16);
    consumer.handle_peer_closed();
    let state = consumer.serialize().unwrap();
    assert_eq!(state.flags, DataPipeState::FLAG_PEER_CLOSED);
    let moved = DataPipeConsumer::new(&state, ring).unwrap();
    assert!(moved.is_drained());
}

fn control(command: DataPipeCommand, num_bytes: u32) -> Vec<u8> {
    let mut b = Vec::new();
    DataPipeControlMessage { command, num_bytes }
        .encode(&mut b)
        .unwrap();
    b
}

#[test]
fn hostile_control_messages_to_the_consumer_close_it() {
    let cases: [(Vec<u8>, DataPipeError); 5] = [
        (vec![0; 7], DataPipeError::ShortControlMessage { len: 7 }),
        (vec![], DataPipeError::ShortControlMessage { len: 0 }),
        (
            control(DataPipeCommand::DATA_WAS_READ, 1),
            DataPipeError::UnexpectedCommand {
                command: DataPipeCommand::DATA_WAS_READ,
            },
        ),
        (
            control(DataPipeCommand(77), 1),
            DataPipeError::UnexpectedCommand {
                command: DataPipeCommand(77),
            },
        ),
        (
            control(DataPipeCommand::DATA_WAS_WRITTEN, u32::MAX),
            DataPipeError::WrittenPastCapacity {
                num_bytes: u32::MAX,
                bytes_available: 10,
                capacity: 64,
            },
        ),
    ];
    for (payload, error) in cases {
        let (mut producer, mut consumer, _ring) = pair(1, 64);
        producer.write(&[5; 10]).unwrap();
        pump(&mut producer, &mut consumer);
        assert_eq!(consumer.handle_control(&payload), Err(error));
        assert!(consumer.is_peer_closed());
        // What was announced before stays readable, and no more.
        assert_eq!(consumer.bytes_available(), 10);
        let mut buf = [0; 64];
        assert_eq!(consumer.read(&mut buf).unwrap(), 10);
        assert!(consumer.is_drained());
    }
}

#[test]
fn overfilling_by_one_byte_is_refused() {
    let (mut producer, mut consumer, _ring) = pair(1, 64);
    producer.write(&[5; 60]).unwrap();
    pump(&mut producer, &mut consumer);
    assert!(matches!(
        consumer.handle_control(&control(DataPipeCommand::DATA_WAS_WRITTEN, 5)),
        Err(DataPipeError::WrittenPastCapacity { num_bytes: 5, .. })
    ));
    assert_eq!(consumer.bytes_available(), 60);
}

#[test]
fn hostile_control_messages_to_the_producer() {
    let (mut producer, _consumer, _ring) = pair(1, 64);
    producer.write(&[5; 10]).unwrap();
    // Giving back more than was written is ignored, the pipe stays open.
    assert_eq!(
        producer.handle_control(&control(DataPipeCommand::DATA_WAS_READ, 11)),
        Err(DataPipeError::ReadPastCapacity {
            num_bytes: 11,
            available_capacity: 54,
            capacity: 64,
        })
    );
    assert_eq!(
        producer.handle_control(&control(DataPipeCommand::DATA_WAS_READ, u32::MAX)),
        Err(DataPipeError::ReadPastCapacity {
            num_bytes: u32::MAX,
            available_capacity: 54,
            capacity: 64,
        })
    );
    assert!(!producer.is_peer_closed());
    assert_eq!(producer.available_capacity(), 54);
    // A longer payload is fine: bytes after the first 8 are ignored.
    let mut long = control(DataPipeCommand::DATA_WAS_READ, 4);
    long.extend_from_slice(&[0xff; 8]);
    assert_eq!(producer.handle_control(&long), Ok(4));
    // The consumer's command or a short payload closes.
    assert_eq!(
        producer.handle_control(&control(DataPipeCommand::DATA_WAS_WRITTEN, 1)),
        Err(DataPipeError::UnexpectedCommand {
            command: DataPipeCommand::DATA_WAS_WRITTEN
        })
    );
    assert!(producer.is_peer_closed());
    let (mut producer, _consumer, _ring) = pair(1, 64);
    assert_eq!(
        producer.handle_control(&[1, 0, 0]),
        Err(DataPipeError::ShortControlMessage { len: 3 })
    );
    assert_eq!(producer.write(&[1]), Err(DataPipeError::PeerClosed));
}

fn state(element: u32, capacity: u32, offset: u32, available: u32) -> DataPipeState {
    DataPipeState {
        options: options(element, capacity),
        pipe_id: 0,
        offset,
        available,
        flags: 0,
        buffer_guid: GUID,
    }
}

#[test]
fn hostile_states_are_refused() {
    let cases = [
        (state(0, 64, 0, 0), DataPipeError::ZeroElementSize),
        (
            state(1, 0, 0, 0),
            DataPipeError::InvalidCapacity {
                capacity: 0,
                element_num_bytes: 1,
            },
        ),
        (
            state(8, 4, 0, 0),
            DataPipeError::InvalidCapacity {
                capacity: 4,
                element_num_bytes: 8,
            },
        ),
        (
            state(1, 64, 64, 0),
            DataPipeError::OffsetOutOfRange {
                offset: 64,
                capacity: 64,
            },
        ),
        (
            state(1, 64, u32::MAX, 0),
            DataPipeError::OffsetOutOfRange {
                offset: u32::MAX,
                capacity: 64,
            },
        ),
        (
            state(1, 64, 0, 65),
            DataPipeError::CountOutOfRange {
                count: 65,
                capacity: 64,
            },
        ),
        (
            DataPipeState {
                buffer_guid: Guid::NONE,
                ..state(1, 64, 0, 0)
            },
            DataPipeError::ZeroBufferGuid,
        ),
        (
            state(1, u32::MAX, 0, 0),
            DataPipeError::RingTooSmall {
                ring_size: 64,
                capacity: u32::MAX,
            },
        ),
    ];
    for (s, error) in cases {
        assert_eq!(
            DataPipeProducer::new(&s, HeapMemory::new(64)).map(|_| ()),
            Err(error)
        );
        assert_eq!(
            DataPipeConsumer::new(&s, HeapMemory::new(64)).map(|_| ()),
            Err(error)
        );
    }
    // The largest valid values work.
    let s = state(1, 64, 63, 64);
    let mut consumer = DataPipeConsumer::new(&s, HeapMemory::new(64)).unwrap();
    let mut buf = [0; 64];
    assert_eq!(consumer.read(&mut buf).unwrap(), 64);
    assert_eq!(consumer.read_offset(), 63);
}

#[test]
fn a_read_only_ring_is_a_typed_error() {
    let (p, _) = new_pipe_states(options(1, 8), 0, GUID).unwrap();
    let mut producer =
        DataPipeProducer::new(&p, HeapMemory::read_only_from_bytes(&[0; 8])).unwrap();
    assert_eq!(
        producer.write(&[1]),
        Err(DataPipeError::Memory(ShmAccessError::ReadOnly))
    );
}

#[derive(Clone, Debug)]
enum Step {
    Write(usize),
    Read(usize),
    Deliver,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0usize..300).prop_map(Step::Write),
        (0usize..300).prop_map(Step::Read),
        Just(Step::Deliver),
    ]
}

proptest! {
    /// Whatever the chunk sizes and the order of writes, reads and control
    /// delivery, the consumer reads exactly the bytes written, in order,
    /// and neither end ever claims more than the ring holds.
    #[test]
    fn random_chunks_preserve_the_byte_stream(
        capacity in 1u32..200,
        element in prop_oneof![Just(1u32), Just(2), Just(4)],
        steps in proptest::collection::vec(step(), 1..200),
    ) {
        let capacity = (capacity / element).max(1) * element;
        let (mut producer, mut consumer, _ring) = pair(element, capacity);
        let (mut written, mut read) = (Vec::new(), Vec::new());
        let mut next = 0usize;
        let drain = |p: &mut DataPipeProducer<Shared>, c: &mut DataPipeConsumer<Shared>| {
            pump(p, c);
        };
        for s in steps.iter().cloned().chain([Step::Deliver]) {
            match s {
                Step::Write(n) => {
                    let data: Vec<u8> = (next..next + n).map(pattern).collect();
                    let k = producer.write(&data).unwrap();
                    prop_assert_eq!(k % element as usize, 0);
                    written.extend_from_slice(&data[..k]);
                    next += k;
                }
                Step::Read(n) => {
                    let mut buf = vec![0; n];
                    let k = consumer.read(&mut buf).unwrap();
                    read.extend_from_slice(&buf[..k]);
                }
                Step::Deliver => drain(&mut producer, &mut consumer),
            }
            prop_assert!(producer.available_capacity() <= capacity);
            prop_assert!(consumer.bytes_available() <= capacity);
            prop_assert!(producer.write_offset() < capacity);
            prop_assert!(consumer.read_offset() < capacity);
        }
        // Drain what is left.
        let mut buf = vec![0; capacity as usize];
        loop {
            drain(&mut producer, &mut consumer);
            let k = consumer.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            read.extend_from_slice(&buf[..k]);
        }
        drain(&mut producer, &mut consumer);
        prop_assert_eq!(&read, &written);
        prop_assert_eq!(producer.available_capacity(), capacity);
    }

    /// Arbitrary control payloads and states never panic and never leave an
    /// end claiming more than its ring.
    #[test]
    fn hostile_input_never_breaks_the_invariants(
        capacity in 1u32..100,
        offset in any::<u32>(),
        available in any::<u32>(),
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 0..20),
        reads in proptest::collection::vec(0usize..150, 0..20),
    ) {
        let s = state(1, capacity, offset % (capacity + 1), available % (capacity + 2));
        if let Ok(mut consumer) = DataPipeConsumer::new(&s, HeapMemory::new(capacity as usize)) {
            for (payload, n) in payloads.iter().zip(reads.iter().chain(std::iter::repeat(&0))) {
                let _ = consumer.handle_control(payload);
                let mut buf = vec![0; *n];
                let _ = consumer.read(&mut buf).unwrap();
                prop_assert!(consumer.bytes_available() <= capacity);
                prop_assert!(consumer.read_offset() < capacity);
            }
        }
        if let Ok(mut producer) = DataPipeProducer::new(&s, HeapMemory::new(capacity as usize)) {
            for (payload, n) in payloads.iter().zip(reads.iter().chain(std::iter::repeat(&0))) {
                let _ = producer.handle_control(payload);
                let _ = producer.write(&vec![1; *n]);
                prop_assert!(producer.available_capacity() <= capacity);
                prop_assert!(producer.write_offset() < capacity);
            }
        }
    }
}

#[test]
fn control_messages_in_flight_are_handled_by_the_ends_new_owner() {
    let (mut producer, consumer, ring) = pair(1, 64);
    let data: Vec<u8> = (0..40).map(pattern).collect();
    producer.write(&data).unwrap();
    // The consumer moves while DATA_WAS_WRITTEN is still on its port: the
    // message travels with the port and the new owner handles it.
    let in_flight = producer.poll_control_payload().unwrap();
    let state = consumer.serialize().unwrap();
    drop(consumer.into_ring());
    let mut moved = DataPipeConsumer::new(&state, ring).unwrap();
    assert_eq!(moved.handle_control(&in_flight), Ok(40));
    let mut buf = [0; 64];
    assert_eq!(moved.read(&mut buf).unwrap(), 40);
    assert_eq!(buf[..40], data[..]);
    pump(&mut producer, &mut moved);
    assert_eq!(producer.available_capacity(), 64);
}

#[test]
fn peek_keeps_the_bytes_and_discard_frees_their_room() {
    let (mut producer, mut consumer, _ring) = pair(2, 8);
    assert_eq!(producer.write(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap(), 8);
    pump(&mut producer, &mut consumer);
    let mut buf = [0; 5];
    assert_eq!(consumer.peek(&mut buf).unwrap(), 4);
    assert_eq!(buf[..4], [1, 2, 3, 4]);
    assert_eq!(consumer.bytes_available(), 8);
    pump(&mut producer, &mut consumer);
    assert_eq!(producer.available_capacity(), 0, "a peek frees nothing");
    // Whole elements only: 3 bytes discard one element.
    assert_eq!(consumer.discard(3), 2);
    assert_eq!(consumer.bytes_available(), 6);
    pump(&mut producer, &mut consumer);
    assert_eq!(producer.available_capacity(), 2);
    let mut rest = [0; 8];
    assert_eq!(consumer.read(&mut rest).unwrap(), 6);
    assert_eq!(rest[..6], [3, 4, 5, 6, 7, 8]);
    assert_eq!(consumer.discard(8), 0);
}
