//! Prints the `--pipes` view: per file, each pipe with its ends, where it
//! came from, its messages in order (direction, size, opcode, what they
//! carry and which pipe each carried end became) and closures; what was
//! inferred about the pairing across the proxy; and the failed frames and
//! stream notes no pipe could hold, in order.

use std::io::Write;

use mojo_transcript::Direction;

use super::pair::{Agreement, Pairing};
use super::{Attached, End, Happened, Message, Pipes, Seen};
use crate::names::{Aliases, Kind, Spelling, mark, render};
use crate::payload;

/// Indentation of a pipe's lines.
const INDENT: &str = "  ";

/// One file's pipes, with its title.
pub(crate) struct FilePipes {
    /// The file's name.
    pub name: String,
    /// The heading (file name and detected reading).
    pub title: String,
    /// Its pipes.
    pub pipes: Pipes,
}

/// Pairings between two files of one proxy run.
pub(crate) struct FilePairing {
    /// Index of the legacy file.
    pub legacy: usize,
    /// Index of the ipcz file.
    pub ipcz: usize,
    /// What was paired.
    pub pairs: Vec<Pairing>,
}

/// Pipe labels over the whole run: `L1..` legacy, `I1..` ipcz.
fn labels(files: &[FilePipes]) -> Vec<Vec<String>> {
    let (mut l, mut i) = (0, 0);
    files
        .iter()
        .map(|f| {
            f.pipes
                .pipes
                .iter()
                .map(|_| {
                    if f.pipes.ipcz {
                        i += 1;
                        format!("I{i}")
                    } else {
                        l += 1;
                        format!("L{l}")
                    }
                })
                .collect()
        })
        .collect()
}

/// An end as the view names it (ports by alias).
fn end_text(end: End, aliases: &mut Aliases) -> String {
    match end {
        End::Port { high, low } => {
            render(
                &mark(Kind::Port, Spelling::Legacy, high, low),
                Some(aliases),
            )
            .text
        }
        End::Sublink {
            channel: 0,
            sublink,
        } => format!("s{sublink}"),
        End::Sublink { channel, sublink } => format!("chan{channel}:s{sublink}"),
    }
}

fn label_of(labels: &[String], pipes: &Pipes, end: End) -> String {
    pipes
        .pipe_of(end)
        .and_then(|p| labels.get(p))
        .cloned()
        .unwrap_or_else(|| "?".into())
}

fn message_text(m: &Message, labels: &[String], pipes: &Pipes, aliases: &mut Aliases) -> String {
    let mut s = match &m.data {
        Some(data) => {
            let mut s = format!("seq={} {}B", m.seq, m.size);
            if let Some(op) = payload::opcode(data) {
                s.push_str(&format!(" op={op}"));
            }
            s
        }
        None => format!("seq={} fragment of {}B in shared memory", m.seq, m.size),
    };
    for a in &m.attached {
        match a {
            Attached::Pipe { end, kind } => s.push_str(&format!(
                " +{kind} {} -> pipe {}",
                end_text(*end, aliases),
                label_of(labels, pipes, *end)
            )),
            Attached::Object(text) => {
                s.push_str(&format!(" +{}", render(text, Some(aliases)).text));
            }
        }
    }
    s
}

