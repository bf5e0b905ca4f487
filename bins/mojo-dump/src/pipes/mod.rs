//! `--pipes`: the view that follows each message pipe. The decoders say,
//! per frame, which pipe end it addresses and what happened there
//! ([`Item`], built in `extract.rs`); this module joins the ends one file's
//! traffic shows to be one pipe ([`Pipes::of`]); `pair.rs` pairs the legacy
//! and ipcz pipes of one proxy run; `print.rs` prints them.
//!
//! A pipe here is what the wire shows, not the peers' state: ends are joined
//! when a frame names them together (a port and its peer in a descriptor, a
//! proxy and its target, a sublink and the one that bypasses it).

pub(crate) mod extract;
pub(crate) mod pair;
pub(crate) mod print;

use std::collections::HashMap;

use mojo_transcript::{Direction, StreamKey};

use crate::view::{Entry, What};

/// One end of a pipe, as the wire names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum End {
    /// A legacy port: 128-bit names, unique across a node's channels.
    Port {
        /// High half of the name.
        high: u64,
        /// Low half of the name.
        low: u64,
    },
    /// An ipcz sublink of one transport (channel of the file).
    Sublink {
        /// The channel.
        channel: u32,
        /// The sublink id.
        sublink: u64,
    },
}

/// What one frame did to the pipe end it addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    /// The end the frame is for (a legacy event's port, an ipcz message's
    /// sublink).
    pub end: End,
    /// What happened.
    pub what: Happened,
    /// Ends the frame shows to be of one pipe (joined before printing).
    pub joins: Vec<(End, End)>,
}

/// What an [`Item`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Happened {
    /// A user message (legacy) or parcel (ipcz).
    Message(Message),
    /// The sending side closed: `last` is its message count.
    Closed {
        /// Messages sent in all on the closed side.
        last: u64,
    },
    /// The connector port of a legacy initial attachment (REQUEST_PORT_MERGE).
    Attachment {
        /// The attachment's index (its numeric name, else its order).
        index: Option<u64>,
        /// The name as the frame line shows it.
        name: String,
    },
    /// An ipcz handshake: portals `0..initial_portals` are sublinks
    /// `0..initial_portals` of its transport.
    Handshake {
        /// The handshake's `num_initial_portals`.
        initial_portals: u64,
    },
    /// Route bookkeeping (proxies, bypasses, acks): shown with `-v`.
    Routing(String),
    /// The frame addresses this end but did not decode: why.
    Failed(String),
}

/// A user message or parcel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// Its sequence number on the pipe.
    pub seq: u64,
    /// Its payload, when it travels in the frame (not an ipcz fragment in
    /// shared memory).
    pub data: Option<Vec<u8>>,
    /// Bytes of payload (of the fragment when the data is not inline).
    pub size: usize,
    /// What it carries, in order.
    pub attached: Vec<Attached>,
}

/// One thing a message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attached {
    /// A pipe end (its kind: `MessagePipe`, `portal`, a data pipe's
    /// control port...): a pipe of its own from here on.
    Pipe {
        /// The new end on the receiver.
        end: End,
        /// What it is.
        kind: String,
    },
    /// Any other handle (shared buffer, platform handle), as the frame
    /// line prints it.
    Object(String),
}

/// An [`Item`] with where and when it was seen.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// Time of the chunk that completed the frame.
    pub time: f64,
    /// The stream.
    pub key: StreamKey,
    /// The frame's index in its stream.
    pub index: usize,
    /// What happened.
    pub item: Item,
    /// A failure of the frame around the item (fd count, re-check).
    pub failure: Option<String>,
}

/// One pipe of one file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pipe {
    /// Its ends, in order of first appearance.
    pub ends: Vec<End>,
    /// What happened on it, in time order.
    pub seen: Vec<Seen>,
    /// The message (pipe index, position in `seen`) that carried this pipe
    /// here, if one did.
    pub carried_by: Option<(usize, usize)>,
    /// The ipcz initial portal, or legacy initial attachment, it starts as.
    pub initial: Option<u64>,
}

impl Pipe {
    /// Its messages in one direction, in order.
    pub(crate) fn messages(&self, direction: Direction) -> impl Iterator<Item = (usize, &Message)> {
        self.seen
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.key.direction == direction)
            .filter_map(|(i, s)| match &s.item.what {
                Happened::Message(m) => Some((i, m)),
                _ => None,
            })
    }
}

/// Every pipe of one file, and the frames that failed outside any.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pipes {
    /// In order of first appearance.
    pub pipes: Vec<Pipe>,
    /// Failed frames no pipe end could be read from (time, stream, index,
    /// why), and stream notes, in order.
    pub outside: Vec<(f64, StreamKey, String)>,
    /// The file was read as ipcz.
    pub ipcz: bool,
}

/// Union-find over ends.
#[derive(Default)]
struct Joined {
    parent: HashMap<End, End>,
}

