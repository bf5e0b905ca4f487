//! `mojo-dump`: decodes recorded wire transcripts, one readable line per frame,
//! and with `--verify` proves that every frame re-encodes to its original bytes.
//!
//! ```text
//! mojo-dump [--verify] [-q] [-v] [--protocol=legacy|ipcz] [--legacy-profile=libchrome|desktop]
//!           [--channel=N,..] [--dir=a2b|b2a] [--type=T,..] [--name=X,..]
//!           [--summary | --json | --pipes] FILE...
//! ```
//!
//! Each FILE (or `-` for standard input) is a JSON-lines transcript as described in
//! `shared/vectors/README.md`. This file owns the command line, the transcript
//! reading and the fd bookkeeping; `legacy.rs` and `ipcz.rs` turn one reassembled
//! stream into [`StreamReport`]s using the wire crates.

#![forbid(unsafe_code)]

mod detect;
mod ipcz;
mod legacy;
mod names;
mod payload;
mod pipes;
mod select;
mod summary;
mod view;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use detect::Reading;
use mojo_transcript::{FdsPerFrame, Stream, StreamKey, Transcript};

/// Which protocol the transcripts carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Protocol {
    /// Legacy Mojo Core (channel 0: broker bootstrap; other channels: NodeChannel).
    Legacy,
    /// ipcz as Mojo+ipcz puts it on a socket (every channel is a transport).
    Ipcz,
}

/// Legacy wire profile: decides the ports event header size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LegacyProfile {
    /// Chrome OS / libchrome: 8-byte channel header, 24-byte event header.
    Libchrome,
    /// Chromium desktop Linux: 16-byte channel header, 48-byte event header.
    Desktop,
}

/// Decode (and optionally verify) Mojo wire transcripts.
#[derive(Debug, Parser)]
#[command(name = "mojo-dump", version)]
struct Args {
    /// Re-encode every decoded frame and compare it with the recorded bytes.
    #[arg(long)]
    verify: bool,
    /// Protocol carried by the transcripts; detected from the bytes of each
    /// file when not given.
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// Legacy wire profile (legacy transcripts only; implies
    /// `--protocol=legacy`); detected when neither flag is given, else
    /// libchrome.
    #[arg(long, value_enum)]
    legacy_profile: Option<LegacyProfile>,
    /// Suppress the per-frame lines; print failures and the summary only.
    #[arg(long, short)]
    quiet: bool,
    /// Add a detail block under each frame (stream offset, channel header,
    /// payload excerpt, full spellings of the aliases it introduces).
    #[arg(long, short)]
    verbose: bool,
    /// Show only frames of these channels (comma-separated).
    #[arg(long, value_delimiter = ',')]
    channel: Vec<u32>,
    /// Show only frames of this direction.
    #[arg(long, value_enum)]
    dir: Option<Dir>,
    /// Show only these message types (comma-separated, any case), e.g.
    /// `UserMessage,AcceptParcel`.
    #[arg(long = "type", value_delimiter = ',')]
    types: Vec<String>,
    /// Show only frames naming these (comma-separated): an alias (`N1`,
    /// `p3`, `B1`, `T1`) or a full name in either spelling.
    #[arg(long = "name", value_delimiter = ',')]
    names: Vec<String>,
    /// Per file: frames per message type and direction, bytes per
    /// direction, the handshake timeline.
    #[arg(long, conflicts_with = "json")]
    summary: bool,
    /// One JSON object per frame (and per stream note), for scripts.
    #[arg(long)]
    json: bool,
    /// Follow each message pipe: its messages in order with sizes and what
    /// they carry; the two links of one proxy run (`*host_proxy*` and
    /// `*proxy_client*`) are paired as far as their traffic shows.
    #[arg(long, conflicts_with_all = ["json", "summary"])]
    pipes: bool,
    /// Transcript files in JSON-lines form; `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// A direction, as `--dir` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Dir {
    /// From side A to side B.
    A2b,
    /// From side B to side A.
    B2a,
}

/// What a protocol decoder reports about one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameReport {
    /// Stream offset of the frame's first byte.
    pub offset: usize,
    /// Bytes the frame occupies in the stream.
    pub len: usize,
    /// Number of fds the frame's header says belong to it.
    pub claimed_fds: usize,
    /// One readable line, down to event and message fields. In the view
    /// (not `--verify`), 128-bit names are `names` markers.
    pub description: String,
    /// Detail lines for `-v` (view only).
    pub detail: Vec<String>,
    /// `None` if the frame parsed completely (and, when verifying, re-encoded
    /// identically); otherwise the field that failed and why.
    pub failure: Option<String>,
    /// What the frame does to a message pipe, for `--pipes` (view only).
    pub pipe: Option<Box<pipes::Item>>,
}

