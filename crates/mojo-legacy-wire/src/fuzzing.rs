//! Oracles for the cargo-fuzz targets in `fuzz/fuzz_targets/legacy_*.rs`
//! (and for the unit tests that run them on the seed corpus under stable).
//!
//! Each function checks the crate's decoding contract on arbitrary input with
//! [`mojo_wire_kit::contract!`], as `ipcz_wire::fuzzing` does: nothing
//! panics (malformed input only ever produces an `Err`), `decode_exact` is
//! `decode` plus the canonical check, and re-encodings are canonical.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "an oracle's panic is its finding: it reports a broken decoding contract to the fuzzer"
)]

use crate::broker::BrokerFrame;
use crate::channel::Frame;
use crate::deframer::Deframer;
use crate::error::Error;
use crate::event::{Event, EventData};
use crate::node::{NodeChannelContent, NodeFrame, NodeMessage};
use crate::profile::EventHeaderForm;
use crate::user_message::UserMessage;
use crate::verify::{self, ChannelRole, check_frame};
use mojo_wire_kit::{FrameCopy, FrameSource, contract};

/// Input: bytes starting with a channel message.
pub fn channel_frame(data: &[u8]) {
    contract!(
        "channel frame",
        data,
        Frame::decode,
        Frame::decode_exact,
        |f: &Frame<'_>, out: &mut Vec<u8>| {
            let n = f.encode(out).expect("a parsed frame re-encodes");
            assert_eq!(n, out.len());
        }
    );
}

/// Input: a byte stream. Deframes it in one piece and in pieces whose sizes
/// are derived from the data; both must yield the same frames (and the same
/// final error), and every frame must satisfy the [`channel_frame`] contract.
pub fn deframer(data: &[u8]) {
    let whole = deframe(data, |_| data.len().max(1));
    let seed = data.first().copied().unwrap_or(0);
    let pieces = deframe(data, |i| {
        usize::from(data.get(i).copied().unwrap_or(seed) ^ seed) % 23 + 1
    });
    let bytewise = deframe(data, |_| 1);
    assert_eq!(whole, pieces, "deframer depends on how the stream is split");
    assert_eq!(
        whole, bytewise,
        "deframer depends on how the stream is split"
    );
    for frame in &whole.frames {
        channel_frame(&frame.bytes);
    }
}

/// Deframes `data` in pieces of `piece(offset)` bytes.
fn deframe(data: &[u8], mut piece: impl FnMut(usize) -> usize) -> StreamFrames {
    let mut pieces = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let end = (pos + piece(pos)).min(data.len());
        pieces.push(&data[pos..end]);
        pos = end;
    }
    // A limit above any input, so that only frame contents decide.
    deframe_pieces(Deframer::with_limit(1 << 20), pieces)
}

/// What [`deframe_pieces`] found.
pub type StreamFrames = mojo_wire_kit::StreamFrames<Error>;

/// [`mojo_wire_kit::deframe_pieces`] over this crate's [`Deframer`]: pushes
/// each piece and takes every complete frame after it, checking that each
/// equals a parse of its own bytes.
pub fn deframe_pieces<'a>(
    deframer: Deframer,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> StreamFrames {
    mojo_wire_kit::deframe_pieces(Copying(deframer), pieces)
}

/// A [`Deframer`] that hands out checked copies of its frames.
struct Copying(Deframer);

impl FrameSource for Copying {
    type Error = Error;

    fn push(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.0.push(bytes)
    }

    fn next_copy(&mut self) -> Result<Option<FrameCopy>, Error> {
        let Some(f) = self.0.next_frame()? else {
            return Ok(None);
        };
        assert_eq!(
            Frame::decode_whole(f.bytes),
            Ok(f.frame),
            "deframed frame differs from a parse of its bytes"
        );
        Ok(Some(FrameCopy {
            offset: f.offset,
            bytes: f.bytes.to_vec(),
            num_handles: f.frame.header.num_handles(),
        }))
    }

    fn buffered(&self) -> usize {
        self.0.buffered()
    }
}

/// Input: bytes starting with a channel message on the bootstrap socket.
pub fn broker_message(data: &[u8]) {
    let parsed = contract!(
        "broker frame",
        data,
        BrokerFrame::decode,
        BrokerFrame::decode_exact,
        |f: &BrokerFrame<'_>, out: &mut Vec<u8>| {
            f.encode(out).expect("a parsed broker frame re-encodes");
        },
        crate::codec::first_frame_difference
    );
    if let Some((_, used)) = parsed {
        whole_frame(&data[..used], ChannelRole::Broker, EventHeaderForm::Compact);
    }
}

