//! [`SessionCore`]: an ipcz [`Session`] as a [`mojo_driver::Core`] on one
//! real socket, answering the session's memory requests with the platform
//! crate (memfd regions, [`Mapping`]s). The ipcz system ([`crate::ipcz`]) runs a
//! node through it; a test drives two of them over a socket pair.
//!
//! What the core does on its own: it feeds the link's stream and fds to the
//! session, maps the primary buffer the broker sent (trusting the broker,
//! per the shared memory policy of `docs/ARCHITECTURE.md`), creates block
//! buffers the node asks for, maps the ones the peer adds (trusting the
//! peer only if [`SessionCoreOptions::trust_peer_memory`] says so; a sealed
//! memfd maps either way), answers RequestMemory, and closes the socket
//! when the link is dropped. It also runs the sockets a session asks it to
//! adopt (the inherit mode's referrer links, spec `ipcz.md` §4.3) and, for
//! a broker, serves referrals with fresh memfd primary buffers and a socket
//! pair. Everything else is the application's: the
//! session's other events come out of [`SessionCore::poll_event`], and
//! portals are used on [`SessionCore::node_mut`] between driver turns.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::os::fd::OwnedFd;

use ipcz_node::node::{DriverBox, Node, NodeEvent};
use ipcz_node::router::NodeLinkId;
use ipcz_node::session::{
    BrokerReferralMemory, Session, SessionConfig, SessionError, SessionEvent, SessionTransmit,
    SocketId,
};
use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::types::{NodeName, ReferralId};
use mojo_driver::{CloseReason, Core, CoreRequest, LinkId, NewLinkError, ReceivedFds, Transmit};
use mojo_invitation::ipcz::PrimaryBuffer;
use mojo_platform_channel::{Mapping, OsRandom, SharedMemoryRegion, ShmError};
use mojo_wire_kit::{Guid, RandomSource, RegionMode};

/// How a [`SessionCore`] treats memory from its peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionCoreOptions {
    /// Map the peer's unsealed block buffers (only for a peer that could
    /// end this process anyway: our broker).
    pub trust_peer_memory: bool,
}

/// Something the application of a [`SessionCore`] should know.
#[derive(Debug)]
pub enum CoreEvent {
    /// An event of the session the core does not answer itself
    /// (established, readable, peer closed, link dropped, introductions).
    Session(SessionEvent),
    /// The socket is gone.
    LinkClosed(CloseReason),
}

/// Why a [`SessionCore`] ended the run.
#[derive(Debug)]
pub enum SessionCoreError {
    /// The session failed (a bad greeting, the link dropped on bad input).
    Session(SessionError),
    /// The primary buffer could not be created or mapped.
    PrimaryBuffer(ShmError),
    /// The OS random source is unavailable.
    Random,
}

impl fmt::Display for SessionCoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Session(e) => write!(f, "ipcz session: {e}"),
            Self::PrimaryBuffer(e) => write!(f, "primary buffer: {e}"),
            Self::Random => f.write_str("no OS random source"),
        }
    }
}

impl std::error::Error for SessionCoreError {}

impl From<SessionError> for SessionCoreError {
    fn from(e: SessionError) -> Self {
        Self::Session(e)
    }
}

/// An ipcz session on one driver link: see the module docs.
#[derive(Debug)]
pub struct SessionCore {
    link: LinkId,
    session: Session<Mapping>,
    options: SessionCoreOptions,
    random: OsRandom,
    fds: VecDeque<OwnedFd>,
    events: VecDeque<CoreEvent>,
    requests: VecDeque<CoreRequest>,
    error: Option<SessionError>,
    closed: bool,
    buffers_created: usize,
    buffers_mapped: usize,
    /// Adopted driver links: their session socket and received fds.
    adopted: BTreeMap<LinkId, (SocketId, VecDeque<OwnedFd>)>,
    /// Frames for sockets the driver has not adopted yet.
    held: BTreeMap<SocketId, VecDeque<SessionTransmit>>,
    /// Released held frames, sent before anything else.
    released: VecDeque<Transmit>,
}

/// A new unsafe memfd region of `size` bytes: its mapping, description and fds.
fn create_region(
    size: usize,
    random: &mut OsRandom,
) -> Result<(Mapping, SharedBuffer, Vec<OwnedFd>), ShmError> {
    let region = SharedMemoryRegion::create(RegionMode::Unsafe, size, random)?;
    let mapping = region.map()?;
    let buffer = SharedBuffer {
        buffer_size: u32::try_from(size).map_err(|_| ShmError::TooLarge { size: size as u64 })?,
        mode: RegionMode::Unsafe,
        guid: Guid::from(region.guid()),
    };
    Ok((mapping, buffer, region.into_fds()))
}

