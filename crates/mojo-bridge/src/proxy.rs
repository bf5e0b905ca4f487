//! [`Proxy`]: the whole of `mojo_proxy` as one sans-IO value: the ipcz
//! session towards the host (a non-broker accepting the host's
//! invitation), the legacy invitation towards the client (the proxy is the
//! client's broker), and, once the host's link is up, the [`Bridge`] that
//! pairs their pipes.
//!
//! The proxy has three links ([`ProxyLink`]): the host's socket, the
//! client's bootstrap socket (the one the host gave us; after the
//! invitation it carries the client's synchronous `BUFFER_REQUEST`s) and
//! the node channel (a socket pair the driver makes; its other end goes to
//! the client inside `INIT`). The driver hands each link's stream in with
//! [`Proxy::handle_stream`], writes [`Proxy::poll_transmit`], and answers
//! what [`Proxy::poll_event`] asks with the OS: map the primary buffer the
//! host sent, create or map block buffers, create a region for the client.
//!
//! With [`ProxyConfig::inherit_broker`] (`--inherit-ipcz-broker`, spec
//! `ipcz.md` §4.3) the host is a non-broker that handed our socket to its
//! broker: the ipcz session is a referred one, the host's socket
//! ([`ProxyLink::Host`]) becomes our link to the broker, and the broker's
//! reply brings a second socket, the link to the host itself
//! ([`ProxyLink::Referrer`]), which the driver adopts
//! ([`ProxyEvent::AdoptReferrer`]); the attachments' portals live there.
//!
//! Introductions (spec `ipcz.md` §7): when the host (our broker) offers a
//! link to a third node ([`NodeEvent::IntroductionOffered`], requested by
//! our node to reduce a route, or unasked), the proxy hands the driver the
//! new socket and the link's primary buffer
//! ([`ProxyEvent::AdoptIntroduced`]) as [`ProxyLink::Introduced`]; once
//! mapped ([`Proxy::introduction_mapped`]) the node builds the link and the
//! routes that waited for it resume over it. At most
//! [`MAX_INTRODUCED_LINKS`] exist at a time. The loss of one breaks only
//! the routes over it; a node on one that breaks the protocol is treated
//! as the host is (the run ends, exit 1: `docs/OPERATIONS.md`).
//!
//! The legacy side starts at once: the client may accept the invitation
//! and write into its pipes before the host's link is up; those messages
//! wait in the legacy node's ports and are forwarded when the bridge is
//! made. The other way round, the host's parcels wait for the client's
//! merges in the same ports.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::os::fd::OwnedFd;

use ipcz_node::node::{Node, NodeEvent};
use ipcz_node::router::{NodeLinkId, RouterId};
use ipcz_node::session::{Session, SessionConfig, SessionEvent, SessionParts, SocketId};
use ipcz_wire::driver_object::{DriverObject, SharedBuffer};
use ipcz_wire::types::NodeName;
use mojo_invitation::legacy::FdAccessProbe;
use mojo_legacy_node::node::{LegacyNode, PortRef};
use mojo_legacy_node::session::{
    AttachmentName, BrokerConfig, BrokerInvitation, Link, RegionFds, RegionRequest, RequestId,
};
use mojo_legacy_wire::{NodeName as LegacyNodeName, Profile};
use mojo_wire_kit::{RandomSource, SharedMemory};

use crate::{
    Attachments, Bridge, BridgeError, BridgeEvent, BridgeTransmit, ProxySnapshot, ProxyTotals,
    RingMemory, Side,
};

/// Most links to introduced nodes (§7) the proxy has at a time, those
/// offered and still being mapped or adopted included. An offer beyond it
/// ends the run ([`ProxyError::TooManyIntroducedLinks`]), as an offer
/// beyond `ipcz_node::node::MAX_PENDING_INTRODUCTIONS` fails the broker
/// link inside the node: the host link is the broker link.
pub const MAX_INTRODUCED_LINKS: usize = 64;

