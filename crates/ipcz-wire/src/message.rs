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

use core::fmt;
use core::ops::Range;

use crate::codec::{self, align8};
use crate::driver_object::{AttachedObject, DriverObject, FdRange, first_difference};
use crate::error::{ArrayError, FieldError, MessageError};
use crate::limits::{
    ARRAY_HEADER_SIZE, DRIVER_OBJECT_DATA_SIZE, MESSAGE_HEADER_SIZE, STRUCT_HEADER_SIZE,
};
use crate::messages::{Body, MessageId, UnknownMessage};
use crate::router_descriptor::{DescriptorFormat, RouterDescriptor};
use crate::types::{
    BufferId, DriverObjectArray, DriverObjectIndex, FragmentDescriptor, HandleType, LinkSide,
    NodeName, NodeType, SequenceNumber, SublinkId,
};

/// Options for decoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// RouterDescriptor layout the peer uses.
    pub descriptor_format: DescriptorFormat,
    /// Pick the layout per `new_routers` array from its element size (112
    /// bytes per element means pre-M117); otherwise use `descriptor_format`.
    pub detect_descriptor_format: bool,
}

/// A named byte range of an encoded message (for diagnostics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSpan {
    /// Byte range within the message.
    pub range: Range<usize>,
    /// Field name, e.g. `AcceptParcel.sublink` or `SharedBuffer.mode`.
    pub name: &'static str,
}

/// Span names of one array field: its header and its elements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ArrayNames {
    /// The ArrayHeader, e.g. `AcceptParcel.handle_types (array header)`.
    pub(crate) header: &'static str,
    /// The elements, e.g. `AcceptParcel.handle_types`.
    pub(crate) elements: &'static str,
}

/// Span names of a message's parts outside its fields (generated per message).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PartNames {
    /// `StructHeader.size`.
    pub(crate) struct_size: &'static str,
    /// `StructHeader.padding`.
    pub(crate) struct_padding: &'static str,
    /// Params bytes of a newer version.
    pub(crate) newer_params: &'static str,
    /// Bytes no field covers.
    pub(crate) padding: &'static str,
    /// An unknown message's body.
    pub(crate) body: &'static str,
}

/// A decoded ipcz message.
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

/// An array found by `IsArrayValid`.
#[derive(Clone, Copy)]
pub(crate) struct ArrayRef<'a> {
    pub(crate) num_elements: u32,
    pub(crate) num_bytes: u32,
    pub(crate) elements: &'a [u8],
}

/// Chrome's `IsArrayValid` for a non-zero `offset`.
pub(crate) fn check_array(
    msg: &[u8],
    offset: u32,
    element_size: usize,
) -> Result<ArrayRef<'_>, ArrayError> {
    let o = offset as usize;
    if o >= msg.len() {
        return Err(ArrayError::OffsetOutOfBounds {
            offset,
            len: msg.len(),
        });
    }
    let available = msg.len() - o;
    if available < ARRAY_HEADER_SIZE {
        return Err(ArrayError::HeaderTruncated { offset });
    }
    let num_bytes = codec::u32_at(msg, o).unwrap_or(0);
    let num_elements = codec::u32_at(msg, o + 4).unwrap_or(0);
    if (num_bytes as usize) > available || (num_bytes as usize) < ARRAY_HEADER_SIZE {
        return Err(ArrayError::NumBytes {
            offset,
            num_bytes,
            available,
        });
    }
    let max = (num_bytes as usize - ARRAY_HEADER_SIZE) / element_size.max(1);
    if num_elements as usize > max {
        return Err(ArrayError::TooManyElements { num_elements, max });
    }
    let len = num_elements as usize * element_size;
    Ok(ArrayRef {
        num_elements,
        num_bytes,
        elements: codec::slice(msg, o + ARRAY_HEADER_SIZE, len).unwrap_or(&[]),
    })
}

