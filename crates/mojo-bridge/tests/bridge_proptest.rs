//! Proptest: random traffic both ways through the bridge on three
//! attachments and on pipes sent from either side at random moments,
//! delivered in random slices and interleavings: every message arrives once, verbatim, in
//! its pipe's order, and nothing is left once everything is closed.

mod support;

use ipcz_node::router::{Handle as IpczHandle, RouterId};
use mojo_bridge::Attachments;
use mojo_legacy_node::node::{Handle, PortRef};
use proptest::prelude::*;
use support::World;

const NO_PIPE: u32 = u32::MAX;

#[derive(Debug, Clone)]
enum Op {
    /// The host writes on channel `c` (modulo the channels it holds).
    HostPut { c: usize, filler: usize },
    /// The client writes on channel `c`.
    ClientWrite { c: usize, filler: usize },
    /// The host sends a new pipe's end over channel `c`.
    HostSendsPipe { c: usize },
    /// The client sends a new pipe's end over channel `c`.
    ClientSendsPipe { c: usize },
    /// A few delivery rounds.
    Step { rounds: usize },
    /// One frame of one of the four queues (the others wait).
    DeliverOne { queue: usize },
    /// Both outer nodes read what arrived.
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..16usize, 0..64usize).prop_map(|(c, filler)| Op::HostPut { c, filler }),
        4 => (0..16usize, 0..64usize).prop_map(|(c, filler)| Op::ClientWrite { c, filler }),
        1 => (0..16usize).prop_map(|c| Op::HostSendsPipe { c }),
        1 => (0..16usize).prop_map(|c| Op::ClientSendsPipe { c }),
        2 => (1..6usize).prop_map(|rounds| Op::Step { rounds }),
        3 => (0..4usize).prop_map(|queue| Op::DeliverOne { queue }),
        1 => Just(Op::Drain),
    ]
}

#[derive(Default)]
struct Channel {
    host: Option<RouterId>,
    client: Option<PortRef>,
    down_sent: u32,
    down_seen: u32,
    up_sent: u32,
    up_seen: u32,
}

/// A message: direction, channel, sequence number, the channel of the
/// pipe end it carries (or `NO_PIPE`), then `filler` bytes.
fn payload(down: bool, channel: usize, seq: u32, pipe: u32, filler: usize) -> Vec<u8> {
    let mut v = vec![u8::from(down)];
    v.extend_from_slice(&(channel as u32).to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&pipe.to_le_bytes());
    v.extend((0..filler).map(|i| (i as u8).wrapping_mul(31) ^ seq as u8));
    v
}

fn parse(v: &[u8]) -> (bool, usize, u32, u32) {
    let word = |at: usize| u32::from_le_bytes(v[at..at + 4].try_into().unwrap());
    (v[0] == 1, word(1) as usize, word(5), word(9))
}

struct Traffic {
    w: World,
    channels: Vec<Channel>,
}

impl Traffic {
    fn new() -> Self {
        let w = World::new(Attachments::Numbered(3), 4);
        let channels = (0..3)
            .map(|i| Channel {
                host: Some(w.host_portal(i)),
                client: Some(w.client_ends[i]),
                ..Channel::default()
            })
            .collect();
        Self { w, channels }
    }

    fn host_held(&self, c: usize) -> Option<(usize, RouterId)> {
        let held: Vec<(usize, RouterId)> = self
            .channels
            .iter()
            .enumerate()
            .filter_map(|(i, ch)| ch.host.map(|r| (i, r)))
            .collect();
        held.get(c % held.len().max(1)).copied()
    }