/// The referred session's one adopted socket: the link to the host (§4.3).
const REFERRER_SOCKET: SocketId = SocketId(1);

/// Which proxy link a session socket is.
fn proxy_link_of(socket: SocketId) -> ProxyLink {
    if socket == REFERRER_SOCKET {
        ProxyLink::Referrer
    } else {
        ProxyLink::Host
    }
}

mod types;

pub use types::{ProxyConfig, ProxyError, ProxyEvent, ProxyLink, ProxyTransmit};

#[derive(Debug)]
enum Stage<M> {
    /// The host's link is not up yet; the legacy node waits here.
    Connecting {
        session: Box<Session<M>>,
        legacy: Box<LegacyNode>,
    },
    /// Both nodes run under the bridge.
    Bridging {
        bridge: Box<Bridge<M>>,
        host_link: NodeLinkId,
        /// Inherit mode: the link over [`ProxyLink::Referrer`].
        referrer_link: Option<NodeLinkId>,
    },
    /// Between the two (only inside a transition) or after a failure.
    Failed,
}

/// `mojo_proxy`'s protocol work: see the module docs.
#[derive(Debug)]
pub struct Proxy<M> {
    stage: Stage<M>,
    invitation: BrokerInvitation,
    /// Attachment `i`'s legacy end and the initial portal it pairs with.
    attachments: Vec<(PortRef, usize)>,
    host_out: VecDeque<ProxyTransmit>,
    /// Frames for [`ProxyLink::Referrer`] made before the driver adopted it.
    referrer_held: VecDeque<ProxyTransmit>,
    referrer_adopted: bool,
    events: VecDeque<ProxyEvent>,
    finished: bool,
    finished_reported: bool,
    /// Per-link totals (the bridge keeps its own).
    totals: ProxyTotals,
    /// The data pipe ring factory, until the bridge exists to take it.
    rings: Option<RingsSlot<M>>,
    /// Links to introduced nodes, by their [`ProxyLink::Introduced`]
    /// number (at most [`MAX_INTRODUCED_LINKS`]).
    introduced: BTreeMap<u64, IntroducedLink>,
    next_introduced: u64,
    /// An error found outside a call that could return it (reported by
    /// the next one that can).
    fatal: Option<ProxyError>,
}

/// One link to an introduced node.
#[derive(Debug)]
struct IntroducedLink {
    node: NodeName,
    /// The node's link, once the buffer is mapped.
    link: Option<NodeLinkId>,
    /// Whether the driver adopted the socket.
    adopted: bool,
    /// Frames made before that (bounded: the node's own output on a link
    /// with nothing on it yet).
    held: VecDeque<ProxyTransmit>,
}

/// A [`RingMemory`] held for the bridge (a named type for `Debug`).
struct RingsSlot<M>(Box<dyn RingMemory<M>>);

impl<M> fmt::Debug for RingsSlot<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RingMemory")
    }
}

