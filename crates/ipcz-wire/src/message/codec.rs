//! The params codec behind every message of the catalog: Chrome's
//! `IsArrayValid`, a reader and a writer that know where the params start,
//! and the [`Field`] trait that reads, writes and shows one params field
//! type. Every read names its field; every write is in range or an error.

use core::fmt;
use core::ops::Range;

use mojo_wire_kit::{CodecError, Reader, WireLayout, Writer, checked_len};

use super::wire::ArrayHeaderWire;
use crate::error::{ArrayError, FieldError, MessageError};
use crate::layout_ref::layout_ref;
use crate::limits::{ARRAY_HEADER_SIZE, MESSAGE_HEADER_SIZE};
use crate::message::DecodeOptions;
use crate::router_descriptor::{DescriptorFormat, LegacyRouterDescriptor, RouterDescriptor};
use crate::types::{
    BufferId, DriverObjectArray, DriverObjectIndex, FragmentDescriptor, FragmentDescriptorWire,
    HandleType, LinkSide, NodeName, NodeNameWire, NodeType, ReferralId, SequenceNumber, SublinkId,
};

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
    let Some(available) = msg.len().checked_sub(o).filter(|n| *n > 0) else {
        return Err(ArrayError::OffsetOutOfBounds {
            offset,
            len: msg.len(),
        });
    };
    let mut r = Reader::new(msg).at(o);
    let Ok(header) = layout_ref::<ArrayHeaderWire>(&mut r, "ArrayHeader") else {
        return Err(ArrayError::HeaderTruncated { offset });
    };
    let (num_bytes, num_elements) = (header.num_bytes.get(), header.num_elements.get());
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
    // Inside `num_bytes`, which is inside the message: cannot fail.
    let elements = r
        .take(num_elements as usize * element_size, "array elements")
        .map_err(|_| ArrayError::HeaderTruncated { offset })?;
    Ok(ArrayRef {
        num_elements,
        num_bytes,
        elements,
    })
}

/// Decoding state shared by the fields of one message.
pub(crate) struct ParamsReader<'a> {
    pub(crate) msg: &'a [u8],
    /// Offset of the params (= `header.size`).
    pub(crate) params: usize,
    pub(crate) claimed: Vec<bool>,
    pub(crate) options: DecodeOptions,
    pub(crate) descriptor_format: DescriptorFormat,
}

impl<'a> ParamsReader<'a> {
    /// A cursor at the field given at its Chrome-layout offset `at` (which
    /// assumes a 24-byte header).
    #[inline]
    pub(crate) fn field(&self, at: usize) -> Reader<'a> {
        Reader::new(self.msg).at(self.params + (at - MESSAGE_HEADER_SIZE))
    }

    #[inline]
    fn array(
        &self,
        at: usize,
        element_size: usize,
        name: &'static str,
    ) -> Result<Option<ArrayRef<'a>>, FieldError> {
        let offset = self.field(at).u32(name)?;
        if offset == 0 {
            return Ok(None);
        }
        check_array(self.msg, offset, element_size)
            .map(Some)
            .map_err(FieldError::Array)
    }
}

/// Encoding state: the writer, where in it the message starts, and optional
/// span recording. Offsets are message offsets.
pub(crate) struct ParamsWriter<'w, 'o> {
    pub(crate) w: &'w mut Writer<'o>,
    /// Writer offset of the message's first byte.
    pub(crate) base: usize,
    /// Header bytes beyond 24: added to Chrome-layout field offsets.
    pub(crate) shift: usize,
    pub(crate) spans: Option<&'w mut Vec<FieldSpan>>,
    pub(crate) descriptor_format: DescriptorFormat,
}

