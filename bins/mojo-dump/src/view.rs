//! The conversation view: every frame of one transcript file, across both
//! directions and all channels, in the order the relay saw the chunk that
//! completed it, with its time, its fds' kinds and short name aliases.
//! Reassembly and decoding stay per stream; only the printing is merged.

use std::io::Write;

use mojo_transcript::{Stream, StreamKey, Transcript};

use crate::names::{Aliases, Rendered, legend, render};
use crate::select::{Filter, message_type};
use crate::summary::Summary;
use crate::{FrameReport, StreamReport, Totals};

/// Indentation of `-v` detail lines.
const DETAIL_INDENT: &str = "            ";

/// How the view prints.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ViewOptions {
    /// Failures and notes only.
    pub quiet: bool,
    /// Add the detail block under each frame.
    pub verbose: bool,
    /// Lines, JSON or a summary.
    pub output: Output,
}

/// One stream of a file, decoded.
pub(crate) struct DecodedStream {
    /// Which stream.
    pub key: StreamKey,
    /// Its bytes and fds.
    pub stream: Stream,
    /// What the decoder found.
    pub report: StreamReport,
}

/// One line of the view, before rendering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// Time of the chunk that completed the frame (seconds).
    pub time: f64,
    /// File index of that chunk: the tie-break, and the order of the relay.
    pub chunk: usize,
    /// The stream.
    pub key: StreamKey,
    /// What the line says.
    pub what: What,
}

/// What an [`Entry`] is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum What {
    /// A frame: its index in its stream, its report, its fds' kinds, and
    /// why it failed if it did.
    Frame {
        /// Index in its stream.
        index: usize,
        /// The decoder's report.
        report: FrameReport,
        /// The recorded kinds of the fds that arrived with it.
        fd_kinds: Vec<String>,
        /// Failure, including an fd count that does not match.
        failure: Option<String>,
    },
    /// A note or a failure about the stream itself (stray fds, where
    /// deframing stopped).
    Stream {
        /// The text.
        text: String,
        /// Whether it counts as a failure.
        failed: bool,
    },
}

/// Chunk ends of one stream: (stream offset after the chunk, time, index).
fn chunk_ends(transcript: &Transcript, key: StreamKey) -> Vec<(usize, f64, usize)> {
    let mut end = 0;
    let mut ends = Vec::new();
    for (index, chunk) in transcript.chunks.iter().enumerate() {
        if chunk.channel != key.channel || chunk.direction != key.direction || chunk.is_eof() {
            continue;
        }
        end += chunk.bytes.len();
        ends.push((end, chunk.time, index));
    }
    ends
}

/// The entries of one file, in time order.
pub(crate) fn entries(transcript: &Transcript, streams: &[DecodedStream], cut: bool) -> Vec<Entry> {
    let mut all = Vec::new();
    for DecodedStream {
        key,
        stream,
        report,
    } in streams
    {
        let key = *key;
        let ends = chunk_ends(transcript, key);
        let last = ends.last().map_or((0.0, 0), |&(_, t, i)| (t, i));
        // The chunk holding stream byte `end - 1`.
        let completed_by = |end: usize| {
            let at = ends.partition_point(|&(chunk_end, _, _)| chunk_end < end);
            ends.get(at).map_or(last, |&(_, t, i)| (t, i))
        };
        // Fds belong to the last frame starting in the chunk that carried
        // them (mojo_transcript's rule, kept here with the kinds).
        let mut kinds: Vec<Vec<String>> = vec![Vec::new(); report.frames.len()];
        let mut stray = Vec::new();
        for arrival in &stream.fds {
            let end = arrival.offset + arrival.chunk_len;
            let owner = report
                .frames
                .iter()
                .rposition(|f| f.offset >= arrival.offset && f.offset < end);
            match owner.and_then(|i| kinds.get_mut(i)) {
                Some(k) => {
                    let mut got = arrival.kinds.clone();
                    got.resize(arrival.count.max(got.len()), "?".into());
                    k.extend(got);
                }
                None => stray.push(arrival),
            }
        }
        for (index, (frame, fd_kinds)) in report.frames.iter().zip(kinds).enumerate() {
            let arrived = fd_kinds.len();
            let failure = frame.failure_with(arrived);
            let (time, chunk) = completed_by(frame.offset + frame.len.max(1));
            all.push(Entry {
                time,
                chunk,
                key,
                what: What::Frame {
                    index,
                    report: frame.clone(),
                    fd_kinds,
                    failure,
                },
            });
        }
        let mut note = |text: String, failed: bool| {
            all.push(Entry {
                time: last.0,
                chunk: last.1,
                key,
                what: What::Stream { text, failed },
            });
        };
        let cut_at = report.cut_at(cut, stream.bytes.len());
        for arrival in stray {
            if cut_at.is_some_and(|at| arrival.offset >= at) {
                note(
                    format!(
                        "note @{}: {} fds of the frame the recording stopped in",
                        arrival.offset, arrival.count
                    ),
                    false,
                );
            } else {
                note(
                    format!(
                        "FAIL @{}: {} fds arrived with a chunk in which no frame starts",
                        arrival.offset, arrival.count
                    ),
                    true,
                );
            }
        }
        if let Some((offset, why)) = &report.stopped {
            let expected = cut && report.partial_tail;
            let (word, tail) = if expected {
                ("note", ", where the recording stopped")
            } else {
                ("FAIL", "")
            };
            note(
                format!(
                    "{word} frame {} @{offset}: {why}{tail}",
                    report.frames.len()
                ),
                !expected,
            );
        }
        if stream.truncated {
            note("note: recorded truncated".into(), false);
        }
    }
    // Stable: within one chunk, a stream's frames keep their order.
    all.sort_by(|a, b| a.chunk.cmp(&b.chunk).then(a.key.cmp(&b.key)));
    all
}

