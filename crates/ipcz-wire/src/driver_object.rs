//! Driver objects as the MojoIpcz driver serializes them on POSIX (spec
//! §1.5-1.6): an 8-byte `ObjectHeader` `{u32 size, u32 type}`, type-specific
//! data, and fds that travel out of band.

use core::fmt;

use crate::codec;
use crate::error::{ObjectError, ObjectFieldError};
use crate::limits::{
    BUFFER_HEADER_SIZE, DATA_PIPE_HEADER_SIZE, MAX_SHARED_BUFFER_SIZE, OBJECT_HEADER_SIZE,
    TRANSPORT_HEADER_SIZE, WRAPPED_PLATFORM_HANDLE_HEADER_SIZE,
};
use crate::types::wire_enum;

wire_enum!(
    /// `ObjectBase::Type` (u32).
    ObjectType(u32) {
        /// A transport (socket).
        TRANSPORT = 0 => "Transport",
        /// A shared memory region.
        SHARED_BUFFER = 1 => "SharedBuffer",
        /// A mapping (not serializable).
        SHARED_BUFFER_MAPPING = 2 => "SharedBufferMapping",
        /// A bare fd.
        TRANSMISSIBLE_PLATFORM_HANDLE = 3 => "TransmissiblePlatformHandle",
        /// A Mojo platform handle.
        WRAPPED_PLATFORM_HANDLE = 4 => "WrappedPlatformHandle",
        /// A data pipe endpoint.
        DATA_PIPE = 5 => "DataPipe",
        /// A trap (not serializable).
        MOJO_TRAP = 6 => "MojoTrap",
        /// An invitation (not serializable).
        INVITATION = 7 => "Invitation",
        /// An envelope (Apple only, not serializable here).
        ENVELOPE = 8 => "Envelope",
    }
);

wire_enum!(
    /// `Transport::EndpointType` (u32): what the other end of a socket is.
    TransportEndpointType(u32) {
        /// A broker.
        BROKER = 0 => "broker",
        /// A non-broker.
        NON_BROKER = 1 => "non-broker",
    }
);

wire_enum!(
    /// SharedBuffer access mode (u32).
    BufferMode(u32) {
        /// Read-only region: 1 fd, `O_RDONLY`.
        READ_ONLY = 0 => "read-only",
        /// Writable region: 2 fds (`O_RDWR`, then `O_RDONLY`).
        WRITABLE = 1 => "writable",
        /// Unsafe region: 1 fd, `O_RDWR`.
        UNSAFE = 2 => "unsafe",
    }
);

wire_enum!(
    /// WrappedPlatformHandle wrapper type (u32).
    WrapperType(u32) {
        /// The fd itself.
        TRANSMISSIBLE = 0 => "transmissible",
        /// Fuchsia/Apple only; rejected on Linux.
        INDIRECT_FILE_DESCRIPTOR = 1 => "indirect-fd",
    }
);

wire_enum!(
    /// Data pipe endpoint type (u32).
    DataPipeEndpointType(u32) {
        /// Producer end.
        PRODUCER = 0 => "producer",
        /// Consumer end.
        CONSUMER = 1 => "consumer",
    }
);

/// `TransportHeader` (8 bytes) of a serialized Transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Transport {
    /// What the other end of the socket is.
    pub destination_type: TransportEndpointType,
    /// The other end is in the sender's own process.
    pub is_same_remote_process: bool,
    /// Trust hint (Windows-relevant).
    pub is_peer_trusted: bool,
    /// Trust hint (Windows-relevant).
    pub is_trusted_by_peer: bool,
}

/// A 128-bit `UnguessableToken` naming a shared memory region.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid {
    /// Low half (serialized first).
    pub low: u64,
    /// High half.
    pub high: u64,
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.high, self.low)
    }
}

/// `BufferHeader` (32 bytes) of a serialized SharedBuffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SharedBuffer {
    /// Region size in bytes.
    pub buffer_size: u32,
    /// Access mode.
    pub mode: BufferMode,
    /// The region's GUID (never zero).
    pub guid: Guid,
}

