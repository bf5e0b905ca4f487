//! Legacy data pipes (spec `legacy-core.md` §5.2): the producer and consumer
//! ends as sans-IO state machines over their shared ring buffer.
//!
//! A legacy data pipe is a ring of `capacity_num_bytes` bytes in an unsafe
//! shared-memory region that both ends map, plus a message pipe between
//! them, the *control port*. The producer copies bytes in at its
//! `write_offset` and tells the consumer with a `DATA_WAS_WRITTEN` control
//! message; the consumer copies them out at its `read_offset` and gives the
//! room back with `DATA_WAS_READ`. Neither end ever reads an offset from the
//! ring: each keeps its own offset and count and learns the other's progress
//! only from control messages, so the ring holds nothing but data.
//!
//! [`DataPipeProducer`] and [`DataPipeConsumer`] hold that state and the
//! ring (any [`SharedMemory`](mojo_wire_kit::SharedMemory): the platform
//! crate's `Mapping` in production, `HeapMemory` in tests). They never touch
//! the control port: the caller passes each control-port payload to
//! `handle_control`, reports the port's peer closure with
//! `handle_peer_closed`, and sends what `poll_control` returns. An end moving
//! to another node is serialized back into the [`DataPipeState`] its
//! dispatcher carries.
//!
//! Everything the peer controls is checked: a deserialized state's options,
//! offset and count against the capacity, the ring's size against the
//! capacity, each control message's length, command and count. Bad values
//! are [`DataPipeError`]s, never a panic or an access outside the ring; a
//! control message Chromium treats as the peer closing also closes here.
//!
//! ```
//! use mojo_legacy_node::data_pipe::{DataPipeConsumer, DataPipeProducer, new_pipe_states};
//! use mojo_legacy_wire::user_message::DataPipeOptions;
//! use mojo_wire_kit::{Guid, HeapMemory};
//!
//! let options = DataPipeOptions {
//!     struct_size: 16,
//!     flags: 0,
//!     element_num_bytes: 1,
//!     capacity_num_bytes: 8,
//! };
//! let (p, c) = new_pipe_states(options, 0, Guid::new(1, 2)).unwrap();
//! let mut producer = DataPipeProducer::new(&p, HeapMemory::new(8)).unwrap();
//! assert_eq!(producer.write(b"hello, world").unwrap(), 8); // the ring is full
//! let written = producer.poll_control_payload().unwrap(); // DATA_WAS_WRITTEN 8
//!
//! // Both ends map one region; here the consumer's "mapping" is a copy of
//! // the producer's ring taken after the write.
//! let ring = HeapMemory::from_bytes(&producer.ring().snapshot());
//! let mut consumer = DataPipeConsumer::new(&c, ring).unwrap();
//! consumer.handle_control(&written).unwrap();
//! let mut buf = [0; 5];
//! assert_eq!(consumer.read(&mut buf).unwrap(), 5);
//! assert_eq!(&buf, b"hello");
//!
//! let read = consumer.poll_control_payload().unwrap(); // DATA_WAS_READ 5
//! producer.handle_control(&read).unwrap();
//! assert_eq!(producer.available_capacity(), 5);
//! ```

mod consumer;
mod producer;
mod ring;
#[cfg(test)]
mod tests;

use std::fmt;

use mojo_legacy_wire::user_message::{DataPipeCommand, DataPipeOptions, DataPipeState};
use mojo_wire_kit::{Guid, ShmAccessError};

pub use consumer::DataPipeConsumer;
pub use producer::DataPipeProducer;

