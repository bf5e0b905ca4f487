//! The Mojo+ipcz system: an ipcz session ([`SessionCore`], a broker for
//! the process that sends the invitation, a non-broker for the one that
//! accepts it) as a runtime [`Protocol`], and the calls that join a process
//! to an ipcz network: [`send_invitation`] (as the broker),
//! [`send_invitation_via_broker`] (a non-broker that first joins its own
//! broker), [`accept_invitation`] (a non-broker), and [`run_broker`].
//! [`send_broker_invitation`] makes the process a full broker, which may
//! add isolated connections to other brokers ([`connect_isolated`]).
//!
//! Pipes are portals; shared buffers travel as boxed SharedBuffer driver
//! objects (their mode's fds), platform handles as WrappedPlatformHandles
//! (§1.6.4), as MojoIpcz boxes them; data pipe ends as boxed DataPipes
//! with their control portals appended to the handle list (§8.3, held in
//! [`data`]). Attachment `k` is initial portal `k + 1` (§4.5);
//! portal 0 and every portal no attachment names are closed at once.
//!
//! [`send_invitation_via_broker`] (spec `ipcz.md` §4.3, the test host's
//! `--mode=inherit`): the inviter is a non-broker that first accepts the
//! invitation of its broker (a broker with the one pipe [`BROKER_PIPE`],
//! such as [`run_broker`]), then refers the invitee's socket to that
//! broker; the attachments are the initial portals of the referrer link
//! the broker's answer brings.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use ipcz_node::node::{DriverBox, NodeHandle};
use ipcz_node::router::{Handle, PortalError, RouterId};
use ipcz_node::session::{SessionConfig, SessionEvent};
use ipcz_wire::driver_object::{DriverObject, SharedBuffer, WrappedPlatformHandle, WrapperType};
use ipcz_wire::types::NodeName;
use mojo_driver::{
    CloseReason, Core, CoreRequest, Driver, LinkId, NewLinkError, ReceivedFds, Transmit,
};
use mojo_invitation::ipcz::{MAX_MOJO_INITIAL_PORTALS, attachment_portal};
use mojo_platform_channel::{Endpoint, OsRandom, RandomSource};
use mojo_wire_kit::{Guid, RegionMode};

pub mod data;
mod isolated;
pub mod session_core;

pub use isolated::{ISOLATED_PIPE, connect_isolated};

use self::data::{DataPipes, EndKind, discard, split_control_portals};
use self::session_core::{CoreEvent, SessionCore, SessionCoreError};
use crate::runtime::{
    ConnectError, Protocol, RealSystem, RegionObject, RegionSource, WireHandle, WireMessage,
};
use crate::two_phase::DataEndState;
use crate::{
    MessagePipe, MojoError, MojoResult, MojoSystem, RegionAccessMode, Signals, SignalsState,
};

/// How long either side waits for the other's greeting.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The one attachment of the broker copy's invitation (test-peers.md §1).
pub const BROKER_PIPE: &[u8] = b"broker-pipe";

/// Where a protocol's attachments come from.
#[derive(Debug)]
enum Attach {
    /// The initial portals of the session's link.
    Initial,
    /// `--mode=inherit` host: once linked to the broker, refer `socket`
    /// (the proxy's) with `portals` initial portals; the attachments are
    /// the referrer link's. The broker pipe is kept open meanwhile.
    Referral {
        socket: Option<OwnedFd>,
        portals: u32,
        broker_pipe: Option<RouterId>,
    },
}

/// An ipcz session as a runtime [`Protocol`].
#[derive(Debug)]
pub struct IpczProtocol {
    core: SessionCore,
    /// The initial portal of each attachment, in attachment order.
    wanted: Vec<u32>,
    /// Set once the link is up.
    attachments: Option<Vec<RouterId>>,
    /// Why the link went away, if it did.
    ended: Option<String>,
    attach: Attach,
    /// The data pipe ends held here.
    data: DataPipes,
    /// Isolated connections waiting to be taken.
    isolated: isolated::IsolatedLinks,
}