impl SharedBuffer {
    /// fds this buffer travels with: 2 for writable regions, else 1.
    pub fn fd_count(&self) -> usize {
        if self.mode == BufferMode::WRITABLE {
            2
        } else {
            1
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; BUFFER_HEADER_SIZE];
        codec::put_u32(&mut b, 0, BUFFER_HEADER_SIZE as u32);
        codec::put_u32(&mut b, 4, self.buffer_size);
        codec::put_u32(&mut b, 8, self.mode.0);
        codec::put_u64(&mut b, 16, self.guid.low);
        codec::put_u64(&mut b, 24, self.guid.high);
        out.extend_from_slice(&b);
    }

    /// Decodes a BufferHeader with Chrome's `SharedBuffer::Deserialize` checks.
    fn decode(object: &'static str, data: &[u8], num_fds: usize) -> Result<Self, ObjectError> {
        let field = |field, reason| ObjectError::Field {
            object,
            field,
            reason,
        };
        if data.len() < BUFFER_HEADER_SIZE {
            return Err(ObjectError::DataTooShort {
                object,
                len: data.len(),
                needed: BUFFER_HEADER_SIZE,
            });
        }
        if num_fds == 0 {
            return Err(ObjectError::Fds {
                object,
                got: 0,
                needed: "at least 1",
            });
        }
        let rd = |at| codec::u32_at(data, at).unwrap_or(0);
        let size = rd(0);
        if (size as usize) < BUFFER_HEADER_SIZE || size % 8 != 0 {
            return Err(field(
                "size",
                ObjectFieldError::HeaderSize {
                    size,
                    min: BUFFER_HEADER_SIZE as u32,
                },
            ));
        }
        let buffer_size = rd(4);
        let mode = BufferMode(rd(8));
        if !mode.is_known() {
            return Err(field("mode", ObjectFieldError::UnknownMode(mode.0)));
        }
        let guid = Guid {
            low: codec::u64_at(data, 16).unwrap_or(0),
            high: codec::u64_at(data, 24).unwrap_or(0),
        };
        if guid == Guid::default() {
            return Err(field("guid", ObjectFieldError::ZeroGuid));
        }
        if buffer_size == 0 || buffer_size > MAX_SHARED_BUFFER_SIZE {
            return Err(field(
                "buffer_size",
                ObjectFieldError::BufferSize(buffer_size),
            ));
        }
        if mode == BufferMode::WRITABLE && num_fds < 2 {
            return Err(ObjectError::Fds {
                object,
                got: num_fds,
                needed: "at least 2 (writable)",
            });
        }
        Ok(Self {
            buffer_size,
            mode,
            guid,
        })
    }
}

/// `WrappedPlatformHandleHeader` (8 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WrappedPlatformHandle {
    /// Always [`WrapperType::TRANSMISSIBLE`] on Linux.
    pub wrapper_type: WrapperType,
}

/// `DataPipeHeader` (24 bytes) plus the ring buffer's `BufferHeader`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DataPipe {
    /// Producer or consumer.
    pub endpoint_type: DataPipeEndpointType,
    /// Bytes per element (non-zero).
    pub element_size: u32,
    /// Start of this endpoint's data range in the ring buffer.
    pub ring_offset: u32,
    /// Length of that range.
    pub ring_size: u32,
    /// The ring buffer region.
    pub buffer: SharedBuffer,
}

/// A deserialized driver object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverObject {
    /// A socket (1 fd).
    Transport(Transport),
    /// Shared memory (1 or 2 fds).
    SharedBuffer(SharedBuffer),
    /// A bare fd (1 fd, no data).
    TransmissiblePlatformHandle,
    /// A Mojo platform handle (1 fd).
    WrappedPlatformHandle(WrappedPlatformHandle),
    /// A data pipe endpoint (fds of its buffer).
    DataPipe(DataPipe),
}

