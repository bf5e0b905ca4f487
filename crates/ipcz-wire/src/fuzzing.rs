//! Round-trip oracles for the fuzz targets under `fuzz/fuzz_targets/ipcz_*.rs`
//! (also run by `cargo test` on the seed corpus and on random inputs). Each
//! function accepts any bytes and panics only if the crate is wrong: decoding
//! never panics, anything that decodes re-encodes to a fixed point, and
//! anything that decodes *exactly* re-encodes to the bytes consumed. Layers
//! with a `decode_exact` are checked with [`mojo_wire_kit::contract!`], as in
//! `mojo_legacy_wire::fuzzing`.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "an oracle's panic is its finding: it reports a broken decoding contract to the fuzzer"
)]

use crate::driver_object::DriverObject;
use crate::error::FrameError;
use crate::frame::{Deframer, Frame};
use crate::memory::{self, LinkStatus, block, fragment as frag};
use crate::message::{DecodeOptions, Message};
use crate::router_descriptor::{DescriptorFormat, LegacyRouterDescriptor, RouterDescriptor};
use crate::types::{FragmentDescriptor, LinkSide, SublinkId};
use mojo_wire_kit::{FrameCopy, FrameSource, WireLayout, contract, fields_tile};

/// One frame: parse, re-encode to the consumed bytes, then the message oracle
/// on its payload with its fd count.
pub fn frame(data: &[u8]) {
    if let Ok((f, used)) = Frame::decode(data) {
        assert_eq!(f.len(), used);
        let mut out = Vec::new();
        f.encode(&mut out).expect("a decoded frame re-encodes");
        assert_eq!(out, &data[..used], "frame re-encoding");
        message_with_fds(f.payload, usize::from(f.header.num_handles));
    }
}

/// The deframer is split-invariant: feeding `data[1..]` in pieces whose sizes
/// come from `data[0]` yields the same frames (offsets and bytes) and the
/// same outcome as feeding it at once; every frame re-encodes exactly.
pub fn deframer(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = deframe(stream, &[stream.len().max(1)]);
    let sizes: Vec<usize> = (0..8)
        .map(|i| 1 + ((usize::from(seed).rotate_left(i) * 7 + i as usize) % 61))
        .collect();
    let pieces = deframe(stream, &sizes);
    assert_eq!(whole, pieces, "deframer is not split-invariant");
    let bytewise = deframe(stream, &[1]);
    assert_eq!(whole, bytewise, "deframer differs byte by byte");
    for copy in &whole.frames {
        let (f, _) = Frame::decode(&copy.bytes).expect("a deframed frame decodes");
        let mut out = Vec::new();
        f.encode(&mut out).expect("a deframed frame re-encodes");
        assert_eq!(out, copy.bytes);
    }
}

/// Deframes `stream` in pieces of `sizes[0]`, `sizes[1]`, ... bytes (cycling).
fn deframe(stream: &[u8], sizes: &[usize]) -> StreamFrames {
    let mut pieces = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        i += 1;
        let (piece, tail) = rest.split_at(n);
        pieces.push(piece);
        rest = tail;
    }
    // Buffer limit above the input so that only frame contents decide.
    deframe_pieces(Deframer::with_limits(1 << 16, stream.len()), pieces)
}

/// What [`deframe_pieces`] found.
pub type StreamFrames = mojo_wire_kit::StreamFrames<FrameError>;

/// [`mojo_wire_kit::deframe_pieces`] over this crate's [`Deframer`]: pushes
/// each piece and takes every complete frame after it, checking that each
/// equals a decode of its own bytes.
pub fn deframe_pieces<'a>(
    deframer: Deframer,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> StreamFrames {
    let source = Copying {
        deframer,
        stream: Vec::new(),
    };
    mojo_wire_kit::deframe_pieces(source, pieces)
}

/// A [`Deframer`] that hands out checked copies of its frames (it keeps the
/// stream, since the deframer lends a decoded frame, not its bytes).
struct Copying {
    deframer: Deframer,
    stream: Vec<u8>,
}

impl FrameSource for Copying {
    type Error = FrameError;