/// A runtime handle that needs no protocol state as a parcel handle
/// (data pipe ends go through [`DataPipes::take_for_sending`]).
fn to_node(h: WireHandle<RouterId>) -> MojoResult<NodeHandle> {
    let boxed = match h {
        WireHandle::Pipe(p) => return Ok(Handle::Portal(p)),
        WireHandle::Producer(_) | WireHandle::Consumer(_) => {
            return Err(MojoError::Internal);
        }
        WireHandle::Platform(fd) => DriverBox::new(
            DriverObject::WrappedPlatformHandle(WrappedPlatformHandle {
                wrapper_type: WrapperType::TRANSMISSIBLE,
            }),
            vec![fd],
        ),
        WireHandle::Buffer(b) => {
            let (mode, fds): (RegionMode, Vec<OwnedFd>) = match b.mode {
                RegionAccessMode::Writable => {
                    (RegionMode::Writable, b.rw.into_iter().chain(b.ro).collect())
                }
                RegionAccessMode::ReadOnly => (RegionMode::ReadOnly, b.ro.into_iter().collect()),
                RegionAccessMode::Unsafe => (RegionMode::Unsafe, b.rw.into_iter().collect()),
            };
            let buffer_size = u32::try_from(b.size).map_err(|_| MojoError::InvalidArgument)?;
            DriverBox::new(
                DriverObject::SharedBuffer(SharedBuffer {
                    buffer_size,
                    mode,
                    guid: Guid::from(b.guid),
                }),
                fds,
            )
        }
    };
    boxed
        .map(Handle::Object)
        .map_err(|_| MojoError::InvalidArgument)
}

/// A parcel handle that needs no protocol state as a runtime handle;
/// objects the peers do not use (transports, and data pipes, which
/// [`IpczProtocol::read_message`] adopts first) are dropped with their fds.
fn from_node(h: NodeHandle) -> Option<WireHandle<RouterId>> {
    let boxed = match h {
        Handle::Portal(p) => return Some(WireHandle::Pipe(p)),
        Handle::Object(b) => b,
    };
    let (object, fds) = boxed.into_parts();
    let mut fds = fds.into_iter();
    match object {
        DriverObject::WrappedPlatformHandle(_) | DriverObject::TransmissiblePlatformHandle => {
            fds.next().map(WireHandle::Platform)
        }
        DriverObject::SharedBuffer(b) => {
            let (rw, ro, mode) = match b.mode {
                RegionMode::Writable => (fds.next(), fds.next(), RegionAccessMode::Writable),
                RegionMode::ReadOnly => (None, fds.next(), RegionAccessMode::ReadOnly),
                RegionMode::Unsafe => (fds.next(), None, RegionAccessMode::Unsafe),
            };
            Some(WireHandle::Buffer(RegionObject {
                rw,
                ro,
                mode,
                size: u64::from(b.buffer_size),
                guid: u128::from(b.guid),
            }))
        }
        DriverObject::Transport(_) | DriverObject::DataPipe(_) => None,
    }
}

impl IpczProtocol {
    fn new(core: SessionCore, wanted: Vec<u32>) -> Self {
        Self {
            core,
            wanted,
            attachments: None,
            ended: None,
            attach: Attach::Initial,
            data: DataPipes::default(),
            isolated: isolated::IsolatedLinks::default(),
        }
    }

    /// The attachments' portals from `portals`; the others are closed,
    /// except `keep`.
    fn take_attachments(&mut self, portals: &[Option<RouterId>], keep: Option<RouterId>) {
        let mut attachments = Vec::new();
        for &i in &self.wanted {
            if let Some(Some(p)) = portals.get(i as usize) {
                attachments.push(*p);
            }
        }
        if let Some(node) = self.core.node_mut() {
            for p in portals.iter().flatten() {
                if !attachments.contains(p) && Some(*p) != keep {
                    let _ = node.close(*p);
                }
            }
        }
        if attachments.len() == self.wanted.len() {
            self.attachments = Some(attachments);
        } else {
            self.ended = Some("the peer opened too few initial portals".into());
        }
    }

    /// The inherit host joined its broker: keep the broker pipe, close the
    /// rest, refer the proxy.
    fn refer_proxy(&mut self, portals: &[Option<RouterId>]) {
        let Attach::Referral {
            socket,
            portals: count,
            broker_pipe,
        } = &mut self.attach
        else {
            return;
        };
        let keep = portals
            .get(attachment_portal(BROKER_PIPE) as usize)
            .copied()
            .flatten();
        *broker_pipe = keep;
        let count = *count;
        let socket = socket.take();
        if let Some(node) = self.core.node_mut() {
            for p in portals.iter().flatten() {
                if Some(*p) != keep {
                    let _ = node.close(*p);
                }
            }
        }
        let Some(socket) = socket else {
            return;
        };
        if let Err(e) = self.core.refer(socket, count) {
            self.ended = Some(format!("cannot refer the proxy to the broker: {e}"));
        }
    }

