//! [`SessionCore`]: an ipcz [`Session`] as a [`mojo_driver::Core`] on one
//! real socket, answering the session's memory requests with the platform
//! crate (memfd regions, [`Mapping`]s). The ipcz modes of the peers run a
//! node through it; a test drives two of them over a socket pair.
//!
//! What the core does on its own: it feeds the link's stream and fds to the
//! session, maps the primary buffer the broker sent (trusting the broker,
//! per the shared memory policy of `docs/ARCHITECTURE.md`), creates block
//! buffers the node asks for, maps the ones the peer adds (trusting the
//! peer only if [`SessionCoreOptions::trust_peer_memory`] says so; a sealed
//! memfd maps either way), answers RequestMemory, and closes the socket
//! when the link is dropped. Everything else is the application's: the
//! session's other events come out of [`SessionCore::poll_event`], and
//! portals are used on [`SessionCore::node_mut`] between driver turns.

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::OwnedFd;

use ipcz_node::node::{DriverBox, Node, NodeEvent};
use ipcz_node::router::NodeLinkId;
use ipcz_node::session::{Session, SessionConfig, SessionError, SessionEvent};
use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::limits::PRIMARY_BUFFER_SIZE;
use ipcz_wire::types::NodeName;
use mojo_driver::{CloseReason, Core, CoreRequest, LinkId, ReceivedFds, Transmit};
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
}

fn guid_of(value: u128) -> Guid {
    Guid {
        high: (value >> 64) as u64,
        low: value as u64,
    }
}

fn u128_of(guid: Guid) -> u128 {
    (u128::from(guid.high) << 64) | u128::from(guid.low)
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
        guid: guid_of(region.guid()),
    };
    Ok((mapping, buffer, region.into_fds()))
}

/// Maps a region the peer sent (`trust`: even if unsealed).
fn map_region(buffer: &SharedBuffer, fds: Vec<OwnedFd>, trust: bool) -> Result<Mapping, ShmError> {
    let region = SharedMemoryRegion::from_fds(
        buffer.mode,
        buffer.buffer_size as usize,
        u128_of(buffer.guid),
        fds,
    )?;
    let region = if trust { region.trust_peer() } else { region };
    region.map()
}

impl SessionCore {
    /// A non-broker on `link` (towards a broker, whose memory it trusts).
    pub fn non_broker(link: LinkId, config: SessionConfig) -> Result<Self, SessionCoreError> {
        let session = Session::non_broker(config)?;
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
        let session = Session::broker(name, config, primary, mapping, random)?;
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
        })
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
                    // Our broker's memory: trusted (ARCHITECTURE.md policy).
                    match map_region(&buffer, vec![fd], true) {
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
                SessionEvent::Node(NodeEvent::LinkDropped {
                    link,
                    remote,
                    error,
                }) => {
                    self.requests.push_back(CoreRequest::Abort(self.link));
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
        let t = self.session.poll_transmit()?;
        Some(Transmit {
            link: self.link,
            bytes: t.bytes,
            fds: t.fds,
        })
    }

    fn poll_request(&mut self) -> Option<CoreRequest> {
        self.requests.pop_front()
    }

    fn handle_link_closed(&mut self, link: LinkId, reason: CloseReason) {
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
    fn guids_round_trip_through_the_wire_form() {
        let value = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210_u128;
        let guid = guid_of(value);
        assert_eq!(guid.high, 0x0123_4567_89ab_cdef);
        assert_eq!(guid.low, 0xfedc_ba98_7654_3210);
        assert_eq!(u128_of(guid), value);
    }

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
                guid: guid_of(region.guid()),
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
