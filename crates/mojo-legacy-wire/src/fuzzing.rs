//! Round-trip oracles for the cargo-fuzz targets in `fuzz/fuzz_targets/legacy_*.rs`
//! (and for the unit tests that run them on the seed corpus under stable).
//!
//! Each function parses its input; if that succeeds it re-encodes the result
//! and panics unless the bytes equal the bytes the parser consumed. Malformed
//! input must only ever produce an `Err`, never a panic.

use crate::broker::BrokerFrame;
use crate::channel::Frame;
use crate::deframer::Deframer;
use crate::event::{Event, EventData};
use crate::node::{NodeChannelContent, NodeFrame, NodeMessage};
use crate::profile::EventHeaderForm;
use crate::user_message::UserMessage;
use crate::verify::{ChannelRole, check_frame};

/// Input: bytes starting with a channel message.
pub fn channel_frame(data: &[u8]) {
    if let Ok((frame, used)) = Frame::parse(data) {
        let mut out = Vec::new();
        let n = frame.encode(&mut out).expect("a parsed frame re-encodes");
        assert_eq!(n, used);
        assert_eq!(&out[..], &data[..used], "channel frame re-encode differs");
    }
}

/// Input: a byte stream. Deframes it in one piece and in pieces whose sizes
/// are derived from the data; both must yield the same frames (and the same
/// final error), and every frame must re-encode to its bytes.
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
}

type Deframed = (Vec<(u64, Vec<u8>, u16)>, Option<crate::Error>);

fn deframe(data: &[u8], mut piece: impl FnMut(usize) -> usize) -> Deframed {
    let mut d = Deframer::with_limit(1 << 20);
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let end = (pos + piece(pos)).min(data.len());
        if let Err(e) = d.push(&data[pos..end]) {
            return (frames, Some(e));
        }
        pos = end;
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    let mut out = Vec::new();
                    f.frame
                        .encode(&mut out)
                        .expect("a deframed frame re-encodes");
                    assert_eq!(out, f.bytes, "deframed frame re-encode differs");
                    frames.push((f.offset, f.bytes.to_vec(), f.frame.header.num_handles()));
                }
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

/// Input: bytes starting with a channel message on the bootstrap socket.
pub fn broker_message(data: &[u8]) {
    if let Ok((frame, used)) = BrokerFrame::parse(data) {
        let mut out = Vec::new();
        frame
            .encode(&mut out)
            .expect("a parsed broker frame re-encodes");
        assert_eq!(&out[..], &data[..used], "broker frame re-encode differs");
        let _ = check_frame(&data[..used], ChannelRole::Broker, EventHeaderForm::Compact);
    }
}

/// Input: bytes starting with a channel message on a node channel. Events
/// inside are also checked in both header forms.
pub fn node_message(data: &[u8]) {
    if let Ok((frame, used)) = NodeFrame::parse(data) {
        let mut out = Vec::new();
        frame
            .encode(&mut out)
            .expect("a parsed node frame re-encodes");
        assert_eq!(&out[..], &data[..used], "node frame re-encode differs");
        if let NodeChannelContent::Message(NodeMessage::EventMessage(body)) = frame.content {
            event_round_trip(body, EventHeaderForm::Compact);
            event_round_trip(body, EventHeaderForm::Extended);
        }
        for form in [EventHeaderForm::Compact, EventHeaderForm::Extended] {
            if let Err(crate::verify::Fault::Differs { offset, field }) =
                check_frame(&data[..used], ChannelRole::Node, form)
            {
                panic!("verify re-encode differs at {offset} ({field})");
            }
        }
    }
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
    if let Ok(event) = Event::parse(body, form) {
        let mut out = Vec::new();
        event.encode(&mut out);
        assert_eq!(out, body, "event re-encode differs");
        if let EventData::UserMessage(u) = &event.data {
            user_message(u.message);
        }
    }
}

/// Input: the user-message part of a `UserMessage` event.
pub fn user_message(data: &[u8]) {
    if let Ok(m) = UserMessage::parse(data) {
        let mut out = Vec::new();
        m.encode(&mut out);
        assert_eq!(out, data, "user message re-encode differs");
        assert_eq!(m.encoded_len(), data.len());
    }
}