impl ParamsWriter<'_, '_> {
    /// Bytes of the message written so far.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.w.len() - self.base
    }

    /// Overwrites bytes at message offset `at` (inside what was written).
    #[inline]
    pub(crate) fn put(
        &mut self,
        at: usize,
        bytes: &[u8],
        field: &'static str,
    ) -> Result<(), CodecError> {
        self.w.put_at(self.base + at, bytes, field)
    }

    /// Writes a params field given at its Chrome-layout offset.
    #[inline]
    pub(crate) fn put_field(
        &mut self,
        at: usize,
        bytes: &[u8],
        field: &'static str,
    ) -> Result<(), CodecError> {
        self.put(at + self.shift, bytes, field)
    }

    /// Records the span of a params field given at its Chrome-layout offset.
    #[inline]
    pub(crate) fn field_span(&mut self, at: usize, width: usize, name: &'static str) {
        let at = at + self.shift;
        self.span(at..at + width, name);
    }

    #[inline]
    pub(crate) fn span(&mut self, range: Range<usize>, name: &'static str) {
        if let Some(spans) = self.spans.as_deref_mut() {
            spans.push(FieldSpan { range, name });
        }
    }

    /// Appends an 8-aligned array of `num_elements` elements whose packed
    /// bytes `fill` appends; returns its offset (0 and nothing appended if
    /// empty). Counts and lengths that do not fit their u32 are errors.
    #[inline]
    pub(crate) fn array(
        &mut self,
        element_size: usize,
        num_elements: usize,
        names: ArrayNames,
        fill: impl FnOnce(&mut Writer<'_>),
    ) -> Result<u32, CodecError> {
        if num_elements == 0 {
            return Ok(0);
        }
        // Arrays start 8-aligned and are padded to a multiple of 8.
        let len = self.len();
        let pad = len.wrapping_neg() & 7;
        let offset = len + pad;
        // Every length is checked before anything is appended (appending
        // cannot fail, so the first failing check is the error either way).
        let num_bytes = element_size
            .checked_mul(num_elements)
            .and_then(|n| n.checked_add(ARRAY_HEADER_SIZE + 7))
            .ok_or(CodecError::TooLong {
                field: names.header,
                len: num_elements,
            })?
            & !7;
        let header = ArrayHeaderWire {
            num_bytes: checked_len::<u32>(names.header, num_bytes)?.into(),
            num_elements: checked_len::<u32>(names.header, num_elements)?.into(),
        };
        let wire_offset = checked_len::<u32>(names.header, offset)?;
        if pad != 0 {
            zeros(self.w, pad);
        }
        self.w.layout(&header);
        fill(self.w);
        let end = offset + num_bytes;
        let tail = end.saturating_sub(self.len());
        if tail != 0 {
            zeros(self.w, tail);
        }
        if self.spans.is_some() {
            self.span(offset..offset + ARRAY_HEADER_SIZE, names.header);
            self.span(offset + ARRAY_HEADER_SIZE..end, names.elements);
        }
        Ok(wire_offset)
    }
}

