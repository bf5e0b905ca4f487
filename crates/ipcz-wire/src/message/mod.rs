//! Generic ipcz message encoding (spec §2): the 24-byte `MessageHeader`,
//! versioned params behind a `StructHeader`, 8-aligned arrays, and the driver
//! object table, with every receiver check of §2.7 and Chrome's exact sender
//! layout of §2.8.
//!
//! ```text
//! +0  u8 size (24)  u8 version (0)  u8 message_id  u8[5] reserved0
//! +8  u64 sequence_number
//! +16 u32 driver_object_data_array  u32 reserved1
//! +24 StructHeader {u32 size, u32 padding}, V0 fields, V1 fields, ...
//! ...  arrays (params arrays in field order, then DriverObjectData[n], then
//!      one u8 array per driver object)
//! ```
//!
//! [`Message`] lives here; the params codec (reader, writer, the `Field`
//! trait) in `codec.rs`; the fixed layouts in [`wire`].

mod codec;
pub mod wire;

use core::fmt;

use mojo_wire_kit::{
    Reader, WireLayout, Writer, append_or_rollback, checked_len, require_canonical,
};

pub(crate) use self::codec::{
    ArrayNames, Field, Params, ParamsReader, ParamsWriter, PartNames, check_array, show_list, zeros,
};
pub use self::codec::{FieldKind, FieldSpan};
use self::wire::{DriverObjectDataWire, MessageHeaderWire, StructHeaderWire};
use crate::driver_object::{AttachedObject, DriverObject, FdRange};
use crate::error::MessageError;
use crate::layout_ref::{layout_ref, prefix_ref};
use crate::limits::{
    ARRAY_HEADER_SIZE, DRIVER_OBJECT_DATA_SIZE, MESSAGE_HEADER_SIZE, STRUCT_HEADER_SIZE,
};
use crate::messages::{Body, MessageId, UnknownMessage};
use crate::router_descriptor::DescriptorFormat;
use crate::types::{DriverObjectIndex, SequenceNumber};

/// Options for decoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// RouterDescriptor layout the peer uses.
    pub descriptor_format: DescriptorFormat,
    /// Pick the layout per `new_routers` array from its element size (112
    /// bytes per element means pre-M117); otherwise use `descriptor_format`.
    pub detect_descriptor_format: bool,
}

/// A decoded ipcz message. Byte payloads (parcel data, relayed messages, an
/// unknown message's body, header and params extensions) borrow the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// `header.version` (0 from Chrome).
    pub header_version: u8,
    /// Header bytes beyond the 24 known ones (newer header versions only).
    pub header_extension: &'a [u8],
    /// The NodeLink-level message counter (receivers ignore it).
    pub sequence_number: SequenceNumber,
    /// The params, typed by message id.
    pub body: Body<'a>,
    /// Params bytes after the last known version block (a newer sender's
    /// fields), kept so the message re-encodes; empty from Chrome r1429904.
    pub params_extension: &'a [u8],
    /// The message's driver objects, in object-index order.
    pub driver_objects: Vec<AttachedObject>,
    /// RouterDescriptor layout of `new_routers` arrays.
    pub descriptor_format: DescriptorFormat,
}

impl<'a> Message<'a> {
    /// A new message with no driver objects.
    pub fn new(sequence_number: u64, body: Body<'a>) -> Self {
        Self {
            header_version: 0,
            header_extension: &[],
            sequence_number: SequenceNumber(sequence_number),
            body,
            params_extension: &[],
            driver_objects: Vec::new(),
            descriptor_format: DescriptorFormat::Current,
        }
    }

    /// Appends a driver object, assigning it the next fds in order, and
    /// returns its index for the params field that refers to it.
    pub fn push_object(&mut self, object: DriverObject) -> DriverObjectIndex {
        let first: usize = self
            .driver_objects
            .iter()
            .map(|o| usize::from(o.fds.first) + usize::from(o.fds.count))
            .max()
            .unwrap_or(0);
        let index = self.driver_objects.len();
        self.driver_objects.push(AttachedObject {
            object,
            fds: FdRange {
                first: u16::try_from(first).unwrap_or(u16::MAX),
                count: u16::try_from(object.fd_count()).unwrap_or(u16::MAX),
            },
        });
        DriverObjectIndex(u32::try_from(index).unwrap_or(u32::MAX))
    }

    /// The message id.
    pub fn id(&self) -> MessageId {
        self.body.id()
    }

    /// The object a driver object field refers to.
    pub fn object(&self, index: DriverObjectIndex) -> Option<&DriverObject> {
        self.driver_objects.get(index.get()?).map(|o| &o.object)
    }

