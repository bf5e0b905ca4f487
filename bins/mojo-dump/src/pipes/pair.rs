//! Pairs the legacy pipes of a proxy's client link with the ipcz pipes of
//! its host link, from the two captures alone (the proxy's own table is not
//! in them): legacy initial attachment `i` is ipcz initial portal `i + 1`
//! (portal 0 is Mojo's, closed at once), and a pipe carried by the `k`-th
//! message of a paired pipe is paired with the pipe the `k`-th message of
//! the same direction on the other link carries, when the two messages
//! agree (same payload bytes, or the ipcz data is in shared memory and only
//! the handle counts can agree).

use mojo_transcript::Direction;

use super::{Attached, Message, Pipes};

/// Why two pipes are paired, and how well their messages agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pairing {
    /// Index of the legacy pipe.
    pub legacy: usize,
    /// Index of the ipcz pipe.
    pub ipcz: usize,
    /// How the pairing was inferred.
    pub reason: String,
    /// Host to client: ipcz a2b against legacy a2b.
    pub to_client: Agreement,
    /// Client to host: legacy b2a against ipcz b2a.
    pub to_host: Agreement,
}

/// How the messages of one direction of a pair compare, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Agreement {
    /// Messages on the link they arrive from.
    pub sent: usize,
    /// Messages on the link they leave by.
    pub forwarded: usize,
    /// Pairs in order with the same payload bytes.
    pub same_bytes: usize,
    /// Pairs whose bytes could not be compared (ipcz data in shared memory).
    pub unknown: usize,
    /// Pairs whose bytes or handle counts differ.
    pub differ: usize,
}

impl Agreement {
    /// Every message has its forward and every compared pair matched.
    pub(crate) fn is_exact(&self) -> bool {
        self.sent == self.forwarded && self.differ == 0
    }
}

/// Whether two messages agree, and whether the bytes were compared.
fn agree(a: &Message, b: &Message) -> Option<bool> {
    let pipes = |m: &Message| {
        m.attached
            .iter()
            .filter(|x| matches!(x, Attached::Pipe { .. }))
            .count()
    };
    if a.attached.len() != b.attached.len() || pipes(a) != pipes(b) {
        return Some(false);
    }
    match (&a.data, &b.data) {
        (Some(x), Some(y)) => Some(x == y),
        _ => None,
    }
}

/// The attached pipe ends of a message, in order.
fn carried(m: &Message) -> Vec<super::End> {
    m.attached
        .iter()
        .filter_map(|x| match x {
            Attached::Pipe { end, .. } => Some(*end),
            Attached::Object(_) => None,
        })
        .collect()
}