impl Joined {
    fn root(&mut self, end: End) -> End {
        let mut at = end;
        while let Some(&up) = self.parent.get(&at) {
            if up == at {
                break;
            }
            at = up;
        }
        // Flatten the path walked, so later lookups are short.
        let root = at;
        let mut at = end;
        while let Some(&up) = self.parent.get(&at) {
            if up == root {
                break;
            }
            self.parent.insert(at, root);
            at = up;
        }
        root
    }

    fn join(&mut self, a: End, b: End) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            // The earlier-seen end stays the root: stable numbering.
            self.parent.insert(rb, ra);
        }
    }
}

impl Pipes {
    /// The pipes of one file's time-ordered entries (`ipcz`: the file was
    /// read as ipcz).
    pub(crate) fn of(entries: Vec<Entry>, ipcz: bool) -> Self {
        let mut joined = Joined::default();
        let mut order: Vec<End> = Vec::new();
        let mut known = std::collections::HashSet::new();
        let mut note = |end: End, order: &mut Vec<End>| {
            if known.insert(end) {
                order.push(end);
            }
        };
        let mut seen = Vec::new();
        let mut outside = Vec::new();
        // Sublinks below the (first) handshake's count are the initial portals.
        let mut initial_portals = None;
        for entry in entries {
            match entry.what {
                What::Frame {
                    index,
                    report,
                    failure,
                    ..
                } => match report.pipe {
                    Some(item) => {
                        if let Happened::Handshake { initial_portals: n } = item.what {
                            initial_portals.get_or_insert(n);
                            continue;
                        }
                        note(item.end, &mut order);
                        for &(a, b) in &item.joins {
                            note(a, &mut order);
                            note(b, &mut order);
                        }
                        if let Happened::Message(m) = &item.what {
                            for a in &m.attached {
                                if let Attached::Pipe { end, .. } = a {
                                    note(*end, &mut order);
                                }
                            }
                        }
                        seen.push(Seen {
                            time: entry.time,
                            key: entry.key,
                            index,
                            item: *item,
                            failure,
                        });
                    }
                    None => {
                        if let Some(why) = failure {
                            outside.push((
                                entry.time,
                                entry.key,
                                format!("#{index} FAIL {why} [{}]", report.description),
                            ));
                        }
                    }
                },
                What::Stream { text, .. } => {
                    outside.push((entry.time, entry.key, text));
                }
            }
        }
        let initial_portals = initial_portals.unwrap_or(0);
        for s in &seen {
            for &(a, b) in &s.item.joins {
                joined.join(a, b);
            }
        }
        let mut index_of: HashMap<End, usize> = HashMap::new();
        let mut pipes: Vec<Pipe> = Vec::new();
        for end in order {
            let root = joined.root(end);
            let at = *index_of.entry(root).or_insert_with(|| {
                pipes.push(Pipe::default());
                pipes.len() - 1
            });
            index_of.insert(end, at);
            if let Some(p) = pipes.get_mut(at) {
                p.ends.push(end);
            }
        }
        let mut attachments = 0;
        for s in seen {
            let Some(&at) = index_of.get(&s.item.end) else {
                continue;
            };
            let Some(pipe) = pipes.get_mut(at) else {
                continue;
            };
            if let Happened::Attachment { index, .. } = &s.item.what {
                // A name that is not a number counts in order of requests.
                let index = index.unwrap_or(attachments);
                attachments += 1;
                pipe.initial.get_or_insert(index);
            }
            pipe.seen.push(s);
        }
        if ipcz {
            for pipe in &mut pipes {
                pipe.initial = pipe.ends.iter().find_map(|e| match e {
                    End::Sublink { sublink, .. } if *sublink < initial_portals => Some(*sublink),
                    _ => None,
                });
            }
        }
        // Which message carried each pipe.
        let mut carried: Vec<(usize, (usize, usize))> = Vec::new();
        for (p, pipe) in pipes.iter().enumerate() {
            for (i, s) in pipe.seen.iter().enumerate() {
                if let Happened::Message(m) = &s.item.what {
                    for a in &m.attached {
                        if let Attached::Pipe { end, .. } = a
                            && let Some(&q) = index_of.get(end)
                            && q != p
                        {
                            carried.push((q, (p, i)));
                        }
                    }
                }
            }
        }
        for (q, by) in carried {
            if let Some(pipe) = pipes.get_mut(q)
                && pipe.carried_by.is_none()
            {
                pipe.carried_by = Some(by);
            }
        }
        // Initial portals and attachments first, in their order; then the
        // rest as they appeared.
        let mut numbered: Vec<(usize, Pipe)> = pipes.into_iter().enumerate().collect();
        numbered.sort_by_key(|(i, p)| (p.initial.is_none(), p.initial, *i));
        let mut moved_to = vec![0; numbered.len()];
        for (new, (old, _)) in numbered.iter().enumerate() {
            if let Some(slot) = moved_to.get_mut(*old) {
                *slot = new;
            }
        }
        let pipes: Vec<Pipe> = numbered
            .into_iter()
            .map(|(_, mut p)| {
                p.carried_by = p
                    .carried_by
                    .and_then(|(q, at)| moved_to.get(q).map(|&q| (q, at)));
                p
            })
            .collect();
        Self {
            pipes,
            outside,
            ipcz,
        }
    }

