//! [`ProxyCore`]: the sans-IO [`Proxy`] as a [`mojo_driver::Core`] over the
//! proxy's three sockets (and those it adopts: the inherit mode's referrer
//! link, links to introduced nodes), answering what the proxy asks of the OS with the
//! platform crate: the host's primary buffer and block buffers mapped, our
//! block buffers, the client's regions and data pipe rings created as
//! memfds ([`ProxyRings`]).
//!
//! No protocol logic lives here: links are mapped to [`ProxyLink`]s, fds
//! queued per link, memory made or mapped, and the first fatal error kept
//! for the exit status.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::os::fd::{BorrowedFd, OwnedFd};

use ipcz_node::node::{DriverBox, NodeEvent};
use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use mojo_bridge::proxy::{Proxy, ProxyError, ProxyEvent, ProxyLink};
use mojo_bridge::{NewRing, RingMemory, RingMemoryError};
use mojo_driver::{
    Backlog, CloseReason, Core, CoreRequest, LinkId, NewLinkError, ReceivedFds, Transmit,
};
use mojo_invitation::legacy::{FdAccess, RegionFds, RegionRequest};
use mojo_platform_channel::{FdAccessMode, Mapping, OsRandom, SharedMemoryRegion, ShmError};
use mojo_wire_kit::{Guid, RegionMode};

