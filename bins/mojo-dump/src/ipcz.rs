//! Decoder for ipcz transcripts (filled by the ipcz wire format issue).

use crate::{DecodeOptions, StreamReport};
use mojo_transcript::{Stream, StreamKey};

/// Deframes and describes one reassembled ipcz stream.
pub(crate) fn decode_stream(_key: StreamKey, stream: &Stream, _options: DecodeOptions) -> StreamReport {
    StreamReport {
        frames: Vec::new(),
        stopped: (!stream.bytes.is_empty())
            .then(|| (0, "the ipcz decoder is not built yet".to_string())),
    }
}
