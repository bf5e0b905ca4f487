//! Producer ⇄ consumer pairs over one heap ring: streams with wraparound,
//! transfer through the driver-object codec, closure with data in flight,
//! hostile objects and control parcels, and properties over random chunk
//! sizes.

use std::rc::Rc;
use std::sync::atomic::Ordering;

use ipcz_wire::driver_object::{DataPipe, DataPipeEndpointType, SharedBuffer};
use mojo_wire_kit::{Guid, HeapMemory, RegionMode, SharedMemory, ShmAccessError};
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

const GUID: Guid = Guid::new(0x1234, 0x5678);

fn buffer(capacity: u32) -> SharedBuffer {
    SharedBuffer {
        buffer_size: capacity,
        mode: RegionMode::Unsafe,
        guid: GUID,
    }
}

fn pair(
    element: u32,
    capacity: u32,
) -> (DataPipeProducer<Shared>, DataPipeConsumer<Shared>, Shared) {
    let (p, c) = new_pipe_objects(element, buffer(capacity)).unwrap();
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

/// Delivers every pending control parcel both ways.
fn pump(producer: &mut DataPipeProducer<Shared>, consumer: &mut DataPipeConsumer<Shared>) {
    loop {
        let mut any = false;
        if let Some(m) = producer.poll_control_parcel() {
            assert_ne!(m, [0; 4], "zero counts are never sent");
            consumer.handle_control(&m, 0).unwrap();
            any = true;
        }
        if let Some(m) = consumer.poll_control_parcel() {
            assert_ne!(m, [0; 4], "zero counts are never sent");
            producer.handle_control(&m, 0).unwrap();
            any = true;
        }
        if !any {
            return;
        }
    }
}

#[test]
fn one_mebibyte_through_a_small_ring_with_wraparound() {
    let (mut producer, mut consumer, _ring) = pair(1, 4096);
    let total = 1 << 20;
    let source: Vec<u8> = (0..total).map(pattern).collect();
    let (mut sent, mut got) = (0, 0);
    let mut buf = vec![0; 777];
    while got < total {
        let end = (sent + 1000).min(total);
        sent += producer.write(&source[sent..end]).unwrap();
        pump(&mut producer, &mut consumer);
        let n = consumer.read(&mut buf).unwrap();
        assert_eq!(buf[..n], source[got..got + n]);
        got += n;
        pump(&mut producer, &mut consumer);
    }
    assert_eq!(sent, total);
    assert_eq!(producer.available_capacity(), 4096);
    assert_eq!(producer.unconsumed(), 0);
    assert_eq!(consumer.bytes_available(), 0);
    assert_eq!(producer.offset(), consumer.offset());
    assert_eq!(producer.offset(), (1u32 << 20) % 4096);
    assert_eq!(
        (producer.poll_control(), consumer.poll_control()),
        (None, None)
    );
}

#[test]
fn one_mebibyte_each_way_on_two_pipes_at_once() {
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
    assert_eq!(consumer.read(&mut [0; 3]).unwrap(), 0);
    let mut buf = [0; 7];
    assert_eq!(consumer.read(&mut buf).unwrap(), 4);
    assert_eq!(buf[..4], [1, 2, 3, 4]);
}

#[test]
fn writes_wait_for_the_consumed_count() {
    let (mut producer, mut consumer, _ring) = pair(1, 8);
    assert_eq!(producer.write(&[1; 20]).unwrap(), 8);
    assert_eq!(producer.write(&[1; 20]).unwrap(), 0);
    pump(&mut producer, &mut consumer);
    consumer.read(&mut [0; 3]).unwrap();
    assert_eq!(producer.write(&[2; 20]).unwrap(), 0);
    pump(&mut producer, &mut consumer);
    assert_eq!(producer.write(&[2; 20]).unwrap(), 3);
    // Writes since the last poll are one parcel.
    assert_eq!(producer.poll_control(), Some(3));
    assert_eq!(producer.poll_control(), None);
}

#[test]
fn consumer_reads_what_was_written_before_the_producer_closed() {
    let (mut producer, mut consumer, ring) = pair(1, 64);
    let data: Vec<u8> = (0..50).map(pattern).collect();
    assert_eq!(producer.write(&data).unwrap(), 50);
    let announced = producer.poll_control_parcel().unwrap();
    drop(producer.into_ring());
    consumer.handle_control(&announced, 0).unwrap();
    consumer.handle_peer_closed();
    assert!(!consumer.is_drained());
    let mut buf = [0; 30];
    assert_eq!(consumer.read(&mut buf).unwrap(), 30);
    assert_eq!(buf[..], data[..30]);
    assert_eq!(consumer.read(&mut buf).unwrap(), 20);
    assert_eq!(buf[..20], data[30..]);
    assert_eq!(consumer.read(&mut buf).unwrap(), 0);
    assert!(consumer.is_drained());
    drop(consumer.into_ring());
    assert_eq!(Rc::strong_count(&ring.0), 1);
}

#[test]
fn producer_stops_writing_when_the_consumer_closes() {
    let (mut producer, _consumer, _ring) = pair(1, 64);
    producer.handle_peer_closed();
    assert!(producer.is_peer_closed());
    assert_eq!(producer.write(&[1]), Err(DataPipeError::PeerClosed));
}

#[test]
fn ends_move_mid_stream_through_their_driver_objects() {
    let (mut producer, mut consumer, ring) = pair(1, 100);
    let source: Vec<u8> = (0..1000).map(pattern).collect();
    let (mut sent, mut got) = (0, 0);
    let mut buf = [0; 33];
    for round in 0..200 {
        if sent < source.len() {
            let end = (sent + 71).min(source.len());
            sent += producer.write(&source[sent..end]).unwrap();
        }
        if sent > 0 && round == 0 {
            assert!(matches!(
                producer.serialize(),
                Err(DataPipeError::UnsentControl { .. })
            ));
        }
        pump(&mut producer, &mut consumer);
        let n = consumer.read(&mut buf).unwrap();
        assert_eq!(buf[..n], source[got..got + n]);
        got += n;
        pump(&mut producer, &mut consumer);
        if round % 3 == 0 {
            let p = producer.serialize().unwrap();
            let c = consumer.serialize().unwrap();
            // Through the wire codec and back, as a parcel carries them.
            let p = reencode(p);
            let c = reencode(c);
            drop(producer.into_ring());
            drop(consumer.into_ring());
            producer = DataPipeProducer::new(&p, ring.clone()).unwrap();
            consumer = DataPipeConsumer::new(&c, ring.clone()).unwrap();
        }
    }
    assert_eq!((sent, got), (1000, 1000));
}

fn reencode(object: DataPipe) -> DataPipe {
    use ipcz_wire::driver_object::DriverObject;
    let mut bytes = Vec::new();
    DriverObject::DataPipe(object).encode(&mut bytes).unwrap();
    match DriverObject::decode_exact(&bytes, 1).unwrap() {
        DriverObject::DataPipe(decoded) => {
            assert_eq!(decoded, object);
            decoded
        }
        other => panic!("decoded {other:?}"),
    }
}

#[test]
fn hostile_control_parcels() {
    let (mut producer, mut consumer, _ring) = pair(1, 64);
    producer.write(&[5; 10]).unwrap();
    pump(&mut producer, &mut consumer);
    // Overflowing counts are ignored and leave the state alone.
    assert_eq!(
        consumer.handle_control(&55u32.to_le_bytes(), 0),
        Err(DataPipeError::ProducedPastCapacity {
            num_bytes: 55,
            free: 54
        })
    );
    assert_eq!(
        consumer.handle_control(&u32::MAX.to_le_bytes(), 0),
        Err(DataPipeError::ProducedPastCapacity {
            num_bytes: u32::MAX,
            free: 54
        })
    );
    assert_eq!(consumer.bytes_available(), 10);
    assert!(!consumer.is_peer_closed());
    assert_eq!(
        producer.handle_control(&11u32.to_le_bytes(), 0),
        Err(DataPipeError::ConsumedPastWritten {
            num_bytes: 11,
            data_size: 10
        })
    );
    assert_eq!(producer.unconsumed(), 10);
    assert!(!producer.is_peer_closed());
    // A parcel is a run of counts.
    assert_eq!(consumer.handle_control(&[1, 0, 0, 0, 2, 0, 0, 0], 0), Ok(3));
    assert_eq!(consumer.bytes_available(), 13);
    // A short tail: the whole counts count, then the producer is closed.
    assert_eq!(
        consumer.handle_control(&[1, 0, 0, 0, 0xff, 0xff], 0),
        Err(DataPipeError::ShortControlParcel { len: 2 })
    );
    assert_eq!(consumer.bytes_available(), 14);
    assert!(consumer.is_peer_closed());
    assert_eq!(
        producer.handle_control(&[], 0),
        Err(DataPipeError::ShortControlParcel { len: 0 })
    );
    assert_eq!(producer.write(&[1]), Err(DataPipeError::PeerClosed));
    // What was announced stays readable (the ring holds the 10 written
    // bytes and the 4 a hostile producer claimed).
    let mut buf = [0; 64];
    assert_eq!(consumer.read(&mut buf).unwrap(), 14);
    assert!(consumer.is_drained());
}

#[test]
fn control_parcels_with_handles_close_after_their_counts() {
    let (mut producer, mut consumer, _ring) = pair(1, 64);
    producer.write(&[5; 10]).unwrap();
    assert_eq!(
        consumer.handle_control(&10u32.to_le_bytes(), 2),
        Err(DataPipeError::ControlParcelWithHandles { num_handles: 2 })
    );
    assert_eq!(consumer.bytes_available(), 10);
    assert!(consumer.is_peer_closed());
    consumer.read(&mut [0; 4]).unwrap();
    assert_eq!(
        producer.handle_control(&consumer.poll_control_parcel().unwrap(), 1),
        Err(DataPipeError::ControlParcelWithHandles { num_handles: 1 })
    );
    assert_eq!(producer.unconsumed(), 6);
    assert!(producer.is_peer_closed());
}

#[test]
fn an_ignored_count_does_not_stop_the_rest_of_its_parcel() {
    let (mut producer, mut consumer, _ring) = pair(1, 64);
    producer.write(&[5; 10]).unwrap();
    let mut parcel = 99u32.to_le_bytes().to_vec();
    parcel.extend_from_slice(&10u32.to_le_bytes());
    assert_eq!(
        consumer.handle_control(&parcel, 0),
        Err(DataPipeError::ProducedPastCapacity {
            num_bytes: 99,
            free: 64
        })
    );
    assert_eq!(consumer.bytes_available(), 10);
    assert!(!consumer.is_peer_closed());
}

fn object(
    endpoint: DataPipeEndpointType,
    element: u32,
    capacity: u32,
    offset: u32,
    size: u32,
) -> DataPipe {
    DataPipe {
        endpoint_type: endpoint,
        element_size: element,
        ring_offset: offset,
        ring_size: size,
        buffer: buffer(capacity),
    }
}

#[test]
fn hostile_objects_are_refused() {
    use DataPipeEndpointType as T;
    let cases = [
        (
            object(T(7), 1, 64, 0, 0),
            DataPipeError::WrongEndpointType {
                expected: T::CONSUMER,
                found: T(7),
            },
        ),
        (
            object(T::CONSUMER, 0, 64, 0, 0),
            DataPipeError::ZeroElementSize,
        ),
        (
            object(T::CONSUMER, 3, 64, 0, 0),
            DataPipeError::CapacityNotElementMultiple {
                capacity: 64,
                element_size: 3,
            },
        ),
        (object(T::CONSUMER, 1, 0, 0, 0), DataPipeError::ZeroCapacity),
        (
            object(T::CONSUMER, 1, 64, 64, 0),
            DataPipeError::OffsetOutOfRange {
                offset: 64,
                capacity: 64,
            },
        ),
        (
            object(T::CONSUMER, 1, 64, u32::MAX, 0),
            DataPipeError::OffsetOutOfRange {
                offset: u32::MAX,
                capacity: 64,
            },
        ),
        (
            object(T::CONSUMER, 1, 64, 0, 65),
            DataPipeError::SizeOutOfRange {
                size: 65,
                capacity: 64,
            },
        ),
        (
            object(T::CONSUMER, 4, 64, 0, 6),
            DataPipeError::SizeNotElementMultiple {
                size: 6,
                element_size: 4,
            },
        ),
        (
            object(T::CONSUMER, 1, u32::MAX, 0, 0),
            DataPipeError::RingTooSmall {
                ring_size: 64,
                capacity: u32::MAX,
            },
        ),
    ];
    for (o, error) in cases {
        assert_eq!(
            DataPipeConsumer::new(&o, HeapMemory::new(64)).map(|_| ()),
            Err(error)
        );
        let as_producer = DataPipe {
            endpoint_type: if o.endpoint_type == T::CONSUMER {
                T::PRODUCER
            } else {
                o.endpoint_type
            },
            ..o
        };
        let expected = match error {
            DataPipeError::WrongEndpointType { found, .. } => DataPipeError::WrongEndpointType {
                expected: T::PRODUCER,
                found,
            },
            e => e,
        };
        assert_eq!(
            DataPipeProducer::new(&as_producer, HeapMemory::new(64)).map(|_| ()),
            Err(expected)
        );
    }
    // A producer object is not a consumer.
    assert_eq!(
        DataPipeConsumer::new(&object(T::PRODUCER, 1, 64, 0, 0), HeapMemory::new(64)).map(|_| ()),
        Err(DataPipeError::WrongEndpointType {
            expected: T::CONSUMER,
            found: T::PRODUCER
        })
    );
    // A full range that wraps is fine.
    let mut consumer =
        DataPipeConsumer::new(&object(T::CONSUMER, 1, 64, 63, 64), HeapMemory::new(64)).unwrap();
    assert_eq!(consumer.read(&mut [0; 64]).unwrap(), 64);
    assert_eq!(consumer.offset(), 63);
}

#[test]
fn a_read_only_ring_is_a_typed_error() {
    let (p, _) = new_pipe_objects(1, buffer(8)).unwrap();
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
    /// Whatever the chunk sizes and the order of writes, reads and parcel
    /// delivery, the consumer reads exactly the bytes written, in order.
    #[test]
    fn random_chunks_preserve_the_byte_stream(
        elements in 1u32..200,
        element in prop_oneof![Just(1u32), Just(2), Just(4)],
        steps in proptest::collection::vec(step(), 1..200),
    ) {
        let capacity = elements * element;
        let (mut producer, mut consumer, _ring) = pair(element, capacity);
        let (mut written, mut read) = (Vec::new(), Vec::new());
        for s in steps.iter().cloned() {
            match s {
                Step::Write(n) => {
                    let next = written.len();
                    let data: Vec<u8> = (next..next + n).map(pattern).collect();
                    let k = producer.write(&data).unwrap();
                    prop_assert_eq!(k % element as usize, 0);
                    written.extend_from_slice(&data[..k]);
                }
                Step::Read(n) => {
                    let mut buf = vec![0; n];
                    let k = consumer.read(&mut buf).unwrap();
                    read.extend_from_slice(&buf[..k]);
                }
                Step::Deliver => pump(&mut producer, &mut consumer),
            }
            prop_assert!(producer.unconsumed() <= capacity);
            prop_assert!(consumer.bytes_available() <= producer.unconsumed());
            prop_assert!(producer.offset() < capacity && consumer.offset() < capacity);
        }
        let mut buf = vec![0; capacity as usize];
        loop {
            pump(&mut producer, &mut consumer);
            let k = consumer.read(&mut buf).unwrap();
            if k == 0 {
                break;
            }
            read.extend_from_slice(&buf[..k]);
        }
        pump(&mut producer, &mut consumer);
        prop_assert_eq!(&read, &written);
        prop_assert_eq!(producer.available_capacity(), capacity);
    }

    /// Arbitrary parcels and objects never panic and never leave an end
    /// claiming more than its ring.
    #[test]
    fn hostile_input_never_breaks_the_invariants(
        capacity in 1u32..100,
        offset in any::<u32>(),
        size in any::<u32>(),
        parcels in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..8), 0..20),
        chunks in proptest::collection::vec(0usize..150, 0..20),
    ) {
        let offset = offset % (capacity + 1);
        let size = size % (capacity + 2);
        let sizes = chunks.iter().chain(std::iter::repeat(&0));
        let c = object(DataPipeEndpointType::CONSUMER, 1, capacity, offset, size);
        if let Ok(mut consumer) = DataPipeConsumer::new(&c, HeapMemory::new(capacity as usize)) {
            for (parcel, n) in parcels.iter().zip(sizes.clone()) {
                let _ = consumer.handle_control(parcel, 0);
                consumer.read(&mut vec![0; *n]).unwrap();
                prop_assert!(consumer.bytes_available() <= capacity);
                prop_assert!(consumer.offset() < capacity);
            }
        }
        let p = DataPipe { endpoint_type: DataPipeEndpointType::PRODUCER, ..c };
        if let Ok(mut producer) = DataPipeProducer::new(&p, HeapMemory::new(capacity as usize)) {
            for (parcel, n) in parcels.iter().zip(sizes) {
                let _ = producer.handle_control(parcel, 0);
                let _ = producer.write(&vec![1; *n]);
                prop_assert!(producer.unconsumed() <= capacity);
                prop_assert!(producer.offset() < capacity);
            }
        }
    }
}

#[test]
fn control_parcels_in_flight_are_handled_by_the_ends_new_owner() {
    let (mut producer, consumer, ring) = pair(1, 64);
    let data: Vec<u8> = (0..40).map(pattern).collect();
    producer.write(&data).unwrap();
    // The consumer moves while the count is still queued on its portal: the
    // parcel travels with the portal and the new owner handles it.
    let in_flight = producer.poll_control_parcel().unwrap();
    let object = reencode(consumer.serialize().unwrap());
    drop(consumer.into_ring());
    let mut moved = DataPipeConsumer::new(&object, ring).unwrap();
    assert_eq!(moved.handle_control(&in_flight, 0), Ok(40));
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