/// What the view prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Output {
    /// One line per frame.
    Lines,
    /// One JSON object per frame.
    Json,
    /// Counts per file only.
    Summary,
}

/// Prints one file's entries: `name` heads them, `file` names the file in
/// JSON objects.
#[allow(clippy::too_many_arguments)]
pub(crate) fn print(
    out: &mut impl Write,
    name: &str,
    file: &str,
    entries: &[Entry],
    aliases: &mut Aliases,
    options: ViewOptions,
    filter: &Filter,
    totals: &mut Totals,
) {
    if options.output != Output::Json && !(options.quiet && options.output == Output::Lines) {
        let _ = writeln!(out, "== {name}");
    }
    let mut summary = Summary::default();
    for entry in entries {
        let stamp = format!("{:10.6} {}", entry.time, entry.key);
        match &entry.what {
            What::Stream { text, failed } => {
                if *failed {
                    totals.failed += 1;
                }
                match options.output {
                    Output::Json => {
                        let fields = serde_json::json!({
                            "stream_note": text,
                            "failed": failed,
                        });
                        json_line(out, file, entry, fields);
                    }
                    Output::Lines | Output::Summary => {
                        let _ = writeln!(out, "{stamp} {text}");
                    }
                }
            }
            What::Frame {
                index,
                report,
                fd_kinds,
                failure,
            } => {
                totals.frames += 1;
                if failure.is_some() {
                    totals.failed += 1;
                }
                // Every frame takes its aliases, shown or not, so that the
                // numbering does not depend on the filter.
                let rendered = render(&report.description, Some(aliases));
                let kind = message_type(&rendered.text);
                if !filter.shows(entry.key, kind, &rendered.text, aliases) {
                    continue;
                }
                match options.output {
                    Output::Summary => {
                        summary.add(
                            entry.time,
                            entry.key,
                            kind,
                            report.len,
                            fd_kinds.len(),
                            failure.is_some(),
                        );
                        if let Some(why) = failure {
                            let _ = writeln!(out, "{stamp} #{index} FAIL {why}");
                        }
                    }
                    Output::Json => {
                        let fields = serde_json::json!({
                            "index": index,
                            "offset": report.offset,
                            "len": report.len,
                            "type": kind,
                            "fds": fd_kinds,
                            "text": rendered.text,
                            "full": render(&report.description, None).text,
                            "detail": report
                                .detail
                                .iter()
                                .map(|d| render(d, None).text)
                                .collect::<Vec<_>>(),
                            "failure": failure,
                        });
                        json_line(out, file, entry, fields);
                    }
                    Output::Lines => {
                        if failure.is_none() && options.quiet {
                            continue;
                        }
                        print_line(out, &stamp, *index, report, fd_kinds, failure, &rendered);
                        if options.verbose {
                            print_detail(out, report, fd_kinds, &rendered);
                        }
                    }
                }
            }
        }
    }
    if options.output == Output::Summary {
        summary.print(out);
    }
}