impl DriverObject {
    /// The ObjectHeader type.
    pub fn object_type(&self) -> ObjectType {
        match self {
            Self::Transport(_) => ObjectType::TRANSPORT,
            Self::SharedBuffer(_) => ObjectType::SHARED_BUFFER,
            Self::TransmissiblePlatformHandle => ObjectType::TRANSMISSIBLE_PLATFORM_HANDLE,
            Self::WrappedPlatformHandle(_) => ObjectType::WRAPPED_PLATFORM_HANDLE,
            Self::DataPipe(_) => ObjectType::DATA_PIPE,
        }
    }

    /// Number of fds Chrome sends with this object.
    pub fn fd_count(&self) -> usize {
        match self {
            Self::SharedBuffer(b) => b.fd_count(),
            Self::DataPipe(p) => p.buffer.fd_count(),
            Self::Transport(_)
            | Self::TransmissiblePlatformHandle
            | Self::WrappedPlatformHandle(_) => 1,
        }
    }

    /// Serialized length (ObjectHeader included).
    pub fn encoded_len(&self) -> usize {
        OBJECT_HEADER_SIZE
            + match self {
                Self::Transport(_) => TRANSPORT_HEADER_SIZE,
                Self::SharedBuffer(_) => BUFFER_HEADER_SIZE,
                Self::TransmissiblePlatformHandle => 0,
                Self::WrappedPlatformHandle(_) => WRAPPED_PLATFORM_HANDLE_HEADER_SIZE,
                Self::DataPipe(_) => DATA_PIPE_HEADER_SIZE + BUFFER_HEADER_SIZE,
            }
    }

