//! Driver objects as the MojoIpcz driver serializes them on POSIX (spec
//! §1.5-1.6): an 8-byte `ObjectHeader` `{u32 size, u32 type}`, type-specific
//! data, and fds that travel out of band. Every header is declared once
//! below as a zerocopy layout; decoders, encoders and the field names of
//! `decode_exact` errors and spans all come from those declarations.

use core::fmt;

use mojo_wire_kit::le::{U32, U64};
use mojo_wire_kit::{
    Guid, RegionMode, WireLayout, Writer, append_or_rollback, protocol_enum, require_canonical,
    wire_layout,
};

use crate::error::{ObjectError, ObjectFieldError};
use crate::layout_ref::prefix_ref;
use crate::limits::{
    BUFFER_HEADER_SIZE, DATA_PIPE_HEADER_SIZE, MAX_SHARED_BUFFER_SIZE, OBJECT_HEADER_SIZE,
    TRANSPORT_HEADER_SIZE, WRAPPED_PLATFORM_HANDLE_HEADER_SIZE,
};

protocol_enum! {
    /// `ObjectBase::Type` (u32).
    pub struct ObjectType(pub u32), unknown "unknown({})", debug bare {
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
}

protocol_enum! {
    /// `Transport::EndpointType` (u32): what the other end of a socket is.
    pub struct TransportEndpointType(pub u32), unknown "unknown({})", debug bare {
        /// A broker.
        BROKER = 0 => "broker",
        /// A non-broker.
        NON_BROKER = 1 => "non-broker",
    }
}

protocol_enum! {
    /// WrappedPlatformHandle wrapper type (u32).
    pub struct WrapperType(pub u32), unknown "unknown({})", debug bare {
        /// The fd itself.
        TRANSMISSIBLE = 0 => "transmissible",
        /// Fuchsia/Apple only; rejected on Linux.
        INDIRECT_FILE_DESCRIPTOR = 1 => "indirect-fd",
    }
}

protocol_enum! {
    /// Data pipe endpoint type (u32).
    pub struct DataPipeEndpointType(pub u32), unknown "unknown({})", debug bare {
        /// Producer end.
        PRODUCER = 0 => "producer",
        /// Consumer end.
        CONSUMER = 1 => "consumer",
    }
}

wire_layout! {
    /// `ObjectHeader`: starts every serialized driver object.
    pub struct ObjectHeaderWire: size 8, names "ObjectHeader" {
        /// Header size (8); the type-specific data starts here.
        pub size: U32,
        /// [`ObjectType`].
        pub object_type: U32 => "ObjectHeader.type",
    }
}

wire_layout! {
    /// `TransportHeader`: the data of a Transport.
    pub struct TransportHeaderWire: size 8, names "Transport" {
        /// [`TransportEndpointType`].
        pub destination_type: U32,
        /// C++ bool.
        pub is_same_remote_process: u8,
        /// C++ bool.
        pub is_peer_trusted: u8,
        /// C++ bool.
        pub is_trusted_by_peer: u8,
        /// Zero.
        pub padding: u8,
    }
}

wire_layout! {
    /// `BufferHeader`: the data of a SharedBuffer, and the tail of a DataPipe.
    /// The GUID is written low half first.
    pub struct BufferHeaderWire: size 32, names "SharedBuffer" {
        /// Header size (32).
        pub size: U32,
        /// Region size in bytes.
        pub buffer_size: U32,
        /// [`RegionMode`] wire value.
        pub mode: U32,
        /// Zero.
        pub padding: U32,
        /// GUID low half.
        pub guid_low: U64,
        /// GUID high half.
        pub guid_high: U64,
    }
}

wire_layout! {
    /// `WrappedPlatformHandleHeader`.
    pub struct WrappedPlatformHandleHeaderWire: size 8, names "WrappedPlatformHandle" {
        /// Header size (8).
        pub size: U32,
        /// [`WrapperType`].
        pub wrapper_type: U32 => "WrappedPlatformHandle.type",
    }
}

wire_layout! {
    /// `DataPipeHeader` (a [`BufferHeaderWire`] follows).
    pub struct DataPipeHeaderWire: size 24, names "DataPipe" {
        /// Header size (24); the ring buffer's BufferHeader starts here.
        pub size: U32,
        /// [`DataPipeEndpointType`].
        pub endpoint_type: U32,
        /// Bytes per element.
        pub element_size: U32,
        /// Zero.
        pub padding: U32,
        /// This endpoint's data range in the ring buffer: start.
        pub ring_offset: U32 => "DataPipe.ring_buffer_state.offset",
        /// Its length.
        pub ring_size: U32 => "DataPipe.ring_buffer_state.size",
    }
}

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

impl Transport {
    fn to_wire(self) -> TransportHeaderWire {
        TransportHeaderWire {
            destination_type: U32::new(self.destination_type.0),
            is_same_remote_process: self.is_same_remote_process.into(),
            is_peer_trusted: self.is_peer_trusted.into(),
            is_trusted_by_peer: self.is_trusted_by_peer.into(),
            padding: 0,
        }
    }
}

/// `BufferHeader` (32 bytes) of a serialized SharedBuffer.
///
/// The mode is the shared [`RegionMode`]: the receiver rejects any other
/// wire value (as Chrome does), so nothing unknown needs to survive a round
/// trip, and the wire value is converted in exactly one place
/// (the BufferHeader decoder's `RegionMode::from_wire`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SharedBuffer {
    /// Region size in bytes.
    pub buffer_size: u32,
    /// Access mode.
    pub mode: RegionMode,
    /// The region's GUID (never zero).
    pub guid: Guid,
}

