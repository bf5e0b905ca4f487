//! Oracle for the cargo-fuzz target `fuzz/fuzz_targets/ipcz_node_frames.rs`
//! (and for the unit tests that run it on the seeds under stable).
//!
//! Two [`Node`]s, the *target* and an honest *peer*, share one link over a
//! heap primary buffer (as in `tests/node_support`). The input mixes
//! arbitrary frames handed to the target as if the peer had sent them,
//! arbitrary writes into every region of the link's memory, and honest
//! traffic both ways. The oracle checks the node's contract:
//!
//! * nothing panics; bad input only ever produces a
//!   [`NodeError`](crate::node::NodeError), after which that link is gone
//!   and nothing else (a local portal pair stays connected); the oracle
//!   links the nodes again and carries on;
//! * every frame either node emits decodes with ipcz-wire's exact decode
//!   ([`Frame::decode`] consuming all of it, [`Message::decode_exact`] of
//!   its payload) and carries as many fds as its header says;
//! * once every portal is closed and the link lost, no router, sublink,
//!   parcel, link, fd or pending work is left in either node.
//!
//! Input layout: byte 0 is the mode (bit 0: the target is link side B
//! rather than A; bit 1: both nodes put parcel data in shared memory).
//! Then operations, each an opcode byte (its low three bits pick the
//! [`Op`], 7 being [`Op::Deliver`] too; bit 3 is a flag) and its operands;
//! input that ends inside an operation ends the run.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;

use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::frame::Frame;
use ipcz_wire::memory::primary;
use ipcz_wire::message::Message;
use ipcz_wire::types::{LinkSide, NodeName};
use mojo_wire_kit::{Guid, RegionMode, SharedMemory};

use crate::link::LinkParams;
use crate::node::{DriverBox, Node, NodeConfig, NodeEvent, ParcelDataPlacement};
use crate::router::{Handle, NodeLinkId, RouterId};
use crate::sim::SharedHeap;

/// Most fds the oracle passes with one arbitrary frame.
pub const MAX_FDS_PER_FRAME: usize = 8;

/// Most rounds of honest delivery per [`Op::Deliver`] (and at teardown):
/// enough for any exchange the operations before it started.
pub const MAX_DELIVERY_ROUNDS: usize = 64;

/// Most times the oracle links the nodes again after a dropped link.
pub const MAX_RELINKS: usize = 16;

/// Initial portals opened on each side of every link.
pub const INITIAL_PORTALS: usize = 2;

/// The target node's name.
pub const TARGET: NodeName = NodeName { high: 0xF0, low: 1 };

/// The peer node's name.
pub const PEER: NodeName = NodeName { high: 0xF0, low: 2 };

/// The operations of an input (the low three bits of the opcode byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// `u16` LE length, that many frame bytes, one byte of fd count (modulo
    /// [`MAX_FDS_PER_FRAME`] + 1): the target handles the frame.
    Frame = 0,
    /// Region index byte (modulo the link's regions: the primary buffer,
    /// then block buffers in creation order), `u32` LE offset (modulo the
    /// region size), length byte, that many bytes: written into the region.
    Scribble = 1,
    /// Portal index byte, length byte, that many data bytes: the peer puts
    /// a parcel (with a boxed fd when opcode bit 3 is set).
    PeerPut = 2,
    /// As [`Op::PeerPut`], on the target.
    TargetPut = 3,
    /// Portal index byte: the target takes a parcel (closing any portal in it).
    TargetGet = 4,
    /// Portal index byte: closes that portal (the peer's when opcode bit 3
    /// is set, else the target's).
    Close = 5,
    /// Delivers the honest frames both ways until idle.
    Deliver = 6,
}

/// The opcode byte of `op`.
pub const fn op(op: Op) -> u8 {
    op as u8
}

/// Runs `data` (see the module docs); `make_fd` makes the fds passed with
/// frames and boxes (the fuzz target opens `/dev/null`). Returns how many
/// times a node dropped the link.
pub fn node_frames(data: &[u8], make_fd: &mut dyn FnMut() -> OwnedFd) -> usize {
    let Some((&mode, rest)) = data.split_first() else {
        return 0;
    };
    let mut h = Harness::new(mode);
    h.link(make_fd);
    let mut input = Reader(rest);
    while let Some(code) = input.u8() {
        if h.step(code, &mut input, make_fd).is_none() || h.relinks > MAX_RELINKS {
            break;
        }
    }
    h.teardown(make_fd)
}