    fn client_held(&self, c: usize) -> Option<(usize, PortRef)> {
        let held: Vec<(usize, PortRef)> = self
            .channels
            .iter()
            .enumerate()
            .filter_map(|(i, ch)| ch.client.map(|p| (i, p)))
            .collect();
        held.get(c % held.len().max(1)).copied()
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::HostPut { c, filler } => {
                let Some((i, r)) = self.host_held(c) else {
                    return;
                };
                let seq = self.channels[i].down_sent;
                self.channels[i].down_sent += 1;
                let data = payload(true, i, seq, NO_PIPE, filler);
                self.w.host.put(r, data, Vec::new()).unwrap();
            }
            Op::ClientWrite { c, filler } => {
                let Some((i, p)) = self.client_held(c) else {
                    return;
                };
                let seq = self.channels[i].up_sent;
                self.channels[i].up_sent += 1;
                let data = payload(false, i, seq, NO_PIPE, filler);
                self.w.client.write_message(p, &data, Vec::new()).unwrap();
            }
            Op::HostSendsPipe { c } => {
                let Some((i, r)) = self.host_held(c) else {
                    return;
                };
                let (keep, send) = self.w.host.create_portal_pair();
                let new = self.channels.len();
                self.channels.push(Channel {
                    host: Some(keep),
                    ..Channel::default()
                });
                let seq = self.channels[i].down_sent;
                self.channels[i].down_sent += 1;
                let data = payload(true, i, seq, new as u32, 0);
                self.w
                    .host
                    .put(r, data, vec![IpczHandle::Portal(send)])
                    .unwrap();
            }
            Op::ClientSendsPipe { c } => {
                let Some((i, p)) = self.client_held(c) else {
                    return;
                };
                let (keep, send) = self.w.client.create_pipe().unwrap();
                let new = self.channels.len();
                self.channels.push(Channel {
                    client: Some(keep),
                    ..Channel::default()
                });
                let seq = self.channels[i].up_sent;
                self.channels[i].up_sent += 1;
                let data = payload(false, i, seq, new as u32, 0);
                self.w
                    .client
                    .write_message(p, &data, vec![Handle::MessagePipe(send)])
                    .unwrap();
            }
            Op::Step { rounds } => {
                for _ in 0..rounds {
                    self.w.step();
                }
            }
            Op::DeliverOne { queue } => {
                self.w.deliver(queue);
            }
            Op::Drain => self.drain(),
        }
    }

    /// Reads everything that arrived on both outer nodes and checks it.
    fn drain(&mut self) {
        let mut i = 0;
        while i < self.channels.len() {
            if let Some(p) = self.channels[i].client {
                for (bytes, mut handles) in self.w.client_take(p) {
                    let (down, ch, seq, pipe) = parse(&bytes);
                    assert!(down && ch == i, "channel {i} got {ch}");
                    assert_eq!(seq, self.channels[i].down_seen, "down order on {i}");
                    self.channels[i].down_seen += 1;
                    if pipe == NO_PIPE {
                        assert!(handles.is_empty());
                    } else {
                        let Some(Handle::MessagePipe(end)) = handles.pop() else {
                            panic!("pipe {pipe} missing")
                        };
                        assert!(handles.is_empty());
                        self.channels[pipe as usize].client = Some(end);
                    }
                }
            }
            if let Some(r) = self.channels[i].host {
                for parcel in self.w.host_take(r) {
                    let (down, ch, seq, pipe) = parse(&parcel.data);
                    assert!(!down && ch == i, "channel {i} got {ch}");
                    assert_eq!(seq, self.channels[i].up_seen, "up order on {i}");
                    self.channels[i].up_seen += 1;
                    let mut handles = parcel.handles;
                    if pipe == NO_PIPE {
                        assert!(handles.is_empty());
                    } else {
                        let Some(IpczHandle::Portal(end)) = handles.pop() else {
                            panic!("pipe {pipe} missing")
                        };
                        assert!(handles.is_empty());
                        self.channels[pipe as usize].host = Some(end);
                    }
                }
            }
            i += 1;
        }
    }

    fn finish(mut self) {
        // Pipes received late may carry more: drain until nothing new.
        loop {
            self.w.run();
            let before: u32 = self.channels.iter().map(|c| c.down_seen + c.up_seen).sum();
            self.drain();
            let after: u32 = self.channels.iter().map(|c| c.down_seen + c.up_seen).sum();
            if before == after {
                break;
            }
        }
        for (i, c) in self.channels.iter().enumerate() {
            assert_eq!(c.down_seen, c.down_sent, "host -> client on {i}");
            assert_eq!(c.up_seen, c.up_sent, "client -> host on {i}");
        }
        for c in &self.channels {
            if let Some(r) = c.host {
                self.w.host.close(r).unwrap();
            }
            if let Some(p) = c.client {
                self.w.client.close_port(p).unwrap();
            }
        }
        self.w.assert_nothing_left();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_traffic_keeps_every_pipes_order(ops in proptest::collection::vec(op(), 1..120)) {
        let mut t = Traffic::new();
        for op in &ops {
            t.apply(op);
        }
        t.finish();
    }
}
