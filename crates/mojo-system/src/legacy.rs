//! The legacy Mojo Core system: a [`BrokerSession`] (the process that
//! sends the invitation) or a [`ClientSession`] (the process that accepts
//! it) as a runtime [`Protocol`], and the two calls that join a process to
//! a legacy network: [`send_invitation`] (become the broker) and
//! [`accept_invitation`] (a non-broker client on an inherited socket).
//!
//! Whichever way the process joined, [`connect_isolated`] adds an isolated
//! connection (spec §3.7, Mojo's `OutgoingInvitation::SendIsolated` and
//! `IncomingInvitation::AcceptIsolated`): one pipe to a process of another
//! network, over a socket of its own. A process in no network yet starts as
//! a lone broker with [`standalone`].

mod isolated;

use std::collections::{HashMap, VecDeque};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use mojo_driver::{CloseReason, CoreRequest, Driver, LinkId, NewLinkError, ReceivedFds, Transmit};
use mojo_invitation::legacy::FdAccess;
use mojo_legacy_node::data_pipe::{DataPipeConsumer, DataPipeProducer, new_pipe_states};
use mojo_legacy_node::node::{DataPipeEnd, Handle as NodeHandle, SharedBuffer as NodeBuffer};
use mojo_legacy_node::ports::{OpError, names};
use mojo_legacy_node::session::{
    AttachmentName, BrokerConfig, BrokerSession, ClientConfig, ClientSession, Link, RegionFds,
    SessionError,
};
use mojo_legacy_node::{LegacyNode, node::ApiError, node::PortRef};
use mojo_legacy_wire::Profile;
use mojo_legacy_wire::user_message::DataPipeOptions;
use mojo_platform_channel::{
    Endpoint, FdAccessMode, Mapping, OsRandom, RegionMode, SharedMemoryRegion,
};
use mojo_wire_kit::{Guid, RandomSource};

use crate::runtime::local_region;
use crate::runtime::{
    ConnectError, Protocol, RealSystem, RegionObject, RegionSource, WireHandle, WireMessage,
};
use crate::two_phase::DataEndState;
use crate::{
    MessagePipe, MojoError, MojoResult, RegionAccessMode, SignalsState, data_pipe_capacity,
};

/// How long the client waits for the broker's handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The tag of the client's node-channel adoption request.
const NODE_CHANNEL_TAG: u64 = 1;

enum Session {
    Broker(Box<BrokerSession>),
    Client(Box<ClientSession>),
    /// A broker with no network: only isolated connections.
    Standalone(Box<LegacyNode>),
}

fn node_of(session: &mut Session) -> &mut LegacyNode {
    match session {
        Session::Broker(b) => b.node(),
        Session::Client(c) => c.node(),
        Session::Standalone(n) => n,
    }
}

/// A legacy session as a runtime [`Protocol`].
pub struct LegacyProtocol {
    session: Session,
    /// The wire profile of the session, and of isolated connections.
    profile: Profile,
    links: HashMap<LinkId, Link>,
    isolated: isolated::IsolatedLinks,
    /// Fds received per link and not yet claimed by a frame.
    fds: [VecDeque<OwnedFd>; 2],
    requests: VecDeque<CoreRequest>,
    region: Option<MojoResult<RegionObject>>,
    data_pipes: HashMap<u64, DataEnd>,
    next_data_id: u64,
}

/// A data pipe end held here: its state machine over a mapping of the
/// ring, its control port, and an fd of the ring to send it with.
enum DataEnd {
    Producer {
        sm: DataPipeProducer<Mapping>,
        control: PortRef,
        ring_fd: OwnedFd,
    },
    Consumer {
        sm: DataPipeConsumer<Mapping>,
        control: PortRef,
        ring_fd: OwnedFd,
    },
}

impl DataEnd {
    fn control(&self) -> PortRef {
        match self {
            Self::Producer { control, .. } | Self::Consumer { control, .. } => *control,
        }
    }
}

/// Maps a received ring fd (an unsafe-mode region of `capacity` bytes) by
/// the platform crate's ring policy ([`mojo_platform_channel::map_peer_ring`]:
/// mapped even unsealed, as libchrome does). The ring comes from the peer
/// node, this client's broker or the broker's side of a proxy: the process
/// that launched it, which could end it anyway.
fn map_ring(fd: &OwnedFd, capacity: u32, guid: Guid) -> MojoResult<Mapping> {
    let fd = fd.try_clone().map_err(|_| MojoError::ResourceExhausted)?;
    mojo_platform_channel::import_peer_ring(capacity as usize, u128::from(guid), vec![fd])
        .map_err(|_| MojoError::InvalidArgument)?
        .map()
        .map_err(|_| MojoError::ResourceExhausted)
}

