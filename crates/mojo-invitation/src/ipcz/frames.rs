//! Frame plumbing shared by the ipcz connectors: decoding one received
//! frame with its fds, taking the fds of the driver objects a handshake
//! keeps, and encoding the frames they send.

use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::{AttachedObject, DriverObject, SharedBuffer, Transport};
use ipcz_wire::frame::{Frame, FrameHeader};
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::message::Message;
use ipcz_wire::messages::Body;
use ipcz_wire::types::{DriverObjectIndex, NodeName};
use mojo_wire_kit::RegionMode;

use super::{HandshakeError, Link, MAX_PRIMARY_BUFFER_SIZE, PrimaryBuffer, Transmit};

/// The fds of one received frame, each taken at most once; whatever is
/// left when this is dropped is closed.
#[derive(Debug)]
pub(crate) struct FdSlots(Vec<Option<OwnedFd>>);

impl FdSlots {
    /// Takes the fds of `object` (its range was checked against the frame's
    /// fd count by the decoder).
    fn take(
        &mut self,
        object: &AttachedObject,
        message: &'static str,
        field: &'static str,
    ) -> Result<Vec<OwnedFd>, HandshakeError> {
        let first = usize::from(object.fds.first);
        let count = usize::from(object.fds.count);
        let slots = first
            .checked_add(count)
            .and_then(|end| self.0.get_mut(first..end))
            .ok_or(HandshakeError::FdClaimedTwice { message, field })?;
        let mut fds = Vec::with_capacity(count);
        for slot in slots {
            fds.push(
                slot.take()
                    .ok_or(HandshakeError::FdClaimedTwice { message, field })?,
            );
        }
        Ok(fds)
    }
}

/// Decodes exactly one frame (`bytes`) that arrived on `link` with `fds`.
/// On error every fd is closed.
pub(crate) fn decode_frame(
    link: Link,
    bytes: &[u8],
    fds: Vec<OwnedFd>,
) -> Result<(Message<'_>, FdSlots), HandshakeError> {
    let (frame, used) =
        Frame::decode(bytes).map_err(|error| HandshakeError::Frame { link, error })?;
    if used != bytes.len() {
        return Err(HandshakeError::TrailingBytes {
            link,
            frame_len: used,
            given: bytes.len(),
        });
    }
    let claimed = usize::from(frame.header.num_handles);
    if claimed != fds.len() {
        return Err(HandshakeError::FdCount {
            link,
            claimed,
            given: fds.len(),
        });
    }
    let message = Message::decode(frame.payload, fds.len())
        .map_err(|error| HandshakeError::Message { link, error })?;
    Ok((message, FdSlots(fds.into_iter().map(Some).collect())))
}

/// The attached object a driver object field names.
fn attached<'m>(
    message: &'m Message<'_>,
    index: DriverObjectIndex,
    field: &'static str,
) -> Result<&'m AttachedObject, HandshakeError> {
    index
        .get()
        .and_then(|i| message.driver_objects.get(i))
        .ok_or(HandshakeError::MissingDriverObject {
            message: message.body.name(),
            field,
        })
}

/// Takes the primary buffer a field names: a SharedBuffer, unsafe mode, of
/// 128 KiB up to [`MAX_PRIMARY_BUFFER_SIZE`]. Its first fd is kept; a
/// surplus fd (Chrome sends none) is closed, as Chrome's receiver does.
pub(crate) fn take_primary_buffer(
    message: &Message<'_>,
    fds: &mut FdSlots,
    index: DriverObjectIndex,
    field: &'static str,
) -> Result<PrimaryBuffer, HandshakeError> {
    let name = message.body.name();
    let object = attached(message, index, field)?;
    let DriverObject::SharedBuffer(buffer) = object.object else {
        return Err(HandshakeError::WrongDriverObject {
            message: name,
            field,
            found: object.object.object_type(),
        });
    };
    check_primary_buffer(buffer, name, field)?;
    let fd = fds.take(object, name, field)?.into_iter().next().ok_or(
        HandshakeError::MissingDriverObject {
            message: name,
            field,
        },
    )?;
    Ok(PrimaryBuffer { buffer, fd })
}