/// Maps a region the peer sent (`trust`: even if unsealed).
fn map_region(buffer: &SharedBuffer, fds: Vec<OwnedFd>, trust: bool) -> Result<Mapping, ShmError> {
    let region = SharedMemoryRegion::from_fds(
        buffer.mode,
        buffer.buffer_size as usize,
        u128::from(buffer.guid),
        fds,
    )?;
    let region = if trust { region.trust_peer() } else { region };
    region.map()
}

/// `config` with its links' fd bound raised to this process's budget
/// ([`crate::fd_budget`]): an application may hold many unread handles,
/// where the nodes' default is a bound for the proxy.
fn with_app_fd_budget(mut config: SessionConfig) -> SessionConfig {
    let limits = &mut config.node.limits;
    limits.max_fds = crate::fd_budget::queued_fds_per_peer(limits.max_fds);
    config
}

impl SessionCore {
    /// A non-broker on `link` (towards a broker, whose memory it trusts).
    pub fn non_broker(link: LinkId, config: SessionConfig) -> Result<Self, SessionCoreError> {
        let session = Session::non_broker(with_app_fd_budget(config))?;
        Self::new(
            link,
            session,
            SessionCoreOptions {
                trust_peer_memory: true,
            },
        )
    }

    /// A broker named `name` on `link`: creates the primary buffer (a
    /// sealed memfd of 128 KiB), draws the non-broker's name from `random`.
    pub fn broker(
        link: LinkId,
        name: NodeName,
        config: SessionConfig,
        random: &mut dyn RandomSource,
    ) -> Result<Self, SessionCoreError> {
        let mut os_random = OsRandom::new().map_err(|_| SessionCoreError::Random)?;
        let (mapping, buffer, mut fds) = create_region(PRIMARY_BUFFER_SIZE, &mut os_random)
            .map_err(SessionCoreError::PrimaryBuffer)?;
        let fd = fds
            .pop()
            .ok_or(SessionCoreError::PrimaryBuffer(ShmError::ZeroSize))?;
        let primary = PrimaryBuffer::new(buffer.buffer_size, buffer.guid, fd);
        let session = Session::broker(name, with_app_fd_budget(config), primary, mapping, random)?;
        Self::new(
            link,
            session,
            SessionCoreOptions {
                trust_peer_memory: false,
            },
        )
    }

    /// A core over an already made `session` on `link`.
    pub fn new(
        link: LinkId,
        session: Session<Mapping>,
        options: SessionCoreOptions,
    ) -> Result<Self, SessionCoreError> {
        Ok(Self {
            link,
            session,
            options,
            random: OsRandom::new().map_err(|_| SessionCoreError::Random)?,
            fds: VecDeque::new(),
            events: VecDeque::new(),
            requests: VecDeque::new(),
            error: None,
            closed: false,
            buffers_created: 0,
            buffers_mapped: 0,
            adopted: BTreeMap::new(),
            held: BTreeMap::new(),
            released: VecDeque::new(),
        })
    }

    /// Refers the node at the other end of `socket` to our broker (§4.3;
    /// this core must be a non-broker's, established): the link to it
    /// comes as [`SessionEvent::ReferralAccepted`].
    pub fn refer(
        &mut self,
        socket: OwnedFd,
        num_initial_portals: u32,
    ) -> Result<ReferralId, SessionError> {
        self.session.refer(socket, num_initial_portals)
    }

    /// The memory and sockets of one referral this broker serves.
    fn referral_memory(&mut self) -> Result<BrokerReferralMemory<Mapping>, String> {
        let (broker_link_mapping, b, mut b_fds) =
            create_region(PRIMARY_BUFFER_SIZE, &mut self.random).map_err(|e| e.to_string())?;
        let (referrer_link_mapping, r, mut r_fds) =
            create_region(PRIMARY_BUFFER_SIZE, &mut self.random).map_err(|e| e.to_string())?;
        let (Some(b_fd), Some(r_fd)) = (b_fds.pop(), r_fds.pop()) else {
            return Err("a primary buffer without its fd".into());
        };
        let for_referrer = r_fd.try_clone().map_err(|e| e.to_string())?;
        let (referred, referrer) =
            std::os::unix::net::UnixStream::pair().map_err(|e| e.to_string())?;
        Ok(BrokerReferralMemory {
            broker_link_buffer: PrimaryBuffer::new(b.buffer_size, b.guid, b_fd),
            broker_link_mapping,
            referrer_link_buffer: PrimaryBuffer::new(r.buffer_size, r.guid, r_fd),
            referrer_link_buffer_for_referrer: for_referrer,
            referrer_link_mapping,
            referred_socket: referred.into(),
            referrer_socket: referrer.into(),
        })
    }

