//! Typed errors. Every variant names what was wrong; the `Display` text names
//! the field.

use core::fmt;

use mojo_wire_kit::CodecError;

use crate::driver_object::{ObjectType, WrapperType};
use crate::memory::LayoutError;
use crate::router_descriptor::DescriptorError;
use crate::types::{FragmentDescriptor, HandleType};

/// A malformed channel frame (spec §1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than a frame header or than `num_bytes` (only from
    /// [`crate::frame::Frame::decode`]; the deframer and
    /// [`crate::frame::Frame::decode_prefix`] wait instead).
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// `size` below 8 (fatal in Chrome).
    HeaderSize {
        /// The header's `size` field.
        size: u16,
    },
    /// `num_bytes` below `size` (fatal in Chrome).
    LengthBelowHeader {
        /// The header's `num_bytes` field.
        num_bytes: u32,
        /// The header's `size` field.
        header_size: u16,
    },
    /// `num_bytes` above the configured limit.
    TooLarge {
        /// The header's `num_bytes` field.
        num_bytes: u32,
        /// The limit.
        max: u32,
    },
    /// More undrained bytes than the deframer may buffer.
    BufferFull {
        /// Bytes that would be buffered.
        buffered: usize,
        /// The limit.
        max: usize,
    },
    /// A length that does not fit its header field (encoding only).
    Codec(CodecError),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed, available } => {
                write!(
                    f,
                    "frame truncated: {needed} bytes needed, {available} available"
                )
            }
            Self::HeaderSize { size } => write!(f, "frame header.size: {size} is below 8"),
            Self::LengthBelowHeader {
                num_bytes,
                header_size,
            } => write!(
                f,
                "frame header.num_bytes: {num_bytes} is below header.size {header_size}"
            ),
            Self::TooLarge { num_bytes, max } => {
                write!(
                    f,
                    "frame header.num_bytes: {num_bytes} exceeds the limit {max}"
                )
            }
            Self::BufferFull { buffered, max } => {
                write!(
                    f,
                    "deframer buffer full: {buffered} bytes exceed the limit {max}"
                )
            }
            Self::Codec(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for FrameError {}

/// An array that fails Chrome's `IsArrayValid` (spec §2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArrayError {
    /// The offset is at or beyond the end of the message.
    OffsetOutOfBounds {
        /// Array offset.
        offset: u32,
        /// Message length.
        len: usize,
    },
    /// Fewer than 8 bytes from the offset to the end of the message.
    HeaderTruncated {
        /// Array offset.
        offset: u32,
    },
    /// `num_bytes` below 8 or beyond the end of the message.
    NumBytes {
        /// Array offset.
        offset: u32,
        /// The array's `num_bytes`.
        num_bytes: u32,
        /// Bytes from the offset to the end of the message.
        available: usize,
    },
    /// More elements than fit into `num_bytes`.
    TooManyElements {
        /// The array's `num_elements`.
        num_elements: u32,
        /// Elements that fit.
        max: usize,
    },
}

impl fmt::Display for ArrayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OffsetOutOfBounds { offset, len } => {
                write!(
                    f,
                    "array offset {offset} is not inside the {len}-byte message"
                )
            }
            Self::HeaderTruncated { offset } => {
                write!(
                    f,
                    "array header at {offset} runs past the end of the message"
                )
            }
            Self::NumBytes {
                offset,
                num_bytes,
                available,
            } => write!(
                f,
                "array at {offset}: num_bytes {num_bytes} not in [8, {available}]"
            ),
            Self::TooManyElements { num_elements, max } => {
                write!(
                    f,
                    "array num_elements {num_elements} exceeds the {max} that fit"
                )
            }
        }
    }
}

impl std::error::Error for ArrayError {}

/// A driver object that fails deserialization (spec §1.5-1.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectError {
    /// Fewer than 8 bytes (no ObjectHeader).
    TooShort {
        /// Serialized length.
        len: usize,
    },
    /// ObjectHeader `size` below 8 or beyond the serialized bytes.
    HeaderSize {
        /// ObjectHeader `size`.
        size: u32,
        /// Serialized length.
        len: usize,
    },
    /// A type that is unknown or not serializable (Chrome: "unimplemented").
    UnsupportedType(ObjectType),
    /// Type-specific data shorter than its header.
    DataTooShort {
        /// Object type name.
        object: &'static str,
        /// Data length after the ObjectHeader.
        len: usize,
        /// Bytes required.
        needed: usize,
    },
    /// Wrong number of fds.
    Fds {
        /// Object type name.
        object: &'static str,
        /// fds the DriverObjectData record assigns.
        got: usize,
        /// What is required, e.g. "exactly 1".
        needed: &'static str,
    },
    /// A field with a value Chrome rejects.
    Field {
        /// Object type name.
        object: &'static str,
        /// Field name.
        field: &'static str,
        /// Why.
        reason: ObjectFieldError,
    },
    /// Valid, but not the bytes Chrome's encoder would produce (only from
    /// [`crate::driver_object::DriverObject::decode_exact`]).
    NotCanonical {
        /// First differing byte offset within the object's bytes.
        offset: usize,
        /// The field at that offset, e.g. `SharedBuffer.mode`.
        field: &'static str,
    },
}

