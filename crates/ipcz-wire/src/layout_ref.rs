//! Fixed layouts borrowed straight out of received bytes, without copying
//! (the decoders' hot path; `Reader::layout` copies).

use mojo_wire_kit::{CodecError, Reader, WireLayout};

/// The layout `T` at the reader's position, borrowed; the reader moves past it.
#[inline]
pub(crate) fn layout_ref<'a, T: WireLayout>(
    r: &mut Reader<'a>,
    field: &'static str,
) -> Result<&'a T, CodecError> {
    r.layout_ref::<T>(field)
}

/// The layout `T` at the start of `bytes`, borrowed.
#[inline]
pub(crate) fn prefix_ref<'a, T: WireLayout>(
    bytes: &'a [u8],
    field: &'static str,
) -> Result<&'a T, CodecError> {
    layout_ref(&mut Reader::new(bytes), field)
}
