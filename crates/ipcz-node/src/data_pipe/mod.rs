//! MojoIpcz data pipes (spec `ipcz.md` §1.6.5, §8.3): the producer and
//! consumer ends of the ipcz driver's DataPipe object as sans-IO state
//! machines over their shared ring buffer.
//!
//! A MojoIpcz data pipe is a ring in an unsafe shared-memory region that
//! both ends map, plus a portal pair, the *control portal*. Each end keeps
//! a *data range* `{offset, size}` of the ring (Chromium's `RingBuffer`):
//! for the producer, the bytes it wrote that the consumer has not yet
//! consumed; for the consumer, the bytes it may read. The producer writes
//! after its range and sends a 4-byte parcel (a little-endian u32 count)
//! on the control portal; the consumer grows its range by that count,
//! reads from the front, and sends the count it consumed back, which
//! shrinks the producer's range from the front. Counts of zero are never
//! sent. Nothing but data lives in the ring: offsets come only from the
//! serialized object and from control parcels.
//!
//! [`DataPipeProducer`] and [`DataPipeConsumer`] hold that state and the
//! ring (any [`SharedMemory`](mojo_wire_kit::SharedMemory): the platform
//! crate's `Mapping` in production, `HeapMemory` in tests). They never touch
//! the portal: the caller passes each control parcel's data to
//! `handle_control`, reports the portal's peer closure with
//! `handle_peer_closed` (ipcz reports it only after every earlier parcel
//! arrived), and puts what `poll_control` returns. An end moving in a
//! parcel is serialized back into the [`DataPipe`] driver object; its
//! control portal travels as the extra trailing portal of §8.3.
//!
//! Everything the peer controls is checked: the object's element size,
//! range and buffer size, the ring's size, each parcel's length and count.
//! Parcels are read as Chromium reads them, 4 bytes at a time: a parcel of
//! 8 bytes is two counts, and a tail that is not a whole count (or handles
//! on the parcel) makes the peer count as closed.
//! Bad values are [`DataPipeError`]s, never a panic or an access outside
//! the ring.
//!
//! ```
//! use ipcz_node::data_pipe::{DataPipeConsumer, DataPipeProducer, new_pipe_objects};
//! use ipcz_wire::driver_object::SharedBuffer;
//! use mojo_wire_kit::{Guid, HeapMemory, RegionMode};
//!
//! let buffer = SharedBuffer { buffer_size: 8, mode: RegionMode::Unsafe, guid: Guid::new(1, 2) };
//! let (p, c) = new_pipe_objects(1, buffer).unwrap();
//! let mut producer = DataPipeProducer::new(&p, HeapMemory::new(8)).unwrap();
//! assert_eq!(producer.write(b"hello, world").unwrap(), 8); // the ring is full
//! let written = producer.poll_control_parcel().unwrap(); // [8, 0, 0, 0]
//!
//! // Both ends map one region; here the consumer's "mapping" is a copy of
//! // the producer's ring taken after the write.
//! let ring = HeapMemory::from_bytes(&producer.ring().snapshot());
//! let mut consumer = DataPipeConsumer::new(&c, ring).unwrap();
//! consumer.handle_control(&written, 0).unwrap();
//! let mut buf = [0; 5];
//! assert_eq!(consumer.read(&mut buf).unwrap(), 5);
//! assert_eq!(&buf, b"hello");
//!
//! let consumed = consumer.poll_control_parcel().unwrap(); // [5, 0, 0, 0]
//! producer.handle_control(&consumed, 0).unwrap();
//! assert_eq!(producer.available_capacity(), 5);
//! ```

mod consumer;
mod producer;
mod ring;
#[cfg(test)]
mod tests;

use std::fmt;

use ipcz_wire::driver_object::{DataPipe, DataPipeEndpointType, SharedBuffer};
use mojo_wire_kit::ShmAccessError;

pub use consumer::DataPipeConsumer;
pub use producer::DataPipeProducer;

/// Size of a control parcel: one little-endian u32 byte count.
pub const CONTROL_PARCEL_LEN: usize = 4;