    /// fds the message's frame carries: the end of the last object's fd range.
    pub fn num_fds(&self) -> usize {
        if let Body::Unknown(u) = &self.body {
            return u.num_fds;
        }
        self.driver_objects
            .iter()
            .map(|o| usize::from(o.fds.first) + usize::from(o.fds.count))
            .max()
            .unwrap_or(0)
    }

    /// Decodes a message received with `num_fds` fds, accepting exactly what
    /// Chrome's receiver accepts (spec §2.7 checks 1-9; unknown ids are kept
    /// as [`Body::Unknown`]).
    pub fn decode(bytes: &'a [u8], num_fds: usize) -> Result<Self, MessageError> {
        Self::decode_with(bytes, num_fds, DecodeOptions::default())
    }

    /// [`Self::decode`] with options.
    pub fn decode_with(
        bytes: &'a [u8],
        num_fds: usize,
        options: DecodeOptions,
    ) -> Result<Self, MessageError> {
        Self::decode_parts(bytes, num_fds, None, options)
    }

    /// Decodes the inner message of a RelayMessage or AcceptRelayedMessage
    /// (§3.3): `bytes` is a whole serialized message whose driver objects
    /// did not go into its own table but travel beside it, as `objects`
    /// (the outer message's objects its `driver_objects` array names, with
    /// their fd ranges in the outer frame). The inner message's
    /// `driver_object_data_array` is not read; its params' object fields
    /// index `objects`, with every check [`Self::decode`] makes.
    pub fn decode_relayed(
        bytes: &'a [u8],
        objects: Vec<AttachedObject>,
        options: DecodeOptions,
    ) -> Result<Self, MessageError> {
        let num_fds = objects
            .iter()
            .map(|o| usize::from(o.fds.first) + usize::from(o.fds.count))
            .max()
            .unwrap_or(0);
        Self::decode_parts(bytes, num_fds, Some(objects), options)
    }

    fn decode_parts(
        bytes: &'a [u8],
        num_fds: usize,
        relayed: Option<Vec<AttachedObject>>,
        options: DecodeOptions,
    ) -> Result<Self, MessageError> {
        // 1-3: the header.
        let Ok(header) = prefix_ref::<MessageHeaderWire>(bytes, "header") else {
            return Err(MessageError::TooShort { len: bytes.len() });
        };
        let (size, version) = (header.size, header.version);
        let id = MessageId(header.message_id);
        if (version == 0 && usize::from(size) != MESSAGE_HEADER_SIZE)
            || (version != 0 && usize::from(size) < MESSAGE_HEADER_SIZE)
        {
            return Err(MessageError::HeaderSize { version, size });
        }
        if usize::from(size) > bytes.len() || size % 8 != 0 {
            return Err(MessageError::HeaderSizeBounds {
                size,
                len: bytes.len(),
            });
        }
        let doda = header.driver_object_data_array.get();

        // Driver objects (Message::DeserializeUnknownType).
        let driver_objects = match relayed {
            Some(objects) => objects,
            None => decode_driver_objects(bytes, doda, num_fds)?,
        };

        let params = usize::from(size);
        let mut r = Reader::new(bytes).at(MESSAGE_HEADER_SIZE);
        let header_extension = r.take(params - MESSAGE_HEADER_SIZE, "header extension")?;
        if !id.is_known() {
            return Ok(Self {
                header_version: version,
                header_extension,
                sequence_number: SequenceNumber(header.sequence_number.get()),
                body: Body::Unknown(UnknownMessage {
                    id,
                    reserved0: header.reserved0,
                    driver_object_data_array: doda,
                    reserved1: header.reserved1,
                    body: r.rest(),
                    num_fds,
                }),
                params_extension: &[],
                driver_objects,
                descriptor_format: options.descriptor_format,
            });
        }

        // 4-5: the StructHeader.
        let needed = params + STRUCT_HEADER_SIZE;
        let Ok(struct_header) =
            layout_ref::<StructHeaderWire>(&mut Reader::new(bytes).at(params), "StructHeader")
        else {
            return Err(MessageError::ParamsTooShort {
                len: bytes.len(),
                needed,
            });
        };
        let available = bytes.len() - params;
        let struct_size = struct_header.size.get();
        if struct_size as usize > available || struct_size % 8 != 0 {
            return Err(MessageError::ParamsSize {
                size: struct_size,
                available,
            });
        }

        // 6-7: versions and fields.
        let mut reader = ParamsReader {
            msg: bytes,
            params,
            claimed: vec![false; driver_objects.len()],
            options,
            descriptor_format: options.descriptor_format,
        };
        let (body, known_end) = Body::decode_known(id, &mut reader, struct_size as usize)?;
        let params_extension = Reader::new(bytes).at(params + known_end).take(
            struct_size as usize - known_end,
            "params of a newer version",
        )?;
        Ok(Self {
            header_version: version,
            header_extension,
            sequence_number: SequenceNumber(header.sequence_number.get()),
            body,
            params_extension,
            driver_objects,
            descriptor_format: reader.descriptor_format,
        })
    }

