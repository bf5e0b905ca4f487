//! A deterministic in-memory pair of [`LegacyNode`]s, broker and client:
//! frames travel as bytes through the real encoders and decoders, fds as
//! real `OwnedFd`s, stepped until idle. With a seed, frames for different
//! destination ports overtake each other (each port's frames stay in
//! order). [`Probe`]s tell whether every copy of an fd has been closed.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use mojo_legacy_wire::event::{Event as WireEvent, EventData};
use mojo_legacy_wire::node::{NodeChannelContent, NodeFrame, NodeMessage};
use mojo_legacy_wire::{Deframer, NodeName, PortName, Profile};
use mojo_wire_kit::{RandomSource, SeededRandom};

use crate::node::{LegacyNode, NodeError, NodeEvent, NodeLimits, PeerRole, PortRef};
use crate::ports::{PortState, names};

/// Most deliveries one `run` may make before the test fails as "never idle".
const MAX_DELIVERIES: usize = 100_000;

pub(crate) const BROKER: usize = 0;
pub(crate) const CLIENT: usize = 1;

/// The other end of a socket pair whose first end was handed to a node.
pub(crate) struct Probe(UnixStream);

impl Probe {
    /// True once every copy of the handed-out end is closed (EOF).
    pub(crate) fn is_closed(&self) -> bool {
        self.0.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        match (&self.0).read(&mut b) {
            Ok(0) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            other => panic!("probe read: {other:?}"),
        }
    }
}

/// A real fd and the probe that watches it.
pub(crate) fn probed_fd() -> (OwnedFd, Probe) {
    let (a, b) = UnixStream::pair().unwrap();
    (OwnedFd::from(a), Probe(b))
}

pub(crate) struct Frame {
    pub(crate) to: usize,
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

pub(crate) struct Pair {
    pub(crate) nodes: [LegacyNode; 2],
    pub(crate) in_flight: VecDeque<Frame>,
    reorder: Option<SeededRandom>,
    pub(crate) events: [Vec<NodeEvent>; 2],
    pub(crate) errors: Vec<(usize, NodeError)>,
    pub(crate) delivered: usize,
    profile: Profile,
}

pub(crate) fn node_name_of(i: usize) -> NodeName {
    names::node_name(0xB000 + i as u64, 0x5EED)
}

/// The destination port of an event frame (invalid for other frames).
fn route_port(bytes: &[u8], profile: Profile) -> PortName {
    let Ok((frame, _)) = NodeFrame::decode(bytes) else {
        return PortName::INVALID;
    };
    match frame.content {
        NodeChannelContent::Message(NodeMessage::EventMessage(body)) => {
            WireEvent::decode(body, profile.event_header_form())
                .map_or(PortName::INVALID, |e| e.port_name)
        }
        _ => PortName::INVALID,
    }
}

impl Pair {
    pub(crate) fn new(profile: Profile) -> Self {
        Self::build(profile, None, NodeLimits::default())
    }

    pub(crate) fn reordering(profile: Profile, seed: u64) -> Self {
        Self::build(profile, Some(seed), NodeLimits::default())
    }

    pub(crate) fn build(profile: Profile, seed: Option<u64>, limits: NodeLimits) -> Self {
        let mut broker =
            LegacyNode::with_limits(node_name_of(BROKER), SeededRandom::new(11), limits);
        let mut client =
            LegacyNode::with_limits(node_name_of(CLIENT), SeededRandom::new(22), limits);
        broker
            .add_peer(client.name(), profile, PeerRole::Client)
            .unwrap();
        client
            .add_peer(broker.name(), profile, PeerRole::Broker)
            .unwrap();
        Self::assemble(broker, client, profile, seed)
    }

    /// A pair of nodes already linked to each other (libchrome, in order).
    pub(crate) fn from_nodes(broker: LegacyNode, client: LegacyNode) -> Self {
        Self::assemble(broker, client, Profile::Libchrome, None)
    }

    fn assemble(
        broker: LegacyNode,
        client: LegacyNode,
        profile: Profile,
        seed: Option<u64>,
    ) -> Self {
        Self {
            nodes: [broker, client],
            in_flight: VecDeque::new(),
            reorder: seed.map(SeededRandom::new),
            events: [Vec::new(), Vec::new()],
            errors: Vec::new(),
            delivered: 0,
            profile,
        }
    }

    pub(crate) fn name(&self, i: usize) -> NodeName {
        self.nodes[i].name()
    }

    /// Moves every pending transmit and event out of the nodes.
    pub(crate) fn collect(&mut self) {
        for i in 0..2 {
            while let Some(t) = self.nodes[i].poll_transmit() {
                assert_eq!(t.peer, self.name(1 - i), "transmit to a stranger");
                // Every frame is a whole, valid frame for a deframer.
                let mut d = Deframer::new();
                d.push(&t.bytes).unwrap();
                let got = d.next_frame().unwrap().expect("a whole frame");
                assert_eq!(got.bytes.len(), t.bytes.len());
                assert_eq!(usize::from(got.frame.header.num_handles()), t.fds.len());
                check_against_receiver(&self.nodes[1 - i], &t.bytes, self.profile);
                self.in_flight.push_back(Frame {
                    to: 1 - i,
                    bytes: t.bytes,
                    fds: t.fds,
                });
            }
            while let Some(e) = self.nodes[i].poll_event() {
                self.events[i].push(e);
            }
        }
    }

