//! The consumer end of a MojoIpcz data pipe: produced counts grow its data
//! range; reads take from the front and are announced back.

use ipcz_wire::driver_object::{DataPipe, DataPipeEndpointType, SharedBuffer};
use mojo_wire_kit::SharedMemory;

use super::ring::{Ring, advance};
use super::{CONTROL_PARCEL_LEN, DataPipeError, DataRange, split_parcel, validate, whole_elements};

/// The consumer end of a MojoIpcz data pipe (a `DataPipe` of type
/// `kConsumer`).
#[derive(Debug)]
pub struct DataPipeConsumer<M> {
    ring: Ring<M>,
    element_size: u32,
    buffer: SharedBuffer,
    /// Readable bytes.
    data: DataRange,
    peer_closed: bool,
    /// Consumed since the last `poll_control`.
    unacknowledged: u32,
}

impl<M: SharedMemory> DataPipeConsumer<M> {
    /// The consumer a DataPipe driver object describes (or one from
    /// [`new_pipe_objects`](super::new_pipe_objects)), over its ring
    /// region. The object and the region's size are checked first.
    pub fn new(object: &DataPipe, ring: M) -> Result<Self, DataPipeError> {
        let data = validate(object, DataPipeEndpointType::CONSUMER)?;
        Ok(Self {
            ring: Ring::new(ring, object.buffer.buffer_size)?,
            element_size: object.element_size,
            buffer: object.buffer,
            data,
            peer_closed: false,
            unacknowledged: 0,
        })
    }

    /// Copies up to `buf.len()` bytes (whole elements) out of the ring and
    /// returns how many. 0 means nothing is readable; whether more can come
    /// is [`is_drained`](Self::is_drained). Bytes produced before the
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
        self.ring.copy_out(self.data.offset, dst)?;
        Ok(n as usize)
    }

    /// Consumes up to `len` bytes (whole elements) without copying them
    /// (Mojo's discard, and the end of a two-phase read); returns how many.
    /// The room goes back to the producer with the next control parcel.
    pub fn discard(&mut self, len: usize) -> usize {
        let n = self.readable_now(len);
        self.data = DataRange {
            offset: advance(self.data.offset, n, self.ring.capacity()),
            size: self.data.size - n,
        };
        self.unacknowledged += n;
        n as usize
    }

    /// Whole elements of at most `len` bytes that can be taken now.
    fn readable_now(&self, len: usize) -> u32 {
        let wanted = u32::try_from(len).unwrap_or(u32::MAX);
        whole_elements(
            wanted
                .min(self.data.size)
                // Stay countable if the caller never polls.
                .min(u32::MAX - self.unacknowledged),
            self.element_size,
        )
    }

    /// Handles one parcel received on the control portal (its data and how
    /// many handles it carried): each 4-byte count in it is bytes the
    /// producer wrote. Returns the total.
    ///
    /// A count larger than the room left is
    /// [`DataPipeError::ProducedPastCapacity`] and ignored (Chromium ignores
    /// it too). A parcel that does not end on a whole count, is empty, or
    /// carries handles ends, after its counts, with the producer treated as
    /// closed ([`DataPipeError::ShortControlParcel`],
    /// [`DataPipeError::ControlParcelWithHandles`]); what is readable stays
    /// readable. Attached handles are the caller's to close.
    pub fn handle_control(
        &mut self,
        data: &[u8],
        num_handles: usize,
    ) -> Result<u32, DataPipeError> {
        let (counts, short) = split_parcel(data, num_handles);
        let mut total = 0u32;
        let mut ignored = None;
        for n in counts {
            let free = self.ring.capacity() - self.data.size;
            if n > free {
                ignored.get_or_insert(DataPipeError::ProducedPastCapacity { num_bytes: n, free });
                continue;
            }
            self.data.size += n;
            total = total.saturating_add(n);
        }
        if let Some(e) = short {
            self.peer_closed = true;
            return Err(e);
        }
        ignored.map_or(Ok(total), Err)
    }

    /// The control portal reported peer closure: the producer is gone.
    pub fn handle_peer_closed(&mut self) {
        self.peer_closed = true;
    }

    /// The next count to put on the control portal: everything consumed
    /// since the last call (never zero).
    pub fn poll_control(&mut self) -> Option<u32> {
        if self.unacknowledged == 0 {
            return None;
        }
        Some(std::mem::take(&mut self.unacknowledged))
    }

    /// [`poll_control`](Self::poll_control) as the parcel's 4 data bytes.
    pub fn poll_control_parcel(&mut self) -> Option<[u8; CONTROL_PARCEL_LEN]> {
        self.poll_control().map(u32::to_le_bytes)
    }

    /// Bytes that may be read now.
    pub fn bytes_available(&self) -> u32 {
        self.data.size
    }

    /// Offset of the next byte to read.
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

    /// Whether the producer is known to be closed.
    pub fn is_peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The producer is closed and everything it wrote has been read.
    pub fn is_drained(&self) -> bool {
        self.peer_closed && self.data.size == 0
    }

    /// The ring's shared memory.
    pub fn ring(&self) -> &M {
        self.ring.memory()
    }

    /// The DataPipe driver object to send this end in a parcel with (the
    /// caller attaches the ring's fd and appends the control portal).
    /// Everything [`poll_control`](Self::poll_control) had must have been
    /// put first, or the producer would never get that room back.
    pub fn serialize(&self) -> Result<DataPipe, DataPipeError> {
        if self.unacknowledged != 0 {
            return Err(DataPipeError::UnsentControl {
                num_bytes: self.unacknowledged,
            });
        }
        Ok(DataPipe {
            endpoint_type: DataPipeEndpointType::CONSUMER,
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