    /// The attachments' portals once the link is up.
    pub fn attachments(&self) -> Option<&[RouterId]> {
        self.attachments.as_deref()
    }

    /// Why the link ended, if it did.
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }

    /// Takes the core's events: the initial portals once established
    /// (closing those no attachment names), link loss.
    fn drain_events(&mut self) {
        while let Some(event) = self.core.poll_event() {
            match event {
                CoreEvent::Session(SessionEvent::Established { portals, .. }) => {
                    match self.attach {
                        Attach::Initial => self.take_attachments(&portals, None),
                        Attach::Referral { .. } => self.refer_proxy(&portals),
                    }
                }
                CoreEvent::Session(SessionEvent::ReferralAccepted { portals, .. }) => {
                    self.take_attachments(&portals, None);
                }
                CoreEvent::Session(SessionEvent::BrokerConnected {
                    socket, portals, ..
                }) => {
                    self.isolated.connected(socket, &portals);
                    // The pipe's portal stays; the rest are closed.
                    let keep = portals
                        .get(attachment_portal(&ISOLATED_PIPE) as usize)
                        .copied()
                        .flatten();
                    if let Some(node) = self.core.node_mut() {
                        for p in portals.iter().flatten().filter(|p| Some(**p) != keep) {
                            let _ = node.close(*p);
                        }
                    }
                }
                CoreEvent::Session(SessionEvent::SocketFailed { socket, error }) => {
                    self.isolated.failed(socket, error.to_string());
                }
                CoreEvent::Session(SessionEvent::ReferralFailed { error, .. }) => {
                    self.ended = Some(format!("the broker refused the proxy's referral: {error}"));
                }
                CoreEvent::Session(SessionEvent::Node(
                    ipcz_node::node::NodeEvent::LinkDropped { error, .. },
                )) => {
                    eprintln!("[ipcz] link dropped: {error}");
                    self.ended = Some(error.to_string());
                }
                CoreEvent::LinkClosed(reason) => {
                    if self.ended.is_none() {
                        self.ended = Some(reason.to_string());
                    }
                }
                CoreEvent::Session(_) => {}
            }
        }
    }

    fn node(&mut self) -> MojoResult<&mut ipcz_node::node::Node<mojo_platform_channel::Mapping>> {
        self.core.node_mut().ok_or(MojoError::FailedPrecondition)
    }
}

fn portal_error(e: PortalError) -> MojoError {
    match e {
        PortalError::NotAPortal | PortalError::InvalidTransfer => MojoError::InvalidArgument,
        PortalError::PeerClosed => MojoError::FailedPrecondition,
        PortalError::TooManyFds => MojoError::ResourceExhausted,
        _ => MojoError::ResourceExhausted,
    }
}

impl Protocol for IpczProtocol {
    type Pipe = RouterId;
    type Error = SessionCoreError;

    fn handle_input(
        &mut self,
        link: LinkId,
        input: &[u8],
        fds: &mut ReceivedFds,
    ) -> Result<usize, SessionCoreError> {
        let result = self.core.handle_input(link, input, fds);
        self.drain_events();
        result
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.core.poll_transmit();
        self.drain_events();
        t
    }

    fn poll_request(&mut self) -> Option<CoreRequest> {
        self.core.poll_request()
    }

    fn handle_link_closed(&mut self, link: LinkId, reason: CloseReason) {
        self.core.handle_link_closed(link, reason);
        self.drain_events();
    }

    fn handle_link_adopted(&mut self, tag: u64, result: Result<LinkId, NewLinkError>) {
        self.core.handle_link_adopted(tag, result);
    }

    fn create_pipe(&mut self) -> MojoResult<(RouterId, RouterId)> {
        Ok(self.node()?.create_portal_pair())
    }

