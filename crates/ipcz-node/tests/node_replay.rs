//! Replay: every ipcz frame a real Chrome host sent to Chromium's C++
//! mojo_proxy (`host_proxy` recordings of `shared/vectors`, socket-only and
//! with shared-memory snapshots), or to a real Mojo+ipcz client with no
//! proxy (the `direct_ipcz*` `host_client` recordings), is fed to a
//! [`Node`] playing that non-broker, after a link built directly from the
//! recorded handshake messages: as the proxy, it keeps its initial portals;
//! as the client, it merges them with local pipes as MojoIpcz does
//! (`open_merged_initial_portals`), so its own bypass requests are the ones
//! the host's frames answer. No frame may be a protocol error.
//!
//! With the `shm/` recordings the link's buffers are the recorded regions,
//! replayed up to each frame, so parcel data is read from Chrome's own
//! fragments. The socket-only recordings carry no memory: before a frame
//! naming a fragment is fed, the test writes a valid FragmentHeader there,
//! as the host did (the bytes themselves are unknown).

mod node_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use ipcz_node::link::LinkParams;
use ipcz_node::memory::{MemoryOptions, NodeLinkMemory, Resolved, write_parcel_data};
use ipcz_node::node::{Node, NodeConfig, NodeEvent};
use ipcz_node::router::{NodeLinkId, ProxyPolicy, RouterConfig, RouterId};
use ipcz_node::sim::SharedHeap;
use ipcz_wire::frame::Frame;
use ipcz_wire::memory::primary;
use ipcz_wire::message::{DecodeOptions, Message};
use ipcz_wire::messages::Body;
use ipcz_wire::types::{DriverObjectIndex, FragmentDescriptor, LinkSide, NodeName};
use mojo_transcript::Direction;
use mojo_transcript::shm::{Line, apply, parse};
use mojo_wire_kit::SharedMemory;
use node_support::fd;

/// One socket stream (channel, direction) being deframed.
#[derive(Default)]
struct Stream {
    bytes: Vec<u8>,
    pos: usize,
    /// (stream offset where a chunk starts, line index of that chunk).
    chunk_starts: Vec<(usize, usize)>,
}

impl Stream {
    /// The next whole frame and the line of the chunk holding its first byte.
    fn next_frame(&mut self) -> Option<(Vec<u8>, usize)> {
        let rest = self.bytes.get(self.pos..)?;
        let len = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?) as usize;
        if len < 8 || rest.len() < len {
            return None;
        }
        let frame = rest[..len].to_vec();
        let line = self
            .chunk_starts
            .iter()
            .rev()
            .find(|(start, _)| *start <= self.pos)
            .map_or(0, |(_, l)| *l);
        self.pos += len;
        Some((frame, line))
    }
}

struct Replay {
    node: Node<SharedHeap>,
    /// Link per channel.
    links: BTreeMap<u32, NodeLinkId>,
    portals: Vec<RouterId>,
    /// Regions by shm id.
    regions: HashMap<usize, SharedHeap>,
    /// (line of the carrying chunk, fd index in it) -> shm id.
    maps: HashMap<(usize, usize), usize>,
    /// Initial portals the proxy announced in its own greeting.
    proxy_portals: usize,
    frames: usize,
    fragments_read: usize,
    with_memory: bool,
    /// Which side B the node plays.
    side: SideB,
    /// Initial sublinks on which the host asked for a bypass (channel 0).
    host_bypassed: BTreeSet<u64>,
    /// BypassPeerWithLink messages the node sent.
    bypasses_sent: usize,
    /// (channel, sublink) -> the link's state and the host's side of it,
    /// for links made after connecting.
    link_states: HashMap<(u32, u64), (FragmentDescriptor, LinkSide)>,
    /// The host's view of each link's memory (socket-only recordings).
    host_memory: BTreeMap<u32, NodeLinkMemory<SharedHeap>>,
}

impl Replay {
    fn region_for(
        &mut self,
        line: usize,
        message: &Message<'_>,
        index: DriverObjectIndex,
    ) -> SharedHeap {
        let first_fd = index
            .get()
            .and_then(|i| message.driver_objects.get(i))
            .map_or(0, |o| usize::from(o.fds.first));
        if let Some(id) = self.maps.get(&(line, first_fd)) {
            return self.regions[id].clone();
        }
        // No snapshot: a fresh buffer, initialized as the broker does.
        let region = SharedHeap::new(primary::SIZE);
        NodeLinkMemory::initialize_primary_buffer(&region).unwrap();
        region
    }