/// What a protocol decoder reports about one whole stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StreamReport {
    /// Every frame found, in order.
    pub frames: Vec<FrameReport>,
    /// Set when deframing stopped early (malformed header, trailing partial
    /// frame): the offset where it stopped and why.
    pub stopped: Option<(usize, String)>,
    /// The stop was only a frame cut off by the end of the stream (not a
    /// malformed one): expected where the recording was truncated.
    pub partial_tail: bool,
}

impl FrameReport {
    /// Why the frame fails, counting the fds that arrived with its first
    /// byte (`arrived`) against its header's claim; `None` if it is sound.
    pub(crate) fn failure_with(&self, arrived: usize) -> Option<String> {
        self.failure.clone().or_else(|| {
            (arrived != self.claimed_fds).then(|| {
                format!(
                    "fd count: header claims {} fds, {arrived} arrived with its first byte",
                    self.claimed_fds
                )
            })
        })
    }
}

impl StreamReport {
    /// Where a cut recording's last (partial) frame starts, for a stream
    /// of `stream_len` bytes; `None` unless the recording was `cut`.
    pub(crate) fn cut_at(&self, cut: bool, stream_len: usize) -> Option<usize> {
        match &self.stopped {
            Some((offset, _)) if cut && self.partial_tail => Some(*offset),
            _ if cut => Some(stream_len),
            _ => None,
        }
    }
}

/// Options every decoder sees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeOptions {
    /// Re-encode and compare.
    pub verify: bool,
    /// Legacy profile (ignored by the ipcz decoder).
    pub legacy_profile: LegacyProfile,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.protocol == Some(Protocol::Ipcz) && args.legacy_profile.is_some() {
        eprintln!("mojo-dump: --legacy-profile applies to legacy transcripts, not to ipcz");
        return ExitCode::from(2);
    }
    let view_only = args.summary
        || args.json
        || args.pipes
        || args.dir.is_some()
        || !(args.channel.is_empty() && args.types.is_empty() && args.names.is_empty());
    if args.verify && view_only {
        eprintln!(
            "mojo-dump: --channel, --dir, --type, --name, --summary, --json and --pipes select \
             what the view shows; --verify checks every frame and takes none of them"
        );
        return ExitCode::from(2);
    }
    if args.pipes
        && !(args.channel.is_empty()
            && args.dir.is_none()
            && args.types.is_empty()
            && args.names.is_empty())
    {
        eprintln!("mojo-dump: --pipes shows every pipe; the frame filters do not apply to it");
        return ExitCode::from(2);
    }
    let filter = select::Filter {
        channels: args.channel.clone(),
        direction: args.dir.map(|d| match d {
            Dir::A2b => mojo_transcript::Direction::AToB,
            Dir::B2a => mojo_transcript::Direction::BToA,
        }),
        types: args.types.clone(),
        names: args.names.clone(),
    };
    let output = if args.json {
        view::Output::Json
    } else if args.summary {
        view::Output::Summary
    } else {
        view::Output::Lines
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut totals = Totals::default();
    let mut aliases = names::Aliases::default();
    let mut pipe_files: Vec<pipes::print::FilePipes> = Vec::new();
    for file in &args.files {
        let name = file.display().to_string();
        let transcript = match read_transcript(file) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(out, "FAIL {name}: {e}");
                totals.unreadable += 1;
                continue;
            }
        };
        let (reading, detected) = match (args.protocol, args.legacy_profile) {
            (Some(protocol), profile) => (
                Reading {
                    protocol,
                    profile: profile.unwrap_or(LegacyProfile::Libchrome),
                },
                false,
            ),
            (None, Some(profile)) => (
                Reading {
                    protocol: Protocol::Legacy,
                    profile,
                },
                false,
            ),
            (None, None) => (detect::detect(&transcript).0, true),
        };
        let decoded = detect::decode(&transcript, reading, args.verify);
        let hint = if detected {
            None
        } else {
            detect::hint(&transcript, reading, detect::Fit::of(&decoded))
        };
        // A recording that stopped at its size bound (a chunk marked
        // truncated) may end any of its streams inside a frame.
        let cut = transcript.chunks.iter().any(|c| c.truncated);
        if !args.verify {
            totals.streams += decoded.len();
            let entries = view::entries(&transcript, &decoded, cut);
            let title = if detected {
                format!("{name} (detected: {reading})")
            } else {
                name.clone()
            };
            if args.pipes {
                count_entries(&entries, &mut totals);
                let pipes = pipes::Pipes::of(entries, reading.protocol == Protocol::Ipcz);
                pipe_files.push(pipes::print::FilePipes {
                    name: name.clone(),
                    title,
                    pipes,
                });
                if let Some(hint) = hint {
                    eprintln!("note: {name}: {hint}");
                }
                continue;
            }
            view::print(
                &mut out,
                &title,
                &name,
                &entries,
                &mut aliases,
                view::ViewOptions {
                    quiet: args.quiet,
                    verbose: args.verbose,
                    output,
                },
                &filter,
                &mut totals,
            );
            if let Some(hint) = hint {
                if output == view::Output::Json {
                    eprintln!("note: {name}: {hint}");
                } else {
                    let _ = writeln!(out, "note: {name}: {hint}");
                }
            }
            continue;
        }
        // `--verify` prints stream after stream, as it always has; a hint
        // goes to standard error so that its output stays the same.
        if let Some(hint) = hint {
            eprintln!("note: {name}: {hint}");
        }
        for view::DecodedStream {
            key,
            stream,
            report,
        } in &decoded
        {
            print_stream(
                &mut out,
                &name,
                *key,
                stream,
                report,
                Printing {
                    quiet: args.quiet,
                    cut,
                },
                &mut totals,
            );
        }
    }
    if args.pipes {
        let pairings = pipes::pair::pair_files(&pipe_files);
        pipes::print::print(&mut out, &pipe_files, &pairings, &mut aliases, args.verbose);
    }
    let verb = if args.verify { "verified" } else { "decoded" };
    let last = format!(
        "{verb} {} frames in {} streams, {} failed",
        totals.frames,
        totals.streams,
        totals.failed + totals.unreadable
    );
    // JSON output holds only JSON lines.
    if args.json {
        eprintln!("{last}");
    } else {
        let _ = writeln!(out, "{last}");
    }
    let _ = out.flush();
    if totals.failed + totals.unreadable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Counts over the whole run.