    fn write_message(
        &mut self,
        pipe: RouterId,
        bytes: &[u8],
        handles: Vec<WireHandle<RouterId>>,
    ) -> MojoResult<()> {
        let Some(node) = self.core.node_mut() else {
            return Err(MojoError::FailedPrecondition);
        };
        let mut converted = Vec::with_capacity(handles.len());
        let mut controls = Vec::new();
        let mut bad = false;
        for h in handles {
            let h = match h {
                WireHandle::Producer(id) | WireHandle::Consumer(id) => self
                    .data
                    .take_for_sending(node, id)
                    .map(|(boxed, control)| {
                        controls.push(control);
                        boxed
                    }),
                other => to_node(other),
            };
            match h {
                Ok(h) => converted.push(h),
                Err(_) => bad = true,
            }
        }
        // §8.3: each data pipe's control portal follows every Mojo handle.
        converted.extend(controls.into_iter().map(Handle::Portal));
        if bad {
            discard(node, converted);
            return Err(MojoError::InvalidArgument);
        }
        let moved: Vec<RouterId> = converted
            .iter()
            .filter_map(|h| match h {
                Handle::Portal(p) => Some(*p),
                Handle::Object(_) => None,
            })
            .collect();
        node.put(pipe, bytes.to_vec(), converted).map_err(|e| {
            // The message is destroyed: its pipes close, so their peers
            // (and data pipe peers) see it.
            for p in moved {
                let _ = node.close(p);
            }
            portal_error(e)
        })
    }

    fn read_message(&mut self, pipe: RouterId) -> MojoResult<WireMessage<RouterId>> {
        let Some(node) = self.core.node_mut() else {
            return Err(MojoError::FailedPrecondition);
        };
        match node.get(pipe) {
            Ok(Some(parcel)) => {
                let (handles, controls) =
                    split_control_portals(parcel.handles).unwrap_or_else(|all| {
                        // A malformed message: every handle is discarded.
                        discard(node, all);
                        (Vec::new(), Vec::new())
                    });
                let mut controls = controls.into_iter();
                let mut out = Vec::with_capacity(handles.len());
                for h in handles {
                    let adopted = match h {
                        Handle::Object(b) if matches!(b.object(), DriverObject::DataPipe(_)) => {
                            let (object, fds) = b.into_parts();
                            match (object, controls.next()) {
                                (DriverObject::DataPipe(dp), Some(control)) => self
                                    .data
                                    .adopt(node, &dp, fds, control)
                                    .map(|(id, kind)| match kind {
                                        EndKind::Producer => WireHandle::Producer(id),
                                        EndKind::Consumer => WireHandle::Consumer(id),
                                    }),
                                _ => None,
                            }
                        }
                        other => from_node(other),
                    };
                    out.extend(adopted);
                }
                Ok((parcel.data, out))
            }
            Ok(None) => {
                let status = node.status(pipe).map_err(portal_error)?;
                if status.dead {
                    Err(MojoError::FailedPrecondition)
                } else {
                    Err(MojoError::ShouldWait)
                }
            }
            Err(e) => Err(portal_error(e)),
        }
    }

    fn pipe_signals(&self, pipe: RouterId) -> SignalsState {
        let Some(Ok(s)) = self.core.node().map(|n| n.status(pipe)) else {
            return SignalsState::default();
        };
        SignalsState::of_pipe(s.readable_parcels > 0, !s.dead, s.peer_closed)
    }

    fn close_pipe(&mut self, pipe: RouterId) {
        if let Some(node) = self.core.node_mut() {
            let _ = node.close(pipe);
        }
    }

    fn create_region(&mut self, _size: u64) -> MojoResult<RegionSource> {
        // Every ipcz node makes its own regions.
        Ok(RegionSource::Local)
    }

    fn poll_region(&mut self) -> Option<MojoResult<RegionObject>> {
        None
    }

    fn create_data_pipe(&mut self, element_size: u32, capacity: u32) -> MojoResult<(u64, u64)> {
        let node = self.core.node_mut().ok_or(MojoError::FailedPrecondition)?;
        self.data.create(node, element_size, capacity)
    }

    fn write_data(&mut self, id: u64, data: &[u8]) -> MojoResult<usize> {
        let node = self.core.node_mut().ok_or(MojoError::FailedPrecondition)?;
        self.data.write(node, id, data)
    }