/// Why a data pipe end refused an object, a control parcel or an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataPipeError {
    /// The object is the other kind of end (or an unknown kind).
    WrongEndpointType {
        /// The kind this constructor builds.
        expected: DataPipeEndpointType,
        /// The kind the object says.
        found: DataPipeEndpointType,
    },
    /// `element_size` is zero.
    ZeroElementSize,
    /// The ring (`buffer.buffer_size`) is empty.
    ZeroCapacity,
    /// The ring's size is not a whole number of elements.
    CapacityNotElementMultiple {
        /// The ring capacity (`buffer.buffer_size`).
        capacity: u32,
        /// The element size.
        element_size: u32,
    },
    /// `ring_buffer_state.offset` is not inside the ring.
    OffsetOutOfRange {
        /// The offset.
        offset: u32,
        /// The ring capacity.
        capacity: u32,
    },
    /// `ring_buffer_state.size` exceeds the ring.
    SizeOutOfRange {
        /// The size.
        size: u32,
        /// The ring capacity.
        capacity: u32,
    },
    /// `ring_buffer_state.size` is not a whole number of elements.
    SizeNotElementMultiple {
        /// The size.
        size: u32,
        /// The element size.
        element_size: u32,
    },
    /// The shared-memory region is smaller than the ring capacity.
    RingTooSmall {
        /// Size of the region.
        ring_size: usize,
        /// The ring capacity.
        capacity: u32,
    },
    /// A control parcel that is empty or whose length is not a multiple of
    /// 4: after its whole counts, the peer is treated as closed (as
    /// Chromium does).
    ShortControlParcel {
        /// Bytes left over after the whole counts (0 for an empty parcel).
        len: usize,
    },
    /// A control parcel with handles: after its counts, the peer is treated
    /// as closed (Chromium's reader never takes them, so its next read is
    /// short). The handles are the caller's to close.
    ControlParcelWithHandles {
        /// How many.
        num_handles: usize,
    },
    /// The consumer claims to have consumed more than the producer wrote;
    /// ignored (as Chromium does), the pipe stays open.
    ConsumedPastWritten {
        /// Bytes the parcel claims.
        num_bytes: u32,
        /// Bytes written and not yet consumed.
        data_size: u32,
    },
    /// The producer claims to have written more than the ring has room
    /// for; ignored (as Chromium does), the pipe stays open.
    ProducedPastCapacity {
        /// Bytes the parcel claims.
        num_bytes: u32,
        /// Room left in the ring.
        free: u32,
    },
    /// A write to a pipe whose consumer is closed.
    PeerClosed,
    /// Serialization while a control parcel is still waiting in
    /// `poll_control`: sending the end now would lose it.
    UnsentControl {
        /// The count the unsent parcel carries.
        num_bytes: u32,
    },
    /// The shared-memory seam refused an access.
    Memory(ShmAccessError),
}

impl From<ShmAccessError> for DataPipeError {
    fn from(e: ShmAccessError) -> Self {
        Self::Memory(e)
    }
}

impl fmt::Display for DataPipeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::WrongEndpointType { expected, found } => {
                write!(f, "data pipe object is a {found:?} end, not a {expected:?}")
            }
            Self::ZeroElementSize => f.write_str("data pipe element size is zero"),
            Self::ZeroCapacity => f.write_str("data pipe ring buffer is empty"),
            Self::CapacityNotElementMultiple {
                capacity,
                element_size,
            } => write!(
                f,
                "ring capacity {capacity} is not a multiple of the element size {element_size}"
            ),
            Self::OffsetOutOfRange { offset, capacity } => {
                write!(
                    f,
                    "ring offset {offset} is outside the {capacity}-byte ring"
                )
            }
            Self::SizeOutOfRange { size, capacity } => {
                write!(
                    f,
                    "data range of {size} bytes exceeds the {capacity}-byte ring"
                )
            }
            Self::SizeNotElementMultiple { size, element_size } => write!(
                f,
                "data range of {size} bytes is not a multiple of the element size {element_size}"
            ),
            Self::RingTooSmall {
                ring_size,
                capacity,
            } => write!(
                f,
                "ring region of {ring_size} bytes is smaller than the capacity {capacity}"
            ),
            Self::ShortControlParcel { len } => write!(
                f,
                "data pipe control parcel ends in a short read of {len} bytes"
            ),
            Self::ControlParcelWithHandles { num_handles } => {
                write!(f, "data pipe control parcel carries {num_handles} handles")
            }
            Self::ConsumedPastWritten {
                num_bytes,
                data_size,
            } => write!(
                f,
                "consumer claims {num_bytes} bytes consumed of {data_size} written"
            ),
            Self::ProducedPastCapacity { num_bytes, free } => write!(
                f,
                "producer claims {num_bytes} bytes written with {free} bytes free"
            ),
            Self::PeerClosed => f.write_str("the data pipe's other end is closed"),
            Self::UnsentControl { num_bytes } => write!(
                f,
                "a control parcel for {num_bytes} bytes has not been put yet"
            ),
            Self::Memory(e) => write!(f, "ring buffer access failed: {e}"),
        }
    }
}