impl<M: SharedMemory> Proxy<M> {
    /// A proxy for `config`: the ipcz greeting and the legacy `INIT`
    /// (carrying `node_channel_client_end`, the client's end of the node
    /// channel pair) are queued at once. `rng` names the legacy node's
    /// ports and the invitation token.
    pub fn new(
        config: &ProxyConfig,
        node_channel_client_end: OwnedFd,
        mut rng: impl RandomSource + Send + 'static,
    ) -> Result<Self, ProxyError> {
        let names = config.attachments.names().map_err(ProxyError::Bridge)?;
        let portals = names.iter().map(|(_, i)| i + 1).max().unwrap_or(2);
        let session_config = SessionConfig {
            initial_portals: u32::try_from(portals).unwrap_or(u32::MAX),
            close_reserved_portal: true,
            ..SessionConfig::default()
        };
        let session = if config.inherit_broker {
            Session::referred(session_config)
        } else {
            Session::non_broker(session_config)
        }
        .map_err(ProxyError::Host)?;
        let legacy_names = names
            .iter()
            .map(|(name, _)| {
                AttachmentName::from_bytes(name.clone()).ok_or(ProxyError::Bridge(
                    BridgeError::AttachmentCount { count: names.len() },
                ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let broker_config = BrokerConfig {
            profile: config.legacy_profile,
            local_name: config.legacy_name,
            attachments: legacy_names,
        };
        let invitation = BrokerInvitation::new(broker_config, node_channel_client_end, &mut rng)
            .map_err(ProxyError::Client)?;
        let mut legacy = LegacyNode::new(config.legacy_name, rng);
        let mut attachments = Vec::with_capacity(names.len());
        for (name, portal) in &names {
            let port = legacy
                .reserve_attachment(name)
                .map_err(|e| ProxyError::Bridge(BridgeError::LegacyApi(e)))?;
            attachments.push((port, *portal));
        }
        Ok(Self {
            stage: Stage::Connecting {
                session: Box::new(session),
                legacy: Box::new(legacy),
            },
            invitation,
            attachments,
            host_out: VecDeque::new(),
            referrer_held: VecDeque::new(),
            referrer_adopted: false,
            events: VecDeque::new(),
            finished: false,
            finished_reported: false,
            rings: None,
            totals: ProxyTotals::default(),
            introduced: BTreeMap::new(),
            next_introduced: 0,
            fatal: None,
        })
    }

    /// Installs the data pipe ring factory: data pipe ends are then
    /// bridged (see [`Bridge::set_ring_memory`]) instead of being closed
    /// as untranslatable. Before the bridge exists it is kept for it.
    pub fn set_ring_memory(&mut self, rings: Box<dyn RingMemory<M>>) {
        match &mut self.stage {
            Stage::Bridging { bridge, .. } => bridge.set_ring_memory(rings),
            _ => self.rings = Some(RingsSlot(rings)),
        }
    }

    /// Takes `link`'s unconsumed input and the fds received with it (each
    /// frame takes its own from the front); returns the bytes consumed. An
    /// error names the peer that broke the protocol: the proxy's job is
    /// over (close everything and exit non-zero).
    pub fn handle_stream(
        &mut self,
        link: ProxyLink,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, ProxyError> {
        let fds_before = fds.len();
        let result = match link {
            ProxyLink::Host => self.handle_host(input, fds),
            ProxyLink::Referrer => self.handle_referrer(input, fds),
            ProxyLink::Introduced(n) => self.handle_introduced(n, input, fds),
            ProxyLink::ClientBootstrap => self.handle_client(Link::Bootstrap, input, fds),
            ProxyLink::ClientNodeChannel => self.handle_client(Link::NodeChannel, input, fds),
        };
        let counted = self.totals.link_mut(link);
        counted.fds_in += fds_before.saturating_sub(fds.len()) as u64;
        if let Ok(used) = result {
            counted.bytes_in += used as u64;
        }
        // The link's own error comes first: the node's report of the link
        // it dropped for it, which pumping turns into a run-ending error
        // too, says the same.
        let pumped = self.pump();
        let used = result?;
        pumped?;
        Ok(used)
    }

    fn handle_host(
        &mut self,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, ProxyError> {
        match &mut self.stage {
            Stage::Connecting { session, .. } => {
                session.handle_stream(input, fds).map_err(ProxyError::Host)
            }
            Stage::Bridging {
                bridge, host_link, ..
            } => bridge
                .ipcz_mut()
                .handle_stream(*host_link, input, fds)
                .map_err(ProxyError::HostNode),
            Stage::Failed => Ok(input.len()),
        }
    }

    fn handle_referrer(
        &mut self,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, ProxyError> {
        match &mut self.stage {
            Stage::Connecting { session, .. } => session
                .handle_socket_stream(REFERRER_SOCKET, input, fds)
                .map_err(ProxyError::Host),
            Stage::Bridging {
                bridge,
                referrer_link: Some(link),
                ..
            } => bridge
                .ipcz_mut()
                .handle_stream(*link, input, fds)
                .map_err(ProxyError::HostNode),
            Stage::Bridging { .. } | Stage::Failed => Ok(input.len()),
        }
    }

    fn handle_introduced(
        &mut self,
        n: u64,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, ProxyError> {
        let Some(IntroducedLink {
            node,
            link: Some(link),
            ..
        }) = self.introduced.get(&n)
        else {
            // Gone (or not built, so nothing can be read on it yet).
            return Ok(input.len());
        };
        let (node, link) = (*node, *link);
        let Stage::Bridging { bridge, .. } = &mut self.stage else {
            return Ok(input.len());
        };
        bridge
            .ipcz_mut()
            .handle_stream(link, input, fds)
            .map_err(|error| ProxyError::Introduced {
                link: ProxyLink::Introduced(n),
                node,
                error,
            })
    }

    fn handle_client(
        &mut self,
        link: Link,
        input: &[u8],
        fds: &mut VecDeque<OwnedFd>,
    ) -> Result<usize, ProxyError> {
        let node = match &mut self.stage {
            Stage::Connecting { legacy, .. } => legacy,
            Stage::Bridging { bridge, .. } => bridge.legacy_mut(),
            Stage::Failed => return Ok(input.len()),
        };
        self.invitation
            .handle_stream(node, link, input, fds)
            .map_err(ProxyError::Client)
    }

    /// `link`'s socket is gone (the peer hung up or it failed). The host's
    /// loss before its invitation is an error; after, and the client's at
    /// any time, it only breaks the pairings, which close after forwarding
    /// what already arrived.
    pub fn handle_link_closed(&mut self, link: ProxyLink) -> Result<(), ProxyError> {
        match link {
            ProxyLink::Host => match &mut self.stage {
                Stage::Connecting { session, .. } => {
                    let _ = session.handle_closed();
                    self.stage = Stage::Failed;
                    return Err(ProxyError::HostClosedEarly);
                }
                Stage::Bridging {
                    bridge, host_link, ..
                } => bridge.ipcz_link_lost(*host_link),
                Stage::Failed => {}
            },
            ProxyLink::Referrer => match &mut self.stage {
                Stage::Connecting { session, .. } => {
                    let _ = session.handle_socket_closed(REFERRER_SOCKET);
                    self.stage = Stage::Failed;
                    return Err(ProxyError::HostClosedEarly);
                }
                Stage::Bridging {
                    bridge,
                    referrer_link: Some(link),
                    ..
                } => bridge.ipcz_link_lost(*link),
                Stage::Bridging { .. } | Stage::Failed => {}
            },
            ProxyLink::Introduced(n) => {
                // Only the routes over it break (§2.7); the node's own
                // handling of a lost link.
                if let Some(IntroducedLink {
                    link: Some(link), ..
                }) = self.introduced.remove(&n)
                    && let Stage::Bridging { bridge, .. } = &mut self.stage
                {
                    bridge.ipcz_link_lost(link);
                }
            }
            ProxyLink::ClientBootstrap | ProxyLink::ClientNodeChannel => {
                let which = match link {
                    ProxyLink::ClientBootstrap => Link::Bootstrap,
                    _ => Link::NodeChannel,
                };
                let invitation = &mut self.invitation;
                match &mut self.stage {
                    Stage::Connecting { legacy, .. } => {
                        invitation.handle_link_closed(legacy, which);
                    }
                    Stage::Bridging { bridge, .. } => {
                        invitation.handle_link_closed(bridge.legacy_mut(), which);
                    }
                    Stage::Failed => {}
                }
            }
        }
        self.pump()
    }

    /// The primary buffer of [`ProxyEvent::MapPrimaryBuffer`] is mapped.
    pub fn primary_buffer_mapped(&mut self, mapping: M) -> Result<(), ProxyError> {
        if let Stage::Connecting { session, .. } = &mut self.stage {
            session
                .primary_buffer_mapped(mapping)
                .map_err(ProxyError::Host)?;
        }
        self.pump()
    }

    /// The ipcz node, to answer [`ProxyEvent::Memory`] on (`None` before the
    /// host's link is up).
    pub fn ipcz_mut(&mut self) -> Option<&mut Node<M>> {
        match &mut self.stage {
            Stage::Connecting { session, .. } => session.node_mut(),
            Stage::Bridging { bridge, .. } => Some(bridge.ipcz_mut()),
            Stage::Failed => None,
        }
    }

    /// The bridge, once both nodes run under it.
    pub fn bridge(&self) -> Option<&Bridge<M>> {
        match &self.stage {
            Stage::Bridging { bridge, .. } => Some(bridge),
            _ => None,
        }
    }

    /// Totals since start: per link, and the bridge's (no allocation).
    pub fn totals(&self) -> ProxyTotals {
        let mut totals = self.totals;
        if let Some(bridge) = self.bridge() {
            totals.bridge = bridge.totals();
        }
        totals
    }

    /// The proxy's state now: totals, and the bridge's pipes and queues
    /// (see [`crate::BridgeSnapshot`] for what is and is not observable).
    pub fn snapshot(&self) -> ProxySnapshot {
        ProxySnapshot {
            totals: self.totals(),
            bridge: self.bridge().map(Bridge::snapshot),
            waiting_for_host: match &self.stage {
                Stage::Connecting { legacy, .. } => legacy.queued_message_count(),
                _ => 0,
            },
        }
    }

    /// Answers [`ProxyEvent::RegionRequest`] with a new region's fds.
    pub fn answer_region(
        &mut self,
        id: RequestId,
        region: RegionFds,
        probe: &impl FdAccessProbe,
    ) -> Result<(), ProxyError> {
        self.invitation
            .answer_region(id, region, probe)
            .map_err(ProxyError::Client)
    }

    /// Answers [`ProxyEvent::RegionRequest`] with the failure response.
    pub fn fail_region(&mut self, id: RequestId) -> Result<(), ProxyError> {
        self.invitation.fail_region(id).map_err(ProxyError::Client)
    }

    /// Shuts down (SIGTERM): forwards what arrived, closes every pairing
    /// on both sides. Write what [`poll_transmit`](Self::poll_transmit)
    /// still gives, then close the sockets.
    pub fn close_all(&mut self) {
        if let Stage::Bridging { bridge, .. } = &mut self.stage {
            bridge.close_all();
        }
        let _ = self.pump();
    }

    /// Whether every pairing is gone.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The driver adopted the socket of [`ProxyEvent::AdoptReferrer`]: the
    /// frames held for it go out (first).
    pub fn referrer_adopted(&mut self) {
        self.referrer_adopted = true;
        while let Some(t) = self.referrer_held.pop_back() {
            self.host_out.push_front(t);
        }
    }

    /// The memory of [`ProxyEvent::AdoptIntroduced`] for `link` is mapped:
    /// the node builds the link and what waited for it resumes. An error
    /// is the host's (the buffer it made is not a usable primary buffer).
    pub fn introduction_mapped(&mut self, link: ProxyLink, mapping: M) -> Result<(), ProxyError> {
        let ProxyLink::Introduced(n) = link else {
            return Ok(());
        };
        let Some(entry) = self.introduced.get_mut(&n).filter(|e| e.link.is_none()) else {
            return Ok(());
        };
        let node = entry.node;
        let built = match &mut self.stage {
            Stage::Bridging { bridge, .. } => bridge.ipcz_mut().accept_introduction(node, mapping),
            _ => return Ok(()),
        };
        let result = match built {
            Ok(id) => {
                log::info!("{link} to node {node} up");
                entry.link = Some(id);
                Ok(())
            }
            Err(e) => {
                self.introduced.remove(&n);
                Err(ProxyError::HostNode(e))
            }
        };
        self.pump()?;
        result
    }

    /// The memory (or socket) of [`ProxyEvent::AdoptIntroduced`] for
    /// `link` is unusable: for the node a validation failure of the host's
    /// message (§7.3), so the host link is dropped and the run ends.
    pub fn introduction_unusable(&mut self, link: ProxyLink) -> Result<(), ProxyError> {
        let ProxyLink::Introduced(n) = link else {
            return Ok(());
        };
        let Some(entry) = self.introduced.remove(&n) else {
            return Ok(());
        };
        if let Stage::Bridging { bridge, .. } = &mut self.stage {
            bridge.ipcz_mut().introduction_unusable(entry.node);
        }
        self.pump()?;
        Err(ProxyError::HostNode(
            ipcz_node::node::NodeError::UnusableIntroduction(entry.node),
        ))
    }

    /// The driver adopted the socket of [`ProxyEvent::AdoptIntroduced`] for
    /// `link`: the frames held for it go out (first).
    pub fn introduced_adopted(&mut self, link: ProxyLink) {
        let ProxyLink::Introduced(n) = link else {
            return;
        };
        if let Some(entry) = self.introduced.get_mut(&n) {
            entry.adopted = true;
            while let Some(t) = entry.held.pop_back() {
                self.host_out.push_front(t);
            }
        }
    }

    /// Links to introduced nodes now (offered, being set up, or up).
    pub fn introduced_link_count(&self) -> usize {
        self.introduced.len()
    }

    /// The next frame to write.
    pub fn poll_transmit(&mut self) -> Option<ProxyTransmit> {
        loop {
            let t = self.next_transmit()?;
            if t.link == ProxyLink::Referrer && !self.referrer_adopted {
                // Bounded: the node's own output before the link is up.
                self.referrer_held.push_back(t);
                continue;
            }
            if let ProxyLink::Introduced(n) = t.link {
                match self.introduced.get_mut(&n) {
                    Some(entry) if !entry.adopted => {
                        entry.held.push_back(t);
                        continue;
                    }
                    Some(_) => {}
                    // Gone: nobody reads it (its fds close).
                    None => continue,
                }
            }
            let counted = self.totals.link_mut(t.link);
            counted.bytes_out += t.bytes.len() as u64;
            counted.fds_out += t.fds.len() as u64;
            return Some(t);
        }
    }

    fn next_transmit(&mut self) -> Option<ProxyTransmit> {
        if let Some(t) = self.host_out.pop_front() {
            return Some(t);
        }
        if let Some(t) = self.invitation.poll_transmit() {
            return Some(ProxyTransmit {
                link: ProxyLink::legacy(t.link),
                bytes: t.bytes,
                fds: t.fds,
            });
        }
        match &mut self.stage {
            Stage::Connecting { session, legacy } => {
                if let Some(t) = session.poll_transmit() {
                    return Some(ProxyTransmit {
                        link: proxy_link_of(t.socket),
                        bytes: t.bytes,
                        fds: t.fds,
                    });
                }
                legacy.poll_transmit().map(|t| ProxyTransmit {
                    link: ProxyLink::ClientNodeChannel,
                    bytes: t.bytes,
                    fds: t.fds,
                })
            }
            Stage::Bridging {
                bridge,
                referrer_link,
                host_link,
            } => bridge.poll_transmit().map(|t| match t {
                BridgeTransmit::Ipcz(t) => ProxyTransmit {
                    link: if Some(t.link) == *referrer_link {
                        ProxyLink::Referrer
                    } else if t.link == *host_link {
                        ProxyLink::Host
                    } else {
                        self.introduced
                            .iter()
                            .find(|(_, e)| e.link == Some(t.link))
                            .map_or(ProxyLink::Introduced(u64::MAX), |(n, _)| {
                                ProxyLink::Introduced(*n)
                            })
                    },
                    bytes: t.bytes,
                    fds: t.fds,
                },
                BridgeTransmit::Legacy(t) => ProxyTransmit {
                    link: ProxyLink::ClientNodeChannel,
                    bytes: t.bytes,
                    fds: t.fds,
                },
            }),
            Stage::Failed => None,
        }
    }

    /// Gives a written transmit's buffer back for reuse.
    pub fn recycle(&mut self, link: ProxyLink, bytes: Vec<u8>) {
        if let Stage::Bridging { bridge, .. } = &mut self.stage {
            let side = match link {
                ProxyLink::Host | ProxyLink::Referrer | ProxyLink::Introduced(_) => Side::Ipcz,
                _ => Side::Legacy,
            };
            bridge.recycle(side, bytes);
        }
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<ProxyEvent> {
        if self.events.is_empty()
            && let Err(e) = self.pump()
        {
            // Reported by the next call that returns a result.
            self.fatal.get_or_insert(e);
        }
        self.events.pop_front()
    }

    /// Moves the parts' events into ours; makes the bridge once the host's
    /// link is up.
    fn pump(&mut self) -> Result<(), ProxyError> {
        if let Some(e) = self.fatal.take() {
            return Err(e);
        }
        while let Some(request) = self.invitation.poll_region_request() {
            self.events.push_back(ProxyEvent::RegionRequest(request));
        }
        let mut session_events = Vec::new();
        let mut bridge_events = Vec::new();
        match &mut self.stage {
            Stage::Connecting { session, legacy } => {
                while let Some(event) = session.poll_event() {
                    session_events.push(event);
                }
                // Readiness before the bridge exists is rediscovered when
                // it pairs the ends; the rest is only worth a log line.
                while let Some(event) = legacy.poll_event() {
                    log::debug!("legacy node before the bridge: {event:?}");
                }
            }
            Stage::Bridging { bridge, .. } => {
                while let Some(event) = bridge.poll_event() {
                    bridge_events.push(event);
                }
                if bridge.is_finished() && !self.finished {
                    self.finished = true;
                }
            }
            Stage::Failed => {}
        }
        let mut portals = None;
        for event in session_events {
            if let Some(p) = self.session_event(event) {
                portals = Some(p);
            }
        }
        for event in bridge_events {
            self.bridge_event(event);
        }
        if self.finished && !self.finished_reported {
            self.finished_reported = true;
            self.events.push_back(ProxyEvent::Finished);
        }
        if let Some(e) = self.fatal.take() {
            return Err(e);
        }
        match portals {
            Some(portals) => self.start_bridge(portals),
            None => Ok(()),
        }
    }

    fn session_event(&mut self, event: SessionEvent) -> Option<Vec<Option<RouterId>>> {
        match event {
            SessionEvent::MapPrimaryBuffer { buffer, fd } => {
                self.events
                    .push_back(ProxyEvent::MapPrimaryBuffer { buffer, fd });
            }
            SessionEvent::Established {
                remote_name,
                portals,
                ..
            } => {
                log::info!("host link up: host node {remote_name:?}");
                return Some(portals);
            }
            SessionEvent::AdoptSocket { socket, fd } if socket == REFERRER_SOCKET => {
                self.events.push_back(ProxyEvent::AdoptReferrer { fd });
            }
            SessionEvent::Node(event) => self.node_event(event),
            other => log::debug!("ipcz session: {other:?}"),
        }
        None
    }

    fn node_event(&mut self, event: NodeEvent) {
        match event {
            NodeEvent::CreateBlockBuffer { .. }
            | NodeEvent::MapBlockBuffer { .. }
            | NodeEvent::MemoryRequested { .. } => self.events.push_back(ProxyEvent::Memory(event)),
            NodeEvent::IntroductionOffered {
                name,
                transport,
                memory,
                ..
            } => self.introduction_offered(name, transport, memory),
            // The node found a peer breaking the protocol outside any frame
            // it was handed (in the shared memory, say) and dropped the
            // link: as with a bad frame, the run ends with that error.
            NodeEvent::LinkDropped { link, error, .. } => {
                log::debug!("ipcz node dropped {link:?}: {error}");
                let introduced = self
                    .introduced
                    .iter()
                    .find(|(_, e)| e.link == Some(link))
                    .map(|(&n, e)| (n, e.node));
                let error = match introduced {
                    Some((n, node)) => ProxyError::Introduced {
                        link: ProxyLink::Introduced(n),
                        node,
                        error,
                    },
                    None => ProxyError::HostNode(error),
                };
                self.fatal.get_or_insert(error);
            }
            other => log::debug!("ipcz node: {other:?}"),
        }
    }

    /// The host introduces node `node`: a new [`ProxyLink::Introduced`]
    /// for the driver to set up, within [`MAX_INTRODUCED_LINKS`].
    fn introduction_offered(
        &mut self,
        node: NodeName,
        transport: ipcz_node::node::DriverBox,
        memory: ipcz_node::node::DriverBox,
    ) {
        if self.introduced.len() >= MAX_INTRODUCED_LINKS {
            // Both boxes close here, their fds with them.
            drop((transport, memory));
            self.fatal
                .get_or_insert(ProxyError::TooManyIntroducedLinks {
                    node,
                    limit: MAX_INTRODUCED_LINKS,
                });
            return;
        }
        // The node checked both boxes: a Transport (one fd) and an unsafe
        // SharedBuffer of the primary buffer's size.
        let (_, transport_fds) = transport.into_parts();
        let (memory, buffer_fds) = memory.into_parts();
        let (Some(fd), DriverObject::SharedBuffer(buffer)) =
            (transport_fds.into_iter().next(), memory)
        else {
            return;
        };
        let n = self.next_introduced;
        self.next_introduced += 1;
        self.introduced.insert(
            n,
            IntroducedLink {
                node,
                link: None,
                adopted: false,
                held: VecDeque::new(),
            },
        );
        log::debug!("host introduces node {node} as introduced link {n}");
        self.events.push_back(ProxyEvent::AdoptIntroduced {
            link: ProxyLink::Introduced(n),
            node,
            fd,
            buffer,
            buffer_fds,
        });
    }

    fn bridge_event(&mut self, event: BridgeEvent) {
        match event {
            BridgeEvent::Ipcz(event) => self.node_event(event),
            BridgeEvent::Legacy(event) => log::debug!("legacy node: {event:?}"),
            BridgeEvent::PairingOpened { pairing, .. } => self
                .events
                .push_back(ProxyEvent::PairingOpened { pairing: pairing.0 }),
            BridgeEvent::PairingClosed { pairing } => self
                .events
                .push_back(ProxyEvent::PairingClosed { pairing: pairing.0 }),
            other => self.events.push_back(ProxyEvent::Dropped(other)),
        }
    }

    /// The host's link is up: hands both nodes to the bridge and pairs
    /// attachment `i` with initial portal `i + 1`.
    fn start_bridge(&mut self, mut portals: Vec<Option<RouterId>>) -> Result<(), ProxyError> {
        let Stage::Connecting { session, legacy } =
            std::mem::replace(&mut self.stage, Stage::Failed)
        else {
            return Ok(());
        };
        let SessionParts {
            node,
            link,
            sockets,
            transmits,
            events,
        } = match session.into_parts() {
            Ok(parts) => parts,
            Err(session) => {
                self.stage = Stage::Connecting { session, legacy };
                return Ok(());
            }
        };
        self.host_out
            .extend(transmits.into_iter().map(|t| ProxyTransmit {
                link: proxy_link_of(t.socket),
                bytes: t.bytes,
                fds: t.fds,
            }));
        let referrer_link = sockets
            .iter()
            .find(|(socket, _)| *socket == REFERRER_SOCKET)
            .map(|(_, link)| *link);
        for event in events {
            if let Some(p) = self.session_event(event) {
                portals = p;
            }
        }
        let pairs: Vec<(RouterId, PortRef)> = self
            .attachments
            .iter()
            .filter_map(|&(port, index)| Some((portals.get(index).copied().flatten()?, port)))
            .collect();
        let mut bridge = Bridge::from_pairs(node, *legacy, pairs);
        if let Some(RingsSlot(rings)) = self.rings.take() {
            bridge.set_ring_memory(rings);
        }
        self.stage = Stage::Bridging {
            bridge: Box::new(bridge),
            host_link: link,
            referrer_link,
        };
        self.pump()
    }
}