    fn read_data(&mut self, id: u64, buf: &mut [u8]) -> MojoResult<usize> {
        let node = self.core.node_mut().ok_or(MojoError::FailedPrecondition)?;
        self.data.read(node, id, buf)
    }

    fn data_signals(&mut self, id: u64) -> SignalsState {
        match self.core.node_mut() {
            Some(node) => self.data.signals(node, id),
            None => SignalsState::default(),
        }
    }

    fn close_data(&mut self, id: u64) {
        if let Some(node) = self.core.node_mut() {
            self.data.close(node, id);
        }
    }

    fn data_state(&mut self, id: u64) -> MojoResult<DataEndState> {
        let node = self.core.node_mut().ok_or(MojoError::FailedPrecondition)?;
        self.data.state(node, id)
    }

    fn peek_data(&mut self, id: u64, buf: &mut [u8]) -> MojoResult<usize> {
        let node = self.core.node_mut().ok_or(MojoError::FailedPrecondition)?;
        self.data.peek(node, id, buf)
    }

    fn discard_data(&mut self, id: u64, len: usize) -> MojoResult<usize> {
        let node = self.core.node_mut().ok_or(MojoError::FailedPrecondition)?;
        self.data.discard(node, id, len)
    }
}

/// The initial portals of the attachments `names` (§4.5).
fn attachment_portals(names: &[Vec<u8>]) -> Vec<u32> {
    names.iter().map(|n| attachment_portal(n)).collect()
}

/// Starts the runtime over `protocol` and waits for the attachments.
fn start(
    driver: Driver,
    protocol: IpczProtocol,
) -> Result<(RealSystem<IpczProtocol>, Vec<MessagePipe>), ConnectError> {
    let system = RealSystem::start(driver, protocol).map_err(ConnectError::from_display)?;
    let portals = system
        .wait_for(Some(Instant::now() + HANDSHAKE_TIMEOUT), |p| {
            if let Some(e) = p.ended() {
                return Some(Err(ConnectError::from_display(e)));
            }
            p.attachments().map(|a| Ok(a.to_vec()))
        })
        .ok_or_else(|| ConnectError::new("no ipcz connection"))??;
    let pipes = portals
        .into_iter()
        .map(|p| system.adopt_pipe(p).map_err(ConnectError::from_display))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((system, pipes))
}

/// `mojo::OutgoingInvitation::Send` as an ipcz broker: makes this process
/// the broker of a new network and invites the peer on `socket` with one
/// pipe per name in `attachments` (initial portal `attachment_portal(name)`,
/// §4.5). Waits up to [`HANDSHAKE_TIMEOUT`] for the link, then returns the
/// system and the attached pipes in `attachments`' order.
pub fn send_invitation(
    socket: OwnedFd,
    attachments: &[Vec<u8>],
) -> Result<(RealSystem<IpczProtocol>, Vec<MessagePipe>), ConnectError> {
    invite(socket, attachments, ipcz_node::node::NodeRole::NonBroker)
}

/// [`send_invitation`] with this process's node a full broker
/// (`NodeRole::Broker`, Mojo's `is_broker_process`, as Chrome's browser
/// process): it serves its invitees' referrals, never asks for
/// introductions, and may make isolated connections to other brokers
/// ([`connect_isolated`]).
pub fn send_broker_invitation(
    socket: OwnedFd,
    attachments: &[Vec<u8>],
) -> Result<(RealSystem<IpczProtocol>, Vec<MessagePipe>), ConnectError> {
    invite(socket, attachments, ipcz_node::node::NodeRole::Broker)
}

fn invite(
    socket: OwnedFd,
    attachments: &[Vec<u8>],
    role: ipcz_node::node::NodeRole,
) -> Result<(RealSystem<IpczProtocol>, Vec<MessagePipe>), ConnectError> {
    let mut rng = OsRandom::new().map_err(ConnectError::from_display)?;
    let mut driver = Driver::new().map_err(ConnectError::from_display)?;
    let wanted = attachment_portals(attachments);
    let link = driver
        .adopt_fd(socket)
        .map_err(ConnectError::from_display)?;
    let config = SessionConfig {
        initial_portals: wanted.iter().max().map_or(1, |m| m + 1),
        node: ipcz_node::node::NodeConfig {
            role,
            ..ipcz_node::node::NodeConfig::default()
        },
        ..SessionConfig::default()
    };
    let name = NodeName {
        high: rng.next_u64(),
        low: rng.next_u64() | 1,
    };
    let core =
        SessionCore::broker(link, name, config, &mut rng).map_err(ConnectError::from_display)?;
    start(driver, IpczProtocol::new(core, wanted))
}