/// Input: bytes starting with a channel message on a node channel. Events
/// inside are also checked in both header forms, and the whole frame with
/// [`verify::decode_frame`] / [`check_frame`].
pub fn node_message(data: &[u8]) {
    let parsed = contract!(
        "node frame",
        data,
        NodeFrame::decode,
        NodeFrame::decode_exact,
        |f: &NodeFrame<'_>, out: &mut Vec<u8>| {
            f.encode(out).expect("a parsed node frame re-encodes");
        },
        crate::codec::first_frame_difference
    );
    let Some((frame, used)) = parsed else {
        return;
    };
    if let NodeChannelContent::Message(m) = frame.content {
        contract!(
            "node message",
            Frame::decode_whole(&data[..used]).map_or(&[][..], |f| f.payload),
            |b| NodeMessage::decode(b).map(|m| (m, b.len())),
            |b| NodeMessage::decode_exact(b).map(|m| (m, b.len())),
            |m: &NodeMessage<'_>, out: &mut Vec<u8>| m
                .encode(out)
                .expect("a decoded node message re-encodes")
        );
        if let NodeMessage::EventMessage(body) = m {
            event_round_trip(body, EventHeaderForm::Compact);
            event_round_trip(body, EventHeaderForm::Extended);
        }
    }
    for form in [EventHeaderForm::Compact, EventHeaderForm::Extended] {
        whole_frame(&data[..used], ChannelRole::Node, form);
    }
}

/// The whole-frame contract: [`check_frame`] is the exact variant of
/// [`verify::decode_frame`].
fn whole_frame(bytes: &[u8], role: ChannelRole, form: EventHeaderForm) {
    let decoded = verify::decode_frame(bytes, role, form);
    let checked = check_frame(bytes, role, form);
    let value = match decoded {
        Err(fault) => {
            assert_eq!(
                checked,
                Err(fault),
                "check_frame disagrees with decode_frame"
            );
            return;
        }
        Ok(v) => v,
    };
    let mut out = Vec::new();
    if verify::encode(&value, &mut out).is_err() {
        return;
    }
    match checked {
        Ok(c) => {
            assert_eq!(out, bytes, "check_frame accepted non-canonical bytes");
            assert_eq!(c, value);
        }
        Err(verify::Fault::Differs { offset, .. }) => {
            assert_ne!(out, bytes, "check_frame rejected canonical bytes");
            assert_eq!(
                Some(offset),
                crate::codec::first_frame_difference(bytes, &out)
            );
        }
        Err(f) => panic!("check_frame failed where decode_frame did not: {f}"),
    }
    let again = check_frame(&out, role, form)
        .unwrap_or_else(|f| panic!("re-encoded frame does not check: {f}"));
    assert_eq!(
        without_raw_user_message(again),
        without_raw_user_message(value),
        "decode(encode(decode(x))) != decode(x)"
    );
}

/// A checked frame with the raw bytes of a decoded user message blanked: those
/// bytes are the one part of a [`verify::Checked`] that is not a decoded value
/// (they change when `header_size` slack or state padding is canonicalized).
fn without_raw_user_message(mut c: verify::Checked<'_>) -> verify::Checked<'_> {
    if let verify::Content::Event {
        event,
        user_message: Some(_),
    } = &mut c.content
    {
        if let EventData::UserMessage(u) = &mut event.data {
            u.message = &[];
        }
    }
    c
}

/// Input: first byte selects the header form (bit 0: extended), the rest is
/// an `EVENT_MESSAGE` body.
pub fn ports_event(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let form = if selector & 1 == 0 {
        EventHeaderForm::Compact
    } else {
        EventHeaderForm::Extended
    };
    event_round_trip(body, form);
}

fn event_round_trip(body: &[u8], form: EventHeaderForm) {
    let parsed = contract!(
        "event",
        body,
        |b| Event::decode(b, form).map(|e| (e, b.len())),
        |b| Event::decode_exact(b, form).map(|e| (e, b.len())),
        |e: &Event<'_>, out: &mut Vec<u8>| e.encode(out).expect("a decoded event re-encodes")
    );
    if let Some((event, _)) = parsed {
        assert_eq!(event.form(), form);
        if let EventData::UserMessage(u) = &event.data {
            user_message(u.message);
        }
    }
}

/// Input: the user-message part of a `UserMessage` event.
pub fn user_message(data: &[u8]) {
    let parsed = contract!(
        "user message",
        data,
        |b| UserMessage::decode(b).map(|m| (m, b.len())),
        |b| UserMessage::decode_exact(b).map(|m| (m, b.len())),
        |m: &UserMessage<'_>, out: &mut Vec<u8>| {
            m.encode(out).expect("a decoded user message re-encodes");
            assert_eq!(m.encoded_len(), out.len());
        }
    );
    let _ = parsed;
}