/// The captured frames the peer sends after `actions` on a fresh link: a
/// helper for seeds whose [`Op::Frame`] records are real traffic.
fn peer_frames(mode: u8, actions: &[u8], make_fd: &mut dyn FnMut() -> OwnedFd) -> Vec<u8> {
    let mut h = Harness::new(mode);
    h.link(make_fd);
    let mut input = Reader(actions);
    while let Some(code) = input.u8() {
        let _ = h.step(code, &mut input, make_fd);
    }
    h.pump(make_fd);
    let mut out = Vec::new();
    for (bytes, fds) in h.to_target.drain(..) {
        out.push(op(Op::Frame));
        out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        out.extend_from_slice(&bytes);
        out.push(fds.len() as u8);
    }
    out
}

/// The seed inputs of the fuzz target: name and bytes, the same on every
/// call (`cargo xtask corpus` writes them to `fuzz/corpus/ipcz_node_frames/`).
pub fn seeds(make_fd: &mut dyn FnMut() -> OwnedFd) -> Vec<(&'static str, Vec<u8>)> {
    let put = |code: u8, portal: u8, data: &[u8]| {
        let mut out = vec![code, portal, data.len() as u8];
        out.extend_from_slice(data);
        out
    };
    let inline = [
        vec![0u8],
        peer_frames(0, &put(2, 1, b"hello"), make_fd),
        vec![4, 1],
    ]
    .concat();
    let boxed = [
        vec![1u8],
        peer_frames(1, &put(2 | 8, 1, b"with an fd"), make_fd),
        vec![4, 1],
    ]
    .concat();
    let shared = [
        vec![2u8],
        put(3, 1, &[0x5a; 96]),
        put(2, 1, &[0xa5; 200]),
        vec![6],
        // The primary buffer's first fragment words, scribbled.
        vec![1, 0, 0x00, 0x10, 0, 0, 8],
        vec![0xff; 8],
        vec![4, 1, 6],
    ]
    .concat();
    let closing = [
        vec![3u8],
        put(3, 0, b"a"),
        put(2, 1, b"b"),
        vec![6, 5, 1, 6, 5 | 8, 0, 6, 4, 0],
    ]
    .concat();
    vec![
        ("inline_parcel", inline),
        ("boxed_fd_parcel", boxed),
        ("shared_memory_parcels_scribbled", shared),
        ("traffic_and_closure", closing),
    ]
}

/// The operands of an input, taken from the front.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
    }
    fn u32(&mut self) -> Option<u32> {
        let mut word = [0; 4];
        word.copy_from_slice(self.take(4)?);
        Some(u32::from_le_bytes(word))
    }
}

/// A frame in flight, with its fds.
type Flight = (Vec<u8>, Vec<OwnedFd>);

/// Which node.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    Target,
    Peer,
}

struct Harness {
    target: Node<SharedHeap>,
    peer: Node<SharedHeap>,
    /// The target is link side A (initializes the primary buffer).
    target_is_a: bool,
    /// The current link's ids on each node; `None` once a node dropped it.
    target_link: Option<NodeLinkId>,
    peer_link: Option<NodeLinkId>,
    /// The current link's memory: primary buffer first.
    regions: Vec<SharedHeap>,
    /// Block buffers by GUID, for the other node's MapBlockBuffer.
    by_guid: BTreeMap<Guid, SharedHeap>,
    next_guid: u64,
    to_target: VecDeque<Flight>,
    to_peer: VecDeque<Flight>,
    target_portals: Vec<RouterId>,
    peer_portals: Vec<RouterId>,
    /// A route with both ends on the target: a dropped link must not touch
    /// it. `None` once teardown has closed it (after checking it one last
    /// time), since the final deliveries may still drop the link.
    local_pair: Option<(RouterId, RouterId)>,
    drops: usize,
    relinks: usize,
}