/// Why a data pipe end refused a state, a control message or an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataPipeError {
    /// `options.element_num_bytes` is zero.
    ZeroElementSize,
    /// `options.capacity_num_bytes` is zero or smaller than one element.
    InvalidCapacity {
        /// The capacity.
        capacity: u32,
        /// The element size.
        element_num_bytes: u32,
    },
    /// An offset (`write_offset` / `read_offset`) is not inside the ring.
    OffsetOutOfRange {
        /// The offset.
        offset: u32,
        /// The ring capacity.
        capacity: u32,
    },
    /// A byte count (`available_capacity` / `bytes_available`) exceeds the
    /// ring.
    CountOutOfRange {
        /// The count.
        count: u32,
        /// The ring capacity.
        capacity: u32,
    },
    /// The ring buffer's guid is all zero.
    ZeroBufferGuid,
    /// The shared-memory region is smaller than the ring capacity.
    RingTooSmall {
        /// Size of the region.
        ring_size: usize,
        /// The ring capacity.
        capacity: u32,
    },
    /// A control-port payload shorter than a `DataPipeControlMessage`; the
    /// peer is now treated as closed (as Chromium does).
    ShortControlMessage {
        /// Payload length.
        len: usize,
    },
    /// A control message with the other end's command (or an unknown one);
    /// the peer is now treated as closed.
    UnexpectedCommand {
        /// The command received.
        command: DataPipeCommand,
    },
    /// `DATA_WAS_WRITTEN` claiming more bytes than the ring has room for;
    /// the consumer now treats the producer as closed.
    WrittenPastCapacity {
        /// Bytes the message claims.
        num_bytes: u32,
        /// Bytes already available before it.
        bytes_available: u32,
        /// The ring capacity.
        capacity: u32,
    },
    /// `DATA_WAS_READ` giving back more room than was written; the producer
    /// ignores the message (as Chromium does) and stays open.
    ReadPastCapacity {
        /// Bytes the message claims.
        num_bytes: u32,
        /// Room already free before it.
        available_capacity: u32,
        /// The ring capacity.
        capacity: u32,
    },
    /// A write to a pipe whose consumer is closed.
    PeerClosed,
    /// Serialization while a control message is still waiting in
    /// `poll_control`: sending the end now would lose it.
    UnsentControl {
        /// Bytes the unsent message announces.
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
            Self::ZeroElementSize => f.write_str("data pipe element size is zero"),
            Self::InvalidCapacity {
                capacity,
                element_num_bytes,
            } => write!(
                f,
                "data pipe capacity {capacity} is not at least one {element_num_bytes}-byte element"
            ),
            Self::OffsetOutOfRange { offset, capacity } => {
                write!(
                    f,
                    "ring offset {offset} is outside the {capacity}-byte ring"
                )
            }
            Self::CountOutOfRange { count, capacity } => {
                write!(f, "byte count {count} exceeds the {capacity}-byte ring")
            }
            Self::ZeroBufferGuid => f.write_str("data pipe ring buffer guid is zero"),
            Self::RingTooSmall {
                ring_size,
                capacity,
            } => write!(
                f,
                "ring region of {ring_size} bytes is smaller than the capacity {capacity}"
            ),
            Self::ShortControlMessage { len } => {
                write!(f, "data pipe control message of {len} bytes is too short")
            }
            Self::UnexpectedCommand { command } => {
                write!(f, "unexpected data pipe control command {command:?}")
            }
            Self::WrittenPastCapacity {
                num_bytes,
                bytes_available,
                capacity,
            } => write!(
                f,
                "DATA_WAS_WRITTEN {num_bytes} with {bytes_available} of {capacity} bytes already available"
            ),
            Self::ReadPastCapacity {
                num_bytes,
                available_capacity,
                capacity,
            } => write!(
                f,
                "DATA_WAS_READ {num_bytes} with {available_capacity} of {capacity} bytes already free"
            ),
            Self::PeerClosed => f.write_str("the data pipe's other end is closed"),
            Self::UnsentControl { num_bytes } => write!(
                f,
                "a control message for {num_bytes} bytes has not been sent yet"
            ),
            Self::Memory(e) => write!(f, "ring buffer access failed: {e}"),
        }
    }
}

impl std::error::Error for DataPipeError {}

/// Checks the options and the state's offset and count the way Chromium's
/// deserializer does, plus a non-zero buffer guid.
fn validate_state(state: &DataPipeState) -> Result<(), DataPipeError> {
    validate_options(&state.options)?;
    let capacity = state.options.capacity_num_bytes;
    if state.offset >= capacity {
        return Err(DataPipeError::OffsetOutOfRange {
            offset: state.offset,
            capacity,
        });
    }
    if state.available > capacity {
        return Err(DataPipeError::CountOutOfRange {
            count: state.available,
            capacity,
        });
    }
    if !state.buffer_guid.is_valid() {
        return Err(DataPipeError::ZeroBufferGuid);
    }
    Ok(())
}

fn validate_options(options: &DataPipeOptions) -> Result<(), DataPipeError> {
    if options.element_num_bytes == 0 {
        return Err(DataPipeError::ZeroElementSize);
    }
    if options.capacity_num_bytes < options.element_num_bytes {
        return Err(DataPipeError::InvalidCapacity {
            capacity: options.capacity_num_bytes,
            element_num_bytes: options.element_num_bytes,
        });
    }
    Ok(())
}

/// `len` rounded down to whole elements.
fn whole_elements(len: u32, element_num_bytes: u32) -> u32 {
    len - len % element_num_bytes.max(1)
}

/// The states of a new pipe's two ends, as `MojoCreateDataPipe` leaves
/// them: the producer at offset 0 with the whole ring free, the consumer at
/// offset 0 with nothing to read. `buffer_guid` names the ring's region.
pub fn new_pipe_states(
    options: DataPipeOptions,
    pipe_id: u64,
    buffer_guid: Guid,
) -> Result<(DataPipeState, DataPipeState), DataPipeError> {
    let producer = DataPipeState {
        options,
        pipe_id,
        offset: 0,
        available: options.capacity_num_bytes,
        flags: 0,
        buffer_guid,
    };
    let consumer = DataPipeState {
        available: 0,
        ..producer
    };
    validate_state(&producer)?;
    Ok((producer, consumer))
}
