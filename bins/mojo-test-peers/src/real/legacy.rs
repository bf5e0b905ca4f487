//! The legacy Mojo Core protocol for the runtime: a
//! [`BrokerSession`] (the host with `--direct=legacy`) or a
//! [`ClientSession`] (the client in legacy mode) as a [`Protocol`], and the
//! connectors that start them.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mojo_driver::{CloseReason, CoreRequest, Driver, LinkId, NewLinkError, ReceivedFds, Transmit};
use mojo_invitation::legacy::FdAccess;
use mojo_legacy_node::node::{Handle as NodeHandle, SharedBuffer as NodeBuffer};
use mojo_legacy_node::ports::{OpError, names};
use mojo_legacy_node::session::{
    AttachmentName, BrokerConfig, BrokerSession, ClientConfig, ClientSession, Link, RegionFds,
    SessionError,
};
use mojo_legacy_node::{LegacyNode, node::ApiError, node::PortRef};
use mojo_legacy_wire::Profile;
use mojo_platform_channel::{Endpoint, FdAccessMode, OsRandom, RegionMode};
use mojo_wire_kit::Guid;

use super::runtime::local_region;
use super::{Protocol, RealSystem, RegionObject, RegionSource, WireHandle, WireMessage};
use crate::cli::{ClientArgs, HostArgs, LegacyProfile};
use crate::run::{ClientConnector, HostConnector};
use crate::system::{MessagePipe, MojoError, MojoResult, RegionAccessMode, Signals, SignalsState};

/// How long the client waits for the broker's handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The tag of the client's node-channel adoption request.
const NODE_CHANNEL_TAG: u64 = 1;

enum Session {
    Broker(Box<BrokerSession>),
    Client(Box<ClientSession>),
}