/// Why a driver object field has a value Chrome rejects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectFieldError {
    /// A header `size` below its minimum or not a multiple of 8.
    HeaderSize {
        /// The `size` field.
        size: u32,
        /// The smallest valid size.
        min: u32,
    },
    /// A header `size` that reaches beyond the object's data.
    SizePastData {
        /// The `size` field.
        size: u32,
    },
    /// A SharedBuffer mode other than 0, 1 or 2.
    UnknownMode(u32),
    /// An all-zero GUID.
    ZeroGuid,
    /// A SharedBuffer size of zero or above `INT_MAX`.
    BufferSize(u32),
    /// A WrappedPlatformHandle wrapper Linux does not support.
    UnsupportedWrapper(WrapperType),
    /// A data pipe element size of zero or one that does not divide the buffer.
    ElementSize {
        /// The element size.
        element_size: u32,
        /// The ring buffer's size.
        buffer_size: u32,
    },
    /// A ring buffer offset not below the capacity.
    RingOffset {
        /// The offset.
        offset: u32,
        /// The ring buffer's capacity.
        capacity: u32,
    },
    /// A ring buffer data size above the capacity or not a whole number of elements.
    RingSize {
        /// The size.
        size: u32,
        /// The ring buffer's capacity.
        capacity: u32,
        /// The element size.
        element_size: u32,
    },
}

impl fmt::Display for ObjectFieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::HeaderSize { size, min } => {
                write!(f, "{size} is below {min} or not a multiple of 8")
            }
            Self::SizePastData { size } => write!(f, "{size} runs past the object data"),
            Self::UnknownMode(mode) => write!(f, "{mode} is not 0, 1 or 2"),
            Self::ZeroGuid => f.write_str("is zero"),
            Self::BufferSize(size) => write!(f, "{size} is zero or above INT_MAX"),
            Self::UnsupportedWrapper(w) => write!(f, "{w} is not supported on Linux"),
            Self::ElementSize {
                element_size,
                buffer_size,
            } => write!(
                f,
                "{element_size} is zero or does not divide the buffer size {buffer_size}"
            ),
            Self::RingOffset { offset, capacity } => {
                write!(f, "{offset} is not below the capacity {capacity}")
            }
            Self::RingSize {
                size,
                capacity,
                element_size,
            } => write!(
                f,
                "{size} exceeds {capacity} or is not a multiple of {element_size}"
            ),
        }
    }
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "ObjectHeader: {len} bytes, need 8"),
            Self::HeaderSize { size, len } => {
                write!(f, "ObjectHeader.size: {size} not in [8, {len}]")
            }
            Self::UnsupportedType(t) => write!(f, "ObjectHeader.type: {t} cannot be deserialized"),
            Self::DataTooShort {
                object,
                len,
                needed,
            } => write!(f, "{object}: {len} data bytes, need {needed}"),
            Self::Fds {
                object,
                got,
                needed,
            } => write!(f, "{object}: {got} fds, need {needed}"),
            Self::Field {
                object,
                field,
                reason,
            } => write!(f, "{object}.{field}: {reason}"),
            Self::NotCanonical { offset, field } => {
                write!(f, "{field}: byte {offset} differs from Chrome's encoding")
            }
        }
    }
}

impl std::error::Error for ObjectError {}

/// Why one params field is invalid (spec §2.7 item 7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldError {
    /// An array field fails `IsArrayValid`.
    Array(ArrayError),
    /// A driver object field names a missing object.
    ObjectIndex {
        /// The field's value.
        index: u32,
        /// Objects in the message.
        count: usize,
    },
    /// A driver object is claimed by two fields.
    ObjectClaimedTwice {
        /// The object's index.
        index: u32,
    },
    /// A driver object array field reaches past the object list.
    ObjectArray {
        /// First index.
        first: u32,
        /// Count.
        count: u32,
        /// Objects in the message.
        total: usize,
    },
    /// The field's bytes are not in the message.
    Codec(CodecError),
}