fn slot(link: Link) -> usize {
    match link {
        Link::Bootstrap => 0,
        Link::NodeChannel => 1,
    }
}

fn probe(fd: BorrowedFd<'_>) -> Option<FdAccess> {
    match mojo_platform_channel::fd_access_mode(fd).ok()? {
        FdAccessMode::ReadOnly => Some(FdAccess::ReadOnly),
        FdAccessMode::WriteOnly => Some(FdAccess::WriteOnly),
        FdAccessMode::ReadWrite => Some(FdAccess::ReadWrite),
    }
}

fn attachment_names(names: &[Vec<u8>]) -> Result<Vec<AttachmentName>, ConnectError> {
    names
        .iter()
        .map(|n| {
            AttachmentName::from_bytes(n.clone())
                .ok_or_else(|| ConnectError::new("bad attachment name"))
        })
        .collect()
}

/// A node handle that needs no protocol state as a runtime handle (data
/// pipe ends go through `LegacyProtocol::receive_handle`; here they drop).
fn from_node(h: NodeHandle) -> Option<WireHandle<PortRef>> {
    Some(match h {
        NodeHandle::MessagePipe(p) => WireHandle::Pipe(p),
        NodeHandle::PlatformHandle(fd) => WireHandle::Platform(fd),
        NodeHandle::SharedBuffer(b) => {
            let (size, guid, mode) = (b.size(), u128::from(b.guid()), b.mode());
            let mut fds = b.into_fds().into_iter();
            let (rw, ro, mode) = match mode {
                RegionMode::Writable => (fds.next(), fds.next(), RegionAccessMode::Writable),
                RegionMode::ReadOnly => (None, fds.next(), RegionAccessMode::ReadOnly),
                RegionMode::Unsafe => (fds.next(), None, RegionAccessMode::Unsafe),
            };
            WireHandle::Buffer(RegionObject {
                rw,
                ro,
                mode,
                size,
                guid,
            })
        }
        NodeHandle::DataPipeProducer(_) | NodeHandle::DataPipeConsumer(_) => return None,
    })
}

impl LegacyProtocol {
    fn receive_handle(&mut self, h: NodeHandle) -> Option<WireHandle<PortRef>> {
        match h {
            NodeHandle::DataPipeProducer(end) => {
                self.adopt_data_end(end, true).map(WireHandle::Producer)
            }
            NodeHandle::DataPipeConsumer(end) => {
                self.adopt_data_end(end, false).map(WireHandle::Consumer)
            }
            other => from_node(other),
        }
    }

    fn send_handle(&mut self, h: WireHandle<PortRef>) -> MojoResult<NodeHandle> {
        match h {
            WireHandle::Producer(id) | WireHandle::Consumer(id) => self.send_data_end(id),
            other => to_node(other),
        }
    }
}

fn to_node(h: WireHandle<PortRef>) -> MojoResult<NodeHandle> {
    Ok(match h {
        WireHandle::Pipe(p) => NodeHandle::MessagePipe(p),
        WireHandle::Platform(fd) => NodeHandle::PlatformHandle(fd),
        WireHandle::Producer(_) | WireHandle::Consumer(_) => return Err(MojoError::Internal),
        WireHandle::Buffer(b) => {
            let (mode, fds) = match b.mode {
                RegionAccessMode::Writable => {
                    (RegionMode::Writable, b.rw.into_iter().chain(b.ro).collect())
                }
                RegionAccessMode::ReadOnly => (RegionMode::ReadOnly, b.ro.into_iter().collect()),
                RegionAccessMode::Unsafe => (RegionMode::Unsafe, b.rw.into_iter().collect()),
            };
            NodeHandle::SharedBuffer(
                NodeBuffer::new(b.size, Guid::from(b.guid), mode, fds)
                    .map_err(|_| MojoError::InvalidArgument)?,
            )
        }
    })
}