/// `mojo::OutgoingInvitation::Send` from a non-broker (§4.3): joins the
/// broker on `broker_socket` (accepting its invitation, which attaches
/// [`BROKER_PIPE`]), then refers the peer on `socket` to it with one pipe
/// per name in `attachments`. Returns the system and the attached pipes in
/// `attachments`' order once the referral is accepted.
pub fn send_invitation_via_broker(
    broker_socket: OwnedFd,
    socket: OwnedFd,
    attachments: &[Vec<u8>],
) -> Result<(RealSystem<IpczProtocol>, Vec<MessagePipe>), ConnectError> {
    let mut driver = Driver::new().map_err(ConnectError::from_display)?;
    let wanted = attachment_portals(attachments);
    let link = driver
        .adopt_fd(broker_socket)
        .map_err(ConnectError::from_display)?;
    let config = SessionConfig {
        initial_portals: MAX_MOJO_INITIAL_PORTALS,
        ..SessionConfig::default()
    };
    let core = SessionCore::non_broker(link, config).map_err(ConnectError::from_display)?;
    let mut protocol = IpczProtocol::new(core, wanted.clone());
    protocol.attach = Attach::Referral {
        socket: Some(socket),
        portals: wanted.iter().max().map_or(1, |m| m + 1),
        broker_pipe: None,
    };
    start(driver, protocol)
}

/// `mojo::IncomingInvitation::Accept` + `ExtractMessagePipe` as an ipcz
/// non-broker: joins the inviter's network over `socket` (an inherited
/// endpoint), opening all [`MAX_MOJO_INITIAL_PORTALS`] initial portals as a
/// Mojo node accepting an invitation does (§4.5), and returns the system
/// and the pipes named by `attachments`, in that order.
pub fn accept_invitation(
    socket: Endpoint,
    attachments: &[Vec<u8>],
) -> Result<(RealSystem<IpczProtocol>, Vec<MessagePipe>), ConnectError> {
    let mut driver = Driver::new().map_err(ConnectError::from_display)?;
    let link = driver
        .add_link(socket)
        .map_err(ConnectError::from_display)?;
    let config = SessionConfig {
        initial_portals: MAX_MOJO_INITIAL_PORTALS,
        ..SessionConfig::default()
    };
    let core = SessionCore::non_broker(link, config).map_err(ConnectError::from_display)?;
    let wanted = attachment_portals(attachments);
    start(driver, IpczProtocol::new(core, wanted))
}

/// A minimal Mojo+ipcz broker on `socket` (the test host's `--role=broker`):
/// invites the peer with one pipe named [`BROKER_PIPE`], serves its
/// referrals, and returns once that pipe's peer is closed, or an error.
pub fn run_broker(socket: Endpoint) -> Result<(), ConnectError> {
    let mut rng = OsRandom::new().map_err(ConnectError::from_display)?;
    let mut driver = Driver::new().map_err(ConnectError::from_display)?;
    let link = driver
        .add_link(socket)
        .map_err(ConnectError::from_display)?;
    let wanted = attachment_portals(&[BROKER_PIPE.to_vec()]);
    let config = SessionConfig {
        initial_portals: wanted.iter().max().map_or(1, |m| m + 1),
        node: ipcz_node::node::NodeConfig {
            role: ipcz_node::node::NodeRole::Broker,
            ..ipcz_node::node::NodeConfig::default()
        },
        ..SessionConfig::default()
    };
    let name = NodeName {
        high: rng.next_u64(),
        low: rng.next_u64() | 1,
    };
    let core =
        SessionCore::broker(link, name, config, &mut rng).map_err(ConnectError::from_display)?;
    let (system, pipes) = start(driver, IpczProtocol::new(core, wanted))?;
    let pipe = pipes
        .first()
        .ok_or_else(|| ConnectError::new("no broker pipe"))?;
    // Peer-closed, or never satisfiable: the peer is gone either way.
    let _ = system.wait_any(&[(pipe.raw(), Signals::PEER_CLOSED)], None);
    Ok(())
}