/// Why the proxy's run failed.
#[derive(Debug)]
pub enum CoreError {
    /// A peer broke its protocol, or the host left before inviting us.
    Proxy(ProxyError),
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Proxy(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CoreError {}

const LINKS: [ProxyLink; 4] = [
    ProxyLink::Host,
    ProxyLink::ClientBootstrap,
    ProxyLink::ClientNodeChannel,
    ProxyLink::Referrer,
];

/// Tag of the [`CoreRequest::Adopt`] for the inherit mode's referrer link.
const ADOPT_REFERRER: u64 = 1;

/// Tag bit of the [`CoreRequest::Adopt`]s for [`ProxyLink::Introduced`]
/// links (the rest of the tag is the link's number).
const ADOPT_INTRODUCED: u64 = 1 << 63;

fn slot(link: ProxyLink) -> usize {
    match link {
        ProxyLink::Host => 0,
        ProxyLink::ClientBootstrap => 1,
        ProxyLink::ClientNodeChannel => 2,
        ProxyLink::Referrer => 3,
        // Kept in `ProxyCore::introduced` instead.
        ProxyLink::Introduced(_) => usize::MAX,
    }
}

/// The proxy on its driver links: see the module docs.
#[derive(Debug)]
pub struct ProxyCore {
    proxy: Proxy<Mapping>,
    /// Driver link of each [`ProxyLink`], by [`slot`]; `None` once closed.
    links: [Option<LinkId>; 4],
    fds: [VecDeque<OwnedFd>; 4],
    /// Driver link and received fds of each adopted [`ProxyLink::Introduced`].
    introduced: BTreeMap<u64, (LinkId, VecDeque<OwnedFd>)>,
    random: OsRandom,
    requests: VecDeque<CoreRequest>,
    error: Option<ProxyError>,
    shutting_down: bool,
}

/// A new unsafe memfd region of `size` bytes (a block buffer of ours).
fn create_block_region(
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

/// Maps a region the host sent. The host is our broker, or in inherit mode
/// shares its broker with us (which made every primary buffer); either way
/// it launched this process and could end it anyway, so its unsealed memory
/// is trusted (the policy of `docs/ARCHITECTURE.md`).
fn map_host_region(buffer: &SharedBuffer, fds: Vec<OwnedFd>) -> Result<Mapping, ShmError> {
    SharedMemoryRegion::from_fds(
        buffer.mode,
        buffer.buffer_size as usize,
        u128::from(buffer.guid),
        fds,
    )?
    .trust_peer()
    .map()
}

/// Data pipe rings for the bridge: fresh ones are unsafe memfd regions of
/// ours; arriving ones are mapped by the platform crate's ring policy
/// ([`mojo_platform_channel::map_peer_ring`]: unsealed too, from either
/// peer, with its `SIGBUS` trade-off), a trust the proxy gives only to the
/// processes the host launched it with (`docs/OPERATIONS.md`, Shared memory).
#[derive(Debug)]
pub struct ProxyRings {
    random: OsRandom,
}

impl ProxyRings {
    /// A ring factory naming its regions from `random`.
    pub fn new(random: OsRandom) -> Self {
        Self { random }
    }
}

impl RingMemory<Mapping> for ProxyRings {
    fn create(&mut self, size: usize) -> Result<NewRing<Mapping>, RingMemoryError> {
        let failed = |e: ShmError| RingMemoryError::Create {
            size,
            reason: e.to_string(),
        };
        let region = SharedMemoryRegion::create(RegionMode::Unsafe, size, &mut self.random)
            .map_err(failed)?;
        let memory = region.map().map_err(failed)?;
        Ok(NewRing {
            memory,
            guid: Guid::from(region.guid()),
            fds: region.into_fds(),
        })
    }

    fn map(
        &mut self,
        size: usize,
        guid: Guid,
        fds: Vec<OwnedFd>,
    ) -> Result<Mapping, RingMemoryError> {
        mojo_platform_channel::map_peer_ring(size, u128::from(guid), fds).map_err(|e| {
            RingMemoryError::Map {
                size,
                reason: e.to_string(),
            }
        })
    }
}

fn probe(fd: BorrowedFd<'_>) -> Option<FdAccess> {
    match mojo_platform_channel::fd_access_mode(fd).ok()? {
        FdAccessMode::ReadOnly => Some(FdAccess::ReadOnly),
        FdAccessMode::WriteOnly => Some(FdAccess::WriteOnly),
        FdAccessMode::ReadWrite => Some(FdAccess::ReadWrite),
    }
}

impl ProxyCore {
    /// A core for `proxy` on the host's link, the client's bootstrap link
    /// and our end of the node channel.
    pub fn new(
        proxy: Proxy<Mapping>,
        host: LinkId,
        client_bootstrap: LinkId,
        client_node_channel: LinkId,
        random: OsRandom,
    ) -> Self {
        Self {
            proxy,
            links: [
                Some(host),
                Some(client_bootstrap),
                Some(client_node_channel),
                None,
            ],
            fds: Default::default(),
            introduced: BTreeMap::new(),
            random,
            requests: VecDeque::new(),
            error: None,
            shutting_down: false,
        }
    }

    /// The error that ended the proxy's work, if one did.
    pub fn error(&self) -> Option<&ProxyError> {
        self.error.as_ref()
    }

    /// The proxy (for its snapshot and totals).
    pub fn proxy(&self) -> &Proxy<Mapping> {
        &self.proxy
    }

    /// The driver link of each proxy link still open.
    pub fn links(&self) -> impl Iterator<Item = (ProxyLink, LinkId)> + '_ {
        LINKS
            .into_iter()
            .filter_map(|l| Some((l, self.links[slot(l)]?)))
            .chain(
                self.introduced
                    .iter()
                    .map(|(n, (id, _))| (ProxyLink::Introduced(*n), *id)),
            )
    }

    /// Received fds waiting for the rest of their frame.
    pub fn queued_fds(&self) -> usize {
        self.fds.iter().map(VecDeque::len).sum::<usize>()
            + self
                .introduced
                .values()
                .map(|(_, q)| q.len())
                .sum::<usize>()
    }

    fn link_id(&self, link: ProxyLink) -> Option<LinkId> {
        match link {
            ProxyLink::Introduced(n) => self.introduced.get(&n).map(|(id, _)| *id),
            _ => self.links[slot(link)],
        }
    }

    fn fds_mut(&mut self, link: ProxyLink) -> Option<&mut VecDeque<OwnedFd>> {
        match link {
            ProxyLink::Introduced(n) => self.introduced.get_mut(&n).map(|(_, q)| q),
            _ => self.fds.get_mut(slot(link)),
        }
    }

    /// Whether every pairing closed (the normal end).
    pub fn is_finished(&self) -> bool {
        self.proxy.is_finished()
    }

    /// SIGTERM / SIGINT: forward what arrived, close every pairing, then
    /// shut down once the queued frames are written.
    pub fn close_all(&mut self) {
        self.proxy.close_all();
        self.shut_down();
    }

    fn which(&self, link: LinkId) -> Option<ProxyLink> {
        self.links().find(|(_, id)| *id == link).map(|(l, _)| l)
    }

    fn shut_down(&mut self) {
        if !self.shutting_down {
            self.shutting_down = true;
            self.requests.push_back(CoreRequest::Shutdown);
        }
    }

    fn fail(&mut self, error: ProxyError) {
        if self.error.is_none() {
            self.error = Some(error);
        }
        self.shut_down();
    }

    /// Answers the proxy's requests; returns whether the primary buffer was
    /// just mapped (the host's input behind the greeting is then offered
    /// again).
    fn service(&mut self) -> bool {
        let mut mapped_primary = false;
        while let Some(event) = self.proxy.poll_event() {
            match event {
                ProxyEvent::MapPrimaryBuffer { buffer, fd } => {
                    match map_host_region(&buffer, vec![fd]) {
                        Ok(mapping) => match self.proxy.primary_buffer_mapped(mapping) {
                            Ok(()) => mapped_primary = true,
                            Err(e) => self.fail(e),
                        },
                        Err(e) => {
                            log::error!("host: cannot map the primary buffer: {e}");
                            self.fail(ProxyError::HostClosedEarly);
                        }
                    }
                }
                ProxyEvent::AdoptReferrer { fd } => self.requests.push_back(CoreRequest::Adopt {
                    fd,
                    tag: ADOPT_REFERRER,
                }),
                ProxyEvent::AdoptIntroduced {
                    link,
                    node,
                    fd,
                    buffer,
                    buffer_fds,
                } => self.adopt_introduced(link, node, fd, &buffer, buffer_fds),
                ProxyEvent::Memory(event) => self.answer_memory(event),
                ProxyEvent::RegionRequest(request) => self.answer_region(request),
                ProxyEvent::PairingOpened { pairing } => log::info!("pairing {pairing} opened"),
                ProxyEvent::PairingClosed { pairing } => log::info!("pairing {pairing} closed"),
                ProxyEvent::Dropped(event) => log::warn!("{event:?}"),
                ProxyEvent::Finished => {
                    log::info!("every pairing is closed; exiting");
                    self.shut_down();
                }
            }
        }
        mapped_primary
    }

    /// [`ProxyEvent::AdoptIntroduced`]: the buffer mapped as the host's
    /// memory is, then the socket adopted.
    fn adopt_introduced(
        &mut self,
        link: ProxyLink,
        node: ipcz_wire::types::NodeName,
        fd: OwnedFd,
        buffer: &SharedBuffer,
        buffer_fds: Vec<OwnedFd>,
    ) {
        let ProxyLink::Introduced(n) = link else {
            return;
        };
        let result = match map_host_region(buffer, buffer_fds) {
            Ok(mapping) => self.proxy.introduction_mapped(link, mapping),
            Err(e) => {
                log::error!("host: cannot map the primary buffer of {link} to node {node}: {e}");
                self.proxy.introduction_unusable(link)
            }
        };
        match result {
            Ok(()) => self.requests.push_back(CoreRequest::Adopt {
                fd,
                tag: ADOPT_INTRODUCED | n,
            }),
            Err(e) => self.fail(e),
        }
    }

    fn answer_memory(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::CreateBlockBuffer {
                link,
                block_size,
                buffer_size,
            } => {
                let made = create_block_region(buffer_size, &mut self.random);
                let Some(node) = self.proxy.ipcz_mut() else {
                    return;
                };
                let provided = made.ok().and_then(|(mapping, buffer, fds)| {
                    let boxed = DriverBox::new(DriverObject::SharedBuffer(buffer), fds).ok()?;
                    node.provide_block_buffer(link, block_size, mapping, boxed)
                        .ok()
                });
                if provided.is_none() {
                    node.block_buffer_failed(link, block_size);
                }
            }
            NodeEvent::MapBlockBuffer {
                link, id, buffer, ..
            } => {
                let (object, fds) = buffer.into_parts();
                let mapped = match object {
                    DriverObject::SharedBuffer(b) => map_host_region(&b, fds).ok(),
                    _ => None,
                };
                let Some(node) = self.proxy.ipcz_mut() else {
                    return;
                };
                match mapped {
                    Some(mapping) => {
                        let _ = node.block_buffer_mapped(link, id, mapping);
                    }
                    None => node.block_buffer_unmappable(link, id),
                }
            }
            NodeEvent::MemoryRequested { link, size } => {
                let made = create_block_region(size.max(1) as usize, &mut self.random);
                if let (Ok((_mapping, buffer, fds)), Some(node)) = (made, self.proxy.ipcz_mut()) {
                    if let Ok(boxed) = DriverBox::new(DriverObject::SharedBuffer(buffer), fds) {
                        let _ = node.provide_memory(link, size, boxed);
                    }
                }
            }
            other => log::debug!("ipcz node: {other:?}"),
        }
    }

    /// A legacy client's `BUFFER_REQUEST`: a writable memfd region, sent as
    /// its read-write and read-only fds.
    fn answer_region(&mut self, request: RegionRequest) {
        let made = usize::try_from(request.size)
            .ok()
            .filter(|&size| size > 0)
            .and_then(|size| {
                SharedMemoryRegion::create(RegionMode::Writable, size, &mut self.random).ok()
            });
        let answered = match made {
            Some(region) => {
                let guid = Guid::from(region.guid());
                let mut fds = region.into_fds().into_iter();
                match (fds.next(), fds.next()) {
                    (Some(read_write), Some(read_only)) => self.proxy.answer_region(
                        request.id,
                        RegionFds {
                            guid,
                            read_write,
                            read_only,
                        },
                        &probe,
                    ),
                    _ => self.proxy.fail_region(request.id),
                }
            }
            None => {
                log::warn!(
                    "legacy client: cannot create a region of {} bytes",
                    request.size
                );
                self.proxy.fail_region(request.id)
            }
        };
        if let Err(e) = answered {
            log::warn!("legacy client buffer request: {e}");
            let _ = self.proxy.fail_region(request.id);
        }
    }
}

impl Core for ProxyCore {
    type Error = CoreError;