impl Harness {
    fn new(mode: u8) -> Self {
        let placement = if mode & 2 == 0 {
            ParcelDataPlacement::Inline
        } else {
            ParcelDataPlacement::SharedMemory
        };
        let config = NodeConfig {
            parcel_data: placement,
            ..NodeConfig::default()
        };
        let mut target = Node::new(TARGET, config);
        let local_pair = target.create_portal_pair();
        Self {
            target,
            peer: Node::new(PEER, config),
            target_is_a: mode & 1 == 0,
            target_link: None,
            peer_link: None,
            regions: Vec::new(),
            by_guid: BTreeMap::new(),
            next_guid: 1,
            to_target: VecDeque::new(),
            to_peer: VecDeque::new(),
            target_portals: Vec::new(),
            peer_portals: Vec::new(),
            local_pair: Some(local_pair),
            drops: 0,
            relinks: 0,
        }
    }

    /// A fresh link over a fresh primary buffer, with its initial portals.
    fn link(&mut self, make_fd: &mut dyn FnMut() -> OwnedFd) {
        let primary = SharedHeap::new(primary::SIZE);
        let (target_params, peer_params) = if self.target_is_a {
            (
                LinkParams::new(TARGET, PEER, LinkSide::A, primary.clone())
                    .initializing_primary_buffer(),
                LinkParams::new(PEER, TARGET, LinkSide::B, primary.clone()),
            )
        } else {
            (
                LinkParams::new(TARGET, PEER, LinkSide::B, primary.clone()),
                LinkParams::new(PEER, TARGET, LinkSide::A, primary.clone())
                    .initializing_primary_buffer(),
            )
        };
        // The initializing side must go first.
        let (t, p) = if self.target_is_a {
            let t = self.target.add_link(target_params);
            (t, self.peer.add_link(peer_params))
        } else {
            let p = self.peer.add_link(peer_params);
            (self.target.add_link(target_params), p)
        };
        let t = t.expect("the target accepts a fresh link");
        let p = p.expect("the peer accepts a fresh link");
        self.regions = vec![primary];
        self.by_guid.clear();
        self.to_target.clear();
        self.to_peer.clear();
        let ours = self
            .target
            .open_initial_portals(t, INITIAL_PORTALS, INITIAL_PORTALS);
        let theirs = self
            .peer
            .open_initial_portals(p, INITIAL_PORTALS, INITIAL_PORTALS);
        self.target_portals
            .extend(ours.expect("initial portals of a fresh link"));
        self.peer_portals
            .extend(theirs.expect("initial portals of a fresh link"));
        self.target_link = Some(t);
        self.peer_link = Some(p);
        self.pump(make_fd);
    }

    /// One operation; `None` if the input ended inside it.
    fn step(
        &mut self,
        code: u8,
        input: &mut Reader<'_>,
        make_fd: &mut dyn FnMut() -> OwnedFd,
    ) -> Option<()> {
        match code & 7 {
            0 => {
                let len = usize::from(input.u16()?);
                let bytes = input.take(len.min(input.0.len()))?;
                let count = usize::from(input.u8().unwrap_or(0)) % (MAX_FDS_PER_FRAME + 1);
                let fds = (0..count).map(|_| make_fd()).collect();
                self.deliver(Who::Target, bytes, fds, make_fd);
            }
            1 => {
                let index = usize::from(input.u8()?);
                let offset = input.u32()? as usize;
                let len = usize::from(input.u8()?);
                let bytes = input.take(len)?;
                if let Some(region) = self.regions.get(index % self.regions.len().max(1)) {
                    let at = offset % region.size();
                    let end = (at + bytes.len()).min(region.size());
                    let _ = region.write(at, bytes.get(..end - at).unwrap_or_default());
                }
            }
            2 | 3 => {
                let who = if code & 7 == 2 {
                    Who::Peer
                } else {
                    Who::Target
                };
                let index = usize::from(input.u8()?);
                let len = usize::from(input.u8()?);
                let data = input.take(len)?.to_vec();
                let handles = if code & 8 != 0 {
                    vec![Handle::Object(fd_box(make_fd))]
                } else {
                    Vec::new()
                };
                let (node, portals) = self.side(who);
                if let Some(&portal) = portals.get(index % portals.len().max(1)) {
                    let _ = node.put(portal, data, handles);
                }
            }
            4 => {
                let index = usize::from(input.u8()?);
                let portals = &self.target_portals;
                if let Some(&portal) = portals.get(index % portals.len().max(1)) {
                    self.take_parcel(portal);
                }
            }
            5 => {
                let who = if code & 8 != 0 {
                    Who::Peer
                } else {
                    Who::Target
                };
                let index = usize::from(input.u8()?);
                let (node, portals) = self.side(who);
                if let Some(&portal) = portals.get(index % portals.len().max(1)) {
                    let _ = node.close(portal);
                }
            }
            _ => self.deliver_all(make_fd),
        }
        self.pump(make_fd);
        if self.target_link.is_none() && self.peer_link.is_none() {
            self.relinks += 1;
            self.link(make_fd);
        }
        Some(())
    }