    /// Plays the host's part of a fragment the recording has no bytes for:
    /// the host's view of the memory allocates that very block (taking
    /// every free block before it) and writes a FragmentHeader into it.
    fn emulate_host_fragment(&mut self, chan: u32, fragment: FragmentDescriptor) {
        self.emulate_host_block(chan, fragment);
        let host = &self.host_memory[&chan];
        write_parcel_data(host.primary(), fragment, b"?").unwrap();
    }

    /// A RouterLinkState the host allocated for a new link: its block and
    /// references (the host's and ours), as AllocateRouterLinkState leaves them.
    fn emulate_host_link_state(&mut self, chan: u32, state: FragmentDescriptor) {
        if self.emulate_host_block(chan, state) {
            let host = &self.host_memory[&chan];
            if let Ok(Resolved::Ready(s)) = host.router_link_state(state) {
                s.initialize().unwrap();
                s.add_ref().unwrap();
            }
        }
    }

    /// Makes the host's view allocate `fragment`'s block if it is free;
    /// whether it was.
    fn emulate_host_block(&mut self, chan: u32, fragment: FragmentDescriptor) -> bool {
        let host = self.host_memory.get_mut(&chan).unwrap();
        let in_free_list = host.block_allocators().any(|a| {
            a.buffer() == fragment.buffer_id
                && a.block_size() == fragment.size
                && a.free_list(host.buffer(a.buffer()).unwrap())
                    .unwrap()
                    .iter()
                    .any(|b| a.block_offset(*b) == Some(fragment.offset as usize))
        });
        if in_free_list {
            let mut others = Vec::new();
            loop {
                let got = host
                    .allocate_fragment(fragment.size as usize)
                    .unwrap()
                    .expect("the block is free");
                if got == fragment {
                    break;
                }
                others.push(got);
            }
            for f in others {
                host.free_fragment(f).unwrap();
            }
        }
        in_free_list
    }

