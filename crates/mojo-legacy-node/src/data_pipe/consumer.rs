//! The consumer end of a legacy data pipe: learns of data from
//! `DATA_WAS_WRITTEN`, copies it out of the ring and gives the room back
//! with `DATA_WAS_READ`.

use mojo_legacy_wire::user_message::{
    DataPipeCommand, DataPipeControlMessage, DataPipeOptions, DataPipeState,
};
use mojo_wire_kit::{Guid, SharedMemory};

use super::ring::{Ring, advance};
use super::{DataPipeError, validate_state, whole_elements};

/// The consumer end of a legacy data pipe (`DataPipeConsumerDispatcher`).
#[derive(Debug)]
pub struct DataPipeConsumer<M> {
    ring: Ring<M>,
    options: DataPipeOptions,
    pipe_id: u64,
    buffer_guid: Guid,
    read_offset: u32,
    bytes_available: u32,
    peer_closed: bool,
    /// Bytes read but not yet handed out by `poll_control` (at most the
    /// capacity: they were available once).
    unacknowledged: u32,
}

impl<M: SharedMemory> DataPipeConsumer<M> {
    /// The consumer described by a `DATA_PIPE_CONSUMER` dispatcher state
    /// (or by [`new_pipe_states`](super::new_pipe_states)), over its ring
    /// region. The state and the region's size are checked first.
    pub fn new(state: &DataPipeState, ring: M) -> Result<Self, DataPipeError> {
        validate_state(state)?;
        Ok(Self {
            ring: Ring::new(ring, state.options.capacity_num_bytes)?,
            options: state.options,
            pipe_id: state.pipe_id,
            buffer_guid: state.buffer_guid,
            read_offset: state.offset,
            bytes_available: state.available,
            peer_closed: state.flags & DataPipeState::FLAG_PEER_CLOSED != 0,
            unacknowledged: 0,
        })
    }