    /// Index of the next frame to deliver: the first one, or with
    /// reordering any frame that no earlier frame on its route precedes.
    fn pick(&mut self) -> usize {
        let Some(rng) = self.reorder.as_mut() else {
            return 0;
        };
        let n = self.in_flight.len();
        let start = (rng.next_u64() % n as u64) as usize;
        let profile = self.profile;
        let route = |f: &Frame| (f.to, route_port(&f.bytes, profile));
        let candidate = route(&self.in_flight[start]);
        self.in_flight
            .iter()
            .position(|f| route(f) == candidate)
            .unwrap_or(0)
    }

    /// Delivers one frame; false if none is in flight.
    pub(crate) fn step(&mut self) -> bool {
        self.collect();
        if self.in_flight.is_empty() {
            return false;
        }
        let i = self.pick();
        let Some(f) = self.in_flight.remove(i) else {
            return false;
        };
        let from = self.name(1 - f.to);
        self.delivered += 1;
        if self.nodes[f.to].has_peer(from) {
            if let Err(e) = self.nodes[f.to].handle_frame(from, &f.bytes, f.fds) {
                self.errors.push((f.to, e));
            }
        }
        // The sender's next frames reuse the buffer.
        self.nodes[1 - f.to].recycle(f.bytes);
        self.collect();
        true
    }

    /// Steps until nothing is in flight.
    pub(crate) fn run(&mut self) {
        for _ in 0..MAX_DELIVERIES {
            if !self.step() {
                return;
            }
        }
        panic!("the pair never went idle");
    }

    /// Steps until idle and requires that no node reported an error.
    pub(crate) fn run_clean(&mut self) {
        self.run();
        assert!(self.errors.is_empty(), "errors: {:?}", self.errors);
    }

    /// The socket between the two closes: in-flight frames are lost and
    /// both nodes see the peer lost.
    pub(crate) fn cut(&mut self) {
        self.collect();
        self.in_flight.clear();
        let (b, c) = (self.name(BROKER), self.name(CLIENT));
        self.nodes[BROKER].peer_lost(c);
        self.nodes[CLIENT].peer_lost(b);
        self.collect();
        self.in_flight.clear();
    }

    /// Takes the readable/peer-closed events of node `i` for `port`.
    pub(crate) fn take_events(&mut self, i: usize) -> Vec<NodeEvent> {
        self.collect();
        std::mem::take(&mut self.events[i])
    }

    pub(crate) fn read(&mut self, i: usize, port: PortRef) -> Vec<u8> {
        let (bytes, handles) = self.nodes[i]
            .read_message(port)
            .unwrap()
            .expect("a message");
        assert!(handles.is_empty(), "unexpected handles");
        bytes
    }

    /// Nothing left anywhere: no port, proxy, queued message, reserved
    /// attachment, fd held, frame pending or in flight.
    pub(crate) fn assert_clean(&mut self) {
        self.run();
        assert!(self.in_flight.is_empty());
        for i in 0..2 {
            let n = &self.nodes[i];
            assert_eq!(n.port_count(), 0, "node {i} ports");
            assert_eq!(n.proxy_count(), 0, "node {i} proxies");
            assert_eq!(n.queued_message_count(), 0, "node {i} queued");
            assert_eq!(n.reserved_attachment_count(), 0, "node {i} reserved");
            assert_eq!(n.pending_transmit_count(), 0, "node {i} transmits");
            assert_eq!(n.held_fd_count(self.name(1 - i)), 0, "node {i} fds");
            assert_eq!(n.queued_fd_count(), 0, "node {i} queued fds");
        }
    }
}

/// The §4.10 "never" rules that depend on the receiver's state, checked
/// on every frame as it leaves its sender: no `PortAccepted` to a port that
/// is not Buffering, no `ObserveProxyAck` to a port that is not a proxy, no
/// descriptor whose new port name already exists on the receiver. A port
/// already gone is fine (the receiver ignores the event).
fn check_against_receiver(receiver: &LegacyNode, bytes: &[u8], profile: Profile) {
    let Ok((frame, _)) = NodeFrame::decode(bytes) else {
        return;
    };
    let NodeChannelContent::Message(NodeMessage::EventMessage(body)) = frame.content else {
        return;
    };
    let Ok(event) = WireEvent::decode(body, profile.event_header_form()) else {
        return;
    };
    let state = |port| receiver.ports.port_state(port);
    let target = state(event.port_name);
    match &event.data {
        EventData::PortAccepted => assert!(
            matches!(target, None | Some(PortState::Buffering)),
            "PortAccepted to {} in state {target:?}",
            event.port_name
        ),
        EventData::ObserveProxyAck { .. } => assert!(
            matches!(target, None | Some(PortState::Proxying)),
            "ObserveProxyAck to {}, which is not a proxy ({target:?})",
            event.port_name
        ),
        EventData::UserMessage(m) => {
            for p in &m.ports {
                assert_eq!(state(p.name), None, "descriptor for existing {}", p.name);
            }
        }
        EventData::MergePort(m) => assert_eq!(
            state(m.new_port_name),
            None,
            "MergePort's new port {} exists",
            m.new_port_name
        ),
        _ => {}
    }
}

/// The 8 little-endian bytes of a numeric attachment name (§3.5).
pub(crate) fn numeric(name: u64) -> [u8; 8] {
    name.to_le_bytes()
}