    fn push(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        self.stream.extend_from_slice(bytes);
        self.deframer.push(bytes)
    }

    fn next_copy(&mut self) -> Result<Option<FrameCopy>, FrameError> {
        let Some((offset, f)) = self.deframer.next_frame()? else {
            return Ok(None);
        };
        let start = offset as usize;
        let bytes = &self.stream[start..start + f.len()];
        assert_eq!(
            Frame::decode(bytes),
            Ok((f, bytes.len())),
            "deframed frame differs from a decode of its bytes"
        );
        Ok(Some(FrameCopy {
            offset,
            bytes: bytes.to_vec(),
            num_handles: f.header.num_handles,
        }))
    }

    fn buffered(&self) -> usize {
        self.deframer.buffered()
    }
}

/// A message: `data[0]` is the number of fds that arrived with it, the rest
/// is the message.
pub fn message(data: &[u8]) {
    if let Some((&fds, bytes)) = data.split_first() {
        message_with_fds(bytes, usize::from(fds % 8));
    }
}

fn message_with_fds(bytes: &[u8], fds: usize) {
    for options in [
        DecodeOptions::default(),
        DecodeOptions {
            descriptor_format: DescriptorFormat::PreM117,
            detect_descriptor_format: false,
        },
        DecodeOptions {
            detect_descriptor_format: true,
            ..DecodeOptions::default()
        },
    ] {
        let decoded = contract!(
            "message",
            bytes,
            |b| Message::decode_with(b, fds, options).map(|m| (m, b.len())),
            |b| Message::decode_exact_with(b, fds, options).map(|m| (m, b.len())),
            |m: &Message<'_>, out: &mut Vec<u8>| {
                m.encode(out).expect("a decoded message re-encodes");
                assert_eq!(Ok(out.len()), m.encoded_len());
            }
        );
        if let Some((m, _)) = decoded {
            let _ = m.check_semantics();
            let _ = m.to_string();
        }
    }
}

/// A driver object: `data[0] % 4` fds, the rest its serialized bytes.
pub fn driver_object(data: &[u8]) {
    let Some((&fds, bytes)) = data.split_first() else {
        return;
    };
    let fds = usize::from(fds % 4);
    let decoded = contract!(
        "driver object",
        bytes,
        |b| DriverObject::decode(b, fds).map(|o| (o, b.len())),
        |b| DriverObject::decode_exact(b, fds).map(|o| (o, b.len())),
        |o: &DriverObject, out: &mut Vec<u8>| {
            o.encode(out).expect("a decoded object re-encodes");
            assert_eq!(out.len(), o.encoded_len());
        }
    );
    if let Some((object, _)) = decoded {
        let _ = object.to_string();
        assert!(object.fd_count() <= fds);
    }
}

/// RouterDescriptors in both layouts: decode, re-encode (canonical iff the
/// reserved bits are zero), validate against the sublink in the first bytes.
pub fn router_descriptor(data: &[u8]) {
    if let Ok(d) = RouterDescriptor::decode(data) {
        let wire = d.to_wire();
        let bytes = wire.wire_bytes();
        assert_eq!(RouterDescriptor::decode(bytes), Ok(d));
        let canonical = data[64] & !3 == 0 && data[65..72].iter().all(|b| *b == 0);
        assert_eq!(bytes[..] == data[..RouterDescriptor::SIZE], canonical);
        let receiving = SublinkId(u64::from(data[0]));
        let _ = d
            .validate(receiving)
            .map_err(|e| (e.field(), e.to_string()));
        let _ = d.to_string();
    }
    if let Ok(l) = LegacyRouterDescriptor::decode(data) {
        let wire = l.to_wire();
        let bytes = wire.wire_bytes();
        assert_eq!(LegacyRouterDescriptor::decode(bytes), Ok(l));
        let canonical = data[80] & !3 == 0 && data[81..88].iter().all(|b| *b == 0);
        assert_eq!(bytes[..] == data[..LegacyRouterDescriptor::SIZE], canonical);
        let current = RouterDescriptor::from(l);
        let mut out = Vec::new();
        current.encode_format(DescriptorFormat::PreM117, &mut out);
        assert_eq!(
            RouterDescriptor::decode_format(&out, DescriptorFormat::PreM117),
            Ok(current)
        );
    }
    for format in [DescriptorFormat::Current, DescriptorFormat::PreM117] {
        assert!(fields_tile(format.fields(), format.size()));
    }
}