impl std::error::Error for DataPipeError {}

/// A validated data range of a ring (`RingBuffer::Range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DataRange {
    offset: u32,
    size: u32,
}

/// Checks an object the way Chromium's `DataPipe::Deserialize` does (the
/// wire decoder checks the same, but an object can also be built by hand).
fn validate(object: &DataPipe, expected: DataPipeEndpointType) -> Result<DataRange, DataPipeError> {
    if object.endpoint_type != expected {
        return Err(DataPipeError::WrongEndpointType {
            expected,
            found: object.endpoint_type,
        });
    }
    let element_size = object.element_size;
    let capacity = object.buffer.buffer_size;
    if element_size == 0 {
        return Err(DataPipeError::ZeroElementSize);
    }
    if capacity == 0 {
        return Err(DataPipeError::ZeroCapacity);
    }
    if capacity % element_size != 0 {
        return Err(DataPipeError::CapacityNotElementMultiple {
            capacity,
            element_size,
        });
    }
    if object.ring_offset >= capacity {
        return Err(DataPipeError::OffsetOutOfRange {
            offset: object.ring_offset,
            capacity,
        });
    }
    if object.ring_size > capacity {
        return Err(DataPipeError::SizeOutOfRange {
            size: object.ring_size,
            capacity,
        });
    }
    if object.ring_size % element_size != 0 {
        return Err(DataPipeError::SizeNotElementMultiple {
            size: object.ring_size,
            element_size,
        });
    }
    Ok(DataRange {
        offset: object.ring_offset,
        size: object.ring_size,
    })
}

/// `len` rounded down to whole elements.
fn whole_elements(len: u32, element_size: u32) -> u32 {
    len - len % element_size.max(1)
}

/// How Chromium's reader sees a control parcel: it gets 4 bytes at a time
/// (`IPCZ_GET_PARTIAL` into a u32, which consumes parcels partially), so a
/// parcel is a run of counts, and whatever cannot be read as a whole count
/// (a tail of 1 to 3 bytes, an empty parcel, handles left after the data)
/// is a short read, which it treats as the peer closing.
fn split_parcel(
    data: &[u8],
    num_handles: usize,
) -> (impl Iterator<Item = u32> + '_, Option<DataPipeError>) {
    let chunks = data.chunks_exact(CONTROL_PARCEL_LEN);
    let tail = chunks.remainder().len();
    let short = if data.is_empty() || tail != 0 {
        Some(DataPipeError::ShortControlParcel { len: tail })
    } else if num_handles != 0 {
        Some(DataPipeError::ControlParcelWithHandles { num_handles })
    } else {
        None
    };
    let counts = chunks.map(|c| c.iter().rev().fold(0u32, |v, b| (v << 8) | u32::from(*b)));
    (counts, short)
}

/// The objects of a new pipe's two ends, as `DataPipe::CreatePair` leaves
/// them: empty data ranges at offset 0, one element size, one ring region
/// (`buffer`, normally an unsafe-mode region both ends map).
pub fn new_pipe_objects(
    element_size: u32,
    buffer: SharedBuffer,
) -> Result<(DataPipe, DataPipe), DataPipeError> {
    let producer = DataPipe {
        endpoint_type: DataPipeEndpointType::PRODUCER,
        element_size,
        ring_offset: 0,
        ring_size: 0,
        buffer,
    };
    let consumer = DataPipe {
        endpoint_type: DataPipeEndpointType::CONSUMER,
        ..producer
    };
    validate(&producer, DataPipeEndpointType::PRODUCER)?;
    Ok((producer, consumer))
}