    /// Appends the serialized bytes (ObjectHeader and data).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(OBJECT_HEADER_SIZE as u32).to_le_bytes());
        out.extend_from_slice(&self.object_type().0.to_le_bytes());
        match self {
            Self::Transport(t) => {
                out.extend_from_slice(&t.destination_type.0.to_le_bytes());
                out.extend_from_slice(&[
                    t.is_same_remote_process.into(),
                    t.is_peer_trusted.into(),
                    t.is_trusted_by_peer.into(),
                    0,
                ]);
            }
            Self::SharedBuffer(b) => b.encode_into(out),
            Self::TransmissiblePlatformHandle => {}
            Self::WrappedPlatformHandle(w) => {
                out.extend_from_slice(&(WRAPPED_PLATFORM_HANDLE_HEADER_SIZE as u32).to_le_bytes());
                out.extend_from_slice(&w.wrapper_type.0.to_le_bytes());
            }
            Self::DataPipe(p) => {
                let mut h = [0u8; DATA_PIPE_HEADER_SIZE];
                codec::put_u32(&mut h, 0, DATA_PIPE_HEADER_SIZE as u32);
                codec::put_u32(&mut h, 4, p.endpoint_type.0);
                codec::put_u32(&mut h, 8, p.element_size);
                codec::put_u32(&mut h, 16, p.ring_offset);
                codec::put_u32(&mut h, 20, p.ring_size);
                out.extend_from_slice(&h);
                p.buffer.encode_into(out);
            }
        }
    }

    /// Deserializes `bytes` (the object's whole byte array) that arrived with
    /// `num_fds` fds, with the checks of `Transport::DeserializeObject` and the
    /// per-type `Deserialize` functions of `mojo/core/ipcz_driver`.
    pub fn decode(bytes: &[u8], num_fds: usize) -> Result<Self, ObjectError> {
        if bytes.len() < OBJECT_HEADER_SIZE {
            return Err(ObjectError::TooShort { len: bytes.len() });
        }
        let size = codec::u32_at(bytes, 0).unwrap_or(0);
        let ty = ObjectType(codec::u32_at(bytes, 4).unwrap_or(0));
        if (size as usize) < OBJECT_HEADER_SIZE || size as usize > bytes.len() {
            return Err(ObjectError::HeaderSize {
                size,
                len: bytes.len(),
            });
        }
        let data = bytes.get(size as usize..).unwrap_or(&[]);
        match ty {
            ObjectType::TRANSPORT => decode_transport(data, num_fds).map(Self::Transport),
            ObjectType::SHARED_BUFFER => {
                SharedBuffer::decode("SharedBuffer", data, num_fds).map(Self::SharedBuffer)
            }
            ObjectType::TRANSMISSIBLE_PLATFORM_HANDLE => {
                if num_fds != 1 {
                    return Err(ObjectError::Fds {
                        object: "TransmissiblePlatformHandle",
                        got: num_fds,
                        needed: "exactly 1",
                    });
                }
                Ok(Self::TransmissiblePlatformHandle)
            }
            ObjectType::WRAPPED_PLATFORM_HANDLE => {
                decode_wrapped(data, num_fds).map(Self::WrappedPlatformHandle)
            }
            ObjectType::DATA_PIPE => decode_data_pipe(data, num_fds).map(Self::DataPipe),
            other => Err(ObjectError::UnsupportedType(other)),
        }
    }

    /// Like [`Self::decode`], but also requires Chrome's exact encoding:
    /// [`ObjectError::NotCanonical`] names the first differing byte and field.
    pub fn decode_exact(bytes: &[u8], num_fds: usize) -> Result<Self, ObjectError> {
        let object = Self::decode(bytes, num_fds)?;
        let mut out = Vec::with_capacity(bytes.len());
        object.encode(&mut out);
        if out != bytes {
            let offset = first_difference(&out, bytes);
            return Err(ObjectError::NotCanonical {
                offset,
                field: object.field_at(offset),
            });
        }
        Ok(object)
    }

    /// Name of the field at byte `at` of this object's encoding, e.g.
    /// `SharedBuffer.mode`.
    pub fn field_at(&self, at: usize) -> &'static str {
        if at < 4 {
            return "ObjectHeader.size";
        }
        if at < 8 {
            return "ObjectHeader.type";
        }
        let d = at - 8;
        match self {
            Self::Transport(_) => match d {
                0..=3 => "Transport.destination_type",
                4 => "Transport.is_same_remote_process",
                5 => "Transport.is_peer_trusted",
                6 => "Transport.is_trusted_by_peer",
                7 => "Transport.padding",
                _ => "Transport trailing bytes",
            },
            Self::SharedBuffer(_) => match d {
                0..=3 => "SharedBuffer.size",
                4..=7 => "SharedBuffer.buffer_size",
                8..=11 => "SharedBuffer.mode",
                12..=15 => "SharedBuffer.padding",
                16..=23 => "SharedBuffer.guid_low",
                24..=31 => "SharedBuffer.guid_high",
                _ => "SharedBuffer trailing bytes",
            },
            Self::TransmissiblePlatformHandle => "TransmissiblePlatformHandle trailing bytes",
            Self::WrappedPlatformHandle(_) => match d {
                0..=3 => "WrappedPlatformHandle.size",
                4..=7 => "WrappedPlatformHandle.type",
                _ => "WrappedPlatformHandle trailing bytes",
            },
            Self::DataPipe(_) => match d {
                0..=3 => "DataPipe.size",
                4..=7 => "DataPipe.endpoint_type",
                8..=11 => "DataPipe.element_size",
                12..=15 => "DataPipe.padding",
                16..=19 => "DataPipe.ring_buffer_state.offset",
                20..=23 => "DataPipe.ring_buffer_state.size",
                24..=27 => "DataPipe.buffer.size",
                28..=31 => "DataPipe.buffer.buffer_size",
                32..=35 => "DataPipe.buffer.mode",
                36..=39 => "DataPipe.buffer.padding",
                40..=47 => "DataPipe.buffer.guid_low",
                48..=55 => "DataPipe.buffer.guid_high",
                _ => "DataPipe trailing bytes",
            },
        }
    }
}

pub(crate) fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

fn decode_transport(data: &[u8], num_fds: usize) -> Result<Transport, ObjectError> {
    if data.len() < TRANSPORT_HEADER_SIZE {
        return Err(ObjectError::DataTooShort {
            object: "Transport",
            len: data.len(),
            needed: TRANSPORT_HEADER_SIZE,
        });
    }
    if num_fds == 0 {
        return Err(ObjectError::Fds {
            object: "Transport",
            got: 0,
            needed: "at least 1",
        });
    }
    let flag = |at| codec::u8_at(data, at).unwrap_or(0) != 0;
    Ok(Transport {
        destination_type: TransportEndpointType(codec::u32_at(data, 0).unwrap_or(0)),
        is_same_remote_process: flag(4),
        is_peer_trusted: flag(5),
        is_trusted_by_peer: flag(6),
    })
}