    fn side(&mut self, who: Who) -> (&mut Node<SharedHeap>, &[RouterId]) {
        match who {
            Who::Target => (&mut self.target, &self.target_portals),
            Who::Peer => (&mut self.peer, &self.peer_portals),
        }
    }

    /// The target takes one parcel from `portal`; portals in it are closed.
    fn take_parcel(&mut self, portal: RouterId) -> bool {
        let Ok(Some(parcel)) = self.target.get(portal) else {
            return false;
        };
        for handle in parcel.handles {
            if let Handle::Portal(inner) = handle {
                self.drain_and_close(Who::Target, inner);
            }
        }
        true
    }

    /// Takes every parcel of `portal` (closing portals in them), then closes it.
    fn drain_and_close(&mut self, who: Who, portal: RouterId) {
        let mut work = vec![portal];
        while let Some(p) = work.pop() {
            let node = match who {
                Who::Target => &mut self.target,
                Who::Peer => &mut self.peer,
            };
            while let Ok(Some(parcel)) = node.get(p) {
                for handle in parcel.handles {
                    if let Handle::Portal(inner) = handle {
                        work.push(inner);
                    }
                }
            }
            let _ = node.close(p);
        }
    }

    /// `bytes` arrive at `who` on its current link; an error must drop that
    /// link and nothing else.
    fn deliver(
        &mut self,
        who: Who,
        bytes: &[u8],
        fds: Vec<OwnedFd>,
        make_fd: &mut dyn FnMut() -> OwnedFd,
    ) {
        let (node, link) = match who {
            Who::Target => (&mut self.target, self.target_link),
            Who::Peer => (&mut self.peer, self.peer_link),
        };
        let Some(link) = link else {
            return;
        };
        if node.handle_frame(link, bytes, fds).is_err() {
            assert!(node.link(link).is_none(), "an error drops the link");
            if let Some((local, _)) = self.local_pair {
                let status = self.target.status(local);
                assert!(
                    status.is_ok_and(|s| !s.disconnected && !s.dead),
                    "an error on a link breaks a route that does not use it"
                );
            }
        }
        self.pump(make_fd);
    }

    /// Honest delivery both ways until nothing moves.
    fn deliver_all(&mut self, make_fd: &mut dyn FnMut() -> OwnedFd) {
        for _ in 0..MAX_DELIVERY_ROUNDS {
            self.pump(make_fd);
            if self.to_target.is_empty() && self.to_peer.is_empty() {
                return;
            }
            while let Some((bytes, fds)) = self.to_target.pop_front() {
                self.deliver(Who::Target, &bytes, fds, make_fd);
            }
            while let Some((bytes, fds)) = self.to_peer.pop_front() {
                self.deliver(Who::Peer, &bytes, fds, make_fd);
            }
        }
    }