    /// Drops what the node sends, noting the links it offers the host.
    fn drain_transmits(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            if let Ok((f, _)) = Frame::decode(&t.bytes)
                && let Ok(m) = Message::decode(f.payload, usize::from(f.header.num_handles))
                && let Body::BypassPeerWithLink(b) = &m.body
                && let Some(chan) = self
                    .links
                    .iter()
                    .find(|(_, l)| **l == t.link)
                    .map(|(c, _)| *c)
            {
                // The host is side B of a link we offer.
                self.bypasses_sent += 1;
                self.link_states.insert(
                    (chan, b.new_sublink.0),
                    (b.new_link_state_fragment, LinkSide::B),
                );
            }
            self.node.recycle(t.bytes);
        }
    }

    /// Plays the host's part of the link states of the client role in a
    /// recording without memory: the host's side of a link it offered is
    /// A; and a FlushRouter from it means it marked its side stable
    /// (FlushOtherSideIfWaiting), which the lock the client then takes
    /// needs.
    fn emulate_host_stability(&mut self, chan: u32, message: &Message<'_>) {
        // The host took the sublinks it names from the shared counter.
        let named: Vec<u64> = match &message.body {
            Body::BypassPeerWithLink(b) => vec![b.new_sublink.0],
            Body::AcceptBypassLink(b) => vec![b.new_sublink.0],
            Body::AcceptParcel(p) => p
                .new_routers
                .iter()
                .flat_map(|d| [d.new_sublink.0, d.new_decaying_sublink.0])
                .collect(),
            _ => Vec::new(),
        };
        let host = &self.host_memory[&chan];
        for n in named {
            let next = host.allocate_sublink_ids(0).unwrap().0;
            if n >= next {
                host.allocate_sublink_ids(n + 1 - next).unwrap();
            }
        }
        match &message.body {
            Body::BypassPeerWithLink(b) => {
                self.link_states.insert(
                    (chan, b.new_sublink.0),
                    (b.new_link_state_fragment, LinkSide::A),
                );
            }
            Body::FlushRouter(f) => {
                let Some(&(state, side)) = self.link_states.get(&(chan, f.sublink.0)) else {
                    return;
                };
                let host = &self.host_memory[&chan];
                if let Ok(Resolved::Ready(s)) = host.router_link_state(state) {
                    s.set_side_stable(side).unwrap();
                }
            }
            _ => {}
        }
    }

    fn connect(&mut self, chan: u32, params: LinkParams<SharedHeap>, theirs: usize) {
        let host =
            NodeLinkMemory::new(params.primary_buffer.clone(), MemoryOptions::default()).unwrap();
        if self.side == SideB::Client {
            // The host connected its initial portals before it sent its
            // greeting, marking its side of their links stable, as a real
            // broker does; the client's bypass requests lock those links.
            // Where the host's own bypass request came first, it had
            // locked the link before the client tried.
            for i in 0..theirs.min(self.proxy_portals) {
                let state = host.initial_router_link_state(i).unwrap();
                state.set_side_stable(LinkSide::A).unwrap();
                if self.host_bypassed.contains(&(i as u64)) {
                    state.set_side_stable(LinkSide::B).unwrap();
                    assert!(state.try_lock(LinkSide::A).unwrap());
                }
            }
        }
        self.host_memory.insert(chan, host);
        let link = self.node.add_link(params).unwrap();
        let portals = match self.side {
            SideB::Proxy => self
                .node
                .open_initial_portals(link, self.proxy_portals, theirs),
            SideB::Client => {
                self.node
                    .open_merged_initial_portals(link, self.proxy_portals, theirs)
            }
        }
        .unwrap();
        // Chrome's proxy closes portal 0 at once (§4.5).
        self.node.close(portals[0]).unwrap();
        self.portals.extend(&portals[1..]);
        self.links.insert(chan, link);
    }

    fn handle(&mut self, path: &Path, chan: u32, line: usize, bytes: &[u8]) {
        let (frame, _) = Frame::decode(bytes).unwrap();
        let options = DecodeOptions {
            detect_descriptor_format: true,
            ..DecodeOptions::default()
        };
        let num_fds = usize::from(frame.header.num_handles);
        let message = Message::decode_with(frame.payload, num_fds, options)
            .unwrap_or_else(|e| panic!("{}: frame does not decode: {e}", path.display()));
        match &message.body {
            Body::ConnectFromBrokerToNonBroker(c) => {
                let buffer = self.region_for(line, &message, c.buffer);
                let params = LinkParams::new(c.receiver_name, c.broker_name, LinkSide::B, buffer);
                self.connect(chan, params, c.num_initial_portals as usize);
                return;
            }
            Body::ConnectToReferredNonBroker(c) => {
                // The proxy's link to its referrer (the host) is the socket
                // passed in the message: channel 1 of the recording.
                let buffer = self.region_for(line, &message, c.referrer_link_buffer);
                let params = LinkParams::new(c.name, c.referrer_name, LinkSide::B, buffer);
                self.connect(1, params, c.num_initial_portals as usize);
                return;
            }
            _ => {}
        }
        let link = *self
            .links
            .get(&chan)
            .unwrap_or_else(|| panic!("{}: frame before the handshake", path.display()));
        if let Body::AcceptParcel(p) = &message.body
            && !p.parcel_fragment.is_null()
        {
            self.fragments_read += 1;
            if !self.with_memory {
                self.emulate_host_fragment(chan, p.parcel_fragment);
            }
        }
        if !self.with_memory && self.side == SideB::Client {
            self.emulate_host_stability(chan, &message);
        }
        if !self.with_memory {
            let states: Vec<FragmentDescriptor> = match &message.body {
                Body::BypassPeerWithLink(b) => vec![b.new_link_state_fragment],
                Body::AcceptBypassLink(b) => vec![b.new_link_state_fragment],
                Body::AcceptParcel(p) => p
                    .new_routers
                    .iter()
                    .map(|d| d.new_link_state_fragment)
                    .filter(|f| !f.is_null())
                    .collect(),
                _ => Vec::new(),
            };
            for state in states {
                self.emulate_host_link_state(chan, state);
            }
        }
        let fds = (0..num_fds).map(|_| fd()).collect();
        self.frames += 1;
        if let Err(e) = self.node.handle_frame(link, bytes, fds) {
            panic!(
                "{}: frame {} ({}) on channel {chan}: {e}",
                path.display(),
                self.frames,
                message.body.name()
            );
        }
        self.drain_transmits();
        while let Some(event) = self.node.poll_event() {
            if let NodeEvent::LinkDropped { error, .. } = event {
                panic!("{}: link dropped: {error}", path.display());
            }
        }
    }
}

/// Which side B of a recording the node plays, if any: the proxy of a
/// `host_proxy` link, or the Mojo+ipcz client of a direct ipcz
/// `host_client` link (a non-broker to the host's broker too). The
/// `direct_legacy` baselines speak the legacy protocol.
fn side_b(name: &str) -> Option<SideB> {
    let direct_ipcz = [
        "direct_ipcz-",
        "shm_direct_ipcz-",
        "shm_datapipe_direct_ipcz-",
    ];
    if name.ends_with("-host_proxy.jsonl") {
        Some(SideB::Proxy)
    } else if name.ends_with("-host_client.jsonl")
        && direct_ipcz.iter().any(|p| name.starts_with(p))
    {
        Some(SideB::Client)
    } else {
        None
    }
}