    fn serve_referral(&mut self, socket: SocketId) {
        let served = match self.referral_memory() {
            Ok(memory) => self
                .session
                .serve_referral(socket, memory, &mut self.random),
            Err(e) => {
                log::warn!("cannot make a referral's memory: {e}");
                self.session.refuse_referral(socket)
            }
        };
        if let Err(e) = served {
            log::warn!("referral on {socket}: {e}");
        }
    }

    /// Broker: connects to the broker at the other end of `socket` (an
    /// isolated connection, spec `ipcz.md` §4.1) with `portals` initial
    /// portals, over a fresh sealed memfd primary buffer: the link comes as
    /// [`SessionEvent::BrokerConnected`] for the returned socket (or
    /// [`SessionEvent::SocketFailed`]).
    pub fn connect_broker(
        &mut self,
        socket: OwnedFd,
        portals: u32,
    ) -> Result<SocketId, SessionCoreError> {
        let (mapping, buffer, mut fds) = create_region(PRIMARY_BUFFER_SIZE, &mut self.random)
            .map_err(SessionCoreError::PrimaryBuffer)?;
        let fd = fds
            .pop()
            .ok_or(SessionCoreError::PrimaryBuffer(ShmError::ZeroSize))?;
        let primary = PrimaryBuffer::new(buffer.buffer_size, buffer.guid, fd);
        let id = self.session.connect_broker(primary, mapping, portals)?;
        self.requests.push_back(CoreRequest::Adopt {
            fd: socket,
            tag: u64::from(id.0),
        });
        Ok(id)
    }

    fn driver_link(&self, socket: SocketId) -> Option<LinkId> {
        if socket == SocketId::HANDSHAKE {
            return Some(self.link);
        }
        self.adopted
            .iter()
            .find(|(_, (s, _))| *s == socket)
            .map(|(link, _)| *link)
    }

    /// How this core treats the peer's memory.
    pub fn options(&self) -> SessionCoreOptions {
        self.options
    }

    /// The driver link.
    pub fn link(&self) -> LinkId {
        self.link
    }

    /// The session.
    pub fn session(&self) -> &Session<Mapping> {
        &self.session
    }

    /// The node, once established.
    pub fn node(&self) -> Option<&Node<Mapping>> {
        self.session.node()
    }

    /// The node, once established (portal calls between driver turns).
    pub fn node_mut(&mut self) -> Option<&mut Node<Mapping>> {
        self.session.node_mut()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.service();
        self.events.pop_front()
    }

    /// Whether the socket is gone.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The error the session ended with, if any.
    pub fn error(&self) -> Option<&SessionError> {
        self.error.as_ref().or(self.session.error())
    }

    /// Block buffers this core created for its node (and sent).
    pub fn buffers_created(&self) -> usize {
        self.buffers_created
    }

    /// Block buffers from the peer this core mapped.
    pub fn buffers_mapped(&self) -> usize {
        self.buffers_mapped
    }

    /// fds received and not yet claimed by a frame.
    pub fn pending_fds(&self) -> usize {
        self.fds.len()
    }

