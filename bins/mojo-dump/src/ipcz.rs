//! Decoder for ipcz transcripts: every channel is an ipcz transport, so every
//! stream is a sequence of `IpczHeader` frames, each carrying one ipcz message.

use crate::{DecodeOptions, FrameReport, StreamReport};
use ipcz_wire::error::FrameError;
use ipcz_wire::frame::{Frame, FrameHeaderWire};
use ipcz_wire::message::Message;
use mojo_transcript::{Stream, StreamKey};
use mojo_wire_kit::{WireLayout, first_difference};

/// Deframes and describes one reassembled ipcz stream.
pub(crate) fn decode_stream(
    _key: StreamKey,
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
                report
                    .frames
                    .push(frame_report(offset, len, &frame, &rest[..len], options));
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
                failure: Some(e.to_string()),
            };
        }
    };
    let description = format!("ipcz {message} (link seq {})", message.sequence_number);
    let failure = check(frame, original, &message, options.verify);
    FrameReport {
        offset,
        len,
        claimed_fds,
        description,
        failure,
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