/// Pairs the pipes of a legacy capture with those of an ipcz capture of
/// the same proxy run.
pub(crate) fn pair(legacy: &Pipes, ipcz: &Pipes) -> Vec<Pairing> {
    let mut work: Vec<(usize, usize, String)> = Vec::new();
    for (l, pipe) in legacy.pipes.iter().enumerate() {
        let Some(i) = pipe.initial else { continue };
        if let Some(z) = ipcz
            .pipes
            .iter()
            .position(|p| p.initial == Some(i.saturating_add(1)))
        {
            work.push((
                l,
                z,
                format!("initial attachment {i} <-> initial portal {}", i + 1),
            ));
        }
    }
    let mut done: Vec<Pairing> = Vec::new();
    while let Some((l, z, reason)) = work.pop() {
        if done.iter().any(|p| p.legacy == l || p.ipcz == z) {
            continue;
        }
        let (Some(lp), Some(zp)) = (legacy.pipes.get(l), ipcz.pipes.get(z)) else {
            continue;
        };
        let mut pairing = Pairing {
            legacy: l,
            ipcz: z,
            reason,
            to_client: Agreement::default(),
            to_host: Agreement::default(),
        };
        // (messages arriving at the proxy, their forwards, which is which)
        let directions = [
            (zp, lp, Direction::AToB, Direction::AToB, true),
            (lp, zp, Direction::BToA, Direction::BToA, false),
        ];
        for (from, to, from_dir, to_dir, to_client) in directions {
            let sent: Vec<(usize, &Message)> = from.messages(from_dir).collect();
            let forwarded: Vec<(usize, &Message)> = to.messages(to_dir).collect();
            let mut a = Agreement {
                sent: sent.len(),
                forwarded: forwarded.len(),
                ..Agreement::default()
            };
            for (k, ((_, m), (_, f))) in sent.iter().zip(&forwarded).enumerate() {
                match agree(m, f) {
                    Some(false) => {
                        a.differ += 1;
                        continue;
                    }
                    Some(true) => a.same_bytes += 1,
                    None => a.unknown += 1,
                }
                let (from_ends, to_ends) = (carried(m), carried(f));
                for (j, (x, y)) in from_ends.iter().zip(&to_ends).enumerate() {
                    let (Some(px), Some(py)) = (
                        if to_client {
                            ipcz.pipe_of(*x)
                        } else {
                            legacy.pipe_of(*x)
                        },
                        if to_client {
                            legacy.pipe_of(*y)
                        } else {
                            ipcz.pipe_of(*y)
                        },
                    ) else {
                        continue;
                    };
                    let (pl, pz) = if to_client { (py, px) } else { (px, py) };
                    let side = if to_client {
                        "host to client"
                    } else {
                        "client to host"
                    };
                    let how = if m.data.is_some() && f.data.is_some() {
                        "same payload bytes"
                    } else {
                        "payload in shared memory, matched by order and handle count"
                    };
                    work.push((
                        pl,
                        pz,
                        format!(
                            "pipe {} of message {} {side} on the paired pipe ({how})",
                            j + 1,
                            k + 1
                        ),
                    ));
                }
            }
            if to_client {
                pairing.to_client = a;
            } else {
                pairing.to_host = a;
            }
        }
        done.push(pairing);
    }
    done.sort_by_key(|p| p.legacy);
    done
}

/// The pairings of a run's files: a file whose name holds `host_proxy` (read
/// as ipcz) with the one whose name is the same but for `proxy_client`
/// (read as legacy), as `mojo_proxy --capture-dir` and the vectors name
/// them. Indices are into `files`.
pub(crate) fn pair_files(files: &[super::print::FilePipes]) -> Vec<super::print::FilePairing> {
    let mut out = Vec::new();
    for (z, zfile) in files.iter().enumerate() {
        if !zfile.pipes.ipcz || !zfile.name.contains("host_proxy") {
            continue;
        }
        let want = zfile.name.replace("host_proxy", "proxy_client");
        let Some(l) = files.iter().position(|f| !f.pipes.ipcz && f.name == want) else {
            continue;
        };
        let Some(lfile) = files.get(l) else {
            continue;
        };
        out.push(super::print::FilePairing {
            legacy: l,
            ipcz: z,
            pairs: pair(&lfile.pipes, &zfile.pipes),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipes::End;

    fn message(data: Option<&[u8]>, pipes: usize) -> Message {
        Message {
            seq: 0,
            size: data.map_or(64, <[u8]>::len),
            data: data.map(<[u8]>::to_vec),
            attached: (0..pipes)
                .map(|i| Attached::Pipe {
                    end: End::Sublink {
                        channel: 0,
                        sublink: i as u64,
                    },
                    kind: "portal".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn messages_agree_on_bytes_and_handle_counts() {
        let (a, b) = (message(Some(b"abcd"), 1), message(Some(b"abcd"), 1));
        assert_eq!(agree(&a, &b), Some(true));
        assert_eq!(agree(&a, &message(Some(b"abce"), 1)), Some(false));
        // Different handle counts never agree, bytes or not.
        assert_eq!(agree(&a, &message(Some(b"abcd"), 0)), Some(false));
        assert_eq!(agree(&message(None, 1), &a), None);
        assert_eq!(agree(&message(None, 2), &a), Some(false));
        let exact = Agreement {
            sent: 2,
            forwarded: 2,
            same_bytes: 1,
            unknown: 1,
            differ: 0,
        };
        assert!(exact.is_exact());
        assert!(
            !Agreement {
                forwarded: 3,
                ..exact
            }
            .is_exact()
        );
        assert!(!Agreement { differ: 1, ..exact }.is_exact());
    }
}
