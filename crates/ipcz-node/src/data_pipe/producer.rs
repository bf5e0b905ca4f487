//! The producer end of a MojoIpcz data pipe: writes after its data range
//! and announces them; consumed counts shrink the range from the front.

use ipcz_wire::driver_object::{DataPipe, DataPipeEndpointType, SharedBuffer};
use mojo_wire_kit::SharedMemory;

use super::ring::{Ring, advance};
use super::{CONTROL_PARCEL_LEN, DataPipeError, DataRange, split_parcel, validate, whole_elements};

/// The producer end of a MojoIpcz data pipe (a `DataPipe` of type
/// `kProducer`).
#[derive(Debug)]
pub struct DataPipeProducer<M> {
    ring: Ring<M>,
    element_size: u32,
    buffer: SharedBuffer,
    /// Written and not yet consumed.
    data: DataRange,
    peer_closed: bool,
    /// Written since the last `poll_control` (announced together; at most
    /// the capacity while the peer is honest, and never past `u32::MAX`).
    unannounced: u32,
}

impl<M: SharedMemory> DataPipeProducer<M> {
    /// The producer a DataPipe driver object describes (or one from
    /// [`new_pipe_objects`](super::new_pipe_objects)), over its ring
    /// region. The object and the region's size are checked first.
    pub fn new(object: &DataPipe, ring: M) -> Result<Self, DataPipeError> {
        let data = validate(object, DataPipeEndpointType::PRODUCER)?;
        Ok(Self {
            ring: Ring::new(ring, object.buffer.buffer_size)?,
            element_size: object.element_size,
            buffer: object.buffer,
            data,
            peer_closed: false,
            unannounced: 0,
        })
    }

    /// Copies as many whole elements of `data` into the ring as there is
    /// room for and returns how many bytes that was (0 when full). A
    /// consumer known to be closed is [`DataPipeError::PeerClosed`].
    pub fn write(&mut self, data: &[u8]) -> Result<usize, DataPipeError> {
        if self.peer_closed {
            return Err(DataPipeError::PeerClosed);
        }
        let wanted = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let n = whole_elements(
            wanted
                .min(self.available_capacity())
                // Stay countable if the caller never polls.
                .min(u32::MAX - self.unannounced),
            self.element_size,
        );
        let Some(chunk) = data.get(..n as usize) else {
            return Ok(0);
        };
        if n == 0 {
            return Ok(0);
        }
        let capacity = self.ring.capacity();
        let end = advance(self.data.offset, self.data.size, capacity);
        self.ring.copy_in(end, chunk)?;
        self.data.size += n;
        self.unannounced += n;
        Ok(n as usize)
    }

    /// Handles one parcel received on the control portal (its data and how
    /// many handles it carried): each 4-byte count in it is bytes the
    /// consumer consumed. Returns the total.
    ///
    /// A count larger than what is written and unconsumed is
    /// [`DataPipeError::ConsumedPastWritten`] and ignored (Chromium ignores
    /// it too). A parcel that does not end on a whole count, is empty, or
    /// carries handles ends, after its counts, with the consumer treated as
    /// closed ([`DataPipeError::ShortControlParcel`],
    /// [`DataPipeError::ControlParcelWithHandles`]). Attached handles are
    /// the caller's to close.
    pub fn handle_control(
        &mut self,
        data: &[u8],
        num_handles: usize,
    ) -> Result<u32, DataPipeError> {
        let (counts, short) = split_parcel(data, num_handles);
        let mut total = 0u32;
        let mut ignored = None;
        for n in counts {
            if n > self.data.size {
                ignored.get_or_insert(DataPipeError::ConsumedPastWritten {
                    num_bytes: n,
                    data_size: self.data.size,
                });
                continue;
            }
            self.data = DataRange {
                offset: advance(self.data.offset, n, self.ring.capacity()),
                size: self.data.size - n,
            };
            total = total.saturating_add(n);
        }
        if let Some(e) = short {
            self.peer_closed = true;
            return Err(e);
        }
        ignored.map_or(Ok(total), Err)
    }

    /// The control portal reported peer closure: the consumer is gone.
    pub fn handle_peer_closed(&mut self) {
        self.peer_closed = true;
    }

    /// The next count to put on the control portal: everything written
    /// since the last call (never zero).
    pub fn poll_control(&mut self) -> Option<u32> {
        if self.unannounced == 0 {
            return None;
        }
        Some(std::mem::take(&mut self.unannounced))
    }

    /// [`poll_control`](Self::poll_control) as the parcel's 4 data bytes.
    pub fn poll_control_parcel(&mut self) -> Option<[u8; CONTROL_PARCEL_LEN]> {
        self.poll_control().map(u32::to_le_bytes)
    }

    /// Bytes that may be written now.
    pub fn available_capacity(&self) -> u32 {
        self.ring.capacity() - self.data.size
    }

    /// Bytes written that the consumer has not consumed yet.
    pub fn unconsumed(&self) -> u32 {
        self.data.size
    }

    /// Offset of the oldest unconsumed byte.
    pub fn offset(&self) -> u32 {
        self.data.offset
    }

    /// The ring capacity in bytes.
    pub fn capacity(&self) -> u32 {
        self.ring.capacity()
    }

    /// Bytes per element.
    pub fn element_size(&self) -> u32 {
        self.element_size
    }

    /// Whether the consumer is known to be closed.
    pub fn is_peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The ring's shared memory.
    pub fn ring(&self) -> &M {
        self.ring.memory()
    }

    /// The DataPipe driver object to send this end in a parcel with (the
    /// caller attaches the ring's fd and appends the control portal).
    /// Everything [`poll_control`](Self::poll_control) had must have been
    /// put first, or the consumer would never hear of those bytes.
    pub fn serialize(&self) -> Result<DataPipe, DataPipeError> {
        if self.unannounced != 0 {
            return Err(DataPipeError::UnsentControl {
                num_bytes: self.unannounced,
            });
        }
        Ok(DataPipe {
            endpoint_type: DataPipeEndpointType::PRODUCER,
            element_size: self.element_size,
            ring_offset: self.data.offset,
            ring_size: self.data.size,
            buffer: self.buffer,
        })
    }

    /// Gives the ring's memory back (after [`serialize`](Self::serialize),
    /// or to close this end).
    pub fn into_ring(self) -> M {
        self.ring.into_memory()
    }
}