/// What a primary buffer must be to be mapped as NodeLinkMemory.
pub(crate) fn check_primary_buffer(
    buffer: SharedBuffer,
    message: &'static str,
    field: &'static str,
) -> Result<(), HandshakeError> {
    if buffer.mode != RegionMode::Unsafe {
        return Err(HandshakeError::PrimaryBufferMode {
            message,
            field,
            mode: buffer.mode,
        });
    }
    if (buffer.buffer_size as usize) < PRIMARY_BUFFER_SIZE
        || buffer.buffer_size > MAX_PRIMARY_BUFFER_SIZE
    {
        return Err(HandshakeError::PrimaryBufferSize {
            message,
            field,
            size: buffer.buffer_size,
        });
    }
    Ok(())
}

/// Takes the socket a Transport field names.
pub(crate) fn take_transport(
    message: &Message<'_>,
    fds: &mut FdSlots,
    index: DriverObjectIndex,
    field: &'static str,
) -> Result<(Transport, OwnedFd), HandshakeError> {
    let name = message.body.name();
    let object = attached(message, index, field)?;
    let DriverObject::Transport(transport) = object.object else {
        return Err(HandshakeError::WrongDriverObject {
            message: name,
            field,
            found: object.object.object_type(),
        });
    };
    let fd = fds.take(object, name, field)?.into_iter().next().ok_or(
        HandshakeError::MissingDriverObject {
            message: name,
            field,
        },
    )?;
    Ok((transport, fd))
}

/// Checks that a name the peer chose is non-zero and differs from `others`.
pub(crate) fn check_name(
    name: NodeName,
    others: &[NodeName],
    message: &'static str,
    field: &'static str,
) -> Result<(), HandshakeError> {
    if !name.is_valid() {
        return Err(HandshakeError::ZeroName { message, field });
    }
    if others.contains(&name) {
        return Err(HandshakeError::NameCollision { message, field });
    }
    Ok(())
}

/// Element 0 of a features array (0 if absent or empty).
pub(crate) fn features_word(features: Option<&Vec<u64>>) -> u64 {
    features.and_then(|f| f.first().copied()).unwrap_or(0)
}

/// The features array every greeting carries: one element.
pub(crate) fn advertised_features() -> Option<Vec<u64>> {
    Some(vec![super::ADVERTISED_FEATURES])
}

/// Driver object `k` of a message being built: objects are numbered in
/// the order [`encode_transmit`] attaches them.
pub(crate) fn object_index(k: u32) -> DriverObjectIndex {
    DriverObjectIndex(k)
}

/// An outgoing frame: `body` with `objects` attached in order (object `k`
/// is [`object_index`]`(k)`), each with its fds; NodeLink sequence number
/// `sequence_number`, timestamp 0.
pub(crate) fn encode_transmit(
    link: Link,
    sequence_number: u64,
    body: Body<'static>,
    objects: Vec<(DriverObject, Vec<OwnedFd>)>,
) -> Result<Transmit, HandshakeError> {
    let mut message = Message::new(sequence_number, body);
    let mut fds = Vec::new();
    for (object, object_fds) in objects {
        message.push_object(object);
        fds.extend(object_fds);
    }
    Ok(Transmit {
        link,
        bytes: encode(&message, fds.len())?,
        fds,
    })
}

/// Encodes `message` in a current (16-byte) frame header with `num_fds` fds.
pub(crate) fn encode(message: &Message<'_>, num_fds: usize) -> Result<Vec<u8>, HandshakeError> {
    let num_handles = u16::try_from(num_fds).map_err(|_| HandshakeError::InvalidConfig {
        field: "fds of one frame (more than 65535)",
    })?;
    let mut out = Vec::new();
    FrameHeader::new(num_handles, 0)
        .encode_frame(&[], message, &mut out)
        .map_err(HandshakeError::Encode)?;
    Ok(out)
}