impl LegacyProtocol {
    /// Every legacy system is made here, so this is where its node gets
    /// the application's fd budget (see [`app_fd_budget`]).
    fn new(mut session: Session, profile: Profile, links: HashMap<LinkId, Link>) -> Self {
        node_of(&mut session).set_max_fds_per_peer(app_fd_budget());
        Self {
            session,
            profile,
            links,
            isolated: isolated::IsolatedLinks::default(),
            fds: Default::default(),
            requests: VecDeque::new(),
            region: None,
            data_pipes: HashMap::new(),
            next_data_id: 0,
        }
    }

    fn add_data_end(&mut self, end: DataEnd) -> u64 {
        self.next_data_id += 1;
        self.data_pipes.insert(self.next_data_id, end);
        self.next_data_id
    }

    /// A data pipe end that arrived in a message, held here from now on.
    fn adopt_data_end(&mut self, end: DataPipeEnd, producer: bool) -> Option<u64> {
        let DataPipeEnd {
            state,
            control_port,
            ring,
        } = end;
        let Ok(mapping) = map_ring(&ring, state.options.capacity_num_bytes, state.buffer_guid)
        else {
            let _ = self.node().close_port(control_port);
            return None;
        };
        let end = if producer {
            DataPipeProducer::new(&state, mapping).map(|sm| DataEnd::Producer {
                sm,
                control: control_port,
                ring_fd: ring,
            })
        } else {
            DataPipeConsumer::new(&state, mapping).map(|sm| DataEnd::Consumer {
                sm,
                control: control_port,
                ring_fd: ring,
            })
        };
        match end {
            Ok(end) => Some(self.add_data_end(end)),
            Err(_) => {
                let _ = self.node().close_port(control_port);
                None
            }
        }
    }

    /// A held data pipe end leaving in a message.
    fn send_data_end(&mut self, id: u64) -> MojoResult<NodeHandle> {
        self.pump_data(id);
        let end = self
            .data_pipes
            .remove(&id)
            .ok_or(MojoError::InvalidArgument)?;
        Ok(match end {
            DataEnd::Producer {
                sm,
                control,
                ring_fd,
            } => NodeHandle::DataPipeProducer(DataPipeEnd {
                state: sm.serialize().map_err(|_| MojoError::FailedPrecondition)?,
                control_port: control,
                ring: ring_fd,
            }),
            DataEnd::Consumer {
                sm,
                control,
                ring_fd,
            } => NodeHandle::DataPipeConsumer(DataPipeEnd {
                state: sm.serialize().map_err(|_| MojoError::FailedPrecondition)?,
                control_port: control,
                ring: ring_fd,
            }),
        })
    }

    /// Takes in the peer's control messages and sends ours.
    fn pump_data(&mut self, id: u64) {
        let Some(control) = self.data_pipes.get(&id).map(DataEnd::control) else {
            return;
        };
        loop {
            let incoming = self.node().read_message(control);
            let Some(end) = self.data_pipes.get_mut(&id) else {
                return;
            };
            let closed = match incoming {
                Ok(Some((bytes, _))) => {
                    let ok = match end {
                        DataEnd::Producer { sm, .. } => sm.handle_control(&bytes).is_ok(),
                        DataEnd::Consumer { sm, .. } => sm.handle_control(&bytes).is_ok(),
                    };
                    if ok {
                        continue;
                    }
                    true
                }
                Ok(None) => false,
                Err(_) => true,
            };
            if closed {
                match end {
                    DataEnd::Producer { sm, .. } => sm.handle_peer_closed(),
                    DataEnd::Consumer { sm, .. } => sm.handle_peer_closed(),
                }
            }
            break;
        }
        let payloads: Vec<Vec<u8>> = match self.data_pipes.get_mut(&id) {
            Some(DataEnd::Producer { sm, .. }) => {
                std::iter::from_fn(|| sm.poll_control_payload()).collect()
            }
            Some(DataEnd::Consumer { sm, .. }) => {
                std::iter::from_fn(|| sm.poll_control_payload()).collect()
            }
            None => Vec::new(),
        };
        for p in payloads {
            let _ = self.node().write_message(control, &p, vec![]);
        }
    }

    fn node(&mut self) -> &mut LegacyNode {
        node_of(&mut self.session)
    }

    fn node_ref(&self) -> &LegacyNode {
        match &self.session {
            Session::Broker(b) => b.node_ref(),
            Session::Client(c) => c.node_ref(),
            Session::Standalone(n) => n,
        }
    }