    /// Takes every frame and event out of both nodes, checking each frame
    /// and playing the platform for each event.
    fn pump(&mut self, make_fd: &mut dyn FnMut() -> OwnedFd) {
        loop {
            let mut any = false;
            for who in [Who::Target, Who::Peer] {
                while let Some(t) = self.node(who).poll_transmit() {
                    any = true;
                    check_frame(&t.bytes, t.fds.len());
                    let current = match who {
                        Who::Target => self.target_link,
                        Who::Peer => self.peer_link,
                    };
                    if current == Some(t.link) {
                        let queue = match who {
                            Who::Target => &mut self.to_peer,
                            Who::Peer => &mut self.to_target,
                        };
                        queue.push_back((t.bytes.clone(), t.fds));
                    }
                    self.node(who).recycle(t.bytes);
                }
                while let Some(event) = self.node(who).poll_event() {
                    any = true;
                    self.handle_event(who, event, make_fd);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn node(&mut self, who: Who) -> &mut Node<SharedHeap> {
        match who {
            Who::Target => &mut self.target,
            Who::Peer => &mut self.peer,
        }
    }

    fn handle_event(&mut self, who: Who, event: NodeEvent, make_fd: &mut dyn FnMut() -> OwnedFd) {
        match event {
            NodeEvent::LinkDropped { link, .. } => {
                let (mine, other, other_link) = match who {
                    Who::Target => (self.target_link, &mut self.peer, &mut self.peer_link),
                    Who::Peer => (self.peer_link, &mut self.target, &mut self.target_link),
                };
                if mine == Some(link) {
                    self.drops += 1;
                    // The transport closes: the other end learns it too.
                    if let Some(l) = other_link.take() {
                        other.link_lost(l);
                    }
                    match who {
                        Who::Target => self.target_link = None,
                        Who::Peer => self.peer_link = None,
                    }
                }
            }
            NodeEvent::CreateBlockBuffer {
                link,
                block_size,
                buffer_size,
                ..
            } => {
                let guid = Guid {
                    high: 0x5eed,
                    low: self.next_guid,
                };
                self.next_guid += 1;
                let region = SharedHeap::new(buffer_size);
                let object = DriverObject::SharedBuffer(SharedBuffer {
                    buffer_size: buffer_size as u32,
                    mode: RegionMode::Unsafe,
                    guid,
                });
                let buffer = DriverBox::new(object, vec![make_fd()]);
                let node = self.node(who);
                match buffer {
                    Ok(buffer) => {
                        self.by_guid.insert(guid, region.clone());
                        self.regions.push(region.clone());
                        let node = self.node(who);
                        let _ = node.provide_block_buffer(link, block_size, region, buffer);
                    }
                    Err(_) => node.block_buffer_failed(link, block_size),
                }
            }
            NodeEvent::MapBlockBuffer {
                link, id, buffer, ..
            } => {
                let region = match buffer.object() {
                    DriverObject::SharedBuffer(b) => self.by_guid.get(&b.guid).cloned(),
                    _ => None,
                };
                let node = self.node(who);
                match region {
                    Some(region) => {
                        let _ = node.block_buffer_mapped(link, id, region);
                    }
                    None => node.block_buffer_unmappable(link, id),
                }
            }
            NodeEvent::NeedNodeLink { node } => self.node(who).introduction_failed(node),
            // Neither node is a broker here, so no introduction can be made.
            NodeEvent::CreateIntroduction { requester, target } => {
                self.node(who).introduction_impossible(requester, target)
            }
            NodeEvent::Readable { .. }
            | NodeEvent::PeerClosed { .. }
            | NodeEvent::MemoryRequested { .. }
            | NodeEvent::IntroductionOffered { .. } => {}
        }
    }

    /// Closes everything, loses the link, and asserts nothing is left.
    fn teardown(mut self, make_fd: &mut dyn FnMut() -> OwnedFd) -> usize {
        let (a, b) = self.local_pair.take().expect("teardown runs once");
        assert!(self.target.put(a, b"local".to_vec(), Vec::new()).is_ok());
        assert!(self.take_parcel(b), "the local route still works");
        for portal in std::mem::take(&mut self.target_portals)
            .into_iter()
            .chain([a, b])
        {
            self.drain_and_close(Who::Target, portal);
        }
        for portal in std::mem::take(&mut self.peer_portals) {
            self.drain_and_close(Who::Peer, portal);
        }
        self.deliver_all(make_fd);
        if let Some(l) = self.target_link.take() {
            self.target.link_lost(l);
        }
        if let Some(l) = self.peer_link.take() {
            self.peer.link_lost(l);
        }
        self.pump(make_fd);
        self.to_target.clear();
        self.to_peer.clear();
        for (who, node) in [("target", &self.target), ("peer", &self.peer)] {
            assert_eq!(node.router_count(), 0, "{who}: routers left");
            assert_eq!(node.sublink_count(), 0, "{who}: sublinks left");
            assert_eq!(node.queued_parcel_count(), 0, "{who}: parcels left");
            assert_eq!(node.link_count(), 0, "{who}: links left");
            assert_eq!(node.held_parcel_count(), 0, "{who}: held parcels left");
            assert_eq!(node.received_fds_alive(), 0, "{who}: fds left");
            assert!(!node.has_pending(), "{who}: pending work left");
        }
        self.drops
    }
}

/// A box carrying one fd (a TransmissiblePlatformHandle).
fn fd_box(make_fd: &mut dyn FnMut() -> OwnedFd) -> DriverBox {
    DriverBox::new(DriverObject::TransmissiblePlatformHandle, vec![make_fd()])
        .expect("one fd is a valid TransmissiblePlatformHandle")
}

/// An emitted frame is exactly one frame, its payload exactly one message,
/// and it carries the fds its header announces.
fn check_frame(bytes: &[u8], fds: usize) {
    let (frame, used) = Frame::decode(bytes).expect("an emitted frame decodes");
    assert_eq!(used, bytes.len(), "an emitted frame is one whole frame");
    assert_eq!(usize::from(frame.header.num_handles), fds, "fds of a frame");
    if let Err(e) = Message::decode_exact(frame.payload, fds) {
        panic!("an emitted message decodes exactly: {e:?}");
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use mojo_wire_kit::{RandomSource, SeededRandom};

    use super::*;

    fn dev_null() -> OwnedFd {
        OwnedFd::from(File::open("/dev/null").expect("/dev/null"))
    }

    #[test]
    fn seeds_are_accepted() {
        for (name, seed) in seeds(&mut dev_null) {
            assert_eq!(
                node_frames(&seed, &mut dev_null),
                0,
                "seed {name} drops the link"
            );
        }
    }

    #[test]
    fn seeds_are_the_same_on_every_call() {
        assert_eq!(seeds(&mut dev_null), seeds(&mut dev_null));
    }

    #[test]
    fn captured_frames_are_real_traffic() {
        let (_, inline) = seeds(&mut dev_null).remove(0);
        assert_eq!(inline.get(1), Some(&op(Op::Frame)));
        assert!(inline.len() > 40, "a captured AcceptParcel");
    }

    /// The captured frame of the first seed is the peer's parcel, as it
    /// arrives at the target.
    #[test]
    fn captured_parcel_arrives() {
        let (_, inline) = seeds(&mut dev_null).remove(0);
        let mut h = Harness::new(inline[0]);
        h.link(&mut dev_null);
        let frames = inline.get(1..inline.len() - 2).expect("frames, then a get");
        let mut input = Reader(frames);
        while let Some(code) = input.u8() {
            assert!(h.step(code, &mut input, &mut dev_null).is_some());
        }
        assert_eq!(h.drops, 0);
        let parcel = h.target.get(h.target_portals[1]).expect("portal");
        assert_eq!(parcel.expect("a parcel").data, b"hello");
    }

    /// The seeds, each mutated at every byte.
    #[test]
    fn oracle_holds_on_mutated_seeds() {
        let mut dropped = 0;
        for (_, seed) in seeds(&mut dev_null) {
            for at in 0..seed.len() {
                for flip in [1u8, 0x80] {
                    let mut input = seed.clone();
                    input[at] ^= flip;
                    dropped += node_frames(&input, &mut dev_null);
                }
            }
        }
        assert!(dropped > 0, "some mutation must be refused");
    }

    #[test]
    fn oracle_holds_on_arbitrary_bytes() {
        let mut rng = SeededRandom::new(9);
        for _ in 0..200 {
            let mut input = vec![0u8; 128];
            rng.fill(&mut input);
            node_frames(&input, &mut dev_null);
        }
    }
}