/// Decoding state shared by the fields of one message.
pub(crate) struct Reader<'a> {
    pub(crate) msg: &'a [u8],
    /// Offset of the params (= `header.size`).
    pub(crate) params: usize,
    pub(crate) claimed: Vec<bool>,
    pub(crate) options: DecodeOptions,
    pub(crate) descriptor_format: DescriptorFormat,
}

impl<'a> Reader<'a> {
    /// Absolute offset of a field given at its Chrome-layout offset `at`
    /// (which assumes a 24-byte header).
    pub(crate) fn abs(&self, at: usize) -> usize {
        self.params + (at - MESSAGE_HEADER_SIZE)
    }

    fn array(&self, at: usize, element_size: usize) -> Result<Option<ArrayRef<'a>>, FieldError> {
        let offset = codec::u32_at(self.msg, self.abs(at)).unwrap_or(0);
        if offset == 0 {
            return Ok(None);
        }
        check_array(self.msg, offset, element_size)
            .map(Some)
            .map_err(FieldError::Array)
    }
}

/// Encoding state: the output buffer, where the message starts, and optional
/// span recording.
pub(crate) struct Writer<'o> {
    pub(crate) out: &'o mut Vec<u8>,
    pub(crate) base: usize,
    /// Header bytes beyond 24: added to Chrome-layout field offsets.
    pub(crate) shift: usize,
    pub(crate) spans: Option<&'o mut Vec<FieldSpan>>,
    pub(crate) descriptor_format: DescriptorFormat,
}

impl Writer<'_> {
    pub(crate) fn len(&self) -> usize {
        self.out.len() - self.base
    }

    pub(crate) fn put(&mut self, at: usize, bytes: &[u8]) {
        let base = self.base;
        if let Some(msg) = self.out.get_mut(base..) {
            codec::put(msg, at, bytes);
        }
    }

    /// Writes a params field given at its Chrome-layout offset.
    pub(crate) fn put_field(&mut self, at: usize, bytes: &[u8]) {
        self.put(at + self.shift, bytes);
    }

    /// Records the span of a params field given at its Chrome-layout offset.
    pub(crate) fn field_span(&mut self, at: usize, width: usize, name: &'static str) {
        let at = at + self.shift;
        self.span(at..at + width, name);
    }

    pub(crate) fn span(&mut self, range: Range<usize>, name: &'static str) {
        if let Some(spans) = self.spans.as_deref_mut() {
            spans.push(FieldSpan { range, name });
        }
    }

    /// Appends an array of `num_elements` elements whose packed bytes are
    /// produced by `fill`; returns its offset (0 and nothing appended if empty).
    pub(crate) fn array(
        &mut self,
        element_size: usize,
        num_elements: usize,
        names: ArrayNames,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> u32 {
        if num_elements == 0 {
            return 0;
        }
        codec::pad8(self.out, self.base);
        let offset = self.len();
        let num_bytes = align8(ARRAY_HEADER_SIZE + element_size * num_elements);
        self.out
            .extend_from_slice(&u32::try_from(num_bytes).unwrap_or(u32::MAX).to_le_bytes());
        self.out.extend_from_slice(
            &u32::try_from(num_elements)
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        fill(self.out);
        let end = offset + num_bytes;
        self.out.resize(self.base + end, 0);
        self.span(offset..offset + ARRAY_HEADER_SIZE, names.header);
        self.span(offset + ARRAY_HEADER_SIZE..end, names.elements);
        u32::try_from(offset).unwrap_or(u32::MAX)
    }
}

/// How a params field is encoded (for [`crate::messages::MessageLayout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Plain data of `width` bytes.
    Scalar,
    /// A u32 array offset; elements of `element_size` bytes.
    Array {
        /// Element size.
        element_size: usize,
    },
    /// A u32 driver object index.
    DriverObject,
    /// A `{u32 first, u32 count}` driver object range.
    DriverObjectArray,
}