impl SharedBuffer {
    /// fds this buffer travels with: 2 for writable regions, else 1.
    pub fn fd_count(&self) -> usize {
        self.mode.num_fds()
    }

    fn to_wire(self) -> BufferHeaderWire {
        BufferHeaderWire {
            size: U32::new(BUFFER_HEADER_SIZE as u32),
            buffer_size: U32::new(self.buffer_size),
            mode: U32::new(self.mode.to_wire()),
            padding: U32::new(0),
            guid_low: U64::new(self.guid.low),
            guid_high: U64::new(self.guid.high),
        }
    }

    /// Decodes a BufferHeader with Chrome's `SharedBuffer::Deserialize` checks.
    fn decode(object: &'static str, data: &[u8], num_fds: usize) -> Result<Self, ObjectError> {
        let field = |field, reason| ObjectError::Field {
            object,
            field,
            reason,
        };
        let Ok(header) = prefix_ref::<BufferHeaderWire>(data, BufferHeaderWire::NAME) else {
            return Err(ObjectError::DataTooShort {
                object,
                len: data.len(),
                needed: BUFFER_HEADER_SIZE,
            });
        };
        if num_fds == 0 {
            return Err(ObjectError::Fds {
                object,
                got: 0,
                needed: "at least 1",
            });
        }
        let size = header.size.get();
        if (size as usize) < BUFFER_HEADER_SIZE || size % 8 != 0 {
            return Err(field(
                "size",
                ObjectFieldError::HeaderSize {
                    size,
                    min: BUFFER_HEADER_SIZE as u32,
                },
            ));
        }
        let buffer_size = header.buffer_size.get();
        let Some(mode) = RegionMode::from_wire(header.mode.get()) else {
            return Err(field(
                "mode",
                ObjectFieldError::UnknownMode(header.mode.get()),
            ));
        };
        let guid = Guid::new(header.guid_high.get(), header.guid_low.get());
        if !guid.is_valid() {
            return Err(field("guid", ObjectFieldError::ZeroGuid));
        }
        if buffer_size == 0 || buffer_size > MAX_SHARED_BUFFER_SIZE {
            return Err(field(
                "buffer_size",
                ObjectFieldError::BufferSize(buffer_size),
            ));
        }
        if mode == RegionMode::Writable && num_fds < 2 {
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

    /// Appends the serialized bytes (ObjectHeader and data). Every part has
    /// a fixed size, so this never fails; it returns a `Result` like every
    /// encoder of the crate.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ObjectError> {
        append_or_rollback(out, |w| {
            self.encode_into(w);
            Ok(())
        })
    }

    /// Appends the serialized bytes through a writer.
    pub(crate) fn encode_into(&self, w: &mut Writer<'_>) {
        w.layout(&ObjectHeaderWire {
            size: U32::new(OBJECT_HEADER_SIZE as u32),
            object_type: U32::new(self.object_type().0),
        });
        match self {
            Self::Transport(t) => w.layout(&t.to_wire()),
            Self::SharedBuffer(b) => w.layout(&b.to_wire()),
            Self::TransmissiblePlatformHandle => {}
            Self::WrappedPlatformHandle(h) => w.layout(&WrappedPlatformHandleHeaderWire {
                size: U32::new(WRAPPED_PLATFORM_HANDLE_HEADER_SIZE as u32),
                wrapper_type: U32::new(h.wrapper_type.0),
            }),
            Self::DataPipe(p) => {
                w.layout(&DataPipeHeaderWire {
                    size: U32::new(DATA_PIPE_HEADER_SIZE as u32),
                    endpoint_type: U32::new(p.endpoint_type.0),
                    element_size: U32::new(p.element_size),
                    padding: U32::new(0),
                    ring_offset: U32::new(p.ring_offset),
                    ring_size: U32::new(p.ring_size),
                });
                w.layout(&p.buffer.to_wire());
            }
        }
    }

    /// Deserializes `bytes` (the object's whole byte array) that arrived with
    /// `num_fds` fds, with the checks of `Transport::DeserializeObject` and the
    /// per-type `Deserialize` functions of `mojo/core/ipcz_driver`.
    pub fn decode(bytes: &[u8], num_fds: usize) -> Result<Self, ObjectError> {
        let Ok(header) = prefix_ref::<ObjectHeaderWire>(bytes, ObjectHeaderWire::NAME) else {
            return Err(ObjectError::TooShort { len: bytes.len() });
        };
        let size = header.size.get();
        let ty = ObjectType(header.object_type.get());
        let Some(data) = bytes
            .get(size as usize..)
            .filter(|_| size as usize >= OBJECT_HEADER_SIZE)
        else {
            return Err(ObjectError::HeaderSize {
                size,
                len: bytes.len(),
            });
        };
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
        object.encode(&mut out)?;
        require_canonical(bytes, &out, |at| object.field_at(at)).map_err(|e| {
            ObjectError::NotCanonical {
                offset: e.offset,
                field: e.field,
            }
        })?;
        Ok(object)
    }

    /// Name of the field at byte `at` of this object's encoding (from the
    /// layout declarations), e.g. `SharedBuffer.mode`.
    pub(crate) fn field_at(&self, at: usize) -> &'static str {
        if let Some(name) = ObjectHeaderWire::field_at(at) {
            return name;
        }
        let d = at - OBJECT_HEADER_SIZE;
        let (name, trailing) = match self {
            Self::Transport(_) => (TransportHeaderWire::field_at(d), "Transport trailing bytes"),
            Self::SharedBuffer(_) => (BufferHeaderWire::field_at(d), "SharedBuffer trailing bytes"),
            Self::TransmissiblePlatformHandle => {
                (None, "TransmissiblePlatformHandle trailing bytes")
            }
            Self::WrappedPlatformHandle(_) => (
                WrappedPlatformHandleHeaderWire::field_at(d),
                "WrappedPlatformHandle trailing bytes",
            ),
            Self::DataPipe(_) => (
                DataPipeHeaderWire::field_at(d).or_else(|| {
                    d.checked_sub(DATA_PIPE_HEADER_SIZE)
                        .and_then(BufferHeaderWire::field_at)
                }),
                "DataPipe trailing bytes",
            ),
        };
        name.unwrap_or(trailing)
    }
}