    /// Drops the node's application events: the runtime reads each pipe's
    /// state from the node when asked (`pipe_signals`, `read_message`) and
    /// wakes its waiters on every input, so nothing here needs them. The
    /// node queues one or more per message and closure until they are
    /// polled, so without this the queue grew by every message the peer
    /// ever got (about 430 bytes per `leak` round trip, found by `cargo
    /// xtask soak`).
    fn discard_node_events(&mut self) {
        while self.node().poll_event().is_some() {}
    }

    /// Serves what the session asks of the outside after input: regions
    /// for the broker's clients, the client's node-channel socket.
    fn after_input(&mut self) {
        self.discard_node_events();
        match &mut self.session {
            Session::Broker(b) => {
                while let Some(request) = b.poll_region_request() {
                    let answered = match local_region(u64::from(request.size)) {
                        Ok(RegionObject {
                            rw: Some(rw),
                            ro: Some(ro),
                            guid,
                            ..
                        }) => b.answer_region(
                            request.id,
                            RegionFds {
                                guid: Guid::from(guid),
                                read_write: rw,
                                read_only: ro,
                            },
                            &probe,
                        ),
                        _ => b.fail_region(request.id),
                    };
                    if let Err(e) = answered {
                        eprintln!("[mojo] buffer request: {e}");
                        let _ = b.fail_region(request.id);
                    }
                }
            }
            Session::Client(c) => {
                if let Some(fd) = c.poll_adopt() {
                    self.requests.push_back(CoreRequest::Adopt {
                        fd,
                        tag: NODE_CHANNEL_TAG,
                    });
                }
                if let Some(grant) = c.poll_buffer_grant() {
                    self.region = Some(match grant {
                        Ok(g) => Ok(RegionObject {
                            rw: Some(g.read_write),
                            ro: Some(g.read_only),
                            mode: RegionAccessMode::Writable,
                            size: u64::from(g.size),
                            guid: u128::from(g.guid),
                        }),
                        Err(e) => {
                            eprintln!("[mojo] buffer request: {e}");
                            Err(MojoError::ResourceExhausted)
                        }
                    });
                }
            }
            Session::Standalone(_) => {}
        }
    }
}

impl Protocol for LegacyProtocol {
    type Pipe = PortRef;
    type Error = SessionError;

    fn handle_input(
        &mut self,
        link: LinkId,
        input: &[u8],
        fds: &mut ReceivedFds,
    ) -> Result<usize, SessionError> {
        let Some(&which) = self.links.get(&link) else {
            let node = node_of(&mut self.session);
            let result = self.isolated.handle_input(node, link, input, fds);
            self.after_input();
            return result.unwrap_or(Ok(input.len()));
        };
        let queue = &mut self.fds[slot(which)];
        while let Some(fd) = fds.pop() {
            queue.push_back(fd);
        }
        let result = match &mut self.session {
            Session::Broker(b) => b.handle_stream(which, input, queue),
            Session::Client(c) => c.handle_stream(which, input, queue),
            Session::Standalone(_) => Ok(input.len()),
        };
        self.after_input();
        result
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        // Called on every turn of the I/O thread, which local operations
        // wake too: the events of local operations go here.
        self.discard_node_events();
        loop {
            let t = match &mut self.session {
                Session::Broker(b) => b.poll_transmit(),
                Session::Client(c) => c.poll_transmit(),
                Session::Standalone(_) => None,
            };
            let Some(t) = t else {
                let node = node_of(&mut self.session);
                return self.isolated.poll_transmit(node, &mut self.requests);
            };
            let link = self
                .links
                .iter()
                .find(|(_, l)| **l == t.link)
                .map(|(id, _)| *id);
            // A frame for a link not (yet) there is dropped with its fds;
            // the client's first node frames wait for the adoption below.
            if let Some(link) = link {
                return Some(Transmit {
                    link,
                    bytes: t.bytes,
                    fds: t.fds,
                });
            }
        }
    }

    fn poll_request(&mut self) -> Option<CoreRequest> {
        self.requests.pop_front()
    }

    fn handle_link_closed(&mut self, link: LinkId, reason: CloseReason) {
        let Some(which) = self.links.remove(&link) else {
            if self.isolated.closed(node_of(&mut self.session), link) {
                log::debug!("isolated connection closed: {reason}");
            }
            return;
        };
        log::debug!("{which} closed: {reason}");
        self.fds[slot(which)].clear();
        match &mut self.session {
            Session::Broker(b) => b.handle_link_closed(which),
            Session::Client(c) => c.handle_link_closed(which),
            Session::Standalone(_) => {}
        }
    }