fn decode_wrapped(data: &[u8], num_fds: usize) -> Result<WrappedPlatformHandle, ObjectError> {
    const OBJ: &str = "WrappedPlatformHandle";
    if data.len() < WRAPPED_PLATFORM_HANDLE_HEADER_SIZE {
        return Err(ObjectError::DataTooShort {
            object: OBJ,
            len: data.len(),
            needed: WRAPPED_PLATFORM_HANDLE_HEADER_SIZE,
        });
    }
    if num_fds != 1 {
        return Err(ObjectError::Fds {
            object: OBJ,
            got: num_fds,
            needed: "exactly 1",
        });
    }
    let size = codec::u32_at(data, 0).unwrap_or(0);
    if (size as usize) < WRAPPED_PLATFORM_HANDLE_HEADER_SIZE || size % 8 != 0 {
        return Err(ObjectError::Field {
            object: OBJ,
            field: "size",
            reason: ObjectFieldError::HeaderSize {
                size,
                min: WRAPPED_PLATFORM_HANDLE_HEADER_SIZE as u32,
            },
        });
    }
    let wrapper_type = WrapperType(codec::u32_at(data, 4).unwrap_or(0));
    if wrapper_type != WrapperType::TRANSMISSIBLE {
        return Err(ObjectError::Field {
            object: OBJ,
            field: "type",
            reason: ObjectFieldError::UnsupportedWrapper(wrapper_type),
        });
    }
    Ok(WrappedPlatformHandle { wrapper_type })
}

fn decode_data_pipe(data: &[u8], num_fds: usize) -> Result<DataPipe, ObjectError> {
    const OBJ: &str = "DataPipe";
    let field = |field, reason| ObjectError::Field {
        object: OBJ,
        field,
        reason,
    };
    if data.len() < DATA_PIPE_HEADER_SIZE {
        return Err(ObjectError::DataTooShort {
            object: OBJ,
            len: data.len(),
            needed: DATA_PIPE_HEADER_SIZE,
        });
    }
    let rd = |at| codec::u32_at(data, at).unwrap_or(0);
    let size = rd(0);
    if (size as usize) < DATA_PIPE_HEADER_SIZE || size % 8 != 0 {
        return Err(field(
            "size",
            ObjectFieldError::HeaderSize {
                size,
                min: DATA_PIPE_HEADER_SIZE as u32,
            },
        ));
    }
    let Some(buffer_data) = data.get(size as usize..) else {
        return Err(field("size", ObjectFieldError::SizePastData { size }));
    };
    let buffer = SharedBuffer::decode("DataPipe.buffer", buffer_data, num_fds)?;
    let element_size = rd(8);
    if element_size == 0 || buffer.buffer_size % element_size != 0 {
        return Err(field(
            "element_size",
            ObjectFieldError::ElementSize {
                element_size,
                buffer_size: buffer.buffer_size,
            },
        ));
    }
    let capacity = buffer.buffer_size;
    let ring_offset = rd(16);
    let ring_size = rd(20);
    if ring_offset >= capacity {
        return Err(field(
            "ring_buffer_state.offset",
            ObjectFieldError::RingOffset {
                offset: ring_offset,
                capacity,
            },
        ));
    }
    if ring_size > capacity || ring_size % element_size != 0 {
        return Err(field(
            "ring_buffer_state.size",
            ObjectFieldError::RingSize {
                size: ring_size,
                capacity,
                element_size,
            },
        ));
    }
    Ok(DataPipe {
        endpoint_type: DataPipeEndpointType(rd(4)),
        element_size,
        ring_offset,
        ring_size,
        buffer,
    })
}

/// The fds of a frame that belong to one driver object: `count` fds starting
/// at index `first` of the frame's fd list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FdRange {
    /// `first_driver_handle`.
    pub first: u16,
    /// `num_driver_handles`.
    pub count: u16,
}