/// `n thing` or `n things`.
fn plural(n: impl std::fmt::Display, thing: &str) -> String {
    if n.to_string() == "1" {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

fn agreement(a: &Agreement) -> String {
    let mut s = format!("{} sent, {} forwarded", a.sent, a.forwarded);
    if a.same_bytes > 0 {
        s.push_str(&format!(", {} with the same bytes", a.same_bytes));
    }
    if a.unknown > 0 {
        s.push_str(&format!(", {} not comparable (shared memory)", a.unknown));
    }
    if a.differ > 0 {
        s.push_str(&format!(", {} DIFFER", a.differ));
    }
    if !a.is_exact() {
        s.push_str(" (MISMATCH)");
    }
    s
}

/// Prints every file's pipes and the pairings.
pub(crate) fn print(
    out: &mut impl Write,
    files: &[FilePipes],
    pairings: &[FilePairing],
    aliases: &mut Aliases,
    verbose: bool,
) {
    let labels = labels(files);
    for (f, file) in files.iter().enumerate() {
        let _ = writeln!(out, "== pipes of {}", file.title);
        let mine = labels.get(f).map_or(&[][..], Vec::as_slice);
        for (p, pipe) in file.pipes.pipes.iter().enumerate() {
            let label = mine.get(p).map_or("?", String::as_str);
            let ends: Vec<String> = pipe.ends.iter().map(|e| end_text(*e, aliases)).collect();
            let origin = match (pipe.initial, pipe.carried_by, file.pipes.ipcz) {
                (Some(i), _, true) => format!("initial portal {i}"),
                (Some(i), _, false) => format!("initial attachment {i}"),
                (None, Some((q, at)), _) => {
                    let by = mine.get(q).map_or("?", String::as_str);
                    match file.pipes.pipes.get(q).and_then(|c| c.seen.get(at)) {
                        Some(s) => {
                            format!("carried by {by} {} #{} at {:.6}", s.key, s.index, s.time)
                        }
                        None => format!("carried by {by}"),
                    }
                }
                (None, None, _) => "origin not in this capture".into(),
            };
            let _ = writeln!(out, "pipe {label}: {origin}; ends {}", ends.join(" "));
            for pairing in pairings {
                let (other, mine_is_legacy) = if pairing.legacy == f {
                    (pairing.ipcz, true)
                } else if pairing.ipcz == f {
                    (pairing.legacy, false)
                } else {
                    continue;
                };
                let others = labels.get(other).map_or(&[][..], Vec::as_slice);
                for pair in &pairing.pairs {
                    let (me, them) = if mine_is_legacy {
                        (pair.legacy, pair.ipcz)
                    } else {
                        (pair.ipcz, pair.legacy)
                    };
                    if me == p {
                        let _ = writeln!(
                            out,
                            "{INDENT}paired with {} (inferred: {})",
                            others.get(them).map_or("?", String::as_str),
                            pair.reason
                        );
                    }
                }
            }
            print_seen(out, pipe, mine, &file.pipes, aliases, verbose);
        }
        if !file.pipes.outside.is_empty() {
            let _ = writeln!(out, "outside any pipe:");
            for (time, key, text) in &file.pipes.outside {
                let text = render(text, Some(aliases)).text;
                let _ = writeln!(out, "{INDENT}{time:10.6} {key} {text}");
            }
        }
    }
    for pairing in pairings {
        let (Some(l), Some(z)) = (files.get(pairing.legacy), files.get(pairing.ipcz)) else {
            continue;
        };
        let _ = writeln!(
            out,
            "== pairing of {} with {} (inferred from the two captures, not read from the proxy)",
            z.name, l.name
        );
        let (ll, zl) = (
            labels.get(pairing.legacy).map_or(&[][..], Vec::as_slice),
            labels.get(pairing.ipcz).map_or(&[][..], Vec::as_slice),
        );
        for pair in &pairing.pairs {
            let _ = writeln!(
                out,
                "{} <-> {}: host to client {}; client to host {}",
                zl.get(pair.ipcz).map_or("?", String::as_str),
                ll.get(pair.legacy).map_or("?", String::as_str),
                agreement(&pair.to_client),
                agreement(&pair.to_host)
            );
        }
        let unpaired = |n: usize, paired: &dyn Fn(usize) -> bool, names: &[String]| {
            (0..n)
                .filter(|i| !paired(*i))
                .filter_map(|i| names.get(i).cloned())
                .collect::<Vec<_>>()
        };
        let lu = unpaired(
            l.pipes.pipes.len(),
            &|i| pairing.pairs.iter().any(|p| p.legacy == i),
            ll,
        );
        let zu = unpaired(
            z.pipes.pipes.len(),
            &|i| pairing.pairs.iter().any(|p| p.ipcz == i),
            zl,
        );
        if !(lu.is_empty() && zu.is_empty()) {
            let _ = writeln!(
                out,
                "not paired: {}",
                zu.iter().chain(&lu).cloned().collect::<Vec<_>>().join(" ")
            );
        }
    }
}

fn print_seen(
    out: &mut impl Write,
    pipe: &super::Pipe,
    labels: &[String],
    pipes: &Pipes,
    aliases: &mut Aliases,
    verbose: bool,
) {
    // Per direction: messages, inline bytes, messages in shared memory.
    let (mut count, mut bytes, mut shared) = ([0usize; 2], [0usize; 2], [0usize; 2]);
    let mut routing = 0;
    for s in &pipe.seen {
        let Seen {
            time,
            key,
            index,
            item,
            failure,
            ..
        } = s;
        let at = end_text(item.end, aliases);
        let text = match &item.what {
            Happened::Message(m) => {
                let d = usize::from(key.direction == Direction::BToA);
                if let Some(c) = count.get_mut(d) {
                    *c += 1;
                }
                let counter = if m.data.is_some() {
                    bytes.get_mut(d).map(|b| (b, m.size))
                } else {
                    shared.get_mut(d).map(|n| (n, 1))
                };
                if let Some((n, by)) = counter {
                    *n += by;
                }
                let mut t = message_text(m, labels, pipes, aliases);
                if verbose && let Some(data) = &m.data {
                    t.push_str(&format!(" [{}]", payload::excerpt(data)));
                }
                t
            }
            Happened::Closed { last } => format!("peer closed after {}", plural(*last, "message")),
            Happened::Attachment { name, .. } => format!("REQUEST_PORT_MERGE name={name:?}"),
            Happened::Failed(why) => format!("FAIL {why}"),
            Happened::Routing(what) => {
                routing += 1;
                if !verbose {
                    continue;
                }
                what.clone()
            }
            Happened::Handshake { .. } => continue,
        };
        let fail = failure
            .as_ref()
            .filter(|_| !matches!(item.what, Happened::Failed(_)))
            .map_or(String::new(), |why| format!(" FAIL {why}"));
        let _ = writeln!(
            out,
            "{INDENT}{time:10.6} {key} #{index} -> {at} {text}{fail}"
        );
    }
    let direction = |d: usize| {
        let n = |a: &[usize; 2]| a.get(d).copied().unwrap_or(0);
        let mut s = format!("{}, {} B inline", plural(n(&count), "message"), n(&bytes));
        if n(&shared) > 0 {
            s.push_str(&format!(" + {} in shared memory", n(&shared)));
        }
        s
    };
    let _ = writeln!(
        out,
        "{INDENT}a2b {}; b2a {}{}",
        direction(0),
        direction(1),
        if routing > 0 && !verbose {
            format!("; {} (-v shows them)", plural(routing, "routing event"))
        } else {
            String::new()
        }
    );
}