#[derive(Default)]
pub(crate) struct Totals {
    pub(crate) frames: usize,
    pub(crate) streams: usize,
    pub(crate) failed: usize,
    pub(crate) unreadable: usize,
}

/// Frames and failures of one file's entries, as the view counts them.
fn count_entries(entries: &[view::Entry], totals: &mut Totals) {
    for entry in entries {
        match &entry.what {
            view::What::Frame { failure, .. } => {
                totals.frames += 1;
                totals.failed += usize::from(failure.is_some());
            }
            view::What::Stream { failed, .. } => totals.failed += usize::from(*failed),
        }
    }
}

fn read_transcript(file: &std::path::Path) -> Result<Transcript, String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Transcript::parse(&text).map_err(|e| e.to_string())
    } else {
        Transcript::from_path(file).map_err(|e| e.to_string())
    }
}

/// How [`print_stream`] reports.
#[derive(Clone, Copy)]
struct Printing {
    /// Failures and notes only.
    quiet: bool,
    /// The file's recording stopped at its size bound: a frame cut off at
    /// the end of a stream, and its fds, are notes.
    cut: bool,
}

fn print_stream(
    out: &mut impl Write,
    name: &str,
    key: StreamKey,
    stream: &Stream,
    report: &StreamReport,
    Printing { quiet, cut }: Printing,
    totals: &mut Totals,
) {
    totals.streams += 1;
    // Fds belong to the last frame starting in the chunk that carried them.
    let starts: Vec<usize> = report.frames.iter().map(|f| f.offset).collect();
    let FdsPerFrame {
        counts: arrived,
        stray,
    } = stream.fds_per_frame(&starts);
    for (index, (frame, arrived)) in report.frames.iter().zip(arrived).enumerate() {
        totals.frames += 1;
        let failure = frame.failure_with(arrived);
        // Names in full, as `--verify` has always printed them.
        let description = names::render(&frame.description, None).text;
        match failure {
            Some(why) => {
                totals.failed += 1;
                let _ = writeln!(
                    out,
                    "FAIL {name} {key} frame {index} @{}: {why} [{}]",
                    frame.offset, description
                );
            }
            None if !quiet => {
                let _ = writeln!(
                    out,
                    "{name} {key} #{index} @{} len {}: {}",
                    frame.offset, frame.len, description
                );
            }
            None => {}
        }
    }
    let cut_at = report.cut_at(cut, stream.bytes.len());
    for arrival in stray {
        if cut_at.is_some_and(|at| arrival.offset >= at) {
            // The fds of the frame the recording stopped in.
            let _ = writeln!(
                out,
                "note: {name} {key} @{}: {} fds of the frame the recording stopped in",
                arrival.offset, arrival.count
            );
            continue;
        }
        totals.failed += 1;
        let _ = writeln!(
            out,
            "FAIL {name} {key} @{}: {} fds arrived with a chunk in which no frame starts",
            arrival.offset, arrival.count
        );
    }
    if let (Some((offset, why)), true, true) = (&report.stopped, cut, report.partial_tail) {
        let _ = writeln!(
            out,
            "note: {name} {key} frame {} @{offset}: {why}, where the recording stopped",
            report.frames.len()
        );
    } else if let Some((offset, why)) = &report.stopped {
        totals.failed += 1;
        let _ = writeln!(
            out,
            "FAIL {name} {key} frame {} @{offset}: {why}",
            report.frames.len()
        );
    }
    if stream.truncated {
        let _ = writeln!(out, "note: {name} {key} was recorded truncated");
    }
    // (`cut` without `stream.truncated`: another stream held the cut chunk.)
}