/// A legacy session as a runtime [`Protocol`].
pub struct LegacyProtocol {
    session: Session,
    links: HashMap<LinkId, Link>,
    /// Fds received per link and not yet claimed by a frame.
    fds: [VecDeque<OwnedFd>; 2],
    requests: VecDeque<CoreRequest>,
    region: Option<MojoResult<RegionObject>>,
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

fn profile_of(p: LegacyProfile) -> Profile {
    match p {
        LegacyProfile::Libchrome => Profile::Libchrome,
        LegacyProfile::Desktop => Profile::Desktop,
    }
}

fn attachment_names(names: Vec<Vec<u8>>) -> Result<Vec<AttachmentName>, String> {
    names
        .into_iter()
        .map(|n| AttachmentName::from_bytes(n).ok_or_else(|| "bad attachment name".to_string()))
        .collect()
}

fn guid_u128(g: Guid) -> u128 {
    (u128::from(g.high) << 64) | u128::from(g.low)
}

fn guid_of(v: u128) -> Guid {
    Guid::new((v >> 64) as u64, v as u64)
}

/// A node handle as a runtime handle; data pipe ends are not carried yet
/// (dropped: their fds close).
fn from_node(h: NodeHandle) -> Option<WireHandle<PortRef>> {
    Some(match h {
        NodeHandle::MessagePipe(p) => WireHandle::Pipe(p),
        NodeHandle::PlatformHandle(fd) => WireHandle::Platform(fd),
        NodeHandle::SharedBuffer(b) => {
            let (size, guid, mode) = (b.size(), guid_u128(b.guid()), b.mode());
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

fn to_node(h: WireHandle<PortRef>) -> MojoResult<NodeHandle> {
    Ok(match h {
        WireHandle::Pipe(p) => NodeHandle::MessagePipe(p),
        WireHandle::Platform(fd) => NodeHandle::PlatformHandle(fd),
        WireHandle::Buffer(b) => {
            let (mode, fds) = match b.mode {
                RegionAccessMode::Writable => {
                    (RegionMode::Writable, b.rw.into_iter().chain(b.ro).collect())
                }
                RegionAccessMode::ReadOnly => (RegionMode::ReadOnly, b.ro.into_iter().collect()),
                RegionAccessMode::Unsafe => (RegionMode::Unsafe, b.rw.into_iter().collect()),
            };
            NodeHandle::SharedBuffer(
                NodeBuffer::new(b.size, guid_of(b.guid), mode, fds)
                    .map_err(|_| MojoError::InvalidArgument)?,
            )
        }
    })
}

impl LegacyProtocol {
    fn new(session: Session, links: HashMap<LinkId, Link>) -> Self {
        Self {
            session,
            links,
            fds: Default::default(),
            requests: VecDeque::new(),
            region: None,
        }
    }

    fn node(&mut self) -> &mut LegacyNode {
        match &mut self.session {
            Session::Broker(b) => b.node(),
            Session::Client(c) => c.node(),
        }
    }

    fn node_ref(&self) -> &LegacyNode {
        match &self.session {
            Session::Broker(b) => b.node_ref(),
            Session::Client(c) => c.node_ref(),
        }
    }

    /// Serves what the session asks of the outside after input: regions
    /// for the broker's clients, the client's node-channel socket.
    fn after_input(&mut self) {
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
                                guid: guid_of(guid),
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
                            guid: guid_u128(g.guid),
                        }),
                        Err(e) => {
                            eprintln!("[mojo] buffer request: {e}");
                            Err(MojoError::ResourceExhausted)
                        }
                    });
                }
            }
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
            return Ok(input.len());
        };
        let queue = &mut self.fds[slot(which)];
        while let Some(fd) = fds.pop() {
            queue.push_back(fd);
        }
        let result = match &mut self.session {
            Session::Broker(b) => b.handle_stream(which, input, queue),
            Session::Client(c) => c.handle_stream(which, input, queue),
        };
        self.after_input();
        result
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        loop {
            let t = match &mut self.session {
                Session::Broker(b) => b.poll_transmit(),
                Session::Client(c) => c.poll_transmit(),
            }?;
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
            return;
        };
        log::debug!("{which} closed: {reason}");
        self.fds[slot(which)].clear();
        match &mut self.session {
            Session::Broker(b) => b.handle_link_closed(which),
            Session::Client(c) => c.handle_link_closed(which),
        }
    }

    fn handle_link_adopted(&mut self, tag: u64, result: Result<LinkId, NewLinkError>) {
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
            match to_node(h) {
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
                Ok((bytes, handles.into_iter().filter_map(from_node).collect()))
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
        let mut satisfied = Signals::NONE;
        let mut satisfiable = Signals::PEER_CLOSED;
        if s.has_messages {
            satisfied = satisfied | Signals::READABLE;
        }
        if s.has_messages || s.receiving_messages {
            satisfiable = satisfiable | Signals::READABLE;
        }
        if s.peer_closed {
            satisfied = satisfied | Signals::PEER_CLOSED;
        } else {
            satisfied = satisfied | Signals::WRITABLE;
            satisfiable = satisfiable | Signals::WRITABLE;
        }
        SignalsState {
            satisfied,
            satisfiable,
        }
    }

    fn close_pipe(&mut self, pipe: PortRef) {
        let _ = self.node().close_port(pipe);
    }

    fn create_region(&mut self, size: u64) -> MojoResult<RegionSource> {
        match &mut self.session {
            Session::Broker(_) => Ok(RegionSource::Local),
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
}

fn random_name(rng: &mut OsRandom) -> mojo_legacy_wire::NodeName {
    names::random_node_name(rng)
}

/// `mojo-test-host --direct=legacy`: the host is the legacy broker and
/// invites the client over its socket.
#[derive(Debug, Default)]
pub struct LegacyHostConnector;

impl HostConnector for LegacyHostConnector {
    type System = RealSystem<LegacyProtocol>;

    fn connect(
        &self,
        args: &HostArgs,
        host_fd: OwnedFd,
        _broker_fd: Option<OwnedFd>,
    ) -> Result<(Self::System, Vec<MessagePipe>), String> {
        let mut rng = OsRandom::new().map_err(|e| e.to_string())?;
        let mut driver = Driver::new().map_err(|e| e.to_string())?;
        let bootstrap = driver.adopt_fd(host_fd).map_err(|e| e.to_string())?;
        let (node_link, client_end) = driver.new_link_pair().map_err(|e| e.to_string())?;
        let config = BrokerConfig {
            profile: profile_of(args.legacy_profile),
            local_name: random_name(&mut rng),
            attachments: attachment_names(args.attachments.names())?,
        };
        let session = BrokerSession::new(config, client_end, rng).map_err(|e| e.to_string())?;
        let ports = session.attachments().to_vec();
        let links = HashMap::from([(bootstrap, Link::Bootstrap), (node_link, Link::NodeChannel)]);
        let protocol = LegacyProtocol::new(Session::Broker(Box::new(session)), links);
        let system = RealSystem::start(driver, protocol).map_err(|e| e.to_string())?;
        let pipes = ports
            .into_iter()
            .map(|p| system.adopt_pipe(p).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((system, pipes))
    }
}

/// `mojo-test-client` in legacy mode: accepts the invitation on the
/// inherited socket the binary adopted.
#[derive(Debug)]
pub struct LegacyClientConnector {
    socket: Mutex<Option<Endpoint>>,
}

impl LegacyClientConnector {
    /// A connector for the inherited socket `socket` (`--fd`).
    pub fn new(socket: Endpoint) -> Self {
        Self {
            socket: Mutex::new(Some(socket)),
        }
    }
}

impl ClientConnector for LegacyClientConnector {
    type System = RealSystem<LegacyProtocol>;

    fn accept(&self, args: &ClientArgs) -> Result<(Self::System, Vec<MessagePipe>), String> {
        let socket = self
            .socket
            .lock()
            .map_err(|_| "poisoned".to_string())?
            .take()
            .ok_or_else(|| "the socket was already used".to_string())?;
        let mut rng = OsRandom::new().map_err(|e| e.to_string())?;
        let mut driver = Driver::new().map_err(|e| e.to_string())?;
        let bootstrap = driver.add_link(socket).map_err(|e| e.to_string())?;
        let config = ClientConfig {
            profile: profile_of(args.legacy_profile),
            local_name: random_name(&mut rng),
            attachments: attachment_names(args.attachments.names())?,
        };
        let session =
            ClientSession::new(config, rng, Box::new(probe)).map_err(|e| e.to_string())?;
        let links = HashMap::from([(bootstrap, Link::Bootstrap)]);
        let protocol = LegacyProtocol::new(Session::Client(Box::new(session)), links);
        let system = RealSystem::start(driver, protocol).map_err(|e| e.to_string())?;
        let ports = system
            .wait_for(Some(Instant::now() + HANDSHAKE_TIMEOUT), |p| {
                match &p.session {
                    Session::Client(c) => c.attachments().map(<[PortRef]>::to_vec),
                    Session::Broker(_) => None,
                }
            })
            .ok_or_else(|| "no invitation from the broker".to_string())?;
        let pipes = ports
            .into_iter()
            .map(|p| system.adopt_pipe(p).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((system, pipes))
    }
}