fn print_line(
    out: &mut impl Write,
    stamp: &str,
    index: usize,
    report: &FrameReport,
    fd_kinds: &[String],
    failure: &Option<String>,
    rendered: &Rendered,
) {
    let fds = if fd_kinds.is_empty() {
        String::new()
    } else {
        let short: Vec<&str> = fd_kinds.iter().map(|k| short_kind(k)).collect();
        format!(" fds=[{}]", short.join(", "))
    };
    let _ = match failure {
        Some(why) => writeln!(
            out,
            "{stamp} #{index} {}B{fds} FAIL {why} [{}]",
            report.len, rendered.text
        ),
        None => writeln!(
            out,
            "{stamp} #{index} {}B{fds}: {}",
            report.len, rendered.text
        ),
    };
}

fn print_detail(
    out: &mut impl Write,
    report: &FrameReport,
    fd_kinds: &[String],
    rendered: &Rendered,
) {
    let _ = writeln!(out, "{DETAIL_INDENT}stream offset {}", report.offset);
    if fd_kinds.iter().any(|k| short_kind(k) != k) {
        let _ = writeln!(out, "{DETAIL_INDENT}fds: {}", fd_kinds.join(", "));
    }
    for line in &report.detail {
        let _ = writeln!(out, "{DETAIL_INDENT}{}", render(line, None).text);
    }
    if !rendered.introduced.is_empty() {
        let _ = writeln!(out, "{DETAIL_INDENT}{}", legend(&rendered.introduced));
    }
}

/// A recorded fd kind as the frame line shows it: shared memory files as
/// `shm` (the path is random per run; `-v` prints it), others as they are.
pub(crate) fn short_kind(kind: &str) -> &str {
    if kind.starts_with("file:/dev/shm/") {
        "shm"
    } else {
        kind
    }
}

/// Writes one `--json` line: where and when `entry` happened, then `fields`
/// (an object).
fn json_line(out: &mut impl Write, file: &str, entry: &Entry, fields: serde_json::Value) {
    let mut object = serde_json::json!({
        "file": file,
        "t": entry.time,
        "chan": entry.key.channel,
        "dir": entry.key.direction.as_str(),
    });
    if let (Some(all), serde_json::Value::Object(more)) = (object.as_object_mut(), fields) {
        all.extend(more);
    }
    let _ = writeln!(out, "{object}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use mojo_transcript::Direction;

    fn frame(offset: usize, len: usize) -> FrameReport {
        FrameReport {
            offset,
            len,
            claimed_fds: 0,
            description: format!("f{offset}"),
            detail: Vec::new(),
            failure: None,
            pipe: None,
        }
    }

    #[test]
    fn frames_are_ordered_by_the_chunk_that_completed_them() {
        // a2b: one 8-byte frame split over chunks 0 and 2; b2a: a 4-byte
        // frame in chunk 1. The b2a frame completes first.
        let text = concat!(
            r#"{"t":0.1,"chan":0,"dir":"a2b","len":4,"hex":"00000000"}"#,
            "\n",
            r#"{"t":0.2,"chan":0,"dir":"b2a","len":4,"hex":"00000000"}"#,
            "\n",
            r#"{"t":0.3,"chan":0,"dir":"a2b","len":4,"hex":"00000000"}"#,
            "\n",
        );
        let transcript = Transcript::parse(text).unwrap();
        let streams: Vec<DecodedStream> = transcript
            .streams()
            .into_iter()
            .map(|(key, stream)| DecodedStream {
                key,
                report: StreamReport {
                    frames: vec![frame(0, stream.bytes.len())],
                    ..StreamReport::default()
                },
                stream,
            })
            .collect();
        let got: Vec<(f64, Direction)> = entries(&transcript, &streams, false)
            .iter()
            .map(|e| (e.time, e.key.direction))
            .collect();
        assert_eq!(got, [(0.2, Direction::BToA), (0.3, Direction::AToB)]);
    }

    #[test]
    fn a_shared_memory_kind_is_short_on_the_line() {
        assert_eq!(short_kind("file:/dev/shm/.org.chromium.X (deleted)"), "shm");
        assert_eq!(short_kind("socket->chan1"), "socket->chan1");
    }
}