    /// Copies up to `buf.len()` bytes (whole elements) out of the ring and
    /// returns how many. 0 means nothing is available; whether more can
    /// come is [`is_drained`](Self::is_drained). Bytes written before the
    /// producer closed stay readable.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, DataPipeError> {
        let n = self.peek(buf)?;
        Ok(self.discard(n))
    }

    /// Copies up to `buf.len()` bytes (whole elements) out of the ring
    /// without consuming them (the first half of a two-phase read) and
    /// returns how many.
    pub fn peek(&self, buf: &mut [u8]) -> Result<usize, DataPipeError> {
        let n = self.readable_now(buf.len());
        if n == 0 {
            return Ok(0);
        }
        let Some(dst) = buf.get_mut(..n as usize) else {
            return Ok(0);
        };
        self.ring.copy_out(self.read_offset, dst)?;
        Ok(n as usize)
    }

    /// Consumes up to `len` bytes (whole elements) without copying them
    /// (Mojo's discard, and the end of a two-phase read); returns how many.
    /// The room goes back to the producer with the next `DATA_WAS_READ`.
    pub fn discard(&mut self, len: usize) -> usize {
        let n = self.readable_now(len);
        self.read_offset = advance(self.read_offset, n, self.ring.capacity());
        self.bytes_available -= n;
        self.unacknowledged += n;
        n as usize
    }

    /// Whole elements of at most `len` bytes that can be taken now.
    fn readable_now(&self, len: usize) -> u32 {
        let wanted = u32::try_from(len).unwrap_or(u32::MAX);
        whole_elements(
            wanted
                .min(self.bytes_available)
                // Stay countable if the caller never polls.
                .min(u32::MAX - self.unacknowledged),
            self.options.element_num_bytes,
        )
    }

    /// Handles one user payload received on the control port.
    ///
    /// `DATA_WAS_WRITTEN` returns the bytes it makes available. A short
    /// payload, another command, or a count that would overfill the ring is
    /// an error and, as in Chromium, the producer is treated as closed from
    /// then on (what was already available stays readable).
    /// `payload` is the user payload after the message's dispatchers;
    /// handles attached to the message are the caller's to close.
    pub fn handle_control(&mut self, payload: &[u8]) -> Result<u32, DataPipeError> {
        let Ok(message) = DataPipeControlMessage::decode(payload) else {
            self.peer_closed = true;
            return Err(DataPipeError::ShortControlMessage { len: payload.len() });
        };
        if message.command != DataPipeCommand::DATA_WAS_WRITTEN {
            self.peer_closed = true;
            return Err(DataPipeError::UnexpectedCommand {
                command: message.command,
            });
        }
        let capacity = self.ring.capacity();
        match self.bytes_available.checked_add(message.num_bytes) {
            Some(available) if available <= capacity => {
                self.bytes_available = available;
                Ok(message.num_bytes)
            }
            _ => {
                self.peer_closed = true;
                Err(DataPipeError::WrittenPastCapacity {
                    num_bytes: message.num_bytes,
                    bytes_available: self.bytes_available,
                    capacity,
                })
            }
        }
    }

    /// The control port reported peer closure: the producer is gone (the
    /// ports layer reports it only after delivering every earlier control
    /// message, so nothing it wrote is lost).
    pub fn handle_peer_closed(&mut self) {
        self.peer_closed = true;
    }

    /// The next control message to send on the control port: one
    /// `DATA_WAS_READ` for everything read since the last call.
    pub fn poll_control(&mut self) -> Option<DataPipeControlMessage> {
        if self.unacknowledged == 0 {
            return None;
        }
        let num_bytes = std::mem::take(&mut self.unacknowledged);
        Some(DataPipeControlMessage {
            command: DataPipeCommand::DATA_WAS_READ,
            num_bytes,
        })
    }

    /// [`poll_control`](Self::poll_control), encoded as the user payload of
    /// the control-port message (8 bytes).
    pub fn poll_control_payload(&mut self) -> Option<Vec<u8>> {
        let message = self.poll_control()?;
        let mut payload = Vec::with_capacity(DataPipeControlMessage::LEN);
        message.encode(&mut payload).ok()?;
        Some(payload)
    }

    /// Bytes that may be read now.
    pub fn bytes_available(&self) -> u32 {
        self.bytes_available
    }

    /// Where the next byte comes from in the ring.
    pub fn read_offset(&self) -> u32 {
        self.read_offset
    }

    /// The ring capacity in bytes.
    pub fn capacity(&self) -> u32 {
        self.ring.capacity()
    }

    /// The creation options.
    pub fn options(&self) -> DataPipeOptions {
        self.options
    }

    /// Whether the producer is known to be closed.
    pub fn is_peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The producer is closed and everything it wrote has been read: no
    /// byte will ever come again.
    pub fn is_drained(&self) -> bool {
        self.peer_closed && self.bytes_available == 0
    }

    /// The ring's shared memory.
    pub fn ring(&self) -> &M {
        self.ring.memory()
    }

    /// The `DATA_PIPE_CONSUMER` state to send this end to another node with
    /// (the caller attaches the control port and the ring fd). Everything
    /// [`poll_control`](Self::poll_control) had must have been sent first,
    /// or the producer would never get that room back.
    pub fn serialize(&self) -> Result<DataPipeState, DataPipeError> {
        if self.unacknowledged != 0 {
            return Err(DataPipeError::UnsentControl {
                num_bytes: self.unacknowledged,
            });
        }
        Ok(DataPipeState {
            options: self.options,
            pipe_id: self.pipe_id,
            offset: self.read_offset,
            available: self.bytes_available,
            flags: if self.peer_closed {
                DataPipeState::FLAG_PEER_CLOSED
            } else {
                0
            },
            buffer_guid: self.buffer_guid,
        })
    }

    /// Gives the ring's memory back (after [`serialize`](Self::serialize),
    /// or to close this end).
    pub fn into_ring(self) -> M {
        self.ring.into_memory()
    }
}