    fn handle_link_adopted(&mut self, tag: u64, result: Result<LinkId, NewLinkError>) {
        if tag != NODE_CHANNEL_TAG {
            let node = node_of(&mut self.session);
            self.isolated.adopted(node, tag, result, &mut self.requests);
            return;
        }
        match (tag, result) {
            (NODE_CHANNEL_TAG, Ok(link)) => {
                self.links.insert(link, Link::NodeChannel);
            }
            (_, Err(e)) => {
                eprintln!("[mojo] cannot adopt the node channel: {e}");
                if let Session::Client(c) = &mut self.session {
                    c.handle_link_closed(Link::NodeChannel);
                }
            }
            _ => {}
        }
    }

    fn create_pipe(&mut self) -> MojoResult<(PortRef, PortRef)> {
        self.node()
            .create_pipe()
            .map_err(|_| MojoError::ResourceExhausted)
    }

    fn write_message(
        &mut self,
        pipe: PortRef,
        bytes: &[u8],
        handles: Vec<WireHandle<PortRef>>,
    ) -> MojoResult<()> {
        let mut converted = Vec::with_capacity(handles.len());
        let mut bad = false;
        for h in handles {
            match self.send_handle(h) {
                Ok(h) => converted.push(h),
                Err(_) => bad = true,
            }
        }
        if bad {
            for h in converted {
                if let NodeHandle::MessagePipe(p) = h {
                    let _ = self.node().close_port(p);
                }
            }
            return Err(MojoError::InvalidArgument);
        }
        match self.node().write_message(pipe, bytes, converted) {
            Ok(()) => Ok(()),
            Err(ApiError::Ports(OpError::UnknownPort { .. })) => Err(MojoError::InvalidArgument),
            Err(_) => Err(MojoError::FailedPrecondition),
        }
    }

    fn read_message(&mut self, pipe: PortRef) -> MojoResult<WireMessage<PortRef>> {
        match self.node().read_message(pipe) {
            Ok(Some((bytes, handles))) => {
                let handles = handles
                    .into_iter()
                    .filter_map(|h| self.receive_handle(h))
                    .collect();
                Ok((bytes, handles))
            }
            Ok(None) => {
                let status = self
                    .node_ref()
                    .port_status(pipe)
                    .map_err(|_| MojoError::InvalidArgument)?;
                if status.peer_closed && !status.receiving_messages {
                    Err(MojoError::FailedPrecondition)
                } else {
                    Err(MojoError::ShouldWait)
                }
            }
            Err(ApiError::Ports(OpError::PeerClosed { .. })) => Err(MojoError::FailedPrecondition),
            Err(_) => Err(MojoError::InvalidArgument),
        }
    }

    fn pipe_signals(&self, pipe: PortRef) -> SignalsState {
        let Ok(s) = self.node_ref().port_status(pipe) else {
            return SignalsState::default();
        };
        SignalsState::of_pipe(
            s.has_messages,
            s.has_messages || s.receiving_messages,
            s.peer_closed,
        )
    }

    fn pipe_peer_remote(&self, pipe: PortRef) -> bool {
        self.node_ref()
            .port_status(pipe)
            .is_ok_and(|s| s.peer_remote)
    }

    fn close_pipe(&mut self, pipe: PortRef) {
        let _ = self.node().close_port(pipe);
    }

    fn create_region(&mut self, size: u64) -> MojoResult<RegionSource> {
        match &mut self.session {
            Session::Broker(_) | Session::Standalone(_) => Ok(RegionSource::Local),
            Session::Client(c) => {
                if c.buffer_request_outstanding() || self.region.is_some() {
                    return Ok(RegionSource::Busy);
                }
                let size = u32::try_from(size).map_err(|_| MojoError::InvalidArgument)?;
                c.request_buffer(size)
                    .map_err(|_| MojoError::ResourceExhausted)?;
                Ok(RegionSource::Requested)
            }
        }
    }

    fn poll_region(&mut self) -> Option<MojoResult<RegionObject>> {
        self.region.take()
    }