/// The role of the recorded side B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SideB {
    /// Chromium's C++ proxy: never proxies, keeps its initial portals.
    Proxy,
    /// A MojoIpcz client: merges each initial portal with a local pipe, so
    /// its proxy there asks the host for a bypass right away.
    Client,
}

fn replayed_files() -> Vec<PathBuf> {
    let dir = mojo_transcript::testing::vectors();
    let mut files = Vec::new();
    for sub in ["cros", "desktop", "shm/cros", "shm/desktop"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for e in entries.flatten() {
                let p = e.path();
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                if name.is_some_and(|n| side_b(&n).is_some()) {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    files
}

/// The sublinks of channel 0 on which the host sent BypassPeerWithLink
/// before the client did on the same sublink: there the host won the
/// race for the link's lock.
fn host_bypassed_initial_sublinks(lines: &[Line]) -> BTreeSet<u64> {
    let mut streams: BTreeMap<Direction, Stream> = BTreeMap::new();
    let mut firsts: BTreeMap<u64, Direction> = BTreeMap::new();
    for line in lines {
        let Line::Chunk {
            chan: 0,
            dir,
            bytes,
            ..
        } = line
        else {
            continue;
        };
        let s = streams.entry(*dir).or_default();
        s.bytes.extend_from_slice(bytes);
        while let Some((frame, _)) = s.next_frame() {
            let Ok((f, _)) = Frame::decode(&frame) else {
                continue;
            };
            let n = usize::from(f.header.num_handles);
            if let Ok(m) = Message::decode(f.payload, n)
                && let Body::BypassPeerWithLink(b) = m.body
            {
                firsts.entry(b.sublink.0).or_insert(*dir);
            }
        }
    }
    firsts
        .into_iter()
        .filter(|(_, d)| *d == Direction::AToB)
        .map(|(s, _)| s)
        .collect()
}

/// The proxy's own greeting: how many initial portals it announced.
fn proxy_portal_count(lines: &[Line]) -> usize {
    let mut stream = Stream::default();
    for line in lines {
        if let Line::Chunk {
            chan: 0,
            dir: Direction::BToA,
            bytes,
            ..
        } = line
        {
            stream.bytes.extend_from_slice(bytes);
            if let Some((frame, _)) = stream.next_frame() {
                let (f, _) = Frame::decode(&frame).unwrap();
                let m = Message::decode(f.payload, usize::from(f.header.num_handles)).unwrap();
                return match m.body {
                    Body::ConnectFromNonBrokerToBroker(c) => c.num_initial_portals as usize,
                    Body::ConnectToReferredBroker(c) => c.num_initial_portals as usize,
                    other => panic!("unexpected proxy greeting {}", other.name()),
                };
            }
        }
    }
    panic!("no proxy greeting")
}

fn replay(path: &Path) -> Replay {
    let text = std::fs::read_to_string(path).unwrap();
    let lines = parse(&text).unwrap();
    let mut maps = HashMap::new();
    let mut last_chunk = 0;
    for (i, line) in lines.iter().enumerate() {
        match line {
            Line::Chunk { .. } => last_chunk = i,
            Line::Map { shm, fd_index, .. } => {
                maps.insert((last_chunk, *fd_index), *shm);
            }
            Line::Diff { .. } => {}
        }
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let side = name.as_deref().and_then(side_b).expect("a replayed file");
    let config = match side {
        SideB::Proxy => NodeConfig {
            routers: RouterConfig {
                proxy_policy: ProxyPolicy::Never,
                ..RouterConfig::default()
            },
            ..NodeConfig::default()
        },
        SideB::Client => NodeConfig::default(),
    };
    let mut r = Replay {
        node: Node::new(NodeName { high: 0, low: 1 }, config),
        links: BTreeMap::new(),
        portals: Vec::new(),
        regions: HashMap::new(),
        with_memory: !maps.is_empty(),
        side,
        host_bypassed: host_bypassed_initial_sublinks(&lines),
        link_states: HashMap::new(),
        bypasses_sent: 0,
        maps,
        proxy_portals: proxy_portal_count(&lines),
        frames: 0,
        fragments_read: 0,
        host_memory: BTreeMap::new(),
    };
    let mut streams: BTreeMap<u32, Stream> = BTreeMap::new();
    let mut shadows: HashMap<usize, Vec<u8>> = HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        match line {
            Line::Map {
                shm, size, changes, ..
            } => {
                let shadow = shadows.entry(*shm).or_insert_with(|| vec![0; *size]);
                apply(shadow, changes);
                let region = r
                    .regions
                    .entry(*shm)
                    .or_insert_with(|| SharedHeap::new(*size))
                    .clone();
                region.write(0, shadow).unwrap();
            }
            Line::Diff { shm, changes } => {
                // The region becomes what the relay saw: diffs are against
                // its previous view, which knows nothing of our own writes.
                if let (Some(shadow), Some(region)) = (shadows.get_mut(shm), r.regions.get(shm)) {
                    apply(shadow, changes);
                    region.write(0, shadow).unwrap();
                }
            }
            Line::Chunk {
                chan,
                dir: Direction::AToB,
                bytes,
                ..
            } => {
                let s = streams.entry(*chan).or_default();
                s.chunk_starts.push((s.bytes.len(), i));
                s.bytes.extend_from_slice(bytes);
                // The map lines for this chunk's regions follow it: frames
                // are handled at the next line that is not a map.
            }
            Line::Chunk { .. } => {}
        }
        let next_is_map = matches!(lines.get(i + 1), Some(Line::Map { .. }));
        if !next_is_map {
            for (chan, s) in streams.iter_mut() {
                // A passed socket's traffic may be recorded before the
                // message that passed it: it waits for its link.
                if *chan != 0 && !r.links.contains_key(chan) {
                    continue;
                }
                while let Some((frame, line)) = s.next_frame() {
                    r.handle(path, *chan, line, &frame);
                }
            }
        }
    }
    r
}

#[test]
#[cfg_attr(
    mojo_vectors_missing,
    ignore = "needs shared/vectors or MOJO_VECTORS_DIR"
)]
fn every_host_to_proxy_frame_is_consumed_without_a_protocol_error() {
    let files = replayed_files();
    assert!(!files.is_empty(), "no host-proxy recordings in the vectors");
    let mut total_frames = 0;
    let mut total_fragments = 0;
    let mut with_memory = 0;
    let mut total_parcels = 0;
    for path in &files {
        let r = replay(path);
        assert!(r.frames > 0, "{}: no frames", path.display());
        if r.side == SideB::Client {
            // Its merged portal asked the host for a bypass, as the real
            // client did (the host's frames answer it).
            assert!(r.bypasses_sent > 0, "{}: no bypass request", path.display());
        }
        assert!(!r.links.is_empty());
        total_frames += r.frames;
        total_fragments += r.fragments_read;
        with_memory += usize::from(r.with_memory);
        // The node's state is sane: the link stands, the portals are
        // portals, and with real memory no parcel read from Chrome's
        // fragments is blank memory.
        let mut r = r;
        for p in r.portals.clone() {
            r.node.status(p).unwrap();
            while let Some(parcel) = r.node.get(p).unwrap() {
                total_parcels += 1;
                if r.with_memory {
                    assert!(
                        parcel.data.iter().any(|b| *b != 0),
                        "{}: parcel of {} bytes is all zeros",
                        path.display(),
                        parcel.data.len()
                    );
                }
            }
        }
    }
    eprintln!(
        "{} files ({with_memory} with memory), {total_frames} frames, {total_fragments} fragments, {total_parcels} parcels taken",
        files.len()
    );
    assert!(files.len() >= 30);
    assert!(total_fragments > 100);
    let clients = files
        .iter()
        .filter(|p| p.to_string_lossy().ends_with("-host_client.jsonl"))
        .count();
    // direct_ipcz and the two shm direct ipcz recordings, in both profiles.
    assert!(clients >= 6, "{clients} direct ipcz recordings");
}

#[test]
fn the_replayed_recordings_are_the_ipcz_ones_with_a_non_broker_side_b() {
    for (name, side) in [
        ("close-host_proxy.jsonl", Some(SideB::Proxy)),
        ("shm_close-host_proxy.jsonl", Some(SideB::Proxy)),
        ("direct_ipcz-host_client.jsonl", Some(SideB::Client)),
        // The client's application moves pipes to the host there: the host's
        // frames answer proxies this node (whose application does nothing)
        // never makes.
        ("direct_ipcz_c2h-host_client.jsonl", None),
        ("shm_direct_ipcz-host_client.jsonl", Some(SideB::Client)),
        (
            "shm_datapipe_direct_ipcz-host_client.jsonl",
            Some(SideB::Client),
        ),
        ("direct_legacy-host_client.jsonl", None),
        ("shm_datapipe_direct_legacy-host_client.jsonl", None),
        ("close-proxy_client.jsonl", None),
    ] {
        assert_eq!(side_b(name), side, "{name}");
    }
}