impl FdRange {
    /// Indices into the frame's fd list.
    pub fn range(self) -> core::ops::Range<usize> {
        let first = usize::from(self.first);
        first..first + usize::from(self.count)
    }
}

/// A driver object of a message together with the fds assigned to it by its
/// `DriverObjectData` record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachedObject {
    /// The object.
    pub object: DriverObject,
    /// Its fds.
    pub fds: FdRange,
}

impl fmt::Display for DriverObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fds = self.fd_count();
        let plural = if fds == 1 { "" } else { "s" };
        match self {
            Self::Transport(t) => write!(
                f,
                "Transport(to {}{}{}{}, {fds} fd{plural})",
                t.destination_type,
                if t.is_same_remote_process {
                    ", same process"
                } else {
                    ""
                },
                if t.is_peer_trusted {
                    ", peer trusted"
                } else {
                    ""
                },
                if t.is_trusted_by_peer {
                    ", trusted by peer"
                } else {
                    ""
                },
            ),
            Self::SharedBuffer(b) => write!(
                f,
                "SharedBuffer({}, {} B, {fds} fd{plural})",
                b.mode, b.buffer_size
            ),
            Self::TransmissiblePlatformHandle => write!(f, "TransmissiblePlatformHandle(1 fd)"),
            Self::WrappedPlatformHandle(w) => {
                write!(f, "WrappedPlatformHandle({}, 1 fd)", w.wrapper_type)
            }
            Self::DataPipe(p) => write!(
                f,
                "DataPipe({}, element {} B, ring {}+{}, buffer {} {} B, {fds} fd{plural})",
                p.endpoint_type,
                p.element_size,
                p.ring_offset,
                p.ring_size,
                p.buffer.mode,
                p.buffer.buffer_size
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_have_the_documented_sizes_and_fd_counts() {
        let buffer = SharedBuffer {
            buffer_size: 4096,
            mode: BufferMode::WRITABLE,
            guid: Guid { low: 1, high: 2 },
        };
        let cases = [
            (DriverObject::Transport(Transport::default()), 16, 1),
            (DriverObject::SharedBuffer(buffer), 40, 2),
            (DriverObject::TransmissiblePlatformHandle, 8, 1),
            (
                DriverObject::WrappedPlatformHandle(WrappedPlatformHandle::default()),
                16,
                1,
            ),
            (
                DriverObject::DataPipe(DataPipe {
                    endpoint_type: DataPipeEndpointType::CONSUMER,
                    element_size: 4,
                    ring_offset: 8,
                    ring_size: 16,
                    buffer: SharedBuffer {
                        mode: BufferMode::UNSAFE,
                        ..buffer
                    },
                }),
                64,
                1,
            ),
        ];
        for (object, len, fds) in cases {
            let mut out = Vec::new();
            object.encode(&mut out);
            assert_eq!(out.len(), len);
            assert_eq!(object.encoded_len(), len);
            assert_eq!(object.fd_count(), fds);
            assert_eq!(DriverObject::decode_exact(&out, fds), Ok(object));
        }
    }

    #[test]
    fn shared_buffer_checks() {
        let mut out = Vec::new();
        DriverObject::SharedBuffer(SharedBuffer {
            buffer_size: 64,
            mode: BufferMode::WRITABLE,
            guid: Guid { low: 1, high: 0 },
        })
        .encode(&mut out);
        assert!(matches!(
            DriverObject::decode(&out, 1),
            Err(ObjectError::Fds { got: 1, .. })
        ));
        let mut bad = out.clone();
        bad[16] = 3;
        assert!(matches!(
            DriverObject::decode(&bad, 2),
            Err(ObjectError::Field { field: "mode", .. })
        ));
        let mut bad = out.clone();
        bad[24] = 0;
        assert!(matches!(
            DriverObject::decode(&bad, 2),
            Err(ObjectError::Field { field: "guid", .. })
        ));
        let mut bad = out;
        bad[4] = 2;
        assert_eq!(
            DriverObject::decode(&bad, 2),
            Err(ObjectError::UnsupportedType(
                ObjectType::SHARED_BUFFER_MAPPING
            ))
        );
    }
}
