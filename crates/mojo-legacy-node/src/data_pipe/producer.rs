//! The producer end of a legacy data pipe: writes into the ring and
//! announces them with `DATA_WAS_WRITTEN`; gets room back from
//! `DATA_WAS_READ`.

use mojo_legacy_wire::user_message::{
    DataPipeCommand, DataPipeControlMessage, DataPipeOptions, DataPipeState,
};
use mojo_wire_kit::{Guid, SharedMemory};

use super::ring::{Ring, advance};
use super::{DataPipeError, validate_state, whole_elements};

/// The producer end of a legacy data pipe (`DataPipeProducerDispatcher`).
#[derive(Debug)]
pub struct DataPipeProducer<M> {
    ring: Ring<M>,
    options: DataPipeOptions,
    pipe_id: u64,
    buffer_guid: Guid,
    write_offset: u32,
    available_capacity: u32,
    peer_closed: bool,
    /// Bytes written but not yet handed out by `poll_control`. Writes since
    /// the last poll are announced together, so this is one message at most
    /// and never exceeds the capacity.
    unannounced: u32,
}

impl<M: SharedMemory> DataPipeProducer<M> {
    /// The producer described by a `DATA_PIPE_PRODUCER` dispatcher state
    /// (or by [`new_pipe_states`](super::new_pipe_states)), over its ring
    /// region. The state and the region's size are checked first.
    pub fn new(state: &DataPipeState, ring: M) -> Result<Self, DataPipeError> {
        validate_state(state)?;
        Ok(Self {
            ring: Ring::new(ring, state.options.capacity_num_bytes)?,
            options: state.options,
            pipe_id: state.pipe_id,
            buffer_guid: state.buffer_guid,
            write_offset: state.offset,
            available_capacity: state.available,
            peer_closed: state.flags & DataPipeState::FLAG_PEER_CLOSED != 0,
            unannounced: 0,
        })
    }

    /// Copies as many whole elements of `data` into the ring as there is
    /// room for, and returns how many bytes that was (0 when the ring is
    /// full). A consumer that is known to be closed is
    /// [`DataPipeError::PeerClosed`].
    pub fn write(&mut self, data: &[u8]) -> Result<usize, DataPipeError> {
        if self.peer_closed {
            return Err(DataPipeError::PeerClosed);
        }
        let wanted = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let n = whole_elements(
            wanted
                .min(self.available_capacity)
                // Stay countable if the caller never polls.
                .min(u32::MAX - self.unannounced),
            self.options.element_num_bytes,
        );
        let Some(chunk) = data.get(..n as usize) else {
            return Ok(0);
        };
        if n == 0 {
            return Ok(0);
        }
        self.ring.copy_in(self.write_offset, chunk)?;
        self.write_offset = advance(self.write_offset, n, self.ring.capacity());
        self.available_capacity -= n;
        self.unannounced += n;
        Ok(n as usize)
    }

    /// Handles one user payload received on the control port.
    ///
    /// `DATA_WAS_READ` returns the room it gives back. A short payload or
    /// another command is an error and, as in Chromium, the consumer is
    /// treated as closed from then on. A count that would free more than
    /// the capacity is [`DataPipeError::ReadPastCapacity`] and ignored.
    /// `payload` is the user payload after the message's dispatchers;
    /// handles attached to the message are the caller's to close.
    pub fn handle_control(&mut self, payload: &[u8]) -> Result<u32, DataPipeError> {
        let Ok(message) = DataPipeControlMessage::decode(payload) else {
            self.peer_closed = true;
            return Err(DataPipeError::ShortControlMessage { len: payload.len() });
        };
        if message.command != DataPipeCommand::DATA_WAS_READ {
            self.peer_closed = true;
            return Err(DataPipeError::UnexpectedCommand {
                command: message.command,
            });
        }
        let capacity = self.ring.capacity();
        match self.available_capacity.checked_add(message.num_bytes) {
            Some(free) if free <= capacity => {
                self.available_capacity = free;
                Ok(message.num_bytes)
            }
            _ => Err(DataPipeError::ReadPastCapacity {
                num_bytes: message.num_bytes,
                available_capacity: self.available_capacity,
                capacity,
            }),
        }
    }

    /// The control port reported peer closure: the consumer is gone.
    pub fn handle_peer_closed(&mut self) {
        self.peer_closed = true;
    }

    /// The next control message to send on the control port: one
    /// `DATA_WAS_WRITTEN` for everything written since the last call.
    pub fn poll_control(&mut self) -> Option<DataPipeControlMessage> {
        if self.unannounced == 0 {
            return None;
        }
        let num_bytes = std::mem::take(&mut self.unannounced);
        Some(DataPipeControlMessage {
            command: DataPipeCommand::DATA_WAS_WRITTEN,
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

    /// Bytes that may be written now.
    pub fn available_capacity(&self) -> u32 {
        self.available_capacity
    }

    /// Where the next byte goes in the ring.
    pub fn write_offset(&self) -> u32 {
        self.write_offset
    }

    /// The ring capacity in bytes.
    pub fn capacity(&self) -> u32 {
        self.ring.capacity()
    }

    /// The creation options.
    pub fn options(&self) -> DataPipeOptions {
        self.options
    }

    /// Whether the consumer is known to be closed.
    pub fn is_peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The ring's shared memory.
    pub fn ring(&self) -> &M {
        self.ring.memory()
    }

    /// The `DATA_PIPE_PRODUCER` state to send this end to another node with
    /// (the caller attaches the control port and the ring fd). Everything
    /// [`poll_control`](Self::poll_control) had must have been sent first,
    /// or the consumer would never hear of those bytes.
    pub fn serialize(&self) -> Result<DataPipeState, DataPipeError> {
        if self.unannounced != 0 {
            return Err(DataPipeError::UnsentControl {
                num_bytes: self.unannounced,
            });
        }
        Ok(DataPipeState {
            options: self.options,
            pipe_id: self.pipe_id,
            offset: self.write_offset,
            available: self.available_capacity,
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