impl From<CodecError> for FieldError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Array(e) => fmt::Display::fmt(e, f),
            Self::ObjectIndex { index, count } => {
                write!(
                    f,
                    "driver object index {index} but the message has {count} objects"
                )
            }
            Self::ObjectClaimedTwice { index } => {
                write!(f, "driver object {index} is claimed twice")
            }
            Self::ObjectArray {
                first,
                count,
                total,
            } => write!(
                f,
                "driver objects {{{first}, {count}}} reach past the {total} objects of the message"
            ),
            Self::Codec(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for FieldError {}

/// A message that Chrome's receiver rejects (spec §2.7), or that is not in
/// Chrome's canonical layout (only from [`crate::message::Message::decode_exact`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// Shorter than the 24-byte MessageHeader (check 1).
    TooShort {
        /// Message length.
        len: usize,
    },
    /// `header.size` wrong for `header.version` (check 2).
    HeaderSize {
        /// `header.version`.
        version: u8,
        /// `header.size`.
        size: u8,
    },
    /// `header.size` beyond the message or not a multiple of 8 (check 3).
    HeaderSizeBounds {
        /// `header.size`.
        size: u8,
        /// Message length.
        len: usize,
    },
    /// `header.driver_object_data_array` fails `IsArrayValid`.
    DriverObjectTable(ArrayError),
    /// A DriverObjectData record's byte array fails `IsArrayValid`.
    DriverObjectBytes {
        /// Object index.
        index: usize,
        /// Why.
        error: ArrayError,
    },
    /// A DriverObjectData record names fds the frame does not have.
    DriverObjectFds {
        /// Object index.
        index: usize,
        /// `first_driver_handle`.
        first: u16,
        /// `num_driver_handles`.
        count: u16,
        /// fds attached to the frame.
        total: usize,
    },
    /// A driver object fails deserialization.
    DriverObject {
        /// Object index.
        index: usize,
        /// Why.
        error: ObjectError,
    },
    /// No room for the StructHeader after the MessageHeader (check 4).
    ParamsTooShort {
        /// Message length.
        len: usize,
        /// Bytes required.
        needed: usize,
    },
    /// `StructHeader.size` beyond the message or not a multiple of 8 (check 5).
    ParamsSize {
        /// `StructHeader.size`.
        size: u32,
        /// Bytes available for params.
        available: usize,
    },
    /// The V0 params block does not fit into `StructHeader.size` (check 6).
    MissingV0 {
        /// Message name.
        message: &'static str,
        /// `StructHeader.size`.
        size: u32,
        /// Size V0 needs.
        needed: usize,
    },
    /// A field fails validation (check 7).
    Field {
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// Why.
        error: FieldError,
    },
    /// A field value the message's handler rejects (check 10, stateless part).
    Semantic {
        /// Message name.
        message: &'static str,
        /// Field name.
        field: &'static str,
        /// Why.
        reason: SemanticError,
    },
    /// Valid, but not the bytes Chrome's encoder would produce.
    NotCanonical {
        /// First differing byte offset within the message.
        offset: usize,
        /// The field at that offset, e.g. `AcceptParcel.sublink`.
        field: &'static str,
    },
    /// A named field that the input does not hold, or (encoding) a length
    /// that does not fit its wire field.
    Codec(CodecError),
    /// A driver object that cannot be encoded.
    Object(ObjectError),
}

impl From<CodecError> for MessageError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl From<ObjectError> for MessageError {
    fn from(e: ObjectError) -> Self {
        Self::Object(e)
    }
}

/// Why a message handler rejects a well-formed message (spec §2.7 item 10,
/// the stateless part): the reason of [`MessageError::Semantic`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SemanticError {
    /// A SharedBuffer field names a buffer smaller than the message needs.
    BufferTooSmall {
        /// The buffer's size.
        size: u32,
        /// The size required.
        min: u32,
    },
    /// A driver object field names an object of the wrong type.
    WrongObjectType {
        /// The object found.
        found: ObjectType,
        /// The type required.
        wanted: ObjectType,
    },
    /// A driver object field names no object.
    MissingObject {
        /// The type required.
        wanted: ObjectType,
    },
    /// A fragment that cannot hold a RouterLinkState.
    InvalidLinkStateFragment(FragmentDescriptor),
    /// The invalid BufferId where a real one is required.
    InvalidBufferId,
    /// A block size the added buffer cannot have.
    BlockGeometry(LayoutError),
    /// A size of zero where memory is requested.
    ZeroSize,
    /// A portal handle with no RouterDescriptor left for it.
    PortalWithoutDescriptor {
        /// Index of the handle.
        handle: usize,
    },
    /// A portal handle whose RouterDescriptor `Router::Deserialize` rejects.
    Descriptor {
        /// Index of the handle.
        handle: usize,
        /// Why.
        error: DescriptorError,
    },
    /// A boxed driver object handle with no driver object left for it.
    BoxWithoutObject {
        /// Index of the handle.
        handle: usize,
    },
    /// A handle type this crate (and Chrome) does not know.
    UnknownHandleType {
        /// Index of the handle.
        handle: usize,
        /// Its type.
        handle_type: HandleType,
    },
    /// RouterDescriptors that no portal handle claims.
    UnclaimedDescriptors,
    /// Driver objects that no boxed handle claims.
    UnclaimedObjects {
        /// How many.
        count: usize,
    },
    /// A subparcel index or count out of range.
    Subparcel {
        /// `subparcel_index`.
        index: u32,
        /// `num_subparcels`.
        count: u32,
    },
}