/// One params field type: how it is read, written and shown.
pub(crate) trait Field<'a>: Sized {
    /// Bytes the field occupies in the params block.
    const WIDTH: usize;
    /// Encoding kind.
    const KIND: FieldKind = FieldKind::Scalar;
    /// Reads (and validates) the field at Chrome-layout offset `at`.
    fn read(r: &mut Reader<'a>, at: usize) -> Result<Self, FieldError>;
    /// Writes the inline part at `at`.
    fn write(&self, w: &mut Writer<'_>, at: usize);
    /// Appends dynamic data (arrays) and patches the offset at `at`.
    fn write_dynamic(&self, _w: &mut Writer<'_>, _at: usize, _names: ArrayNames) {}
    /// Shows the value in a description line.
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

macro_rules! scalar_field {
    ($ty:ty, $width:expr, |$b:ident, $at:ident| $read:expr, |$v:ident| $bytes:expr) => {
        impl<'a> Field<'a> for $ty {
            const WIDTH: usize = $width;
            fn read(r: &mut Reader<'a>, at: usize) -> Result<Self, FieldError> {
                let $b = r.msg;
                let $at = r.abs(at);
                Ok($read)
            }
            fn write(&self, w: &mut Writer<'_>, at: usize) {
                let $v = self;
                w.put_field(at, &$bytes);
            }
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

scalar_field!(u8, 1, |b, at| codec::u8_at(b, at).unwrap_or(0), |v| [*v]);
scalar_field!(u16, 2, |b, at| codec::u16_at(b, at).unwrap_or(0), |v| v
    .to_le_bytes());
scalar_field!(u32, 4, |b, at| codec::u32_at(b, at).unwrap_or(0), |v| v
    .to_le_bytes());
scalar_field!(u64, 8, |b, at| codec::u64_at(b, at).unwrap_or(0), |v| v
    .to_le_bytes());
scalar_field!(
    LinkSide,
    1,
    |b, at| LinkSide(codec::u8_at(b, at).unwrap_or(0)),
    |v| [v.0]
);
scalar_field!(
    NodeType,
    1,
    |b, at| NodeType(codec::u8_at(b, at).unwrap_or(0)),
    |v| [v.0]
);
scalar_field!(
    SublinkId,
    8,
    |b, at| SublinkId(codec::u64_at(b, at).unwrap_or(0)),
    |v| v.0.to_le_bytes()
);
scalar_field!(
    SequenceNumber,
    8,
    |b, at| SequenceNumber(codec::u64_at(b, at).unwrap_or(0)),
    |v| v.0.to_le_bytes()
);
scalar_field!(
    BufferId,
    8,
    |b, at| BufferId(codec::u64_at(b, at).unwrap_or(0)),
    |v| v.0.to_le_bytes()
);
scalar_field!(
    FragmentDescriptor,
    16,
    |b, at| FragmentDescriptor::read(b, at).unwrap_or(FragmentDescriptor::NULL),
    |v| v.to_bytes()
);

impl<'a> Field<'a> for NodeName {
    const WIDTH: usize = 16;
    fn read(r: &mut Reader<'a>, at: usize) -> Result<Self, FieldError> {
        let at = r.abs(at);
        Ok(Self {
            high: codec::u64_at(r.msg, at).unwrap_or(0),
            low: codec::u64_at(r.msg, at + 8).unwrap_or(0),
        })
    }
    fn write(&self, w: &mut Writer<'_>, at: usize) {
        w.put_field(at, &self.high.to_le_bytes());
        w.put_field(at + 8, &self.low.to_le_bytes());
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'a> Field<'a> for DriverObjectIndex {
    const WIDTH: usize = 4;
    const KIND: FieldKind = FieldKind::DriverObject;
    fn read(r: &mut Reader<'a>, at: usize) -> Result<Self, FieldError> {
        let index = codec::u32_at(r.msg, r.abs(at)).unwrap_or(0);
        let v = Self(index);
        if let Some(i) = v.get() {
            match r.claimed.get_mut(i) {
                None => {
                    return Err(FieldError::ObjectIndex {
                        index,
                        count: r.claimed.len(),
                    });
                }
                Some(true) => return Err(FieldError::ObjectClaimedTwice { index }),
                Some(c) => *c = true,
            }
        }
        Ok(v)
    }
    fn write(&self, w: &mut Writer<'_>, at: usize) {
        w.put_field(at, &self.0.to_le_bytes());
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'a> Field<'a> for DriverObjectArray {
    const WIDTH: usize = 8;
    const KIND: FieldKind = FieldKind::DriverObjectArray;
    fn read(r: &mut Reader<'a>, at: usize) -> Result<Self, FieldError> {
        let at = r.abs(at);
        let v = Self {
            first: codec::u32_at(r.msg, at).unwrap_or(0),
            count: codec::u32_at(r.msg, at + 4).unwrap_or(0),
        };
        let total = r.claimed.len();
        let first = v.first as usize;
        if first > total || v.count as usize > total - first {
            return Err(FieldError::ObjectArray {
                first: v.first,
                count: v.count,
                total,
            });
        }
        for i in first..first + v.count as usize {
            if r.claimed[i] {
                return Err(FieldError::ObjectClaimedTwice { index: i as u32 });
            }
            r.claimed[i] = true;
        }
        Ok(v)
    }
    fn write(&self, w: &mut Writer<'_>, at: usize) {
        w.put_field(at, &self.first.to_le_bytes());
        w.put_field(at + 4, &self.count.to_le_bytes());
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Patches the offset of a just-appended array into its field.
fn patch(w: &mut Writer<'_>, at: usize, offset: u32) {
    w.put_field(at, &offset.to_le_bytes());
}

impl<'a> Field<'a> for &'a [u8] {
    const WIDTH: usize = 4;
    const KIND: FieldKind = FieldKind::Array { element_size: 1 };
    fn read(r: &mut Reader<'a>, at: usize) -> Result<Self, FieldError> {
        Ok(r.array(at, 1)?.map_or(&[][..], |a| a.elements))
    }
    fn write(&self, _w: &mut Writer<'_>, _at: usize) {}
    fn write_dynamic(&self, w: &mut Writer<'_>, at: usize, names: ArrayNames) {
        let offset = w.array(1, self.len(), names, |out| out.extend_from_slice(self));
        patch(w, at, offset);
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B", self.len())
    }
}

impl<'a> Field<'a> for Vec<u64> {
    const WIDTH: usize = 4;
    const KIND: FieldKind = FieldKind::Array { element_size: 8 };
    fn read(r: &mut Reader<'a>, at: usize) -> Result<Self, FieldError> {
        Ok(r.array(at, 8)?.map_or_else(Self::new, |a| {
            a.elements
                .chunks_exact(8)
                .map(|c| codec::u64_at(c, 0).unwrap_or(0))
                .collect()
        }))
    }
    fn write(&self, _w: &mut Writer<'_>, _at: usize) {}
    fn write_dynamic(&self, w: &mut Writer<'_>, at: usize, names: ArrayNames) {
        let offset = w.array(8, self.len(), names, |out| {
            for v in self {
                out.extend_from_slice(&v.to_le_bytes());
            }
        });
        patch(w, at, offset);
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:x?}")
    }
}

impl<'a> Field<'a> for Vec<HandleType> {
    const WIDTH: usize = 4;
    const KIND: FieldKind = FieldKind::Array { element_size: 4 };
    fn read(r: &mut Reader<'a>, at: usize) -> Result<Self, FieldError> {
        Ok(r.array(at, 4)?.map_or_else(Self::new, |a| {
            a.elements
                .chunks_exact(4)
                .map(|c| HandleType(codec::u32_at(c, 0).unwrap_or(0)))
                .collect()
        }))
    }
    fn write(&self, _w: &mut Writer<'_>, _at: usize) {}
    fn write_dynamic(&self, w: &mut Writer<'_>, at: usize, names: ArrayNames) {
        let offset = w.array(4, self.len(), names, |out| {
            for v in self {
                out.extend_from_slice(&v.0.to_le_bytes());
            }
        });
        patch(w, at, offset);
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show_list(f, self)
    }
}

impl<'a> Field<'a> for Vec<RouterDescriptor> {
    const WIDTH: usize = 4;
    const KIND: FieldKind = FieldKind::Array {
        element_size: RouterDescriptor::SIZE,
    };
    fn read(r: &mut Reader<'a>, at: usize) -> Result<Self, FieldError> {
        // Detection needs the raw element size, so look at the array with
        // element size 1 first, then validate it with the chosen size.
        let format = match r.array(at, 1)? {
            Some(a)
                if r.options.detect_descriptor_format
                    && a.num_elements > 0
                    && (a.num_bytes as usize - ARRAY_HEADER_SIZE)
                        == a.num_elements as usize * DescriptorFormat::PreM117.size() =>
            {
                DescriptorFormat::PreM117
            }
            _ => r.options.descriptor_format,
        };
        let Some(a) = r.array(at, format.size())? else {
            return Ok(Self::new());
        };
        r.descriptor_format = format;
        Ok(a.elements
            .chunks_exact(format.size())
            .filter_map(|c| RouterDescriptor::decode_format(c, format))
            .collect())
    }
    fn write(&self, _w: &mut Writer<'_>, _at: usize) {}
    fn write_dynamic(&self, w: &mut Writer<'_>, at: usize, names: ArrayNames) {
        let format = w.descriptor_format;
        let offset = w.array(format.size(), self.len(), names, |out| {
            for d in self {
                d.encode_format(format, out);
            }
        });
        if offset != 0 && w.spans.is_some() {
            let start = offset as usize + ARRAY_HEADER_SIZE;
            for i in 0..self.len() {
                let s = start + i * format.size();
                let mut at = s;
                while at < s + format.size() {
                    let field = RouterDescriptor::field_at(at - s, format);
                    let mut end = at + 1;
                    while end < s + format.size()
                        && RouterDescriptor::field_at(end - s, format) == field
                    {
                        end += 1;
                    }
                    w.span(at..end, field);
                    at = end;
                }
            }
        }
        patch(w, at, offset);
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show_list(f, self)
    }
}

pub(crate) fn show_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_str("[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        fmt::Display::fmt(item, f)?;
    }
    f.write_str("]")
}

/// Per-message decode/encode, generated for every message of the catalog.
pub(crate) trait Params<'a>: Sized {
    /// Message name.
    const NAME: &'static str;
    /// Layout metadata.
    const LAYOUT: &'static crate::messages::MessageLayout;
    /// Decodes the params (header-relative offsets already handled by `r`).
    /// Returns the value and the end of the last present version block
    /// (relative to the params start).
    fn decode(r: &mut Reader<'a>, struct_size: usize) -> Result<(Self, usize), MessageError>;
    /// `StructHeader.size` this value needs (without extension bytes).
    fn params_size(&self, has_extension: bool) -> usize;
    /// Writes inline fields into the zeroed params block.
    fn write_inline(&self, w: &mut Writer<'_>, params_size: usize);
    /// Appends arrays in field order.
    fn write_dynamic(&self, w: &mut Writer<'_>, params_size: usize);
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
        // 1-3: the header.
        if bytes.len() < MESSAGE_HEADER_SIZE {
            return Err(MessageError::TooShort { len: bytes.len() });
        }
        let size = bytes[0];
        let version = bytes[1];
        let id = MessageId(bytes[2]);
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
        let sequence_number = SequenceNumber(codec::u64_at(bytes, 8).unwrap_or(0));
        let doda = codec::u32_at(bytes, 16).unwrap_or(0);

        // Driver objects (Message::DeserializeUnknownType).
        let driver_objects = decode_driver_objects(bytes, doda, num_fds)?;

        let params = usize::from(size);
        let header_extension = bytes.get(MESSAGE_HEADER_SIZE..params).unwrap_or(&[]);
        let mut message = Self {
            header_version: version,
            header_extension,
            sequence_number,
            body: Body::Unknown(UnknownMessage {
                id,
                reserved0: header_bytes(bytes, 3),
                driver_object_data_array: doda,
                reserved1: header_bytes(bytes, 20),
                body: bytes.get(params..).unwrap_or(&[]),
                num_fds,
            }),
            params_extension: &[],
            driver_objects,
            descriptor_format: options.descriptor_format,
        };
        if !id.is_known() {
            return Ok(message);
        }

        // 4-5: the StructHeader.
        let needed = params + STRUCT_HEADER_SIZE;
        if bytes.len() < needed {
            return Err(MessageError::ParamsTooShort {
                len: bytes.len(),
                needed,
            });
        }
        let available = bytes.len() - params;
        let struct_size = codec::u32_at(bytes, params).unwrap_or(0);
        if struct_size as usize > available || struct_size % 8 != 0 {
            return Err(MessageError::ParamsSize {
                size: struct_size,
                available,
            });
        }

        // 6-7: versions and fields.
        let mut reader = Reader {
            msg: bytes,
            params,
            claimed: vec![false; message.driver_objects.len()],
            options,
            descriptor_format: options.descriptor_format,
        };
        let (body, known_end) = Body::decode_known(id, &mut reader, struct_size as usize)?;
        message.body = body;
        message.descriptor_format = reader.descriptor_format;
        message.params_extension = bytes
            .get(params + known_end..params + struct_size as usize)
            .unwrap_or(&[]);
        Ok(message)
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

    /// Compares `bytes` with this message's encoding; the error names the
    /// first differing field.
    pub fn compare(&self, bytes: &[u8]) -> Result<(), MessageError> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut spans = Vec::new();
        self.encode_with_spans(&mut out, &mut spans);
        if out == bytes {
            return Ok(());
        }
        let offset = first_difference(&out, bytes);
        let field = spans
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
            );
        Err(MessageError::NotCanonical { offset, field })
    }

    /// Appends the message in Chrome's layout (spec §2.8); returns the number
    /// of fds its frame must carry.
    pub fn encode(&self, out: &mut Vec<u8>) -> usize {
        self.encode_inner(out, None);
        self.num_fds()
    }

    /// Encoded length.
    pub fn encoded_len(&self) -> usize {
        let mut out = Vec::new();
        self.encode_inner(&mut out, None);
        out.len()
    }

    /// [`Self::encode`], recording the byte range of every field.
    pub fn encode_with_spans(&self, out: &mut Vec<u8>, spans: &mut Vec<FieldSpan>) {
        self.encode_inner(out, Some(spans));
    }

    fn encode_inner(&self, out: &mut Vec<u8>, spans: Option<&mut Vec<FieldSpan>>) {
        let base = out.len();
        let names = self.body.part_names();
        let header_size = MESSAGE_HEADER_SIZE + self.header_extension.len();
        // A known message's reserved bytes are zero and its table offset is
        // patched in below; an unknown one's header is written back verbatim.
        let (reserved0, doda_raw, reserved1) = match &self.body {
            Body::Unknown(u) => (u.reserved0, u.driver_object_data_array, u.reserved1),
            _ => ([0; 5], 0, [0; 4]),
        };
        out.push(u8::try_from(header_size).unwrap_or(u8::MAX));
        out.push(self.header_version);
        out.push(self.body.id().0);
        out.extend_from_slice(&reserved0);
        out.extend_from_slice(&self.sequence_number.0.to_le_bytes());
        out.extend_from_slice(&doda_raw.to_le_bytes());
        out.extend_from_slice(&reserved1);
        out.extend_from_slice(self.header_extension);
        let mut w = Writer {
            out,
            base,
            shift: self.header_extension.len(),
            spans,
            descriptor_format: self.descriptor_format,
        };
        w.span(0..1, "header.size");
        w.span(1..2, "header.version");
        w.span(2..3, "header.message_id");
        w.span(3..8, "header.reserved0");
        w.span(8..16, "header.sequence_number");
        w.span(16..20, "header.driver_object_data_array");
        w.span(20..24, "header.reserved1");
        if header_size > MESSAGE_HEADER_SIZE {
            w.span(MESSAGE_HEADER_SIZE..header_size, "header extension");
        }
        if let Body::Unknown(u) = &self.body {
            let start = w.len();
            w.out.extend_from_slice(u.body);
            let end = w.len();
            w.span(start..end, names.body);
            return;
        }
        // The zeroed params block with its StructHeader, the inline fields,
        // any newer-version bytes, then the arrays in field order, then the
        // driver objects.
        let known = self.body.params_size(!self.params_extension.is_empty());
        let params_size = known + self.params_extension.len();
        let params_start = w.len();
        w.out.resize(w.base + params_start + params_size, 0);
        w.put(
            params_start,
            &u32::try_from(params_size).unwrap_or(u32::MAX).to_le_bytes(),
        );
        w.span(params_start..params_start + 4, names.struct_size);
        w.span(params_start + 4..params_start + 8, names.struct_padding);
        self.body.write_inline(&mut w, known);
        if !self.params_extension.is_empty() {
            let at = params_start + known;
            w.put(at, self.params_extension);
            w.span(at..at + self.params_extension.len(), names.newer_params);
        }
        self.body.write_dynamic(&mut w, known);
        encode_driver_objects(&mut w, &self.driver_objects);
    }
}

/// `N` header bytes from `at` (zero where the message is shorter).
fn header_bytes<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    if let Some(src) = codec::slice(bytes, at, N) {
        out.copy_from_slice(src);
    }
    out
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
    let mut objects = Vec::with_capacity(table.num_elements as usize);
    let mut first_error = None;
    for (index, record) in table
        .elements
        .chunks_exact(DRIVER_OBJECT_DATA_SIZE)
        .enumerate()
    {
        let data_array = codec::u32_at(record, 0).unwrap_or(0);
        let first = codec::u16_at(record, 4).unwrap_or(0);
        let count = codec::u16_at(record, 6).unwrap_or(0);
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

fn encode_driver_objects(w: &mut Writer<'_>, objects: &[AttachedObject]) {
    if objects.is_empty() {
        return;
    }
    let n = objects.len();
    let table_names = ArrayNames {
        header: "DriverObjectData (array header)",
        elements: "DriverObjectData",
    };
    let bytes_names = ArrayNames {
        header: "driver object bytes (array header)",
        elements: "driver object bytes",
    };
    let table = w.array(DRIVER_OBJECT_DATA_SIZE, n, table_names, |out| {
        out.resize(out.len() + DRIVER_OBJECT_DATA_SIZE * n, 0);
    });
    w.put(16, &table.to_le_bytes());
    let table = table as usize + ARRAY_HEADER_SIZE;
    for (i, attached) in objects.iter().enumerate() {
        let object = attached.object;
        let offset = w.array(1, object.encoded_len(), bytes_names, |out| {
            object.encode(out)
        });
        let record = table + i * DRIVER_OBJECT_DATA_SIZE;
        w.put(record, &offset.to_le_bytes());
        w.put(record + 4, &attached.fds.first.to_le_bytes());
        w.put(record + 6, &attached.fds.count.to_le_bytes());
        w.span(record..record + 4, "DriverObjectData.driver_data_array");
        w.span(
            record + 4..record + 6,
            "DriverObjectData.first_driver_handle",
        );
        w.span(
            record + 6..record + 8,
            "DriverObjectData.num_driver_handles",
        );
        if w.spans.is_some() {
            let start = offset as usize + ARRAY_HEADER_SIZE;
            for at in 0..object.encoded_len() {
                w.span(start + at..start + at + 1, object.field_at(at));
            }
        }
    }
}

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::describe::describe_message(self, f)
    }
}