    /// The pipe holding `end`.
    pub(crate) fn pipe_of(&self, end: End) -> Option<usize> {
        self.pipes.iter().position(|p| p.ends.contains(&end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FrameReport;

    fn port(n: u64) -> End {
        End::Port { high: 0, low: n }
    }

    fn entry(chunk: usize, direction: Direction, item: Item) -> Entry {
        Entry {
            time: chunk as f64,
            chunk,
            key: StreamKey {
                channel: 1,
                direction,
            },
            what: What::Frame {
                index: chunk,
                report: FrameReport {
                    offset: 0,
                    len: 1,
                    claimed_fds: 0,
                    description: String::new(),
                    detail: Vec::new(),
                    failure: None,
                    pipe: Some(Box::new(item)),
                },
                fd_kinds: Vec::new(),
                failure: None,
            },
        }
    }

    fn message(end: End, seq: u64, carried: &[End]) -> Item {
        Item {
            end,
            what: Happened::Message(Message {
                seq,
                data: Some(vec![1, 0, 0, 0]),
                size: 4,
                attached: carried
                    .iter()
                    .map(|&end| Attached::Pipe {
                        end,
                        kind: "MessagePipe".into(),
                    })
                    .collect(),
            }),
            // A carried port's peer in these tests: its name plus 100.
            joins: carried
                .iter()
                .filter_map(|&c| match c {
                    End::Port { low, .. } => Some((c, port(low + 100))),
                    End::Sublink { .. } => None,
                })
                .collect(),
        }
    }

    #[test]
    fn ends_named_together_are_one_pipe_and_a_carried_pipe_knows_its_carrier() {
        let merge = Item {
            end: port(1),
            what: Happened::Attachment {
                index: None,
                name: "pipe!".into(),
            },
            joins: vec![(port(1), port(2)), (port(2), port(3))],
        };
        let entries = [
            entry(0, Direction::BToA, merge),
            entry(1, Direction::AToB, message(port(3), 1, &[port(7)])),
            entry(2, Direction::BToA, message(port(2), 1, &[])),
            // The carried pipe's peer (107) answers on the carried pipe.
            entry(3, Direction::BToA, message(port(107), 1, &[])),
            entry(4, Direction::AToB, message(port(7), 1, &[])),
        ];
        let pipes = Pipes::of(entries.to_vec(), false);
        assert_eq!(pipes.pipes.len(), 2, "{pipes:?}");
        let (first, second) = (&pipes.pipes[0], &pipes.pipes[1]);
        assert_eq!(first.ends, [port(1), port(2), port(3)]);
        assert_eq!(first.initial, Some(0));
        assert_eq!(second.ends, [port(7), port(107)]);
        assert_eq!(second.carried_by, Some((0, 1)));
        assert_eq!(second.initial, None);
        let to_b: Vec<u64> = second
            .messages(Direction::AToB)
            .map(|(_, m)| m.seq)
            .collect();
        assert_eq!(to_b, [1]);
        assert_eq!(pipes.pipe_of(port(107)), Some(1));
        assert_eq!(pipes.pipe_of(port(9)), None);
    }

    #[test]
    fn ipcz_initial_portals_come_from_the_handshake() {
        let at = |sublink| End::Sublink {
            channel: 1,
            sublink,
        };
        let entries = [
            entry(
                0,
                Direction::AToB,
                Item {
                    end: at(0),
                    what: Happened::Handshake { initial_portals: 2 },
                    joins: Vec::new(),
                },
            ),
            entry(1, Direction::AToB, message(at(1), 0, &[at(12)])),
            entry(
                2,
                Direction::AToB,
                Item {
                    end: at(1),
                    what: Happened::Routing("BypassPeerWithLink".into()),
                    joins: vec![(at(1), at(13))],
                },
            ),
            entry(3, Direction::BToA, message(at(13), 0, &[])),
        ];
        let pipes = Pipes::of(entries.to_vec(), true);
        let initial: Vec<Option<u64>> = pipes.pipes.iter().map(|p| p.initial).collect();
        // Sublink 1 joined with 13, and the carried 12; sublink 0 had no
        // traffic (the handshake is no event of a pipe).
        assert_eq!(initial, [Some(1), None], "{pipes:?}");
        assert_eq!(pipes.pipes[0].ends, [at(1), at(13)]);
        assert_eq!(pipes.pipes[1].ends, [at(12)]);
        assert_eq!(pipes.pipes[1].carried_by, Some((0, 0)));
    }
}