    /// Decodes like [`Self::decode`] and then requires the bytes to be exactly
    /// what [`Self::encode`] produces for the decoded values; any `Ok`
    /// therefore re-encodes to `bytes`. The error names the first field that
    /// differs.
    pub fn decode_exact(bytes: &'a [u8], num_fds: usize) -> Result<Self, MessageError> {
        Self::decode_exact_with(bytes, num_fds, DecodeOptions::default())
    }

    /// [`Self::decode_exact`] with options.
    pub fn decode_exact_with(
        bytes: &'a [u8],
        num_fds: usize,
        options: DecodeOptions,
    ) -> Result<Self, MessageError> {
        let message = Self::decode_with(bytes, num_fds, options)?;
        message.compare(bytes)?;
        Ok(message)
    }

    /// Compares `bytes` with this message's encoding; the error
    /// ([`MessageError::NotCanonical`]) names the first differing field.
    pub fn compare(&self, bytes: &[u8]) -> Result<(), MessageError> {
        let mut out = Vec::with_capacity(bytes.len());
        self.encode(&mut out)?;
        if out == bytes {
            return Ok(());
        }
        // Naming the differing field needs the field spans, which cost
        // more than the encode itself: record them only for a mismatch.
        out.clear();
        let mut spans = Vec::new();
        self.encode_with_spans(&mut out, &mut spans)?;
        require_canonical(bytes, &out, |offset| {
            spans
                .iter()
                .rev()
                .find(|s| s.range.contains(&offset))
                .map_or_else(
                    || {
                        if offset >= out.len() {
                            "bytes after the end of the message"
                        } else {
                            self.body.part_names().padding
                        }
                    },
                    |s| s.name,
                )
        })
        .map_err(|e| MessageError::NotCanonical {
            offset: e.offset,
            field: e.field,
        })
    }

    /// Appends the message in Chrome's layout (spec §2.8); its frame must
    /// carry [`Self::num_fds`] fds. On error nothing is appended.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        append_or_rollback(out, |w| self.encode_into(w))
    }

    /// [`Self::encode`] through a writer (e.g. after a frame header).
    pub(crate) fn encode_into(&self, w: &mut Writer<'_>) -> Result<(), MessageError> {
        self.write(w, None)
    }

    /// Encoded length.
    pub fn encoded_len(&self) -> Result<usize, MessageError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out.len())
    }

    /// [`Self::encode`], recording the byte range of every field.
    pub fn encode_with_spans(
        &self,
        out: &mut Vec<u8>,
        spans: &mut Vec<FieldSpan>,
    ) -> Result<(), MessageError> {
        append_or_rollback(out, |w| self.write(w, Some(spans)))
    }

    fn write(
        &self,
        w: &mut Writer<'_>,
        spans: Option<&mut Vec<FieldSpan>>,
    ) -> Result<(), MessageError> {
        let base = w.len();
        let header_size = MESSAGE_HEADER_SIZE + self.header_extension.len();
        // A known message's reserved bytes are zero and its table offset is
        // patched in below; an unknown one's header is written back verbatim.
        let (reserved0, doda_raw, reserved1) = match &self.body {
            Body::Unknown(u) => (u.reserved0, u.driver_object_data_array, u.reserved1),
            _ => ([0; 5], 0, [0; 4]),
        };
        w.layout(&MessageHeaderWire {
            size: checked_len("header.size", header_size)?,
            version: self.header_version,
            message_id: self.body.id().0,
            reserved0,
            sequence_number: self.sequence_number.0.into(),
            driver_object_data_array: doda_raw.into(),
            reserved1,
        });
        if !self.header_extension.is_empty() {
            w.bytes(self.header_extension);
        }
        let mut w = ParamsWriter {
            w,
            base,
            shift: self.header_extension.len(),
            spans,
            descriptor_format: self.descriptor_format,
        };
        if w.spans.is_some() {
            for field in MessageHeaderWire::FIELDS {
                w.span(field.range.clone(), field.name);
            }
        }
        if header_size > MESSAGE_HEADER_SIZE {
            w.span(MESSAGE_HEADER_SIZE..header_size, "header extension");
        }
        if let Body::Unknown(u) = &self.body {
            let start = w.len();
            w.w.bytes(u.body);
            let end = w.len();
            w.span(start..end, self.body.part_names().body);
            return Ok(());
        }
        // The zeroed params block with its StructHeader, the inline fields,
        // any newer-version bytes, then the arrays in field order, then the
        // driver objects.
        let known = self.body.params_size(!self.params_extension.is_empty());
        let params_size = known + self.params_extension.len();
        let params_start = w.len();
        zeros(w.w, params_size);
        let struct_header = StructHeaderWire {
            size: checked_len::<u32>("StructHeader.size", params_size)?.into(),
            padding: 0.into(),
        };
        w.put(params_start, struct_header.wire_bytes(), "StructHeader")?;
        if w.spans.is_some() {
            let names = self.body.part_names();
            w.span(params_start..params_start + 4, names.struct_size);
            w.span(params_start + 4..params_start + 8, names.struct_padding);
        }
        self.body.write_inline(&mut w, known)?;
        if !self.params_extension.is_empty() {
            let at = params_start + known;
            let name = self.body.part_names().newer_params;
            w.put(at, self.params_extension, name)?;
            w.span(at..at + self.params_extension.len(), name);
        }
        self.body.write_dynamic(&mut w, known)?;
        encode_driver_objects(&mut w, &self.driver_objects)?;
        Ok(())
    }
}