    fn create_data_pipe(&mut self, element_size: u32, capacity: u32) -> MojoResult<(u64, u64)> {
        let capacity = data_pipe_capacity(element_size, capacity)?;
        let mut rng = OsRandom::new().map_err(|_| MojoError::Internal)?;
        let region = SharedMemoryRegion::create(RegionMode::Unsafe, capacity as usize, &mut rng)
            .map_err(|_| MojoError::ResourceExhausted)?;
        let guid = Guid::from(region.guid());
        let options = DataPipeOptions {
            struct_size: 16,
            flags: 0,
            element_num_bytes: element_size,
            capacity_num_bytes: capacity,
        };
        self.next_data_id += 1;
        let (ps, cs) = new_pipe_states(options, self.next_data_id, guid)
            .map_err(|_| MojoError::InvalidArgument)?;
        let map = || region.map().map_err(|_| MojoError::ResourceExhausted);
        let fd = || {
            region
                .fd()
                .try_clone_to_owned()
                .map_err(|_| MojoError::ResourceExhausted)
        };
        let producer = DataPipeProducer::new(&ps, map()?).map_err(|_| MojoError::Internal)?;
        let consumer = DataPipeConsumer::new(&cs, map()?).map_err(|_| MojoError::Internal)?;
        let (p_fd, c_fd) = (fd()?, fd()?);
        let (pc, cc) = self.create_pipe()?;
        let p = self.add_data_end(DataEnd::Producer {
            sm: producer,
            control: pc,
            ring_fd: p_fd,
        });
        let c = self.add_data_end(DataEnd::Consumer {
            sm: consumer,
            control: cc,
            ring_fd: c_fd,
        });
        Ok((p, c))
    }

    fn write_data(&mut self, id: u64, data: &[u8]) -> MojoResult<usize> {
        self.pump_data(id);
        let Some(DataEnd::Producer { sm, .. }) = self.data_pipes.get_mut(&id) else {
            return Err(MojoError::InvalidArgument);
        };
        if sm.is_peer_closed() {
            return Err(MojoError::FailedPrecondition);
        }
        if data.len() % (sm.options().element_num_bytes.max(1) as usize) != 0 {
            return Err(MojoError::InvalidArgument);
        }
        let n = sm.write(data).map_err(|_| MojoError::InvalidArgument)?;
        self.pump_data(id);
        if n == 0 {
            Err(MojoError::ShouldWait)
        } else {
            Ok(n)
        }
    }

    fn read_data(&mut self, id: u64, buf: &mut [u8]) -> MojoResult<usize> {
        self.pump_data(id);
        let Some(DataEnd::Consumer { sm, .. }) = self.data_pipes.get_mut(&id) else {
            return Err(MojoError::InvalidArgument);
        };
        let n = sm.read(buf).map_err(|_| MojoError::InvalidArgument)?;
        let drained = sm.is_drained();
        self.pump_data(id);
        match n {
            0 if drained => Err(MojoError::FailedPrecondition),
            0 => Err(MojoError::ShouldWait),
            n => Ok(n),
        }
    }

    fn data_signals(&mut self, id: u64) -> SignalsState {
        self.pump_data(id);
        match self.data_pipes.get(&id) {
            Some(DataEnd::Producer { sm, .. }) => {
                SignalsState::of_producer(sm.is_peer_closed(), sm.available_capacity())
            }
            Some(DataEnd::Consumer { sm, .. }) => SignalsState::of_consumer(
                sm.bytes_available(),
                sm.is_drained(),
                sm.is_peer_closed(),
            ),
            None => SignalsState::default(),
        }
    }

    fn close_data(&mut self, id: u64) {
        self.pump_data(id);
        if let Some(end) = self.data_pipes.remove(&id) {
            let _ = self.node().close_port(end.control());
        }
    }

    fn data_state(&mut self, id: u64) -> MojoResult<DataEndState> {
        self.pump_data(id);
        match self.data_pipes.get(&id) {
            Some(DataEnd::Producer { sm, .. }) => Ok(DataEndState {
                element_size: sm.options().element_num_bytes,
                bytes: sm.available_capacity(),
                peer_closed: sm.is_peer_closed(),
            }),
            Some(DataEnd::Consumer { sm, .. }) => Ok(DataEndState {
                element_size: sm.options().element_num_bytes,
                bytes: sm.bytes_available(),
                peer_closed: sm.is_peer_closed(),
            }),
            None => Err(MojoError::InvalidArgument),
        }
    }

    fn peek_data(&mut self, id: u64, buf: &mut [u8]) -> MojoResult<usize> {
        self.pump_data(id);
        match self.data_pipes.get(&id) {
            Some(DataEnd::Consumer { sm, .. }) => {
                sm.peek(buf).map_err(|_| MojoError::InvalidArgument)
            }
            _ => Err(MojoError::InvalidArgument),
        }
    }