/// Appends `n` zero bytes. Short runs (padding, params blocks, the driver
/// object table) are copied from a zero block, which is much cheaper than
/// `Vec::resize`'s byte loop.
#[inline]
pub(crate) fn zeros(w: &mut Writer<'_>, n: usize) {
    const ZERO_BLOCK: [u8; 128] = [0; 128];
    // Alignment padding (under 8 bytes) has the writer's own store path.
    if n < 8 {
        return w.zeros(n);
    }
    match ZERO_BLOCK.get(..n) {
        Some(block) => w.bytes(block),
        None => w.zeros(n),
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
    /// Reads (and validates) the field `name` at Chrome-layout offset `at`.
    fn read(r: &mut ParamsReader<'a>, at: usize, name: &'static str) -> Result<Self, FieldError>;
    /// Writes the inline part at `at`. Arrays have none: their offset is
    /// patched in by [`Field::write_dynamic`] (and stays 0 when absent).
    fn write(
        &self,
        _w: &mut ParamsWriter<'_, '_>,
        _at: usize,
        _name: &'static str,
    ) -> Result<(), CodecError> {
        Ok(())
    }
    /// Appends dynamic data (arrays) and patches the offset at `at`.
    fn write_dynamic(
        &self,
        _w: &mut ParamsWriter<'_, '_>,
        _at: usize,
        _names: ArrayNames,
    ) -> Result<(), CodecError> {
        Ok(())
    }
    /// Shows the value in a description line.
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// A field stored as one little-endian integer, possibly in a newtype.
macro_rules! int_field {
    ($ty:ty, $int:ty, $read:ident, |$v:ident| $to:expr, |$x:ident| $from:expr) => {
        impl<'a> Field<'a> for $ty {
            const WIDTH: usize = core::mem::size_of::<$int>();
            fn read(
                r: &mut ParamsReader<'a>,
                at: usize,
                name: &'static str,
            ) -> Result<Self, FieldError> {
                let $x = r.field(at).$read(name)?;
                Ok($from)
            }
            fn write(
                &self,
                w: &mut ParamsWriter<'_, '_>,
                at: usize,
                name: &'static str,
            ) -> Result<(), CodecError> {
                let $v = self;
                let raw: $int = $to;
                w.put_field(at, &raw.to_le_bytes(), name)
            }
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

int_field!(u8, u8, u8, |v| *v, |x| x);
int_field!(u16, u16, u16, |v| *v, |x| x);
int_field!(u32, u32, u32, |v| *v, |x| x);
int_field!(u64, u64, u64, |v| *v, |x| x);
int_field!(LinkSide, u8, u8, |v| v.0, |x| LinkSide(x));
int_field!(NodeType, u8, u8, |v| v.0, |x| NodeType(x));
int_field!(SublinkId, u64, u64, |v| v.0, |x| SublinkId(x));
int_field!(SequenceNumber, u64, u64, |v| v.0, |x| SequenceNumber(x));
int_field!(BufferId, u64, u64, |v| v.0, |x| BufferId(x));
int_field!(ReferralId, u64, u64, |v| v.0, |x| ReferralId(x));

/// A field stored as a fixed layout.
macro_rules! layout_field {
    ($ty:ty, $wire:ty) => {
        impl<'a> Field<'a> for $ty {
            const WIDTH: usize = <$wire as WireLayout>::SIZE;
            fn read(
                r: &mut ParamsReader<'a>,
                at: usize,
                name: &'static str,
            ) -> Result<Self, FieldError> {
                let wire = layout_ref::<$wire>(&mut r.field(at), name)?;
                Ok(<$ty>::from_wire(*wire))
            }
            fn write(
                &self,
                w: &mut ParamsWriter<'_, '_>,
                at: usize,
                name: &'static str,
            ) -> Result<(), CodecError> {
                w.put_field(at, self.to_wire().wire_bytes(), name)
            }
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

layout_field!(NodeName, NodeNameWire);
layout_field!(FragmentDescriptor, FragmentDescriptorWire);

impl<'a> Field<'a> for DriverObjectIndex {
    const WIDTH: usize = 4;
    const KIND: FieldKind = FieldKind::DriverObject;
    fn read(r: &mut ParamsReader<'a>, at: usize, name: &'static str) -> Result<Self, FieldError> {
        let index = r.field(at).u32(name)?;
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
    fn write(
        &self,
        w: &mut ParamsWriter<'_, '_>,
        at: usize,
        name: &'static str,
    ) -> Result<(), CodecError> {
        w.put_field(at, &self.0.to_le_bytes(), name)
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'a> Field<'a> for DriverObjectArray {
    const WIDTH: usize = 8;
    const KIND: FieldKind = FieldKind::DriverObjectArray;
    fn read(r: &mut ParamsReader<'a>, at: usize, name: &'static str) -> Result<Self, FieldError> {
        let mut fields = r.field(at);
        let v = Self {
            first: fields.u32(name)?,
            count: fields.u32(name)?,
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
        let claimed = r
            .claimed
            .get_mut(first..first + v.count as usize)
            .unwrap_or_default();
        for (i, c) in claimed.iter_mut().enumerate() {
            if *c {
                return Err(FieldError::ObjectClaimedTwice {
                    index: v.first + i as u32,
                });
            }
            *c = true;
        }
        Ok(v)
    }
    #[inline]
    fn write(
        &self,
        w: &mut ParamsWriter<'_, '_>,
        at: usize,
        name: &'static str,
    ) -> Result<(), CodecError> {
        // One 8-byte store: `first` then `count`, both little-endian.
        let both = u64::from(self.first) | (u64::from(self.count) << 32);
        w.put_field(at, &both.to_le_bytes(), name)
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Patches the offset of a just-appended array into its field. (An empty
/// array is not appended at all: its field stays 0 in the zeroed params
/// block, which is what Chrome sends.)
fn patch(
    w: &mut ParamsWriter<'_, '_>,
    at: usize,
    offset: u32,
    names: ArrayNames,
) -> Result<(), CodecError> {
    w.put_field(at, &offset.to_le_bytes(), names.elements)
}

impl<'a> Field<'a> for &'a [u8] {
    const WIDTH: usize = 4;
    const KIND: FieldKind = FieldKind::Array { element_size: 1 };
    fn read(r: &mut ParamsReader<'a>, at: usize, name: &'static str) -> Result<Self, FieldError> {
        Ok(r.array(at, 1, name)?.map_or(&[][..], |a| a.elements))
    }
    fn write_dynamic(
        &self,
        w: &mut ParamsWriter<'_, '_>,
        at: usize,
        names: ArrayNames,
    ) -> Result<(), CodecError> {
        if self.is_empty() {
            return Ok(());
        }
        let offset = w.array(1, self.len(), names, |out| out.bytes(self))?;
        patch(w, at, offset, names)
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B", self.len())
    }
}

/// An array of little-endian integers, possibly in a newtype.
macro_rules! int_array_field {
    ($ty:ty, $int:ty, $read:ident, $write:ident, |$v:ident| $to:expr, |$x:ident| $from:expr, $show:expr) => {
        impl<'a> Field<'a> for Vec<$ty> {
            const WIDTH: usize = 4;
            const KIND: FieldKind = FieldKind::Array {
                element_size: core::mem::size_of::<$int>(),
            };
            fn read(
                r: &mut ParamsReader<'a>,
                at: usize,
                name: &'static str,
            ) -> Result<Self, FieldError> {
                const N: usize = core::mem::size_of::<$int>();
                let Some(a) = r.array(at, N, name)? else {
                    return Ok(Self::new());
                };
                // `check_array` returned exactly `num_elements * N` bytes, so
                // every chunk is whole; an exact-size iterator allocates once.
                Ok(a.elements
                    .chunks_exact(N)
                    .map(|c| {
                        let $x = c
                            .first_chunk::<N>()
                            .map_or(0, |b| <$int>::from_le_bytes(*b));
                        $from
                    })
                    .collect())
            }
            #[inline]
            fn write_dynamic(
                &self,
                w: &mut ParamsWriter<'_, '_>,
                at: usize,
                names: ArrayNames,
            ) -> Result<(), CodecError> {
                if self.is_empty() {
                    return Ok(());
                }
                let offset = w.array(core::mem::size_of::<$int>(), self.len(), names, |out| {
                    for $v in self {
                        out.$write($to);
                    }
                })?;
                patch(w, at, offset, names)
            }
            fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let show: fn(&Self, &mut fmt::Formatter<'_>) -> fmt::Result = $show;
                show(self, f)
            }
        }
    };
}

int_array_field!(u64, u64, u64, u64, |v| *v, |x| x, |v, f| write!(
    f,
    "{v:x?}"
));
int_array_field!(
    HandleType,
    u32,
    u32,
    u32,
    |v| v.0,
    |x| HandleType(x),
    |v, f| show_list(f, v)
);

impl<'a> Field<'a> for Vec<RouterDescriptor> {
    const WIDTH: usize = 4;
    const KIND: FieldKind = FieldKind::Array {
        element_size: RouterDescriptor::SIZE,
    };
    fn read(r: &mut ParamsReader<'a>, at: usize, name: &'static str) -> Result<Self, FieldError> {
        // Detection needs the raw element size, so look at the array with
        // element size 1 first, then validate it with the chosen size.
        // (The first look also reports the errors an element size of 1
        // finds, before the chosen size is applied, as it always has.)
        let Some(raw) = r.array(at, 1, name)? else {
            return Ok(Self::new());
        };
        let format = if r.options.detect_descriptor_format
            && raw.num_elements > 0
            && (raw.num_bytes as usize - ARRAY_HEADER_SIZE)
                == raw.num_elements as usize * DescriptorFormat::PreM117.size()
        {
            DescriptorFormat::PreM117
        } else {
            r.options.descriptor_format
        };
        let Some(a) = r.array(at, format.size(), name)? else {
            return Ok(Self::new());
        };
        r.descriptor_format = format;
        let mut elements = Reader::new(a.elements);
        (0..a.num_elements)
            .map(|_| {
                let bytes = elements.take(format.size(), name)?;
                Ok(RouterDescriptor::decode_format(bytes, format)?)
            })
            .collect()
    }
    #[inline]
    fn write_dynamic(
        &self,
        w: &mut ParamsWriter<'_, '_>,
        at: usize,
        names: ArrayNames,
    ) -> Result<(), CodecError> {
        // Most parcels carry no routers: the empty case costs one test at
        // the call site, the rest stays out of line.
        if self.is_empty() {
            return Ok(());
        }
        write_router_descriptors(self, w, at, names)
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show_list(f, self)
    }
}

/// Appends a non-empty router descriptor array in the writer's format and
/// patches its offset into the field at `at`.
fn write_router_descriptors(
    descriptors: &[RouterDescriptor],
    w: &mut ParamsWriter<'_, '_>,
    at: usize,
    names: ArrayNames,
) -> Result<(), CodecError> {
    let format = w.descriptor_format;
    let offset = w.array(format.size(), descriptors.len(), names, |out| {
        for d in descriptors {
            match format {
                DescriptorFormat::Current => out.layout(&d.to_wire()),
                DescriptorFormat::PreM117 => {
                    out.layout(&LegacyRouterDescriptor::from(*d).to_wire())
                }
            }
        }
    })?;
    if offset != 0 && w.spans.is_some() {
        let start = offset as usize + ARRAY_HEADER_SIZE;
        for i in 0..descriptors.len() {
            let element = start + i * format.size();
            for field in format.fields() {
                w.span(
                    element + field.range.start..element + field.range.end,
                    field.name,
                );
            }
        }
    }
    patch(w, at, offset, names)
}

/// `[a, b, c]` from the items' `Display`.
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
    fn decode(r: &mut ParamsReader<'a>, struct_size: usize) -> Result<(Self, usize), MessageError>;
    /// `StructHeader.size` this value needs (without extension bytes).
    fn params_size(&self, has_extension: bool) -> usize;
    /// Writes inline fields into the zeroed params block.
    fn write_inline(
        &self,
        w: &mut ParamsWriter<'_, '_>,
        params_size: usize,
    ) -> Result<(), CodecError>;
    /// Appends arrays in field order.
    fn write_dynamic(
        &self,
        w: &mut ParamsWriter<'_, '_>,
        params_size: usize,
    ) -> Result<(), CodecError>;
}