/// Shared-memory layouts: a FragmentDescriptor (first 16 bytes) resolved
/// against the rest and read as parcel data; RouterLinkState views and pure
/// status transitions; block headers; a BlockAllocator driven by the bytes.
pub fn fragment(data: &[u8]) {
    let Ok(desc) = FragmentDescriptor::decode(data) else {
        return;
    };
    assert_eq!(
        FragmentDescriptor::decode(desc.to_wire().wire_bytes()),
        Ok(desc)
    );
    let buffer = data.get(FragmentDescriptor::SIZE..).unwrap_or_default();
    if let Ok(range) = frag::range(desc, buffer.len()) {
        assert!(range.end <= buffer.len());
        if let Ok(parcel) = frag::parcel_data(desc, &buffer[range.clone()]) {
            let mut copy = buffer[range].to_vec();
            frag::write_parcel_data(&mut copy, parcel).expect("rewrite");
            assert_eq!(frag::parcel_data(desc, &copy), Ok(parcel));
        }
    }
    let _ = frag::block_size_for_data(buffer.len());
    let _ = memory::is_valid_link_state_fragment(desc);

    if let Ok(state) = memory::RouterLinkState::new_checked(buffer) {
        let _ = (state.ref_count(), state.allowed_bypass_request_source());
        let status = state.status();
        for side in [LinkSide::A, LinkSide::B, LinkSide(data[0])] {
            link_status_laws(status, side);
            let _ = state.can_node_request_bypass(side, desc_name(desc));
        }
    }
    let word = desc.offset;
    link_status_laws(LinkStatus::from_word(word), LinkSide::A);
    link_status_laws(LinkStatus::from_word(word), LinkSide::B);
    let h = block::BlockHeader::from_word(word);
    assert_eq!(block::BlockHeader::from_word(h.to_word()), h);
    assert_eq!(h.to_word(), word);

    // A 64-byte-block allocator over a copy of the bytes: whatever the bytes
    // say, allocation and freeing stay in range and never panic.
    let mut region = buffer.to_vec();
    region.truncate(region.len() / 64 * 64);
    if let Ok(mut a) = block::BlockAllocator::new(&mut region, 64) {
        let n = a.num_blocks();
        let mut taken = Vec::new();
        for &op in data.iter().take(64) {
            if op & 1 == 0 {
                if let Some(i) = a.allocate() {
                    assert!(i > 0 && i < n);
                    taken.push(i);
                }
            } else if let Some(i) = taken.pop() {
                assert!(a.free(i).is_ok() || a.header(0).next_absolute(0) as usize >= n);
            }
        }
    }
}

fn desc_name(d: FragmentDescriptor) -> crate::types::NodeName {
    crate::types::NodeName {
        high: d.buffer_id.0,
        low: u64::from(d.size),
    }
}

fn link_status_laws(s: LinkStatus, side: LinkSide) {
    let stable = s.set_side_stable(side);
    assert!(stable.is_stable(side));
    assert_eq!(stable.set_side_stable(side), stable);
    let t = s.try_lock(side);
    if t.ok {
        assert!(s.contains(LinkStatus::STABLE) && !s.intersects(LinkStatus::LOCKED));
        assert!(t.status.is_locked_by(side));
        assert_eq!(t.status.unlock(side), s);
    } else {
        assert!(!t.status.is_locked_by(side) || s.is_locked_by(side));
        assert!(t.status.contains(s));
    }
    let r = s.reset_waiting_bit(side);
    if r.ok {
        assert!(!r.status.intersects(LinkStatus::LOCKED));
        assert_eq!(r.status | (s - r.status), s);
    } else {
        assert_eq!(r.status, s);
    }
}