    fn handle_input(
        &mut self,
        link: LinkId,
        input: &[u8],
        fds: &mut ReceivedFds,
    ) -> Result<usize, CoreError> {
        let Some(which) = self.which(link) else {
            return Ok(input.len());
        };
        let mut queue = self.fds_mut(which).map(std::mem::take).unwrap_or_default();
        // The driver bounds a link's received fds, so this queue is bounded.
        while let Some(fd) = fds.pop() {
            queue.push_back(fd);
        }
        let mut consumed = 0;
        let result = loop {
            let rest = input.get(consumed..).unwrap_or_default();
            match self.proxy.handle_stream(which, rest, &mut queue) {
                Ok(used) => consumed += used,
                Err(e) => break Err(CoreError::Proxy(e)),
            }
            if !self.service() {
                break Ok(consumed);
            }
        };
        if let Some(slot) = self.fds_mut(which) {
            *slot = queue;
        }
        result
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.service();
        loop {
            let t = self.proxy.poll_transmit()?;
            // A frame for a link already gone is dropped with its fds.
            if let Some(link) = self.link_id(t.link) {
                return Some(Transmit {
                    link,
                    bytes: t.bytes,
                    fds: t.fds,
                });
            }
        }
    }

    fn poll_request(&mut self) -> Option<CoreRequest> {
        self.service();
        self.requests.pop_front()
    }

