//! Decoder for ipcz transcripts: every channel is an ipcz transport, so every
//! stream is a sequence of `IpczHeader` frames, each carrying one ipcz message.

use crate::{DecodeOptions, FrameReport, StreamReport};
use ipcz_wire::driver_object::DriverObject;
use ipcz_wire::error::FrameError;
use ipcz_wire::frame::{Frame, FrameHeaderWire};
use ipcz_wire::message::Message;
use ipcz_wire::messages::Body;
use mojo_transcript::{Stream, StreamKey};
use mojo_wire_kit::{WireLayout, first_difference};

use crate::names::{Kind, Spelling, mark, mark_ipcz_nodes};
use crate::{payload, pipes};

/// Deframes and describes one reassembled ipcz stream.
pub(crate) fn decode_stream(
    key: StreamKey,
    stream: &Stream,
    options: DecodeOptions,
) -> StreamReport {
    let mut report = StreamReport::default();
    let bytes = &stream.bytes;
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        match Frame::decode(rest) {
            Ok((frame, len)) => {
                report.frames.push(frame_report(
                    key,
                    offset,
                    len,
                    &frame,
                    &rest[..len],
                    options,
                ));
                offset += len;
            }
            Err(FrameError::Truncated { needed, available }) => {
                report.stopped = Some((
                    offset,
                    format!("trailing partial frame: {available} of {needed} bytes"),
                ));
                report.partial_tail = true;
                break;
            }
            Err(e) => {
                report.stopped = Some((offset, e.to_string()));
                break;
            }
        }
    }
    report
}

fn frame_report(
    key: StreamKey,
    offset: usize,
    len: usize,
    frame: &Frame<'_>,
    original: &[u8],
    options: DecodeOptions,
) -> FrameReport {
    let claimed_fds = usize::from(frame.header.num_handles);
    let decoded = if options.verify {
        Message::decode_exact(frame.payload, claimed_fds)
    } else {
        Message::decode(frame.payload, claimed_fds)
    };
    let message = match decoded {
        Ok(m) => m,
        Err(e) => {
            return FrameReport {
                offset,
                len,
                claimed_fds,
                description: format!(
                    "ipcz frame of {len} bytes, {claimed_fds} fds: undecodable message"
                ),
                detail: Vec::new(),
                failure: Some(e.to_string()),
                pipe: None,
            };
        }
    };
    let failure = check(frame, original, &message, options.verify);
    let (description, detail) = if options.verify {
        (
            format!("ipcz {message} (link seq {})", message.sequence_number),
            Vec::new(),
        )
    } else {
        view(&message)
    };
    FrameReport {
        offset,
        len,
        claimed_fds,
        description,
        detail,
        failure,
        pipe: (!options.verify)
            .then(|| pipes::extract::ipcz(key.channel, &message))
            .flatten()
            .map(Box::new),
    }
}

/// The view's description of a message: node names marked for aliasing,
/// each SharedBuffer's GUID added (the legacy side prints it, so a buffer
/// can be followed across the proxy), the parcel's test-peer opcode; and
/// the `-v` detail lines.
fn view(message: &Message<'_>) -> (String, Vec<String>) {
    let mut text = mark_ipcz_nodes(&message.to_string());
    // Labels for the one bare tuple ipcz-wire prints.
    text = text.replace(" (in < ", " (decaying_incoming_sequence_length ");
    let mut from = 0;
    for object in &message.driver_objects {
        let plain = object.object.to_string();
        let Some(at) = text.get(from..).and_then(|t| t.find(&plain)) else {
            continue;
        };
        let at = from + at;
        let shown = object_text(&object.object);
        text.replace_range(at..at + plain.len(), &shown);
        from = at + shown.len();
    }
    let mut detail = vec![format!("link seq {}", message.sequence_number)];
    if let Body::AcceptParcel(p) = &message.body
        && p.parcel_fragment.is_null()
    {
        if let Some(op) = payload::opcode(p.parcel_data) {
            text.push_str(&format!(" op={op}"));
        }
        detail.push(format!("payload: {}", payload::excerpt(p.parcel_data)));
    }
    (text, detail)
}

/// A driver object as the view prints it: a SharedBuffer's (or data
/// pipe's) GUID added before the fd count, as the legacy side prints it, so
/// that a buffer can be followed across the proxy.
pub(crate) fn object_text(object: &DriverObject) -> String {
    let plain = object.to_string();
    let guid = match object {
        DriverObject::SharedBuffer(b) => Some(b.guid),
        DriverObject::DataPipe(p) => Some(p.buffer.guid),
        _ => None,
    };
    match (guid, plain.rfind(", ")) {
        (Some(g), Some(cut)) => format!(
            "{}, guid={}{}",
            &plain[..cut],
            mark(Kind::Buffer, Spelling::Guid, g.high, g.low),
            &plain[cut..]
        ),
        _ => plain,
    }
}

/// Everything beyond "it decodes": semantic checks always, and with
/// `verify` a re-encoding of the frame from the decoded values.
fn check(
    frame: &Frame<'_>,
    original: &[u8],
    message: &Message<'_>,
    verify: bool,
) -> Option<String> {
    if let Err(e) = message.check_semantics() {
        return Some(e.to_string());
    }
    let objects_fds = message.num_fds();
    if objects_fds != usize::from(frame.header.num_handles) {
        return Some(format!(
            "IpczHeader.num_handles: {} but the driver objects use {objects_fds} fds",
            frame.header.num_handles
        ));
    }
    if !verify {
        return None;
    }
    let mut out = Vec::with_capacity(original.len());
    if let Err(e) = frame
        .header
        .encode_frame(frame.header_extension, message, &mut out)
    {
        return Some(format!("cannot re-encode: {e}"));
    }
    let at = first_difference(&out, original)?;
    let header_len = original.len() - frame.payload.len();
    let field = if at < header_len {
        FrameHeaderWire::field_at(at).unwrap_or("IpczHeader extension")
    } else {
        match message.compare(frame.payload) {
            Err(e) => return Some(format!("re-encoding differs: {e}")),
            Ok(()) => "message",
        }
    };
    Some(format!("re-encoding differs at frame byte {at} ({field})"))
}