    /// Answers the session's memory events; queues the rest for the
    /// application. Returns whether the primary buffer was just mapped
    /// (input waiting behind the greeting must be offered again).
    fn service(&mut self) -> bool {
        let mut mapped_primary = false;
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::MapPrimaryBuffer { buffer, fd } => {
                    // A non-broker's broker: trusted (ARCHITECTURE.md
                    // policy). A broker maps a primary buffer only from
                    // another network's broker (an isolated connection),
                    // whose memory it trusts no more than any peer's: an
                    // unsealed region could be truncated under our mapping.
                    match map_region(&buffer, vec![fd], self.options.trust_peer_memory) {
                        Ok(mapping) => match self.session.primary_buffer_mapped(mapping) {
                            Ok(()) => mapped_primary = true,
                            Err(e) => self.fail(e),
                        },
                        Err(e) => {
                            log::warn!("cannot map the primary buffer: {e}");
                            self.fail(SessionError::MissingPrimaryBuffer);
                        }
                    }
                }
                SessionEvent::Node(NodeEvent::CreateBlockBuffer {
                    link,
                    block_size,
                    buffer_size,
                }) => self.create_block_buffer(link, block_size, buffer_size),
                SessionEvent::Node(NodeEvent::MapBlockBuffer {
                    link, id, buffer, ..
                }) => {
                    let (object, fds) = buffer.into_parts();
                    let mapped = match object {
                        DriverObject::SharedBuffer(b) => {
                            map_region(&b, fds, self.options.trust_peer_memory).ok()
                        }
                        _ => None,
                    };
                    let Some(node) = self.session.node_mut() else {
                        continue;
                    };
                    match mapped {
                        Some(mapping) => {
                            if node.block_buffer_mapped(link, id, mapping).is_ok() {
                                self.buffers_mapped += 1;
                            }
                        }
                        None => node.block_buffer_unmappable(link, id),
                    }
                }
                SessionEvent::Node(NodeEvent::MemoryRequested { link, size }) => {
                    let made = create_region(size.max(1) as usize, &mut self.random);
                    if let (Ok((_mapping, buffer, fds)), Some(node)) =
                        (made, self.session.node_mut())
                    {
                        if let Ok(boxed) = DriverBox::new(DriverObject::SharedBuffer(buffer), fds) {
                            let _ = node.provide_memory(link, size, boxed);
                        }
                    }
                }
                SessionEvent::AdoptSocket { socket, fd } => {
                    self.requests.push_back(CoreRequest::Adopt {
                        fd,
                        tag: u64::from(socket.0),
                    });
                }
                SessionEvent::ReferralRequested { socket } => self.serve_referral(socket),
                SessionEvent::SocketFailed { socket, error } => {
                    log::warn!("{socket}: {error}");
                    if let Some(link) = self.driver_link(socket) {
                        self.requests.push_back(CoreRequest::Abort(link));
                    }
                    // The application may wait for that socket's link.
                    self.events
                        .push_back(CoreEvent::Session(SessionEvent::SocketFailed {
                            socket,
                            error,
                        }));
                }
                SessionEvent::Node(NodeEvent::LinkDropped {
                    link,
                    remote,
                    error,
                }) => {
                    if self.session.link().is_none_or(|l| l == link) {
                        self.requests.push_back(CoreRequest::Abort(self.link));
                    }
                    self.events.push_back(CoreEvent::Session(SessionEvent::Node(
                        NodeEvent::LinkDropped {
                            link,
                            remote,
                            error,
                        },
                    )));
                }
                other => self.events.push_back(CoreEvent::Session(other)),
            }
        }
        mapped_primary
    }

    fn create_block_buffer(&mut self, link: NodeLinkId, block_size: u32, buffer_size: usize) {
        let made = create_region(buffer_size, &mut self.random);
        let Some(node) = self.session.node_mut() else {
            return;
        };
        let provided = made.ok().and_then(|(mapping, buffer, fds)| {
            let boxed = DriverBox::new(DriverObject::SharedBuffer(buffer), fds).ok()?;
            node.provide_block_buffer(link, block_size, mapping, boxed)
                .ok()
        });
        match provided {
            Some(()) => self.buffers_created += 1,
            None => node.block_buffer_failed(link, block_size),
        }
    }

    fn fail(&mut self, error: SessionError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
        self.requests.push_back(CoreRequest::Abort(self.link));
    }
}

impl Core for SessionCore {
    type Error = SessionCoreError;