impl fmt::Display for SemanticError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { size, min } => {
                write!(f, "buffer of {size} bytes is smaller than {min}")
            }
            Self::WrongObjectType { found, wanted } => {
                write!(f, "{found} where a {wanted} is required")
            }
            Self::MissingObject { wanted } => write!(f, "no {wanted} attached"),
            Self::InvalidLinkStateFragment(d) => {
                write!(f, "{d} is not a valid RouterLinkState fragment")
            }
            Self::InvalidBufferId => f.write_str("is the invalid BufferId"),
            Self::BlockGeometry(e) => fmt::Display::fmt(e, f),
            Self::ZeroSize => f.write_str("is zero"),
            Self::PortalWithoutDescriptor { handle } => {
                write!(f, "handle {handle} is a portal but no descriptor is left")
            }
            Self::Descriptor { handle, error } => write!(f, "handle {handle}: {error}"),
            Self::BoxWithoutObject { handle } => write!(
                f,
                "handle {handle} is a boxed driver object but none is left"
            ),
            Self::UnknownHandleType {
                handle,
                handle_type,
            } => write!(f, "handle {handle} has unknown type {}", handle_type.0),
            Self::UnclaimedDescriptors => f.write_str("descriptors left unclaimed"),
            Self::UnclaimedObjects { count } => {
                write!(f, "{count} driver objects left unclaimed")
            }
            Self::Subparcel { index, count } => write!(
                f,
                "subparcel {index} of {count} (at most {})",
                crate::limits::MAX_SUBPARCELS_PER_PARCEL
            ),
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { len } => write!(f, "message: {len} bytes, need 24 for the header"),
            Self::HeaderSize { version, size } => {
                write!(
                    f,
                    "header.size: {size} invalid for header.version {version}"
                )
            }
            Self::HeaderSizeBounds { size, len } => write!(
                f,
                "header.size: {size} is unaligned or beyond the {len}-byte message"
            ),
            Self::DriverObjectTable(e) => write!(f, "header.driver_object_data_array: {e}"),
            Self::DriverObjectBytes { index, error } => {
                write!(f, "driver object {index} driver_data_array: {error}")
            }
            Self::DriverObjectFds {
                index,
                first,
                count,
                total,
            } => write!(
                f,
                "driver object {index} fds {first}+{count} exceed the frame's {total} fds"
            ),
            Self::DriverObject { index, error } => write!(f, "driver object {index}: {error}"),
            Self::ParamsTooShort { len, needed } => {
                write!(
                    f,
                    "params StructHeader: message has {len} bytes, needs {needed}"
                )
            }
            Self::ParamsSize { size, available } => write!(
                f,
                "params StructHeader.size: {size} is unaligned or exceeds the {available} bytes present"
            ),
            Self::MissingV0 {
                message,
                size,
                needed,
            } => write!(
                f,
                "{message} StructHeader.size: {size} too small for the V0 params ({needed})"
            ),
            Self::Field {
                message,
                field,
                error,
            } => write!(f, "{message}.{field}: {error}"),
            Self::Semantic {
                message,
                field,
                reason,
            } => write!(f, "{message}.{field}: {reason}"),
            Self::NotCanonical { offset, field } => write!(
                f,
                "{field}: byte {offset} differs from Chrome's encoding of the decoded values"
            ),
            Self::Codec(e) => fmt::Display::fmt(e, f),
            Self::Object(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for MessageError {}

impl mojo_wire_kit::ExactDecodeError for ObjectError {
    fn not_canonical_offset(&self) -> Option<usize> {
        match self {
            Self::NotCanonical { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

impl mojo_wire_kit::ExactDecodeError for MessageError {
    fn not_canonical_offset(&self) -> Option<usize> {
        match self {
            Self::NotCanonical { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}