    fn discard_data(&mut self, id: u64, len: usize) -> MojoResult<usize> {
        self.pump_data(id);
        let n = match self.data_pipes.get_mut(&id) {
            Some(DataEnd::Consumer { sm, .. }) => sm.discard(len),
            _ => return Err(MojoError::InvalidArgument),
        };
        self.pump_data(id);
        Ok(n)
    }
}

fn random_name(rng: &mut impl RandomSource) -> mojo_legacy_wire::NodeName {
    names::random_node_name(rng)
}

/// `mojo::OutgoingInvitation::Send` as a legacy broker: makes this process
/// the broker of a new legacy network and invites the peer on `socket`
/// (the process's end of the platform channel) with one pipe per name in
/// `attachments` (each at most [`mojo_legacy_node::session::AttachmentName`]'s
/// length; a libchrome profile sends one name, desktop numbers them).
/// Returns the system and the attached pipes in `attachments`' order; the
/// pipes are usable at once (messages wait until the peer is there).
pub fn send_invitation(
    socket: OwnedFd,
    profile: Profile,
    attachments: &[Vec<u8>],
) -> Result<(RealSystem<LegacyProtocol>, Vec<MessagePipe>), ConnectError> {
    // The node names two ports per new pipe: kernel bytes, one system call
    // per 4 KiB.
    let mut rng = OsRandom::buffered().map_err(ConnectError::from_display)?;
    let mut driver = Driver::new().map_err(ConnectError::from_display)?;
    let bootstrap = driver
        .adopt_fd(socket)
        .map_err(ConnectError::from_display)?;
    let (node_link, client_end) = driver.new_link_pair().map_err(ConnectError::from_display)?;
    let config = BrokerConfig {
        profile,
        local_name: random_name(&mut rng),
        attachments: attachment_names(attachments)?,
    };
    let session =
        BrokerSession::new(config, client_end, rng).map_err(ConnectError::from_display)?;
    let ports = session.attachments().to_vec();
    let links = HashMap::from([(bootstrap, Link::Bootstrap), (node_link, Link::NodeChannel)]);
    let protocol = LegacyProtocol::new(Session::Broker(Box::new(session)), profile, links);
    let system = RealSystem::start(driver, protocol).map_err(ConnectError::from_display)?;
    let pipes = ports
        .into_iter()
        .map(|p| system.adopt_pipe(p).map_err(ConnectError::from_display))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((system, pipes))
}

/// `mojo::IncomingInvitation::Accept` + `ExtractMessagePipe` as a legacy
/// client: joins the broker's network over `socket` (an inherited
/// endpoint), waits up to [`HANDSHAKE_TIMEOUT`] for the invitation, and
/// returns the system and the pipes named by `attachments`, in that order.
pub fn accept_invitation(
    socket: Endpoint,
    profile: Profile,
    attachments: &[Vec<u8>],
) -> Result<(RealSystem<LegacyProtocol>, Vec<MessagePipe>), ConnectError> {
    // The node names two ports per new pipe: kernel bytes, one system call
    // per 4 KiB.
    let mut rng = OsRandom::buffered().map_err(ConnectError::from_display)?;
    let mut driver = Driver::new().map_err(ConnectError::from_display)?;
    let bootstrap = driver
        .add_link(socket)
        .map_err(ConnectError::from_display)?;
    let config = ClientConfig {
        profile,
        local_name: random_name(&mut rng),
        attachments: attachment_names(attachments)?,
    };
    let session =
        ClientSession::new(config, rng, Box::new(probe)).map_err(ConnectError::from_display)?;
    let links = HashMap::from([(bootstrap, Link::Bootstrap)]);
    let protocol = LegacyProtocol::new(Session::Client(Box::new(session)), profile, links);
    let system = RealSystem::start(driver, protocol).map_err(ConnectError::from_display)?;
    let ports = system
        .wait_for(Some(Instant::now() + HANDSHAKE_TIMEOUT), |p| {
            match &p.session {
                Session::Client(c) => c.attachments().map(<[PortRef]>::to_vec),
                Session::Broker(_) | Session::Standalone(_) => None,
            }
        })
        .ok_or_else(|| ConnectError::new("no invitation from the broker"))?;
    let pipes = ports
        .into_iter()
        .map(|p| system.adopt_pipe(p).map_err(ConnectError::from_display))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((system, pipes))
}

