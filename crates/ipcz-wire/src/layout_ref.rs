//! Fixed layouts borrowed straight out of received bytes, without copying
//! (the decoders' hot path; `Reader::layout` copies).

use mojo_wire_kit::{CodecError, Reader, WireLayout};

/// The layout `T` at the reader's position, borrowed; the reader moves past it.
pub(crate) fn layout_ref<'a, T: WireLayout>(
    r: &mut Reader<'a>,
    field: &'static str,
) -> Result<&'a T, CodecError> {
    r.slice_of::<T>(1, field)?
        .first()
        .ok_or(CodecError::Truncated {
            field,
            needed: T::SIZE,
            available: 0,
        })
}

/// The layout `T` at the start of `bytes`, borrowed.
pub(crate) fn prefix_ref<'a, T: WireLayout>(
    bytes: &'a [u8],
    field: &'static str,
) -> Result<&'a T, CodecError> {
    layout_ref(&mut Reader::new(bytes), field)
}