fn decode_transport(data: &[u8], num_fds: usize) -> Result<Transport, ObjectError> {
    let Ok(header) = prefix_ref::<TransportHeaderWire>(data, TransportHeaderWire::NAME) else {
        return Err(ObjectError::DataTooShort {
            object: "Transport",
            len: data.len(),
            needed: TRANSPORT_HEADER_SIZE,
        });
    };
    if num_fds == 0 {
        return Err(ObjectError::Fds {
            object: "Transport",
            got: 0,
            needed: "at least 1",
        });
    }
    Ok(Transport {
        destination_type: TransportEndpointType(header.destination_type.get()),
        is_same_remote_process: header.is_same_remote_process != 0,
        is_peer_trusted: header.is_peer_trusted != 0,
        is_trusted_by_peer: header.is_trusted_by_peer != 0,
    })
}

fn decode_wrapped(data: &[u8], num_fds: usize) -> Result<WrappedPlatformHandle, ObjectError> {
    const OBJ: &str = "WrappedPlatformHandle";
    let Ok(header) =
        prefix_ref::<WrappedPlatformHandleHeaderWire>(data, WrappedPlatformHandleHeaderWire::NAME)
    else {
        return Err(ObjectError::DataTooShort {
            object: OBJ,
            len: data.len(),
            needed: WRAPPED_PLATFORM_HANDLE_HEADER_SIZE,
        });
    };
    if num_fds != 1 {
        return Err(ObjectError::Fds {
            object: OBJ,
            got: num_fds,
            needed: "exactly 1",
        });
    }
    let size = header.size.get();
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
    let wrapper_type = WrapperType(header.wrapper_type.get());
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
    let Ok(header) = prefix_ref::<DataPipeHeaderWire>(data, DataPipeHeaderWire::NAME) else {
        return Err(ObjectError::DataTooShort {
            object: OBJ,
            len: data.len(),
            needed: DATA_PIPE_HEADER_SIZE,
        });
    };
    let size = header.size.get();
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
    let element_size = header.element_size.get();
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
    let ring_offset = header.ring_offset.get();
    let ring_size = header.ring_size.get();
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
        endpoint_type: DataPipeEndpointType(header.endpoint_type.get()),
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
            mode: RegionMode::Writable,
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
                        mode: RegionMode::Unsafe,
                        ..buffer
                    },
                }),
                64,
                1,
            ),
        ];
        for (object, len, fds) in cases {
            let mut out = Vec::new();
            object.encode(&mut out).unwrap();
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
            mode: RegionMode::Writable,
            guid: Guid { low: 1, high: 0 },
        })
        .encode(&mut out)
        .unwrap();
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