fn decode_driver_objects(
    bytes: &[u8],
    doda: u32,
    num_fds: usize,
) -> Result<Vec<AttachedObject>, MessageError> {
    if doda == 0 {
        return Ok(Vec::new());
    }
    let table = check_array(bytes, doda, DRIVER_OBJECT_DATA_SIZE)
        .map_err(MessageError::DriverObjectTable)?;
    let records = Reader::new(table.elements)
        .slice_of::<DriverObjectDataWire>(table.num_elements as usize, "DriverObjectData")?;
    let mut objects = Vec::with_capacity(records.len());
    let mut first_error = None;
    for (index, record) in records.iter().enumerate() {
        let data_array = record.driver_data_array.get();
        let first = record.first_driver_handle.get();
        let count = record.num_driver_handles.get();
        let result = (|| {
            let data = if data_array == 0 {
                &[][..]
            } else {
                check_array(bytes, data_array, 1)
                    .map_err(|error| MessageError::DriverObjectBytes { index, error })?
                    .elements
            };
            if usize::from(count) > num_fds || num_fds - usize::from(count) < usize::from(first) {
                return Err(MessageError::DriverObjectFds {
                    index,
                    first,
                    count,
                    total: num_fds,
                });
            }
            DriverObject::decode(data, usize::from(count))
                .map_err(|error| MessageError::DriverObject { index, error })
        })();
        match result {
            Ok(object) => objects.push(AttachedObject {
                object,
                fds: FdRange { first, count },
            }),
            // Chrome tries the remaining objects (to release them) and then
            // fails; report the first failure.
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(objects),
    }
}

fn encode_driver_objects(
    w: &mut ParamsWriter<'_, '_>,
    objects: &[AttachedObject],
) -> Result<(), MessageError> {
    if objects.is_empty() {
        return Ok(());
    }
    let table_names = ArrayNames {
        header: "DriverObjectData (array header)",
        elements: "DriverObjectData",
    };
    let bytes_names = ArrayNames {
        header: "driver object bytes (array header)",
        elements: "driver object bytes",
    };
    let n = objects.len();
    let table = w.array(DRIVER_OBJECT_DATA_SIZE, n, table_names, |out| {
        zeros(out, DRIVER_OBJECT_DATA_SIZE * n);
    })?;
    w.put(16, &table.to_le_bytes(), "header.driver_object_data_array")?;
    let table = table as usize + ARRAY_HEADER_SIZE;
    for (i, attached) in objects.iter().enumerate() {
        let object = attached.object;
        let offset = w.array(1, object.encoded_len(), bytes_names, |out| {
            object.encode_into(out)
        })?;
        let record = table + i * DRIVER_OBJECT_DATA_SIZE;
        let wire = DriverObjectDataWire {
            driver_data_array: offset.into(),
            first_driver_handle: attached.fds.first.into(),
            num_driver_handles: attached.fds.count.into(),
        };
        w.put(record, wire.wire_bytes(), "DriverObjectData")?;
        if w.spans.is_some() {
            for field in DriverObjectDataWire::FIELDS {
                w.span(
                    record + field.range.start..record + field.range.end,
                    field.name,
                );
            }
            let start = offset as usize + ARRAY_HEADER_SIZE;
            for at in 0..object.encoded_len() {
                w.span(start + at..start + at + 1, object.field_at(at));
            }
        }
    }
    Ok(())
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::describe::describe_message(self, f)
    }
}