    fn recycle(&mut self, link: LinkId, buffer: Vec<u8>) {
        if let Some(which) = self.which(link) {
            self.proxy.recycle(which, buffer);
        }
    }

    /// Back-pressure: while one side's socket has a backlog past the
    /// driver's high-water mark, the links that feed it are not read (their
    /// bytes wait in the kernel, which in time blocks the sender). Every
    /// pipe shares its side's socket, so one slow reader slows them all.
    fn handle_backlog(&mut self, link: LinkId, backlog: Backlog) {
        let Some(which) = self.which(link) else {
            return;
        };
        let feeders: Vec<ProxyLink> = match which {
            ProxyLink::Host | ProxyLink::Referrer | ProxyLink::Introduced(_) => {
                vec![ProxyLink::ClientNodeChannel]
            }
            // Every ipcz link feeds the client.
            ProxyLink::ClientNodeChannel => self
                .links()
                .map(|(l, _)| l)
                .filter(|l| {
                    matches!(
                        l,
                        ProxyLink::Host | ProxyLink::Referrer | ProxyLink::Introduced(_)
                    )
                })
                .collect(),
            ProxyLink::ClientBootstrap => Vec::new(),
        };
        for feeder in &feeders {
            if let Some(id) = self.link_id(*feeder) {
                log::debug!("{which} backlog {backlog:?}: {feeder} paused or resumed");
                self.requests.push_back(match backlog {
                    Backlog::High => CoreRequest::PauseReading(id),
                    Backlog::Low => CoreRequest::ResumeReading(id),
                });
            }
        }
    }