/// The received fds one peer may make this application's node hold
/// (`crate::fd_budget`: the process's fd limit, not the proxy's bound).
fn app_fd_budget() -> usize {
    crate::fd_budget::queued_fds_per_peer(mojo_legacy_node::node::DEFAULT_MAX_FDS_PER_PEER)
}

/// A legacy system of its own: this process's node as a broker with no
/// network yet (Mojo initialized as a broker that invites nobody), for
/// [`connect_isolated`] in `profile`. Shared buffers are made locally.
pub fn standalone(profile: Profile) -> Result<RealSystem<LegacyProtocol>, ConnectError> {
    let mut rng = OsRandom::new().map_err(ConnectError::from_display)?;
    let driver = Driver::new().map_err(ConnectError::from_display)?;
    let node = LegacyNode::new(random_name(&mut rng), rng);
    let session = Session::Standalone(Box::new(node));
    let protocol = LegacyProtocol::new(session, profile, HashMap::new());
    RealSystem::start(driver, protocol).map_err(ConnectError::from_display)
}

/// `mojo::OutgoingInvitation::SendIsolated` and
/// `mojo::IncomingInvitation::AcceptIsolated` (the two sides do the same):
/// an isolated connection (spec §3.7) to the process at the other end of
/// `socket`, a platform channel end of its own (e.g.
/// [`Endpoint::into_fd`]). The process may already belong to a network
/// (joined by [`send_invitation`] or [`accept_invitation`]; that link is
/// untouched) or be [`standalone`]; so may the other. Returns the one pipe
/// at once: messages wait until the other side connects, and if the
/// connection fails (the socket closes, the other side is no Mojo peer)
/// the pipe observes peer closure. Frames are in the system's profile.
///
/// As in Mojo, handles sent on the pipe work if their other ends are in
/// one of the two processes; a pipe whose far end is elsewhere in one
/// network cannot be reached from the other network, and breaks. A newer
/// isolated connection between the same two processes replaces the older
/// (its pipe breaks); one with this process's own broker or client is
/// refused (the pipe breaks).
pub fn connect_isolated(
    system: &RealSystem<LegacyProtocol>,
    socket: OwnedFd,
) -> Result<MessagePipe, ConnectError> {
    let port = system
        .with_protocol(|p| {
            let profile = p.profile;
            let node = node_of(&mut p.session);
            p.isolated.start(node, profile, socket, &mut p.requests)
        })
        .map_err(ConnectError::from_display)?;
    system.adopt_pipe(port).map_err(ConnectError::from_display)
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;

    /// A ring as Chromium makes one: a plain unsealed file.
    fn unsealed_ring(len: usize) -> OwnedFd {
        let mut file = unlinked_temp_file();
        file.write_all(&vec![7u8; len]).expect("write");
        file.seek(SeekFrom::Start(0)).expect("seek");
        file.into()
    }

    fn unlinked_temp_file() -> std::fs::File {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("legacy-ring-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .expect("ring file");
        std::fs::remove_file(&path).expect("unlink");
        file
    }

    #[test]
    fn node_events_do_not_pile_up() {
        let (_peer, client_end) = std::os::unix::net::UnixStream::pair().expect("socket pair");
        let mut rng = OsRandom::new().expect("random");
        let config = BrokerConfig {
            profile: Profile::Libchrome,
            local_name: random_name(&mut rng),
            attachments: attachment_names(&[b"pipe!".to_vec()]).expect("names"),
        };
        let session = BrokerSession::new(config, client_end.into(), rng).expect("session");
        let mut protocol = LegacyProtocol::new(
            Session::Broker(Box::new(session)),
            Profile::Libchrome,
            HashMap::new(),
        );
        for _ in 0..3 {
            let (a, b) = protocol.create_pipe().expect("pipe");
            for _ in 0..100 {
                protocol
                    .write_message(a, b"ping", Vec::new())
                    .expect("write");
                protocol.read_message(b).expect("read");
            }
            protocol.close_pipe(a);
            protocol.close_pipe(b);
            // One turn of the I/O thread.
            while protocol.poll_transmit().is_some() {}
            let left = protocol.node().poll_event();
            assert!(left.is_none(), "events left queued: {left:?}");
        }
    }

    #[test]
    fn a_ring_from_a_real_peer_is_mapped_although_unsealed() {
        let fd = unsealed_ring(4096);
        let mapping = map_ring(&fd, 4096, Guid::from(5u128)).expect("mapped");
        assert_eq!(mojo_wire_kit::SharedMemory::size(&mapping), 4096);
    }
}