    fn handle_input(
        &mut self,
        link: LinkId,
        input: &[u8],
        fds: &mut ReceivedFds,
    ) -> Result<usize, Self::Error> {
        if let Some((socket, queue)) = self.adopted.get_mut(&link) {
            let socket = *socket;
            while let Some(fd) = fds.pop() {
                queue.push_back(fd);
            }
            // Input behind a greeting whose primary buffer was just mapped
            // (a broker peer's side B) is offered again at once.
            let mut consumed = 0;
            let result = loop {
                let Some((_, queue)) = self.adopted.get_mut(&link) else {
                    break Ok(consumed);
                };
                let rest = input.get(consumed..).unwrap_or_default();
                match self.session.handle_socket_stream(socket, rest, queue) {
                    Ok(used) => {
                        consumed += used;
                        if !self.service() || consumed == input.len() {
                            break Ok(consumed);
                        }
                    }
                    Err(e) => {
                        self.service();
                        break Err(e);
                    }
                }
            };
            return match result {
                Ok(used) => Ok(used),
                Err(e) => {
                    // Only that socket ends.
                    log::warn!("{socket}: {e}");
                    self.requests.push_back(CoreRequest::Abort(link));
                    Ok(input.len())
                }
            };
        }
        if link != self.link {
            return Ok(0);
        }
        // The driver bounds a link's received fds, so this queue is bounded.
        while let Some(fd) = fds.pop() {
            self.fds.push_back(fd);
        }
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or_default();
            consumed += self.session.handle_stream(rest, &mut self.fds)?;
            if !self.service() {
                break;
            }
        }
        if let Some(e) = self.error.clone() {
            return Err(e.into());
        }
        Ok(consumed)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.service();
        if let Some(t) = self.released.pop_front() {
            return Some(t);
        }
        loop {
            let t = self.session.poll_transmit()?;
            match self.driver_link(t.socket) {
                Some(link) => {
                    return Some(Transmit {
                        link,
                        bytes: t.bytes,
                        fds: t.fds,
                    });
                }
                // Not adopted yet (the adoption request follows the
                // transmits in the driver's turn): held until it is.
                None => self.held.entry(t.socket).or_default().push_back(t),
            }
        }
    }

    fn handle_link_adopted(&mut self, tag: u64, result: Result<LinkId, NewLinkError>) {
        let socket = SocketId(u32::try_from(tag).unwrap_or(u32::MAX));
        match result {
            Ok(link) => {
                self.adopted.insert(link, (socket, VecDeque::new()));
                for t in self.held.remove(&socket).unwrap_or_default() {
                    self.released.push_back(Transmit {
                        link,
                        bytes: t.bytes,
                        fds: t.fds,
                    });
                }
            }
            Err(e) => {
                log::warn!("{socket}: cannot adopt: {e}");
                self.held.remove(&socket);
                let _ = self.session.handle_socket_closed(socket);
                self.service();
            }
        }
    }

    fn poll_request(&mut self) -> Option<CoreRequest> {
        self.requests.pop_front()
    }

    fn handle_link_closed(&mut self, link: LinkId, reason: CloseReason) {
        if let Some((socket, _)) = self.adopted.remove(&link) {
            log::debug!("{socket} ({link}) closed: {reason}");
            let _ = self.session.handle_socket_closed(socket);
            self.service();
            return;
        }
        if link != self.link {
            return;
        }
        self.closed = true;
        self.fds.clear();
        // Before the handshake completed this is the session's error.
        if let Err(e) = self.session.handle_closed() {
            log::debug!("{link} closed during the handshake: {e}");
        }
        self.service();
        self.events.push_back(CoreEvent::LinkClosed(reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mojo_platform_channel::ShmBackend;

    #[test]
    fn an_unsealed_region_maps_only_from_a_trusted_peer() {
        let mut random = OsRandom::new().expect("random");
        let unsealed = || {
            let region = SharedMemoryRegion::create_with(
                RegionMode::Unsafe,
                65536,
                ShmBackend::DevShm,
                &mut OsRandom::new().expect("random"),
            )
            .expect("a /dev/shm region");
            let buffer = SharedBuffer {
                buffer_size: 65536,
                mode: RegionMode::Unsafe,
                guid: Guid::from(region.guid()),
            };
            (buffer, region.into_fds())
        };
        let (buffer, fds) = unsealed();
        assert!(
            map_region(&buffer, fds, false).is_err(),
            "untrusted, unsealed"
        );
        let (buffer, fds) = unsealed();
        let mapping = map_region(&buffer, fds, true).expect("trusted");
        assert_eq!(mapping.len(), 65536);
        // Our own regions are sealed memfds: they map without trust.
        let (_mapping, buffer, fds) = create_region(65536, &mut random).expect("memfd");
        assert!(map_region(&buffer, fds, false).is_ok());
        // A description that does not fit the fd is refused.
        let (_mapping, mut buffer, fds) = create_region(65536, &mut random).expect("memfd");
        buffer.buffer_size = 1 << 20;
        assert!(map_region(&buffer, fds, true).is_err());
    }
}