    fn handle_link_adopted(&mut self, tag: u64, result: Result<LinkId, NewLinkError>) {
        match (tag, result) {
            (ADOPT_REFERRER, Ok(link)) => {
                self.links[slot(ProxyLink::Referrer)] = Some(link);
                self.proxy.referrer_adopted();
            }
            (tag, Ok(link)) if tag & ADOPT_INTRODUCED != 0 => {
                let which = ProxyLink::Introduced(tag & !ADOPT_INTRODUCED);
                self.introduced
                    .insert(tag & !ADOPT_INTRODUCED, (link, VecDeque::new()));
                self.proxy.introduced_adopted(which);
            }
            (tag, Err(e)) if tag & ADOPT_INTRODUCED != 0 => {
                // Only the routes over it break, as if it had closed.
                let which = ProxyLink::Introduced(tag & !ADOPT_INTRODUCED);
                log::warn!("{which}: cannot adopt its socket: {e}");
                if let Err(e) = self.proxy.handle_link_closed(which) {
                    self.fail(e);
                }
            }
            (_, Ok(link)) => self.requests.push_back(CoreRequest::Abort(link)),
            (_, Err(e)) => {
                log::error!("host referrer link: {e}");
                self.fail(ProxyError::HostClosedEarly);
            }
        }
    }

    fn handle_link_closed(&mut self, link: LinkId, reason: CloseReason) {
        let Some(which) = self.which(link) else {
            return;
        };
        match which {
            ProxyLink::Introduced(n) => {
                self.introduced.remove(&n);
            }
            _ => {
                self.links[slot(which)] = None;
                self.fds[slot(which)].clear();
            }
        }
        if self.shutting_down {
            log::debug!("{which} closed: {reason}");
            return;
        }
        log::info!("{which} closed: {reason}");
        if let Err(e) = self.proxy.handle_link_closed(which) {
            self.fail(e);
        }
        self.service();
    }
}
